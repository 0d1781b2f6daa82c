//! The `folders` and `changes` tables, two more orders of a user's index
//! entries beside `index`'s name order, and the change feed's state in
//! `meta` (see the crate's `index` module for what folders, summaries and
//! the feed are to a client).
//!
//! - `folder_entries`: `(user, folder tag, entry name)` → the entry's
//!   version (8 bytes big-endian) ‖ its summary: one row per entry, so
//!   that one folder's listing is one range read, in name order, from
//!   rows a few hundred bytes long, without touching the (larger) index
//!   records. Schema version 3 had a `folders` table of the same keys
//!   without values; the upgrade to 4 replaces it.
//! - `changes`: `(user, sequence number)` → entry name: one row per
//!   entry, at the sequence number of its latest stored put, so that what
//!   changed since a number is one range, in the order it changed.
//! - `meta`'s `"feed_id"` (the feed's random id) and `"next_seq"` (the
//!   sequence number the next stored put takes, from 1), both 8 bytes
//!   big-endian.
//!
//! Both tables are derived from `index`: each entry's record holds its
//! folder and sequence number, and every write of a record (a put, a
//! delete, removing a user, the upgrade to schema version 3) writes its
//! two rows in the same transaction, so the three tables never disagree.
//! Sequence numbers are one counter for the whole database, taken in
//! commit order (redb runs one write transaction at a time, across
//! processes too): a reader never sees a number that a later commit could
//! fall below, so "everything after n" stays right for whoever remembers n.

use std::hash::{BuildHasher, Hasher};
use std::ops::Bound;
use std::time::{SystemTime, UNIX_EPOCH};

use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use super::index::INDEX;
use super::schema::META;
use super::{FIRST_KEY, LAST_KEY, Metadata};
use crate::error::QueryError;
use crate::index::{self, ChangePage, ChangedEntry, FolderTag, IndexEntry, IndexRecord};

/// `(user, folder tag, entry name)` → version ‖ summary: the user's
/// entries by folder (see [`folder_row`]).
pub(super) const FOLDERS: TableDefinition<FolderKey, &[u8]> =
    TableDefinition::new("folder_entries");

/// A `folder_entries` key: `(user, folder tag, entry name)`.
type FolderKey = (&'static str, &'static [u8; 32], &'static [u8; 32]);

/// Schema version 3's `folders` table, rows without values: deleted by
/// the upgrade to version 4.
const FOLDERS_V3: TableDefinition<(&str, &[u8; 32], &[u8; 32]), ()> =
    TableDefinition::new("folders");

/// The value of a `folder_entries` row: `version` (8 bytes big-endian)
/// then `summary`.
fn folder_row(version: u64, summary: &[u8]) -> Vec<u8> {
    let mut row = Vec::with_capacity(8 + summary.len());
    row.extend_from_slice(&version.to_be_bytes());
    row.extend_from_slice(summary);
    row
}

/// The version and summary of a `folder_entries` row's value.
fn read_folder_row(row: &[u8]) -> Result<(u64, &[u8]), redb::Error> {
    match row.split_first_chunk::<8>() {
        Some((version, summary)) => Ok((u64::from_be_bytes(*version), summary)),
        None => Err(redb::Error::Corrupted(format!(
            "a folder_entries row of {} bytes, shorter than its version",
            row.len()
        ))),
    }
}

/// `(user, sequence number)` → entry name: the change feed, one row per
/// entry at its latest change.
pub(super) const CHANGES: TableDefinition<(&str, u64), &[u8; 32]> = TableDefinition::new("changes");

/// `meta` key of the feed's id.
const FEED_ID_KEY: &str = "feed_id";

/// `meta` key of the next sequence number.
const NEXT_SEQ_KEY: &str = "next_seq";

/// How many entries the upgrade rewrites per step: it holds that many
/// records in memory at once, whatever the size of the index.
const UPGRADE_STEP: usize = 1024;

impl Metadata {
    /// Up to `limit` of `user`'s index entries in folder `folder`, in name
    /// order, starting after the name `after` (from the first if `None`),
    /// each with its summary as its data (the rest of the data only comes
    /// from [`get_index`](Self::get_index)). Page through them as through
    /// [`list_index`](Self::list_index). Only `user`'s entries are
    /// searched.
    pub fn list_folder(
        &self,
        user: &str,
        folder: &FolderTag,
        after: Option<[u8; 32]>,
        limit: usize,
    ) -> Result<Vec<IndexEntry>, QueryError> {
        self.run(|db| {
            let txn = db.begin_read()?;
            let folders = txn.open_table(FOLDERS)?;
            let lower = match &after {
                Some(after) => Bound::Excluded((user, folder, after)),
                None => Bound::Included((user, folder, &FIRST_KEY)),
            };
            let upper = Bound::Included((user, folder, &LAST_KEY));
            let mut listed = Vec::new();
            for row in folders.range((lower, upper))?.take(limit) {
                let (key, value) = row?;
                let (version, summary) = read_folder_row(value.value())?;
                listed.push(IndexEntry {
                    name: *key.value().2,
                    version,
                    data: summary.to_vec(),
                });
            }
            Ok(listed)
        })
    }

    /// The change feed of `user`: their entries whose latest change has a
    /// sequence number above `since`, in sequence order, each name once,
    /// with its summary; only those in folder `folder` if one is given.
    ///
    /// Stops at `limit` entries, or after examining `max_examined` rows of
    /// the feed (the rows a folder filter skips count too, so a filtered
    /// request is bounded even when few rows match). The page's
    /// [`next`](ChangePage::next) is the highest sequence number examined
    /// (or `since`, if none was): pass it as the next `since`. Its
    /// [`more`](ChangePage::more) says whether rows after it exist. A
    /// client that finds another [`feed`](ChangePage::feed) id than
    /// before starts again from 0.
    pub fn changes(
        &self,
        user: &str,
        since: u64,
        folder: Option<&FolderTag>,
        limit: usize,
        max_examined: usize,
    ) -> Result<ChangePage, QueryError> {
        self.run(|db| {
            let txn = db.begin_read()?;
            let feed = read_meta_number(&txn.open_table(META)?, FEED_ID_KEY)?;
            let mut page = ChangePage {
                feed,
                entries: Vec::new(),
                next: since,
                more: false,
            };
            if since == u64::MAX {
                return Ok(page);
            }
            let changes = txn.open_table(CHANGES)?;
            let index_table = txn.open_table(INDEX)?;
            let range = (
                Bound::Excluded((user, since)),
                Bound::Included((user, u64::MAX)),
            );
            for (examined, row) in changes.range(range)?.enumerate() {
                if page.entries.len() >= limit || examined >= max_examined {
                    // A row after `next` exists: this one.
                    page.more = true;
                    break;
                }
                let (key, value) = row?;
                let seq = key.value().1;
                let name = *value.value();
                page.next = seq;
                let Some(stored) = index_table.get((user, &name))? else {
                    continue;
                };
                let record = index::decode(stored.value(), user, &name)?;
                if folder.is_some_and(|folder| *folder != record.folder) {
                    continue;
                }
                page.entries.push(ChangedEntry {
                    name,
                    version: record.version,
                    seq,
                    summary: record.summary().to_vec(),
                });
            }
            Ok(page)
        })
    }

    /// The change feed's id: chosen at random when the database got its
    /// feed (when it was created, or upgraded to schema version 3), and
    /// never changed. Another id than before means another database.
    pub fn feed_id(&self) -> Result<u64, QueryError> {
        self.run(|db| {
            let txn = db.begin_read()?;
            Ok(read_meta_number(&txn.open_table(META)?, FEED_ID_KEY)?)
        })
    }
}

/// A number that `meta` keeps under `key`, 8 bytes big-endian. Missing or
/// of another length, the database is damaged.
fn read_meta_number(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<u64, redb::Error> {
    let value = meta.get(key)?;
    value
        .and_then(|value| <[u8; 8]>::try_from(value.value()).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| {
            redb::Error::Corrupted(format!(
                "the meta table's {key:?} is missing or not 8 bytes"
            ))
        })
}

/// Takes the next sequence number of the feed, in `txn`.
pub(super) fn take_seq_in(txn: &WriteTransaction) -> Result<u64, redb::Error> {
    let mut meta = txn.open_table(META)?;
    let seq = read_meta_number(&meta, NEXT_SEQ_KEY)?;
    let next = seq
        .checked_add(1)
        .ok_or_else(|| redb::Error::Corrupted("the feed's sequence numbers ran out".into()))?;
    meta.insert(NEXT_SEQ_KEY, next.to_be_bytes().as_slice())?;
    Ok(seq)
}

/// Adds the `folder_entries` and `changes` rows of `user`'s entry `name`
/// (stored at `record`'s version, in its folder, with its summary and
/// sequence number).
pub(super) fn link_entry_in(
    txn: &WriteTransaction,
    user: &str,
    name: &[u8; 32],
    record: &IndexRecord<'_>,
) -> Result<(), redb::Error> {
    txn.open_table(FOLDERS)?.insert(
        (user, &record.folder, name),
        folder_row(record.version, record.summary()).as_slice(),
    )?;
    txn.open_table(CHANGES)?.insert((user, record.seq), name)?;
    Ok(())
}

/// Removes the `folder_entries` and `changes` rows of `user`'s entry `name`, which
/// was in folder `folder` with sequence number `seq`.
pub(super) fn unlink_entry_in(
    txn: &WriteTransaction,
    user: &str,
    name: &[u8; 32],
    folder: &FolderTag,
    seq: u64,
) -> Result<(), redb::Error> {
    txn.open_table(FOLDERS)?.remove((user, folder, name))?;
    let mut changes = txn.open_table(CHANGES)?;
    // Only the entry's own row: a record read before the upgrade has
    // sequence number 0, which is nobody's.
    let own = changes
        .get((user, seq))?
        .is_some_and(|row| row.value() == name);
    if own {
        changes.remove((user, seq))?;
    }
    Ok(())
}

/// Removes every `folder_entries` and `changes` row of `user`.
pub(super) fn remove_user_rows_in(txn: &WriteTransaction, user: &str) -> Result<(), redb::Error> {
    let mut folders = txn.open_table(FOLDERS)?;
    // Every key of these ranges is the user's: they are bounded by the
    // name on both sides.
    for row in folders.extract_from_if(
        (user, &FIRST_KEY, &FIRST_KEY)..=(user, &LAST_KEY, &LAST_KEY),
        |_, _| true,
    )? {
        row?;
    }
    let mut changes = txn.open_table(CHANGES)?;
    for row in changes.extract_from_if((user, 0)..=(user, u64::MAX), |_, _| true)? {
        row?;
    }
    Ok(())
}

/// Gives the database its change feed, in `txn`: the upgrade to schema
/// version 3, and the start of a new database. Every index entry that
/// decodes is rewritten in the current record format, keeping its folder
/// ([`LEGACY_FOLDER`](crate::index::LEGACY_FOLDER) for one of format 1)
/// and summary, with a sequence number of its own (in `(user, name)`
/// order), and gets its `folder_entries` and `changes` rows; the next sequence
/// number and a random feed id are recorded. An entry that does not decode
/// (written by a newer cairn, or damaged) is left as it is, without rows:
/// reading it fails as before, and nothing is lost.
///
/// Runs in the transaction that records the new schema version, so a
/// crash before its commit leaves the database as it was (still version
/// 2, or 1) and one after leaves it upgraded: never half of it.
pub(super) fn start_feed_in(txn: &WriteTransaction) -> Result<(), redb::Error> {
    let mut next_seq: u64 = 1;
    let mut after: Option<(String, [u8; 32])> = None;
    loop {
        // A step at a time: read some records, then rewrite them, since a
        // table cannot be written while it is iterated.
        let mut step = Vec::with_capacity(UPGRADE_STEP);
        let mut seen = 0;
        {
            let index_table = txn.open_table(INDEX)?;
            let lower = match &after {
                Some((user, name)) => Bound::Excluded((user.as_str(), name)),
                None => Bound::Unbounded,
            };
            for row in index_table
                .range::<(&str, &[u8; 32])>((lower, Bound::Unbounded))?
                .take(UPGRADE_STEP)
            {
                let (key, value) = row?;
                let (user, name) = key.value();
                seen += 1;
                after = Some((user.to_owned(), *name));
                let Ok(record) = index::decode(value.value(), user, name) else {
                    continue;
                };
                let seq = next_seq;
                next_seq += 1;
                let owned = (record.version, record.folder, record.summary_len);
                step.push((user.to_owned(), *name, seq, owned, record.data.to_vec()));
            }
        }
        let mut index_table = txn.open_table(INDEX)?;
        for (user, name, seq, (version, folder, summary_len), data) in &step {
            let record = IndexRecord {
                version: *version,
                folder: *folder,
                seq: *seq,
                summary_len: *summary_len,
                data,
            };
            index_table.insert((user.as_str(), name), index::encode(&record).as_slice())?;
            link_entry_in(txn, user, name, &record)?;
        }
        if seen < UPGRADE_STEP {
            break;
        }
    }
    let mut meta = txn.open_table(META)?;
    meta.insert(NEXT_SEQ_KEY, next_seq.to_be_bytes().as_slice())?;
    meta.insert(FEED_ID_KEY, random_feed_id().to_be_bytes().as_slice())?;
    Ok(())
}

/// The upgrade from schema version 3 to 4, in `txn`: version 3's
/// `folders` rows (keys only) give way to `folder_entries` rows holding
/// each entry's version and summary, read from its index record; records,
/// sequence numbers and the feed stay as they are. An entry that does not
/// decode is left without a row, as [`start_feed_in`] leaves it.
pub(super) fn fill_folder_entries_in(txn: &WriteTransaction) -> Result<(), redb::Error> {
    txn.delete_table(FOLDERS_V3)?;
    let index_table = txn.open_table(INDEX)?;
    let mut folders = txn.open_table(FOLDERS)?;
    for row in index_table.iter()? {
        let (key, value) = row?;
        let (user, name) = key.value();
        let Ok(record) = index::decode(value.value(), user, name) else {
            continue;
        };
        folders.insert(
            (user, &record.folder, name),
            folder_row(record.version, record.summary()).as_slice(),
        )?;
    }
    Ok(())
}

/// A new feed id: random, nonzero, and below 2^53 so that it survives a
/// JSON number read by JavaScript. Not a secret, only different for every
/// database: std's `RandomState` keys come from the operating system's
/// random source, and the time and process id are mixed in.
fn random_feed_id() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    hasher.write_u128(now);
    hasher.write_u32(std::process::id());
    (hasher.finish() & ((1 << 53) - 1)).max(1)
}
