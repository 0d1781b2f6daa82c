//! Sealing a chunk: compression, then convergent AES-256-GCM.
//!
//! ```text
//! key material = BLAKE3-keyed(convergence key, plaintext)
//! aes key      = BLAKE3-derive("cairn 2026-11 chunk aes-256-gcm key", key material)
//! nonce        = BLAKE3-keyed(BLAKE3-derive("cairn 2026-11 chunk nonce", key material),
//!                             codec ‖ payload)[..12]
//!
//! sealed chunk:  "cnch" │ version 1 │ nonce (12) │ AES-256-GCM( codec │ payload ) │ tag (16)
//!                └──────── header and nonce, authenticated as AAD ────┘
//! codec 0: payload is the plaintext
//! codec 1: payload is the plaintext compressed with zstd
//! ```
//!
//! The same plaintext sealed by the same user gives the same bytes, so it is
//! stored once; another user's convergence key gives unrelated key material
//! and so unrelated bytes. The codec byte is inside the ciphertext so that
//! nodes do not learn which chunks compressed.
//!
//! **Why the nonce depends on the payload.** One key seals one plaintext,
//! but not always one *payload*: zstd does not promise the same output
//! across versions or levels, so a later cairn may compress the same chunk
//! differently. With a nonce derived from the key material alone, those two
//! payloads would be encrypted under one key and nonce, which leaks their
//! XOR and the GCM authentication key. A nonce derived from what is
//! encrypted (the SIV construction, as in the envelopes) repeats only for
//! identical bytes. It costs one BLAKE3 pass over the payload and 12 bytes.
//!
//! Compression is kept only when it saves at least [`MIN_SAVING_PERCENT`] %:
//! random data passes through uncompressed and costs only the attempt.
//! Opening decompresses into a buffer of exactly the declared plaintext
//! length, so a hostile chunk cannot inflate beyond it.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use zeroize::Zeroize;

use crate::format::{Format, FormatError, HEADER_LEN};
use crate::keys::{ConvergenceKey, KeyMaterial};

/// Format of a sealed chunk.
pub const SEALED_CHUNK: Format = Format {
    name: "sealed chunk",
    magic: *b"cnch",
    version: 1,
};

/// Default zstd level: level 1 compresses text 2–5× at several hundred MB/s.
pub const DEFAULT_ZSTD_LEVEL: i32 = 1;

/// Compression is kept only if it saves at least this share of the chunk.
pub const MIN_SAVING_PERCENT: usize = 5;

/// Length of the AES-GCM tag.
pub const TAG_LEN: usize = 16;

/// Length of the nonce stored in a sealed chunk.
pub const NONCE_LEN: usize = 12;

/// Where the encrypted part of a sealed chunk starts: after the header and
/// the nonce, which are authenticated as associated data.
const BODY: usize = HEADER_LEN + NONCE_LEN;

/// Bytes a sealed chunk adds to its payload: header, nonce, codec byte and
/// tag.
pub const SEAL_OVERHEAD: usize = BODY + 1 + TAG_LEN;

const CODEC_RAW: u8 = 0;
const CODEC_ZSTD: u8 = 1;

/// Largest sealed chunk for a plaintext of `plain_len` bytes (compression is
/// only kept when it makes the payload smaller).
pub const fn max_sealed_len(plain_len: usize) -> usize {
    plain_len + SEAL_OVERHEAD
}

/// A sealed chunk and the key material that opens it.
#[derive(Debug, Clone)]
pub struct SealedChunk {
    /// Opens the chunk; goes into the manifest.
    pub key: KeyMaterial,
    /// The sealed bytes.
    pub bytes: Vec<u8>,
}

/// Why a sealed chunk did not open.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError {
    /// The header is wrong or the chunk is shorter than its fixed parts.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The ciphertext is too short to hold a codec byte and a tag.
    #[error("sealed chunk of {len} bytes is too short")]
    Truncated {
        /// Length of the sealed chunk.
        len: usize,
    },
    /// Authentication failed: the bytes were altered, or the key material
    /// belongs to another chunk.
    #[error("sealed chunk failed authentication: corrupted, or opened with the wrong key")]
    Authentication,
    /// The codec byte is unknown.
    #[error("sealed chunk uses unknown codec {0}")]
    Codec(u8),
    /// The payload did not decompress within the declared length.
    #[error("chunk does not decompress to its declared {expected} bytes")]
    Decompress {
        /// Length the manifest declares.
        expected: usize,
    },
    /// The plaintext has another length than the manifest declares.
    #[error("chunk plaintext is {actual} bytes, the manifest says {expected}")]
    Length {
        /// Length the manifest declares.
        expected: usize,
        /// Length found.
        actual: usize,
    },
}

/// The AES key of a chunk, from its key material.
fn chunk_key(material: &KeyMaterial) -> LessSafeKey {
    let mut key = blake3::derive_key(
        "cairn 2026-11 chunk aes-256-gcm key",
        material.expose_secret(),
    );
    let aes = UnboundKey::new(&AES_256_GCM, &key).expect("32-byte AES-256 key");
    key.zeroize();
    LessSafeKey::new(aes)
}

/// The nonce of a chunk: a keyed hash of what it encrypts.
fn chunk_nonce(material: &KeyMaterial, body: &[u8]) -> [u8; NONCE_LEN] {
    let mut key = blake3::derive_key("cairn 2026-11 chunk nonce", material.expose_secret());
    let digest = blake3::keyed_hash(&key, body);
    key.zeroize();
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&digest.as_bytes()[..NONCE_LEN]);
    nonce
}

/// Seals chunks, reusing a compression context between calls.
pub struct ChunkSealer {
    compressor: zstd::bulk::Compressor<'static>,
}

impl ChunkSealer {
    /// A sealer compressing at [`DEFAULT_ZSTD_LEVEL`].
    pub fn new() -> Self {
        Self::with_level(DEFAULT_ZSTD_LEVEL)
    }

    /// A sealer compressing at zstd `level`.
    ///
    /// The level changes the sealed bytes of compressible chunks, so two
    /// sealers with different levels do not deduplicate against each other.
    pub fn with_level(level: i32) -> Self {
        let mut compressor =
            zstd::bulk::Compressor::new(level).expect("zstd accepts every level it clamps");
        // Lengths and checksums are cairn's business (the manifest and the
        // AEAD tag); leave them out of the frame.
        let _ = compressor.include_checksum(false);
        let _ = compressor.include_contentsize(false);
        Self { compressor }
    }

    /// Seals `plaintext` under key material derived with `key`.
    pub fn seal(&mut self, key: &ConvergenceKey, plaintext: &[u8]) -> SealedChunk {
        let material = key.key_material(plaintext);
        let bytes = self.seal_with(&material, plaintext);
        SealedChunk {
            key: material,
            bytes,
        }
    }

    /// Seals `plaintext` under the given key material.
    pub fn seal_with(&mut self, material: &KeyMaterial, plaintext: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(max_sealed_len(plaintext.len()));
        out.extend_from_slice(&SEALED_CHUNK.header());
        out.extend_from_slice(&[0; NONCE_LEN]);
        out.push(CODEC_ZSTD);
        let body = out.len();
        // Compress straight into the spare capacity after the codec byte.
        let limit = plaintext.len() - plaintext.len() * MIN_SAVING_PERCENT / 100;
        let mut cursor = std::io::Cursor::new(&mut out);
        cursor.set_position(body as u64);
        let kept = match self.compressor.compress_to_buffer(plaintext, &mut cursor) {
            Ok(n) => n <= limit && !plaintext.is_empty(),
            Err(_) => false, // did not fit: incompressible
        };
        if !kept {
            out.truncate(body);
            out[body - 1] = CODEC_RAW;
            out.extend_from_slice(plaintext);
        }
        let nonce = chunk_nonce(material, &out[BODY..]);
        out[HEADER_LEN..BODY].copy_from_slice(&nonce);
        let (aad, body) = out.split_at_mut(BODY);
        let tag = chunk_key(material)
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(&*aad), body)
            .expect("a chunk is far below AES-GCM's length limit");
        out.extend_from_slice(tag.as_ref());
        out
    }
}

impl Default for ChunkSealer {
    fn default() -> Self {
        Self::new()
    }
}

/// Opens sealed chunks, reusing a decompression context between calls.
pub struct ChunkOpener {
    decompressor: zstd::bulk::Decompressor<'static>,
}

impl ChunkOpener {
    /// A new opener.
    pub fn new() -> Self {
        Self {
            decompressor: zstd::bulk::Decompressor::new().expect("zstd context"),
        }
    }

    /// Opens a sealed chunk whose plaintext is `plain_len` bytes long.
    ///
    /// Takes the sealed bytes by value and decrypts them in place.
    ///
    /// # Errors
    /// [`ChunkError`] for a wrong header, failed authentication, or a
    /// plaintext of another length than `plain_len`.
    pub fn open(
        &mut self,
        material: &KeyMaterial,
        mut sealed: Vec<u8>,
        plain_len: usize,
    ) -> Result<Vec<u8>, ChunkError> {
        SEALED_CHUNK.strip(&sealed)?;
        if sealed.len() < SEAL_OVERHEAD {
            return Err(ChunkError::Truncated { len: sealed.len() });
        }
        let (aad, encrypted) = sealed.split_at_mut(BODY);
        let nonce = Nonce::try_assume_unique_for_key(&aad[HEADER_LEN..]).expect("12-byte nonce");
        let body_len = chunk_key(material)
            .open_in_place(nonce, Aad::from(&*aad), encrypted)
            .map_err(|_| ChunkError::Authentication)?
            .len();
        let body = BODY..BODY + body_len;
        let codec = sealed[body.start];
        let payload = body.start + 1..body.end;
        let plaintext = match codec {
            CODEC_RAW => {
                sealed.truncate(payload.end);
                sealed.drain(..payload.start);
                sealed
            }
            CODEC_ZSTD => {
                let mut out = Vec::with_capacity(plain_len);
                self.decompressor
                    .decompress_to_buffer(&sealed[payload], &mut out)
                    .map_err(|_| ChunkError::Decompress {
                        expected: plain_len,
                    })?;
                out
            }
            other => return Err(ChunkError::Codec(other)),
        };
        if plaintext.len() != plain_len {
            return Err(ChunkError::Length {
                expected: plain_len,
                actual: plaintext.len(),
            });
        }
        Ok(plaintext)
    }
}

impl Default for ChunkOpener {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> ConvergenceKey {
        ConvergenceKey::from_bytes([byte; 32])
    }

    #[test]
    fn round_trip_random_and_text() {
        let mut sealer = ChunkSealer::new();
        let mut opener = ChunkOpener::new();
        for data in [
            Vec::new(),
            vec![7u8],
            testdata::seeded_bytes(1, 300_000),
            testdata::seeded_text(1, 300_000),
        ] {
            let sealed = sealer.seal(&key(1), &data);
            assert!(sealed.bytes.len() <= max_sealed_len(data.len()));
            let opened = opener.open(&sealed.key, sealed.bytes, data.len()).unwrap();
            assert_eq!(opened, data);
        }
    }

    #[test]
    fn text_compresses_and_random_does_not() {
        let mut sealer = ChunkSealer::new();
        let text = testdata::seeded_text(2, 1 << 20);
        assert!(sealer.seal(&key(1), &text).bytes.len() < text.len() / 2);
        let random = testdata::seeded_bytes(2, 1 << 20);
        assert_eq!(
            sealer.seal(&key(1), &random).bytes.len(),
            max_sealed_len(random.len())
        );
    }

    #[test]
    fn convergent_per_user() {
        let data = testdata::seeded_bytes(3, 10_000);
        let mut sealer = ChunkSealer::new();
        let a1 = sealer.seal(&key(1), &data).bytes;
        let a2 = sealer.seal(&key(1), &data).bytes;
        let b = sealer.seal(&key(2), &data).bytes;
        assert_eq!(a1, a2);
        assert_ne!(a1, b);
        assert_ne!(a1[BODY..40], b[BODY..40]);
    }

    #[test]
    fn wrong_key_or_length_is_refused() {
        let data = testdata::seeded_text(4, 50_000);
        let mut sealer = ChunkSealer::new();
        let mut opener = ChunkOpener::new();
        let sealed = sealer.seal(&key(1), &data);
        let other = key(2).key_material(&data);
        assert!(matches!(
            opener.open(&other, sealed.bytes.clone(), data.len()),
            Err(ChunkError::Authentication)
        ));
        // A compressed chunk may not inflate beyond what the manifest declares.
        assert!(matches!(
            opener.open(&sealed.key, sealed.bytes.clone(), data.len() - 1),
            Err(ChunkError::Decompress { .. })
        ));
        assert!(matches!(
            opener.open(&sealed.key, sealed.bytes, data.len() + 1),
            Err(ChunkError::Length { .. })
        ));
    }

    #[test]
    fn another_payload_for_the_same_chunk_gets_another_nonce() {
        // zstd may compress a chunk differently in another version or at
        // another level: the two payloads must not share a nonce.
        let data = testdata::seeded_text(5, 200_000);
        let fast = ChunkSealer::with_level(1).seal(&key(1), &data);
        let strong = ChunkSealer::with_level(19).seal(&key(1), &data);
        assert_ne!(
            fast.bytes, strong.bytes,
            "the levels should compress differently"
        );
        assert_ne!(fast.bytes[HEADER_LEN..BODY], strong.bytes[HEADER_LEN..BODY]);
        let mut opener = ChunkOpener::new();
        assert_eq!(
            opener.open(&fast.key, fast.bytes, data.len()).unwrap(),
            data
        );
        assert_eq!(
            opener.open(&strong.key, strong.bytes, data.len()).unwrap(),
            data
        );
    }

    #[test]
    fn every_flipped_bit_of_a_small_chunk_is_caught() {
        let data = b"a small chunk of plaintext".to_vec();
        let mut sealer = ChunkSealer::new();
        let mut opener = ChunkOpener::new();
        let sealed = sealer.seal(&key(1), &data);
        for bit in 0..sealed.bytes.len() * 8 {
            let mut bad = sealed.bytes.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(
                opener.open(&sealed.key, bad, data.len()).is_err(),
                "bit {bit}"
            );
        }
        for len in 0..sealed.bytes.len() {
            let cut = sealed.bytes[..len].to_vec();
            assert!(
                opener.open(&sealed.key, cut, data.len()).is_err(),
                "len {len}"
            );
        }
    }
}
