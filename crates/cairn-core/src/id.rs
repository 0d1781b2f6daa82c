//! Content ids: 32-byte BLAKE3 hashes.
//!
//! Every shard is named by the BLAKE3 hash of its bytes, and a whole file is
//! summarised by the BLAKE3 hash of its plaintext. Ids print as 64 lowercase
//! hex digits; parsing accepts exactly 64 hex digits (either case) and nothing
//! else, so an id that reaches a file path can never contain `/`, `..` or a
//! NUL byte.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A 32-byte BLAKE3 hash naming a piece of content.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Id([u8; 32]);

impl Id {
    /// Length of an id in bytes.
    pub const LEN: usize = 32;

    /// The id of `bytes`: their BLAKE3 hash.
    pub fn of(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }

    /// Wraps raw hash bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw hash bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 64-digit lowercase hex form.
    pub fn to_hex(&self) -> String {
        self.to_string()
    }

    /// Whether `bytes` hash to this id.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        Self::of(bytes) == *self
    }
}

impl From<blake3::Hash> for Id {
    fn from(hash: blake3::Hash) -> Self {
        Self(*hash.as_bytes())
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Ten digits identify an id in logs and test output without the noise.
        let hex = self.to_string();
        write!(f, "Id({}…)", &hex[..10])
    }
}

/// Why a string is not an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseIdError {
    /// The string does not have exactly 64 characters.
    #[error("an id is 64 hex digits, this has {len} characters")]
    Length {
        /// Number of characters found.
        len: usize,
    },
    /// A character is not a hex digit.
    #[error("an id is 64 hex digits, character {position} is {found:?}")]
    NotHex {
        /// Zero-based position of the first offending character.
        position: usize,
        /// The offending character.
        found: char,
    },
}

impl FromStr for Id {
    type Err = ParseIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let len = s.chars().count();
        if len != 64 {
            return Err(ParseIdError::Length { len });
        }
        if let Some((position, found)) = s.chars().enumerate().find(|(_, c)| !c.is_ascii_hexdigit())
        {
            return Err(ParseIdError::NotHex { position, found });
        }
        // Every character is an ASCII hex digit, so bytes and characters agree.
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
            *byte = (hex_value(pair[0]) << 4) | hex_value(pair[1]);
        }
        Ok(Self(out))
    }
}

/// The value of an ASCII hex digit (already checked to be one).
fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let id = Id::of(b"cairn");
        let hex = id.to_string();
        assert_eq!(hex.len(), 64);
        assert_eq!(hex, blake3::hash(b"cairn").to_hex().as_str());
        assert_eq!(hex.parse::<Id>().unwrap(), id);
        assert_eq!(hex.to_uppercase().parse::<Id>().unwrap(), id);
    }

    #[test]
    fn rejects_anything_but_64_hex_digits() {
        let good = Id::of(b"x").to_string();
        assert_eq!("".parse::<Id>(), Err(ParseIdError::Length { len: 0 }));
        assert_eq!(
            good[..63].parse::<Id>(),
            Err(ParseIdError::Length { len: 63 })
        );
        assert_eq!(
            format!("{good}0").parse::<Id>(),
            Err(ParseIdError::Length { len: 65 })
        );
        let traversal = format!("../{}", &good[3..]);
        assert!(matches!(
            traversal.parse::<Id>(),
            Err(ParseIdError::NotHex { position: 0, .. })
        ));
        let with_slash = format!("{}/{}", &good[..10], &good[11..]);
        assert_eq!(
            with_slash.parse::<Id>(),
            Err(ParseIdError::NotHex {
                position: 10,
                found: '/'
            })
        );
        // A multi-byte character keeps the character count at 64 but is no digit.
        let accented = format!("é{}", &good[1..]);
        assert_eq!(
            accented.parse::<Id>(),
            Err(ParseIdError::NotHex {
                position: 0,
                found: 'é'
            })
        );
        assert!(" ".repeat(64).parse::<Id>().is_err());
    }

    #[test]
    fn debug_is_short() {
        let id = Id::of(b"cairn");
        assert_eq!(format!("{id:?}"), format!("Id({}…)", &id.to_string()[..10]));
    }
}
