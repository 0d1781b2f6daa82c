//! The metadata database: who references which shard, how many bytes each
//! user holds, user accounts, index entries and the last scrub.
//!
//! # Schema (version 1)
//!
//! | table | key | value | meaning |
//! | --- | --- | --- | --- |
//! | `meta` | `&str` | `&[u8]` | `"schema_version"` → [`SCHEMA_VERSION`] as 8 bytes big-endian; `"last_scrub"` → a scrub record |
//! | `refs` | `(user, shard id)` | `u64` | the user references the shard, which is this many bytes long |
//! | `holders` | `(shard id, user)` | `()` | the same references, ordered by shard |
//! | `usage` | `user` | `u64` | sum of the lengths of the user's references; absent when 0 |
//! | `users` | `user` | `&[u8]` | a user record: the user exists |
//! | `index` | `(user, name: [u8; 32])` | `&[u8]` | an index entry record |
//!
//! `holders` is the reverse index of `refs`: it answers "is anyone left
//! holding this shard?" and "who holds it?" with a short range scan instead
//! of a full one. Both tables and `usage` change only together, in one
//! transaction, so they cannot disagree. A shard's holder count is the
//! length of its `holders` range, rather than a stored counter that could
//! drift from the references it counts.
//!
//! `refs` and `usage` do not require a `users` record: [`Meta::add_ref`]
//! takes any name (the node checks who its users are). `index` does: a put
//! checks for the record in its own transaction. Removing a user removes,
//! in one transaction, their record, references (and so usage and
//! holders) and index entries. Every key of `refs`, `usage`, `users` and
//! `index` starts with the user name, and every operation takes the name
//! from its caller, so one user's data cannot be reached under another's.
//!
//! # Records
//!
//! The values of `users`, `index` and `meta`'s `"last_scrub"` are records:
//! a format byte, then postcard (see the `record` module). All are format
//! 1:
//!
//! | record | postcard fields, in order |
//! | --- | --- |
//! | user | salt `[u8; 16]`, auth hash `[u8; 32]`, quota `Option<u64>`, created (Unix seconds) `u64` |
//! | index entry | version `u64`, data `&[u8]` (at most [`MAX_INDEX_ENTRY_LEN`] bytes) |
//! | last scrub | finished (Unix seconds), shards checked, bytes checked, corrupt, missing: five `u64` |
//!
//! A record in another format reads as
//! [`RecordError::UnknownVersion`](crate::RecordError::UnknownVersion);
//! the schema version does not change when a record format does.
//!
//! # Versioning
//!
//! A new database gets the current version. A database with any other
//! version is refused at open rather than guessed at: a newer cairn may
//! have changed what the tables mean. A database with tables but no
//! (readable) version did not come from cairn and is refused too. A future
//! schema change bumps [`SCHEMA_VERSION`] and adds a migration from each
//! older version. The `meta` table's types never change, so that any cairn
//! can read the version.
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
//! putting and deleting index entries) are batched by a
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
//! `Meta::run`, which on such an error reopens the database, under a lock
//! that first waits for this process's other transactions, and runs the
//! operation once more (for a batch, the whole batch, in its leader's
//! thread). While the disk stays full the reopen fails too
//! (redb writes as it opens): the operation returns that error (a put's is
//! [`PutError::DiskFull`](crate::PutError::DiskFull)) and the next one
//! tries again. Nothing is left for the operator to do but free space; no
//! restart is needed. Each process recovers its own handle: an `Admin` in
//! another process is unaffected unless its own commits fail.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard};
use std::{fs, io};

use cairn_core::Id;
use redb::{
    Builder, ConcurrencyMode, Database, DatabaseError, ReadableDatabase, ReadableTable,
    TableDefinition, TableError, TableHandle, WriteTransaction,
};

use crate::commit::GroupCommit;
use crate::error::{IndexError, OpenError, QueryError, UserError};
use crate::index::{self, IndexEntry, IndexPut, MAX_INDEX_ENTRY_LEN};
use crate::scrub::ScrubRecord;
use crate::users::{RemovedUser, UserRecord, check_user_name};

/// The schema version this code reads and writes.
pub(crate) const SCHEMA_VERSION: u64 = 1;

const SCHEMA_VERSION_KEY: &str = "schema_version";
const LAST_SCRUB_KEY: &str = "last_scrub";

/// Database-wide settings and records: the schema version, the last scrub.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// `(user, shard id)` → shard length in bytes.
const REFS: TableDefinition<(&str, &[u8; Id::LEN]), u64> = TableDefinition::new("refs");
/// `(shard id, user)` → nothing: the reverse index of `REFS`.
const HOLDERS: TableDefinition<(&[u8; Id::LEN], &str), ()> = TableDefinition::new("holders");
/// `user` → bytes referenced.
const USAGE: TableDefinition<&str, u64> = TableDefinition::new("usage");
/// `user` → user record.
const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// `(user, entry name)` → index entry record.
const INDEX: TableDefinition<(&str, &[u8; 32]), &[u8]> = TableDefinition::new("index");

/// The lowest and highest 32-byte keys: the bounds of one user's range in
/// `refs` and `index`.
const FIRST_KEY: [u8; 32] = [0; 32];
const LAST_KEY: [u8; 32] = [0xff; 32];

/// What adding a reference did. Only `New` changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Added {
    New,
    AlreadyHeld,
    /// Over quota; `usage` is the user's usage before the attempt.
    OverQuota {
        usage: u64,
    },
}

/// What removing a reference did, and whether other holders remain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Removed {
    NotReferenced,
    OthersRemain,
    LastHolder,
}

/// Whether opening may create the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opening {
    /// Create the file and the schema if missing (a [`Store`](crate::Store)).
    CreateIfMissing,
    /// Open an initialised database only (an [`Admin`](crate::Admin)).
    ExistingOnly,
}

/// The metadata database of one store directory.
#[derive(Debug)]
pub(crate) struct Meta {
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
    /// [`Meta::add_ref`].
    AddRef {
        user: String,
        id: Id,
        len: u64,
        quota: Option<u64>,
    },
    /// [`Meta::remove_ref`].
    RemoveRef { user: String, id: Id },
    /// [`Meta::put_index`].
    PutIndex { user: String, entry: IndexEntry },
    /// [`Meta::delete_index`].
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

impl Meta {
    /// Opens (or, with [`Opening::CreateIfMissing`], creates) `dir`'s
    /// database in multi-writer mode and checks its schema version,
    /// writing the current one into a new database.
    pub(crate) fn open(dir: &Path, opening: Opening) -> Result<Self, OpenError> {
        let path = dir.join("meta.redb");
        let mut builder = Builder::new();
        builder.set_concurrency_mode(ConcurrencyMode::MultiWriter);
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
            } => {
                let added = add_ref_in(txn, user, id, *len, *quota)?;
                // After the writes, so that a test sees them aborted.
                #[cfg(test)]
                fail(user)?;
                Changed::Added(added)
            }
            Change::RemoveRef { user, id } => Changed::Removed(remove_ref_in(txn, user, id)?),
            Change::PutIndex { user, entry } => Changed::PutIndex(put_index_in(txn, user, entry)?),
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
        let mut builder = Builder::new();
        builder.set_concurrency_mode(ConcurrencyMode::MultiWriter);
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

    /// Records that `user` references shard `id` of `len` bytes, unless it
    /// already does or `quota` (in bytes) would be exceeded.
    pub(crate) fn add_ref(
        &self,
        user: &str,
        id: &Id,
        len: u64,
        quota: Option<u64>,
    ) -> Result<Added, redb::Error> {
        let change = Change::AddRef {
            user: user.to_owned(),
            id: *id,
            len,
            quota,
        };
        let Changed::Added(added) = self.change(change)? else {
            unreachable!("adding a reference yields `Added`")
        };
        Ok(added)
    }

    /// What [`add_ref`](Self::add_ref) would do now, in a read transaction
    /// that changes nothing: `New`, `AlreadyHeld` or `OverQuota`. Commits
    /// by others may change the answer before an `add_ref`, which decides
    /// for itself.
    pub(crate) fn would_add_ref(
        &self,
        user: &str,
        id: &Id,
        len: u64,
        quota: u64,
    ) -> Result<Added, redb::Error> {
        self.run(|db| {
            let txn = db.begin_read()?;
            if txn.open_table(REFS)?.get((user, id.as_bytes()))?.is_some() {
                return Ok(Added::AlreadyHeld);
            }
            let usage = txn.open_table(USAGE)?.get(user)?.map_or(0, |v| v.value());
            Ok(if usage.saturating_add(len) > quota {
                Added::OverQuota { usage }
            } else {
                Added::New
            })
        })
    }

    /// Removes `user`'s reference to `id`, if any, and says whether anyone
    /// still holds the shard.
    pub(crate) fn remove_ref(&self, user: &str, id: &Id) -> Result<Removed, redb::Error> {
        let change = Change::RemoveRef {
            user: user.to_owned(),
            id: *id,
        };
        let Changed::Removed(removed) = self.change(change)? else {
            unreachable!("removing a reference yields `Removed`")
        };
        Ok(removed)
    }

    /// Removes every user's reference to `id`, adjusting their usage.
    /// Returns how many references there were.
    pub(crate) fn remove_all_refs(&self, id: &Id) -> Result<u64, redb::Error> {
        self.run(|db| {
            let txn = db.begin_write()?;
            let mut removed = 0;
            {
                let mut refs = txn.open_table(REFS)?;
                let mut holders = txn.open_table(HOLDERS)?;
                let mut usage = txn.open_table(USAGE)?;
                while let Some(user) = first_holder(&holders, id)? {
                    holders.remove((id.as_bytes(), user.as_str()))?;
                    let len = refs
                        .remove((user.as_str(), id.as_bytes()))?
                        .map_or(0, |v| v.value());
                    subtract_usage(&mut usage, &user, len)?;
                    removed += 1;
                }
            }
            self.commit(txn)?;
            Ok(removed)
        })
    }

    /// Whether `user` references `id`.
    pub(crate) fn has_ref(&self, user: &str, id: &Id) -> Result<bool, redb::Error> {
        self.run(|db| {
            let txn = db.begin_read()?;
            let refs = txn.open_table(REFS)?;
            Ok(refs.get((user, id.as_bytes()))?.is_some())
        })
    }

    /// The length recorded for shard `id` when it was put (by its first
    /// holder, by name; every holder recorded the same, since the bytes of
    /// an id never vary), or `None` if nobody references it.
    pub(crate) fn held_len(&self, id: &Id) -> Result<Option<u64>, redb::Error> {
        self.run(|db| {
            let txn = db.begin_read()?;
            let holders = txn.open_table(HOLDERS)?;
            let Some(user) = first_holder(&holders, id)? else {
                return Ok(None);
            };
            let refs = txn.open_table(REFS)?;
            Ok(refs
                .get((user.as_str(), id.as_bytes()))?
                .map(|len| len.value()))
        })
    }

    /// Whether any user references `id`.
    pub(crate) fn is_held(&self, id: &Id) -> Result<bool, redb::Error> {
        self.run(|db| {
            let txn = db.begin_read()?;
            let holders = txn.open_table(HOLDERS)?;
            Ok(first_holder(&holders, id)?.is_some())
        })
    }

    /// Up to `limit` shards that at least one user references, in id order,
    /// starting after `after` (from the first if `None`). One read
    /// transaction per page: a caller walks every held shard in memory
    /// bounded by `limit` ids, where collecting them all would take 32
    /// bytes per shard (320 MB at ten million). Pages from successive
    /// transactions may miss or repeat nothing that stays held throughout;
    /// shards referenced or released meanwhile may or may not appear.
    pub(crate) fn held_shards_page(
        &self,
        after: Option<&Id>,
        limit: usize,
    ) -> Result<Vec<Id>, redb::Error> {
        let start = match after {
            None => [0; Id::LEN],
            Some(after) => match successor(after.as_bytes()) {
                Some(next) => next,
                // The highest id: nothing comes after it.
                None => return Ok(Vec::new()),
            },
        };
        self.run(|db| {
            let txn = db.begin_read()?;
            let holders = txn.open_table(HOLDERS)?;
            let mut ids: Vec<Id> = Vec::new();
            // The empty name sorts first: the range starts at `start`'s first
            // holder, if any.
            for entry in holders.range((&start, "")..)? {
                let (key, _) = entry?;
                let id = Id::from_bytes(*key.value().0);
                // Keys are sorted by shard first, so duplicates are adjacent.
                if ids.last() != Some(&id) {
                    if ids.len() == limit {
                        break;
                    }
                    ids.push(id);
                }
            }
            Ok(ids)
        })
    }

    /// The bytes `user` references.
    pub(crate) fn usage(&self, user: &str) -> Result<u64, redb::Error> {
        self.run(|db| {
            let txn = db.begin_read()?;
            let usage = txn.open_table(USAGE)?;
            Ok(usage.get(user)?.map_or(0, |v| v.value()))
        })
    }

    /// Every user holding at least one reference, with their usage, in
    /// name order.
    pub(crate) fn usage_by_user(&self) -> Result<Vec<(String, u64)>, redb::Error> {
        self.run(|db| {
            let txn = db.begin_read()?;
            let usage = txn.open_table(USAGE)?;
            usage
                .iter()?
                .map(|entry| {
                    let (user, bytes) = entry?;
                    Ok((user.value().to_owned(), bytes.value()))
                })
                .collect()
        })
    }

    /// Adds user `name` with `record`, unless the name is invalid or taken.
    pub(crate) fn add_user(&self, name: &str, record: &UserRecord) -> Result<(), UserError> {
        check_user_name(name).map_err(|reason| UserError::InvalidName {
            name: name.to_owned(),
            reason,
        })?;
        self.run(|db| {
            let txn = db.begin_write()?;
            {
                let mut users = txn.open_table(USERS)?;
                if users.get(name)?.is_some() {
                    return Err(UserError::Exists {
                        name: name.to_owned(),
                    });
                }
                users.insert(name, record.encode().as_slice())?;
            }
            self.commit(txn)?;
            Ok(())
        })
    }

    /// User `name`'s record, if they exist.
    pub(crate) fn user(&self, name: &str) -> Result<Option<UserRecord>, QueryError> {
        self.run(|db| {
            let txn = db.begin_read()?;
            let users = txn.open_table(USERS)?;
            let Some(value) = users.get(name)? else {
                return Ok(None);
            };
            Ok(Some(UserRecord::decode(value.value(), name)?))
        })
    }

    /// Every user with their record, in name order.
    pub(crate) fn list_users(&self) -> Result<Vec<(String, UserRecord)>, QueryError> {
        self.run(|db| {
            let txn = db.begin_read()?;
            let users = txn.open_table(USERS)?;
            users
                .iter()?
                .map(|entry| {
                    let (name, value) = entry?;
                    let name = name.value();
                    Ok((name.to_owned(), UserRecord::decode(value.value(), name)?))
                })
                .collect()
        })
    }

    /// Sets user `name`'s quota, leaving the rest of their record as is.
    pub(crate) fn set_quota(&self, name: &str, quota: Option<u64>) -> Result<(), UserError> {
        self.run(|db| {
            let txn = db.begin_write()?;
            {
                let mut users = txn.open_table(USERS)?;
                let mut record = match users.get(name)? {
                    Some(value) => UserRecord::decode(value.value(), name)?,
                    None => {
                        return Err(UserError::NoSuchUser {
                            name: name.to_owned(),
                        });
                    }
                };
                record.quota = quota;
                users.insert(name, record.encode().as_slice())?;
            }
            self.commit(txn)?;
            Ok(())
        })
    }

    /// Removes, in one transaction, user `name`'s record, references (with
    /// their usage and holder entries) and index entries, and lists the
    /// shards nobody holds any more. Deletes no file: that is the caller's
    /// business. Refused as `NoSuchUser` only if there was nothing at all
    /// under the name, so that references left by puts for a name without
    /// a record can be cleaned up too.
    pub(crate) fn remove_user(&self, name: &str) -> Result<RemovedUser, UserError> {
        self.run(|db| {
            let txn = db.begin_write()?;
            let mut removed = RemovedUser::default();
            let had_record = txn.open_table(USERS)?.remove(name)?.is_some();
            {
                let mut refs = txn.open_table(REFS)?;
                let mut ids = Vec::new();
                // Every key of the range is the user's: it is bounded by their
                // name on both sides.
                for entry in
                    refs.extract_from_if((name, &FIRST_KEY)..=(name, &LAST_KEY), |_, _| true)?
                {
                    let (key, _) = entry?;
                    ids.push(Id::from_bytes(*key.value().1));
                }
                let mut holders = txn.open_table(HOLDERS)?;
                for id in ids {
                    holders.remove((id.as_bytes(), name))?;
                    removed.references += 1;
                    if first_holder(&holders, &id)?.is_none() {
                        // `refs` is ordered by id within a user, so this is too.
                        removed.unheld.push(id);
                    }
                }
                // The usage was the sum of exactly these references.
                txn.open_table(USAGE)?.remove(name)?;
            }
            {
                let mut index = txn.open_table(INDEX)?;
                for entry in
                    index.extract_from_if((name, &FIRST_KEY)..=(name, &LAST_KEY), |_, _| true)?
                {
                    entry?;
                    removed.index_entries += 1;
                }
            }
            if !had_record && removed.references == 0 && removed.index_entries == 0 {
                return Err(UserError::NoSuchUser {
                    name: name.to_owned(),
                });
            }
            self.commit(txn)?;
            Ok(removed)
        })
    }

    /// Stores `entry` for `user` unless the data is too long, the user has
    /// no record, or the stored version forbids it (see the `index` module
    /// docs).
    pub(crate) fn put_index(&self, user: &str, entry: &IndexEntry) -> Result<IndexPut, IndexError> {
        if entry.data.len() > MAX_INDEX_ENTRY_LEN {
            return Err(IndexError::TooLarge {
                len: entry.data.len(),
                max: MAX_INDEX_ENTRY_LEN,
            });
        }
        let change = Change::PutIndex {
            user: user.to_owned(),
            entry: entry.clone(),
        };
        let Changed::PutIndex(put) = self.change(change)? else {
            unreachable!("putting an index entry yields `PutIndex`")
        };
        put
    }

    /// `user`'s index entry `name`, if any.
    pub(crate) fn get_index(
        &self,
        user: &str,
        name: &[u8; 32],
    ) -> Result<Option<IndexEntry>, QueryError> {
        self.run(|db| {
            let txn = db.begin_read()?;
            let index_table = txn.open_table(INDEX)?;
            let Some(value) = index_table.get((user, name))? else {
                return Ok(None);
            };
            let (version, data) = index::decode(value.value(), user, name)?;
            Ok(Some(IndexEntry {
                name: *name,
                version,
                data: data.to_vec(),
            }))
        })
    }

    /// Up to `limit` of `user`'s index entries with names after `after`
    /// (from the first if `None`), in name order.
    pub(crate) fn list_index(
        &self,
        user: &str,
        after: Option<[u8; 32]>,
        limit: usize,
    ) -> Result<Vec<IndexEntry>, QueryError> {
        self.run(|db| {
            let txn = db.begin_read()?;
            let index_table = txn.open_table(INDEX)?;
            let lower = match &after {
                Some(after) => Bound::Excluded((user, after)),
                None => Bound::Included((user, &FIRST_KEY)),
            };
            let upper = Bound::Included((user, &LAST_KEY));
            index_table
                .range((lower, upper))?
                .take(limit)
                .map(|entry| {
                    let (key, value) = entry?;
                    let name = *key.value().1;
                    let (version, data) = index::decode(value.value(), user, &name)?;
                    Ok(IndexEntry {
                        name,
                        version,
                        data: data.to_vec(),
                    })
                })
                .collect()
        })
    }

    /// Deletes `user`'s index entry `name`; returns the version it had.
    pub(crate) fn delete_index(
        &self,
        user: &str,
        name: &[u8; 32],
    ) -> Result<Option<u64>, IndexError> {
        let change = Change::DeleteIndex {
            user: user.to_owned(),
            name: *name,
        };
        let Changed::DeletedIndex(deleted) = self.change(change)? else {
            unreachable!("deleting an index entry yields `DeletedIndex`")
        };
        deleted
    }

    /// Records a finished scrub, replacing the previous record.
    pub(crate) fn record_scrub(&self, record: &ScrubRecord) -> Result<(), redb::Error> {
        self.run(|db| {
            let txn = db.begin_write()?;
            txn.open_table(META)?
                .insert(LAST_SCRUB_KEY, record.encode().as_slice())?;
            self.commit(txn)?;
            Ok(())
        })
    }

    /// The last scrub recorded, if any.
    pub(crate) fn last_scrub(&self) -> Result<Option<ScrubRecord>, QueryError> {
        self.run(|db| {
            let txn = db.begin_read()?;
            let meta = txn.open_table(META)?;
            let Some(value) = meta.get(LAST_SCRUB_KEY)? else {
                return Ok(None);
            };
            Ok(Some(ScrubRecord::decode(value.value(), LAST_SCRUB_KEY)?))
        })
    }
}

/// Whether the database file at `path` does not exist or is empty: what
/// redb would initialise as a new database.
fn is_missing_or_empty(path: &Path) -> Result<bool, OpenError> {
    match fs::metadata(path) {
        Ok(file) => Ok(file.len() == 0),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(source) => Err(OpenError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Refuses to create a new database (at `path`) in `dir` if `dir/shards/`
/// holds any shard file: the old database was lost, and a new, empty one
/// would disown every shard (see [`OpenError::MetadataMissing`]).
fn refuse_if_shards_exist(dir: &Path, path: &Path) -> Result<(), OpenError> {
    let shards_dir = dir.join("shards");
    let shards = match crate::count_shards(dir) {
        Ok(shards) => shards,
        // A new store: no `shards/` yet.
        Err(e) if e.kind() == io::ErrorKind::NotFound && !shards_dir.exists() => 0,
        Err(source) => {
            return Err(OpenError::Io {
                path: shards_dir,
                source,
            });
        }
    };
    if shards == 0 {
        return Ok(());
    }
    Err(OpenError::MetadataMissing {
        path: path.to_owned(),
        shards,
    })
}

/// Checks (or, for a new database, writes) the schema version and makes
/// sure every table exists, so read transactions can open them.
fn check_schema(db: &Database, dir: &Path, path: &Path, opening: Opening) -> Result<(), OpenError> {
    let txn = db.begin_write().map_err(redb::Error::from)?;
    match read_schema(&txn)? {
        Schema::Version(SCHEMA_VERSION) => {}
        // Returning drops (aborts) the transaction: nothing is written.
        Schema::Version(found) => {
            return Err(OpenError::UnsupportedSchema {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        Schema::Foreign => {
            return Err(OpenError::MissingSchemaVersion {
                path: path.to_owned(),
            });
        }
        // A store that crashed before its first commit, or an empty
        // file: nothing an admin could work on.
        Schema::Empty if opening == Opening::ExistingOnly => {
            return Err(OpenError::NotAStore {
                dir: dir.to_owned(),
            });
        }
        // A database redb initialised but cairn never wrote to is as new
        // as a missing one.
        Schema::Empty => refuse_if_shards_exist(dir, path)?,
    }
    create_schema(&txn)?;
    txn.commit().map_err(redb::Error::from)?;
    Ok(())
}

/// An error that may be a failure of the database itself, after which
/// [`Meta::run`] reopens it.
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

/// What a database says about its schema.
enum Schema {
    /// A version is recorded.
    Version(u64),
    /// No version, and no other table: a new database.
    Empty,
    /// No readable version, but tables: not written by cairn.
    Foreign,
}

/// Reads the schema version recorded in a database.
fn read_schema(txn: &WriteTransaction) -> Result<Schema, redb::Error> {
    let foreign_tables = txn.list_tables()?.any(|table| table.name() != META.name());
    let meta = match txn.open_table(META) {
        Ok(meta) => meta,
        // A `meta` table of other types is someone else's.
        Err(TableError::TableTypeMismatch { .. }) => return Ok(Schema::Foreign),
        Err(e) => return Err(e.into()),
    };
    let found = meta.get(SCHEMA_VERSION_KEY)?;
    Ok(match found {
        Some(value) => match <[u8; 8]>::try_from(value.value()) {
            Ok(bytes) => Schema::Version(u64::from_be_bytes(bytes)),
            Err(_) => Schema::Foreign,
        },
        None if foreign_tables => Schema::Foreign,
        None => Schema::Empty,
    })
}

/// Writes the current schema version and creates any missing table.
fn create_schema(txn: &WriteTransaction) -> Result<(), redb::Error> {
    txn.open_table(META)?
        .insert(SCHEMA_VERSION_KEY, SCHEMA_VERSION.to_be_bytes().as_slice())?;
    txn.open_table(REFS)?;
    txn.open_table(HOLDERS)?;
    txn.open_table(USAGE)?;
    txn.open_table(USERS)?;
    txn.open_table(INDEX)?;
    Ok(())
}

/// The first user (by name) holding `id`, if any.
fn first_holder(
    holders: &impl ReadableTable<(&'static [u8; Id::LEN], &'static str), ()>,
    id: &Id,
) -> Result<Option<String>, redb::Error> {
    // The empty name sorts first, so the range starts at the shard's first
    // holder; it runs on into the next shards, hence the check.
    let first = holders.range((id.as_bytes(), "")..)?.next().transpose()?;
    Ok(first.and_then(|(key, _)| {
        let (holder_id, user) = key.value();
        (holder_id == id.as_bytes()).then(|| user.to_owned())
    }))
}

/// The id right after `id` in key order (as a 256-bit big-endian number,
/// plus one), or `None` for the highest.
fn successor(id: &[u8; Id::LEN]) -> Option<[u8; Id::LEN]> {
    let mut next = *id;
    for byte in next.iter_mut().rev() {
        let (sum, carry) = byte.overflowing_add(1);
        *byte = sum;
        if !carry {
            return Some(next);
        }
    }
    None
}

/// Adds `user`'s reference to `id` (`len` bytes) in `txn`, unless they
/// hold it already or `quota` would be exceeded by the usage as `txn` sees
/// it, which counts the changes of the batch applied before this one.
fn add_ref_in(
    txn: &WriteTransaction,
    user: &str,
    id: &Id,
    len: u64,
    quota: Option<u64>,
) -> Result<Added, redb::Error> {
    let mut refs = txn.open_table(REFS)?;
    if refs.get((user, id.as_bytes()))?.is_some() {
        return Ok(Added::AlreadyHeld);
    }
    let mut usage = txn.open_table(USAGE)?;
    let before = usage.get(user)?.map_or(0, |v| v.value());
    let after = before.saturating_add(len);
    if quota.is_some_and(|quota| after > quota) {
        // Nothing written: the batch's other changes go on.
        return Ok(Added::OverQuota { usage: before });
    }
    refs.insert((user, id.as_bytes()), len)?;
    txn.open_table(HOLDERS)?.insert((id.as_bytes(), user), ())?;
    usage.insert(user, after)?;
    Ok(Added::New)
}

/// Removes `user`'s reference to `id` in `txn`, if any, and says whether
/// anyone still holds the shard.
fn remove_ref_in(txn: &WriteTransaction, user: &str, id: &Id) -> Result<Removed, redb::Error> {
    let mut refs = txn.open_table(REFS)?;
    let Some(len) = refs.remove((user, id.as_bytes()))?.map(|v| v.value()) else {
        return Ok(Removed::NotReferenced);
    };
    let mut holders = txn.open_table(HOLDERS)?;
    holders.remove((id.as_bytes(), user))?;
    subtract_usage(&mut txn.open_table(USAGE)?, user, len)?;
    Ok(if first_holder(&holders, id)?.is_some() {
        Removed::OthersRemain
    } else {
        Removed::LastHolder
    })
}

/// Stores `entry` for `user` in `txn` if the user exists and the stored
/// version allows. The outer error is the database's; the inner result is
/// the put's own outcome, whose refusals write nothing.
fn put_index_in(
    txn: &WriteTransaction,
    user: &str,
    entry: &IndexEntry,
) -> Result<Result<IndexPut, IndexError>, redb::Error> {
    if txn.open_table(USERS)?.get(user)?.is_none() {
        return Ok(Err(IndexError::NoSuchUser {
            user: user.to_owned(),
        }));
    }
    let mut index_table = txn.open_table(INDEX)?;
    let replaced = match index_table.get((user, &entry.name))? {
        None => None,
        Some(value) => {
            let (stored, data) = match index::decode(value.value(), user, &entry.name) {
                Ok(decoded) => decoded,
                Err(e) => return Ok(Err(e.into())),
            };
            if stored > entry.version {
                return Ok(Err(IndexError::Stale {
                    stored,
                    offered: entry.version,
                }));
            }
            if stored == entry.version {
                return Ok(if data == entry.data.as_slice() {
                    Ok(IndexPut::Unchanged)
                } else {
                    Err(IndexError::Conflict { version: stored })
                });
            }
            Some(stored)
        }
    };
    let value = index::encode(entry.version, &entry.data);
    index_table.insert((user, &entry.name), value.as_slice())?;
    Ok(Ok(IndexPut::Stored { replaced }))
}

/// Deletes `user`'s index entry `name` in `txn`; returns the version it
/// had. Errors as for [`put_index_in`].
fn delete_index_in(
    txn: &WriteTransaction,
    user: &str,
    name: &[u8; 32],
) -> Result<Result<Option<u64>, IndexError>, redb::Error> {
    let mut index_table = txn.open_table(INDEX)?;
    let Some(value) = index_table.get((user, name))? else {
        return Ok(Ok(None));
    };
    // Decoded to report the version; an undecodable entry is refused
    // rather than deleted blind, which keeps it for an operator to look at.
    let version = match index::decode(value.value(), user, name) {
        Ok((version, _)) => version,
        Err(e) => return Ok(Err(e.into())),
    };
    drop(value);
    index_table.remove((user, name))?;
    Ok(Ok(Some(version)))
}

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

/// Lowers `user`'s usage by `len`, dropping the entry when it reaches 0.
fn subtract_usage(
    usage: &mut redb::Table<'_, &'static str, u64>,
    user: &str,
    len: u64,
) -> Result<(), redb::Error> {
    let before = usage.get(user)?.map_or(0, |v| v.value());
    let after = before.saturating_sub(len);
    if after == 0 {
        usage.remove(user)?;
    } else {
        usage.insert(user, after)?;
    }
    Ok(())
}

/// Defines, on a type with `dir: PathBuf` and `meta: Meta` fields, the
/// public operations that [`Store`](crate::Store) and
/// [`Admin`](crate::Admin) share: the database questions and the user and
/// index operations. Written once here so the two cannot drift apart, in
/// behaviour or in docs; each is a call into [`Meta`]. `remove_user` is not
/// here, since the two differ in what they do with unheld files.
macro_rules! shared_operations {
    ($type:ty) => {
        impl $type {
            /// The store's directory.
            pub fn dir(&self) -> &std::path::Path {
                &self.dir
            }

            /// Whether `user` references shard `id`.
            pub fn has_ref(&self, user: &str, id: &$crate::Id) -> Result<bool, $crate::QueryError> {
                Ok(self.meta.has_ref(user, id)?)
            }

            /// The bytes `user` references: the sum of the lengths of their
            /// shards.
            pub fn usage(&self, user: &str) -> Result<u64, $crate::QueryError> {
                Ok(self.meta.usage(user)?)
            }

            /// Every user holding at least one reference, with their usage
            /// in bytes, in name order. Names come from the references, so
            /// a user without a record who has references (see
            /// [`Store::put`](crate::Store::put)) is listed too, and a user
            /// with a record but no references is not.
            pub fn usage_by_user(&self) -> Result<Vec<(String, u64)>, $crate::QueryError> {
                Ok(self.meta.usage_by_user()?)
            }

            /// The number of shard files on disk, by walking them all; see
            /// [`count_shards`](crate::count_shards).
            pub fn shard_count(&self) -> std::io::Result<u64> {
                $crate::count_shards(&self.dir)
            }

            /// Adds user `name` with `record`.
            ///
            /// Refused with [`UserError::InvalidName`](crate::UserError::InvalidName)
            /// if the name breaks the [rules](crate::check_user_name), and
            /// with [`UserError::Exists`](crate::UserError::Exists) if the
            /// user exists (whatever their record says).
            pub fn add_user(
                &self,
                name: &str,
                record: &$crate::UserRecord,
            ) -> Result<(), $crate::UserError> {
                self.meta.add_user(name, record)
            }

            /// User `name`'s record, or `None` if there is no such user.
            pub fn user(
                &self,
                name: &str,
            ) -> Result<Option<$crate::UserRecord>, $crate::QueryError> {
                self.meta.user(name)
            }

            /// Every user and their record, in name order.
            pub fn list_users(
                &self,
            ) -> Result<Vec<(String, $crate::UserRecord)>, $crate::QueryError> {
                self.meta.list_users()
            }

            /// Sets user `name`'s quota in bytes (`None`: no limit). The
            /// quota is a record field: [`Store::put`](crate::Store::put)
            /// enforces the quota its caller passes, which the node reads
            /// from here. Lowering it below the user's usage removes
            /// nothing; it only refuses new references.
            pub fn set_quota(
                &self,
                name: &str,
                quota: Option<u64>,
            ) -> Result<(), $crate::UserError> {
                self.meta.set_quota(name, quota)
            }

            /// Stores index entry `entry` for `user`, if its version allows
            /// (see the [`index`](crate::index) rules): refused as
            /// [`Stale`](crate::IndexError::Stale) below the stored version,
            /// [`Unchanged`](crate::IndexPut::Unchanged) for a repeat of
            /// the stored entry, [`Conflict`](crate::IndexError::Conflict)
            /// for the stored version with other data,
            /// [`TooLarge`](crate::IndexError::TooLarge) over
            /// [`MAX_INDEX_ENTRY_LEN`](crate::MAX_INDEX_ENTRY_LEN) bytes and
            /// [`NoSuchUser`](crate::IndexError::NoSuchUser) for a user
            /// without a record.
            pub fn put_index(
                &self,
                user: &str,
                entry: &$crate::IndexEntry,
            ) -> Result<$crate::IndexPut, $crate::IndexError> {
                self.meta.put_index(user, entry)
            }

            /// `user`'s index entry called `name`, if any. Only `user`'s
            /// entries are searched.
            pub fn get_index(
                &self,
                user: &str,
                name: &[u8; 32],
            ) -> Result<Option<$crate::IndexEntry>, $crate::QueryError> {
                self.meta.get_index(user, name)
            }

            /// Up to `limit` of `user`'s index entries, in name order,
            /// starting after the name `after` (from the first if `None`).
            /// To page through them all, pass the last name of each page as
            /// the next `after`, until a page comes back shorter than
            /// `limit`. The caller bounds `limit`: a page holds up to
            /// `limit` × [`MAX_INDEX_ENTRY_LEN`](crate::MAX_INDEX_ENTRY_LEN)
            /// bytes.
            pub fn list_index(
                &self,
                user: &str,
                after: Option<[u8; 32]>,
                limit: usize,
            ) -> Result<Vec<$crate::IndexEntry>, $crate::QueryError> {
                self.meta.list_index(user, after, limit)
            }

            /// Deletes `user`'s index entry called `name`. Returns the
            /// version it had, or `None` if there was none.
            pub fn delete_index(
                &self,
                user: &str,
                name: &[u8; 32],
            ) -> Result<Option<u64>, $crate::IndexError> {
                self.meta.delete_index(user, name)
            }

            /// When the last [scrub](crate::Store::scrub) of this store
            /// finished and what it found, or `None` if none has finished.
            pub fn last_scrub(&self) -> Result<Option<$crate::ScrubRecord>, $crate::QueryError> {
                self.meta.last_scrub()
            }
        }
    };
}

pub(crate) use shared_operations;

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(dir: &Path) -> Meta {
        Meta::open(dir, Opening::CreateIfMissing).unwrap()
    }

    #[test]
    fn refs_usage_and_holders_move_together() {
        let dir = tempfile::tempdir().unwrap();
        let meta = meta(dir.path());
        let (a, b) = (Id::of(b"a"), Id::of(b"b"));
        assert_eq!(meta.add_ref("ann", &a, 10, None).unwrap(), Added::New);
        assert_eq!(
            meta.add_ref("ann", &a, 10, None).unwrap(),
            Added::AlreadyHeld
        );
        assert_eq!(meta.add_ref("bob", &a, 10, None).unwrap(), Added::New);
        assert_eq!(meta.add_ref("bob", &b, 5, None).unwrap(), Added::New);
        assert_eq!(
            meta.usage_by_user().unwrap(),
            [("ann".to_owned(), 10), ("bob".to_owned(), 15)]
        );
        let mut held = vec![a, b];
        held.sort();
        assert_eq!(meta.held_shards_page(None, 10).unwrap(), held);

        assert_eq!(meta.remove_ref("ann", &b).unwrap(), Removed::NotReferenced);
        assert_eq!(meta.remove_ref("ann", &a).unwrap(), Removed::OthersRemain);
        assert_eq!(meta.remove_ref("bob", &a).unwrap(), Removed::LastHolder);
        assert!(!meta.is_held(&a).unwrap());
        assert!(meta.is_held(&b).unwrap());
        assert_eq!(meta.usage_by_user().unwrap(), [("bob".to_owned(), 5)]);
        assert_eq!(meta.usage("ann").unwrap(), 0);
    }

    #[test]
    fn quota_is_checked_before_anything_changes() {
        let dir = tempfile::tempdir().unwrap();
        let meta = meta(dir.path());
        let id = Id::of(b"q");
        assert_eq!(
            meta.add_ref("ann", &Id::of(b"p"), 6, Some(10)).unwrap(),
            Added::New
        );
        assert_eq!(
            meta.add_ref("ann", &id, 5, Some(10)).unwrap(),
            Added::OverQuota { usage: 6 }
        );
        assert!(!meta.has_ref("ann", &id).unwrap());
        assert!(!meta.is_held(&id).unwrap());
        assert_eq!(meta.usage("ann").unwrap(), 6);
        // Exactly at the quota is allowed.
        assert_eq!(meta.add_ref("ann", &id, 4, Some(10)).unwrap(), Added::New);
    }

    #[test]
    fn remove_all_refs_releases_every_user() {
        let dir = tempfile::tempdir().unwrap();
        let meta = meta(dir.path());
        let (id, other) = (Id::of(b"x"), Id::of(b"y"));
        for user in ["ann", "bob", "cy"] {
            meta.add_ref(user, &id, 7, None).unwrap();
        }
        meta.add_ref("bob", &other, 3, None).unwrap();
        assert_eq!(meta.remove_all_refs(&id).unwrap(), 3);
        assert_eq!(meta.remove_all_refs(&id).unwrap(), 0);
        assert_eq!(meta.usage_by_user().unwrap(), [("bob".to_owned(), 3)]);
        assert!(meta.has_ref("bob", &other).unwrap());
    }

    /// Paging must neither skip nor repeat a shard, whatever the page
    /// length, including at the lowest and highest ids and for shards with
    /// several holders that straddle a page's end.
    #[test]
    fn held_shards_come_in_pages_without_gaps_or_repeats() {
        let dir = tempfile::tempdir().unwrap();
        let meta = meta(dir.path());
        let mut ids = vec![Id::from_bytes([0; 32]), Id::from_bytes([0xff; 32])];
        let mut below_carry = [0xff; 32];
        below_carry[0] = 0x10;
        ids.push(Id::from_bytes(below_carry));
        ids.extend((0..7u8).map(|n| Id::of(&[n])));
        for (n, id) in ids.iter().enumerate() {
            for user in ["ann", "bob", "cy"].iter().take(1 + n % 3) {
                meta.add_ref(user, id, 1, None).unwrap();
            }
        }
        ids.sort();
        for limit in 1..=ids.len() + 1 {
            let mut walked = Vec::new();
            let mut after = None;
            loop {
                let page = meta.held_shards_page(after.as_ref(), limit).unwrap();
                assert!(page.len() <= limit);
                walked.extend_from_slice(&page);
                // A paging bug that repeats shards must not loop forever.
                if page.len() < limit || walked.len() > ids.len() {
                    break;
                }
                after = page.last().copied();
            }
            assert_eq!(walked, ids, "pages of {limit}");
        }
        assert!(
            meta.held_shards_page(Some(&Id::from_bytes([0xff; 32])), 5)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn successor_counts_up_with_carry() {
        assert_eq!(successor(&[0; 32]).unwrap()[31], 1);
        let mut carry = [0; 32];
        carry[30] = 1;
        carry[31] = 0xff;
        let mut expected = [0; 32];
        expected[30] = 2;
        assert_eq!(successor(&carry), Some(expected));
        assert_eq!(successor(&[0xff; 32]), None);
    }

    #[test]
    fn first_holder_does_not_run_into_the_next_shard() {
        let dir = tempfile::tempdir().unwrap();
        let meta = meta(dir.path());
        let low = Id::from_bytes([1; 32]);
        let high = Id::from_bytes([2; 32]);
        meta.add_ref("ann", &high, 1, None).unwrap();
        assert!(!meta.is_held(&low).unwrap());
        assert!(meta.is_held(&high).unwrap());
    }
}
