//! `https://`: the client of the REST API ([`crate::rest`]).
//!
//! [`crate::client::Connection`] speaks this API for `https://` addresses
//! with the node pinned by id, like the other transports: each
//! [`Request`] goes as the [`Call`] the table makes of it, and each answer
//! comes back as a [`Response`] through its route, so the typed methods
//! work unchanged. A login fetches a token and keeps it for the
//! connection; when the token expires, the client logs in again.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};

use crate::address::NodeAddress;
use crate::client::{ClientError, ClientOptions};
use crate::protocol::{AuthKeyBytes, ErrorBody, ErrorCode, Limits, Request, Response};
use crate::rest::{self, Call, CallBody, ErrorJson, Op};

/// The user's credentials, kept to log in again when the token expires.
struct Login {
    user: String,
    auth_key: AuthKeyBytes,
    token: String,
}

/// The `https://` side of a [`crate::client::Connection`].
pub(crate) struct HttpsClient {
    http: reqwest::Client,
    /// `https://host:port`.
    base: String,
    limits: Limits,
    request_timeout: Duration,
    /// The newest protocol version the node's health answer named.
    protocol: u8,
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
        let mut client = Self {
            http,
            base: format!("https://{}", address.authority()),
            limits: options.limits,
            request_timeout: options.request_timeout,
            protocol: 0,
            login: Mutex::new(None),
        };
        let health = Op::Health.route();
        let answer = client
            .http
            .request(health.method.clone(), client.url(health.path))
            .send()
            .await
            .map_err(|e| transport_error(&address.to_string(), &e, options.connect_timeout))?;
        if !answer.status().is_success() {
            return Err(ClientError::Protocol(format!(
                "{address}: {} answered {}",
                health.path,
                answer.status()
            )));
        }
        let body = client
            .body(answer, health.answer.max_len(&client.limits))
            .await?;
        client.protocol = rest::health_protocol(&body)
            .map_err(|e| ClientError::Protocol(format!("{address}: {}: {e}", health.path)))?;
        Ok(client)
    }

    /// The newest protocol version the node speaks, as its health answer
    /// said when the client connected.
    pub(crate) fn protocol(&self) -> u8 {
        self.protocol
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

    /// Logs in with Basic credentials and keeps the token the node answers
    /// (the body beside [`Response::LoggedIn`]) for the requests to come.
    async fn login(
        &self,
        user: &str,
        auth_key: AuthKeyBytes,
    ) -> Result<(Response, Bytes), ClientError> {
        let request = Request::Login {
            user: user.to_owned(),
            auth_key: auth_key.clone(),
        };
        let (response, token) = self.send(&request, &Bytes::new(), None).await?;
        if let Response::LoggedIn { .. } = response {
            let token = String::from_utf8(token.to_vec())
                .map_err(|_| ClientError::Protocol("the login token is not text".into()))?;
            *self.login.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(Login {
                user: user.to_owned(),
                auth_key,
                token,
            }));
        }
        Ok((response, Bytes::new()))
    }

    async fn send(
        &self,
        request: &Request,
        body: &Bytes,
        login: Option<&Login>,
    ) -> Result<(Response, Bytes), ClientError> {
        let call = Call::of(request, body);
        let route = call.route;
        let mut builder = self
            .http
            .request(route.method.clone(), self.url(&call.path));
        builder = match call.body {
            CallBody::None => builder,
            CallBody::Octets(bytes) => builder
                .header(CONTENT_TYPE, "application/octet-stream")
                .body(bytes),
            CallBody::Json(json) => builder.header(CONTENT_TYPE, "application/json").body(json),
        };
        let authorization = match (call.authorization, login) {
            (Some(credentials), _) => Some(secret_header(&credentials)?),
            (None, Some(login)) => Some(secret_header(&format!("Bearer {}", login.token))?),
            (None, None) => None,
        };
        if let Some(authorization) = authorization {
            builder = builder.header(AUTHORIZATION, authorization);
        }
        let answer = builder.send().await.map_err(|e| self.broken(&e))?;
        if !answer.status().is_success() {
            return Ok((Response::Error(self.error(answer).await), Bytes::new()));
        }
        let version = answer.headers().get(rest::VERSION_HEADER).cloned();
        let bytes = self
            .body(answer, route.answer.max_len(&self.limits))
            .await?;
        route
            .decode(version.as_ref().map(HeaderValue::as_bytes), bytes)
            .map_err(|e| ClientError::Protocol(e.to_string()))
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
            Ok(json) => ErrorBody::new(
                rest::error_code(&json.error).unwrap_or(from_status),
                json.message,
            ),
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
