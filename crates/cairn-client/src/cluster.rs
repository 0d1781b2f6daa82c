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

use std::sync::Mutex;
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
    connection: tokio::sync::Mutex<Option<Connection>>,
    down_until: Mutex<Option<Instant>>,
    /// Why the node last failed, for error messages.
    last_error: Mutex<Option<String>>,
}

/// The configured nodes and the client's connections to them.
#[derive(Debug)]
pub struct Cluster {
    slots: Vec<Slot>,
    credentials: Credentials,
    options: ClientOptions,
}

impl Cluster {
    /// How long a node that failed is skipped before it is tried again.
    pub const RETRY_AFTER: Duration = Duration::from_secs(10);

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
        let mut slots: Vec<Slot> = Vec::with_capacity(servers.len());
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
            slots.push(Slot {
                address: address.clone(),
                id,
                connection: tokio::sync::Mutex::new(None),
                down_until: Mutex::new(None),
                last_error: Mutex::new(None),
            });
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
        debug!(node = %slot.address, "marking node down: {why}");
        *slot.down_until.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(Instant::now() + Self::RETRY_AFTER);
        *slot.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(why.to_string());
        if let Some(connection) = slot.connection.lock().await.take() {
            connection.close().await;
        }
    }

    /// A logged-in connection to node `index`, opening it if needed.
    ///
    /// # Errors
    /// The connection error; the node is then marked down. A node already
    /// marked down fails at once with [`ClientError::Broken`].
    pub async fn connection(&self, index: usize) -> Result<Connection, ClientError> {
        let slot = &self.slots[index];
        if self.is_down(index) {
            return Err(ClientError::Broken(format!(
                "{} failed recently; not retried for a few seconds",
                slot.address
            )));
        }
        let mut cached = slot.connection.lock().await;
        if let Some(connection) = cached.as_ref() {
            return Ok(connection.clone());
        }
        let result = async {
            let connection = Connection::connect(&slot.address, &self.options, false).await?;
            if let Credentials::User { user, auth } = &self.credentials {
                let key = auth.for_node(slot.id.0.as_bytes());
                connection.login(user, key.expose_secret()).await?;
            }
            Ok::<_, ClientError>(connection)
        }
        .await;
        match result {
            Ok(connection) => {
                *cached = Some(connection.clone());
                *slot.down_until.lock().unwrap_or_else(|p| p.into_inner()) = None;
                Ok(connection)
            }
            Err(e) => {
                drop(cached);
                // Wrong credentials are not a sign of a dead node.
                if e.code() != Some(cairn_net::protocol::ErrorCode::Unauthorized) {
                    self.mark_down(index, &e).await;
                }
                Err(e)
            }
        }
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
        let connection = self.connection(index).await?;
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

    /// Closes every connection.
    pub async fn close(&self) {
        for slot in &self.slots {
            if let Some(connection) = slot.connection.lock().await.take() {
                connection.close().await;
            }
        }
    }
}
