//! The client commands: `init`, `put`, `get`, `ls`, `rm`, `stat`, `verify`
//! and `share`.
//!
//! Each command first checks its arguments (a refusal there is a
//! [`UsageError`], exit status 2), then loads the config and passphrase
//! ([`crate::config_file`]), opens a [`Client`] and logs in to every node at
//! once, so that a wrong passphrase is reported as one, not as "no node
//! reachable". Results go to stdout, as text or with `--json` as one JSON
//! document; warnings, errors and progress bars go to stderr. Progress bars
//! are drawn only when stderr is a terminal and `--quiet` is not given.
//!
//! JSON shapes (sizes in bytes, times as RFC 3339 and Unix milliseconds):
//!
//! ```text
//! init    {config, user, servers: [ADDR], data, total, min_shards,
//!          trusted: [ADDR], nodes: [{address, login: accepted|refused|unreachable|unchecked, error?}]}
//! put     {path, local, size, chunks, redundancy: "k-of-n", data, total, nodes,
//!          health: ok|degraded, shards_sent, shards_present, bytes_sent, failed_nodes: [..],
//!          inline}
//! put -r  {stored: [as put], failed: [{local, path?, error}]}
//! get     {path?, local, size, chunks, rebuilt, shards_fetched, shards_failed}
//! ls      [{path, size, modified, modified_unix_ms, version, health?}]
//! rm      {path, references_dropped, shards_kept}
//! stat    {path, size, modified, modified_unix_ms, version, chunks, redundancy,
//!          data, total, health, missing, corrupt, shards_per_node: [{node, shards}],
//!          inline}   (inline: shards_per_node counts copies of the index entry)
//! verify  {files: [as stat, or {path, health: "lost", error}], ok, degraded, lost}
//! share   {path, capability}
//! ```

use std::fmt;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use cairn_client::directory::{DirectoryError, FileInfo, FileLayout, Health};
use cairn_client::{
    Client, ClientConfig, FetchError, FetchReport, NodeFailure, RemotePath, StoreReport,
};
use cairn_core::Capability;
use cairn_net::client::{ClientError, ClientOptions, Connection};
use cairn_net::protocol::ErrorCode;
use cairn_net::{NodeAddress, NodeId};
use futures::stream::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use tokio::io::AsyncWriteExt;

use crate::cli::{
    Command, GetArgs, GlobalArgs, InitArgs, LsArgs, PutArgs, RepairArgs, RmArgs, ShareArgs,
    StatArgs, VerifyArgs,
};
use crate::config_file::{self, PassphraseSource};
use crate::units::size;

/// A command line refused after clap accepted it (exit status 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// Runs a client command.
pub fn run(global: &GlobalArgs, command: Command) -> Result<()> {
    init_logging();
    let out = Output::new(global);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(async {
        let command = async {
            match command {
                Command::Init(args) => init(global, &out, args).await,
                Command::Put(args) => put(global, &out, args).await,
                Command::Get(args) => get(global, &out, args).await,
                Command::Ls(args) => ls(global, &out, args).await,
                Command::Rm(args) => rm(global, &out, args).await,
                Command::Stat(args) => stat(global, &out, args).await,
                Command::Verify(args) => verify(global, &out, args).await,
                Command::Repair(args) => repair(global, &out, args).await,
                Command::Share(args) => share(global, &out, args).await,
                Command::Demo(_) | Command::Node(_) | Command::Bench(_) => {
                    unreachable!("not a client command")
                }
            }
        };
        // On Ctrl-C, drop the command: a get's partial file is removed and
        // a put writes no index entry, so nothing half-done is left named.
        tokio::select! {
            result = command => result,
            _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
        }
    });
    // A sealer thread still running after a failed put ends with its
    // channel; do not wait on it long.
    runtime.shutdown_timeout(Duration::from_secs(2));
    result
}

/// Library warnings (an index entry that does not open, say) on stderr;
/// `RUST_LOG=debug` shows every node that failed and why.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Where and how results are printed.
#[derive(Debug)]
struct Output {
    json: bool,
    quiet: bool,
    progress: bool,
}

impl Output {
    fn new(global: &GlobalArgs) -> Self {
        Self {
            json: global.json,
            quiet: global.quiet,
            progress: !global.quiet && std::io::stderr().is_terminal(),
        }
    }

    /// A line of data on stdout.
    fn data(&self, line: &str) -> Result<()> {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{line}")?;
        stdout.flush()?;
        Ok(())
    }

    /// A confirmation on stdout: not with --quiet, not with --json.
    fn note(&self, line: &str) -> Result<()> {
        if self.quiet || self.json {
            return Ok(());
        }
        self.data(line)
    }

    /// `value` as pretty JSON on stdout.
    fn json<T: Serialize>(&self, value: &T) -> Result<()> {
        let mut stdout = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut stdout, value)?;
        writeln!(stdout)?;
        stdout.flush()?;
        Ok(())
    }

    /// A warning on stderr (shown even with --quiet).
    fn warn(&self, line: &str) {
        eprintln!("warning: {line}");
    }

    /// A bar counting bytes up to `total` (a spinner when unknown), or a
    /// hidden one when progress is not shown.
    fn bytes_bar(&self, total: Option<u64>, message: &str) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
        let template = if total.is_some() {
            "{msg:.24!} [{wide_bar}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}"
        } else {
            "{spinner} {msg:.24!} {bytes} {binary_bytes_per_sec} {elapsed}"
        };
        bar.set_style(
            ProgressStyle::with_template(template)
                .expect("the template is valid")
                .progress_chars("=> "),
        );
        bar.set_message(message.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }

    /// A bar counting files.
    fn count_bar(&self, total: u64, message: &str) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("verifying [{bar:30}] {pos}/{len} {wide_msg}")
                .expect("the template is valid")
                .progress_chars("=> "),
        );
        bar.set_message(message.to_owned());
        bar
    }
}

// ---------------------------------------------------------------------------
// Opening a client

/// Loads the config and passphrase, opens the client and logs in to every
/// node.
async fn open(global: &GlobalArgs, out: &Output) -> Result<Client> {
    let path = config_file::path(global.config.as_deref())?;
    let config = config_file::load(&path)?;
    let passphrase = config_file::passphrase(
        &config.user,
        PassphraseSource {
            file: global.passphrase_file.as_deref(),
            prompt: true,
        },
    )?
    .ok_or_else(|| anyhow!("no passphrase"))?;
    let client = Client::open(&config, passphrase.as_bytes())
        .await
        .with_context(|| format!("cannot open the client of {}", path.display()))?;
    check_login(&client, &config.user, out).await?;
    Ok(client)
}

/// What one node made of a login.
enum Login {
    Accepted,
    Refused,
    Unreachable(String),
}

/// Connects and logs in to every node; returns each node's outcome.
async fn logins(client: &Client) -> Vec<(NodeAddress, Login)> {
    let cluster = client.cluster();
    cluster
        .connect_all()
        .await
        .into_iter()
        .enumerate()
        .map(|(i, result)| {
            let address = cluster.address(i).clone();
            let login = match result {
                Ok(()) => Login::Accepted,
                Err(e) if e.code() == Some(ErrorCode::Unauthorized) => Login::Refused,
                Err(e) => Login::Unreachable(failure(&address, &e)),
            };
            (address, login)
        })
        .collect()
}

/// Fails unless some node accepts the login, naming what each refused or
/// unreachable node did; warns about those when another node accepted.
async fn check_login(client: &Client, user: &str, out: &Output) -> Result<()> {
    let outcomes = logins(client).await;
    let refused: Vec<String> = outcomes
        .iter()
        .filter(|(_, l)| matches!(l, Login::Refused))
        .map(|(a, _)| a.url())
        .collect();
    let unreachable: Vec<String> = outcomes
        .iter()
        .filter_map(|(_, l)| match l {
            Login::Unreachable(why) => Some(why.clone()),
            _ => None,
        })
        .collect();
    let accepted = outcomes.len() - refused.len() - unreachable.len();
    if accepted == 0 {
        if unreachable.is_empty() {
            bail!(
                "wrong passphrase for {user}, or {user} is not a user of these nodes: \
                 every node refused the login ({})",
                refused.join(", ")
            );
        }
        if refused.is_empty() {
            bail!("no node could be reached: {}", unreachable.join("; "));
        }
        bail!(
            "no node accepted {user}: refused by {} (wrong passphrase, or no such user there); \
             unreachable: {}",
            refused.join(", "),
            unreachable.join("; ")
        );
    }
    for node in &refused {
        out.warn(&format!(
            "{node} refused the login of {user}: wrong passphrase, or {user} is not a user there"
        ));
    }
    for why in &unreachable {
        out.warn(&format!("cannot reach {why}"));
    }
    Ok(())
}

/// `URL: why` for a node that failed, without repeating the address.
fn failure(address: &NodeAddress, error: &ClientError) -> String {
    match error {
        ClientError::Connect { source, .. } => format!("{}: {source}", address.url()),
        ClientError::Timeout { after, .. } => {
            format!(
                "{}: no answer within {}",
                address.url(),
                humantime::format_duration(*after)
            )
        }
        ClientError::WrongNode { mismatch, .. } => format!("{}: {mismatch}", address.url()),
        other => format!("{}: {other}", address.url()),
    }
}

/// Client options with the config's settings, or the defaults.
fn options(config: Option<&ClientConfig>) -> ClientOptions {
    config.map_or_else(
        || ClientConfig::default().client_options(),
        ClientConfig::client_options,
    )
}

/// Connects to each server without a node id and pins it to the id it
/// shows. Returns the servers, all pinned, and those that were trusted.
async fn trust_on_first_use(
    servers: Vec<NodeAddress>,
    options: &ClientOptions,
) -> Result<(Vec<NodeAddress>, Vec<NodeAddress>)> {
    let resolved = futures::future::join_all(servers.into_iter().map(|server| async move {
        if server.node_id.is_some() {
            return Ok((server, false));
        }
        let connection = Connection::connect(&server, options, true)
            .await
            .map_err(|e| anyhow!("cannot learn the node id of {}", failure(&server, &e)))?;
        let id: NodeId = connection.node_id();
        connection.close().await;
        Ok::<_, anyhow::Error>((server.with_node_id(id), true))
    }))
    .await;
    let mut all = Vec::new();
    let mut trusted = Vec::new();
    for result in resolved {
        let (server, was_trusted) = result?;
        if was_trusted {
            trusted.push(server.clone());
        }
        all.push(server);
    }
    Ok((all, trusted))
}

fn unpinned(servers: &[NodeAddress]) -> Vec<String> {
    servers
        .iter()
        .filter(|s| s.node_id.is_none())
        .map(NodeAddress::url)
        .collect()
}

// ---------------------------------------------------------------------------
// init

#[derive(Serialize)]
struct InitJson {
    config: String,
    user: String,
    servers: Vec<String>,
    data: usize,
    total: usize,
    min_shards: usize,
    trusted: Vec<String>,
    nodes: Vec<NodeLoginJson>,
}

#[derive(Serialize)]
struct NodeLoginJson {
    address: String,
    login: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

async fn init(global: &GlobalArgs, out: &Output, args: InitArgs) -> Result<()> {
    let path = config_file::path(global.config.as_deref())?;
    if args.user.is_empty() {
        return Err(usage("--user is empty: name the user as on the nodes"));
    }
    let loose = unpinned(&args.servers);
    if !loose.is_empty() && !args.trust_on_first_use {
        return Err(usage(format!(
            "{} {} no #NODE_ID: give each server as `cairn node init` or `cairn node address` \
             printed it (URL#NODE_ID), or pass --trust-on-first-use to record the id the node shows",
            loose.join(", "),
            if loose.len() == 1 { "has" } else { "have" }
        )));
    }
    let mut config = ClientConfig::new(args.user.clone(), args.servers.clone());
    config.data = args.data.map(usize::from);
    config.total = args.total.map(usize::from);
    config.min_shards = args.min_shards.map(usize::from);
    // Check everything but the ids before connecting anywhere: stand-in ids
    // for the servers still to be asked.
    let mut probe = config.clone();
    for (i, server) in probe.servers.iter_mut().enumerate() {
        if server.node_id.is_none() {
            let stand_in = cairn_core::Id::of(format!("unpinned server {i}").as_bytes());
            server.node_id = Some(NodeId(stand_in));
        }
    }
    probe
        .validate()
        .map_err(|e| usage(e.to_string().replace("client config: ", "")))?;
    if !args.force && path.exists() {
        bail!(
            "{} already exists; pass --force to replace it (or --config FILE to write another)",
            path.display()
        );
    }

    let options = options(Some(&config));
    let (servers, trusted) = trust_on_first_use(config.servers.clone(), &options).await?;
    for server in &trusted {
        let line = format!(
            "trusted {server} on first use: check that `cairn node address` on that node prints it"
        );
        // Shown even with --quiet: this is what the user must check.
        if out.json {
            eprintln!("{line}");
        } else {
            out.data(&line)?;
        }
    }
    config.servers = servers;
    config
        .validate()
        .with_context(|| "the servers given".to_owned())?;
    config_file::write(&path, &config, args.force)?;
    let redundancy = config.redundancy()?;
    out.note(&format!(
        "wrote {}: user {}, {}, {} (a put needs {} of each chunk stored)",
        path.display(),
        config.user,
        plural(config.servers.len(), "server", ""),
        redundancy,
        plural(config.min_shards(), "shard", ""),
    ))?;

    // Check the login where a passphrase is at hand; never fail init for it.
    let passphrase = config_file::passphrase(
        &config.user,
        PassphraseSource {
            file: global.passphrase_file.as_deref(),
            prompt: std::io::stdin().is_terminal(),
        },
    )?;
    let mut nodes = Vec::new();
    match passphrase {
        Some(passphrase) => {
            let client = Client::open(&config, passphrase.as_bytes()).await?;
            for (address, login) in logins(&client).await {
                let (status, error) = match login {
                    Login::Accepted => {
                        out.note(&format!("{} accepts {}", address.url(), config.user))?;
                        ("accepted", None)
                    }
                    Login::Refused => {
                        out.warn(&format!(
                            "{} refused the login of {}: wrong passphrase, or no such user there \
                             (`cairn node user add` adds one)",
                            address.url(),
                            config.user
                        ));
                        ("refused", None)
                    }
                    Login::Unreachable(why) => {
                        out.warn(&format!("cannot reach {why}"));
                        ("unreachable", Some(why))
                    }
                };
                nodes.push(NodeLoginJson {
                    address: address.to_string(),
                    login: status,
                    error,
                });
            }
            client.close().await;
        }
        None => {
            out.note(
                "logins not checked: set $CAIRN_PASSPHRASE or pass --passphrase-file to check them",
            )?;
            nodes.extend(config.servers.iter().map(|s| NodeLoginJson {
                address: s.to_string(),
                login: "unchecked",
                error: None,
            }));
        }
    }
    if out.json {
        out.json(&InitJson {
            config: path.display().to_string(),
            user: config.user.clone(),
            servers: config.servers.iter().map(ToString::to_string).collect(),
            data: redundancy.data(),
            total: redundancy.total(),
            min_shards: config.min_shards(),
            trusted: trusted.iter().map(ToString::to_string).collect(),
            nodes,
        })?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// put

/// One file to store.
struct Job {
    local: PathBuf,
    remote: RemotePath,
    size: u64,
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
    fn new(job: &Job, report: &StoreReport) -> Self {
        Self {
            path: job.remote.to_string(),
            local: job.local.display().to_string(),
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

#[derive(Serialize)]
struct PutFailedJson {
    local: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    error: String,
}

#[derive(Serialize)]
struct PutTreeJson {
    stored: Vec<StoredJson>,
    failed: Vec<PutFailedJson>,
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

/// A remote path given on the command line.
fn remote_arg(text: &str) -> Result<RemotePath> {
    text.parse()
        .map_err(|e| usage(format!("{text:?} is not a valid remote path: {e}")))
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

async fn put(global: &GlobalArgs, out: &Output, args: PutArgs) -> Result<()> {
    // A REMOTE that cannot be a path is bad usage, whatever LOCAL is.
    if let Some(text) = args.remote.as_deref() {
        let trimmed = text.trim_end_matches('/');
        if !trimmed.trim_start_matches('/').is_empty() {
            remote_arg(trimmed)?;
        }
    }
    if args.local == Path::new("-") {
        return put_stdin(global, out, args).await;
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
        return put_tree(global, out, args).await;
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
    let job = Job {
        local: args.local.clone(),
        remote,
        size: metadata.len(),
    };
    let client = open(global, out).await?;
    let bar = out.bytes_bar(Some(job.size), job.remote.as_str());
    let result = client
        .store_file(&job.local, &job.remote, &|sealed| bar.set_position(sealed))
        .await;
    bar.finish_and_clear();
    client.close().await;
    let report = result.with_context(|| format!("cannot store {}", job.remote))?;
    if out.json {
        out.json(&StoredJson::new(&job, &report))?;
    } else {
        out.note(&stored_line(&job.remote, &report))?;
    }
    if report.degraded {
        warn_degraded(out, 1, &report.failed_nodes);
    }
    Ok(())
}

/// `cairn put - REMOTE`: stores standard input, modified now.
async fn put_stdin(global: &GlobalArgs, out: &Output, args: PutArgs) -> Result<()> {
    if args.recursive {
        return Err(usage("-r stores a directory; - is standard input"));
    }
    let remote = match args.remote.as_deref() {
        Some(text) if !text.ends_with('/') => remote_arg(text)?,
        _ => {
            return Err(usage(
                "name the file to store standard input as: cairn put - REMOTE",
            ));
        }
    };
    let client = open(global, out).await?;
    let now = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let bar = out.bytes_bar(None, remote.as_str());
    let result = client
        .store_async(tokio::io::stdin(), &remote, now, &|sealed| {
            bar.set_position(sealed)
        })
        .await;
    bar.finish_and_clear();
    client.close().await;
    let report = result.with_context(|| format!("cannot store {remote}"))?;
    let job = Job {
        local: PathBuf::from("-"),
        remote,
        size: report.size,
    };
    if out.json {
        out.json(&StoredJson::new(&job, &report))?;
    } else {
        out.note(&stored_line(&job.remote, &report))?;
    }
    if report.degraded {
        warn_degraded(out, 1, &report.failed_nodes);
    }
    Ok(())
}

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

/// Every regular file under `dir`, in name order, with its path relative
/// to `dir` joined with `/`. Symbolic links and special files are skipped
/// with a warning; names that are not UTF-8 are returned as failures.
fn walk(
    dir: &Path,
    relative: &str,
    out: &Output,
    files: &mut Vec<(PathBuf, String, u64)>,
    unusable: &mut Vec<(PathBuf, String)>,
) -> Result<()> {
    let mut entries = std::fs::read_dir(dir)
        .and_then(|entries| entries.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("cannot read the directory {}", dir.display()))?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(ToOwned::to_owned) else {
            unusable.push((path, "the name is not valid UTF-8".into()));
            continue;
        };
        let relative = if relative.is_empty() {
            name
        } else {
            format!("{relative}/{name}")
        };
        let kind = entry
            .file_type()
            .with_context(|| format!("cannot read {}", path.display()))?;
        if kind.is_symlink() {
            out.warn(&format!("skipping the symbolic link {}", path.display()));
        } else if kind.is_dir() {
            walk(&path, &relative, out, files, unusable)?;
        } else if kind.is_file() {
            let len = entry
                .metadata()
                .with_context(|| format!("cannot read {}", path.display()))?
                .len();
            files.push((path, relative, len));
        } else {
            out.warn(&format!("skipping {}: not a regular file", path.display()));
        }
    }
    Ok(())
}

/// At most this many files are stored at once; a file takes one slot per
/// 4 MiB (a chunk at most), so large files go one at a time and memory
/// stays what one put needs.
const PUT_SLOTS: u32 = 4;

async fn put_tree(global: &GlobalArgs, out: &Output, args: PutArgs) -> Result<()> {
    let prefix: Option<RemotePath> = match args.remote.as_deref() {
        Some(text) if text.trim_matches('/').is_empty() => None,
        Some(text) => Some(remote_arg(text.trim_end_matches('/'))?),
        None => Some(remote_arg(&name_of(&args.local)?)?),
    };
    let mut files = Vec::new();
    let mut unusable = Vec::new();
    walk(&args.local, "", out, &mut files, &mut unusable)?;
    let mut failed: Vec<PutFailedJson> = unusable
        .into_iter()
        .map(|(local, error)| PutFailedJson {
            local: local.display().to_string(),
            path: None,
            error,
        })
        .collect();
    let mut jobs = Vec::new();
    for (local, relative, len) in files {
        let remote = match &prefix {
            Some(prefix) => prefix.join(&relative),
            None => relative.parse(),
        };
        match remote {
            Ok(remote) => jobs.push(Job {
                local,
                remote,
                size: len,
            }),
            Err(e) => failed.push(PutFailedJson {
                local: local.display().to_string(),
                path: Some(relative),
                error: e.to_string(),
            }),
        }
    }
    if !out.json {
        for failure in &failed {
            eprintln!("error: cannot store {}: {}", failure.local, failure.error);
        }
    }
    if jobs.is_empty() {
        if failed.is_empty() {
            out.warn(&format!(
                "nothing to store: {} holds no regular file",
                args.local.display()
            ));
        }
        let failed_count = failed.len();
        if out.json {
            out.json(&PutTreeJson {
                stored: Vec::new(),
                failed,
            })?;
        }
        if failed_count > 0 {
            bail!("{failed_count} of {failed_count} files could not be stored");
        }
        return Ok(());
    }

    let client = open(global, out).await?;
    let total: u64 = jobs.iter().map(|j| j.size).sum();
    let bar = out.bytes_bar(Some(total), &format!("{} files", jobs.len()));
    let slots = Arc::new(tokio::sync::Semaphore::new(PUT_SLOTS as usize));
    let client = &client;
    let bar_ref = &bar;
    let mut results = futures::stream::iter(jobs.into_iter().map(|job| {
        let slots = slots.clone();
        async move {
            let weight = job.size.div_ceil(4 << 20).clamp(1, u64::from(PUT_SLOTS)) as u32;
            let _slots = slots.acquire_many(weight).await.expect("never closed");
            let last = AtomicU64::new(0);
            let result = client
                .store_file(&job.local, &job.remote, &|sealed| {
                    let before = last.swap(sealed, Ordering::Relaxed);
                    bar_ref.inc(sealed.saturating_sub(before));
                })
                .await;
            bar_ref.inc(job.size.saturating_sub(last.load(Ordering::Relaxed)));
            (job, result)
        }
    }))
    .buffered(2 * PUT_SLOTS as usize);

    let mut stored = Vec::new();
    let mut degraded = 0;
    let mut failed_nodes = Vec::new();
    while let Some((job, result)) = results.next().await {
        match result {
            Ok(report) => {
                if report.degraded {
                    degraded += 1;
                    failed_nodes.clone_from(&report.failed_nodes);
                }
                if !out.json {
                    bar.suspend(|| out.note(&stored_line(&job.remote, &report)))?;
                }
                stored.push(StoredJson::new(&job, &report));
            }
            Err(e) => {
                bar.suspend(|| eprintln!("error: cannot store {}: {e}", job.remote));
                failed.push(PutFailedJson {
                    local: job.local.display().to_string(),
                    path: Some(job.remote.to_string()),
                    error: e.to_string(),
                });
            }
        }
    }
    drop(results);
    bar.finish_and_clear();
    client.close().await;
    let (stored_count, failed_count) = (stored.len(), failed.len());
    if out.json {
        out.json(&PutTreeJson { stored, failed })?;
    }
    if degraded > 0 {
        warn_degraded(out, degraded, &failed_nodes);
    }
    if failed_count > 0 {
        bail!(
            "{failed_count} of {} files could not be stored",
            stored_count + failed_count
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// get

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
}

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
        bail!("{} exists; pass --force to overwrite it", local.display());
    }
    Ok(())
}

/// A fetch error with the file it concerns.
fn fetch_error(remote: &RemotePath, error: FetchError) -> anyhow::Error {
    match error {
        FetchError::NotFound(_) => anyhow!("no file {remote} (`cairn ls` lists what is stored)"),
        FetchError::Exists(path) => {
            anyhow!("{} exists; pass --force to overwrite it", path.display())
        }
        other => anyhow::Error::new(other).context(format!("cannot fetch {remote}")),
    }
}

async fn get(global: &GlobalArgs, out: &Output, args: GetArgs) -> Result<()> {
    if let Some(capability) = args.cap.clone() {
        return get_capability(global, out, args, &capability).await;
    }
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
    let local = local_target(args.local.clone(), remote.file_name());
    if !to_stdout {
        refuse_overwrite(&local, args.force)?;
    }
    let client = open(global, out).await?;
    let total = if out.progress {
        // Only to give the bar a length and an ETA.
        client
            .list_files(remote.as_str(), false)
            .await
            .ok()
            .and_then(|files| files.into_iter().find(|f| f.path == remote))
            .map(|f| f.size)
    } else {
        None
    };
    let bar = out.bytes_bar(total, remote.as_str());
    let progress = |written| bar.set_position(written);
    let result = if to_stdout {
        let mut stdout = tokio::io::stdout();
        let fetched = client.fetch_to(&remote, &mut stdout, &progress).await;
        flushed(&mut stdout, fetched).await
    } else {
        client
            .fetch_file(&remote, &local, args.force, &progress)
            .await
    };
    bar.finish_and_clear();
    client.close().await;
    let report = result.map_err(|e| fetch_error(&remote, e))?;
    fetched(out, Some(&remote), &local, &report)
}

async fn get_capability(
    global: &GlobalArgs,
    out: &Output,
    args: GetArgs,
    capability: &Capability,
) -> Result<()> {
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
    if to_stdout && out.json {
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
        let path = config_file::path(global.config.as_deref())?;
        match config_file::load_if_present(&path)? {
            Some(config) => (config.servers.clone(), Some(config)),
            None => {
                return Err(usage(format!(
                    "no servers to ask: pass --server URL#NODE_ID (there is no config file at {})",
                    path.display()
                )));
            }
        }
    } else {
        (args.servers.clone(), None)
    };
    let loose = unpinned(&servers);
    if !loose.is_empty() && !args.trust_on_first_use {
        return Err(usage(format!(
            "{} has no #NODE_ID: give each server as URL#NODE_ID, or pass --trust-on-first-use",
            loose.join(", ")
        )));
    }
    let options = options(config.as_ref());
    let (servers, trusted) = trust_on_first_use(servers, &options).await?;
    for server in &trusted {
        eprintln!("trusting {server} on first use");
    }
    let mut client = Client::anonymous(&servers, options).context("cannot use these servers")?;
    // A configured scan applies to files fetched by capability too, even
    // with the servers given on the command line.
    let scan_command = match &config {
        Some(config) => config.scan_command.clone(),
        None => match config_file::path(global.config.as_deref()) {
            Ok(path) => config_file::load_if_present(&path)?.and_then(|c| c.scan_command),
            Err(_) => None,
        },
    };
    client.set_scan_command(scan_command);
    let bar = out.bytes_bar(None, &local.display().to_string());
    let progress = |written| bar.set_position(written);
    let result = if to_stdout {
        let mut stdout = tokio::io::stdout();
        let fetched = client
            .fetch_capability_to(capability, &mut stdout, &progress)
            .await;
        flushed(&mut stdout, fetched).await
    } else {
        client
            .fetch_capability_to_file(capability, &local, args.force, &progress)
            .await
    };
    bar.finish_and_clear();
    client.close().await;
    let report = result
        .map_err(|e| match e {
            FetchError::Exists(path) => {
                anyhow!("{} exists; pass --force to overwrite it", path.display())
            }
            e => anyhow::Error::new(e),
        })
        .with_context(|| format!("cannot fetch the shared file into {}", local.display()))?;
    fetched(out, None, &local, &report)
}

// ---------------------------------------------------------------------------
// ls, rm, stat, verify, share

/// `1 shard missing`, `2 shards missing`; `1 corrupt copy`, `2 corrupt copies`.
fn plural(count: usize, noun: &str, after: &str) -> String {
    let noun = match (count, noun.strip_suffix('y')) {
        (1, _) => noun.to_owned(),
        (_, Some(stem)) => format!("{stem}ies"),
        (_, None) => format!("{noun}s"),
    };
    if after.is_empty() {
        format!("{count} {noun}")
    } else {
        format!("{count} {noun} {after}")
    }
}

fn timestamp(unix_ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(unix_ms)).to_string()
}

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

async fn ls(global: &GlobalArgs, out: &Output, args: LsArgs) -> Result<()> {
    let client = open(global, out).await?;
    let prefix = args.prefix.as_deref().unwrap_or("");
    let files = client
        .list_files(prefix, args.long)
        .await
        .context("cannot list the files")?;
    client.close().await;
    if out.json {
        let files: Vec<FileJson> = files.iter().map(FileJson::from).collect();
        return out.json(&files);
    }
    for file in &files {
        if args.long {
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

#[derive(Serialize)]
struct RemovedJson {
    path: String,
    references_dropped: usize,
    shards_kept: usize,
}

async fn rm(global: &GlobalArgs, out: &Output, args: RmArgs) -> Result<()> {
    let client = open(global, out).await?;
    let result = client.remove(&args.remote).await;
    client.close().await;
    let report = match result {
        Ok(report) => report,
        Err(DirectoryError::NotFound(_)) => {
            bail!("no file {} (`cairn ls` lists what is stored)", args.remote)
        }
        Err(e) => return Err(e).with_context(|| format!("cannot remove {}", args.remote)),
    };
    if out.json {
        return out.json(&RemovedJson {
            path: args.remote.to_string(),
            references_dropped: report.references_dropped,
            shards_kept: report.shards_kept,
        });
    }
    out.note(&format!("removed {}", args.remote))
}

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

fn directory_error(remote: &RemotePath, what: &str, error: DirectoryError) -> anyhow::Error {
    match error {
        DirectoryError::NotFound(_) => {
            anyhow!("no file {remote} (`cairn ls` lists what is stored)")
        }
        other => anyhow::Error::new(other).context(format!("cannot {what} {remote}")),
    }
}

async fn stat(global: &GlobalArgs, out: &Output, args: StatArgs) -> Result<()> {
    let client = open(global, out).await?;
    let result = client.stat(&args.remote).await;
    client.close().await;
    let layout = result.map_err(|e| directory_error(&args.remote, "inspect", e))?;
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

/// `remote` alone, or every stored file (for `verify` and `repair`).
async fn remote_or_all(client: &Client, remote: Option<&RemotePath>) -> Result<Vec<RemotePath>> {
    Ok(match remote {
        Some(remote) => vec![remote.clone()],
        None => client
            .list_files("", false)
            .await
            .context("cannot list the files")?
            .into_iter()
            .map(|f| f.path)
            .collect(),
    })
}

async fn verify(global: &GlobalArgs, out: &Output, args: VerifyArgs) -> Result<()> {
    let client = open(global, out).await?;
    let paths = remote_or_all(&client, args.remote.as_ref()).await?;
    let bar = out.count_bar(paths.len() as u64, "verifying");
    let mut files = Vec::new();
    let mut not_ok = Vec::new();
    let mut counts = [0usize; 3];
    for path in &paths {
        bar.set_message(path.to_string());
        let (health, line, json) = match client.verify(path).await {
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
            Err(DirectoryError::NotFound(_)) if args.remote.is_none() => {
                // Removed since the listing.
                bar.inc(1);
                continue;
            }
            Err(DirectoryError::NotFound(_)) => {
                bar.finish_and_clear();
                client.close().await;
                bail!("no file {path} (`cairn ls` lists what is stored)");
            }
            Err(DirectoryError::NoNode { failed }) => {
                bar.finish_and_clear();
                client.close().await;
                let failed: Vec<String> = failed.iter().map(ToString::to_string).collect();
                bail!("no node could be reached: {}", failed.join(", "));
            }
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
        if !out.json && (health != Health::Ok || !out.quiet) {
            bar.suspend(|| out.data(&line))?;
        }
        files.push(json);
        bar.inc(1);
    }
    bar.finish_and_clear();
    client.close().await;
    if out.json {
        out.json(&VerifyJson {
            files,
            ok: counts[0],
            degraded: counts[1],
            lost: counts[2],
        })?;
    } else {
        out.note(&format!(
            "verified {} file{}: {} ok, {} degraded, {} lost",
            counts.iter().sum::<usize>(),
            if counts.iter().sum::<usize>() == 1 {
                ""
            } else {
                "s"
            },
            counts[0],
            counts[1],
            counts[2]
        ))?;
    }
    if !not_ok.is_empty() {
        bail!(
            "{} of {} files not ok: {}",
            not_ok.len(),
            counts.iter().sum::<usize>(),
            not_ok.join(", ")
        );
    }
    Ok(())
}

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

async fn repair(global: &GlobalArgs, out: &Output, args: RepairArgs) -> Result<()> {
    let client = open(global, out).await?;
    let paths = remote_or_all(&client, args.remote.as_ref()).await?;
    let bar = out.count_bar(paths.len() as u64, "repairing");
    let mut files = Vec::new();
    let mut not_ok = Vec::new();
    let mut repaired = 0;
    for path in &paths {
        bar.set_message(path.to_string());
        let report = match client.repair(path).await {
            Ok(report) => report,
            Err(DirectoryError::NotFound(_)) if args.remote.is_none() => {
                bar.inc(1);
                continue; // removed since the listing
            }
            Err(DirectoryError::NotFound(_)) => {
                bar.finish_and_clear();
                client.close().await;
                bail!("no file {path} (`cairn ls` lists what is stored)");
            }
            Err(e) => {
                not_ok.push(format!("{path} ({e})"));
                bar.suspend(|| out.data(&format!("{:<8}  {path} ({e})", Health::Lost)))?;
                bar.inc(1);
                continue;
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
        if !out.json && (report.after != Health::Ok || report.shards_written > 0 || !out.quiet) {
            bar.suspend(|| out.data(&line))?;
        }
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
        bar.inc(1);
    }
    bar.finish_and_clear();
    client.close().await;
    let total = files.len();
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

#[derive(Serialize)]
struct ShareJson {
    path: String,
    capability: String,
}

async fn share(global: &GlobalArgs, out: &Output, args: ShareArgs) -> Result<()> {
    let client = open(global, out).await?;
    let result = client.capability(&args.remote).await;
    client.close().await;
    let capability = result.map_err(|e| fetch_error(&args.remote, e))?;
    if out.json {
        return out.json(&ShareJson {
            path: args.remote.to_string(),
            capability: capability.to_string(),
        });
    }
    out.data(&capability.to_string())
}
