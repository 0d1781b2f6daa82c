//! The records a node keeps in its metadata database (`meta.redb`): user
//! records, index entries (record formats 1 and 2) and the last scrub. A
//! damaged or foreign database must give errors, not panics.
//!
//! Input: a mode byte choosing the record kind, then the stored value.
//! What decodes encodes to a value that decodes to the same record.
#![no_main]

use cairn_fuzz::Input;
use cairn_store::{ScrubRecord, UserRecord, index};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let mode = input.u8();
    let bytes = input.rest();
    match mode % 3 {
        0 => {
            if let Ok(record) = UserRecord::decode(bytes, "fuzz") {
                assert_eq!(
                    UserRecord::decode(&record.encode(), "fuzz").ok(),
                    Some(record)
                );
            }
        }
        1 => {
            if let Ok(record) = ScrubRecord::decode(bytes, "last_scrub") {
                assert_eq!(
                    ScrubRecord::decode(&record.encode(), "last_scrub").ok(),
                    Some(record)
                );
            }
        }
        _ => {
            // Format 1 or 2; either encodes back as format 2 with the same
            // fields, and the summary is always within the data.
            if let Ok(record) = index::decode(bytes, "fuzz", &[0; 32]) {
                assert!(record.summary_len as usize <= record.data.len());
                let encoded = index::encode(&record);
                assert_eq!(index::decode(&encoded, "fuzz", &[0; 32]).ok(), Some(record));
            }
        }
    }
});
