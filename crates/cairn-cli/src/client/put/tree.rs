//! `cairn put -r DIR [PREFIX]`: every regular file under a directory.
//!
//! Two pieces here are due to move into the client library, where the
//! folder sync will share them: [`walk`] (which files, and under which
//! names; it warns of what it skips) and [`store_all`] (storing a few at
//! once, weighted by size, with the bytes counted on the bar). What is
//! printed per file, the JSON document and the exit status stay in
//! [`put_tree`], which takes each file's outcome as it comes; swapping in
//! the library's tree store replaces those two functions and the few lines
//! of [`put_tree`] that call them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, bail};
use cairn_client::{Client, RemotePath, StoreError, StoreReport};
use futures::stream::{Stream, StreamExt};
use indicatif::ProgressBar;
use serde::Serialize;

use super::{StoredJson, stored_line, warn_degraded};
use crate::client::login::open;
use crate::client::options::Options;
use crate::client::output::Output;

/// One file to store.
struct Job {
    local: PathBuf,
    remote: RemotePath,
    size: u64,
}

#[derive(Serialize)]
struct PutFailedJson {
    local: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    error: String,
}

#[derive(Serialize)]
struct PutTreeJson {
    stored: Vec<StoredJson>,
    failed: Vec<PutFailedJson>,
}

/// Stores every regular file under `local`, each as its path relative to
/// `local` under `prefix`; goes on past a file that fails and fails at the
/// end with a count.
pub async fn put_tree(options: &Options, local: &Path, prefix: Option<&RemotePath>) -> Result<()> {
    let out = &options.output;
    let mut files = Vec::new();
    let mut unusable = Vec::new();
    walk(local, "", out, &mut files, &mut unusable)?;
    let mut failed: Vec<PutFailedJson> = unusable
        .into_iter()
        .map(|(local, error)| PutFailedJson {
            local: local.display().to_string(),
            path: None,
            error,
        })
        .collect();
    let mut jobs = Vec::new();
    for (local, relative, len) in files {
        let remote = match prefix {
            Some(prefix) => prefix.join(&relative),
            None => relative.parse(),
        };
        match remote {
            Ok(remote) => jobs.push(Job {
                local,
                remote,
                size: len,
            }),
            Err(e) => failed.push(PutFailedJson {
                local: local.display().to_string(),
                path: Some(relative),
                error: e.to_string(),
            }),
        }
    }
    if !out.json {
        for failure in &failed {
            eprintln!("error: cannot store {}: {}", failure.local, failure.error);
        }
    }
    if jobs.is_empty() {
        if failed.is_empty() {
            out.warn(&format!(
                "nothing to store: {} holds no regular file",
                local.display()
            ));
        }
        let failed_count = failed.len();
        if out.json {
            out.json(&PutTreeJson {
                stored: Vec::new(),
                failed,
            })?;
        }
        if failed_count > 0 {
            bail!("{failed_count} of {failed_count} files could not be stored");
        }
        return Ok(());
    }

    let client = open(options).await?;
    let total: u64 = jobs.iter().map(|j| j.size).sum();
    let bar = out
        .progress
        .bytes(Some(total), &format!("{} files", jobs.len()));
    let mut results = store_all(&client, jobs, &bar);
    let mut stored = Vec::new();
    let mut degraded = 0;
    let mut failed_nodes = Vec::new();
    while let Some((job, result)) = results.next().await {
        match result {
            Ok(report) => {
                if report.degraded {
                    degraded += 1;
                    failed_nodes.clone_from(&report.failed_nodes);
                }
                if !out.json {
                    bar.suspend(|| out.note(&stored_line(&job.remote, &report)))?;
                }
                stored.push(StoredJson::new(&job.local, &job.remote, &report));
            }
            Err(e) => {
                bar.suspend(|| eprintln!("error: cannot store {}: {e}", job.remote));
                failed.push(PutFailedJson {
                    local: job.local.display().to_string(),
                    path: Some(job.remote.to_string()),
                    error: e.to_string(),
                });
            }
        }
    }
    drop(results);
    bar.finish_and_clear();
    client.close().await;
    let (stored_count, failed_count) = (stored.len(), failed.len());
    if out.json {
        out.json(&PutTreeJson { stored, failed })?;
    }
    if degraded > 0 {
        warn_degraded(out, degraded, &failed_nodes);
    }
    if failed_count > 0 {
        bail!(
            "{failed_count} of {} files could not be stored",
            stored_count + failed_count
        );
    }
    Ok(())
}

/// Every regular file under `dir`, in name order, with its path relative
/// to `dir` joined with `/`. Symbolic links and special files are skipped
/// with a warning; names that are not UTF-8 are returned as failures.
fn walk(
    dir: &Path,
    relative: &str,
    out: &Output,
    files: &mut Vec<(PathBuf, String, u64)>,
    unusable: &mut Vec<(PathBuf, String)>,
) -> Result<()> {
    let mut entries = std::fs::read_dir(dir)
        .and_then(|entries| entries.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("cannot read the directory {}", dir.display()))?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(ToOwned::to_owned) else {
            unusable.push((path, "the name is not valid UTF-8".into()));
            continue;
        };
        let relative = if relative.is_empty() {
            name
        } else {
            format!("{relative}/{name}")
        };
        let kind = entry
            .file_type()
            .with_context(|| format!("cannot read {}", path.display()))?;
        if kind.is_symlink() {
            out.warn(&format!("skipping the symbolic link {}", path.display()));
        } else if kind.is_dir() {
            walk(&path, &relative, out, files, unusable)?;
        } else if kind.is_file() {
            let len = entry
                .metadata()
                .with_context(|| format!("cannot read {}", path.display()))?
                .len();
            files.push((path, relative, len));
        } else {
            out.warn(&format!("skipping {}: not a regular file", path.display()));
        }
    }
    Ok(())
}

/// At most this many files are stored at once; a file takes one slot per
/// 4 MiB (a chunk at most), so large files go one at a time and memory
/// stays what one put needs.
const PUT_SLOTS: u32 = 4;

/// Stores every job, a few at once, counting the bytes sealed on `bar`;
/// yields each job with its outcome, in the order of `jobs`.
fn store_all<'a>(
    client: &'a Client,
    jobs: Vec<Job>,
    bar: &'a ProgressBar,
) -> impl Stream<Item = (Job, Result<StoreReport, StoreError>)> + 'a {
    let slots = Arc::new(tokio::sync::Semaphore::new(PUT_SLOTS as usize));
    futures::stream::iter(jobs.into_iter().map(move |job| {
        let slots = slots.clone();
        async move {
            let weight = job.size.div_ceil(4 << 20).clamp(1, u64::from(PUT_SLOTS)) as u32;
            let _slots = slots.acquire_many(weight).await.expect("never closed");
            let last = AtomicU64::new(0);
            let result = client
                .store_file(&job.local, &job.remote, &|sealed| {
                    let before = last.swap(sealed, Ordering::Relaxed);
                    bar.inc(sealed.saturating_sub(before));
                })
                .await;
            bar.inc(job.size.saturating_sub(last.load(Ordering::Relaxed)));
            (job, result)
        }
    }))
    .buffered(2 * PUT_SLOTS as usize)
}
