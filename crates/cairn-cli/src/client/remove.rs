//! `cairn rm`: remove a stored file.

use anyhow::Result;
use cairn_client::RemotePath;
use serde::Serialize;

use super::error::directory_error;
use super::login::with_client;
use super::options::Options;

#[derive(Serialize)]
struct RemovedJson {
    path: String,
    references_dropped: usize,
    shards_kept: usize,
}

/// Runs `rm`.
pub async fn run(options: &Options, remote: &RemotePath) -> Result<()> {
    let out = &options.output;
    let report = with_client(options, async |client| client.remove(remote).await)
        .await?
        .map_err(|e| directory_error(remote, "remove", e))?;
    if out.json {
        return out.json(&RemovedJson {
            path: remote.to_string(),
            references_dropped: report.references_dropped,
            shards_kept: report.shards_kept,
        });
    }
    out.note(&format!("removed {remote}"))
}
