//! The `index` table: `(user, entry name)` → index entry record (see the
//! crate's `index` module for the record and the version rules).

use std::ops::Bound;

use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use super::folders::{link_entry_in, take_seq_in, unlink_entry_in};
use super::users::USERS;
use super::{Change, Changed, FIRST_KEY, LAST_KEY, Metadata};
use crate::error::{IndexError, QueryError};
use crate::index::{
    self, FolderTag, IndexEntry, IndexPut, IndexRecord, LEGACY_FOLDER, MAX_INDEX_ENTRY_LEN,
    MAX_SUMMARY_LEN,
};

/// `(user, entry name)` → index entry record.
pub(super) const INDEX: TableDefinition<(&str, &[u8; 32]), &[u8]> = TableDefinition::new("index");

impl Metadata {
    /// Stores index entry `entry` for `user`, if its version allows
    /// (see the [`index`] rules), in [`LEGACY_FOLDER`] with its whole data
    /// as the summary: [`put_entry`](Self::put_entry) of that folder and
    /// `entry.data.len()`. Refused as
    /// [`Stale`](crate::IndexError::Stale) below the stored version,
    /// [`Unchanged`](crate::IndexPut::Unchanged) for a repeat of
    /// the stored entry, [`Conflict`](crate::IndexError::Conflict)
    /// for the stored version with other data,
    /// [`TooLarge`](crate::IndexError::TooLarge) over
    /// [`MAX_INDEX_ENTRY_LEN`] bytes and
    /// [`NoSuchUser`](crate::IndexError::NoSuchUser) for a user
    /// without a record.
    pub fn put_index(&self, user: &str, entry: &IndexEntry) -> Result<IndexPut, IndexError> {
        // A legacy entry's summary is its whole data, which may be longer
        // than a summary put with a folder may be.
        self.put_in_folder(user, entry, &LEGACY_FOLDER, entry.data.len())
    }

    /// Stores index entry `entry` for `user` in folder `folder`, its first
    /// `summary_len` bytes of data being its summary, if its version allows
    /// (the rules of [`put_index`](Self::put_index)). A repeat (same
    /// version, same data) is [`Unchanged`](crate::IndexPut::Unchanged)
    /// whatever its folder and summary length: a new folder takes a new
    /// version. A stored put takes the next sequence number of the change
    /// feed and, for an entry that moves, moves its folder row; all in one
    /// transaction. Also refused as
    /// [`SummaryTooLarge`](crate::IndexError::SummaryTooLarge) over
    /// [`MAX_SUMMARY_LEN`] bytes and as
    /// [`SummaryBeyondData`](crate::IndexError::SummaryBeyondData) for a
    /// summary longer than the data.
    pub fn put_entry(
        &self,
        user: &str,
        entry: &IndexEntry,
        folder: &FolderTag,
        summary_len: usize,
    ) -> Result<IndexPut, IndexError> {
        if summary_len > MAX_SUMMARY_LEN {
            return Err(IndexError::SummaryTooLarge {
                len: summary_len,
                max: MAX_SUMMARY_LEN,
            });
        }
        self.put_in_folder(user, entry, folder, summary_len)
    }

    /// [`put_entry`](Self::put_entry) without the bound on the summary.
    fn put_in_folder(
        &self,
        user: &str,
        entry: &IndexEntry,
        folder: &FolderTag,
        summary_len: usize,
    ) -> Result<IndexPut, IndexError> {
        if entry.data.len() > MAX_INDEX_ENTRY_LEN {
            return Err(IndexError::TooLarge {
                len: entry.data.len(),
                max: MAX_INDEX_ENTRY_LEN,
            });
        }
        if summary_len > entry.data.len() {
            return Err(IndexError::SummaryBeyondData {
                summary_len,
                data_len: entry.data.len(),
            });
        }
        let change = Change::PutIndex {
            user: user.to_owned(),
            entry: entry.clone(),
            folder: *folder,
            // At most MAX_INDEX_ENTRY_LEN, checked above.
            summary_len: summary_len as u32,
        };
        let Changed::PutIndex(put) = self.change(change)? else {
            unreachable!("putting an index entry yields `PutIndex`")
        };
        put
    }

    /// `user`'s index entry called `name`, with all its data, if any. Only
    /// `user`'s entries are searched.
    pub fn get_index(&self, user: &str, name: &[u8; 32]) -> Result<Option<IndexEntry>, QueryError> {
        self.run(|db| {
            let txn = db.begin_read()?;
            let index_table = txn.open_table(INDEX)?;
            let Some(value) = index_table.get((user, name))? else {
                return Ok(None);
            };
            let record = index::decode(value.value(), user, name)?;
            Ok(Some(IndexEntry {
                name: *name,
                version: record.version,
                data: record.data.to_vec(),
            }))
        })
    }

    /// Up to `limit` of `user`'s index entries, in name order, with all
    /// their data, starting after the name `after` (from the first if
    /// `None`), whatever their folder. To page through them all, pass the
    /// last name of each page as the next `after`, until a page comes back
    /// shorter than `limit`. The caller bounds `limit`: a page holds up to
    /// `limit` × [`MAX_INDEX_ENTRY_LEN`] bytes.
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
                    let record = index::decode(value.value(), user, &name)?;
                    Ok(IndexEntry {
                        name,
                        version: record.version,
                        data: record.data.to_vec(),
                    })
                })
                .collect()
        })
    }

    /// Deletes `user`'s index entry called `name`, with its folder row and
    /// its row in the change feed. Returns the version it had, or `None` if
    /// there was none.
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

/// What a put of an entry is: the entry, its folder and its summary
/// length (checked by the caller).
pub(super) struct EntryPut<'a> {
    pub(super) entry: &'a IndexEntry,
    pub(super) folder: &'a FolderTag,
    pub(super) summary_len: u32,
}

/// Stores `put` for `user` in `txn` if the user exists and the stored
/// version allows: the record, with the next sequence number, its folder
/// row and its change row, replacing the previous ones. The outer error is
/// the database's; the inner result is the put's own outcome, whose
/// refusals write nothing.
pub(super) fn put_index_in(
    txn: &WriteTransaction,
    user: &str,
    put: &EntryPut<'_>,
) -> Result<Result<IndexPut, IndexError>, redb::Error> {
    let entry = put.entry;
    if txn.open_table(USERS)?.get(user)?.is_none() {
        return Ok(Err(IndexError::NoSuchUser {
            user: user.to_owned(),
        }));
    }
    let mut index_table = txn.open_table(INDEX)?;
    let previous = match index_table.get((user, &entry.name))? {
        None => None,
        Some(value) => {
            let stored = match index::decode(value.value(), user, &entry.name) {
                Ok(decoded) => decoded,
                Err(e) => return Ok(Err(e.into())),
            };
            if stored.version > entry.version {
                return Ok(Err(IndexError::Stale {
                    stored: stored.version,
                    offered: entry.version,
                }));
            }
            if stored.version == entry.version {
                return Ok(if stored.data == entry.data.as_slice() {
                    Ok(IndexPut::Unchanged)
                } else {
                    Err(IndexError::Conflict {
                        version: stored.version,
                    })
                });
            }
            Some((stored.version, stored.folder, stored.seq))
        }
    };
    if let Some((_, folder, seq)) = &previous {
        unlink_entry_in(txn, user, &entry.name, folder, *seq)?;
    }
    let seq = take_seq_in(txn)?;
    let record = IndexRecord {
        version: entry.version,
        folder: *put.folder,
        seq,
        summary_len: put.summary_len,
        data: &entry.data,
    };
    link_entry_in(txn, user, &entry.name, &record)?;
    index_table.insert((user, &entry.name), index::encode(&record).as_slice())?;
    Ok(Ok(IndexPut::Stored {
        replaced: previous.map(|(version, _, _)| version),
    }))
}

/// Deletes `user`'s index entry `name` in `txn`, with its folder and
/// change rows; returns the version it had. Errors as for
/// [`put_index_in`].
pub(super) fn delete_index_in(
    txn: &WriteTransaction,
    user: &str,
    name: &[u8; 32],
) -> Result<Result<Option<u64>, IndexError>, redb::Error> {
    let mut index_table = txn.open_table(INDEX)?;
    let Some(value) = index_table.get((user, name))? else {
        return Ok(Ok(None));
    };
    // Decoded to report the version and find the other rows; an
    // undecodable entry is refused rather than deleted blind, which keeps
    // it for an operator to look at.
    let (version, folder, seq) = match index::decode(value.value(), user, name) {
        Ok(record) => (record.version, record.folder, record.seq),
        Err(e) => return Ok(Err(e.into())),
    };
    drop(value);
    index_table.remove((user, name))?;
    unlink_entry_in(txn, user, name, &folder, seq)?;
    Ok(Ok(Some(version)))
}
