//! Versioned record values: one format byte, then the record in postcard.
//!
//! ```text
//! +--------+---------------------------------+
//! | format | postcard encoding of the record |
//! +--------+---------------------------------+
//!   1 byte   the rest of the value
//! ```
//!
//! Each kind of record (a user, an index entry, the last scrub) numbers its
//! formats from 1. A reader decodes only the formats it knows and reports
//! any other as [`RecordError::UnknownVersion`] rather than guessing: a
//! newer cairn may have written it. A value that is empty, does not decode,
//! or has bytes left over after the record is [`RecordError::Malformed`].
//!
//! The postcard structs are private to the modules that own them and are
//! converted to and from the public types, so that a public type can change
//! without changing what is on disk, and a new format is a new struct.

use serde::Serialize;
use serde::de::Deserialize;

use crate::error::RecordError;

/// Where a record lives, for error messages: its table and key.
#[derive(Clone, Copy)]
pub(crate) struct Place<'a> {
    /// The table, as named in the schema.
    pub(crate) table: &'static str,
    /// The record's key, printable.
    pub(crate) key: &'a dyn std::fmt::Display,
}

/// Encodes `record` behind the format byte `format`.
pub(crate) fn encode<T: Serialize>(format: u8, record: &T) -> Vec<u8> {
    // postcard only fails for sequences of unknown length and full
    // fixed-size buffers; our records are plain structs written to a Vec.
    postcard::to_extend(record, vec![format]).expect("postcard encodes plain structs into a Vec")
}

/// Decodes a record written by [`encode`] with the format byte `format`,
/// the only one the caller reads.
pub(crate) fn decode<'a, T: Deserialize<'a>>(
    format: u8,
    bytes: &'a [u8],
    place: Place<'_>,
) -> Result<T, RecordError> {
    let malformed = |source| RecordError::Malformed {
        table: place.table,
        key: place.key.to_string(),
        source,
    };
    let Some((&found, rest)) = bytes.split_first() else {
        return Err(malformed(postcard::Error::DeserializeUnexpectedEnd));
    };
    if found != format {
        return Err(RecordError::UnknownVersion {
            table: place.table,
            key: place.key.to_string(),
            found,
            supported: format,
        });
    }
    let (record, left) = postcard::take_from_bytes(rest).map_err(malformed)?;
    if !left.is_empty() {
        return Err(malformed(postcard::Error::DeserializeBadEncoding));
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample<'a> {
        n: u64,
        #[serde(borrow)]
        bytes: &'a [u8],
    }

    const PLACE: Place<'static> = Place {
        table: "sample",
        key: &"k",
    };

    #[test]
    fn round_trips_behind_its_format_byte() {
        let sample = Sample {
            n: 300,
            bytes: b"abc",
        };
        let bytes = encode(3, &sample);
        assert_eq!(bytes[0], 3);
        // 300 as a varint is two bytes; the slice is a length then bytes.
        assert_eq!(&bytes[1..], [0xac, 0x02, 3, b'a', b'b', b'c']);
        assert_eq!(decode::<Sample<'_>>(3, &bytes, PLACE).unwrap(), sample);
    }

    #[test]
    fn other_formats_and_bad_bytes_are_refused() {
        let mut bytes = encode(1, &Sample { n: 1, bytes: b"" });
        let err = decode::<Sample<'_>>(2, &bytes, PLACE).unwrap_err();
        assert!(
            matches!(
                err,
                RecordError::UnknownVersion {
                    table: "sample",
                    found: 1,
                    supported: 2,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("format version 1"), "{err}");
        bytes.push(0);
        let err = decode::<Sample<'_>>(1, &bytes, PLACE).unwrap_err();
        assert!(matches!(err, RecordError::Malformed { .. }), "{err:?}");
        let err = decode::<Sample<'_>>(1, &bytes[..2], PLACE).unwrap_err();
        assert!(matches!(err, RecordError::Malformed { .. }), "{err:?}");
        let err = decode::<Sample<'_>>(1, &[], PLACE).unwrap_err();
        assert!(matches!(err, RecordError::Malformed { .. }), "{err:?}");
    }
}
