//! cairn-node: the storage node daemon.
//!
//! - [`config`]: the settings in `node.toml`,
//! - [`auth`]: the credentials a node keeps, and the throttling of guesses,
//! - [`service`]: what each request does, whatever the transport.

pub mod auth;
pub mod config;
pub mod service;

pub use config::{NodeConfig, Size};
pub use service::{Caller, Node, Session};
