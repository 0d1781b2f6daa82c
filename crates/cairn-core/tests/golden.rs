//! Golden tests: chunk boundaries, manifest bytes and sealed bytes of seeded
//! input, pinned as insta snapshots.
//!
//! A change here means stored data changes: different boundaries or sealed
//! bytes break deduplication against everything already stored, and a
//! different manifest encoding cannot read old manifests. If the change is
//! intended, review the diff (`cargo insta review`, or rerun with
//! `INSTA_UPDATE=always` and read `git diff`), bump the format's version
//! where old data can no longer be read, and keep the old fixture decoding.

use cairn_core::chunk::Chunker;
use cairn_core::keys::{ConvergenceKey, ManifestsKey};
use cairn_core::pipeline::seal_manifest;
use cairn_core::{FileSealer, Id, Manifest, Redundancy};
use testdata::{seeded_bytes, seeded_text};

fn boundaries(data: &[u8]) -> String {
    let mut chunker = Chunker::new(data);
    let mut out = String::new();
    let mut offset = 0;
    while let Some(chunk) = chunker.next_chunk().unwrap() {
        out += &format!(
            "{offset:>10} {:>8} {}\n",
            chunk.len(),
            &Id::of(chunk).to_string()[..16]
        );
        offset += chunk.len();
    }
    out
}

#[test]
fn chunk_boundaries_of_random_data() {
    insta::assert_snapshot!(boundaries(&seeded_bytes(2026, 24 * 1024 * 1024 + 5)));
}

#[test]
fn chunk_boundaries_of_text() {
    insta::assert_snapshot!(boundaries(&seeded_text(2026, 12 * 1024 * 1024)));
}

fn seeded_manifest() -> Manifest {
    let data = seeded_bytes(7, 2 * 1024 * 1024 + 300_000);
    let key = ConvergenceKey::from_bytes([7; 32]);
    let mut sealer = FileSealer::new(&data[..], &key, Redundancy::new(2, 3).unwrap());
    sealer.by_ref().for_each(|s| drop(s.unwrap()));
    sealer.finish().unwrap()
}

fn hex_lines(bytes: &[u8]) -> String {
    bytes
        .chunks(32)
        .map(|line| line.iter().map(|b| format!("{b:02x}")).collect::<String>() + "\n")
        .collect()
}

#[test]
fn manifest_bytes() {
    insta::assert_snapshot!(hex_lines(&seeded_manifest().encode()));
}

/// Sealed bytes of compressible chunks depend on zstd's output: a zstd
/// upgrade that changes it shows up here (it would break dedup against
/// chunks stored before, though never correctness).
#[test]
fn sealed_text_chunks() {
    let data = seeded_text(7, 2 * 1024 * 1024);
    let key = ConvergenceKey::from_bytes([9; 32]);
    let mut out = String::new();
    for stripe in FileSealer::new(&data[..], &key, Redundancy::new(1, 1).unwrap()) {
        let stripe = stripe.unwrap();
        out += &format!(
            "{:>8} → {:>7} sealed, shard {}\n",
            stripe.chunk.len, stripe.chunk.stripe.blob_len, stripe.shards[0].id
        );
    }
    insta::assert_snapshot!(out);
}

#[test]
fn sealed_manifest_and_capability() {
    let manifest = seeded_manifest();
    let (capability, shards) = seal_manifest(
        &manifest,
        &ManifestsKey::from_bytes([8; 32]),
        Redundancy::new(2, 4).unwrap(),
    )
    .unwrap();
    let mut out = format!("capability: {capability}\n");
    for shard in &shards {
        out += &format!("shard {} ({} bytes)\n", shard.id, shard.bytes.len());
    }
    insta::assert_snapshot!(out);
}

/// A version 1 manifest as an earlier build wrote it. Every future build
/// must still read it.
#[test]
fn version_1_manifest_fixture_still_decodes() {
    let hex: String = include_str!("fixtures/manifest-v1.hex")
        .split_whitespace()
        .collect();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let manifest = Manifest::decode(&bytes).unwrap();
    assert_eq!(manifest.size, 2 * 1024 * 1024 + 300_000);
    assert_eq!(
        manifest.hash,
        Id::of(&seeded_bytes(7, 2 * 1024 * 1024 + 300_000))
    );
    assert_eq!(manifest.encode(), bytes);
}
