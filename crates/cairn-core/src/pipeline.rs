//! The streaming pipeline: a file becomes stripes and a manifest, and stripes
//! and a manifest become the file again.
//!
//! ```text
//! put:  Read ─▶ Chunker ─▶ chunk ─▶ ChunkSealer ─▶ sealed chunk ─▶ StripeEncoder ─▶ n shards
//!                                                                    (one SealedStripe per chunk)
//!       FileSealer::finish ─▶ Manifest ─▶ seal_manifest ─▶ Capability + n shards
//!
//! get:  Capability + shards ─▶ open_manifest ─▶ Manifest
//!       FileOpener: for each ChunkRef, any k shards ─▶ verify ids ─▶ decode ─▶ open ─▶ Write
//!       FileOpener::finish checks the size and the whole-file BLAKE3
//! ```
//!
//! Memory is bounded by the chunker's buffer and one chunk's stripe; the
//! caller decides how many stripes it keeps in flight. [`Sealer`] and
//! [`Opener`] are the per-chunk steps on their own, for callers that run
//! chunks on several threads.
//!
//! On the way back every shard is checked against its id, every chunk is
//! authenticated by AES-GCM before its plaintext is written, and the whole
//! file is checked against the manifest's hash at the end. Bytes written to
//! the output before [`FileOpener::finish`] returns are authenticated chunk
//! by chunk but must not be trusted as a file until it returns `Ok`; the
//! client writes to a temporary file and renames it only then.

use std::io::{self, Read, Write};

use crate::capability::Capability;
use crate::chunk::Chunker;
use crate::erasure::{Redundancy, Shard, StripeDecoder, StripeEncoder, StripeError};
use crate::id::Id;
use crate::keys::{ConvergenceKey, ManifestsKey};
use crate::manifest::{ChunkRef, Manifest, ManifestError};
use crate::seal::{ChunkError, ChunkOpener, ChunkSealer};

/// One sealed chunk, spread into its shards.
#[derive(Debug, Clone)]
pub struct SealedStripe {
    /// The chunk's entry in the manifest (its stripe names the shards).
    pub chunk: ChunkRef,
    /// The n shards, in index order.
    pub shards: Vec<Shard>,
}

/// Why a file could not be sealed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// Reading the file failed.
    #[error("reading the file failed")]
    Io(#[from] io::Error),
    /// A blob could not be erasure-coded.
    #[error(transparent)]
    Stripe(#[from] StripeError),
    /// [`FileSealer::finish`] was called before every chunk was taken, or
    /// after reading failed.
    #[error("the file has not been read to its end")]
    Unfinished,
}

/// Why a file (or a manifest) could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// A chunk's shards could not be decoded: a shard is corrupt (its id
    /// does not match) or too few shards were given.
    #[error("chunk {chunk}: {source}")]
    Stripe {
        /// Index of the chunk in the manifest.
        chunk: usize,
        /// What went wrong.
        source: StripeError,
    },
    /// A chunk's sealed bytes did not open.
    #[error("chunk {chunk}: {source}")]
    Chunk {
        /// Index of the chunk in the manifest.
        chunk: usize,
        /// What went wrong.
        source: ChunkError,
    },
    /// The manifest's shards could not be decoded.
    #[error("manifest: {0}")]
    ManifestStripe(StripeError),
    /// The manifest did not open or is invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// Writing the output failed.
    #[error("writing the file failed")]
    Io(#[from] io::Error),
    /// [`FileOpener::finish`] was called before every chunk was written, or
    /// a chunk was offered after the last one.
    #[error("{written} of {total} chunks were written")]
    ChunkCount {
        /// Chunks written.
        written: usize,
        /// Chunks in the manifest.
        total: usize,
    },
    /// The whole file does not hash to the manifest's hash.
    #[error("the file's hash {actual} does not match the manifest's {expected}")]
    FileHash {
        /// Hash in the manifest.
        expected: Id,
        /// Hash of the bytes written.
        actual: Id,
    },
}

/// Seals one chunk at a time: compression, encryption, erasure coding.
#[derive(Default)]
pub struct Sealer {
    chunks: ChunkSealer,
    stripes: StripeEncoder,
}

impl Sealer {
    /// A new sealer with default compression.
    pub fn new() -> Self {
        Self::default()
    }

    /// Seals `plaintext` (at most [`crate::chunk::MAX_CHUNK`] bytes) and
    /// spreads it over the shards of `redundancy`.
    ///
    /// # Errors
    /// [`StripeError`] if the sealed chunk cannot be striped, which only a
    /// chunk over the size limits can cause.
    pub fn seal_chunk(
        &mut self,
        key: &ConvergenceKey,
        plaintext: &[u8],
        redundancy: Redundancy,
    ) -> Result<SealedStripe, StripeError> {
        let sealed = self.chunks.seal(key, plaintext);
        let (stripe, shards) = self.stripes.encode(&sealed.bytes, redundancy)?;
        let len = u32::try_from(plaintext.len()).map_err(|_| StripeError::TooLarge {
            len: plaintext.len(),
        })?;
        Ok(SealedStripe {
            chunk: ChunkRef {
                len,
                key: sealed.key,
                stripe,
            },
            shards,
        })
    }
}

/// Opens one chunk at a time: shard verification, decoding, decryption,
/// decompression.
#[derive(Default)]
pub struct Opener {
    chunks: ChunkOpener,
    stripes: StripeDecoder,
}

impl Opener {
    /// A new opener.
    pub fn new() -> Self {
        Self::default()
    }

    /// The plaintext of `chunk` from its shards (one slot per shard, `None`
    /// where missing; any k verified shards suffice).
    ///
    /// # Errors
    /// [`StripeError`] or [`ChunkError`] as [`OpenError`], with `chunk` as
    /// the chunk index.
    pub fn open_chunk<S: AsRef<[u8]>>(
        &mut self,
        index: usize,
        chunk: &ChunkRef,
        shards: &[Option<S>],
    ) -> Result<Vec<u8>, OpenError> {
        let sealed = self
            .stripes
            .decode(&chunk.stripe, shards)
            .map_err(|source| OpenError::Stripe {
                chunk: index,
                source,
            })?;
        self.chunks
            .open(&chunk.key, sealed, chunk.len as usize)
            .map_err(|source| OpenError::Chunk {
                chunk: index,
                source,
            })
    }
}

/// Turns a stream into sealed stripes, then a manifest.
///
/// Iterate to get one [`SealedStripe`] per chunk, in order, then call
/// [`finish`](Self::finish) for the manifest.
pub struct FileSealer<R> {
    chunker: Chunker<R>,
    sealer: Sealer,
    key: ConvergenceKey,
    redundancy: Redundancy,
    hasher: blake3::Hasher,
    chunks: Vec<ChunkRef>,
    done: bool,
    failed: bool,
}

impl<R: Read> FileSealer<R> {
    /// Seals what `reader` yields with `key`, spreading each chunk over the
    /// shards of `redundancy`.
    pub fn new(reader: R, key: &ConvergenceKey, redundancy: Redundancy) -> Self {
        Self {
            chunker: Chunker::new(reader),
            sealer: Sealer::new(),
            key: key.clone(),
            redundancy,
            hasher: blake3::Hasher::new(),
            chunks: Vec::new(),
            done: false,
            failed: false,
        }
    }

    /// Bytes read and sealed so far.
    pub fn bytes_read(&self) -> u64 {
        self.chunker.offset()
    }

    fn next_stripe(&mut self) -> Result<Option<SealedStripe>, SealError> {
        let Some(chunk) = self.chunker.next_chunk()? else {
            self.done = true;
            return Ok(None);
        };
        self.hasher.update(chunk);
        let stripe = self.sealer.seal_chunk(&self.key, chunk, self.redundancy)?;
        self.chunks.push(stripe.chunk.clone());
        Ok(Some(stripe))
    }

    /// The manifest of everything read.
    ///
    /// # Errors
    /// [`SealError::Unfinished`] if the stream was not read to its end, or
    /// an error ended it.
    pub fn finish(self) -> Result<Manifest, SealError> {
        if !self.done || self.failed {
            return Err(SealError::Unfinished);
        }
        Ok(Manifest {
            size: self.chunker.offset(),
            hash: self.hasher.finalize().into(),
            chunks: self.chunks,
        })
    }
}

impl<R: Read> Iterator for FileSealer<R> {
    type Item = Result<SealedStripe, SealError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.next_stripe();
        if next.is_err() {
            // An error ends the stream; there is no manifest for it.
            self.done = true;
            self.failed = true;
        }
        next.transpose()
    }
}

/// Writes a file back from its manifest, one chunk's shards at a time.
///
/// Ask [`next_chunk`](Self::next_chunk) which chunk to supply, fetch shards
/// for it, pass them to [`write_chunk`](Self::write_chunk), and call
/// [`finish`](Self::finish) at the end; only an `Ok` from `finish` means the
/// output is the file.
pub struct FileOpener<W> {
    manifest: Manifest,
    out: W,
    opener: Opener,
    next: usize,
    hasher: blake3::Hasher,
}

impl<W: Write> FileOpener<W> {
    /// Writes the file `manifest` describes to `out`.
    pub fn new(manifest: Manifest, out: W) -> Self {
        Self {
            manifest,
            out,
            opener: Opener::new(),
            next: 0,
            hasher: blake3::Hasher::new(),
        }
    }

    /// The manifest being written.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The index and entry of the chunk to supply next, or `None` when every
    /// chunk has been written.
    pub fn next_chunk(&self) -> Option<(usize, &ChunkRef)> {
        self.manifest
            .chunks
            .get(self.next)
            .map(|chunk| (self.next, chunk))
    }

    /// Decodes, checks and writes the next chunk from its shards.
    ///
    /// When the shards do not give a valid chunk, nothing is written and the
    /// same chunk is still next, so the caller can retry with other shards
    /// (for example without the one a [`StripeError::ShardMismatch`] named).
    /// After [`OpenError::Io`] the output may hold part of the chunk: start
    /// over.
    ///
    /// # Errors
    /// [`OpenError`] when the shards do not give a valid chunk, every chunk
    /// was already written, or the output fails.
    pub fn write_chunk<S: AsRef<[u8]>>(&mut self, shards: &[Option<S>]) -> Result<(), OpenError> {
        let plaintext = self.open_next(shards)?;
        self.out.write_all(&plaintext)?;
        Ok(())
    }

    /// Decodes and checks the next chunk and returns its plaintext instead
    /// of writing it, for callers that write elsewhere (asynchronously, for
    /// instance); the chunk still counts towards, and is hashed for,
    /// [`finish`](Self::finish). Use either this or
    /// [`write_chunk`](Self::write_chunk) for a file, not both.
    ///
    /// # Errors
    /// As [`write_chunk`](Self::write_chunk), without the output errors.
    pub fn open_next<S: AsRef<[u8]>>(
        &mut self,
        shards: &[Option<S>],
    ) -> Result<Vec<u8>, OpenError> {
        let total = self.manifest.chunks.len();
        let Some(chunk) = self.manifest.chunks.get(self.next) else {
            return Err(OpenError::ChunkCount {
                written: total + 1,
                total,
            });
        };
        let plaintext = self.opener.open_chunk(self.next, chunk, shards)?;
        self.hasher.update(&plaintext);
        self.next += 1;
        Ok(plaintext)
    }

    /// Checks that every chunk was written and the whole file matches the
    /// manifest's hash, flushes, and gives back the output.
    ///
    /// # Errors
    /// [`OpenError::ChunkCount`] if chunks are missing,
    /// [`OpenError::FileHash`] if the file is not the one the manifest
    /// describes, or an I/O error from the flush.
    pub fn finish(mut self) -> Result<W, OpenError> {
        let total = self.manifest.chunks.len();
        if self.next != total {
            return Err(OpenError::ChunkCount {
                written: self.next,
                total,
            });
        }
        let actual: Id = self.hasher.finalize().into();
        if actual != self.manifest.hash {
            return Err(OpenError::FileHash {
                expected: self.manifest.hash,
                actual,
            });
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Seals `manifest` under its own key (derived from `manifests_key` and the
/// file's hash) and spreads it over the shards of `redundancy`.
///
/// Returns the capability that reads the file, and the shards to store.
///
/// # Errors
/// [`StripeError::TooLarge`] if the sealed manifest exceeds
/// [`crate::erasure::MAX_BLOB_LEN`] (a file of roughly 350 GiB or more).
pub fn seal_manifest(
    manifest: &Manifest,
    manifests_key: &ManifestsKey,
    redundancy: Redundancy,
) -> Result<(Capability, Vec<Shard>), StripeError> {
    let key = manifests_key.manifest_key(&manifest.hash);
    let sealed = manifest.seal(&key);
    let (stripe, shards) = StripeEncoder::new().encode(&sealed, redundancy)?;
    Ok((
        Capability {
            manifest: stripe,
            key,
        },
        shards,
    ))
}

/// Opens the manifest a capability names, from its shards (one slot per
/// shard, `None` where missing).
///
/// # Errors
/// [`OpenError::ManifestStripe`] for bad or too few shards,
/// [`OpenError::Manifest`] when the manifest does not open or is invalid.
pub fn open_manifest<S: AsRef<[u8]>>(
    capability: &Capability,
    shards: &[Option<S>],
) -> Result<Manifest, OpenError> {
    let sealed = StripeDecoder::new()
        .decode(&capability.manifest, shards)
        .map_err(OpenError::ManifestStripe)?;
    Ok(Manifest::open(&sealed, &capability.key)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ConvergenceKey {
        ConvergenceKey::from_bytes([3; 32])
    }

    fn seal_all(data: &[u8], redundancy: Redundancy) -> (Vec<SealedStripe>, Manifest) {
        let mut sealer = FileSealer::new(data, &key(), redundancy);
        let stripes: Vec<_> = sealer.by_ref().map(Result::unwrap).collect();
        (stripes, sealer.finish().unwrap())
    }

    #[test]
    fn file_round_trip_with_missing_shards() {
        let data = testdata::seeded_bytes(11, 3 * 1024 * 1024 + 17);
        let r = Redundancy::new(2, 4).unwrap();
        let (stripes, manifest) = seal_all(&data, r);
        assert_eq!(manifest.size, data.len() as u64);
        assert_eq!(manifest.chunks.len(), stripes.len());

        let mut opener = FileOpener::new(manifest, Vec::new());
        for (i, stripe) in stripes.iter().enumerate() {
            assert_eq!(opener.next_chunk().unwrap().0, i);
            // Keep shards i % 4 and (i + 1) % 4 only.
            let slots: Vec<Option<&[u8]>> = (0..4)
                .map(|s| (s == i % 4 || s == (i + 1) % 4).then(|| &stripe.shards[s].bytes[..]))
                .collect();
            opener.write_chunk(&slots).unwrap();
        }
        assert!(opener.next_chunk().is_none());
        assert_eq!(opener.finish().unwrap(), data);
    }

    #[test]
    fn finish_refuses_a_partial_file_and_a_failed_chunk_can_be_retried() {
        let data = testdata::seeded_bytes(12, 2 * 1024 * 1024);
        let r = Redundancy::new(2, 3).unwrap();
        let (stripes, manifest) = seal_all(&data, r);
        let mut opener = FileOpener::new(manifest.clone(), Vec::new());
        let mut bad = stripes[0].shards[0].bytes.clone();
        bad[40] ^= 0x80;
        let with_bad = [Some(bad), Some(stripes[0].shards[1].bytes.clone()), None];
        assert!(matches!(
            opener.write_chunk(&with_bad),
            Err(OpenError::Stripe {
                chunk: 0,
                source: StripeError::ShardMismatch { index: 0, .. }
            })
        ));
        let good = [
            None,
            Some(&stripes[0].shards[1].bytes),
            Some(&stripes[0].shards[2].bytes),
        ];
        opener.write_chunk(&good).unwrap();
        if manifest.chunks.len() > 1 {
            assert!(matches!(
                opener.finish(),
                Err(OpenError::ChunkCount { written: 1, .. })
            ));
        }
    }

    #[test]
    fn a_manifest_with_the_wrong_file_hash_is_caught_at_the_end() {
        let data = testdata::seeded_bytes(13, 100_000);
        let r = Redundancy::new(1, 2).unwrap();
        let (stripes, mut manifest) = seal_all(&data, r);
        manifest.hash = Id::of(b"another file");
        let mut opener = FileOpener::new(manifest, Vec::new());
        opener
            .write_chunk(&[Some(&stripes[0].shards[0].bytes), None])
            .unwrap();
        assert!(matches!(opener.finish(), Err(OpenError::FileHash { .. })));
    }

    #[test]
    fn manifest_round_trip_through_a_capability() {
        let data = testdata::seeded_bytes(14, 600_000);
        let r = Redundancy::new(2, 4).unwrap();
        let (_, manifest) = seal_all(&data, r);
        let manifests_key = ManifestsKey::from_bytes([4; 32]);
        let (cap, shards) = seal_manifest(&manifest, &manifests_key, r).unwrap();
        let parsed: Capability = cap.to_string().parse().unwrap();
        let slots = [None, Some(&shards[1].bytes), None, Some(&shards[3].bytes)];
        assert_eq!(open_manifest(&parsed, &slots).unwrap(), manifest);
        let mut other = parsed.clone();
        other.key = ManifestsKey::from_bytes([5; 32]).manifest_key(&manifest.hash);
        assert!(matches!(
            open_manifest(&other, &slots),
            Err(OpenError::Manifest(ManifestError::Envelope(_)))
        ));
    }

    #[test]
    fn a_read_error_leaves_no_manifest() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("disk on fire"));
                }
                let n = buf.len().min(self.0);
                buf[..n].fill(1);
                self.0 -= n;
                Ok(n)
            }
        }
        let mut sealer = FileSealer::new(Failing(100), &key(), Redundancy::new(1, 1).unwrap());
        assert!(matches!(sealer.next(), Some(Err(SealError::Io(_)))));
        assert!(sealer.next().is_none());
        assert!(matches!(sealer.finish(), Err(SealError::Unfinished)));
    }

    #[test]
    fn unfinished_sealer_has_no_manifest() {
        let data = testdata::seeded_bytes(15, 3 * 1024 * 1024);
        let mut sealer = FileSealer::new(&data[..], &key(), Redundancy::new(1, 1).unwrap());
        let _ = sealer.next();
        assert!(matches!(sealer.finish(), Err(SealError::Unfinished)));
    }
}
