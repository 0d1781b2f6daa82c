//! Storing a file: seal it, spread every chunk's shards over the nodes,
//! then write the index entry that names it.
//!
//! ```text
//! blocking thread:  File ─▶ FileSealer ─▶ stripes ──bounded channel (window)──┐
//! async:            for each stripe, at most `window` at once:                 ▼
//!                     place shards by rendezvous over reachable nodes
//!                     per shard: `has` on its node → put only if the user lacks it
//!                     a failed node: marked down, its shard re-placed on a node holding none
//!                   manifest ─▶ sealed, striped and placed like a chunk
//!                   index entry ─▶ every node; success on a majority of all nodes
//! ```
//!
//! A file of at most `inline_max` bytes (4 KiB by default) skips the
//! chunks and the manifest: its bytes go inside the sealed index entry,
//! which every node keeps (see [`crate::index::Content::Inline`]). That is
//! one entry write per node instead of 2n fsync'd shard files, and such a
//! file survives the loss of all nodes but one. `share` turns an inline
//! file into a stored one, since a capability names a manifest.
//!
//! Guarantees:
//! - A put succeeds only if every chunk (and the manifest) has at least
//!   `min_shards` shards on distinct nodes, and the index entry reached a
//!   majority of the configured nodes. Otherwise it fails naming the nodes
//!   that failed, and the index is untouched, so no name points at a
//!   partial file.
//! - Shards a node already holds for the user are not sent again, so a put
//!   that was interrupted costs only what is missing when run again, and a
//!   changed file sends only its changed chunks.
//! - Memory holds at most `window` stripes (plus the chunker's buffer),
//!   whatever the file size.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use cairn_core::erasure::{Shard, StripeRef};
use cairn_core::{FileSealer, Redundancy, SealedStripe};
use cairn_net::client::ClientError;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc;

use crate::Client;
use crate::placement;

/// Shards larger than this are sent only after asking the node whether
/// the user already holds them; smaller ones are sent straight away.
pub const ASK_FIRST_ABOVE: usize = 64 * 1024;

/// What a put did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreReport {
    /// File size in bytes.
    pub size: u64,
    /// Chunks the file was cut into.
    pub chunks: usize,
    /// Shards sent to nodes.
    pub shards_sent: usize,
    /// Shards the nodes already held: not written again, and, above
    /// [`ASK_FIRST_ABOVE`] bytes, not even sent.
    pub shards_present: usize,
    /// Bytes of shards sent.
    pub bytes_sent: u64,
    /// k and n.
    pub redundancy: Redundancy,
    /// The fewest distinct nodes holding shards of any one chunk.
    pub fewest_nodes: usize,
    /// Whether some chunk has fewer than n shards stored (a later repair
    /// restores them).
    pub degraded: bool,
    /// Nodes that could not be reached or failed during the put.
    pub failed_nodes: Vec<String>,
    /// Whether the file went inline into its index entry (then `chunks`
    /// is 0 and `fewest_nodes` counts the nodes that stored the entry).
    pub inline: bool,
}

/// Why a put failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The local file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// Too few nodes are reachable to store any chunk safely.
    #[error("only {reachable} of {total} nodes are reachable, a put needs {needed}; unreachable: {}", failed.join(", "))]
    TooFewNodes {
        /// Reachable nodes.
        reachable: usize,
        /// Configured nodes.
        total: usize,
        /// Nodes a chunk needs (`min_shards`).
        needed: usize,
        /// The nodes that failed, with why.
        failed: Vec<String>,
    },
    /// A chunk could not be stored on enough nodes.
    #[error("chunk {chunk} reached only {stored} nodes, {needed} needed; failed: {}", failed.join(", "))]
    ChunkNotStored {
        /// Index of the chunk (the manifest counts as the last).
        chunk: usize,
        /// Distinct nodes holding its shards.
        stored: usize,
        /// `min_shards`.
        needed: usize,
        /// The nodes that failed, with why.
        failed: Vec<String>,
    },
    /// The index entry reached too few nodes.
    #[error("the index entry reached {acknowledged} of {total} nodes, a majority ({needed}) is needed; failed: {}", failed.join(", "))]
    IndexNotStored {
        /// Nodes that stored it.
        acknowledged: usize,
        /// Configured nodes.
        total: usize,
        /// A majority.
        needed: usize,
        /// The nodes that failed, with why.
        failed: Vec<String>,
    },
    /// The file could not be sealed.
    #[error(transparent)]
    Seal(#[from] cairn_core::SealError),
    /// The manifest could not be striped.
    #[error(transparent)]
    Stripe(#[from] cairn_core::erasure::StripeError),
    /// The index entry could not be written for another reason.
    #[error(transparent)]
    Index(#[from] crate::index::IndexEntryError),
    /// The scan command refused the file (or could not run): nothing was
    /// stored.
    #[error("not stored: {0}")]
    Scan(#[from] crate::scan::ScanError),
}

/// Counters shared by the uploads of one put.
#[derive(Debug, Default)]
struct Tally {
    sent: AtomicUsize,
    present: AtomicUsize,
    bytes: AtomicU64,
}

/// Where each shard of a stripe ended up.
#[derive(Debug)]
struct Placed {
    /// Node holding each shard, if it was stored.
    nodes: Vec<Option<usize>>,
}

impl Placed {
    fn distinct(&self) -> usize {
        placement::distinct_nodes(&self.nodes)
    }
}

/// What the sealing thread made of the input.
enum Sealed {
    /// The input was at most `inline_max` bytes: here they are.
    Inline(Vec<u8>),
    /// The input was chunked and sealed; the stripes went to the uploads.
    Manifest(cairn_core::Manifest),
}

/// A file whose shards are all stored, not yet named in the index.
pub(crate) struct Uploaded {
    /// Opens the manifest.
    pub capability: cairn_core::Capability,
    /// The manifest.
    pub manifest: cairn_core::Manifest,
    /// What the upload did (`inline` false).
    pub report: StoreReport,
}

impl Client {
    /// Stores the file at `local` as `remote`; see the module docs.
    /// `progress` is told the number of file bytes sealed so far.
    ///
    /// # Errors
    /// [`StoreError`]: the file cannot be read, too few nodes are reachable,
    /// a chunk or the index entry did not reach enough nodes.
    pub async fn store_file(
        &self,
        local: &Path,
        remote: &crate::index::RemotePath,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<StoreReport, StoreError> {
        let read_error = |source| StoreError::Read {
            path: local.display().to_string(),
            source,
        };
        if let Some(argv) = &self.scan {
            crate::scan::scan(argv, local).await?;
        }
        let file = std::fs::File::open(local).map_err(read_error)?;
        let metadata = file.metadata().map_err(read_error)?;
        let modified = metadata
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as u64);
        self.store_from(file, remote, modified, progress).await
    }

    /// Stores what the asynchronous `reader` yields as `remote`, with
    /// modification time `modified_unix_ms`.
    ///
    /// # Errors
    /// As [`store_file`](Self::store_file).
    pub async fn store_async<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
        &self,
        reader: R,
        remote: &crate::index::RemotePath,
        modified_unix_ms: u64,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<StoreReport, StoreError> {
        // The sealer reads on a blocking thread; the bridge turns the async
        // reader into a blocking one there.
        if self.scan.is_some() {
            return Err(crate::scan::ScanError::NeedsFile.into());
        }
        let reader = tokio_util::io::SyncIoBridge::new(reader);
        self.store_from(reader, remote, modified_unix_ms, progress)
            .await
    }

    /// Stores what `reader` yields as `remote`, with modification time
    /// `modified_unix_ms`. `reader` is read on a blocking thread.
    ///
    /// # Errors
    /// As [`store_file`](Self::store_file); [`crate::scan::ScanError::NeedsFile`]
    /// while a scan command is configured.
    pub async fn store_reader<R: std::io::Read + Send + 'static>(
        &self,
        reader: R,
        remote: &crate::index::RemotePath,
        modified_unix_ms: u64,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<StoreReport, StoreError> {
        if self.scan.is_some() {
            return Err(crate::scan::ScanError::NeedsFile.into());
        }
        self.store_from(reader, remote, modified_unix_ms, progress)
            .await
    }

    /// [`store_reader`](Self::store_reader), scanned or not.
    async fn store_from<R: std::io::Read + Send + 'static>(
        &self,
        reader: R,
        remote: &crate::index::RemotePath,
        modified_unix_ms: u64,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<StoreReport, StoreError> {
        match self.upload(reader, self.inline_max, progress).await? {
            Ok(uploaded) => {
                self.write_file_entry(
                    remote,
                    uploaded.capability,
                    &uploaded.manifest,
                    modified_unix_ms,
                )
                .await?;
                Ok(uploaded.report)
            }
            Err(bytes) => {
                let size = bytes.len() as u64;
                let copies = self
                    .write_inline_entry(remote, bytes, modified_unix_ms)
                    .await?;
                progress(size);
                Ok(StoreReport {
                    size,
                    chunks: 0,
                    shards_sent: 0,
                    shards_present: 0,
                    bytes_sent: 0,
                    redundancy: self.redundancy,
                    fewest_nodes: copies,
                    degraded: copies < self.cluster.len(),
                    failed_nodes: self.down_nodes(),
                    inline: true,
                })
            }
        }
    }

    /// Seals what `reader` yields and stores every chunk's and the
    /// manifest's shards, without naming the file in the index. Input of at
    /// most `inline_max` bytes is not sealed: it comes back as `Err(bytes)`.
    pub(crate) async fn upload<R: std::io::Read + Send + 'static>(
        &self,
        reader: R,
        inline_max: usize,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<Result<Uploaded, Vec<u8>>, StoreError> {
        let reachable = self.reachable().await;
        let up = reachable.iter().filter(|r| r.is_ok()).count();
        if up < self.min_shards {
            return Err(StoreError::TooFewNodes {
                reachable: up,
                total: self.cluster.len(),
                needed: self.min_shards,
                failed: self.failures(&reachable),
            });
        }

        // Seal on a blocking thread; at most `window` stripes wait.
        let (tx, mut rx) = mpsc::channel::<SealedStripe>(self.window);
        let key = self.keys.convergence.clone();
        let redundancy = self.redundancy;
        let sealing = tokio::task::spawn_blocking(move || {
            use std::io::Read;
            // Read up to one byte past the inline limit: a file that ends
            // before it is not sealed at all.
            let mut reader = reader;
            let mut head = Vec::new();
            if inline_max > 0 {
                (&mut reader)
                    .take(inline_max as u64 + 1)
                    .read_to_end(&mut head)?;
                if head.len() <= inline_max {
                    return Ok(Sealed::Inline(head));
                }
            }
            let reader = std::io::Cursor::new(head).chain(reader);
            let mut sealer = FileSealer::new(reader, &key, redundancy);
            for stripe in sealer.by_ref() {
                if tx.blocking_send(stripe?).is_err() {
                    break; // the uploads stopped: an error is being reported
                }
            }
            sealer.finish().map(Sealed::Manifest)
        });

        let tally = Arc::new(Tally::default());
        let mut uploads = FuturesUnordered::new();
        let mut chunks = 0usize;
        let mut fewest = usize::MAX;
        let mut degraded = false;
        let mut sealed_bytes = 0u64;
        let mut failure: Option<StoreError> = None;
        loop {
            // Keep up to `window` stripes uploading; take results as they come.
            tokio::select! {
                stripe = rx.recv(), if uploads.len() < self.window && failure.is_none() => {
                    let Some(stripe) = stripe else { break };
                    let index = chunks;
                    chunks += 1;
                    sealed_bytes += u64::from(stripe.chunk.len);
                    progress(sealed_bytes);
                    let tally = tally.clone();
                    uploads.push(async move {
                        let placed = self.upload_stripe(&stripe.chunk.stripe, stripe.shards, &tally).await;
                        (index, placed)
                    });
                }
                Some((index, placed)) = uploads.next(), if !uploads.is_empty() => {
                    let stored = placed.distinct();
                    fewest = fewest.min(stored);
                    degraded |= placed.nodes.iter().any(Option::is_none) || stored < self.redundancy.total();
                    if stored < self.min_shards && failure.is_none() {
                        failure = Some(StoreError::ChunkNotStored {
                            chunk: index,
                            stored,
                            needed: self.min_shards,
                            failed: self.down_nodes(),
                        });
                    }
                }
                else => break,
            }
        }
        while let Some((_, _)) = uploads.next().await {}
        drop(rx);
        let manifest = sealing.await.expect("the sealer does not panic");
        if let Some(failure) = failure {
            return Err(failure);
        }
        let manifest = match manifest? {
            Sealed::Inline(bytes) => return Ok(Err(bytes)),
            Sealed::Manifest(manifest) => manifest,
        };

        // The manifest: sealed, striped and placed like a chunk.
        let (capability, shards) =
            cairn_core::pipeline::seal_manifest(&manifest, &self.keys.manifests, self.redundancy)?;
        let placed = self
            .upload_stripe(&capability.manifest, shards, &tally)
            .await;
        let stored = placed.distinct();
        if stored < self.min_shards {
            return Err(StoreError::ChunkNotStored {
                chunk: chunks,
                stored,
                needed: self.min_shards,
                failed: self.down_nodes(),
            });
        }
        fewest = fewest.min(stored);
        degraded |= stored < self.redundancy.total();

        let report = StoreReport {
            size: manifest.size,
            chunks,
            shards_sent: tally.sent.load(Ordering::Relaxed),
            shards_present: tally.present.load(Ordering::Relaxed),
            bytes_sent: tally.bytes.load(Ordering::Relaxed),
            redundancy: self.redundancy,
            fewest_nodes: fewest,
            degraded,
            failed_nodes: self.down_nodes(),
            inline: false,
        };
        Ok(Ok(Uploaded {
            capability,
            manifest,
            report,
        }))
    }

    /// Stores the shards of one stripe on distinct nodes in rendezvous
    /// order, re-placing the shards of nodes that fail.
    async fn upload_stripe(&self, stripe: &StripeRef, shards: Vec<Shard>, tally: &Tally) -> Placed {
        let key = placement::stripe_key(stripe);
        let ids = self.cluster.node_ids();
        let ranking = placement::ranking(&key, &ids);
        let mut reachable: Vec<bool> = (0..ids.len()).map(|i| !self.cluster.is_down(i)).collect();
        let mut target = placement::place(&key, &ids, &reachable, shards.len());
        let shards: Vec<(cairn_core::Id, Bytes)> = shards
            .into_iter()
            .map(|s| (s.id, Bytes::from(s.bytes)))
            .collect();
        let mut nodes: Vec<Option<usize>> = vec![None; shards.len()];
        let mut todo: Vec<usize> = (0..shards.len()).collect();
        // Each round sends the shards still to place; a failure marks the
        // node down and the next round finds the shard another node.
        for _round in 0..ids.len() {
            if todo.is_empty() {
                break;
            }
            let attempts = todo.iter().filter_map(|&s| target[s].map(|node| (s, node)));
            let results = futures::future::join_all(attempts.map(|(s, node)| {
                let (id, bytes) = shards[s].clone();
                async move {
                    let outcome = self.put_shard(node, id, bytes, tally).await;
                    (s, node, outcome)
                }
            }))
            .await;
            let mut failed = Vec::new();
            for (s, node, outcome) in results {
                match outcome {
                    Ok(()) => nodes[s] = Some(node),
                    Err(_) => {
                        reachable[node] = false;
                        failed.push(s);
                    }
                }
            }
            todo = failed;
            todo.extend((0..shards.len()).filter(|&s| target[s].is_none() && nodes[s].is_none()));
            todo.sort_unstable();
            todo.dedup();
            // Re-place: prefer reachable nodes holding no shard of this stripe.
            for &s in &todo {
                let holding: Vec<usize> = nodes.iter().flatten().copied().collect();
                let free = ranking
                    .iter()
                    .copied()
                    .find(|&n| reachable[n] && !holding.contains(&n));
                let any = ranking.iter().copied().find(|&n| reachable[n]);
                target[s] = free.or(any);
            }
            if todo.iter().all(|&s| target[s].is_none()) {
                break;
            }
        }
        Placed { nodes }
    }

    /// Puts one shard on `node` unless the user already holds it there.
    async fn put_shard(
        &self,
        node: usize,
        id: cairn_core::Id,
        bytes: Bytes,
        tally: &Tally,
    ) -> Result<(), ClientError> {
        self.cluster
            .on(node, |connection| {
                let bytes = bytes.clone();
                async move {
                    let len = bytes.len() as u64;
                    // Asking first saves sending a large shard the node holds;
                    // a small one costs less to send than the extra round trip
                    // (a put of a shard already held stores nothing).
                    if bytes.len() > ASK_FIRST_ABOVE {
                        let has = connection.has_shards(&[id]).await?;
                        if has.mine[0] {
                            tally.present.fetch_add(1, Ordering::Relaxed);
                            return Ok(());
                        }
                    }
                    let written = connection.put_shard(&id, bytes).await?;
                    if written || len > ASK_FIRST_ABOVE as u64 {
                        tally.sent.fetch_add(1, Ordering::Relaxed);
                        tally.bytes.fetch_add(len, Ordering::Relaxed);
                    } else {
                        tally.present.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(())
                }
            })
            .await
    }
}
