//! Hostile input on the reading side: manifests, chunks and capabilities
//! crafted by someone who holds the keys (a stranger who shares a
//! capability can write any manifest it names). Each must give a clear
//! error, and none may make the reader allocate what the attacker claims.
//!
//! Bugs these guard against: trusting a manifest's sizes or counts, a
//! chunk that inflates past its declared length (a decompression bomb),
//! and a capability that makes the reader fetch an object of any size.

use cairn_core::erasure::MAX_BLOB_LEN;
use cairn_core::keys::{ConvergenceKey, ManifestKey};
use cairn_core::manifest::ManifestError;
use cairn_core::pipeline::{FileOpener, FileSealer, OpenError};
use cairn_core::{Capability, Manifest, Redundancy};

fn redundancy() -> Redundancy {
    Redundancy::new(2, 4).unwrap()
}

/// A real manifest of `data`, with its sealed stripes.
fn sealed(data: &[u8]) -> (Vec<cairn_core::SealedStripe>, Manifest) {
    let key = ConvergenceKey::from_bytes([9; 32]);
    let mut sealer = FileSealer::new(data, &key, redundancy());
    let stripes: Vec<_> = sealer.by_ref().map(Result::unwrap).collect();
    (stripes, sealer.finish().unwrap())
}

fn open_sealed(manifest: &Manifest) -> Result<Manifest, ManifestError> {
    let key = ManifestKey::from_bytes([4; 32]);
    Manifest::open(&manifest.seal(&key), &key)
}

#[test]
fn a_manifest_claiming_absurd_sizes_is_refused_with_what_is_wrong() {
    let (_, manifest) = sealed(&testdata::seeded_bytes(1, 300_000));

    let mut huge = manifest.clone();
    huge.size = u64::MAX;
    let err = open_sealed(&huge).unwrap_err();
    assert!(matches!(err, ManifestError::Invalid(_)), "{err}");
    assert!(err.to_string().contains("add up to"), "{err}");

    let mut long_chunk = manifest.clone();
    long_chunk.chunks[0].len = u32::MAX;
    long_chunk.size = u64::from(u32::MAX);
    let err = open_sealed(&long_chunk).unwrap_err();
    assert!(err.to_string().contains("claims 4294967295 bytes"), "{err}");

    // A sealed chunk far larger than its plaintext could ever seal to.
    let mut fat = manifest.clone();
    fat.chunks[0].stripe.blob_len = MAX_BLOB_LEN as u32;
    let err = open_sealed(&fat).unwrap_err();
    assert!(err.to_string().contains("claims a sealed length"), "{err}");

    // A stripe of more shards than its k-of-n.
    let mut crowded = manifest;
    let extra = crowded.chunks[0].stripe.shards[0];
    crowded.chunks[0].stripe.shards.push(extra);
    let err = open_sealed(&crowded).unwrap_err();
    assert!(err.to_string().contains("lists 5 shards"), "{err}");
}

#[test]
fn a_manifest_claiming_billions_of_chunks_fails_without_allocating_them() {
    // An empty manifest encodes its chunk count last, as one zero byte;
    // claim 2^62 chunks instead and give none.
    let empty = Manifest {
        size: 0,
        hash: cairn_core::Id::of(b""),
        chunks: Vec::new(),
    };
    let mut bytes = empty.encode();
    assert_eq!(bytes.pop(), Some(0));
    bytes.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40]);
    let err = Manifest::decode(&bytes).unwrap_err();
    assert!(matches!(err, ManifestError::Decode(_)), "{err}");
}

#[test]
fn a_chunk_that_inflates_beyond_its_declared_length_is_refused() {
    // 4 MiB of zeros seals to a few hundred bytes, which fits the sealed
    // length a 1000-byte chunk may have: only decompression can tell.
    let zeros = vec![0u8; 4 * 1024 * 1024];
    let (stripes, manifest) = sealed(&zeros);
    assert_eq!(manifest.chunks.len(), 1);
    let mut bomb = manifest;
    bomb.chunks[0].len = 1000;
    bomb.size = 1000;
    let bomb = open_sealed(&bomb).expect("consistent on its face");

    let mut opener = FileOpener::new(bomb, Vec::new());
    let shards: Vec<Option<&[u8]>> = stripes[0]
        .shards
        .iter()
        .map(|s| Some(&s.bytes[..]))
        .collect();
    let err = opener.write_chunk(&shards).unwrap_err();
    assert!(matches!(err, OpenError::Chunk { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("does not decompress to its declared 1000 bytes"),
        "{err}"
    );
}

#[test]
fn a_capability_naming_an_oversized_object_is_refused_before_any_fetch() {
    let (_, manifest) = sealed(b"small");
    let (mut capability, _) = cairn_core::pipeline::seal_manifest(
        &manifest,
        &cairn_core::keys::ManifestsKey::from_bytes([5; 32]),
        redundancy(),
    )
    .unwrap();
    capability.manifest.blob_len = u32::MAX;
    let text = capability.to_string();
    let err = text.parse::<Capability>().unwrap_err();
    assert!(err.to_string().contains("exceeds the limit"), "{err}");
}
