//! `cairn ls`: the stored files, with `-l` their size, modification time
//! and health.

use anyhow::{Context, Result};
use cairn_client::directory::FileInfo;
use serde::Serialize;

use super::login::with_client;
use super::options::Options;
use super::output::timestamp;
use crate::units::size;

#[derive(Serialize)]
struct FileJson {
    path: String,
    size: u64,
    modified: String,
    modified_unix_ms: u64,
    version: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    health: Option<String>,
}

impl From<&FileInfo> for FileJson {
    fn from(info: &FileInfo) -> Self {
        Self {
            path: info.path.to_string(),
            size: info.size,
            modified: timestamp(info.modified_unix_ms),
            modified_unix_ms: info.modified_unix_ms,
            version: info.version,
            health: info.health.map(|h| h.to_string()),
        }
    }
}

/// Runs `ls`: the files under `prefix` (whole components; "" for all),
/// with `long` their size, modification time and health.
pub async fn run(options: &Options, prefix: &str, long: bool) -> Result<()> {
    let out = &options.output;
    let files = with_client(options, async |client| {
        client.list_files(prefix, long).await
    })
    .await?
    .context("cannot list the files")?;
    if out.json {
        let files: Vec<FileJson> = files.iter().map(FileJson::from).collect();
        return out.json(&files);
    }
    for file in &files {
        if long {
            let health = file.health.map_or("?".to_owned(), |h| h.to_string());
            out.data(&format!(
                "{:>10}  {}  {:<8}  {}",
                size(file.size),
                timestamp(file.modified_unix_ms),
                health,
                file.path
            ))?;
        } else {
            out.data(file.path.as_str())?;
        }
    }
    Ok(())
}
