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
//! # Stalled links
//!
//! A connection can stall without breaking: over TLS on TCP, a corrupted
//! bit in a record's length field leaves the receiver waiting for bytes
//! that will never be sent, and the sender waiting for an answer. Each
//! transport handles it its own way:
//!
//! - **`tcp://`** (protocol version 2, see [`crate::protocol`]): a
//!   liveness check. While requests wait, the client is not writing, and
//!   nothing has come from the node for [`ClientOptions::ping_interval`]
//!   (1 s by default), it sends a ping; the node answers pings at once, and
//!   sends keep-alives of its own while it reads a long request or is busy.
//!   If nothing arrives within another interval, the connection is declared
//!   [`ClientError::Broken`], every request waiting on it fails, and the
//!   caller retries on a fresh connection (as `cairn_client`'s cluster
//!   does). A slow request on a live node is never cut: the node's pongs
//!   and keep-alives keep coming while it works. The interval must exceed
//!   the link's round-trip time. A node of version 1 gets no pings, and
//!   its stalls last until the request timeout.
//! - **`quic://`**: nothing to do. Every QUIC packet is authenticated on
//!   its own, so a corrupted packet is a lost packet, which QUIC resends;
//!   quinn's keep-alives and idle timeout end a dead path.
//! - **`https://`**: HTTP/1.1 has no way to probe a connection in the
//!   middle of a request (HTTP/2 has PING frames, which hyper's keep-alive
//!   uses, but the node serves HTTP/1.1 only), and reqwest's read timeout
//!   runs from the start of a request to its answer's head, so it would cut
//!   slow requests too. A stall there ends at the request timeout; then the
//!   request is retried on a fresh connection.
//!
//! A `tcp://` request given up (timed out, or its future dropped) while its
//! frame is partly written closes the connection: the node would read the
//! next request's bytes as the rest of that frame. Later requests on it
//! fail at once, saying why, and the caller opens a fresh one.
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
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;

use crate::address::{NodeAddress, Scheme};
use crate::frame::{self, FrameError, HandshakeError};
use crate::https::HttpsClient;
use crate::identity::NodeId;
use crate::protocol::{
    AuthKeyBytes, Dropped, ErrorBody, IndexName, Limits, NodeInfo, PING_VERSION, Request, Response,
    VERSIONS,
};
use crate::tls::{self, ALPN_CAIRN, ALPN_HTTP1, NodeIdMismatch, Pin};

/// How a client connects.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Longest wait for a connection, TLS and hello included. Default 3 s.
    pub connect_timeout: Duration,
    /// Longest wait for the answer to one request. Default 30 s.
    pub request_timeout: Duration,
    /// Liveness check of `tcp://` connections (see the [module
    /// docs](self#stalled-links)): after this long without a byte from the
    /// node while requests wait, a ping; after this long again, the
    /// connection is declared broken. Must exceed the link's round-trip time
    /// (and stay well above the node's keep-alive interval,
    /// [`crate::protocol::KEEPALIVE_INTERVAL`]); `None` turns the check off,
    /// leaving stalls to the request timeout. Default 1 s.
    pub ping_interval: Option<Duration>,
    /// Congestion controller of what this client sends over `quic://` (its
    /// puts; the node's own setting governs gets). Default BBR.
    pub quic_congestion: crate::quic::Congestion,
    /// Limits on what the client accepts from the node.
    pub limits: Limits,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(30),
            ping_interval: Some(Duration::from_secs(1)),
            quic_congestion: crate::quic::Congestion::Bbr,
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

type Writer = Arc<tokio::sync::Mutex<BufWriter<WriteHalf<TlsStream<TcpStream>>>>>;

/// Many requests over one TLS stream: requests are written whole under a
/// lock; a reader task hands each answer to the request with its stream id;
/// on protocol version 2 a watcher task runs the liveness check.
#[derive(Debug)]
struct TcpMux {
    writer: Writer,
    /// Waiting requests by stream id; `None` once the connection is gone.
    pending: Pending,
    /// Why the connection ended, once it has (for the requests it fails).
    ended: Arc<Mutex<Option<String>>>,
    /// Stream ids of requests; 0 is never one (it carries pings).
    next_stream: AtomicU32,
    reader: tokio::task::JoinHandle<()>,
    watcher: Option<tokio::task::JoinHandle<()>>,
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
        let version = frame::client_hello(&mut stream, VERSIONS)
            .await
            .map_err(|source| ClientError::Handshake {
                address: address.to_string(),
                source,
            })?;
        let (read, write) = tokio::io::split(stream);
        let pending: Pending = Arc::new(Mutex::new(Some(HashMap::new())));
        let ended = Arc::new(Mutex::new(None));
        let received = Arc::new(AtomicU64::new(0));
        let reader = tokio::spawn(read_answers(
            frame::CountingReader::new(read, received.clone()),
            pending.clone(),
            ended.clone(),
            options.limits,
        ));
        let writer: Writer = Arc::new(tokio::sync::Mutex::new(BufWriter::with_capacity(
            64 * 1024,
            write,
        )));
        // A node of version 1 would refuse a ping as a malformed request.
        let watcher = options
            .ping_interval
            .filter(|_| version >= PING_VERSION)
            .map(|interval| {
                tokio::spawn(watch_liveness(Liveness {
                    interval,
                    writer: writer.clone(),
                    pending: pending.clone(),
                    ended: ended.clone(),
                    received,
                    reader: reader.abort_handle(),
                }))
            });
        Ok(Self {
            writer,
            pending,
            ended,
            next_stream: AtomicU32::new(1),
            reader,
            watcher,
        })
    }

    async fn call(&self, request: &Request, body: &[u8]) -> Result<(Response, Bytes), ClientError> {
        // Stream 0 carries pings and the node's keep-alives.
        let stream = match self.next_stream.fetch_add(1, Ordering::Relaxed) {
            0 => self.next_stream.fetch_add(1, Ordering::Relaxed),
            stream => stream,
        };
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            let Some(pending) = pending.as_mut() else {
                // Same lock order as `end`: pending, then ended.
                let why = self.ended.lock().unwrap_or_else(|p| p.into_inner()).clone();
                return Err(ClientError::Broken(
                    why.unwrap_or_else(|| "the connection is closed".into()),
                ));
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
            let half_sent = HalfSent {
                mux: Some(self),
                stream,
            };
            frame::write_frame(&mut *writer, stream, &message, body)
                .await
                .map_err(|e| ClientError::Broken(e.to_string()))?;
            writer
                .flush()
                .await
                .map_err(|e| ClientError::Broken(e.to_string()))?;
            half_sent.sent();
        }
        let answer = rx.await.map_err(|_| {
            let why = self.ended.lock().unwrap_or_else(|p| p.into_inner()).clone();
            ClientError::Broken(why.unwrap_or_else(|| "the node closed the connection".into()))
        });
        drop(forget);
        answer
    }

    async fn close(&self) {
        // (The cluster closes a connection when one of its requests broke,
        // so the others are retried on the fresh one at once.)
        self.stop("the connection was closed by the client");
        let _ = self.writer.lock().await.shutdown().await;
    }

    /// Ends the connection for `why`: requests still waiting fail now (with
    /// the reader stopped nothing would answer them, and they would wait
    /// out their timeout), later ones at once, and the reader and the
    /// liveness check stop.
    fn stop(&self, why: &str) {
        end(&self.pending, &self.ended, why);
        if let Some(watcher) = &self.watcher {
            watcher.abort();
        }
        self.reader.abort();
    }
}

/// Ends the connection if a request is given up (its future dropped: a
/// timeout) or fails while its frame is partly written: the node would
/// read the next frame's bytes as the rest of this one. Disarmed by
/// [`sent`](Self::sent) once the frame is out whole.
struct HalfSent<'a> {
    mux: Option<&'a TcpMux>,
    stream: u32,
}

impl HalfSent<'_> {
    fn sent(mut self) {
        self.mux = None;
    }
}

impl Drop for HalfSent<'_> {
    fn drop(&mut self) {
        if let Some(mux) = self.mux {
            tracing::debug!(
                stream = self.stream,
                "request frame half sent: connection closed"
            );
            mux.stop("a request was given up with its frame half sent");
        }
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
        // The watcher holds the writer: stopping it lets the socket close.
        if let Some(watcher) = &self.watcher {
            watcher.abort();
        }
        self.reader.abort();
    }
}

/// What the liveness check of one `tcp://` connection works with.
struct Liveness {
    interval: Duration,
    writer: Writer,
    pending: Pending,
    ended: Arc<Mutex<Option<String>>>,
    /// Bytes received from the node so far.
    received: Arc<AtomicU64>,
    reader: tokio::task::AbortHandle,
}

impl Liveness {
    /// Ends the connection for `why` (the reader stops; waiting requests
    /// fail).
    fn stop(&self, why: &str) {
        end(&self.pending, &self.ended, why);
        self.reader.abort();
    }
}

/// The liveness check (see the [module docs](self#stalled-links)): pings a
/// connection that went silent while requests wait, and declares it broken
/// if the silence outlasts the ping by another interval.
async fn watch_liveness(live: Liveness) {
    let tick = (live.interval / 4).max(Duration::from_millis(10));
    // Stream 0, no body. Written with one `write_all` into a buffered
    // writer with room for it, so that it goes in whole or not at all, even
    // if the write is given up.
    let ping =
        frame::frame_bytes(0, &frame::encode(&Request::Ping), b"").expect("a ping fits a frame");
    let mut seen = live.received.load(Ordering::Relaxed);
    let mut quiet_since = Instant::now();
    let mut pinged: Option<Instant> = None;
    loop {
        tokio::time::sleep(tick).await;
        let now = Instant::now();
        let received = live.received.load(Ordering::Relaxed);
        if received != seen {
            seen = received;
            quiet_since = now;
            pinged = None;
        }
        let waiting = match live
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            None => return, // the connection ended
            Some(pending) => !pending.is_empty(),
        };
        if !waiting {
            // Silence without a question is no sign of anything.
            quiet_since = now;
            pinged = None;
            continue;
        }
        match pinged {
            Some(at) if now - at >= live.interval => {
                let why = format!(
                    "nothing from the node for {:.1?}, nor within {:?} of a ping: the link stalled",
                    now - quiet_since,
                    live.interval
                );
                live.stop(&why);
                return;
            }
            Some(_) => {}
            None if now - quiet_since >= live.interval => {
                // A request still being written holds the writer: the link
                // is busy sending (or the node is not reading, which the
                // node signals with keep-alives), not silent; look again at
                // the next tick.
                let Ok(mut writer) = live.writer.try_lock() else {
                    continue;
                };
                let sent = tokio::time::timeout(live.interval, async {
                    writer.write_all(&ping).await?;
                    writer.flush().await
                })
                .await;
                if let Ok(Err(e)) = sent {
                    // The reader will see the end too; this says why first.
                    live.stop(&format!("sending a ping failed: {e}"));
                    return;
                }
                // Sent, or stuck in a socket the node does not drain: either
                // way the answer is due within the interval.
                pinged = Some(now);
            }
            None => {}
        }
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
    mut read: frame::CountingReader<ReadHalf<TlsStream<TcpStream>>>,
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
    let mut transport = crate::quic::transport_config(options.quic_congestion);
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
    let connect_error = |source| ClientError::Connect {
        address: address.to_string(),
        source,
    };
    let (udp, granted) = crate::quic::bind_udp(bind).map_err(connect_error)?;
    tracing::debug!(%address, receive_buffer = granted, "QUIC socket bound");
    let mut endpoint = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        None,
        udp,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(connect_error)?;
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
