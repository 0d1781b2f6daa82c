//! The nodes a client talks to, and its connections to them.
//!
//! A [`Cluster`] holds one slot per configured node, in configuration
//! order. Connections are opened on first use (all at once by
//! [`Cluster::connect_all`], each within the connect timeout), logged in
//! with the key derived for that node from the user's auth key, and kept
//! for reuse. A node that cannot be reached, or whose connection breaks,
//! is marked down for [`Cluster::RETRY_AFTER`], so one dead node costs a
//! connect timeout once, not on every request; after that the next use
//! tries it again.
//!
//! Every node must be pinned (`URL#NODE_ID`): placement is computed from
//! node ids, and a node that cannot prove its id is not the node the data
//! was placed on.

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
    /// The open connection, if any (a short lock: cloned out, never held
    /// across an await).
    connection: Mutex<Option<Connection>>,
    /// Held while connecting, so that one request connects and the others
    /// wait for it (or, in a hurry, go elsewhere).
    connecting: Arc<tokio::sync::Mutex<()>>,
    down_until: Mutex<Option<Instant>>,
    /// Why the node last failed, for error messages.
    last_error: Mutex<Option<String>>,
    /// The node refused the login: kept for the client's life, since
    /// asking again would only wait out the node's throttle to hear the same.
    refused: Mutex<Option<String>>,
}

impl Slot {
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

    /// How long a quorum operation waits for the remaining nodes once a
    /// majority has answered.
    pub const QUORUM_GRACE: Duration = Duration::from_millis(250);

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
                connecting: Arc::new(tokio::sync::Mutex::new(())),
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
    pub async fn mark_down(&self, index: usize, why: &dyn std::fmt::Display) {
        let slot = &self.slots[index];
        slot.mark_down(why);
        let connection = slot
            .connection
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(connection) = connection {
            connection.close().await;
        }
    }

    /// A logged-in connection to node `index`, opening it if needed (a
    /// request that finds another one connecting waits for it).
    ///
    /// # Errors
    /// The connection error; the node is then marked down. A node already
    /// marked down fails at once with [`ClientError::Broken`].
    pub async fn connection(&self, index: usize) -> Result<Connection, ClientError> {
        self.connection_with(index, true).await
    }

    fn cached(&self, index: usize) -> Option<Connection> {
        self.slots[index]
            .connection
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    async fn connection_with(&self, index: usize, wait: bool) -> Result<Connection, ClientError> {
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
        let connecting = if wait {
            slot.connecting.clone().lock_owned().await
        } else {
            slot.connecting.clone().try_lock_owned().map_err(|_| {
                ClientError::Broken(format!("{} is still being connected to", slot.address))
            })?
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
        let attempt = tokio::spawn(async move {
            let _connecting = connecting;
            let result = async {
                let connection = Connection::connect(&slot.address, &options, false).await?;
                if let Credentials::User { user, auth } = &credentials {
                    let key = auth.for_node(slot.id.0.as_bytes());
                    connection.login(user, key.expose_secret()).await?;
                }
                Ok::<_, ClientError>(connection)
            }
            .await;
            match &result {
                Ok(connection) => {
                    *slot.connection.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some(connection.clone());
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

    /// Runs `op` on node `index`'s connection; a broken connection or a
    /// timeout marks the node down (a node's refusal does not).
    ///
    /// # Errors
    /// The connection's or the operation's error.
    pub async fn on<T, F, Fut>(&self, index: usize, op: F) -> Result<T, ClientError>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: std::future::Future<Output = Result<T, ClientError>>,
    {
        self.on_with(index, true, op).await
    }

    /// As [`on`](Self::on), but fails at once instead of waiting while
    /// another request is connecting to the node: for reads that can be
    /// served by other nodes (a shard has n − k stand-ins), so that a node
    /// whose connection attempt hangs for the connect timeout does not hold
    /// them up.
    ///
    /// # Errors
    /// As [`on`](Self::on).
    pub async fn on_now<T, F, Fut>(&self, index: usize, op: F) -> Result<T, ClientError>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: std::future::Future<Output = Result<T, ClientError>>,
    {
        self.on_with(index, false, op).await
    }

    async fn on_with<T, F, Fut>(&self, index: usize, wait: bool, op: F) -> Result<T, ClientError>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: std::future::Future<Output = Result<T, ClientError>>,
    {
        let connection = self.connection_with(index, wait).await?;
        let result = op(connection).await;
        if let Err(e) = &result
            && matches!(e, ClientError::Broken(_) | ClientError::Timeout { .. })
        {
            self.mark_down(index, e).await;
        }
        result
    }

    /// The nodes marked down, each as `address (why)`.
    pub fn failures(&self) -> Vec<String> {
        (0..self.len())
            .filter(|&i| self.is_down(i))
            .map(|i| {
                let why = self.slots[i]
                    .last_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone()
                    .unwrap_or_default();
                format!("{} ({why})", self.slots[i].address)
            })
            .collect()
    }

    /// Nodes that must acknowledge an index write: a majority.
    pub fn write_quorum(&self) -> usize {
        self.len() / 2 + 1
    }

    /// Nodes whose answers to an index read are enough: any this many
    /// include one of every write quorum (R + W > N), so together they hold
    /// the newest entry a write quorum acknowledged.
    pub fn read_quorum(&self) -> usize {
        self.len() - self.write_quorum() + 1
    }

    /// Runs `op` on every node at once and returns each node's result, in
    /// node order, as soon as every node answered, or `needed` succeeded and
    /// the others had [`Self::QUORUM_GRACE`] more to answer; nodes cut short
    /// that way report a timeout.
    ///
    /// With `needed` a read or write quorum, a dead node (whose connection
    /// attempt can take the whole connect timeout, as over QUIC, where
    /// nothing refuses the connection) does not hold up reads and writes of
    /// the index once enough nodes have answered.
    pub async fn quorum<T, F, Fut>(&self, needed: usize, op: F) -> Vec<Result<T, ClientError>>
    where
        F: Fn(usize) -> Fut,
        Fut: std::future::Future<Output = Result<T, ClientError>>,
    {
        use futures::stream::{FuturesUnordered, StreamExt};
        let mut pending: FuturesUnordered<_> = (0..self.len())
            .map(|node| {
                let future = op(node);
                async move { (node, future.await) }
            })
            .collect();
        let mut results: Vec<Option<Result<T, ClientError>>> =
            (0..self.len()).map(|_| None).collect();
        let mut succeeded = 0;
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            let next = match deadline {
                Some(deadline) => match tokio::time::timeout_at(deadline, pending.next()).await {
                    Ok(next) => next,
                    Err(_) => break,
                },
                None => pending.next().await,
            };
            let Some((node, result)) = next else { break };
            if result.is_ok() {
                succeeded += 1;
            }
            results[node] = Some(result);
            if succeeded >= needed && deadline.is_none() {
                deadline = Some(tokio::time::Instant::now() + Self::QUORUM_GRACE);
            }
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(ClientError::Timeout {
                        what: "an answer after a quorum had answered".into(),
                        after: Self::QUORUM_GRACE,
                    })
                })
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
            if let Some(connection) = connection {
                connection.close().await;
            }
        }
    }
}
