//! How the client commands word their errors: bad usage, and the client
//! library's errors.
//!
//! The library's errors carry data; what to tell the user (which command
//! lists what is stored, which flag overwrites) is said here, once per
//! error, so that every command words the same failure the same way.
//! Errors that are only context (`cannot store REMOTE: …`) stay with
//! their command.

use std::fmt;
use std::path::Path;

use anyhow::anyhow;
use cairn_client::directory::DirectoryError;
use cairn_client::{FetchError, NodeFailure, RemotePath};
use cairn_net::NodeAddress;
use cairn_net::client::ClientError;

/// A command line refused after clap accepted it (exit status 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Bad usage, saying what is wrong with the command line.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// A stored file that is not there.
pub fn no_file(remote: impl fmt::Display) -> anyhow::Error {
    anyhow!("no file {remote} (`cairn ls` lists what is stored)")
}

/// A local file that a fetch would overwrite.
pub fn local_exists(local: impl fmt::Display) -> anyhow::Error {
    anyhow!("{local} exists; pass --force to overwrite it")
}

/// No node answered; `failed` names each with why.
pub fn no_node(failed: &[NodeFailure]) -> anyhow::Error {
    let failed: Vec<String> = failed.iter().map(ToString::to_string).collect();
    anyhow!("no node could be reached: {}", failed.join(", "))
}

/// A failed fetch of `remote` (or of its capability, for `share`).
pub fn fetch_error(remote: &RemotePath, error: FetchError) -> anyhow::Error {
    match error {
        FetchError::NotFound(_) => no_file(remote),
        FetchError::Exists(path) => local_exists(path.display()),
        other => anyhow::Error::new(other).context(format!("cannot fetch {remote}")),
    }
}

/// A failed fetch by capability into `local`.
pub fn shared_fetch_error(local: &Path, error: FetchError) -> anyhow::Error {
    let error = match error {
        FetchError::Exists(path) => local_exists(path.display()),
        other => anyhow::Error::new(other),
    };
    error.context(format!(
        "cannot fetch the shared file into {}",
        local.display()
    ))
}

/// A failed directory operation (`what`: remove, inspect) on `remote`.
pub fn directory_error(remote: &RemotePath, what: &str, error: DirectoryError) -> anyhow::Error {
    match error {
        DirectoryError::NotFound(_) => no_file(remote),
        other => anyhow::Error::new(other).context(format!("cannot {what} {remote}")),
    }
}

/// `URL: why` for a node that failed, without repeating the address.
pub fn node_failure(address: &NodeAddress, error: &ClientError) -> String {
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
