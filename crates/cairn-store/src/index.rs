//! Index entries: each user's small, versioned, opaque records.
//!
//! A client keeps its file index on the nodes as entries: a 32-byte name
//! and up to [`MAX_INDEX_ENTRY_LEN`] bytes of data, both opaque to the node
//! (the client encrypts the data and derives the name from a key the node
//! never sees), plus a version the client increments with every change.
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

/// Format byte of a stored index entry.
const INDEX_FORMAT: u8 = 1;

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
    /// The entry's contents, at most [`MAX_INDEX_ENTRY_LEN`] bytes.
    pub data: Vec<u8>,
}

/// What [`put_index`](crate::Metadata::put_index) did.
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

/// Format 1 of a stored entry's value (the name is in the key): the version
/// as a varint, then the data as a varint length and the bytes.
#[derive(Serialize, Deserialize)]
struct IndexV1<'a> {
    version: u64,
    #[serde(borrow)]
    data: &'a [u8],
}

/// The stored value of an entry of `version` holding `data`. Public for the
/// fuzz targets, like [`decode`].
pub fn encode(version: u64, data: &[u8]) -> Vec<u8> {
    record::encode(INDEX_FORMAT, &IndexV1 { version, data })
}

/// The version and data of a stored value, borrowed from it; `user` and
/// `name` are its key, for errors.
///
/// # Errors
/// [`RecordError`] for another format byte, bytes that do not decode, or
/// bytes left over.
pub fn decode<'a>(
    bytes: &'a [u8],
    user: &str,
    name: &[u8; 32],
) -> Result<(u64, &'a [u8]), RecordError> {
    let place = Place {
        table: "index",
        key: &EntryKey { user, name },
    };
    let v1: IndexV1<'a> = record::decode(INDEX_FORMAT, bytes, place)?;
    Ok((v1.version, v1.data))
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

    #[test]
    fn a_stored_value_round_trips() {
        for data in [&b""[..], b"x", &[9u8; MAX_INDEX_ENTRY_LEN][..]] {
            for version in [0, 1, u64::MAX] {
                let bytes = encode(version, data);
                assert_eq!(bytes[0], INDEX_FORMAT);
                assert_eq!(decode(&bytes, "ann", &[1; 32]).unwrap(), (version, data));
            }
        }
    }

    #[test]
    fn errors_name_the_user_and_entry() {
        let mut bytes = encode(1, b"x");
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
