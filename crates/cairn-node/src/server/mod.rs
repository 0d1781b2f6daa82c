//! Serving: listeners, connection limits and graceful shutdown, shared by
//! the three transports.
//!
//! [`run`] serves a [`Node`] on already-bound [`Listeners`] until the
//! `shutdown` future completes (tests bind port 0 and pass a channel; the
//! binary binds `node.toml`'s addresses and waits for SIGINT or SIGTERM).
//! Then it stops accepting, lets every connection finish the requests it
//! has started, for at most the configured grace period, and returns.
//!
//! Beside the transports it runs the [background scrub](crate::scrub), the
//! background [migration and compaction](crate::maintenance), all stopped
//! with them.
//!
//! Limits that hold whatever the transport:
//! - at most `max_connections` connections at once; more are refused at
//!   once (the peer sees the connection closed);
//! - request bodies held in memory are bounded by `body_memory`: a request
//!   waits for room before its body is read, so a crowd of large uploads
//!   queues instead of exhausting memory;
//! - a connection waiting for its next request is closed after
//!   `idle_timeout_secs`; a request must arrive whole within
//!   `request_timeout_secs` of its first byte (the slow-sender limit).

mod framed;
mod https;
mod quic;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cairn_net::identity::NodeIdentity;
use cairn_net::tls::{self, ALPN_CAIRN, ALPN_HTTP1};
use cairn_net::{NodeAddress, Scheme};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::service::Node;

/// Sockets a node serves on, bound before [`run`].
#[derive(Debug, Default)]
pub struct Listeners {
    /// `tcp://` listeners.
    pub tcp: Vec<TcpListener>,
    /// `https://` listeners.
    pub https: Vec<TcpListener>,
    /// `quic://` sockets.
    pub quic: Vec<std::net::UdpSocket>,
}

/// Why serving could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// An address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: String,
        /// What failed.
        source: std::io::Error,
    },
    /// TLS could not be set up.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// QUIC could not be set up.
    #[error("cannot start QUIC: {0}")]
    Quic(String),
}

impl Listeners {
    /// Binds every address of `listen`.
    ///
    /// # Errors
    /// [`ServeError::Bind`] naming the first address that cannot be bound.
    pub async fn bind(listen: &[NodeAddress]) -> Result<Self, ServeError> {
        let mut listeners = Self::default();
        for address in listen {
            let bind_error = |source| ServeError::Bind {
                address: address.to_string(),
                source,
            };
            match address.scheme {
                Scheme::Tcp => listeners.tcp.push(
                    TcpListener::bind(address.authority())
                        .await
                        .map_err(bind_error)?,
                ),
                Scheme::Https => listeners.https.push(
                    TcpListener::bind(address.authority())
                        .await
                        .map_err(bind_error)?,
                ),
                Scheme::Quic => {
                    let (socket, granted) =
                        cairn_net::quic::bind_udp(address.authority()).map_err(bind_error)?;
                    if cairn_net::quic::buffer_is_small(granted) {
                        warn!(
                            %address,
                            granted,
                            wanted = cairn_net::quic::UDP_BUFFER,
                            "the kernel capped this QUIC socket's receive buffer; under load \
                             it will drop datagrams (raise net.core.rmem_max and wmem_max)"
                        );
                    }
                    listeners.quic.push(socket);
                }
            }
        }
        Ok(listeners)
    }

    /// The addresses actually bound (with the ports the system chose for
    /// port 0), pinned to `node_id`'s node.
    pub fn addresses(&self, node: &cairn_net::NodeId) -> Vec<NodeAddress> {
        let tcp = self.tcp.iter().filter_map(|l| l.local_addr().ok());
        let https = self.https.iter().filter_map(|l| l.local_addr().ok());
        let quic = self.quic.iter().filter_map(|s| s.local_addr().ok());
        let tag = |scheme| move |a: SocketAddr| address(scheme, a, *node);
        tcp.map(tag(Scheme::Tcp))
            .chain(https.map(tag(Scheme::Https)))
            .chain(quic.map(tag(Scheme::Quic)))
            .collect()
    }
}

fn address(scheme: Scheme, socket: SocketAddr, node: cairn_net::NodeId) -> NodeAddress {
    NodeAddress {
        scheme,
        host: socket.ip().to_string(),
        port: socket.port(),
        node_id: Some(node),
    }
}

/// What every connection of every transport shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub node: Arc<Node>,
    /// One permit per connection allowed.
    pub connections: Arc<Semaphore>,
    /// One permit per KiB of request body allowed in memory.
    body_budget: Arc<Semaphore>,
    /// The permits `body_budget` was made with: what one request may take
    /// at most.
    body_budget_total: u32,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
    pub idle_timeout: Duration,
    pub request_timeout: Duration,
}

impl Shared {
    /// Waits for room for a request body of `len` bytes in the body
    /// budget, and holds it until the permit is dropped.
    ///
    /// A body larger than the whole budget (`body_memory` is only checked
    /// against `max_shard_size`, and a frame carries its header beside the
    /// shard) takes the whole budget: asking for more than exists would
    /// wait for ever.
    pub async fn body_room(&self, len: usize) -> tokio::sync::OwnedSemaphorePermit {
        let permits = u32::try_from(len.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .min(self.body_budget_total);
        self.body_budget
            .clone()
            .acquire_many_owned(permits)
            .await
            .expect("the budget is never closed")
    }

    /// Waits for the next TCP connection on `listener` that may be served:
    /// one with a `max_connections` permit (a connection beyond the limit
    /// is dropped at once and logged). `None` once shutdown begins.
    /// Accepting can fail for reasons of the whole process (out of file
    /// descriptors and the like): that is logged and waited out, not spun on.
    pub async fn accept(
        &self,
        listener: &TcpListener,
        scheme: &str,
    ) -> Option<(
        tokio::net::TcpStream,
        SocketAddr,
        tokio::sync::OwnedSemaphorePermit,
    )> {
        loop {
            let accepted = tokio::select! {
                () = self.shutdown.cancelled() => return None,
                accepted = listener.accept() => accepted,
            };
            let (tcp, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    warn!("accepting a {scheme} connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            match self.connections.clone().try_acquire_owned() {
                Ok(permit) => return Some((tcp, peer, permit)),
                Err(_) => warn!(%peer, "{scheme} connection refused: max_connections reached"),
            }
        }
    }

    /// Reads one request frame, whole, within the request timeout, holding
    /// room in the body budget for it (from its length field on, before
    /// the body is read). The permit is released when the caller drops it,
    /// once the request is answered. (`quic://` reads each stream's one
    /// frame this way; `tcp://` connections are driven around
    /// `cairn_net::conn::ServerConnection`, which asks for the same room.)
    ///
    /// `Err(None)` means the frame did not arrive in time.
    pub async fn read_request<R: tokio::io::AsyncRead + Unpin>(
        &self,
        read: &mut R,
    ) -> Result<
        (cairn_net::frame::Frame, tokio::sync::OwnedSemaphorePermit),
        Option<cairn_net::frame::FrameError>,
    > {
        use cairn_net::frame::{self, FrameError};
        let limits = *self.node.limits();
        tokio::time::timeout(
            self.request_timeout,
            frame::read_frame_with(read, &limits, |len| self.body_room(len)),
        )
        .await
        .map_err(|_| None)?
        .map_err(Some)?
        .ok_or(Some(FrameError::Truncated))
    }
}

/// Serves `node` on `listeners` until `shutdown` completes, then drains.
///
/// # Errors
/// [`ServeError`] if TLS or QUIC cannot be set up; once serving, errors
/// concern single connections and are logged, not returned.
pub async fn run(
    node: Arc<Node>,
    identity: &NodeIdentity,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let config = node.config().clone();
    // At most u32::MAX permits (4 TiB): a request asks for its room as
    // one u32, and no machine holds more in memory.
    let body_budget_total = u32::try_from(config.body_memory.0 / 1024)
        .unwrap_or(u32::MAX)
        .max(1);
    let shared = Arc::new(Shared {
        node: node.clone(),
        connections: Arc::new(Semaphore::new(config.max_connections)),
        body_budget: Arc::new(Semaphore::new(body_budget_total as usize)),
        body_budget_total,
        shutdown: CancellationToken::new(),
        tracker: TaskTracker::new(),
        idle_timeout: config.idle_timeout(),
        request_timeout: config.request_timeout(),
    });
    for address in listeners.addresses(&node.node_id()) {
        info!("serving {address}");
    }
    if !listeners.quic.is_empty() {
        info!(
            "quic:// congestion control: {} (quic_congestion)",
            config.quic_congestion
        );
    }

    let tcp_tls = Arc::new(tls::server_config(identity, &[ALPN_CAIRN])?);
    for listener in listeners.tcp {
        let (shared, tls) = (shared.clone(), tcp_tls.clone());
        shared
            .tracker
            .clone()
            .spawn(framed::accept_loop(listener, shared, tls));
    }
    if !listeners.https.is_empty() {
        let https_tls = Arc::new(tls::server_config(identity, &[ALPN_HTTP1])?);
        let api = https::Api::new(shared.clone());
        for listener in listeners.https {
            shared.tracker.clone().spawn(https::accept_loop(
                listener,
                api.clone(),
                https_tls.clone(),
            ));
        }
    }
    let mut endpoints = Vec::new();
    for socket in listeners.quic {
        let endpoint = quic::endpoint(socket, identity, &config)?;
        endpoints.push(endpoint.clone());
        shared
            .tracker
            .clone()
            .spawn(quic::accept_loop(endpoint, shared.clone()));
    }

    shared.tracker.spawn(crate::scrub::background(
        node.shared_store(),
        config.clone(),
        shared.shutdown.clone(),
    ));
    shared.tracker.spawn(crate::maintenance::migration(
        node.shared_store(),
        config.clone(),
        shared.shutdown.clone(),
    ));
    shared.tracker.spawn(crate::maintenance::compaction(
        node.shared_store(),
        config.clone(),
        shared.shutdown.clone(),
    ));

    shutdown.await;
    let busy = config.max_connections - shared.connections.available_permits();
    info!(
        "shutting down: waiting up to {:?} for {busy} connection(s) to finish",
        config.shutdown_grace()
    );
    shared.shutdown.cancel();
    shared.tracker.close();
    if tokio::time::timeout(config.shutdown_grace(), shared.tracker.wait())
        .await
        .is_err()
    {
        warn!("requests still running after the grace period were abandoned");
    }
    for endpoint in endpoints {
        endpoint.close(0u32.into(), b"node shutting down");
        let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
    }
    info!("stopped");
    Ok(())
}
