//! cairn-net: how cairn nodes and clients talk.
//!
//! - [`identity`]: a node's key pair, certificate and id,
//! - [`address`]: addresses of the form `scheme://host:port#NODE_ID`,
//! - [`tls`]: TLS 1.3 configurations that pin the server by node id,
//! - [`protocol`]: the requests and responses, error codes and limits,
//! - [`hello`]: the version handshake that opens a connection,
//! - [`frame`]: how messages cross a byte stream, and a decoder without
//!   I/O,
//! - [`conn`]: the protocol core, a `tcp://` connection's state on either
//!   side as a state machine without I/O (bytes and time in; frames,
//!   answers or requests, and deadlines out),
//! - [`deadline`]: tokio's clock for the drivers around [`conn`],
//! - [`rest`]: the REST API of `https://` nodes (its table of routes), [`https`] its client,
//! - [`client`]: a connection to one node over `tcp://` (a driver around
//!   [`conn::ClientConnection`]), `quic://` or `https://`,
//! - [`quic`]: QUIC settings shared by clients and nodes.
//!
//! The node's side of `tcp://` is driven around [`conn::ServerConnection`]
//! in `cairn-node`.

pub mod address;
pub mod client;
pub mod conn;
pub mod deadline;
pub mod frame;
pub mod hello;
pub mod https;
pub mod identity;
pub mod protocol;
pub mod quic;
pub mod rest;
pub mod tls;

pub use address::{AddressError, NodeAddress, Scheme};
pub use identity::{IdentityError, NodeId, NodeIdentity};
