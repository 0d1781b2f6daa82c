//! cairn-net: how cairn nodes and clients talk.
//!
//! - [`identity`]: a node's key pair, certificate and id,
//! - [`address`]: addresses of the form `scheme://host:port#NODE_ID`,
//! - [`tls`]: TLS 1.3 configurations that pin the server by node id,
//! - [`protocol`]: the requests and responses, error codes and limits,
//! - [`frame`]: how they cross a byte stream, and the version handshake,
//! - [`https`]: the REST API of `https://` nodes, its JSON bodies and client,
//! - [`client`]: a connection to one node over `tcp://`, `quic://` or
//!   `https://`.

pub mod address;
pub mod client;
pub mod conn;
pub mod frame;
pub mod hello;
pub mod https;
pub mod identity;
pub mod protocol;
pub mod quic;
pub mod tls;

pub use address::{AddressError, NodeAddress, Scheme};
pub use identity::{IdentityError, NodeId, NodeIdentity};
