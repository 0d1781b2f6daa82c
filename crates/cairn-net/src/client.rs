//! The client side of the protocol: one connection to one node.
//!
//! [`Connection::connect`] opens a connection of the address's transport and
//! checks the node's id; the typed methods (`put_shard`, `get_shard`, …) are
//! the protocol's requests. Over `tcp://` many requests share one TLS
//! stream, told apart by stream id and answered in any order; over
//! `quic://` each request has a stream of its own; over `https://` each
//! request is its REST route (see [`crate::https`]). Every method has a
//! deadline, so a node that stops answering costs at most the request
//! timeout.
//!
//! Shards read back are checked against their id here, so a node (or a
//! disk, or a network) that returns wrong bytes yields
//! [`ClientError::Corrupt`], never the bytes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use cairn_core::Id;
use tokio::io::{AsyncWriteExt, BufWriter, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_rustls::client::TlsStream;

use crate::address::{NodeAddress, Scheme};
use crate::frame::{self, FrameError, HandshakeError};
use crate::https::HttpsClient;
use crate::identity::NodeId;
use crate::protocol::{
    AuthKeyBytes, Dropped, ErrorBody, IndexName, Limits, NodeInfo, Request, Response, VERSIONS,
};
use crate::tls::{self, ALPN_CAIRN, ALPN_HTTP1, NodeIdMismatch, Pin};

/// How a client connects.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Longest wait for a connection, TLS and hello included. Default 3 s.
    pub connect_timeout: Duration,
    /// Longest wait for the answer to one request. Default 30 s.
    pub request_timeout: Duration,
    /// Limits on what the client accepts from the node.
    pub limits: Limits,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(30),
            limits: Limits::default(),
        }
    }
}

/// Why a request to a node failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The node could not be reached.
    #[error("cannot connect to {address}: {source}")]
    Connect {
        /// The node's address.
        address: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The node is another node than the address names.
    #[error("{address}: {mismatch}")]
    WrongNode {
        /// The node's address.
        address: String,
        /// The ids involved.
        mismatch: NodeIdMismatch,
    },
    /// The address has no node id and the caller did not ask to trust the
    /// first one seen.
    #[error("{0} has no #NODE_ID: pin the node's id, or trust it on first use explicitly")]
    Unpinned(String),
    /// The version handshake failed.
    #[error("{address}: {source}")]
    Handshake {
        /// The node's address.
        address: String,
        /// What failed.
        source: HandshakeError,
    },
    /// No answer in time.
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// What was waited for.
        what: String,
        /// The deadline.
        after: Duration,
    },
    /// The connection broke.
    #[error("the connection to the node broke: {0}")]
    Broken(String),
    /// The node refused or failed the request.
    #[error("the node answered: {0}")]
    Node(ErrorBody),
    /// The node answered something that does not fit the request.
    #[error("unexpected answer from the node: {0}")]
    Protocol(String),
    /// A shard the node returned does not hash to its id.
    #[error("the node returned a corrupt shard: expected {expected}, got {actual}")]
    Corrupt {
        /// The id asked for.
        expected: Id,
        /// BLAKE3 of the bytes returned.
        actual: Id,
    },
}

impl ClientError {
    /// The node's error code, if the node answered with an error.
    pub fn code(&self) -> Option<crate::protocol::ErrorCode> {
        match self {
            Self::Node(body) => Some(body.code),
            _ => None,
        }
    }
}

impl From<FrameError> for ClientError {
    fn from(e: FrameError) -> Self {
        Self::Broken(e.to_string())
    }
}

/// Which of a batch of shards a node has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Has {
    /// The node stores the shard.
    pub stored: Vec<bool>,
    /// The logged-in user references it.
    pub mine: Vec<bool>,
}

/// One index entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// Its name.
    pub name: IndexName,
    /// Its version.
    pub version: u64,
    /// Its (sealed) data.
    pub data: Bytes,
}

/// A page of index entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexPage {
    /// The entries, in name order.
    pub entries: Vec<IndexEntry>,
    /// Whether entries after the last one may exist.
    pub more: bool,
}

/// A connection to one node.
#[derive(Debug, Clone)]
pub struct Connection {
    address: NodeAddress,
    node_id: NodeId,
    options: ClientOptions,
    transport: Transport,
    /// Answers received, node errors included (shared by the clones).
    answers: Arc<AtomicU64>,
}

#[derive(Debug, Clone)]
enum Transport {
    Tcp(Arc<TcpMux>),
    Quic(quinn::Connection),
    Https(Arc<HttpsClient>),
}

impl Connection {
    /// Connects to the node at `address` and checks its id.
    ///
    /// An address without `#NODE_ID` is refused unless `trust_first_use` is
    /// set; then any node is accepted and [`node_id`](Self::node_id) says
    /// which one answered.
    ///
    /// # Errors
    /// [`ClientError::Connect`], [`ClientError::WrongNode`],
    /// [`ClientError::Handshake`] or [`ClientError::Timeout`].
    pub async fn connect(
        address: &NodeAddress,
        options: &ClientOptions,
        trust_first_use: bool,
    ) -> Result<Self, ClientError> {
        let pin = match address.node_id {
            Some(id) => Pin::Node(id),
            None if trust_first_use => Pin::FirstUse,
            None => return Err(ClientError::Unpinned(address.to_string())),
        };
        let alpn = match address.scheme {
            Scheme::Tcp | Scheme::Quic => ALPN_CAIRN,
            Scheme::Https => ALPN_HTTP1,
        };
        let (tls, seen) = tls::client_config(pin, &[alpn]);
        let what = format!("connecting to {address}");
        let transport = tokio::time::timeout(options.connect_timeout, async {
            match address.scheme {
                Scheme::Tcp => TcpMux::connect(address, tls, options)
                    .await
                    .map(|mux| Transport::Tcp(Arc::new(mux))),
                Scheme::Quic => quic_connect(address, tls, options)
                    .await
                    .map(Transport::Quic),
                Scheme::Https => HttpsClient::connect(address, tls, options)
                    .await
                    .map(|client| Transport::Https(Arc::new(client))),
            }
        })
        .await
        .map_err(|_| ClientError::Timeout {
            what,
            after: options.connect_timeout,
        })?;
        let seen = *seen.lock().unwrap_or_else(|p| p.into_inner());
        let transport = match (transport, pin, seen) {
            // Whatever the transport made of the refusal, a certificate of
            // another node is what failed.
            (Err(_), Pin::Node(expected), Some(actual)) if actual != expected => {
                return Err(ClientError::WrongNode {
                    address: address.to_string(),
                    mismatch: NodeIdMismatch { expected, actual },
                });
            }
            (transport, _, _) => transport?,
        };
        let node_id = match (address.node_id, seen) {
            (Some(id), _) | (None, Some(id)) => id,
            (None, None) => return Err(ClientError::Protocol("no certificate seen".into())),
        };
        Ok(Self {
            address: address.clone(),
            node_id,
            options: options.clone(),
            transport,
            answers: Arc::new(AtomicU64::new(0)),
        })
    }

    /// How many answers (node errors included) this connection has
    /// received so far: a caller whose request broke can tell a link that
    /// carries traffic from a dead one.
    pub fn answers(&self) -> u64 {
        self.answers.load(Ordering::Relaxed)
    }

    /// Whether the connection is known to be gone (its reader stopped, or
    /// QUIC closed it), so that a request sent on it would fail at once.
    /// An `https://` connection is never known gone: its HTTP client opens
    /// connections as needed.
    pub fn is_closed(&self) -> bool {
        match &self.transport {
            Transport::Tcp(mux) => mux
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_none(),
            Transport::Quic(connection) => connection.close_reason().is_some(),
            Transport::Https(_) => false,
        }
    }

    /// The node's id (as pinned, or as first seen).
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// The address connected to.
    pub fn address(&self) -> &NodeAddress {
        &self.address
    }

    /// Sends `request` with `body` and waits for the answer. A node error
    /// becomes [`ClientError::Node`].
    ///
    /// # Errors
    /// [`ClientError`] for a broken connection, a timeout or a node error.
    pub async fn call(
        &self,
        request: Request,
        body: Bytes,
    ) -> Result<(Response, Bytes), ClientError> {
        let what = format!("{} to {}", request.kind(), self.address);
        let answer = tokio::time::timeout(self.options.request_timeout, async {
            match &self.transport {
                Transport::Tcp(mux) => mux.call(&request, &body).await,
                Transport::Quic(connection) => {
                    quic_call(connection, &request, &body, &self.options.limits).await
                }
                Transport::Https(client) => client.call(&request, &body).await,
            }
        })
        .await
        .map_err(|_| ClientError::Timeout {
            what,
            after: self.options.request_timeout,
        })??;
        self.answers.fetch_add(1, Ordering::Relaxed);
        match answer {
            (Response::Error(error), _) => Err(ClientError::Node(error)),
            answer => Ok(answer),
        }
    }

    /// Logs in as `user`; the connection then acts for that user.
    ///
    /// # Errors
    /// [`ClientError::Node`] with [`crate::protocol::ErrorCode::Unauthorized`]
    /// for wrong credentials.
    pub async fn login(&self, user: &str, auth_key: &[u8; 32]) -> Result<(), ClientError> {
        let request = Request::Login {
            user: user.to_owned(),
            auth_key: AuthKeyBytes(*auth_key),
        };
        match self.call(request, Bytes::new()).await? {
            (Response::LoggedIn { .. }, _) => Ok(()),
            (other, _) => Err(unexpected(&other)),
        }
    }

    /// About the node.
    ///
    /// # Errors
    /// As [`call`](Self::call).
    pub async fn info(&self) -> Result<NodeInfo, ClientError> {
        match self.call(Request::Info, Bytes::new()).await? {
            (Response::Info(info), _) => Ok(info),
            (other, _) => Err(unexpected(&other)),
        }
    }

    /// Stores `shard` under its id; returns whether the node wrote the
    /// bytes (false when it already had them).
    ///
    /// # Errors
    /// As [`call`](Self::call); the node refuses bytes that do not hash to
    /// the id.
    pub async fn put_shard(&self, id: &Id, shard: Bytes) -> Result<bool, ClientError> {
        match self.call(Request::PutShard { id: *id }, shard).await? {
            (Response::ShardStored { written }, _) => Ok(written),
            (other, _) => Err(unexpected(&other)),
        }
    }

    /// Reads shard `id`, checked against the id.
    ///
    /// # Errors
    /// [`ClientError::Corrupt`] if the bytes do not hash to `id`; otherwise
    /// as [`call`](Self::call).
    pub async fn get_shard(&self, id: &Id) -> Result<Bytes, ClientError> {
        match self
            .call(Request::GetShard { id: *id }, Bytes::new())
            .await?
        {
            (Response::Shard, body) => {
                let actual = Id::of(&body);
                if actual != *id {
                    return Err(ClientError::Corrupt {
                        expected: *id,
                        actual,
                    });
                }
                Ok(body)
            }
            (other, _) => Err(unexpected(&other)),
        }
    }

    /// Which of `ids` the node stores, and which the logged-in user
    /// references.
    ///
    /// # Errors
    /// As [`call`](Self::call).
    pub async fn has_shards(&self, ids: &[Id]) -> Result<Has, ClientError> {
        let request = Request::HasShards { ids: ids.to_vec() };
        match self.call(request, Bytes::new()).await? {
            (Response::Has { stored, mine }, _)
                if stored.len() == ids.len() && mine.len() == ids.len() =>
            {
                Ok(Has { stored, mine })
            }
            (other, _) => Err(unexpected(&other)),
        }
    }

    /// Drops the logged-in user's references to `ids`.
    ///
    /// # Errors
    /// As [`call`](Self::call).
    pub async fn drop_shards(&self, ids: &[Id]) -> Result<Vec<Dropped>, ClientError> {
        let request = Request::DropShards { ids: ids.to_vec() };
        match self.call(request, Bytes::new()).await? {
            (Response::Dropped { outcomes }, _) if outcomes.len() == ids.len() => Ok(outcomes),
            (other, _) => Err(unexpected(&other)),
        }
    }

    /// Stores index entry `name` at `version`; returns the version it
    /// replaced.
    ///
    /// # Errors
    /// [`ClientError::Node`] with `Conflict` if a newer (or a different
    /// equal) version is stored; otherwise as [`call`](Self::call).
    pub async fn put_index(
        &self,
        name: &IndexName,
        version: u64,
        data: Bytes,
    ) -> Result<Option<u64>, ClientError> {
        let request = Request::PutIndex {
            name: *name,
            version,
        };
        match self.call(request, data).await? {
            (Response::IndexStored { replaced }, _) => Ok(replaced),
            (other, _) => Err(unexpected(&other)),
        }
    }

    /// Reads index entry `name`, or `None` if there is none.
    ///
    /// # Errors
    /// As [`call`](Self::call).
    pub async fn get_index(&self, name: &IndexName) -> Result<Option<IndexEntry>, ClientError> {
        match self
            .call(Request::GetIndex { name: *name }, Bytes::new())
            .await
        {
            Ok((Response::IndexEntry { version }, data)) => Ok(Some(IndexEntry {
                name: *name,
                version,
                data,
            })),
            Ok((other, _)) => Err(unexpected(&other)),
            Err(e) if e.code() == Some(crate::protocol::ErrorCode::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A page of index entries after `after`.
    ///
    /// # Errors
    /// As [`call`](Self::call).
    pub async fn list_index(
        &self,
        after: Option<&IndexName>,
        limit: u32,
    ) -> Result<IndexPage, ClientError> {
        let request = Request::ListIndex {
            after: after.copied(),
            limit,
        };
        match self.call(request, Bytes::new()).await? {
            (Response::IndexList { entries, more }, body) => Ok(IndexPage {
                entries: split_index_list(entries, body)?,
                more,
            }),
            (other, _) => Err(unexpected(&other)),
        }
    }

    /// Deletes index entry `name`; returns the version deleted.
    ///
    /// # Errors
    /// As [`call`](Self::call).
    pub async fn delete_index(&self, name: &IndexName) -> Result<Option<u64>, ClientError> {
        match self
            .call(Request::DeleteIndex { name: *name }, Bytes::new())
            .await?
        {
            (Response::IndexDeleted { version }, _) => Ok(version),
            (other, _) => Err(unexpected(&other)),
        }
    }

    /// Closes the connection.
    pub async fn close(&self) {
        match &self.transport {
            Transport::Tcp(mux) => mux.close().await,
            Transport::Quic(connection) => connection.close(0u32.into(), b"bye"),
            Transport::Https(_) => {}
        }
    }
}

/// The entries of an index listing: the data of each, in order, cut from
/// `body` by the lengths the message gives. Public for the fuzz targets.
///
/// # Errors
/// [`ClientError::Protocol`] if the body is shorter than the lengths add
/// up to.
pub fn split_index_list(
    entries: Vec<(IndexName, u64, u32)>,
    mut body: Bytes,
) -> Result<Vec<IndexEntry>, ClientError> {
    let mut out = Vec::with_capacity(entries.len());
    for (name, version, len) in entries {
        let len = len as usize;
        if len > body.len() {
            return Err(ClientError::Protocol(
                "index list body shorter than its entries".into(),
            ));
        }
        out.push(IndexEntry {
            name,
            version,
            data: body.split_to(len),
        });
    }
    Ok(out)
}

fn unexpected(response: &Response) -> ClientError {
    ClientError::Protocol(format!("{response:?}"))
}

async fn resolve(address: &NodeAddress) -> Result<SocketAddr, ClientError> {
    let connect_error = |source| ClientError::Connect {
        address: address.to_string(),
        source,
    };
    tokio::net::lookup_host(address.authority())
        .await
        .map_err(connect_error)?
        .next()
        .ok_or_else(|| {
            connect_error(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the host name resolves to no address",
            ))
        })
}

type Pending = Arc<Mutex<Option<HashMap<u32, oneshot::Sender<(Response, Bytes)>>>>>;

/// Many requests over one TLS stream: requests are written whole under a
/// lock; a reader task hands each answer to the request with its stream id.
#[derive(Debug)]
struct TcpMux {
    writer: tokio::sync::Mutex<BufWriter<WriteHalf<TlsStream<TcpStream>>>>,
    /// Waiting requests by stream id; `None` once the connection is gone.
    pending: Pending,
    /// Why the connection ended, once it has (for the requests it fails).
    ended: Arc<Mutex<Option<String>>>,
    next_stream: AtomicU32,
    reader: tokio::task::JoinHandle<()>,
}

impl TcpMux {
    async fn connect(
        address: &NodeAddress,
        tls: rustls::ClientConfig,
        options: &ClientOptions,
    ) -> Result<Self, ClientError> {
        let socket = resolve(address).await?;
        let tcp = TcpStream::connect(socket)
            .await
            .map_err(|source| ClientError::Connect {
                address: address.to_string(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
        let mut stream = connector
            .connect(tls::server_name(), tcp)
            .await
            .map_err(|source| ClientError::Connect {
                address: address.to_string(),
                source,
            })?;
        frame::client_hello(&mut stream, VERSIONS)
            .await
            .map_err(|source| ClientError::Handshake {
                address: address.to_string(),
                source,
            })?;
        let (read, write) = tokio::io::split(stream);
        let pending: Pending = Arc::new(Mutex::new(Some(HashMap::new())));
        let ended = Arc::new(Mutex::new(None));
        let reader = tokio::spawn(read_answers(
            read,
            pending.clone(),
            ended.clone(),
            options.limits,
        ));
        Ok(Self {
            writer: tokio::sync::Mutex::new(BufWriter::with_capacity(64 * 1024, write)),
            pending,
            ended,
            next_stream: AtomicU32::new(1),
            reader,
        })
    }

    async fn call(&self, request: &Request, body: &[u8]) -> Result<(Response, Bytes), ClientError> {
        let stream = self.next_stream.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            let Some(pending) = pending.as_mut() else {
                return Err(ClientError::Broken("the connection is closed".into()));
            };
            pending.insert(stream, tx);
        }
        // If this future is dropped (a timeout), forget the request.
        let forget = ForgetOnDrop {
            pending: &self.pending,
            stream,
        };
        let message = frame::encode(request);
        {
            let mut writer = self.writer.lock().await;
            frame::write_frame(&mut *writer, stream, &message, body)
                .await
                .map_err(|e| ClientError::Broken(e.to_string()))?;
            writer
                .flush()
                .await
                .map_err(|e| ClientError::Broken(e.to_string()))?;
        }
        let answer = rx.await.map_err(|_| {
            let why = self.ended.lock().unwrap_or_else(|p| p.into_inner()).clone();
            ClientError::Broken(why.unwrap_or_else(|| "the node closed the connection".into()))
        });
        drop(forget);
        answer
    }

    async fn close(&self) {
        // Requests still waiting fail now: with the reader stopped nothing
        // would answer them, and they would wait out their timeout. (The
        // cluster closes a connection when one of its requests broke, so
        // the others are retried on the fresh one at once.)
        end(
            &self.pending,
            &self.ended,
            "the connection was closed by the client",
        );
        self.reader.abort();
        let _ = self.writer.lock().await.shutdown().await;
    }
}

/// Records why a connection ended, unless it already had, and wakes every
/// waiting request with an error (by dropping the answer senders).
fn end(pending: &Pending, ended: &Mutex<Option<String>>, why: &str) {
    let mut pending = pending.lock().unwrap_or_else(|p| p.into_inner());
    if pending.is_none() {
        return;
    }
    ended
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(|| why.to_owned());
    pending.take();
}

impl Drop for TcpMux {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

struct ForgetOnDrop<'a> {
    pending: &'a Pending,
    stream: u32,
}

impl Drop for ForgetOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(pending) = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            pending.remove(&self.stream);
        }
    }
}

/// Hands each answer to its request until the connection ends, then fails
/// every request still waiting.
async fn read_answers(
    mut read: ReadHalf<TlsStream<TcpStream>>,
    pending: Pending,
    ended: Arc<Mutex<Option<String>>>,
    limits: Limits,
) {
    let why = loop {
        let frame = match frame::read_frame(&mut read, &limits).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break "the node closed the connection".to_owned(),
            Err(e) => break format!("the node's answer was refused: {e}"),
        };
        let response = match frame::decode::<Response>(&frame.message) {
            Ok(response) => response,
            Err(e) => break format!("the node's answer was refused: {e}"),
        };
        let waiter = pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
            .and_then(|p| p.remove(&frame.stream));
        if let Some(waiter) = waiter {
            let _ = waiter.send((response, frame.body));
        }
    };
    end(&pending, &ended, &why);
}

async fn quic_connect(
    address: &NodeAddress,
    tls: rustls::ClientConfig,
    options: &ClientOptions,
) -> Result<quinn::Connection, ClientError> {
    let socket = resolve(address).await?;
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| ClientError::Protocol(format!("QUIC configuration: {e}")))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = crate::quic::transport_config();
    transport
        .max_idle_timeout(Some(
            quinn::IdleTimeout::try_from(options.request_timeout.max(Duration::from_secs(10)))
                .expect("a few seconds is a valid idle timeout"),
        ))
        .keep_alive_interval(Some(Duration::from_secs(5)));
    config.transport_config(Arc::new(transport));
    let bind: SocketAddr = if socket.is_ipv6() {
        "[::]:0".parse().expect("valid")
    } else {
        "0.0.0.0:0".parse().expect("valid")
    };
    let mut endpoint = quinn::Endpoint::client(bind).map_err(|source| ClientError::Connect {
        address: address.to_string(),
        source,
    })?;
    endpoint.set_default_client_config(config);
    let connection = endpoint
        .connect(socket, "cairn.invalid")
        .map_err(|e| ClientError::Protocol(format!("QUIC: {e}")))?
        .await
        .map_err(|e| quic_error(address, e))?;
    let (send, recv) = connection
        .open_bi()
        .await
        .map_err(|e| quic_error(address, e))?;
    let mut stream = tokio::io::join(recv, send);
    frame::client_hello(&mut stream, VERSIONS)
        .await
        .map_err(|source| ClientError::Handshake {
            address: address.to_string(),
            source,
        })?;
    let (_, mut send) = stream.into_inner();
    let _ = send.finish();
    Ok(connection)
}

fn quic_error(address: &NodeAddress, error: quinn::ConnectionError) -> ClientError {
    ClientError::Connect {
        address: address.to_string(),
        source: std::io::Error::other(error),
    }
}

async fn quic_call(
    connection: &quinn::Connection,
    request: &Request,
    body: &[u8],
    limits: &Limits,
) -> Result<(Response, Bytes), ClientError> {
    let broken = |e: &dyn std::fmt::Display| ClientError::Broken(e.to_string());
    let (mut send, mut recv) = connection.open_bi().await.map_err(|e| broken(&e))?;
    frame::write_frame(&mut send, 0, &frame::encode(request), body)
        .await
        .map_err(|e| broken(&e))?;
    send.finish().map_err(|e| broken(&e))?;
    let frame = frame::read_frame(&mut recv, limits)
        .await?
        .ok_or_else(|| ClientError::Broken("the node closed the stream".into()))?;
    let response = frame::decode::<Response>(&frame.message)?;
    Ok((response, frame.body))
}
