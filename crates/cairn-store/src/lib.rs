//! cairn-store: a node's disk.
//!
//! A [`Store`] keeps shards (opaque byte strings named by their BLAKE3
//! [`Id`]) in a directory, together with a metadata database that records
//! which user references which shard and how many bytes each user holds.
//!
//! ```text
//! <dir>/shards/ab/cd/<id>   the shards (see the `shards` module docs)
//! <dir>/tmp/                writes in progress, deleted at open
//! <dir>/quarantine/         shard files that failed their hash
//! <dir>/meta.redb           references and usage (see the `meta` module docs)
//! ```
//!
//! # Guarantees
//!
//! - **Verified both ways.** A put whose bytes do not hash to the id is
//!   refused before anything is written; a get re-hashes the file and
//!   returns [`GetError::Corrupt`] rather than bad bytes (see
//!   [`Damage`]).
//! - **Atomic.** A shard becomes visible by a rename once its bytes are on
//!   disk; temporary files left by a crash are deleted at the next open.
//! - **Reference counted.** Each user references a shard at most once; the
//!   file is deleted with its last reference. A user's usage is the sum of
//!   the lengths of their references, and quotas are checked against it: a
//!   shared shard counts fully for each holder, since each could keep it
//!   alone.
//! - **No path from outside.** Paths are built from [`Id`]s only, and the
//!   API takes `&Id`, never a string: `"../../etc/passwd"` fails to parse
//!   as an `Id` long before it could reach the store.
//!
//! # Concurrency and crashes
//!
//! `Store` is `Send + Sync` and every method takes `&self`. Operations on
//! one id are serialised by a striped lock held from the database commit
//! to the rename or unlink that goes with it; other ids proceed in
//! parallel, apart from the database's single writer.
//!
//! A put commits the reference *before* renaming the file into place, and a
//! drop commits *before* unlinking. A crash in between leaves a reference
//! to a missing file (reads say `NotFound`; the unacknowledged client
//! retries, which writes the file) or a file nobody references. Neither
//! exposes wrong bytes, and [`Store::scrub`] reports the first (`missing`)
//! and deletes the second.
//!
//! # Example
//!
//! ```
//! use cairn_store::{DropOutcome, Id, Store, StoreOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(dir.path(), StoreOptions::default())?;
//!
//! let shard = b"some sealed, erasure-coded bytes";
//! let id = Id::of(shard);
//! store.put("alice", &id, shard, None)?;
//! assert_eq!(store.get(&id)?, shard);
//! assert_eq!(store.usage("alice")?, shard.len() as u64);
//!
//! assert_eq!(store.drop_ref("alice", &id)?, DropOutcome::Deleted);
//! assert!(!store.contains(&id));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod meta;
pub mod scrub;
mod shards;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::{fs, io};

pub use cairn_core::Id;

pub use crate::error::{DeleteError, DropError, GetError, OpenError, PutError, QueryError};
pub use crate::scrub::{ScrubError, ScrubOptions, ScrubReport};
pub use crate::shards::{Damage, MAX_SHARD_LEN, Shards};

use crate::meta::{Added, Meta, Removed};
use crate::shards::{Checked, FileError, ShardFiles};

/// How a [`Store`] is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreOptions {
    /// Whether to flush every write to disk (`fsync` of files and
    /// directories, durable database commits) before reporting success.
    /// Default: `true`.
    ///
    /// `false` is for tests and benchmarks only: a crash or power loss can
    /// then lose acknowledged shards and references, or keep a reference
    /// to a shard whose file was lost. It never makes a half-written file
    /// visible (the rename is still atomic), nor lets bad bytes be read.
    pub sync: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self { sync: true }
    }
}

impl StoreOptions {
    /// These options with [`sync`](Self::sync) set.
    #[must_use]
    pub fn with_sync(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }
}

/// What [`Store::put`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PutOutcome {
    /// The shard file was written by this call (it was not on disk before).
    pub stored: bool,
    /// The user did not reference the shard before this call; their usage
    /// grew by its length.
    pub newly_referenced: bool,
}

/// What [`Store::drop_ref`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropOutcome {
    /// The user held no reference to this shard; nothing changed.
    NotReferenced,
    /// The reference is gone; other users still hold the shard, so the
    /// file stays.
    Released,
    /// That was the last reference; the file has been deleted.
    Deleted,
}

/// Number of stripes of the per-id lock.
const LOCK_STRIPES: usize = 256;

/// A shard store in one directory. See the [crate docs](crate).
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    files: ShardFiles,
    meta: Meta,
    /// Per-id locks, striped by the id's first byte. Every change to a shard's references that can create or delete its
    /// file happens with its stripe held, from the database commit to the
    /// rename or unlink. Without it, a put could commit a reference, find
    /// the file present and skip writing it, while a concurrent drop of
    /// what was the last reference (having committed just before) unlinks
    /// the file: the put's reference would then point at nothing. With the
    /// lock, the put either sees the file gone (and writes it) or commits
    /// before the drop, which then sees a holder left and keeps the file.
    /// The same reasoning covers scrub deleting unreferenced files and
    /// quarantining damaged ones. Distinct ids sharing a stripe only wait
    /// for each other, which is harmless.
    locks: Box<[Mutex<()>; LOCK_STRIPES]>,
}

impl Store {
    /// Opens the store in `dir`, creating it if needed.
    ///
    /// Creates `shards/`, `tmp/`, `quarantine/` and `meta.redb` if missing,
    /// checks the database's schema version, and deletes everything left
    /// in `tmp/` by a crash. The database's file lock keeps a second store
    /// (in any process) off the directory while this one is open, which is
    /// also what makes cleaning `tmp/` safe.
    pub fn open(dir: impl AsRef<Path>, options: StoreOptions) -> Result<Self, OpenError> {
        let dir = dir.as_ref().to_owned();
        fs::create_dir_all(&dir).map_err(|source| OpenError::Io {
            path: dir.clone(),
            source,
        })?;
        // The database first: it takes the lock, and refuses an unknown
        // schema before any file is touched.
        let meta = Meta::open(&dir.join("meta.redb"), options.sync)?;
        let files = ShardFiles::open(&dir, options.sync)?;
        Ok(Self {
            dir,
            files,
            meta,
            locks: Box::new(std::array::from_fn(|_| Mutex::new(()))),
        })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores `bytes` as shard `id` and records that `user` references it.
    ///
    /// The bytes must hash to `id`. `quota`, in bytes, bounds the user's
    /// usage after the call; a shard the user already references costs
    /// nothing again. A shard already on disk only gains the reference (the
    /// file is not re-read; if it is damaged, the next get or scrub
    /// quarantines it and a later put writes it again). On any error
    /// nothing is left behind: no file, no reference, no usage change.
    pub fn put(
        &self,
        user: &str,
        id: &Id,
        bytes: &[u8],
        quota: Option<u64>,
    ) -> Result<PutOutcome, PutError> {
        if bytes.len() > MAX_SHARD_LEN {
            return Err(PutError::TooLarge {
                len: bytes.len(),
                max: MAX_SHARD_LEN,
            });
        }
        let actual = Id::of(bytes);
        if actual != *id {
            return Err(PutError::IdMismatch {
                expected: *id,
                actual,
            });
        }
        let len = bytes.len() as u64;
        // The write and fsync, the slow part, happen before taking the lock
        // so that puts of the same id do not queue behind each other's I/O.
        let mut staged = if self.files.exists(id)? {
            None
        } else {
            Some(self.files.stage(bytes)?)
        };

        let _guard = self.lock(id);
        let present = self.files.exists(id)?;
        if present {
            // Someone else installed it meanwhile: ours is redundant.
            staged = None;
        } else if staged.is_none() {
            // It was deleted since we looked; write it after all.
            staged = Some(self.files.stage(bytes)?);
        }
        let added = self
            .meta
            .add_ref(user, id, len, quota)
            .map_err(PutError::from_database)?;
        let newly_referenced = match added {
            Added::New => true,
            Added::AlreadyHeld => false,
            Added::OverQuota { usage } => {
                return Err(PutError::QuotaExceeded {
                    user: user.to_owned(),
                    usage,
                    quota: quota.unwrap_or(u64::MAX),
                    needed: len,
                });
            }
        };
        let Some(staged) = staged else {
            return Ok(PutOutcome {
                stored: false,
                newly_referenced,
            });
        };
        if let Err(e) = self.files.install(staged, id) {
            if newly_referenced {
                // Take back the reference so the failed put leaves nothing.
                // If this fails too, the reference points at a missing file:
                // the state a crash here would leave, reported by scrub.
                let _ = self.meta.remove_ref(user, id);
            }
            return Err(e.into());
        }
        Ok(PutOutcome {
            stored: true,
            newly_referenced,
        })
    }

    /// The bytes of shard `id`, verified against it.
    ///
    /// A damaged file is moved to `quarantine/` and reported as
    /// [`GetError::Corrupt`]; after that the shard reads as
    /// [`GetError::NotFound`] until it is put again.
    pub fn get(&self, id: &Id) -> Result<Vec<u8>, GetError> {
        match self.files.read(id, &mut |_| {})? {
            Checked::Intact(bytes) => Ok(bytes),
            Checked::Missing => Err(GetError::NotFound { id: *id }),
            Checked::Damaged(_) => match self.quarantine_if_damaged(id, &mut |_| {})? {
                (Checked::Intact(bytes), _) => Ok(bytes),
                (Checked::Missing, _) => Err(GetError::NotFound { id: *id }),
                (Checked::Damaged(damage), quarantined) => Err(GetError::Corrupt {
                    id: *id,
                    damage,
                    quarantined,
                }),
            },
        }
    }

    /// Whether a file for shard `id` is on disk (not read, not checked; an
    /// error looking counts as absent).
    pub fn contains(&self, id: &Id) -> bool {
        self.files.exists(id).unwrap_or(false)
    }

    /// Whether `user` references shard `id`.
    pub fn has_ref(&self, user: &str, id: &Id) -> Result<bool, QueryError> {
        Ok(self.meta.has_ref(user, id)?)
    }

    /// Drops `user`'s reference to shard `id`, deleting the file if it was
    /// the last one. A user can only drop their own references.
    pub fn drop_ref(&self, user: &str, id: &Id) -> Result<DropOutcome, DropError> {
        let _guard = self.lock(id);
        Ok(match self.meta.remove_ref(user, id)? {
            Removed::NotReferenced => DropOutcome::NotReferenced,
            Removed::OthersRemain => DropOutcome::Released,
            Removed::LastHolder => {
                self.files.remove(id)?;
                DropOutcome::Deleted
            }
        })
    }

    /// Removes shard `id` outright: every user's reference (lowering their
    /// usage) and the file. For operators; users drop references with
    /// [`drop_ref`](Self::drop_ref). Returns whether there was anything to
    /// remove.
    pub fn delete(&self, id: &Id) -> Result<bool, DeleteError> {
        let _guard = self.lock(id);
        let refs = self.meta.remove_all_refs(id)?;
        let file = self.files.remove(id)?;
        Ok(refs > 0 || file)
    }

    /// The bytes `user` references: the sum of the lengths of their shards.
    pub fn usage(&self, user: &str) -> Result<u64, QueryError> {
        Ok(self.meta.usage(user)?)
    }

    /// Every user holding at least one reference, with their usage in
    /// bytes, in name order.
    pub fn users(&self) -> Result<Vec<(String, u64)>, QueryError> {
        Ok(self.meta.users()?)
    }

    /// The ids of the shard files on disk, in no particular order. Files
    /// are listed, not read; see [`Shards`] for what is skipped.
    pub fn iter(&self) -> Shards {
        self.files.iter()
    }

    /// The number of shard files on disk, by walking them all.
    pub fn shard_count(&self) -> io::Result<u64> {
        self.iter().try_fold(0, |n, id| id.map(|_| n + 1))
    }

    /// Re-reads and re-hashes every shard, quarantines damaged ones,
    /// deletes files no user references, and lists referenced shards
    /// without a file. See the [`scrub`] module for details.
    pub fn scrub(&self, options: &ScrubOptions) -> Result<ScrubReport, ScrubError> {
        scrub::run(self, options)
    }

    /// Locks id `id`'s stripe; see the `locks` field for why.
    fn lock(&self, id: &Id) -> MutexGuard<'_, ()> {
        let stripe = usize::from(id.as_bytes()[0]) % LOCK_STRIPES;
        // The mutex guards no data, so a panic elsewhere cannot have left
        // anything half-updated behind it: ignore the poison.
        self.locks[stripe]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Re-reads shard `id` under its lock and, if it is still damaged,
    /// moves it to quarantine. Returns the re-read's result and, for a
    /// damaged file, where it went (`None` if the move failed).
    ///
    /// The re-read guards against quarantining a good file that replaced
    /// the damaged one since the caller's unlocked read.
    fn quarantine_if_damaged(
        &self,
        id: &Id,
        on_block: &mut dyn FnMut(u64),
    ) -> Result<(Checked, Option<PathBuf>), FileError> {
        let _guard = self.lock(id);
        let checked = self.files.read(id, on_block)?;
        let quarantined = match checked {
            Checked::Damaged(_) => self.files.quarantine(id).ok(),
            Checked::Intact(_) | Checked::Missing => None,
        };
        Ok((checked, quarantined))
    }

    /// Deletes shard `id`'s file if no user references it. Returns whether
    /// it did.
    fn remove_if_unreferenced(&self, id: &Id) -> Result<bool, ScrubError> {
        // Cheap unlocked check first; the locked one is what counts.
        if self.meta.is_held(id)? {
            return Ok(false);
        }
        let _guard = self.lock(id);
        if self.meta.is_held(id)? {
            return Ok(false);
        }
        Ok(self.files.remove(id)?)
    }

    /// Whether shard `id` is referenced but has no file, checked under its
    /// lock so that a put between its commit and its rename does not count.
    fn is_missing(&self, id: &Id) -> Result<bool, ScrubError> {
        if self.files.exists(id)? {
            return Ok(false);
        }
        let _guard = self.lock(id);
        Ok(self.meta.is_held(id)? && !self.files.exists(id)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Store>();
    }

    #[test]
    fn every_id_byte_has_a_stripe() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default().with_sync(false)).unwrap();
        for byte in 0..=255u8 {
            let mut bytes = [0u8; 32];
            bytes[0] = byte;
            drop(store.lock(&Id::from_bytes(bytes)));
        }
    }
}
