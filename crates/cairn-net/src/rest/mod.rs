//! The protocol as a REST API: one table that the node's router, the
//! client and the OpenAPI document all read.
//!
//! The same operations as [`crate::protocol`], one route each, so that any
//! HTTPS client (curl with `--cacert node.crt`) can use a node. The node
//! serves TLS 1.3 with its self-signed certificate and offers only
//! HTTP/1.1. Shard bodies and index entry data travel as raw bytes;
//! everything else is JSON ([`ErrorJson`] and the other `*Json` types).
//!
//! # Routes
//!
//! | method and path | request | answer |
//! | --- | --- | --- |
//! | `PUT /v1/shards/{id}` | the shard's bytes | 201 (written) or 200 (already there), [`ShardStoredJson`] |
//! | `GET /v1/shards/{id}` | — | the shard's bytes, `application/octet-stream` |
//! | `HEAD /v1/shards/{id}` | — | 200 if the node stores it, 404 if not; no body |
//! | `POST /v1/shards/have` | [`IdsJson`] | [`HaveJson`] |
//! | `POST /v1/shards/drop` | [`IdsJson`] | [`DropsJson`] |
//! | `PUT /v1/index/{name}?version=N&folder={folder}&summary_len=L` | the entry's data | [`IndexStoredJson`] |
//! | `GET /v1/index/{name}` | — | the entry's data, its version in the [`VERSION_HEADER`] header |
//! | `DELETE /v1/index/{name}` | — | [`IndexDeletedJson`] |
//! | `GET /v1/index?after={name}&limit=N` | — | [`IndexListJson`] |
//! | `GET /v1/folders/{folder}?after={name}&limit=N` | — | [`IndexListJson`] of summaries |
//! | `GET /v1/changes?since=N&folder={folder}&limit=N` | — | [`ChangeListJson`] |
//! | `POST /v1/login` | HTTP Basic credentials | [`LoginJson`] |
//! | `GET /v1/info` | — | [`InfoJson`] |
//! | `GET /v1/health` | — | [`HealthJson`] |
//! | `GET /v1/openapi.json` | — | the OpenAPI 3.1 description of all of the above |
//!
//! Shard ids, index names and folder tags are 64 hex digits (32 bytes);
//! anything else is refused with 400 before it reaches the store. A `PUT`
//! of an index entry may give the version in the [`VERSION_HEADER`] header
//! instead of the query. Its `folder` and `summary_len` (protocol version
//! 3, [`Request::PutEntry`]) are optional: without either it is a
//! [`Request::PutIndex`] (the legacy folder, all of the data as summary);
//! with one, the other defaults the same way. A node of version 3 says so
//! in its health answer ([`HealthJson::protocol`]); older ones serve
//! neither the version 3 routes nor the put's new parameters (which they
//! ignore).
//!
//! # The table
//!
//! [`ROUTES`] holds one [`Route`] per row above: its [`Op`] (which protocol
//! [`Request`] it carries, and its OpenAPI `operationId`), method, path
//! template, path parameter, query, body kind, credentials, answer shape
//! and the words of its OpenAPI entry. Everything else follows from it:
//!
//! - the client sends each [`Request`] as [`Call::of`] says (route, path
//!   and query, body) and turns the answer back with [`Route::decode`];
//! - the node routes each row to one generic handler, which checks the
//!   request's head with [`Route::head`], reads the body the row allows,
//!   builds the [`Request`] with [`Head::request`], asks the node's
//!   service, and answers with [`Route::reply`];
//! - [`openapi`] describes the rows (`GET /v1/openapi.json`).
//!
//! Both directions of each mapping sit side by side (`request.rs`: the
//! client's [`Call`] and the node's [`Head`]; `answer.rs`: the node's
//! [`Reply`] and the client's decoding), so that a round trip through both
//! is tested here, without a node.
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
//! method a 405, both with the same body. A `HEAD` answers the status
//! alone.
//!
//! [`ErrorCode::http_status`]: crate::protocol::ErrorCode::http_status
//! [`Request`]: crate::protocol::Request
//! [`Request::PutEntry`]: crate::protocol::Request::PutEntry
//! [`Request::PutIndex`]: crate::protocol::Request::PutIndex

mod answer;
mod credentials;
mod json;
mod openapi;
mod request;
mod route;

pub use answer::{AnswerError, Reply, change_list_response, health_protocol, list_response};
pub use credentials::{Credentials, TOKEN_LIFETIME_SECS, basic_credentials, decode_auth_key};
pub use json::{
    ChangeJson, ChangeListJson, DroppedJson, DropsJson, ErrorJson, HaveJson, HealthJson, IdsJson,
    IndexDeletedJson, IndexEntryJson, IndexListJson, IndexStoredJson, InfoJson, LoginJson,
    ShardStoredJson, decode_data, encode_data, error_code, index_name_hex, parse_index_name,
};
pub use openapi::openapi;
pub use request::{Call, CallBody, Head, HeadParts};
pub use route::{
    API_PREFIX, Answer, Auth, Body, Doc, MAX_JSON_BODY, Op, Param, Query, ROUTES, Route,
    VERSION_HEADER,
};

#[cfg(test)]
mod tests;
