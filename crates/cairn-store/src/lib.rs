//! cairn-store: a node's disk.
