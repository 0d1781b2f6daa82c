//! Index entries: each user's small, versioned, opaque records.
//!
//! A client keeps its file index on the nodes as entries: a 32-byte name
//! and up to [`MAX_INDEX_ENTRY_LEN`] bytes of data, both opaque to the node
//! (the client encrypts the data and derives the name from a key the node
//! never sees), plus a version the client increments with every change.
//!
//! # Folders, summaries and the change feed
//!
//! An entry put with [`put_entry`](crate::Metadata::put_entry) also has a
//! [`FolderTag`] (32 opaque bytes: the client's keyed hash of the entry's
//! parent folder path) and a summary length: the first `summary_len` bytes
//! of its data are a small sealed summary, at most [`MAX_SUMMARY_LEN`]
//! bytes. Entries put with [`put_index`](crate::Metadata::put_index), and
//! every entry of a store upgraded from schema version 2, are in
//! [`LEGACY_FOLDER`] with their whole data as the summary.
//!
//! - [`list_folder`](crate::Metadata::list_folder) lists one folder's
//!   entries in name order, each with its summary only; the rest of an
//!   entry's data (an inline file's bytes, say) comes back only from
//!   [`get_index`](crate::Metadata::get_index).
//! - [`changes`](crate::Metadata::changes) is the change feed: every
//!   stored put (not a repeat) takes the database's next sequence number,
//!   and the feed holds one row per live entry, at the sequence number of
//!   its latest put. A client that remembers the last number it saw asks
//!   only for what changed since. A delete removes the entry's row: the
//!   feed lists what exists, so a client that must learn of deletions
//!   puts tombstone entries, which the feed carries like any other put.
//!
//! # Guarantees
//!
//! - **Isolated.** Every entry is keyed by `(user, name)` and every
//!   operation takes the user, which the node sets from the authenticated
//!   session: a user can neither see nor change another's entries, whatever
//!   name they send.
//! - **Versions only go up.** A put offering a lower version than the
//!   stored one is refused as [`Stale`](crate::IndexError::Stale), so a
//!   delayed or replayed write cannot roll an entry back. Repeating a put
//!   (same version, same bytes) is harmless and reports
//!   [`IndexPut::Unchanged`], so a client may retry after a lost reply; the
//!   same version with other bytes is a
//!   [`Conflict`](crate::IndexError::Conflict): two writers raced, and the
//!   client must re-read and merge.
//! - **Deletion forgets the version.** After a delete, a put of any
//!   version succeeds. Clients that need a floor across deletes keep a
//!   tombstone entry instead.
//! - **Only for existing users.** A put for a user without a record is
//!   refused ([`NoSuchUser`](crate::IndexError::NoSuchUser)), checked in the
//!   same transaction as the write, so a put racing
//!   [`remove_user`](crate::Store::remove_user) cannot leave entries behind
//!   for a user who is gone.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::RecordError;
use crate::record::{self, Place};
use crate::users::Hex;

/// Longest data an index entry may hold, in bytes.
pub const MAX_INDEX_ENTRY_LEN: usize = 64 * 1024;

/// Longest summary an index entry may have (the first bytes of its data
/// that folder listings and the change feed return), in bytes.
pub const MAX_SUMMARY_LEN: usize = 8 * 1024;

/// A folder tag: 32 opaque bytes, the client's keyed hash of an entry's
/// parent folder path. The store only groups entries by it.
pub type FolderTag = [u8; 32];

/// The folder of entries stored without one: every entry of a store
/// upgraded from schema version 2, and every [`put_index`] since.
///
/// [`put_index`]: crate::Metadata::put_index
pub const LEGACY_FOLDER: FolderTag = [0; 32];

/// Format byte of the first stored index entry format: version and data.
const INDEX_FORMAT_1: u8 = 1;

/// Format byte of a stored index entry, as written now: version, folder,
/// change sequence number, summary length and data.
const INDEX_FORMAT: u8 = 2;

/// One index entry of one user.
///
/// Not `#[non_exhaustive]`, so that callers can build one with a struct
/// literal; a new field would be a new stored format anyway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// The entry's name, chosen by the client.
    pub name: [u8; 32],
    /// The entry's version; a put must not go below the stored one.
    pub version: u64,
    /// The entry's contents, at most [`MAX_INDEX_ENTRY_LEN`] bytes. In a
    /// [folder listing](crate::Metadata::list_folder), only its summary.
    pub data: Vec<u8>,
}

/// What [`put_index`](crate::Metadata::put_index) and
/// [`put_entry`](crate::Metadata::put_entry) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IndexPut {
    /// The entry was written.
    Stored {
        /// The version it replaced, or `None` if there was no entry.
        replaced: Option<u64>,
    },
    /// The same version with the same bytes was already stored (a retry);
    /// nothing was written.
    Unchanged,
}

/// One entry of the change feed ([`changes`](crate::Metadata::changes)):
/// an entry's latest change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedEntry {
    /// The entry's name.
    pub name: [u8; 32],
    /// Its version now.
    pub version: u64,
    /// The sequence number of its latest change.
    pub seq: u64,
    /// Its summary (the first bytes of its data).
    pub summary: Vec<u8>,
}

/// A page of the change feed ([`changes`](crate::Metadata::changes)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangePage {
    /// The feed's id, chosen at random when the database got its feed
    /// (created or upgraded to schema version 3). Another id than a client
    /// saw before means another database: it starts again from 0.
    pub feed: u64,
    /// The entries changed after the `since` asked for, in sequence order,
    /// each name at most once (its latest change).
    pub entries: Vec<ChangedEntry>,
    /// The cursor to ask from next time: the highest sequence number
    /// examined (at least `since`), past rows a folder filter skipped.
    pub next: u64,
    /// Whether rows after `next` may exist.
    pub more: bool,
}

/// A stored entry as decoded, borrowing its data from the stored value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexRecord<'a> {
    /// The entry's version.
    pub version: u64,
    /// Its folder tag; [`LEGACY_FOLDER`] for a format 1 record.
    pub folder: FolderTag,
    /// The sequence number of its latest change; 0 for a format 1 record,
    /// which the upgrade to schema version 3 replaces with a real one.
    pub seq: u64,
    /// How many of the first bytes of `data` are its summary, at most
    /// `data.len()`; all of them for a format 1 record.
    pub summary_len: u32,
    /// Its data.
    pub data: &'a [u8],
}

impl<'a> IndexRecord<'a> {
    /// The summary: the first [`summary_len`](Self::summary_len) bytes of
    /// the data.
    pub fn summary(&self) -> &'a [u8] {
        let data: &'a [u8] = self.data;
        &data[..(self.summary_len as usize).min(data.len())]
    }
}

/// Format 1 of a stored entry's value (the name is in the key): the version
/// as a varint, then the data as a varint length and the bytes. Written by
/// schema version 2 and before; still read.
#[derive(Serialize, Deserialize)]
struct IndexV1<'a> {
    version: u64,
    #[serde(borrow)]
    data: &'a [u8],
}

/// Format 2 of a stored entry's value: the version, the folder tag (32
/// bytes), the change sequence number and the summary length as varints,
/// then the data as a varint length and the bytes.
#[derive(Serialize, Deserialize)]
struct IndexV2<'a> {
    version: u64,
    folder: FolderTag,
    seq: u64,
    summary_len: u32,
    #[serde(borrow)]
    data: &'a [u8],
}

/// The stored value of `record`, in the current format (2). Public for the
/// fuzz targets, like [`decode`].
pub fn encode(record: &IndexRecord<'_>) -> Vec<u8> {
    record::encode(
        INDEX_FORMAT,
        &IndexV2 {
            version: record.version,
            folder: record.folder,
            seq: record.seq,
            summary_len: record.summary_len,
            data: record.data,
        },
    )
}

/// The record of a stored value, in format 1 or 2, borrowing its data from
/// it; `user` and `name` are its key, for errors.
///
/// # Errors
/// [`RecordError`] for another format byte, bytes that do not decode,
/// bytes left over, or a summary longer than the data.
pub fn decode<'a>(
    bytes: &'a [u8],
    user: &str,
    name: &[u8; 32],
) -> Result<IndexRecord<'a>, RecordError> {
    let key = EntryKey { user, name };
    let place = Place {
        table: "index",
        key: &key,
    };
    if bytes.first() == Some(&INDEX_FORMAT_1) {
        let v1: IndexV1<'a> = record::decode(INDEX_FORMAT_1, bytes, place)?;
        return Ok(IndexRecord {
            version: v1.version,
            folder: LEGACY_FOLDER,
            seq: 0,
            // At most MAX_INDEX_ENTRY_LEN for what cairn wrote; a longer
            // (foreign) value has no summary beyond 4 GiB.
            summary_len: u32::try_from(v1.data.len()).unwrap_or(u32::MAX),
            data: v1.data,
        });
    }
    let v2: IndexV2<'a> = record::decode(INDEX_FORMAT, bytes, place)?;
    if v2.summary_len as usize > v2.data.len() {
        return Err(RecordError::Malformed {
            table: place.table,
            key: key.to_string(),
            source: postcard::Error::DeserializeBadEncoding,
        });
    }
    Ok(IndexRecord {
        version: v2.version,
        folder: v2.folder,
        seq: v2.seq,
        summary_len: v2.summary_len,
        data: v2.data,
    })
}

/// An entry's key as error messages print it: `user/<64 hex digits>`.
struct EntryKey<'a> {
    user: &'a str,
    name: &'a [u8; 32],
}

impl fmt::Display for EntryKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.user, Hex(self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(version: u64, seq: u64, summary_len: u32, data: &[u8]) -> IndexRecord<'_> {
        IndexRecord {
            version,
            folder: [0xf0; 32],
            seq,
            summary_len,
            data,
        }
    }

    #[test]
    fn a_stored_value_round_trips() {
        for data in [&b""[..], b"x", &[9u8; MAX_INDEX_ENTRY_LEN][..]] {
            for version in [0, 1, u64::MAX] {
                for summary_len in [0, data.len() as u32] {
                    let stored = record(version, version / 2, summary_len, data);
                    let bytes = encode(&stored);
                    assert_eq!(bytes[0], INDEX_FORMAT);
                    assert_eq!(decode(&bytes, "ann", &[1; 32]).unwrap(), stored);
                }
            }
        }
    }

    /// Format 1, as schema version 2 wrote it, still reads: the legacy
    /// folder, the whole data as the summary, no sequence number yet.
    #[test]
    fn a_format_1_value_still_decodes() {
        // Format 1, version 300 (a two-byte varint), 3 bytes of data.
        let bytes = [1, 0xac, 0x02, 3, b'a', b'b', b'c'];
        let decoded = decode(&bytes, "ann", &[1; 32]).unwrap();
        assert_eq!(
            decoded,
            IndexRecord {
                version: 300,
                folder: LEGACY_FOLDER,
                seq: 0,
                summary_len: 3,
                data: b"abc",
            }
        );
        assert_eq!(decoded.summary(), b"abc");
    }

    #[test]
    fn the_summary_is_the_first_bytes_and_never_beyond_the_data() {
        let stored = record(1, 1, 2, b"abcdef");
        assert_eq!(stored.summary(), b"ab");
        // A value whose summary claims more than its data is damaged.
        let mut bytes = encode(&record(1, 1, 6, b"abcdef"));
        let at = bytes.len() - 7 - 1;
        // The summary length is the varint just before the data's length.
        assert_eq!(bytes[at], 6);
        bytes[at] = 7;
        let err = decode(&bytes, "ann", &[1; 32]).unwrap_err();
        assert!(matches!(err, RecordError::Malformed { .. }), "{err:?}");
    }

    #[test]
    fn errors_name_the_user_and_entry() {
        let mut bytes = encode(&record(1, 1, 1, b"x"));
        bytes[0] = 7;
        let err = decode(&bytes, "ann", &[0xab; 32]).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains(&format!("ann/{}", "ab".repeat(32))),
            "{message}"
        );
        assert!(message.contains("format version 7"), "{message}");
    }
}
