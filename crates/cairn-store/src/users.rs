//! User accounts: names, the record kept for each, and what removing one
//! does.
//!
//! The store keeps, per user, what the node needs to authenticate them (a
//! salt and the hash of their auth key, both computed by the node: the store
//! never sees a passphrase or a key) and their quota. It checks names and
//! keeps records; it does not authenticate anyone.
//!
//! # Names
//!
//! A user name is 1 to [`MAX_USER_NAME_LEN`] characters from
//! `A-Z a-z 0-9 . _ -`, not starting with `.` or `-`. Names are database
//! keys, never paths, so the rule is not what keeps the filesystem safe;
//! it keeps names unambiguous in logs, command lines and URLs, where a
//! leading `-` reads as an option and a leading `.` as a hidden file.
//! [`Store::put`](crate::Store::put) predates accounts and takes any
//! string as its user; only [`add_user`](crate::Metadata::add_user) checks.
//!
//! # Removal racing a put
//!
//! `remove_user` and index puts are each one transaction, and an index put
//! checks for the user's record in its own, so no entry outlives its user.
//! A shard put does not look at `users`: one that the node authenticated
//! before a `cairn node user remove` (in another process) but commits after
//! it leaves a reference under a name without a record. It shows in
//! [`usage_by_user`](crate::Metadata::usage_by_user), and `remove_user` of the
//! same name, which accepts a name with references but no record, takes it
//! away.

use std::fmt;

use cairn_core::Id;
use serde::{Deserialize, Serialize};

use crate::error::RecordError;
use crate::record::{self, Place};

/// Longest user name, in characters (which are all ASCII, so also bytes).
pub const MAX_USER_NAME_LEN: usize = 64;

/// Format byte of a user record.
const USER_FORMAT: u8 = 1;

/// What the store keeps about one user.
///
/// `Debug` prints the salt but not the hash, which is what an attacker
/// would need to guess auth keys offline.
///
/// Not `#[non_exhaustive]`: the node builds records with a struct literal,
/// and a new field would be a new record format, a deliberate change.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Random salt of the auth-key hash, chosen by the node.
    pub salt: [u8; 16],
    /// Hash of the user's auth key with `salt`, computed by the node.
    /// Compare it with a candidate in constant time, not with `==`.
    pub auth_hash: [u8; 32],
    /// Most bytes the user may reference, or `None` for no limit.
    pub quota: Option<u64>,
    /// When the user was added, in seconds since the Unix epoch.
    pub created_unix: u64,
}

impl UserRecord {
    /// The record as stored: format byte 1, then `UserV1` in postcard
    /// (fields in the [module docs](self)). Public for the fuzz targets,
    /// which check that what decodes encodes back to the same bytes.
    pub fn encode(&self) -> Vec<u8> {
        record::encode(
            USER_FORMAT,
            &UserV1 {
                salt: self.salt,
                auth_hash: self.auth_hash,
                quota: self.quota,
                created_unix: self.created_unix,
            },
        )
    }

    /// Decodes the stored record of user `name` (used only in errors).
    ///
    /// # Errors
    /// [`RecordError`] for another format byte, bytes that do not decode,
    /// or bytes left over.
    pub fn decode(bytes: &[u8], name: &str) -> Result<Self, RecordError> {
        let place = Place {
            table: "users",
            key: &name,
        };
        let v1: UserV1 = record::decode(USER_FORMAT, bytes, place)?;
        Ok(Self {
            salt: v1.salt,
            auth_hash: v1.auth_hash,
            quota: v1.quota,
            created_unix: v1.created_unix,
        })
    }
}

impl fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRecord")
            .field("salt", &Hex(&self.salt))
            .field("auth_hash", &format_args!("<redacted>"))
            .field("quota", &self.quota)
            .field("created_unix", &self.created_unix)
            .finish()
    }
}

/// Format 1 of a user record, as postcard encodes it: the salt and hash as
/// 16 and 32 raw bytes, the quota as an option of a varint, the time as a
/// varint.
#[derive(Serialize, Deserialize)]
struct UserV1 {
    salt: [u8; 16],
    auth_hash: [u8; 32],
    quota: Option<u64>,
    created_unix: u64,
}

/// Bytes printed as lowercase hex.
pub(crate) struct Hex<'a>(pub(crate) &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Which rule a user name breaks; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidNameReason {
    /// The name is empty.
    Empty,
    /// The name is longer than [`MAX_USER_NAME_LEN`] characters.
    TooLong {
        /// Its length in characters.
        len: usize,
    },
    /// The name starts with `.` or `-`.
    BadStart {
        /// The first character.
        first: char,
    },
    /// The name has a character outside `A-Z a-z 0-9 . _ -`.
    BadCharacter {
        /// The first such character.
        character: char,
        /// Its position, counted in characters from 0.
        position: usize,
    },
}

impl fmt::Display for InvalidNameReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "it is empty"),
            Self::TooLong { len } => write!(
                f,
                "it is {len} characters long, over the limit of {MAX_USER_NAME_LEN}"
            ),
            Self::BadStart { first } => write!(f, "it starts with {first:?}"),
            Self::BadCharacter {
                character,
                position,
            } => write!(
                f,
                "it has {character:?} at position {position}; names use only A-Z a-z 0-9 . _ -"
            ),
        }
    }
}

/// Checks `name` against the rules for user names (see the
/// [module docs](self)). [`add_user`](crate::Metadata::add_user) does this
/// itself; a command line can call it to refuse a name before asking for a
/// passphrase.
pub fn check_user_name(name: &str) -> Result<(), InvalidNameReason> {
    let Some(first) = name.chars().next() else {
        return Err(InvalidNameReason::Empty);
    };
    let len = name.chars().count();
    if len > MAX_USER_NAME_LEN {
        return Err(InvalidNameReason::TooLong { len });
    }
    if let Some((position, character)) = name
        .chars()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(InvalidNameReason::BadCharacter {
            character,
            position,
        });
    }
    if matches!(first, '.' | '-') {
        return Err(InvalidNameReason::BadStart { first });
    }
    Ok(())
}

/// What [`remove_user`](crate::Store::remove_user) removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemovedUser {
    /// The user's shard references that went; their usage went with them.
    pub references: u64,
    /// The user's index entries that went.
    pub index_entries: u64,
    /// Shards that the user was the last to hold, in id order. Nobody
    /// references them any more.
    pub unheld: Vec<Id>,
    /// How many of the `unheld` shards' files were deleted by this call:
    /// all that were on disk and still unreferenced for
    /// [`Store::remove_user`](crate::Store::remove_user); always 0 for
    /// [`Admin::remove_user`](crate::Admin::remove_user), which leaves them
    /// to the node's scrub.
    pub files_deleted: u64,
    /// How many of the `unheld` shards' segment records were released, in
    /// the transaction that removed the user, by either a store or an
    /// admin: those shards are gone at once (their bytes are dead, for a
    /// compaction to reclaim), with nothing left for a scrub.
    pub records_released: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rules() {
        for good in [
            "a",
            "Ann",
            "bob.smith",
            "x_y-z",
            "0",
            "a.",
            "a-",
            &"n".repeat(64),
        ] {
            assert_eq!(check_user_name(good), Ok(()), "{good:?}");
        }
        let cases: [(&str, InvalidNameReason); 8] = [
            ("", InvalidNameReason::Empty),
            (&"n".repeat(65), InvalidNameReason::TooLong { len: 65 }),
            (".hidden", InvalidNameReason::BadStart { first: '.' }),
            ("-x", InvalidNameReason::BadStart { first: '-' }),
            (
                "../x",
                InvalidNameReason::BadCharacter {
                    character: '/',
                    position: 2,
                },
            ),
            (
                "a/b",
                InvalidNameReason::BadCharacter {
                    character: '/',
                    position: 1,
                },
            ),
            (
                "é",
                InvalidNameReason::BadCharacter {
                    character: 'é',
                    position: 0,
                },
            ),
            (
                "a b",
                InvalidNameReason::BadCharacter {
                    character: ' ',
                    position: 1,
                },
            ),
        ];
        for (name, reason) in cases {
            assert_eq!(check_user_name(name), Err(reason), "{name:?}");
        }
    }

    #[test]
    fn the_record_round_trips_and_debug_hides_the_hash() {
        let record = UserRecord {
            salt: [0xab; 16],
            auth_hash: [0xcd; 32],
            quota: Some(5),
            created_unix: 1_700_000_000,
        };
        let bytes = record.encode();
        assert_eq!(bytes[0], USER_FORMAT);
        assert_eq!(UserRecord::decode(&bytes, "ann").unwrap(), record);
        let debug = format!("{record:?}");
        assert!(debug.contains("abababab"), "{debug}");
        assert!(debug.contains("redacted"), "{debug}");
        assert!(!debug.contains("cdcd"), "{debug}");
        assert!(!debug.contains("205"), "{debug}"); // 0xcd in decimal
    }
}
