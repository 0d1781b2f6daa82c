//! cairn-net: how cairn nodes and clients talk.
//!
//! - [`identity`]: a node's key pair, certificate and id,
//! - [`address`]: addresses of the form `scheme://host:port#NODE_ID`,
//! - [`tls`]: TLS 1.3 configurations that pin the server by node id.

pub mod address;
pub mod identity;
pub mod tls;

pub use address::{AddressError, NodeAddress, Scheme};
pub use identity::{IdentityError, NodeId, NodeIdentity};
