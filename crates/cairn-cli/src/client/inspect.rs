//! `cairn stat` and `cairn verify`: how a stored file is spread, from the
//! nodes' shard lists (`stat`) or by reading every shard (`verify`).

use anyhow::{Result, bail};
use cairn_client::RemotePath;
use cairn_client::directory::{DirectoryError, FileLayout, Health};
use serde::Serialize;

use super::error::{directory_error, no_node};
use super::login::with_client;
use super::options::Options;
use super::output::{plural, timestamp};
use super::sweep::sweep;
use crate::units::size;

#[derive(Serialize)]
struct LayoutJson {
    path: String,
    size: u64,
    modified: String,
    modified_unix_ms: u64,
    version: u64,
    chunks: usize,
    redundancy: String,
    data: usize,
    total: usize,
    health: String,
    missing: usize,
    corrupt: usize,
    shards_per_node: Vec<NodeShardsJson>,
    inline: bool,
}

#[derive(Serialize)]
struct NodeShardsJson {
    node: String,
    shards: usize,
}

impl From<&FileLayout> for LayoutJson {
    fn from(layout: &FileLayout) -> Self {
        Self {
            path: layout.info.path.to_string(),
            size: layout.info.size,
            modified: timestamp(layout.info.modified_unix_ms),
            modified_unix_ms: layout.info.modified_unix_ms,
            version: layout.info.version,
            chunks: layout.chunks,
            redundancy: layout.redundancy.to_string(),
            data: layout.redundancy.data(),
            total: layout.redundancy.total(),
            health: layout.health.to_string(),
            missing: layout.missing,
            corrupt: layout.corrupt,
            shards_per_node: layout
                .shards_per_node
                .iter()
                .map(|(node, shards)| NodeShardsJson {
                    node: node.clone(),
                    shards: *shards,
                })
                .collect(),
            inline: layout.inline,
        }
    }
}

/// A node's address as `URL#` and the first 12 digits of its id.
fn short_node(address: &str) -> String {
    match address.split_once('#') {
        Some((url, id)) => format!("{url}#{}…", &id[..id.len().min(12)]),
        None => address.to_owned(),
    }
}

/// Runs `stat`.
pub async fn stat(options: &Options, remote: &RemotePath) -> Result<()> {
    let out = &options.output;
    let layout = with_client(options, async |client| client.stat(remote).await)
        .await?
        .map_err(|e| directory_error(remote, "inspect", e))?;
    if out.json {
        return out.json(&LayoutJson::from(&layout));
    }
    if layout.inline {
        return out.data(&inline_stat(&layout));
    }
    let k = layout.redundancy.data();
    let n = layout.redundancy.total();
    let mut text = format!(
        "{}\n  size        {} ({} bytes)\n  modified    {}\n  chunks      {}\n  \
         redundancy  {} (any {k} of a chunk's {n} shards rebuild it)\n  health      {}",
        layout.info.path,
        size(layout.info.size),
        layout.info.size,
        timestamp(layout.info.modified_unix_ms),
        layout.chunks,
        layout.redundancy,
        layout.health,
    );
    if layout.missing > 0 {
        text.push_str(&format!(
            " ({})",
            plural(layout.missing, "shard", "missing")
        ));
    }
    text.push_str("\n  shards per node (the manifest's included):");
    for (node, shards) in &layout.shards_per_node {
        text.push_str(&format!("\n    {:<40} {shards}", short_node(node)));
    }
    out.data(&text)
}

/// What `stat` prints for a file kept in its index entry.
fn inline_stat(layout: &FileLayout) -> String {
    let nodes = layout.shards_per_node.len();
    let mut text = format!(
        "{}\n  size        {} ({} bytes)\n  modified    {}\n  stored      inline: the bytes are \
         in the index entry, a copy on each node; any one copy gives the file back\n  \
         health      {}",
        layout.info.path,
        size(layout.info.size),
        layout.info.size,
        timestamp(layout.info.modified_unix_ms),
        layout.health,
    );
    if layout.missing > 0 {
        text.push_str(&format!(
            " (on {} of {nodes} nodes)",
            nodes - layout.missing
        ));
    }
    text.push_str("\n  copies per node:");
    for (node, copies) in &layout.shards_per_node {
        text.push_str(&format!("\n    {:<40} {copies}", short_node(node)));
    }
    text
}

#[derive(Serialize)]
#[serde(untagged)]
enum VerifiedJson {
    Checked(LayoutJson),
    Failed {
        path: String,
        health: String,
        error: String,
    },
}

#[derive(Serialize)]
struct VerifyJson {
    files: Vec<VerifiedJson>,
    ok: usize,
    degraded: usize,
    lost: usize,
}

/// Runs `verify` on `remote`, or on every file when `None`.
pub async fn verify(options: &Options, remote: Option<&RemotePath>) -> Result<()> {
    let out = &options.output;
    let mut files = Vec::new();
    let mut not_ok = Vec::new();
    let mut counts = [0usize; 3];
    sweep(
        options,
        remote,
        "verifying",
        async |client, path| client.verify(path).await,
        |path, outcome| {
            let (health, line, json) = match outcome {
                Ok(layout) => {
                    let mut problems = Vec::new();
                    if layout.missing > 0 {
                        problems.push(plural(layout.missing, "shard", "missing"));
                    }
                    if layout.corrupt > 0 {
                        problems.push(plural(layout.corrupt, "corrupt copy", ""));
                    }
                    let detail = if problems.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", problems.join(", "))
                    };
                    (
                        layout.health,
                        format!("{:<8}  {path}{detail}", layout.health.to_string()),
                        VerifiedJson::Checked(LayoutJson::from(&layout)),
                    )
                }
                Err(DirectoryError::NoNode { failed }) => return Err(no_node(&failed)),
                Err(e) => (
                    Health::Lost,
                    format!("{:<8}  {path} ({e})", Health::Lost.to_string()),
                    VerifiedJson::Failed {
                        path: path.to_string(),
                        health: Health::Lost.to_string(),
                        error: e.to_string(),
                    },
                ),
            };
            counts[match health {
                Health::Ok => 0,
                Health::Degraded => 1,
                Health::Lost => 2,
            }] += 1;
            if health != Health::Ok {
                not_ok.push(format!("{path} ({health})"));
            }
            files.push(json);
            Ok((!out.json && (health != Health::Ok || !out.quiet)).then_some(line))
        },
    )
    .await?;
    let checked = counts.iter().sum::<usize>();
    if out.json {
        out.json(&VerifyJson {
            files,
            ok: counts[0],
            degraded: counts[1],
            lost: counts[2],
        })?;
    } else {
        out.note(&format!(
            "verified {checked} file{}: {} ok, {} degraded, {} lost",
            if checked == 1 { "" } else { "s" },
            counts[0],
            counts[1],
            counts[2]
        ))?;
    }
    if !not_ok.is_empty() {
        bail!(
            "{} of {checked} files not ok: {}",
            not_ok.len(),
            not_ok.join(", ")
        );
    }
    Ok(())
}
