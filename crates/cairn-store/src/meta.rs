//! The metadata database: who references which shard, and how many bytes
//! each user holds.
//!
//! # Schema (version 1)
//!
//! | table | key | value | meaning |
//! | --- | --- | --- | --- |
//! | `meta` | `&str` | `u64` | `"schema_version"` → [`SCHEMA_VERSION`] |
//! | `refs` | `(user, shard id)` | `u64` | the user references the shard, which is this many bytes long |
//! | `holders` | `(shard id, user)` | `()` | the same references, ordered by shard |
//! | `usage` | `user` | `u64` | sum of the lengths of the user's references; absent when 0 |
//!
//! `holders` is the reverse index of `refs`: it answers "is anyone left
//! holding this shard?" and "who holds it?" with a short range scan instead
//! of a full one. Both tables and `usage` change only together, in one
//! transaction, so they cannot disagree. A shard's holder count is the
//! length of its `holders` range, rather than a stored counter that could
//! drift from the references it counts.
//!
//! # Versioning
//!
//! A new database gets the current version. A database with any other
//! version is refused at open rather than guessed at: a newer cairn may
//! have changed what the tables mean. A database with tables but no version
//! did not come from cairn and is refused too. A future schema change bumps
//! [`SCHEMA_VERSION`] and adds a migration from each older version.

use std::path::Path;

use cairn_core::Id;
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, TableHandle,
    WriteTransaction,
};

use crate::error::OpenError;

/// The schema version this code reads and writes.
pub(crate) const SCHEMA_VERSION: u64 = 1;

const SCHEMA_VERSION_KEY: &str = "schema_version";

/// Database-wide settings, such as the schema version.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// `(user, shard id)` → shard length in bytes.
const REFS: TableDefinition<(&str, &[u8; Id::LEN]), u64> = TableDefinition::new("refs");
/// `(shard id, user)` → nothing: the reverse index of `REFS`.
const HOLDERS: TableDefinition<(&[u8; Id::LEN], &str), ()> = TableDefinition::new("holders");
/// `user` → bytes referenced.
const USAGE: TableDefinition<&str, u64> = TableDefinition::new("usage");

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

/// The metadata database of one store.
#[derive(Debug)]
pub(crate) struct Meta {
    db: Database,
    /// Whether commits wait for the disk (see `StoreOptions::sync`).
    sync: bool,
}

impl Meta {
    /// Opens or creates the database at `path` and checks its schema
    /// version, writing the current one into a new database.
    ///
    /// Opening takes redb's exclusive lock on the file, which is what keeps
    /// two stores (or processes) off the same directory.
    pub(crate) fn open(path: &Path, sync: bool) -> Result<Self, OpenError> {
        let db = Database::create(path).map_err(|e| match redb::Error::from(e) {
            redb::Error::DatabaseAlreadyOpen => OpenError::Locked {
                path: path.to_owned(),
            },
            other => OpenError::Database(other),
        })?;
        let meta = Self { db, sync };
        meta.check_schema(path)?;
        Ok(meta)
    }

    /// Checks (or, for a new database, writes) the schema version and makes
    /// sure every table exists, so read transactions can open them.
    fn check_schema(&self, path: &Path) -> Result<(), OpenError> {
        // Always durable: a store must not come back from a crash without
        // the version that says how to read it.
        let txn = self.db.begin_write().map_err(redb::Error::from)?;
        let (found, foreign_tables) = read_schema(&txn)?;
        match found {
            Some(SCHEMA_VERSION) => {}
            // Returning drops (aborts) the transaction: nothing is written.
            Some(found) => {
                return Err(OpenError::UnsupportedSchema {
                    found,
                    supported: SCHEMA_VERSION,
                });
            }
            None if foreign_tables => {
                return Err(OpenError::MissingSchemaVersion {
                    path: path.to_owned(),
                });
            }
            None => {}
        }
        create_schema(&txn)?;
        txn.commit().map_err(redb::Error::from)?;
        Ok(())
    }

    /// Starts a write transaction with the store's durability.
    fn begin_write(&self) -> Result<WriteTransaction, redb::Error> {
        let mut txn = self.db.begin_write()?;
        if !self.sync {
            txn.set_durability(Durability::None)?;
        }
        Ok(txn)
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
        let txn = self.begin_write()?;
        {
            let mut refs = txn.open_table(REFS)?;
            if refs.get((user, id.as_bytes()))?.is_some() {
                return Ok(Added::AlreadyHeld);
            }
            let mut usage = txn.open_table(USAGE)?;
            let before = usage.get(user)?.map_or(0, |v| v.value());
            let after = before.saturating_add(len);
            if quota.is_some_and(|quota| after > quota) {
                // Dropping the transaction aborts it.
                return Ok(Added::OverQuota { usage: before });
            }
            refs.insert((user, id.as_bytes()), len)?;
            txn.open_table(HOLDERS)?.insert((id.as_bytes(), user), ())?;
            usage.insert(user, after)?;
        }
        txn.commit()?;
        Ok(Added::New)
    }

    /// Removes `user`'s reference to `id`, if any, and says whether anyone
    /// still holds the shard.
    pub(crate) fn remove_ref(&self, user: &str, id: &Id) -> Result<Removed, redb::Error> {
        let txn = self.begin_write()?;
        let removed = {
            let mut refs = txn.open_table(REFS)?;
            let Some(len) = refs.remove((user, id.as_bytes()))?.map(|v| v.value()) else {
                return Ok(Removed::NotReferenced);
            };
            let mut holders = txn.open_table(HOLDERS)?;
            holders.remove((id.as_bytes(), user))?;
            subtract_usage(&mut txn.open_table(USAGE)?, user, len)?;
            if first_holder(&holders, id)?.is_some() {
                Removed::OthersRemain
            } else {
                Removed::LastHolder
            }
        };
        txn.commit()?;
        Ok(removed)
    }

    /// Removes every user's reference to `id`, adjusting their usage.
    /// Returns how many references there were.
    pub(crate) fn remove_all_refs(&self, id: &Id) -> Result<u64, redb::Error> {
        let txn = self.begin_write()?;
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
        txn.commit()?;
        Ok(removed)
    }

    /// Whether `user` references `id`.
    pub(crate) fn has_ref(&self, user: &str, id: &Id) -> Result<bool, redb::Error> {
        let txn = self.db.begin_read()?;
        let refs = txn.open_table(REFS)?;
        Ok(refs.get((user, id.as_bytes()))?.is_some())
    }

    /// Whether any user references `id`.
    pub(crate) fn is_held(&self, id: &Id) -> Result<bool, redb::Error> {
        let txn = self.db.begin_read()?;
        let holders = txn.open_table(HOLDERS)?;
        Ok(first_holder(&holders, id)?.is_some())
    }

    /// Every shard at least one user references, in id order.
    pub(crate) fn held_shards(&self) -> Result<Vec<Id>, redb::Error> {
        let txn = self.db.begin_read()?;
        let holders = txn.open_table(HOLDERS)?;
        let mut ids: Vec<Id> = Vec::new();
        for entry in holders.iter()? {
            let (key, _) = entry?;
            let id = Id::from_bytes(*key.value().0);
            // Keys are sorted by shard first, so duplicates are adjacent.
            if ids.last() != Some(&id) {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// The bytes `user` references.
    pub(crate) fn usage(&self, user: &str) -> Result<u64, redb::Error> {
        let txn = self.db.begin_read()?;
        let usage = txn.open_table(USAGE)?;
        Ok(usage.get(user)?.map_or(0, |v| v.value()))
    }

    /// Every user holding at least one reference, with their usage, in
    /// name order.
    pub(crate) fn users(&self) -> Result<Vec<(String, u64)>, redb::Error> {
        let txn = self.db.begin_read()?;
        let usage = txn.open_table(USAGE)?;
        usage
            .iter()?
            .map(|entry| {
                let (user, bytes) = entry?;
                Ok((user.value().to_owned(), bytes.value()))
            })
            .collect()
    }
}

/// The schema version recorded in a database, and whether it has tables
/// other than `meta`.
fn read_schema(txn: &WriteTransaction) -> Result<(Option<u64>, bool), redb::Error> {
    let foreign_tables = txn.list_tables()?.any(|table| table.name() != META.name());
    let meta = txn.open_table(META)?;
    let found = meta.get(SCHEMA_VERSION_KEY)?.map(|v| v.value());
    Ok((found, foreign_tables))
}

/// Writes the current schema version and creates any missing table.
fn create_schema(txn: &WriteTransaction) -> Result<(), redb::Error> {
    txn.open_table(META)?
        .insert(SCHEMA_VERSION_KEY, SCHEMA_VERSION)?;
    txn.open_table(REFS)?;
    txn.open_table(HOLDERS)?;
    txn.open_table(USAGE)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(dir: &Path) -> Meta {
        Meta::open(&dir.join("meta.redb"), false).unwrap()
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
            meta.users().unwrap(),
            [("ann".to_owned(), 10), ("bob".to_owned(), 15)]
        );
        let mut held = vec![a, b];
        held.sort();
        assert_eq!(meta.held_shards().unwrap(), held);

        assert_eq!(meta.remove_ref("ann", &b).unwrap(), Removed::NotReferenced);
        assert_eq!(meta.remove_ref("ann", &a).unwrap(), Removed::OthersRemain);
        assert_eq!(meta.remove_ref("bob", &a).unwrap(), Removed::LastHolder);
        assert!(!meta.is_held(&a).unwrap());
        assert!(meta.is_held(&b).unwrap());
        assert_eq!(meta.users().unwrap(), [("bob".to_owned(), 5)]);
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
        assert_eq!(meta.users().unwrap(), [("bob".to_owned(), 3)]);
        assert!(meta.has_ref("bob", &other).unwrap());
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
