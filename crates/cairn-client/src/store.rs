//! Storing a file: seal it, hand every chunk's stripe to the shard layer,
//! then write the index entry that names it.
//!
//! ```text
//! blocking thread:  File ─▶ FileSealer ─▶ stripes ──bounded channel (window)──┐
//! async:            for each stripe, at most `window` at once:                 ▼
//!                     shard layer: each shard to its node by placement,
//!                     re-placed if its node fails
//!                   manifest ─▶ sealed, striped and placed like a chunk
//!                   index layer: the entry ─▶ every node; success on a majority
//! ```
//!
//! A file of at most `inline_max` bytes (4 KiB by default) skips the
//! chunks and the manifest: its bytes go inside the sealed index entry,
//! which every node keeps (see [`crate::index::Content::Inline`]). That is
//! one entry write per node instead of 2n fsync'd shard files, and such a
//! file survives the loss of all nodes but one. The upload says which way
//! a file went. `share` turns an inline file into a stored one, since a
//! capability names a manifest.
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

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use cairn_core::keys::{ConvergenceKey, ManifestsKey};
use cairn_core::{Capability, FileSealer, Id, Manifest, Redundancy, SealedStripe};
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc;

use crate::index::{Content, EntryKind, FileEntry, Index, InlineBytes, RemotePath, WriteError};
use crate::shards::{Part, Shards, UploadTally};
use crate::transport::{NodeFailure, Transport, joined};

pub use crate::shards::ASK_FIRST_ABOVE;

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
    /// Nodes that could not be reached, or failed a request, during the
    /// put.
    pub failed_nodes: Vec<NodeFailure>,
    /// Whether the file went inline into its index entry (then `chunks`
    /// is 0 and `fewest_nodes` counts the nodes that stored the entry).
    pub inline: bool,
}

/// Why a put failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The local file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// Too few nodes are reachable to store any chunk safely.
    #[error(
        "only {reachable} of {total} nodes are reachable, a put needs {needed}; unreachable: {}",
        joined(failed, ", ")
    )]
    TooFewNodes {
        /// Reachable nodes.
        reachable: usize,
        /// Configured nodes.
        total: usize,
        /// Nodes a chunk needs (`min_shards`).
        needed: usize,
        /// The nodes that failed, with why.
        failed: Vec<NodeFailure>,
    },
    /// A chunk (or the manifest) could not be stored on enough nodes.
    #[error(
        "{what} reached only {stored} nodes, {needed} needed; failed: {}",
        joined(failed, ", ")
    )]
    ChunkNotStored {
        /// Which stripe.
        what: Part,
        /// Distinct nodes holding its shards.
        stored: usize,
        /// `min_shards`.
        needed: usize,
        /// The nodes that failed, with why.
        failed: Vec<NodeFailure>,
    },
    /// The index entry reached too few nodes.
    #[error(
        "the index entry reached {acknowledged} of {total} nodes, a majority ({needed}) is needed; failed: {}",
        joined(failed, ", ")
    )]
    IndexNotStored {
        /// Nodes that stored it.
        acknowledged: usize,
        /// Configured nodes.
        total: usize,
        /// A majority.
        needed: usize,
        /// The nodes that failed or refused, with why.
        failed: Vec<NodeFailure>,
    },
    /// The file could not be sealed.
    #[error(transparent)]
    Seal(#[from] cairn_core::SealError),
    /// The manifest could not be striped.
    #[error(transparent)]
    Stripe(#[from] cairn_core::erasure::StripeError),
    /// The index entry could not be sealed.
    #[error(transparent)]
    Index(#[from] crate::index::IndexEntryError),
    /// The scan command refused the file (or could not run): nothing was
    /// stored.
    #[error("not stored: {0}")]
    Scan(#[from] crate::scan::ScanError),
}

impl From<WriteError> for StoreError {
    fn from(error: WriteError) -> Self {
        match error {
            WriteError::NotStored {
                acknowledged,
                total,
                needed,
                failed,
            } => Self::IndexNotStored {
                acknowledged,
                total,
                needed,
                failed,
            },
            WriteError::Seal(e) => Self::Index(e),
        }
    }
}

/// How a client seals and spreads the files it stores.
#[derive(Debug)]
pub(crate) struct StoreSettings {
    /// Keys the chunks.
    pub convergence: ConvergenceKey,
    /// Keys the manifests.
    pub manifests: ManifestsKey,
    /// k and n of new files.
    pub redundancy: Redundancy,
    /// Distinct nodes a chunk must reach.
    pub min_shards: usize,
    /// Stripes uploading at once.
    pub window: usize,
    /// Files up to this size go inline into their index entry.
    pub inline_max: usize,
}

/// What [`Put::upload`] did with its input.
pub(crate) enum Upload {
    /// Sealed and stored as chunks and a manifest, not yet named.
    Chunks(Uploaded),
    /// At most the inline limit: not sealed, here are the bytes.
    Inline(Vec<u8>),
}

/// A file whose shards are all stored, not yet named in the index.
pub(crate) struct Uploaded {
    /// Opens the manifest.
    pub capability: Capability,
    /// The manifest.
    pub manifest: Manifest,
    /// What the upload did (`inline` false).
    pub report: StoreReport,
}

/// What the sealing thread made of the input.
enum Sealed {
    /// The input was at most `inline_max` bytes: here they are.
    Inline(Vec<u8>),
    /// The input was chunked and sealed; the stripes went to the uploads.
    Manifest(Manifest),
}

/// The layers a put uses, borrowed from the client.
pub(crate) struct Put<'a, T> {
    /// Names the file.
    pub index: &'a Index<T>,
    /// Stores its stripes.
    pub shards: &'a Shards<T>,
    /// How.
    pub settings: &'a StoreSettings,
}

impl<T: Transport> Put<'_, T> {
    /// Stores the file at `local` as `remote`, scanned first by `scan` if
    /// set; see the module docs. `progress` is told the number of file bytes
    /// sealed so far.
    pub async fn file(
        &self,
        local: &Path,
        remote: &RemotePath,
        scan: Option<&[String]>,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<StoreReport, StoreError> {
        let read_error = |source| StoreError::Read {
            path: local.to_owned(),
            source,
        };
        if let Some(argv) = scan {
            crate::scan::scan(argv, local).await?;
        }
        let file = std::fs::File::open(local).map_err(read_error)?;
        let metadata = file.metadata().map_err(read_error)?;
        let modified = metadata
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as u64);
        self.reader(file, remote, modified, progress).await
    }

    /// Stores what `reader` yields (read on a blocking thread) as `remote`,
    /// with modification time `modified_unix_ms`.
    pub async fn reader<R: std::io::Read + Send + 'static>(
        &self,
        reader: R,
        remote: &RemotePath,
        modified_unix_ms: u64,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<StoreReport, StoreError> {
        match self
            .upload(reader, self.settings.inline_max, progress)
            .await?
        {
            Upload::Chunks(uploaded) => {
                self.write_file_entry(
                    remote,
                    uploaded.capability,
                    &uploaded.manifest,
                    modified_unix_ms,
                )
                .await?;
                Ok(uploaded.report)
            }
            Upload::Inline(bytes) => {
                let size = bytes.len() as u64;
                let copies = self
                    .write_inline_entry(remote, bytes, modified_unix_ms)
                    .await?;
                progress(size);
                let nodes = self.shards.nodes();
                Ok(StoreReport {
                    size,
                    chunks: 0,
                    shards_sent: 0,
                    shards_present: 0,
                    bytes_sent: 0,
                    redundancy: self.settings.redundancy,
                    fewest_nodes: copies,
                    degraded: copies < nodes,
                    failed_nodes: self.shards.failures(&UploadTally::default()),
                    inline: true,
                })
            }
        }
    }

    /// Seals what `reader` yields and stores every chunk's and the
    /// manifest's shards, without naming the file in the index; input of
    /// at most `inline_max` bytes is not sealed, and comes back as
    /// [`Upload::Inline`].
    pub async fn upload<R: std::io::Read + Send + 'static>(
        &self,
        reader: R,
        inline_max: usize,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<Upload, StoreError> {
        let settings = self.settings;
        let unreachable = self.shards.unreachable().await;
        let up = self.shards.nodes() - unreachable.len();
        if up < settings.min_shards {
            return Err(StoreError::TooFewNodes {
                reachable: up,
                total: self.shards.nodes(),
                needed: settings.min_shards,
                failed: unreachable,
            });
        }

        // Seal on a blocking thread; at most `window` stripes wait.
        let (tx, mut rx) = mpsc::channel::<SealedStripe>(settings.window);
        let key = settings.convergence.clone();
        let redundancy = settings.redundancy;
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

        let tally = UploadTally::default();
        let mut uploads = FuturesUnordered::new();
        let mut chunks = 0usize;
        let mut fewest = usize::MAX;
        let mut degraded = false;
        let mut sealed_bytes = 0u64;
        let mut failure: Option<StoreError> = None;
        loop {
            // Keep up to `window` stripes uploading; take results as they come.
            tokio::select! {
                stripe = rx.recv(), if uploads.len() < settings.window && failure.is_none() => {
                    let Some(stripe) = stripe else { break };
                    let index = chunks;
                    chunks += 1;
                    sealed_bytes += u64::from(stripe.chunk.len);
                    progress(sealed_bytes);
                    let tally = &tally;
                    uploads.push(async move {
                        let placed = self.shards.upload_stripe(&stripe.chunk.stripe, stripe.shards, tally).await;
                        (index, placed)
                    });
                }
                Some((index, placed)) = uploads.next(), if !uploads.is_empty() => {
                    let stored = placed.distinct();
                    fewest = fewest.min(stored);
                    degraded |= placed.degraded();
                    if stored < settings.min_shards && failure.is_none() {
                        failure = Some(StoreError::ChunkNotStored {
                            what: Part::Chunk(index),
                            stored,
                            needed: settings.min_shards,
                            failed: self.shards.failures(&tally),
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
            Sealed::Inline(bytes) => return Ok(Upload::Inline(bytes)),
            Sealed::Manifest(manifest) => manifest,
        };

        // The manifest: sealed, striped and placed like a chunk.
        let (capability, shards) = cairn_core::pipeline::seal_manifest(
            &manifest,
            &settings.manifests,
            settings.redundancy,
        )?;
        let placed = self
            .shards
            .upload_stripe(&capability.manifest, shards, &tally)
            .await;
        let stored = placed.distinct();
        if stored < settings.min_shards {
            return Err(StoreError::ChunkNotStored {
                what: Part::Manifest,
                stored,
                needed: settings.min_shards,
                failed: self.shards.failures(&tally),
            });
        }
        fewest = fewest.min(stored);
        degraded |= placed.degraded();

        let report = StoreReport {
            size: manifest.size,
            chunks,
            shards_sent: tally.sent.load(Ordering::Relaxed),
            shards_present: tally.present.load(Ordering::Relaxed),
            bytes_sent: tally.bytes.load(Ordering::Relaxed),
            redundancy: settings.redundancy,
            fewest_nodes: fewest,
            degraded,
            failed_nodes: self.shards.failures(&tally),
            inline: false,
        };
        Ok(Upload::Chunks(Uploaded {
            capability,
            manifest,
            report,
        }))
    }

    /// Writes the entry of a newly stored file.
    pub async fn write_file_entry(
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
            redundancy: self.settings.redundancy,
            content_hash: manifest.hash,
        };
        self.index.write(remote, EntryKind::File(file)).await?;
        Ok(())
    }

    /// Writes the entry of a file kept inline; returns how many nodes
    /// stored it.
    async fn write_inline_entry(
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
            redundancy: self.settings.redundancy,
        };
        Ok(self.index.write(remote, EntryKind::File(file)).await?)
    }
}
