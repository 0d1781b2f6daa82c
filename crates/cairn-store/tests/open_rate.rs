//! How long a store of many shards takes to open, and how much memory the
//! process holds then: issue 17's targets for a node with 1,000,000 shards
//! (starts in at most 2 s, holds at most 256 MiB). A measurement, not a
//! test (it asserts nothing about speed or memory), so it is `#[ignore]`d.
//! Run it in release mode:
//!
//! ```text
//! cargo test -p cairn-store --release --test open_rate -- --ignored --nocapture
//! ```
//!
//! It fills a new store in a temporary directory (on the disk that holds
//! the system's temporary directory, or under `CAIRN_OPEN_RATE_DIR`) with
//! `CAIRN_OPEN_RATE_SHARDS` shards (default 1,000,000), put through
//! `cairn-store` by 64 threads as one user, and prints its progress every
//! 100,000 shards. The shards are 4032 bytes: a small file's, and the
//! largest whose segment record (a 64-byte header, then the shard) fills
//! exactly one 4 KiB page, so a million take the least disk any would
//! (4 GiB of segments). What an open costs grows with the number of
//! shards, which the database holds, not with their size.
//!
//! The fill turns off what only makes puts durable or checked, none of
//! which changes what ends up on disk: fsync of segments, reading records
//! back, direct I/O (`StoreOptions::with_sync(false)`,
//! `with_verify_writes(false)`, `with_direct_io(false)`). Database commits
//! are durable regardless; concurrent puts share them (group commit), so
//! the fill goes as fast as those commits allow.
//!
//! The store is then dropped, and a new process (this test binary again,
//! on the filled directory) opens it three times with the default options,
//! as a node does, and reports the median time of `Store::open`. With the
//! third store still open it reads back 10,000 random shards, so that an
//! index loaded lazily shows up. It reports its resident memory (`VmRSS`
//! in `/proc/self/status`) after the open and after the reads, and its
//! peak (`VmHWM`): a new process, so that these are the open's and the
//! reads', not the fill's. Also the sizes on disk of `meta.redb` and
//! `segments/`. The opens follow the fill, so the files are likely still
//! in the page cache: a node's start right after a reboot reads them from
//! the device instead.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use cairn_core::Id;
use cairn_store::{Store, StoreOptions};
use common::{segment_bytes, user_record};

/// The length of every shard: with the record's 64-byte header, one page.
const SHARD_LEN: usize = 4096 - 64;
/// Threads putting during the fill: enough to share each database commit.
const FILL_THREADS: u64 = 64;
/// Shards read back after the opens.
const GETS: u64 = 10_000;
/// This test's name, for running it again in a new process.
const TEST_NAME: &str = "open_time_and_memory";
/// Set to the filled directory in the process that opens it.
const MEASURE_ENV: &str = "CAIRN_OPEN_RATE_MEASURE";
/// Issue 17's targets.
const OPEN_TARGET: Duration = Duration::from_secs(2);
const MEMORY_TARGET_MIB: f64 = 256.0;

/// Shards to fill the store with: `CAIRN_OPEN_RATE_SHARDS`, default
/// 1,000,000.
fn shard_count() -> u64 {
    std::env::var("CAIRN_OPEN_RATE_SHARDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
}

/// Shard `n`'s bytes: the same seeded bytes for all, made distinct by `n`
/// in their first 8.
fn shard_bytes(base: &mut [u8], n: u64) -> Id {
    base[..8].copy_from_slice(&n.to_be_bytes());
    Id::of(base)
}

/// A field of `/proc/self/status` given in kB, in MiB.
fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| {
            let value = line.strip_prefix(field)?.strip_prefix(':')?;
            value.trim().strip_suffix("kB")?.trim().parse::<f64>().ok()
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// Puts `count` shards into a new store in `dir`, from [`FILL_THREADS`]
/// threads, printing progress every 100,000; returns the time taken.
fn fill(dir: &Path, count: u64) -> Duration {
    let options = StoreOptions::default()
        .with_sync(false)
        .with_verify_writes(false)
        .with_direct_io(false);
    let store = Store::open(dir, options).unwrap();
    store.add_user("bench", &user_record(1, None)).unwrap();
    let next = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let began = Instant::now();
    thread::scope(|s| {
        for _ in 0..FILL_THREADS {
            let (store, next, done) = (&store, &next, &done);
            s.spawn(move || {
                let mut bytes = testdata::seeded_bytes(0, SHARD_LEN);
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= count {
                        break;
                    }
                    let id = shard_bytes(&mut bytes, n);
                    store.put("bench", &id, &bytes, None).unwrap();
                    let done = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if done % 100_000 == 0 {
                        let secs = began.elapsed().as_secs_f64();
                        println!(
                            "{done:>10} shards {secs:>8.1} s {:>8.0} puts/s",
                            done as f64 / secs
                        );
                    }
                }
            });
        }
    });
    began.elapsed()
}

/// In the new process: opens the store in `dir` of `count` shards three
/// times, then reads back [`GETS`] random ones, printing each figure as
/// `open_rate <name> <value>` for the first process to read.
fn measure(dir: &Path, count: u64) {
    let mut opens = Vec::new();
    let mut store = None;
    for _ in 0..3 {
        // The previous store first: one store per directory at a time.
        drop(store.take());
        let began = Instant::now();
        store = Some(Store::open(dir, StoreOptions::default()).unwrap());
        opens.push(began.elapsed().as_secs_f64());
    }
    let store = store.unwrap();
    let rss_open = status_mib("VmRSS");
    // Random shards, by xorshift from a fixed seed.
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut base = testdata::seeded_bytes(0, SHARD_LEN);
    let ids: Vec<Id> = (0..GETS.min(count))
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            shard_bytes(&mut base, state % count)
        })
        .collect();
    let began = Instant::now();
    for id in &ids {
        assert_eq!(store.get(id).unwrap().len(), SHARD_LEN);
    }
    let gets = ids.len() as f64 / began.elapsed().as_secs_f64();
    let rss_gets = status_mib("VmRSS");
    let peak = status_mib("VmHWM");
    for (name, value) in [
        ("open1", opens[0]),
        ("open2", opens[1]),
        ("open3", opens[2]),
        ("rss_open", rss_open),
        ("rss_gets", rss_gets),
        ("peak", peak),
        ("gets_per_s", gets),
    ] {
        println!("open_rate {name} {value}");
    }
}

#[test]
#[ignore = "a measurement; run with --release -- --ignored --nocapture"]
fn open_time_and_memory() {
    if let Some(dir) = std::env::var_os(MEASURE_ENV) {
        measure(Path::new(&dir), shard_count());
        return;
    }
    let count = shard_count();
    let dir = match std::env::var_os("CAIRN_OPEN_RATE_DIR") {
        Some(parent) => tempfile::tempdir_in(parent),
        None => tempfile::tempdir(),
    }
    .unwrap();
    println!("filling with {count} shards of {SHARD_LEN} bytes, {FILL_THREADS} threads");
    let filled = fill(dir.path(), count);
    let db_mib = std::fs::metadata(dir.path().join("meta.redb"))
        .unwrap()
        .len() as f64
        / 1048576.0;
    let segments_mib = segment_bytes(dir.path()) as f64 / 1048576.0;

    let output = Command::new(std::env::current_exe().unwrap())
        .args([TEST_NAME, "--exact", "--ignored", "--nocapture"])
        .env(MEASURE_ENV, dir.path())
        .env("CAIRN_OPEN_RATE_SHARDS", count.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "measuring process failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let figure = |name: &str| -> f64 {
        stdout
            .lines()
            .find_map(|line| {
                let (key, value) = line.strip_prefix("open_rate ")?.split_once(' ')?;
                (key == name).then(|| value.parse().ok())?
            })
            .unwrap_or_else(|| panic!("no {name} in:\n{stdout}"))
    };
    let mut opens = [figure("open1"), figure("open2"), figure("open3")];
    let opens_listed = opens.map(|s| format!("{s:.3}")).join(", ");
    opens.sort_by(f64::total_cmp);

    let secs = filled.as_secs_f64();
    println!(
        "filled in {secs:.1} s ({:.0} puts/s); meta.redb {db_mib:.1} MiB, segments {segments_mib:.1} MiB",
        count as f64 / secs
    );
    println!("opens {opens_listed} s; {:.0} gets/s", figure("gets_per_s"));
    println!("{:<22} {:>10} {:>10}", "figure", "measured", "at most");
    println!(
        "{:<22} {:>8.3} s {:>8.0} s",
        "open, median of 3",
        opens[1],
        OPEN_TARGET.as_secs_f64()
    );
    for (name, mib) in [
        ("RSS after open", figure("rss_open")),
        (&format!("RSS after {GETS} gets"), figure("rss_gets")),
        ("peak RSS (VmHWM)", figure("peak")),
    ] {
        println!("{name:<22} {mib:>6.1} MiB {MEMORY_TARGET_MIB:>6.0} MiB");
    }
}
