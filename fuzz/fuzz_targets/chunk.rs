//! Sealed chunks (`cnch`) as a client opens them after rebuilding them
//! from shards.
//!
//! Input: a mode byte, then
//! - mode 0: the declared plaintext length (u32) and sealed bytes, opened
//!   as they are (mostly the header and length checks: mutated bytes do
//!   not authenticate);
//! - mode 1: the declared length, a codec byte and a payload, sealed with
//!   the construction from the module docs, so that the opener's codec
//!   handling and zstd see hostile but authenticated bytes;
//! - mode 2: a byte offset, an xor and a plaintext, sealed with
//!   `ChunkSealer`: it opens to the plaintext, and the flipped copy fails.
#![no_main]

use cairn_core::chunk::MAX_CHUNK;
use cairn_core::keys::KeyMaterial;
use cairn_core::seal::{ChunkError, ChunkOpener, ChunkSealer};
use cairn_fuzz::{Input, seal_chunk_body};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let material = KeyMaterial::from_bytes([7; 32]);
    let mut opener = ChunkOpener::new();
    match input.u8() % 3 {
        0 => {
            let plain_len = input.u32() as usize % (MAX_CHUNK + 1);
            let sealed = input.rest().to_vec();
            if let Ok(plain) = opener.open(&material, sealed, plain_len) {
                // Only a real sealed chunk (a seed, or one mutated back
                // into shape) opens.
                assert_eq!(plain.len(), plain_len);
            }
        }
        1 => {
            let plain_len = input.u32() as usize % (MAX_CHUNK + 1);
            let codec = input.u8();
            let payload = input.rest();
            let mut body = vec![codec];
            body.extend_from_slice(payload);
            let sealed = seal_chunk_body(&material, [1; 12], &body);
            let result = opener.open(&material, sealed, plain_len);
            match codec {
                0 => match result {
                    Ok(plain) => assert_eq!(plain, payload),
                    Err(ChunkError::Length { expected, actual }) => {
                        assert_eq!((expected, actual), (plain_len, payload.len()));
                        assert_ne!(plain_len, payload.len());
                    }
                    Err(e) => panic!("raw payload refused: {e}"),
                },
                1 => {
                    if let Ok(plain) = result {
                        assert_eq!(plain.len(), plain_len);
                    }
                }
                other => assert!(matches!(result, Err(ChunkError::Codec(c)) if c == other)),
            }
        }
        _ => {
            let offset = usize::from(input.u16());
            let xor = input.u8() | 1;
            let plaintext = input.rest();
            let sealed = ChunkSealer::new().seal_with(&material, plaintext);
            let opened = opener
                .open(&material, sealed.clone(), plaintext.len())
                .expect("a sealed chunk opens");
            assert_eq!(opened, plaintext);
            let mut flipped = sealed;
            let offset = offset % flipped.len();
            flipped[offset] ^= xor;
            assert!(opener.open(&material, flipped, plaintext.len()).is_err());
        }
    }
});
