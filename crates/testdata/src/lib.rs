//! Test data for cairn: the file sizes at which the pipeline changes
//! behaviour, and seeded bytes that are the same on every machine.
//!
//! A leaf: it depends on nothing of cairn, so the tests of the lowest crates
//! (cairn-core, cairn-store) use it without building a node. The harness
//! that starts real nodes is `cairn-testing`.

use std::io::Read;

/// Smallest chunk FastCDC cuts (except the last chunk of a file).
pub const CHUNK_MIN: usize = 256 * 1024;
/// Average chunk size FastCDC aims for.
pub const CHUNK_AVG: usize = 1024 * 1024;
/// Largest chunk FastCDC cuts.
pub const CHUNK_MAX: usize = 4 * 1024 * 1024;

/// File sizes at which the pipeline changes behaviour. Every test that runs a
/// file through the pipeline should try each of them.
///
/// cairn-core checks in its own tests that the chunk constants above match
/// the chunker's.
pub const INTERESTING_SIZES: [usize; 10] = [
    0,                   // an empty file: no chunk at all, still a valid manifest
    1,                   // one byte: one tiny chunk
    CHUNK_MIN - 1,       // just below the smallest cut: one chunk
    CHUNK_MIN,           // exactly the smallest chunk
    CHUNK_MIN + 1,       // one byte past it: the chunker may not cut below min
    CHUNK_AVG,           // the average chunk
    CHUNK_MAX - 1,       // just below the forced cut
    CHUNK_MAX,           // exactly one maximal chunk at most
    CHUNK_MAX + 1,       // a forced cut leaves a one-byte tail
    9 * 1024 * 1024 + 7, // several chunks, odd length
];

/// Deterministic pseudo-random bytes: the BLAKE3 output stream keyed by
/// `seed`. Fast (GB/s), reproducible across platforms and versions, and
/// incompressible.
pub fn seeded_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    seeded_reader(seed)
        .read_exact(&mut out)
        .expect("XOF never ends");
    out
}

/// An endless reader of the bytes [`seeded_bytes`] returns.
pub fn seeded_reader(seed: u64) -> blake3::OutputReader {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    blake3::Hasher::new_keyed(&key).finalize_xof()
}

/// Deterministic text-like bytes (words from a small vocabulary), which zstd
/// compresses several-fold, for tests and benchmarks of compression.
pub fn seeded_text(seed: u64, len: usize) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "cairn", "shard", "chunk", "node", "store", "fetch", "stone", "path", "the", "of", "and",
        "a", "mountain", "marker", "trail", "\n",
    ];
    let noise = seeded_bytes(seed, len / 2 + 16);
    let mut out = Vec::with_capacity(len + 16);
    let mut i = 0;
    while out.len() < len {
        out.extend_from_slice(WORDS[usize::from(noise[i % noise.len()] & 15)].as_bytes());
        out.push(b' ');
        i += 1;
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_bytes_are_reproducible_and_seed_dependent() {
        assert_eq!(seeded_bytes(7, 1000), seeded_bytes(7, 1000));
        assert_ne!(seeded_bytes(7, 1000), seeded_bytes(8, 1000));
        assert_eq!(&seeded_bytes(7, 1000)[..10], &seeded_bytes(7, 10)[..]);
        assert_eq!(seeded_text(3, 5000).len(), 5000);
    }
}
