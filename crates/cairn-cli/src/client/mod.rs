//! The client commands: `init`, `put`, `get`, `ls`, `rm`, `stat`,
//! `verify`, `repair` and `share`.
//!
//! A command line goes through three steps:
//!
//! 1. clap parses it ([`crate::cli`]);
//! 2. [`invocation`] resolves it once: the global arguments into the
//!    [`Options`](options::Options) every command shares (output mode,
//!    config file, passphrase source) and the command's own arguments into
//!    checked, typed options. A refusal there is a [`UsageError`] (exit
//!    status 2);
//! 3. the command runs: it opens a client and logs in to every node at once
//!    ([`login`]), so that a wrong passphrase is reported as one, not as
//!    "no node reachable", and prints what it did ([`output`],
//!    [`progress`]).
//!
//! One module per command group: [`init`], [`put`] (`put -r` in
//! `put::tree`), [`get`], [`list`] (`ls`), [`remove`] (`rm`), [`inspect`]
//! (`stat`, `verify`, sharing [`sweep`] with `repair`), [`repair`] and
//! [`share`]. The client library's errors are worded for the user in
//! [`error`]; servers given without a node id are pinned in [`trust`].
//!
//! Results go to stdout, as text or with `--json` as one JSON document;
//! warnings, errors and progress bars go to stderr. Progress bars are drawn
//! only when stderr is a terminal and `--quiet` is not given.
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
//! repair  {files: [{path, before, after, chunks_repaired, shards_written, bytes_written,
//!          corrupt, unplaced, problems: [..]}], repaired, not_ok: [..]}
//! share   {path, capability}
//! ```

mod config_file;
mod error;
mod get;
mod init;
mod inspect {
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
}
mod invocation;
mod list;
mod login;
mod options;
mod output;
mod progress;
mod put;
mod remove;
mod repair {
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
        sweep(
            options,
            remote,
            "repairing",
            async |client, path| client.repair(path).await,
            |path, outcome| {
                let report = match outcome {
                    Ok(report) => report,
                    Err(e) => {
                        not_ok.push(format!("{path} ({e})"));
                        // (Printed with --json too.)
                        return Ok(Some(format!("{:<8}  {path} ({e})", Health::Lost)));
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
                    problems: report.problems,
                });
                Ok(show.then_some(line))
            },
        )
        .await?;
        // Files whose repair failed are in `not_ok` but not in `files`.
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
}
mod share {
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
}
mod sweep;
mod trust;

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};

pub use self::error::UsageError;
use self::invocation::Invocation;
use crate::cli::{ClientCommand, GlobalArgs};

/// Runs a client command.
pub fn run(global: GlobalArgs, command: ClientCommand) -> Result<()> {
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = Invocation::resolve(global, command).and_then(|invocation| {
        runtime.block_on(async {
            // On Ctrl-C, drop the command: a get's partial file is removed
            // and a put writes no index entry, so nothing half-done is left
            // named.
            tokio::select! {
                result = invocation.run() => result,
                _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
            }
        })
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
