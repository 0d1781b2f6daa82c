//! The index layer: the user's replicated directory of names.
//!
//! Every node keeps a copy of the user's index entries (their format is in
//! [`entry`]: sealed, under names that hide the paths). This layer is the
//! only part of the client that reads or writes them:
//!
//! - **Lookup** asks every node at once and returns once a read quorum
//!   answered (and the others had [`QUORUM_GRACE`] more): any read quorum
//!   meets every write quorum (R + W > N), so it sees the newest entry a
//!   put acknowledged. Entries merge by version, then writer ([`newest`]);
//!   a removal is a tombstone like any other entry and wins the same way.
//! - **Read repair**: the nodes that answered with an older entry, or none,
//!   are sent the newest one, so a node that missed writes while it was
//!   down catches up the first time the name is read after it returns.
//! - **Writes** go to every node with a version above any seen and succeed
//!   on a majority of the configured nodes; a node holding a newer entry
//!   refuses (`Conflict`), and the writer reads again and writes above it.
//! - **Listing** merges every node's entries the same way, with read repair.
//! - **Copies**: which nodes hold a given version (an inline file's only
//!   copies are its entries), and sending it to the nodes that lack it.
//!
//! Above it, the file paths (`store`, `fetch`, `directory`, `repair`) say
//! what an entry holds; below it, the [`Transport`] carries the requests.

mod clock;
pub mod entry;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use cairn_core::keys::{IndexKey, IndexNameKey};
use cairn_net::client::ClientError;
use cairn_net::protocol::{ErrorCode, IndexName};

pub use self::clock::{Clock, Version};
pub use self::entry::{
    Content, ENTRY, Entry, EntryKind, FileEntry, INLINE_ENTRY, IndexEntryError, InlineBytes,
    MAX_INLINE_LEN, MAX_SEALED_ENTRY_LEN, SEALED_ENTRY, entry_name, newest, newest_of,
};
pub use crate::path::{MAX_PATH_LEN, PathError, RemotePath};
use crate::transport::{NodeFailure, Patience, Transport};

/// How long a quorum operation waits for the remaining nodes once enough
/// have answered.
pub const QUORUM_GRACE: Duration = Duration::from_millis(250);

/// Entries a listing asks a node for at once.
const LIST_PAGE: u32 = 1000;

/// No node answered a read of the index.
#[derive(Debug, Clone)]
pub(crate) struct NoNode {
    /// Every node, with why it failed.
    pub failed: Vec<NodeFailure>,
}

/// Why an entry could not be written.
#[derive(Debug)]
pub(crate) enum WriteError {
    /// Too few nodes stored it.
    NotStored {
        /// Nodes that stored it.
        acknowledged: usize,
        /// Configured nodes.
        total: usize,
        /// A majority.
        needed: usize,
        /// The nodes that failed or refused, with why.
        failed: Vec<NodeFailure>,
    },
    /// The entry could not be sealed.
    Seal(IndexEntryError),
}

/// One name's newest entry in a listing, and how many nodes hold it now
/// (those that held it plus those read repair brought up to date).
#[derive(Debug)]
pub(crate) struct Listed {
    /// The newest entry.
    pub entry: Entry,
    /// Nodes holding it.
    pub copies: usize,
}

/// Which nodes hold one version of an entry.
#[derive(Debug)]
pub(crate) struct Copies {
    /// Per node, 1 if it holds the version and it opens, else 0.
    pub per_node: Vec<usize>,
    /// Copies that do not open.
    pub corrupt: usize,
    /// The sealed bytes of one good copy.
    pub sealed: Option<Bytes>,
}

/// What [`Index::repair_copies`] found and did.
#[derive(Debug)]
pub(crate) struct CopyRepair {
    /// The copies before.
    pub before: Copies,
    /// Copies written.
    pub written: usize,
    /// Bytes of those copies.
    pub bytes: u64,
    /// The nodes that could not take a copy.
    pub failed: Vec<NodeFailure>,
    /// Per node after the repair, as in [`Copies::per_node`].
    pub after: Vec<usize>,
}

/// The index layer over transport `T`; see the module docs.
#[derive(Debug)]
pub(crate) struct Index<T> {
    transport: Arc<T>,
    name_key: IndexNameKey,
    seal_key: IndexKey,
    /// Breaks ties between entries of equal version.
    writer: [u8; 16],
    clock: Mutex<Clock>,
}

impl<T: Transport> Index<T> {
    /// The index of the user whose keys are `name_key` and `seal_key`,
    /// writing as `writer`.
    pub fn new(
        transport: Arc<T>,
        name_key: IndexNameKey,
        seal_key: IndexKey,
        writer: [u8; 16],
    ) -> Self {
        Self {
            transport,
            name_key,
            seal_key,
            writer,
            clock: Mutex::new(Clock::new()),
        }
    }

    /// Number of nodes.
    pub fn nodes(&self) -> usize {
        self.transport.addresses().len()
    }

    /// Nodes that must acknowledge a write: a majority.
    pub fn write_quorum(&self) -> usize {
        self.nodes() / 2 + 1
    }

    /// Nodes whose answers to a read are enough: any this many include one
    /// of every write quorum (R + W > N), so together they hold the newest
    /// entry a write quorum acknowledged.
    pub fn read_quorum(&self) -> usize {
        self.nodes() - self.write_quorum() + 1
    }

    /// The name the entry of `remote` is stored under.
    pub fn name(&self, remote: &RemotePath) -> IndexName {
        entry_name(&self.name_key, remote)
    }

    fn open(&self, sealed: &[u8], name: &IndexName) -> Result<Entry, IndexEntryError> {
        Entry::open(sealed, &self.seal_key, name, &self.name_key)
    }

    /// The newest entry named `remote` among the nodes of a read quorum,
    /// tombstones included, repairing the nodes that answered with an older
    /// one or none.
    ///
    /// # Errors
    /// [`NoNode`] if no node answered.
    pub async fn lookup(&self, remote: &RemotePath) -> Result<Option<Entry>, NoNode> {
        let name = self.name(remote);
        let replies = self
            .quorum(self.read_quorum(), |node| {
                // A node another request is still connecting to is skipped:
                // the read quorum does not need it.
                self.transport.get_index(node, name, Patience::Hurry)
            })
            .await;
        let mut newest: Option<(Entry, Bytes)> = None;
        let mut answered: Vec<(usize, Option<u64>)> = Vec::new();
        let mut failed = Vec::new();
        for (node, reply) in replies.into_iter().enumerate() {
            match reply {
                Ok(None) => answered.push((node, None)),
                Ok(Some(stored)) => {
                    answered.push((node, Some(stored.version)));
                    match self.open(&stored.data, &name) {
                        Ok(entry) => {
                            newest = Some(match newest.take() {
                                Some((best, data)) if !newer(&entry, &best) => (best, data),
                                _ => (entry, stored.data),
                            });
                        }
                        Err(e) => tracing::warn!(
                            node = %self.transport.addresses()[node],
                            "an index entry for {remote} does not open: {e}"
                        ),
                    }
                }
                Err(e) => failed.push(NodeFailure::of(&*self.transport, node, &e)),
            }
        }
        if answered.is_empty() {
            return Err(NoNode { failed });
        }
        if let Some((entry, data)) = &newest {
            self.read_repair(&name, entry.version.0, data, &answered)
                .await;
        }
        Ok(newest.map(|(entry, _)| entry))
    }

    /// Sends the newest entry to the nodes that answered with an older one
    /// or none (best effort: a failure here is retried at the next read).
    /// Returns how many it brought up to date.
    async fn read_repair(
        &self,
        name: &IndexName,
        version: u64,
        data: &Bytes,
        answered: &[(usize, Option<u64>)],
    ) -> usize {
        let stale = answered
            .iter()
            .filter(|(_, v)| v.is_none_or(|v| v < version))
            .map(|(node, _)| *node);
        let mut repaired = 0;
        for (node, result) in self.put_copies(stale, name, version, data).await {
            match result {
                Ok(()) => repaired += 1,
                Err(e) => tracing::debug!(
                    node = %self.transport.addresses()[node],
                    "read repair failed: {e}"
                ),
            }
        }
        repaired
    }

    /// Stores the sealed entry `data` as version `version` of `name` on each
    /// of `nodes`, all at once; each node's outcome.
    async fn put_copies(
        &self,
        nodes: impl Iterator<Item = usize>,
        name: &IndexName,
        version: u64,
        data: &Bytes,
    ) -> Vec<(usize, Result<(), ClientError>)> {
        futures::future::join_all(nodes.map(|node| async move {
            let result = self
                .transport
                .put_index(node, *name, version, data.clone())
                .await;
            (node, result.map(drop))
        }))
        .await
    }

    /// Writes an entry of kind `kind` for `remote` on every node, with a
    /// version above any seen; succeeds on a majority of the configured
    /// nodes. Returns how many nodes stored it.
    ///
    /// A node holding a newer entry refuses the write (`Conflict`: a node
    /// the first read did not hear from, or another writer in between).
    /// Any refusal sends the writer back to read the newest entry and write
    /// above it, even when a majority accepted: readers take the newest
    /// entry any node holds, so a put that lands below one is lost to them.
    ///
    /// # Errors
    /// [`WriteError::NotStored`] if fewer than a majority stored it (or
    /// four rounds kept meeting newer entries).
    pub async fn write(&self, remote: &RemotePath, kind: EntryKind) -> Result<usize, WriteError> {
        let name = self.name(remote);
        let total = self.nodes();
        let needed = self.write_quorum();
        let mut floor = match self.lookup(remote).await {
            Ok(Some(entry)) => entry.version,
            _ => Version::ZERO,
        };
        let mut failed = Vec::new();
        for _attempt in 0..4 {
            let version = self
                .clock
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .next(Clock::now_unix_ms(), floor);
            let entry = Entry {
                path: remote.clone(),
                version,
                writer: self.writer,
                kind: kind.clone(),
            };
            let sealed = Bytes::from(entry.seal(&self.seal_key).map_err(WriteError::Seal)?);
            let results = self
                .quorum(needed, |node| {
                    self.transport
                        .put_index(node, name, version.0, sealed.clone())
                })
                .await;
            let mut acknowledged = 0;
            let mut conflict = false;
            failed.clear();
            for (node, result) in results.into_iter().enumerate() {
                match result {
                    Ok(_) => acknowledged += 1,
                    Err(e) if e.code() == Some(ErrorCode::Conflict) => {
                        conflict = true;
                        let mut failure = NodeFailure::of(&*self.transport, node, &e);
                        failure.message = "a newer entry was written meanwhile".into();
                        failed.push(failure);
                    }
                    Err(e) => failed.push(NodeFailure::of(&*self.transport, node, &e)),
                }
            }
            if acknowledged >= needed && !conflict {
                return Ok(acknowledged);
            }
            if !conflict {
                return Err(WriteError::NotStored {
                    acknowledged,
                    total,
                    needed,
                    failed,
                });
            }
            // Another writer got there first on some node: go above it.
            floor = match self.lookup(remote).await {
                Ok(Some(entry)) => entry.version.max(version),
                _ => version,
            };
        }
        Err(WriteError::NotStored {
            acknowledged: 0,
            total,
            needed,
            failed,
        })
    }

    /// Every name's newest entry (tombstones included) among the nodes of
    /// a read quorum, with read repair of the nodes that answered without
    /// it, in no particular order.
    ///
    /// # Errors
    /// [`NoNode`] if no node answered.
    pub async fn list(&self) -> Result<Vec<Listed>, NoNode> {
        let pages = self
            .quorum(self.read_quorum(), |node| self.list_node(node))
            .await;
        // name → newest entry, and what each node has for it.
        let mut newest: HashMap<IndexName, (Entry, Bytes)> = HashMap::new();
        let mut held: HashMap<IndexName, Vec<(usize, u64)>> = HashMap::new();
        let mut answered = Vec::new();
        let mut failed = Vec::new();
        for (node, page) in pages.into_iter().enumerate() {
            let entries = match page {
                Ok(entries) => entries,
                Err(e) => {
                    failed.push(NodeFailure::of(&*self.transport, node, &e));
                    continue;
                }
            };
            answered.push(node);
            for stored in entries {
                held.entry(stored.name)
                    .or_default()
                    .push((node, stored.version));
                let Ok(entry) = self.open(&stored.data, &stored.name) else {
                    tracing::warn!(
                        node = %self.transport.addresses()[node],
                        "skipping an index entry that does not open"
                    );
                    continue;
                };
                let replace = newest
                    .get(&stored.name)
                    .is_none_or(|(best, _)| newer(&entry, best));
                if replace {
                    newest.insert(stored.name, (entry, stored.data));
                }
            }
        }
        if answered.is_empty() {
            return Err(NoNode { failed });
        }
        // Read repair: nodes that answered without the newest version. The
        // copies of each entry (which are an inline file's only copies)
        // are those that held it plus those repaired.
        let mut listed = Vec::with_capacity(newest.len());
        for (name, (entry, data)) in newest {
            let have: Vec<(usize, Option<u64>)> = answered
                .iter()
                .map(|&node| {
                    let version = held
                        .get(&name)
                        .and_then(|v| v.iter().find(|(n, _)| *n == node).map(|(_, v)| *v));
                    (node, version)
                })
                .collect();
            let mut copies = have
                .iter()
                .filter(|(_, v)| *v == Some(entry.version.0))
                .count();
            if have
                .iter()
                .any(|(_, v)| v.is_none_or(|v| v < entry.version.0))
            {
                copies += self.read_repair(&name, entry.version.0, &data, &have).await;
            }
            listed.push(Listed { entry, copies });
        }
        Ok(listed)
    }

    /// All of one node's entries for this user.
    async fn list_node(
        &self,
        node: usize,
    ) -> Result<Vec<cairn_net::client::IndexEntry>, ClientError> {
        let mut entries = Vec::new();
        let mut after = None;
        loop {
            let page = self.transport.list_index(node, after, LIST_PAGE).await?;
            after = page.entries.last().map(|e| e.name);
            let more = page.more && after.is_some();
            entries.extend(page.entries);
            if !more {
                return Ok(entries);
            }
        }
    }

    /// Reads the entry of `remote` from every node: which hold version
    /// `version` (and it opens), the copies that do not open, and the
    /// sealed bytes of one good copy.
    pub async fn copies(&self, remote: &RemotePath, version: u64) -> Copies {
        let name = self.name(remote);
        let replies = futures::future::join_all(
            (0..self.nodes()).map(|node| self.transport.get_index(node, name, Patience::Wait)),
        )
        .await;
        let mut copies = Copies {
            per_node: vec![0; self.nodes()],
            corrupt: 0,
            sealed: None,
        };
        for (node, reply) in replies.into_iter().enumerate() {
            let Ok(Some(stored)) = reply else { continue };
            match self.open(&stored.data, &name) {
                Ok(entry) if entry.version.0 == version => {
                    copies.per_node[node] = 1;
                    copies.sealed = Some(stored.data);
                }
                Ok(_) => {}
                Err(_) => copies.corrupt += 1,
            }
        }
        copies
    }

    /// Sends version `version` of the entry of `remote` to every node that
    /// lacks it (a lookup already sent it to the stale nodes it heard from;
    /// this catches the rest).
    pub async fn repair_copies(&self, remote: &RemotePath, version: u64) -> CopyRepair {
        let before = self.copies(remote, version).await;
        let mut written = 0;
        let mut bytes = 0;
        let mut failed = Vec::new();
        if let Some(sealed) = &before.sealed {
            let name = self.name(remote);
            let lacking = (0..self.nodes()).filter(|&n| before.per_node[n] == 0);
            for (node, result) in self.put_copies(lacking, &name, version, sealed).await {
                match result {
                    Ok(()) => {
                        written += 1;
                        bytes += sealed.len() as u64;
                    }
                    Err(e) => failed.push(NodeFailure::of(&*self.transport, node, &e)),
                }
            }
        }
        let after = self.copies(remote, version).await.per_node;
        CopyRepair {
            before,
            written,
            bytes,
            failed,
            after,
        }
    }

    /// Runs `op` on every node at once and returns each node's result, in
    /// node order, as soon as every node answered, or `needed` succeeded and
    /// the others had [`QUORUM_GRACE`] more to answer; nodes cut short that
    /// way report a timeout.
    ///
    /// With `needed` a read or write quorum, a dead node (whose connection
    /// attempt can take the whole connect timeout, as over QUIC, where
    /// nothing refuses the connection) does not hold up reads and writes of
    /// the index once enough nodes have answered.
    async fn quorum<R, F, Fut>(&self, needed: usize, op: F) -> Vec<Result<R, ClientError>>
    where
        F: Fn(usize) -> Fut,
        Fut: Future<Output = Result<R, ClientError>>,
    {
        use futures::stream::{FuturesUnordered, StreamExt};
        let nodes = self.nodes();
        let mut pending: FuturesUnordered<_> = (0..nodes)
            .map(|node| {
                let future = op(node);
                async move { (node, future.await) }
            })
            .collect();
        let mut results: Vec<Option<Result<R, ClientError>>> = (0..nodes).map(|_| None).collect();
        let mut succeeded = 0;
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            let next = match deadline {
                Some(deadline) => match tokio::time::timeout_at(deadline, pending.next()).await {
                    Ok(next) => next,
                    Err(_) => break,
                },
                None => pending.next().await,
            };
            let Some((node, result)) = next else { break };
            if result.is_ok() {
                succeeded += 1;
            }
            results[node] = Some(result);
            if succeeded >= needed && deadline.is_none() {
                deadline = Some(tokio::time::Instant::now() + QUORUM_GRACE);
            }
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(ClientError::Timeout {
                        what: "an answer after a quorum had answered".into(),
                        after: QUORUM_GRACE,
                    })
                })
            })
            .collect()
    }
}

/// Whether `a` is newer than `b` (the index's recency order).
fn newer(a: &Entry, b: &Entry) -> bool {
    a.cmp_recency(b) == std::cmp::Ordering::Greater
}

#[cfg(test)]
mod tests;
