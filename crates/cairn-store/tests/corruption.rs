//! Damaged shard files: a flipped bit, a truncation or a file that cannot
//! be read must be reported as `Corrupt`, never served, and the file moved
//! to quarantine.
//!
//! Guards against serving bit rot to clients and against deleting the
//! evidence an operator needs to diagnose a failing disk.

mod common;

use std::fs;
use std::io::ErrorKind;

use cairn_core::Id;
use cairn_store::{Damage, GetError, ScrubOptions};
use common::{files_under, open, quarantined, shard, shard_path};

/// Flips one bit in the middle of a file.
fn flip_a_bit(path: &std::path::Path) -> Vec<u8> {
    let mut bytes = fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    fs::write(path, &bytes).unwrap();
    bytes
}

/// Cuts the last byte off a file.
fn truncate(path: &std::path::Path) -> Vec<u8> {
    let mut bytes = fs::read(path).unwrap();
    bytes.pop();
    fs::write(path, &bytes).unwrap();
    bytes
}

#[test]
fn flipped_bit_is_reported_and_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (id, bytes) = shard(1, 8192);
    store.put("ann", &id, &bytes, None).unwrap();
    let path = shard_path(dir.path(), &id);
    let damaged = flip_a_bit(&path);

    let err = store.get(&id).unwrap_err();
    let GetError::Corrupt {
        id: reported,
        damage,
        quarantined: Some(moved_to),
    } = err
    else {
        panic!("expected Corrupt with a quarantine path, got {err:?}");
    };
    assert_eq!(reported, id);
    assert_eq!(
        damage,
        Damage::Mismatch {
            actual: Id::of(&damaged)
        }
    );
    // The damaged bytes are kept for inspection, out of the shard tree.
    assert_eq!(
        moved_to,
        dir.path().join("quarantine").join(format!("{id}.0"))
    );
    assert_eq!(fs::read(&moved_to).unwrap(), damaged);
    assert!(!path.exists());
    assert!(matches!(store.get(&id), Err(GetError::NotFound { .. })));
    // The reference survives: the shard is missing, not forgotten.
    assert!(store.has_ref("ann", &id).unwrap());
}

#[test]
fn truncated_file_is_reported_and_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (id, bytes) = shard(2, 5000);
    store.put("ann", &id, &bytes, None).unwrap();
    let damaged = truncate(&shard_path(dir.path(), &id));

    let err = store.get(&id).unwrap_err();
    assert!(
        matches!(
            &err,
            GetError::Corrupt { id: r, damage: Damage::Mismatch { actual }, .. }
                if *r == id && *actual == Id::of(&damaged)
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains(&id.to_string()), "{err}");
    assert_eq!(quarantined(dir.path()).len(), 1);
    assert!(matches!(store.get(&id), Err(GetError::NotFound { .. })));
}

#[test]
fn a_quarantined_shard_can_be_put_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (id, bytes) = shard(3, 3000);
    store.put("ann", &id, &bytes, None).unwrap();
    // Damaged twice: both copies are kept, under distinct names.
    for _ in 0..2 {
        flip_a_bit(&shard_path(dir.path(), &id));
        assert!(matches!(store.get(&id), Err(GetError::Corrupt { .. })));
        let outcome = store.put("ann", &id, &bytes, None).unwrap();
        // The get had already set the damaged file aside.
        assert!(outcome.stored && !outcome.newly_referenced && !outcome.repaired);
        assert_eq!(store.get(&id).unwrap(), bytes);
    }
    let names: Vec<_> = quarantined(dir.path())
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, [format!("{id}.0"), format!("{id}.1")]);
    assert_eq!(store.usage("ann").unwrap(), 3000);
}

#[test]
fn scrub_finds_and_quarantines_damaged_shards() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let shards: Vec<_> = (10..14).map(|seed| shard(seed, 4000)).collect();
    for (id, bytes) in &shards {
        store.put("ann", id, bytes, None).unwrap();
    }
    flip_a_bit(&shard_path(dir.path(), &shards[0].0));
    truncate(&shard_path(dir.path(), &shards[1].0));

    let report = store.scrub(&ScrubOptions::default()).unwrap();
    let mut corrupt: Vec<_> = report.corrupt.iter().map(|d| d.id).collect();
    corrupt.sort();
    let mut expected = vec![shards[0].0, shards[1].0];
    expected.sort();
    assert_eq!(corrupt, expected);
    assert_eq!(report.shards_checked, 4);
    assert_eq!(report.bytes_checked, 4 * 4000 - 1);
    // Quarantined shards are still referenced, so now they are missing.
    assert_eq!(report.missing, expected);
    assert_eq!(report.unreferenced_removed, 0);
    assert_eq!(quarantined(dir.path()).len(), 2);
    // The intact ones are untouched and the next scrub is clean of damage.
    assert_eq!(files_under(&dir.path().join("shards")).len(), 2);
    for (id, bytes) in &shards[2..] {
        assert_eq!(&store.get(id).unwrap(), bytes);
    }
    let again = store.scrub(&ScrubOptions::default()).unwrap();
    assert!(again.corrupt.is_empty());
    assert_eq!(again.shards_checked, 2);
}

/// A shard file that cannot be read is damage, not an I/O failure of the
/// store: reported as `Corrupt` and quarantined like one that fails its
/// hash. (Before, the read error came back as `GetError::Io` and the file
/// stayed, failing every read.)
///
/// The tests run as root, for whom `chmod 000` does not stop a read; a
/// directory under the shard's name does: opening it succeeds and reading
/// it fails with `EISDIR`, a real error from the kernel, as `EIO` from a bad
/// sector would be. (A scrub never reads such a directory, since its walk
/// skips everything but files; the scrub's side is a unit test in `lib.rs`
/// that injects `EIO`.)
#[test]
fn an_unreadable_file_is_reported_as_corrupt_and_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (id, bytes) = shard(4, 2000);
    store.put("ann", &id, &bytes, None).unwrap();
    let path = shard_path(dir.path(), &id);
    fs::remove_file(&path).unwrap();
    fs::create_dir(&path).unwrap();

    let err = store.get(&id).unwrap_err();
    let GetError::Corrupt {
        id: reported,
        damage: Damage::Unreadable { kind, reason },
        quarantined: Some(moved_to),
    } = &err
    else {
        panic!("expected Corrupt(Unreadable) with a quarantine path, got {err:?}");
    };
    assert_eq!(*reported, id);
    assert_eq!(*kind, ErrorKind::IsADirectory);
    assert!(err.to_string().contains(reason.as_str()), "{err}");
    assert_eq!(
        *moved_to,
        dir.path().join("quarantine").join(format!("{id}.0"))
    );
    assert!(moved_to.is_dir());
    assert!(!path.exists());
    assert!(matches!(store.get(&id), Err(GetError::NotFound { .. })));
    assert!(store.has_ref("ann", &id).unwrap());
}

/// A client repairing a node re-puts the shard. The put used to see a file
/// under the id and acknowledge without looking at it, so a damaged file
/// stayed damaged until a get or scrub happened to find it.
#[test]
fn a_put_over_a_damaged_file_repairs_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (id, bytes) = shard(5, 6000);
    store.put("ann", &id, &bytes, None).unwrap();
    let path = shard_path(dir.path(), &id);
    let mut damaged = Vec::new();

    // The holder's own re-put, then another user's first put.
    for (user, new_user) in [("ann", false), ("bob", true)] {
        damaged.push(flip_a_bit(&path));
        let outcome = store.put(user, &id, &bytes, None).unwrap();
        assert!(outcome.stored && outcome.repaired, "{user}: {outcome:?}");
        assert_eq!(outcome.newly_referenced, new_user, "{user}");
        assert_eq!(fs::read(&path).unwrap(), bytes);
        assert_eq!(store.get(&id).unwrap(), bytes);
    }
    let kept: Vec<_> = quarantined(dir.path())
        .iter()
        .map(|p| fs::read(p).unwrap())
        .collect();
    assert_eq!(kept, damaged);
    assert_eq!(
        quarantined(dir.path())[0],
        dir.path().join("quarantine").join(format!("{id}.0"))
    );
    assert_eq!(store.usage("ann").unwrap(), 6000);
    assert_eq!(store.usage("bob").unwrap(), 6000);

    // An intact file is left as it is.
    let outcome = store.put("ann", &id, &bytes, None).unwrap();
    assert!(!outcome.stored && !outcome.repaired && !outcome.newly_referenced);
    assert_eq!(quarantined(dir.path()).len(), 2);
}

#[test]
fn a_put_over_an_unreadable_file_repairs_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (id, bytes) = shard(6, 700);
    store.put("ann", &id, &bytes, None).unwrap();
    // Unreadable, even for root (see the test above).
    let path = shard_path(dir.path(), &id);
    fs::remove_file(&path).unwrap();
    fs::create_dir(&path).unwrap();

    let outcome = store.put("ann", &id, &bytes, None).unwrap();
    assert!(outcome.stored && outcome.repaired, "{outcome:?}");
    assert_eq!(store.get(&id).unwrap(), bytes);
    assert!(
        dir.path()
            .join("quarantine")
            .join(format!("{id}.0"))
            .is_dir()
    );
}

/// A shard lost from disk (deleted, or quarantined as damaged) keeps its
/// references: the scrub lists it as missing every time until it is put
/// back, the node says it does not have it, and the put that repairs it
/// costs its owner nothing more. Dropping the references instead would
/// forget who needs the shard and let the repair fail for quota.
#[test]
fn a_lost_shard_keeps_its_references_is_reported_missing_and_a_put_restores_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let shards: Vec<_> = (20..24).map(|seed| shard(seed, 3000)).collect();
    for (id, bytes) in &shards {
        store.put("ann", id, bytes, Some(12_000)).unwrap();
        assert!(store.is_present(id).unwrap());
    }
    fs::remove_file(shard_path(dir.path(), &shards[0].0)).unwrap();
    flip_a_bit(&shard_path(dir.path(), &shards[1].0));
    truncate(&shard_path(dir.path(), &shards[2].0));

    // Asking which shards are here catches the deletion and, from the
    // length alone, the truncation (quarantining it); the flipped bit
    // needs a read.
    assert!(!store.is_present(&shards[0].0).unwrap());
    let err = store.is_present(&shards[2].0).unwrap_err();
    assert!(
        matches!(
            err,
            GetError::Corrupt {
                damage: Damage::Mismatch { .. },
                quarantined: Some(_),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!store.is_present(&shards[2].0).unwrap());
    assert!(store.is_present(&shards[1].0).unwrap());
    assert!(store.is_present(&shards[3].0).unwrap());

    let mut lost = vec![shards[0].0, shards[1].0, shards[2].0];
    lost.sort();
    for _ in 0..2 {
        let report = store.scrub(&ScrubOptions::default()).unwrap();
        assert_eq!(report.missing, lost);
        assert_eq!(store.last_scrub().unwrap().unwrap().missing, 3);
    }
    for (id, _) in &shards {
        assert!(store.has_ref("ann", id).unwrap());
    }
    // The quota is full; the repair fits all the same.
    assert_eq!(store.usage("ann").unwrap(), 12_000);
    for (id, bytes) in &shards[..3] {
        let outcome = store.put("ann", id, bytes, Some(12_000)).unwrap();
        assert!(outcome.stored && !outcome.newly_referenced, "{outcome:?}");
        assert_eq!(&store.get(id).unwrap(), bytes);
    }
    assert_eq!(store.usage("ann").unwrap(), 12_000);
    let report = store.scrub(&ScrubOptions::default()).unwrap();
    assert!(report.missing.is_empty() && report.corrupt.is_empty());
}
