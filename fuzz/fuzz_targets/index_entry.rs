//! Index entries (`cnie`) inside sealed index entries (`cnsi`), as a
//! client reads them from nodes, and the remote paths inside them.
//!
//! Input: a mode byte, then
//! - mode 0: a plaintext entry, sealed under the index key and opened.
//!   What opens is valid, opens again under the name of its own path,
//!   and seals and opens back to the same entry;
//! - mode 1: a sealed entry as it is (which cannot authenticate);
//! - mode 2: a remote path (if UTF-8): what parses is canonical.
#![no_main]

use cairn_client::RemotePath;
use cairn_client::index::{Entry, IndexEntryError, MAX_PATH_LEN, SEALED_ENTRY, entry_name};
use cairn_core::envelope;
use cairn_core::keys::{IndexKey, IndexNameKey};
use cairn_fuzz::Input;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let key = IndexKey::from_bytes([1; 32]);
    let name_key = IndexNameKey::from_bytes([2; 32]);
    match input.u8() % 3 {
        0 => {
            let sealed = envelope::seal(&SEALED_ENTRY, key.expose_secret(), input.rest());
            let entry = match Entry::open(&sealed, &key, &[0; 32], &name_key) {
                Ok(entry) => entry,
                Err(IndexEntryError::NameMismatch { actual, .. }) => {
                    Entry::open(&sealed, &key, &actual, &name_key)
                        .expect("an entry opens under its own name")
                }
                Err(_) => return,
            };
            let name = entry.name(&name_key);
            assert_eq!(name, entry_name(&name_key, &entry.path));
            let resealed = entry.seal(&key).expect("an entry that opened seals");
            assert_eq!(Entry::open(&resealed, &key, &name, &name_key), Ok(entry));
        }
        1 => assert!(Entry::open(input.rest(), &key, &[0; 32], &name_key).is_err()),
        _ => {
            if let Ok(text) = std::str::from_utf8(input.rest())
                && let Ok(path) = text.parse::<RemotePath>()
            {
                let canonical = path.as_str();
                assert!(!canonical.is_empty() && canonical.len() <= MAX_PATH_LEN);
                assert!(!canonical.contains('\0'));
                assert!(
                    canonical
                        .split('/')
                        .all(|c| !c.is_empty() && c != "." && c != "..")
                );
                assert_eq!(canonical.parse::<RemotePath>(), Ok(path.clone()));
            }
        }
    }
});
