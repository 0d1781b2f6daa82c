//! The request/response protocol between clients and nodes.
//!
//! # Goals
//!
//! - **Every byte checked.** Shards are named by the BLAKE3 of their bytes;
//!   a node checks a shard against its id before storing it, and a client
//!   checks it again when it reads it back. Index entries are opaque,
//!   sealed by the client.
//! - **Bounded.** Every length is checked against a limit before anything is
//!   allocated for it ([`Limits`]).
//! - **One vocabulary for three transports.** `tcp://` and `quic://` carry
//!   these messages in [`crate::frame`]s; the HTTPS API maps each request to
//!   a route and each [`ErrorCode`] to an HTTP status.
//!
//! # Non-goals
//!
//! - Confidentiality of data from the node: the node only ever sees sealed
//!   shards and sealed index entries, under opaque names.
//!
//! # Session
//!
//! A connection starts with the [`Hello`] exchange, whose format never
//! changes, so that a peer of any version learns which versions the other
//! speaks. Then the client sends requests, each with a stream id, and the
//! node answers each with the same id, in any order. Reading shards needs
//! no login when the node allows public reads (the default); everything
//! else needs a [`Request::Login`] first, which binds the connection to
//! one user.
//!
//! Bodies (shard bytes, index entry data) travel beside the postcard-encoded
//! message, not inside it, so a shard is read from the socket into one
//! buffer and written from there.
//!
//! # Versions
//!
//! - **1**: the requests and answers up to [`Request::DeleteIndex`] and
//!   [`Response::Error`].
//! - **2** ([`PING_VERSION`]): adds [`Request::Ping`] and [`Response::Pong`],
//!   appended after the version 1 variants, so every version 1 message
//!   encodes to the same bytes in version 2. A client sends a ping, and a
//!   node sends an unsolicited pong, only on a connection whose hello chose
//!   version 2 or later: a version 1 peer would refuse the unknown variant.
//!
//! # Liveness (`tcp://`, version 2)
//!
//! Over TLS on TCP a single corrupted bit in a record's length field can
//! leave the receiving side waiting for bytes that never come, while the
//! sender, having sent everything, waits for an answer: neither side sees
//! an error. So, on `tcp://` connections of version 2:
//!
//! - when the client waits for answers, is not in the middle of writing a
//!   request, and has received nothing for its ping interval, it sends a
//!   [`Request::Ping`] on stream 0; the node answers it
//!   with a [`Response::Pong`] on the same stream as soon as its reader gets
//!   to it, never behind slow requests. A pong proves that the node read
//!   everything the client sent before the ping and that its answers get
//!   through;
//! - the node sends an unsolicited [`Response::Pong`] on stream 0 every
//!   [`KEEPALIVE_INTERVAL`] in which it read bytes of the connection (a
//!   long upload arriving over a slow link, before its answer) or held off
//!   reading on purpose (waiting for room under its in-flight or memory
//!   limits, or a throttled login), so that a busy node is not taken for a
//!   broken link while a ping waits behind what it is not reading yet;
//! - if nothing at all arrives within another ping interval after a ping,
//!   the client declares the connection broken and retries its requests on
//!   a fresh one.
//!
//! Clients never use stream 0 for requests, and ignore frames on it.
//! `quic://` needs none of this (each packet is authenticated on its own,
//! so a corrupted one is a lost one and QUIC resends it); `https://` has
//! no in-band probe in HTTP/1.1 (see [`crate::client`]).

use std::fmt;
use std::time::Duration;

use cairn_core::Id;
use serde::{Deserialize, Serialize};

use crate::identity::NodeId;

/// The protocol versions this build speaks, newest first.
pub const VERSIONS: &[u8] = &[2, 1];

/// The first version with [`Request::Ping`] and [`Response::Pong`] (see the
/// [module docs](self#liveness-tcp-version-2)).
pub const PING_VERSION: u8 = 2;

/// How often a node sends an unsolicited [`Response::Pong`] on a `tcp://`
/// connection of version 2 while it reads a request or holds off reading.
/// Clients' ping intervals must be well above it (the default is 1 s).
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_millis(250);

/// Name of an index entry: 32 opaque bytes (the client's HMAC of a path).
pub type IndexName = [u8; 32];

/// STUB (replaced by the server-side branch).
pub type FolderTag = [u8; 32];

/// STUB.
pub const LEGACY_FOLDER: FolderTag = [0; 32];

/// A user's auth key as sent to log in. Never printed.
#[derive(Clone, Serialize, Deserialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
pub struct AuthKeyBytes(pub [u8; 32]);

impl fmt::Debug for AuthKeyBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthKeyBytes([redacted])")
    }
}

/// What a client asks of a node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    /// Binds the connection to `user`. Answered by [`Response::LoggedIn`].
    Login {
        /// User name.
        user: String,
        /// The user's auth key (derived from their passphrase).
        auth_key: AuthKeyBytes,
    },
    /// The node's id, version and capacity. Answered by [`Response::Info`].
    Info,
    /// Stores the body as shard `id` for the logged-in user. Answered by
    /// [`Response::ShardStored`].
    PutShard {
        /// BLAKE3 of the body.
        id: Id,
    },
    /// Reads shard `id`. Answered by [`Response::Shard`] with the bytes as
    /// body.
    GetShard {
        /// The shard.
        id: Id,
    },
    /// Which of `ids` the node stores. Answered by [`Response::Has`].
    HasShards {
        /// At most [`Limits::max_batch`] ids.
        ids: Vec<Id>,
    },
    /// Drops the logged-in user's references to `ids`; a shard nobody
    /// references any more is deleted. Answered by [`Response::Dropped`].
    DropShards {
        /// At most [`Limits::max_batch`] ids.
        ids: Vec<Id>,
    },
    /// Stores the body as the logged-in user's index entry `name` at
    /// `version`; refused if a higher version is stored. Answered by
    /// [`Response::IndexStored`].
    PutIndex {
        /// Entry name.
        name: IndexName,
        /// Entry version.
        version: u64,
    },
    /// Reads an index entry of the logged-in user. Answered by
    /// [`Response::IndexEntry`] with the data as body.
    GetIndex {
        /// Entry name.
        name: IndexName,
    },
    /// Lists the logged-in user's index entries in name order, after
    /// `after`. Answered by [`Response::IndexList`].
    ListIndex {
        /// List names strictly after this one.
        after: Option<IndexName>,
        /// At most this many entries (the node may return fewer).
        limit: u32,
    },
    /// Deletes an index entry of the logged-in user. Answered by
    /// [`Response::IndexDeleted`].
    DeleteIndex {
        /// Entry name.
        name: IndexName,
    },
    /// Asks for a sign of life (version 2). Answered by [`Response::Pong`] on
    /// the same stream, ahead of any request still running.
    Ping,
}

impl Request {
    /// Whether the request carries a body.
    pub fn has_body(&self) -> bool {
        matches!(self, Self::PutShard { .. } | Self::PutIndex { .. })
    }

    /// A short name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Login { .. } => "login",
            Self::Info => "info",
            Self::PutShard { .. } => "put-shard",
            Self::GetShard { .. } => "get-shard",
            Self::HasShards { .. } => "has-shards",
            Self::DropShards { .. } => "drop-shards",
            Self::PutIndex { .. } => "put-index",
            Self::GetIndex { .. } => "get-index",
            Self::ListIndex { .. } => "list-index",
            Self::DeleteIndex { .. } => "delete-index",
            Self::Ping => "ping",
        }
    }
}

/// A node's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The connection now acts for `user`.
    LoggedIn {
        /// The user logged in.
        user: String,
    },
    /// About the node.
    Info(NodeInfo),
    /// The shard is stored and referenced by the user.
    ShardStored {
        /// The bytes were written by this request (they were not on the
        /// node before).
        written: bool,
    },
    /// The shard's bytes are the body.
    Shard,
    /// One flag per requested id, in order.
    Has {
        /// The node stores the shard.
        stored: Vec<bool>,
        /// The logged-in user references it (all false without a login).
        mine: Vec<bool>,
    },
    /// One outcome per requested id, in order.
    Dropped {
        /// What happened to each reference.
        outcomes: Vec<Dropped>,
    },
    /// The index entry is stored.
    IndexStored {
        /// The version it replaced, if any.
        replaced: Option<u64>,
    },
    /// The entry's data is the body.
    IndexEntry {
        /// Its version.
        version: u64,
    },
    /// A page of entries; their data follow one another in the body, in
    /// order, with the lengths given here.
    IndexList {
        /// Name, version and data length of each entry.
        entries: Vec<(IndexName, u64, u32)>,
        /// Whether entries after the last one may exist.
        more: bool,
    },
    /// The entry is gone.
    IndexDeleted {
        /// The version deleted, or `None` if there was no entry.
        version: Option<u64>,
    },
    /// The request failed.
    Error(ErrorBody),
    /// A sign of life (version 2): the answer to [`Request::Ping`], or, on
    /// stream 0, a node's own keep-alive while it is busy with the
    /// connection (see the [module docs](self#liveness-tcp-version-2)).
    Pong,
}

/// What happened to one dropped reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Dropped {
    /// The user held no reference.
    NotReferenced,
    /// Released; others still hold the shard.
    Released,
    /// Released, and the shard was deleted.
    Deleted,
}

/// About a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The node's id.
    pub node_id: NodeId,
    /// cairn version of the node software.
    pub software: String,
    /// Protocol version in use.
    pub protocol: u8,
    /// Size of the file system holding the store, in bytes.
    pub capacity_bytes: u64,
    /// Bytes free on it.
    pub free_bytes: u64,
    /// Bytes referenced by all users.
    pub used_bytes: u64,
    /// Whether shards can be read without logging in.
    pub public_read: bool,
    /// Largest shard the node accepts.
    pub max_shard_len: u64,
}

/// Why a request failed: a code to act on and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What kind of failure.
    pub code: ErrorCode,
    /// What happened, for a person.
    pub message: String,
}

impl ErrorBody {
    /// An error of kind `code`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code.as_str())
    }
}

impl std::error::Error for ErrorBody {}

/// Kinds of failure, shared by every transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The request is malformed or not allowed in this state.
    BadRequest,
    /// No login, or wrong credentials.
    Unauthorized,
    /// Logged in, but not allowed.
    Forbidden,
    /// No such shard or entry.
    NotFound,
    /// A newer or different index entry is stored.
    Conflict,
    /// Larger than the node accepts.
    TooLarge,
    /// The bytes do not hash to the id given.
    HashMismatch,
    /// The user's quota would be exceeded.
    QuotaExceeded,
    /// The node's disk is full.
    DiskFull,
    /// The shard is damaged on the node's disk (and now quarantined).
    Corrupt,
    /// The node is too busy or shutting down; try again or elsewhere.
    Unavailable,
    /// The node failed.
    Internal,
}

impl ErrorCode {
    /// The HTTP status of this error in the HTTPS API.
    pub fn http_status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::Conflict => 409,
            Self::TooLarge => 413,
            Self::HashMismatch => 422,
            Self::QuotaExceeded | Self::DiskFull => 507,
            Self::Corrupt | Self::Internal => 500,
            Self::Unavailable => 503,
        }
    }

    /// The code as written in JSON errors and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::TooLarge => "too_large",
            Self::HashMismatch => "hash_mismatch",
            Self::QuotaExceeded => "quota_exceeded",
            Self::DiskFull => "disk_full",
            Self::Corrupt => "corrupt",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }

    /// Every code, for tables and tests.
    pub const ALL: [Self; 12] = [
        Self::BadRequest,
        Self::Unauthorized,
        Self::Forbidden,
        Self::NotFound,
        Self::Conflict,
        Self::TooLarge,
        Self::HashMismatch,
        Self::QuotaExceeded,
        Self::DiskFull,
        Self::Corrupt,
        Self::Unavailable,
        Self::Internal,
    ];
}

/// Sizes a node accepts; checked before allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest shard body, in bytes.
    pub max_shard_len: usize,
    /// Largest encoded message (everything but the body), in bytes.
    pub max_message_len: usize,
    /// Most ids in one `HasShards` or `DropShards`.
    pub max_batch: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_shard_len: cairn_core::erasure::MAX_SHARD_LEN,
            max_message_len: 1024 * 1024,
            max_batch: 16 * 1024,
        }
    }
}

impl Limits {
    /// Largest frame these limits allow (message, body and frame fields).
    pub fn max_frame_len(&self) -> usize {
        self.max_message_len + self.max_shard_len + 16
    }
}

/// The first bytes each side sends. Its format is fixed for all versions:
///
/// ```text
/// client: "cnwp" │ count (1) │ versions (count)
/// node:   "cnwp" │ chosen (1, 0 = none) │ count (1) │ versions (count) │ message length (u16 LE) │ message (UTF-8)
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Versions the sender speaks.
    pub versions: Vec<u8>,
}

/// Magic of the hello.
pub const HELLO_MAGIC: [u8; 4] = *b"cnwp";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_keys_never_print() {
        let request = Request::Login {
            user: "alice".into(),
            auth_key: AuthKeyBytes([0xab; 32]),
        };
        let printed = format!("{request:?}");
        assert!(printed.contains("[redacted]"));
        assert!(!printed.contains("171"));
    }

    #[test]
    fn error_codes_have_distinct_names_and_sensible_statuses() {
        let mut names: Vec<_> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorCode::ALL.len());
        assert_eq!(ErrorCode::Unauthorized.http_status(), 401);
        assert_eq!(ErrorCode::QuotaExceeded.http_status(), 507);
        assert_eq!(ErrorCode::HashMismatch.http_status(), 422);
    }

    /// Version 2 appended its variants: every version 1 message keeps its
    /// bytes, so a version 1 peer reads what a version 2 build sends it.
    #[test]
    fn version_2_keeps_the_version_1_encodings() {
        let error = Response::Error(ErrorBody::new(ErrorCode::NotFound, "x"));
        assert_eq!(postcard::to_allocvec(&error).unwrap()[0], 10);
        let delete = Request::DeleteIndex { name: [0; 32] };
        assert_eq!(postcard::to_allocvec(&delete).unwrap()[0], 9);
        assert_eq!(postcard::to_allocvec(&Request::Ping).unwrap(), [10]);
        assert_eq!(postcard::to_allocvec(&Response::Pong).unwrap(), [11]);
        assert_eq!(VERSIONS[0], PING_VERSION);
        assert!(
            VERSIONS.contains(&1),
            "version 1 peers must still be served"
        );
    }

    #[test]
    fn messages_round_trip() {
        let request = Request::HasShards {
            ids: vec![Id::of(b"a"), Id::of(b"b")],
        };
        let bytes = postcard::to_allocvec(&request).unwrap();
        let back: Request = postcard::from_bytes(&bytes).unwrap();
        assert!(matches!(back, Request::HasShards { ids } if ids.len() == 2));
    }
}
