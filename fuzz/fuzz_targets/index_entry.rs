//! Index entries (`cnie`) inside sealed index entries (`cnsi`) and split
//! entries (`cnse`: a sealed summary and a sealed inline body), as a client
//! reads them from nodes, and the remote paths inside them.
//!
//! Input: a mode byte, then
//! - mode 0: a plaintext entry, sealed whole (as before folders) under the
//!   index key and opened. What opens is valid, opens again under its own
//!   name, and seals (split) and opens back to the same entry;
//! - mode 1: a sealed entry as it is (which cannot authenticate);
//! - mode 2: a remote path (if UTF-8): what parses is canonical;
//! - mode 3: a summary plaintext and a body plaintext (cut at a length
//!   byte), sealed and put in a split entry: what opens reseals to the same
//!   entry, unless its inline bytes were not there (then sealing refuses).
#![no_main]

use cairn_client::RemotePath;
use cairn_client::index::{
    Content, Entry, EntryKind, FileEntry, IndexEntryError, MAX_PATH_LEN, SEALED_BODY, SEALED_ENTRY,
    SPLIT_ENTRY,
};
use cairn_core::envelope;
use cairn_core::keys::{IndexKey, IndexNameKey};
use cairn_fuzz::Input;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let key = IndexKey::from_bytes([1; 32]);
    let name_key = IndexNameKey::from_bytes([2; 32]);
    let reopen = |sealed: &[u8]| -> Option<Entry> {
        match Entry::open(sealed, &key, &[0; 32], &name_key) {
            Ok(entry) => Some(entry),
            Err(IndexEntryError::NameMismatch { actual, .. }) => Some(
                Entry::open(sealed, &key, &actual, &name_key)
                    .expect("an entry opens under its own name"),
            ),
            Err(_) => None,
        }
    };
    let reseal = |entry: Entry| {
        let name = entry.name(&name_key);
        let unread = matches!(
            entry.kind,
            EntryKind::File(FileEntry {
                content: Content::InlineUnread,
                ..
            })
        );
        match entry.seal(&key) {
            Ok(resealed) => {
                assert!(!unread, "unread inline bytes cannot be sealed");
                assert_eq!(
                    Entry::open(&resealed.data, &key, &name, &name_key),
                    Ok(entry)
                );
            }
            Err(e) => assert!(unread, "an entry that opened seals: {e}"),
        }
    };
    match input.u8() % 4 {
        0 => {
            let sealed = envelope::seal(&SEALED_ENTRY, key.expose_secret(), input.rest());
            if let Some(entry) = reopen(&sealed) {
                reseal(entry);
            }
        }
        3 => {
            let cut = usize::from(input.u8());
            let rest = input.rest();
            let (summary, body) = rest.split_at(cut.min(rest.len()));
            let summary = envelope::seal(&SEALED_ENTRY, key.expose_secret(), summary);
            let mut data = SPLIT_ENTRY.header().to_vec();
            data.extend_from_slice(&(summary.len() as u32).to_le_bytes());
            data.extend_from_slice(&summary);
            if !body.is_empty() {
                data.extend(envelope::seal(&SEALED_BODY, key.expose_secret(), body));
            }
            if let Some(entry) = reopen(&data) {
                reseal(entry);
            }
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
