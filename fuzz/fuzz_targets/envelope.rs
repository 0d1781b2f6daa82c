//! Envelopes: the AES-256-GCM box around sealed manifests (`cnsm`) and
//! sealed index entries (`cnsi`).
//!
//! Input: a mode byte, then
//! - mode 0: sealed bytes, opened as each kind (nothing authenticates);
//! - mode 1: a key byte, a byte offset, an xor and a plaintext: the sealed
//!   plaintext opens to itself, and not as the other kind, nor cut short,
//!   nor with a byte flipped.
#![no_main]

use cairn_client::index::SEALED_ENTRY;
use cairn_core::envelope::{self, ENVELOPE_OVERHEAD};
use cairn_core::manifest::SEALED_MANIFEST;
use cairn_fuzz::Input;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let formats = [SEALED_MANIFEST, SEALED_ENTRY];
    if input.u8() & 1 == 0 {
        let sealed = input.rest();
        for format in &formats {
            assert!(envelope::open(format, &[5; 32], sealed).is_err());
        }
    } else {
        let key = [input.u8(); 32];
        let which = usize::from(input.u8() % 2);
        let offset = usize::from(input.u16());
        let xor = input.u8() | 1;
        let plaintext = input.rest();
        let (format, other) = (&formats[which], &formats[1 - which]);
        let sealed = envelope::seal(format, &key, plaintext);
        assert_eq!(sealed.len(), plaintext.len() + ENVELOPE_OVERHEAD);
        assert_eq!(
            envelope::open(format, &key, &sealed).as_deref(),
            Ok(plaintext)
        );
        assert!(envelope::open(other, &key, &sealed).is_err());
        assert!(envelope::open(format, &key, &sealed[..sealed.len() - 1]).is_err());
        let mut flipped = sealed;
        let offset = offset % flipped.len();
        flipped[offset] ^= xor;
        assert!(envelope::open(format, &key, &flipped).is_err());
    }
});
