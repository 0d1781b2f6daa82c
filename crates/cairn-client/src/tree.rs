//! Storing a directory tree: many files in flight, each one reported.
//!
//! [`TreePlan::walk`] lists what a tree holds (no network): every regular
//! file, in name order, depth first, with the remote path it gets (its
//! path under the directory, joined with `/`, under an optional prefix).
//! Symbolic links and special files are skipped, and names that cannot be
//! remote paths (not UTF-8, `..`-like, too long) and directories that
//! cannot be read are reported as failures; the walk goes on past them.
//!
//! Storing the plan ([`Client::store_tree`](crate::Client::store_tree),
//! [`Client::store_plan`](crate::Client::store_plan)) keeps many files in
//! flight, as a small file costs round trips rather than bandwidth, while
//! bounding the bytes in flight, as a large file costs memory:
//!
//! ```text
//! files in walk order ──▶ at most `files_in_flight` at once
//!                         each holding min(size, bytes_in_flight) of a
//!                         `bytes_in_flight` budget (4 KiB units, first come
//!                         first served): small files go 64 at a time, a file
//!                         of the budget's size or more goes alone
//! results in walk order ──▶ progress(Stored | Failed), and the report
//! ```
//!
//! A file that fails does not stop the others: the report lists every file
//! stored and every file that failed, with why.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::stream::{self, StreamExt};

use crate::index::{PathError, RemotePath};
use crate::store::{Put, StoreError, StoreReport};
use crate::transport::Transport;

/// How many files, and how many of their bytes, a tree put keeps in
/// flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeOptions {
    /// Files being stored at once, at most. Default 64, as `cairn bench`
    /// stores small files: each is a few round trips, so the more in
    /// flight the better, up to what the nodes take.
    pub files_in_flight: usize,
    /// Bytes of the files being stored at once, at most; a file counts for
    /// its size up to this. Default 16 MiB: four files of up to a chunk
    /// (4 MiB) at once, and a larger file alone, so memory stays what one
    /// large put needs.
    pub bytes_in_flight: u64,
}

impl Default for TreeOptions {
    fn default() -> Self {
        Self {
            files_in_flight: 64,
            bytes_in_flight: 16 << 20,
        }
    }
}

/// A file a tree put is to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    /// Where it is.
    pub local: PathBuf,
    /// The name it gets.
    pub remote: RemotePath,
    /// Its size when the tree was walked.
    pub size: u64,
}

/// Why an entry of a tree was left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// A symbolic link: not followed, not stored.
    SymbolicLink,
    /// Neither a regular file nor a directory (a socket, a device, a FIFO).
    NotAFile,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::SymbolicLink => "a symbolic link",
            Self::NotAFile => "not a regular file",
        })
    }
}

/// An entry of a tree that was left out, with a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedFile {
    /// Where it is.
    pub local: PathBuf,
    /// Why.
    pub reason: SkipReason,
}

/// Why a file of a tree was not stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// Its name is not UTF-8, so it has no remote path.
    #[error("the name is not valid UTF-8")]
    NotUtf8,
    /// Its name does not make a valid remote path.
    #[error(transparent)]
    Name(#[from] PathError),
    /// It (or the directory holding it) could not be read.
    #[error("cannot read it: {0}")]
    Read(std::io::Error),
    /// Storing it failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A file of a tree that was not stored.
#[derive(Debug)]
pub struct FailedFile {
    /// Where it is.
    pub local: PathBuf,
    /// The remote name it was to get, as text (it may not be a valid
    /// path); `None` when it has none (its name is not UTF-8, or it is a
    /// directory that could not be read).
    pub name: Option<String>,
    /// Why it was not stored.
    pub error: FileError,
}

/// A file of a tree that was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    /// Where it was.
    pub local: PathBuf,
    /// Its name.
    pub remote: RemotePath,
    /// What the put did.
    pub report: StoreReport,
}

/// What a tree holds, to store: see [`TreePlan::walk`].
#[derive(Debug, Default)]
pub struct TreePlan {
    /// The files to store, in walk order.
    pub files: Vec<PlannedFile>,
    /// The folders walked (the prefix too, when given), each with the
    /// remote path it gets, in walk order: kept in the store even when
    /// empty.
    pub folders: Vec<(PathBuf, RemotePath)>,
    /// Entries left out.
    pub skipped: Vec<SkippedFile>,
    /// Entries that cannot be stored.
    pub failed: Vec<FailedFile>,
}

/// Why a tree could not be walked at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError {
    /// The directory itself could not be read (`source` says why).
    #[error("cannot read the directory {}", path.display())]
    Read {
        /// The directory.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

impl TreePlan {
    /// Walks the directory `dir`: every regular file under it, in name
    /// order, named `prefix/relative/path` (or `relative/path` without a
    /// prefix). See the module docs for what is skipped and what fails.
    ///
    /// # Errors
    /// [`TreeError::Read`] if `dir` itself cannot be read.
    pub fn walk(dir: &Path, prefix: Option<&RemotePath>) -> Result<Self, TreeError> {
        let entries = read_sorted(dir).map_err(|source| TreeError::Read {
            path: dir.to_owned(),
            source,
        })?;
        let mut plan = Self::default();
        if let Some(prefix) = prefix {
            plan.folders.push((dir.to_owned(), prefix.clone()));
        }
        plan.walk_entries(entries, "", prefix);
        Ok(plan)
    }

    fn walk_entries(
        &mut self,
        entries: Vec<std::fs::DirEntry>,
        relative: &str,
        prefix: Option<&RemotePath>,
    ) {
        for entry in entries {
            let local = entry.path();
            let Some(name) = entry.file_name().to_str().map(ToOwned::to_owned) else {
                self.fail(local, None, FileError::NotUtf8);
                continue;
            };
            let relative = if relative.is_empty() {
                name
            } else {
                format!("{relative}/{name}")
            };
            let kind = match entry.file_type() {
                Ok(kind) => kind,
                Err(e) => {
                    self.fail(local, Some(relative), FileError::Read(e));
                    continue;
                }
            };
            if kind.is_symlink() {
                self.skip(local, SkipReason::SymbolicLink);
            } else if kind.is_dir() {
                let remote = match prefix {
                    Some(prefix) => prefix.join(&relative),
                    None => relative.parse(),
                };
                let remote = match remote {
                    Ok(remote) => remote,
                    Err(e) => {
                        self.fail(local, Some(relative), e.into());
                        continue;
                    }
                };
                match read_sorted(&local) {
                    Ok(entries) => {
                        self.folders.push((local, remote));
                        self.walk_entries(entries, &relative, prefix);
                    }
                    Err(e) => self.fail(local, None, FileError::Read(e)),
                }
            } else if kind.is_file() {
                let remote = match prefix {
                    Some(prefix) => prefix.join(&relative),
                    None => relative.parse(),
                };
                match (remote, entry.metadata()) {
                    (Ok(remote), Ok(metadata)) => self.files.push(PlannedFile {
                        local,
                        remote,
                        size: metadata.len(),
                    }),
                    (Err(e), _) => self.fail(local, Some(relative), e.into()),
                    (_, Err(e)) => self.fail(local, Some(relative), FileError::Read(e)),
                }
            } else {
                self.skip(local, SkipReason::NotAFile);
            }
        }
    }

    fn skip(&mut self, local: PathBuf, reason: SkipReason) {
        self.skipped.push(SkippedFile { local, reason });
    }

    fn fail(&mut self, local: PathBuf, name: Option<String>, error: FileError) {
        self.failed.push(FailedFile { local, name, error });
    }

    /// Bytes of the files to store.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// The entries of `dir`, by name.
fn read_sorted(dir: &Path) -> std::io::Result<Vec<std::fs::DirEntry>> {
    let mut entries = std::fs::read_dir(dir)?.collect::<Result<Vec<_>, _>>()?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    Ok(entries)
}

/// What a tree put did.
#[derive(Debug, Default)]
pub struct TreeReport {
    /// The files stored, in walk order.
    pub stored: Vec<StoredFile>,
    /// The files not stored: those the walk could not use first, then
    /// those whose put failed, in walk order.
    pub failed: Vec<FailedFile>,
    /// The entries left out.
    pub skipped: Vec<SkippedFile>,
}

/// What a tree put tells its progress callback, as it happens.
#[derive(Debug)]
#[non_exhaustive]
pub enum TreeEvent<'a> {
    /// An entry was left out (by `store_tree`, before anything is stored;
    /// whoever walks a plan itself sees them in [`TreePlan::skipped`]).
    Skipped(&'a SkippedFile),
    /// A file was not stored: the walk's failures (by `store_tree`, before
    /// anything is stored; see [`TreePlan::failed`]), then the puts that
    /// failed, in walk order.
    Failed(&'a FailedFile),
    /// A file was stored (in walk order).
    Stored(&'a StoredFile),
    /// Bytes of the files sealed so far, all files together (a file that
    /// ends counts for its whole size).
    Progress {
        /// The count.
        bytes: u64,
    },
}

/// Unit of the bytes-in-flight budget.
const UNIT: u64 = 4096;

/// Walks `dir` (off the async threads), tells `progress` what the walk
/// skipped and could not use, and stores the rest; see the module docs.
///
/// # Errors
/// [`TreeError`] if `dir` itself cannot be read.
pub(crate) async fn store_tree<T: Transport>(
    put: &Put<'_, T>,
    scan: Option<&[String]>,
    dir: &Path,
    prefix: Option<&RemotePath>,
    options: &TreeOptions,
    progress: &(dyn Fn(TreeEvent<'_>) + Send + Sync),
) -> Result<TreeReport, TreeError> {
    let (dir, prefix) = (dir.to_owned(), prefix.cloned());
    let plan = tokio::task::spawn_blocking(move || TreePlan::walk(&dir, prefix.as_ref()))
        .await
        .expect("walking a tree does not panic")?;
    for skipped in &plan.skipped {
        progress(TreeEvent::Skipped(skipped));
    }
    for failed in &plan.failed {
        progress(TreeEvent::Failed(failed));
    }
    Ok(store_plan(put, scan, plan, options, progress).await)
}

/// Stores the files of `plan` with `put`, scanning each with `scan` if
/// set; see the module docs. `progress` hears of the files stored and
/// failed (not of the plan's own skipped and failed entries, which the
/// report carries over).
pub(crate) async fn store_plan<T: Transport>(
    put: &Put<'_, T>,
    scan: Option<&[String]>,
    plan: TreePlan,
    options: &TreeOptions,
    progress: &(dyn Fn(TreeEvent<'_>) + Send + Sync),
) -> TreeReport {
    let mut report = TreeReport {
        stored: Vec::with_capacity(plan.files.len()),
        failed: plan.failed,
        skipped: plan.skipped,
    };
    let units = u32::try_from(options.bytes_in_flight.div_ceil(UNIT))
        .unwrap_or(u32::MAX)
        .max(1);
    let budget = Arc::new(tokio::sync::Semaphore::new(units as usize));
    let sealed = AtomicU64::new(0);
    let (budget, sealed) = (&budget, &sealed);
    let mut results = stream::iter(plan.files)
        .map(|file| async move {
            let weight = u32::try_from(file.size.div_ceil(UNIT))
                .unwrap_or(u32::MAX)
                .clamp(1, units);
            let _budget = budget
                .acquire_many(weight)
                .await
                .expect("the budget is never closed");
            let last = AtomicU64::new(0);
            let result = put
                .file(&file.local, &file.remote, scan, &|bytes| {
                    let before = last.swap(bytes, Ordering::Relaxed);
                    let total = sealed.fetch_add(bytes.saturating_sub(before), Ordering::Relaxed);
                    progress(TreeEvent::Progress {
                        bytes: total + bytes.saturating_sub(before),
                    });
                })
                .await;
            let rest = file.size.saturating_sub(last.load(Ordering::Relaxed));
            let total = sealed.fetch_add(rest, Ordering::Relaxed) + rest;
            progress(TreeEvent::Progress { bytes: total });
            (file, result)
        })
        .buffered(options.files_in_flight.max(1));
    while let Some((file, result)) = results.next().await {
        match result {
            Ok(outcome) => {
                let stored = StoredFile {
                    local: file.local,
                    remote: file.remote,
                    report: outcome,
                };
                progress(TreeEvent::Stored(&stored));
                report.stored.push(stored);
            }
            Err(error) => {
                let failed = FailedFile {
                    local: file.local,
                    name: Some(file.remote.to_string()),
                    error: error.into(),
                };
                progress(TreeEvent::Failed(&failed));
                report.failed.push(failed);
            }
        }
    }
    // Folders: those holding files got their entries with them (once per
    // folder); this writes the empty ones.
    let mut folders = stream::iter(plan.folders)
        .map(|(local, remote)| async move {
            let result = put.index.ensure_folder(&remote).await;
            (local, remote, result)
        })
        .buffer_unordered(16);
    while let Some((local, remote, result)) = folders.next().await {
        if let Err(error) = result {
            let failed = FailedFile {
                local,
                name: Some(format!("{remote}/")),
                error: FileError::Store(error.into()),
            };
            progress(TreeEvent::Failed(&failed));
            report.failed.push(failed);
        }
    }
    report
}
