//! Answers both ways: a protocol [`Response`] as the node sends it
//! ([`Route::reply`]), and an HTTP answer as the client reads it back into
//! one ([`Route::decode`]). Failures are not here: every [`Response::Error`]
//! is [`ErrorJson`](super::ErrorJson) with its code's status, whatever the
//! route.

use bytes::{Bytes, BytesMut};
use serde::Serialize;
use tracing::warn;
use utoipa::ToSchema;

use super::json::{
    ChangeJson, ChangeListJson, DropsJson, HaveJson, HealthJson, IndexDeletedJson, IndexEntryJson,
    IndexListJson, IndexStoredJson, InfoJson, LoginJson, ShardStoredJson, decode_data, encode_data,
    index_name_hex, parse_index_name,
};
use super::route::{Answer, Op, Route, VERSION_HEADER};
use crate::protocol::{
    Dropped, ErrorBody, ErrorCode, FOLDER_VERSION, NodeInfo, Response, VERSIONS,
};

/// A successful answer as it goes over HTTP: what the node sends.
#[derive(Debug)]
pub enum Reply {
    /// JSON (`application/json`) with this status.
    Json {
        /// 200, or 201 for a shard written.
        status: u16,
        /// The encoded value.
        json: Vec<u8>,
    },
    /// Raw bytes (`application/octet-stream`), status 200.
    Octets {
        /// The bytes, as the service gave them.
        bytes: Bytes,
        /// An index entry's version, for the [`VERSION_HEADER`] header.
        version: Option<u64>,
    },
    /// A status and no body.
    Status(u16),
}

/// Why the client could not read an answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnswerError {
    /// The body is not the JSON the route answers.
    #[error("unexpected JSON from the node: {0}")]
    Json(#[from] serde_json::Error),
    /// The node's id in its info does not parse.
    #[error("node id in info: {0}")]
    NodeId(cairn_core::ParseIdError),
    /// An index entry came without its version.
    #[error("no {VERSION_HEADER} header in the answer")]
    NoVersion,
    /// An entry of an index listing or change feed page does not decode.
    #[error("index listing: bad {0}")]
    Listing(&'static str),
    /// The route answers nothing a protocol response holds.
    #[error("{0} answers no protocol response")]
    NoResponse(&'static str),
}

/// `value` as JSON, with its schema's name.
fn json<T: Serialize + ToSchema>(status: u16, value: &T) -> (u16, Vec<u8>, String) {
    let json = serde_json::to_vec(value).expect("answers serialize");
    (status, json, T::name().into_owned())
}

impl Route {
    /// How the node answers `response`, with `body` beside it: this route's
    /// [`Answer`]. A login's `body` is the bearer token the node issued for
    /// the user.
    ///
    /// # Errors
    /// [`ErrorCode::Internal`] (and a warning in the log) for a response
    /// that is not this route's answer.
    pub fn reply(&self, response: Response, body: Bytes) -> Result<Reply, ErrorBody> {
        let unexpected = match (self.answer, response) {
            (Answer::Presence, Response::Has { stored, .. }) => {
                return Ok(Reply::Status(if stored == [true] { 200 } else { 404 }));
            }
            (Answer::Octets, Response::Shard) => {
                return Ok(Reply::Octets {
                    bytes: body,
                    version: None,
                });
            }
            (Answer::Entry, Response::IndexEntry { version }) => {
                return Ok(Reply::Octets {
                    bytes: body,
                    version: Some(version),
                });
            }
            (Answer::Json(schema), response) => match json_of(response, body) {
                Ok((status, json, name)) if name == schema => {
                    return Ok(Reply::Json { status, json });
                }
                Ok((_, _, name)) => name,
                Err(response) => format!("{response:?}"),
            },
            (_, response) => format!("{response:?}"),
        };
        warn!(
            route = self.op.name(),
            "the service answered {unexpected} where it should not"
        );
        Err(ErrorBody::new(
            ErrorCode::Internal,
            "the node answered unexpectedly",
        ))
    }
}

/// The JSON of a response, or the response back if it has none.
fn json_of(response: Response, mut body: Bytes) -> Result<(u16, Vec<u8>, String), Response> {
    Ok(match response {
        Response::ShardStored { written } => json(
            if written { 201 } else { 200 },
            &ShardStoredJson { written },
        ),
        Response::Has { stored, mine } => json(200, &HaveJson { stored, mine }),
        Response::Dropped { outcomes } => json(
            200,
            &DropsJson {
                outcomes: outcomes.into_iter().map(Into::into).collect(),
            },
        ),
        Response::IndexStored { replaced } => json(200, &IndexStoredJson { replaced }),
        Response::IndexDeleted { version } => json(200, &IndexDeletedJson { version }),
        Response::IndexList { entries, more } => {
            let entries = entries
                .into_iter()
                .map(|(name, version, len)| {
                    let len = (len as usize).min(body.len());
                    IndexEntryJson {
                        name: index_name_hex(&name),
                        version,
                        data: encode_data(&body.split_to(len)),
                    }
                })
                .collect();
            json(200, &IndexListJson { entries, more })
        }
        Response::ChangeList {
            feed,
            entries,
            next,
            more,
        } => {
            let entries = entries
                .into_iter()
                .map(|(name, version, seq, len)| {
                    let len = (len as usize).min(body.len());
                    ChangeJson {
                        name: index_name_hex(&name),
                        version,
                        seq,
                        data: encode_data(&body.split_to(len)),
                    }
                })
                .collect();
            json(
                200,
                &ChangeListJson {
                    feed,
                    entries,
                    next,
                    more,
                },
            )
        }
        Response::LoggedIn { user } => {
            let token = String::from_utf8_lossy(&body).into_owned();
            json(200, &LoginJson::bearer(user, token))
        }
        Response::Info(info) => json(200, &InfoJson::from(&info)),
        Response::Pong => json(200, &HealthJson::ok()),
        other @ (Response::Shard | Response::IndexEntry { .. } | Response::Error(_)) => {
            return Err(other);
        }
    })
}

impl Route {
    /// The protocol response to a successful (2xx) answer of this route:
    /// its `body`, and the [`VERSION_HEADER`] header's value. A login's
    /// answer keeps the bearer token as its body.
    ///
    /// # Errors
    /// [`AnswerError`] for a body or header that is not what the route
    /// answers.
    pub fn decode(
        &self,
        version: Option<&[u8]>,
        body: Bytes,
    ) -> Result<(Response, Bytes), AnswerError> {
        let none = Bytes::new();
        Ok(match self.op {
            Op::PutShard => {
                let ShardStoredJson { written } = parse(&body)?;
                (Response::ShardStored { written }, none)
            }
            Op::GetShard => (Response::Shard, body),
            Op::HaveShards => {
                let HaveJson { stored, mine } = parse(&body)?;
                (Response::Has { stored, mine }, none)
            }
            Op::DropShards => {
                let DropsJson { outcomes } = parse(&body)?;
                let outcomes = outcomes.into_iter().map(Dropped::from).collect();
                (Response::Dropped { outcomes }, none)
            }
            Op::PutIndex => {
                let IndexStoredJson { replaced } = parse(&body)?;
                (Response::IndexStored { replaced }, none)
            }
            Op::GetIndex => {
                let version = version
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or(AnswerError::NoVersion)?;
                (Response::IndexEntry { version }, body)
            }
            Op::DeleteIndex => {
                let IndexDeletedJson { version } = parse(&body)?;
                (Response::IndexDeleted { version }, none)
            }
            Op::ListIndex | Op::ListFolder => list_response(parse(&body)?)?,
            Op::Changes => change_list_response(parse(&body)?)?,
            Op::Login => {
                let login: LoginJson = parse(&body)?;
                (
                    Response::LoggedIn { user: login.user },
                    Bytes::from(login.token),
                )
            }
            Op::Info => {
                let info =
                    NodeInfo::try_from(parse::<InfoJson>(&body)?).map_err(AnswerError::NodeId)?;
                (Response::Info(info), none)
            }
            Op::Health => (Response::Pong, none),
            Op::HeadShard | Op::Describe => return Err(AnswerError::NoResponse(self.op.name())),
        })
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AnswerError> {
    Ok(serde_json::from_slice(body)?)
}

/// An index listing as the framed transports carry it: lengths in the
/// message, the data one after another in the body. Public for the fuzz
/// targets (an `https://` node's JSON is untrusted input).
///
/// # Errors
/// [`AnswerError::Listing`] for a name or data that does not decode.
pub fn list_response(list: IndexListJson) -> Result<(Response, Bytes), AnswerError> {
    let mut entries = Vec::with_capacity(list.entries.len());
    let mut body = BytesMut::new();
    for entry in list.entries {
        let name = parse_index_name(&entry.name).ok_or(AnswerError::Listing("name"))?;
        let data = decode_data(&entry.data).ok_or(AnswerError::Listing("data"))?;
        let len = u32::try_from(data.len()).map_err(|_| AnswerError::Listing("data length"))?;
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

/// A page of the change feed as the framed transports carry it: names,
/// versions, change numbers and lengths in the message, the summaries one
/// after another in the body. Public for the fuzz targets.
///
/// # Errors
/// [`AnswerError::Listing`] for a name or summary that does not decode.
pub fn change_list_response(list: ChangeListJson) -> Result<(Response, Bytes), AnswerError> {
    let mut entries = Vec::with_capacity(list.entries.len());
    let mut body = BytesMut::new();
    for entry in list.entries {
        let name = parse_index_name(&entry.name).ok_or(AnswerError::Listing("name"))?;
        let data = decode_data(&entry.data).ok_or(AnswerError::Listing("data"))?;
        let len = u32::try_from(data.len()).map_err(|_| AnswerError::Listing("data length"))?;
        entries.push((name, entry.version, entry.seq, len));
        body.extend_from_slice(&data);
    }
    Ok((
        Response::ChangeList {
            feed: list.feed,
            entries,
            next: list.next,
            more: list.more,
        },
        body.freeze(),
    ))
}

/// The protocol version a client speaks with a node over `https://`, from
/// the body of the node's health answer: the newest version both speak.
/// A node that names none is older than version 3 (which added the
/// field), and is taken as version 2.
///
/// # Errors
/// [`AnswerError::Json`] for a body that is not [`HealthJson`].
pub fn health_protocol(body: &[u8]) -> Result<u8, AnswerError> {
    let health: HealthJson = parse(body)?;
    let newest = health.protocol.unwrap_or(FOLDER_VERSION - 1);
    Ok(newest.min(VERSIONS[0]))
}
