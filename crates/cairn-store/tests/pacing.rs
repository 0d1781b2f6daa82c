//! The rate limits and stop handles of the migration and compaction
//! (`MigrateOptions`, `CompactOptions`), which a running node needs to run
//! them in the background (issue 17): a rate holds, progress is reported
//! per file, and a job stopped half way has lost nothing, left the rest
//! for the next run, and the next run finishes.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use cairn_core::Id;
use cairn_store::{CompactOptions, MigrateOptions, MigrateReport, Stop, Store, StoreOptions};

fn shard(seed: u64, len: usize) -> (Id, Vec<u8>) {
    let bytes = testdata::seeded_bytes(seed, len);
    (Id::of(&bytes), bytes)
}

/// `count` shards of `len` bytes referenced by ann, as shard files.
fn store_with_files(dir: &std::path::Path, count: u64, len: usize) -> Vec<(Id, Vec<u8>)> {
    let store = Store::open(dir, StoreOptions::default().with_segments(false)).unwrap();
    let shards: Vec<_> = (0..count).map(|n| shard(n, len)).collect();
    for (id, bytes) in &shards {
        store.put("ann", id, bytes, None).unwrap();
    }
    shards
}

fn open_segments(dir: &std::path::Path) -> Store {
    Store::open(dir, StoreOptions::default().with_segments(true)).unwrap()
}

#[test]
fn a_rate_limited_migration_takes_its_time_and_reports_every_file() {
    let dir = tempfile::tempdir().unwrap();
    // 8 × 8 KiB at 128 KiB/s: half a second at least (the first file is
    // free, the other seven are due after 7/16 s).
    let shards = store_with_files(dir.path(), 8, 8192);
    let store = open_segments(dir.path());
    let options = MigrateOptions::default().with_max_bytes_per_second(Some(128 * 1024));
    let mut seen = Vec::new();
    let started = Instant::now();
    let report = store
        .migrate_with(&options, &mut |report| seen.push(report.files_seen()))
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(seen, (1..=8).collect::<Vec<u64>>());
    assert_eq!(report.migrated, 8, "{report:?}");
    assert_eq!(report.bytes_migrated, 8 * 8192, "{report:?}");
    assert!(!report.stopped);
    for (id, bytes) in &shards {
        assert_eq!(store.get(id).unwrap(), *bytes);
    }
}

#[test]
fn a_stopped_migration_leaves_the_rest_in_files_and_the_next_one_finishes() {
    let dir = tempfile::tempdir().unwrap();
    // 40 × 4 KiB at 16 KiB/s: ten seconds, unless stopped.
    let shards = store_with_files(dir.path(), 40, 4096);
    let store = open_segments(dir.path());
    let stop = Stop::new();
    let options = MigrateOptions::default()
        .with_max_bytes_per_second(Some(16 * 1024))
        .with_stop(stop.clone());
    let started = Instant::now();
    let report: MigrateReport = thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(Duration::from_millis(500));
            stop.stop();
        });
        store.migrate_with(&options, &mut |_| {}).unwrap()
    });
    assert!(started.elapsed() < Duration::from_secs(3), "stopped late");
    assert!(report.stopped, "{report:?}");
    assert!(report.migrated > 0 && report.migrated < 40, "{report:?}");
    assert_eq!(
        common::damage::shard_files(dir.path()),
        40 - report.migrated
    );
    for (id, bytes) in &shards {
        assert_eq!(store.get(id).unwrap(), *bytes);
    }
    // Stopped for good: the same handle stops the next run at once.
    let again = store.migrate_with(&options, &mut |_| {}).unwrap();
    assert!(again.stopped && again.migrated == 0, "{again:?}");

    let rest = store.migrate().unwrap();
    assert_eq!(rest.migrated, 40 - report.migrated, "{rest:?}");
    assert_eq!(common::damage::shard_files(dir.path()), 0);
    drop(store);
    let store = open_segments(dir.path());
    for (id, bytes) in &shards {
        assert!(store.shard_location(id).unwrap().is_some());
        assert_eq!(store.get(id).unwrap(), *bytes);
    }
}

#[test]
fn a_stopped_compaction_keeps_what_it_moved_and_the_next_one_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let shards: Vec<_> = (0..50).map(|n| shard(n, 4096)).collect();
    {
        let store = open_segments(dir.path());
        for (id, bytes) in &shards {
            store.put("ann", id, bytes, None).unwrap();
        }
    }
    let store = open_segments(dir.path());
    let first = store.shard_location(&shards[0].0).unwrap().unwrap().path;
    for (id, _) in &shards[..20] {
        store.drop_ref("ann", id).unwrap();
    }
    let (kept, dropped) = (&shards[20..], &shards[..20]);
    // 30 live × 4 KiB at 16 KiB/s: seven seconds, unless stopped.
    let stop = Stop::new();
    let options = CompactOptions::default()
        .with_dead_share(0.3)
        .with_max_bytes_per_second(Some(16 * 1024))
        .with_stop(stop.clone());
    let started = Instant::now();
    let report = thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(Duration::from_millis(500));
            stop.stop();
        });
        store.compact(&options).unwrap()
    });
    assert!(started.elapsed() < Duration::from_secs(3), "stopped late");
    assert!(report.stopped, "{report:?}");
    assert_eq!(report.segments_removed, 0, "{report:?}");
    // What it copied before the stop was moved, not wasted.
    assert!(
        report.records_moved > 0 && report.records_moved < 30,
        "{report:?}"
    );
    let moved = kept
        .iter()
        .filter(|(id, _)| store.shard_location(id).unwrap().unwrap().path != first)
        .count() as u64;
    assert_eq!(moved, report.records_moved);
    assert!(first.exists());
    for (id, bytes) in kept {
        assert_eq!(store.get(id).unwrap(), *bytes);
    }

    let rest = store
        .compact(&CompactOptions::default().with_dead_share(0.3))
        .unwrap();
    assert_eq!(rest.segments_removed, 1, "{rest:?}");
    assert!(rest.bytes_freed > 50 * 4096, "{rest:?}");
    assert!(!first.exists());
    for (id, bytes) in kept {
        assert_eq!(store.get(id).unwrap(), *bytes);
    }
    for (id, _) in dropped {
        assert!(store.get(id).is_err());
    }
}
