//! The command line, as clap parses it.

use std::path::PathBuf;

use cairn_net::NodeAddress;
use cairn_node::Size;
use clap::{Args, Parser, Subcommand};

/// cairn: a secure, distributed, content-addressed file store.
///
/// cairn cuts files into content-defined chunks, compresses and encrypts
/// them on the client, and erasure-codes them into shards spread over
/// several storage nodes, so that any k of n shards give a file back and no
/// node can read what it stores. Every byte read back is checked against a
/// hash before it is used.
#[derive(Debug, Parser)]
#[command(name = "cairn", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// cairn's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the storage pipeline at work: seal a 64 MiB file into shards
    /// over four stores, destroy two of them, and rebuild the file bit for
    /// bit.
    ///
    /// Everything happens in a temporary directory that is removed at the
    /// end; nothing is left behind and nothing needs configuring.
    Demo(DemoArgs),

    /// Run and manage a storage node: a daemon that owns one directory and
    /// serves shards and index entries over tcp://, https:// and quic://.
    #[command(subcommand)]
    Node(NodeCommand),

    /// Measure throughput on this machine.
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// `cairn bench …`
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Start a node (as a child process, data in a temporary directory) and
    /// measure shard PUT and GET over tcp://, quic:// and https:// with 1
    /// and 8 clients, against the disk's rate for fsync'd 1 MiB files (with
    /// 1 and 8 writers); and the node's memory with 100 idle connections.
    Node(NodeBenchArgs),
}

/// Options of `cairn bench node`.
#[derive(Debug, Args)]
pub struct NodeBenchArgs {
    /// Shards of 1 MiB per measurement.
    #[arg(long, default_value_t = 256, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(8..=100_000))]
    pub shards: usize,
    /// Where to put the temporary node directory (default: the system's
    /// temporary directory). It should be on the disk you want to measure.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// `cairn node …`
#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Create a node in a new directory and print its addresses, one per
    /// line, as URL#NODE_ID (give these to clients).
    ///
    /// Writes DIR/node.toml (every setting with its default, commented),
    /// the node's key pair (DIR/node.key, readable by its owner only) and
    /// self-signed certificate (DIR/node.crt), and an empty store.
    Init {
        /// The node's directory (created; must not hold a node yet).
        #[arg(long)]
        dir: PathBuf,
        /// An address to serve: tcp://HOST:PORT, https://HOST:PORT or
        /// quic://HOST:PORT. Repeat for several.
        #[arg(long = "listen", required = true, value_name = "URL")]
        listen: Vec<NodeAddress>,
    },
    /// Print the node's addresses again, one per line, as URL#NODE_ID.
    Address {
        /// The node's directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Manage the users who may store data on the node. Works while the
    /// node runs.
    #[command(subcommand)]
    User(UserCommand),
    /// Serve in the foreground until SIGINT or SIGTERM, then finish the
    /// requests in flight and exit. Logs go to stderr; RUST_LOG=debug logs
    /// every request.
    Run {
        /// The node's directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Show what the node stores: shards, bytes per user, quotas and the
    /// last scrub. Reads the directory; works whether the node runs or not.
    Status {
        /// The node's directory.
        #[arg(long)]
        dir: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `cairn node user …`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user. Asks for their passphrase (twice) on the terminal, or
    /// reads one line from standard input with --passphrase-stdin. The node
    /// keeps only a salted hash of a key derived from it.
    Add {
        /// The node's directory.
        #[arg(long)]
        dir: PathBuf,
        /// User name: 1 to 64 of A-Z a-z 0-9 . _ - (not starting with . or -).
        name: String,
        /// Most bytes the user may store: 500M, 20G, 1T or a number of bytes.
        #[arg(long)]
        quota: Option<Size>,
        /// Read the passphrase from standard input (one line).
        #[arg(long)]
        passphrase_stdin: bool,
    },
    /// List users with their quota and usage.
    List {
        /// The node's directory.
        #[arg(long)]
        dir: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove a user with all their references and index entries. Shards
    /// nobody else references are deleted.
    Remove {
        /// The node's directory.
        #[arg(long)]
        dir: PathBuf,
        /// User name.
        name: String,
    },
    /// Set a user's quota: a size (500M, 20G) or "none".
    Quota {
        /// The node's directory.
        #[arg(long)]
        dir: PathBuf,
        /// User name.
        name: String,
        /// The new quota, or "none" for no limit.
        size: QuotaArg,
    },
}

/// A quota on the command line: a size, or `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaArg(pub Option<u64>);

impl std::str::FromStr for QuotaArg {
    type Err = cairn_node::config::SizeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("none") {
            Ok(Self(None))
        } else {
            s.parse::<Size>().map(|size| Self(Some(size.0)))
        }
    }
}

/// Options of `cairn demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Size of the generated file, in MiB.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub size_mib: u64,

    /// Keep the temporary directory (and say where it is) instead of
    /// removing it.
    #[arg(long)]
    pub keep: bool,
}
