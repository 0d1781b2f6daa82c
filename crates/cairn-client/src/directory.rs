//! The replicated index: looking names up, writing entries, listing,
//! removing, and the health of what is stored.
//!
//! Every node keeps a copy of the user's index entries. A write goes to
//! every node and succeeds on a majority of all configured nodes; a read
//! asks every reachable node and takes the newest entry (by version, then
//! writer), deletes being tombstones like any other entry. Nodes that
//! answered with an older entry, or none, are sent the newest one (read
//! repair), so a node that missed writes while it was down catches up the
//! first time the name is read after it returns.
//!
//! Health comes from asking the nodes which shards they hold (`ls -l`,
//! `stat`); `verify` goes further and reads every copy of every shard to
//! check its hash.

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;
use cairn_core::{Capability, Id, Manifest, StripeRef};
use cairn_net::client::ClientError;
use cairn_net::protocol::ErrorCode;

use crate::Client;
use crate::fetch::FetchError;
use crate::index::{self, Content, Entry, EntryKind, FileEntry, InlineBytes, RemotePath, Version};
use crate::store::StoreError;

/// How many shards of a file are where they should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Health {
    /// Every shard of every chunk is stored.
    Ok,
    /// Some shards are missing, but every chunk has at least k.
    Degraded,
    /// Some chunk has fewer than k shards: the file cannot be read.
    Lost,
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Ok => "ok",
            Self::Degraded => "degraded",
            Self::Lost => "lost",
        })
    }
}

/// A stored file, as `ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// Its name.
    pub path: RemotePath,
    /// Size in bytes.
    pub size: u64,
    /// Modification time of the local file it was stored from.
    pub modified_unix_ms: u64,
    /// The index entry's version.
    pub version: u64,
    /// Health, when asked for.
    pub health: Option<Health>,
}

/// Where a file's shards are, as `stat` and `verify` report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLayout {
    /// The file.
    pub info: FileInfo,
    /// k and n.
    pub redundancy: cairn_core::Redundancy,
    /// Chunks (the manifest not counted).
    pub chunks: usize,
    /// Shards each node holds, in configuration order (with its address).
    pub shards_per_node: Vec<(String, usize)>,
    /// Shards missing from every node.
    pub missing: usize,
    /// Shard copies that failed their hash (`verify` only; 0 for `stat`).
    pub corrupt: usize,
    /// Overall health.
    pub health: Health,
    /// Whether the file is inline in its index entry: then `chunks` is 0,
    /// and `shards_per_node` counts the copies of the entry (0 or 1 per
    /// node).
    pub inline: bool,
}

/// Why listing, removing or inspecting failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryError {
    /// No node answered.
    #[error("no node could be reached: {}", failed.join(", "))]
    NoNode {
        /// The nodes that failed, with why.
        failed: Vec<String>,
    },
    /// No such file.
    #[error("no file {0}")]
    NotFound(String),
    /// Fetching a manifest failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// Writing the tombstone failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What `remove` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveReport {
    /// Shard references dropped on the nodes.
    pub references_dropped: usize,
    /// Shards kept because another of the user's files uses them.
    pub shards_kept: usize,
}

/// The good copies of a file's shards, as [`Client::check_copies`] found
/// them.
#[derive(Debug)]
pub(crate) struct CheckedCopies {
    /// The file's manifest.
    pub manifest: Manifest,
    /// The manifest's stripe, then each chunk's.
    pub stripes: Vec<StripeRef>,
    /// For each shard id, the nodes whose copy matched it.
    pub good: HashMap<Id, Vec<usize>>,
    /// Copies that failed their hash.
    pub corrupt: usize,
}

impl Client {
    /// The newest entry named `remote` among the reachable nodes, repairing
    /// nodes that hold an older one.
    pub(crate) async fn lookup(
        &self,
        remote: &RemotePath,
    ) -> Result<Option<Entry>, DirectoryError> {
        let name = index::entry_name(&self.keys.index_name, remote);
        let replies = self
            .cluster
            .quorum(self.cluster.read_quorum(), |node| {
                // A node another request is still connecting to is skipped:
                // the read quorum does not need it.
                self.cluster.on_now(node, move |connection| async move {
                    connection.get_index(&name).await
                })
            })
            .await
            .into_iter()
            .enumerate();
        let mut newest: Option<(Entry, Bytes)> = None;
        let mut answered: Vec<(usize, Option<u64>)> = Vec::new();
        let mut failed = Vec::new();
        for (node, reply) in replies {
            match reply {
                Ok(None) => answered.push((node, None)),
                Ok(Some(stored)) => {
                    answered.push((node, Some(stored.version)));
                    match Entry::open(&stored.data, &self.keys.index, &name, &self.keys.index_name)
                    {
                        Ok(entry) => {
                            newest = Some(match newest.take() {
                                Some((best, data)) if !newer(&entry, &best) => (best, data),
                                _ => (entry, stored.data),
                            });
                        }
                        Err(e) => {
                            tracing::warn!(node = %self.cluster.address(node), "an index entry for {remote} does not open: {e}")
                        }
                    }
                }
                Err(e) => failed.push(format!("{} ({e})", self.cluster.address(node))),
            }
        }
        if answered.is_empty() {
            return Err(DirectoryError::NoNode { failed });
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
        name: &[u8; 32],
        version: u64,
        data: &Bytes,
        answered: &[(usize, Option<u64>)],
    ) -> usize {
        let stale = answered
            .iter()
            .filter(|(_, v)| v.is_none_or(|v| v < version))
            .map(|(node, _)| *node);
        let results = self.put_entry_on(stale, name, version, data).await;
        let mut repaired = 0;
        for (node, result) in results {
            match result {
                Ok(()) => repaired += 1,
                Err(e) => {
                    tracing::debug!(node = %self.cluster.address(node), "read repair failed: {e}")
                }
            }
        }
        repaired
    }

    /// Stores the sealed entry `data` as version `version` of `name` on each
    /// of `nodes`, all at once; each node's outcome.
    pub(crate) async fn put_entry_on(
        &self,
        nodes: impl Iterator<Item = usize>,
        name: &[u8; 32],
        version: u64,
        data: &Bytes,
    ) -> Vec<(usize, Result<(), ClientError>)> {
        futures::future::join_all(nodes.map(|node| async move {
            let result = self
                .cluster
                .on(node, |c| {
                    let data = data.clone();
                    async move { c.put_index(name, version, data).await }
                })
                .await;
            (node, result.map(drop))
        }))
        .await
    }

    /// The capability of the file named `remote`. An inline file (see
    /// [`Content::Inline`]) has none: it is stored as chunks and a manifest
    /// first, and its entry rewritten to point at them, so that the
    /// capability keeps working whatever becomes of the entry.
    ///
    /// # Errors
    /// [`FetchError::NotFound`] if there is no such file (or it was
    /// removed); for an inline file, [`FetchError::Store`] if storing it
    /// failed.
    pub async fn capability(&self, remote: &RemotePath) -> Result<Capability, FetchError> {
        let file = self.file_entry(remote).await?;
        match file.content {
            Content::Stored(capability) => Ok(capability),
            Content::Inline(bytes) => {
                let reader = std::io::Cursor::new(bytes.to_vec());
                let uploaded = match self.upload(reader, 0, &|_| {}).await {
                    Ok(Ok(uploaded)) => uploaded,
                    Ok(Err(_)) => unreachable!("with inline_max 0 every input is sealed"),
                    Err(e) => return Err(FetchError::Store(Box::new(e))),
                };
                self.write_file_entry(
                    remote,
                    uploaded.capability.clone(),
                    &uploaded.manifest,
                    file.modified_unix_ms,
                )
                .await
                .map_err(|e| FetchError::Store(Box::new(e)))?;
                Ok(uploaded.capability)
            }
        }
    }

    /// The live entry of the file named `remote`.
    ///
    /// # Errors
    /// [`FetchError::NotFound`] if there is no such file (or it was
    /// removed).
    pub(crate) async fn file_entry(&self, remote: &RemotePath) -> Result<FileEntry, FetchError> {
        match self.lookup(remote).await {
            Ok(Some(Entry {
                kind: EntryKind::File(file),
                ..
            })) => Ok(file),
            Ok(_) => Err(FetchError::NotFound(remote.to_string())),
            Err(DirectoryError::NoNode { failed }) => Err(FetchError::Unavailable {
                what: format!("the index entry of {remote}"),
                found: 0,
                needed: 1,
                failed,
            }),
            Err(e) => Err(FetchError::NotFound(format!("{remote}: {e}"))),
        }
    }

    /// Writes the entry of a newly stored file.
    pub(crate) async fn write_file_entry(
        &self,
        remote: &RemotePath,
        capability: Capability,
        manifest: &Manifest,
        modified_unix_ms: u64,
    ) -> Result<(), StoreError> {
        let file = FileEntry {
            content: Content::Stored(capability),
            size: manifest.size,
            modified_unix_ms,
            chunks: manifest.chunks.len() as u64,
            redundancy: self.redundancy,
            content_hash: manifest.hash,
        };
        self.write_entry(remote, EntryKind::File(file))
            .await
            .map(drop)
    }

    /// Writes the entry of a file kept inline; returns how many nodes
    /// stored it.
    pub(crate) async fn write_inline_entry(
        &self,
        remote: &RemotePath,
        bytes: Vec<u8>,
        modified_unix_ms: u64,
    ) -> Result<usize, StoreError> {
        let file = FileEntry {
            size: bytes.len() as u64,
            content_hash: Id::of(&bytes),
            content: Content::Inline(
                InlineBytes::new(bytes).expect("inline_max is at most MAX_INLINE_LEN"),
            ),
            modified_unix_ms,
            chunks: 0,
            redundancy: self.redundancy,
        };
        self.write_entry(remote, EntryKind::File(file)).await
    }

    /// Writes an entry for `remote` on every node, with a version above
    /// any seen; succeeds on a majority of the configured nodes.
    ///
    /// A node holding a newer entry refuses the write (`Conflict`: a node
    /// the first read did not hear from, or another writer in between).
    /// Any refusal sends the writer back to read the newest entry and write
    /// above it, even when a majority accepted: readers take the newest
    /// entry any node holds, so a put that lands below one is lost to them.
    /// Returns how many nodes stored the entry.
    pub(crate) async fn write_entry(
        &self,
        remote: &RemotePath,
        kind: EntryKind,
    ) -> Result<usize, StoreError> {
        let name = index::entry_name(&self.keys.index_name, remote);
        let total = self.cluster.len();
        let needed = self.cluster.write_quorum();
        let mut floor = match self.lookup(remote).await {
            Ok(Some(entry)) => entry.version,
            _ => Version(0),
        };
        let mut failed = Vec::new();
        for _attempt in 0..4 {
            let version = self
                .clock
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .next(index::Clock::now_unix_ms(), floor);
            let entry = Entry {
                path: remote.clone(),
                version,
                writer: self.writer,
                kind: kind.clone(),
            };
            let sealed = Bytes::from(entry.seal(&self.keys.index)?);
            let results = self
                .cluster
                .quorum(self.cluster.write_quorum(), |node| {
                    let sealed = sealed.clone();
                    self.cluster.on(node, move |c| {
                        let sealed = sealed.clone();
                        async move { c.put_index(&name, version.0, sealed).await }
                    })
                })
                .await
                .into_iter()
                .enumerate();
            let mut acknowledged = 0;
            let mut conflict = false;
            failed.clear();
            for (node, result) in results {
                match result {
                    Ok(_) => acknowledged += 1,
                    Err(e) if e.code() == Some(ErrorCode::Conflict) => {
                        conflict = true;
                        failed.push(format!(
                            "{} (a newer entry was written meanwhile)",
                            self.cluster.address(node)
                        ));
                    }
                    Err(e) => failed.push(format!("{} ({e})", self.cluster.address(node))),
                }
            }
            if acknowledged >= needed && !conflict {
                return Ok(acknowledged);
            }
            if !conflict {
                return Err(StoreError::IndexNotStored {
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
        Err(StoreError::IndexNotStored {
            acknowledged: 0,
            total,
            needed,
            failed,
        })
    }

    /// Every stored file whose path is `prefix` or under it (all files for
    /// an empty prefix), newest entries only, in path order. With `health`,
    /// each file's health is computed from the nodes' shard lists.
    ///
    /// # Errors
    /// [`DirectoryError::NoNode`] if no node answered.
    pub async fn list_files(
        &self,
        prefix: &str,
        health: bool,
    ) -> Result<Vec<FileInfo>, DirectoryError> {
        let pages = self
            .cluster
            .quorum(self.cluster.read_quorum(), |node| self.list_node(node))
            .await
            .into_iter()
            .enumerate();
        // name → newest entry, and what each node has for it.
        let mut newest: HashMap<[u8; 32], (Entry, Bytes)> = HashMap::new();
        let mut held: HashMap<[u8; 32], Vec<(usize, u64)>> = HashMap::new();
        let mut answered = Vec::new();
        let mut failed = Vec::new();
        for (node, page) in pages {
            let entries = match page {
                Ok(entries) => entries,
                Err(e) => {
                    failed.push(format!("{} ({e})", self.cluster.address(node)));
                    continue;
                }
            };
            answered.push(node);
            for stored in entries {
                held.entry(stored.name)
                    .or_default()
                    .push((node, stored.version));
                let Ok(entry) = Entry::open(
                    &stored.data,
                    &self.keys.index,
                    &stored.name,
                    &self.keys.index_name,
                ) else {
                    tracing::warn!(node = %self.cluster.address(node), "skipping an index entry that does not open");
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
            return Err(DirectoryError::NoNode { failed });
        }
        // Read repair: nodes that answered without the newest version. The
        // copies of each entry (which are an inline file's only copies)
        // are those that held it plus those repaired.
        let mut copies: HashMap<[u8; 32], usize> = HashMap::new();
        for (name, (entry, data)) in &newest {
            let have: Vec<(usize, Option<u64>)> = answered
                .iter()
                .map(|&node| {
                    let version = held
                        .get(name)
                        .and_then(|v| v.iter().find(|(n, _)| *n == node).map(|(_, v)| *v));
                    (node, version)
                })
                .collect();
            let mut current = have
                .iter()
                .filter(|(_, v)| *v == Some(entry.version.0))
                .count();
            if have
                .iter()
                .any(|(_, v)| v.is_none_or(|v| v < entry.version.0))
            {
                current += self.read_repair(name, entry.version.0, data, &have).await;
            }
            copies.insert(*name, current);
        }
        let mut files: BTreeMap<String, FileInfo> = BTreeMap::new();
        let mut capabilities = Vec::new();
        for (name, (entry, _)) in newest {
            let EntryKind::File(file) = entry.kind else {
                continue;
            };
            if !entry.path.starts_with_prefix(prefix) {
                continue;
            }
            // An inline file's health is its entry's copies; a stored
            // file's is computed below from its shards.
            let known = match file.content {
                Content::Stored(capability) => {
                    capabilities.push((entry.path.to_string(), capability));
                    None
                }
                Content::Inline(_) => {
                    health.then(|| inline_health(copies[&name], self.cluster.len()))
                }
            };
            files.insert(
                entry.path.to_string(),
                FileInfo {
                    path: entry.path,
                    size: file.size,
                    modified_unix_ms: file.modified_unix_ms,
                    version: entry.version.0,
                    health: known,
                },
            );
        }
        if health {
            // Several files at once: each costs a manifest fetch and a
            // round of shard queries.
            use futures::stream::{self, StreamExt};
            let healths: Vec<(String, Health)> = stream::iter(capabilities)
                .map(|(path, capability)| async move {
                    let layout = self.layout(&capability).await;
                    (path, layout.map_or(Health::Lost, |(_, _, _, _, h)| h))
                })
                .buffer_unordered(8)
                .collect()
                .await;
            for (path, health) in healths {
                if let Some(info) = files.get_mut(&path) {
                    info.health = Some(health);
                }
            }
        }
        Ok(files.into_values().collect())
    }

    /// All of one node's entries for this user.
    async fn list_node(
        &self,
        node: usize,
    ) -> Result<Vec<cairn_net::client::IndexEntry>, ClientError> {
        let mut entries = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .cluster
                .on(
                    node,
                    |c| async move { c.list_index(after.as_ref(), 1000).await },
                )
                .await?;
            after = page.entries.last().map(|e| e.name);
            let more = page.more && after.is_some();
            entries.extend(page.entries);
            if !more {
                return Ok(entries);
            }
        }
    }

    /// Where the shards of the file `capability` names are: per stripe the
    /// count of shard indices stored anywhere, per node the shards it holds.
    /// Returns (manifest, per-node counts, missing, chunks, health).
    async fn layout(
        &self,
        capability: &Capability,
    ) -> Result<(Manifest, Vec<usize>, usize, usize, Health), FetchError> {
        let counts = crate::fetch::Counts::default();
        let manifest = self.fetch_manifest(capability, &counts).await?;
        let stripes: Vec<&StripeRef> = std::iter::once(&capability.manifest)
            .chain(manifest.chunks.iter().map(|c| &c.stripe))
            .collect();
        let ids: Vec<Id> = stripes
            .iter()
            .flat_map(|s| s.shards.iter().copied())
            .collect();
        let present = self.where_are(&ids).await;
        let (per_node, missing, health) = assess(&stripes, &present, self.cluster.len());
        let chunks = manifest.chunks.len();
        Ok((manifest, per_node, missing, chunks, health))
    }

    /// For each of `ids`, the nodes that say they store it.
    async fn where_are(&self, ids: &[Id]) -> HashMap<Id, Vec<usize>> {
        let mut present: HashMap<Id, Vec<usize>> = ids.iter().map(|id| (*id, Vec::new())).collect();
        let batch = cairn_net::protocol::Limits::default().max_batch;
        let answers = futures::future::join_all((0..self.cluster.len()).map(|node| async move {
            let mut stored = Vec::new();
            for chunk in ids.chunks(batch) {
                let has = self
                    .cluster
                    .on(node, |c| async move { c.has_shards(chunk).await })
                    .await;
                match has {
                    Ok(has) => stored.extend(
                        chunk
                            .iter()
                            .zip(has.stored)
                            .filter(|(_, s)| *s)
                            .map(|(id, _)| *id),
                    ),
                    Err(_) => return (node, Vec::new()),
                }
            }
            (node, stored)
        }))
        .await;
        for (node, stored) in answers {
            for id in stored {
                if let Some(nodes) = present.get_mut(&id) {
                    nodes.push(node);
                }
            }
        }
        present
    }

    /// The layout and health of `remote`.
    ///
    /// # Errors
    /// [`DirectoryError::NotFound`] for no such file, or a fetch error for
    /// its manifest.
    pub async fn stat(&self, remote: &RemotePath) -> Result<FileLayout, DirectoryError> {
        let (info, content, redundancy) = self.file(remote).await?;
        let capability = match content {
            Content::Stored(capability) => capability,
            Content::Inline(_) => return Ok(self.inline_layout(info, redundancy).await),
        };
        let (manifest, per_node, missing, chunks, health) = self.layout(&capability).await?;
        Ok(FileLayout {
            info: FileInfo {
                health: Some(health),
                ..info
            },
            redundancy: manifest
                .chunks
                .first()
                .map_or(capability.manifest.redundancy, |c| c.stripe.redundancy),
            chunks,
            shards_per_node: self.per_node(per_node),
            missing,
            corrupt: 0,
            health,
            inline: false,
        })
    }

    /// The layout of an inline file: which nodes hold a copy of its newest
    /// entry that opens, read from every node (after the lookup that found
    /// it repaired the stale ones it reached).
    pub(crate) async fn inline_layout(
        &self,
        info: FileInfo,
        redundancy: cairn_core::Redundancy,
    ) -> FileLayout {
        let (per_node, corrupt, _) = self.entry_copies(&info.path, info.version).await;
        let copies = per_node.iter().sum();
        let health = inline_health(copies, self.cluster.len());
        FileLayout {
            info: FileInfo {
                health: Some(health),
                ..info
            },
            redundancy,
            chunks: 0,
            shards_per_node: self.per_node(per_node),
            missing: self.cluster.len() - copies,
            corrupt,
            health,
            inline: true,
        }
    }

    /// Reads the entry of `remote` from every node: per node 1 if it holds
    /// version `version` and it opens, else 0; the copies that do not open;
    /// and the sealed bytes of one good copy.
    pub(crate) async fn entry_copies(
        &self,
        remote: &RemotePath,
        version: u64,
    ) -> (Vec<usize>, usize, Option<Bytes>) {
        let name = index::entry_name(&self.keys.index_name, remote);
        let replies = futures::future::join_all((0..self.cluster.len()).map(|node| {
            self.cluster
                .on(node, move |c| async move { c.get_index(&name).await })
        }))
        .await;
        let mut per_node = vec![0; self.cluster.len()];
        let mut corrupt = 0;
        let mut sealed = None;
        for (node, reply) in replies.into_iter().enumerate() {
            let Ok(Some(stored)) = reply else { continue };
            match Entry::open(&stored.data, &self.keys.index, &name, &self.keys.index_name) {
                Ok(entry) if entry.version.0 == version => {
                    per_node[node] = 1;
                    sealed = Some(stored.data);
                }
                Ok(_) => {}
                Err(_) => corrupt += 1,
            }
        }
        (per_node, corrupt, sealed)
    }

    /// Reads every copy of every shard of `remote` from every node that
    /// claims it and checks its hash.
    ///
    /// # Errors
    /// As [`stat`](Self::stat).
    pub async fn verify(&self, remote: &RemotePath) -> Result<FileLayout, DirectoryError> {
        let (info, content, redundancy) = self.file(remote).await?;
        let capability = match content {
            Content::Stored(capability) => capability,
            // Each copy of the entry is authenticated when opened, and the
            // inline bytes checked against the content hash.
            Content::Inline(_) => return Ok(self.inline_layout(info, redundancy).await),
        };
        let checked = self.check_copies(&capability).await?;
        let stripes: Vec<&StripeRef> = checked.stripes.iter().collect();
        let (per_node, missing, health) = assess(&stripes, &checked.good, self.cluster.len());
        Ok(FileLayout {
            info: FileInfo {
                health: Some(health),
                ..info
            },
            redundancy: checked
                .manifest
                .chunks
                .first()
                .map_or(capability.manifest.redundancy, |c| c.stripe.redundancy),
            chunks: checked.manifest.chunks.len(),
            shards_per_node: self.per_node(per_node),
            missing,
            corrupt: checked.corrupt,
            health,
            inline: false,
        })
    }

    /// Reads every copy of every shard of the file `capability` names from
    /// every node that claims it, and keeps the nodes whose copy matched
    /// its id. (A node quarantines a copy that fails its check on read.)
    pub(crate) async fn check_copies(
        &self,
        capability: &Capability,
    ) -> Result<CheckedCopies, FetchError> {
        use futures::stream::{self, StreamExt};
        let counts = crate::fetch::Counts::default();
        let manifest = self.fetch_manifest(capability, &counts).await?;
        let stripes: Vec<StripeRef> = std::iter::once(capability.manifest.clone())
            .chain(manifest.chunks.iter().map(|c| c.stripe.clone()))
            .collect();
        let ids: Vec<Id> = stripes
            .iter()
            .flat_map(|s| s.shards.iter().copied())
            .collect();
        let claimed = self.where_are(&ids).await;
        let copies = claimed
            .iter()
            .flat_map(|(id, nodes)| nodes.iter().map(move |&node| (*id, node)));
        // A few reads at once per node: a large file has thousands of shards.
        let outcomes: Vec<(Id, usize, Result<Bytes, ClientError>)> = stream::iter(copies)
            .map(|(id, node)| async move {
                let read = self
                    .cluster
                    .on(node, |c| async move { c.get_shard(&id).await })
                    .await;
                (id, node, read)
            })
            .buffer_unordered(4 * self.cluster.len())
            .collect()
            .await;
        let mut good: HashMap<Id, Vec<usize>> = HashMap::new();
        let mut corrupt = 0;
        for (id, node, read) in outcomes {
            match read {
                Ok(_) => good.entry(id).or_default().push(node),
                Err(ClientError::Corrupt { .. }) => corrupt += 1,
                Err(e) if e.code() == Some(ErrorCode::Corrupt) => corrupt += 1,
                Err(_) => {}
            }
        }
        for nodes in good.values_mut() {
            nodes.sort_unstable();
        }
        Ok(CheckedCopies {
            manifest,
            stripes,
            good,
            corrupt,
        })
    }

    fn per_node(&self, counts: Vec<usize>) -> Vec<(String, usize)> {
        counts
            .into_iter()
            .enumerate()
            .map(|(i, n)| (self.cluster.address(i).to_string(), n))
            .collect()
    }

    /// What the index says of `remote` (size, time, version), without
    /// touching its data.
    ///
    /// # Errors
    /// [`DirectoryError::NotFound`] if there is no such file.
    pub async fn file_info(&self, remote: &RemotePath) -> Result<FileInfo, DirectoryError> {
        self.file(remote).await.map(|(info, _, _)| info)
    }

    /// The live entry of `remote`: what `ls` shows, where the bytes are,
    /// and the redundancy it was written with.
    pub(crate) async fn file(
        &self,
        remote: &RemotePath,
    ) -> Result<(FileInfo, Content, cairn_core::Redundancy), DirectoryError> {
        match self.lookup(remote).await? {
            Some(Entry {
                path,
                version,
                kind: EntryKind::File(file),
                ..
            }) => Ok((
                FileInfo {
                    path,
                    size: file.size,
                    modified_unix_ms: file.modified_unix_ms,
                    version: version.0,
                    health: None,
                },
                file.content,
                file.redundancy,
            )),
            _ => Err(DirectoryError::NotFound(remote.to_string())),
        }
    }

    /// Removes `remote`: writes a tombstone on a majority of nodes, then
    /// drops the references to its shards that no other file of the user
    /// still needs (shards are shared between files with equal chunks).
    ///
    /// # Errors
    /// [`DirectoryError::NotFound`] if there is no such file; a store error
    /// if the tombstone did not reach a majority (then nothing is dropped).
    pub async fn remove(&self, remote: &RemotePath) -> Result<RemoveReport, DirectoryError> {
        let (_, content, _) = self.file(remote).await?;
        let Content::Stored(capability) = content else {
            // An inline file has no shards: the tombstone is all.
            self.write_entry(remote, EntryKind::Deleted).await?;
            return Ok(RemoveReport {
                references_dropped: 0,
                shards_kept: 0,
            });
        };
        let counts = crate::fetch::Counts::default();
        let manifest = self.fetch_manifest(&capability, &counts).await.ok();
        self.write_entry(remote, EntryKind::Deleted).await?;

        let mut ours: HashSet<Id> = capability.manifest.shards.iter().copied().collect();
        if let Some(manifest) = &manifest {
            ours.extend(
                manifest
                    .chunks
                    .iter()
                    .flat_map(|c| c.stripe.shards.iter().copied()),
            );
        }
        // Shards another live file uses stay referenced.
        let mut kept = HashSet::new();
        for other in self.list_files("", false).await? {
            if other.path == *remote {
                continue;
            }
            // (Not `capability`, which would store an inline file as chunks.)
            let Ok(Content::Stored(capability)) =
                self.file_entry(&other.path).await.map(|f| f.content)
            else {
                continue;
            };
            kept.extend(
                capability
                    .manifest
                    .shards
                    .iter()
                    .copied()
                    .filter(|id| ours.contains(id)),
            );
            if let Ok(manifest) = self.fetch_manifest(&capability, &counts).await {
                for chunk in &manifest.chunks {
                    kept.extend(
                        chunk
                            .stripe
                            .shards
                            .iter()
                            .copied()
                            .filter(|id| ours.contains(id)),
                    );
                }
            }
        }
        let drop: Vec<Id> = ours
            .iter()
            .copied()
            .filter(|id| !kept.contains(id))
            .collect();
        let batch = cairn_net::protocol::Limits::default().max_batch;
        let dropped = futures::future::join_all((0..self.cluster.len()).map(|node| {
            let drop = &drop;
            async move {
                let mut released = 0;
                for chunk in drop.chunks(batch) {
                    if let Ok(outcomes) = self
                        .cluster
                        .on(node, |c| async move { c.drop_shards(chunk).await })
                        .await
                    {
                        released += outcomes
                            .iter()
                            .filter(|o| **o != cairn_net::protocol::Dropped::NotReferenced)
                            .count();
                    }
                }
                released
            }
        }))
        .await;
        Ok(RemoveReport {
            references_dropped: dropped.iter().sum(),
            shards_kept: kept.len(),
        })
    }
}

/// The health of an inline file whose entry is on `copies` of `nodes`
/// nodes: any one copy holds the whole file.
pub(crate) fn inline_health(copies: usize, nodes: usize) -> Health {
    match copies {
        0 => Health::Lost,
        c if c < nodes => Health::Degraded,
        _ => Health::Ok,
    }
}

/// Shards each node holds, shards held nowhere, and the health they make,
/// given for each shard id the nodes holding a (good) copy.
pub(crate) fn assess(
    stripes: &[&StripeRef],
    holders: &HashMap<Id, Vec<usize>>,
    nodes: usize,
) -> (Vec<usize>, usize, Health) {
    let mut per_node = vec![0usize; nodes];
    for holding in holders.values() {
        for &node in holding {
            per_node[node] += 1;
        }
    }
    let mut missing = 0;
    let mut health = Health::Ok;
    for stripe in stripes {
        let have = stripe
            .shards
            .iter()
            .filter(|id| holders.get(*id).is_some_and(|n| !n.is_empty()))
            .count();
        missing += stripe.shards.len() - have;
        if have < stripe.redundancy.data() {
            health = Health::Lost;
        } else if spread(&stripe.shards, holders) < stripe.shards.len() && health == Health::Ok {
            // Every shard may exist and still not be safe: two shards of a
            // chunk on one node (a put made while a node was down) go
            // together when that node does.
            health = Health::Degraded;
        }
    }
    (per_node, missing, health)
}

/// How many of `shards` sit on distinct nodes: the size of a largest
/// matching of shards to nodes holding them (see [`spread_out`]).
fn spread(shards: &[Id], holders: &HashMap<Id, Vec<usize>>) -> usize {
    spread_out(shards, holders).iter().flatten().count()
}

/// A largest set of shards held on distinct nodes, as the node counted for
/// each shard (`None` for a shard left out): losing any one node costs at
/// most one of the shards counted. Kuhn's augmenting paths; a stripe has at
/// most 32 shards.
pub(crate) fn spread_out(shards: &[Id], holders: &HashMap<Id, Vec<usize>>) -> Vec<Option<usize>> {
    fn augment(
        shard: usize,
        options: &[&[usize]],
        owner: &mut HashMap<usize, usize>,
        visited: &mut Vec<usize>,
    ) -> bool {
        for &node in options[shard] {
            if visited.contains(&node) {
                continue;
            }
            visited.push(node);
            let free = match owner.get(&node) {
                None => true,
                Some(&other) => augment(other, options, owner, visited),
            };
            if free {
                owner.insert(node, shard);
                return true;
            }
        }
        false
    }
    let options: Vec<&[usize]> = shards
        .iter()
        .map(|id| holders.get(id).map_or(&[][..], Vec::as_slice))
        .collect();
    let mut owner = HashMap::new();
    for shard in 0..shards.len() {
        augment(shard, &options, &mut owner, &mut Vec::new());
    }
    let mut nodes = vec![None; shards.len()];
    for (node, shard) in owner {
        nodes[shard] = Some(node);
    }
    nodes
}

/// Whether `a` is newer than `b` (the index's recency order).
fn newer(a: &Entry, b: &Entry) -> bool {
    a.cmp_recency(b) == std::cmp::Ordering::Greater
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> Id {
        Id::from_bytes([n; 32])
    }

    #[test]
    fn spread_counts_shards_on_distinct_nodes() {
        let shards = [id(1), id(2), id(3), id(4)];
        let mut holders = HashMap::new();
        for (i, shard) in shards.iter().enumerate() {
            holders.insert(*shard, vec![i]);
        }
        assert_eq!(spread(&shards, &holders), 4);
        // Node 3 was down at put time: its shard went to node 0 as well.
        holders.insert(id(4), vec![0]);
        assert_eq!(spread(&shards, &holders), 3);
        // A copy on node 3 too, found by moving shard 4 off node 0.
        holders.insert(id(4), vec![0, 3]);
        assert_eq!(spread(&shards, &holders), 4);
        // An augmenting path: shard 1 can move from node 0 to node 3.
        holders.insert(id(1), vec![0, 3]);
        holders.insert(id(4), vec![0]);
        assert_eq!(spread(&shards, &holders), 4);
        holders.remove(&id(2));
        assert_eq!(spread(&shards, &holders), 3);
    }
}
