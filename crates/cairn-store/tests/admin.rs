//! An `Admin` beside a running `Store`: the operator's `cairn node user …`
//! and `status` commands while the node runs.
//!
//! Guards against the two not sharing the database (an admin's change
//! invisible to the node until a restart, or refused as "already open"),
//! against an admin touching what only the store may (`tmp/`, shard files),
//! against a second store getting the directory, and against the last
//! scrub not reaching `status`.

mod common;

use std::fs;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn_store::{
    Admin, OpenError, ScrubOptions, ScrubRecord, Store, StoreOptions, UserError, count_shards,
};
use common::{Layout, open, open_in, place, shard, shard_path, tmp_entries, user_record};

/// Set, for the child process, to the directory it works on.
const CHILD_DIR: &str = "CAIRN_STORE_TEST_CHILD_DIR";

#[test]
fn an_admin_beside_a_running_store_shares_every_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let admin = Admin::open(dir.path()).unwrap();
    assert_eq!(admin.dir(), dir.path());

    // Admin → store, at once.
    admin.add_user("ann", &user_record(1, Some(1000))).unwrap();
    assert_eq!(store.user("ann").unwrap(), Some(user_record(1, Some(1000))));
    admin.set_quota("ann", Some(2000)).unwrap();
    assert_eq!(store.user("ann").unwrap().unwrap().quota, Some(2000));

    // Store → admin, at once.
    let (id, bytes) = shard(1, 300);
    store.put("ann", &id, &bytes, Some(2000)).unwrap();
    assert_eq!(admin.usage("ann").unwrap(), 300);
    assert_eq!(admin.usage_by_user().unwrap(), [("ann".to_owned(), 300)]);
    assert!(admin.has_ref("ann", &id).unwrap());
    store.add_user("bob", &user_record(2, None)).unwrap();
    let names: Vec<_> = admin
        .list_users()
        .unwrap()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(names, ["ann", "bob"]);
    assert_eq!(admin.shard_count().unwrap(), 1);

    // Both write: one writer at a time, nothing lost.
    assert!(matches!(
        store.add_user("ann", &user_record(3, None)),
        Err(UserError::Exists { .. })
    ));

    // A second store is refused, even with an admin open.
    let err = Store::open(dir.path(), StoreOptions::default()).unwrap_err();
    assert!(matches!(err, OpenError::Locked { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("another cairn node is using this directory"),
        "{err}"
    );

    // An admin holds no lock of its own: a store opens beside it.
    drop(store);
    let store = open(dir.path());
    admin.add_user("cy", &user_record(4, None)).unwrap();
    assert!(store.user("cy").unwrap().is_some());
}

#[test]
fn an_admin_in_another_process_is_seen_by_the_running_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.add_user("ann", &user_record(1, None)).unwrap();

    // Runs `child_process_opens_an_admin` below, alone, in a new process.
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_process_opens_an_admin",
            "--exact",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed:\n{stdout}\n{stderr}");
    // The filter matched: the child really ran the helper.
    assert!(stdout.contains("1 passed"), "{stdout}");

    assert_eq!(store.user("carol").unwrap(), Some(user_record(7, Some(5))));
    // The child saw what this process committed, and changed it.
    assert_eq!(store.user("ann").unwrap().unwrap().quota, Some(42));
    // And this store still works after the child's commits.
    let (id, bytes) = shard(2, 10);
    store.put("carol", &id, &bytes, Some(5)).unwrap_err();
    store.put("carol", &id, &bytes, Some(10)).unwrap();
}

/// Not a test on its own: the child process of the test above. Run without
/// the variable (as in every normal run), it does nothing.
#[test]
fn child_process_opens_an_admin() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let err = Store::open(&dir, StoreOptions::default()).unwrap_err();
    assert!(matches!(err, OpenError::Locked { .. }), "{err:?}");
    let admin = Admin::open(&dir).unwrap();
    assert!(admin.user("ann").unwrap().is_some());
    admin.set_quota("ann", Some(42)).unwrap();
    admin.add_user("carol", &user_record(7, Some(5))).unwrap();
}

#[test]
fn an_admin_needs_an_existing_store() {
    let parent = tempfile::tempdir().unwrap();
    for dir in [parent.path().to_owned(), parent.path().join("nowhere")] {
        let err = Admin::open(&dir).unwrap_err();
        let OpenError::NotAStore { dir: reported } = &err else {
            panic!("expected NotAStore, got {err:?}");
        };
        assert_eq!(reported, &dir);
        assert_eq!(
            err.to_string(),
            format!("no cairn node store in {}", dir.display())
        );
    }
    // Nothing was created looking.
    assert_eq!(fs::read_dir(parent.path()).unwrap().count(), 0);

    // An empty database file (a store that died before its first commit)
    // is no store either.
    fs::write(parent.path().join("meta.redb"), b"").unwrap();
    let err = Admin::open(parent.path()).unwrap_err();
    assert!(matches!(err, OpenError::NotAStore { .. }), "{err:?}");
}

#[test]
fn an_admin_leaves_tmp_and_shards_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (id, bytes) = shard(3, 100);
    store.put("ann", &id, &bytes, None).unwrap();
    // A write in progress, as the running store would have one.
    let in_progress = dir.path().join("tmp").join("shard-inflight.tmp");
    fs::write(&in_progress, b"half").unwrap();

    let admin = Admin::open(dir.path()).unwrap();
    assert_eq!(admin.shard_count().unwrap(), 1);
    assert_eq!(count_shards(dir.path()).unwrap(), 1);
    // It finds the shard's bytes, where the store put them, and lists it.
    let at = admin.shard_place(&id).unwrap().expect("the shard is here");
    assert_eq!(Some(&at), store.shard_place(&id).unwrap().as_ref());
    assert_eq!(admin.shards().collect::<Result<Vec<_>, _>>().unwrap(), [id]);
    drop(admin);
    assert_eq!(tmp_entries(dir.path()), [in_progress]);
    assert_eq!(common::damage::read(&at), bytes);
    drop(store);

    // count_shards needs no store at all, and fails on a non-store.
    assert_eq!(count_shards(dir.path()).unwrap(), 1);
    assert!(count_shards(dir.path().join("nowhere")).is_err());
}

/// An admin cannot delete a shard file (the per-id locks that keep a put
/// from referencing a file while it is unlinked live in the node), so it
/// leaves unheld files to the node's scrub. A segment record it releases
/// in the transaction that removes the user, as a store does: nothing is
/// unlinked, the record's bytes just become dead.
#[test]
fn admin_remove_user_leaves_unheld_files_to_the_scrub() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(dir.path(), Layout::Files);
    let admin = Admin::open(dir.path()).unwrap();
    admin.add_user("ann", &user_record(1, None)).unwrap();
    let (id, bytes) = shard(4, 200);
    store.put("ann", &id, &bytes, None).unwrap();

    let removed = admin.remove_user("ann").unwrap();
    assert_eq!(removed.references, 1);
    assert_eq!(removed.unheld, [id]);
    assert_eq!((removed.files_deleted, removed.records_released), (0, 0));
    assert!(store.user("ann").unwrap().is_none());
    assert_eq!(store.usage("ann").unwrap(), 0);
    // The file stays until the node's scrub finds it unreferenced, and
    // older than the grace period (an hour by default).
    assert!(shard_path(dir.path(), &id).exists());
    let report = store.scrub(&ScrubOptions::default()).unwrap();
    assert_eq!(
        (report.unreferenced_removed, report.unreferenced_kept),
        (0, 1)
    );
    assert!(shard_path(dir.path(), &id).exists());
    let no_grace = ScrubOptions::default().with_unreferenced_grace(Duration::ZERO);
    let report = store.scrub(&no_grace).unwrap();
    assert_eq!(
        (report.unreferenced_removed, report.unreferenced_kept),
        (1, 0)
    );
    assert!(!shard_path(dir.path(), &id).exists());
}

#[test]
fn admin_remove_user_releases_unheld_records_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(dir.path(), Layout::Segments);
    let admin = Admin::open(dir.path()).unwrap();
    admin.add_user("ann", &user_record(1, None)).unwrap();
    let (id, bytes) = shard(4, 200);
    store.put("ann", &id, &bytes, None).unwrap();
    assert!(admin.shard_location(&id).unwrap().is_some());

    let removed = admin.remove_user("ann").unwrap();
    assert_eq!(removed.unheld, [id]);
    assert_eq!((removed.files_deleted, removed.records_released), (0, 1));
    // Gone for the store at once, with nothing left for the scrub.
    assert_eq!(store.shard_place(&id).unwrap(), None);
    assert!(!store.contains(&id));
    let no_grace = ScrubOptions::default().with_unreferenced_grace(Duration::ZERO);
    let report = store.scrub(&no_grace).unwrap();
    assert_eq!((report.shards_checked, report.unreferenced_removed), (0, 0));
}

#[test]
fn the_last_scrub_is_recorded_and_read_through_an_admin() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(dir.path(), Layout::Segments);
    let admin = Admin::open(dir.path()).unwrap();
    assert_eq!(admin.last_scrub().unwrap(), None);

    let (good, good_bytes) = shard(5, 100);
    let (bad, bad_bytes) = shard(6, 200);
    let (lost, lost_bytes) = shard(7, 300);
    for (id, bytes) in [(good, &good_bytes), (bad, &bad_bytes), (lost, &lost_bytes)] {
        store.put("ann", &id, bytes, None).unwrap();
    }
    common::damage::flip_middle_bit(&place(&store, &bad));
    common::damage::remove(&place(&store, &lost));

    let before = unix_now();
    let report = store.scrub(&ScrubOptions::default()).unwrap();
    let after = unix_now();
    let record = admin.last_scrub().unwrap().expect("a scrub was recorded");
    assert!(
        (before..=after).contains(&record.finished_unix),
        "{record:?}"
    );
    // Every record in a segment is checked, the lost one's (zeroed) too;
    // a deleted shard file is not there to check.
    assert_eq!(
        (
            record.shards_checked,
            record.bytes_checked,
            record.corrupt,
            record.missing
        ),
        (3, 600, 2, 2),
        "{record:?}"
    );
    assert_eq!(record.corrupt, report.corrupt.len() as u64);
    assert_eq!(store.last_scrub().unwrap(), Some(record.clone()));

    // The next scrub replaces it, and it survives the store closing.
    store.scrub(&ScrubOptions::default()).unwrap();
    drop(store);
    let last: ScrubRecord = admin.last_scrub().unwrap().unwrap();
    assert_eq!((last.shards_checked, last.corrupt, last.missing), (1, 0, 2));
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
