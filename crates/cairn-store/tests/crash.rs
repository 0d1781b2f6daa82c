//! kill -9 at random moments: during segment puts, during a migration,
//! during a compaction and during the upgrade of a schema version 2
//! database.
//!
//! The test binary runs itself as the child (the `child` test, which does
//! nothing unless `CAIRN_CRASH_CHILD` is set), which works on a store and
//! prints a line per acknowledged put; the parent kills it (SIGKILL) after
//! a varying delay, reopens the store and checks that every acknowledged
//! shard reads back intact, that nothing reads back wrong, and that the
//! scrub finds nothing damaged or missing. Guards issue 17's rule that a
//! put is acknowledged only once its record and its reference are both
//! durable, and that a migration can be killed at any moment; and issue
//! 13's, that a node killed while it upgrades its index to folders and the
//! change feed opens again, still at version 2 or already at 3, never in
//! between.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use std::{env, thread};

use cairn_core::Id;
use cairn_store::{GetError, LEGACY_FOLDER, ScrubOptions, Store, StoreOptions, count_shards};

const CHILD_ENV: &str = "CAIRN_CRASH_CHILD";

fn shard(seed: u64) -> (Id, Vec<u8>) {
    // 1 byte to about 200 KiB, so records straddle pages and flushes.
    let len = 1 + (seed.wrapping_mul(7919) % 200_000) as usize;
    let bytes = testdata::seeded_bytes(seed, len);
    (Id::of(&bytes), bytes)
}

fn segments(dir: &Path) -> Store {
    Store::open(dir, StoreOptions::default().with_segments(true)).unwrap()
}

/// The child's side. Puts: four threads put shards `base + n` for as long
/// as they live, printing `acked <seed>` after each put returns.
/// Migration: migrates, then prints `done`.
#[test]
fn child() {
    let Ok(spec) = env::var(CHILD_ENV) else {
        return;
    };
    let mut parts = spec.splitn(3, ':');
    let (mode, base, dir) = (
        parts.next().unwrap(),
        parts.next().unwrap().parse::<u64>().unwrap(),
        parts.next().unwrap(),
    );
    let store = segments(Path::new(dir));
    match mode {
        "put" => thread::scope(|s| {
            for t in 0..4u64 {
                let store = &store;
                s.spawn(move || {
                    for n in 0.. {
                        let seed = base + n * 4 + t;
                        let (id, bytes) = shard(seed);
                        store.put("ann", &id, &bytes, None).unwrap();
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "acked {seed}").unwrap();
                        out.flush().unwrap();
                    }
                });
            }
        }),
        "migrate" => {
            store.migrate().unwrap();
            println!("done");
        }
        "compact" => {
            let options = cairn_store::CompactOptions::default().with_max_bytes_per_second(None);
            store.compact(&options).unwrap();
            println!("done");
        }
        // The open above was the upgrade.
        "open" => println!("done"),
        other => panic!("unknown child mode {other}"),
    }
}

/// Runs the child in `mode` on `dir` and kills it after `after`; returns
/// the lines it printed.
fn run_and_kill(mode: &str, base: u64, dir: &Path, after: Duration) -> Vec<String> {
    let mut child = Command::new(env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, format!("{mode}:{base}:{}", dir.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    thread::sleep(after);
    // SIGKILL on Unix: no destructor, no flush, no unlock.
    let _ = child.kill();
    child.wait().unwrap();
    reader.join().unwrap()
}

fn check_clean_scrub(store: &Store) {
    let report = store.scrub(&ScrubOptions::default()).unwrap();
    assert!(
        report.corrupt.is_empty() && report.missing.is_empty(),
        "{report:?}"
    );
}

#[test]
fn kill_9_during_segment_puts_loses_no_acknowledged_shard() {
    let dir = tempfile::tempdir().unwrap();
    drop(segments(dir.path()));
    let mut acked_total = 0;
    for (round, millis) in [150u64, 400, 60, 900, 250].into_iter().enumerate() {
        let base = round as u64 * 1_000_000;
        let lines = run_and_kill("put", base, dir.path(), Duration::from_millis(millis));
        let acked: Vec<u64> = lines
            .iter()
            .filter_map(|line| line.strip_prefix("acked ")?.parse().ok())
            .collect();
        let highest = acked.iter().max().copied().unwrap_or(base);
        eprintln!(
            "round {round}: killed after {millis} ms, {} puts acknowledged",
            acked.len()
        );
        let store = segments(dir.path());
        for seed in &acked {
            let (id, bytes) = shard(*seed);
            assert_eq!(
                store.get(&id).unwrap(),
                bytes,
                "round {round}: acknowledged shard {seed} lost"
            );
        }
        // Puts in flight when killed: intact or absent, never wrong.
        for seed in base..highest + 64 {
            let (id, bytes) = shard(seed);
            match store.get(&id) {
                Ok(read) => assert_eq!(read, bytes),
                Err(GetError::NotFound { .. }) => {}
                Err(e) => panic!("round {round}: shard {seed}: {e:?}"),
            }
        }
        check_clean_scrub(&store);
        acked_total += acked.len();
    }
    assert!(acked_total > 0, "the child never acknowledged a put");
}

#[test]
fn kill_9_during_migration_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let seeds: Vec<u64> = (0..400).collect();
    {
        // Shard files, the first layout, to migrate from.
        let options = StoreOptions::default()
            .with_sync(false)
            .with_segments(false);
        let store = Store::open(dir.path(), options).unwrap();
        for seed in &seeds {
            let (id, bytes) = shard(*seed);
            store.put("ann", &id, &bytes, None).unwrap();
        }
    }
    assert_eq!(common::damage::shard_files(dir.path()), seeds.len() as u64);
    assert_eq!(count_shards(dir.path()).unwrap(), seeds.len() as u64);
    let usage = Store::open(dir.path(), StoreOptions::default())
        .unwrap()
        .usage("ann")
        .unwrap();
    for millis in [80u64, 200, 30, 350] {
        run_and_kill("migrate", 0, dir.path(), Duration::from_millis(millis));
        eprintln!(
            "killed after {millis} ms: {} shard files left",
            common::damage::shard_files(dir.path())
        );
        let store = segments(dir.path());
        for seed in &seeds {
            let (id, bytes) = shard(*seed);
            assert_eq!(store.get(&id).unwrap(), bytes, "shard {seed} lost");
        }
        assert_eq!(store.usage("ann").unwrap(), usage);
        check_clean_scrub(&store);
    }
    let store = segments(dir.path());
    store.migrate().unwrap();
    assert_eq!(common::damage::shard_files(dir.path()), 0);
    assert_eq!(count_shards(dir.path()).unwrap(), seeds.len() as u64);
    for seed in &seeds {
        let (id, bytes) = shard(*seed);
        assert_eq!(store.get(&id).unwrap(), bytes);
    }
}

#[test]
fn kill_9_during_compaction_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let seeds: Vec<u64> = (0..400).collect();
    {
        let store = Store::open(
            dir.path(),
            StoreOptions::default().with_segments(true).with_sync(false),
        )
        .unwrap();
        for seed in &seeds {
            let (id, bytes) = shard(*seed);
            store.put("ann", &id, &bytes, None).unwrap();
        }
        // Three in four dead.
        for seed in seeds.iter().filter(|s| *s % 4 != 0) {
            store.drop_ref("ann", &shard(*seed).0).unwrap();
        }
    }
    let live: Vec<u64> = seeds.iter().copied().filter(|s| s % 4 == 0).collect();
    let check = |store: &Store| {
        for seed in &seeds {
            let (id, bytes) = shard(*seed);
            match store.get(&id) {
                Ok(read) if live.contains(seed) => assert_eq!(read, bytes),
                Err(GetError::NotFound { .. }) if !live.contains(seed) => {}
                other => panic!("shard {seed}: {other:?}"),
            }
        }
        check_clean_scrub(store);
    };
    // Each kill on a fresh copy of the prepared store, so that every one
    // lands somewhere in the one compaction there is to do.
    let mut mid_way = 0;
    for millis in [10u64, 20, 30, 45, 60, 80, 120] {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), copy.path());
        let lines = run_and_kill("compact", 0, copy.path(), Duration::from_millis(millis));
        if !lines.iter().any(|line| line == "done") {
            mid_way += 1;
        }
        check(&segments(copy.path()));
    }
    eprintln!("{mid_way} of 7 kills landed before the compaction finished");
    let store = segments(dir.path());
    store
        .compact(&cairn_store::CompactOptions::default().with_max_bytes_per_second(None))
        .unwrap();
    check(&store);
}

#[test]
fn kill_9_during_the_upgrade_to_folders_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    drop(segments(dir.path()));
    // Enough old entries that the upgrade, one transaction, takes a while.
    let entries: Vec<_> = (0..30_000u32)
        .map(|n| {
            let mut name = [0; 32];
            name[..4].copy_from_slice(&n.to_be_bytes());
            let user = if n % 3 == 0 { "bob" } else { "ann" };
            (user, name, u64::from(n) + 1, n.to_le_bytes().repeat(8))
        })
        .collect();
    common::rewrite_as_schema_2(dir.path(), &entries);
    // Kills from before the open to after the upgrade's commit (about
    // 0.5 to 1 s in, on a loaded 2-core machine).
    let kills = [50u64, 200, 500, 1000, 2000];
    let mut mid_way = 0;
    for millis in kills {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), copy.path());
        let lines = run_and_kill("open", 0, copy.path(), Duration::from_millis(millis));
        let version = common::recorded_version(copy.path());
        if !lines.iter().any(|line| line == "done") && version == Some(2) {
            mid_way += 1;
        }
        assert!(matches!(version, Some(2 | 4)), "{version:?}");
        // Whatever the kill left, the next open finishes the upgrade.
        let store = segments(copy.path());
        let mut listed = store.list_index("ann", None, 100_000).unwrap();
        listed.extend(store.list_index("bob", None, 100_000).unwrap());
        assert_eq!(listed.len(), entries.len());
        for entry in &listed {
            let n = u32::from_be_bytes(entry.name[..4].try_into().unwrap());
            assert_eq!(
                (entry.version, &entry.data),
                (u64::from(n) + 1, &n.to_le_bytes().repeat(8))
            );
        }
        let mut in_feed = 0;
        for user in ["ann", "bob"] {
            let feed = store.changes(user, 0, None, 100_000, 100_000).unwrap();
            assert!(!feed.more);
            in_feed += feed.entries.len();
            let legacy = store
                .list_folder(user, &LEGACY_FOLDER, None, 100_000)
                .unwrap();
            assert_eq!(legacy.len(), feed.entries.len());
        }
        assert_eq!(in_feed, entries.len());
        drop(store);
        assert_eq!(common::recorded_version(copy.path()), Some(4));
    }
    eprintln!(
        "{mid_way} of {} kills landed before the upgrade committed",
        kills.len()
    );
}

/// Copies the files of directory `from` into `to`, recursively.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
