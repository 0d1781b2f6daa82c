//! The segment layout (issue 17), through the public `Store` API with
//! `StoreOptions::segments`: shards appended to segment files, found by
//! their recorded location, and damage in a segment (a flipped bit, a
//! truncation) found by reads and by scrub, quarantined and never served.
//!
//! Guards the same promises the one-file-per-shard tests guard
//! (`corruption.rs`, `recovery.rs`) for the new layout, and that a store
//! reads both layouts whichever one it writes.

mod common;

use std::fs;
use std::os::unix::fs::FileExt;

use cairn_core::Id;
use cairn_store::{GetError, ScrubOptions, Store, StoreOptions};

fn shard(seed: u64, len: usize) -> (Id, Vec<u8>) {
    let bytes = testdata::seeded_bytes(seed, len);
    (Id::of(&bytes), bytes)
}

fn open(dir: &std::path::Path, segments: bool) -> Store {
    Store::open(dir, StoreOptions::default().with_segments(segments)).unwrap()
}

/// No shard file is created: the bytes are in a segment, at the recorded
/// location, and survive a reopen.
#[test]
fn puts_go_to_segments_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let shards: Vec<_> = (0..20).map(|n| shard(n, 1000 + 997 * n as usize)).collect();
    {
        let store = open(dir.path(), true);
        for (id, bytes) in &shards {
            let outcome = store.put("ann", id, bytes, None).unwrap();
            assert!(outcome.stored && outcome.newly_referenced);
            let at = store.shard_location(id).unwrap().unwrap();
            let mut on_disk = vec![0; bytes.len()];
            fs::File::open(&at.path)
                .unwrap()
                .read_exact_at(&mut on_disk, at.offset)
                .unwrap();
            assert_eq!(on_disk, *bytes);
        }
        assert_eq!(common::damage::shard_files(dir.path()), 0);
        assert_eq!(store.shard_count().unwrap(), shards.len() as u64);
        // Listed and counted from the database, as the files are by
        // walking them.
        assert_eq!(
            cairn_store::count_shards(dir.path()).unwrap(),
            shards.len() as u64
        );
        let mut listed: Vec<Id> = store.iter().collect::<Result<_, _>>().unwrap();
        let mut expected: Vec<Id> = shards.iter().map(|(id, _)| *id).collect();
        listed.sort_by_key(|id| *id.as_bytes());
        expected.sort_by_key(|id| *id.as_bytes());
        assert_eq!(listed, expected);
        // A second put of the same bytes appends nothing.
        let again = store.put("bob", &shards[0].0, &shards[0].1, None).unwrap();
        assert!(!again.stored && again.newly_referenced);
    }
    let store = open(dir.path(), true);
    for (id, bytes) in &shards {
        assert!(store.contains(id));
        assert!(store.is_present(id).unwrap());
        assert_eq!(store.get(id).unwrap(), *bytes);
    }
    let report = store.scrub(&ScrubOptions::default()).unwrap();
    assert_eq!(report.shards_checked, shards.len() as u64);
    assert!(report.corrupt.is_empty() && report.missing.is_empty());
}

/// A store reads the old layout's files while writing segments, and the
/// other way round.
#[test]
fn both_layouts_are_read_whichever_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let (old, old_bytes) = shard(1, 5000);
    let (new, new_bytes) = shard(2, 5000);
    {
        let store = open(dir.path(), false);
        store.put("ann", &old, &old_bytes, None).unwrap();
        assert!(store.shard_location(&old).unwrap().is_none());
    }
    {
        let store = open(dir.path(), true);
        // Already here, as a file: not appended again.
        assert!(!store.put("bob", &old, &old_bytes, None).unwrap().stored);
        store.put("ann", &new, &new_bytes, None).unwrap();
        assert_eq!(store.get(&old).unwrap(), old_bytes);
        assert_eq!(store.get(&new).unwrap(), new_bytes);
    }
    let store = open(dir.path(), false);
    assert_eq!(store.get(&new).unwrap(), new_bytes);
    assert!(store.shard_location(&new).unwrap().is_some());
    let report = store.scrub(&ScrubOptions::default()).unwrap();
    assert_eq!(report.shards_checked, 2);
    assert!(report.missing.is_empty(), "{report:?}");
}

/// Dropping the last reference forgets the record: the shard reads as
/// absent, and nothing reports it missing.
#[test]
fn dropping_the_last_reference_removes_the_shard() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), true);
    let (id, bytes) = shard(3, 3000);
    store.put("ann", &id, &bytes, None).unwrap();
    store.put("bob", &id, &bytes, None).unwrap();
    store.drop_ref("ann", &id).unwrap();
    assert_eq!(store.get(&id).unwrap(), bytes);
    store.drop_ref("bob", &id).unwrap();
    assert!(matches!(store.get(&id), Err(GetError::NotFound { .. })));
    assert!(!store.contains(&id));
    assert!(store.shard_location(&id).unwrap().is_none());
    let (other, other_bytes) = shard(4, 10);
    store.put("ann", &other, &other_bytes, None).unwrap();
    assert!(store.delete(&other).unwrap());
    assert!(!store.contains(&other));
    let report = store.scrub(&ScrubOptions::default()).unwrap();
    assert!(report.missing.is_empty() && report.shards_checked == 0);
}

/// A flipped bit in a segment: the read reports `Corrupt` once, copies the
/// record to quarantine, and the shard is absent from then on; a put of
/// the same bytes repairs it.
#[test]
fn a_flipped_bit_is_found_by_a_read_and_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), true);
    let (id, bytes) = shard(5, 9000);
    let (neighbour, neighbour_bytes) = shard(6, 9000);
    store.put("ann", &id, &bytes, None).unwrap();
    store
        .put("ann", &neighbour, &neighbour_bytes, None)
        .unwrap();
    let at = store.shard_location(&id).unwrap().unwrap();
    flip(&at.path, at.offset + 4000);

    let err = store.get(&id).unwrap_err();
    let GetError::Corrupt {
        quarantined: Some(copy),
        ..
    } = err
    else {
        panic!("expected Corrupt with a quarantine copy, got {err:?}");
    };
    assert!(copy.starts_with(dir.path().join("quarantine")));
    assert!(matches!(store.get(&id), Err(GetError::NotFound { .. })));
    assert!(!store.contains(&id));
    assert!(!store.is_present(&id).unwrap());
    // The neighbour in the same segment is untouched.
    assert_eq!(store.get(&neighbour).unwrap(), neighbour_bytes);
    // Still referenced, and so reported missing until repaired.
    let report = store.scrub(&ScrubOptions::default()).unwrap();
    assert_eq!(report.missing, [id]);

    let repaired = store.put("bob", &id, &bytes, None).unwrap();
    assert!(repaired.stored);
    assert_eq!(store.get(&id).unwrap(), bytes);
}

/// A truncated segment and a flipped bit, found by scrub without a read
/// having seen them first.
#[test]
fn scrub_finds_truncation_and_flipped_bits_in_segments() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), true);
    let shards: Vec<_> = (0..4).map(|n| shard(10 + n, 20_000)).collect();
    for (id, bytes) in &shards {
        store.put("ann", id, bytes, None).unwrap();
    }
    let flipped = store.shard_location(&shards[1].0).unwrap().unwrap();
    flip(&flipped.path, flipped.offset + 7);
    let last = store.shard_location(&shards[3].0).unwrap().unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&last.path)
        .unwrap()
        .set_len(last.offset + 100)
        .unwrap();

    let report = store.scrub(&ScrubOptions::default()).unwrap();
    let mut corrupt: Vec<Id> = report.corrupt.iter().map(|d| d.id).collect();
    corrupt.sort();
    let mut expected = vec![shards[1].0, shards[3].0];
    expected.sort();
    assert_eq!(corrupt, expected);
    for (n, (id, bytes)) in shards.iter().enumerate() {
        if n == 1 || n == 3 {
            assert!(matches!(store.get(id), Err(GetError::NotFound { .. })));
        } else {
            assert_eq!(store.get(id).unwrap(), *bytes);
        }
    }
}

fn flip(path: &std::path::Path, offset: u64) {
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, offset).unwrap();
    byte[0] ^= 0x04;
    file.write_all_at(&byte, offset).unwrap();
}
