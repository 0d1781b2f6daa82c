//! A transport to fake nodes in memory, for fast tests of the client's
//! decisions (placement, quorum, read repair, degraded puts, repair)
//! without processes, sockets or disks.
//!
//! Each fake node answers as a real one does for one logged-in user:
//!
//! - shards are checked against their id on put (`HashMismatch`), a put of
//!   a held shard writes nothing, and a damaged shard (see
//!   [`MemoryTransport::damage_shard`]) is found on read, quarantined and
//!   answered with `Corrupt`, as a node's verify-on-read does;
//! - index entries are versioned: a put below the stored version, or of
//!   other bytes at the same version, is a `Conflict`; the same bytes again
//!   are accepted;
//! - entries are listed by folder tag with their summaries, and each stored
//!   put takes the next change number of the node's change feed (one row
//!   per name: its latest change);
//! - a stopped node ([`MemoryTransport::stop`]) refuses connections, and
//!   is [down](Transport::is_down) until started again.
//!
//! Tests look inside the nodes (which shards and entries each holds) and
//! count the requests each received ([`MemoryTransport::requests`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use bytes::Bytes;
use cairn_core::Id;
use cairn_net::client::{ChangePage, Changed, ClientError, Has, IndexEntry, IndexPage};
use cairn_net::protocol::{
    Dropped, ErrorBody, ErrorCode, FolderTag, IndexName, LEGACY_FOLDER, NodeInfo,
};
use cairn_net::{NodeAddress, NodeId, Scheme};

use super::{NodeFailure, Op, Patience, Transport};

/// Fake nodes in memory; see the module docs.
#[derive(Debug)]
pub struct MemoryTransport {
    addresses: Vec<NodeAddress>,
    nodes: Vec<Mutex<FakeNode>>,
}

#[derive(Debug, Default)]
struct FakeNode {
    stopped: bool,
    /// Shard bytes by id (as stored: [`MemoryTransport::damage_shard`]
    /// makes them differ from the id).
    shards: HashMap<Id, Bytes>,
    /// The shards the user references.
    references: HashSet<Id>,
    index: BTreeMap<IndexName, Stored>,
    /// The change feed: change number → name.
    changes: BTreeMap<u64, IndexName>,
    /// The last change number given.
    last_change: u64,
    requests: HashMap<Op, usize>,
}

/// An index entry as a fake node keeps it.
#[derive(Debug, Clone)]
struct Stored {
    version: u64,
    data: Bytes,
    folder: FolderTag,
    summary_len: u32,
    change: u64,
}

impl Stored {
    fn summary(&self) -> Bytes {
        self.data.slice(..self.summary_len as usize)
    }
}

impl FakeNode {
    /// Stores an entry whatever the node held, as its latest change.
    fn store(
        &mut self,
        name: IndexName,
        version: u64,
        data: Bytes,
        folder: FolderTag,
        summary_len: u32,
    ) {
        if let Some(old) = self.index.get(&name) {
            self.changes.remove(&old.change);
        }
        self.last_change += 1;
        self.changes.insert(self.last_change, name);
        self.index.insert(
            name,
            Stored {
                version,
                data,
                folder,
                summary_len,
                change: self.last_change,
            },
        );
    }

    /// Removes an entry; its version.
    fn remove(&mut self, name: &IndexName) -> Option<u64> {
        let old = self.index.remove(name)?;
        self.changes.remove(&old.change);
        Some(old.version)
    }

    /// A put of `name` at `version` with `data`: refused below the stored
    /// version or with other bytes at it, a no-op for the same bytes.
    fn put(
        &mut self,
        name: IndexName,
        version: u64,
        data: Bytes,
        folder: FolderTag,
        summary_len: u32,
    ) -> Result<Option<u64>, ClientError> {
        let replaced = match self.index.get(&name) {
            Some(stored) if stored.version > version => {
                return Err(refused(
                    ErrorCode::Conflict,
                    format!("version {} is stored, newer than {version}", stored.version),
                ));
            }
            Some(stored) if stored.version == version => {
                if stored.data == data {
                    return Ok(Some(version));
                }
                return Err(refused(
                    ErrorCode::Conflict,
                    format!("other bytes are stored at version {version}"),
                ));
            }
            Some(stored) => Some(stored.version),
            None => None,
        };
        self.store(name, version, data, folder, summary_len);
        Ok(replaced)
    }
}

/// A fake node's feed id: fixed, as a node that is never wiped.
pub const MEMORY_FEED: u64 = 0x6361_6972_6e00_0001;

fn refused(code: ErrorCode, message: impl Into<String>) -> ClientError {
    ClientError::Node(ErrorBody::new(code, message))
}

impl MemoryTransport {
    /// `nodes` fake nodes, empty and running, with ids derived from their
    /// position (`memory://` addresses are not real: they only name them).
    pub fn new(nodes: usize) -> Self {
        let addresses = (0..nodes)
            .map(|i| NodeAddress {
                scheme: Scheme::Tcp,
                host: format!("memory-{i}"),
                port: 7000,
                node_id: Some(NodeId(Id::of(format!("cairn memory node {i}").as_bytes()))),
            })
            .collect();
        Self {
            addresses,
            nodes: (0..nodes).map(|_| Mutex::default()).collect(),
        }
    }

    fn node(&self, node: usize) -> std::sync::MutexGuard<'_, FakeNode> {
        self.nodes[node].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a request of kind `op` to `node`, then runs `f` on the node if
    /// it is running; a stopped node refuses the connection. Yields first,
    /// so that requests sent together interleave as they would on a network.
    async fn serve<R>(
        &self,
        node: usize,
        op: Op,
        f: impl FnOnce(&mut FakeNode) -> Result<R, ClientError>,
    ) -> Result<R, ClientError> {
        tokio::task::yield_now().await;
        let mut state = self.node(node);
        *state.requests.entry(op).or_default() += 1;
        if state.stopped {
            return Err(ClientError::Connect {
                address: self.addresses[node].to_string(),
                source: std::io::ErrorKind::ConnectionRefused.into(),
            });
        }
        f(&mut state)
    }

    /// Stops node `node`: it refuses every request until [`start`](Self::start)ed,
    /// and keeps what it holds.
    pub fn stop(&self, node: usize) {
        self.node(node).stopped = true;
    }

    /// Starts node `node` again.
    pub fn start(&self, node: usize) {
        self.node(node).stopped = false;
    }

    /// Requests of kind `op` node `node` received (a stopped node counts
    /// the ones it refused).
    pub fn requests(&self, node: usize, op: Op) -> usize {
        self.node(node).requests.get(&op).copied().unwrap_or(0)
    }

    /// Whether node `node` stores shard `id` (damaged or not).
    pub fn holds(&self, node: usize, id: &Id) -> bool {
        self.node(node).shards.contains_key(id)
    }

    /// The ids of the shards node `node` stores.
    pub fn shard_ids(&self, node: usize) -> Vec<Id> {
        let mut ids: Vec<Id> = self.node(node).shards.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Loses shard `id` on node `node`, as a wiped disk does.
    pub fn remove_shard(&self, node: usize, id: &Id) {
        let mut state = self.node(node);
        state.shards.remove(id);
        state.references.remove(id);
    }

    /// Flips a bit of shard `id` on node `node`'s disk: the node finds it
    /// on the next read, quarantines it and answers `Corrupt`. Returns
    /// whether the node held the shard.
    pub fn damage_shard(&self, node: usize, id: &Id) -> bool {
        let mut state = self.node(node);
        let Some(bytes) = state.shards.get_mut(id) else {
            return false;
        };
        let mut damaged = bytes.to_vec();
        if let Some(first) = damaged.first_mut() {
            *first ^= 1;
        } else {
            damaged.push(0);
        }
        *bytes = Bytes::from(damaged);
        true
    }

    /// Node `node`'s index entry `name`: its version and sealed bytes.
    pub fn index_entry(&self, node: usize, name: &IndexName) -> Option<(u64, Bytes)> {
        let state = self.node(node);
        state.index.get(name).map(|e| (e.version, e.data.clone()))
    }

    /// Node `node`'s folder tag and summary length for entry `name`.
    pub fn index_folder(&self, node: usize, name: &IndexName) -> Option<(FolderTag, u32)> {
        let state = self.node(node);
        state.index.get(name).map(|e| (e.folder, e.summary_len))
    }

    /// How many index entries node `node` holds (tombstones included).
    pub fn index_len(&self, node: usize) -> usize {
        self.node(node).index.len()
    }

    /// Sets node `node`'s index entry `name`, whatever it held, as an
    /// entry of a client before folders (in no folder, all summary): to
    /// make a stale or a diverging node, or an old one.
    pub fn set_index_entry(&self, node: usize, name: IndexName, version: u64, data: Bytes) {
        let len = data.len() as u32;
        self.node(node)
            .store(name, version, data, LEGACY_FOLDER, len);
    }

    /// Forgets node `node`'s index entry `name`.
    pub fn remove_index_entry(&self, node: usize, name: &IndexName) {
        self.node(node).remove(name);
    }
}

impl Transport for MemoryTransport {
    fn addresses(&self) -> &[NodeAddress] {
        &self.addresses
    }

    fn node_ids(&self) -> Vec<NodeId> {
        self.addresses
            .iter()
            .map(|a| a.node_id.expect("memory nodes are pinned"))
            .collect()
    }

    fn is_down(&self, node: usize) -> bool {
        self.node(node).stopped
    }

    fn down(&self) -> Vec<NodeFailure> {
        (0..self.nodes.len())
            .filter(|&i| self.is_down(i))
            .map(|i| NodeFailure::down(i, &self.addresses[i], "the node is stopped"))
            .collect()
    }

    async fn login(&self, node: usize) -> Result<(), ClientError> {
        self.serve(node, Op::Login, |_| Ok(())).await
    }

    async fn info(&self, node: usize) -> Result<NodeInfo, ClientError> {
        let node_id = self.addresses[node].node_id.expect("pinned");
        self.serve(node, Op::Info, |state| {
            let used = state.shards.values().map(|b| b.len() as u64).sum();
            Ok(NodeInfo {
                node_id,
                software: env!("CARGO_PKG_VERSION").to_owned(),
                protocol: cairn_net::protocol::VERSIONS[0],
                capacity_bytes: 1 << 40,
                free_bytes: (1 << 40) - used,
                used_bytes: used,
                public_read: true,
                max_shard_len: cairn_net::protocol::Limits::default().max_shard_len as u64,
            })
        })
        .await
    }

    async fn put_shard(&self, node: usize, id: Id, bytes: Bytes) -> Result<bool, ClientError> {
        self.serve(node, Op::PutShard, |state| {
            let actual = Id::of(&bytes);
            if actual != id {
                return Err(refused(
                    ErrorCode::HashMismatch,
                    format!("the bytes hash to {actual}, not {id}"),
                ));
            }
            state.references.insert(id);
            let written = match state.shards.get(&id) {
                Some(stored) if Id::of(stored) == id => false,
                _ => {
                    state.shards.insert(id, bytes);
                    true
                }
            };
            Ok(written)
        })
        .await
    }

    async fn get_shard(&self, node: usize, id: Id, _: Patience) -> Result<Bytes, ClientError> {
        self.serve(node, Op::GetShard, |state| {
            let Some(bytes) = state.shards.get(&id).cloned() else {
                return Err(refused(ErrorCode::NotFound, format!("no shard {id}")));
            };
            if Id::of(&bytes) != id {
                // Verify on read: quarantined, never served.
                state.shards.remove(&id);
                return Err(refused(
                    ErrorCode::Corrupt,
                    format!("shard {id} is damaged on disk and was quarantined"),
                ));
            }
            Ok(bytes)
        })
        .await
    }

    async fn has_shards(&self, node: usize, ids: &[Id]) -> Result<Has, ClientError> {
        self.serve(node, Op::HasShards, |state| {
            Ok(Has {
                stored: ids.iter().map(|id| state.shards.contains_key(id)).collect(),
                mine: ids
                    .iter()
                    .map(|id| state.shards.contains_key(id) && state.references.contains(id))
                    .collect(),
            })
        })
        .await
    }

    async fn drop_shards(&self, node: usize, ids: &[Id]) -> Result<Vec<Dropped>, ClientError> {
        self.serve(node, Op::DropShards, |state| {
            Ok(ids
                .iter()
                .map(|id| {
                    if state.references.remove(id) {
                        // One user: the last reference goes, and the shard.
                        state.shards.remove(id);
                        Dropped::Deleted
                    } else {
                        Dropped::NotReferenced
                    }
                })
                .collect())
        })
        .await
    }

    async fn put_index(
        &self,
        node: usize,
        name: IndexName,
        version: u64,
        data: Bytes,
    ) -> Result<Option<u64>, ClientError> {
        self.serve(node, Op::PutIndex, |state| {
            let len = data.len() as u32;
            state.put(name, version, data, LEGACY_FOLDER, len)
        })
        .await
    }

    async fn put_entry(
        &self,
        node: usize,
        name: IndexName,
        version: u64,
        folder: FolderTag,
        summary_len: u32,
        data: Bytes,
    ) -> Result<Option<u64>, ClientError> {
        self.serve(node, Op::PutEntry, |state| {
            if summary_len as usize > data.len() {
                return Err(refused(
                    ErrorCode::BadRequest,
                    "the summary is longer than the entry",
                ));
            }
            state.put(name, version, data, folder, summary_len)
        })
        .await
    }

    async fn list_folder(
        &self,
        node: usize,
        folder: FolderTag,
        after: Option<IndexName>,
        limit: u32,
    ) -> Result<IndexPage, ClientError> {
        self.serve(node, Op::ListFolder, |state| {
            let mut following = state
                .index
                .iter()
                .filter(|(name, e)| e.folder == folder && after.is_none_or(|a| **name > a));
            let entries: Vec<IndexEntry> = following
                .by_ref()
                .take(limit as usize)
                .map(|(name, e)| IndexEntry {
                    name: *name,
                    version: e.version,
                    data: e.summary(),
                })
                .collect();
            let more = following.next().is_some();
            Ok(IndexPage { entries, more })
        })
        .await
    }

    async fn changes(
        &self,
        node: usize,
        since: u64,
        folder: Option<FolderTag>,
        limit: u32,
    ) -> Result<ChangePage, ClientError> {
        self.serve(node, Op::Changes, |state| {
            let mut entries = Vec::new();
            let mut next = since;
            let mut rows = state.changes.range(since.saturating_add(1)..);
            for (&seq, name) in rows.by_ref() {
                next = seq;
                let e = &state.index[name];
                if folder.is_none_or(|f| f == e.folder) {
                    entries.push(Changed {
                        name: *name,
                        version: e.version,
                        seq,
                        summary: e.summary(),
                    });
                    if entries.len() >= limit as usize {
                        break;
                    }
                }
            }
            let more = rows.next().is_some();
            Ok(ChangePage {
                feed: MEMORY_FEED,
                entries,
                next,
                more,
            })
        })
        .await
    }

    async fn get_index(
        &self,
        node: usize,
        name: IndexName,
        _: Patience,
    ) -> Result<Option<IndexEntry>, ClientError> {
        self.serve(node, Op::GetIndex, |state| {
            Ok(state.index.get(&name).map(|e| IndexEntry {
                name,
                version: e.version,
                data: e.data.clone(),
            }))
        })
        .await
    }

    async fn list_index(
        &self,
        node: usize,
        after: Option<IndexName>,
        limit: u32,
    ) -> Result<IndexPage, ClientError> {
        self.serve(node, Op::ListIndex, |state| {
            let mut following = state
                .index
                .iter()
                .filter(|(name, _)| after.is_none_or(|a| **name > a));
            let entries: Vec<IndexEntry> = following
                .by_ref()
                .take(limit as usize)
                .map(|(name, e)| IndexEntry {
                    name: *name,
                    version: e.version,
                    data: e.data.clone(),
                })
                .collect();
            let more = following.next().is_some();
            Ok(IndexPage { entries, more })
        })
        .await
    }

    async fn delete_index(&self, node: usize, name: IndexName) -> Result<Option<u64>, ClientError> {
        self.serve(node, Op::DeleteIndex, |state| Ok(state.remove(&name)))
            .await
    }

    async fn close(&self) {}
}
