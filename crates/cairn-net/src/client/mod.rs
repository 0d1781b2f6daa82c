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
//!   liveness check, kept by the connection's state machine
//!   ([`crate::conn::ClientConnection`]; the driver around it is
//!   `client/tcp.rs`). While requests wait, the client is not writing, and
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

mod quic;
mod tcp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cairn_core::Id;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::address::{NodeAddress, Scheme};
use crate::frame::{self, FrameError, HandshakeError};
use crate::https::HttpsClient;
use crate::identity::NodeId;
use crate::protocol::{
    AuthKeyBytes, Dropped, ErrorBody, IndexName, Limits, NodeInfo, Request, Response, VERSIONS,
};
use crate::tls::{self, ALPN_CAIRN, ALPN_HTTP1, NodeIdMismatch, Pin};
use tcp::TcpConnection;

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

/// STUB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangePage {
    /// STUB.
    pub feed: u64,
    /// STUB.
    pub entries: Vec<Changed>,
    /// STUB.
    pub next: u64,
    /// STUB.
    pub more: bool,
}

/// STUB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    /// STUB.
    pub name: IndexName,
    /// STUB.
    pub version: u64,
    /// STUB.
    pub seq: u64,
    /// STUB.
    pub summary: Bytes,
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
    Tcp(Arc<TcpConnection>),
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
        let pin = pin(address, trust_first_use)?;
        let alpn = match address.scheme {
            Scheme::Tcp | Scheme::Quic => ALPN_CAIRN,
            Scheme::Https => ALPN_HTTP1,
        };
        let (tls, seen) = tls::client_config(pin, &[alpn]);
        let transport = tokio::time::timeout(options.connect_timeout, async {
            match address.scheme {
                Scheme::Tcp => {
                    let socket = resolve(address).await?;
                    let tcp = TcpStream::connect(socket).await.map_err(|source| {
                        ClientError::Connect {
                            address: address.to_string(),
                            source,
                        }
                    })?;
                    let _ = tcp.set_nodelay(true);
                    tcp_handshake(tcp, address, tls, options).await
                }
                Scheme::Quic => quic::connect(address, tls, options)
                    .await
                    .map(Transport::Quic),
                Scheme::Https => HttpsClient::connect(address, tls, options)
                    .await
                    .map(|client| Transport::Https(Arc::new(client))),
            }
        })
        .await;
        let seen = *seen.lock().unwrap_or_else(|p| p.into_inner());
        Self::connected(address, options, pin, seen, transport)
    }

    /// Connects to the `tcp://` node at `address` over `stream`, a byte
    /// stream the caller opened (through a proxy, say, or an in-memory pipe
    /// in tests): TLS with the node's id checked, and the hello, within the
    /// connect timeout, as [`connect`](Self::connect) does.
    ///
    /// # Errors
    /// As [`connect`](Self::connect); [`ClientError::Protocol`] for an
    /// address of another scheme.
    pub async fn connect_over<S>(
        stream: S,
        address: &NodeAddress,
        options: &ClientOptions,
        trust_first_use: bool,
    ) -> Result<Self, ClientError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        if address.scheme != Scheme::Tcp {
            return Err(ClientError::Protocol(format!(
                "{address}: only tcp:// connects over a given stream"
            )));
        }
        let pin = pin(address, trust_first_use)?;
        let (tls, seen) = tls::client_config(pin, &[ALPN_CAIRN]);
        let transport = tokio::time::timeout(
            options.connect_timeout,
            tcp_handshake(stream, address, tls, options),
        )
        .await;
        let seen = *seen.lock().unwrap_or_else(|p| p.into_inner());
        Self::connected(address, options, pin, seen, transport)
    }

    /// The connection made (or not) within the connect timeout, with the
    /// node id the TLS verifier saw.
    fn connected(
        address: &NodeAddress,
        options: &ClientOptions,
        pin: Pin,
        seen: Option<NodeId>,
        transport: Result<Result<Transport, ClientError>, tokio::time::error::Elapsed>,
    ) -> Result<Self, ClientError> {
        let transport = transport.map_err(|_| ClientError::Timeout {
            what: format!("connecting to {address}"),
            after: options.connect_timeout,
        })?;
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
            Transport::Tcp(connection) => connection.is_closed(),
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
                Transport::Tcp(connection) => connection.call(&request, body.clone()).await,
                Transport::Quic(connection) => {
                    quic::call(connection, &request, &body, &self.options.limits).await
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

    /// STUB.
    ///
    /// # Errors
    /// Always.
    pub async fn put_entry(
        &self,
        name: &IndexName,
        version: u64,
        folder: &crate::protocol::FolderTag,
        summary_len: u32,
        data: Bytes,
    ) -> Result<Option<u64>, ClientError> {
        let _ = (name, version, folder, summary_len, data);
        Err(ClientError::Protocol("stub".into()))
    }

    /// STUB.
    ///
    /// # Errors
    /// Always.
    pub async fn list_folder(
        &self,
        folder: &crate::protocol::FolderTag,
        after: Option<&IndexName>,
        limit: u32,
    ) -> Result<IndexPage, ClientError> {
        let _ = (folder, after, limit);
        Err(ClientError::Protocol("stub".into()))
    }

    /// STUB.
    ///
    /// # Errors
    /// Always.
    pub async fn changes(
        &self,
        since: u64,
        folder: Option<&crate::protocol::FolderTag>,
        limit: u32,
    ) -> Result<ChangePage, ClientError> {
        let _ = (since, folder, limit);
        Err(ClientError::Protocol("stub".into()))
    }

    /// Closes the connection.
    pub async fn close(&self) {
        match &self.transport {
            Transport::Tcp(connection) => connection.close().await,
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

/// How the node's certificate is checked: against the address's node id,
/// or (if the caller asked) trusted on first use.
fn pin(address: &NodeAddress, trust_first_use: bool) -> Result<Pin, ClientError> {
    match address.node_id {
        Some(id) => Ok(Pin::Node(id)),
        None if trust_first_use => Ok(Pin::FirstUse),
        None => Err(ClientError::Unpinned(address.to_string())),
    }
}

/// TLS and the hello over `stream`, then the connection's driver.
async fn tcp_handshake<S>(
    stream: S,
    address: &NodeAddress,
    tls: rustls::ClientConfig,
    options: &ClientOptions,
) -> Result<Transport, ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let mut stream = connector
        .connect(tls::server_name(), stream)
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
    Ok(Transport::Tcp(Arc::new(TcpConnection::start(
        stream, version, options,
    ))))
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
