//! Property tests of the whole pipeline over the sizes where it changes
//! behaviour (`testdata::INTERESTING_SIZES`) and random data:
//!
//! - seal, drop any n − k shards of every chunk, open: the same bytes;
//! - flip any bit of a shard, a sealed chunk or a sealed manifest: an error;
//! - truncate any of them: an error.
//!
//! Failing cases are saved under `proptest-regressions/`; commit them.

use cairn_core::erasure::StripeDecoder;
use cairn_core::keys::{ConvergenceKey, ManifestKey};
use cairn_core::seal::{ChunkOpener, ChunkSealer};
use cairn_core::{FileOpener, FileSealer, Manifest, Redundancy, SealedStripe};
use proptest::prelude::*;
use testdata::{INTERESTING_SIZES, seeded_bytes, seeded_text};

const REDUNDANCIES: [(usize, usize); 6] = [(1, 1), (1, 3), (2, 4), (3, 5), (4, 6), (5, 5)];

/// A file: one of the interesting sizes, random or text-like content.
fn file() -> impl Strategy<Value = Vec<u8>> {
    (0..INTERESTING_SIZES.len(), any::<u64>(), any::<bool>()).prop_map(|(i, seed, text)| {
        let len = INTERESTING_SIZES[i];
        if text {
            seeded_text(seed, len)
        } else {
            seeded_bytes(seed, len)
        }
    })
}

fn redundancy() -> impl Strategy<Value = Redundancy> {
    (0..REDUNDANCIES.len()).prop_map(|i| {
        let (k, n) = REDUNDANCIES[i];
        Redundancy::new(k, n).unwrap()
    })
}

fn seal(data: &[u8], redundancy: Redundancy) -> (Vec<SealedStripe>, Manifest) {
    let key = ConvergenceKey::from_bytes([1; 32]);
    let mut sealer = FileSealer::new(data, &key, redundancy);
    let stripes: Vec<_> = sealer.by_ref().map(Result::unwrap).collect();
    (stripes, sealer.finish().unwrap())
}

/// Keeps k shards of `stripe` chosen by `pick`: a random subset of size k.
fn keep_k(stripe: &SealedStripe, pick: u64) -> Vec<Option<&[u8]>> {
    let r = stripe.chunk.stripe.redundancy;
    let n = r.total();
    let mut order: Vec<usize> = (0..n).collect();
    // A deterministic shuffle driven by `pick`.
    let mut state = pick | 1;
    for i in (1..n).rev() {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        order.swap(i, (state >> 33) as usize % (i + 1));
    }
    let kept = &order[..r.data()];
    (0..n)
        .map(|i| kept.contains(&i).then(|| stripe.shards[i].bytes.as_slice()))
        .collect()
}

/// Every interesting size with every redundancy, losing the first and then
/// the last n − k shards of each chunk: the random cases above sample this
/// grid, this test walks all of it (and the widest stripes).
#[test]
fn every_size_and_redundancy_survives_losing_n_minus_k_shards() {
    let mut redundancies: Vec<(usize, usize)> = REDUNDANCIES.to_vec();
    redundancies.extend([(1, 32), (20, 32), (32, 32)]);
    for (i, &len) in INTERESTING_SIZES.iter().enumerate() {
        let data = if i % 2 == 0 {
            seeded_bytes(i as u64, len)
        } else {
            seeded_text(i as u64, len)
        };
        for &(k, n) in &redundancies {
            let (stripes, manifest) = seal(&data, Redundancy::new(k, n).unwrap());
            for lose_first in [true, false] {
                let mut opener = FileOpener::new(manifest.clone(), Vec::new());
                for stripe in &stripes {
                    let slots: Vec<Option<&[u8]>> = (0..n)
                        .map(|s| {
                            let lost = if lose_first { s < n - k } else { s >= k };
                            (!lost).then(|| stripe.shards[s].bytes.as_slice())
                        })
                        .collect();
                    opener.write_chunk(&slots).unwrap();
                }
                assert_eq!(opener.finish().unwrap(), data, "{len} bytes, {k}-of-{n}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn any_k_shards_give_the_file_back(data in file(), r in redundancy(), pick in any::<u64>()) {
        let (stripes, manifest) = seal(&data, r);
        prop_assert_eq!(manifest.size, data.len() as u64);
        let mut opener = FileOpener::new(manifest, Vec::new());
        for (i, stripe) in stripes.iter().enumerate() {
            opener.write_chunk(&keep_k(stripe, pick.rotate_left(i as u32))).unwrap();
        }
        prop_assert_eq!(opener.finish().unwrap(), data);
    }

    #[test]
    fn a_flipped_bit_in_any_shard_is_an_error(
        data in file(), r in redundancy(), which in any::<prop::sample::Index>(), bit in any::<prop::sample::Index>()
    ) {
        prop_assume!(!data.is_empty());
        let (stripes, manifest) = seal(&data, r);
        let stripe = &stripes[which.index(stripes.len())];
        let shard_index = which.index(stripe.shards.len());
        let mut shard = stripe.shards[shard_index].bytes.clone();
        let bit = bit.index(shard.len() * 8);
        shard[bit / 8] ^= 1 << (bit % 8);
        // Offer the damaged shard among exactly k: no way around it.
        let mut slots: Vec<Option<Vec<u8>>> = vec![None; r.total()];
        slots[shard_index] = Some(shard);
        for i in (0..r.total()).filter(|&i| i != shard_index).take(r.data() - 1) {
            slots[i] = Some(stripe.shards[i].bytes.clone());
        }
        let chunk_index = stripes.iter().position(|s| std::ptr::eq(s, stripe)).unwrap();
        let chunk = &manifest.chunks[chunk_index];
        let result = cairn_core::pipeline::Opener::new().open_chunk(chunk_index, chunk, &slots);
        prop_assert!(result.is_err());
        // Truncation too.
        let mut cut = stripe.shards[shard_index].bytes.clone();
        cut.truncate(bit / 8);
        slots[shard_index] = Some(cut);
        prop_assert!(StripeDecoder::new().decode(&chunk.stripe, &slots).is_err());
    }

    #[test]
    fn a_flipped_bit_in_a_sealed_chunk_is_an_error(
        data in file(), bit in any::<prop::sample::Index>()
    ) {
        let chunk = &data[..data.len().min(cairn_core::chunk::MAX_CHUNK)];
        let sealed = ChunkSealer::new().seal(&ConvergenceKey::from_bytes([2; 32]), chunk);
        let mut opener = ChunkOpener::new();
        let bit = bit.index(sealed.bytes.len() * 8);
        let mut flipped = sealed.bytes.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(opener.open(&sealed.key, flipped, chunk.len()).is_err());
        let cut = sealed.bytes[..bit / 8].to_vec();
        prop_assert!(opener.open(&sealed.key, cut, chunk.len()).is_err());
        prop_assert_eq!(opener.open(&sealed.key, sealed.bytes, chunk.len()).unwrap(), chunk);
    }

    #[test]
    fn a_flipped_bit_in_a_sealed_manifest_is_an_error(
        data in file(), r in redundancy(), bit in any::<prop::sample::Index>()
    ) {
        let (_, manifest) = seal(&data, r);
        let key = ManifestKey::from_bytes([3; 32]);
        let sealed = manifest.seal(&key);
        let bit = bit.index(sealed.len() * 8);
        let mut flipped = sealed.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(Manifest::open(&flipped, &key).is_err());
        prop_assert!(Manifest::open(&sealed[..bit / 8], &key).is_err());
        prop_assert_eq!(Manifest::open(&sealed, &key).unwrap(), manifest);
    }
}
