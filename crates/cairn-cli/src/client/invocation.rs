//! From the command line to what a client command works with, in one step.
//!
//! clap parses the raw arguments into [`crate::cli`]'s types (ripgrep's
//! low-level args); [`Invocation::resolve`] turns them, once, into typed
//! options (ripgrep's high-level args): the [`Options`] every command
//! shares and a [`Task`], the command with its own arguments checked
//! (each command module resolves its own: `InitOptions`, `PutOptions`,
//! `GetOptions`). Commands take these and never see the raw arguments
//! again.
//!
//! A refusal here is bad usage ([`UsageError`](super::error::UsageError),
//! exit status 2) or a local file or config error (exit status 1), in the
//! order each command has always made its checks: its own arguments and
//! the local files they name before the config file is read.

use anyhow::{Context, Result};
use cairn_client::RemotePath;

use super::get::{self, GetOptions};
use super::init::{self, InitOptions};
use super::options::Options;
use super::put::{self, PutOptions};
use super::{inspect, list, remove, repair, share};
use crate::cli::{ClientCommand, GlobalArgs};

/// A client command line, resolved.
#[derive(Debug)]
pub struct Invocation {
    /// What every command shares.
    options: Options,
    /// The command and its own options.
    task: Task,
}

impl Invocation {
    /// Resolves the global arguments and checks `command`'s.
    ///
    /// # Errors
    /// A [`UsageError`](super::error::UsageError) for a command line that
    /// cannot be run; a missing local file or a bad config file where the
    /// command needs one to make sense of its arguments (`get --cap`
    /// without `--server` takes the servers from the config).
    pub fn resolve(global: GlobalArgs, command: ClientCommand) -> Result<Self> {
        let options = Options::resolve(global);
        let task = Task::resolve(command, &options)?;
        Ok(Self { options, task })
    }

    /// Runs the command.
    pub async fn run(self) -> Result<()> {
        let Self { options, task } = self;
        match task {
            Task::Init(init) => init::run(&options, init).await,
            Task::Put(put) => put::run(&options, put).await,
            Task::Get(get) => get::run(&options, get).await,
            Task::Ls {
                folder,
                long,
                recursive,
            } => list::run(&options, folder.as_ref(), long, recursive).await,
            Task::Rm(remote) => remove::run(&options, &remote).await,
            Task::Stat(remote) => inspect::stat(&options, &remote).await,
            Task::Verify(remote) => inspect::verify(&options, remote.as_ref()).await,
            Task::Repair(remote) => repair::run(&options, remote.as_ref()).await,
            Task::Share(remote) => share::run(&options, &remote).await,
        }
    }
}

/// A client command with its arguments checked.
#[derive(Debug)]
pub enum Task {
    /// `init`: write the config.
    Init(InitOptions),
    /// `put`: store a file, standard input or a tree.
    Put(PutOptions),
    /// `get`: fetch a stored file, or a shared one by capability.
    Get(GetOptions),
    /// `ls`: list a folder (`None`: the root), or a file.
    Ls {
        /// The folder (or file) to list.
        folder: Option<RemotePath>,
        /// `-l`: with size, modification time and health.
        long: bool,
        /// `-r`: every file below, not the folder's items.
        recursive: bool,
    },
    /// `rm`: remove a stored file.
    Rm(RemotePath),
    /// `stat`: show how a stored file is spread.
    Stat(RemotePath),
    /// `verify`: read and check a file's shards, or (`None`) every file's.
    Verify(Option<RemotePath>),
    /// `repair`: rebuild a file's missing shards, or (`None`) every file's.
    Repair(Option<RemotePath>),
    /// `share`: print a file's capability.
    Share(RemotePath),
}

impl Task {
    /// Checks `command`'s arguments.
    fn resolve(command: ClientCommand, options: &Options) -> Result<Self> {
        Ok(match command {
            ClientCommand::Init(args) => Self::Init(InitOptions::resolve(args, options)?),
            ClientCommand::Put(args) => Self::Put(PutOptions::resolve(args)?),
            ClientCommand::Get(args) => Self::Get(GetOptions::resolve(args, options)?),
            ClientCommand::Ls(args) => Self::Ls {
                folder: match args.path.as_deref().map(|p| p.trim_end_matches('/')) {
                    None | Some("" | "/") => None,
                    Some(path) => Some(
                        path.parse()
                            .with_context(|| format!("cannot list {path:?}"))?,
                    ),
                },
                long: args.long,
                recursive: args.recursive,
            },
            ClientCommand::Rm(args) => Self::Rm(args.remote),
            ClientCommand::Stat(args) => Self::Stat(args.remote),
            ClientCommand::Verify(args) => Self::Verify(args.remote),
            // clap requires REMOTE or --all, not both.
            ClientCommand::Repair(args) => Self::Repair(args.remote),
            ClientCommand::Share(args) => Self::Share(args.remote),
        })
    }
}
