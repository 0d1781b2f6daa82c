//! The table: one [`Route`] per route of the API, in [`ROUTES`].

use http::Method;

use crate::protocol::{Limits, MAX_SUMMARY_LEN, Request};

/// Prefix of every route.
pub const API_PREFIX: &str = "/v1";

/// Header carrying an index entry's version (answer of `GET
/// /v1/index/{name}`; optional in a `PUT` instead of `?version=`).
pub const VERSION_HEADER: &str = "cairn-version";

/// Largest JSON request body the node reads: a full batch of hex ids and
/// some room.
pub const MAX_JSON_BODY: usize = 2 * 1024 * 1024;

/// What a route does: one per row of [`ROUTES`], in its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Stores a shard ([`Request::PutShard`]).
    PutShard,
    /// Reads a shard ([`Request::GetShard`]).
    GetShard,
    /// Whether the node stores one shard ([`Request::HasShards`] of one id).
    HeadShard,
    /// Which of a batch of shards the node stores ([`Request::HasShards`]).
    HaveShards,
    /// Drops references to a batch of shards ([`Request::DropShards`]).
    DropShards,
    /// Stores an index entry ([`Request::PutIndex`], or
    /// [`Request::PutEntry`] with a folder or a summary length).
    PutIndex,
    /// Reads an index entry ([`Request::GetIndex`]).
    GetIndex,
    /// Deletes an index entry ([`Request::DeleteIndex`]).
    DeleteIndex,
    /// Lists index entries ([`Request::ListIndex`]).
    ListIndex,
    /// Lists one folder's entries, with their summaries
    /// ([`Request::ListFolder`]).
    ListFolder,
    /// A page of the change feed ([`Request::Changes`]).
    Changes,
    /// Checks Basic credentials and hands out a token ([`Request::Login`]).
    Login,
    /// About the node ([`Request::Info`]).
    Info,
    /// Whether the node is up ([`Request::Ping`]).
    Health,
    /// The OpenAPI document; no protocol request.
    Describe,
}

impl Op {
    /// The route a client sends `request` as. Every request has one:
    /// [`Request::HasShards`] goes as `POST /v1/shards/have` (`HEAD` asks
    /// for one id only), [`Request::Ping`] as the health check, and
    /// [`Request::PutEntry`] as an index put with a folder and a summary
    /// length.
    pub fn of(request: &Request) -> Self {
        match request {
            Request::Login { .. } => Self::Login,
            Request::Info => Self::Info,
            Request::PutShard { .. } => Self::PutShard,
            Request::GetShard { .. } => Self::GetShard,
            Request::HasShards { .. } => Self::HaveShards,
            Request::DropShards { .. } => Self::DropShards,
            Request::PutIndex { .. } | Request::PutEntry { .. } => Self::PutIndex,
            Request::GetIndex { .. } => Self::GetIndex,
            Request::ListIndex { .. } => Self::ListIndex,
            Request::DeleteIndex { .. } => Self::DeleteIndex,
            Request::Ping => Self::Health,
            Request::ListFolder { .. } => Self::ListFolder,
            Request::Changes { .. } => Self::Changes,
        }
    }

    /// Its row of [`ROUTES`].
    pub fn route(self) -> &'static Route {
        &ROUTES[self as usize]
    }

    /// Its OpenAPI `operationId`, which names it in logs too.
    pub fn name(self) -> &'static str {
        match self {
            Self::PutShard => "put_shard",
            Self::GetShard => "get_shard",
            Self::HeadShard => "head_shard",
            Self::HaveShards => "have_shards",
            Self::DropShards => "drop_shards",
            Self::PutIndex => "put_index",
            Self::GetIndex => "get_index",
            Self::DeleteIndex => "delete_index",
            Self::ListIndex => "list_index",
            Self::ListFolder => "list_folder",
            Self::Changes => "changes",
            Self::Login => "login",
            Self::Info => "info",
            Self::Health => "health",
            Self::Describe => "openapi",
        }
    }
}

/// One route of the API: a row of [`ROUTES`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Route {
    /// What it does.
    pub op: Op,
    /// Its HTTP method.
    pub method: Method,
    /// Its path, with the parameter (if any) in braces: the syntax of both
    /// OpenAPI and axum.
    pub path: &'static str,
    /// What the path's parameter names, if it has one.
    pub param: Option<Param>,
    /// What its query says.
    pub query: Query,
    /// What its body holds.
    pub body: Body,
    /// Which credentials it takes.
    pub auth: Auth,
    /// What it answers on success.
    pub answer: Answer,
    /// Its words in the OpenAPI document.
    pub doc: Doc,
}

/// What a path parameter names; always 64 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    /// A shard id, `{id}`.
    Shard,
    /// An index entry's name, `{name}`.
    Index,
    /// A folder tag, `{folder}`.
    Folder,
}

impl Param {
    /// Its name in the path template.
    pub fn name(self) -> &'static str {
        match self {
            Self::Shard => "id",
            Self::Index => "name",
            Self::Folder => "folder",
        }
    }
}

/// What a route's query says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    /// Nothing (any query is ignored).
    None,
    /// An index put: `?version=N`, required unless the [`VERSION_HEADER`]
    /// header gives it; `&folder={tag}&summary_len=L`, each optional (see
    /// [`Head::request`](super::Head::request) for what their absence
    /// means).
    Entry,
    /// `?after={name}&limit=N`, both optional.
    Page,
    /// `?since=N&folder={tag}&limit=N`, each optional.
    Changes,
}

/// What a route's request body holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// No body; one sent is not read.
    None,
    /// A shard's bytes, `application/octet-stream`.
    Shard,
    /// An index entry's data, `application/octet-stream`, possibly empty.
    IndexData,
    /// [`IdsJson`](super::IdsJson), at most [`MAX_JSON_BODY`] bytes.
    Ids,
}

/// Which credentials a route takes (see the [module docs](super#credentials)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// None: any `Authorization` header is ignored.
    None,
    /// HTTP Basic credentials, which are the request (`POST /v1/login`).
    Login,
    /// Basic or bearer credentials, or none: the node decides whether an
    /// anonymous caller may (shards are readable without credentials while
    /// the node allows public reads).
    Optional,
    /// Basic or bearer credentials: the route acts for a user.
    User,
}

/// What a route answers on success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// JSON, of the schema named.
    Json(&'static str),
    /// Raw bytes: a shard.
    Octets,
    /// Raw bytes, an index entry's data, with its version in the
    /// [`VERSION_HEADER`] header.
    Entry,
    /// A status alone: 200 for yes, 404 for no (`HEAD`).
    Presence,
    /// The OpenAPI document.
    Document,
}

impl Answer {
    /// The most bytes a client reads of such an answer's body.
    pub fn max_len(self, limits: &Limits) -> usize {
        match self {
            Self::Octets => limits.max_shard_len,
            Self::Entry => limits.max_message_len,
            Self::Json(_) | Self::Document => limits.max_frame_len(),
            Self::Presence => 0,
        }
    }
}

/// A route's words in the OpenAPI document.
#[derive(Debug)]
#[non_exhaustive]
pub struct Doc {
    /// The group it is listed under.
    pub tag: &'static str,
    /// What it does, in a sentence or two.
    pub summary: &'static str,
    /// What its path parameter is (empty without one).
    pub param: &'static str,
    /// What its request body is (empty: said by the schema).
    pub body: &'static str,
    /// Every status it answers, with what it means: success (below 300)
    /// with the route's [`Answer`], failure with [`ErrorJson`](super::ErrorJson).
    pub statuses: &'static [(u16, &'static str)],
}

/// Words shared by several routes.
const SHARD_ID: &str = "The shard id, 64 hex digits";
const ENTRY_NAME: &str = "The entry's name, 64 hex digits";
const NO_CREDENTIALS: &str = "No or wrong credentials";

/// The largest `summary_len` a query may give, for the OpenAPI document.
pub(super) const MAX_SUMMARY_QUERY: u64 = MAX_SUMMARY_LEN as u64;

/// The routes, in the order of [`Op`]: the one map between protocol
/// requests and the REST API.
pub static ROUTES: [Route; 15] = [
    Route {
        op: Op::PutShard,
        method: Method::PUT,
        path: "/v1/shards/{id}",
        param: Some(Param::Shard),
        query: Query::None,
        body: Body::Shard,
        auth: Auth::User,
        answer: Answer::Json("ShardStoredJson"),
        doc: Doc {
            tag: "shards",
            summary: "Stores a shard for the caller.",
            param: "The shard id: BLAKE3 of its bytes, 64 hex digits",
            body: "The shard's bytes",
            statuses: &[
                (201, "Stored: the bytes were written"),
                (200, "Stored: the node already had the bytes"),
                (400, "Malformed id"),
                (401, NO_CREDENTIALS),
                (413, "Larger than the node accepts"),
                (422, "The bytes do not hash to the id"),
                (507, "Quota exceeded or disk full"),
            ],
        },
    },
    Route {
        op: Op::GetShard,
        method: Method::GET,
        path: "/v1/shards/{id}",
        param: Some(Param::Shard),
        query: Query::None,
        body: Body::None,
        auth: Auth::Optional,
        answer: Answer::Octets,
        doc: Doc {
            tag: "shards",
            summary: "Reads a shard.",
            param: SHARD_ID,
            body: "",
            statuses: &[
                (200, "The shard's bytes"),
                (400, "Malformed id"),
                (
                    401,
                    "Credentials needed: the node does not allow public reads",
                ),
                (404, "No such shard"),
                (500, "The shard is damaged on the node (now quarantined)"),
            ],
        },
    },
    Route {
        op: Op::HeadShard,
        method: Method::HEAD,
        path: "/v1/shards/{id}",
        param: Some(Param::Shard),
        query: Query::None,
        body: Body::None,
        auth: Auth::Optional,
        answer: Answer::Presence,
        doc: Doc {
            tag: "shards",
            summary: "Whether the node stores a shard.",
            param: SHARD_ID,
            body: "",
            statuses: &[
                (200, "The node stores the shard"),
                (404, "It does not"),
                (400, "Malformed id"),
                (401, "Credentials needed"),
            ],
        },
    },
    Route {
        op: Op::HaveShards,
        method: Method::POST,
        path: "/v1/shards/have",
        param: None,
        query: Query::None,
        body: Body::Ids,
        auth: Auth::Optional,
        answer: Answer::Json("HaveJson"),
        doc: Doc {
            tag: "shards",
            summary: "Which of a batch of shards the node stores, and which the caller\nreferences.",
            param: "",
            body: "",
            statuses: &[
                (200, "One flag per id, in order"),
                (400, "Malformed JSON or id"),
                (
                    401,
                    "Wrong credentials, or none where the node does not allow public reads",
                ),
                (413, "Too many ids"),
            ],
        },
    },
    Route {
        op: Op::DropShards,
        method: Method::POST,
        path: "/v1/shards/drop",
        param: None,
        query: Query::None,
        body: Body::Ids,
        auth: Auth::User,
        answer: Answer::Json("DropsJson"),
        doc: Doc {
            tag: "shards",
            summary: "Drops the caller's references to a batch of shards; a shard nobody\nreferences any more is deleted.",
            param: "",
            body: "",
            statuses: &[
                (200, "One outcome per id, in order"),
                (400, "Malformed JSON or id"),
                (401, NO_CREDENTIALS),
                (413, "Too many ids"),
            ],
        },
    },
    Route {
        op: Op::PutIndex,
        method: Method::PUT,
        path: "/v1/index/{name}",
        param: Some(Param::Index),
        query: Query::Entry,
        body: Body::IndexData,
        auth: Auth::User,
        answer: Answer::Json("IndexStoredJson"),
        doc: Doc {
            tag: "index",
            summary: "Stores one of the caller's index entries, listed in a folder (by default the\nlegacy folder, all zeros) with its first summary_len bytes as its summary (by\ndefault all of it).",
            param: ENTRY_NAME,
            body: "The entry's (sealed) data; may be empty",
            statuses: &[
                (200, "Stored"),
                (
                    400,
                    "Malformed name, version, folder or summary length; or a summary longer than the data",
                ),
                (401, NO_CREDENTIALS),
                (
                    409,
                    "A newer version, or another entry at this version, is stored",
                ),
                (413, "Data larger than the node accepts"),
            ],
        },
    },
    Route {
        op: Op::GetIndex,
        method: Method::GET,
        path: "/v1/index/{name}",
        param: Some(Param::Index),
        query: Query::None,
        body: Body::None,
        auth: Auth::User,
        answer: Answer::Entry,
        doc: Doc {
            tag: "index",
            summary: "Reads one of the caller's index entries.",
            param: ENTRY_NAME,
            body: "",
            statuses: &[
                (200, "The entry's data"),
                (400, "Malformed name"),
                (401, NO_CREDENTIALS),
                (404, "No such entry"),
            ],
        },
    },
    Route {
        op: Op::DeleteIndex,
        method: Method::DELETE,
        path: "/v1/index/{name}",
        param: Some(Param::Index),
        query: Query::None,
        body: Body::None,
        auth: Auth::User,
        answer: Answer::Json("IndexDeletedJson"),
        doc: Doc {
            tag: "index",
            summary: "Deletes one of the caller's index entries.",
            param: ENTRY_NAME,
            body: "",
            statuses: &[
                (200, "Gone (version null: there was none)"),
                (400, "Malformed name"),
                (401, NO_CREDENTIALS),
            ],
        },
    },
    Route {
        op: Op::ListIndex,
        method: Method::GET,
        path: "/v1/index",
        param: None,
        query: Query::Page,
        body: Body::None,
        auth: Auth::User,
        answer: Answer::Json("IndexListJson"),
        doc: Doc {
            tag: "index",
            summary: "Lists the caller's index entries in name order.",
            param: "",
            body: "",
            statuses: &[
                (200, "A page of entries"),
                (400, "Malformed query"),
                (401, NO_CREDENTIALS),
            ],
        },
    },
    Route {
        op: Op::ListFolder,
        method: Method::GET,
        path: "/v1/folders/{folder}",
        param: Some(Param::Folder),
        query: Query::Page,
        body: Body::None,
        auth: Auth::User,
        answer: Answer::Json("IndexListJson"),
        doc: Doc {
            tag: "index",
            summary: "Lists the caller's index entries in one folder in name order, each with its\nsummary only.",
            param: "The folder's tag, 64 hex digits",
            body: "",
            statuses: &[
                (200, "A page of entries"),
                (400, "Malformed folder or query"),
                (401, NO_CREDENTIALS),
            ],
        },
    },
    Route {
        op: Op::Changes,
        method: Method::GET,
        path: "/v1/changes",
        param: None,
        query: Query::Changes,
        body: Body::None,
        auth: Auth::User,
        answer: Answer::Json("ChangeListJson"),
        doc: Doc {
            tag: "index",
            summary: "The caller's index entries changed after a change number, in change order,\neach once with its summary: a page of the node's change feed.",
            param: "",
            body: "",
            statuses: &[
                (200, "A page of the change feed"),
                (400, "Malformed query"),
                (401, NO_CREDENTIALS),
            ],
        },
    },
    Route {
        op: Op::Login,
        method: Method::POST,
        path: "/v1/login",
        param: None,
        query: Query::None,
        body: Body::None,
        auth: Auth::Login,
        answer: Answer::Json("LoginJson"),
        doc: Doc {
            tag: "session",
            summary: "Checks HTTP Basic credentials and hands out a token for them.",
            param: "",
            body: "",
            statuses: &[
                (200, "Logged in"),
                (
                    401,
                    "Unknown user or wrong auth key (repeated failures are slowed down)",
                ),
                (503, "Too many live tokens"),
            ],
        },
    },
    Route {
        op: Op::Info,
        method: Method::GET,
        path: "/v1/info",
        param: None,
        query: Query::None,
        body: Body::None,
        auth: Auth::Optional,
        answer: Answer::Json("InfoJson"),
        doc: Doc {
            tag: "node",
            summary: "About the node.",
            param: "",
            body: "",
            statuses: &[
                (200, "The node's id, version and capacity"),
                (401, "Wrong credentials (none are needed)"),
            ],
        },
    },
    Route {
        op: Op::Health,
        method: Method::GET,
        path: "/v1/health",
        param: None,
        query: Query::None,
        body: Body::None,
        auth: Auth::None,
        answer: Answer::Json("HealthJson"),
        doc: Doc {
            tag: "node",
            summary: "Whether the node is up. Needs no credentials.",
            param: "",
            body: "",
            statuses: &[(200, "The node serves")],
        },
    },
    Route {
        op: Op::Describe,
        method: Method::GET,
        path: "/v1/openapi.json",
        param: None,
        query: Query::None,
        body: Body::None,
        auth: Auth::None,
        answer: Answer::Document,
        doc: Doc {
            tag: "node",
            summary: "This API, described in OpenAPI.",
            param: "",
            body: "",
            statuses: &[(200, "The OpenAPI document")],
        },
    },
];

impl Route {
    /// The route a client sends `request` as.
    pub fn of(request: &Request) -> &'static Self {
        Op::of(request).route()
    }

    /// The path with its parameter filled in: `value` in place of `{id}`
    /// or `{name}`. A route without a parameter keeps its path.
    pub fn path_for(&self, value: &str) -> String {
        match self.param {
            Some(param) => self.path.replace(&format!("{{{}}}", param.name()), value),
            None => self.path.to_owned(),
        }
    }
}
