//! `cairn repair`: give every chunk of a file (or of every file) its n
//! shards on n distinct nodes again.

use anyhow::{Result, bail};
use cairn_client::RemotePath;
use cairn_client::directory::Health;
use serde::Serialize;

use super::options::Options;
use super::output::plural;
use super::sweep::sweep;
use crate::units::size;

#[derive(Serialize)]
struct RepairedJson {
    path: String,
    before: String,
    after: String,
    chunks_repaired: usize,
    shards_written: usize,
    bytes_written: u64,
    corrupt: usize,
    unplaced: usize,
    problems: Vec<String>,
}

#[derive(Serialize)]
struct RepairJson {
    files: Vec<RepairedJson>,
    repaired: usize,
    not_ok: Vec<String>,
}

/// Runs `repair` on `remote`, or on every file when `None`.
pub async fn run(options: &Options, remote: Option<&RemotePath>) -> Result<()> {
    let out = &options.output;
    let mut files = Vec::new();
    let mut not_ok = Vec::new();
    let mut repaired = 0;
    // Every file looked at, including those whose repair failed (which are
    // in `not_ok` but not in `files`).
    let mut checked = 0;
    if remote.is_none() {
        let migrated =
            super::login::with_client(options, async |client| client.migrate_index().await)
                .await??;
        if migrated > 0 {
            out.note(&format!(
                "{} rewritten in the folder format",
                plural(migrated, "index entry", "")
            ))?;
        }
    }
    sweep(
        options,
        remote,
        "repairing",
        async |client, path| client.repair(path).await,
        |path, outcome| {
            let report = match outcome {
                Ok(report) => {
                    checked += 1;
                    report
                }
                Err(e) => {
                    checked += 1;
                    not_ok.push(format!("{path} ({e})"));
                    // With --json the failure is in `not_ok`; stdout holds
                    // the one JSON document.
                    return Ok((!out.json).then(|| format!("{:<8}  {path} ({e})", Health::Lost)));
                }
            };
            let line = if report.inline && report.shards_written > 0 {
                repaired += 1;
                format!(
                    "{:<8}  {path}: inline file's index entry copied to {}, was {}",
                    report.after.to_string(),
                    plural(report.shards_written, "node", ""),
                    report.before
                )
            } else if report.shards_written > 0 {
                repaired += 1;
                format!(
                    "{:<8}  {path}: {} rebuilt on {} ({}), was {}",
                    report.after.to_string(),
                    plural(report.shards_written, "shard", ""),
                    plural(report.stripes_repaired, "chunk", ""),
                    size(report.bytes_written),
                    report.before
                )
            } else {
                format!("{:<8}  {path}", report.after.to_string())
            };
            let mut line = line;
            if report.corrupt > 0 {
                line.push_str(&format!(
                    "; {} found and quarantined",
                    plural(report.corrupt, "corrupt copy", "")
                ));
            }
            if report.unplaced > 0 {
                line.push_str(&format!(
                    "; {} waiting for a free node (is a node down?)",
                    plural(report.unplaced, "shard", "")
                ));
            }
            for problem in &report.problems {
                line.push_str(&format!("; {problem}"));
            }
            if report.after != Health::Ok {
                not_ok.push(format!("{path} ({})", report.after));
            }
            let show = !out.json
                && (report.after != Health::Ok || report.shards_written > 0 || !out.quiet);
            files.push(RepairedJson {
                path: path.to_string(),
                before: report.before.to_string(),
                after: report.after.to_string(),
                chunks_repaired: report.stripes_repaired,
                shards_written: report.shards_written,
                bytes_written: report.bytes_written,
                corrupt: report.corrupt,
                unplaced: report.unplaced,
                problems: report.problems.iter().map(ToString::to_string).collect(),
            });
            Ok(show.then_some(line))
        },
    )
    .await?;
    let total = checked;
    if out.json {
        out.json(&RepairJson {
            files,
            repaired,
            not_ok: not_ok.clone(),
        })?;
    } else {
        out.note(&format!(
            "checked {}: {repaired} repaired, {} not ok",
            plural(total, "file", ""),
            not_ok.len()
        ))?;
    }
    if !not_ok.is_empty() {
        bail!(
            "{} of {} still not ok: {}",
            not_ok.len(),
            plural(total, "file", ""),
            not_ok.join(", ")
        );
    }
    Ok(())
}
