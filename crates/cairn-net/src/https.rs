//! `https://`: the protocol as a REST API, and its client.
//!
//! The same operations as [`crate::protocol`], one route each, so that any
//! HTTPS client (curl with `--cacert node.crt`) can use a node. The node
//! serves TLS 1.3 with its self-signed certificate and offers only
//! HTTP/1.1. Shard bodies and index entry data travel as raw bytes;
//! everything else is JSON.
//!
//! # Routes
//!
//! | method and path | request | answer |
//! | --- | --- | --- |
//! | `PUT /v1/shards/{id}` | the shard's bytes | 201 (written) or 200 (already there), [`ShardStoredJson`] |
//! | `GET /v1/shards/{id}` | — | the shard's bytes, `application/octet-stream` |
//! | `HEAD /v1/shards/{id}` | — | 200 if the node stores it, 404 if not; no body |
//! | `POST /v1/shards/have` | [`IdsJson`] | [`HaveJson`] |
//! | `POST /v1/shards/drop` | [`IdsJson`] | [`DroppedJson`] |
//! | `PUT /v1/index/{name}?version=N` | the entry's data | [`IndexStoredJson`] |
//! | `GET /v1/index/{name}` | — | the entry's data, its version in the [`VERSION_HEADER`] header |
//! | `GET /v1/index?after={name}&limit=N` | — | [`IndexListJson`] |
//! | `DELETE /v1/index/{name}` | — | [`IndexDeletedJson`] |
//! | `POST /v1/login` | HTTP Basic credentials | [`LoginJson`] |
//! | `GET /v1/info` | — | [`InfoJson`] |
//! | `GET /v1/health` | — | [`HealthJson`] |
//! | `GET /v1/openapi.json` | — | the OpenAPI 3.1 description of all of the above |
//!
//! Shard ids and index names are 64 hex digits (32 bytes); anything else
//! is refused with 400 before it reaches the store. A `PUT` of an index
//! entry may give the version in the [`VERSION_HEADER`] header instead of
//! the query.
//!
//! # Credentials
//!
//! - **HTTP Basic** on any request: the user name, and as password the
//!   base64 of the user's 32-byte auth key for this node (standard or
//!   URL-safe alphabet, padded or not).
//! - **Bearer token**: `POST /v1/login` with Basic credentials answers a
//!   token valid for [`LoginJson::expires_in`] seconds; send it as
//!   `Authorization: Bearer <token>`. An unknown or expired token is a 401,
//!   never an anonymous request.
//! - **None**: the request is anonymous, which reads shards when the node
//!   allows public reads.
//!
//! # Errors
//!
//! Every failure is [`ErrorJson`] `{ "error": code, "message": text }`
//! with the status of the code ([`ErrorCode::http_status`]): 400
//! `bad_request`, 401 `unauthorized`, 403 `forbidden`, 404 `not_found`,
//! 409 `conflict`, 413 `too_large`, 422 `hash_mismatch`, 507
//! `quota_exceeded` and `disk_full`, 500 `corrupt` and `internal`, 503
//! `unavailable`. An unknown route is a 404 and a known route with another
//! method a 405, both with the same body.
//!
//! # Client
//!
//! [`crate::client::Connection`] speaks this API for `https://` addresses
//! with the node pinned by id, like the other transports: each
//! [`Request`] becomes its route and each answer a [`Response`], so the
//! typed methods work unchanged. A login fetches a token and keeps it for
//! the connection; when the token expires, the client logs in again.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use cairn_core::Id;
use data_encoding::{BASE64, BASE64_NOPAD, BASE64URL, BASE64URL_NOPAD, HEXLOWER_PERMISSIVE};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::address::NodeAddress;
use crate::client::{ClientError, ClientOptions};
use crate::protocol::{
    AuthKeyBytes, Dropped, ErrorBody, ErrorCode, IndexName, Limits, NodeInfo, Request, Response,
};

/// Prefix of every route.
pub const API_PREFIX: &str = "/v1";

/// Header carrying an index entry's version (answer of `GET
/// /v1/index/{name}`; optional in a `PUT` instead of `?version=`).
pub const VERSION_HEADER: &str = "cairn-version";

/// How long a login token stays valid, in seconds.
pub const TOKEN_LIFETIME_SECS: u64 = 3600;

/// Largest JSON request body the node reads: a full batch of hex ids and
/// some room.
pub const MAX_JSON_BODY: usize = 2 * 1024 * 1024;

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

/// Answer to `GET /v1/index`: a page of the caller's entries in name order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IndexListJson {
    /// The entries.
    pub entries: Vec<IndexEntryJson>,
    /// Whether entries after the last one may exist: ask again with
    /// `after` = the last name.
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
}

/// The error code named `name` in JSON errors.
pub fn error_code(name: &str) -> Option<ErrorCode> {
    ErrorCode::ALL.into_iter().find(|c| c.as_str() == name)
}

/// An index name as it appears in paths: 64 lowercase hex digits.
pub fn index_name_hex(name: &IndexName) -> String {
    data_encoding::HEXLOWER.encode(name)
}

/// Parses an index name from 64 hex digits (either case).
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

/// The value of an `Authorization: Basic` header for `user` and
/// `auth_key`.
pub fn basic_credentials(user: &str, auth_key: &[u8; 32]) -> String {
    let password = BASE64.encode(auth_key);
    format!(
        "Basic {}",
        BASE64.encode(format!("{user}:{password}").as_bytes())
    )
}

/// Decodes the password of Basic credentials into an auth key: base64 in
/// either alphabet, padded or not, of exactly 32 bytes.
pub fn decode_auth_key(password: &str) -> Option<AuthKeyBytes> {
    let password = password.trim().as_bytes();
    [&BASE64, &BASE64_NOPAD, &BASE64URL, &BASE64URL_NOPAD]
        .into_iter()
        .find_map(|encoding| encoding.decode(password).ok())
        .and_then(|mut bytes| {
            let key = <[u8; 32]>::try_from(bytes.as_slice())
                .ok()
                .map(AuthKeyBytes);
            zeroize::Zeroize::zeroize(&mut bytes);
            key
        })
}

/// The user's credentials, kept to log in again when the token expires.
struct Login {
    user: String,
    auth_key: AuthKeyBytes,
    token: String,
}

/// The `https://` side of a [`crate::client::Connection`].
pub(crate) struct HttpsClient {
    http: reqwest::Client,
    /// `https://host:port/v1`.
    base: String,
    limits: Limits,
    request_timeout: Duration,
    login: Mutex<Option<Arc<Login>>>,
}

impl std::fmt::Debug for HttpsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpsClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

fn transport_error(address: &str, error: &reqwest::Error, after: Duration) -> ClientError {
    if error.is_timeout() {
        ClientError::Timeout {
            what: format!("a request to {address}"),
            after,
        }
    } else if error.is_connect() {
        ClientError::Connect {
            address: address.to_owned(),
            source: std::io::Error::other(chain(error)),
        }
    } else {
        ClientError::Broken(chain(error))
    }
}

impl HttpsClient {
    /// A client for the node at `address`, checked with a health request so
    /// that an unreachable or wrong node shows at once.
    pub(crate) async fn connect(
        address: &NodeAddress,
        tls: rustls::ClientConfig,
        options: &ClientOptions,
    ) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .http1_only()
            // The node is pinned by id and reached directly; a proxy from
            // the environment would only add a hop.
            .no_proxy()
            .connect_timeout(options.connect_timeout)
            .timeout(options.request_timeout)
            // Nodes close idle connections after their request timeout
            // (60 s by default); letting go of them sooner avoids sending
            // a request down a connection the node is closing.
            .pool_idle_timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| ClientError::Protocol(format!("HTTPS client: {}", chain(&e))))?;
        let client = Self {
            http,
            base: format!("https://{}{API_PREFIX}", address.authority()),
            limits: options.limits,
            request_timeout: options.request_timeout,
            login: Mutex::new(None),
        };
        let answer = client
            .http
            .get(client.url("/health"))
            .send()
            .await
            .map_err(|e| transport_error(&address.to_string(), &e, options.connect_timeout))?;
        if !answer.status().is_success() {
            return Err(ClientError::Protocol(format!(
                "{address}: /v1/health answered {}",
                answer.status()
            )));
        }
        Ok(client)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn broken(&self, error: &reqwest::Error) -> ClientError {
        transport_error(&self.base, error, self.request_timeout)
    }

    /// Sends `request` as its route and turns the answer back into a
    /// [`Response`].
    pub(crate) async fn call(
        &self,
        request: &Request,
        body: &Bytes,
    ) -> Result<(Response, Bytes), ClientError> {
        if let Request::Login { user, auth_key } = request {
            return self.login(user, auth_key.clone()).await;
        }
        let login = self.login.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let answer = self.send(request, body, login.as_deref()).await?;
        match (&answer.0, login) {
            // The token expired (or the node restarted): log in again, once.
            (Response::Error(e), Some(login)) if e.code == ErrorCode::Unauthorized => {
                let (relogged, _) = self.login(&login.user, login.auth_key.clone()).await?;
                if matches!(relogged, Response::Error(_)) {
                    return Ok(answer);
                }
                let login = self.login.lock().unwrap_or_else(|p| p.into_inner()).clone();
                self.send(request, body, login.as_deref()).await
            }
            _ => Ok(answer),
        }
    }

    async fn login(
        &self,
        user: &str,
        auth_key: AuthKeyBytes,
    ) -> Result<(Response, Bytes), ClientError> {
        let answer = self
            .http
            .post(self.url("/login"))
            .header(
                reqwest::header::AUTHORIZATION,
                secret_header(&basic_credentials(user, &auth_key.0))?,
            )
            .send()
            .await
            .map_err(|e| self.broken(&e))?;
        if !answer.status().is_success() {
            return Ok((Response::Error(self.error(answer).await), Bytes::new()));
        }
        let json: LoginJson = self.json(answer).await?;
        *self.login.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(Login {
            user: user.to_owned(),
            auth_key,
            token: json.token,
        }));
        Ok((Response::LoggedIn { user: json.user }, Bytes::new()))
    }

    async fn send(
        &self,
        request: &Request,
        body: &Bytes,
        login: Option<&Login>,
    ) -> Result<(Response, Bytes), ClientError> {
        let http = &self.http;
        let builder = match request {
            Request::Login { .. } => unreachable!("logins are sent by `login`"),
            Request::Info => http.get(self.url("/info")),
            Request::PutShard { id } => http
                .put(self.url(&format!("/shards/{id}")))
                .header(CONTENT_TYPE, "application/octet-stream")
                .body(body.clone()),
            Request::GetShard { id } => http.get(self.url(&format!("/shards/{id}"))),
            Request::HasShards { ids } => http
                .post(self.url("/shards/have"))
                .header(CONTENT_TYPE, "application/json")
                .body(ids_json(ids)),
            Request::DropShards { ids } => http
                .post(self.url("/shards/drop"))
                .header(CONTENT_TYPE, "application/json")
                .body(ids_json(ids)),
            Request::PutIndex { name, version } => http
                .put(self.url(&format!(
                    "/index/{}?version={version}",
                    index_name_hex(name)
                )))
                .header(CONTENT_TYPE, "application/octet-stream")
                .body(body.clone()),
            Request::GetIndex { name } => {
                http.get(self.url(&format!("/index/{}", index_name_hex(name))))
            }
            Request::ListIndex { after, limit } => {
                let mut path = format!("/index?limit={limit}");
                if let Some(after) = after {
                    path.push_str(&format!("&after={}", index_name_hex(after)));
                }
                http.get(self.url(&path))
            }
            Request::DeleteIndex { name } => {
                http.delete(self.url(&format!("/index/{}", index_name_hex(name))))
            }
            // No route of its own: the health check is the sign of life.
            Request::Ping => http.get(self.url("/health")),
        };
        let builder = match login {
            Some(login) => builder.header(
                reqwest::header::AUTHORIZATION,
                secret_header(&format!("Bearer {}", login.token))?,
            ),
            None => builder,
        };
        let answer = builder.send().await.map_err(|e| self.broken(&e))?;
        if !answer.status().is_success() {
            return Ok((Response::Error(self.error(answer).await), Bytes::new()));
        }
        let response = match request {
            Request::Login { .. } => unreachable!("logins are sent by `login`"),
            Request::Info => {
                let info: InfoJson = self.json(answer).await?;
                Response::Info(
                    NodeInfo::try_from(info)
                        .map_err(|e| ClientError::Protocol(format!("node id in info: {e}")))?,
                )
            }
            Request::PutShard { .. } => {
                let stored: ShardStoredJson = self.json(answer).await?;
                Response::ShardStored {
                    written: stored.written,
                }
            }
            Request::GetShard { .. } => {
                let bytes = self.body(answer, self.limits.max_shard_len).await?;
                return Ok((Response::Shard, bytes));
            }
            Request::HasShards { .. } => {
                let has: HaveJson = self.json(answer).await?;
                Response::Has {
                    stored: has.stored,
                    mine: has.mine,
                }
            }
            Request::DropShards { .. } => {
                let dropped: DropsJson = self.json(answer).await?;
                Response::Dropped {
                    outcomes: dropped.outcomes.into_iter().map(Dropped::from).collect(),
                }
            }
            Request::PutIndex { .. } => {
                let stored: IndexStoredJson = self.json(answer).await?;
                Response::IndexStored {
                    replaced: stored.replaced,
                }
            }
            Request::GetIndex { .. } => {
                let version = answer
                    .headers()
                    .get(VERSION_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| {
                        ClientError::Protocol(format!("no {VERSION_HEADER} header in the answer"))
                    })?;
                let data = self.body(answer, self.limits.max_message_len).await?;
                return Ok((Response::IndexEntry { version }, data));
            }
            Request::ListIndex { .. } => {
                let list: IndexListJson = self.json(answer).await?;
                return list_response(list);
            }
            Request::DeleteIndex { .. } => {
                let deleted: IndexDeletedJson = self.json(answer).await?;
                Response::IndexDeleted {
                    version: deleted.version,
                }
            }
            Request::Ping => Response::Pong,
        };
        Ok((response, Bytes::new()))
    }

    /// Reads an answer's body, refusing more than `max` bytes.
    async fn body(&self, mut answer: reqwest::Response, max: usize) -> Result<Bytes, ClientError> {
        let too_large = |len: u64| {
            ClientError::Protocol(format!(
                "the node sent {len} bytes or more; at most {max} were expected"
            ))
        };
        let declared = answer.content_length();
        if let Some(len) = declared
            && len > max as u64
        {
            return Err(too_large(len));
        }
        let mut bytes = BytesMut::with_capacity(declared.map_or(0, |l| l as usize));
        while let Some(chunk) = answer.chunk().await.map_err(|e| self.broken(&e))? {
            if bytes.len() + chunk.len() > max {
                return Err(too_large((bytes.len() + chunk.len()) as u64));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes.freeze())
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        answer: reqwest::Response,
    ) -> Result<T, ClientError> {
        let bytes = self.body(answer, self.limits.max_frame_len()).await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::Protocol(format!("unexpected JSON from the node: {e}")))
    }

    /// The node's error: its JSON body, or one made from the status.
    async fn error(&self, answer: reqwest::Response) -> ErrorBody {
        let status = answer.status();
        let from_status = match status {
            StatusCode::BAD_REQUEST | StatusCode::METHOD_NOT_ALLOWED => ErrorCode::BadRequest,
            StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
            StatusCode::FORBIDDEN => ErrorCode::Forbidden,
            StatusCode::NOT_FOUND => ErrorCode::NotFound,
            StatusCode::CONFLICT => ErrorCode::Conflict,
            StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::TooLarge,
            StatusCode::UNPROCESSABLE_ENTITY => ErrorCode::HashMismatch,
            StatusCode::INSUFFICIENT_STORAGE => ErrorCode::DiskFull,
            StatusCode::SERVICE_UNAVAILABLE => ErrorCode::Unavailable,
            _ => ErrorCode::Internal,
        };
        let body = self.body(answer, 64 * 1024).await.unwrap_or_default();
        match serde_json::from_slice::<ErrorJson>(&body) {
            Ok(json) => {
                ErrorBody::new(error_code(&json.error).unwrap_or(from_status), json.message)
            }
            Err(_) => ErrorBody::new(
                from_status,
                format!(
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ),
            ),
        }
    }
}

/// A header value that HTTP libraries must not log.
fn secret_header(text: &str) -> Result<HeaderValue, ClientError> {
    let mut value = HeaderValue::from_str(text)
        .map_err(|_| ClientError::Protocol("credentials are not a valid header".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

fn ids_json(ids: &[Id]) -> Vec<u8> {
    let json = IdsJson {
        ids: ids.iter().map(Id::to_hex).collect(),
    };
    serde_json::to_vec(&json).expect("ids serialize")
}

/// An index listing as the framed transports carry it: lengths in the
/// message, the data one after another in the body. Public for the fuzz
/// targets (an `https://` node's JSON is untrusted input).
///
/// # Errors
/// [`ClientError::Protocol`] for a name or data that does not decode.
pub fn list_response(list: IndexListJson) -> Result<(Response, Bytes), ClientError> {
    let mut entries = Vec::with_capacity(list.entries.len());
    let mut body = BytesMut::new();
    for entry in list.entries {
        let bad = |what: &str| ClientError::Protocol(format!("index listing: bad {what}"));
        let name = parse_index_name(&entry.name).ok_or_else(|| bad("name"))?;
        let data = decode_data(&entry.data).ok_or_else(|| bad("data"))?;
        let len = u32::try_from(data.len()).map_err(|_| bad("data length"))?;
        entries.push((name, entry.version, len));
        body.extend_from_slice(&data);
    }
    Ok((
        Response::IndexList {
            entries,
            more: list.more,
        },
        body.freeze(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_keys_decode_in_any_base64_flavour() {
        let key = [0xfb; 32];
        for encoding in [&BASE64, &BASE64_NOPAD, &BASE64URL, &BASE64URL_NOPAD] {
            let text = encoding.encode(&key);
            assert_eq!(decode_auth_key(&text).unwrap().0, key, "{text}");
        }
        assert!(decode_auth_key(&BASE64.encode(&[1; 31])).is_none());
        assert!(decode_auth_key("not base64!").is_none());
    }

    #[test]
    fn basic_credentials_follow_rfc_7617() {
        let header = basic_credentials("alice", &[0; 32]);
        let decoded = BASE64
            .decode(header.strip_prefix("Basic ").unwrap().as_bytes())
            .unwrap();
        let (user, password) = std::str::from_utf8(&decoded)
            .unwrap()
            .split_once(':')
            .unwrap();
        assert_eq!(user, "alice");
        assert_eq!(decode_auth_key(password).unwrap().0, [0; 32]);
    }

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
        let login = LoginJson {
            user: "alice".into(),
            token: "s3cr3t-token".into(),
            token_type: "Bearer".into(),
            expires_in: 3600,
        };
        assert!(!format!("{login:?}").contains("s3cr3t"));
    }
}
