//! The metadata database: who references which shard, how many bytes each
//! user holds, user accounts, index entries (with their folders and change
//! feed) and the last scrub.
//!
//! # Schema (version 4)
//!
//! One submodule per table family: `schema` (the `meta` table: the
//! version and the last scrub), `refs` (`refs`, `holders`, `usage`),
//! `users`, `index`, `folders` (`folder_entries`, `changes` and the feed's keys
//! in `meta`) and `locations` (`locations`, `segments`). This module holds
//! what they share: the handle ([`Metadata`]), group commit, and recovery
//! from I/O failures.
//!
//! | table | key | value | meaning |
//! | --- | --- | --- | --- |
//! | `meta` | `&str` | `&[u8]` | `"schema_version"` → [`SCHEMA_VERSION`](schema::SCHEMA_VERSION) as 8 bytes big-endian; `"last_scrub"` → a scrub record; `"feed_id"` → the change feed's random id and `"next_seq"` → the sequence number of the next stored index put, each 8 bytes big-endian |
//! | `refs` | `(user, shard id)` | `u64` | the user references the shard, which is this many bytes long |
//! | `holders` | `(shard id, user)` | `()` | the same references, ordered by shard |
//! | `usage` | `user` | `u64` | sum of the lengths of the user's references; absent when 0 |
//! | `users` | `user` | `&[u8]` | a user record: the user exists |
//! | `index` | `(user, name: [u8; 32])` | `&[u8]` | an index entry record |
//! | `folder_entries` | `(user, folder: [u8; 32], name: [u8; 32])` | `&[u8]` | the entry is in the folder, at this version (8 bytes big-endian), with this summary (one row per entry; a listing reads these rows only) |
//! | `changes` | `(user, seq: u64)` | `[u8; 32]` | the entry of that name changed last at that sequence number (one row per entry) |
//! | `locations` | shard id | 25 bytes | where the shard's record is in the segment layout (see `locations`) |
//! | `segments` | segment number | `u64` | live bytes in the segment |
//!
//! `holders` is the reverse index of `refs`: it answers "is anyone left
//! holding this shard?" and "who holds it?" with a short range scan instead
//! of a full one. Both tables and `usage` change only together, in one
//! transaction, so they cannot disagree. A shard's holder count is the
//! length of its `holders` range, rather than a stored counter that could
//! drift from the references it counts.
//!
//! `refs` and `usage` do not require a `users` record: [`Metadata::add_ref`]
//! takes any name (the node checks who its users are). `index` does: a put
//! checks for the record in its own transaction. Removing a user removes,
//! in one transaction, their record, references (and so usage and
//! holders) and index entries (and so their `folder_entries` and `changes`
//! rows). `folder_entries` and `changes` are derived from `index` (each
//! record holds its version, folder, summary and sequence number) and
//! change with it, in the same transaction. Every key of `refs`, `usage`,
//! `users`, `index`, `folder_entries`
//! and `changes` starts with the user name, and every operation takes the
//! name from its caller, so one user's data cannot be reached under
//! another's.
//!
//! # Records
//!
//! The values of `users`, `index` and `meta`'s `"last_scrub"` are records:
//! a format byte, then postcard (see the `record` module):
//!
//! | record | format | postcard fields, in order |
//! | --- | --- | --- |
//! | user | 1 | salt `[u8; 16]`, auth hash `[u8; 32]`, quota `Option<u64>`, created (Unix seconds) `u64` |
//! | index entry | 2 | version `u64`, folder tag `[u8; 32]`, change sequence number `u64`, summary length `u32` (at most the data's), data `&[u8]` (at most [`MAX_INDEX_ENTRY_LEN`](crate::MAX_INDEX_ENTRY_LEN) bytes) |
//! | index entry (schema 2 and before; still read) | 1 | version `u64`, data `&[u8]` |
//! | last scrub | 1 | finished (Unix seconds), shards checked, bytes checked, corrupt, missing: five `u64` |
//!
//! A record in another format reads as
//! [`RecordError::UnknownVersion`](crate::RecordError::UnknownVersion).
//! A record format alone can change without the schema version (a reader
//! of both would do); index format 2 came with schema version 3 because
//! its entries need rows in the new tables, which an older cairn would not
//! write.
//!
//! # Versioning
//!
//! A new database gets the current version. A database with any other
//! version is refused at open rather than guessed at: a newer cairn may
//! have changed what the tables mean. A database with tables but no
//! (readable) version did not come from cairn and is refused too. A future
//! schema change bumps [`SCHEMA_VERSION`](schema::SCHEMA_VERSION) and adds a migration from each
//! older version. Version 2 added `locations` and `segments`; version 3
//! added `folders`, `changes` and the feed's keys, and index record format
//! 2; version 4 replaced `folders` (keys only) with `folder_entries`
//! (version and summary in the row). An older database is upgraded in
//! place at open (by a store or an admin), from version 1, 2 or 3 straight
//! to 4, in one transaction: a crash
//! during the upgrade leaves it at its old version, to be upgraded at the
//! next open, and never half-upgraded. After it, cairns that know only an
//! older version refuse it. The `meta` table's types never change, so that
//! any cairn can read the version.
//!
//! # Sharing between processes
//!
//! The database is opened in redb's [`ConcurrencyMode::MultiWriter`]: a
//! running node's [`Store`](crate::Store) and any number of
//! [`Admin`](crate::Admin)s (in the `cairn node user …` and `status`
//! commands) open it read-write at once. redb runs one write transaction at
//! a time across all of them, and each transaction sees every commit made
//! before it began, in any process; so every check-then-write below (the
//! quota, an existing user, an index version) holds across processes as it
//! does across threads. This mode needs byte-range file locks (Linux, the
//! Apple platforms, Windows), and refuses non-durable commits, which other
//! processes could not see: every commit is flushed to disk.
//!
//! # Group commit
//!
//! redb runs one write transaction at a time, and each durable commit
//! flushes the file: milliseconds, where applying a change takes
//! microseconds. Had every put committed alone, a node's concurrent puts
//! would queue for the writer, one flush each. So the changes callers make
//! all the time (adding and removing references, for puts and drops, and
//! putting and deleting index entries, with their folder and feed rows)
//! are batched by a
//! [`GroupCommit`](crate::commit): a caller that finds no batch running
//! applies its own change and every change queued meanwhile in one
//! transaction, commits it once, and hands each caller its own result;
//! changes that arrive during that commit wait for the next batch, which
//! one of their callers leads. A lone change commits at once; under load,
//! one commit serves every change that arrived during the one before.
//!
//! - **Each change as if alone.** A batch applies its changes in the order
//!   they were queued, each seeing those before it: a put's quota is
//!   checked against the usage left by the batch's earlier puts, an index
//!   version against the batch's earlier index puts. A refusal (over
//!   quota, stale, conflict, no such user) writes nothing, and the batch's
//!   other changes go on.
//! - **Acknowledged only once durable.** No caller hears of its change
//!   before the commit that holds it has returned.
//! - **Failures.** If the transaction or its commit fails, every change in
//!   the batch fails with that error (the first caller gets it, the others
//!   a copy that keeps its kind, so a full disk is `DiskFull` for each),
//!   once the batch has been retried after a reopen as below. A change
//!   whose own part fails with an error reopening would not cure is taken
//!   out alone: the transaction is aborted, and the others are applied
//!   again without it.
//!
//! Writes that are rare (users, quotas, removing a user or every reference
//! to a shard, the scrub record) commit alone, as before.
//!
//! # I/O failures
//!
//! After a commit fails with an I/O error (a full disk, typically), redb
//! fails every later transaction with `PreviousIo` until the database is
//! closed and opened again. Every operation here therefore runs through
//! `Metadata::run`, which on such an error reopens the database, under a lock
//! that first waits for this process's other transactions, and runs the
//! operation once more (for a batch, the whole batch, in its leader's
//! thread). While the disk stays full the reopen fails too
//! (redb writes as it opens): the operation returns that error (a put's is
//! [`PutError::DiskFull`](crate::PutError::DiskFull)) and the next one
//! tries again. Nothing is left for the operator to do but free space; no
//! restart is needed. Each process recovers its own handle: an `Admin` in
//! another process is unaffected unless its own commits fail.

use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard};
use std::{fs, io};

use cairn_core::Id;
use redb::{Builder, ConcurrencyMode, Database, DatabaseError, WriteTransaction};

use crate::commit::GroupCommit;
use crate::error::{IndexError, OpenError, QueryError, UserError};
use crate::index::{FolderTag, IndexEntry, IndexPut};

mod folders;
mod index;
mod locations;
mod refs;
mod schema;
mod users;

pub(crate) use locations::Stored;
pub(crate) use refs::{Added, Removed};

use index::{EntryPut, delete_index_in, put_index_in};
use locations::{record_location_in, release_location_in};
use refs::{add_ref_in, remove_ref_in};
use schema::{check_schema, is_missing_or_empty, refuse_if_shards_exist};

/// The lowest and highest 32-byte keys: the bounds of one user's range in
/// `refs` and `index`.
const FIRST_KEY: [u8; 32] = [0; 32];
const LAST_KEY: [u8; 32] = [0xff; 32];

/// Whether opening may create the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opening {
    /// Create the file and the schema if missing (a [`Store`](crate::Store)).
    CreateIfMissing,
    /// Open an initialised database only (an [`Admin`](crate::Admin)).
    ExistingOnly,
}

/// The metadata database of one store directory: the handle that both a
/// [`Store`](crate::Store) and an [`Admin`](crate::Admin) hold, and whose
/// public methods (users, index entries, usage, the last scrub) both offer
/// through `Deref`. One type rather than two copies of the same methods, so
/// the two cannot drift apart, in behaviour or in docs. `remove_user` is
/// not here, since the two differ in what they do with unheld files.
#[derive(Debug)]
pub struct Metadata {
    /// The store directory.
    dir: PathBuf,
    /// The database file, to open it again.
    path: PathBuf,
    /// The open database. Every transaction runs under the read lock;
    /// [`reopen`](Self::reopen) takes the write lock, so no transaction of
    /// this process is running while the database is closed and opened
    /// again.
    handle: RwLock<Handle>,
    /// The changes that concurrent callers share commits for; see
    /// [Group commit](self#group-commit).
    pub(crate) batches: GroupCommit<Change, Result<Changed, redb::Error>>,
    /// What the unit tests count and inject.
    #[cfg(test)]
    pub(crate) hooks: Hooks,
}

/// Counts and failures for the unit tests.
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct Hooks {
    /// Write transactions committed.
    pub(crate) commits: std::sync::atomic::AtomicU64,
    /// How many of the next commits fail, as for a full disk (the
    /// transaction is aborted instead).
    pub(crate) failing_commits: std::sync::atomic::AtomicU64,
    /// Users whose references fail to be added, after the writes, with an
    /// error that reopening would not cure.
    pub(crate) failing_users: std::sync::Mutex<Vec<String>>,
}

/// A change to the database that concurrent callers batch into one
/// transaction; see [Group commit](self#group-commit). Each owns its data:
/// another thread may apply it.
#[derive(Debug)]
pub(crate) enum Change {
    /// [`Metadata::add_ref`].
    AddRef {
        user: String,
        id: Id,
        len: u64,
        quota: Option<u64>,
        /// Where the shard's record was appended, for the segment layout:
        /// recorded in the same transaction as the reference.
        location: Option<crate::segment::Location>,
    },
    /// [`Metadata::remove_ref`].
    RemoveRef { user: String, id: Id },
    /// [`Metadata::put_index`] and [`Metadata::put_entry`].
    PutIndex {
        user: String,
        entry: IndexEntry,
        folder: FolderTag,
        /// Checked against the data by the caller.
        summary_len: u32,
    },
    /// [`Metadata::delete_index`].
    DeleteIndex { user: String, name: [u8; 32] },
}

/// What a [`Change`] did, by kind. Refusals (over quota, a stale index
/// version, …) are outcomes here, not errors of the batch: they changed
/// nothing, and the batch's other changes go on.
#[derive(Debug)]
pub(crate) enum Changed {
    Added(Added),
    Removed(Removed),
    PutIndex(Result<IndexPut, IndexError>),
    DeletedIndex(Result<Option<u64>, IndexError>),
}

/// The open database, and how many times it has been reopened.
#[derive(Debug)]
struct Handle {
    /// `None` after a reopen failed (the disk is still full, say): the
    /// next operation tries again.
    db: Option<Database>,
    /// Bumped by each reopen, so that of several operations that failed on
    /// one handle only the first reopens it.
    generation: u64,
}

/// The most memory the database's page cache takes. redb's default is
/// 1 GiB, which a node with a large store would fill over time (a scrub
/// reads every record): a million shards' database is about 306 MiB.
/// Lookups of hot shards and index entries stay cached; cold ones read the
/// file, which the kernel caches as well.
const CACHE_BYTES: usize = 128 * 1024 * 1024;

/// How the database is opened, every time: several writers at once (the
/// store's and an `Admin`'s), and a bounded cache.
fn builder() -> Builder {
    let mut builder = Builder::new();
    builder.set_concurrency_mode(ConcurrencyMode::MultiWriter);
    builder.set_cache_size(CACHE_BYTES);
    builder
}

impl Metadata {
    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Opens (or, with [`Opening::CreateIfMissing`], creates) `dir`'s
    /// database in multi-writer mode and checks its schema version,
    /// writing the current one into a new database.
    pub(crate) fn open(dir: &Path, opening: Opening) -> Result<Self, OpenError> {
        let path = dir.join("meta.redb");
        let builder = builder();
        let opened = match opening {
            Opening::CreateIfMissing => {
                // Before redb creates (or initialises) the file, so that a
                // refusal leaves nothing behind.
                if is_missing_or_empty(&path)? {
                    refuse_if_shards_exist(dir, &path)?;
                }
                builder.create(&path)
            }
            Opening::ExistingOnly => {
                // An empty file is what a store that died in its first open
                // can leave; redb would call it invalid data.
                match fs::metadata(&path) {
                    Ok(file) if file.len() > 0 => {}
                    Ok(_) => {
                        return Err(OpenError::NotAStore {
                            dir: dir.to_owned(),
                        });
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        return Err(OpenError::NotAStore {
                            dir: dir.to_owned(),
                        });
                    }
                    Err(source) => return Err(OpenError::Io { path, source }),
                }
                builder.open(&path)
            }
        };
        let db = opened.map_err(|e| match e {
            // Someone holds the file in redb's exclusive mode: not a cairn
            // node (those use multi-writer mode), but just as much in use.
            DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => {
                OpenError::Locked { path: path.clone() }
            }
            other => OpenError::Database(other.into()),
        })?;
        check_schema(&db, dir, &path, opening)?;
        Ok(Self {
            dir: dir.to_owned(),
            path,
            handle: RwLock::new(Handle {
                db: Some(db),
                generation: 0,
            }),
            batches: GroupCommit::default(),
            #[cfg(test)]
            hooks: Hooks::default(),
        })
    }

    /// Commits `txn`: the one way this module commits, so that tests can
    /// count commits.
    fn commit(&self, txn: WriteTransaction) -> Result<(), redb::Error> {
        #[cfg(test)]
        {
            use std::sync::atomic::Ordering::SeqCst;
            let failing = &self.hooks.failing_commits;
            if failing
                .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                drop(txn);
                return Err(io::Error::from(io::ErrorKind::StorageFull).into());
            }
        }
        txn.commit()?;
        #[cfg(test)]
        self.hooks
            .commits
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// Applies `change` in the next batch (see [Group commit](self#group-commit)),
    /// committed with every change queued with it; returns what it did once
    /// that commit is durable.
    fn change(&self, change: Change) -> Result<Changed, redb::Error> {
        self.batches
            .submit(change, |batch| self.commit_batch(&batch))
            // The batch's leader panicked before committing.
            .unwrap_or(Err(redb::Error::TransactionPoisoned))
    }

    /// Applies `batch` in one transaction and commits it; one result per
    /// change, in order. A failure of the transaction or its commit fails
    /// every change of the batch, after [`run`](Self::run)'s reopen and
    /// retry.
    fn commit_batch(&self, batch: &[Change]) -> Vec<Result<Changed, redb::Error>> {
        match self.run(|db| self.apply_batch(db, batch)) {
            Ok(results) => results,
            Err(e) => {
                let mut results: Vec<_> =
                    batch.iter().skip(1).map(|_| Err(copy_error(&e))).collect();
                results.insert(0, Err(e));
                results
            }
        }
    }

    /// One attempt at [`commit_batch`](Self::commit_batch). A change
    /// whose own part fails with an error that reopening would not cure
    /// (damage in the database, say) fails alone: the transaction, which
    /// may hold some of its writes, is dropped (aborted) and the others are
    /// applied again in a new one without it. Any other failure fails the
    /// batch (`Err`).
    fn apply_batch(
        &self,
        db: &Database,
        batch: &[Change],
    ) -> Result<Vec<Result<Changed, redb::Error>>, redb::Error> {
        let mut failed: Vec<Option<redb::Error>> = batch.iter().map(|_| None).collect();
        'attempt: loop {
            let txn = db.begin_write()?;
            let mut changed = Vec::with_capacity(batch.len());
            for (change, failure) in batch.iter().zip(&mut failed) {
                if failure.is_some() {
                    changed.push(None);
                    continue;
                }
                match self.apply(&txn, change) {
                    Ok(done) => changed.push(Some(done)),
                    Err(e) if e.needs_reopen() => return Err(e),
                    Err(e) => {
                        *failure = Some(e);
                        continue 'attempt;
                    }
                }
            }
            self.commit(txn)?;
            return Ok(changed
                .into_iter()
                .zip(failed)
                .map(|(done, failure)| match (done, failure) {
                    (Some(done), _) => Ok(done),
                    (None, Some(e)) => Err(e),
                    (None, None) => unreachable!("every change is applied or failed"),
                })
                .collect());
        }
    }

    /// Applies one change in `txn`. An `Err` may leave some of its writes
    /// in `txn`, which must then be aborted; a refusal leaves none.
    fn apply(&self, txn: &WriteTransaction, change: &Change) -> Result<Changed, redb::Error> {
        #[cfg(test)]
        let fail = |user: &str| {
            let failing = self.hooks.failing_users.lock().unwrap();
            if failing.iter().any(|failing| failing == user) {
                return Err(redb::Error::Corrupted(format!(
                    "injected failure for {user}"
                )));
            }
            Ok(())
        };
        Ok(match change {
            Change::AddRef {
                user,
                id,
                len,
                quota,
                location,
            } => {
                let added = add_ref_in(txn, user, id, *len, *quota)?;
                if let Some(location) = location
                    && !matches!(added, Added::OverQuota { .. })
                {
                    record_location_in(txn, id, location)?;
                }
                // After the writes, so that a test sees them aborted.
                #[cfg(test)]
                fail(user)?;
                Changed::Added(added)
            }
            Change::RemoveRef { user, id } => {
                let removed = remove_ref_in(txn, user, id)?;
                if removed == Removed::LastHolder {
                    release_location_in(txn, id)?;
                }
                Changed::Removed(removed)
            }
            Change::PutIndex {
                user,
                entry,
                folder,
                summary_len,
            } => {
                let put = EntryPut {
                    entry,
                    folder,
                    summary_len: *summary_len,
                };
                Changed::PutIndex(put_index_in(txn, user, &put)?)
            }
            Change::DeleteIndex { user, name } => {
                Changed::DeletedIndex(delete_index_in(txn, user, name)?)
            }
        })
    }

    /// Runs `op` on the database; on a failure of the database itself (an
    /// I/O error, or redb's `PreviousIo`), reopens it and runs `op` once
    /// more.
    ///
    /// redb latches the first I/O error of a commit: until the database is
    /// closed and opened again, every transaction fails with `PreviousIo`.
    /// A full disk would thus stop the node for good, though freeing space
    /// is all it takes to go on. Reopening recovers the file as a restart
    /// would. If the reopen fails too (the disk is still full: redb writes
    /// as it opens), its error is returned and the handle stays closed; the
    /// next operation tries again, so the store recovers once space is
    /// freed.
    ///
    /// `op` may thus run twice. The second run sees whatever the first
    /// committed, so a check-then-write stays right; but if a commit failed
    /// while flushing (not for lack of space, which fails before) and in
    /// fact reached the disk, the retry reports what it finds, e.g. a
    /// reference as already held, or a dropped one as not referenced (its
    /// file is then left to the scrub).
    fn run<T, E>(&self, op: impl Fn(&Database) -> Result<T, E>) -> Result<T, E>
    where
        E: From<redb::Error> + DatabaseFailure,
    {
        let failed = {
            let handle = self.read_handle();
            match &handle.db {
                Some(db) => match op(db) {
                    Err(e) if e.needs_reopen() => handle.generation,
                    done => return done,
                },
                None => handle.generation,
            }
        };
        self.reopen(failed)?;
        match &self.read_handle().db {
            Some(db) => op(db),
            // Another thread's reopen failed since ours succeeded.
            None => Err(redb::Error::DatabaseClosed.into()),
        }
    }

    /// Closes the database and opens it again, unless another thread did
    /// since `failed`, the generation an operation failed on.
    fn reopen(&self, failed: u64) -> Result<(), redb::Error> {
        let mut handle = self
            .handle
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if handle.generation != failed && handle.db.is_some() {
            return Ok(());
        }
        handle.generation += 1;
        // The failed handle goes first: its file and locks must be closed
        // before the file is opened again.
        handle.db = None;
        let builder = builder();
        // Never `create`: the file was there a moment ago, and must not be
        // replaced by an empty database if it has gone.
        handle.db = Some(builder.open(&self.path)?);
        Ok(())
    }

    /// The read lock on the handle. The handle changes only under the
    /// write lock, in [`reopen`](Self::reopen), which cannot panic with it
    /// half-changed; so a panic elsewhere leaves nothing to distrust, and
    /// poison is ignored.
    fn read_handle(&self) -> RwLockReadGuard<'_, Handle> {
        self.handle
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// An error that may be a failure of the database itself, after which
/// [`Metadata::run`] reopens it.
pub(crate) trait DatabaseFailure {
    /// Whether this is an I/O failure of the database (or the `PreviousIo`
    /// that redb returns after one), which reopening may cure.
    fn needs_reopen(&self) -> bool;
}

impl DatabaseFailure for redb::Error {
    fn needs_reopen(&self) -> bool {
        matches!(
            self,
            redb::Error::Io(_) | redb::Error::PreviousIo | redb::Error::Backend(_)
        )
    }
}

/// Implements [`DatabaseFailure`] for errors with a `Database(redb::Error)`
/// variant.
macro_rules! database_failure {
    ($($error:ty),* $(,)?) => {$(
        impl DatabaseFailure for $error {
            fn needs_reopen(&self) -> bool {
                matches!(self, Self::Database(e) if e.needs_reopen())
            }
        }
    )*};
}

database_failure!(QueryError, UserError, IndexError);

/// A copy of `e`, for the other changes of a batch that `e` failed. Errors
/// that say what to do (a full disk, a closed database) keep their kind;
/// any other is passed on as its message.
fn copy_error(e: &redb::Error) -> redb::Error {
    match e {
        redb::Error::Io(io) => redb::Error::Io(match io.raw_os_error() {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::new(io.kind(), io.to_string()),
        }),
        redb::Error::PreviousIo => redb::Error::PreviousIo,
        redb::Error::DatabaseClosed => redb::Error::DatabaseClosed,
        redb::Error::TransactionPoisoned => redb::Error::TransactionPoisoned,
        redb::Error::Corrupted(message) => redb::Error::Corrupted(message.clone()),
        other => redb::Error::Backend(Box::new(io::Error::other(other.to_string()))),
    }
}
