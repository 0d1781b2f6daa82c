//! Puts and gets: the round trip, refusals that must leave nothing on disk,
//! path safety, and concurrent writers of one shard.
//!
//! Guards: a shard whose bytes do not match its id being stored; a failed
//! put leaving a temporary file or a half-written shard; two writers of the
//! same id clobbering each other's references.

mod common;

use std::sync::Barrier;
use std::thread;

use cairn_core::Id;
use cairn_store::{DropOutcome, GetError, MAX_SHARD_LEN, PutError, PutOutcome, ShardPlace};
use common::{
    LAYOUTS, Layout, damage, files_under, open, open_in, place, shard, shard_path, tmp_entries,
};

#[test]
fn put_then_get_round_trips() {
    for layout in LAYOUTS {
        let dir = tempfile::tempdir().unwrap();
        let store = open_in(dir.path(), layout);
        for (seed, len) in [(1, 0), (2, 1), (3, 4096), (4, 300_000)] {
            let (id, bytes) = shard(seed, len);
            let outcome = store.put("ann", &id, &bytes, None).unwrap();
            assert!(outcome.stored && outcome.newly_referenced);
            assert_eq!(store.get(&id).unwrap(), bytes);
            assert!(store.contains(&id));
            assert!(store.has_ref("ann", &id).unwrap());
            // On disk where the store says, in the layout asked for.
            let at = place(&store, &id);
            match (&at, layout) {
                (ShardPlace::Segment(_), Layout::Segments) => {}
                (ShardPlace::File(path), Layout::Files) => {
                    assert_eq!(*path, shard_path(dir.path(), &id));
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(damage::read(&at), bytes);
        }
        assert_eq!(store.usage("ann").unwrap(), 4096 + 300_000 + 1);
        assert_eq!(store.shard_count().unwrap(), 4);
        assert!(tmp_entries(dir.path()).is_empty());
    }
}

/// Nothing of a shard anywhere: no shard file, no segment (a store creates
/// its first one with its first append).
fn assert_no_shard_bytes(dir: &std::path::Path) {
    assert!(files_under(&dir.join("shards")).is_empty());
    assert!(files_under(&dir.join("segments")).is_empty());
}

#[test]
fn shards_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let (id, bytes) = shard(5, 1000);
    open(dir.path()).put("ann", &id, &bytes, None).unwrap();
    let store = open(dir.path());
    assert_eq!(store.get(&id).unwrap(), bytes);
    assert!(store.has_ref("ann", &id).unwrap());
    assert_eq!(store.usage("ann").unwrap(), 1000);
}

#[test]
fn get_of_an_absent_shard_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = Id::of(b"never stored");
    assert!(matches!(store.get(&id), Err(GetError::NotFound { id: found }) if found == id));
    assert!(!store.contains(&id));
}

#[test]
fn put_under_the_wrong_id_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (id, bytes) = shard(6, 2048);
    let wrong = Id::of(b"something else");
    let err = store.put("ann", &wrong, &bytes, None).unwrap_err();
    assert!(
        matches!(err, PutError::IdMismatch { expected, actual } if expected == wrong && actual == id),
        "{err:?}"
    );
    assert!(err.to_string().contains(&id.to_string()));
    // Nothing anywhere: no shard, no temporary file, no reference.
    assert_no_shard_bytes(dir.path());
    assert!(tmp_entries(dir.path()).is_empty());
    assert!(!store.has_ref("ann", &wrong).unwrap());
    assert_eq!(store.usage("ann").unwrap(), 0);
    assert!(store.usage_by_user().unwrap().is_empty());
}

#[test]
fn put_of_an_oversized_shard_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let bytes = vec![0u8; MAX_SHARD_LEN + 1];
    let err = store.put("ann", &Id::of(&bytes), &bytes, None).unwrap_err();
    assert!(
        matches!(err, PutError::TooLarge { len, max } if len == MAX_SHARD_LEN + 1 && max == MAX_SHARD_LEN)
    );
    assert_no_shard_bytes(dir.path());
    assert!(tmp_entries(dir.path()).is_empty());
}

#[test]
fn paths_are_built_from_ids_only() {
    // The store's API takes `&Id`, and the only way from text to an `Id` is
    // parsing exactly 64 hex digits: traversal never reaches the store.
    for evil in ["../../etc/passwd", "/etc/passwd", "..", "", "ab/../../cd"] {
        assert!(evil.parse::<Id>().is_err(), "{evil:?} parsed as an id");
    }
    for layout in LAYOUTS {
        let dir = tempfile::tempdir().unwrap();
        let store = open_in(dir.path(), layout);
        let (id, bytes) = shard(7, 10);
        store.put("../../etc/passwd", &id, &bytes, None).unwrap();
        // A user name is a database key, never a path: the one file
        // written is the shard's (or its segment's).
        assert_eq!(
            files_under(dir.path())
                .into_iter()
                .filter(|p| !p.ends_with("meta.redb") && !p.ends_with("store.lock"))
                .collect::<Vec<_>>(),
            [place(&store, &id).path()]
        );
        assert_eq!(store.usage("../../etc/passwd").unwrap(), 10);
    }
}

#[test]
fn concurrent_writers_of_one_shard_all_succeed() {
    const THREADS: usize = 8;
    const USERS: usize = 3;
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for round in 0..10 {
        let (id, bytes) = shard(100 + round, 64 * 1024);
        let barrier = Barrier::new(THREADS);
        let outcomes: Vec<PutOutcome> = thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (store, barrier, bytes) = (&store, &barrier, &bytes);
                    s.spawn(move || {
                        barrier.wait();
                        store.put(&format!("user{}", t % USERS), &id, bytes, None)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap().unwrap())
                .collect()
        });
        // Exactly one writer made the file visible; each user got exactly
        // one reference however many of their puts raced.
        assert_eq!(outcomes.iter().filter(|o| o.stored).count(), 1);
        assert_eq!(
            outcomes.iter().filter(|o| o.newly_referenced).count(),
            USERS
        );
        assert_eq!(store.get(&id).unwrap(), bytes);
        assert!(tmp_entries(dir.path()).is_empty());

        // The reference count is exactly USERS: the file goes with the last.
        for user in 0..USERS - 1 {
            let outcome = store.drop_ref(&format!("user{user}"), &id).unwrap();
            assert_eq!(outcome, DropOutcome::Released);
        }
        let last = format!("user{}", USERS - 1);
        assert_eq!(store.drop_ref(&last, &id).unwrap(), DropOutcome::Deleted);
        assert!(!store.contains(&id));
    }
    assert!(store.usage_by_user().unwrap().is_empty());
}

#[test]
fn concurrent_users_keep_their_usage_exact() {
    const THREADS: usize = 8;
    for layout in LAYOUTS {
        let dir = tempfile::tempdir().unwrap();
        let store = open_in(dir.path(), layout);
        let (id, bytes) = shard(200, 5000);
        let barrier = Barrier::new(THREADS);
        thread::scope(|s| {
            for t in 0..THREADS {
                let (store, barrier, bytes) = (&store, &barrier, &bytes);
                s.spawn(move || {
                    barrier.wait();
                    // Same user twice per pair of threads.
                    store.put(&format!("u{}", t / 2), &id, bytes, None).unwrap();
                });
            }
        });
        let users = store.usage_by_user().unwrap();
        let expected: Vec<_> = (0..THREADS / 2).map(|u| (format!("u{u}"), 5000)).collect();
        assert_eq!(users, expected);
        // The bytes were written once: one file, or one record, the
        // segment's first and only one.
        match place(&store, &id) {
            ShardPlace::File(path) => {
                assert_eq!(files_under(&dir.path().join("shards")), [path]);
            }
            ShardPlace::Segment(at) => {
                assert_eq!(
                    files_under(&dir.path().join("segments")),
                    [at.path.as_path()]
                );
                let segment_len = std::fs::metadata(&at.path).unwrap().len();
                assert_eq!(
                    (at.record_offset, segment_len),
                    (4096, 4096 + at.record_len)
                );
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_drop_racing_a_put_never_loses_a_held_shard() {
    // Two users repeatedly reference and release one shard. Whenever a user
    // holds a reference, the file must be there: a drop of what it saw as
    // the last reference must not unlink a file a put has just referenced.
    const ROUNDS: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let store = cairn_store::Store::open(
        dir.path(),
        cairn_store::StoreOptions::default().with_sync(false),
    )
    .unwrap();
    let (id, bytes) = shard(300, 512);
    thread::scope(|s| {
        for user in ["ann", "bob"] {
            let (store, bytes) = (&store, &bytes);
            s.spawn(move || {
                for _ in 0..ROUNDS {
                    store.put(user, &id, bytes, None).unwrap();
                    assert_eq!(&store.get(&id).unwrap(), bytes, "{user} holds a ref");
                    store.drop_ref(user, &id).unwrap();
                }
            });
        }
    });
    assert!(!store.contains(&id));
    assert!(store.usage_by_user().unwrap().is_empty());
    assert!(tmp_entries(dir.path()).is_empty());
}
