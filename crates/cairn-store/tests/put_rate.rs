//! How many puts a store completes per second with 1, 8 and 32 threads
//! putting at once: a measurement, not a test (it asserts nothing about
//! speed), so it is `#[ignore]`d. Run it in release mode:
//!
//! ```text
//! cargo test -p cairn-store --release --test put_rate -- --ignored --nocapture
//! ```
//!
//! Each case opens a new store (fsync on, as a node runs) in a temporary
//! directory (on the disk that holds the system's temporary directory), and
//! every thread puts distinct shards as one user until the time is up
//! (`CAIRN_PUT_RATE_SECS`, default 3 s). Cases: 1 MiB shards (a large
//! file's), 4 KiB shards (a small file's), and index entries of 200 bytes
//! (a small file's other database write). Each shard is hashed once by the
//! thread for its id, as a client does, on top of the store's own check.
//!
//! What this watches: the database's single writer, whose durable commits
//! cost milliseconds. Concurrent puts share them (group commit; see the
//! `meta` module docs), so puts per second should grow with the threads
//! well past one commit's worth.
//!
//! `verify_writes_cost` measures what reading every shard back costs: 1 MiB
//! shards by 1 and 8 threads with `verify_writes` on and off, alternating,
//! three runs of each, medians (`… --ignored --nocapture verify_writes`).
//!
//! `files_vs_segments` compares the two shard layouts (issue 17), segments
//! written buffered and with direct I/O: 1 MiB and 4 KiB shards by 8
//! threads, fsync and verify on, alternating, three runs of each, medians
//! of puts/s and of the process's CPU seconds per GiB put
//! (`… --ignored --nocapture files_vs_segments`).

mod common;

use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use cairn_core::Id;
use cairn_store::{IndexEntry, Store, StoreOptions};
use common::user_record;

/// What each thread puts.
#[derive(Debug, Clone, Copy)]
enum Load {
    /// Shards of this many bytes.
    Shards(usize),
    /// Index entries of 200 bytes.
    Index,
}

impl Load {
    fn label(self) -> String {
        match self {
            Self::Shards(len) if len >= 1 << 20 => format!("{} MiB shards", len >> 20),
            Self::Shards(len) => format!("{} KiB shards", len >> 10),
            Self::Index => "index entries".to_owned(),
        }
    }
}

/// Puts per second by `threads` threads putting `load` for `time`, into a
/// new store opened with `options`.
fn rate(load: Load, threads: usize, time: Duration, options: StoreOptions) -> f64 {
    rate_and_cpu(load, threads, time, options).0
}

/// This process's user and system CPU time so far, from `/proc/self/stat`
/// (in clock ticks of 1/100 s, as Linux reports them to every process).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |n: usize| {
        fields
            .get(n)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    (ticks(11) + ticks(12)) / 100.0
}

/// [`rate`], and the CPU seconds the process spent per put meanwhile.
fn rate_and_cpu(load: Load, threads: usize, time: Duration, options: StoreOptions) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options).unwrap();
    store.add_user("bench", &user_record(1, None)).unwrap();
    let done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let cpu_before = cpu_seconds();
    let start = Barrier::new(threads + 1);
    let elapsed = thread::scope(|s| {
        for t in 0..threads {
            let (store, done, stop, start) = (&store, &done, &stop, &start);
            s.spawn(move || {
                let mut bytes = match load {
                    Load::Shards(len) => testdata::seeded_bytes(t as u64, len),
                    Load::Index => vec![0; 0],
                };
                start.wait();
                for n in 0u64.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    put(store, load, t as u64, n, &mut bytes);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        start.wait();
        let began = Instant::now();
        thread::sleep(time);
        stop.store(true, Ordering::Relaxed);
        // Leaving the scope joins the threads, whose last puts count.
        began
    });
    let elapsed = elapsed.elapsed();
    let cpu = cpu_seconds() - cpu_before;
    let done = done.load(Ordering::Relaxed) as f64;
    (done / elapsed.as_secs_f64(), cpu / done.max(1.0))
}

/// Thread `t`'s `n`th put: a shard made distinct by its first 16 bytes, or
/// an index entry of a new name.
fn put(store: &Store, load: Load, t: u64, n: u64, bytes: &mut [u8]) {
    let mut unique = [0u8; 16];
    unique[..8].copy_from_slice(&t.to_be_bytes());
    unique[8..].copy_from_slice(&n.to_be_bytes());
    match load {
        Load::Shards(_) => {
            bytes[..16].copy_from_slice(&unique);
            let id = Id::of(bytes);
            store.put("bench", &id, bytes, None).unwrap();
        }
        Load::Index => {
            let mut name = [0u8; 32];
            name[..16].copy_from_slice(&unique);
            let entry = IndexEntry {
                name,
                version: 1,
                data: vec![7; 200],
            };
            store.put_index("bench", &entry).unwrap();
        }
    }
}

/// The time each case runs: `CAIRN_PUT_RATE_SECS`, default 3 s.
fn case_time() -> Duration {
    let secs = std::env::var("CAIRN_PUT_RATE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    Duration::from_secs_f64(secs)
}

#[test]
#[ignore = "a measurement; run with --release -- --ignored --nocapture"]
fn puts_per_second() {
    let time = case_time();
    println!(
        "{:<16} {:>8} {:>10} {:>10}",
        "load", "threads", "puts/s", "MB/s"
    );
    for load in [Load::Shards(1 << 20), Load::Shards(4 << 10), Load::Index] {
        for threads in [1, 8, 32] {
            let rate = rate(load, threads, time, StoreOptions::default());
            let mb = match load {
                Load::Shards(len) => format!("{:.1}", rate * len as f64 / 1e6),
                Load::Index => "-".to_owned(),
            };
            println!("{:<16} {threads:>8} {rate:>10.0} {mb:>10}", load.label());
        }
    }
}

#[test]
#[ignore = "a measurement; run with --release -- --ignored --nocapture"]
fn verify_writes_cost() {
    let time = case_time();
    println!("1 MiB shards, fsync on; MB/s, median of 3 alternating runs of {time:?}");
    println!(
        "{:>8} {:>10} {:>10} {:>6}",
        "threads", "verify", "no verify", "cost"
    );
    for threads in [1, 8] {
        let mut on = Vec::new();
        let mut off = Vec::new();
        for _ in 0..3 {
            for (verify, rates) in [(true, &mut on), (false, &mut off)] {
                let options = StoreOptions::default().with_verify_writes(verify);
                rates.push(rate(Load::Shards(1 << 20), threads, time, options) * 1.048_576);
            }
        }
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (on, off) = (median(on), median(off));
        println!(
            "{threads:>8} {on:>10.0} {off:>10.0} {:>5.0}%",
            100.0 * (1.0 - on / off)
        );
    }
}

#[test]
#[ignore = "a measurement; run with --release -- --ignored --nocapture"]
fn files_vs_segments() {
    let time = case_time();
    println!("8 threads, fsync and verify on; medians of 3 alternating runs of {time:?}");
    let layouts = [
        ("files", StoreOptions::default().with_segments(false)),
        (
            "segs buffered",
            StoreOptions::default()
                .with_segments(true)
                .with_direct_io(false),
        ),
        ("segs direct", StoreOptions::default().with_segments(true)),
    ];
    print!("{:<14}", "load");
    for (name, _) in &layouts {
        print!(" {:>15} {:>9}", format!("{name} put/s"), "CPU s/GiB");
    }
    println!();
    for len in [1 << 20, 4 << 10] {
        let mut runs = [Vec::new(), Vec::new(), Vec::new()];
        for _ in 0..3 {
            for ((_, options), runs) in layouts.iter().zip(runs.iter_mut()) {
                runs.push(rate_and_cpu(Load::Shards(len), 8, time, options.clone()));
            }
        }
        let median = |runs: &[(f64, f64)], pick: fn(&(f64, f64)) -> f64| {
            let mut v: Vec<f64> = runs.iter().map(pick).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let per_gib = |cpu_per_put: f64| cpu_per_put * (1u64 << 30) as f64 / len as f64;
        print!("{:<14}", Load::Shards(len).label());
        for runs in &runs {
            print!(
                " {:>15.0} {:>9.2}",
                median(runs, |r| r.0),
                per_gib(median(runs, |r| r.1))
            );
        }
        println!();
    }
}
