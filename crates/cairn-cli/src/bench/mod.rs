//! `cairn bench`: throughput measured on this machine.
//!
//! ```text
//! cairn bench            cluster.rs  four local nodes: a large file and many small ones
//! cairn bench --faults   faults.rs   the large file over bad links
//!   … --vs-restic        restic.rs   restic backs up and restores the same file
//! cairn bench index      index.rs    four local nodes: put -r of small files, folder
//!                                    listings, ls -r, the change feed, disk per entry
//! cairn bench node       node.rs     one node: the disk, shard PUT/GET per transport,
//!                                    memory, the cost of write verification
//!                        files.rs    the files stored (seeded, hashed)
//!                        usage.rs    CPU time and memory of processes
//!                        report.rs   rates and verdicts as printed
//! ```

mod cluster;
mod faults;
mod files;
mod index;
mod node;
mod report;
mod restic;
mod usage;

use anyhow::Result;

use crate::cli::{ClusterBenchArgs, IndexBenchArgs, NodeBenchArgs};

/// Runs `cairn bench index`.
pub fn index(args: &IndexBenchArgs) -> Result<()> {
    index::run(args)
}

const USER: &str = "bench";
const PASSPHRASE: &str = "cairn bench passphrase";

/// Runs `cairn bench node`.
pub fn node(args: &NodeBenchArgs) -> Result<()> {
    node::run(args)
}

/// Runs `cairn bench`: the cluster benchmark, or with `--faults` the one of
/// bad links.
pub fn cluster(args: &ClusterBenchArgs) -> Result<()> {
    if args.faults {
        return faults::run(args);
    }
    cluster::run(args)
}

/// A fresh directory for one bench run, under `dir` (`--dir`) or the
/// system's temporary directory; removed when dropped.
fn work_dir(dir: Option<&std::path::Path>) -> Result<tempfile::TempDir> {
    use anyhow::Context;
    let parent = dir.map_or_else(std::env::temp_dir, std::path::Path::to_path_buf);
    tempfile::Builder::new()
        .prefix("cairn-bench-")
        .tempdir_in(&parent)
        .with_context(|| format!("cannot create a directory in {}", parent.display()))
}
