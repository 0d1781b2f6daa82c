//! The requests a node answers, as the client's layers ask them.
//!
//! [`Transport`] is the floor the client's two layers stand on (the index
//! layer, [`crate::index`], and the shard layer): log in, put, get,
//! ask about and drop shards, put, get, list and delete index entries, and
//! a node's info. Nodes are named by their position in the configuration
//! (`0..nodes().len()`), as everywhere in the client.
//!
//! Three implementations, as mountpoint-s3 has for its object client:
//!
//! | transport | what it is | for |
//! | --- | --- | --- |
//! | [`NetTransport`] | `cairn_net` connections, with the [`Cluster`](crate::Cluster)'s retry rules | real nodes |
//! | [`MemoryTransport`] | a few fake nodes in memory, faithful to a node's answers | fast tests of placement, quorum, read repair, degraded puts, repair |
//! | [`FailureTransport`] | any transport, with faults injected per node and per request | tests of what the layers do when a request fails |
//!
//! # Contract
//!
//! - Errors are [`ClientError`]s, whatever the transport: a node's refusal
//!   is [`ClientError::Node`] with its [`ErrorCode`], an unreachable node
//!   [`ClientError::Connect`] or [`ClientError::Broken`], a slow one
//!   [`ClientError::Timeout`]. The layers decide on those kinds only.
//! - [`get_shard`](Transport::get_shard) checks the bytes against the id
//!   before it returns them ([`ClientError::Corrupt`] otherwise), so the
//!   layers never see a shard that does not match.
//! - Every request is safe to repeat (shards are content-addressed, index
//!   writes versioned), so an implementation may retry as it sees fit.
//! - [`is_down`](Transport::is_down) and [`down`](Transport::down) say which
//!   nodes recently failed: placement leaves them out until they come back.

pub mod failure;
pub mod memory;
pub mod net;

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use cairn_core::Id;
use cairn_net::client::{ChangePage, ClientError, Has, IndexEntry, IndexPage};
use cairn_net::protocol::{Dropped, ErrorCode, FolderTag, IndexName, NodeInfo};
use cairn_net::{NodeAddress, NodeId};

pub use self::failure::{FailureTransport, Fault};
pub use self::memory::MemoryTransport;
pub use self::net::NetTransport;

/// Whether a read waits for a connection that another request is making
/// to the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Patience {
    /// Wait for it: this node's answer is needed.
    Wait,
    /// Give up at once while another request makes the node's first
    /// connection: other nodes can answer instead (a shard has n − k
    /// stand-ins, an index read needs only a read quorum). A node connected
    /// to before is still waited for: its connection is being made again,
    /// usually in a moment.
    Hurry,
}

/// The kinds of request a node answers: to count them, or to aim a fault
/// at them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// [`Transport::login`].
    Login,
    /// [`Transport::info`].
    Info,
    /// [`Transport::put_shard`].
    PutShard,
    /// [`Transport::get_shard`].
    GetShard,
    /// [`Transport::has_shards`].
    HasShards,
    /// [`Transport::drop_shards`].
    DropShards,
    /// [`Transport::put_index`].
    PutIndex,
    /// [`Transport::get_index`].
    GetIndex,
    /// [`Transport::list_index`].
    ListIndex,
    /// [`Transport::delete_index`].
    DeleteIndex,
    /// [`Transport::put_entry`].
    PutEntry,
    /// [`Transport::list_folder`].
    ListFolder,
    /// [`Transport::changes`].
    Changes,
}

/// What [`Transport::put_shard_unless_held`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardPut {
    /// The user already held the shard on the node: nothing was sent.
    Held,
    /// The shard was sent; `written` if the node wrote its bytes (false
    /// when it held them already, for another user).
    Sent {
        /// Whether the node wrote the bytes.
        written: bool,
    },
}

/// The requests a node answers; see the module docs for the contract.
pub trait Transport: Send + Sync + 'static {
    /// The nodes' addresses, in configuration order.
    fn addresses(&self) -> &[NodeAddress];

    /// The nodes' ids, in configuration order (placement ranks them).
    fn node_ids(&self) -> Vec<NodeId>;

    /// Whether node `node` failed recently and is left alone for now.
    fn is_down(&self, node: usize) -> bool;

    /// The nodes that are down, with why.
    fn down(&self) -> Vec<NodeFailure>;

    /// Connects to node `node` and logs in (anonymous transports only
    /// connect).
    fn login(&self, node: usize) -> impl Future<Output = Result<(), ClientError>> + Send;

    /// About node `node`.
    fn info(&self, node: usize) -> impl Future<Output = Result<NodeInfo, ClientError>> + Send;

    /// Stores `bytes` as shard `id` on node `node`; returns whether the
    /// node wrote them (false when it had them already).
    fn put_shard(
        &self,
        node: usize,
        id: Id,
        bytes: Bytes,
    ) -> impl Future<Output = Result<bool, ClientError>> + Send;

    /// Asks node `node` whether the user holds shard `id`, and sends
    /// `bytes` only if not; the question and the put are repeated together
    /// if the link breaks between them, so a shard the node stored before
    /// a break is not sent again.
    fn put_shard_unless_held(
        &self,
        node: usize,
        id: Id,
        bytes: Bytes,
    ) -> impl Future<Output = Result<ShardPut, ClientError>> + Send {
        async move {
            if self.has_shards(node, &[id]).await?.mine[0] {
                return Ok(ShardPut::Held);
            }
            let written = self.put_shard(node, id, bytes).await?;
            Ok(ShardPut::Sent { written })
        }
    }

    /// Shard `id` from node `node`, checked against `id`.
    fn get_shard(
        &self,
        node: usize,
        id: Id,
        patience: Patience,
    ) -> impl Future<Output = Result<Bytes, ClientError>> + Send;

    /// Which of `ids` node `node` stores, and which the user references.
    fn has_shards(
        &self,
        node: usize,
        ids: &[Id],
    ) -> impl Future<Output = Result<Has, ClientError>> + Send;

    /// Drops the user's references to `ids` on node `node`.
    fn drop_shards(
        &self,
        node: usize,
        ids: &[Id],
    ) -> impl Future<Output = Result<Vec<Dropped>, ClientError>> + Send;

    /// Stores index entry `name` at `version` on node `node`; returns the
    /// version it replaced. A newer (or a different equal) version stored
    /// there is a [`ErrorCode::Conflict`].
    fn put_index(
        &self,
        node: usize,
        name: IndexName,
        version: u64,
        data: Bytes,
    ) -> impl Future<Output = Result<Option<u64>, ClientError>> + Send;

    /// Index entry `name` on node `node`, or `None` if it has none.
    fn get_index(
        &self,
        node: usize,
        name: IndexName,
        patience: Patience,
    ) -> impl Future<Output = Result<Option<IndexEntry>, ClientError>> + Send;

    /// A page of at most `limit` of node `node`'s index entries, in name
    /// order, after `after`.
    fn list_index(
        &self,
        node: usize,
        after: Option<IndexName>,
        limit: u32,
    ) -> impl Future<Output = Result<IndexPage, ClientError>> + Send;

    /// Stores index entry `name` at `version` on node `node`, listed in
    /// folder `folder` with the first `summary_len` bytes of `data` as its
    /// summary; returns the version it replaced. Versions as
    /// [`put_index`](Self::put_index).
    fn put_entry(
        &self,
        node: usize,
        name: IndexName,
        version: u64,
        folder: FolderTag,
        summary_len: u32,
        data: Bytes,
    ) -> impl Future<Output = Result<Option<u64>, ClientError>> + Send;

    /// A page of at most `limit` of node `node`'s entries in folder
    /// `folder`, in name order, after `after`: summaries only.
    fn list_folder(
        &self,
        node: usize,
        folder: FolderTag,
        after: Option<IndexName>,
        limit: u32,
    ) -> impl Future<Output = Result<IndexPage, ClientError>> + Send;

    /// Node `node`'s entries changed after its change number `since`
    /// (optionally only in `folder`), oldest change first: summaries only.
    fn changes(
        &self,
        node: usize,
        since: u64,
        folder: Option<FolderTag>,
        limit: u32,
    ) -> impl Future<Output = Result<ChangePage, ClientError>> + Send;

    /// Deletes index entry `name` on node `node` (the client removes files
    /// with tombstones; this is for tools); returns the version deleted.
    fn delete_index(
        &self,
        node: usize,
        name: IndexName,
    ) -> impl Future<Output = Result<Option<u64>, ClientError>> + Send;

    /// Closes every connection.
    fn close(&self) -> impl Future<Output = ()> + Send;
}

/// A request to a node that failed: which node, how, and what the
/// transport said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFailure {
    /// The node's position in the configuration.
    pub index: usize,
    /// The node's address.
    pub node: NodeAddress,
    /// How it failed.
    pub kind: FailureKind,
    /// What the transport said, for people.
    pub message: String,
}

/// How a request to a node failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// No connection could be made, or it broke: the node may be gone.
    Unreachable,
    /// No answer within `after`.
    Timeout {
        /// The deadline.
        after: Duration,
    },
    /// The node answered with an error.
    Refused {
        /// The node's error code.
        code: ErrorCode,
    },
    /// The node returned a shard that does not hash to its id.
    Corrupt {
        /// The id asked for.
        expected: Id,
        /// BLAKE3 of the bytes returned.
        actual: Id,
    },
    /// The node answered something that does not fit the request.
    Protocol,
    /// The node failed earlier and was not asked again for now.
    Down,
}

impl NodeFailure {
    /// The failure of a request to node `index` at `node`.
    pub fn new(index: usize, node: &NodeAddress, error: &ClientError) -> Self {
        let kind = match error {
            ClientError::Timeout { after, .. } => FailureKind::Timeout { after: *after },
            ClientError::Node(body) => FailureKind::Refused { code: body.code },
            ClientError::Corrupt { expected, actual } => FailureKind::Corrupt {
                expected: *expected,
                actual: *actual,
            },
            ClientError::Protocol(_) => FailureKind::Protocol,
            _ => FailureKind::Unreachable,
        };
        Self {
            index,
            node: node.clone(),
            kind,
            message: error.to_string(),
        }
    }

    /// A node found down, failed earlier for `why`.
    pub fn down(index: usize, node: &NodeAddress, why: impl Into<String>) -> Self {
        Self {
            index,
            node: node.clone(),
            kind: FailureKind::Down,
            message: why.into(),
        }
    }

    /// The failure of a request to node `node` of `transport`.
    pub(crate) fn of(transport: &impl Transport, node: usize, error: &ClientError) -> Self {
        Self::new(node, &transport.addresses()[node], error)
    }
}

impl std::fmt::Display for NodeFailure {
    /// `address (why)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.node, self.message)
    }
}

/// A shard that could not be had from a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardFailure {
    /// The shard's position in its stripe.
    pub shard: usize,
    /// The node asked, and how it failed.
    pub failure: NodeFailure,
}

impl std::fmt::Display for ShardFailure {
    /// `URL: shard N: why`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: shard {}: {}",
            self.failure.node.url(),
            self.shard,
            self.failure.message
        )
    }
}

/// `items` displayed and joined with `separator`.
pub(crate) fn joined<T: std::fmt::Display>(items: &[T], separator: &str) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(separator)
}

/// Adds the failures in `more` to `failures`, one per node (the first seen
/// is kept).
pub(crate) fn merge_failures(failures: &mut Vec<NodeFailure>, more: Vec<NodeFailure>) {
    for failure in more {
        if !failures.iter().any(|f| f.index == failure.index) {
            failures.push(failure);
        }
    }
}
