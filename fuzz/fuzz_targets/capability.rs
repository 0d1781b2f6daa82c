//! Capabilities (`cairn:…`), which a user pastes from anywhere.
//!
//! Input: a mode byte, then
//! - mode 0: the string (if UTF-8);
//! - mode 1: the bytes inside one (version and postcard body): the check
//!   digits are computed and the string built, so that parsing gets past
//!   them to the body. A version other than 1 is refused as a version.
//!
//! What parses prints as a string that parses to the same capability.
#![no_main]

use cairn_core::{Capability, CapabilityError};
use cairn_fuzz::Input;
use data_encoding::BASE64URL_NOPAD;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    if input.u8() & 1 == 0 {
        if let Ok(text) = std::str::from_utf8(input.rest()) {
            check(text.parse());
        }
    } else {
        let signed = input.rest();
        if signed.is_empty() {
            return;
        }
        let mut bytes = signed.to_vec();
        bytes.extend_from_slice(&blake3::hash(signed).as_bytes()[..4]);
        let text = format!("cairn:{}", BASE64URL_NOPAD.encode(&bytes));
        let parsed = text.parse::<Capability>();
        if signed[0] != 1 {
            assert_eq!(parsed, Err(CapabilityError::Version { found: signed[0] }));
        }
        check(parsed);
    }
});

fn check(parsed: Result<Capability, CapabilityError>) {
    if let Ok(capability) = parsed {
        capability
            .manifest
            .validate()
            .expect("a parsed capability names a valid stripe");
        let printed = capability.to_string();
        assert_eq!(printed.parse::<Capability>(), Ok(capability));
    }
}
