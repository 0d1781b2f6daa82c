//! Index entries: the format of the client's encrypted directory of remote
//! paths.
//!
//! A user's files are listed in index entries kept on every node. A node
//! never sees a path, a size or a key: it stores opaque bytes under an
//! opaque 32-byte name, with a `u64` version it only compares.
//!
//! ```text
//! name   = BLAKE3-keyed(IndexNameKey, "cairn 2026-11 index entry name" ‖ 0x00 ‖ path)
//!
//! entry  = "cnie" │ 0x01 │ postcard {
//!            path:    varint length ‖ UTF-8         a canonical RemotePath, 1 ..= 4096 bytes
//!            version: varint u64                    hybrid logical clock, see Version
//!            writer:  [u8; 16]                      random per client process
//!            kind:    varint 0 = File {
//!                        capability: stripe { blob_len: varint u32, (k u8, n u8),
//!                                             varint count, count × [u8; 32] },
//!                                    manifest key [u8; 32]
//!                        size: varint u64, modified_unix_ms: varint u64,
//!                        chunks: varint u64, redundancy: (k u8, n u8),
//!                        content_hash: [u8; 32] }
//!                   | varint 1 = Deleted
//!                   | varint 2 = Inline {                      version 2 only
//!                        data: varint length ‖ bytes          the whole file, ≤ MAX_INLINE_LEN
//!                        modified_unix_ms: varint u64, redundancy: (k u8, n u8),
//!                        content_hash: [u8; 32] }             BLAKE3(data), checked on read
//!          }
//!
//! An entry of kind Inline carries version 2 in its header, the others
//! version 1 (the bytes of every entry written before inline files existed),
//! so a cairn that predates inline files refuses one as "written by a newer
//! cairn" rather than misreading it.
//!
//! sealed = envelope "cnsi" v1 (cairn_core::envelope) of the entry under the IndexKey:
//!          "cnsi" │ 0x01 │ nonce (12) │ AES-256-GCM(entry) │ tag (16)
//!          at most MAX_SEALED_ENTRY_LEN (64 KiB, the node's limit) in all
//! ```
//!
//! # Guarantees
//!
//! - **Names hide paths.** The name is a PRF of the path under a key the
//!   nodes never see, so equal paths give equal names (which is how every
//!   client finds an entry) and nothing else about the path leaks.
//! - **Entries are bound to their names.** [`Entry::open`] checks that the
//!   path inside the authenticated plaintext hashes to the name the entry
//!   was stored under, so a node answering a request for one name with
//!   another entry's bytes is caught.
//! - **Sealing is deterministic** (the envelope's nonce is synthetic), so
//!   re-sending an entry after a lost reply sends the same bytes, which a
//!   node accepts as a harmless repeat.
//! - **Keys do not linger.** Plaintext entries hold capabilities, that is
//!   manifest keys: every plaintext buffer is wiped when dropped.
//! - **Newest wins, deletes included.** Entries from several nodes merge
//!   with [`newest`]: the higher [`Version`], then the higher writer id.
//!   A removal is an entry like any other ([`EntryKind::Deleted`], a
//!   tombstone), so it wins over older copies and propagates by read
//!   repair. (A node's own delete forgets the version, so a client removes
//!   a file by writing a tombstone, not by deleting the entry.)
//!
//! Versions come from a [`Clock`], a hybrid logical clock.

use std::cmp::Ordering;
use std::fmt;

use cairn_core::envelope::{self, ENVELOPE_OVERHEAD, EnvelopeError};
use cairn_core::format::{Format, FormatError, HEADER_LEN};
use cairn_core::keys::{IndexKey, IndexNameKey};
use cairn_core::{Capability, Id, Redundancy};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

#[cfg(doc)]
use super::Clock;
use super::Version;
use crate::path::{PathError, RemotePath};

/// Format of an encoded (plaintext) index entry of a stored file or a
/// tombstone.
pub const ENTRY: Format = Format {
    name: "index entry",
    magic: *b"cnie",
    version: 1,
};

/// Format of an encoded (plaintext) index entry that holds its file inline;
/// this build reads both versions.
pub const INLINE_ENTRY: Format = Format {
    name: "index entry",
    magic: *b"cnie",
    version: 2,
};

/// Format of the plaintext summary of an entry written since folders
/// (version 3): any kind, with an inline file's bytes kept out of it (they
/// travel in the entry's body, which listings leave out). This build reads
/// versions 1 to 3.
pub const SUMMARY_ENTRY: Format = Format {
    name: "index entry",
    magic: *b"cnie",
    version: 3,
};

/// Format of the stored data of an entry written since folders: a summary
/// (a sealed [`SUMMARY_ENTRY`]) and a body (an inline file's sealed bytes,
/// or nothing). A node returns only the summary in folder listings and the
/// change feed.
pub const SPLIT_ENTRY: Format = Format {
    name: "split index entry",
    magic: *b"cnse",
    version: 1,
};

/// Format of the envelope around an inline file's bytes in an entry's body.
pub const SEALED_BODY: Format = Format {
    name: "sealed inline file",
    magic: *b"cnsb",
    version: 1,
};

/// Largest summary a node keeps for a listing
/// (`cairn_net::protocol::MAX_SUMMARY_LEN`).
pub const MAX_SUMMARY_LEN: usize = 8 * 1024;

/// Largest file an index entry holds inline, in bytes: with a 4 KiB path the
/// sealed entry stays far below [`MAX_SEALED_ENTRY_LEN`].
pub const MAX_INLINE_LEN: usize = 32 * 1024;

/// Format of a sealed index entry (the envelope around [`ENTRY`]).
pub const SEALED_ENTRY: Format = Format {
    name: "sealed index entry",
    magic: *b"cnsi",
    version: 1,
};

/// Largest sealed entry, in bytes: the most a node stores for one index
/// entry (`cairn_store::MAX_INDEX_ENTRY_LEN`).
pub const MAX_SEALED_ENTRY_LEN: usize = 64 * 1024;

/// Domain-separation prefix of entry names. Part of the format: changing it
/// would lose every user's index.
const NAME_CONTEXT: &[u8] = b"cairn 2026-11 index entry name\0";

/// Domain-separation prefix of folder tags. Part of the format.
const FOLDER_CONTEXT: &[u8] = b"cairn 2026-12 folder tag\0";

/// The name an entry for `path` is stored under: keyed BLAKE3 (a PRF) of
/// the path with a domain-separation prefix.
pub fn entry_name(key: &IndexNameKey, path: &RemotePath) -> [u8; 32] {
    *blake3::Hasher::new_keyed(key.expose_secret())
        .update(NAME_CONTEXT)
        .update(path.as_str().as_bytes())
        .finalize()
        .as_bytes()
}

/// The name the entry of folder `path` is stored under: the name of the
/// path with a `/` appended, which no file path can have, so a file and a
/// folder of the same path have entries of their own.
pub fn folder_entry_name(key: &IndexNameKey, path: &RemotePath) -> [u8; 32] {
    *blake3::Hasher::new_keyed(key.expose_secret())
        .update(NAME_CONTEXT)
        .update(path.as_str().as_bytes())
        .update(b"/")
        .finalize()
        .as_bytes()
}

/// The tag a node groups the entries of folder `folder` under (`None`: the
/// user's root): keyed BLAKE3 of the folder's path, in a domain of its own.
/// A node learns which entries share a folder, and nothing of the folder's
/// path or of how folders nest (a folder's tag is unrelated to its
/// parent's).
pub fn folder_tag(key: &IndexNameKey, folder: Option<&RemotePath>) -> [u8; 32] {
    *blake3::Hasher::new_keyed(key.expose_secret())
        .update(FOLDER_CONTEXT)
        .update(folder.map_or("", RemotePath::as_str).as_bytes())
        .finalize()
        .as_bytes()
}

/// One index entry: what a path points at, as of a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The path the entry describes; its name is [`entry_name`] of it.
    pub path: RemotePath,
    /// When it was written, by the writer's [`Clock`].
    pub version: Version,
    /// Random per client process; breaks ties between equal versions.
    pub writer: [u8; 16],
    /// A file, or a tombstone.
    pub kind: EntryKind,
}

/// What an entry says about its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// The path is a file.
    File(FileEntry),
    /// The path was removed: a tombstone, kept so that the removal wins
    /// over older copies of the entry.
    Deleted,
    /// The path is a folder (version 3): listed in its parent even when
    /// empty. Stored under [`folder_entry_name`].
    Folder,
    /// The folder was removed (version 3): a folder's tombstone, under
    /// [`folder_entry_name`].
    RemovedFolder,
}

impl EntryKind {
    /// Whether the entry is a folder's (live or removed), stored under
    /// [`folder_entry_name`].
    pub fn is_folder(&self) -> bool {
        matches!(self, Self::Folder | Self::RemovedFolder)
    }
}

/// A stored file: how to read it, and what `ls -l` and `stat` print
/// without fetching its manifest.
///
/// Health (`ok`, `degraded`, `lost`) is not stored: it changes as nodes
/// come and go, so the client computes it from the manifest and the nodes'
/// answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Where the file's bytes are.
    pub content: Content,
    /// Plaintext size in bytes.
    pub size: u64,
    /// The local file's modification time when it was stored, in
    /// milliseconds since the Unix epoch (the time of the put for a
    /// stream).
    pub modified_unix_ms: u64,
    /// Number of chunks (0 for an inline file).
    pub chunks: u64,
    /// k and n of the file's chunks (for an inline file: the client's
    /// setting when it was written).
    pub redundancy: Redundancy,
    /// BLAKE3 of the whole plaintext, as in the manifest: lets `stat` print
    /// it and `put` recognise an unchanged file without fetching the
    /// manifest.
    pub content_hash: Id,
}

/// Where a file's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Chunked, sealed and spread over the nodes as shards; the capability
    /// fetches and opens the manifest.
    Stored(Capability),
    /// In the index entry itself, which every node keeps a copy of: a small
    /// file costs one entry write per node instead of 2n shard files.
    Inline(InlineBytes),
    /// In the index entry, but not read: an entry from a folder listing or
    /// the change feed, which carry summaries only. A lookup reads the
    /// bytes.
    InlineUnread,
}

impl Content {
    /// The capability of a stored file; `None` for an inline one.
    pub fn capability(&self) -> Option<&Capability> {
        match self {
            Self::Stored(capability) => Some(capability),
            Self::Inline(_) | Self::InlineUnread => None,
        }
    }
}

/// The bytes of an inline file. Its `Debug` prints the length only, so a
/// logged entry never shows file contents.
#[derive(Clone, PartialEq, Eq)]
pub struct InlineBytes(Vec<u8>);

impl InlineBytes {
    /// Wraps `bytes`.
    ///
    /// # Errors
    /// Gives `bytes` back if they are longer than [`MAX_INLINE_LEN`].
    pub fn new(bytes: Vec<u8>) -> Result<Self, Vec<u8>> {
        if bytes.len() > MAX_INLINE_LEN {
            return Err(bytes);
        }
        Ok(Self(bytes))
    }
}

impl std::ops::Deref for InlineBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for InlineBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InlineBytes({} bytes)", self.0.len())
    }
}

/// Why an index entry could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IndexEntryError {
    /// The sealed entry is over the node's limit. Sealing: only an entry
    /// with an invalid capability can get there. Opening: not an entry.
    #[error("a sealed index entry of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Its sealed length in bytes.
        len: usize,
        /// [`MAX_SEALED_ENTRY_LEN`].
        max: usize,
    },
    /// Not a sealed entry, altered, or sealed under another user's key.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// The plaintext is not an entry of a version this build reads: it was
    /// probably written by a newer cairn.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The plaintext does not decode.
    #[error("the index entry does not decode: {0}")]
    Decode(#[source] postcard::Error),
    /// Bytes follow the entry.
    #[error("{count} unexpected bytes after the index entry")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// The entry's path is not a valid remote path.
    #[error("the index entry holds an invalid path: {0}")]
    Path(#[from] PathError),
    /// The entry's path is valid but not written canonically (for example
    /// with a leading `/`): a writer that does not follow the format.
    #[error("the index entry's path {path:?} is not in canonical form")]
    NotCanonical {
        /// The path as stored.
        path: String,
    },
    /// The capability names an impossible stripe.
    #[error("the index entry's capability is malformed: {reason}")]
    Stripe {
        /// What is inconsistent.
        reason: cairn_core::erasure::StripeRefError,
    },
    /// An inline file is longer than [`MAX_INLINE_LEN`], or its bytes do
    /// not hash to the entry's content hash: a writer that does not follow
    /// the format.
    #[error("the index entry's inline file is malformed: {reason}")]
    Inline {
        /// What is wrong.
        reason: &'static str,
    },
    /// The split container around a summary and a body is malformed, or a
    /// body does not belong to its summary.
    #[error("the index entry is malformed: {reason}")]
    Malformed {
        /// What is wrong.
        reason: &'static str,
    },
    /// The entry is for another path than the name it was stored under: a
    /// node returned another entry's bytes.
    #[error("the index entry was stored under the wrong name (a node swapped entries)")]
    NameMismatch {
        /// The name asked for.
        expected: [u8; 32],
        /// The name of the path inside the entry.
        actual: [u8; 32],
    },
}

/// The encoded form of an entry; private so the format lives here only.
#[derive(Serialize, Deserialize)]
struct WireEntry {
    path: String,
    version: u64,
    writer: [u8; 16],
    kind: WireKind,
}

#[derive(Serialize, Deserialize)]
enum WireKind {
    File(WireFile),
    Deleted,
    /// Version 2 only.
    Inline(WireInline),
    /// Version 3 only: an inline file whose bytes are in the entry's body.
    InlineSummary(WireInlineSummary),
    /// Version 3 only.
    Folder,
    /// Version 3 only.
    RemovedFolder,
}

#[derive(Serialize, Deserialize)]
struct WireInlineSummary {
    size: u64,
    modified_unix_ms: u64,
    redundancy: Redundancy,
    content_hash: Id,
}

#[derive(Serialize, Deserialize)]
struct WireInline {
    data: Vec<u8>,
    modified_unix_ms: u64,
    redundancy: Redundancy,
    content_hash: Id,
}

#[derive(Serialize, Deserialize)]
struct WireFile {
    capability: Capability,
    size: u64,
    modified_unix_ms: u64,
    chunks: u64,
    redundancy: Redundancy,
    content_hash: Id,
}

impl Entry {
    /// The name this entry is stored under: [`folder_entry_name`] for a
    /// folder's, else [`entry_name`].
    pub fn name(&self, key: &IndexNameKey) -> [u8; 32] {
        if self.kind.is_folder() {
            folder_entry_name(key, &self.path)
        } else {
            entry_name(key, &self.path)
        }
    }

    /// The tag of the folder this entry is listed in (its path's parent).
    pub fn folder_tag(&self, key: &IndexNameKey) -> [u8; 32] {
        folder_tag(key, self.path.parent().as_ref())
    }

    /// Whether this is a tombstone.
    pub fn is_deleted(&self) -> bool {
        matches!(self.kind, EntryKind::Deleted)
    }

    /// The wire form: with `summary`, as version 3 (an inline file's bytes
    /// left out), else as versions 1 and 2 wrote it (folders have no such
    /// form, nor do unread inline bytes: `None`).
    fn to_wire(&self, summary: bool) -> Option<WireEntry> {
        let kind = match &self.kind {
            EntryKind::Deleted => WireKind::Deleted,
            EntryKind::Folder if summary => WireKind::Folder,
            EntryKind::RemovedFolder if summary => WireKind::RemovedFolder,
            EntryKind::Folder | EntryKind::RemovedFolder => return None,
            EntryKind::File(file) => match &file.content {
                Content::Stored(capability) => WireKind::File(WireFile {
                    capability: capability.clone(),
                    size: file.size,
                    modified_unix_ms: file.modified_unix_ms,
                    chunks: file.chunks,
                    redundancy: file.redundancy,
                    content_hash: file.content_hash,
                }),
                Content::Inline(_) | Content::InlineUnread if summary => {
                    WireKind::InlineSummary(WireInlineSummary {
                        size: file.size,
                        modified_unix_ms: file.modified_unix_ms,
                        redundancy: file.redundancy,
                        content_hash: file.content_hash,
                    })
                }
                Content::Inline(data) => WireKind::Inline(WireInline {
                    data: data.0.clone(),
                    modified_unix_ms: file.modified_unix_ms,
                    redundancy: file.redundancy,
                    content_hash: file.content_hash,
                }),
                Content::InlineUnread => return None,
            },
        };
        Some(WireEntry {
            path: self.path.as_str().to_owned(),
            version: self.version.0,
            writer: self.writer,
            kind,
        })
    }

    /// The plaintext encoding of `wire`, with its header; allocated at its
    /// final size, so no copy of the capability is left behind by a
    /// reallocation, and wiped when dropped.
    fn encode_wire(wire: WireEntry, format: Format) -> Zeroizing<Vec<u8>> {
        let len =
            postcard::experimental::serialized_size(&wire).expect("an entry always serializes");
        let mut out = Zeroizing::new(Vec::with_capacity(HEADER_LEN + len));
        out.extend_from_slice(&format.header());
        postcard::to_io(&wire, &mut *out).expect("writing to a Vec cannot fail");
        // The wire form's copy of inline bytes goes too.
        if let WireKind::Inline(mut inline) = wire.kind {
            zeroize::Zeroize::zeroize(&mut inline.data);
        }
        out
    }

    /// The version 3 plaintext summary: [`SUMMARY_ENTRY`] header, then
    /// postcard.
    fn encode_summary(&self) -> Zeroizing<Vec<u8>> {
        let wire = self.to_wire(true).expect("every entry has a summary");
        Self::encode_wire(wire, SUMMARY_ENTRY)
    }

    /// The plaintext encoding of versions 1 and 2 (one sealed whole): the
    /// [`ENTRY`] or [`INLINE_ENTRY`] header, then postcard. `None` for what
    /// those versions cannot hold (folders, unread inline bytes).
    fn encode(&self) -> Option<Zeroizing<Vec<u8>>> {
        let wire = self.to_wire(false)?;
        let format = match wire.kind {
            WireKind::Inline(_) => INLINE_ENTRY,
            _ => ENTRY,
        };
        Some(Self::encode_wire(wire, format))
    }

    /// Seals the entry under `key`, ready to store under
    /// [`name`](Self::name) in [`folder_tag`](Self::folder_tag): a
    /// [`SPLIT_ENTRY`] of a sealed summary and, for an inline file, its
    /// sealed bytes. Deterministic: the same entry and key give the same
    /// bytes.
    ///
    /// The body's plaintext starts with the BLAKE3 of the sealed summary,
    /// which binds it to its entry: equal small files under two paths seal
    /// to unrelated bytes, and a body moved under another summary is
    /// refused.
    ///
    /// # Errors
    /// [`IndexEntryError::TooLarge`] if the summary would exceed
    /// [`MAX_SUMMARY_LEN`] or the whole [`MAX_SEALED_ENTRY_LEN`] (only an
    /// invalid capability gets there: a 4 KiB path and 32 shards are far
    /// below); [`IndexEntryError::Inline`] for an entry whose inline bytes
    /// were not read.
    pub fn seal(&self, key: &IndexKey) -> Result<SealedEntry, IndexEntryError> {
        let plaintext = self.encode_summary();
        let summary_len = SPLIT_HEADER_LEN + plaintext.len() + ENVELOPE_OVERHEAD;
        if summary_len > MAX_SUMMARY_LEN {
            return Err(IndexEntryError::TooLarge {
                len: summary_len,
                max: MAX_SUMMARY_LEN,
            });
        }
        let summary = envelope::seal(&SEALED_ENTRY, key.expose_secret(), &plaintext);
        let body = match &self.kind {
            EntryKind::File(FileEntry {
                content: Content::Inline(bytes),
                ..
            }) => Some(bytes),
            EntryKind::File(FileEntry {
                content: Content::InlineUnread,
                ..
            }) => {
                return Err(IndexEntryError::Inline {
                    reason: "its bytes were not read",
                });
            }
            _ => None,
        };
        let body_len = body.map_or(0, |b| 32 + b.len() + ENVELOPE_OVERHEAD);
        let len = summary_len + body_len;
        if len > MAX_SEALED_ENTRY_LEN {
            return Err(IndexEntryError::TooLarge {
                len,
                max: MAX_SEALED_ENTRY_LEN,
            });
        }
        let mut data = Vec::with_capacity(len);
        data.extend_from_slice(&SPLIT_ENTRY.header());
        data.extend_from_slice(&(summary.len() as u32).to_le_bytes());
        data.extend_from_slice(&summary);
        if let Some(bytes) = body {
            let mut plaintext = Zeroizing::new(Vec::with_capacity(32 + bytes.len()));
            plaintext.extend_from_slice(blake3::hash(&summary).as_bytes());
            plaintext.extend_from_slice(bytes);
            data.extend(envelope::seal(
                &SEALED_BODY,
                key.expose_secret(),
                &plaintext,
            ));
        }
        Ok(SealedEntry {
            data,
            summary_len: summary_len as u32,
        })
    }

    /// Seals the entry as versions 1 and 2 did (one envelope around the
    /// whole entry), for tests of what older cairns wrote.
    ///
    /// # Errors
    /// As [`seal`](Self::seal); [`IndexEntryError::Malformed`] for a kind
    /// those versions cannot hold.
    #[doc(hidden)]
    pub fn seal_legacy(&self, key: &IndexKey) -> Result<Vec<u8>, IndexEntryError> {
        let plaintext = self.encode().ok_or(IndexEntryError::Malformed {
            reason: "versions 1 and 2 cannot hold this kind",
        })?;
        let len = plaintext.len() + ENVELOPE_OVERHEAD;
        if len > MAX_SEALED_ENTRY_LEN {
            return Err(IndexEntryError::TooLarge {
                len,
                max: MAX_SEALED_ENTRY_LEN,
            });
        }
        Ok(envelope::seal(
            &SEALED_ENTRY,
            key.expose_secret(),
            &plaintext,
        ))
    }

    /// Opens the data a node returned for the name `expected_name`: a
    /// [`SPLIT_ENTRY`] (whole, or its summary alone, as listings return
    /// it: then an inline file comes back as [`Content::InlineUnread`]) or
    /// an entry sealed whole by versions 1 and 2. Checks that it is the
    /// entry of a path with that name.
    ///
    /// # Errors
    /// [`IndexEntryError`] if the bytes are too long, fail authentication
    /// (altered, or another key), do not decode, hold an invalid path or
    /// capability, carry a body that is not theirs, or belong to another
    /// name.
    pub fn open(
        sealed: &[u8],
        key: &IndexKey,
        expected_name: &[u8; 32],
        name_key: &IndexNameKey,
    ) -> Result<Entry, IndexEntryError> {
        if sealed.len() > MAX_SEALED_ENTRY_LEN {
            return Err(IndexEntryError::TooLarge {
                len: sealed.len(),
                max: MAX_SEALED_ENTRY_LEN,
            });
        }
        let entry = if sealed.starts_with(&SPLIT_ENTRY.magic) {
            Self::open_split(sealed, key)?
        } else {
            let plaintext =
                Zeroizing::new(envelope::open(&SEALED_ENTRY, key.expose_secret(), sealed)?);
            let entry = Self::decode(&plaintext)?;
            if plaintext[HEADER_LEN - 1] >= SUMMARY_ENTRY.version {
                return Err(IndexEntryError::Malformed {
                    reason: "a version 3 entry outside a split entry",
                });
            }
            entry
        };
        let actual = entry.name(name_key);
        if actual != *expected_name {
            return Err(IndexEntryError::NameMismatch {
                expected: *expected_name,
                actual,
            });
        }
        Ok(entry)
    }

    /// Opens a [`SPLIT_ENTRY`]: its summary, then its body if present.
    fn open_split(sealed: &[u8], key: &IndexKey) -> Result<Entry, IndexEntryError> {
        let (summary, body) = split(sealed)?;
        let plaintext =
            Zeroizing::new(envelope::open(&SEALED_ENTRY, key.expose_secret(), summary)?);
        if plaintext.get(HEADER_LEN - 1) != Some(&SUMMARY_ENTRY.version) {
            return Err(IndexEntryError::Malformed {
                reason: "a split entry's summary is not of version 3",
            });
        }
        let mut entry = Self::decode(&plaintext)?;
        let inline = match &mut entry.kind {
            EntryKind::File(file) if file.content == Content::InlineUnread => Some(file),
            _ => None,
        };
        match (inline, body.is_empty()) {
            (_, true) => {}
            (None, false) => {
                return Err(IndexEntryError::Malformed {
                    reason: "a body after the summary of an entry without inline bytes",
                });
            }
            (Some(file), false) => {
                let plaintext =
                    Zeroizing::new(envelope::open(&SEALED_BODY, key.expose_secret(), body)?);
                let Some((bound, bytes)) = plaintext.split_first_chunk::<32>() else {
                    return Err(IndexEntryError::Malformed {
                        reason: "a body too short to name its summary",
                    });
                };
                if bound != blake3::hash(summary).as_bytes() {
                    return Err(IndexEntryError::Malformed {
                        reason: "a body sealed for another summary",
                    });
                }
                if Id::of(bytes) != file.content_hash || bytes.len() as u64 != file.size {
                    return Err(IndexEntryError::Inline {
                        reason: "its bytes do not match the content hash",
                    });
                }
                let bytes =
                    InlineBytes::new(bytes.to_vec()).map_err(|_| IndexEntryError::Inline {
                        reason: "longer than the inline limit",
                    })?;
                file.content = Content::Inline(bytes);
            }
        }
        Ok(entry)
    }

    /// Decodes and validates a plaintext entry of any version this build
    /// reads.
    fn decode(plaintext: &[u8]) -> Result<Entry, IndexEntryError> {
        // Version 3 and later are checked against SUMMARY_ENTRY, so a newer
        // entry is refused naming version 3.
        let format = match plaintext.get(HEADER_LEN - 1) {
            Some(version) if *version >= SUMMARY_ENTRY.version => SUMMARY_ENTRY,
            Some(version) if *version == INLINE_ENTRY.version => INLINE_ENTRY,
            _ => ENTRY,
        };
        let body = format.strip(plaintext)?;
        let (wire, rest): (WireEntry, _) =
            postcard::take_from_bytes(body).map_err(IndexEntryError::Decode)?;
        if !rest.is_empty() {
            return Err(IndexEntryError::TrailingBytes { count: rest.len() });
        }
        let path: RemotePath = wire.path.parse()?;
        if path.as_str() != wire.path {
            return Err(IndexEntryError::NotCanonical { path: wire.path });
        }
        let kind = match wire.kind {
            WireKind::Deleted => EntryKind::Deleted,
            WireKind::File(file) => {
                file.capability
                    .manifest
                    .validate()
                    .map_err(|reason| IndexEntryError::Stripe { reason })?;
                EntryKind::File(FileEntry {
                    content: Content::Stored(file.capability),
                    size: file.size,
                    modified_unix_ms: file.modified_unix_ms,
                    chunks: file.chunks,
                    redundancy: file.redundancy,
                    content_hash: file.content_hash,
                })
            }
            WireKind::Inline(_) if format != INLINE_ENTRY => {
                return Err(IndexEntryError::Inline {
                    reason: "an inline file in an entry of another version than 2",
                });
            }
            WireKind::InlineSummary(_) | WireKind::Folder | WireKind::RemovedFolder
                if format != SUMMARY_ENTRY =>
            {
                return Err(IndexEntryError::Malformed {
                    reason: "a kind of version 3 in an older entry",
                });
            }
            WireKind::Folder => EntryKind::Folder,
            WireKind::RemovedFolder => EntryKind::RemovedFolder,
            WireKind::InlineSummary(inline) => {
                if inline.size > MAX_INLINE_LEN as u64 {
                    return Err(IndexEntryError::Inline {
                        reason: "longer than the inline limit",
                    });
                }
                EntryKind::File(FileEntry {
                    content: Content::InlineUnread,
                    size: inline.size,
                    modified_unix_ms: inline.modified_unix_ms,
                    chunks: 0,
                    redundancy: inline.redundancy,
                    content_hash: inline.content_hash,
                })
            }
            WireKind::Inline(inline) => {
                if Id::of(&inline.data) != inline.content_hash {
                    return Err(IndexEntryError::Inline {
                        reason: "its bytes do not match the content hash",
                    });
                }
                let size = inline.data.len() as u64;
                let data = InlineBytes::new(inline.data).map_err(|_| IndexEntryError::Inline {
                    reason: "longer than the inline limit",
                })?;
                EntryKind::File(FileEntry {
                    content: Content::Inline(data),
                    size,
                    modified_unix_ms: inline.modified_unix_ms,
                    chunks: 0,
                    redundancy: inline.redundancy,
                    content_hash: inline.content_hash,
                })
            }
        };
        Ok(Entry {
            path,
            version: Version(wire.version),
            writer: wire.writer,
            kind,
        })
    }

    /// Which of two entries is newer: by version, then by writer, and, for
    /// two different entries with the same version and writer (which a
    /// correct client never writes), by their encoded bytes, so that the
    /// order is total and merging never depends on the order of replies.
    /// `Equal` only for equal entries.
    pub fn cmp_recency(&self, other: &Entry) -> Ordering {
        (self.version, self.writer)
            .cmp(&(other.version, other.writer))
            .then_with(|| {
                if self == other {
                    Ordering::Equal
                } else {
                    // Inline bytes are in the summary by their hash.
                    self.encode_summary()
                        .as_slice()
                        .cmp(other.encode_summary().as_slice())
                }
            })
    }
}

/// The newer of two entries of one path, by [`Entry::cmp_recency`].
///
/// Tombstones take part like any other entry, so a newer removal beats an
/// older file and a newer file beats an older removal. `newest` is the
/// maximum of a total order, hence, for all entries a, b, c:
///
/// - commutative: `newest(a, b) == newest(b, a)`;
/// - associative: `newest(newest(a, b), c) == newest(a, newest(b, c))`;
/// - idempotent: `newest(a, a) == a`;
///
/// so replies from nodes can be merged in any order and any grouping, and
/// merging a copy twice changes nothing (garage's CRDT laws).
pub fn newest(a: Entry, b: Entry) -> Entry {
    if b.cmp_recency(&a) == Ordering::Greater {
        b
    } else {
        a
    }
}

/// The newest of any number of entries of one path; `None` for none.
pub fn newest_of(entries: impl IntoIterator<Item = Entry>) -> Option<Entry> {
    entries.into_iter().reduce(newest)
}

/// Bytes before a split entry's summary: its header and the summary's
/// length (u32, little-endian).
const SPLIT_HEADER_LEN: usize = HEADER_LEN + 4;

/// A sealed entry, as a node stores it: the data, of which the first
/// `summary_len` bytes are what listings return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedEntry {
    /// The whole entry.
    pub data: Vec<u8>,
    /// Length of its listing summary (header included).
    pub summary_len: u32,
}

/// The length of the summary at the start of stored entry `data`, as a node
/// is told it: a split entry's header and sealed summary; all of an entry
/// sealed whole (versions 1 and 2).
///
/// # Errors
/// [`IndexEntryError::Malformed`] for a split entry whose header does not
/// fit its bytes.
pub fn summary_len(data: &[u8]) -> Result<u32, IndexEntryError> {
    if data.starts_with(&SPLIT_ENTRY.magic) {
        let (summary, _) = split(data)?;
        Ok((SPLIT_HEADER_LEN + summary.len()) as u32)
    } else {
        Ok(data.len() as u32)
    }
}

/// A split entry's sealed summary and body (empty if none).
fn split(data: &[u8]) -> Result<(&[u8], &[u8]), IndexEntryError> {
    let rest = SPLIT_ENTRY.strip(data)?;
    let Some((len, rest)) = rest.split_first_chunk::<4>() else {
        return Err(IndexEntryError::Malformed {
            reason: "a split entry shorter than its header",
        });
    };
    let len = u32::from_le_bytes(*len) as usize;
    if len > rest.len() {
        return Err(IndexEntryError::Malformed {
            reason: "a split entry shorter than its summary",
        });
    }
    Ok(rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use cairn_core::StripeRef;
    use cairn_core::keys::ManifestKey;
    use proptest::prelude::*;

    use super::*;
    use crate::path::MAX_PATH_LEN;
    use crate::path::strategies::remote_path;

    fn path(s: &str) -> RemotePath {
        s.parse().unwrap()
    }

    fn capability(n: usize, seed: u8) -> Capability {
        Capability {
            manifest: StripeRef {
                blob_len: 1000,
                redundancy: Redundancy::new(1.max(n.saturating_sub(2)), n).unwrap(),
                shards: (0..n).map(|i| Id::of(&[seed, i as u8])).collect(),
            },
            key: ManifestKey::from_bytes([seed; 32]),
        }
    }

    fn file(p: &str, version: u64) -> Entry {
        Entry {
            path: path(p),
            version: Version(version),
            writer: [7; 16],
            kind: EntryKind::File(FileEntry {
                content: Content::Stored(capability(4, 1)),
                size: 3_000_000,
                modified_unix_ms: 1_790_000_000_000,
                chunks: 3,
                redundancy: Redundancy::new(2, 4).unwrap(),
                content_hash: Id::of(b"content"),
            }),
        }
    }

    fn inline_file(data: Vec<u8>, modified: u64, n: usize) -> FileEntry {
        FileEntry {
            size: data.len() as u64,
            content_hash: Id::of(&data),
            content: Content::Inline(InlineBytes::new(data).unwrap()),
            modified_unix_ms: modified,
            chunks: 0,
            redundancy: Redundancy::new(1, n).unwrap(),
        }
    }

    fn keys() -> (IndexKey, IndexNameKey) {
        (
            IndexKey::from_bytes([1; 32]),
            IndexNameKey::from_bytes([2; 32]),
        )
    }

    #[test]
    fn names_are_keyed_and_pinned() {
        let (_, name_key) = keys();
        let name = entry_name(&name_key, &path("photos/a.jpg"));
        assert_eq!(name, entry_name(&name_key, &path("/photos/a.jpg")));
        assert_ne!(name, entry_name(&name_key, &path("photos/b.jpg")));
        let other = IndexNameKey::from_bytes([3; 32]);
        assert_ne!(name, entry_name(&other, &path("photos/a.jpg")));
        // The name format is part of every user's index: a change must show
        // up here.
        assert_eq!(
            Id::from_bytes(name).to_string(),
            "524601c6a20ba9873ea24d0f46a048ebc7c57051cd5020810262b909417acb02"
        );
        assert_eq!(
            name,
            *blake3::keyed_hash(&[2; 32], b"cairn 2026-11 index entry name\0photos/a.jpg")
                .as_bytes()
        );
    }

    #[test]
    fn seal_open_round_trip_and_pinned_bytes() {
        let (key, name_key) = keys();
        let mut tombstone = file("gone.txt", 9);
        tombstone.kind = EntryKind::Deleted;
        for entry in [file("photos/a.jpg", 1 << 20), tombstone] {
            let sealed = entry.seal(&key).unwrap().data;
            assert_eq!(&sealed[..5], b"cnse\x01");
            assert_eq!(sealed, entry.seal(&key).unwrap().data, "deterministic");
            let opened = Entry::open(&sealed, &key, &entry.name(&name_key), &name_key).unwrap();
            assert_eq!(opened, entry);
        }
        // The encoding is a format: pin it.
        let encoded = file("photos/a.jpg", 1 << 20).encode().unwrap();
        assert_eq!(&encoded[..5], b"cnie\x01");
        assert_eq!(
            Id::of(&encoded).to_string(),
            "b376cfb4623b880ec3ee14e98972676ee4da88d0af6dc5e20543091b37ec4b9e"
        );
    }

    #[test]
    fn wrong_key_tampering_and_swapped_names_are_caught() {
        let (key, name_key) = keys();
        let entry = file("a", 5);
        let name = entry.name(&name_key);
        let sealed = entry.seal(&key).unwrap().data;

        let other = IndexKey::from_bytes([9; 32]);
        assert!(matches!(
            Entry::open(&sealed, &other, &name, &name_key),
            Err(IndexEntryError::Envelope(
                EnvelopeError::Authentication { .. }
            ))
        ));
        for bit in 0..sealed.len() * 8 {
            let mut bad = sealed.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(
                Entry::open(&bad, &key, &name, &name_key).is_err(),
                "bit {bit}"
            );
        }
        for len in 0..sealed.len() {
            assert!(Entry::open(&sealed[..len], &key, &name, &name_key).is_err());
        }

        // A node answering for "a" with the entry of "b".
        let b = file("b", 6);
        let swapped = b.seal(&key).unwrap().data;
        assert_eq!(
            Entry::open(&swapped, &key, &name, &name_key),
            Err(IndexEntryError::NameMismatch {
                expected: name,
                actual: b.name(&name_key)
            })
        );
        // A sealed manifest is not an entry, even under the same key.
        let manifest = envelope::seal(
            &cairn_core::manifest::SEALED_MANIFEST,
            key.expose_secret(),
            b"x",
        );
        assert!(matches!(
            Entry::open(&manifest, &key, &name, &name_key),
            Err(IndexEntryError::Envelope(EnvelopeError::Format(_)))
        ));
        let huge = vec![0; MAX_SEALED_ENTRY_LEN + 1];
        assert_eq!(
            Entry::open(&huge, &key, &name, &name_key),
            Err(IndexEntryError::TooLarge {
                len: MAX_SEALED_ENTRY_LEN + 1,
                max: MAX_SEALED_ENTRY_LEN
            })
        );
    }

    /// Seals `plaintext` as a sealed entry, bypassing `Entry::encode`.
    fn seal_raw(plaintext: &[u8]) -> Vec<u8> {
        envelope::seal(&SEALED_ENTRY, keys().0.expose_secret(), plaintext)
    }

    fn open_raw(plaintext: &[u8]) -> Result<Entry, IndexEntryError> {
        let (key, name_key) = keys();
        let name = entry_name(&name_key, &path("a"));
        Entry::open(&seal_raw(plaintext), &key, &name, &name_key)
    }

    #[test]
    fn bad_plaintexts_are_refused_with_a_reason() {
        let good = file("a", 1).encode().unwrap();
        assert!(open_raw(&good).is_ok());

        let mut newer = good.to_vec();
        newer[4] = 4;
        assert!(matches!(
            open_raw(&newer),
            Err(IndexEntryError::Format(FormatError::Version {
                found: 4,
                ..
            }))
        ));
        let mut trailing = good.to_vec();
        trailing.push(0);
        assert_eq!(
            open_raw(&trailing),
            Err(IndexEntryError::TrailingBytes { count: 1 })
        );
        assert!(matches!(
            open_raw(&good[..good.len() - 1]),
            Err(IndexEntryError::Decode(_))
        ));

        let mut wire = file("a", 1).to_wire(false).unwrap();
        wire.path = "/a".into();
        let encode = |wire: &WireEntry| {
            let mut out = ENTRY.header().to_vec();
            out.extend(postcard::to_stdvec(wire).unwrap());
            out
        };
        assert_eq!(
            open_raw(&encode(&wire)),
            Err(IndexEntryError::NotCanonical { path: "/a".into() })
        );
        wire.path = "a/../b".into();
        assert!(matches!(
            open_raw(&encode(&wire)),
            Err(IndexEntryError::Path(PathError::DotComponent { .. }))
        ));
        let mut wire = file("a", 1).to_wire(false).unwrap();
        if let WireKind::File(f) = &mut wire.kind {
            f.capability.manifest.shards.pop();
        }
        assert!(matches!(
            open_raw(&encode(&wire)),
            Err(IndexEntryError::Stripe { .. })
        ));
    }

    #[test]
    fn an_inline_entry_is_version_2_and_checked_on_read() {
        let (key, name_key) = keys();
        let mut entry = file("small.txt", 5);
        entry.kind = EntryKind::File(inline_file(b"hello".to_vec(), 9, 4));
        let plaintext = entry.encode().unwrap();
        assert_eq!(&plaintext[..HEADER_LEN], &INLINE_ENTRY.header());
        // Stored files and tombstones keep version 1, byte for byte.
        assert_eq!(
            &file("a", 1).encode().unwrap()[..HEADER_LEN],
            &ENTRY.header()
        );
        let sealed = entry.seal_legacy(&key).unwrap();
        let opened = Entry::open(&sealed, &key, &entry.name(&name_key), &name_key).unwrap();
        assert_eq!(opened, entry);
        assert!(!format!("{opened:?}").contains("hello"));

        // An inline kind under a version 1 header is refused.
        let mut v1 = plaintext.to_vec();
        v1[HEADER_LEN - 1] = 1;
        assert!(matches!(
            Entry::decode(&v1),
            Err(IndexEntryError::Inline { .. })
        ));
        // A newer version is refused naming the newest this build reads.
        let mut v4 = plaintext.to_vec();
        v4[HEADER_LEN - 1] = 4;
        assert!(matches!(
            Entry::decode(&v4),
            Err(IndexEntryError::Format(FormatError::Version {
                found: 4,
                supported: 3,
                ..
            }))
        ));
        // Bytes that do not match the content hash are refused.
        let mut wire = entry.to_wire(false).unwrap();
        if let WireKind::Inline(inline) = &mut wire.kind {
            inline.data[0] ^= 1;
        }
        let mut forged = INLINE_ENTRY.header().to_vec();
        forged.extend(postcard::to_allocvec(&wire).unwrap());
        assert!(matches!(
            Entry::decode(&forged),
            Err(IndexEntryError::Inline { .. })
        ));
        // And so is an inline file over the limit.
        let big = vec![7u8; MAX_INLINE_LEN + 1];
        assert!(InlineBytes::new(big.clone()).is_err());
        if let WireKind::Inline(inline) = &mut wire.kind {
            inline.content_hash = Id::of(&big);
            inline.data = big;
        }
        let mut forged = INLINE_ENTRY.header().to_vec();
        forged.extend(postcard::to_allocvec(&wire).unwrap());
        assert!(matches!(
            Entry::decode(&forged),
            Err(IndexEntryError::Inline { .. })
        ));
        // The largest inline file with the longest path fits in a node's entry.
        let mut largest = file(&"p".repeat(MAX_PATH_LEN), u64::MAX);
        largest.kind = EntryKind::File(inline_file(vec![1; MAX_INLINE_LEN], u64::MAX, 32));
        assert!(largest.seal(&key).unwrap().data.len() <= MAX_SEALED_ENTRY_LEN);
        assert!(largest.seal_legacy(&key).unwrap().len() <= MAX_SEALED_ENTRY_LEN);
    }

    #[test]
    fn the_largest_valid_entry_fits_and_a_larger_one_is_refused() {
        let (key, name_key) = keys();
        let mut entry = file(&"p".repeat(MAX_PATH_LEN), u64::MAX);
        entry.kind = EntryKind::File(FileEntry {
            content: Content::Stored(capability(32, 3)),
            size: u64::MAX,
            modified_unix_ms: u64::MAX,
            chunks: u64::MAX,
            redundancy: Redundancy::new(1, 32).unwrap(),
            content_hash: Id::of(b"x"),
        });
        let sealed = entry.seal(&key).unwrap().data;
        assert!(sealed.len() < 6 * 1024, "{}", sealed.len());
        assert_eq!(
            Entry::open(&sealed, &key, &entry.name(&name_key), &name_key).unwrap(),
            entry
        );

        // Only a capability with an impossible shard list gets too large.
        if let EntryKind::File(FileEntry {
            content: Content::Stored(capability),
            ..
        }) = &mut entry.kind
        {
            capability.manifest.shards = vec![Id::of(b"s"); 2048];
        }
        assert!(matches!(
            entry.seal(&key),
            Err(IndexEntryError::TooLarge {
                max: MAX_SUMMARY_LEN,
                ..
            })
        ));
    }

    #[test]
    fn debug_hides_the_manifest_key() {
        let printed = format!("{:?}", file("a", 1));
        assert!(printed.contains("[redacted]"));
        assert!(!printed.contains("1, 1, 1, 1"));
    }

    #[test]
    fn newest_prefers_version_then_writer_and_tombstones_count() {
        let old = file("a", 1);
        let mut removed = file("a", 2);
        removed.kind = EntryKind::Deleted;
        assert_eq!(newest(old.clone(), removed.clone()), removed);
        let mut rewritten = file("a", 3);
        rewritten.writer = [0; 16];
        assert_eq!(newest(removed.clone(), rewritten.clone()), rewritten);

        let mut other_writer = file("a", 3);
        other_writer.writer = [1; 16];
        assert_eq!(
            newest(rewritten.clone(), other_writer.clone()),
            other_writer
        );
        assert_eq!(
            newest_of([old.clone(), rewritten, removed])
                .unwrap()
                .version,
            Version(3)
        );
        assert_eq!(newest_of(Vec::new()), None);
        assert_eq!(old.cmp_recency(&old.clone()), Ordering::Equal);
    }

    #[test]
    fn a_split_entry_lists_its_summary_and_keeps_inline_bytes_in_its_body() {
        let (key, name_key) = keys();
        let mut entry = file("docs/small.txt", 5);
        entry.kind = EntryKind::File(inline_file(b"hello".to_vec(), 9, 4));
        let name = entry.name(&name_key);
        let sealed = entry.seal(&key).unwrap();
        assert_eq!(&sealed.data[..5], b"cnse\x01");
        assert_eq!(summary_len(&sealed.data).unwrap(), sealed.summary_len);
        let summary = &sealed.data[..sealed.summary_len as usize];
        assert!(summary.len() < 200, "{}", summary.len());
        // Whole: the bytes are back.
        assert_eq!(
            Entry::open(&sealed.data, &key, &name, &name_key).unwrap(),
            entry
        );
        // The summary alone, as a listing returns it: size and hash, no bytes.
        let listed = Entry::open(summary, &key, &name, &name_key).unwrap();
        let EntryKind::File(listed_file) = &listed.kind else {
            panic!("{listed:?}")
        };
        assert_eq!(listed_file.content, Content::InlineUnread);
        assert_eq!(listed_file.size, 5);
        assert!(listed.seal(&key).is_err(), "unread bytes cannot be sealed");
        // A body moved under another entry's summary is refused, even one
        // of the same bytes.
        let mut other = entry.clone();
        other.path = path("docs/other.txt");
        let other_sealed = other.seal(&key).unwrap();
        let mut moved = summary.to_vec();
        moved.extend_from_slice(&other_sealed.data[other_sealed.summary_len as usize..]);
        assert!(matches!(
            Entry::open(&moved, &key, &name, &name_key),
            Err(IndexEntryError::Malformed { .. })
        ));
        assert_ne!(
            &sealed.data[sealed.summary_len as usize..],
            &other_sealed.data[other_sealed.summary_len as usize..],
            "equal small files seal to unrelated bodies"
        );
        // A stored file has no body: its summary is all of it.
        let stored = file("docs/big.bin", 6).seal(&key).unwrap();
        assert_eq!(stored.summary_len as usize, stored.data.len());
        // A truncated header or summary is refused.
        for len in [3, 6, 20] {
            assert!(Entry::open(&sealed.data[..len], &key, &name, &name_key).is_err());
        }
    }

    #[test]
    fn entries_written_before_folders_still_open() {
        let (key, name_key) = keys();
        let mut inline = file("old/small.txt", 5);
        inline.kind = EntryKind::File(inline_file(b"old bytes".to_vec(), 9, 4));
        for entry in [file("old/a.bin", 3), inline] {
            let legacy = entry.seal_legacy(&key).unwrap();
            assert_eq!(&legacy[..5], b"cnsi\x01");
            assert_eq!(summary_len(&legacy).unwrap() as usize, legacy.len());
            let opened = Entry::open(&legacy, &key, &entry.name(&name_key), &name_key).unwrap();
            assert_eq!(opened, entry);
        }
    }

    #[test]
    fn folders_have_names_and_tags_of_their_own() {
        let (key, name_key) = keys();
        let folder = Entry {
            path: path("photos/2026"),
            version: Version(4),
            writer: [1; 16],
            kind: EntryKind::Folder,
        };
        let name = folder.name(&name_key);
        assert_eq!(name, folder_entry_name(&name_key, &path("photos/2026")));
        assert_ne!(name, entry_name(&name_key, &path("photos/2026")));
        let sealed = folder.seal(&key).unwrap().data;
        assert_eq!(
            Entry::open(&sealed, &key, &name, &name_key).unwrap(),
            folder
        );
        // Listed in its parent; a file and its folder's tag differ.
        let parent = path("photos");
        assert_eq!(
            folder.folder_tag(&name_key),
            folder_tag(&name_key, Some(&parent))
        );
        assert_ne!(
            folder_tag(&name_key, Some(&parent)),
            folder_tag(&name_key, None)
        );
        assert_eq!(
            file("top.txt", 1).folder_tag(&name_key),
            folder_tag(&name_key, None)
        );
        // Pinned: the tag is part of every user's index.
        assert_eq!(
            folder_tag(&name_key, Some(&parent)),
            *blake3::keyed_hash(&[2; 32], b"cairn 2026-12 folder tag\0photos").as_bytes()
        );
        // Folders cannot be written in the old format.
        assert!(folder.seal_legacy(&key).is_err());
    }

    // Strategies.

    fn entry() -> impl Strategy<Value = Entry> {
        let file = (
            1usize..=32,
            any::<u8>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<[u8; 32]>(),
        )
            .prop_map(|(n, seed, size, modified, chunks, hash)| {
                EntryKind::File(FileEntry {
                    content: Content::Stored(capability(n, seed)),
                    size,
                    modified_unix_ms: modified,
                    chunks,
                    redundancy: Redundancy::new(1, n).unwrap(),
                    content_hash: Id::from_bytes(hash),
                })
            });
        let inline = (
            proptest::collection::vec(any::<u8>(), 0..=64),
            any::<u64>(),
            1usize..=32,
        )
            .prop_map(|(data, modified, n)| EntryKind::File(inline_file(data, modified, n)));
        (
            remote_path(),
            any::<u64>(),
            any::<[u8; 16]>(),
            prop_oneof![
                Just(EntryKind::Deleted),
                Just(EntryKind::Folder),
                Just(EntryKind::RemovedFolder),
                file,
                inline
            ],
        )
            .prop_map(|(path, version, writer, kind)| Entry {
                path,
                version: Version(version),
                writer,
                kind,
            })
    }

    /// Entries of one path that often share versions and writers, to
    /// exercise every tie-break.
    fn rival() -> impl Strategy<Value = Entry> {
        (0u64..3, 0u8..2, any::<bool>(), 0u8..3).prop_map(|(version, writer, deleted, seed)| {
            let mut e = file("same", version);
            e.writer = [writer; 16];
            e.kind = if deleted {
                EntryKind::Deleted
            } else {
                EntryKind::File(FileEntry {
                    content: Content::Stored(capability(4, seed)),
                    size: u64::from(seed),
                    modified_unix_ms: 0,
                    chunks: 1,
                    redundancy: Redundancy::new(2, 4).unwrap(),
                    content_hash: Id::of(&[seed]),
                })
            };
            e
        })
    }

    proptest! {
        #[test]
        fn any_entry_round_trips(entry in entry()) {
            let (key, name_key) = keys();
            let sealed = entry.seal(&key).unwrap().data;
            prop_assert!(sealed.len() <= MAX_SEALED_ENTRY_LEN);
            let opened = Entry::open(&sealed, &key, &entry.name(&name_key), &name_key).unwrap();
            prop_assert_eq!(opened, entry);
        }

        #[test]
        fn newest_is_commutative(a in rival(), b in rival()) {
            prop_assert_eq!(newest(a.clone(), b.clone()), newest(b, a));
        }

        #[test]
        fn newest_is_associative(a in rival(), b in rival(), c in rival()) {
            prop_assert_eq!(
                newest(newest(a.clone(), b.clone()), c.clone()),
                newest(a, newest(b, c))
            );
        }

        #[test]
        fn newest_is_idempotent(a in rival(), b in rival()) {
            prop_assert_eq!(newest(a.clone(), a.clone()), a.clone());
            let merged = newest(a.clone(), b.clone());
            prop_assert_eq!(newest(merged.clone(), b), merged);
        }

        #[test]
        fn newest_of_ignores_order(mut entries in prop::collection::vec(rival(), 1..8)) {
            let forward = newest_of(entries.clone());
            entries.reverse();
            prop_assert_eq!(newest_of(entries), forward);
        }
    }
}
