//! Damaged shards: a flipped bit, a truncation, lost bytes or a file that
//! cannot be read must be reported as `Corrupt` (or, for a deleted file,
//! as absent), never served, and the damaged bytes moved to quarantine.
//! Each test runs in both layouts: records in segment files (the default)
//! and shard files (the first layout, which every store still reads).
//!
//! Guards against serving bit rot to clients and against deleting the
//! evidence an operator needs to diagnose a failing disk.

mod common;

use std::fs;
use std::io::ErrorKind;
use std::path::PathBuf;

use cairn_core::Id;
use cairn_store::{Damage, GetError, ScrubOptions, ShardPlace};
use common::damage::{flip_middle_bit, remove, truncate};
use common::{LAYOUTS, Layout, open_in, place, quarantined, shard, shard_path, stored_ids};

/// Where the `n`th quarantined copy of shard `id` goes: a shard file is
/// moved there, a segment record copied (header, shard and padding).
fn quarantine_path(dir: &std::path::Path, layout: Layout, id: &Id, n: u32) -> PathBuf {
    let name = match layout {
        Layout::Files => format!("{id}.{n}"),
        Layout::Segments => format!("{id}.seg.{n}"),
    };
    dir.join("quarantine").join(name)
}

/// The shard's bytes in a quarantined copy of what was at `place`: the
/// whole file, or the shard's part of a record.
fn shard_in_copy(copy: &[u8], place: &ShardPlace) -> Vec<u8> {
    match place {
        ShardPlace::Segment(at) => {
            let start = usize::try_from(at.offset - at.record_offset).unwrap();
            copy[start..start + usize::try_from(at.len).unwrap()].to_vec()
        }
        _ => copy.to_vec(),
    }
}

#[test]
fn flipped_bit_is_reported_and_quarantined() {
    for layout in LAYOUTS {
        let dir = tempfile::tempdir().unwrap();
        let store = open_in(dir.path(), layout);
        let (id, bytes) = shard(1, 8192);
        store.put("ann", &id, &bytes, None).unwrap();
        let at = place(&store, &id);
        let damaged = flip_middle_bit(&at);
        assert_ne!(damaged, bytes);

        let err = store.get(&id).unwrap_err();
        let GetError::Corrupt {
            id: reported,
            damage,
            quarantined: Some(moved_to),
        } = err
        else {
            panic!("{layout:?}: expected Corrupt with a quarantine path, got {err:?}");
        };
        assert_eq!(reported, id);
        assert_eq!(
            damage,
            Damage::Mismatch {
                actual: Id::of(&damaged)
            },
            "{layout:?}"
        );
        // The damaged bytes are kept for inspection, out of the shard tree.
        assert_eq!(moved_to, quarantine_path(dir.path(), layout, &id, 0));
        assert_eq!(shard_in_copy(&fs::read(&moved_to).unwrap(), &at), damaged);
        // Never served again: no file, no live record.
        assert_eq!(store.shard_place(&id).unwrap(), None, "{layout:?}");
        if let ShardPlace::File(path) = &at {
            assert!(!path.exists());
        }
        assert!(matches!(store.get(&id), Err(GetError::NotFound { .. })));
        // The reference survives: the shard is missing, not forgotten.
        assert!(store.has_ref("ann", &id).unwrap());
    }
}

/// A shard file cut short hashes to another id; a segment cut inside the
/// record (a torn tail) can no longer be read in full.
#[test]
fn truncated_shard_is_reported_and_quarantined() {
    for layout in LAYOUTS {
        let dir = tempfile::tempdir().unwrap();
        let store = open_in(dir.path(), layout);
        let (id, bytes) = shard(2, 5000);
        store.put("ann", &id, &bytes, None).unwrap();
        let damaged = truncate(&place(&store, &id), bytes.len() as u64 - 1);
        assert_eq!(damaged, bytes[..bytes.len() - 1]);

        let err = store.get(&id).unwrap_err();
        let expected = |damage: &Damage| match layout {
            Layout::Files => {
                *damage
                    == Damage::Mismatch {
                        actual: Id::of(&damaged),
                    }
            }
            Layout::Segments => matches!(
                damage,
                Damage::Unreadable {
                    kind: ErrorKind::UnexpectedEof,
                    ..
                }
            ),
        };
        assert!(
            matches!(
                &err,
                GetError::Corrupt { id: r, damage, .. } if *r == id && expected(damage)
            ),
            "{layout:?}: {err:?}"
        );
        assert!(err.to_string().contains(&id.to_string()), "{err}");
        assert_eq!(quarantined(dir.path()).len(), 1);
        assert!(matches!(store.get(&id), Err(GetError::NotFound { .. })));
    }
}

#[test]
fn a_quarantined_shard_can_be_put_again() {
    for layout in LAYOUTS {
        let dir = tempfile::tempdir().unwrap();
        let store = open_in(dir.path(), layout);
        let (id, bytes) = shard(3, 3000);
        store.put("ann", &id, &bytes, None).unwrap();
        // Damaged twice: both copies are kept, under distinct names.
        for _ in 0..2 {
            flip_middle_bit(&place(&store, &id));
            assert!(matches!(store.get(&id), Err(GetError::Corrupt { .. })));
            let outcome = store.put("ann", &id, &bytes, None).unwrap();
            // The get had already set the damaged bytes aside.
            assert!(outcome.stored && !outcome.newly_referenced && !outcome.repaired);
            assert_eq!(store.get(&id).unwrap(), bytes);
        }
        assert_eq!(
            quarantined(dir.path()),
            [0, 1].map(|n| quarantine_path(dir.path(), layout, &id, n))
        );
        assert_eq!(store.usage("ann").unwrap(), 3000);
    }
}

#[test]
fn scrub_finds_and_quarantines_damaged_shards() {
    for layout in LAYOUTS {
        let dir = tempfile::tempdir().unwrap();
        let store = open_in(dir.path(), layout);
        let shards: Vec<_> = (10..14).map(|seed| shard(seed, 4000)).collect();
        for (id, bytes) in &shards {
            store.put("ann", id, bytes, None).unwrap();
        }
        // The last one put is cut short: in a segment, a torn tail cuts
        // every record after it, and none is.
        flip_middle_bit(&place(&store, &shards[0].0));
        truncate(&place(&store, &shards[3].0), 3999);

        let report = store.scrub(&ScrubOptions::default()).unwrap();
        let mut corrupt: Vec<_> = report.corrupt.iter().map(|d| d.id).collect();
        corrupt.sort();
        let mut expected = vec![shards[0].0, shards[3].0];
        expected.sort();
        assert_eq!(corrupt, expected, "{layout:?}");
        assert_eq!(report.shards_checked, 4);
        // A record's length is in its header; a file's is what is left.
        let checked = match layout {
            Layout::Segments => 4 * 4000,
            Layout::Files => 4 * 4000 - 1,
        };
        assert_eq!(report.bytes_checked, checked, "{layout:?}");
        // Quarantined shards are still referenced, so now they are missing.
        assert_eq!(report.missing, expected);
        assert_eq!(report.unreferenced_removed, 0);
        assert_eq!(quarantined(dir.path()).len(), 2);
        // The intact ones are untouched and the next scrub is clean of
        // damage.
        assert_eq!(stored_ids(dir.path()).len(), 2, "{layout:?}");
        for (id, bytes) in &shards[1..3] {
            assert_eq!(&store.get(id).unwrap(), bytes);
        }
        let again = store.scrub(&ScrubOptions::default()).unwrap();
        assert!(again.corrupt.is_empty());
        assert_eq!(again.shards_checked, 2);
    }
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
///
/// A test of the first layout: a segment cannot be swapped for a directory
/// without taking every record in it along.
#[test]
fn an_unreadable_file_is_reported_as_corrupt_and_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(dir.path(), Layout::Files);
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
fn a_put_over_a_damaged_shard_repairs_it() {
    for layout in LAYOUTS {
        let dir = tempfile::tempdir().unwrap();
        let store = open_in(dir.path(), layout);
        let (id, bytes) = shard(5, 6000);
        store.put("ann", &id, &bytes, None).unwrap();
        let mut damaged = Vec::new();

        // The holder's own re-put, then another user's first put.
        for (user, new_user) in [("ann", false), ("bob", true)] {
            let at = place(&store, &id);
            damaged.push((flip_middle_bit(&at), at));
            let outcome = store.put(user, &id, &bytes, None).unwrap();
            assert!(outcome.stored && outcome.repaired, "{user}: {outcome:?}");
            assert_eq!(outcome.newly_referenced, new_user, "{user}");
            assert_eq!(common::damage::read(&place(&store, &id)), bytes);
            assert_eq!(store.get(&id).unwrap(), bytes);
        }
        let kept = quarantined(dir.path());
        assert_eq!(kept.len(), 2);
        for (copy, (bytes, at)) in kept.iter().zip(&damaged) {
            assert_eq!(&shard_in_copy(&fs::read(copy).unwrap(), at), bytes);
        }
        assert_eq!(kept[0], quarantine_path(dir.path(), layout, &id, 0));
        assert_eq!(store.usage("ann").unwrap(), 6000);
        assert_eq!(store.usage("bob").unwrap(), 6000);

        // Intact bytes are left as they are.
        let outcome = store.put("ann", &id, &bytes, None).unwrap();
        assert!(!outcome.stored && !outcome.repaired && !outcome.newly_referenced);
        assert_eq!(quarantined(dir.path()).len(), 2);
    }
}

/// A test of the first layout, as the one above.
#[test]
fn a_put_over_an_unreadable_file_repairs_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(dir.path(), Layout::Files);
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
    for layout in LAYOUTS {
        let dir = tempfile::tempdir().unwrap();
        let store = open_in(dir.path(), layout);
        let shards: Vec<_> = (20..24).map(|seed| shard(seed, 3000)).collect();
        for (id, bytes) in &shards {
            store.put("ann", id, bytes, Some(12_000)).unwrap();
            assert!(store.is_present(id).unwrap());
        }
        // Removed, flipped, and (the last one put, so that a torn segment
        // takes no other record with it) cut short.
        let (removed, flipped, intact, cut) = (shards[0].0, shards[1].0, shards[2].0, shards[3].0);
        remove(&place(&store, &removed));
        flip_middle_bit(&place(&store, &flipped));
        truncate(&place(&store, &cut), 2999);

        // Asking which shards are here catches the loss and, from the
        // length alone, the truncation (quarantining what is damaged); the
        // flipped bit needs a read. A deleted file is simply not there; a
        // zeroed record has lost its header, which is damage.
        let is_corrupt = |id: &Id, kind: fn(&Damage) -> bool| {
            let err = store.is_present(id).unwrap_err();
            assert!(
                matches!(
                    &err,
                    GetError::Corrupt { damage, quarantined: Some(_), .. } if kind(damage)
                ),
                "{layout:?}: {err:?}"
            );
        };
        match layout {
            Layout::Files => {
                is_corrupt(&cut, |d| matches!(d, Damage::Mismatch { .. }));
            }
            Layout::Segments => {
                is_corrupt(&removed, |d| matches!(d, Damage::Mismatch { .. }));
                is_corrupt(&cut, |d| {
                    matches!(
                        d,
                        Damage::Unreadable {
                            kind: ErrorKind::UnexpectedEof,
                            ..
                        }
                    )
                });
            }
        }
        assert!(!store.is_present(&removed).unwrap());
        assert!(!store.is_present(&cut).unwrap());
        assert!(store.is_present(&flipped).unwrap());
        assert!(store.is_present(&intact).unwrap());

        let mut lost = vec![removed, flipped, cut];
        lost.sort();
        for _ in 0..2 {
            let report = store.scrub(&ScrubOptions::default()).unwrap();
            assert_eq!(report.missing, lost, "{layout:?}");
            assert_eq!(store.last_scrub().unwrap().unwrap().missing, 3);
        }
        for (id, _) in &shards {
            assert!(store.has_ref("ann", id).unwrap());
        }
        // The quota is full; the repair fits all the same.
        assert_eq!(store.usage("ann").unwrap(), 12_000);
        for (id, bytes) in shards.iter().filter(|(id, _)| lost.contains(id)) {
            let outcome = store.put("ann", id, bytes, Some(12_000)).unwrap();
            assert!(outcome.stored && !outcome.newly_referenced, "{outcome:?}");
            assert_eq!(&store.get(id).unwrap(), bytes);
        }
        assert_eq!(store.usage("ann").unwrap(), 12_000);
        let report = store.scrub(&ScrubOptions::default()).unwrap();
        assert!(report.missing.is_empty() && report.corrupt.is_empty());
    }
}
