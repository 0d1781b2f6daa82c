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
