//! One error type per [`Store`](crate::Store) and [`Admin`](crate::Admin)
//! operation (or family of operations, for users and index entries).
//!
//! Each enum separates what the caller should expect and act on (`NotFound`,
//! `Corrupt`, `QuotaExceeded`, `IdMismatch`, `Stale`, …) from failures of the
//! machine underneath (`Io`, `Database`) and damage in the database
//! (`Record`). I/O errors carry the path they happened on; the operating
//! system's error is the `source`, so messages do not repeat it and
//! `anyhow`'s `{:#}` prints the whole chain once. (The scrub's error lives
//! with the scrub, in [`crate::scrub`].)

use std::io;
use std::path::PathBuf;

use cairn_core::Id;

use crate::shards::{Damage, FileError, StageError};
use crate::users::InvalidNameReason;

/// Why [`Store::open`](crate::Store::open) or
/// [`Admin::open`](crate::Admin::open) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// A directory or file of the store could not be created, listed or
    /// cleaned up.
    #[error("cannot prepare store path {path}")]
    Io {
        /// The path being worked on.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// Another [`Store`](crate::Store) (in this or another process) has
    /// the directory open: another cairn node is using it. Stop that node,
    /// or use [`Admin`](crate::Admin), which can share the directory.
    #[error("{path} is locked: another cairn node is using this directory")]
    Locked {
        /// The store's lock file, `<dir>/store.lock` (or the metadata
        /// database, if a program outside cairn holds it exclusively).
        path: PathBuf,
    },
    /// [`Admin::open`](crate::Admin::open) found no store: the directory has
    /// no metadata database, or one that was never initialised.
    #[error("no cairn node store in {dir}")]
    NotAStore {
        /// The directory given.
        dir: PathBuf,
    },
    /// [`Store::open`](crate::Store::open) would have to create the
    /// metadata database, but `shards/` already holds shard files or
    /// `segments/` records: the database was lost, moved or emptied.
    /// Starting with an empty one would disown every shard (the open would
    /// delete the segments, a scrub the files), so nothing was changed.
    /// Restore `meta.redb` from a backup (or put it back); to start afresh
    /// instead, move `shards/` and `segments/` aside.
    #[error(
        "the metadata database {path} is missing or empty, but {shards} shards exist beside it (in shards/ and segments/); refusing to start with a new database, which would disown them (they would all be deleted). Nothing was changed: restore meta.redb from a backup, or move shards/ and segments/ aside to start an empty store"
    )]
    MetadataMissing {
        /// The metadata database file.
        path: PathBuf,
        /// How many shard files `shards/` holds plus how many records
        /// (live or dead: nothing can tell without the database) the
        /// segments in `segments/` hold.
        shards: u64,
    },
    /// The metadata database was written with a schema this version cannot
    /// read; upgrade cairn, or restore a matching backup.
    #[error(
        "metadata database schema version {found} is not supported by this cairn (supports {supported}); was it written by a newer version?"
    )]
    UnsupportedSchema {
        /// The version recorded in the database.
        found: u64,
        /// The version this cairn reads and writes.
        supported: u64,
    },
    /// The database file has tables but no readable schema version: it was
    /// not written by cairn, and is left untouched.
    #[error(
        "{path} is a redb database without a cairn schema version; was it written by another program?"
    )]
    MissingSchemaVersion {
        /// The metadata database file.
        path: PathBuf,
    },
    /// The metadata database could not be opened or read.
    #[error("metadata database failed")]
    Database(#[from] redb::Error),
}

/// Why [`Store::put`](crate::Store::put) failed. Whatever the error, nothing
/// was left behind: no file, no reference, no usage change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PutError {
    /// The bytes do not hash to the id they were sent under.
    #[error("shard bytes hash to {actual}, not to the id {expected} they were sent under")]
    IdMismatch {
        /// The id the caller gave.
        expected: Id,
        /// The id of the bytes received.
        actual: Id,
    },
    /// The shard is longer than [`MAX_SHARD_LEN`](crate::MAX_SHARD_LEN).
    #[error("shard of {len} bytes is longer than the limit of {max} bytes")]
    TooLarge {
        /// Length of the shard offered.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Referencing this shard would take the user past their quota.
    #[error(
        "user {user:?} uses {usage} bytes of a {quota}-byte quota; {needed} more bytes do not fit"
    )]
    QuotaExceeded {
        /// The user.
        user: String,
        /// Bytes the user already references.
        usage: u64,
        /// The user's quota in bytes.
        quota: u64,
        /// Length of the shard that did not fit.
        needed: u64,
    },
    /// The disk (or the database's) is full; free space and retry. The
    /// store recovers by itself once there is space (see the `meta` module
    /// docs): no restart is needed.
    #[error("no space left on the store's disk")]
    DiskFull {
        /// The operating system's error.
        source: io::Error,
    },
    /// Writing the shard file failed.
    #[error("cannot write shard file at {path}")]
    Io {
        /// The file or directory being written.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The shard file, read back after it was written and flushed, held
    /// other bytes than were written (see
    /// [`StoreOptions::verify_writes`](crate::StoreOptions::verify_writes)):
    /// the disk, or something between it and cairn, does not store data
    /// faithfully. The file was deleted and nothing was committed; check
    /// the disk.
    #[error(
        "write verification failed: {path}, read back after it was written and flushed, holds other bytes than were written; the disk is not storing data faithfully"
    )]
    Unverified {
        /// The temporary file that was written (and is deleted now).
        path: PathBuf,
    },
    /// The metadata database failed; nothing was committed.
    #[error("metadata database failed")]
    Database(#[from] redb::Error),
}

impl From<StageError> for PutError {
    fn from(e: StageError) -> Self {
        match e {
            StageError::File(e) => e.into(),
            StageError::Unverified { path } => Self::Unverified { path },
        }
    }
}

impl From<FileError> for PutError {
    fn from(e: FileError) -> Self {
        if is_disk_full(&e.source) {
            Self::DiskFull { source: e.source }
        } else {
            Self::Io {
                path: e.path,
                source: e.source,
            }
        }
    }
}

impl PutError {
    /// Classifies a database error, singling out a full disk.
    pub(crate) fn from_database(e: redb::Error) -> Self {
        match e {
            redb::Error::Io(source) if is_disk_full(&source) => Self::DiskFull { source },
            other => Self::Database(other),
        }
    }
}

/// Whether an I/O error means the filesystem has no space left (ENOSPC).
pub(crate) fn is_disk_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull
}

/// Why [`Store::get`](crate::Store::get) returned no bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GetError {
    /// This store has no shard with that id.
    #[error("shard {id} is not stored here")]
    NotFound {
        /// The id asked for.
        id: Id,
    },
    /// The shard file was damaged or could not be read. It has been moved
    /// to quarantine and now reads as absent; fetch the shard from another
    /// node.
    #[error("shard {id} is corrupt on disk: {damage}")]
    Corrupt {
        /// The id asked for.
        id: Id,
        /// What is wrong with the file.
        damage: Damage,
        /// Where the file was moved, or `None` if moving it failed (it then
        /// stays in place and the next read reports it again).
        quarantined: Option<PathBuf>,
    },
    /// Reading the file failed for a reason that says nothing about the
    /// file: interrupted, or out of memory or file descriptors. The file
    /// is left in place; retry later. (A file that itself cannot be read
    /// is [`Corrupt`](Self::Corrupt), with
    /// [`Damage::Unreadable`].)
    #[error("cannot read shard file {path}")]
    Io {
        /// The file being read.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The metadata database failed
    /// ([`Store::is_present`](crate::Store::is_present) only; a get does
    /// not read it).
    #[error("metadata database failed")]
    Database(#[from] redb::Error),
}

impl From<FileError> for GetError {
    fn from(e: FileError) -> Self {
        Self::Io {
            path: e.path,
            source: e.source,
        }
    }
}

/// Why [`Store::drop_ref`](crate::Store::drop_ref) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DropError {
    /// The reference is gone but the unreferenced file could not be
    /// deleted; a scrub will delete it.
    #[error("cannot delete unreferenced shard file {path}")]
    Io {
        /// The file being deleted.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The metadata database failed; the reference is unchanged.
    #[error("metadata database failed")]
    Database(#[from] redb::Error),
}

impl From<FileError> for DropError {
    fn from(e: FileError) -> Self {
        Self::Io {
            path: e.path,
            source: e.source,
        }
    }
}

/// Why [`Store::delete`](crate::Store::delete) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeleteError {
    /// The references are gone but the file could not be deleted; a scrub
    /// will delete it.
    #[error("cannot delete shard file {path}")]
    Io {
        /// The file being deleted.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The metadata database failed; the references are unchanged.
    #[error("metadata database failed")]
    Database(#[from] redb::Error),
}

impl From<FileError> for DeleteError {
    fn from(e: FileError) -> Self {
        Self::Io {
            path: e.path,
            source: e.source,
        }
    }
}

/// Why a read-only question to the metadata database
/// ([`has_ref`](crate::Metadata::has_ref), [`usage`](crate::Metadata::usage),
/// [`user`](crate::Metadata::user), [`get_index`](crate::Metadata::get_index),
/// [`last_scrub`](crate::Metadata::last_scrub), …) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// A record the answer depends on cannot be decoded.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The metadata database failed.
    #[error("metadata database failed")]
    Database(#[from] redb::Error),
}

/// A value in the metadata database that this cairn cannot decode. See the
/// record format in the `meta` module docs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The record is in a format this cairn does not read, presumably
    /// written by a newer version; upgrade cairn.
    #[error(
        "{table} record {key} has format version {found}, but this cairn reads only versions up to {supported}; was it written by a newer version?"
    )]
    UnknownVersion {
        /// The table holding the record.
        table: &'static str,
        /// The record's key, as text.
        key: String,
        /// The format byte found.
        found: u8,
        /// The newest format this cairn reads (some record kinds still
        /// read older ones too).
        supported: u8,
    },
    /// The record is empty, does not decode, or has bytes left over: the
    /// database is damaged or was written by another program.
    #[error("{table} record {key} is malformed")]
    Malformed {
        /// The table holding the record.
        table: &'static str,
        /// The record's key, as text.
        key: String,
        /// What the decoder said.
        source: postcard::Error,
    },
}

/// Why a user operation ([`add_user`](crate::Metadata::add_user),
/// [`set_quota`](crate::Metadata::set_quota),
/// [`remove_user`](crate::Store::remove_user)) failed. Unless a variant
/// says otherwise, nothing changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UserError {
    /// A user of that name exists already.
    #[error("user {name:?} already exists")]
    Exists {
        /// The name.
        name: String,
    },
    /// The name breaks the rules for user names.
    #[error("invalid user name {name:?}: {reason}")]
    InvalidName {
        /// The name offered.
        name: String,
        /// The rule it breaks.
        reason: InvalidNameReason,
    },
    /// There is no user of that name (for `remove_user`: no record, no
    /// references and no index entries).
    #[error("no user {name:?}")]
    NoSuchUser {
        /// The name.
        name: String,
    },
    /// The user's stored record cannot be decoded.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// [`Store::remove_user`](crate::Store::remove_user) only: the user is
    /// removed, but a shard file nobody holds any more could not be
    /// deleted. A scrub will delete it, and any others left.
    #[error("user removed, but cannot delete unreferenced shard file {path}")]
    Io {
        /// The file being deleted.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The metadata database failed; nothing changed (for `Io`'s case of
    /// `remove_user`, the failure came after the user was removed).
    #[error("metadata database failed")]
    Database(#[from] redb::Error),
}

impl From<FileError> for UserError {
    fn from(e: FileError) -> Self {
        Self::Io {
            path: e.path,
            source: e.source,
        }
    }
}

/// Why an index operation ([`put_index`](crate::Metadata::put_index),
/// [`put_entry`](crate::Metadata::put_entry),
/// [`delete_index`](crate::Metadata::delete_index)) failed. Whatever the
/// error, the stored entry is unchanged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// The entry's data is longer than
    /// [`MAX_INDEX_ENTRY_LEN`](crate::MAX_INDEX_ENTRY_LEN).
    #[error("index entry of {len} bytes is longer than the limit of {max} bytes")]
    TooLarge {
        /// Length of the data offered.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The summary is longer than
    /// [`MAX_SUMMARY_LEN`](crate::MAX_SUMMARY_LEN).
    #[error("index entry summary of {len} bytes is longer than the limit of {max} bytes")]
    SummaryTooLarge {
        /// Length of the summary offered.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The summary is longer than the entry's data, whose first bytes it
    /// must be.
    #[error(
        "index entry summary of {summary_len} bytes is longer than its {data_len} bytes of data"
    )]
    SummaryBeyondData {
        /// Length of the summary offered.
        summary_len: usize,
        /// Length of the data offered.
        data_len: usize,
    },
    /// A newer version is stored: the put is out of date. Re-read the
    /// entry and redo the change on top of it.
    #[error("index entry is at version {stored}; version {offered} is out of date")]
    Stale {
        /// The version stored.
        stored: u64,
        /// The version offered.
        offered: u64,
    },
    /// This version is stored with other bytes: another writer got there
    /// first. Re-read, merge, and put a higher version.
    #[error("index entry version {version} is already stored with different contents")]
    Conflict {
        /// The version both writers used.
        version: u64,
    },
    /// The user has no record (see [`add_user`](crate::Metadata::add_user)).
    #[error("no user {user:?}")]
    NoSuchUser {
        /// The user.
        user: String,
    },
    /// The stored entry cannot be decoded.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The metadata database failed.
    #[error("metadata database failed")]
    Database(#[from] redb::Error),
}

/// Lets `?` turn redb's per-step errors into an error's `Database` variant,
/// as it already does for [`redb::Error`].
macro_rules! from_redb_steps {
    ($($error:ty),* $(,)?) => {$(
        impl From<redb::TransactionError> for $error {
            fn from(e: redb::TransactionError) -> Self {
                Self::Database(e.into())
            }
        }
        impl From<redb::TableError> for $error {
            fn from(e: redb::TableError) -> Self {
                Self::Database(e.into())
            }
        }
        impl From<redb::StorageError> for $error {
            fn from(e: redb::StorageError) -> Self {
                Self::Database(e.into())
            }
        }
        impl From<redb::CommitError> for $error {
            fn from(e: redb::CommitError) -> Self {
                Self::Database(e.into())
            }
        }
    )*};
}

from_redb_steps!(QueryError, UserError, IndexError);

impl From<FileError> for OpenError {
    fn from(e: FileError) -> Self {
        Self::Io {
            path: e.path,
            source: e.source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enospc_is_disk_full() {
        let enospc = io::Error::from(io::ErrorKind::StorageFull);
        let e = PutError::from(FileError {
            path: "x".into(),
            source: enospc,
        });
        assert!(matches!(e, PutError::DiskFull { .. }));
        #[cfg(target_os = "linux")]
        assert!(is_disk_full(&io::Error::from_raw_os_error(28)));
        let e =
            PutError::from_database(redb::Error::Io(io::Error::from(io::ErrorKind::StorageFull)));
        assert!(matches!(e, PutError::DiskFull { .. }));
        let e = PutError::from(FileError {
            path: "x".into(),
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        });
        assert!(matches!(e, PutError::Io { .. }));
    }
}

/// Why [`Store::migrate`](crate::Store::migrate) stopped. What it moved so
/// far stays moved; running it again goes on from there.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    /// Listing, reading or removing a shard file, or appending to a
    /// segment, failed.
    #[error("migration cannot access {path}")]
    Io {
        /// The file or directory being worked on.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The metadata database failed.
    #[error("metadata database failed")]
    Database(#[from] redb::Error),
}
