//! `https://`: the REST API, served from its table ([`cairn_net::rest`]).
//!
//! Every row of [`rest::ROUTES`] is served by one path, [`serve`]: the
//! request's head checked by the table (path parameter, query), the
//! caller's session from its credentials, the body the row takes, the
//! protocol [`Request`] built by the table and answered by
//! [`Node::handle`](crate::Node::handle), exactly as for the framed
//! transports, and the answer written as the table says. So the rules (who
//! may read, whose references, versions, quotas) live in the service, the
//! map between requests and routes in the table, and this module only
//! moves bytes, credentials and limits.
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
use axum::extract::{FromRequestParts, Path, State};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{MethodFilter, on};
use bytes::Bytes;
use cairn_net::protocol::{ErrorBody, ErrorCode, Response};
use cairn_net::rest::{
    self, Answer, Auth, Body, Credentials, ErrorJson, HeadParts, Op, Reply, Route,
};
use cairn_store::MAX_INDEX_ENTRY_LEN;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use tracing::debug;

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
        let openapi = rest::openapi()
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
    while let Some((tcp, peer, permit)) = shared.accept(&listener, "https://").await {
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

/// The routes: every row of the table, served by [`serve`].
fn router(api: Arc<Api>) -> Router {
    let mut router = Router::new();
    for route in &rest::ROUTES {
        let filter = MethodFilter::try_from(route.method.clone())
            .expect("the table's methods are plain HTTP methods");
        let handler = move |State(api): State<Arc<Api>>, request: axum::extract::Request| {
            serve(api, route, request)
        };
        // Rows of one path (GET, PUT, … of /v1/shards/{id}) share it.
        router = router.route(route.path, on(filter, handler));
    }
    router
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        .with_state(api)
}

/// Answers one request on `route`; a failure is [`ErrorJson`] with its
/// code's status, or the status alone for a `HEAD`.
async fn serve(
    api: Arc<Api>,
    route: &'static Route,
    request: axum::extract::Request,
) -> axum::response::Response {
    if route.op == Op::Describe {
        return (
            [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            api.openapi.clone(),
        )
            .into_response();
    }
    match api.answer(route, request).await {
        Ok(reply) => http_answer(reply),
        Err(e) if route.answer == Answer::Presence => e.status.into_response(),
        Err(e) => e.into_response(),
    }
}

/// A reply of the table as an HTTP answer.
fn http_answer(reply: Reply) -> axum::response::Response {
    match reply {
        Reply::Json { status, json } => (
            status_code(status),
            [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            json,
        )
            .into_response(),
        Reply::Octets { bytes, version } => {
            let mut response = (
                [(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                )],
                bytes,
            )
                .into_response();
            if let Some(version) = version {
                response
                    .headers_mut()
                    .insert(rest::VERSION_HEADER, HeaderValue::from(version));
            }
            response
        }
        Reply::Status(status) => status_code(status).into_response(),
    }
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
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
            status: status_code(body.code.http_status()),
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
    const LIFETIME: Duration = Duration::from_secs(rest::TOKEN_LIFETIME_SECS);

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

impl Api {
    /// Answers one request on `route`, as the table says.
    async fn answer(
        &self,
        route: &'static Route,
        request: axum::extract::Request,
    ) -> Result<Reply, ApiError> {
        let (mut parts, body) = request.into_parts();
        let peer = parts
            .extensions
            .get::<Peer>()
            .copied()
            .ok_or_else(|| ApiError::new(ErrorCode::Internal, "no peer address"))?;
        let param = match route.param {
            Some(_) => Some(
                Path::<String>::from_request_parts(&mut parts, &())
                    .await
                    .map_err(|e| ApiError::bad_request(e.body_text()))?
                    .0,
            ),
            None => None,
        };
        let headers = &parts.headers;
        let head = route.head(HeadParts {
            param: param.as_deref(),
            query: parts.uri.query(),
            version: headers.get(rest::VERSION_HEADER).map(HeaderValue::as_bytes),
            authorization: headers.get(AUTHORIZATION).map(HeaderValue::as_bytes),
        })?;
        // Wrong credentials are refused before the body is read.
        let mut session = match route.auth {
            Auth::Optional | Auth::User => self.session(peer, headers).await?,
            // A login's credentials are its request.
            Auth::None | Auth::Login => Session::new(peer.0.ip()),
        };
        let (body, mut budget) = match route.body {
            Body::None => (Bytes::new(), None),
            Body::Shard => {
                self.body(headers, body, self.shared.node.limits().max_shard_len)
                    .await?
            }
            Body::IndexData => self.body(headers, body, MAX_INDEX_ENTRY_LEN).await?,
            Body::Ids => self.body(headers, body, rest::MAX_JSON_BODY).await?,
        };
        let (request, body) = head.request(body)?;
        if route.body == Body::Ids {
            // The ids are in the request now; their JSON is gone.
            budget = None;
        }
        let answer = self.shared.node.handle(&mut session, request, body).await;
        drop(budget);
        let (response, body) = match answer {
            (Response::Error(e), _) => return Err(e.into()),
            answer => answer,
        };
        // A login is answered with a token for the user it proved.
        let body = match &response {
            Response::LoggedIn { user } => Bytes::from(self.tokens.issue(user)?),
            _ => body,
        };
        Ok(route.reply(response, body)?)
    }

    /// The session a request acts in: anonymous, or the user its
    /// credentials prove.
    async fn session(&self, peer: Peer, headers: &HeaderMap) -> Result<Session, ApiError> {
        let mut session = Session::new(peer.0.ip());
        match Credentials::parse(headers.get(AUTHORIZATION).map(HeaderValue::as_bytes))? {
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

    /// Reads a request body of at most `max` bytes within the request
    /// timeout, after taking its room in the body budget; the permit is
    /// held until the caller drops it.
    async fn body(
        &self,
        headers: &HeaderMap,
        body: axum::body::Body,
        max: usize,
    ) -> Result<(Bytes, Option<OwnedSemaphorePermit>), ApiError> {
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
            Ok((collected.to_bytes(), Some(budget)))
        })
        .await
        .map_err(|_| ApiError::bad_request("the request body did not arrive in time"))?
    }
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
}
