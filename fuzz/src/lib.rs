//! Helpers shared by the fuzz targets and the seed writer
//! (`examples/seeds.rs`).
//!
//! Each target reads its input with [`Input`]: a mode byte first, then
//! fixed-width fields, then the rest as the bytes under test. The layout is
//! ours rather than `arbitrary`'s so that seeds can be written from real
//! encodings by [`seeds`], and a crash input can be read by eye.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use cairn_core::format::HEADER_LEN;
use cairn_core::keys::KeyMaterial;
use cairn_core::seal::{NONCE_LEN, SEALED_CHUNK};
use cairn_net::protocol::Limits;

pub mod seeds;

/// Limits for the frame targets: small, so that a length field near the
/// limit does not make every run allocate megabytes, but with room for a
/// message, a body, and a batch.
pub const FRAME_LIMITS: Limits = Limits {
    max_shard_len: 64 * 1024,
    max_message_len: 4 * 1024,
    max_batch: 64,
};

/// A cursor over a fuzz input. Reading past the end gives zeros (for fixed
/// fields) or an empty slice, so that every input means something.
pub struct Input<'a> {
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    /// A cursor at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    /// The next byte, or 0.
    pub fn u8(&mut self) -> u8 {
        match self.bytes.split_first() {
            Some((&b, rest)) => {
                self.bytes = rest;
                b
            }
            None => 0,
        }
    }

    /// The next two bytes, little-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// The next four bytes, little-endian.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// The next `n` bytes, or fewer at the end.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.bytes.split_at(n.min(self.bytes.len()));
        self.bytes = rest;
        head
    }

    /// The next 32 bytes as an array, zero-padded.
    pub fn array32(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        let head = self.take(32);
        out[..head.len()].copy_from_slice(head);
        out
    }

    /// Everything left.
    pub fn rest(self) -> &'a [u8] {
        self.bytes
    }
}

/// A sealed chunk holding `codec ‖ payload` under `material`, built from
/// the construction in `cairn_core::seal`'s docs rather than with
/// `ChunkSealer`, so that a target can hand the opener authenticated bytes
/// that no sealer would write (unknown codecs, hostile zstd frames). Any
/// nonce opens; the sealer's synthetic nonce only matters for sealing.
pub fn seal_chunk_body(material: &KeyMaterial, nonce: [u8; NONCE_LEN], body: &[u8]) -> Vec<u8> {
    let key = blake3::derive_key(
        "cairn 2026-11 chunk aes-256-gcm key",
        material.expose_secret(),
    );
    let cipher = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).expect("32-byte key"));
    let mut out = SEALED_CHUNK.header().to_vec();
    out.extend_from_slice(&nonce);
    out.extend_from_slice(body);
    let (aad, encrypted) = out.split_at_mut(HEADER_LEN + NONCE_LEN);
    let tag = cipher
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&*aad),
            encrypted,
        )
        .expect("small body");
    out.extend_from_slice(tag.as_ref());
    out
}
