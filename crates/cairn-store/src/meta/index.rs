//! The `index` table: `(user, entry name)` → index entry record (see the
//! crate's `index` module for the record and the version rules).

use std::ops::Bound;

use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use super::users::USERS;
use super::{Change, Changed, FIRST_KEY, LAST_KEY, Metadata};
use crate::error::{IndexError, QueryError};
use crate::index::{self, IndexEntry, IndexPut, MAX_INDEX_ENTRY_LEN};

/// `(user, entry name)` → index entry record.
pub(super) const INDEX: TableDefinition<(&str, &[u8; 32]), &[u8]> = TableDefinition::new("index");

impl Metadata {
    /// Stores index entry `entry` for `user`, if its version allows
    /// (see the [`index`] rules): refused as
    /// [`Stale`](crate::IndexError::Stale) below the stored version,
    /// [`Unchanged`](crate::IndexPut::Unchanged) for a repeat of
    /// the stored entry, [`Conflict`](crate::IndexError::Conflict)
    /// for the stored version with other data,
    /// [`TooLarge`](crate::IndexError::TooLarge) over
    /// [`MAX_INDEX_ENTRY_LEN`] bytes and
    /// [`NoSuchUser`](crate::IndexError::NoSuchUser) for a user
    /// without a record.
    pub fn put_index(&self, user: &str, entry: &IndexEntry) -> Result<IndexPut, IndexError> {
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

    /// `user`'s index entry called `name`, if any. Only `user`'s
    /// entries are searched.
    pub fn get_index(&self, user: &str, name: &[u8; 32]) -> Result<Option<IndexEntry>, QueryError> {
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

    /// Up to `limit` of `user`'s index entries, in name order,
    /// starting after the name `after` (from the first if `None`).
    /// To page through them all, pass the last name of each page as
    /// the next `after`, until a page comes back shorter than
    /// `limit`. The caller bounds `limit`: a page holds up to
    /// `limit` × [`MAX_INDEX_ENTRY_LEN`]
    /// bytes.
    pub fn list_index(
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

    /// Deletes `user`'s index entry called `name`. Returns the
    /// version it had, or `None` if there was none.
    pub fn delete_index(&self, user: &str, name: &[u8; 32]) -> Result<Option<u64>, IndexError> {
        let change = Change::DeleteIndex {
            user: user.to_owned(),
            name: *name,
        };
        let Changed::DeletedIndex(deleted) = self.change(change)? else {
            unreachable!("deleting an index entry yields `DeletedIndex`")
        };
        deleted
    }
}

/// Stores `entry` for `user` in `txn` if the user exists and the stored
/// version allows. The outer error is the database's; the inner result is
/// the put's own outcome, whose refusals write nothing.
pub(super) fn put_index_in(
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
pub(super) fn delete_index_in(
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
