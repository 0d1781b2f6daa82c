//! What is stored, and how safely: listing, inspecting, verifying and
//! removing files.
//!
//! Names come from the index layer (newest entry over a read quorum, with
//! read repair); health comes from the shard layer, by asking the nodes
//! which shards they hold (`ls -l`, `stat`), and `verify` goes further and
//! reads every copy of every shard to check its hash. An inline file's
//! health is its entry's copies: any one holds the whole file.

use std::collections::{BTreeMap, HashMap, HashSet};

use cairn_core::{Capability, Id, Manifest, StripeRef};

use crate::fetch::{self, FetchError};
use crate::index::{Content, Entry, EntryKind, Index, Listed, NoNode, RemotePath};
use crate::placement;
use crate::shards::{CheckedCopies, Counts, Shards};
use crate::store::StoreError;
use crate::transport::{NodeFailure, Transport, joined};

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

/// What [`Client::changes`](crate::Client::changes) found.
#[derive(Debug)]
pub struct Changes {
    /// The newest entry of each path changed since the cursor, tombstones
    /// included, in no particular order. Entries carry summaries: an inline
    /// file's content is [`Content::InlineUnread`] (a lookup reads it).
    pub entries: Vec<Entry>,
    /// Where to start next time.
    pub cursor: crate::index::ChangeCursor,
    /// Whether more changes are waiting than one call returns: call again.
    pub more: bool,
}

/// One item of a folder listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListItem {
    /// A file.
    File(FileInfo),
    /// A folder (its items are listed separately).
    Folder(RemotePath),
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
    #[error("no node could be reached: {}", joined(failed, ", "))]
    NoNode {
        /// The nodes that failed, with why.
        failed: Vec<NodeFailure>,
    },
    /// No such file.
    #[error("no file {0}")]
    NotFound(RemotePath),
    /// Fetching a manifest failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// Writing the tombstone failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<NoNode> for DirectoryError {
    fn from(NoNode { failed }: NoNode) -> Self {
        Self::NoNode { failed }
    }
}

/// What `remove` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveReport {
    /// Shard references dropped on the nodes.
    pub references_dropped: usize,
    /// Shards kept because another of the user's files uses them.
    pub shards_kept: usize,
}

/// A file's live entry: what `ls` shows, where the bytes are, and the
/// redundancy it was written with.
pub(crate) struct LiveFile {
    pub info: FileInfo,
    pub content: Content,
    pub redundancy: cairn_core::Redundancy,
}

/// The good copies of a stored file's shards.
pub(crate) struct FileCopies {
    /// The file's manifest.
    pub manifest: Manifest,
    /// The manifest's stripe, then each chunk's.
    pub stripes: Vec<StripeRef>,
    /// What reading every copy found.
    pub checked: CheckedCopies,
}

/// How many folders a recursive [`walk`](Directory::walk) lists at once:
/// the one it reached and the sibling folders after it.
pub(crate) const WALK_AHEAD: usize = 8;

/// The layers listing and inspecting use, borrowed from the client.
pub(crate) struct Directory<'a, T> {
    /// Names.
    pub index: &'a Index<T>,
    /// Shards.
    pub shards: &'a Shards<T>,
}

impl<T: Transport> Directory<'_, T> {
    /// The live entry of `remote`.
    ///
    /// # Errors
    /// [`DirectoryError::NotFound`] for no such file (or a removed one).
    pub async fn file(&self, remote: &RemotePath) -> Result<LiveFile, DirectoryError> {
        match self.index.lookup(remote).await? {
            Some(Entry {
                path,
                version,
                kind: EntryKind::File(file),
                ..
            }) => Ok(LiveFile {
                info: FileInfo {
                    path,
                    size: file.size,
                    modified_unix_ms: file.modified_unix_ms,
                    version: version.0,
                    health: None,
                },
                content: file.content,
                redundancy: file.redundancy,
            }),
            _ => Err(DirectoryError::NotFound(remote.clone())),
        }
    }

    /// Every stored file whose path is `prefix` or under it (all files for
    /// an empty prefix), newest entries only, in path order, walking the
    /// folders below `prefix` (see [`walk`](Self::walk)). With `health`,
    /// each file's health is computed from the nodes' shard lists.
    ///
    /// # Errors
    /// [`DirectoryError::NoNode`] if no node answered.
    pub async fn list(&self, prefix: &str, health: bool) -> Result<Vec<FileInfo>, DirectoryError> {
        let prefix = prefix.trim_matches('/');
        let mut files = Vec::new();
        let folder = if prefix.is_empty() {
            None
        } else {
            let Ok(path) = prefix.parse::<RemotePath>() else {
                return Ok(files);
            };
            // The prefix itself may be a file.
            if let Ok(file) = self.file(&path).await {
                let mut info = file.info;
                if health {
                    info.health = Some(match file.content {
                        Content::Stored(capability) => self
                            .layout(&capability)
                            .await
                            .map_or(Health::Lost, |l| l.health),
                        Content::Inline(_) | Content::InlineUnread => {
                            self.inline_layout(info.clone(), file.redundancy)
                                .await
                                .health
                        }
                    });
                }
                files.push(info);
            }
            Some(path)
        };
        self.walk(folder.as_ref(), true, health, &mut |item| {
            if let ListItem::File(info) = item {
                files.push(info);
            }
            true
        })
        .await?;
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    /// The live files and folders of folder `folder` (`None`: the root),
    /// ordered as their paths with a `/` after a folder's (so that, walked
    /// recursively, files come in path order); with `health`, each file's
    /// health. Asks each node for that folder's entries only, a page at a
    /// time. `None` if `folder` is neither the root nor a folder.
    ///
    /// # Errors
    /// [`DirectoryError::NoNode`] if no node answered.
    pub async fn folder(
        &self,
        folder: Option<&RemotePath>,
        health: bool,
    ) -> Result<Option<Vec<ListItem>>, DirectoryError> {
        let nodes = self.shards.nodes();
        let mut items: BTreeMap<String, ListItem> = BTreeMap::new();
        let mut capabilities = Vec::new();
        let mut listing = self.index.list_folder(folder);
        while let Some(page) = listing.next_page().await? {
            for Listed { entry, copies, .. } in page {
                match entry.kind {
                    EntryKind::Folder => {
                        items.insert(format!("{}/", entry.path), ListItem::Folder(entry.path));
                    }
                    EntryKind::File(file) => {
                        let known = match file.content {
                            Content::Stored(capability) => {
                                capabilities.push((entry.path.to_string(), capability));
                                None
                            }
                            Content::Inline(_) | Content::InlineUnread => {
                                health.then(|| inline_health(copies, nodes))
                            }
                        };
                        items.insert(
                            entry.path.to_string(),
                            ListItem::File(FileInfo {
                                path: entry.path,
                                size: file.size,
                                modified_unix_ms: file.modified_unix_ms,
                                version: entry.version.0,
                                health: known,
                            }),
                        );
                    }
                    EntryKind::Deleted | EntryKind::RemovedFolder => {}
                }
            }
        }
        if items.is_empty()
            && let Some(folder) = folder
            && !matches!(
                self.index.lookup_folder(folder).await?,
                Some(Entry {
                    kind: EntryKind::Folder,
                    ..
                })
            )
        {
            return Ok(None);
        }
        if health {
            // Several files at once: each costs a manifest fetch and a
            // round of shard queries.
            use futures::stream::{self, StreamExt};
            let healths: Vec<(String, Health)> = stream::iter(capabilities)
                .map(|(path, capability)| async move {
                    let layout = self.layout(&capability).await;
                    (path, layout.map_or(Health::Lost, |layout| layout.health))
                })
                .buffer_unordered(8)
                .collect()
                .await;
            for (path, health) in healths {
                if let Some(ListItem::File(info)) = items.get_mut(&path) {
                    info.health = Some(health);
                }
            }
        }
        Ok(Some(items.into_values().collect()))
    }

    /// Hands `each` the items of folder `folder` (`None`: the root) as
    /// [`folder`](Self::folder) orders them, and with `recursive` the
    /// items of each subfolder right after that subfolder, depth first. A
    /// subfolder is listed when the walk reaches it, together with up to
    /// [`WALK_AHEAD`]` - 1` of the sibling folders after it (the walk needs
    /// them next once the first subtree is done), so that a tree of many
    /// folders costs a round trip per [`WALK_AHEAD`] folders, not per
    /// folder; memory holds the folders on the current path and those
    /// siblings, not the tree. Stops early when `each` returns false.
    /// Returns false if `folder` is not a folder.
    ///
    /// # Errors
    /// [`DirectoryError::NoNode`] if no node answered.
    pub async fn walk(
        &self,
        folder: Option<&RemotePath>,
        recursive: bool,
        health: bool,
        each: &mut (dyn FnMut(ListItem) -> bool + Send),
    ) -> Result<bool, DirectoryError> {
        let Some(items) = self.folder(folder, health).await? else {
            return Ok(false);
        };
        // Folders still to list, each with the items after it.
        let mut stack: Vec<std::vec::IntoIter<ListItem>> = vec![items.into_iter()];
        // Sibling folders listed ahead of the walk, until it reaches them.
        let mut ahead: HashMap<RemotePath, Option<Vec<ListItem>>> = HashMap::new();
        while let Some(top) = stack.last_mut() {
            let Some(item) = top.next() else {
                stack.pop();
                continue;
            };
            let sub = match (&item, recursive) {
                (ListItem::Folder(path), true) => Some(path.clone()),
                _ => None,
            };
            if !each(item) {
                return Ok(true);
            }
            let Some(sub) = sub else { continue };
            if !ahead.contains_key(&sub) {
                let batch: Vec<RemotePath> = std::iter::once(sub.clone())
                    .chain(top.as_slice().iter().filter_map(|next| match next {
                        ListItem::Folder(path) => Some(path.clone()),
                        ListItem::File(_) => None,
                    }))
                    .take(WALK_AHEAD)
                    .collect();
                let listed = futures::future::join_all(
                    batch.iter().map(|folder| self.folder(Some(folder), health)),
                )
                .await;
                for (folder, items) in batch.into_iter().zip(listed) {
                    ahead.insert(folder, items?);
                }
            }
            if let Some(items) = ahead.remove(&sub).flatten() {
                stack.push(items.into_iter());
            }
        }
        Ok(true)
    }

    /// Where the shards of the file `capability` names are, by asking the
    /// nodes which they hold.
    async fn layout(&self, capability: &Capability) -> Result<Layout, FetchError> {
        let manifest = fetch::fetch_manifest(self.shards, capability, &Counts::default()).await?;
        let stripes: Vec<&StripeRef> = std::iter::once(&capability.manifest)
            .chain(manifest.chunks.iter().map(|c| &c.stripe))
            .collect();
        let ids: Vec<Id> = stripes
            .iter()
            .flat_map(|s| s.shards.iter().copied())
            .collect();
        let present = self.shards.where_are(&ids).await;
        let (per_node, missing, health) = assess(&stripes, &present, self.shards.nodes());
        Ok(Layout {
            manifest,
            per_node,
            missing,
            health,
        })
    }

    /// The layout and health of `remote`.
    ///
    /// # Errors
    /// [`DirectoryError::NotFound`] for no such file, or a fetch error for
    /// its manifest.
    pub async fn stat(&self, remote: &RemotePath) -> Result<FileLayout, DirectoryError> {
        let file = self.file(remote).await?;
        let capability = match file.content {
            Content::Stored(capability) => capability,
            Content::Inline(_) | Content::InlineUnread => {
                return Ok(self.inline_layout(file.info, file.redundancy).await);
            }
        };
        let layout = self.layout(&capability).await?;
        Ok(FileLayout {
            info: FileInfo {
                health: Some(layout.health),
                ..file.info
            },
            redundancy: layout
                .manifest
                .chunks
                .first()
                .map_or(capability.manifest.redundancy, |c| c.stripe.redundancy),
            chunks: layout.manifest.chunks.len(),
            shards_per_node: self.per_node(layout.per_node),
            missing: layout.missing,
            corrupt: 0,
            health: layout.health,
            inline: false,
        })
    }

    /// The layout of an inline file: which nodes hold a copy of its newest
    /// entry that opens, read from every node (after the lookup that found
    /// it repaired the stale ones it reached).
    async fn inline_layout(
        &self,
        info: FileInfo,
        redundancy: cairn_core::Redundancy,
    ) -> FileLayout {
        let nodes = self.shards.nodes();
        let found = self.index.copies(&info.path, info.version).await;
        let copies = found.per_node.iter().sum();
        let health = inline_health(copies, nodes);
        FileLayout {
            info: FileInfo {
                health: Some(health),
                ..info
            },
            redundancy,
            chunks: 0,
            shards_per_node: self.per_node(found.per_node),
            missing: nodes - copies,
            corrupt: found.corrupt,
            health,
            inline: true,
        }
    }

    /// Reads every copy of every shard of `remote` from every node that
    /// claims it and checks its hash.
    ///
    /// # Errors
    /// As [`stat`](Self::stat).
    pub async fn verify(&self, remote: &RemotePath) -> Result<FileLayout, DirectoryError> {
        let file = self.file(remote).await?;
        let capability = match file.content {
            Content::Stored(capability) => capability,
            // Each copy of the entry is authenticated when opened, and the
            // inline bytes checked against the content hash.
            Content::Inline(_) | Content::InlineUnread => {
                return Ok(self.inline_layout(file.info, file.redundancy).await);
            }
        };
        let copies = self.check_copies(&capability).await?;
        let stripes: Vec<&StripeRef> = copies.stripes.iter().collect();
        let (per_node, missing, health) =
            assess(&stripes, &copies.checked.good, self.shards.nodes());
        Ok(FileLayout {
            info: FileInfo {
                health: Some(health),
                ..file.info
            },
            redundancy: copies
                .manifest
                .chunks
                .first()
                .map_or(capability.manifest.redundancy, |c| c.stripe.redundancy),
            chunks: copies.manifest.chunks.len(),
            shards_per_node: self.per_node(per_node),
            missing,
            corrupt: copies.checked.corrupt,
            health,
            inline: false,
        })
    }

    /// Reads every copy of every shard of the file `capability` names from
    /// every node that claims it, and keeps the nodes whose copy matched
    /// its id.
    ///
    /// # Errors
    /// A fetch error for the manifest.
    pub async fn check_copies(&self, capability: &Capability) -> Result<FileCopies, FetchError> {
        let manifest = fetch::fetch_manifest(self.shards, capability, &Counts::default()).await?;
        let stripes: Vec<StripeRef> = std::iter::once(capability.manifest.clone())
            .chain(manifest.chunks.iter().map(|c| c.stripe.clone()))
            .collect();
        let checked = self.shards.check_copies(&stripes).await;
        Ok(FileCopies {
            manifest,
            stripes,
            checked,
        })
    }

    fn per_node(&self, counts: Vec<usize>) -> Vec<(String, usize)> {
        counts
            .into_iter()
            .enumerate()
            .map(|(i, n)| (self.shards.address(i).to_string(), n))
            .collect()
    }

    /// Removes `remote`: writes a tombstone on a majority of nodes, then
    /// drops the references to its shards that no other file of the user
    /// still needs (shards are shared between files with equal chunks).
    ///
    /// # Errors
    /// [`DirectoryError::NotFound`] if there is no such file; a store error
    /// if the tombstone did not reach a majority (then nothing is dropped).
    pub async fn remove(&self, remote: &RemotePath) -> Result<RemoveReport, DirectoryError> {
        let file = self.file(remote).await?;
        let tombstone = || async {
            self.index
                .write(remote, EntryKind::Deleted)
                .await
                .map_err(|e| DirectoryError::Store(e.into()))
        };
        let Content::Stored(capability) = file.content else {
            // An inline file has no shards: the tombstone is all.
            tombstone().await?;
            return Ok(RemoveReport {
                references_dropped: 0,
                shards_kept: 0,
            });
        };
        let counts = Counts::default();
        let manifest = fetch::fetch_manifest(self.shards, &capability, &counts)
            .await
            .ok();
        tombstone().await?;

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
        for Listed { entry, .. } in self.index.list().await? {
            if entry.path == *remote {
                continue;
            }
            let EntryKind::File(other) = entry.kind else {
                continue;
            };
            let Content::Stored(capability) = other.content else {
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
            if let Ok(manifest) = fetch::fetch_manifest(self.shards, &capability, &counts).await {
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
        Ok(RemoveReport {
            references_dropped: self.shards.drop_references(&drop).await,
            shards_kept: kept.len(),
        })
    }
}

/// Where a stored file's shards are.
struct Layout {
    manifest: Manifest,
    per_node: Vec<usize>,
    missing: usize,
    health: Health,
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
        } else if placement::spread(&stripe.shards, holders) < stripe.shards.len()
            && health == Health::Ok
        {
            // Every shard may exist and still not be safe: two shards of a
            // chunk on one node (a put made while a node was down) go
            // together when that node does.
            health = Health::Degraded;
        }
    }
    (per_node, missing, health)
}
