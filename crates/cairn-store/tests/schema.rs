//! The metadata database's schema version, and who may open it.
//!
//! Guards against a cairn misreading a database written by a newer version
//! (or by another program), and against two stores sharing a directory.
//! (A store and admins sharing one is in `admin.rs`.)

mod common;

use std::path::Path;

use cairn_store::{OpenError, Store, StoreOptions};
use redb::{Database, ReadableDatabase, TableDefinition};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// The schema version recorded in a store's database (8 bytes, big-endian),
/// read with redb; `None` if there is none, or no `meta` table at all.
fn recorded_version(dir: &Path) -> Option<u64> {
    let db = Database::open(dir.join("meta.redb")).unwrap();
    let txn = db.begin_read().unwrap();
    let table = match txn.open_table(META) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return None,
        Err(e) => panic!("{e}"),
    };
    let value = table.get("schema_version").unwrap()?;
    Some(u64::from_be_bytes(value.value().try_into().unwrap()))
}

#[test]
fn a_new_store_records_schema_version_2() {
    let dir = tempfile::tempdir().unwrap();
    drop(common::open(dir.path()));
    assert_eq!(recorded_version(dir.path()), Some(2));
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
                supported: 2
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("schema version 99"), "{message}");
    assert!(message.contains("supports 2"), "{message}");
    assert!(message.contains("newer version"), "{message}");
    // Refused before anything was touched.
    assert_eq!(recorded_version(dir.path()), Some(99));
    assert!(!dir.path().join("shards").exists());
    assert!(!dir.path().join("segments").exists());
    assert!(!dir.path().join("tmp").exists());
}

/// Version 1 (one file per shard, no segment tables) is upgraded in place:
/// its data kept, the segment tables added, version 2 recorded; so a cairn
/// that knows only version 1 refuses it from then on.
#[test]
fn a_version_1_store_is_upgraded_to_version_2_keeping_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let (id, bytes) = common::shard(7, 100);
    {
        // Version 1 knew shard files only.
        let store = common::open_in(dir.path(), common::Layout::Files);
        store.put("ann", &id, &bytes, None).unwrap();
    }
    // Back to what version 1 wrote: no segment tables, version 1.
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
    drop(store);
    assert_eq!(recorded_version(dir.path()), Some(2));
    // The new tables work: a segment put is recorded.
    let store = Store::open(dir.path(), StoreOptions::default().with_segments(true)).unwrap();
    let (new, new_bytes) = common::shard(8, 100);
    store.put("ann", &new, &new_bytes, None).unwrap();
    assert!(store.shard_location(&new).unwrap().is_some());
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
