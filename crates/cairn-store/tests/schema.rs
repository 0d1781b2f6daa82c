//! The metadata database's schema version, and who may open it.
//!
//! Guards against a cairn misreading a database written by a newer version
//! (or by another program), and against two stores sharing a directory.
//! (A store and admins sharing one is in `admin.rs`.)

mod common;

use cairn_store::{
    IndexEntry, IndexPut, LEGACY_FOLDER, MAX_INDEX_ENTRY_LEN, OpenError, QueryError, RecordError,
    Store, StoreOptions,
};
use common::{recorded_version, rewrite_as_schema_2, rewrite_as_schema_3, user_record};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const INDEX: TableDefinition<(&str, &[u8; 32]), &[u8]> = TableDefinition::new("index");

#[test]
fn a_new_store_records_schema_version_4() {
    let dir = tempfile::tempdir().unwrap();
    drop(common::open(dir.path()));
    assert_eq!(recorded_version(dir.path()), Some(4));
    // And opens again.
    drop(common::open(dir.path()));
}

#[test]
fn an_unknown_schema_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::create(dir.path().join("meta.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert("schema_version", 99u64.to_be_bytes().as_slice())
            .unwrap();
        txn.commit().unwrap();
    }

    let err = Store::open(dir.path(), StoreOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            OpenError::UnsupportedSchema {
                found: 99,
                supported: 4
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("schema version 99"), "{message}");
    assert!(message.contains("supports 4"), "{message}");
    assert!(message.contains("newer version"), "{message}");
    // Refused before anything was touched.
    assert_eq!(recorded_version(dir.path()), Some(99));
    assert!(!dir.path().join("shards").exists());
    assert!(!dir.path().join("segments").exists());
    assert!(!dir.path().join("tmp").exists());
}

/// Version 1 (one file per shard, no segment tables, index entries
/// without folders) is upgraded in place, straight to version 4: its data
/// kept, the segment tables and the feed added, version 4 recorded; so a
/// cairn that knows only version 1 refuses it from then on.
#[test]
fn a_version_1_store_is_upgraded_to_version_4_keeping_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let (id, bytes) = common::shard(7, 100);
    let entry = IndexEntry {
        name: [5; 32],
        version: 9,
        data: b"an entry of version 1".to_vec(),
    };
    {
        // Version 1 knew shard files only.
        let store = common::open_in(dir.path(), common::Layout::Files);
        store.put("ann", &id, &bytes, None).unwrap();
        store.add_user("ann", &user_record(1, None)).unwrap();
        store.put_index("ann", &entry).unwrap();
    }
    // Back to what version 1 wrote: no segment tables, no feed, index
    // records in format 1, version 1.
    rewrite_as_schema_2(dir.path(), &[]);
    {
        let db = Database::create(dir.path().join("meta.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        let locations: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("locations");
        let segments: TableDefinition<u64, u64> = TableDefinition::new("segments");
        assert!(txn.delete_table(locations).unwrap());
        assert!(txn.delete_table(segments).unwrap());
        txn.open_table(META)
            .unwrap()
            .insert("schema_version", 1u64.to_be_bytes().as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    assert_eq!(recorded_version(dir.path()), Some(1));
    let store = common::open(dir.path());
    assert_eq!(store.get(&id).unwrap(), bytes);
    assert_eq!(store.usage("ann").unwrap(), 100);
    assert_eq!(
        store.get_index("ann", &entry.name).unwrap(),
        Some(entry.clone())
    );
    assert_eq!(
        store.list_folder("ann", &LEGACY_FOLDER, None, 10).unwrap(),
        std::slice::from_ref(&entry)
    );
    let feed = store.changes("ann", 0, None, 10, 4096).unwrap();
    assert_eq!(feed.entries.len(), 1);
    assert_eq!(feed.entries[0].summary, entry.data);
    drop(store);
    assert_eq!(recorded_version(dir.path()), Some(4));
    // The new tables work: a segment put is recorded.
    let store = Store::open(dir.path(), StoreOptions::default().with_segments(true)).unwrap();
    let (new, new_bytes) = common::shard(8, 100);
    store.put("ann", &new, &new_bytes, None).unwrap();
    assert!(store.shard_location(&new).unwrap().is_some());
}

/// Version 3 (folder rows without values) is upgraded in place: every
/// entry is listed in its folder with its version and summary as before,
/// the feed keeps its id and sequence numbers, and version 4 is recorded.
#[test]
fn a_version_3_store_is_upgraded_to_version_4_keeping_its_listings_and_feed() {
    let dir = tempfile::tempdir().unwrap();
    let folder = [7; 32];
    let entry = |name: u8, version: u64| IndexEntry {
        name: [name; 32],
        version,
        data: vec![name; 300],
    };
    let (feed_before, listed_before) = {
        let store = common::open(dir.path());
        store.add_user("ann", &user_record(1, None)).unwrap();
        for name in 1..=3 {
            store
                .put_entry("ann", &entry(name, 10), &folder, 100)
                .unwrap();
        }
        store.put_entry("ann", &entry(9, 10), &[8; 32], 50).unwrap();
        // A newer version of one: its row moves up the feed.
        store.put_entry("ann", &entry(2, 11), &folder, 120).unwrap();
        (
            store.changes("ann", 0, None, 100, 4096).unwrap(),
            store.list_folder("ann", &folder, None, 100).unwrap(),
        )
    };
    assert_eq!(listed_before.len(), 3);
    assert_eq!(listed_before[1].version, 11);
    assert_eq!(listed_before[1].data, vec![2; 120]);
    rewrite_as_schema_3(dir.path());
    assert_eq!(recorded_version(dir.path()), Some(3));

    let store = common::open(dir.path());
    assert_eq!(
        store.list_folder("ann", &folder, None, 100).unwrap(),
        listed_before
    );
    assert_eq!(
        store.list_folder("ann", &[8; 32], None, 100).unwrap(),
        vec![IndexEntry {
            data: vec![9; 50],
            ..entry(9, 10)
        }]
    );
    let feed = store.changes("ann", 0, None, 100, 4096).unwrap();
    assert_eq!(feed, feed_before);
    // Writes after the upgrade keep the rows right.
    store.put_entry("ann", &entry(1, 12), &[8; 32], 10).unwrap();
    assert_eq!(
        store.list_folder("ann", &folder, None, 100).unwrap().len(),
        2
    );
    assert_eq!(
        store.list_folder("ann", &[8; 32], None, 100).unwrap().len(),
        2
    );
    drop(store);
    assert_eq!(recorded_version(dir.path()), Some(4));
}

#[test]
fn a_foreign_database_without_a_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::create(dir.path().join("meta.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        let other: TableDefinition<u64, u64> = TableDefinition::new("something_else");
        txn.open_table(other).unwrap().insert(1, 2).unwrap();
        txn.commit().unwrap();
    }
    let err = Store::open(dir.path(), StoreOptions::default()).unwrap_err();
    assert!(
        matches!(err, OpenError::MissingSchemaVersion { .. }),
        "{err:?}"
    );
    assert_eq!(recorded_version(dir.path()), None);
}

#[test]
fn a_second_store_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = common::open(dir.path());
    let err = Store::open(dir.path(), StoreOptions::default()).unwrap_err();
    let OpenError::Locked { path } = &err else {
        panic!("expected Locked, got {err:?}");
    };
    assert_eq!(path, &dir.path().join("store.lock"));
    assert!(
        err.to_string()
            .contains("another cairn node is using this directory"),
        "{err}"
    );
    // The first store is unharmed by the attempt.
    let (id, bytes) = common::shard(1, 10);
    first.put("ann", &id, &bytes, None).unwrap();
    drop(first);
    drop(common::open(dir.path()));
}

/// Version 2 (index entries in record format 1, no folders, no feed) is
/// upgraded in place at open: every entry still reads with all its data,
/// is listed in the legacy folder with all its data as its summary, and is
/// in the feed once, with a sequence number of its own. The upgrade is one
/// transaction (rewriting the entries, adding the rows and the feed,
/// recording version 4), so a node killed during it finds the store at
/// version 2 or 4, never between (`crash.rs` kills one mid-way).
#[test]
fn a_version_2_store_is_upgraded_to_version_4_keeping_every_entry() {
    let dir = tempfile::tempdir().unwrap();
    let entry = |name: u8, version: u64, len: usize| IndexEntry {
        name: [name; 32],
        version,
        data: vec![name; len],
    };
    // Empty, small, and larger than any summary put with a folder.
    let anns = [
        entry(3, 1, 0),
        entry(1, 7, 10),
        entry(2, u64::MAX, MAX_INDEX_ENTRY_LEN),
    ];
    let bobs = [entry(1, 2, 5)];
    {
        let store = common::open(dir.path());
        store.add_user("ann", &user_record(1, None)).unwrap();
        store.add_user("bob", &user_record(2, None)).unwrap();
        for entry in &anns {
            store.put_index("ann", entry).unwrap();
        }
        for entry in &bobs {
            store.put_index("bob", entry).unwrap();
        }
    }
    rewrite_as_schema_2(dir.path(), &[]);
    assert_eq!(recorded_version(dir.path()), Some(2));
    assert_eq!(raw_format(dir.path(), "ann", &[1; 32]), 1);

    let store = common::open(dir.path());
    let mut sorted = anns.to_vec();
    sorted.sort_by_key(|e| e.name);
    for entry in &anns {
        assert_eq!(
            store.get_index("ann", &entry.name).unwrap().as_ref(),
            Some(entry)
        );
    }
    assert_eq!(store.list_index("ann", None, 10).unwrap(), sorted);
    assert_eq!(
        store.list_folder("ann", &LEGACY_FOLDER, None, 10).unwrap(),
        sorted
    );
    assert_eq!(
        store.list_folder("bob", &LEGACY_FOLDER, None, 10).unwrap(),
        bobs
    );
    let feed = store.changes("ann", 0, None, 10, 4096).unwrap();
    assert!(!feed.more);
    assert_ne!(feed.feed, 0);
    let mut names: Vec<_> = feed.entries.iter().map(|e| e.name).collect();
    names.sort_unstable();
    assert_eq!(names, sorted.iter().map(|e| e.name).collect::<Vec<_>>());
    for changed in &feed.entries {
        let entry = anns.iter().find(|e| e.name == changed.name).unwrap();
        assert_eq!(
            (changed.version, &changed.summary),
            (entry.version, &entry.data)
        );
    }
    let mut seqs: Vec<_> = feed.entries.iter().map(|e| e.seq).collect();
    seqs.dedup();
    assert_eq!(seqs.len(), anns.len(), "one sequence number each");
    assert!(seqs.is_sorted());
    assert_eq!(feed.next, *seqs.last().unwrap());
    let bob_feed = store.changes("bob", 0, None, 10, 4096).unwrap();
    assert_eq!(bob_feed.entries.len(), 1);
    assert_eq!(bob_feed.feed, feed.feed);

    // New puts go on from there: a legacy entry moved to a folder leaves
    // the legacy folder, and is the feed's only change since.
    let moved = IndexEntry {
        name: [1; 32],
        version: 8,
        data: b"summary, then the rest".to_vec(),
    };
    assert_eq!(
        store.put_entry("ann", &moved, &[9; 32], 7).unwrap(),
        IndexPut::Stored { replaced: Some(7) }
    );
    let since = store.changes("ann", feed.next, None, 10, 4096).unwrap();
    assert_eq!(since.entries.len(), 1);
    assert!(since.entries[0].seq > feed.next);
    assert_eq!(since.entries[0].summary, b"summary");
    assert_eq!(
        store
            .list_folder("ann", &LEGACY_FOLDER, None, 10)
            .unwrap()
            .len(),
        2
    );
    drop(store);
    assert_eq!(recorded_version(dir.path()), Some(4));
    assert_eq!(raw_format(dir.path(), "ann", &[3; 32]), 2);

    // Opening again upgrades nothing: same feed, same numbers.
    let store = common::open(dir.path());
    let again = store.changes("ann", 0, None, 10, 4096).unwrap();
    assert_eq!(again.feed, feed.feed);
    assert_eq!(store.feed_id().unwrap(), feed.feed);
    assert_eq!(again.entries.len(), anns.len());
    assert_eq!(again.entries.last().unwrap(), &since.entries[0]);
}

/// An entry the upgrade cannot decode (a newer cairn's format, or damage)
/// is left as it was, still reported as such, and costs no other entry
/// its upgrade.
#[test]
fn the_upgrade_leaves_an_entry_it_cannot_read_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = common::open(dir.path());
        store.add_user("ann", &user_record(1, None)).unwrap();
    }
    let readable = ("ann", [1; 32], 4, b"fine".to_vec());
    let unreadable = ("ann", [2; 32], 4, b"from the future".to_vec());
    rewrite_as_schema_2(dir.path(), &[readable.clone(), unreadable.clone()]);
    let stored = {
        let db = Database::create(dir.path().join("meta.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        let value = {
            let mut index = txn.open_table(INDEX).unwrap();
            let mut value = index
                .get(("ann", &[2; 32]))
                .unwrap()
                .unwrap()
                .value()
                .to_vec();
            value[0] = 99;
            index.insert(("ann", &[2; 32]), value.as_slice()).unwrap();
            value
        };
        txn.commit().unwrap();
        value
    };

    let store = common::open(dir.path());
    assert_eq!(
        store.get_index("ann", &[1; 32]).unwrap().unwrap().data,
        readable.3
    );
    let err = store.get_index("ann", &[2; 32]).unwrap_err();
    assert!(
        matches!(
            err,
            QueryError::Record(RecordError::UnknownVersion { found: 99, .. })
        ),
        "{err:?}"
    );
    let feed = store.changes("ann", 0, None, 10, 4096).unwrap();
    assert_eq!(feed.entries.len(), 1);
    assert_eq!(feed.entries[0].name, [1; 32]);
    drop(store);
    assert_eq!(recorded_version(dir.path()), Some(4));
    let db = Database::open(dir.path().join("meta.redb")).unwrap();
    let txn = db.begin_read().unwrap();
    let index = txn.open_table(INDEX).unwrap();
    assert_eq!(
        index.get(("ann", &[2; 32])).unwrap().unwrap().value(),
        stored.as_slice()
    );
}

/// The format byte of `user`'s stored entry `name`, read with redb.
fn raw_format(dir: &std::path::Path, user: &str, name: &[u8; 32]) -> u8 {
    let db = Database::open(dir.join("meta.redb")).unwrap();
    let txn = db.begin_read().unwrap();
    let index = txn.open_table(INDEX).unwrap();
    index.get((user, name)).unwrap().unwrap().value()[0]
}
