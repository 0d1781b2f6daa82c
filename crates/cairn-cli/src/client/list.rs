//! `cairn ls`: a folder's files and folders (or with `-r` every file below
//! it), with `-l` their size, modification time and health.
//!
//! Lines are written as each folder is listed, and `--json` streams one
//! array, so memory holds the folders being walked, not the tree.

use std::io::{BufWriter, Stdout, Write};

use anyhow::{Context, Result, bail};
use cairn_client::{FileInfo, ListItem, RemotePath};
use serde::Serialize;

use super::login::with_client;
use super::options::Options;
use super::output::timestamp;
use crate::units::size;

#[derive(Serialize)]
struct ItemJson {
    path: String,
    /// `file` or `folder`.
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    modified: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    modified_unix_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    health: Option<String>,
}

impl From<&ListItem> for ItemJson {
    fn from(item: &ListItem) -> Self {
        match item {
            ListItem::File(info) => Self {
                path: info.path.to_string(),
                kind: "file",
                size: Some(info.size),
                modified: Some(timestamp(info.modified_unix_ms)),
                modified_unix_ms: Some(info.modified_unix_ms),
                version: Some(info.version),
                health: info.health.map(|h| h.to_string()),
            },
            ListItem::Folder(path) => Self {
                path: path.to_string(),
                kind: "folder",
                size: None,
                modified: None,
                modified_unix_ms: None,
                version: None,
                health: None,
            },
        }
    }
}

/// Writes listed items to stdout as they come: lines, or one JSON array.
struct Printer {
    out: BufWriter<Stdout>,
    json: bool,
    long: bool,
    /// Items written so far.
    count: usize,
    /// The first write error; later items are dropped.
    error: Option<std::io::Error>,
}

impl Printer {
    fn new(json: bool, long: bool) -> Self {
        Self {
            out: BufWriter::new(std::io::stdout()),
            json,
            long,
            count: 0,
            error: None,
        }
    }

    /// Writes `item`; false once writing failed (a closed pipe).
    fn item(&mut self, item: &ListItem) -> bool {
        let result = self.write(item);
        self.count += 1;
        match result {
            Ok(()) => true,
            Err(e) => {
                self.error = Some(e);
                false
            }
        }
    }

    fn write(&mut self, item: &ListItem) -> std::io::Result<()> {
        if self.json {
            let separator = if self.count == 0 { "[\n" } else { ",\n" };
            self.out.write_all(separator.as_bytes())?;
            serde_json::to_writer(&mut self.out, &ItemJson::from(item))?;
            return Ok(());
        }
        match (item, self.long) {
            (ListItem::File(file), true) => {
                let health = file.health.map_or("?".to_owned(), |h| h.to_string());
                writeln!(
                    self.out,
                    "{:>10}  {}  {:<8}  {}",
                    size(file.size),
                    timestamp(file.modified_unix_ms),
                    health,
                    file.path
                )
            }
            (ListItem::File(file), false) => writeln!(self.out, "{}", file.path),
            (ListItem::Folder(path), true) => {
                writeln!(
                    self.out,
                    "{:>10}  {:<20}  {:<8}  {path}/",
                    "-", "", "folder"
                )
            }
            (ListItem::Folder(path), false) => writeln!(self.out, "{path}/"),
        }
    }

    /// Ends the output (the JSON array's close) and flushes it.
    fn finish(mut self) -> Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e).context("cannot write the listing");
        }
        if self.json {
            let end = if self.count == 0 { "[]\n" } else { "\n]\n" };
            self.out.write_all(end.as_bytes())?;
        }
        self.out.flush().context("cannot write the listing")
    }
}

/// Runs `ls`: the items of `folder` (the root for `None`), or with
/// `recursive` every file below it; with `long` their size, modification
/// time and health. A `folder` that is a file lists that file.
pub async fn run(
    options: &Options,
    folder: Option<&RemotePath>,
    long: bool,
    recursive: bool,
) -> Result<()> {
    let out = &options.output;
    let mut printer = Printer::new(out.json, long);
    let found = with_client(options, async |client| {
        let mut each = |item: ListItem| {
            if recursive && matches!(item, ListItem::Folder(_)) {
                return true;
            }
            printer.item(&item)
        };
        let folder_found = client.walk(folder, recursive, long, &mut each).await?;
        if folder_found {
            return Ok::<bool, cairn_client::directory::DirectoryError>(true);
        }
        let Some(path) = folder else {
            return Ok(true);
        };
        // Not a folder: perhaps a file.
        let files = client.list_files(path.as_str(), long).await?;
        let file: Option<FileInfo> = files.into_iter().find(|f| f.path == *path);
        Ok(match file {
            Some(file) => {
                printer.item(&ListItem::File(file));
                true
            }
            None => false,
        })
    })
    .await?
    .context("cannot list the files")?;
    printer.finish()?;
    if !found {
        bail!(
            "no file or folder {}",
            folder.map_or_else(String::new, ToString::to_string)
        );
    }
    Ok(())
}
