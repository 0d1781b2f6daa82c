//! Where and how results are printed.
//!
//! Results go to stdout, as text or with `--json` as one JSON document;
//! warnings and errors go to stderr, and so do progress bars
//! ([`Progress`]), drawn only when stderr is a terminal and `--quiet` is
//! not given. `--quiet` drops confirmations, never data or warnings.

use std::io::{IsTerminal, Write};
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Result;
use serde::Serialize;

use super::progress::Progress;

/// Where and how results are printed, decided once from `--json`, `-q`
/// and whether stderr is a terminal.
#[derive(Debug)]
pub struct Output {
    /// `--json`: one JSON document on stdout instead of text.
    pub json: bool,
    /// `--quiet`: no confirmations and no progress bars.
    pub quiet: bool,
    /// The progress bars, shown or hidden.
    pub progress: Progress,
}

impl Output {
    /// The output `--json` and `--quiet` ask for.
    pub fn new(json: bool, quiet: bool) -> Self {
        Self {
            json,
            quiet,
            progress: Progress::new(!quiet && std::io::stderr().is_terminal()),
        }
    }

    /// A line of data on stdout.
    pub fn data(&self, line: &str) -> Result<()> {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{line}")?;
        stdout.flush()?;
        Ok(())
    }

    /// A confirmation on stdout: not with --quiet, not with --json.
    pub fn note(&self, line: &str) -> Result<()> {
        if self.quiet || self.json {
            return Ok(());
        }
        self.data(line)
    }

    /// `value` as pretty JSON on stdout.
    pub fn json<T: Serialize>(&self, value: &T) -> Result<()> {
        let mut stdout = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut stdout, value)?;
        writeln!(stdout)?;
        stdout.flush()?;
        Ok(())
    }

    /// A warning on stderr (shown even with --quiet).
    pub fn warn(&self, line: &str) {
        eprintln!("warning: {line}");
    }
}

/// `1 shard missing`, `2 shards missing`; `1 corrupt copy`, `2 corrupt copies`.
pub fn plural(count: usize, noun: &str, after: &str) -> String {
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

/// A modification time as RFC 3339, to the second.
pub fn timestamp(unix_ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(unix_ms)).to_string()
}
