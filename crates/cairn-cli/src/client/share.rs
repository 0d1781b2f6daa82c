//! `cairn share`: print the capability of a stored file.

use anyhow::Result;
use cairn_client::RemotePath;
use serde::Serialize;

use super::error::fetch_error;
use super::login::with_client;
use super::options::Options;

#[derive(Serialize)]
struct ShareJson {
    path: String,
    capability: String,
}

/// Runs `share`.
pub async fn run(options: &Options, remote: &RemotePath) -> Result<()> {
    let out = &options.output;
    let capability = with_client(options, async |client| client.capability(remote).await)
        .await?
        .map_err(|e| fetch_error(remote, e))?;
    if out.json {
        return out.json(&ShareJson {
            path: remote.to_string(),
            capability: capability.to_string(),
        });
    }
    out.data(&capability.to_string())
}
