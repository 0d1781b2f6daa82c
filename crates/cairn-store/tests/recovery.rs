//! What a crash or an outside hand leaves on disk, and how the store copes:
//! temporary files are deleted at open, files the store did not write are
//! left alone, and half-finished puts and drops are reconciled by scrub.
//!
//! Guards against a crash leaking temporary files forever, against a scrub
//! deleting files it does not understand, and against shards lost between
//! a commit and a rename going unnoticed.

mod common;

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use cairn_store::{GetError, OpenError, ScrubOptions, Store, StoreOptions};
use common::{
    LAYOUTS, Layout, damage, files_under, open, open_in, place, shard, shard_path, tmp_entries,
};

#[test]
fn open_removes_leftover_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let (id, bytes) = shard(1, 100);
    open(dir.path()).put("ann", &id, &bytes, None).unwrap();
    // What a crash mid-write leaves: temporary files, even a directory.
    let tmp = dir.path().join("tmp");
    fs::write(tmp.join("shard-abc123.tmp"), b"half a shard").unwrap();
    fs::write(tmp.join("junk"), b"").unwrap();
    fs::create_dir_all(tmp.join("nested/deeper")).unwrap();
    fs::write(tmp.join("nested/deeper/file"), b"x").unwrap();
    assert_eq!(tmp_entries(dir.path()).len(), 3);

    let store = open(dir.path());
    assert!(tmp_entries(dir.path()).is_empty());
    // Nothing outside tmp/ was touched.
    assert_eq!(store.get(&id).unwrap(), bytes);
}

#[test]
fn stray_files_are_ignored_and_left_alone() {
    for layout in LAYOUTS {
        stray_files_are_ignored_and_left_alone_in(layout);
    }
}

fn stray_files_are_ignored_and_left_alone_in(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(dir.path(), layout);
    let (id, bytes) = shard(2, 100);
    store.put("ann", &id, &bytes, None).unwrap();
    let hex = id.to_string();
    let (other, _) = shard(3, 100);
    let other_hex = other.to_string();
    let shards = dir.path().join("shards");
    let leaf = shards.join(&hex[..2]).join(&hex[2..4]);
    let wrong_fan = if &other_hex[..2] == "00" { "01" } else { "00" };
    let strays = [
        leaf.join("not-an-id"),
        leaf.join(format!("{hex}.tmp")),
        leaf.join(hex.to_uppercase()),
        shards.join(&hex),
        shards.join("zz").join("yy").join(&hex),
        shards
            .join(wrong_fan)
            .join(&other_hex[2..4])
            .join(&other_hex),
    ];
    for stray in &strays {
        fs::create_dir_all(stray.parent().unwrap()).unwrap();
        fs::write(stray, b"not a shard").unwrap();
    }

    let listed: Vec<_> = store.iter().collect::<Result<_, _>>().unwrap();
    assert_eq!(listed, [id]);
    let report = store.scrub(&ScrubOptions::default()).unwrap();
    assert_eq!(report.shards_checked, 1);
    assert!(report.corrupt.is_empty());
    assert_eq!(report.unreferenced_removed, 0);
    for stray in &strays {
        assert_eq!(fs::read(stray).unwrap(), b"not a shard", "{stray:?}");
    }
}

#[test]
fn scrub_reports_referenced_shards_without_their_bytes() {
    for layout in LAYOUTS {
        scrub_reports_referenced_shards_without_their_bytes_in(layout);
    }
}

fn scrub_reports_referenced_shards_without_their_bytes_in(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(dir.path(), layout);
    let (kept, kept_bytes) = shard(4, 100);
    let (lost, lost_bytes) = shard(5, 200);
    store.put("ann", &kept, &kept_bytes, None).unwrap();
    store.put("bob", &lost, &lost_bytes, None).unwrap();
    // Deleted behind the store's back (or lost between commit and rename);
    // in a segment, the record's sectors lost.
    damage::remove(&place(&store, &lost));

    let report = store.scrub(&ScrubOptions::default()).unwrap();
    assert_eq!(report.missing, [lost]);
    // A deleted file is not there to check; a lost record is checked and
    // found damaged, and quarantined.
    let (checked, corrupt) = match layout {
        Layout::Files => (1, vec![]),
        Layout::Segments => (2, vec![lost]),
    };
    assert_eq!(report.shards_checked, checked, "{layout:?}");
    let found: Vec<_> = report.corrupt.iter().map(|d| d.id).collect();
    assert_eq!(found, corrupt, "{layout:?}");
    assert!(matches!(store.get(&lost), Err(GetError::NotFound { .. })));
    // The holder's retry heals it without counting the bytes twice.
    let outcome = store.put("bob", &lost, &lost_bytes, None).unwrap();
    assert!(outcome.stored && !outcome.newly_referenced);
    assert_eq!(store.usage("bob").unwrap(), 200);
    assert!(
        store
            .scrub(&ScrubOptions::default())
            .unwrap()
            .missing
            .is_empty()
    );
}

/// A test of the first layout: an unreferenced segment record is dead
/// bytes, for a compaction (see `compact.rs`), not a file to delete.
#[test]
fn scrub_removes_files_nobody_references() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(dir.path(), Layout::Files);
    let (held, held_bytes) = shard(6, 100);
    store.put("ann", &held, &held_bytes, None).unwrap();
    // A crash between a drop's commit and its unlink leaves a well-formed
    // shard file that no reference points to.
    let (orphan, orphan_bytes) = shard(7, 300);
    let orphan_path = shard_path(dir.path(), &orphan);
    fs::create_dir_all(orphan_path.parent().unwrap()).unwrap();
    fs::write(&orphan_path, &orphan_bytes).unwrap();
    assert!(store.contains(&orphan));

    // Written just now: within the grace period, so it stays.
    let report = store.scrub(&ScrubOptions::default()).unwrap();
    assert_eq!(report.unreferenced_removed, 0);
    assert_eq!(report.unreferenced_kept, 1);
    assert_eq!(fs::read(&orphan_path).unwrap(), orphan_bytes);
    // Two hours later it is garbage.
    set_modified_ago(&orphan_path, Duration::from_secs(2 * 60 * 60));
    let report = store.scrub(&ScrubOptions::default()).unwrap();
    assert_eq!(report.unreferenced_removed, 1);
    assert_eq!(report.unreferenced_kept, 0);
    assert_eq!(report.shards_checked, 2);
    assert_eq!(report.bytes_checked, 400);
    assert!(!orphan_path.exists());
    assert_eq!(store.get(&held).unwrap(), held_bytes);
    assert_eq!(
        files_under(&dir.path().join("shards")),
        [shard_path(dir.path(), &held)]
    );
}

/// Sets a file's modification time to `ago` before now.
fn set_modified_ago(path: &Path, ago: Duration) {
    let file = fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - ago).unwrap();
}

/// The grace period is measured from the file's last modification, and
/// only an unreferenced file's: a held one is never deleted, however old.
/// A test of the first layout, as the one above.
#[test]
fn the_grace_period_spares_young_unreferenced_files_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(dir.path(), Layout::Files);
    let (held, held_bytes) = shard(9, 100);
    store.put("ann", &held, &held_bytes, None).unwrap();
    let day = Duration::from_secs(24 * 60 * 60);
    set_modified_ago(&shard_path(dir.path(), &held), day);
    let mut orphans = Vec::new();
    for (seed, age) in [
        (10, Duration::ZERO),
        (11, Duration::from_secs(50 * 60)),
        (12, day),
    ] {
        let (id, bytes) = shard(seed, 10);
        let path = shard_path(dir.path(), &id);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, &bytes).unwrap();
        set_modified_ago(&path, age);
        orphans.push(path);
    }
    let report = store.scrub(&ScrubOptions::default()).unwrap();
    assert_eq!(
        (report.unreferenced_removed, report.unreferenced_kept),
        (1, 2)
    );
    let exists: Vec<bool> = orphans.iter().map(|p| p.exists()).collect();
    assert_eq!(exists, [true, true, false]);
    assert_eq!(store.get(&held).unwrap(), held_bytes);

    let thirty_minutes =
        ScrubOptions::default().with_unreferenced_grace(Duration::from_secs(30 * 60));
    let report = store.scrub(&thirty_minutes).unwrap();
    assert_eq!(
        (report.unreferenced_removed, report.unreferenced_kept),
        (1, 1)
    );
    let report = store
        .scrub(&ScrubOptions::default().with_unreferenced_grace(Duration::ZERO))
        .unwrap();
    assert_eq!(
        (report.unreferenced_removed, report.unreferenced_kept),
        (1, 0)
    );
    assert_eq!(
        files_under(&dir.path().join("shards")),
        [shard_path(dir.path(), &held)]
    );
}

/// Damages a store's database file in some way.
type Setup = fn(&Path);

/// Whether the redb database at `path` has any table (a file of zero bytes
/// has none).
fn has_tables(path: &Path) -> bool {
    use redb::ReadableDatabase;
    if fs::metadata(path).unwrap().len() == 0 {
        return false;
    }
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_read().unwrap();
    txn.list_tables().unwrap().next().is_some()
}

/// A lost `meta.redb` beside a full `shards/` used to be replaced by an
/// empty database, silently; the next scrub then found every shard
/// unreferenced and deleted them all. Beside segments it is worse: the
/// open itself deletes every segment the (new, empty) database says holds
/// nothing live.
#[test]
fn a_lost_database_beside_shards_is_refused_and_nothing_changes() {
    for layout in LAYOUTS {
        a_lost_database_beside_shards_is_refused_and_nothing_changes_in(layout);
    }
}

fn a_lost_database_beside_shards_is_refused_and_nothing_changes_in(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let shards: Vec<_> = (20..23).map(|seed| shard(seed, 100)).collect();
    let places: Vec<_> = {
        let store = open_in(dir.path(), layout);
        for (id, bytes) in &shards {
            store.put("ann", id, bytes, None).unwrap();
        }
        shards.iter().map(|(id, _)| place(&store, id)).collect()
    };
    let db = dir.path().join("meta.redb");
    let leftover = dir.path().join("tmp").join("shard-crashed.tmp");
    fs::write(&leftover, b"half").unwrap();

    // Deleted; then emptied (a truncation); then a redb file that cairn
    // never initialised (a crash in its first open).
    let cases: [(&str, Setup); 3] = [
        ("missing", |db| fs::remove_file(db).unwrap()),
        ("empty", |db| fs::write(db, b"").unwrap()),
        ("uninitialised", |db| {
            drop(redb::Database::create(db).unwrap());
        }),
    ];
    for (case, setup) in cases {
        setup(&db);
        let before = fs::read(&db).ok();
        let err = Store::open(dir.path(), StoreOptions::default()).unwrap_err();
        let OpenError::MetadataMissing { path, shards: n } = &err else {
            panic!("{case}: expected MetadataMissing, got {err:?}");
        };
        assert_eq!((path, *n), (&db, 3), "{case}");
        let message = err.to_string();
        for words in ["missing", "3 shards", "Nothing was changed"] {
            assert!(message.contains(words), "{case}: {message}");
        }
        // Nothing changed: no database created (redb itself may touch the
        // header of the one it opened, but no table appeared), tmp/ not
        // emptied, every shard in place.
        match before {
            Some(_) => assert!(!has_tables(&db), "{case}"),
            None => assert!(!db.exists(), "{case}"),
        }
        assert_eq!(
            tmp_entries(dir.path()),
            std::slice::from_ref(&leftover),
            "{case}"
        );
        for ((_, bytes), at) in shards.iter().zip(&places) {
            assert!(at.path().exists(), "{case}: {at:?}");
            assert!(&damage::read(at) == bytes, "{case}");
        }
    }

    // With shards/ and segments/ moved aside, a new store starts.
    for moved in ["shards", "segments"] {
        let from = dir.path().join(moved);
        fs::rename(&from, from.with_extension("old")).unwrap();
    }
    let store = open(dir.path());
    assert!(store.usage_by_user().unwrap().is_empty());
}

#[test]
fn unsynced_store_keeps_the_same_guarantees_while_running() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default().with_sync(false)).unwrap();
    let (id, bytes) = shard(8, 1000);
    store.put("ann", &id, &bytes, None).unwrap();
    assert_eq!(store.get(&id).unwrap(), bytes);
    drop(store);
    // Closing the database persists its unsynced commits.
    let store = open(dir.path());
    assert_eq!(store.usage("ann").unwrap(), 1000);
}
