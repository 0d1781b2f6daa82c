//! `cairn put -r DIR [PREFIX]`: every regular file under a directory.
//!
//! Which files and under which names (the walk), and storing many at once
//! within a byte budget, are the client library's
//! ([`cairn_client::tree`]), shared with the folder sync. What is printed
//! per file, the JSON document and the exit status are here: the walk's
//! warnings and failures come before the passphrase is asked for (and an
//! empty tree asks for none), each file's outcome as it is stored.

use std::path::Path;

use anyhow::{Result, bail};
use cairn_client::RemotePath;
use cairn_client::tree::{FailedFile, SkipReason, TreeEvent, TreeOptions, TreePlan};
use serde::Serialize;

use super::{StoredJson, stored_line, warn_degraded};
use crate::client::login::open;
use crate::client::options::Options;

#[derive(Serialize)]
struct PutFailedJson {
    local: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    error: String,
}

impl From<&FailedFile> for PutFailedJson {
    fn from(failed: &FailedFile) -> Self {
        Self {
            local: failed.local.display().to_string(),
            path: failed.name.clone(),
            error: failed.error.to_string(),
        }
    }
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
    let plan = TreePlan::walk(local, prefix)?;
    for skipped in &plan.skipped {
        out.warn(&match skipped.reason {
            SkipReason::SymbolicLink => {
                format!("skipping the symbolic link {}", skipped.local.display())
            }
            _ => format!("skipping {}: not a regular file", skipped.local.display()),
        });
    }
    if !out.json {
        for failure in &plan.failed {
            eprintln!(
                "error: cannot store {}: {}",
                failure.local.display(),
                failure.error
            );
        }
    }
    if plan.files.is_empty() {
        if plan.failed.is_empty() {
            out.warn(&format!(
                "nothing to store: {} holds no regular file",
                local.display()
            ));
        }
        let failed_count = plan.failed.len();
        if out.json {
            out.json(&PutTreeJson {
                stored: Vec::new(),
                failed: plan.failed.iter().map(PutFailedJson::from).collect(),
            })?;
        }
        if failed_count > 0 {
            bail!("{failed_count} of {failed_count} files could not be stored");
        }
        return Ok(());
    }

    let client = open(options).await?;
    let bar = out
        .progress
        .bytes(Some(plan.bytes()), &format!("{} files", plan.files.len()));
    // The first line that could not be printed (stdout closed), reported
    // once the puts are done.
    let unprinted = std::sync::Mutex::new(None);
    let report = client
        .store_plan(plan, &TreeOptions::default(), &|event| match event {
            TreeEvent::Progress { bytes } => bar.set_position(bytes),
            TreeEvent::Stored(file) if !out.json => {
                if let Err(e) = bar.suspend(|| out.note(&stored_line(&file.remote, &file.report))) {
                    unprinted.lock().unwrap().get_or_insert(e);
                }
            }
            TreeEvent::Failed(file) => bar.suspend(|| {
                let name = file.name.as_deref().unwrap_or_default();
                eprintln!("error: cannot store {name}: {}", file.error);
            }),
            _ => {}
        })
        .await;
    bar.finish_and_clear();
    client.close().await;
    if let Some(e) = unprinted.into_inner().unwrap() {
        return Err(e);
    }
    let (stored_count, failed_count) = (report.stored.len(), report.failed.len());
    if out.json {
        out.json(&PutTreeJson {
            stored: report
                .stored
                .iter()
                .map(|s| StoredJson::new(&s.local, &s.remote, &s.report))
                .collect(),
            failed: report.failed.iter().map(PutFailedJson::from).collect(),
        })?;
    }
    let degraded: Vec<_> = report.stored.iter().filter(|s| s.report.degraded).collect();
    if let Some(last) = degraded.last() {
        warn_degraded(out, degraded.len(), &last.report.failed_nodes);
    }
    if failed_count > 0 {
        bail!(
            "{failed_count} of {} files could not be stored",
            stored_count + failed_count
        );
    }
    Ok(())
}
