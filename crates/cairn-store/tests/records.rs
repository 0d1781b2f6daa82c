//! Records in the metadata database that this cairn cannot read.
//!
//! Guards against a cairn misreading a user, index entry or scrub record
//! written in a newer format (or damaged): each must come back as a typed
//! error naming the table and key, never as wrong data or a panic, and an
//! operation must not overwrite what it could not read.

mod common;

use std::path::Path;

use cairn_store::{Admin, IndexEntry, IndexError, QueryError, RecordError, Store, UserError};
use common::{open, user_record};
use redb::{Builder, ConcurrencyMode, ReadableTable, TableDefinition};

const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
const INDEX: TableDefinition<(&str, &[u8; 32]), &[u8]> = TableDefinition::new("index");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// Opens a store's database with redb, beside the store, as an admin would.
fn raw_db(dir: &Path) -> redb::Database {
    Builder::new()
        .set_concurrency_mode(ConcurrencyMode::MultiWriter)
        .open(dir.join("meta.redb"))
        .unwrap()
}

/// A store with user `ann`, her index entry `[1; 32]`, and a finished scrub.
fn populated(dir: &Path) -> Store {
    let store = open(dir);
    store.add_user("ann", &user_record(1, None)).unwrap();
    store
        .put_index(
            "ann",
            &IndexEntry {
                name: [1; 32],
                version: 1,
                data: b"x".to_vec(),
            },
        )
        .unwrap();
    store.scrub(&cairn_store::ScrubOptions::default()).unwrap();
    store
}

/// The format each kind of record is written in now: user, index entry,
/// last scrub.
const CURRENT_FORMATS: [u8; 3] = [1, 2, 1];

/// Replaces the first byte (the format) of every stored record: the user's
/// with `formats[0]`, the index entry's with `formats[1]`, the last
/// scrub's with `formats[2]`.
fn set_formats(dir: &Path, formats: [u8; 3]) {
    let db = raw_db(dir);
    let txn = db.begin_write().unwrap();
    {
        let mut users = txn.open_table(USERS).unwrap();
        let mut value = users.get("ann").unwrap().unwrap().value().to_vec();
        value[0] = formats[0];
        users.insert("ann", value.as_slice()).unwrap();

        let mut index = txn.open_table(INDEX).unwrap();
        let key = ("ann", &[1u8; 32]);
        let mut value = index.get(key).unwrap().unwrap().value().to_vec();
        value[0] = formats[1];
        index.insert(key, value.as_slice()).unwrap();

        let mut meta = txn.open_table(META).unwrap();
        let mut value = meta.get("last_scrub").unwrap().unwrap().value().to_vec();
        value[0] = formats[2];
        meta.insert("last_scrub", value.as_slice()).unwrap();
    }
    txn.commit().unwrap();
}

/// Whether `err` says that `table`'s record `key` is in format 99, newer
/// than the table's current one.
fn is_unknown_version(err: &RecordError, table: &str, key: &str) -> bool {
    let current = match table {
        "users" => CURRENT_FORMATS[0],
        "index" => CURRENT_FORMATS[1],
        _ => CURRENT_FORMATS[2],
    };
    matches!(
        err,
        RecordError::UnknownVersion { table: t, key: k, found: 99, supported }
            if *t == table && k == key && *supported == current
    )
}

#[test]
fn records_in_an_unknown_format_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = populated(dir.path());
    set_formats(dir.path(), [99; 3]);
    let admin = Admin::open(dir.path()).unwrap();
    let entry_key = format!("ann/{}", "01".repeat(32));

    // Users: through the store and the admin alike.
    for err in [
        store.user("ann").unwrap_err(),
        admin.user("ann").unwrap_err(),
    ] {
        let QueryError::Record(record) = &err else {
            panic!("expected a record error, got {err:?}");
        };
        assert!(is_unknown_version(record, "users", "ann"), "{record:?}");
        let message = err.to_string();
        assert!(message.contains("format version 99"), "{message}");
        assert!(message.contains("newer version"), "{message}");
    }
    assert!(matches!(
        admin.list_users().unwrap_err(),
        QueryError::Record(RecordError::UnknownVersion { found: 99, .. })
    ));
    // Setting the quota would rewrite a record it cannot read: refused.
    let err = admin.set_quota("ann", Some(1)).unwrap_err();
    assert!(
        matches!(&err, UserError::Record(r) if is_unknown_version(r, "users", "ann")),
        "{err:?}"
    );

    // Index entries.
    let err = store.get_index("ann", &[1; 32]).unwrap_err();
    assert!(
        matches!(&err, QueryError::Record(r) if is_unknown_version(r, "index", &entry_key)),
        "{err:?}"
    );
    assert!(matches!(
        store.list_index("ann", None, 10).unwrap_err(),
        QueryError::Record(_)
    ));
    let newer = IndexEntry {
        name: [1; 32],
        version: 2,
        data: b"y".to_vec(),
    };
    assert!(matches!(
        store.put_index("ann", &newer).unwrap_err(),
        IndexError::Record(_)
    ));
    assert!(matches!(
        store.delete_index("ann", &[1; 32]).unwrap_err(),
        IndexError::Record(_)
    ));

    // The last scrub.
    let err = admin.last_scrub().unwrap_err();
    assert!(
        matches!(&err, QueryError::Record(r) if is_unknown_version(r, "meta", "last_scrub")),
        "{err:?}"
    );

    // Nothing was overwritten or deleted along the way: put the format
    // back and everything reads as before.
    drop((store, admin));
    set_formats(dir.path(), CURRENT_FORMATS);
    let store = open(dir.path());
    assert_eq!(store.user("ann").unwrap(), Some(user_record(1, None)));
    assert_eq!(
        store.get_index("ann", &[1; 32]).unwrap().unwrap().data,
        b"x"
    );
    assert!(store.last_scrub().unwrap().is_some());
}

#[test]
fn a_truncated_record_is_malformed() {
    let dir = tempfile::tempdir().unwrap();
    let store = populated(dir.path());
    {
        let db = raw_db(dir.path());
        let txn = db.begin_write().unwrap();
        {
            let mut users = txn.open_table(USERS).unwrap();
            let value = users.get("ann").unwrap().unwrap().value().to_vec();
            users.insert("ann", &value[..10]).unwrap();
            users.insert("bob", &[][..]).unwrap();
        }
        txn.commit().unwrap();
    }
    for name in ["ann", "bob"] {
        let err = store.user(name).unwrap_err();
        assert!(
            matches!(&err, QueryError::Record(RecordError::Malformed { table: "users", key, .. }) if key == name),
            "{err:?}"
        );
        assert!(err.to_string().contains("malformed"), "{err}");
    }
}
