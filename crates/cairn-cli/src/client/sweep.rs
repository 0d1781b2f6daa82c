//! Going over one named file or every stored file, one at a time, with a
//! bar counting files: the loop `verify` and `repair` share.

use anyhow::{Context, Result};
use cairn_client::directory::DirectoryError;
use cairn_client::{Client, RemotePath};

use super::error::no_file;
use super::login::with_client;
use super::options::Options;

/// Opens a client, runs `check` on `named` (or on every stored file when
/// `None`) and hands each outcome to `record`, which returns the line to
/// print for it, if any (printed above the bar); closes the client.
///
/// A file removed between the listing and its check is skipped when going
/// over every file; a named file that is not there ends the sweep with
/// "no file". Any error `record` returns ends it too.
pub async fn sweep<T>(
    options: &Options,
    named: Option<&RemotePath>,
    message: &str,
    check: impl AsyncFn(&Client, &RemotePath) -> Result<T, DirectoryError>,
    mut record: impl FnMut(&RemotePath, Result<T, DirectoryError>) -> Result<Option<String>>,
) -> Result<()> {
    let out = &options.output;
    with_client(options, async |client| {
        let paths = match named {
            Some(remote) => vec![remote.clone()],
            None => client
                .list_files("", false)
                .await
                .context("cannot list the files")?
                .into_iter()
                .map(|f| f.path)
                .collect(),
        };
        let bar = out.progress.files(paths.len() as u64, message);
        let result = async {
            for path in &paths {
                bar.set_message(path.to_string());
                match check(client, path).await {
                    // Removed since the listing.
                    Err(DirectoryError::NotFound(_)) if named.is_none() => {}
                    Err(DirectoryError::NotFound(_)) => return Err(no_file(path)),
                    outcome => {
                        if let Some(line) = record(path, outcome)? {
                            bar.suspend(|| out.data(&line))?;
                        }
                    }
                }
                bar.inc(1);
            }
            Ok(())
        }
        .await;
        bar.finish_and_clear();
        result
    })
    .await?
}
