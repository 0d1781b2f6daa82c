//! `https://`: the REST API (routes and JSON bodies in [`cairn_net::https`]).
//!
//! Each route is translated into a protocol [`Request`] and answered by
//! [`Node::handle`](crate::Node::handle), exactly as for the framed
//! transports, so the rules (who may read, whose references, versions,
//! quotas) live in one place; this module only maps paths, headers and
//! statuses.
//!
//! Connections: TLS 1.3 through `tokio_rustls`, then HTTP/1.1 served by
//! hyper. They share the limits of every transport ([`Shared`]):
//! - one `max_connections` permit per TCP connection, refused at once when
//!   none is left;
//! - a request head must arrive within the shorter of the idle and request
//!   timeouts of its first byte or, on a kept-alive connection, of the end
//!   of the previous answer (hyper times both with one clock, so an idle
//!   HTTPS connection lasts at most that long);
//! - a request body must arrive whole within the request timeout, and is
//!   held in memory only after taking its size from the body budget;
//! - a body larger than the route accepts is refused with 413 from its
//!   `Content-Length`, before any of it is read;
//! - an answer the peer stops reading is abandoned, and the connection
//!   closed, after the request timeout without progress;
//! - on shutdown, each connection finishes the request it is answering and
//!   closes (hyper's graceful shutdown).
//!
//! Tokens from `POST /v1/login` are 32 random bytes, handed out in
//! base64url and kept only as their BLAKE3 hash, with the user and an
//! expiry, in memory: a node restart logs everyone out.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use bytes::Bytes;
use cairn_core::Id;
use cairn_net::https::{
    self as api, DropsJson, ErrorJson, HaveJson, HealthJson, IdsJson, IndexDeletedJson,
    IndexEntryJson, IndexListJson, IndexStoredJson, InfoJson, LoginJson, ShardStoredJson,
};
use cairn_net::protocol::{ErrorBody, ErrorCode, IndexName, Request, Response};
use cairn_store::MAX_INDEX_ENTRY_LEN;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use tracing::{debug, warn};
use utoipa::OpenApi;

use super::Shared;
use crate::service::{Caller, Session};

/// Most live login tokens; logins beyond it are refused until some
/// expire.
pub const MAX_TOKENS: usize = 100_000;

/// What every HTTPS connection of a node shares.
#[derive(Debug)]
pub(crate) struct Api {
    shared: Arc<Shared>,
    tokens: Tokens,
    openapi: Bytes,
}

impl Api {
    pub(crate) fn new(shared: Arc<Shared>) -> Arc<Self> {
        let openapi = ApiDoc::openapi()
            .to_json()
            .expect("the OpenAPI document serializes");
        Arc::new(Self {
            shared,
            tokens: Tokens::default(),
            openapi: Bytes::from(openapi),
        })
    }
}

/// The peer of a connection, set on each of its requests.
#[derive(Debug, Clone, Copy)]
struct Peer(SocketAddr);

/// Accepts connections until shutdown.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    api: Arc<Api>,
    tls: Arc<rustls::ServerConfig>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let router = router(api.clone());
    let shared = &api.shared;
    loop {
        let accepted = tokio::select! {
            () = shared.shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait, do not spin.
                warn!("accepting an https:// connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = shared.connections.clone().try_acquire_owned() else {
            warn!(%peer, "connection refused: max_connections reached");
            continue;
        };
        let (shared_, acceptor, router) = (shared.clone(), acceptor.clone(), router.clone());
        shared.tracker.spawn(async move {
            if let Err(e) = connection(tcp, peer, &shared_, &acceptor, router, permit).await {
                debug!(%peer, "https:// connection ended: {e}");
            }
        });
    }
}

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    acceptor: &tokio_rustls::TlsAcceptor,
    router: Router,
    _permit: OwnedSemaphorePermit,
) -> Result<(), String> {
    let _ = tcp.set_nodelay(true);
    let stream = tokio::time::timeout(shared.request_timeout, acceptor.accept(tcp))
        .await
        .map_err(|_| "TLS handshake timed out".to_owned())?
        .map_err(|e| format!("TLS handshake failed: {e}"))?;
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(Peer(peer));
        let mut router = router.clone();
        // A Router is always ready: no need to poll it first.
        tower_service::Service::call(&mut router, request)
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(shared.idle_timeout.min(shared.request_timeout));
    let stream = WriteDeadline::new(stream, shared.request_timeout);
    let serving = http.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(serving);
    let served = tokio::select! {
        served = serving.as_mut() => served,
        () = shared.shutdown.cancelled() => {
            serving.as_mut().graceful_shutdown();
            serving.await
        }
    };
    served.map_err(|e| e.to_string())
}

/// A stream whose writes fail once they have made no progress for
/// `limit`: hyper has no write timeout of its own, and a peer that asks
/// for a shard and never reads it would otherwise hold its connection and
/// the shard's bytes forever.
struct WriteDeadline<S> {
    inner: S,
    limit: Duration,
    /// Armed while a write waits for the peer.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> WriteDeadline<S> {
    fn new(inner: S, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            stalled: None,
        }
    }

    /// Passes `poll` through, failing it once the peer has not taken any
    /// bytes for the limit.
    fn check<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let limit = self.limit;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the peer did not read its answer in time",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.check(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.check(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.check(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.check(cx, poll)
    }
}

/// The routes.
fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route(
            "/v1/shards/{id}",
            put(put_shard).get(get_shard).head(head_shard),
        )
        .route("/v1/shards/have", post(have_shards))
        .route("/v1/shards/drop", post(drop_shards))
        .route("/v1/index", get(list_index))
        .route(
            "/v1/index/{name}",
            put(put_index).get(get_index).delete(delete_index),
        )
        .route("/v1/login", post(login))
        .route("/v1/info", get(info))
        .route("/v1/health", get(health))
        .route("/v1/openapi.json", get(openapi))
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        .with_state(api)
}

/// A failure, answered as [`ErrorJson`] with the code's status.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl From<ErrorBody> for ApiError {
    fn from(body: ErrorBody) -> Self {
        Self {
            status: StatusCode::from_u16(body.code.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body,
        }
    }
}

impl ApiError {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody::new(code, message).into()
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        let mut response = (self.status, axum::Json(ErrorJson::from(&self.body))).into_response();
        if self.body.code == ErrorCode::Unauthorized {
            response.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"cairn\", Bearer"),
            );
        }
        response
    }
}

type ApiResult = Result<axum::response::Response, ApiError>;

fn json<T: serde::Serialize>(status: StatusCode, value: T) -> axum::response::Response {
    (status, axum::Json(value)).into_response()
}

fn octets(body: Bytes) -> axum::response::Response {
    (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        )],
        body,
    )
        .into_response()
}

fn unexpected(response: &Response) -> ApiError {
    warn!("the service answered {response:?} where it should not");
    ApiError::new(ErrorCode::Internal, "the node answered unexpectedly")
}

/// Live login tokens by the BLAKE3 of their bytes.
#[derive(Debug, Default)]
struct Tokens {
    live: Mutex<HashMap<[u8; 32], Token>>,
}

/// What a token stands for. Holds no secret: the token itself is only
/// known by its hash.
#[derive(Debug)]
struct Token {
    user: String,
    expires: Instant,
}

impl Tokens {
    const LIFETIME: Duration = Duration::from_secs(api::TOKEN_LIFETIME_SECS);

    /// A new token for `user`.
    fn issue(&self, user: &str) -> Result<String, ApiError> {
        let mut secret = zeroize::Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::fill(&mut secret[..])
            .map_err(|_| ApiError::new(ErrorCode::Internal, "no random bytes for a token"))?;
        let now = Instant::now();
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if live.len() >= MAX_TOKENS {
            live.retain(|_, token| token.expires > now);
            if live.len() >= MAX_TOKENS {
                return Err(ApiError::new(
                    ErrorCode::Unavailable,
                    "too many sessions; use HTTP Basic credentials or try later",
                ));
            }
        }
        live.insert(
            *blake3::hash(&secret[..]).as_bytes(),
            Token {
                user: user.to_owned(),
                expires: now + Self::LIFETIME,
            },
        );
        Ok(data_encoding::BASE64URL_NOPAD.encode(&secret[..]))
    }

    /// The user `token` stands for, if it is live.
    fn user(&self, token: &str) -> Option<String> {
        let secret = zeroize::Zeroizing::new(
            data_encoding::BASE64URL_NOPAD
                .decode(token.trim().as_bytes())
                .ok()?,
        );
        let key = *blake3::hash(&secret).as_bytes();
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        match live.get(&key) {
            Some(token) if token.expires > Instant::now() => Some(token.user.clone()),
            Some(_) => {
                live.remove(&key);
                None
            }
            None => None,
        }
    }
}

/// Credentials a request carries.
enum Credentials {
    None,
    Basic {
        user: String,
        auth_key: cairn_net::protocol::AuthKeyBytes,
    },
    Bearer(zeroize::Zeroizing<String>),
}

fn credentials(headers: &HeaderMap) -> Result<Credentials, ApiError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(Credentials::None);
    };
    let unauthorized = |m: &str| ApiError::new(ErrorCode::Unauthorized, m);
    let value = value
        .to_str()
        .map_err(|_| unauthorized("unreadable Authorization header"))?;
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok(Credentials::Bearer(zeroize::Zeroizing::new(
            rest.trim().to_owned(),
        )));
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(unauthorized(
            "credentials must be HTTP Basic or a Bearer token",
        ));
    }
    let decoded = zeroize::Zeroizing::new(
        data_encoding::BASE64
            .decode(rest.trim().as_bytes())
            .map_err(|_| unauthorized("Basic credentials are not base64"))?,
    );
    let text = std::str::from_utf8(&decoded)
        .map_err(|_| unauthorized("Basic credentials are not UTF-8"))?;
    let (user, password) = text
        .split_once(':')
        .ok_or_else(|| unauthorized("Basic credentials need user:password"))?;
    let auth_key = api::decode_auth_key(password).ok_or_else(|| {
        unauthorized("the password must be the base64 of the user's 32-byte auth key")
    })?;
    Ok(Credentials::Basic {
        user: user.to_owned(),
        auth_key,
    })
}

impl Api {
    /// The session a request acts in: anonymous, or the user its
    /// credentials prove.
    async fn session(&self, peer: Peer, headers: &HeaderMap) -> Result<Session, ApiError> {
        let mut session = Session::new(peer.0.ip());
        match credentials(headers)? {
            Credentials::None => {}
            Credentials::Basic { user, auth_key } => {
                session.caller = self
                    .shared
                    .node
                    .login(&user, &auth_key.0, peer.0.ip())
                    .await?;
            }
            Credentials::Bearer(token) => {
                let user = self.tokens.user(&token).ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::Unauthorized,
                        "the token is unknown or expired: log in again",
                    )
                })?;
                session.caller = Caller::User(user);
            }
        }
        Ok(session)
    }

    /// Answers `request` for the caller `headers` prove; a node error
    /// becomes an [`ApiError`].
    async fn handle(
        &self,
        peer: Peer,
        headers: &HeaderMap,
        request: Request,
        body: Bytes,
    ) -> Result<(Response, Bytes), ApiError> {
        let session = self.session(peer, headers).await?;
        self.handle_in(session, request, body).await
    }

    /// Answers `request` in `session`; a node error becomes an
    /// [`ApiError`].
    async fn handle_in(
        &self,
        mut session: Session,
        request: Request,
        body: Bytes,
    ) -> Result<(Response, Bytes), ApiError> {
        match self.shared.node.handle(&mut session, request, body).await {
            (Response::Error(e), _) => Err(e.into()),
            answer => Ok(answer),
        }
    }

    /// Reads a request body of at most `max` bytes within the request
    /// timeout, after taking its room in the body budget; the permit is
    /// held until the caller drops it.
    async fn body(
        &self,
        headers: &HeaderMap,
        body: Body,
        max: usize,
    ) -> Result<(Bytes, OwnedSemaphorePermit), ApiError> {
        let too_large = |len: &dyn std::fmt::Display| {
            ApiError::new(
                ErrorCode::TooLarge,
                format!("a body of {len} bytes; this route takes at most {max}"),
            )
        };
        let declared = match headers.get(CONTENT_LENGTH) {
            None => None,
            Some(value) => Some(
                value
                    .to_str()
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| ApiError::bad_request("invalid Content-Length"))?,
            ),
        };
        if let Some(len) = declared
            && len > max as u64
        {
            return Err(too_large(&len));
        }
        let room = declared.map_or(max, |len| len as usize);
        let shared = &self.shared;
        tokio::time::timeout(shared.request_timeout, async {
            let budget = shared.body_room(room).await;
            let collected = http_body_util::Limited::new(body, max)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        too_large(&format!("more than {max}"))
                    } else {
                        ApiError::bad_request(format!("the body did not arrive: {e}"))
                    }
                })?;
            Ok((collected.to_bytes(), budget))
        })
        .await
        .map_err(|_| ApiError::bad_request("the request body did not arrive in time"))?
    }
}

fn shard_id(path: Result<Path<String>, PathRejection>) -> Result<Id, ApiError> {
    let Path(text) = path.map_err(|e| ApiError::bad_request(e.body_text()))?;
    text.parse()
        .map_err(|e| ApiError::bad_request(format!("{text:?} is not a shard id: {e}")))
}

fn index_name(path: Result<Path<String>, PathRejection>) -> Result<IndexName, ApiError> {
    let Path(text) = path.map_err(|e| ApiError::bad_request(e.body_text()))?;
    api::parse_index_name(&text).ok_or_else(|| {
        ApiError::bad_request(format!("{text:?} is not an index name (64 hex digits)"))
    })
}

fn ids(body: &[u8]) -> Result<Vec<Id>, ApiError> {
    let json: IdsJson = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("expected {{\"ids\": [...]}}: {e}")))?;
    json.ids
        .iter()
        .map(|text| {
            text.parse()
                .map_err(|e| ApiError::bad_request(format!("{text:?} is not a shard id: {e}")))
        })
        .collect()
}

/// Stores a shard for the caller.
#[utoipa::path(
    put,
    path = "/v1/shards/{id}",
    tag = "shards",
    params(("id" = String, Path, description = "The shard id: BLAKE3 of its bytes, 64 hex digits", pattern = r"^[0-9a-fA-F]{64}$")),
    request_body(content = inline(Octets), content_type = "application/octet-stream", description = "The shard's bytes"),
    responses(
        (status = 201, description = "Stored: the bytes were written", body = ShardStoredJson),
        (status = 200, description = "Stored: the node already had the bytes", body = ShardStoredJson),
        (status = 400, description = "Malformed id", body = ErrorJson),
        (status = 401, description = "No or wrong credentials", body = ErrorJson),
        (status = 413, description = "Larger than the node accepts", body = ErrorJson),
        (status = 422, description = "The bytes do not hash to the id", body = ErrorJson),
        (status = 507, description = "Quota exceeded or disk full", body = ErrorJson),
    ),
    security(("basic" = []), ("bearer" = []))
)]
async fn put_shard(
    State(api): State<Arc<Api>>,
    Extension(peer): Extension<Peer>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let id = shard_id(path)?;
    let max = api.shared.node.limits().max_shard_len;
    // Wrong credentials are refused before the body is read.
    let session = api.session(peer, &headers).await?;
    let (body, budget) = api.body(&headers, body, max).await?;
    let answer = api.handle_in(session, Request::PutShard { id }, body).await;
    drop(budget);
    match answer? {
        (Response::ShardStored { written }, _) => {
            let status = if written {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(json(status, ShardStoredJson { written }))
        }
        (other, _) => Err(unexpected(&other)),
    }
}

/// Reads a shard.
#[utoipa::path(
    get,
    path = "/v1/shards/{id}",
    tag = "shards",
    params(("id" = String, Path, description = "The shard id, 64 hex digits", pattern = r"^[0-9a-fA-F]{64}$")),
    responses(
        (status = 200, description = "The shard's bytes", body = inline(Octets), content_type = "application/octet-stream"),
        (status = 400, description = "Malformed id", body = ErrorJson),
        (status = 401, description = "Credentials needed: the node does not allow public reads", body = ErrorJson),
        (status = 404, description = "No such shard", body = ErrorJson),
        (status = 500, description = "The shard is damaged on the node (now quarantined)", body = ErrorJson),
    ),
    security((), ("basic" = []), ("bearer" = []))
)]
async fn get_shard(
    State(api): State<Arc<Api>>,
    Extension(peer): Extension<Peer>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> ApiResult {
    let id = shard_id(path)?;
    match api
        .handle(peer, &headers, Request::GetShard { id }, Bytes::new())
        .await?
    {
        (Response::Shard, bytes) => Ok(octets(bytes)),
        (other, _) => Err(unexpected(&other)),
    }
}

/// Whether the node stores a shard.
#[utoipa::path(
    head,
    path = "/v1/shards/{id}",
    tag = "shards",
    params(("id" = String, Path, description = "The shard id, 64 hex digits", pattern = r"^[0-9a-fA-F]{64}$")),
    responses(
        (status = 200, description = "The node stores the shard"),
        (status = 404, description = "It does not"),
        (status = 400, description = "Malformed id"),
        (status = 401, description = "Credentials needed"),
    ),
    security((), ("basic" = []), ("bearer" = []))
)]
async fn head_shard(
    State(api): State<Arc<Api>>,
    Extension(peer): Extension<Peer>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> axum::response::Response {
    let answer = async {
        let id = shard_id(path)?;
        let request = Request::HasShards { ids: vec![id] };
        api.handle(peer, &headers, request, Bytes::new()).await
    };
    match answer.await {
        Ok((Response::Has { stored, .. }, _)) if stored == [true] => StatusCode::OK,
        Ok((Response::Has { .. }, _)) => StatusCode::NOT_FOUND,
        Ok((other, _)) => unexpected(&other).status,
        Err(e) => e.status,
    }
    .into_response()
}

/// Which of a batch of shards the node stores, and which the caller
/// references.
#[utoipa::path(
    post,
    path = "/v1/shards/have",
    tag = "shards",
    request_body = IdsJson,
    responses(
        (status = 200, description = "One flag per id, in order", body = HaveJson),
        (status = 400, description = "Malformed JSON or id", body = ErrorJson),
        (status = 413, description = "Too many ids", body = ErrorJson),
    ),
    security((), ("basic" = []), ("bearer" = []))
)]
async fn have_shards(
    State(api): State<Arc<Api>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let (body, budget) = api.body(&headers, body, api::MAX_JSON_BODY).await?;
    let ids = ids(&body)?;
    drop(budget);
    match api
        .handle(peer, &headers, Request::HasShards { ids }, Bytes::new())
        .await?
    {
        (Response::Has { stored, mine }, _) => Ok(json(StatusCode::OK, HaveJson { stored, mine })),
        (other, _) => Err(unexpected(&other)),
    }
}

/// Drops the caller's references to a batch of shards; a shard nobody
/// references any more is deleted.
#[utoipa::path(
    post,
    path = "/v1/shards/drop",
    tag = "shards",
    request_body = IdsJson,
    responses(
        (status = 200, description = "One outcome per id, in order", body = DropsJson),
        (status = 400, description = "Malformed JSON or id", body = ErrorJson),
        (status = 401, description = "No or wrong credentials", body = ErrorJson),
        (status = 413, description = "Too many ids", body = ErrorJson),
    ),
    security(("basic" = []), ("bearer" = []))
)]
async fn drop_shards(
    State(api): State<Arc<Api>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let (body, budget) = api.body(&headers, body, api::MAX_JSON_BODY).await?;
    let ids = ids(&body)?;
    drop(budget);
    match api
        .handle(peer, &headers, Request::DropShards { ids }, Bytes::new())
        .await?
    {
        (Response::Dropped { outcomes }, _) => Ok(json(
            StatusCode::OK,
            DropsJson {
                outcomes: outcomes.into_iter().map(Into::into).collect(),
            },
        )),
        (other, _) => Err(unexpected(&other)),
    }
}

// Only describes raw bodies in the OpenAPI document; never built.
/// Raw bytes: a shard, or an index entry's data.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
struct Octets(Vec<u8>);

/// `?version=N` of an index put.
#[derive(Debug, Deserialize)]
struct VersionQuery {
    version: Option<u64>,
}

/// Stores one of the caller's index entries.
#[utoipa::path(
    put,
    path = "/v1/index/{name}",
    tag = "index",
    params(
        ("name" = String, Path, description = "The entry's name, 64 hex digits", pattern = r"^[0-9a-fA-F]{64}$"),
        // The cairn-version header may stand in for the query, which
        // OpenAPI cannot say ("one of two parameters is required"): the
        // document names the query as required, the way clients send it.
        ("version" = u64, Query, description = "The entry's version (a client that cannot set the query may send the cairn-version header instead)", minimum = 0, maximum = 18_446_744_073_709_551_615_u64),
    ),
    request_body(content = inline(Octets), content_type = "application/octet-stream", description = "The entry's (sealed) data; may be empty"),
    responses(
        (status = 200, description = "Stored", body = IndexStoredJson),
        (status = 400, description = "Malformed name or version", body = ErrorJson),
        (status = 401, description = "No or wrong credentials", body = ErrorJson),
        (status = 409, description = "A newer version, or another entry at this version, is stored", body = ErrorJson),
        (status = 413, description = "Data larger than the node accepts", body = ErrorJson),
    ),
    security(("basic" = []), ("bearer" = []))
)]
async fn put_index(
    State(api): State<Arc<Api>>,
    Extension(peer): Extension<Peer>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<VersionQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let name = index_name(path)?;
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let from_header = match headers.get(api::VERSION_HEADER) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::bad_request(format!("{} must be a number", api::VERSION_HEADER))
                })?,
        ),
    };
    let version = query.version.or(from_header).ok_or_else(|| {
        ApiError::bad_request(format!(
            "give the version as ?version=N or in the {} header",
            api::VERSION_HEADER
        ))
    })?;
    let session = api.session(peer, &headers).await?;
    let (body, budget) = api.body(&headers, body, MAX_INDEX_ENTRY_LEN).await?;
    let answer = api
        .handle_in(session, Request::PutIndex { name, version }, body)
        .await;
    drop(budget);
    match answer? {
        (Response::IndexStored { replaced }, _) => {
            Ok(json(StatusCode::OK, IndexStoredJson { replaced }))
        }
        (other, _) => Err(unexpected(&other)),
    }
}

/// Reads one of the caller's index entries.
#[utoipa::path(
    get,
    path = "/v1/index/{name}",
    tag = "index",
    params(("name" = String, Path, description = "The entry's name, 64 hex digits", pattern = r"^[0-9a-fA-F]{64}$")),
    responses(
        (status = 200, description = "The entry's data", body = inline(Octets), content_type = "application/octet-stream",
            headers(("cairn-version" = u64, description = "The entry's version"))),
        (status = 400, description = "Malformed name", body = ErrorJson),
        (status = 401, description = "No or wrong credentials", body = ErrorJson),
        (status = 404, description = "No such entry", body = ErrorJson),
    ),
    security(("basic" = []), ("bearer" = []))
)]
async fn get_index(
    State(api): State<Arc<Api>>,
    Extension(peer): Extension<Peer>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> ApiResult {
    let name = index_name(path)?;
    match api
        .handle(peer, &headers, Request::GetIndex { name }, Bytes::new())
        .await?
    {
        (Response::IndexEntry { version }, data) => {
            let mut response = octets(data);
            response
                .headers_mut()
                .insert(api::VERSION_HEADER, HeaderValue::from(version));
            Ok(response)
        }
        (other, _) => Err(unexpected(&other)),
    }
}

/// Deletes one of the caller's index entries.
#[utoipa::path(
    delete,
    path = "/v1/index/{name}",
    tag = "index",
    params(("name" = String, Path, description = "The entry's name, 64 hex digits", pattern = r"^[0-9a-fA-F]{64}$")),
    responses(
        (status = 200, description = "Gone (version null: there was none)", body = IndexDeletedJson),
        (status = 400, description = "Malformed name", body = ErrorJson),
        (status = 401, description = "No or wrong credentials", body = ErrorJson),
    ),
    security(("basic" = []), ("bearer" = []))
)]
async fn delete_index(
    State(api): State<Arc<Api>>,
    Extension(peer): Extension<Peer>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> ApiResult {
    let name = index_name(path)?;
    match api
        .handle(peer, &headers, Request::DeleteIndex { name }, Bytes::new())
        .await?
    {
        (Response::IndexDeleted { version }, _) => {
            Ok(json(StatusCode::OK, IndexDeletedJson { version }))
        }
        (other, _) => Err(unexpected(&other)),
    }
}

/// `?after=…&limit=…` of an index listing.
#[derive(Debug, Deserialize)]
struct ListQuery {
    after: Option<String>,
    limit: Option<u32>,
}

/// Lists the caller's index entries in name order.
#[utoipa::path(
    get,
    path = "/v1/index",
    tag = "index",
    params(
        ("after" = Option<String>, Query, description = "List names strictly after this one (64 hex digits)", pattern = r"^[0-9a-fA-F]{64}$"),
        ("limit" = Option<u32>, Query, description = "At most this many entries (default 1000; more is taken as 1000)", minimum = 0, maximum = 4_294_967_295_u64),
    ),
    responses(
        (status = 200, description = "A page of entries", body = IndexListJson),
        (status = 400, description = "Malformed query", body = ErrorJson),
        (status = 401, description = "No or wrong credentials", body = ErrorJson),
    ),
    security(("basic" = []), ("bearer" = []))
)]
async fn list_index(
    State(api): State<Arc<Api>>,
    Extension(peer): Extension<Peer>,
    query: Result<Query<ListQuery>, QueryRejection>,
    headers: HeaderMap,
) -> ApiResult {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let after = query
        .after
        .map(|text| {
            api::parse_index_name(&text).ok_or_else(|| {
                ApiError::bad_request(format!("after={text:?} is not an index name"))
            })
        })
        .transpose()?;
    let limit = query.limit.unwrap_or(crate::service::MAX_LIST_PAGE as u32);
    match api
        .handle(
            peer,
            &headers,
            Request::ListIndex { after, limit },
            Bytes::new(),
        )
        .await?
    {
        (Response::IndexList { entries, more }, mut data) => {
            let mut listed = Vec::with_capacity(entries.len());
            for (name, version, len) in entries {
                let len = (len as usize).min(data.len());
                listed.push(IndexEntryJson {
                    name: api::index_name_hex(&name),
                    version,
                    data: api::encode_data(&data.split_to(len)),
                });
            }
            Ok(json(
                StatusCode::OK,
                IndexListJson {
                    entries: listed,
                    more,
                },
            ))
        }
        (other, _) => Err(unexpected(&other)),
    }
}

/// Checks HTTP Basic credentials and hands out a token for them.
#[utoipa::path(
    post,
    path = "/v1/login",
    tag = "session",
    responses(
        (status = 200, description = "Logged in", body = LoginJson),
        (status = 401, description = "Unknown user or wrong auth key (repeated failures are slowed down)", body = ErrorJson),
        (status = 503, description = "Too many live tokens", body = ErrorJson),
    ),
    security(("basic" = []))
)]
async fn login(
    State(api): State<Arc<Api>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
) -> ApiResult {
    let Credentials::Basic { user, auth_key } = credentials(&headers)? else {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "log in with HTTP Basic credentials: the user, and the base64 of the auth key",
        ));
    };
    let mut session = Session::new(peer.0.ip());
    let request = Request::Login { user, auth_key };
    match api
        .shared
        .node
        .handle(&mut session, request, Bytes::new())
        .await
    {
        (Response::LoggedIn { user }, _) => {
            let token = api.tokens.issue(&user)?;
            Ok(json(
                StatusCode::OK,
                LoginJson {
                    user,
                    token,
                    token_type: "Bearer".into(),
                    expires_in: api::TOKEN_LIFETIME_SECS,
                },
            ))
        }
        (Response::Error(e), _) => Err(e.into()),
        (other, _) => Err(unexpected(&other)),
    }
}

/// About the node.
#[utoipa::path(
    get,
    path = "/v1/info",
    tag = "node",
    responses(
        (status = 200, description = "The node's id, version and capacity", body = InfoJson),
        (status = 401, description = "Wrong credentials (none are needed)", body = ErrorJson),
    ),
    security((), ("basic" = []), ("bearer" = []))
)]
async fn info(
    State(api): State<Arc<Api>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
) -> ApiResult {
    match api
        .handle(peer, &headers, Request::Info, Bytes::new())
        .await?
    {
        (Response::Info(info), _) => Ok(json(StatusCode::OK, InfoJson::from(&info))),
        (other, _) => Err(unexpected(&other)),
    }
}

/// Whether the node is up. Needs no credentials.
#[utoipa::path(
    get,
    path = "/v1/health",
    tag = "node",
    responses((status = 200, description = "The node serves", body = HealthJson)),
    security(())
)]
async fn health() -> axum::response::Response {
    json(
        StatusCode::OK,
        HealthJson {
            status: "ok".into(),
        },
    )
}

/// This API, described in OpenAPI.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "node",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")),
    security(())
)]
async fn openapi(State(api): State<Arc<Api>>) -> axum::response::Response {
    (
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        api.openapi.clone(),
    )
        .into_response()
}

async fn no_route() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route; see /v1/openapi.json")
}

async fn no_method() -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        body: ErrorBody::new(
            ErrorCode::BadRequest,
            "this route does not take that method; see /v1/openapi.json",
        ),
    }
}

/// The OpenAPI document of the API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "cairn storage node",
        description = "Stores and serves encrypted shards and index entries. Shard ids and index names are 64 hex digits. Errors are {\"error\": code, \"message\": text}.",
    ),
    paths(
        put_shard, get_shard, head_shard, have_shards, drop_shards,
        put_index, get_index, delete_index, list_index,
        login, info, health, openapi,
    ),
    components(schemas(
        ErrorJson, IdsJson, HaveJson, DropsJson, cairn_net::https::DroppedJson, ShardStoredJson,
        IndexStoredJson, IndexDeletedJson, IndexEntryJson, IndexListJson, LoginJson, InfoJson,
        HealthJson,
    )),
    modifiers(&SecuritySchemes, &EmptyIndexData),
)]
struct ApiDoc;

/// Marks the body of an index put optional: an entry may hold no data, and
/// an empty body is how HTTP sends none (utoipa marks every body
/// required).
struct EmptyIndexData;

impl utoipa::Modify for EmptyIndexData {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let body = openapi
            .paths
            .paths
            .get_mut("/v1/index/{name}")
            .and_then(|item| item.put.as_mut())
            .and_then(|put| put.request_body.as_mut());
        if let Some(utoipa::openapi::RefOr::T(body)) = body {
            body.required = Some(utoipa::openapi::Required::False);
        }
    }
}

/// Declares the `basic` and `bearer` schemes the paths refer to.
struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut basic = Http::new(HttpAuthScheme::Basic);
        basic.description = Some("The user name, and as password the base64 of the user's 32-byte auth key for this node".into());
        components.add_security_scheme("basic", SecurityScheme::Http(basic));
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.description = Some("A token from POST /v1/login".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_kept_hashed_and_expire() {
        let tokens = Tokens::default();
        let token = tokens.issue("alice").unwrap();
        assert_eq!(tokens.user(&token).as_deref(), Some("alice"));
        assert_eq!(tokens.user("not a token"), None);
        let other = tokens.issue("alice").unwrap();
        assert_ne!(token, other);
        {
            let live = tokens.live.lock().unwrap();
            let raw = data_encoding::BASE64URL_NOPAD
                .decode(token.as_bytes())
                .unwrap();
            // Only the hash is a key: the token's bytes are stored nowhere.
            assert!(!live.contains_key(&<[u8; 32]>::try_from(raw.as_slice()).unwrap()));
            assert!(live.contains_key(blake3::hash(&raw).as_bytes()));
        }
        for token in tokens.live.lock().unwrap().values_mut() {
            token.expires = Instant::now() - Duration::from_secs(1);
        }
        assert_eq!(tokens.user(&token), None);
    }

    #[test]
    fn the_openapi_document_names_every_route() {
        let doc: serde_json::Value =
            serde_json::from_str(&ApiDoc::openapi().to_json().unwrap()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        for path in [
            "/v1/shards/{id}",
            "/v1/shards/have",
            "/v1/shards/drop",
            "/v1/index",
            "/v1/index/{name}",
            "/v1/login",
            "/v1/info",
            "/v1/health",
            "/v1/openapi.json",
        ] {
            assert!(paths.contains_key(path), "{path} missing");
        }
        for method in ["put", "get", "head"] {
            assert!(paths["/v1/shards/{id}"].get(method).is_some(), "{method}");
        }
        assert!(doc["components"]["schemas"]["ErrorJson"].is_object());
        // What schemathesis (scripts/schemathesis.sh) found undocumented:
        // the form of ids and names, the version an index put requires,
        // and that an index entry may be empty.
        let hex = "^[0-9a-fA-F]{64}$";
        let shard = &paths["/v1/shards/{id}"]["get"]["parameters"][0];
        assert_eq!(shard["schema"]["pattern"], hex);
        assert_eq!(
            doc["components"]["schemas"]["IdsJson"]["properties"]["ids"]["items"]["pattern"],
            hex
        );
        let put_index = &paths["/v1/index/{name}"]["put"];
        assert_eq!(put_index["parameters"][0]["schema"]["pattern"], hex);
        assert_eq!(put_index["parameters"][1]["name"], "version");
        assert_eq!(put_index["parameters"][1]["required"], true);
        assert_eq!(put_index["requestBody"]["required"], false);
        let limit = &paths["/v1/index"]["get"]["parameters"][1];
        assert_eq!(limit["schema"]["maximum"], u64::from(u32::MAX));
        assert!(doc["components"]["securitySchemes"]["basic"].is_object());
    }
}
