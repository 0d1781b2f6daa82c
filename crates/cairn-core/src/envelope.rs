//! Envelopes: AES-256-GCM with a synthetic nonce, for manifests and index
//! entries.
//!
//! ```text
//! envelope:  magic (4) │ version (1) │ nonce (12) │ AES-256-GCM(plaintext) │ tag (16)
//!            └────────── authenticated as AAD ──────┘
//! nonce = BLAKE3-keyed(BLAKE3-derive("cairn 2026-11 envelope nonce", key), magic ‖ plaintext)[..12]
//! ```
//!
//! A key may seal many different plaintexts (one manifest key per file
//! content, one index key per user), so the nonce must never repeat for
//! different plaintexts. Deriving it from the plaintext (as AES-GCM-SIV and
//! the SIV construction do) makes sealing deterministic, which keeps
//! cairn-core free of a random source, and makes a repeat possible only
//! for the identical plaintext, where it reveals nothing new.
//!
//! Each kind of envelope has its own magic, so a sealed index entry is never
//! mistaken for a sealed manifest.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use zeroize::Zeroizing;

use crate::format::{Format, FormatError, HEADER_LEN};
use crate::seal::TAG_LEN;

/// Bytes an envelope adds to its plaintext.
pub const ENVELOPE_OVERHEAD: usize = HEADER_LEN + NONCE_LEN + TAG_LEN;

/// Why an envelope did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// Wrong magic or version, or shorter than a header.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// Shorter than its nonce and tag.
    #[error("sealed {format} of {len} bytes is too short")]
    Truncated {
        /// What the envelope should hold.
        format: &'static str,
        /// Its length.
        len: usize,
    },
    /// Authentication failed: altered bytes or the wrong key.
    #[error("sealed {format} failed authentication: corrupted, or opened with the wrong key")]
    Authentication {
        /// What the envelope should hold.
        format: &'static str,
    },
}

fn cipher(key: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("32-byte AES-256 key"))
}

/// Seals `plaintext` in an envelope of `format` under `key`.
pub fn seal(format: &Format, key: &[u8; 32], plaintext: &[u8]) -> Vec<u8> {
    let nonce_key = Zeroizing::new(blake3::derive_key("cairn 2026-11 envelope nonce", key));
    let digest = blake3::Hasher::new_keyed(&nonce_key)
        .update(&format.magic)
        .update(plaintext)
        .finalize();
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&digest.as_bytes()[..NONCE_LEN]);

    let mut out = Vec::with_capacity(plaintext.len() + ENVELOPE_OVERHEAD);
    out.extend_from_slice(&format.header());
    out.extend_from_slice(&nonce);
    let aad_len = out.len();
    out.extend_from_slice(plaintext);
    let (aad, body) = out.split_at_mut(aad_len);
    let tag = cipher(key)
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(&*aad), body)
        .expect("within AES-GCM's length limit");
    out.extend_from_slice(tag.as_ref());
    out
}

/// Opens an envelope of `format` sealed under `key`.
///
/// # Errors
/// [`EnvelopeError`] for a wrong header, a truncated envelope or failed
/// authentication.
pub fn open(format: &Format, key: &[u8; 32], sealed: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let rest = format.strip(sealed)?;
    if rest.len() < NONCE_LEN + TAG_LEN {
        return Err(EnvelopeError::Truncated {
            format: format.name,
            len: sealed.len(),
        });
    }
    let aad_len = HEADER_LEN + NONCE_LEN;
    let nonce =
        Nonce::try_assume_unique_for_key(&sealed[HEADER_LEN..aad_len]).expect("12-byte nonce");
    let mut body = sealed[aad_len..].to_vec();
    let len = cipher(key)
        .open_in_place(nonce, Aad::from(&sealed[..aad_len]), &mut body)
        .map_err(|_| EnvelopeError::Authentication {
            format: format.name,
        })?
        .len();
    body.truncate(len);
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOX: Format = Format {
        name: "test box",
        magic: *b"cntb",
        version: 1,
    };
    const OTHER: Format = Format {
        name: "other box",
        magic: *b"cnto",
        version: 1,
    };

    #[test]
    fn round_trip_and_determinism() {
        let key = [9u8; 32];
        for text in [&b""[..], b"x", b"a longer message"] {
            let sealed = seal(&BOX, &key, text);
            assert_eq!(sealed.len(), text.len() + ENVELOPE_OVERHEAD);
            assert_eq!(sealed, seal(&BOX, &key, text));
            assert_eq!(open(&BOX, &key, &sealed).unwrap(), text);
        }
        // Different plaintexts never share a nonce.
        let a = seal(&BOX, &key, b"one");
        let b = seal(&BOX, &key, b"two");
        assert_ne!(
            a[HEADER_LEN..HEADER_LEN + NONCE_LEN],
            b[HEADER_LEN..HEADER_LEN + NONCE_LEN]
        );
    }

    #[test]
    fn refuses_tampering_other_keys_and_other_kinds() {
        let key = [9u8; 32];
        let sealed = seal(&BOX, &key, b"manifest bytes");
        for bit in 0..sealed.len() * 8 {
            let mut bad = sealed.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(open(&BOX, &key, &bad).is_err(), "bit {bit}");
        }
        for len in 0..sealed.len() {
            assert!(open(&BOX, &key, &sealed[..len]).is_err(), "len {len}");
        }
        assert_eq!(
            open(&BOX, &[8u8; 32], &sealed),
            Err(EnvelopeError::Authentication { format: "test box" })
        );
        assert!(matches!(
            open(&OTHER, &key, &sealed),
            Err(EnvelopeError::Format(FormatError::Magic { .. }))
        ));
    }
}
