//! Helpers shared by the integration tests: opening stores and looking at
//! what they left on disk, behind the store's back.

// Each test file uses its own subset of these helpers.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use cairn_core::Id;
use cairn_store::{ShardPlace, Store, StoreOptions, UserRecord};

/// Damage to a shard's bytes in either layout: `cairn-testing`'s module,
/// included by path since this crate's tests cannot depend on
/// `cairn-testing` (which depends on this crate).
#[path = "../../../cairn-testing/src/damage.rs"]
pub mod damage;

/// Where a store writes new shards: appended to segment files (the
/// default), or one file each (the first layout, which every store still
/// reads). Tests of what happens to a shard's bytes run in both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Segments,
    Files,
}

/// Both layouts, the default first.
pub const LAYOUTS: [Layout; 2] = [Layout::Segments, Layout::Files];

/// Opens a store with the production options (fsync on), writing new
/// shards to segments (the default).
pub fn open(dir: &Path) -> Store {
    Store::open(dir, StoreOptions::default()).expect("store opens")
}

/// Opens a store with the production options, writing new shards in
/// `layout`.
pub fn open_in(dir: &Path, layout: Layout) -> Store {
    let options = StoreOptions::default().with_segments(layout == Layout::Segments);
    Store::open(dir, options).expect("store opens")
}

/// Where shard `id`'s bytes are in `store`, which must have them.
pub fn place(store: &Store, id: &Id) -> ShardPlace {
    store
        .shard_place(id)
        .unwrap()
        .unwrap_or_else(|| panic!("shard {id} has no bytes here"))
}

/// The shards of the store in `dir` that have bytes on disk (files and
/// live segment records), in id order.
pub fn stored_ids(dir: &Path) -> Vec<Id> {
    damage::shards(dir).into_iter().map(|(id, _)| id).collect()
}

/// A user record with `quota`, its salt and hash made from `seed`.
pub fn user_record(seed: u8, quota: Option<u64>) -> UserRecord {
    UserRecord {
        salt: [seed; 16],
        auth_hash: [seed.wrapping_add(1); 32],
        quota,
        created_unix: 1_700_000_000 + u64::from(seed),
    }
}

/// Seeded, incompressible shard bytes and their id.
pub fn shard(seed: u64, len: usize) -> (Id, Vec<u8>) {
    let bytes = testdata::seeded_bytes(seed, len);
    (Id::of(&bytes), bytes)
}

/// Where the store keeps shard `id` in the first layout (a file of its
/// own), computed independently of the store: for tests of that layout.
pub fn shard_path(dir: &Path, id: &Id) -> PathBuf {
    let hex = id.to_string();
    dir.join("shards")
        .join(&hex[..2])
        .join(&hex[2..4])
        .join(hex)
}

/// Every file (not directory) under `path`, recursively, sorted.
pub fn files_under(path: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![path.to_owned()];
    while let Some(dir) = todo.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                todo.push(entry.path());
            } else {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    out
}

/// The bytes of every segment file in the store in `dir`, together: what a
/// put that must write nothing must not make grow.
pub fn segment_bytes(dir: &Path) -> u64 {
    match fs::read_dir(dir.join("segments")) {
        Ok(_) => files_under(&dir.join("segments"))
            .iter()
            .map(|path| fs::metadata(path).unwrap().len())
            .sum(),
        Err(_) => 0,
    }
}

/// The entries of the store's `tmp/` directory.
pub fn tmp_entries(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<_> = fs::read_dir(dir.join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    out.sort();
    out
}

/// The files in the store's `quarantine/` directory.
pub fn quarantined(dir: &Path) -> Vec<PathBuf> {
    files_under(&dir.join("quarantine"))
}

/// Index entry record format 1, as schema version 2 and before wrote it:
/// the format byte 1, the version and the data's length as varints
/// (LEB128), then the data. Written out here rather than with the crate's
/// code, so that the old format stays pinned whatever the crate does.
pub fn index_record_v1(version: u64, data: &[u8]) -> Vec<u8> {
    let mut out = vec![1];
    push_varint(&mut out, version);
    push_varint(&mut out, data.len() as u64);
    out.extend_from_slice(data);
    out
}

fn push_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

const META: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");
const INDEX: redb::TableDefinition<(&str, &[u8; 32]), &[u8]> = redb::TableDefinition::new("index");

/// Turns the database of the closed store in `dir` back into what schema
/// version 2 wrote: every index entry in record format 1 (its folder,
/// summary length and sequence number dropped), no `folder_entries` or
/// `changes` table, no feed keys in `meta`, version 2 recorded. Then `extra` more
/// format 1 entries `(user, name, version, data)` are written straight into
/// the index, in the same transaction: a quick way to a large old store.
pub fn rewrite_as_schema_2(dir: &Path, extra: &[(&str, [u8; 32], u64, Vec<u8>)]) {
    let db = redb::Database::create(dir.join("meta.redb")).unwrap();
    let txn = db.begin_write().unwrap();
    {
        use redb::ReadableTable;
        let mut index = txn.open_table(INDEX).unwrap();
        let rows: Vec<(String, [u8; 32], Vec<u8>)> = index
            .iter()
            .unwrap()
            .map(|row| {
                let (key, value) = row.unwrap();
                let (user, name) = key.value();
                let record = cairn_store::index::decode(value.value(), user, name).unwrap();
                (
                    user.to_owned(),
                    *name,
                    index_record_v1(record.version, record.data),
                )
            })
            .collect();
        for (user, name, value) in &rows {
            index
                .insert((user.as_str(), name), value.as_slice())
                .unwrap();
        }
        for (user, name, version, data) in extra {
            let value = index_record_v1(*version, data);
            index.insert((*user, name), value.as_slice()).unwrap();
        }
        assert!(txn.delete_table(FOLDER_ENTRIES).unwrap());
        let changes: redb::TableDefinition<(&str, u64), &[u8; 32]> =
            redb::TableDefinition::new("changes");
        assert!(txn.delete_table(changes).unwrap());
        let mut meta = txn.open_table(META).unwrap();
        assert!(meta.remove("feed_id").unwrap().is_some());
        assert!(meta.remove("next_seq").unwrap().is_some());
        meta.insert("schema_version", 2u64.to_be_bytes().as_slice())
            .unwrap();
    }
    txn.commit().unwrap();
}

/// Schema version 4's rows of a folder's entries.
const FOLDER_ENTRIES: redb::TableDefinition<FolderKey, &[u8]> =
    redb::TableDefinition::new("folder_entries");

/// A folder row's key: `(user, folder tag, entry name)`.
type FolderKey = (&'static str, &'static [u8; 32], &'static [u8; 32]);

/// Turns the database of the closed store in `dir` back into what schema
/// version 3 wrote: a `folders` table of keys only in place of
/// `folder_entries`, version 3 recorded; index records, the `changes`
/// table and the feed as they are.
pub fn rewrite_as_schema_3(dir: &Path) {
    use redb::ReadableTable;
    let folders: redb::TableDefinition<(&str, &[u8; 32], &[u8; 32]), ()> =
        redb::TableDefinition::new("folders");
    let db = redb::Database::create(dir.join("meta.redb")).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let keys: Vec<(String, [u8; 32], [u8; 32])> = txn
            .open_table(FOLDER_ENTRIES)
            .unwrap()
            .iter()
            .unwrap()
            .map(|row| {
                let (key, _) = row.unwrap();
                let (user, folder, name) = key.value();
                (user.to_owned(), *folder, *name)
            })
            .collect();
        let mut table = txn.open_table(folders).unwrap();
        for (user, folder, name) in &keys {
            table.insert((user.as_str(), folder, name), ()).unwrap();
        }
    }
    assert!(txn.delete_table(FOLDER_ENTRIES).unwrap());
    txn.open_table(META)
        .unwrap()
        .insert("schema_version", 3u64.to_be_bytes().as_slice())
        .unwrap();
    txn.commit().unwrap();
}

/// The schema version recorded in the database of the closed store in
/// `dir` (8 bytes, big-endian), read with redb; `None` if there is none, or
/// no `meta` table at all.
pub fn recorded_version(dir: &Path) -> Option<u64> {
    use redb::ReadableDatabase;
    let db = redb::Database::open(dir.join("meta.redb")).unwrap();
    let txn = db.begin_read().unwrap();
    let table = match txn.open_table(META) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return None,
        Err(e) => panic!("{e}"),
    };
    let value = table.get("schema_version").unwrap()?;
    Some(u64::from_be_bytes(value.value().try_into().unwrap()))
}
