//! cairn-store: a node's disk.
//!
//! A [`Store`] keeps shards (opaque byte strings named by their BLAKE3
//! [`Id`]) in a directory, together with a metadata database that records
//! which user references which shard, how many bytes each user holds, the
//! node's user accounts and their index entries, and the last scrub.
//!
//! ```text
//! <dir>/segments/NNNNNNNN.seg  shards appended to segment files, with
//!                           `StoreOptions::segments`, the default (see the
//!                           `segment` module docs)
//! <dir>/shards/ab/cd/<id>   shards, one file each: the first layout, still
//!                           read (see the `shards` module docs)
//! <dir>/tmp/                writes in progress, deleted at open
//! <dir>/quarantine/         shard files and copies of segment records that
//!                           failed their hash or a read
//! <dir>/meta.redb           the metadata database (see the `meta` module docs)
//! <dir>/store.lock          locked by the one Store using the directory
//! ```
//!
//! # Guarantees
//!
//! - **Verified both ways.** A put whose bytes do not hash to the id is
//!   refused before anything is written; a get re-hashes the file and
//!   returns [`GetError::Corrupt`] rather than bad bytes (see
//!   [`Damage`]), as it does for a file that cannot be read at all. A put
//!   over a damaged file replaces it ([`PutOutcome::repaired`]). With
//!   [`StoreOptions::verify_writes`] (the default) every file written is
//!   read back from the device and compared before the put succeeds.
//! - **Lost is not claimed.** A shard whose bytes are gone (its file
//!   deleted, its record overwritten or cut off) keeps its references (a
//!   repair's put restores it at no quota cost, and every scrub lists it as
//!   missing until then), but [`Store::is_present`] says it is not here.
//! - **Atomic.** A shard becomes visible by a rename once its bytes are on
//!   disk, or, in a segment, by the commit that records its location once
//!   its record is flushed; temporary files left by a crash are deleted at
//!   the next open.
//! - **Reference counted.** Each user references a shard at most once; the
//!   file is deleted with its last reference. A user's usage is the sum of
//!   the lengths of their references, and quotas are checked against it: a
//!   shared shard counts fully for each holder, since each could keep it
//!   alone.
//! - **Users are isolated.** Every operation on a user's references, usage
//!   or [index entries](index) takes the user's name, and every key it
//!   touches starts with that name.
//! - **No path from outside.** Paths are built from [`Id`]s only, and the
//!   API takes `&Id`, never a string: `"../../etc/passwd"` fails to parse
//!   as an `Id` long before it could reach the store. User names and index
//!   entry names are database keys, never paths.
//!
//! # One store, many administrators
//!
//! A directory is used by at most one [`Store`] at a time, in any process:
//! [`Store::open`] takes an exclusive lock on `store.lock` and holds it
//! until the store is dropped, and a second open fails with
//! [`OpenError::Locked`]. That exclusivity is what lets the store empty
//! `tmp/` at open and delete or quarantine files under locks that live in
//! its own memory. The lock is the operating system's (`flock` on Unix),
//! so it goes with the process, however that ends: no stale lock file to
//! clean up after a crash.
//!
//! An [`Admin`] opens only the metadata database, which redb shares between
//! processes, and never touches a shard file or `tmp/`. Any number can run
//! beside a running node's store (the `cairn node user …` and `status`
//! commands), and what each commits is visible to the others at once. See
//! [`Admin`] for what that means for removing a user.
//!
//! # Concurrency and crashes
//!
//! `Store` is `Send + Sync` and every method takes `&self`. Operations on
//! one id are serialised by a striped lock held from the database commit
//! to the rename or unlink that goes with it; other ids proceed in
//! parallel, apart from the database's single writer (which is shared with
//! any [`Admin`]s in other processes). Concurrent puts, drops and index
//! writes share that writer's commits: whatever is queued while one
//! commit runs goes into the next, one transaction and one flush for all
//! (group commit; see the `meta` module docs). Each still learns its own
//! outcome, a put refused for quota among them, and only once the commit
//! is durable. Only the commit is shared: a put still holds its id's lock
//! while it waits for the commit and until its rename, so everything said
//! here of one put holds of each put in a batch.
//!
//! A put commits the reference *before* renaming the file into place, and a
//! drop commits *before* unlinking. A crash in between leaves a reference
//! to a missing file (reads say `NotFound`; the unacknowledged client
//! retries, which writes the file) or a file nobody references. Neither
//! exposes wrong bytes, and [`Store::scrub`] reports the first (`missing`)
//! and deletes the second (once it is an hour old: see
//! [`ScrubOptions::unreferenced_grace`]).
//!
//! Since unreferenced files are deleted, and segments without live records
//! too, the database must never be replaced by an empty one while shards
//! exist: [`Store::open`] refuses to create `meta.redb` when `shards/`
//! holds any shard file or `segments/` any record
//! ([`OpenError::MetadataMissing`]).
//!
//! # Example
//!
//! ```
//! use cairn_store::{Admin, DropOutcome, Id, Store, StoreOptions, UserRecord};
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
//! // An operator's command, meanwhile, in another process.
//! let admin = Admin::open(dir.path())?;
//! let record = UserRecord {
//!     salt: [1; 16],
//!     auth_hash: [2; 32],
//!     quota: Some(1 << 30),
//!     created_unix: 1_700_000_000,
//! };
//! admin.add_user("bob", &record)?;
//! assert_eq!(store.user("bob")?, Some(record));
//!
//! assert_eq!(store.drop_ref("alice", &id)?, DropOutcome::Deleted);
//! assert!(!store.contains(&id));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod admin;
mod commit;
pub mod compact;
mod error;
pub mod index;
mod meta;
pub mod migrate;
mod pace;
mod record;
pub mod scrub;
mod segment;
mod shards;
pub mod users;

use std::fs::{File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

pub use cairn_core::Id;

pub use crate::admin::Admin;
pub use crate::compact::{CompactError, CompactOptions, CompactReport};
pub use crate::error::{
    DeleteError, DropError, GetError, IndexError, MigrateError, OpenError, PutError, QueryError,
    RecordError, UserError,
};
pub use crate::index::{
    ChangePage, ChangedEntry, FolderTag, IndexEntry, IndexPut, LEGACY_FOLDER, MAX_INDEX_ENTRY_LEN,
    MAX_SUMMARY_LEN,
};
pub use crate::meta::Metadata;
pub use crate::migrate::{MigrateOptions, MigrateReport};
pub use crate::pace::Stop;
pub use crate::scrub::{
    DamagedShard, ScrubError, ScrubOptions, ScrubRecord, ScrubReport, ScrubStop,
};
pub use crate::shards::{Damage, MAX_SHARD_LEN, Shards};
pub use crate::users::{
    InvalidNameReason, MAX_USER_NAME_LEN, RemovedUser, UserRecord, check_user_name,
};

use crate::meta::{Added, Opening, Removed, Stored};
use crate::segment::{Location, Segments};
use crate::shards::{
    Checked, FileError, OnDisk, ShardFileIds, ShardFiles, create_dir_durably, parent_of, sync_dir,
};

/// The number of shards in the store directory `dir`, in both layouts:
/// [`Admin::shard_count`](Metadata::shard_count) of an `Admin` opened on
/// `dir` for the purpose.
///
/// Shard files are counted by walking `dir/shards/`, records in segments
/// from the metadata database, which is shared between processes. No
/// shard is read or checked (a damaged shard counts until a read or scrub
/// quarantines it), and nothing is locked, so this is safe while a node
/// runs, and counts shards written or removed meanwhile or not. What
/// [`Shards`] skips is not counted. Fails if `dir` is not a store
/// (no initialised `meta.redb`), or if `shards/` cannot be listed.
pub fn count_shards(dir: impl AsRef<Path>) -> io::Result<u64> {
    Admin::open(dir).map_err(io::Error::other)?.shard_count()
}

/// The number of shard files (the first layout) in the store directory
/// `dir`, by walking `dir/shards/`; records in segments are not counted.
/// Only lists directories, so it needs no database.
pub(crate) fn count_shard_files(dir: &Path) -> io::Result<u64> {
    ShardFileIds::in_dir(&dir.join("shards")).try_fold(0, |n, id| id.map(|_| n + 1))
}

/// How a [`Store`] is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreOptions {
    /// Whether to flush shard files and their directories to disk (`fsync`)
    /// before reporting success. Default: `true`.
    ///
    /// `false` is for tests and benchmarks only: a crash or power loss can
    /// then lose acknowledged shards, leaving a reference to a shard whose
    /// file was lost. It never makes a half-written file visible (the
    /// rename is still atomic), nor lets bad bytes be read.
    ///
    /// Database commits are durable either way: the database is shared
    /// with other processes (see [`Admin`]), and redb refuses commits held
    /// only in one process's memory, which the others could not see.
    pub sync: bool,
    /// Whether to read every shard file back after writing (and, with
    /// [`sync`](Self::sync), flushing) it, and compare it with the bytes
    /// written, before the put may succeed. Default: `true`.
    ///
    /// This distrusts the disk: one that silently stores other bytes than
    /// it was given fails the put ([`PutError::Unverified`]) instead of
    /// acknowledging a shard that no read will ever return. Before the
    /// read, the file's pages are dropped from the page cache where the
    /// system allows it (`posix_fadvise`, Linux and FreeBSD), so the bytes
    /// come from the device; elsewhere, and without `sync`, they may come
    /// from memory. It costs one read of every shard written.
    pub verify_writes: bool,
    /// Whether new shards are appended to segment files (issue 17's
    /// layout; see the `segment` module docs) rather than written one file
    /// each under `shards/` (the first layout). Default: `true`.
    ///
    /// Either way the store reads, checks, drops, scrubs, lists and counts
    /// shards of both layouts, so a store can be opened with either
    /// setting at any time; [`Store::migrate`] moves shard files into
    /// segments.
    pub segments: bool,
    /// Whether segment appends are written with direct I/O (`O_DIRECT`),
    /// past the page cache, where the file system takes it. Default:
    /// `true`. A file system that refuses it gets buffered writes either
    /// way; `false` is for comparing the two.
    pub direct_io: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            sync: true,
            verify_writes: true,
            segments: true,
            direct_io: true,
        }
    }
}

impl StoreOptions {
    /// These options with [`sync`](Self::sync) set.
    #[must_use]
    pub fn with_sync(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }

    /// These options with [`segments`](Self::segments) set.
    #[must_use]
    pub fn with_segments(mut self, segments: bool) -> Self {
        self.segments = segments;
        self
    }

    /// These options with [`direct_io`](Self::direct_io) set.
    #[must_use]
    pub fn with_direct_io(mut self, direct: bool) -> Self {
        self.direct_io = direct;
        self
    }

    /// These options with [`verify_writes`](Self::verify_writes) set.
    #[must_use]
    pub fn with_verify_writes(mut self, verify: bool) -> Self {
        self.verify_writes = verify;
        self
    }
}

/// What [`Store::put`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PutOutcome {
    /// The shard file was written by this call: it was not on disk before,
    /// or it was damaged (see [`repaired`](Self::repaired)).
    pub stored: bool,
    /// The user did not reference the shard before this call; their usage
    /// grew by its length.
    pub newly_referenced: bool,
    /// A damaged (or unreadable) file was on disk under this id: it was
    /// moved to quarantine and replaced by the bytes of this call. Implies
    /// [`stored`](Self::stored).
    pub repaired: bool,
}

/// Where a shard's bytes are in the segment layout: for tests and
/// operators who need to look at (or, in tests, damage) them. See
/// [`Metadata::shard_location`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShardLocation {
    /// The segment file.
    pub path: PathBuf,
    /// Offset of the shard's first byte in it (past the record header).
    pub offset: u64,
    /// The shard's length in bytes.
    pub len: u64,
    /// Offset of the shard's record in the segment: its header, which
    /// names the shard and its length, then the shard's bytes, then zero
    /// padding. Records start at multiples of 4096 bytes.
    pub record_offset: u64,
    /// Length of the whole record (header, shard, padding): the bytes no
    /// other shard shares.
    pub record_len: u64,
}

/// Where a shard's bytes are on disk, in either layout: the bytes a
/// [`Store::get`] reads and checks. See [`Metadata::shard_place`].
///
/// For operators who want to look at a shard, and for tests that damage
/// one behind the store's back. A place is a snapshot: a put, drop,
/// migration or compaction may move or remove the bytes right after.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShardPlace {
    /// A shard file of its own (the first layout): the whole file is the
    /// shard, and no other shard's bytes are in it.
    File(PathBuf),
    /// A record in a segment file, which other shards' records share.
    Segment(ShardLocation),
}

impl ShardPlace {
    /// The file holding the shard's bytes (for a segment, shared with
    /// other shards).
    pub fn path(&self) -> &Path {
        match self {
            Self::File(path) => path,
            Self::Segment(location) => &location.path,
        }
    }
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

/// What [`Store::remove_if_unreferenced`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unreferenced {
    /// Someone references the shard: the file stays.
    Held,
    /// Nobody does, but the file is younger than the grace period: it
    /// stays for now.
    Young,
    /// Nobody does, and the file was deleted.
    Removed,
    /// There was no file.
    Absent,
}

/// Number of stripes of the per-id lock.
const LOCK_STRIPES: usize = 256;

/// A shard store in one directory. See the [crate docs](crate).
///
/// Besides shards, a store answers everything an [`Admin`] does (users,
/// index entries, usage, the last scrub), with the same methods.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    files: ShardFiles,
    /// The segment files, read whatever the options; appended to only
    /// with [`StoreOptions::segments`].
    segments: Segments,
    /// [`StoreOptions::segments`].
    write_segments: bool,
    meta: Metadata,
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
    /// for each other, which is harmless. A commit shared with other
    /// changes (group commit) changes none of this: the stripe is held
    /// while the change waits for its batch, through the commit, to the
    /// rename or unlink, so no other change to the id can be in the batch.
    locks: Box<[Mutex<()>; LOCK_STRIPES]>,
    /// `store.lock`, locked exclusively for the store's lifetime; never
    /// read or written. It keeps any other store (in this process or
    /// another) off the directory, so that `tmp/` and the per-id `locks`
    /// above are this store's alone. Declared last so it is released only
    /// after the database and files are closed.
    _dir_lock: File,
}

/// The database questions and the user and index operations, shared with
/// [`Admin`] through one [`Metadata`] handle.
impl std::ops::Deref for Store {
    type Target = Metadata;

    fn deref(&self) -> &Metadata {
        &self.meta
    }
}

impl Store {
    /// Opens the store in `dir`, creating it if needed.
    ///
    /// Takes the exclusive lock on `store.lock` (failing with
    /// [`OpenError::Locked`] if another store, in any process, has the
    /// directory), creates `shards/`, `tmp/`, `quarantine/` and `meta.redb`
    /// if missing, checks the database's schema version, and deletes
    /// everything left in `tmp/` by a crash. Only a store writes to `tmp/`,
    /// and the lock makes this the only store, so nothing in there belongs
    /// to a write in progress.
    ///
    /// Refuses with [`OpenError::MetadataMissing`], changing nothing, when
    /// it would create `meta.redb` (missing, empty, or never written by
    /// cairn) while `shards/` holds shard files: the database was lost, and
    /// a new one would disown every shard.
    pub fn open(dir: impl AsRef<Path>, options: StoreOptions) -> Result<Self, OpenError> {
        let dir = dir.as_ref().to_owned();
        // A directory is durable once its parent is flushed. New ones are
        // flushed as they are created; an existing `dir` may have been
        // created by an open that died before flushing, so flush its
        // parent again, but only as a courtesy: the parent may not be ours
        // to open.
        create_dir_durably(&dir, options.sync)?;
        if options.sync
            && let Some(parent) = parent_of(&dir)
        {
            let _ = sync_dir(parent);
        }
        // The lock first, then the database, which refuses an unknown
        // schema before any shard directory is touched.
        let dir_lock = lock_dir(&dir)?;
        let meta = Metadata::open(&dir, Opening::CreateIfMissing)?;
        let files = ShardFiles::open(&dir, options.sync, options.verify_writes)?;
        let segments = Segments::open(
            &dir,
            segment::DEFAULT_SEGMENT_LEN,
            options.sync,
            options.verify_writes,
            options.direct_io,
        )
        .map_err(|source| FileError {
            path: dir.join("segments"),
            source,
        })?;
        let store = Self {
            dir,
            files,
            segments,
            write_segments: options.segments,
            meta,
            locks: Box::new(std::array::from_fn(|_| Mutex::new(()))),
            _dir_lock: dir_lock,
        };
        store.remove_dead_segments().map_err(|e| match e {
            CompactError::Database(e) => OpenError::from(e),
            CompactError::Io { path, source } => OpenError::from(FileError { path, source }),
        })?;
        Ok(store)
    }

    /// Stores `bytes` as shard `id` and records that `user` references it.
    ///
    /// The bytes must hash to `id`. `quota`, in bytes, bounds the user's
    /// usage after the call; a shard the user already references costs
    /// nothing again. The quota is checked before anything is written, and
    /// again, authoritatively, in the transaction that adds the reference.
    /// That transaction may be shared with concurrent puts (group commit):
    /// the check then counts the puts applied before this one in it, and a
    /// refusal refuses this put alone.
    ///
    /// Returns only once the reference is committed durably and the file
    /// is in place (flushed, with `sync`).
    ///
    /// A shard already on disk is compared with `bytes` under the id's
    /// lock: an intact file only gains the reference, and a damaged one is
    /// moved to quarantine and replaced by `bytes` (reported as
    /// [`PutOutcome::repaired`]). So a client that re-puts a shard to repair
    /// a node does repair it, whether or not a get or scrub has found the
    /// damage yet.
    ///
    /// On any error nothing is left behind: no file, no reference, no usage
    /// change. (A damaged file found on the way stays in quarantine, where a
    /// get would have put it.)
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
        let over_quota = |usage| PutError::QuotaExceeded {
            user: user.to_owned(),
            usage,
            quota: quota.unwrap_or(u64::MAX),
            needed: len,
        };
        // Refuse an over-quota user before writing (and fsyncing) up to
        // 64 MiB only to throw it away. A read transaction, so it does not
        // queue for the writer; the commit below checks again, and that
        // check is the one that counts.
        if let Some(quota) = quota
            && let Added::OverQuota { usage } = self
                .meta
                .would_add_ref(user, id, len, quota)
                .map_err(PutError::from_database)?
        {
            return Err(over_quota(usage));
        }
        if self.write_segments {
            return self.put_in_segment(user, id, bytes, quota);
        }
        // The write and fsync, the slow part, happen before taking the lock
        // so that puts of the same id do not queue behind each other's I/O.
        let mut staged = if self.files.exists(id)? {
            None
        } else {
            Some(self.files.stage(bytes)?)
        };

        let _guard = self.lock(id);
        // What is on disk now decides whether ours is needed. Comparing
        // with `bytes`, which hash to `id`, is re-hashing the file without
        // holding a second copy of it.
        let mut repaired = false;
        let needed = match self.files.compare(id, bytes)? {
            // Someone else installed it (or it was there all along).
            OnDisk::Same => false,
            OnDisk::Missing => true,
            OnDisk::Different => {
                // Damaged. Keep it for the operator; if the move fails, the
                // rename below replaces it, which matters more.
                let _ = self.files.quarantine(id);
                repaired = true;
                true
            }
        };
        if !needed {
            staged = None;
        } else if staged.is_none() {
            // Deleted or damaged since we looked: write it after all.
            staged = Some(self.files.stage(bytes)?);
        }
        let added = self
            .meta
            .add_ref(user, id, len, quota)
            .map_err(PutError::from_database)?;
        let newly_referenced = match added {
            Added::New => true,
            Added::AlreadyHeld => false,
            Added::OverQuota { usage } => return Err(over_quota(usage)),
        };
        let Some(staged) = staged else {
            return Ok(PutOutcome {
                stored: false,
                newly_referenced,
                repaired: false,
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
            repaired,
        })
    }

    /// The bytes of shard `id`, verified against it.
    ///
    /// A damaged file, or one that cannot be read, is moved to
    /// `quarantine/` and reported as [`GetError::Corrupt`]; after that the
    /// shard reads as [`GetError::NotFound`] until it is put again.
    pub fn get(&self, id: &Id) -> Result<Vec<u8>, GetError> {
        if let Some(Stored::Live(location)) = self.meta.location(id)? {
            match self.read_record(id, &location)? {
                Ok(bytes) => return Ok(bytes),
                Err(_) => {
                    let reread = self.quarantine_record_if_damaged::<GetError>(id, &mut |_| {})?;
                    return got(id, reread);
                }
            }
        }
        match self.files.read(id, &mut |_| {})? {
            Checked::Intact(bytes) => Ok(bytes),
            Checked::Missing => Err(GetError::NotFound { id: *id }),
            Checked::Damaged(_) => got(id, self.quarantine_if_damaged(id, &mut |_| {})?),
        }
    }

    /// Whether a file for shard `id` is on disk (not read, not checked; an
    /// error looking counts as absent).
    pub fn contains(&self, id: &Id) -> bool {
        matches!(self.meta.location(id), Ok(Some(Stored::Live(_))))
            || self.files.exists(id).unwrap_or(false)
    }

    /// Whether shard `id` is here, as far as can be told without reading
    /// it: a live record in a segment whose header still names the shard
    /// and its length and whose segment is long enough to hold it, or a
    /// file under its name of the length recorded when it was put. What a
    /// node answers when asked which shards it has.
    ///
    /// A record whose header is gone (overwritten) or that its segment no
    /// longer holds in full (a torn tail), or a file of another length
    /// (truncated, typically: shard files never change once in place), is
    /// damaged. It is re-read under the id's lock and, if still damaged,
    /// quarantined and reported as [`GetError::Corrupt`] (the shard is
    /// absent from then on). Damage that keeps the header and the length
    /// (flipped bits in the shard) is found only by reading: a
    /// [`get`](Self::get) or a [`scrub`](Self::scrub). A file nobody
    /// references has no recorded length and counts as present.
    ///
    /// This keeps a node from claiming a shard it has lost, on which a
    /// client's repair would otherwise rely, for the price of a read
    /// transaction and a `stat` (and, in a segment, a 64-byte read).
    pub fn is_present(&self, id: &Id) -> Result<bool, GetError> {
        if let Some(Stored::Live(location)) = self.meta.location(id)? {
            // A record is here as far as can be told without reading it if
            // its header still names it and the segment still holds all
            // of it. A record overwritten or cut off by a torn segment is
            // re-read in full, under the lock, and quarantined.
            if self.segments.looks_intact(id, &location) {
                return Ok(true);
            }
            return present(
                id,
                self.quarantine_record_if_damaged::<GetError>(id, &mut |_| {})?,
            );
        }
        let Some(len) = self.files.len(id)? else {
            return Ok(false);
        };
        match self.meta.held_len(id)? {
            None => return Ok(true),
            Some(recorded) if recorded == len => return Ok(true),
            Some(_) => {}
        }
        present(id, self.quarantine_if_damaged(id, &mut |_| {})?)
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

    /// Removes user `name`: in one transaction, their record, every
    /// reference they hold (their usage goes with them; other holders keep
    /// theirs) and all their index entries. Then deletes, each under its
    /// id's lock and only if still unreferenced, the files of the shards
    /// nobody holds any more.
    ///
    /// Also removes references and entries left under a name that has no
    /// record; fails with [`UserError::NoSuchUser`] only if there was
    /// nothing at all. If deleting a file fails, the user is removed
    /// nonetheless and [`UserError::Io`] is returned; the files left are
    /// deleted by a later [`scrub`](Self::scrub).
    pub fn remove_user(&self, name: &str) -> Result<RemovedUser, UserError> {
        let mut removed = self.meta.remove_user(name)?;
        for id in &removed.unheld {
            // A put may have referenced the shard again since the commit;
            // the check under the lock keeps its file.
            // No grace: these files were held a moment ago, not left by
            // a crash, and the user is gone.
            if self.remove_if_unreferenced::<UserError>(id, Duration::ZERO)?
                == Unreferenced::Removed
            {
                removed.files_deleted += 1;
            }
        }
        Ok(removed)
    }

    /// The ids of the shards here, in shard files and in segments, each
    /// once (as far as a walk beside concurrent changes can tell): files
    /// are listed and records looked up, nothing is read. See [`Shards`]
    /// for the order and what is skipped.
    pub fn iter(&self) -> Shards<'_> {
        self.meta.shards()
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

    /// [`put`](Self::put) in the segment layout, once the bytes and the
    /// quota are checked: under the id's lock, appends the bytes unless an
    /// intact copy is here (in a segment or, from before, in a file), then
    /// records the reference and the new record's location in one
    /// transaction. The append is durable (and read back) before that
    /// commit, so no reference ever names a record that could be lost; a
    /// put that fails after appending leaves only dead bytes, which a
    /// compaction reclaims.
    fn put_in_segment(
        &self,
        user: &str,
        id: &Id,
        bytes: &[u8],
        quota: Option<u64>,
    ) -> Result<PutOutcome, PutError> {
        let len = bytes.len() as u64;
        let _guard = self.lock(id);
        let mut repaired = false;
        let needed = match self.meta.location(id).map_err(PutError::from_database)? {
            Some(Stored::Live(location)) => match self.read_record(id, &location)? {
                // Intact: it hashes to `id`, as `bytes` do.
                Ok(_) => false,
                Err(_) => {
                    self.quarantine_record(id, &location)
                        .map_err(PutError::from_database)?;
                    repaired = true;
                    true
                }
            },
            Some(Stored::Quarantined(_)) | None => match self.files.compare(id, bytes)? {
                OnDisk::Same => false,
                OnDisk::Missing => true,
                OnDisk::Different => {
                    let _ = self.files.quarantine(id);
                    repaired = true;
                    true
                }
            },
        };
        let append = || {
            self.segments.append(id, bytes).map_err(|source| {
                let path = self.dir.join("segments");
                if source.kind() == io::ErrorKind::InvalidData {
                    PutError::Unverified { path }
                } else {
                    PutError::from(FileError { path, source })
                }
            })
        };
        let mut location = if needed { Some(append()?) } else { None };
        let added = self
            .meta
            .add_ref_at(user, id, len, quota, location)
            .map_err(PutError::from_database)?;
        // The id's lock keeps this process's drops out, but an `Admin` in
        // another process may remove a user, and with them the shard's last
        // reference and its record, between the look above and the commit.
        // Then the new reference names nothing: write the bytes after all
        // (recording the location against the reference just made).
        if location.is_none()
            && !matches!(added, Added::OverQuota { .. })
            && !matches!(
                self.meta.location(id).map_err(PutError::from_database)?,
                Some(Stored::Live(_))
            )
            && !self.files.exists(id)?
        {
            let appended = append()?;
            self.meta
                .add_ref_at(user, id, len, quota, Some(appended))
                .map_err(PutError::from_database)?;
            location = Some(appended);
        }
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
        Ok(PutOutcome {
            stored: location.is_some(),
            newly_referenced,
            repaired,
        })
    }

    /// Reads and verifies shard `id`'s record at `location`.
    fn read_record(
        &self,
        id: &Id,
        location: &Location,
    ) -> Result<Result<Vec<u8>, Damage>, FileError> {
        self.segments
            .read(id, location)
            .map_err(|source| FileError {
                path: self.segments.path(location.segment),
                source,
            })
    }

    /// Marks shard `id`'s record at `location` quarantined in the database
    /// (never served again; its bytes are dead) and copies what can be
    /// read of it to `quarantine/<id>.seg.<n>` for the operator. Returns
    /// the copy's path, `None` if copying failed: the mark is what counts.
    fn quarantine_record(
        &self,
        id: &Id,
        location: &Location,
    ) -> Result<Option<PathBuf>, redb::Error> {
        self.meta.quarantine_location(id)?;
        let copy = || -> io::Result<PathBuf> {
            let file = File::open(self.segments.path(location.segment))?;
            let end = file.metadata()?.len();
            let want = location
                .footprint()
                .min(end.saturating_sub(location.offset));
            let mut raw = vec![0; usize::try_from(want).map_err(io::Error::other)?];
            std::os::unix::fs::FileExt::read_exact_at(&file, &mut raw, location.offset)?;
            let hex = id.to_string();
            for n in 0u64.. {
                let path = self.dir.join("quarantine").join(format!("{hex}.seg.{n}"));
                match File::options().write(true).create_new(true).open(&path) {
                    Ok(mut out) => {
                        io::Write::write_all(&mut out, &raw)?;
                        return Ok(path);
                    }
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(e),
                }
            }
            Err(io::Error::other("no free quarantine name"))
        };
        Ok(copy().ok())
    }

    /// [`quarantine_if_damaged`](Self::quarantine_if_damaged) for a shard
    /// whose record was found damaged: re-reads it under the id's lock and,
    /// if the location is unchanged and still damaged, quarantines it.
    fn quarantine_record_if_damaged<E>(
        &self,
        id: &Id,
        on_block: &mut dyn FnMut(u64),
    ) -> Result<(Checked, Option<PathBuf>), E>
    where
        E: From<redb::Error> + From<FileError>,
    {
        let _guard = self.lock(id);
        let Some(Stored::Live(location)) = self.meta.location(id)? else {
            // Quarantined or dropped since: absent.
            return Ok((Checked::Missing, None));
        };
        let read = self.read_record(id, &location)?;
        on_block(location.len);
        Ok(match read {
            Ok(bytes) => (Checked::Intact(bytes), None),
            Err(damage) => {
                let quarantined = self.quarantine_record(id, &location)?;
                (Checked::Damaged(damage), quarantined)
            }
        })
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

    /// Deletes shard `id`'s file if no user references it and it was last
    /// modified at least `grace` ago.
    fn remove_if_unreferenced<E>(&self, id: &Id, grace: Duration) -> Result<Unreferenced, E>
    where
        E: From<redb::Error> + From<FileError>,
    {
        // Cheap unlocked check first; the locked one is what counts.
        if self.meta.is_held(id)? {
            return Ok(Unreferenced::Held);
        }
        let _guard = self.lock(id);
        if self.meta.is_held(id)? {
            return Ok(Unreferenced::Held);
        }
        if !grace.is_zero() {
            match self.files.age(id)? {
                None => return Ok(Unreferenced::Absent),
                Some(age) if age < grace => return Ok(Unreferenced::Young),
                Some(_) => {}
            }
        }
        Ok(if self.files.remove(id)? {
            Unreferenced::Removed
        } else {
            Unreferenced::Absent
        })
    }

    /// Whether shard `id` is referenced but has no file, checked under its
    /// lock so that a put between its commit and its rename does not count.
    fn is_missing(&self, id: &Id) -> Result<bool, ScrubError> {
        if self.files.exists(id)? || matches!(self.meta.location(id)?, Some(Stored::Live(_))) {
            return Ok(false);
        }
        let _guard = self.lock(id);
        Ok(self.meta.is_held(id)?
            && !self.files.exists(id)?
            && !matches!(self.meta.location(id)?, Some(Stored::Live(_))))
    }
}

/// Creates `dir/store.lock` if needed and locks it exclusively, without
/// waiting.
fn lock_dir(dir: &Path) -> Result<File, OpenError> {
    let path = dir.join("store.lock");
    let file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|source| OpenError::Io {
            path: path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(OpenError::Locked { path }),
        Err(TryLockError::Error(source)) => Err(OpenError::Io { path, source }),
    }
}

/// A get's answer from the locked re-read of a shard first read as
/// damaged: its bytes if a good copy replaced it meanwhile, absent, or
/// corrupt with where the damaged bytes went.
fn got(id: &Id, (checked, quarantined): (Checked, Option<PathBuf>)) -> Result<Vec<u8>, GetError> {
    match checked {
        Checked::Intact(bytes) => Ok(bytes),
        Checked::Missing => Err(GetError::NotFound { id: *id }),
        Checked::Damaged(damage) => Err(GetError::Corrupt {
            id: *id,
            damage,
            quarantined,
        }),
    }
}

/// [`Store::is_present`]'s answer from the locked re-read of a shard that
/// looked damaged: here if a good copy replaced it meanwhile, absent, or
/// corrupt with where the damaged bytes went.
fn present(id: &Id, (checked, quarantined): (Checked, Option<PathBuf>)) -> Result<bool, GetError> {
    match checked {
        Checked::Intact(_) => Ok(true),
        Checked::Missing => Ok(false),
        Checked::Damaged(damage) => Err(GetError::Corrupt {
            id: *id,
            damage,
            quarantined,
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn store_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Store>();
    }

    /// `EIO`, as a bad sector gives it; `EMFILE`, out of file descriptors.
    const EIO: i32 = 5;
    const EMFILE: i32 = 24;

    fn store(dir: &Path) -> Store {
        Store::open(dir, StoreOptions::default()).unwrap()
    }

    /// A store writing shard files (the first layout), for the tests that
    /// inject failures into shard file I/O (`files.faults`).
    fn files_store(dir: &Path) -> Store {
        Store::open(dir, StoreOptions::default().with_segments(false)).unwrap()
    }

    fn put(store: &Store, bytes: &[u8]) -> Id {
        let id = Id::of(bytes);
        store.put("ann", &id, bytes, None).unwrap();
        id
    }

    /// A read error used to stop the scrub (`?`), so the shard was neither
    /// reported nor quarantined, and no shard after it was checked.
    #[test]
    fn a_scrub_quarantines_an_unreadable_shard_and_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = files_store(dir.path());
        let ids: Vec<Id> = (0..3u8).map(|n| put(&store, &[n; 100])).collect();
        store
            .files
            .faults
            .fail_reads(store.files.path(&ids[1]), EIO);

        let report = store.scrub(&ScrubOptions::default()).unwrap();
        let corrupt: Vec<Id> = report.corrupt.iter().map(|d| d.id).collect();
        assert_eq!(corrupt, [ids[1]]);
        assert!(
            matches!(report.corrupt[0].damage, Damage::Unreadable { .. }),
            "{report:?}"
        );
        let quarantined = dir.path().join("quarantine").join(format!("{}.0", ids[1]));
        assert_eq!(report.corrupt[0].quarantined, Some(quarantined));
        assert_eq!(report.missing, [ids[1]]);
        assert_eq!(report.shards_checked, 3);
        let quarantined = dir.path().join("quarantine").join(format!("{}.0", ids[1]));
        assert_eq!(fs::read(quarantined).unwrap(), [1; 100]);
        assert!(!store.contains(&ids[1]));
        for (n, id) in [(0u8, ids[0]), (2, ids[2])] {
            assert_eq!(store.get(&id).unwrap(), [n; 100]);
        }
        assert_eq!(store.last_scrub().unwrap().unwrap().corrupt, 1);
    }

    #[test]
    fn a_get_reports_an_unreadable_shard_as_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let store = files_store(dir.path());
        let id = put(&store, b"bad sector");
        store.files.faults.fail_reads(store.files.path(&id), EIO);
        let err = store.get(&id).unwrap_err();
        assert!(
            matches!(
                &err,
                GetError::Corrupt {
                    damage: Damage::Unreadable { .. },
                    quarantined: Some(_),
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("cannot be read"), "{err}");
        assert!(!store.contains(&id));
    }

    /// A disk that stores other bytes than it was given. Without the
    /// read-back the put was acknowledged, and the shard lost to every
    /// later read.
    #[test]
    fn a_write_that_reads_back_wrong_fails_the_put_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = files_store(dir.path());
        // Empty, and longer than a read block.
        for bytes in [Vec::new(), testdata::seeded_bytes(9, 300_000)] {
            let id = Id::of(&bytes);
            store.files.faults.damage_stages(1);
            let err = store.put("ann", &id, &bytes, None).unwrap_err();
            assert!(matches!(err, PutError::Unverified { .. }), "{err:?}");
            assert!(err.to_string().contains("write verification"), "{err}");
            assert!(!store.contains(&id));
            assert!(!store.has_ref("ann", &id).unwrap());
            assert_eq!(store.usage("ann").unwrap(), 0);
            assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
            // Once the disk behaves again, the same put succeeds.
            assert!(store.put("ann", &id, &bytes, None).unwrap().stored);
            assert_eq!(store.get(&id).unwrap(), bytes);
            store.drop_ref("ann", &id).unwrap();
        }
        drop(store);

        // Without the read-back, the same damage is acknowledged and found
        // only by the next read.
        let store = Store::open(
            dir.path(),
            StoreOptions::default()
                .with_segments(false)
                .with_verify_writes(false),
        )
        .unwrap();
        let bytes = testdata::seeded_bytes(10, 1000);
        let id = Id::of(&bytes);
        store.files.faults.damage_stages(1);
        store.put("ann", &id, &bytes, None).unwrap();
        assert!(matches!(store.get(&id), Err(GetError::Corrupt { .. })));
    }

    /// Running out of descriptors says nothing about the file: it is an
    /// error, and the (good) file stays where it is.
    #[test]
    fn an_error_about_the_process_leaves_the_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = files_store(dir.path());
        let id = put(&store, b"fine");
        store.files.faults.fail_reads(store.files.path(&id), EMFILE);
        assert!(matches!(store.get(&id), Err(GetError::Io { .. })));
        assert!(matches!(
            store.scrub(&ScrubOptions::default()),
            Err(ScrubError::Io { .. })
        ));
        assert!(store.contains(&id));
        assert!(
            fs::read_dir(dir.path().join("quarantine"))
                .unwrap()
                .next()
                .is_none()
        );
    }

    /// `Store::open` created the store's directory (and its ancestors),
    /// `shards/`, `tmp/`, `quarantine/`, `meta.redb` and `store.lock`, and
    /// flushed none of their parents: a power cut could lose them all.
    #[test]
    fn open_flushes_every_directory_it_creates_into_its_parent() {
        let top = tempfile::tempdir().unwrap();
        let top_path = top.path().canonicalize().unwrap();
        let dir = top_path.join("a").join("b").join("store");
        let store = Store::open(&dir, StoreOptions::default()).unwrap();
        let synced = shards::tests::synced_under(&top_path);
        for flushed in [&top_path, &top_path.join("a"), &top_path.join("a/b"), &dir] {
            assert!(synced.contains(flushed), "{flushed:?} not in {synced:?}");
        }
        drop(store);

        // Opening again flushes the directory and its parent again (an
        // earlier open may have died before it could).
        shards::tests::synced_under(&top_path);
        drop(Store::open(&dir, StoreOptions::default()).unwrap());
        let synced = shards::tests::synced_under(&top_path);
        assert!(synced.contains(&dir), "{synced:?}");
        assert!(synced.contains(&top_path.join("a/b")), "{synced:?}");
    }

    /// Group commit: what the store's commits and batches look like.
    mod group_commit {
        use std::sync::atomic::Ordering::SeqCst;
        use std::thread;
        use std::time::{Duration, Instant};

        use super::*;
        use crate::index::IndexPut;

        /// Durable commits the store has made so far.
        fn commits(store: &Store) -> u64 {
            store.meta.hooks.commits.load(SeqCst)
        }

        /// `count` shards of `len` bytes whose ids start with distinct
        /// bytes, so that their puts never wait for each other's lock and
        /// can all queue for one batch.
        fn shards(count: usize, len: usize) -> Vec<(Id, Vec<u8>)> {
            let mut seen = [false; 256];
            (0u64..)
                .map(|seed| {
                    let bytes = testdata::seeded_bytes(seed, len);
                    (Id::of(&bytes), bytes)
                })
                .filter(|(id, _)| {
                    !std::mem::replace(&mut seen[usize::from(id.as_bytes()[0])], true)
                })
                .take(count)
                .collect()
        }

        type Op<'a, T> = Box<dyn FnOnce() -> T + Send + 'a>;

        fn op<'a, T>(f: impl FnOnce() -> T + Send + 'a) -> Op<'a, T> {
            Box::new(f)
        }

        /// Runs `ops` on threads, starting each once the one before has
        /// queued its change, so that they form one batch in this order;
        /// checks that the batch made exactly one commit (none if
        /// `commits_fail`), and returns the results in order. Every op must
        /// queue exactly one change.
        fn in_one_batch<'a, T: Send + 'a>(
            store: &'a Store,
            ops: Vec<Op<'a, T>>,
            commits_fail: bool,
        ) -> Vec<T> {
            let batches = &store.meta.batches;
            let before = commits(store);
            batches.hold();
            let results = thread::scope(|s| {
                let mut handles = Vec::new();
                for (n, op) in ops.into_iter().enumerate() {
                    handles.push(s.spawn(op));
                    let since = Instant::now();
                    while batches.queued() <= n {
                        if since.elapsed() > Duration::from_secs(30) {
                            batches.release();
                            panic!("change {n} never queued");
                        }
                        thread::sleep(Duration::from_millis(1));
                    }
                }
                batches.release();
                handles
                    .into_iter()
                    .map(|handle| handle.join().unwrap())
                    .collect()
            });
            let expected = u64::from(!commits_fail);
            assert_eq!(commits(store) - before, expected, "one batch, one commit");
            results
        }

        #[test]
        fn a_lone_put_commits_at_once_and_is_durable_when_it_returns() {
            let dir = tempfile::tempdir().unwrap();
            let store = store(dir.path());
            let admin = Admin::open(dir.path()).unwrap();
            for (n, (id, bytes)) in shards(3, 100).into_iter().enumerate() {
                store.put("ann", &id, &bytes, None).unwrap();
                // One commit each, nothing waited for; and another handle
                // on the database sees the reference at once.
                assert_eq!(commits(&store), n as u64 + 1);
                assert!(admin.has_ref("ann", &id).unwrap());
            }
        }

        /// Concurrent puts each made their own commit, one after another.
        #[test]
        fn concurrent_puts_share_commits_and_keep_references_and_usage_exact() {
            let dir = tempfile::tempdir().unwrap();
            let store = store(dir.path());
            let users = ["ann", "bob", "cy"];
            let all = shards(80, 3000);
            let (batched, free) = all.split_at(16);

            // Sixteen puts queued together: one commit.
            let ops: Vec<Op<'_, PutOutcome>> = batched
                .iter()
                .enumerate()
                .map(|(n, (id, bytes))| {
                    let store = &store;
                    let user = users[n % 3];
                    op(move || store.put(user, id, bytes, None).unwrap())
                })
                .collect();
            for outcome in in_one_batch(&store, ops, false) {
                assert!(outcome.stored && outcome.newly_referenced);
            }

            // Then eight threads putting as fast as they can, each shard
            // for two users, one at a time.
            thread::scope(|s| {
                for chunk in free.chunks(8) {
                    let store = &store;
                    s.spawn(move || {
                        for (n, (id, bytes)) in chunk.iter().enumerate() {
                            for user in [users[n % 3], users[(n + 1) % 3]] {
                                store.put(user, id, bytes, None).unwrap();
                            }
                        }
                    });
                }
            });
            let puts = batched.len() + 2 * free.len();
            let made = commits(&store);
            assert!(made < puts as u64, "{made} commits for {puts} puts");

            let mut expected = [0u64; 3];
            for (n, (id, bytes)) in batched.iter().enumerate() {
                expected[n % 3] += bytes.len() as u64;
                assert!(store.has_ref(users[n % 3], id).unwrap());
                assert_eq!(store.get(id).unwrap(), *bytes);
            }
            for chunk in free.chunks(8) {
                for (n, (id, bytes)) in chunk.iter().enumerate() {
                    for user in [n % 3, (n + 1) % 3] {
                        expected[user] += bytes.len() as u64;
                        assert!(store.has_ref(users[user], id).unwrap());
                    }
                    assert_eq!(store.get(id).unwrap(), *bytes);
                }
            }
            for (user, expected) in users.iter().zip(expected) {
                assert_eq!(store.usage(user).unwrap(), expected, "{user}");
            }
            assert_eq!(store.shard_count().unwrap(), all.len() as u64);
            assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        }

        /// A refusal for quota must refuse that put alone, and count the
        /// puts before it in the same batch.
        #[test]
        fn quota_is_checked_per_put_in_batch_order() {
            let dir = tempfile::tempdir().unwrap();
            let store = store(dir.path());
            let five = shards(5, 1000);
            let quota = Some(3000);
            let ops: Vec<Op<'_, Result<PutOutcome, PutError>>> = five
                .iter()
                .map(|(id, bytes)| {
                    let store = &store;
                    op(move || store.put("ann", id, bytes, quota))
                })
                .collect();
            let results = in_one_batch(&store, ops, false);

            for (result, (id, bytes)) in results[..3].iter().zip(&five) {
                let outcome = result.as_ref().unwrap();
                assert!(outcome.stored && outcome.newly_referenced);
                assert_eq!(store.get(id).unwrap(), *bytes);
            }
            for (result, (id, _)) in results[3..].iter().zip(&five[3..]) {
                assert!(
                    matches!(
                        result,
                        Err(PutError::QuotaExceeded {
                            usage: 3000,
                            needed: 1000,
                            ..
                        })
                    ),
                    "{result:?}"
                );
                assert!(!store.has_ref("ann", id).unwrap());
                assert!(!store.contains(id));
            }
            assert_eq!(store.usage("ann").unwrap(), 3000);
            assert_eq!(store.shard_count().unwrap(), 3);
            assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        }

        /// Index puts and deletes in one batch apply in order, each with
        /// its own outcome.
        #[test]
        fn index_changes_in_one_batch_each_get_their_own_outcome() {
            let dir = tempfile::tempdir().unwrap();
            let store = store(dir.path());
            let record = UserRecord {
                salt: [1; 16],
                auth_hash: [2; 32],
                quota: None,
                created_unix: 0,
            };
            store.add_user("ann", &record).unwrap();
            let entry = |version, data: &[u8]| IndexEntry {
                name: [7; 32],
                version,
                data: data.to_vec(),
            };
            let store = &store;
            let ops: Vec<Op<'_, Result<IndexPut, IndexError>>> = vec![
                Box::new(move || store.put_index("ann", &entry(2, b"a"))),
                Box::new(move || store.put_index("ann", &entry(1, b"old"))),
                Box::new(move || store.put_index("ann", &entry(2, b"b"))),
                Box::new(move || store.put_index("ann", &entry(2, b"a"))),
                Box::new(move || store.put_index("nobody", &entry(1, b"x"))),
                Box::new(move || {
                    assert_eq!(store.delete_index("ann", &[7; 32]).unwrap(), Some(2));
                    Ok(IndexPut::Unchanged)
                }),
                Box::new(move || store.put_index("ann", &entry(1, b"after"))),
            ];
            let results = in_one_batch(store, ops, false);
            assert!(
                matches!(results[0], Ok(IndexPut::Stored { replaced: None })),
                "{results:?}"
            );
            assert!(matches!(
                results[1],
                Err(IndexError::Stale {
                    stored: 2,
                    offered: 1
                })
            ));
            assert!(matches!(
                results[2],
                Err(IndexError::Conflict { version: 2 })
            ));
            assert!(matches!(results[3], Ok(IndexPut::Unchanged)));
            assert!(matches!(results[4], Err(IndexError::NoSuchUser { .. })));
            assert!(matches!(
                results[6],
                Ok(IndexPut::Stored { replaced: None })
            ));
            assert_eq!(
                store.get_index("ann", &[7; 32]).unwrap(),
                Some(entry(1, b"after"))
            );
        }

        /// Entry puts in one batch take the change feed's numbers in the
        /// batch's order, each moving its own folder row; a refused put
        /// takes no number.
        #[test]
        fn entry_puts_in_one_batch_take_their_own_change_numbers() {
            let dir = tempfile::tempdir().unwrap();
            let store = store(dir.path());
            let record = UserRecord {
                salt: [1; 16],
                auth_hash: [2; 32],
                quota: None,
                created_unix: 0,
            };
            store.add_user("ann", &record).unwrap();
            let entry = |name, version, data: &[u8]| IndexEntry {
                name: [name; 32],
                version,
                data: data.to_vec(),
            };
            let (a, b) = ([0xa; 32], [0xb; 32]);
            let store = &store;
            let ops: Vec<Op<'_, Result<IndexPut, IndexError>>> = vec![
                Box::new(move || store.put_entry("ann", &entry(1, 1, b"one"), &a, 1)),
                Box::new(move || store.put_entry("ann", &entry(2, 1, b"two"), &b, 2)),
                Box::new(move || store.put_entry("ann", &entry(1, 1, b"other"), &b, 1)),
                Box::new(move || store.put_entry("ann", &entry(3, 1, b"three"), &a, 3)),
                Box::new(move || store.put_entry("ann", &entry(2, 2, b"two!"), &a, 4)),
            ];
            let results = in_one_batch(store, ops, false);
            assert!(
                matches!(results[2], Err(IndexError::Conflict { version: 1 })),
                "{results:?}"
            );
            assert!(matches!(
                results[4],
                Ok(IndexPut::Stored { replaced: Some(1) })
            ));
            let page = store.changes("ann", 0, None, 10, 100).unwrap();
            let changed: Vec<_> = page.entries.iter().map(|e| (e.name[0], e.seq)).collect();
            let first = changed[0].1;
            // Name 2's first put took `first + 1` and went with its second.
            assert_eq!(changed, [(1, first), (3, first + 2), (2, first + 3)]);
            let listed = |folder| -> Vec<u8> {
                store
                    .list_folder("ann", folder, None, 10)
                    .unwrap()
                    .iter()
                    .map(|e| e.name[0])
                    .collect()
            };
            assert_eq!(listed(&a), [1, 2, 3]);
            assert!(listed(&b).is_empty());
        }

        /// A change whose own part fails takes out only itself, with
        /// whatever it had written.
        #[test]
        fn a_change_that_fails_alone_leaves_its_batch_to_the_others() {
            let dir = tempfile::tempdir().unwrap();
            let store = store(dir.path());
            store
                .meta
                .hooks
                .failing_users
                .lock()
                .unwrap()
                .push("eve".to_owned());
            let three = shards(3, 500);
            let users = ["ann", "eve", "bob"];
            let ops: Vec<Op<'_, Result<PutOutcome, PutError>>> = three
                .iter()
                .zip(users)
                .map(|((id, bytes), user)| {
                    let store = &store;
                    op(move || store.put(user, id, bytes, None))
                })
                .collect();
            let results = in_one_batch(&store, ops, false);
            assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
            assert!(
                matches!(
                    &results[1],
                    Err(PutError::Database(redb::Error::Corrupted(_)))
                ),
                "{results:?}"
            );
            assert!(store.has_ref("ann", &three[0].0).unwrap());
            assert!(store.has_ref("bob", &three[2].0).unwrap());
            // Eve's writes were aborted with the first transaction.
            assert!(!store.has_ref("eve", &three[1].0).unwrap());
            assert_eq!(store.usage("eve").unwrap(), 0);
            assert!(!store.meta.is_held(&three[1].0).unwrap());
            assert!(!store.contains(&three[1].0));
        }

        /// A failed commit fails every put of its batch, as a full disk;
        /// one that fails once is retried after a reopen.
        #[test]
        fn a_failed_commit_fails_the_whole_batch_and_a_reopen_retries_it() {
            let dir = tempfile::tempdir().unwrap();
            let store = store(dir.path());
            let six = shards(6, 500);
            let batch = |shards: &[(Id, Vec<u8>)], commits_fail| {
                let ops: Vec<Op<'_, Result<PutOutcome, PutError>>> = shards
                    .iter()
                    .map(|(id, bytes)| {
                        let store = &store;
                        op(move || store.put("ann", id, bytes, None))
                    })
                    .collect();
                in_one_batch(&store, ops, commits_fail)
            };

            // Fails, and fails again after the reopen: every put hears it.
            store.meta.hooks.failing_commits.store(2, SeqCst);
            for (result, (id, _)) in batch(&six[..3], true).iter().zip(&six) {
                assert!(
                    matches!(result, Err(PutError::DiskFull { .. })),
                    "{result:?}"
                );
                assert!(!store.contains(id));
            }
            assert_eq!(store.usage("ann").unwrap(), 0);

            // Fails once: the reopen's retry commits the batch.
            store.meta.hooks.failing_commits.store(1, SeqCst);
            for (result, (id, bytes)) in batch(&six[3..], false).iter().zip(&six[3..]) {
                assert!(result.is_ok(), "{result:?}");
                assert_eq!(store.get(id).unwrap(), *bytes);
            }
            assert_eq!(store.usage("ann").unwrap(), 1500);
            assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        }
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
