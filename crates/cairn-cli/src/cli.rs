//! The command line, as clap parses it.

use std::path::PathBuf;

use cairn_client::RemotePath;
use cairn_core::Capability;
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
///
/// Start with `cairn init --user NAME --server URL#NODE_ID …` (the addresses
/// `cairn node init` printed), then `cairn put FILE`, `cairn ls -l` and
/// `cairn get FILE`. The passphrase is taken from $CAIRN_PASSPHRASE, else
/// from --passphrase-file, else asked on the terminal.
///
/// Exit status: 0 on success, 1 on failure, 2 on bad usage.
#[derive(Debug, Parser)]
#[command(name = "cairn", version, propagate_version = true)]
pub struct Cli {
    /// Options of the client commands, accepted before or after the command.
    #[command(flatten)]
    pub global: GlobalArgs,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every client command takes.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Client options")]
pub struct GlobalArgs {
    /// The client config file [default: $CAIRN_CONFIG, else
    /// ~/.config/cairn/config.toml].
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Read the passphrase from the first line of FILE when
    /// $CAIRN_PASSPHRASE is not set. Without either, it is asked on the
    /// terminal.
    #[arg(long, global = true, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,

    /// Print JSON on stdout instead of text (one document per command).
    #[arg(long, global = true)]
    pub json: bool,

    /// No progress bars and no confirmations: print only data, warnings
    /// and errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

/// cairn's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The client commands (listed first in the help).
    #[command(flatten)]
    Client(ClientCommand),

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

    /// Measure throughput on this machine: by default a local cluster of
    /// four nodes storing and fetching a large file and many small ones;
    /// `cairn bench node` measures one node's shard transfers.
    Bench(BenchArgs),
}

/// The client commands: they work on the nodes of the client config, or
/// (`get --cap`) on the servers given.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Write the client config: who you are, which nodes to use, and how
    /// many shards to cut each chunk into.
    ///
    /// Each --server is an address `cairn node init` (or `cairn node
    /// address`) printed: URL#NODE_ID. The node id is what the node must
    /// prove on every connection. A bare URL is refused unless
    /// --trust-on-first-use is given: then cairn connects, records the id
    /// the node shows and prints it, so you can compare it with `cairn node
    /// address` on the node.
    ///
    /// When a passphrase is at hand ($CAIRN_PASSPHRASE, --passphrase-file
    /// or the terminal), init logs in to every node and says which accept
    /// the user; a node that is down or refuses is a warning, not a failure.
    Init(InitArgs),

    /// Store a file (or, with -r, a directory tree) on the nodes.
    ///
    /// The file is cut into chunks, each compressed, encrypted and
    /// erasure-coded into n shards on n distinct nodes, so that any k of
    /// them give it back. Prints the remote path, the size and the
    /// redundancy achieved; `degraded` when some chunk has fewer than n
    /// shards because nodes were down (a later put of the same file, with
    /// the nodes back, stores only what is missing).
    Put(PutArgs),

    /// Fetch a stored file, or with --cap a file someone shared.
    ///
    /// Any k verified shards of each chunk are enough, so the file comes
    /// back while up to n - k nodes are down. It is written beside LOCAL
    /// and renamed into place only once its whole hash checks out.
    Get(GetArgs),

    /// List a folder: its files and its folders (shown with a trailing /),
    /// or with -r every file below it; with -l their size, modification
    /// time and health. Each folder costs its own entries, not the store's.
    ///
    /// Health: `ok` (every shard stored), `degraded` (some shards missing,
    /// but every chunk has at least k) or `lost` (some chunk has fewer than
    /// k: the file cannot be read).
    Ls(LsArgs),

    /// Remove a stored file: its name goes, and its shards that no other of
    /// your files uses are released on the nodes.
    Rm(RmArgs),

    /// Show how a stored file is spread: chunks, k-of-n, shards per node,
    /// missing shards and health (from the nodes' shard lists; `verify`
    /// reads the shards too).
    Stat(StatArgs),

    /// Read every shard of a file (or of every file) from every node that
    /// holds it and check its hash. Exits 1 if any file is not `ok`,
    /// naming it.
    Verify(VerifyArgs),

    /// Give every chunk of a file (or of every file) its n shards on n
    /// distinct nodes again.
    ///
    /// Reads every copy of every shard as `verify` does; for each chunk
    /// with a shard missing, corrupt, or sharing a node with another shard
    /// of the chunk, fetches any k shards, rebuilds the missing ones (from
    /// the encrypted bytes: nothing is decrypted) and stores them on nodes
    /// in placement order. Running it again when everything is in place
    /// changes nothing. Exits 1 if a file is still not `ok` afterwards (a
    /// node is down, or a chunk has fewer than k shards left), naming it.
    Repair(RepairArgs),

    /// Print the capability string of a stored file (and only that, on
    /// stdout). Anyone with it can fetch that one file with `cairn get
    /// --cap CAP LOCAL --server URL#NODE_ID`, and nothing else.
    Share(ShareArgs),
}

/// `cairn bench [node]`: without a subcommand, the cluster benchmark.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    /// Measure one node instead of a cluster.
    #[command(subcommand)]
    pub command: Option<BenchCommand>,
    /// Options of the cluster benchmark.
    #[command(flatten)]
    pub cluster: ClusterBenchArgs,
}

/// Options of `cairn bench` (the cluster benchmark).
#[derive(Debug, Args)]
pub struct ClusterBenchArgs {
    /// Size of the large file, in MiB (default 1024; 64 with --faults,
    /// where it is stored once per link).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub size_mib: Option<u64>,
    /// Number of small files.
    #[arg(long, default_value_t = 10_000, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    pub files: usize,
    /// Size of each small file, in bytes.
    #[arg(long, default_value_t = 4096, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_048_576))]
    pub file_size: usize,
    /// Small files stored or fetched at once.
    #[arg(long, default_value_t = 64, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024))]
    pub concurrency: usize,
    /// Chunks in flight during the large file's put and get (the client
    /// config's `window`).
    #[arg(long, default_value_t = 8, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=cairn_client::config::MAX_WINDOW as u64))]
    pub window: usize,
    /// Mix transports as the demo does (https, tcp, tcp, quic) instead of
    /// tcp:// for all four nodes.
    #[arg(long)]
    pub mixed: bool,
    /// Where to put the temporary cluster (default: the system's temporary
    /// directory). It should be on the disk you want to measure.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Measure bad links instead: put and get the large file over quic://
    /// and tcp://, each directly, through a fault proxy that injects no
    /// fault, and through one that does (quic://: 10 % loss, 5 %
    /// duplication, 25 % reordering, 1 % corruption both ways; tcp://:
    /// connections cut every 2 to 6 MiB and a bit flipped about every
    /// 4 MiB), and print each rate beside the direct one.
    #[arg(long, conflicts_with_all = ["files", "file_size", "concurrency", "mixed"])]
    pub faults: bool,
    /// Also back up and restore the same large file with restic (which
    /// must be on PATH), to a restic repository in the bench's temporary
    /// directory, in the same run, and print cairn's put and get as ratios
    /// of restic's backup and restore (e.g. "put 1.21× restic backup"),
    /// with each side's CPU time per GiB.
    #[arg(long, conflicts_with = "faults")]
    pub vs_restic: bool,
    /// With --faults: the congestion controllers to measure quic:// with,
    /// comma-separated, each set on the nodes and the client alike
    /// (`quic_congestion`): bbr (the default setting), cubic (quinn's
    /// default, which collapses under random loss). Each gets its own direct, clean-proxy and faulty rows, and
    /// its own verdict against the lossy-link target.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "bbr,cubic",
        requires = "faults",
        value_name = "NAMES"
    )]
    pub quic_congestion: Vec<cairn_net::quic::Congestion>,
}

/// `cairn bench …`
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Start a node (as a child process, data in a temporary directory) and
    /// measure shard PUT and GET over tcp://, quic:// and https:// with 1
    /// and 8 clients, against the disk's rate for fsync'd 1 MiB files (with
    /// 1 and 8 writers); the node's memory with 100 idle connections; and
    /// the cost of write verification: PUT with verify_writes on and off.
    Node(NodeBenchArgs),
    /// Start four local nodes and measure the index: `put -r` of a tree of
    /// small files, then, with the store filled to --files entries in
    /// folders of --folder-size, listing one folder, walking every folder
    /// (`ls -r`) with the client's peak memory, the change feed answering
    /// "nothing changed", and the nodes' disk per index entry.
    Index(IndexBenchArgs),
}

/// Options of `cairn bench index`.
#[derive(Debug, Args)]
pub struct IndexBenchArgs {
    /// Index entries in the store when listings are measured (the target
    /// is stated for 1,000,000; the default fills in under a minute).
    #[arg(long, default_value_t = 100_000, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1_000..=10_000_000))]
    pub files: usize,
    /// Entries per folder.
    #[arg(long, default_value_t = 200, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100_000))]
    pub folder_size: usize,
    /// Files of the tree stored with `put -r` (their size: --file-size).
    #[arg(long, default_value_t = 20_000, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    pub tree_files: usize,
    /// Size of each file, in bytes (stored inline up to 4 KiB).
    #[arg(long, default_value_t = 2048, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=32_768))]
    pub file_size: usize,
    /// Where to put the temporary cluster (default: the system's temporary
    /// directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
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
    /// Runs of PUT with verify_writes on, and as many with it off, to
    /// measure what verification costs (0 skips it).
    #[arg(long, default_value_t = 3, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=100))]
    pub verify_rounds: usize,
    /// Congestion controller of quic:// on the node and the clients
    /// (`quic_congestion`): bbr (the default setting) or cubic.
    #[arg(long, default_value = "bbr", value_name = "NAME")]
    pub quic_congestion: cairn_net::quic::Congestion,
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
    /// Check every shard of a stopped node now: re-read each file against
    /// its hash, move damaged or unreadable ones to DIR/quarantine/, list
    /// shards users reference whose file is gone, and delete files nobody
    /// references (once an hour old).
    ///
    /// The node must be stopped (a running node scrubs itself in the
    /// background; see scrub_rate and scrub_interval_secs in node.toml).
    /// The pass is recorded, and `cairn node status` shows it. Lost shards
    /// keep their references: once the node runs again, the owners'
    /// clients put them back by repair (or by putting the same files
    /// again). Exit status 1 if any shard was damaged or missing.
    Scrub {
        /// The node's directory.
        #[arg(long)]
        dir: PathBuf,
        /// Most bytes read per second: 50M, 1G, … [default: as fast as the
        /// disk allows]
        #[arg(long, value_name = "SIZE")]
        rate: Option<Size>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Move a stopped node's shard files (DIR/shards/) into segment files
    /// (DIR/segments/), one shard at a time: each is read and checked,
    /// appended and flushed, its new place committed, and only then its
    /// file removed, so the command can be killed at any moment and run
    /// again. Files nobody references and damaged files stay for the
    /// scrub.
    ///
    /// A running node with `segments = true` does the same by itself, in
    /// the background, at migrate_rate (node.toml); this command is for a
    /// stopped node, at full speed.
    Migrate {
        /// The node's directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Compact a stopped node's segment files now: rewrite each segment in
    /// which at least the given share of the bytes is dead (left by dropped
    /// or damaged shards), moving its live shards to a new segment, and
    /// delete segments with nothing live. Safe to kill at any moment.
    ///
    /// A running node compacts by itself in the background (see
    /// compact_interval_secs, compact_dead_percent and compact_rate in
    /// node.toml).
    Compact {
        /// The node's directory.
        #[arg(long)]
        dir: PathBuf,
        /// Rewrite segments at least this many percent dead, 1 to 100
        /// [default: compact_dead_percent of node.toml]
        #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(1..=100))]
        dead_percent: Option<u8>,
        /// Most bytes of live shards copied per second: 50M, 1G, …
        /// [default: as fast as the disk allows]
        #[arg(long, value_name = "SIZE")]
        rate: Option<Size>,
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
    /// Print the HTTP header that authenticates a user to this node's
    /// https:// API, for curl and other HTTP tools: `Authorization: Basic
    /// …`, whose password is the base64 of the key derived for this node
    /// from the passphrase. Checks the passphrase first. The header is a
    /// credential: it logs in as the user on this node (only).
    ///
    /// Example: curl --cacert DIR/node.crt -H "$(cairn node user http-auth
    /// --dir DIR alice)" https://HOST:PORT/v1/index
    HttpAuth {
        /// The node's directory.
        #[arg(long)]
        dir: PathBuf,
        /// User name.
        name: String,
        /// Read the passphrase from standard input (one line).
        #[arg(long)]
        passphrase_stdin: bool,
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

/// Options of `cairn init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Your user name on the nodes (as `cairn node user add` created it).
    /// With the passphrase it derives every key.
    #[arg(long, value_name = "NAME")]
    pub user: String,

    /// A node, as URL#NODE_ID (tcp://, https:// or quic://). Repeat for
    /// each node.
    #[arg(long = "server", value_name = "ADDR", required = true)]
    pub servers: Vec<NodeAddress>,

    /// k: data shards per chunk; any k of a chunk's shards rebuild it
    /// [default: n - 2, at least 1].
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u8).range(1..=32))]
    pub data: Option<u8>,

    /// n: shards per chunk, each on its own node, at most the number of
    /// servers [default: the number of servers, at most 6].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=32))]
    pub total: Option<u8>,

    /// Shards of every chunk a put must store for it to succeed, between k
    /// and n [default: k + 1, at most n].
    #[arg(long, value_name = "M", value_parser = clap::value_parser!(u8).range(1..=32))]
    pub min_shards: Option<u8>,

    /// Accept servers given without #NODE_ID: connect, record the id each
    /// shows, and print it so you can check it against `cairn node
    /// address` on the node.
    #[arg(long)]
    pub trust_on_first_use: bool,

    /// Replace an existing config file.
    #[arg(short, long)]
    pub force: bool,
}

/// Options of `cairn put`.
#[derive(Debug, Args)]
pub struct PutArgs {
    /// The local file (with -r: directory) to store; `-` stores standard
    /// input (then REMOTE is needed).
    #[arg(value_name = "LOCAL")]
    pub local: PathBuf,

    /// The name to store it under, with / between components [default:
    /// LOCAL's file name]. Ending in / stores LOCAL's file name under that
    /// directory. With -r, the directory the tree goes under [default:
    /// LOCAL's name; / for the top].
    #[arg(value_name = "REMOTE")]
    pub remote: Option<String>,

    /// Store a directory: every regular file under it, recursively
    /// (symbolic links are skipped, with a warning).
    #[arg(short, long)]
    pub recursive: bool,
}

/// Options of `cairn get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The stored file to fetch. With --cap, this is the LOCAL file to
    /// write instead.
    #[arg(value_name = "REMOTE")]
    pub remote: Option<String>,

    /// Where to write it [default: REMOTE's file name in the current
    /// directory]. An existing directory receives the file under its name,
    /// and `-` means standard output (the whole file is checked only at
    /// the end: exit status 1 means what was written is not the file).
    #[arg(value_name = "LOCAL")]
    pub local: Option<PathBuf>,

    /// Fetch the file this capability names (from `cairn share`), without
    /// an account: `cairn get --cap CAP LOCAL --server URL#NODE_ID`.
    #[arg(long, value_name = "CAP")]
    pub cap: Option<Capability>,

    /// With --cap: a node to ask, as URL#NODE_ID; repeat for each
    /// [default: the servers of the config file, if there is one].
    #[arg(long = "server", value_name = "ADDR", requires = "cap")]
    pub servers: Vec<NodeAddress>,

    /// With --cap: accept --server addresses without #NODE_ID, trusting
    /// the id each node shows.
    #[arg(long, requires = "cap")]
    pub trust_on_first_use: bool,

    /// Replace LOCAL if it exists.
    #[arg(short, long)]
    pub force: bool,
}

/// Options of `cairn ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// The folder to list (or a file, to show it alone) [default: the
    /// root].
    #[arg(value_name = "PATH")]
    pub path: Option<String>,

    /// List every file below the folder, in path order, folder by folder.
    #[arg(short, long)]
    pub recursive: bool,

    /// Show size, modification time and health (asks every node which
    /// shards it holds).
    #[arg(short, long)]
    pub long: bool,
}

/// Options of `cairn rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// The stored file to remove.
    #[arg(value_name = "REMOTE")]
    pub remote: RemotePath,
}

/// Options of `cairn stat`.
#[derive(Debug, Args)]
pub struct StatArgs {
    /// The stored file.
    #[arg(value_name = "REMOTE")]
    pub remote: RemotePath,
}

/// Options of `cairn verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The stored file to check [default: every file].
    #[arg(value_name = "REMOTE")]
    pub remote: Option<RemotePath>,
}

/// Options of `cairn repair`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("what").required(true).args(["remote", "all"]))]
pub struct RepairArgs {
    /// The stored file to repair.
    #[arg(value_name = "REMOTE")]
    pub remote: Option<RemotePath>,
    /// Repair every stored file.
    #[arg(long)]
    pub all: bool,
}

/// Options of `cairn share`.
#[derive(Debug, Args)]
pub struct ShareArgs {
    /// The stored file.
    #[arg(value_name = "REMOTE")]
    pub remote: RemotePath,
}
