//! Manifests: what a file is made of.
//!
//! A manifest lists a file's size, its whole-file BLAKE3 hash and, for each
//! chunk in order, the chunk's plaintext length, its key material and the
//! stripe that holds its sealed bytes. Whoever can open a manifest can
//! therefore fetch, check and decrypt every chunk of the file, and nothing
//! else.
//!
//! ```text
//! encoded manifest:  "cnmf" │ version 1 │ postcard(size, hash, [chunk ref])
//! sealed manifest:   envelope "cnsm" v1 (see `envelope`) of the encoded manifest
//! ```
//!
//! A sealed manifest is itself a blob, erasure-coded and stored like a chunk
//! (see [`crate::pipeline::seal_manifest`]). Decoding checks the header,
//! refuses trailing bytes and checks the manifest's consistency (shard
//! counts, chunk lengths within bounds, lengths adding up to the size), so
//! that nothing downstream has to trust the numbers in it.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::chunk::MAX_CHUNK;
use crate::envelope::{self, EnvelopeError};
use crate::erasure::{StripeRef, StripeRefError};
use crate::format::{Format, FormatError};
use crate::id::Id;
use crate::keys::{KeyMaterial, ManifestKey};
use crate::seal::{SEAL_OVERHEAD, max_sealed_len};

/// Format of an encoded manifest.
pub const MANIFEST: Format = Format {
    name: "manifest",
    magic: *b"cnmf",
    version: 1,
};

/// Format of a sealed manifest.
pub const SEALED_MANIFEST: Format = Format {
    name: "manifest",
    magic: *b"cnsm",
    version: 1,
};

/// A file's description: enough to fetch, verify and decrypt it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// File size in bytes.
    pub size: u64,
    /// BLAKE3 of the whole plaintext.
    pub hash: Id,
    /// The chunks, in file order.
    pub chunks: Vec<ChunkRef>,
}

/// One chunk of a file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChunkRef {
    /// Plaintext length in bytes.
    pub len: u32,
    /// Opens the sealed chunk.
    pub key: KeyMaterial,
    /// Where the sealed chunk is.
    pub stripe: StripeRef,
}

impl PartialEq for ChunkRef {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len
            && self.key.expose_secret() == other.key.expose_secret()
            && self.stripe == other.stripe
    }
}

impl Eq for ChunkRef {}

/// Why bytes are not a valid manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// Not a manifest, or a manifest version this build does not read.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The sealed manifest did not open.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// The body does not decode (truncated or garbled).
    #[error("manifest does not decode: {0}")]
    Decode(postcard::Error),
    /// Bytes follow the manifest.
    #[error("{0} unexpected bytes after the manifest")]
    TrailingBytes(usize),
    /// The manifest decodes but contradicts itself.
    #[error("invalid manifest: {0}")]
    Invalid(#[from] ManifestInconsistency),
}

/// How a decoded manifest contradicts itself: the first inconsistency
/// [`Manifest::validate`] finds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestInconsistency {
    /// A chunk claims a plaintext length of 0 or over the largest chunk.
    #[error("chunk {chunk} claims {len} bytes (1..={MAX_CHUNK} allowed)")]
    ChunkLength {
        /// Position of the chunk in the manifest.
        chunk: usize,
        /// Length it claims.
        len: usize,
    },
    /// A chunk's sealed length cannot come from sealing its plaintext.
    #[error("chunk {chunk} of {len} bytes claims a sealed length of {sealed}")]
    SealedLength {
        /// Position of the chunk in the manifest.
        chunk: usize,
        /// Its plaintext length.
        len: usize,
        /// The sealed length it claims.
        sealed: usize,
    },
    /// A chunk's stripe reference contradicts itself.
    #[error("chunk {chunk}: {source}")]
    Stripe {
        /// Position of the chunk in the manifest.
        chunk: usize,
        /// What is wrong with its stripe.
        source: StripeRefError,
    },
    /// The chunks' lengths do not add up to the file size.
    #[error("chunks add up to {total} bytes, the file size is {size}")]
    Size {
        /// Sum of the chunk lengths.
        total: u64,
        /// The file size the manifest claims.
        size: u64,
    },
}

impl Manifest {
    /// The encoded (unsealed) bytes: header and postcard body.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MANIFEST.header().to_vec();
        postcard::to_io(self, &mut out).expect("writing to a Vec cannot fail");
        out
    }

    /// Decodes and validates an encoded manifest.
    ///
    /// # Errors
    /// [`ManifestError`] for a wrong header, a body that does not decode,
    /// trailing bytes, or a manifest that contradicts itself.
    pub fn decode(bytes: &[u8]) -> Result<Self, ManifestError> {
        let body = MANIFEST.strip(bytes)?;
        let (manifest, rest): (Self, _) =
            postcard::take_from_bytes(body).map_err(ManifestError::Decode)?;
        if !rest.is_empty() {
            return Err(ManifestError::TrailingBytes(rest.len()));
        }
        manifest.validate()?;
        Ok(manifest)
    }

    /// Seals the manifest under `key`.
    pub fn seal(&self, key: &ManifestKey) -> Vec<u8> {
        // The encoding holds every chunk's key material: wipe it after use.
        let encoded = Zeroizing::new(self.encode());
        envelope::seal(&SEALED_MANIFEST, key.expose_secret(), &encoded)
    }

    /// Opens and validates a sealed manifest.
    ///
    /// # Errors
    /// [`ManifestError`] when the envelope does not open under `key` or
    /// the manifest inside is invalid.
    pub fn open(sealed: &[u8], key: &ManifestKey) -> Result<Self, ManifestError> {
        Self::decode(&envelope::open(
            &SEALED_MANIFEST,
            key.expose_secret(),
            sealed,
        )?)
    }

    /// Checks that the fields agree with each other.
    ///
    /// # Errors
    /// The first inconsistency found.
    pub fn validate(&self) -> Result<(), ManifestInconsistency> {
        let mut total: u64 = 0;
        for (i, chunk) in self.chunks.iter().enumerate() {
            let len = chunk.len as usize;
            if len == 0 || len > MAX_CHUNK {
                return Err(ManifestInconsistency::ChunkLength { chunk: i, len });
            }
            let sealed = chunk.stripe.blob_len as usize;
            if !(SEAL_OVERHEAD..=max_sealed_len(len)).contains(&sealed) {
                return Err(ManifestInconsistency::SealedLength {
                    chunk: i,
                    len,
                    sealed,
                });
            }
            chunk
                .stripe
                .validate()
                .map_err(|source| ManifestInconsistency::Stripe { chunk: i, source })?;
            total += u64::from(chunk.len);
        }
        if total != self.size {
            return Err(ManifestInconsistency::Size {
                total,
                size: self.size,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::erasure::Redundancy;

    fn sample() -> Manifest {
        let stripe = StripeRef {
            blob_len: 122,
            redundancy: Redundancy::new(2, 3).unwrap(),
            shards: vec![Id::of(b"a"), Id::of(b"b"), Id::of(b"c")],
        };
        Manifest {
            size: 100,
            hash: Id::of(b"file"),
            chunks: vec![ChunkRef {
                len: 100,
                key: KeyMaterial::from_bytes([5; 32]),
                stripe,
            }],
        }
    }

    #[test]
    fn round_trip() {
        let m = sample();
        assert_eq!(Manifest::decode(&m.encode()).unwrap(), m);
        let key = ManifestKey::from_bytes([1; 32]);
        assert_eq!(Manifest::open(&m.seal(&key), &key).unwrap(), m);
        let empty = Manifest {
            size: 0,
            hash: Id::of(b""),
            chunks: vec![],
        };
        assert_eq!(Manifest::decode(&empty.encode()).unwrap(), empty);
    }

    #[test]
    fn refuses_garbage_truncation_and_trailing_bytes() {
        let bytes = sample().encode();
        for len in 0..bytes.len() {
            assert!(Manifest::decode(&bytes[..len]).is_err(), "len {len}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            Manifest::decode(&long),
            Err(ManifestError::TrailingBytes(1))
        );
        let mut newer = bytes;
        newer[4] = 2;
        assert!(matches!(
            Manifest::decode(&newer),
            Err(ManifestError::Format(FormatError::Version { found: 2, .. }))
        ));
    }

    #[test]
    fn refuses_inconsistent_manifests_saying_what_is_wrong() {
        let invalid = |m: &Manifest| match Manifest::decode(&m.encode()) {
            Err(ManifestError::Invalid(why)) => why,
            other => panic!("decoded an inconsistent manifest: {other:?}"),
        };
        let mut m = sample();
        m.size = 101;
        assert_eq!(
            invalid(&m),
            ManifestInconsistency::Size {
                total: 100,
                size: 101
            }
        );
        let mut m = sample();
        m.chunks[0].stripe.shards.pop();
        assert_eq!(
            invalid(&m),
            ManifestInconsistency::Stripe {
                chunk: 0,
                source: StripeRefError::ShardCount {
                    redundancy: Redundancy::new(2, 3).unwrap(),
                    listed: 2
                }
            }
        );
        let mut m = sample();
        m.chunks[0].stripe.blob_len = 10_000;
        assert_eq!(
            invalid(&m),
            ManifestInconsistency::SealedLength {
                chunk: 0,
                len: 100,
                sealed: 10_000
            }
        );
        let mut m = sample();
        m.chunks[0].len = 0;
        m.size = 0;
        assert_eq!(
            invalid(&m),
            ManifestInconsistency::ChunkLength { chunk: 0, len: 0 }
        );
    }

    #[test]
    fn a_huge_claimed_chunk_count_does_not_allocate_it() {
        // Header, size 0, hash, then a chunk count of u32::MAX as a varint.
        let mut bytes = MANIFEST.header().to_vec();
        bytes.push(0);
        bytes.extend_from_slice(&[0; 32]);
        bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(matches!(
            Manifest::decode(&bytes),
            Err(ManifestError::Decode(_))
        ));
    }
}
