//! cairn-client: store and fetch files across a cluster of cairn nodes.
//!
//! A [`Client`] cuts a file into content-defined chunks, seals each one
//! (compression, convergent encryption), erasure-codes it into n shards
//! and places them on n distinct nodes by rendezvous hashing, so that any
//! k shards of every chunk give the file back. The file's name lives in an
//! encrypted index replicated on every node; nodes never see a name, a
//! path or plaintext.
//!
//! ```no_run
//! use cairn_client::{Client, ClientConfig, RemotePath};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ClientConfig::parse(&std::fs::read_to_string("cairn.toml")?)?;
//! let client = Client::open(&config, b"correct horse battery staple").await?;
//!
//! let remote: RemotePath = "photos/cairn.jpg".parse()?;
//! client.store(std::path::Path::new("cairn.jpg"), &remote).await?;
//! client.fetch(&remote, std::path::Path::new("copy.jpg")).await?;
//! for entry in client.list("photos").await? {
//!     println!("{} {} bytes", entry.path, entry.size);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Layers
//!
//! ```text
//! Client (façade)            client.rs: the public operations, each handed on
//!   file paths               store, tree, fetch, share, directory, repair
//!   index layer              index: lookup, quorum, merge, read repair, entry writes, listing
//!   shard layer              shards: upload and fetch stripes, hedging, have/drop, stripe repair
//!                            placement: every "where does this shard go"
//!   transport                transport: the requests a node answers
//!     NetTransport           cluster: connections, retries, nodes marked down
//!     MemoryTransport        fake nodes in memory, for tests
//!     FailureTransport       faults injected into another transport, for tests
//! ```
//!
//! Each layer uses only the ones below it. The entry format is in
//! [`index::entry`], remote paths in [`RemotePath`], settings in
//! [`config`].

mod client;
pub mod cluster;
pub mod config;
pub mod directory;
pub mod fetch;
mod hashing;
pub mod index;
pub mod output;
mod path;
pub mod placement;
pub mod repair;
pub mod scan;
mod shards;
mod share;
pub mod store;
pub mod transport;
pub mod tree;

pub use crate::client::{Client, OpenError};
pub use crate::cluster::{Cluster, ClusterError, Credentials};
pub use crate::config::ClientConfig;
pub use crate::directory::{Changes, FileInfo, Health, ListItem};
pub use crate::fetch::{FetchError, FetchReport};
pub use crate::hashing::HashingWriter;
pub use crate::index::ChangeCursor;
pub use crate::path::RemotePath;
pub use crate::repair::{RepairProblem, RepairReport};
pub use crate::store::{StoreError, StoreReport};
pub use crate::transport::{FailureKind, NodeFailure, ShardFailure};
pub use crate::tree::{TreeEvent, TreeOptions, TreePlan, TreeReport};
