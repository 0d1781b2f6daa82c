//! Migration from one file per shard to segments (`Store::migrate`):
//! every referenced shard moves, keeps its bytes, references and usage,
//! and its file goes; unreferenced and damaged files stay for the scrub.
//!
//! The stores migrated from write shard files (`with_segments(false)`),
//! as every store did before segments became the default.

mod common;

use std::fs;

use cairn_core::Id;
use cairn_store::{GetError, ScrubOptions, Store, StoreOptions, count_shards};

fn shard(seed: u64, len: usize) -> (Id, Vec<u8>) {
    let bytes = testdata::seeded_bytes(seed, len);
    (Id::of(&bytes), bytes)
}

/// A store writing shard files, the first layout.
fn open_files(dir: &std::path::Path) -> Store {
    Store::open(dir, StoreOptions::default().with_segments(false)).unwrap()
}

fn shard_path(dir: &std::path::Path, id: &Id) -> std::path::PathBuf {
    let hex = id.to_string();
    dir.join("shards")
        .join(&hex[..2])
        .join(&hex[2..4])
        .join(hex)
}

#[test]
fn shard_files_move_into_segments_and_keep_everything() {
    let dir = tempfile::tempdir().unwrap();
    let shards: Vec<_> = (0..30).map(|n| shard(n, 500 + 311 * n as usize)).collect();
    let usage;
    {
        let store = open_files(dir.path());
        for (n, (id, bytes)) in shards.iter().enumerate() {
            store.put("ann", id, bytes, None).unwrap();
            if n % 3 == 0 {
                store.put("bob", id, bytes, None).unwrap();
            }
        }
        usage = (store.usage("ann").unwrap(), store.usage("bob").unwrap());
        assert_eq!(common::damage::shard_files(dir.path()), 30);
        assert_eq!(count_shards(dir.path()).unwrap(), 30);
    }
    // A damaged file is left for the scrub to report; not moved, not lost.
    let (damaged, damaged_bytes) = &shards[7];
    let mut raw = fs::read(shard_path(dir.path(), damaged)).unwrap();
    raw[10] ^= 1;
    fs::write(shard_path(dir.path(), damaged), &raw).unwrap();

    let store = open_files(dir.path());
    let report = store.migrate().unwrap();
    assert_eq!(report.migrated, 29, "{report:?}");
    assert_eq!(report.damaged, 1, "{report:?}");
    assert_eq!(common::damage::shard_files(dir.path()), 1);
    assert_eq!(count_shards(dir.path()).unwrap(), 30);
    for (id, bytes) in &shards {
        if id == damaged {
            continue;
        }
        assert!(store.shard_location(id).unwrap().is_some());
        assert_eq!(store.get(id).unwrap(), *bytes);
    }
    assert_eq!(
        (store.usage("ann").unwrap(), store.usage("bob").unwrap()),
        usage
    );
    assert!(matches!(store.get(damaged), Err(GetError::Corrupt { .. })));
    // A repair's put goes to the layout the store writes (files, here).
    store.put("ann", damaged, damaged_bytes, None).unwrap();
    assert_eq!(store.get(damaged).unwrap(), *damaged_bytes);

    // Again: the repaired file moves, the rest is done.
    let again = store.migrate().unwrap();
    assert_eq!(again.migrated, 1, "{again:?}");
    assert_eq!(common::damage::shard_files(dir.path()), 0);
    assert_eq!(count_shards(dir.path()).unwrap(), 30);
    let scrub = store.scrub(&ScrubOptions::default()).unwrap();
    assert!(
        scrub.corrupt.is_empty() && scrub.missing.is_empty(),
        "{scrub:?}"
    );
    assert_eq!(scrub.shards_checked, 30);
}

/// An interrupted migration that committed a location but died before
/// removing the file: the next one removes the file, and nothing is lost.
#[test]
fn a_file_left_after_its_location_was_committed_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (id, bytes) = shard(1, 4000);
    {
        let store = open_files(dir.path());
        store.put("ann", &id, &bytes, None).unwrap();
        store.migrate().unwrap();
    }
    // Put the file back, as if the unlink never happened.
    let path = shard_path(dir.path(), &id);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, &bytes).unwrap();
    let store = open_files(dir.path());
    // Listed once (reads use the record), though counted twice.
    let listed: Vec<Id> = store.iter().collect::<Result<_, _>>().unwrap();
    assert_eq!(listed, [id]);
    assert_eq!(count_shards(dir.path()).unwrap(), 2);
    let report = store.migrate().unwrap();
    assert_eq!(report.already_migrated, 1, "{report:?}");
    assert!(!path.exists());
    assert_eq!(store.get(&id).unwrap(), bytes);
}
