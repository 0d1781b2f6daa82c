//! cairn-node: the storage node daemon.
//!
//! - [`dir`]: a node's directory, as `cairn node init` creates it,
//! - [`config`]: the settings in `node.toml`,
//! - [`auth`]: the credentials a node keeps, and the throttling of guesses,
//! - [`service`]: what each request does, whatever the transport,
//! - [`server`]: the transports, limits and graceful shutdown,
//! - [`scrub`]: the background scrub of a running node,
//! - [`maintenance`]: the background migration into segments, and their
//!   compaction,
//! - [`local`]: nodes as child processes, for the demo, benchmarks and tests.

pub mod auth;
pub mod config;
pub mod dir;
pub mod local;
pub mod maintenance;
pub mod scrub;
pub mod server;
pub mod service;

pub use config::{NodeConfig, Size};
pub use service::{Caller, Node, Session};
