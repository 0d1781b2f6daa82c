//! Fetching a file: find its newest index entry, open its manifest, and
//! rebuild every chunk from any k verified shards.
//!
//! ```text
//! index entry (newest over the nodes) ─▶ capability ─▶ manifest (any k shards)
//! chunks, `window` at once, written in order:
//!   data shards first, each from the node rendezvous placement puts it on
//!   a shard that fails (node down, missing, corrupt, timeout) → the next parity shard
//!   still short of k → look for the missing shards on every other node
//! every shard is checked against its id on arrival and again when decoded;
//! the whole file against the manifest's hash before it is renamed into place
//! ```
//!
//! With all data shards at hand, decoding is a copy; parity is fetched only
//! for the data shards that could not be had.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use cairn_core::{Capability, FileOpener, Manifest, StripeRef};
use cairn_net::client::ClientError;
use futures::stream::{FuturesOrdered, FuturesUnordered, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::Client;
use crate::index::Content;
use crate::placement;

/// How long a shard may take before the next parity shard is asked for
/// alongside it.
pub const HEDGE_AFTER: std::time::Duration = std::time::Duration::from_millis(500);

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
}

/// Why a get failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// No file of that name (or it was removed).
    #[error("no file {0}")]
    NotFound(String),
    /// The local file exists and overwriting was not allowed.
    #[error("{0} exists; pass --force to overwrite it")]
    Exists(String),
    /// The local file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// Fewer than k shards of a chunk (or of the manifest) could be had.
    #[error("{what}: only {found} of the {needed} shards needed could be fetched; {}", failed.join("; "))]
    Unavailable {
        /// "chunk N" or "the manifest".
        what: String,
        /// Verified shards found.
        found: usize,
        /// k.
        needed: usize,
        /// The last shard requests that failed, with why.
        failed: Vec<String>,
    },
    /// The shards decoded to something that does not check out.
    #[error(transparent)]
    Open(#[from] cairn_core::OpenError),
    /// The index could not be read.
    #[error(transparent)]
    Index(#[from] crate::index::IndexEntryError),
    /// The scan command refused the fetched file, which was kept at
    /// `kept` instead of its place.
    #[error("{source}; the file was kept as {kept}, not at {local}")]
    Blocked {
        /// Where the file was meant to go.
        local: String,
        /// Where it is.
        kept: String,
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

/// Shard fetches of one operation, counted, with why the last ones failed.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    fetched: AtomicUsize,
    failed: AtomicUsize,
    /// `address: shard N: why`, for the error if a stripe cannot be had
    /// (the most recent few only).
    reasons: std::sync::Mutex<std::collections::VecDeque<String>>,
}

impl Counts {
    /// How many reasons an error lists at most.
    const REASONS: usize = 8;

    fn failed(&self, reason: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut reasons = self.reasons.lock().unwrap_or_else(|p| p.into_inner());
        if reasons.len() == Self::REASONS {
            reasons.pop_front();
        }
        reasons.push_back(reason);
    }

    fn reasons(&self) -> Vec<String> {
        self.reasons
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

impl Client {
    /// Fetches `remote` into the file `local`: written to a temporary file
    /// beside it and renamed into place only once the whole file checks
    /// out. `progress` is told the bytes written so far.
    ///
    /// # Errors
    /// [`FetchError`]: no such file, `local` exists and `overwrite` is
    /// false, a chunk is unavailable, or the bytes do not check out.
    pub async fn fetch_file(
        &self,
        remote: &crate::index::RemotePath,
        local: &Path,
        overwrite: bool,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<FetchReport, FetchError> {
        let started = std::time::Instant::now();
        let file = self.file_entry(remote).await?;
        tracing::debug!("looked up {remote} in {:?}", started.elapsed());
        self.fetch_content_to_file(&file.content, local, overwrite, progress)
            .await
    }

    /// Fetches `remote` and writes it to the asynchronous `out`. Every chunk
    /// written was verified; the whole-file hash is checked at the end, so
    /// only an `Ok` means `out` holds the file.
    ///
    /// # Errors
    /// As [`fetch_file`](Self::fetch_file).
    pub async fn fetch_to<W: AsyncWrite + Unpin>(
        &self,
        remote: &crate::index::RemotePath,
        out: &mut W,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<FetchReport, FetchError> {
        if self.scan.is_some() {
            return Err(crate::scan::ScanError::NeedsFile.into());
        }
        let file = self.file_entry(remote).await?;
        self.fetch_unscanned(&file.content, out, progress).await
    }

    /// Fetches the file `capability` names into `local`, as
    /// [`fetch_file`](Self::fetch_file) does.
    ///
    /// # Errors
    /// As [`fetch_file`](Self::fetch_file).
    pub async fn fetch_capability_to_file(
        &self,
        capability: &Capability,
        local: &Path,
        overwrite: bool,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<FetchReport, FetchError> {
        // (A clone of a few hundred bytes: the content owns its capability.)
        let content = Content::Stored(capability.clone());
        self.fetch_content_to_file(&content, local, overwrite, progress)
            .await
    }

    /// [`fetch_capability_to_file`](Self::fetch_capability_to_file) for a
    /// stored or an inline file.
    async fn fetch_content_to_file(
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
            return Err(FetchError::Exists(local.display().to_string()));
        }
        let parent = match local.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => std::path::PathBuf::from("."),
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
        let file = tokio::fs::File::from_std(partial.reopen().map_err(write_error)?);
        let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
        let report = self.fetch_unscanned(content, &mut out, progress).await?;
        out.flush().await.map_err(write_error)?;
        out.into_inner().sync_all().await.map_err(write_error)?;
        if let Some(argv) = &self.scan
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
                local: local.display().to_string(),
                kept: kept.display().to_string(),
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
                    std::io::ErrorKind::AlreadyExists => {
                        FetchError::Exists(local.display().to_string())
                    }
                    _ => write_error(e.error),
                })?;
        }
        Ok(report)
    }

    /// Fetches the file `capability` names and writes it to `out`, chunk by
    /// chunk. Every chunk written was verified; the whole-file hash is
    /// checked at the end, so only an `Ok` means `out` holds the file.
    ///
    /// # Errors
    /// As [`fetch_file`](Self::fetch_file); [`crate::scan::ScanError::NeedsFile`]
    /// while a scan command is configured.
    pub async fn fetch_capability_to<W: AsyncWrite + Unpin>(
        &self,
        capability: &Capability,
        out: &mut W,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<FetchReport, FetchError> {
        if self.scan.is_some() {
            return Err(crate::scan::ScanError::NeedsFile.into());
        }
        let content = Content::Stored(capability.clone());
        self.fetch_unscanned(&content, out, progress).await
    }

    /// [`fetch_capability_to`](Self::fetch_capability_to) for a stored or an
    /// inline file, scanned or not.
    async fn fetch_unscanned<W: AsyncWrite + Unpin>(
        &self,
        content: &Content,
        out: &mut W,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<FetchReport, FetchError> {
        let capability = match content {
            Content::Stored(capability) => capability,
            Content::Inline(bytes) => {
                // Authenticated with the entry, and checked against its
                // content hash when the entry was opened.
                out.write_all(bytes)
                    .await
                    .map_err(|source| FetchError::Write {
                        path: "the output".into(),
                        source,
                    })?;
                progress(bytes.len() as u64);
                return Ok(FetchReport {
                    size: bytes.len() as u64,
                    chunks: 0,
                    rebuilt: 0,
                    shards_fetched: 0,
                    shards_failed: 0,
                });
            }
        };
        let counts = Counts::default();
        let started = std::time::Instant::now();
        let manifest = self.fetch_manifest(capability, &counts).await?;
        tracing::debug!("fetched the manifest in {:?}", started.elapsed());
        let chunks = manifest.chunks.len();
        let size = manifest.size;
        let stripes: Vec<StripeRef> = manifest.chunks.iter().map(|c| c.stripe.clone()).collect();
        let mut opener = FileOpener::new(manifest, std::io::sink());
        let mut pending = FuturesOrdered::new();
        let mut next = 0;
        let mut rebuilt = 0;
        let mut written = 0u64;
        let mut current = 0;
        loop {
            while pending.len() < self.window && next < stripes.len() {
                let stripe = &stripes[next];
                let what = format!("chunk {next}");
                let counts = &counts;
                pending.push_back(async move { self.fetch_stripe(stripe, &what, counts).await });
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
            out.write_all(&plaintext)
                .await
                .map_err(|source| FetchError::Write {
                    path: "the output".into(),
                    source,
                })?;
            written += plaintext.len() as u64;
            progress(written);
        }
        opener.finish()?;
        Ok(FetchReport {
            size,
            chunks,
            rebuilt,
            shards_fetched: counts.fetched.load(Ordering::Relaxed),
            shards_failed: counts.failed.load(Ordering::Relaxed),
        })
    }

    /// The manifest a capability names.
    pub(crate) async fn fetch_manifest(
        &self,
        capability: &Capability,
        counts: &Counts,
    ) -> Result<Manifest, FetchError> {
        let shards = self
            .fetch_stripe(&capability.manifest, "the manifest", counts)
            .await?;
        Ok(cairn_core::pipeline::open_manifest(capability, &shards)?)
    }

    /// Any k verified shards of `stripe`, data shards first; `None` in the
    /// slots not fetched.
    pub(crate) async fn fetch_stripe(
        &self,
        stripe: &StripeRef,
        what: &str,
        counts: &Counts,
    ) -> Result<Vec<Option<Bytes>>, FetchError> {
        let (k, n) = (stripe.redundancy.data(), stripe.redundancy.total());
        let key = placement::stripe_key(stripe);
        let ids = self.cluster.node_ids();
        let ranking = placement::ranking(&key, &ids);
        let primary = |shard: usize| ranking[shard % ranking.len()];
        let mut slots: Vec<Option<Bytes>> = vec![None; n];
        let mut found = 0;
        let mut next_parity = k;
        let mut tried: Vec<Vec<usize>> = vec![Vec::new(); n];

        // Phase 1: each shard from the node placement puts it on.
        let mut attempts = FuturesUnordered::new();
        for (shard, tried) in tried.iter_mut().enumerate().take(k) {
            let node = primary(shard);
            tried.push(node);
            attempts.push(self.get_from(node, shard, stripe, counts, false));
        }
        // A shard that has not arrived within the hedge delay gets company:
        // the next parity shard is asked for too, so a node that stalls (or
        // a dead node, whose connection attempt takes the connect timeout)
        // does not stall the chunk.
        let hedge = tokio::time::sleep(HEDGE_AFTER);
        tokio::pin!(hedge);
        loop {
            let next = tokio::select! {
                next = attempts.next() => next,
                () = &mut hedge, if next_parity < n => {
                    let parity = next_parity;
                    next_parity += 1;
                    let node = primary(parity);
                    tried[parity].push(node);
                    attempts.push(self.get_from(node, parity, stripe, counts, false));
                    hedge.as_mut().reset(tokio::time::Instant::now() + HEDGE_AFTER);
                    continue;
                }
            };
            let Some((shard, node, result)) = next else {
                break;
            };
            match result {
                Ok(bytes) => {
                    slots[shard] = Some(bytes);
                    found += 1;
                    if found == k {
                        return Ok(slots);
                    }
                }
                Err(answered) => {
                    // A node that gave no answer (one still being connected
                    // to, say) is asked again in phase 2, waiting this time.
                    if !answered {
                        tried[shard].retain(|&t| t != node);
                    }
                    if next_parity < n {
                        let parity = next_parity;
                        next_parity += 1;
                        let node = primary(parity);
                        tried[parity].push(node);
                        attempts.push(self.get_from(node, parity, stripe, counts, false));
                    }
                }
            }
        }
        drop(attempts);

        // Phase 2: the shards still missing, on every other node (a put
        // made while nodes were down places shards further along).
        for shard in 0..n {
            if slots[shard].is_some() {
                continue;
            }
            for &node in &ranking {
                if tried[shard].contains(&node) || self.cluster.is_down(node) {
                    continue;
                }
                tried[shard].push(node);
                if let (_, _, Ok(bytes)) = self.get_from(node, shard, stripe, counts, true).await {
                    slots[shard] = Some(bytes);
                    found += 1;
                    break;
                }
            }
            if found == k {
                return Ok(slots);
            }
        }
        Err(FetchError::Unavailable {
            what: what.to_owned(),
            found,
            needed: k,
            failed: counts.reasons(),
        })
    }

    /// Shard `shard` of `stripe` from node `node`, checked against its id;
    /// returns the shard, the node, and the bytes or whether the node
    /// answered at all. With `wait`, waits for a connection another request
    /// is making to the node instead of giving up at once.
    async fn get_from(
        &self,
        node: usize,
        shard: usize,
        stripe: &StripeRef,
        counts: &Counts,
        wait: bool,
    ) -> (usize, usize, Result<Bytes, bool>) {
        let id = stripe.shards[shard];
        let op = |connection: cairn_net::client::Connection| async move {
            connection.get_shard(&id).await
        };
        let result: Result<Bytes, ClientError> = if wait {
            self.cluster.on(node, op).await
        } else {
            self.cluster.on_now(node, op).await
        };
        match result {
            Ok(bytes) => {
                counts.fetched.fetch_add(1, Ordering::Relaxed);
                (shard, node, Ok(bytes))
            }
            Err(e) => {
                let address = self.cluster.address(node);
                tracing::debug!(node = %address, shard, "shard not fetched: {e}");
                counts.failed(format!("{}: shard {shard}: {e}", address.url()));
                let answered = matches!(e, ClientError::Node(_) | ClientError::Corrupt { .. });
                (shard, node, Err(answered))
            }
        }
    }
}
