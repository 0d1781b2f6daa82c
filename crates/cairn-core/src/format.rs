//! The header every cairn format starts with: a 4-byte magic and a version.
//!
//! Each binary structure cairn writes to disk or to the network begins with
//! its own magic (which says what the bytes are) and a version byte (which
//! says how to read the rest). A reader checks both before anything else and
//! refuses, with a [`FormatError`] naming the structure, bytes it does not
//! understand: bytes from a newer cairn, bytes of another kind, or bytes cut
//! short.

/// Length of a format header: magic and version.
pub const HEADER_LEN: usize = 5;

/// A structure's magic and the one version of it this build reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    /// What the structure is called in error messages.
    pub name: &'static str,
    /// First four bytes.
    pub magic: [u8; 4],
    /// Fifth byte.
    pub version: u8,
}

impl Format {
    /// The five header bytes.
    pub const fn header(&self) -> [u8; HEADER_LEN] {
        let [a, b, c, d] = self.magic;
        [a, b, c, d, self.version]
    }

    /// Checks the header of `bytes` and returns what follows it.
    ///
    /// # Errors
    /// [`FormatError`] when `bytes` is shorter than a header, starts with
    /// another magic, or carries another version.
    pub fn strip<'a>(&self, bytes: &'a [u8]) -> Result<&'a [u8], FormatError> {
        let Some((header, rest)) = bytes.split_first_chunk::<HEADER_LEN>() else {
            return Err(FormatError::Truncated {
                format: self.name,
                len: bytes.len(),
            });
        };
        let found: [u8; 4] = [header[0], header[1], header[2], header[3]];
        if found != self.magic {
            return Err(FormatError::Magic {
                format: self.name,
                found,
            });
        }
        if header[4] != self.version {
            return Err(FormatError::Version {
                format: self.name,
                found: header[4],
                supported: self.version,
            });
        }
        Ok(rest)
    }
}

/// Bytes that are not a structure of the expected format and version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// Too short to hold even the header.
    #[error("truncated {format}: {len} bytes is shorter than its header")]
    Truncated {
        /// Name of the expected structure.
        format: &'static str,
        /// Number of bytes given.
        len: usize,
    },
    /// The magic belongs to something else (or to nothing).
    #[error("not a {format}: it starts with {found:02x?}")]
    Magic {
        /// Name of the expected structure.
        format: &'static str,
        /// The first four bytes.
        found: [u8; 4],
    },
    /// The version is one this build does not read, usually written by a
    /// newer cairn: upgrade to read it.
    #[error("{format} version {found} is not supported (this cairn reads version {supported})")]
    Version {
        /// Name of the expected structure.
        format: &'static str,
        /// Version byte found.
        found: u8,
        /// The version this build reads.
        supported: u8,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST: Format = Format {
        name: "test record",
        magic: *b"cnts",
        version: 3,
    };

    #[test]
    fn strips_a_good_header() {
        let mut bytes = TEST.header().to_vec();
        bytes.extend_from_slice(b"body");
        assert_eq!(TEST.strip(&bytes).unwrap(), b"body");
    }

    #[test]
    fn names_what_is_wrong() {
        let err = TEST.strip(b"cnt").unwrap_err();
        assert_eq!(
            err.to_string(),
            "truncated test record: 3 bytes is shorter than its header"
        );
        let err = TEST.strip(b"abcd\x03").unwrap_err();
        assert!(matches!(err, FormatError::Magic { found, .. } if &found == b"abcd"));
        let err = TEST.strip(b"cnts\x04rest").unwrap_err();
        assert_eq!(
            err.to_string(),
            "test record version 4 is not supported (this cairn reads version 3)"
        );
    }
}
