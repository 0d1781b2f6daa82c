//! Manifests (`cnmf`) and sealed manifests (`cnsm`), as a client reads
//! them from the shards a capability names.
//!
//! Input: a mode byte, then
//! - mode 0: an encoded manifest. Decoding it and opening it sealed (a
//!   valid envelope around the same bytes) agree; what decodes is
//!   consistent and survives encode → decode unchanged;
//! - mode 1: a sealed manifest as it is, which cannot authenticate.
#![no_main]

use cairn_core::envelope;
use cairn_core::keys::ManifestKey;
use cairn_core::manifest::{Manifest, SEALED_MANIFEST};
use cairn_fuzz::Input;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let key = ManifestKey::from_bytes([3; 32]);
    if input.u8() & 1 == 0 {
        let bytes = input.rest();
        let decoded = Manifest::decode(bytes);
        let sealed = envelope::seal(&SEALED_MANIFEST, key.expose_secret(), bytes);
        assert_eq!(Manifest::open(&sealed, &key), decoded);
        if let Ok(manifest) = decoded {
            manifest.validate().expect("a decoded manifest is valid");
            let encoded = manifest.encode();
            assert_eq!(Manifest::decode(&encoded).as_ref(), Ok(&manifest));
            assert_eq!(Manifest::open(&manifest.seal(&key), &key), Ok(manifest));
        }
    } else {
        assert!(Manifest::open(input.rest(), &key).is_err());
    }
});
