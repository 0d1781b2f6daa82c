//! One error type per [`Store`](crate::Store) operation.
//!
//! Each enum separates what the caller should expect and act on (`NotFound`,
//! `Corrupt`, `QuotaExceeded`, `IdMismatch`, …) from failures of the
//! machine underneath (`Io`, `Database`). I/O errors carry the path they
//! happened on; the operating system's error is the `source`, so messages
//! do not repeat it and `anyhow`'s `{:#}` prints the whole chain once.
//! (The scrub's error lives with the scrub, in [`crate::scrub`].)

use std::io;
use std::path::PathBuf;

use cairn_core::Id;

use crate::shards::{Damage, FileError};

/// Why [`Store::open`](crate::Store::open) failed.
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
    /// Another store (in this or another process) has the directory open.
    #[error(
        "the metadata database {path} is already open; is another cairn node using this directory?"
    )]
    Locked {
        /// The metadata database file.
        path: PathBuf,
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
    /// The database file has tables but no schema version: it was not
    /// written by cairn, and is left untouched.
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
    /// The disk (or the database's) is full; free space and retry.
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
    /// The metadata database failed; nothing was committed.
    #[error("metadata database failed")]
    Database(#[from] redb::Error),
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
    /// The shard file was damaged. It has been moved to quarantine and now
    /// reads as absent; fetch the shard from another node.
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
    /// Reading the file failed.
    #[error("cannot read shard file {path}")]
    Io {
        /// The file being read.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
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
/// ([`Store::has_ref`](crate::Store::has_ref),
/// [`Store::usage`](crate::Store::usage),
/// [`Store::users`](crate::Store::users)) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The metadata database failed.
    #[error("metadata database failed")]
    Database(#[from] redb::Error),
}

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
