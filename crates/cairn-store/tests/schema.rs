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
fn a_new_store_records_schema_version_1() {
    let dir = tempfile::tempdir().unwrap();
    drop(common::open(dir.path()));
    assert_eq!(recorded_version(dir.path()), Some(1));
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
                supported: 1
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("schema version 99"), "{message}");
    assert!(message.contains("supports 1"), "{message}");
    assert!(message.contains("newer version"), "{message}");
    // Refused before anything was touched.
    assert_eq!(recorded_version(dir.path()), Some(99));
    assert!(!dir.path().join("shards").exists());
    assert!(!dir.path().join("tmp").exists());
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
