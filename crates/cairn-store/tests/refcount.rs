//! Per-user references, usage and quotas.
//!
//! Guards against deleting a shard another user still references, against
//! one user dropping another's reference, and against usage drifting from
//! the references it sums (double counting a re-put, or a refused put
//! leaving something behind).

mod common;

use cairn_store::{DropOutcome, PutError, ShardPlace};
use common::{LAYOUTS, Layout, open, open_in, segment_bytes, shard, stored_ids, tmp_entries};

#[test]
fn the_last_reference_deletes_the_shard() {
    for layout in LAYOUTS {
        the_last_reference_deletes_the_shard_in(layout);
    }
}

fn the_last_reference_deletes_the_shard_in(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(dir.path(), layout);
    let (id, bytes) = shard(1, 1000);
    let first = store.put("ann", &id, &bytes, None).unwrap();
    let second = store.put("bob", &id, &bytes, None).unwrap();
    assert!(first.stored && first.newly_referenced);
    assert!(!second.stored && second.newly_referenced);
    assert_eq!(
        store.usage_by_user().unwrap(),
        [("ann".to_owned(), 1000), ("bob".to_owned(), 1000)]
    );

    assert_eq!(store.drop_ref("ann", &id).unwrap(), DropOutcome::Released);
    assert!(store.contains(&id));
    assert_eq!(store.get(&id).unwrap(), bytes);
    assert_eq!(store.usage("ann").unwrap(), 0);
    assert_eq!(store.usage("bob").unwrap(), 1000);

    let at = common::place(&store, &id);
    assert_eq!(store.drop_ref("bob", &id).unwrap(), DropOutcome::Deleted);
    assert!(!store.contains(&id));
    // No file, and no live record: the record's bytes are dead, for a
    // compaction to reclaim.
    assert_eq!(store.shard_place(&id).unwrap(), None, "{layout:?}");
    if let ShardPlace::File(path) = &at {
        assert!(!path.exists());
    }
    assert_eq!(store.usage("bob").unwrap(), 0);
    assert!(store.usage_by_user().unwrap().is_empty());
}

#[test]
fn a_user_cannot_drop_someone_elses_reference() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (id, bytes) = shard(2, 500);
    store.put("ann", &id, &bytes, None).unwrap();
    assert_eq!(
        store.drop_ref("eve", &id).unwrap(),
        DropOutcome::NotReferenced
    );
    assert!(store.has_ref("ann", &id).unwrap());
    assert_eq!(store.usage("ann").unwrap(), 500);
    assert!(store.contains(&id));
    // Dropping twice is harmless too.
    assert_eq!(store.drop_ref("ann", &id).unwrap(), DropOutcome::Deleted);
    assert_eq!(
        store.drop_ref("ann", &id).unwrap(),
        DropOutcome::NotReferenced
    );
}

#[test]
fn a_put_beyond_the_quota_leaves_nothing() {
    for layout in LAYOUTS {
        a_put_beyond_the_quota_leaves_nothing_in(layout);
    }
}

fn a_put_beyond_the_quota_leaves_nothing_in(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(dir.path(), layout);
    let (small, small_bytes) = shard(3, 600);
    let (big, big_bytes) = shard(4, 500);
    store.put("ann", &small, &small_bytes, Some(1000)).unwrap();
    let segments_before = segment_bytes(dir.path());

    let err = store.put("ann", &big, &big_bytes, Some(1000)).unwrap_err();
    let PutError::QuotaExceeded {
        user,
        usage,
        quota,
        needed,
    } = &err
    else {
        panic!("expected QuotaExceeded, got {err:?}");
    };
    assert_eq!(
        (user.as_str(), *usage, *quota, *needed),
        ("ann", 600, 1000, 500)
    );
    assert!(err.to_string().contains("ann"), "{err}");
    assert!(!store.contains(&big));
    assert!(!store.has_ref("ann", &big).unwrap());
    assert_eq!(store.usage("ann").unwrap(), 600);
    assert!(tmp_entries(dir.path()).is_empty());
    assert_eq!(stored_ids(dir.path()), [small]);
    // Not even dead bytes: the put was refused before it appended.
    assert_eq!(segment_bytes(dir.path()), segments_before, "{layout:?}");
    // Exactly at the quota fits.
    store.put("ann", &big, &big_bytes, Some(1100)).unwrap();
    assert_eq!(store.usage("ann").unwrap(), 1100);
}

/// An over-quota put used to write (and fsync) the whole shard to `tmp/`
/// before the commit refused it: up to 64 MiB of I/O per refused request.
///
/// `tmp/` is replaced by a plain file, so that any attempt to stage fails
/// (`ENOTDIR`; file modes would not stop root, as the tests run). A put
/// that tries to stage reports `Io`; one refused before staging reports
/// `QuotaExceeded`. A test of the first layout, which stages in `tmp/`;
/// in the segment layout, see the test above: a refused put appends
/// nothing.
#[test]
fn an_over_quota_put_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(dir.path(), Layout::Files);
    let (held, held_bytes) = shard(9, 600);
    store.put("ann", &held, &held_bytes, Some(1000)).unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::remove_dir(&tmp).unwrap();
    std::fs::write(&tmp, b"not a directory").unwrap();

    let (big, big_bytes) = shard(10, 500);
    let err = store.put("ann", &big, &big_bytes, Some(1000)).unwrap_err();
    assert!(
        matches!(err, PutError::QuotaExceeded { usage: 600, .. }),
        "{err:?}"
    );
    // The trick does catch a put that stages: within the quota, it fails.
    let err = store.put("ann", &big, &big_bytes, Some(1100)).unwrap_err();
    assert!(matches!(err, PutError::Io { .. }), "{err:?}");
    // A shard the user holds costs nothing, however full the quota, and
    // needs no staging: its file is there.
    store.put("ann", &held, &held_bytes, Some(600)).unwrap();
    assert_eq!(store.usage("ann").unwrap(), 600);
    assert!(!store.has_ref("ann", &big).unwrap());
}

#[test]
fn a_refused_reference_to_a_shared_shard_keeps_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (id, bytes) = shard(5, 800);
    store.put("ann", &id, &bytes, None).unwrap();
    let err = store.put("bob", &id, &bytes, Some(100)).unwrap_err();
    assert!(
        matches!(err, PutError::QuotaExceeded { usage: 0, .. }),
        "{err:?}"
    );
    assert_eq!(store.get(&id).unwrap(), bytes);
    assert!(store.has_ref("ann", &id).unwrap());
    assert!(!store.has_ref("bob", &id).unwrap());
    assert_eq!(store.drop_ref("ann", &id).unwrap(), DropOutcome::Deleted);
}

#[test]
fn re_putting_a_held_shard_does_not_count_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (id, bytes) = shard(6, 700);
    store.put("ann", &id, &bytes, Some(700)).unwrap();
    // The quota is full, but this shard is already paid for.
    let again = store.put("ann", &id, &bytes, Some(700)).unwrap();
    assert!(!again.stored && !again.newly_referenced && !again.repaired);
    assert_eq!(store.usage("ann").unwrap(), 700);
    assert_eq!(store.drop_ref("ann", &id).unwrap(), DropOutcome::Deleted);
    assert_eq!(store.usage("ann").unwrap(), 0);
}

#[test]
fn delete_removes_the_file_and_every_reference() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (id, bytes) = shard(7, 300);
    let (other, other_bytes) = shard(8, 50);
    for user in ["ann", "bob", "cy"] {
        store.put(user, &id, &bytes, None).unwrap();
    }
    store.put("bob", &other, &other_bytes, None).unwrap();

    assert!(store.delete(&id).unwrap());
    assert!(!store.contains(&id));
    for user in ["ann", "bob", "cy"] {
        assert!(!store.has_ref(user, &id).unwrap());
    }
    assert_eq!(store.usage_by_user().unwrap(), [("bob".to_owned(), 50)]);
    assert_eq!(store.get(&other).unwrap(), other_bytes);
    assert!(!store.delete(&id).unwrap());
}
