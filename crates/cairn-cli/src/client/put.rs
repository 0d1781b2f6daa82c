//! `cairn put`: store a file, standard input (`put - REMOTE`) or, with
//! `-r`, a directory tree ([`tree`]).

mod tree;

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use anyhow::{Context, Result, anyhow, bail};
use cairn_client::directory::Health;
use cairn_client::{NodeFailure, RemotePath, StoreReport};
use serde::Serialize;

use super::error::usage;
use super::login::open;
use super::options::{Options, remote_arg};
use super::output::Output;
use crate::cli::PutArgs;
use crate::units::size;

/// `put`, its arguments checked.
#[derive(Debug)]
pub enum PutOptions {
    /// `put - REMOTE`: standard input, modified now.
    Stdin {
        /// The name to store it under.
        remote: RemotePath,
    },
    /// `put FILE [REMOTE]`.
    File {
        /// The file.
        local: PathBuf,
        /// The name to store it under.
        remote: RemotePath,
        /// Its size when checked, for the progress bar.
        size: u64,
    },
    /// `put -r DIR [PREFIX]`.
    Tree {
        /// The directory.
        local: PathBuf,
        /// What every path under `local` is stored under; `None` for the
        /// top.
        prefix: Option<RemotePath>,
    },
}

impl PutOptions {
    /// Checks REMOTE, then what LOCAL is.
    pub fn resolve(args: PutArgs) -> Result<Self> {
        // A REMOTE that cannot be a path is bad usage, whatever LOCAL is.
        if let Some(text) = args.remote.as_deref() {
            let trimmed = text.trim_end_matches('/');
            if !trimmed.trim_start_matches('/').is_empty() {
                remote_arg(trimmed)?;
            }
        }
        if args.local == Path::new("-") {
            if args.recursive {
                return Err(usage("-r stores a directory; - is standard input"));
            }
            return match args.remote.as_deref() {
                Some(text) if !text.ends_with('/') => Ok(Self::Stdin {
                    remote: remote_arg(text)?,
                }),
                _ => Err(usage(
                    "name the file to store standard input as: cairn put - REMOTE",
                )),
            };
        }
        let metadata = std::fs::metadata(&args.local)
            .with_context(|| format!("cannot read {}", args.local.display()))?;
        if metadata.is_dir() {
            if !args.recursive {
                bail!(
                    "{} is a directory: pass -r to store it and everything under it",
                    args.local.display()
                );
            }
            let prefix = match args.remote.as_deref() {
                Some(text) if text.trim_matches('/').is_empty() => None,
                Some(text) => Some(remote_arg(text.trim_end_matches('/'))?),
                None => Some(remote_arg(&name_of(&args.local)?)?),
            };
            return Ok(Self::Tree {
                local: args.local,
                prefix,
            });
        }
        let remote = match args.remote.as_deref() {
            None => remote_arg(&name_of(&args.local)?)?,
            Some(dir) if dir.ends_with('/') => {
                let name = name_of(&args.local)?;
                match dir.trim_matches('/') {
                    "" => remote_arg(&name)?,
                    dir => remote_arg(&format!("{dir}/{name}"))?,
                }
            }
            Some(text) => remote_arg(text)?,
        };
        Ok(Self::File {
            local: args.local,
            remote,
            size: metadata.len(),
        })
    }
}

/// A local name as a remote path component.
fn name_of(path: &Path) -> Result<String> {
    let name = match path.file_name() {
        Some(name) => name.to_owned(),
        None => std::fs::canonicalize(path)
            .ok()
            .and_then(|p| p.file_name().map(ToOwned::to_owned))
            .ok_or_else(|| {
                usage(format!(
                    "{} has no name to store it under: give REMOTE",
                    path.display()
                ))
            })?,
    };
    name.into_string()
        .map_err(|name| anyhow!("{name:?} is not valid UTF-8: give REMOTE"))
}

/// Runs `put`.
pub async fn run(options: &Options, put: PutOptions) -> Result<()> {
    match put {
        PutOptions::Stdin { remote } => put_one(options, None, &remote, None).await,
        PutOptions::File {
            local,
            remote,
            size,
        } => put_one(options, Some(&local), &remote, Some(size)).await,
        PutOptions::Tree { local, prefix } => {
            tree::put_tree(options, &local, prefix.as_ref()).await
        }
    }
}

/// Stores the file `local` (standard input if `None`) as `remote`.
async fn put_one(
    options: &Options,
    local: Option<&Path>,
    remote: &RemotePath,
    size: Option<u64>,
) -> Result<()> {
    let out = &options.output;
    let client = open(options).await?;
    let bar = out.progress.bytes(size, remote.as_str());
    let progress = |sealed| bar.set_position(sealed);
    let result = match local {
        Some(local) => client.store_file(local, remote, &progress).await,
        None => {
            let now = std::time::SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            client
                .store_async(tokio::io::stdin(), remote, now, &progress)
                .await
        }
    };
    bar.finish_and_clear();
    client.close().await;
    let report = result.with_context(|| format!("cannot store {remote}"))?;
    let local = local.unwrap_or(Path::new("-"));
    if out.json {
        out.json(&StoredJson::new(local, remote, &report))?;
    } else {
        out.note(&stored_line(remote, &report))?;
    }
    if report.degraded {
        warn_degraded(out, 1, &report.failed_nodes);
    }
    Ok(())
}

#[derive(Serialize)]
struct StoredJson {
    path: String,
    local: String,
    size: u64,
    chunks: usize,
    redundancy: String,
    data: usize,
    total: usize,
    nodes: usize,
    health: String,
    shards_sent: usize,
    shards_present: usize,
    bytes_sent: u64,
    failed_nodes: Vec<String>,
    inline: bool,
}

impl StoredJson {
    fn new(local: &Path, remote: &RemotePath, report: &StoreReport) -> Self {
        Self {
            path: remote.to_string(),
            local: local.display().to_string(),
            size: report.size,
            chunks: report.chunks,
            redundancy: report.redundancy.to_string(),
            data: report.redundancy.data(),
            total: report.redundancy.total(),
            nodes: report.fewest_nodes,
            health: if report.degraded {
                Health::Degraded
            } else {
                Health::Ok
            }
            .to_string(),
            shards_sent: report.shards_sent,
            shards_present: report.shards_present,
            bytes_sent: report.bytes_sent,
            failed_nodes: report
                .failed_nodes
                .iter()
                .map(ToString::to_string)
                .collect(),
            inline: report.inline,
        }
    }
}

/// `stored docs/a.pdf (1.2 MiB, 2-of-4, on 4 nodes)`, with `degraded` when
/// some chunk has fewer than n shards; `inline` instead of k-of-n for a
/// small file kept in its index entry.
fn stored_line(remote: &RemotePath, report: &StoreReport) -> String {
    let nodes = report.fewest_nodes;
    format!(
        "stored {remote} ({}, {}, on {nodes} node{}{})",
        size(report.size),
        if report.inline {
            "inline".to_owned()
        } else {
            report.redundancy.to_string()
        },
        if nodes == 1 { "" } else { "s" },
        if report.degraded { ", degraded" } else { "" }
    )
}

/// The warning after a put that left `files` files degraded, naming the
/// nodes that failed (`failed_nodes`, as the store report gives them).
fn warn_degraded(out: &Output, files: usize, failed_nodes: &[NodeFailure]) {
    let what = if files == 1 {
        "the file is".to_owned()
    } else {
        format!("{files} files are")
    };
    // The reasons were given when the login found the nodes down; name
    // them by URL only.
    let urls: Vec<String> = failed_nodes.iter().map(|f| f.node.url()).collect();
    let nodes = if urls.is_empty() {
        String::new()
    } else {
        format!(" (nodes that failed: {})", urls.join(", "))
    };
    out.warn(&format!(
        "{what} degraded: some chunks have fewer than n shards{nodes}; put again once every \
         node is back to store the missing shards"
    ));
}
