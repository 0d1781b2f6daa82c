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
mod inspect;
mod invocation;
mod list;
mod login;
mod options;
mod output;
mod progress;
mod put;
mod remove;
mod repair;
mod share;
mod sweep;
mod trust;

use std::time::Duration;

use anyhow::{Context, Result, anyhow};

pub use self::error::UsageError;
use self::invocation::Invocation;
use crate::cli::{ClientCommand, GlobalArgs};

/// Runs a client command.
pub fn run(global: GlobalArgs, command: ClientCommand) -> Result<()> {
    crate::logging::init(crate::logging::Logger::Client);
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
