//! The JSON bodies of the REST API, with their OpenAPI schemas, and how
//! they map to and from the protocol's types.
//!
//! Names and ids are 64 hex digits, index entry data base64url without
//! padding; everything else keeps the protocol's values.

use cairn_core::Id;
use data_encoding::{BASE64URL_NOPAD, HEXLOWER_PERMISSIVE};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::protocol::{Dropped, ErrorBody, ErrorCode, IndexName, NodeInfo};

/// A failure: `{ "error": code, "message": text }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorJson {
    /// What kind of failure: one of `bad_request`, `unauthorized`,
    /// `forbidden`, `not_found`, `conflict`, `too_large`, `hash_mismatch`,
    /// `quota_exceeded`, `disk_full`, `corrupt`, `unavailable`, `internal`.
    #[schema(example = "not_found")]
    pub error: String,
    /// What happened, for a person.
    pub message: String,
}

impl From<&ErrorBody> for ErrorJson {
    fn from(body: &ErrorBody) -> Self {
        Self {
            error: body.code.as_str().to_owned(),
            message: body.message.clone(),
        }
    }
}

/// A batch of shard ids (`POST /v1/shards/have` and `/v1/shards/drop`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IdsJson {
    /// Shard ids, 64 hex digits each.
    #[schema(
        example = json!(["5f2c0000000000000000000000000000000000000000000000000000000000aa"]),
        pattern = r"^[0-9a-fA-F]{64}$"
    )]
    pub ids: Vec<String>,
}

/// Answer to `POST /v1/shards/have`: one flag per id asked, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HaveJson {
    /// The node stores the shard.
    pub stored: Vec<bool>,
    /// The caller's user references it (all false when anonymous).
    pub mine: Vec<bool>,
}

/// What happened to one dropped reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DroppedJson {
    /// The user held no reference.
    NotReferenced,
    /// Released; other users still hold the shard.
    Released,
    /// Released, and the shard was deleted.
    Deleted,
}

impl From<Dropped> for DroppedJson {
    fn from(d: Dropped) -> Self {
        match d {
            Dropped::NotReferenced => Self::NotReferenced,
            Dropped::Released => Self::Released,
            Dropped::Deleted => Self::Deleted,
        }
    }
}

impl From<DroppedJson> for Dropped {
    fn from(d: DroppedJson) -> Self {
        match d {
            DroppedJson::NotReferenced => Self::NotReferenced,
            DroppedJson::Released => Self::Released,
            DroppedJson::Deleted => Self::Deleted,
        }
    }
}

/// Answer to `POST /v1/shards/drop`: one outcome per id, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DropsJson {
    /// What happened to each reference.
    pub outcomes: Vec<DroppedJson>,
}

/// Answer to `PUT /v1/shards/{id}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ShardStoredJson {
    /// The bytes were written by this request (false: the node had them).
    pub written: bool,
}

/// Answer to `PUT /v1/index/{name}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IndexStoredJson {
    /// The version replaced, or null for a new entry.
    pub replaced: Option<u64>,
}

/// Answer to `DELETE /v1/index/{name}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IndexDeletedJson {
    /// The version deleted, or null if there was no entry.
    pub version: Option<u64>,
}

/// One entry of an index listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IndexEntryJson {
    /// The entry's name, 64 hex digits.
    pub name: String,
    /// Its version.
    pub version: u64,
    /// Its data, base64url without padding.
    pub data: String,
}

/// Answer to `GET /v1/index`: a page of the caller's entries in name
/// order; and to `GET /v1/folders/{folder}`: a page of the entries of one
/// folder, each entry's data being its summary only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IndexListJson {
    /// The entries.
    pub entries: Vec<IndexEntryJson>,
    /// Whether entries after the last one may exist: ask again with
    /// `after` = the last name.
    pub more: bool,
}

/// One entry of a page of the change feed: its latest change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChangeJson {
    /// The entry's name, 64 hex digits.
    pub name: String,
    /// Its version.
    pub version: u64,
    /// Its change number on this node.
    pub seq: u64,
    /// Its summary, base64url without padding.
    pub data: String,
}

/// Answer to `GET /v1/changes`: the caller's entries changed after
/// `since`, in change order, each once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChangeListJson {
    /// The node's feed: a random number chosen when its database got the
    /// feed. Another one than before means the node was replaced or wiped:
    /// read again from `since=0`.
    pub feed: u64,
    /// The entries.
    pub entries: Vec<ChangeJson>,
    /// The `since` of the next request: the highest change number the node
    /// examined.
    pub next: u64,
    /// Whether changes after `next` may exist.
    pub more: bool,
}

/// Answer to `POST /v1/login`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LoginJson {
    /// The user logged in.
    pub user: String,
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

impl std::fmt::Debug for LoginJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginJson")
            .field("user", &self.user)
            .field("token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// Answer to `GET /v1/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InfoJson {
    /// The node's id, 64 hex digits.
    pub node_id: String,
    /// cairn version of the node software.
    pub software: String,
    /// Protocol version.
    pub protocol: u8,
    /// Size of the file system holding the store, in bytes.
    pub capacity_bytes: u64,
    /// Bytes free on it.
    pub free_bytes: u64,
    /// Bytes referenced by all users.
    pub used_bytes: u64,
    /// Whether shards can be read without credentials.
    pub public_read: bool,
    /// Largest shard the node accepts, in bytes.
    pub max_shard_len: u64,
}

impl From<&NodeInfo> for InfoJson {
    fn from(info: &NodeInfo) -> Self {
        Self {
            node_id: info.node_id.to_string(),
            software: info.software.clone(),
            protocol: info.protocol,
            capacity_bytes: info.capacity_bytes,
            free_bytes: info.free_bytes,
            used_bytes: info.used_bytes,
            public_read: info.public_read,
            max_shard_len: info.max_shard_len,
        }
    }
}

impl TryFrom<InfoJson> for NodeInfo {
    type Error = cairn_core::ParseIdError;
    fn try_from(info: InfoJson) -> Result<Self, Self::Error> {
        Ok(Self {
            node_id: info.node_id.parse()?,
            software: info.software,
            protocol: info.protocol,
            capacity_bytes: info.capacity_bytes,
            free_bytes: info.free_bytes,
            used_bytes: info.used_bytes,
            public_read: info.public_read,
            max_shard_len: info.max_shard_len,
        })
    }
}

/// Answer to `GET /v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HealthJson {
    /// Always `ok`.
    #[schema(example = "ok")]
    pub status: String,
    /// The newest protocol version the node speaks, which says which
    /// routes it serves. Nodes before version 3 leave it out: read that as
    /// version 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = 3)]
    pub protocol: Option<u8>,
}

impl HealthJson {
    /// This node's answer: up, speaking this build's newest version.
    pub fn ok() -> Self {
        Self {
            status: "ok".into(),
            protocol: Some(crate::protocol::VERSIONS[0]),
        }
    }
}

// Only describes raw bodies in the OpenAPI document; never built.
/// Raw bytes: a shard, or an index entry's data.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub(super) struct Octets(Vec<u8>);

impl IdsJson {
    /// The JSON of a batch of shard ids.
    pub fn of(ids: &[Id]) -> Self {
        Self {
            ids: ids.iter().map(Id::to_hex).collect(),
        }
    }
}

impl LoginJson {
    /// The answer that hands `token` to `user`.
    pub fn bearer(user: String, token: String) -> Self {
        Self {
            user,
            token,
            token_type: "Bearer".into(),
            expires_in: super::credentials::TOKEN_LIFETIME_SECS,
        }
    }
}

/// The error code named `name` in JSON errors.
pub fn error_code(name: &str) -> Option<ErrorCode> {
    ErrorCode::ALL.into_iter().find(|c| c.as_str() == name)
}

/// An index name (or a folder tag) as it appears in paths and queries: 64
/// lowercase hex digits.
pub fn index_name_hex(name: &IndexName) -> String {
    data_encoding::HEXLOWER.encode(name)
}

/// Parses an index name (or a folder tag) from 64 hex digits (either
/// case).
pub fn parse_index_name(text: &str) -> Option<IndexName> {
    if text.len() != 64 {
        return None;
    }
    HEXLOWER_PERMISSIVE
        .decode(text.as_bytes())
        .ok()?
        .try_into()
        .ok()
}

/// Index entry data as it appears in listings.
pub fn encode_data(data: &[u8]) -> String {
    BASE64URL_NOPAD.encode(data)
}

/// Decodes index entry data from a listing.
pub fn decode_data(text: &str) -> Option<Vec<u8>> {
    BASE64URL_NOPAD.decode(text.as_bytes()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_and_codes_round_trip() {
        let name = [0xa5; 32];
        assert_eq!(parse_index_name(&index_name_hex(&name)), Some(name));
        assert_eq!(
            parse_index_name(&index_name_hex(&name).to_uppercase()),
            Some(name)
        );
        assert_eq!(parse_index_name("a5"), None);
        assert_eq!(parse_index_name(&"zz".repeat(32)), None);
        for code in ErrorCode::ALL {
            assert_eq!(error_code(code.as_str()), Some(code));
        }
        assert_eq!(error_code("nope"), None);
    }

    #[test]
    fn login_answers_never_print_their_token() {
        let login = LoginJson::bearer("alice".into(), "s3cr3t-token".into());
        assert!(!format!("{login:?}").contains("s3cr3t"));
        assert_eq!(login.token_type, "Bearer");
    }
}
