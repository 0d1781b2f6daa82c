//! Helpers shared by the integration tests: opening stores and looking at
//! what they left on disk, behind the store's back.

// Each test file uses its own subset of these helpers.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use cairn_core::Id;
use cairn_store::{Store, StoreOptions, UserRecord};

/// Opens a store with the production options (fsync on).
pub fn open(dir: &Path) -> Store {
    Store::open(dir, StoreOptions::default()).expect("store opens")
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

/// Where the store keeps shard `id`, computed independently of the store.
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
