//! `cairn bench index`: the index on four local nodes. A tree of small
//! files stored with `put -r`; then, in a store filled to `--files` entries
//! in folders of `--folder-size`: listing one folder, walking every folder
//! (`ls -r`) with the client's peak memory, the change feed answering
//! "nothing changed", and the nodes' disk per entry.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cairn_client::{ChangeCursor, Client, ListItem, RemotePath, TreeOptions};
use cairn_net::Scheme;
use cairn_node::local::LocalNode;

use super::report::verdict;
use super::usage::{memory, reset_peak_memory};
use super::{PASSPHRASE, USER};
use crate::cli::IndexBenchArgs;
use crate::units::size;

/// Runs of each quick measurement; the median is printed.
const RUNS: usize = 21;

/// Runs `cairn bench index`.
pub fn run(args: &IndexBenchArgs) -> Result<()> {
    let work = super::work_dir(args.dir.as_deref())?;
    let bin = std::env::current_exe().context("cannot find the cairn binary")?;
    println!(
        "cairn bench index: 4 local nodes (tcp) in {}",
        work.path().display()
    );
    let mut nodes = Vec::new();
    for i in 0..4 {
        let mut node = LocalNode::init(
            &bin,
            &work.path().join(format!("node-{}", i + 1)),
            &[Scheme::Tcp],
        )?;
        node.add_user(USER, PASSPHRASE, None)?;
        node.start()?;
        nodes.push(node);
    }
    let servers = nodes.iter().map(|n| n.addresses()[0].clone()).collect();
    let config = cairn_client::ClientConfig::new(USER, servers);
    let tree = work.path().join("tree");
    write_tree(&tree, args.tree_files, args.folder_size, args.file_size)?;
    let dirs: Vec<&Path> = nodes.iter().map(LocalNode::dir).collect();
    let disk_before = index_disk(&dirs);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(async {
        let client = Client::open(&config, PASSPHRASE.as_bytes()).await?;
        let outcome = measure(&client, args, &tree, &dirs, disk_before).await;
        client.close().await;
        outcome
    });
    for node in &mut nodes {
        let _ = node.stop(Duration::from_secs(30));
    }
    outcome
}

/// Writes `files` files of `len` bytes under `dir`, `per_folder` to a
/// folder.
fn write_tree(dir: &Path, files: usize, per_folder: usize, len: usize) -> Result<()> {
    for i in 0..files {
        let folder = dir.join(format!("d{:05}", i / per_folder));
        if i % per_folder == 0 {
            std::fs::create_dir_all(&folder)?;
        }
        std::fs::write(folder.join(format!("f{i:07}")), content(i, len))?;
    }
    Ok(())
}

/// The bytes of file `i`: seeded, so that no two files are equal.
fn content(i: usize, len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
    blake3::Hasher::new_keyed(&seed)
        .finalize_xof()
        .fill(&mut bytes);
    bytes
}

/// Bytes of the nodes' metadata databases (where index entries live).
fn index_disk(dirs: &[&Path]) -> u64 {
    dirs.iter()
        .filter_map(|dir| std::fs::metadata(dir.join("meta.redb")).ok())
        .map(|m| m.len())
        .sum()
}

/// The median of `runs` durations.
fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort_unstable();
    runs[runs.len() / 2]
}

async fn measure(
    client: &Client,
    args: &IndexBenchArgs,
    tree: &Path,
    dirs: &[&Path],
    disk_before: u64,
) -> Result<()> {
    use futures::stream::{self, StreamExt};

    // put -r of the tree.
    let prefix: RemotePath = "tree".parse()?;
    let started = Instant::now();
    let report = client
        .store_tree(tree, Some(&prefix), &TreeOptions::default(), &|_| {})
        .await?;
    let put_r = started.elapsed();
    if !report.failed.is_empty() {
        bail!("put -r failed for {} files", report.failed.len());
    }
    let put_rate = args.tree_files as f64 / put_r.as_secs_f64();
    println!(
        "\nput -r of {} files of {} in folders of {}: {:.1} s, {put_rate:.0} files/s",
        args.tree_files,
        size(args.file_size as u64),
        args.folder_size,
        put_r.as_secs_f64()
    );

    // Fill the store to --files entries, through the library, many at once.
    let fill = args.files.saturating_sub(args.tree_files);
    let started = Instant::now();
    let stored: Vec<Result<(), cairn_client::StoreError>> = stream::iter(0..fill)
        .map(|i| async move {
            let name: RemotePath = format!("fill/d{:05}/f{i:07}", i / args.folder_size)
                .parse()
                .expect("a valid path");
            let bytes = content(args.tree_files + i, args.file_size);
            client
                .store_reader(std::io::Cursor::new(bytes), &name, 0, &|_| {})
                .await
                .map(drop)
        })
        .buffer_unordered(64)
        .collect()
        .await;
    stored.into_iter().collect::<Result<Vec<()>, _>>()?;
    let entries = args.tree_files + fill;
    println!(
        "filled to {entries} files in {:.1} s ({:.0} files/s)",
        started.elapsed().as_secs_f64(),
        fill as f64 / started.elapsed().as_secs_f64().max(1e-9)
    );
    let disk = index_disk(dirs).saturating_sub(disk_before);
    // Every node keeps every entry; the inline bytes are sealed with 33
    // bytes of envelope and 32 of binding.
    let per_entry = disk as f64 / dirs.len() as f64 / entries as f64;
    let beyond_inline = per_entry - (args.file_size + 65) as f64;

    // One folder.
    let folder: RemotePath = "tree/d00000".parse()?;
    let mut runs = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let mut items = 0;
        let started = Instant::now();
        client
            .walk(Some(&folder), false, false, &mut |_| {
                items += 1;
                true
            })
            .await?;
        runs.push(started.elapsed());
        if items != args.folder_size.min(args.tree_files) {
            bail!("the folder listed {items} items");
        }
    }
    let folder_time = median(runs);
    println!(
        "ls of a folder of {} in a store of {entries}: {:.1} ms (median of {RUNS})",
        args.folder_size,
        folder_time.as_secs_f64() * 1e3
    );

    // ls -r of everything.
    reset_peak_memory();
    let mut files = 0usize;
    let started = Instant::now();
    client
        .walk(None, true, false, &mut |item| {
            if matches!(item, ListItem::File(_)) {
                files += 1;
            }
            true
        })
        .await?;
    let walk = started.elapsed();
    let (_, peak) = memory(std::process::id())?;
    if files != entries {
        bail!("ls -r found {files} files of {entries}");
    }
    println!(
        "ls -r of {entries} files: {:.2} s, client peak RSS {}",
        walk.as_secs_f64(),
        size(peak)
    );

    // The change feed: read to its end, then ask again.
    let mut cursor = ChangeCursor::default();
    loop {
        let changes = client.changes(&cursor, None).await?;
        cursor = changes.cursor;
        if !changes.more {
            break;
        }
    }
    let mut runs = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        let changes = client.changes(&cursor, None).await?;
        runs.push(started.elapsed());
        if !changes.entries.is_empty() {
            bail!("the change feed reported {} changes", changes.entries.len());
        }
    }
    let feed = median(runs);
    println!(
        "change feed, nothing changed: {:.2} ms (median of {RUNS})",
        feed.as_secs_f64() * 1e3
    );
    println!(
        "node disk per index entry: {per_entry:.0} bytes, {beyond_inline:.0} beyond the sealed \
         inline bytes"
    );

    println!("\ntargets (stated for a store of 1,000,000 files):");
    println!(
        "  folder of 200 ≤ 100 ms: {:.1} ms {}",
        folder_time.as_secs_f64() * 1e3,
        verdict(folder_time <= Duration::from_millis(100))
    );
    println!(
        "  ls -r ≤ 1 s per 100,000 files: {:.2} s per 100,000 {}",
        walk.as_secs_f64() * 100_000.0 / entries as f64,
        verdict(walk.as_secs_f64() * 100_000.0 / entries as f64 <= 1.0)
    );
    println!(
        "  client peak RSS ≤ 128 MiB: {} {}",
        size(peak),
        verdict(peak <= 128 << 20)
    );
    println!(
        "  put -r ≥ 3,000 files/s: {put_rate:.0} {}",
        verdict(put_rate >= 3000.0)
    );
    println!(
        "  disk ≤ 300 bytes per entry beyond the inline bytes: {beyond_inline:.0} {}",
        verdict(beyond_inline <= 300.0)
    );
    println!(
        "  nothing changed ≤ 10 ms: {:.2} ms {}",
        feed.as_secs_f64() * 1e3,
        verdict(feed <= Duration::from_millis(10))
    );
    Ok(())
}
