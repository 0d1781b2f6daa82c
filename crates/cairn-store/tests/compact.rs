//! Compaction (issue 17): a segment mostly dead is rewritten, its live
//! records moved and still intact, its file deleted; a segment with no
//! live record is deleted at open. The kill -9 test is in `crash.rs`.

use std::collections::HashSet;

use cairn_core::Id;
use cairn_store::{CompactOptions, GetError, ScrubOptions, Store, StoreOptions};

fn shard(seed: u64, len: usize) -> (Id, Vec<u8>) {
    let bytes = testdata::seeded_bytes(seed, len);
    (Id::of(&bytes), bytes)
}

fn open(dir: &std::path::Path) -> Store {
    Store::open(dir, StoreOptions::default().with_segments(true)).unwrap()
}

fn segment_files(dir: &std::path::Path) -> HashSet<String> {
    std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

fn unlimited() -> CompactOptions {
    CompactOptions::default().with_max_bytes_per_second(None)
}

#[test]
fn a_mostly_dead_segment_is_rewritten_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let shards: Vec<_> = (0..10).map(|n| shard(n, 10_000)).collect();
    {
        let store = open(dir.path());
        for (id, bytes) in &shards {
            store.put("ann", id, bytes, None).unwrap();
        }
    }
    let first = segment_files(dir.path());
    assert_eq!(first.len(), 1);
    let store = open(dir.path());
    // Six of ten dead: past the default half.
    for (id, _) in &shards[..6] {
        store.drop_ref("ann", id).unwrap();
    }
    // Nothing to do at a higher threshold.
    let none = store.compact(&unlimited().with_dead_share(0.9)).unwrap();
    assert_eq!(none.segments_rewritten, 0, "{none:?}");

    let report = store.compact(&unlimited()).unwrap();
    assert_eq!(report.segments_rewritten, 1, "{report:?}");
    assert_eq!(report.records_moved, 4, "{report:?}");
    assert_eq!(report.segments_removed, 1, "{report:?}");
    assert!(segment_files(dir.path()).is_disjoint(&first));
    for (id, bytes) in &shards[6..] {
        assert_eq!(store.get(id).unwrap(), *bytes);
    }
    for (id, _) in &shards[..6] {
        assert!(matches!(store.get(id), Err(GetError::NotFound { .. })));
    }
    drop(store);
    let store = open(dir.path());
    for (id, bytes) in &shards[6..] {
        assert_eq!(store.get(id).unwrap(), *bytes);
    }
    let scrub = store.scrub(&ScrubOptions::default()).unwrap();
    assert!(
        scrub.corrupt.is_empty() && scrub.missing.is_empty(),
        "{scrub:?}"
    );
    assert_eq!(scrub.shards_checked, 4);
}

#[test]
fn a_segment_without_live_records_is_deleted_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let (id, bytes) = shard(1, 5000);
    {
        let store = open(dir.path());
        store.put("ann", &id, &bytes, None).unwrap();
        store.drop_ref("ann", &id).unwrap();
        // The open segment stays while the store writes to it.
        assert_eq!(segment_files(dir.path()).len(), 1);
    }
    drop(open(dir.path()));
    assert!(segment_files(dir.path()).is_empty());
}
