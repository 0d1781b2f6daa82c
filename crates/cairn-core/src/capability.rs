//! Capabilities: a printable string that reads one file.
//!
//! ```text
//! cairn:<base64url without padding of:
//!        version (1) │ postcard(manifest stripe, manifest key) │ check (4)>
//! check = first 4 bytes of BLAKE3(version ‖ body)
//! ```
//!
//! A capability names the stripe holding a sealed manifest and carries the
//! key of that one manifest: whoever holds it can fetch and read that file
//! and nothing else, since a manifest key opens a single manifest and no
//! user-wide key is in it. The check bytes catch a mistyped or truncated
//! string before any network round trip; a parse error says what is wrong.

use std::fmt;
use std::str::FromStr;

use data_encoding::BASE64URL_NOPAD;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::erasure::{StripeRef, StripeRefError};
use crate::keys::ManifestKey;

/// Every capability starts with this.
pub const PREFIX: &str = "cairn:";

/// The capability version this build writes and reads.
pub const VERSION: u8 = 1;

const CHECK_LEN: usize = 4;

/// Reads one file: where its sealed manifest is and the key that opens it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Capability {
    /// The stripe holding the sealed manifest.
    pub manifest: StripeRef,
    /// Opens the manifest.
    pub key: ManifestKey,
}

impl PartialEq for Capability {
    fn eq(&self, other: &Self) -> bool {
        self.manifest == other.manifest && self.key.expose_secret() == other.key.expose_secret()
    }
}

impl Eq for Capability {}

/// Why a string is not a capability.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CapabilityError {
    /// The string does not start with `cairn:`.
    #[error("a capability starts with \"cairn:\"")]
    Prefix,
    /// A character after the prefix is not base64url.
    #[error("character {position} after \"cairn:\" is not base64url (A-Z a-z 0-9 - _)")]
    Encoding {
        /// Zero-based position after the prefix.
        position: usize,
    },
    /// Too short to hold a version and a check.
    #[error("the capability is too short: was it cut off when copied?")]
    Truncated,
    /// A version this build does not read.
    #[error("capability version {found} is not supported (this cairn reads version {VERSION})")]
    Version {
        /// The version found.
        found: u8,
    },
    /// The check bytes do not match: the string was altered.
    #[error("the capability's check digits do not match: it was mistyped, cut or altered")]
    Check,
    /// The body does not decode.
    #[error("the capability is malformed: {0}")]
    Decode(postcard::Error),
    /// Bytes follow the capability's body.
    #[error("the capability is malformed: {0} unexpected bytes at the end")]
    TrailingBytes(usize),
    /// The stripe of the manifest it names contradicts itself.
    #[error("the capability is malformed: {0}")]
    Stripe(#[from] StripeRefError),
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The bytes hold the manifest key: wipe them after use.
        let mut bytes = Zeroizing::new(vec![VERSION]);
        postcard::to_io(self, &mut *bytes).expect("writing to a Vec cannot fail");
        let check = blake3::hash(&bytes);
        bytes.extend_from_slice(&check.as_bytes()[..CHECK_LEN]);
        let text = Zeroizing::new(BASE64URL_NOPAD.encode(&bytes));
        write!(f, "{PREFIX}{}", text.as_str())
    }
}

impl FromStr for Capability {
    type Err = CapabilityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let encoded = s
            .trim()
            .strip_prefix(PREFIX)
            .ok_or(CapabilityError::Prefix)?;
        let bytes = BASE64URL_NOPAD
            .decode(encoded.as_bytes())
            .map(Zeroizing::new)
            .map_err(|e| match e.kind {
                data_encoding::DecodeKind::Length => CapabilityError::Truncated,
                _ => CapabilityError::Encoding {
                    position: e.position,
                },
            })?;
        if bytes.len() < 1 + CHECK_LEN {
            return Err(CapabilityError::Truncated);
        }
        let (signed, check) = bytes.split_at(bytes.len() - CHECK_LEN);
        if signed[0] != VERSION {
            // Checked before the check digits: a newer cairn's capability
            // should say "upgrade", not "mistyped".
            let intact = &blake3::hash(signed).as_bytes()[..CHECK_LEN] == check;
            if intact {
                return Err(CapabilityError::Version { found: signed[0] });
            }
        }
        if &blake3::hash(signed).as_bytes()[..CHECK_LEN] != check {
            return Err(CapabilityError::Check);
        }
        let (cap, rest): (Self, _) =
            postcard::take_from_bytes(&signed[1..]).map_err(CapabilityError::Decode)?;
        if !rest.is_empty() {
            return Err(CapabilityError::TrailingBytes(rest.len()));
        }
        cap.manifest.validate()?;
        Ok(cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::erasure::Redundancy;
    use crate::id::Id;

    fn sample() -> Capability {
        Capability {
            manifest: StripeRef {
                blob_len: 1234,
                redundancy: Redundancy::new(2, 4).unwrap(),
                shards: (0..4u8).map(|i| Id::of(&[i])).collect(),
            },
            key: ManifestKey::from_bytes([7; 32]),
        }
    }

    #[test]
    fn round_trip() {
        let cap = sample();
        let text = cap.to_string();
        assert!(text.starts_with("cairn:"));
        assert!(
            text[6..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(text.parse::<Capability>().unwrap(), cap);
        assert_eq!(format!("  {text}\n").parse::<Capability>().unwrap(), cap);
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let text = sample().to_string();
        assert_eq!("".parse::<Capability>(), Err(CapabilityError::Prefix));
        assert_eq!(
            text[6..].parse::<Capability>(),
            Err(CapabilityError::Prefix)
        );
        assert_eq!(
            "cairn:".parse::<Capability>(),
            Err(CapabilityError::Truncated)
        );
        let cut = &text[..text.len() - 10];
        assert!(matches!(
            cut.parse::<Capability>(),
            Err(CapabilityError::Check | CapabilityError::Truncated)
        ));
        let mut typo = text.clone().into_bytes();
        typo[20] = if typo[20] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            String::from_utf8(typo).unwrap().parse::<Capability>(),
            Err(CapabilityError::Check)
        );
        let bad_char = format!("{}!{}", &text[..15], &text[16..]);
        assert_eq!(
            bad_char.parse::<Capability>(),
            Err(CapabilityError::Encoding { position: 9 })
        );
    }

    #[test]
    fn newer_version_asks_for_an_upgrade() {
        let mut bytes = vec![2u8, 1, 2, 3];
        let check = blake3::hash(&bytes);
        bytes.extend_from_slice(&check.as_bytes()[..4]);
        let text = format!("cairn:{}", BASE64URL_NOPAD.encode(&bytes));
        assert_eq!(
            text.parse::<Capability>(),
            Err(CapabilityError::Version { found: 2 })
        );
    }

    #[test]
    fn debug_hides_the_key() {
        let printed = format!("{:?}", sample());
        assert!(printed.contains("[redacted]"));
        assert!(!printed.contains("7, 7, 7"));
    }
}
