//! `cairn get`: fetch a stored file, or with `--cap` a file someone
//! shared (without an account: the servers come from `--server` or the
//! config), into LOCAL or standard output.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use cairn_client::{Client, ClientConfig, FetchError, FetchReport, RemotePath};
use cairn_core::Capability;
use cairn_net::NodeAddress;
use cairn_net::client::ClientOptions;
use indicatif::ProgressBar;
use serde::Serialize;
use tokio::io::AsyncWriteExt;

use super::error::{fetch_error, local_exists, shared_fetch_error, usage};
use super::login::open;
use super::options::{Options, remote_arg};
use super::output::Output;
use super::trust::{trust_on_first_use, unpinned};
use crate::cli::GetArgs;
use crate::units::size;

/// `get`, its arguments checked.
#[derive(Debug)]
pub struct GetOptions {
    /// What to fetch.
    source: Source,
    /// Where to write it: the file, or `-` with `to_stdout`.
    local: PathBuf,
    /// Whether the file goes to standard output.
    to_stdout: bool,
    /// Replace `local` if it exists.
    force: bool,
}

/// What a `get` fetches.
#[derive(Debug)]
enum Source {
    /// One of the user's files.
    Named(RemotePath),
    /// The file a capability names, from `servers`.
    Shared {
        capability: Capability,
        /// The servers to ask: pinned, or (with --trust-on-first-use)
        /// some not yet.
        servers: Vec<NodeAddress>,
        /// The config's connection settings when the servers come from it,
        /// else the defaults.
        client_options: ClientOptions,
    },
}

impl GetOptions {
    /// Checks REMOTE and LOCAL (with `--cap`, LOCAL and the servers).
    pub fn resolve(args: GetArgs, options: &Options) -> Result<Self> {
        match args.cap.clone() {
            Some(capability) => Self::resolve_shared(args, capability, options),
            None => Self::resolve_named(args, &options.output),
        }
    }

    fn resolve_named(args: GetArgs, out: &Output) -> Result<Self> {
        let Some(text) = args.remote.as_deref() else {
            return Err(usage(
                "name the file to fetch: cairn get REMOTE [LOCAL] (or cairn get --cap CAP LOCAL)",
            ));
        };
        let remote = remote_arg(text)?;
        let to_stdout = args.local.as_deref() == Some(Path::new("-"));
        if to_stdout && out.json {
            return Err(usage("--json and LOCAL - both want stdout: drop one"));
        }
        let local = local_target(args.local, remote.file_name());
        if !to_stdout {
            refuse_overwrite(&local, args.force)?;
        }
        Ok(Self {
            source: Source::Named(remote),
            local,
            to_stdout,
            force: args.force,
        })
    }

    fn resolve_shared(args: GetArgs, capability: Capability, options: &Options) -> Result<Self> {
        let Some(local) = args.remote.as_deref().map(PathBuf::from) else {
            return Err(usage(
                "name the file to write: cairn get --cap CAP LOCAL --server URL#NODE_ID",
            ));
        };
        if args.local.is_some() {
            return Err(usage(
                "with --cap give only LOCAL: the capability names the file (cairn get --cap CAP LOCAL)",
            ));
        }
        let to_stdout = local == Path::new("-");
        if to_stdout && options.output.json {
            return Err(usage("--json and LOCAL - both want stdout: drop one"));
        }
        if local.is_dir() {
            return Err(usage(format!(
                "{} is a directory: a capability carries no file name, so name the file to write",
                local.display()
            )));
        }
        if !to_stdout {
            refuse_overwrite(&local, args.force)?;
        }
        let (servers, config) = if args.servers.is_empty() {
            let path = options.config.path()?;
            match options.config.load_if_present()? {
                Some(config) => (config.servers.clone(), Some(config)),
                None => {
                    return Err(usage(format!(
                        "no servers to ask: pass --server URL#NODE_ID (there is no config file at {})",
                        path.display()
                    )));
                }
            }
        } else {
            (args.servers, None)
        };
        let loose = unpinned(&servers);
        if !loose.is_empty() && !args.trust_on_first_use {
            return Err(usage(format!(
                "{} has no #NODE_ID: give each server as URL#NODE_ID, or pass --trust-on-first-use",
                loose.join(", ")
            )));
        }
        let client_options = config.map_or_else(
            || ClientConfig::default().client_options(),
            ClientConfig::client_options,
        );
        Ok(Self {
            source: Source::Shared {
                capability,
                servers,
                client_options,
            },
            local,
            to_stdout,
            force: args.force,
        })
    }
}

/// Where a fetched file goes: LOCAL, LOCAL/NAME when LOCAL is a
/// directory, or NAME in the current directory.
fn local_target(local: Option<PathBuf>, name: &str) -> PathBuf {
    match local {
        Some(dir) if dir.is_dir() => dir.join(name),
        Some(path) => path,
        None => PathBuf::from(name),
    }
}

fn refuse_overwrite(local: &Path, force: bool) -> Result<()> {
    if !force && local.exists() {
        return Err(local_exists(local.display()));
    }
    Ok(())
}

/// Runs `get`.
pub async fn run(options: &Options, get: GetOptions) -> Result<()> {
    let out = &options.output;
    let (client, bar) = match &get.source {
        Source::Named(remote) => {
            let client = open(options).await?;
            let total = if out.progress.shown() {
                // Only to give the bar a length and an ETA.
                client
                    .list_files(remote.as_str(), false)
                    .await
                    .ok()
                    .and_then(|files| files.into_iter().find(|f| &f.path == remote))
                    .map(|f| f.size)
            } else {
                None
            };
            (client, out.progress.bytes(total, remote.as_str()))
        }
        Source::Shared {
            servers,
            client_options,
            ..
        } => {
            let client = anonymous(options, servers.clone(), client_options.clone()).await?;
            let bar = out.progress.bytes(None, &get.local.display().to_string());
            (client, bar)
        }
    };
    let result = fetch(&client, &get, &bar).await;
    bar.finish_and_clear();
    client.close().await;
    match &get.source {
        Source::Named(remote) => {
            let report = result.map_err(|e| fetch_error(remote, e))?;
            fetched(out, Some(remote), &get.local, &report)
        }
        Source::Shared { .. } => {
            let report = result.map_err(|e| shared_fetch_error(&get.local, e))?;
            fetched(out, None, &get.local, &report)
        }
    }
}

/// A client without an account for `servers`, pinned (trusting those
/// without an id on first use), scanning as the config file says if there
/// is one.
async fn anonymous(
    options: &Options,
    servers: Vec<NodeAddress>,
    client_options: ClientOptions,
) -> Result<Client> {
    let (servers, trusted) = trust_on_first_use(servers, &client_options).await?;
    for server in &trusted {
        eprintln!("trusting {server} on first use");
    }
    let mut client =
        Client::anonymous(&servers, client_options).context("cannot use these servers")?;
    // A configured scan applies to files fetched by capability too, even
    // with the servers given on the command line.
    let scan_command = match options.config.path() {
        Ok(_) => options
            .config
            .load_if_present()?
            .and_then(|c| c.scan_command.clone()),
        Err(_) => None,
    };
    client.set_scan_command(scan_command);
    client.set_direct_io(crate::direct_io::from_env());
    Ok(client)
}

/// Fetches into LOCAL, or into standard output.
async fn fetch(
    client: &Client,
    get: &GetOptions,
    bar: &ProgressBar,
) -> Result<FetchReport, FetchError> {
    let progress = |written| bar.set_position(written);
    if get.to_stdout {
        let mut stdout = tokio::io::stdout();
        let fetched = match &get.source {
            Source::Named(remote) => client.fetch_to(remote, &mut stdout, &progress).await,
            Source::Shared { capability, .. } => {
                client
                    .fetch_capability_to(capability, &mut stdout, &progress)
                    .await
            }
        };
        flushed(&mut stdout, fetched).await
    } else {
        match &get.source {
            Source::Named(remote) => {
                client
                    .fetch_file(remote, &get.local, get.force, &progress)
                    .await
            }
            Source::Shared { capability, .. } => {
                client
                    .fetch_capability_to_file(capability, &get.local, get.force, &progress)
                    .await
            }
        }
    }
}

/// A fetch into standard output, which only counts once it is flushed.
async fn flushed(
    stdout: &mut tokio::io::Stdout,
    fetched: Result<FetchReport, FetchError>,
) -> Result<FetchReport, FetchError> {
    let report = fetched?;
    stdout.flush().await.map_err(|source| FetchError::Write {
        path: "standard output".into(),
        source,
    })?;
    Ok(report)
}

#[derive(Serialize)]
struct FetchedJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    local: String,
    size: u64,
    chunks: usize,
    rebuilt: usize,
    shards_fetched: usize,
    shards_failed: usize,
    /// Whether the file was written with direct I/O (`CAIRN_DIRECT_IO`).
    direct_io: bool,
}

/// Says what was fetched: `remote`, or the shared file when `None`.
fn fetched(
    out: &Output,
    remote: Option<&RemotePath>,
    local: &Path,
    report: &FetchReport,
) -> Result<()> {
    if out.json {
        return out.json(&FetchedJson {
            path: remote.map(ToString::to_string),
            local: local.display().to_string(),
            size: report.size,
            chunks: report.chunks,
            rebuilt: report.rebuilt,
            shards_fetched: report.shards_fetched,
            shards_failed: report.shards_failed,
            direct_io: report.direct_io,
        });
    }
    let rebuilt = match report.rebuilt {
        0 => String::new(),
        n => format!(", {n} of {} chunks rebuilt from parity", report.chunks),
    };
    let what = remote.map_or_else(|| "the shared file".to_owned(), |r| r.to_string());
    if local == Path::new("-") {
        // The file itself went to stdout.
        if !out.quiet {
            eprintln!(
                "fetched {what} to standard output ({}{rebuilt})",
                size(report.size)
            );
        }
        return Ok(());
    }
    out.note(&format!(
        "fetched {what} to {} ({}{rebuilt})",
        local.display(),
        size(report.size)
    ))
}
