//! The nodes a client talks to, and its connections to them.
//!
//! A [`Cluster`] holds one slot per configured node, in configuration
//! order. Connections are opened on first use (all at once by
//! [`Cluster::connect_all`], each within the connect timeout), logged in
//! with the key derived for that node from the user's auth key, and kept
//! for reuse. One request makes a node's connection; requests made
//! meanwhile wait for it (reads in a hurry stop waiting for an attempt
//! that has run past [`Cluster::CONNECT_PATIENCE`]).
//!
//! # Retries, and when a node is down
//!
//! A link can break without its node being gone: a cut connection, a
//! corrupted byte in a TLS stream (which fails the record's AEAD and ends
//! the connection), a NAT that forgot the flow. So:
//!
//! - A request whose connection breaks under it ([`ClientError::Broken`])
//!   is sent again on a fresh connection, after a short backoff. Requests
//!   are idempotent (content-addressed shards, versioned index entries), and
//!   a shard the node stored before the break is not sent again: the store
//!   path asks first for large shards.
//! - The broken connection is dropped once: requests that broke on it
//!   share the one fresh connection, and a request whose connection was
//!   already replaced does not drop the replacement.
//! - A retry that follows progress (the connection carried answers, to
//!   this request or others, while the failed attempt ran) is free;
//!   [`Cluster::ATTEMPTS`] fruitless attempts in a row, or
//!   [`Cluster::MAX_ATTEMPTS`] in all, give up.
//! - A connection found gone before a request uses it (it broke while
//!   idle) is replaced without counting as an attempt.
//! - A connection that stalls rather than dies (over TLS, a corrupted
//!   record length leaves the reader waiting for bytes that never come) is
//!   found by `cairn_net`'s liveness check on `tcp://` within about two
//!   ping intervals and ends as [`ClientError::Broken`], retried as above.
//!   Where no check runs (`https://`, nodes of protocol version 1), a
//!   request that times out is sent once more on a fresh connection; a node
//!   that stalls the fresh connection too is down.
//! - A node is marked down for [`Cluster::RETRY_AFTER`] only when a fresh
//!   connection cannot be made (a refusal, a connect timeout, a failed
//!   handshake or login, each tried twice unless it timed out), when a
//!   request gives up its retries, or when it times out twice. So a dead
//!   node costs a connect timeout once, not on every request, and a node
//!   that accepts connections and then never answers costs at most a
//!   request timeout plus a connect timeout (or two request timeouts if it
//!   still completes handshakes); after that the next use tries it again.
//!
//! Every node must be pinned (`URL#NODE_ID`): placement is computed from
//! node ids, and a node that cannot prove its id is not the node the data
//! was placed on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_core::AuthKey;
use cairn_net::client::{ClientError, ClientOptions, Connection};
use cairn_net::{NodeAddress, NodeId};
use tracing::debug;

/// Who a cluster's connections act for.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// Log in as `user` on every node, with the key derived for that node.
    User {
        /// The user name.
        user: String,
        /// The user's auth key (never sent; see `cairn_core::keys`).
        auth: AuthKey,
    },
    /// Do not log in: enough to read shards from nodes with public reads
    /// (fetching a file by its capability).
    Anonymous,
}

/// Why a cluster could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// No node is configured.
    #[error("no server is configured")]
    Empty,
    /// A node's address carries no node id.
    #[error("{0} has no #NODE_ID: every server must be pinned")]
    Unpinned(String),
    /// Two addresses name the same node.
    #[error("{0} and {1} are the same node")]
    Duplicate(String, String),
}

#[derive(Debug)]
struct Slot {
    address: NodeAddress,
    id: NodeId,
    /// The open connection, if any, with its generation (a short lock:
    /// cloned out, never held across an await).
    connection: Mutex<Option<(u64, Connection)>>,
    /// Generation of the next connection.
    generation: AtomicU64,

    /// Held while connecting, so that one request connects and the others
    /// wait for it (or, in a hurry, go elsewhere once it has taken longer
    /// than [`Cluster::CONNECT_PATIENCE`]).
    connecting: Arc<tokio::sync::Mutex<()>>,
    /// When the connection attempt in progress started (tokio's clock).
    connecting_since: Mutex<Option<tokio::time::Instant>>,
    down_until: Mutex<Option<Instant>>,
    /// Why the node last failed, for error messages.
    last_error: Mutex<Option<String>>,
    /// The node refused the login: kept for the client's life, since
    /// asking again would only wait out the node's throttle to hear the same.
    refused: Mutex<Option<String>>,
}

impl Slot {
    /// Whether a connection attempt in progress has run longer than a live
    /// node needs to answer one.
    fn attempt_is_slow(&self) -> bool {
        self.connecting_since
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|since| since.elapsed() >= Cluster::CONNECT_PATIENCE)
    }

    fn mark_down(&self, why: &dyn std::fmt::Display) {
        debug!(node = %self.address, "marking node down: {why}");
        *self.down_until.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(Instant::now() + Cluster::RETRY_AFTER);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(why.to_string());
    }
}

/// The configured nodes and the client's connections to them.
#[derive(Debug)]
pub struct Cluster {
    slots: Vec<Arc<Slot>>,
    credentials: Credentials,
    options: ClientOptions,
}

impl Cluster {
    /// How long a node that failed is skipped before it is tried again.
    pub const RETRY_AFTER: Duration = Duration::from_secs(10);

    /// Attempts of a request, in a row, on connections that broke while
    /// the node answered nothing else; then the node is marked down.
    pub const ATTEMPTS: u32 = 4;

    /// Attempts of a request in all, progress or not.
    pub const MAX_ATTEMPTS: u32 = 16;

    /// How long a connection attempt may run before requests in a hurry
    /// ([`on_now`](Self::on_now)) stop waiting for it and go elsewhere. A
    /// live node completes TCP, TLS, the hello and the login in a few round
    /// trips; an attempt that runs longer is most likely to a dead node,
    /// which over QUIC answers nothing until the connect timeout (3 s).
    pub const CONNECT_PATIENCE: Duration = Duration::from_secs(1);

    /// Wait before retrying a request whose connection broke, after
    /// `fruitless` attempts in a row that saw no progress: 10 ms after
    /// progress, then 50, 200 and 800 ms.
    fn backoff(fruitless: u32) -> Duration {
        match fruitless {
            0 => Duration::from_millis(10),
            n => Duration::from_millis(50 << (2 * (n - 1).min(3))),
        }
    }

    /// A cluster of `servers` (pinned addresses), acting with `credentials`.
    ///
    /// # Errors
    /// [`ClusterError`] for no servers, an unpinned address, or the same
    /// node listed twice.
    pub fn new(
        servers: &[NodeAddress],
        credentials: Credentials,
        options: ClientOptions,
    ) -> Result<Self, ClusterError> {
        if servers.is_empty() {
            return Err(ClusterError::Empty);
        }
        let mut slots: Vec<Arc<Slot>> = Vec::with_capacity(servers.len());
        for address in servers {
            let id = address
                .node_id
                .ok_or_else(|| ClusterError::Unpinned(address.to_string()))?;
            if let Some(other) = slots.iter().find(|s| s.id == id) {
                return Err(ClusterError::Duplicate(
                    other.address.to_string(),
                    address.to_string(),
                ));
            }
            slots.push(Arc::new(Slot {
                address: address.clone(),
                id,
                connection: Mutex::new(None),
                generation: AtomicU64::new(0),
                connecting: Arc::new(tokio::sync::Mutex::new(())),
                connecting_since: Mutex::new(None),
                down_until: Mutex::new(None),
                last_error: Mutex::new(None),
                refused: Mutex::new(None),
            }));
        }
        Ok(Self {
            slots,
            credentials,
            options,
        })
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no nodes (never true for a built cluster).
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The nodes' ids, in configuration order.
    pub fn node_ids(&self) -> Vec<NodeId> {
        self.slots.iter().map(|s| s.id).collect()
    }

    /// Node `index`'s address.
    pub fn address(&self, index: usize) -> &NodeAddress {
        &self.slots[index].address
    }

    /// The client options in use.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// Whether node `index` is marked down (it failed recently).
    pub fn is_down(&self, index: usize) -> bool {
        let down = self.slots[index]
            .down_until
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        down.is_some_and(|until| Instant::now() < until)
    }

    /// Marks node `index` down after a failure, dropping its connection.
    pub async fn mark_down(&self, index: usize, why: &(dyn std::fmt::Display + Sync)) {
        let slot = &self.slots[index];
        slot.mark_down(why);
        let connection = slot
            .connection
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some((_, connection)) = connection {
            close_soon(connection);
        }
    }

    /// Drops node `index`'s connection if it is still generation
    /// `generation` (another request may have replaced it already).
    fn forget(&self, index: usize, generation: u64) {
        let mut cached = self.slots[index]
            .connection
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if cached.as_ref().is_some_and(|(g, _)| *g == generation) {
            let (_, connection) = cached.take().expect("checked");
            drop(cached);
            close_soon(connection);
        }
    }

    /// A logged-in connection to node `index`, opening it if needed (a
    /// request that finds another one connecting waits for it).
    ///
    /// # Errors
    /// The connection error; the node is then marked down. A node already
    /// marked down fails at once with [`ClientError::Broken`].
    pub async fn connection(&self, index: usize) -> Result<Connection, ClientError> {
        Ok(self.connection_with(index, true).await?.1)
    }

    /// The open connection of node `index`; one known to be gone is
    /// dropped instead (it broke while no request was using it).
    fn cached(&self, index: usize) -> Option<(u64, Connection)> {
        let mut cached = self.slots[index]
            .connection
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if cached.as_ref().is_some_and(|(_, c)| c.is_closed()) {
            let (_, connection) = cached.take().expect("checked");
            drop(cached);
            close_soon(connection);
            return None;
        }
        cached.clone()
    }

    async fn connection_with(
        &self,
        index: usize,
        wait: bool,
    ) -> Result<(u64, Connection), ClientError> {
        let slot = &self.slots[index];
        if let Some(connection) = self.cached(index) {
            return Ok(connection);
        }
        let refused = slot
            .refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(message) = refused {
            return Err(ClientError::Node(cairn_net::protocol::ErrorBody::new(
                cairn_net::protocol::ErrorCode::Unauthorized,
                message,
            )));
        }
        let down = || {
            let why = slot
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .unwrap_or_else(|| "it failed".into());
            ClientError::Broken(format!("{why} (not retried for a few seconds)"))
        };
        if self.is_down(index) {
            return Err(down());
        }
        // A node reached before whose connection broke is most likely being
        // reconnected in a moment: worth waiting for, even in a hurry.
        let wait = wait || slot.generation.load(Ordering::Relaxed) > 0;
        let connecting = match slot.connecting.clone().try_lock_owned() {
            Ok(connecting) => connecting,
            // Another request is connecting: wait for its connection (a
            // request made meanwhile failing at once was issue 12's three
            // failed shard requests of four), unless, in a hurry, the
            // attempt has already run longer than a live node needs.
            Err(_) if !wait && slot.attempt_is_slow() => {
                return Err(ClientError::Broken(format!(
                    "{} is still being connected to",
                    slot.address
                )));
            }
            Err(_) => slot.connecting.clone().lock_owned().await,
        };
        // Whoever held the lock before may have connected, or failed.
        if let Some(connection) = self.cached(index) {
            return Ok(connection);
        }
        if self.is_down(index) {
            return Err(down());
        }
        // The attempt runs as a task of its own and always finishes, even
        // if this request stops waiting (a read that found its shards
        // elsewhere): a dead node is then marked down once, instead of
        // every later request starting an attempt that hangs in its turn.
        let slot = slot.clone();
        let options = self.options.clone();
        let credentials = self.credentials.clone();
        *slot
            .connecting_since
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(tokio::time::Instant::now());
        let attempt = tokio::spawn(async move {
            let _connecting = connecting;
            let connect = || async {
                let connection = Connection::connect(&slot.address, &options, false).await?;
                if let Credentials::User { user, auth } = &credentials {
                    let key = auth.for_node(slot.id.0.as_bytes());
                    connection.login(user, key.expose_secret()).await?;
                }
                Ok::<_, ClientError>(connection)
            };
            let mut result = connect().await;
            // A link that broke during the handshake (a lost or corrupted
            // packet, a reset) says nothing about the node: once more. A
            // timeout is not retried, so that a dead node costs one.
            if let Err(e) = &result
                && link_failure(e)
            {
                debug!(node = %slot.address, "connecting failed, trying once more: {e}");
                tokio::time::sleep(Cluster::backoff(1)).await;
                result = connect().await;
            }
            *slot
                .connecting_since
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = None;
            let result = result
                .map(|connection| (slot.generation.fetch_add(1, Ordering::Relaxed), connection));
            match &result {
                Ok((generation, connection)) => {
                    *slot.connection.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some((*generation, connection.clone()));
                    *slot.down_until.lock().unwrap_or_else(|p| p.into_inner()) = None;
                }
                // Wrong credentials are not a sign of a dead node, but they
                // will not change while this client lives.
                Err(ClientError::Node(body))
                    if body.code == cairn_net::protocol::ErrorCode::Unauthorized =>
                {
                    *slot.refused.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some(body.message.clone());
                }
                Err(e) => slot.mark_down(e),
            }
            result
        });
        attempt
            .await
            .map_err(|e| ClientError::Broken(format!("the connection attempt failed: {e}")))?
    }

    /// Connects to every node at once; returns which answered.
    pub async fn connect_all(&self) -> Vec<Result<(), ClientError>> {
        let attempts = (0..self.len()).map(|i| async move { self.connection(i).await.map(drop) });
        futures::future::join_all(attempts).await
    }

    /// Runs `op` on node `index`'s connection; if the connection breaks
    /// under it, runs it again on a fresh one, as the module docs describe
    /// (so `op` must be safe to repeat). A connection that cannot be made,
    /// retries given up, or a timeout mark the node down (a node's refusal
    /// does not).
    ///
    /// # Errors
    /// The connection's or the operation's error.
    pub async fn on<T, F, Fut>(&self, index: usize, op: F) -> Result<T, ClientError>
    where
        F: Fn(Connection) -> Fut,
        Fut: std::future::Future<Output = Result<T, ClientError>>,
    {
        self.on_with(index, true, op).await
    }

    /// As [`on`](Self::on), but for reads that other nodes can serve (a
    /// shard has n − k stand-ins): a request that finds another one making
    /// the first connection to the node waits for it as `on` does, unless
    /// that attempt has already run for [`Self::CONNECT_PATIENCE`]; then it
    /// fails at once, so that a node whose connection attempt hangs for the
    /// connect timeout (a dead node over QUIC) does not hold reads up. A
    /// node connected to before is always waited for (its connection broke
    /// and is being made again, usually in a moment).
    ///
    /// # Errors
    /// As [`on`](Self::on).
    pub async fn on_now<T, F, Fut>(&self, index: usize, op: F) -> Result<T, ClientError>
    where
        F: Fn(Connection) -> Fut,
        Fut: std::future::Future<Output = Result<T, ClientError>>,
    {
        self.on_with(index, false, op).await
    }

    async fn on_with<T, F, Fut>(&self, index: usize, wait: bool, op: F) -> Result<T, ClientError>
    where
        F: Fn(Connection) -> Fut,
        Fut: std::future::Future<Output = Result<T, ClientError>>,
    {
        let slot = &self.slots[index];
        let mut wait = wait;
        let (mut attempts, mut fruitless) = (0, 0);
        let mut timed_out = false;
        loop {
            let (generation, connection) = self.connection_with(index, wait).await?;
            let answered = connection.answers();
            let result = op(connection.clone()).await;
            attempts += 1;
            match &result {
                Err(e @ ClientError::Broken(_)) => {
                    // Answers on the connection since this attempt began
                    // (to this request or others): the link carried
                    // traffic, only this connection died.
                    if connection.answers() == answered {
                        fruitless += 1;
                    } else {
                        fruitless = 0;
                    }
                    if fruitless >= Self::ATTEMPTS || attempts >= Self::MAX_ATTEMPTS {
                        self.mark_down(index, e).await;
                        return result;
                    }
                    debug!(node = %slot.address, attempts, "connection broke, retrying: {e}");
                    self.forget(index, generation);
                    tokio::time::sleep(Self::backoff(fruitless)).await;
                    // The fresh connection is worth waiting for: another
                    // request is probably making it right now.
                    wait = true;
                }
                // A stalled connection that no liveness check ended (a lost
                // answer: over TLS, a corrupted record length leaves the
                // reader waiting for bytes that never come) gets one fresh
                // connection; a node that stalls that one too is down. A
                // node that no longer accepts connections is found by the
                // connect.
                Err(e @ ClientError::Timeout { .. }) => {
                    if timed_out || attempts >= Self::MAX_ATTEMPTS {
                        self.mark_down(index, e).await;
                        return result;
                    }
                    debug!(node = %slot.address, "request timed out, retrying on a fresh connection: {e}");
                    timed_out = true;
                    self.forget(index, generation);
                    wait = true;
                }
                _ => return result,
            }
        }
    }

    /// The nodes marked down, each as `address (why)`.
    pub fn failures(&self) -> Vec<String> {
        self.down_nodes()
            .into_iter()
            .map(|(i, why)| format!("{} ({why})", self.slots[i].address))
            .collect()
    }

    /// The nodes marked down, each as its index and why it failed.
    pub fn down_nodes(&self) -> Vec<(usize, String)> {
        (0..self.len())
            .filter(|&i| self.is_down(i))
            .map(|i| {
                let why = self.slots[i]
                    .last_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone()
                    .unwrap_or_default();
                (i, why)
            })
            .collect()
    }

    /// Closes every connection.
    pub async fn close(&self) {
        for slot in &self.slots {
            let connection = slot
                .connection
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            if let Some((_, connection)) = connection {
                // A node that stopped reading would hold a close (which
                // writes) forever.
                let _ = tokio::time::timeout(CLOSE_WAIT, connection.close()).await;
            }
        }
    }
}

/// Longest wait for a connection's polite close.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Closes `connection` in the background, giving up after [`CLOSE_WAIT`]:
/// the request that dropped it does not wait for a node that stopped
/// reading.
fn close_soon(connection: Connection) {
    tokio::spawn(async move {
        let _ = tokio::time::timeout(CLOSE_WAIT, connection.close()).await;
    });
}

/// Whether a failed connection attempt failed on the way (a reset, a broken
/// handshake) rather than finding no node, the wrong node, or no answer in
/// time.
fn link_failure(error: &ClientError) -> bool {
    match error {
        ClientError::Broken(_) | ClientError::Handshake { .. } => true,
        ClientError::Connect { source, .. } => {
            source.kind() != std::io::ErrorKind::ConnectionRefused
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    //! Issue 12: `cairn get --cap` against one node answered three of its
    //! four shard requests with "… is still being connected to": reads
    //! made while the first connection was being set up failed at once
    //! instead of waiting for it, and only their retries reached the node.

    use std::path::Path;
    use std::sync::atomic::AtomicUsize;

    use cairn_net::identity::NodeIdentity;
    use cairn_net::protocol::ErrorCode;
    use cairn_net::{NodeAddress, Scheme};
    use tokio::net::TcpListener;

    use super::*;

    /// A node in this process, behind a forwarder that counts the
    /// connections made to it.
    async fn counted_node(dir: &Path) -> (NodeAddress, Arc<AtomicUsize>) {
        let identity = NodeIdentity::generate(&["127.0.0.1".into()]).unwrap();
        let store = cairn_store::Store::open(dir, cairn_store::StoreOptions::default()).unwrap();
        let listen = vec![NodeAddress {
            scheme: Scheme::Tcp,
            host: "127.0.0.1".into(),
            port: 0,
            node_id: None,
        }];
        let listeners = cairn_node::server::Listeners::bind(&listen).await.unwrap();
        let direct = listeners.addresses(&identity.id()).remove(0);
        let config = cairn_node::NodeConfig {
            listen,
            ..cairn_node::NodeConfig::default()
        };
        let node = Arc::new(cairn_node::Node::new(store, identity.id(), config));
        tokio::spawn(async move {
            cairn_node::server::run(node, &identity, listeners, std::future::pending()).await
        });
        let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = front.local_addr().unwrap().port();
        let count = Arc::new(AtomicUsize::new(0));
        let counted = count.clone();
        let target = direct.authority();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = front.accept().await {
                counted.fetch_add(1, Ordering::Relaxed);
                let target = target.clone();
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        (NodeAddress { port, ..direct }, count)
    }

    /// On one thread, the four reads all start before the connection
    /// attempt can make progress, every time.
    #[tokio::test]
    async fn reads_made_while_the_first_connection_is_made_wait_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let (address, connections) = counted_node(dir.path()).await;
        let cluster =
            Cluster::new(&[address], Credentials::Anonymous, ClientOptions::default()).unwrap();
        let id = cairn_core::Id::of(b"no such shard");
        let reads = (0..4).map(|_| cluster.on_now(0, |c| async move { c.get_shard(&id).await }));
        for result in futures::future::join_all(reads).await {
            // Each read reached the node, which has no such shard.
            match result {
                Err(ClientError::Node(body)) => assert_eq!(body.code, ErrorCode::NotFound),
                other => panic!("a read did not reach the node: {other:?}"),
            }
        }
        assert_eq!(
            connections.load(Ordering::Relaxed),
            1,
            "one connection for the four reads"
        );
        assert!(!cluster.is_down(0));
    }

    /// Reads in a hurry still skip a node whose connection attempt has run
    /// past the patience (a dead node over QUIC answers nothing until the
    /// connect timeout), so that they are not held up by it; one made
    /// while the attempt was young waits for its end.
    #[tokio::test(start_paused = true)]
    async fn reads_in_a_hurry_skip_an_attempt_that_runs_long() {
        // The kernel accepts the connection; nothing ever answers on it.
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = silent.local_addr().unwrap().port();
        let id = NodeIdentity::generate(&["127.0.0.1".into()]).unwrap().id();
        let address = format!("tcp://127.0.0.1:{port}")
            .parse::<NodeAddress>()
            .unwrap()
            .with_node_id(id);
        let cluster = Arc::new(
            Cluster::new(&[address], Credentials::Anonymous, ClientOptions::default()).unwrap(),
        );
        let read = |cluster: Arc<Cluster>, hurry: bool| async move {
            let op = |c: Connection| async move { c.info().await };
            if hurry {
                cluster.on_now(0, op).await
            } else {
                cluster.on(0, op).await
            }
        };
        let start = tokio::time::Instant::now();
        let first = read(cluster.clone(), false);
        let young = async {
            tokio::time::sleep(Cluster::CONNECT_PATIENCE / 2).await;
            let result = read(cluster.clone(), true).await;
            (result, start.elapsed())
        };
        let late = async {
            tokio::time::sleep(Cluster::CONNECT_PATIENCE * 3 / 2).await;
            let asked = tokio::time::Instant::now();
            let result = read(cluster.clone(), true).await;
            (result, asked.elapsed())
        };
        let (first, (young, young_done), (late, late_waited)) = tokio::join!(first, young, late);
        assert!(
            matches!(&late, Err(ClientError::Broken(why)) if why.contains("still being connected")),
            "{late:?}"
        );
        assert_eq!(late_waited, Duration::ZERO, "the late read waited");
        assert!(
            matches!(first, Err(ClientError::Timeout { .. })),
            "{first:?}"
        );
        // The young read waited for the attempt's end (the connect timeout),
        // and then found the node down.
        assert!(matches!(young, Err(ClientError::Broken(_))), "{young:?}");
        assert!(
            young_done >= ClientOptions::default().connect_timeout,
            "{young_done:?}"
        );
        assert!(cluster.is_down(0));
        drop(silent);
    }
}
