//! Fetching a file: find its newest index entry (index layer), open its
//! manifest, and rebuild every chunk from any k verified shards (shard
//! layer).
//!
//! ```text
//! index entry (newest over the nodes) ─▶ capability ─▶ manifest (any k shards)
//! chunks, `window` at once, written in order:
//!   each stripe from the shard layer: data shards first, parity for the
//!   ones that fail or are slow, then every other node
//! every shard is checked against its id on arrival and again when decoded;
//! the whole file against the manifest's hash before it is renamed into place
//! ```
//!
//! A get into a file writes it through [`OutputFile`]: a large one with
//! direct I/O, past the page cache (see [`crate::output`]).

use std::path::{Path, PathBuf};

use cairn_core::{Capability, FileOpener, Manifest, StripeRef};
use futures::stream::{FuturesOrdered, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::index::{Content, Entry, EntryKind, FileEntry, Index, NoNode, RemotePath};
use crate::output::OutputFile;
use crate::shards::{Counts, Shards};
pub use crate::shards::{HEDGE_AFTER, Part, Unavailable};
use crate::transport::{NodeFailure, ShardFailure, Transport, joined};

/// What a get did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchReport {
    /// File size in bytes.
    pub size: u64,
    /// Chunks in the file.
    pub chunks: usize,
    /// Chunks rebuilt from parity because a data shard was missing.
    pub rebuilt: usize,
    /// Shards fetched.
    pub shards_fetched: usize,
    /// Shard fetches that failed (node down, shard missing or corrupt).
    pub shards_failed: usize,
    /// Whether the output file was written with direct I/O (see
    /// [`crate::output`]); false for gets into a writer.
    pub direct_io: bool,
}

/// Why a get failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// No file of that name (or it was removed).
    #[error("no file {0}")]
    NotFound(RemotePath),
    /// The entry came from a listing, which does not carry an inline
    /// file's bytes: look the file up to read them.
    #[error("the index entry holds no bytes: it came from a listing")]
    Unread,
    /// No node answered the lookup of the file's name.
    #[error("no node could be reached to look up {path}: {}", joined(failed, ", "))]
    NoNode {
        /// The file.
        path: RemotePath,
        /// Every node, with why it failed.
        failed: Vec<NodeFailure>,
    },
    /// The local file exists and overwriting was not allowed.
    #[error("{} exists", .0.display())]
    Exists(PathBuf),
    /// The local file (or the output) could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file, or what the output is.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// Fewer than k shards of a chunk (or of the manifest) could be had.
    #[error(
        "{what}: only {found} of the {needed} shards needed could be fetched; {}",
        joined(failed, "; ")
    )]
    Unavailable {
        /// Which stripe.
        what: Part,
        /// Verified shards found.
        found: usize,
        /// k.
        needed: usize,
        /// The last shard requests that failed, with why.
        failed: Vec<ShardFailure>,
    },
    /// The shards decoded to something that does not check out.
    #[error(transparent)]
    Open(#[from] cairn_core::OpenError),
    /// The scan command refused the fetched file, which was kept at
    /// `kept` instead of its place.
    #[error("{source}; the file was kept as {}, not at {}", kept.display(), local.display())]
    Blocked {
        /// Where the file was meant to go.
        local: PathBuf,
        /// Where it is.
        kept: PathBuf,
        /// What the scan said.
        source: crate::scan::ScanError,
    },
    /// The scan command could not run, or a stream was asked for while a
    /// scan is configured.
    #[error(transparent)]
    Scan(#[from] crate::scan::ScanError),
    /// An inline file could not be stored as chunks, which sharing it
    /// needs (a capability names a manifest).
    #[error("cannot store the inline file as chunks to share it: {0}")]
    Store(Box<crate::store::StoreError>),
}

impl FetchError {
    /// The error for stripe `what` from the shard layer's.
    fn unavailable(what: Part, error: Unavailable) -> Self {
        Self::Unavailable {
            what,
            found: error.found,
            needed: error.needed,
            failed: error.failed,
        }
    }
}

/// The live entry of the file named `remote`.
///
/// # Errors
/// [`FetchError::NotFound`] if there is no such file (or it was removed),
/// [`FetchError::NoNode`] if no node answered.
pub(crate) async fn file_entry<T: Transport>(
    index: &Index<T>,
    remote: &RemotePath,
) -> Result<FileEntry, FetchError> {
    match index.lookup(remote).await {
        Ok(Some(Entry {
            kind: EntryKind::File(file),
            ..
        })) => Ok(file),
        Ok(_) => Err(FetchError::NotFound(remote.clone())),
        Err(NoNode { failed }) => Err(FetchError::NoNode {
            path: remote.clone(),
            failed,
        }),
    }
}

/// The manifest a capability names.
///
/// # Errors
/// [`FetchError::Unavailable`] or [`FetchError::Open`].
pub(crate) async fn fetch_manifest<T: Transport>(
    shards: &Shards<T>,
    capability: &Capability,
    counts: &Counts,
) -> Result<Manifest, FetchError> {
    let stripe = shards
        .fetch_stripe(&capability.manifest, counts)
        .await
        .map_err(|e| FetchError::unavailable(Part::Manifest, e))?;
    Ok(cairn_core::pipeline::open_manifest(capability, &stripe)?)
}

/// The layers a get uses, borrowed from the client.
pub(crate) struct Get<'a, T> {
    /// Fetches the stripes.
    pub shards: &'a Shards<T>,
    /// The scan command, if any.
    pub scan: Option<&'a [String]>,
    /// Whether large output files may be written with direct I/O.
    pub direct_io: bool,
}

/// Where a get writes the bytes it verified: an output file, or any
/// asynchronous writer.
trait Output {
    /// Told the file's size before its first byte.
    fn begin(&mut self, _size: u64) {}
    /// Writes all of `bytes`.
    async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()>;
}

impl Output for OutputFile {
    fn begin(&mut self, size: u64) {
        OutputFile::begin(self, size);
    }

    async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        OutputFile::write_all(self, bytes).await
    }
}

/// An asynchronous writer as an [`Output`].
struct Writer<'a, W>(&'a mut W);

impl<W: AsyncWrite + Unpin> Output for Writer<'_, W> {
    async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.0.write_all(bytes).await
    }
}

impl<T: Transport> Get<'_, T> {
    /// Fetches `content` into the file `local`: written to a temporary file
    /// beside it and renamed into place only once the whole file checks
    /// out (and the scan, if any, passed). `progress` is told the bytes
    /// written so far.
    pub async fn to_file(
        &self,
        content: &Content,
        local: &Path,
        overwrite: bool,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<FetchReport, FetchError> {
        let write_error = |source| FetchError::Write {
            path: local.display().to_string(),
            source,
        };
        if !overwrite && local.exists() {
            return Err(FetchError::Exists(local.to_owned()));
        }
        let parent = match local.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let name = local
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".into());
        let partial = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".cairn-partial")
            .tempfile_in(&parent)
            .map_err(write_error)?;
        let file = partial.reopen().map_err(write_error)?;
        let mut out = OutputFile::new(file, self.direct_io);
        let mut report = self.unscanned(content, &mut out, progress).await?;
        // Flushed and fsync'd before the scan and the rename, as ever.
        report.direct_io = out.finish().await.map_err(write_error)?;
        if let Some(argv) = self.scan
            && let Err(refused) = crate::scan::scan(argv, partial.path()).await
        {
            if let crate::scan::ScanError::Failed { .. } = refused {
                return Err(refused.into()); // the partial file goes
            }
            // Out of place, where it can be looked at, never where a program
            // expecting LOCAL would pick it up.
            let kept = parent.join(format!("{name}.cairn-blocked"));
            partial.persist(&kept).map_err(|e| write_error(e.error))?;
            return Err(FetchError::Blocked {
                local: local.to_owned(),
                kept,
                source: refused,
            });
        }
        // Renamed only now that every chunk and the whole-file hash checked out.
        if overwrite {
            partial.persist(local).map_err(|e| write_error(e.error))?;
        } else {
            partial
                .persist_noclobber(local)
                .map_err(|e| match e.error.kind() {
                    std::io::ErrorKind::AlreadyExists => FetchError::Exists(local.to_owned()),
                    _ => write_error(e.error),
                })?;
        }
        Ok(report)
    }

    /// Fetches `content` and writes it to `out`, chunk by chunk. Every
    /// chunk written was verified; the whole-file hash is checked at the
    /// end, so only an `Ok` means `out` holds the file.
    ///
    /// # Errors
    /// [`crate::scan::ScanError::NeedsFile`] while a scan command is
    /// configured (a stream cannot be scanned before it is used).
    pub async fn to_writer<W: AsyncWrite + Unpin>(
        &self,
        content: &Content,
        out: &mut W,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<FetchReport, FetchError> {
        if self.scan.is_some() {
            return Err(crate::scan::ScanError::NeedsFile.into());
        }
        self.unscanned(content, &mut Writer(out), progress).await
    }

    /// [`to_writer`](Self::to_writer), scanned or not.
    async fn unscanned(
        &self,
        content: &Content,
        out: &mut impl Output,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<FetchReport, FetchError> {
        let write_error = |source| FetchError::Write {
            path: "the output".into(),
            source,
        };
        let capability = match content {
            Content::Stored(capability) => capability,
            Content::InlineUnread => return Err(FetchError::Unread),
            Content::Inline(bytes) => {
                // Authenticated with the entry, and checked against its
                // content hash when the entry was opened.
                out.begin(bytes.len() as u64);
                out.write_all(bytes).await.map_err(write_error)?;
                progress(bytes.len() as u64);
                return Ok(FetchReport {
                    size: bytes.len() as u64,
                    chunks: 0,
                    rebuilt: 0,
                    shards_fetched: 0,
                    shards_failed: 0,
                    direct_io: false,
                });
            }
        };
        let counts = Counts::default();
        let started = std::time::Instant::now();
        let manifest = fetch_manifest(self.shards, capability, &counts).await?;
        tracing::debug!("fetched the manifest in {:?}", started.elapsed());
        let chunks = manifest.chunks.len();
        let size = manifest.size;
        out.begin(size);
        let stripes: Vec<StripeRef> = manifest.chunks.iter().map(|c| c.stripe.clone()).collect();
        let mut opener = FileOpener::new(manifest, std::io::sink());
        let mut pending = FuturesOrdered::new();
        let mut next = 0;
        let mut rebuilt = 0;
        let mut written = 0u64;
        let mut current = 0;
        loop {
            while pending.len() < self.shards.window() && next < stripes.len() {
                let (stripe, index, counts) = (&stripes[next], next, &counts);
                pending.push_back(async move {
                    self.shards
                        .fetch_stripe(stripe, counts)
                        .await
                        .map_err(|e| FetchError::unavailable(Part::Chunk(index), e))
                });
                next += 1;
            }
            let Some(shards) = pending.next().await else {
                break;
            };
            let shards = shards?;
            let k = stripes[current].redundancy.data();
            current += 1;
            if shards[..k].iter().any(Option::is_none) {
                rebuilt += 1;
            }
            let plaintext = opener.open_next(&shards)?;
            out.write_all(&plaintext).await.map_err(write_error)?;
            written += plaintext.len() as u64;
            progress(written);
        }
        opener.finish()?;
        Ok(FetchReport {
            size,
            chunks,
            rebuilt,
            shards_fetched: counts.fetched(),
            shards_failed: counts.failed(),
            direct_io: false,
        })
    }
}
