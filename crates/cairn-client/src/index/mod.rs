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
//! - **Folder listings** ask each node for one folder's entries by its
//!   [`folder_tag`], page by page in name order, and merge the pages as
//!   they arrive: a name is settled once every node's page has passed it,
//!   so memory holds a page per node, not the folder. Listings carry
//!   summaries (an inline file's bytes stay on the nodes). Entries written
//!   before folders (in no folder) are read from the legacy folder and
//!   sorted into their folders here, until `repair` rewrites them.
//! - **Folders** are entries of their own ([`EntryKind::Folder`], under
//!   [`folder_entry_name`]): a file's write first makes sure every folder
//!   above it has one, once per folder and process.
//! - **The change feed**: each node numbers the changes to its entries;
//!   [`ChangeCursor`] remembers, per node, the last number seen, and
//!   [`Index::changes`] returns the newest entry of every name changed since.
//! - **Listing** everything merges every node's entries the same way, with
//!   read repair (for `repair`, which rewrites old entries too).
//! - **Copies**: which nodes hold a given version (an inline file's only
//!   copies are its entries), and sending it to the nodes that lack it.
//!
//! Above it, the file paths (`store`, `fetch`, `directory`, `repair`) say
//! what an entry holds; below it, the [`Transport`] carries the requests.

mod clock;
pub mod entry;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use cairn_core::keys::{IndexKey, IndexNameKey};
use cairn_net::client::ClientError;
use cairn_net::protocol::{ErrorCode, FolderTag, IndexName, LEGACY_FOLDER};
use serde::{Deserialize, Serialize};

pub use self::clock::{Clock, Version};
pub use self::entry::{
    Content, ENTRY, Entry, EntryKind, FileEntry, INLINE_ENTRY, IndexEntryError, InlineBytes,
    MAX_INLINE_LEN, MAX_SEALED_ENTRY_LEN, MAX_SUMMARY_LEN, SEALED_BODY, SEALED_ENTRY, SPLIT_ENTRY,
    SUMMARY_ENTRY, SealedEntry, entry_name, folder_entry_name, folder_tag, newest, newest_of,
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

/// Entries a change-feed request asks a node for at once.
const CHANGES_PAGE: u32 = 1000;

/// One name's newest entry in a listing, and how many nodes hold it now
/// (those that held it plus those read repair brought up to date).
#[derive(Debug)]
pub(crate) struct Listed {
    /// The newest entry.
    pub entry: Entry,
    /// Nodes holding it.
    pub copies: usize,
    /// Whether it was written before folders (sealed whole, in no folder):
    /// `repair` rewrites it.
    pub legacy: bool,
}

/// Where a reader of the change feed is: per node, the feed it read and
/// the last change number seen there. Serializable, so that a folder sync
/// keeps it between runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeCursor {
    /// Per node id (as text): (feed id, last change number seen).
    pub nodes: BTreeMap<String, (u64, u64)>,
}

/// What [`Index::changes`] found.
#[derive(Debug)]
pub(crate) struct ChangeBatch {
    /// The newest entry of each name changed since the cursor (tombstones
    /// included), in no particular order; summaries, so an inline file is
    /// [`Content::InlineUnread`].
    pub entries: Vec<Entry>,
    /// Where to start next time.
    pub cursor: ChangeCursor,
    /// Whether some node has more changes than one call returns.
    pub more: bool,
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
    /// Folders known to have a live entry, each made sure of once.
    folders: Mutex<HashMap<RemotePath, Arc<tokio::sync::OnceCell<()>>>>,
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
            folders: Mutex::new(HashMap::new()),
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

    /// The name the entry of file `remote` is stored under.
    pub fn name(&self, remote: &RemotePath) -> IndexName {
        entry_name(&self.name_key, remote)
    }

    /// The name an entry of kind `kind` for `remote` is stored under.
    fn name_of(&self, remote: &RemotePath, kind: &EntryKind) -> IndexName {
        if kind.is_folder() {
            folder_entry_name(&self.name_key, remote)
        } else {
            entry_name(&self.name_key, remote)
        }
    }

    /// The tag of folder `folder` (`None`: the root).
    pub fn folder_tag(&self, folder: Option<&RemotePath>) -> FolderTag {
        folder_tag(&self.name_key, folder)
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
        self.lookup_name(remote, self.name(remote)).await
    }

    /// The newest entry of folder `remote`, as [`lookup`](Self::lookup).
    pub async fn lookup_folder(&self, remote: &RemotePath) -> Result<Option<Entry>, NoNode> {
        self.lookup_name(remote, folder_entry_name(&self.name_key, remote))
            .await
    }

    /// The newest entry stored under `name` (of `remote`, for messages).
    async fn lookup_name(
        &self,
        remote: &RemotePath,
        name: IndexName,
    ) -> Result<Option<Entry>, NoNode> {
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
            self.read_repair(&name, entry, data, &answered).await;
        }
        Ok(newest.map(|(entry, _)| entry))
    }

    /// Sends the newest entry to the nodes that answered with an older one
    /// or none (best effort: a failure here is retried at the next read).
    /// Returns how many it brought up to date.
    async fn read_repair(
        &self,
        name: &IndexName,
        entry: &Entry,
        data: &Bytes,
        answered: &[(usize, Option<u64>)],
    ) -> usize {
        let version = entry.version.0;
        let stale = answered
            .iter()
            .filter(|(_, v)| v.is_none_or(|v| v < version))
            .map(|(node, _)| *node);
        let mut repaired = 0;
        let folder = entry.folder_tag(&self.name_key);
        for (node, result) in self.put_copies(stale, name, version, folder, data).await {
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
    /// of `nodes`, all at once; each node's outcome. A split entry goes in
    /// `folder` with its summary; one sealed whole (by a cairn before
    /// folders) is copied as it was written, in no folder.
    async fn put_copies(
        &self,
        nodes: impl Iterator<Item = usize>,
        name: &IndexName,
        version: u64,
        folder: FolderTag,
        data: &Bytes,
    ) -> Vec<(usize, Result<(), ClientError>)> {
        let split = data.starts_with(&SPLIT_ENTRY.magic);
        let summary_len = entry::summary_len(data).unwrap_or(data.len() as u32);
        futures::future::join_all(nodes.map(|node| async move {
            let result = if split {
                self.transport
                    .put_entry(node, *name, version, folder, summary_len, data.clone())
                    .await
            } else {
                self.transport
                    .put_index(node, *name, version, data.clone())
                    .await
            };
            (node, result.map(drop))
        }))
        .await
    }

    /// Writes an entry of kind `kind` for `remote` on every node, with a
    /// version above any seen; succeeds on a majority of the configured
    /// nodes. Returns how many nodes stored it.
    ///
    /// The first attempt takes its version from the clock without reading
    /// the entry first. A node holding a newer entry refuses the write
    /// (`Conflict`: another writer whose clock is ahead, or who wrote in
    /// between). Any refusal sends the writer back to read the newest entry and write
    /// above it, even when a majority accepted: readers take the newest
    /// entry any node holds, so a put that lands below one is lost to them.
    ///
    /// # Errors
    /// [`WriteError::NotStored`] if fewer than a majority stored it (or
    /// four rounds kept meeting newer entries).
    pub async fn write(&self, remote: &RemotePath, kind: EntryKind) -> Result<usize, WriteError> {
        if matches!(kind, EntryKind::File(_) | EntryKind::Folder)
            && let Some(parent) = remote.parent()
        {
            Box::pin(self.ensure_folder(&parent)).await?;
        }
        self.write_entry(remote, kind).await
    }

    /// Makes sure folder `folder` and every folder above it have a live
    /// entry: once per folder and process (concurrent callers wait for the
    /// first), by looking it up and writing it if it is missing or removed.
    pub async fn ensure_folder(&self, folder: &RemotePath) -> Result<(), WriteError> {
        let once = self
            .folders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(folder.clone())
            .or_default()
            .clone();
        once.get_or_try_init(|| async {
            let live = matches!(
                self.lookup_folder(folder).await,
                Ok(Some(Entry {
                    kind: EntryKind::Folder,
                    ..
                }))
            );
            if !live {
                // Its own parents first, by the same path.
                self.write(folder, EntryKind::Folder).await?;
            }
            Ok(())
        })
        .await
        .copied()
    }

    /// Writes the entry, as [`write`](Self::write), without the folders.
    async fn write_entry(&self, remote: &RemotePath, kind: EntryKind) -> Result<usize, WriteError> {
        let name = self.name_of(remote, &kind);
        let total = self.nodes();
        let needed = self.write_quorum();
        // No read first: the clock's version is above any entry this
        // client wrote, and above any other is the common case (a new
        // name, or one written a while ago). When it is not, a node that
        // holds the newer entry refuses, and one does among any majority
        // that acknowledges (a majority stored the newer one too): the
        // loop below then reads it and goes above it. A small file's put
        // costs one round trip instead of two.
        let mut floor = Version::ZERO;
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
            let folder = entry.folder_tag(&self.name_key);
            let sealed = entry.seal(&self.seal_key).map_err(WriteError::Seal)?;
            let summary_len = sealed.summary_len;
            let data = Bytes::from(sealed.data);
            let results = self
                .quorum(needed, |node| {
                    self.transport.put_entry(
                        node,
                        name,
                        version.0,
                        folder,
                        summary_len,
                        data.clone(),
                    )
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
            let again = if kind.is_folder() {
                self.lookup_folder(remote).await
            } else {
                self.lookup(remote).await
            };
            floor = match again {
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
                copies += self.read_repair(&name, &entry, &data, &have).await;
            }
            let legacy = !data.starts_with(&SPLIT_ENTRY.magic);
            listed.push(Listed {
                entry,
                copies,
                legacy,
            });
        }
        Ok(listed)
    }

    /// A listing of folder `folder` (`None`: the root): its entries (files,
    /// folders and tombstones of both), page by page in name order; see
    /// [`FolderListing`]. Entries written before folders are found too.
    pub fn list_folder(&self, folder: Option<&RemotePath>) -> FolderListing<'_, T> {
        FolderListing::new(self, folder.cloned())
    }

    /// The newest entry of every name changed on any node since `cursor`
    /// (optionally only in folder `folder`, as `Some(None)` for the root),
    /// with the cursor to start from next time. A node that answers with
    /// another feed than the cursor's (it was wiped or replaced) is read
    /// from its start. Nodes that fail keep their place.
    ///
    /// # Errors
    /// [`NoNode`] if no node answered.
    pub async fn changes(
        &self,
        cursor: &ChangeCursor,
        folder: Option<Option<&RemotePath>>,
    ) -> Result<ChangeBatch, NoNode> {
        let tag = folder.map(|f| self.folder_tag(f));
        let ids: Vec<String> = self
            .transport
            .addresses()
            .iter()
            .map(|a| a.node_id.map_or_else(|| a.to_string(), |id| id.to_string()))
            .collect();
        let pages = futures::future::join_all((0..self.nodes()).map(|node| {
            let seen = cursor.nodes.get(&ids[node]).copied();
            async move {
                let since = seen.map_or(0, |(_, seq)| seq);
                let page = self
                    .transport
                    .changes(node, since, tag, CHANGES_PAGE)
                    .await?;
                match seen {
                    Some((feed, _)) if feed != page.feed && since != 0 => {
                        self.transport.changes(node, 0, tag, CHANGES_PAGE).await
                    }
                    _ => Ok(page),
                }
            }
        }))
        .await;
        let mut next = cursor.clone();
        let mut newest: HashMap<IndexName, Entry> = HashMap::new();
        let mut failed = Vec::new();
        let mut answered = 0;
        let mut more = false;
        for (node, page) in pages.into_iter().enumerate() {
            let page = match page {
                Ok(page) => page,
                Err(e) => {
                    failed.push(NodeFailure::of(&*self.transport, node, &e));
                    continue;
                }
            };
            answered += 1;
            more |= page.more;
            next.nodes.insert(ids[node].clone(), (page.feed, page.next));
            for change in page.entries {
                let Ok(entry) = self.open(&change.summary, &change.name) else {
                    tracing::warn!(
                        node = %self.transport.addresses()[node],
                        "skipping a changed index entry that does not open"
                    );
                    continue;
                };
                let replace = newest
                    .get(&change.name)
                    .is_none_or(|best| newer(&entry, best));
                if replace {
                    newest.insert(change.name, entry);
                }
            }
        }
        if answered == 0 {
            return Err(NoNode { failed });
        }
        Ok(ChangeBatch {
            entries: newest.into_values().collect(),
            cursor: next,
            more,
        })
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
            let folder = self.folder_tag(remote.parent().as_ref());
            for (node, result) in self
                .put_copies(lacking, &name, version, folder, sealed)
                .await
            {
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

/// One node's part of a [`FolderListing`]: the page it answered last, not
/// yet merged, and where its next page starts.
#[derive(Debug)]
struct NodePages {
    node: usize,
    buffered: VecDeque<cairn_net::client::IndexEntry>,
    after: Option<IndexName>,
    done: bool,
}

/// A folder's entries, merged across the nodes of a read quorum page by
/// page: [`next_page`](Self::next_page) returns the names every node has
/// answered past, newest entry each, in name order, so memory holds one
/// page per node whatever the folder's size. Entries of the legacy folder
/// (written before folders) are listed once, whole, and those of this
/// folder (or, as a synthesized folder entry of version 0, below it) are
/// returned with the first page.
#[derive(Debug)]
pub(crate) struct FolderListing<'a, T> {
    index: &'a Index<T>,
    folder: Option<RemotePath>,
    tag: FolderTag,
    /// `None` until the first page: then the nodes that answered it.
    nodes: Option<Vec<NodePages>>,
    /// Entries in no folder, to return with the first page.
    legacy: Option<Vec<Listed>>,
    page_size: u32,
}

impl<'a, T: Transport> FolderListing<'a, T> {
    fn new(index: &'a Index<T>, folder: Option<RemotePath>) -> Self {
        let tag = index.folder_tag(folder.as_ref());
        Self {
            index,
            folder,
            tag,
            nodes: None,
            legacy: None,
            page_size: LIST_PAGE,
        }
    }

    /// Asks each node for at most `size` entries at a time (default 1000).
    #[cfg(test)]
    pub fn page_size(mut self, size: u32) -> Self {
        self.page_size = size.max(1);
        self
    }

    /// The next run of entries in name order, or `None` when the folder is
    /// done. Read repair brings the nodes that answered without an entry's
    /// newest version up to date (an inline file's from a full lookup,
    /// since listings carry summaries).
    ///
    /// # Errors
    /// [`NoNode`] if no node answered the first page.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Listed>>, NoNode> {
        if self.nodes.is_none() {
            let first = self.index.quorum(self.index.read_quorum(), |node| {
                self.index
                    .transport
                    .list_folder(node, self.tag, None, self.page_size)
            });
            let replies = first.await;
            let mut nodes = Vec::new();
            let mut failed = Vec::new();
            for (node, reply) in replies.into_iter().enumerate() {
                match reply {
                    Ok(page) => nodes.push(NodePages {
                        node,
                        after: page.entries.last().map(|e| e.name),
                        done: !page.more || page.entries.is_empty(),
                        buffered: page.entries.into(),
                    }),
                    Err(e) => failed.push(NodeFailure::of(&*self.index.transport, node, &e)),
                }
            }
            if nodes.is_empty() {
                return Err(NoNode { failed });
            }
            self.nodes = Some(nodes);
            if self.tag != LEGACY_FOLDER {
                self.legacy = Some(self.legacy_entries().await?);
            }
        } else {
            self.refill().await;
        }
        let mut out = self.legacy.take().unwrap_or_default();
        out.extend(self.settled().await);
        let nodes = self.nodes.as_ref().map_or(&[][..], Vec::as_slice);
        if out.is_empty() && nodes.iter().all(|n| n.done && n.buffered.is_empty()) {
            return Ok(None);
        }
        Ok(Some(out))
    }

    /// Fetches the next page of every node whose buffer ran dry; a node
    /// that fails is left out of the rest of the listing.
    async fn refill(&mut self) {
        let Some(nodes) = self.nodes.as_mut() else {
            return;
        };
        let index = self.index;
        let (tag, size) = (self.tag, self.page_size);
        let fetches = nodes
            .iter_mut()
            .filter(|n| n.buffered.is_empty() && !n.done)
            .map(|n| async move {
                match index
                    .transport
                    .list_folder(n.node, tag, n.after, size)
                    .await
                {
                    Ok(page) => {
                        n.after = page.entries.last().map(|e| e.name).or(n.after);
                        n.done = !page.more || page.entries.is_empty();
                        n.buffered = page.entries.into();
                        true
                    }
                    Err(e) => {
                        tracing::warn!(
                            node = %index.transport.addresses()[n.node],
                            "a node failed in the middle of a listing: {e}"
                        );
                        false
                    }
                }
            });
        let kept = futures::future::join_all(fetches).await;
        if kept.iter().any(|ok| !ok) {
            // Drop the failed nodes: those still empty and not done.
            nodes.retain(|n| !n.buffered.is_empty() || n.done);
        }
    }

    /// Takes every buffered entry whose name no node can still answer
    /// below (at most the smallest last name among nodes with more to
    /// come), merged by name, with read repair.
    async fn settled(&mut self) -> Vec<Listed> {
        let Some(nodes) = self.nodes.as_mut() else {
            return Vec::new();
        };
        let bound: Option<IndexName> = nodes
            .iter()
            .filter(|n| !n.done)
            .map(|n| n.after.unwrap_or([0; 32]))
            .min();
        let answered: Vec<usize> = nodes.iter().map(|n| n.node).collect();
        let mut by_name: BTreeMap<IndexName, Vec<(usize, cairn_net::client::IndexEntry)>> =
            BTreeMap::new();
        for n in nodes.iter_mut() {
            while let Some(front) = n.buffered.front() {
                if bound.is_some_and(|b| front.name > b) {
                    break;
                }
                let stored = n.buffered.pop_front().expect("front exists");
                by_name
                    .entry(stored.name)
                    .or_default()
                    .push((n.node, stored));
            }
        }
        let mut out = Vec::with_capacity(by_name.len());
        for (name, held) in by_name {
            if let Some(listed) = self.merge(name, held, &answered).await {
                out.push(listed);
            }
        }
        out
    }

    /// The newest of one name's copies, with read repair of the nodes
    /// among `answered` without it.
    async fn merge(
        &self,
        name: IndexName,
        held: Vec<(usize, cairn_net::client::IndexEntry)>,
        answered: &[usize],
    ) -> Option<Listed> {
        let index = self.index;
        let mut newest: Option<(Entry, Bytes)> = None;
        // Nodes that agree hold the same bytes: each distinct copy is
        // opened once (the same bytes open to the same entry).
        let mut opened: Vec<&Bytes> = Vec::with_capacity(held.len());
        for (node, stored) in &held {
            if opened.contains(&&stored.data) {
                continue;
            }
            opened.push(&stored.data);
            match index.open(&stored.data, &name) {
                Ok(entry) => {
                    if newest.as_ref().is_none_or(|(best, _)| newer(&entry, best)) {
                        newest = Some((entry, stored.data.clone()));
                    }
                }
                Err(e) => tracing::warn!(
                    node = %index.transport.addresses()[*node],
                    "skipping an index entry that does not open: {e}"
                ),
            }
        }
        let (entry, data) = newest?;
        let version = entry.version.0;
        let have: Vec<(usize, Option<u64>)> = answered
            .iter()
            .map(|&node| {
                let v = held
                    .iter()
                    .find(|(n, _)| *n == node)
                    .map(|(_, s)| s.version);
                (node, v)
            })
            .collect();
        let mut copies = have.iter().filter(|(_, v)| *v == Some(version)).count();
        if have.iter().any(|(_, v)| v.is_none_or(|v| v < version)) {
            let summary_only = matches!(
                &entry.kind,
                EntryKind::File(FileEntry {
                    content: Content::InlineUnread,
                    ..
                })
            );
            if summary_only {
                // A lookup reads the whole entry and repairs with it.
                if index.lookup(&entry.path).await.is_ok() {
                    copies = have.len();
                }
            } else {
                copies += index.read_repair(&name, &entry, &data, &have).await;
            }
        }
        let legacy = !data.starts_with(&SPLIT_ENTRY.magic);
        Some(Listed {
            entry,
            copies,
            legacy,
        })
    }

    /// Entries written before folders that belong in this folder, and the
    /// folders below it that such entries imply (as folder entries of
    /// version 0), in path order. Read whole: there are none once `repair`
    /// has rewritten them.
    async fn legacy_entries(&self) -> Result<Vec<Listed>, NoNode> {
        let mut all = FolderListing {
            index: self.index,
            folder: None,
            tag: LEGACY_FOLDER,
            nodes: None,
            legacy: Some(Vec::new()),
            page_size: self.page_size.max(LIST_PAGE),
        };
        let mut found: BTreeMap<RemotePath, Listed> = BTreeMap::new();
        while let Some(page) = Box::pin(all.next_page()).await? {
            for listed in page {
                let path = &listed.entry.path;
                if path.parent() == self.folder {
                    found.insert(path.clone(), listed);
                    continue;
                }
                // A deeper path: its first component below this folder is
                // a folder here.
                let below = match &self.folder {
                    None => Some(path.as_str()),
                    Some(folder) => path
                        .as_str()
                        .strip_prefix(folder.as_str())
                        .and_then(|rest| rest.strip_prefix('/')),
                };
                let Some(below) = below else { continue };
                if listed.entry.is_deleted() {
                    continue;
                }
                let first = below.split('/').next().unwrap_or(below);
                let sub = match &self.folder {
                    None => first.parse::<RemotePath>(),
                    Some(folder) => folder.join(first),
                };
                let Ok(sub) = sub else { continue };
                found.entry(sub.clone()).or_insert(Listed {
                    entry: Entry {
                        path: sub,
                        version: Version::ZERO,
                        writer: [0; 16],
                        kind: EntryKind::Folder,
                    },
                    copies: 0,
                    legacy: true,
                });
            }
        }
        Ok(found.into_values().collect())
    }
}

/// Whether `a` is newer than `b` (the index's recency order).
fn newer(a: &Entry, b: &Entry) -> bool {
    a.cmp_recency(b) == std::cmp::Ordering::Greater
}

#[cfg(test)]
mod tests;
