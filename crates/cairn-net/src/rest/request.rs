//! Requests both ways: a protocol [`Request`] as the client sends it
//! ([`Call`]), and an HTTP request as the node reads it back into one
//! ([`Head`], then [`Head::request`] once the body is in).

use bytes::Bytes;
use cairn_core::Id;
use zeroize::Zeroizing;

use super::credentials::{Credentials, basic_credentials};
use super::json::{IdsJson, index_name_hex, parse_index_name};
use super::route::{Body, Op, Route, VERSION_HEADER};
use crate::protocol::{
    ErrorBody, ErrorCode, FolderTag, IndexName, LEGACY_FOLDER, MAX_SUMMARY_LEN, Request,
};

/// A request as it goes over HTTP: what the client sends.
pub struct Call {
    /// Its route: method, and what the answer will be.
    pub route: &'static Route,
    /// Path and query, e.g. `/v1/index/ab…?version=4`.
    pub path: String,
    /// The `Authorization` header the request itself carries (a login's
    /// Basic credentials); others carry the session's. Never printed.
    pub authorization: Option<Zeroizing<String>>,
    /// The body.
    pub body: CallBody,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("op", &self.route.op)
            .field("path", &self.path)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "[redacted]"),
            )
            .field("body", &self.body)
            .finish()
    }
}

/// The body of a [`Call`].
#[derive(Debug)]
pub enum CallBody {
    /// None.
    None,
    /// Raw bytes, `application/octet-stream`: the request's body, shared,
    /// not copied.
    Octets(Bytes),
    /// JSON, `application/json`.
    Json(Vec<u8>),
}

impl Call {
    /// How `request`, with `body` beside it, goes over HTTP.
    pub fn of(request: &Request, body: &Bytes) -> Self {
        let route = Route::of(request);
        let (param, query) = match request {
            Request::PutShard { id } | Request::GetShard { id } => (Some(id.to_hex()), None),
            Request::PutIndex { name, version } => (
                Some(index_name_hex(name)),
                Some(format!("version={version}")),
            ),
            Request::PutEntry {
                name,
                version,
                folder,
                summary_len,
            } => (
                Some(index_name_hex(name)),
                Some(format!(
                    "version={version}&folder={}&summary_len={summary_len}",
                    index_name_hex(folder)
                )),
            ),
            Request::GetIndex { name } | Request::DeleteIndex { name } => {
                (Some(index_name_hex(name)), None)
            }
            Request::ListIndex { after, limit } => (None, Some(page_query(after.as_ref(), *limit))),
            Request::ListFolder {
                folder,
                after,
                limit,
            } => (
                Some(index_name_hex(folder)),
                Some(page_query(after.as_ref(), *limit)),
            ),
            Request::Changes {
                since,
                folder,
                limit,
            } => (
                None,
                Some(match folder {
                    Some(folder) => format!(
                        "since={since}&folder={}&limit={limit}",
                        index_name_hex(folder)
                    ),
                    None => format!("since={since}&limit={limit}"),
                }),
            ),
            Request::Login { .. }
            | Request::Info
            | Request::HasShards { .. }
            | Request::DropShards { .. }
            | Request::Ping => (None, None),
        };
        let mut path = route.path_for(param.as_deref().unwrap_or_default());
        if let Some(query) = query {
            path.push('?');
            path.push_str(&query);
        }
        let authorization = match request {
            Request::Login { user, auth_key } => {
                Some(Zeroizing::new(basic_credentials(user, &auth_key.0)))
            }
            _ => None,
        };
        let body = match (route.body, request) {
            (Body::Shard | Body::IndexData, _) => CallBody::Octets(body.clone()),
            (Body::Ids, Request::HasShards { ids } | Request::DropShards { ids }) => {
                CallBody::Json(serde_json::to_vec(&IdsJson::of(ids)).expect("ids serialize"))
            }
            _ => CallBody::None,
        };
        Self {
            route,
            path,
            authorization,
            body,
        }
    }
}

/// The query of a page: `after={name}&limit=N`, or `limit=N`.
fn page_query(after: Option<&IndexName>, limit: u32) -> String {
    match after {
        Some(after) => format!("after={}&limit={limit}", index_name_hex(after)),
        None => format!("limit={limit}"),
    }
}

/// What the node takes from a request's head, before its body.
#[derive(Debug, Default, Clone, Copy)]
pub struct HeadParts<'a> {
    /// The path parameter, percent-decoded, if the route has one.
    pub param: Option<&'a str>,
    /// The query string, without `?`.
    pub query: Option<&'a str>,
    /// The [`VERSION_HEADER`] header.
    pub version: Option<&'a [u8]>,
    /// The `Authorization` header: read here only where the credentials
    /// are the request (`POST /v1/login`); elsewhere the node reads them
    /// for its session.
    pub authorization: Option<&'a [u8]>,
}

/// A request's head, checked: the protocol request it makes, short of the
/// body.
#[derive(Debug)]
pub struct Head {
    route: &'static Route,
    /// The request; batches of ids are filled in from the body.
    request: Request,
    /// An entry put with a folder but no summary length: its summary is
    /// all of the body, whose length the head does not know.
    summary_is_body: bool,
}

fn bad_request(message: impl Into<String>) -> ErrorBody {
    ErrorBody::new(ErrorCode::BadRequest, message)
}

fn shard_id(param: Option<&str>) -> Result<Id, ErrorBody> {
    let text = param.unwrap_or_default();
    text.parse()
        .map_err(|e| bad_request(format!("{text:?} is not a shard id: {e}")))
}

fn index_name(param: Option<&str>) -> Result<IndexName, ErrorBody> {
    let text = param.unwrap_or_default();
    parse_index_name(text)
        .ok_or_else(|| bad_request(format!("{text:?} is not an index name (64 hex digits)")))
}

fn folder_tag(param: Option<&str>) -> Result<FolderTag, ErrorBody> {
    let text = param.unwrap_or_default();
    parse_index_name(text)
        .ok_or_else(|| bad_request(format!("{text:?} is not a folder tag (64 hex digits)")))
}

/// The value of `key` in a query, 64 hex digits, if it is there.
fn query_hex(query: Option<&str>, key: &str) -> Result<Option<[u8; 32]>, ErrorBody> {
    query_value::<String>(query, key)?
        .map(|text| {
            parse_index_name(&text)
                .ok_or_else(|| bad_request(format!("{key}={text:?} is not 64 hex digits")))
        })
        .transpose()
}

/// The value of `key` in a query, percent-decoded, if it is there.
/// Other keys are ignored, as HTTP servers do (RFC 9110).
fn query_value<T: std::str::FromStr>(
    query: Option<&str>,
    key: &str,
) -> Result<Option<T>, ErrorBody> {
    let mut found = None;
    for (k, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if k != key {
            continue;
        }
        if found.is_some() {
            return Err(bad_request(format!("{key} is given twice")));
        }
        found = Some(
            value
                .parse()
                .map_err(|_| bad_request(format!("{key}={value:?} is not valid")))?,
        );
    }
    Ok(found)
}

impl Route {
    /// Checks what the node has of a request for this route before its
    /// body: the path parameter, the query and, for a login, the
    /// credentials. Nothing malformed gets past it, so the body of a bad
    /// request is never read.
    ///
    /// # Errors
    /// [`ErrorCode::BadRequest`] for a malformed id, name, query or version;
    /// [`ErrorCode::Unauthorized`] for a login without Basic credentials;
    /// [`ErrorCode::Internal`] for `/v1/openapi.json`, which is no request.
    pub fn head(&'static self, parts: HeadParts<'_>) -> Result<Head, ErrorBody> {
        let mut summary_is_body = false;
        let request = match self.op {
            Op::PutShard => Request::PutShard {
                id: shard_id(parts.param)?,
            },
            Op::GetShard => Request::GetShard {
                id: shard_id(parts.param)?,
            },
            Op::HeadShard => Request::HasShards {
                ids: vec![shard_id(parts.param)?],
            },
            Op::HaveShards => Request::HasShards { ids: Vec::new() },
            Op::DropShards => Request::DropShards { ids: Vec::new() },
            Op::PutIndex => {
                let name = index_name(parts.param)?;
                let version = query_value(parts.query, "version")?;
                let version = version.map_or_else(|| version_header(parts.version), Ok)?;
                let folder = query_hex(parts.query, "folder")?;
                let summary_len = query_value::<u32>(parts.query, "summary_len")?;
                if let Some(len) = summary_len
                    && len as usize > MAX_SUMMARY_LEN
                {
                    // The document's bound on the query: malformed, as a
                    // limit past u32 is (over tcp:// it is `TooLarge`).
                    return Err(bad_request(format!(
                        "summary_len={len} is more than a node keeps ({MAX_SUMMARY_LEN})"
                    )));
                }
                match (folder, summary_len) {
                    (None, None) => Request::PutIndex { name, version },
                    (folder, summary_len) => {
                        summary_is_body = summary_len.is_none();
                        Request::PutEntry {
                            name,
                            version,
                            folder: folder.unwrap_or(LEGACY_FOLDER),
                            summary_len: summary_len.unwrap_or(0),
                        }
                    }
                }
            }
            Op::GetIndex => Request::GetIndex {
                name: index_name(parts.param)?,
            },
            Op::DeleteIndex => Request::DeleteIndex {
                name: index_name(parts.param)?,
            },
            Op::ListIndex => Request::ListIndex {
                after: query_hex(parts.query, "after")?,
                // The node's page size caps it.
                limit: query_value(parts.query, "limit")?.unwrap_or(u32::MAX),
            },
            Op::ListFolder => Request::ListFolder {
                folder: folder_tag(parts.param)?,
                after: query_hex(parts.query, "after")?,
                limit: query_value(parts.query, "limit")?.unwrap_or(u32::MAX),
            },
            Op::Changes => Request::Changes {
                since: query_value(parts.query, "since")?.unwrap_or(0),
                folder: query_hex(parts.query, "folder")?,
                limit: query_value(parts.query, "limit")?.unwrap_or(u32::MAX),
            },
            Op::Login => {
                let Credentials::Basic { user, auth_key } =
                    Credentials::parse(parts.authorization)?
                else {
                    return Err(ErrorBody::new(
                        ErrorCode::Unauthorized,
                        "log in with HTTP Basic credentials: the user, and the base64 of the auth key",
                    ));
                };
                Request::Login { user, auth_key }
            }
            Op::Info => Request::Info,
            Op::Health => Request::Ping,
            Op::Describe => {
                return Err(ErrorBody::new(
                    ErrorCode::Internal,
                    "the OpenAPI document is no protocol request",
                ));
            }
        };
        Ok(Head {
            route: self,
            request,
            summary_is_body,
        })
    }
}

/// The version of an index put from the [`VERSION_HEADER`] header, which
/// stands in for the query.
fn version_header(value: Option<&[u8]>) -> Result<u64, ErrorBody> {
    let Some(value) = value else {
        return Err(bad_request(format!(
            "give the version as ?version=N or in the {VERSION_HEADER} header"
        )));
    };
    std::str::from_utf8(value)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or_else(|| bad_request(format!("{VERSION_HEADER} must be a number")))
}

impl Head {
    /// Its route.
    pub fn route(&self) -> &'static Route {
        self.route
    }

    /// The protocol request, with the body to hand the service beside it:
    /// a shard or an entry's data as it came, or nothing once a batch of
    /// ids was read from the body.
    ///
    /// An index put is [`Request::PutIndex`] without `folder` and
    /// `summary_len`, else [`Request::PutEntry`], in which a missing
    /// `folder` is [`LEGACY_FOLDER`] and a missing `summary_len` all of the
    /// body.
    ///
    /// # Errors
    /// [`ErrorCode::BadRequest`] for a batch of ids that is not
    /// [`IdsJson`] of 64-hex-digit ids.
    pub fn request(mut self, body: Bytes) -> Result<(Request, Bytes), ErrorBody> {
        match (&mut self.request, self.route.body) {
            (Request::HasShards { ids } | Request::DropShards { ids }, Body::Ids) => {
                *ids = parse_ids(&body)?;
                Ok((self.request, Bytes::new()))
            }
            (Request::PutEntry { summary_len, .. }, _) if self.summary_is_body => {
                // A body longer than a u32 is refused for its size anyway.
                *summary_len = u32::try_from(body.len()).unwrap_or(u32::MAX);
                Ok((self.request, body))
            }
            _ => Ok((self.request, body)),
        }
    }
}

fn parse_ids(body: &[u8]) -> Result<Vec<Id>, ErrorBody> {
    let json: IdsJson = serde_json::from_slice(body)
        .map_err(|e| bad_request(format!("expected {{\"ids\": [...]}}: {e}")))?;
    json.ids
        .iter()
        .map(|text| {
            text.parse()
                .map_err(|e| bad_request(format!("{text:?} is not a shard id: {e}")))
        })
        .collect()
}
