//! cairn-client: store and fetch files across a cluster of cairn nodes.
//!
//! A [`Client`] cuts a file into content-defined chunks, seals each one
//! (compression, convergent encryption), erasure-codes it into n shards
//! and places them on n distinct nodes by rendezvous hashing, so that any
//! k shards of every chunk give the file back. The file's name lives in an
//! encrypted index replicated on every node; nodes never see a name, a
//! path or plaintext.
//!
//! ```no_run
//! use cairn_client::{Client, ClientConfig, RemotePath};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ClientConfig::parse(&std::fs::read_to_string("cairn.toml")?)?;
//! let client = Client::open(&config, b"correct horse battery staple").await?;
//!
//! let remote: RemotePath = "photos/cairn.jpg".parse()?;
//! client.store(std::path::Path::new("cairn.jpg"), &remote).await?;
//! client.fetch(&remote, std::path::Path::new("copy.jpg")).await?;
//! for entry in client.list("photos").await? {
//!     println!("{} {} bytes", entry.path, entry.size);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Modules: [`config`] (settings), [`cluster`] (connections to the nodes),
//! [`placement`] (which node holds which shard), [`index`] (the sealed
//! directory entries), [`store`] and [`fetch`] (the two data paths),
//! [`directory`] (listing, lookup, removal, health).

pub mod cluster;
pub mod config;
pub mod directory;
pub mod fetch;
mod hashing;
pub mod index;
pub mod placement;
pub mod repair;
pub mod scan;
pub mod store;

use std::path::Path;
use std::sync::Mutex;

use cairn_core::keys::{ConvergenceKey, IndexKey, IndexNameKey, ManifestsKey};
use cairn_core::{KdfParams, Redundancy, UserKeys};
use cairn_net::client::{ClientError, ClientOptions};

pub use crate::cluster::{Cluster, ClusterError, Credentials};
pub use crate::config::ClientConfig;
pub use crate::directory::{FileInfo, Health};
pub use crate::fetch::{FetchError, FetchReport};
pub use crate::hashing::HashingWriter;
pub use crate::index::RemotePath;
pub use crate::store::{StoreError, StoreReport};

/// The data keys a client uses (all derived from the master key).
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    pub convergence: ConvergenceKey,
    pub index_name: IndexNameKey,
    pub index: IndexKey,
    pub manifests: ManifestsKey,
}

/// Why a client could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The configuration is not usable.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The passphrase could not be turned into keys.
    #[error(transparent)]
    Keys(#[from] cairn_core::keys::KeyError),
    /// The node list is not usable.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// A client of one user on one cluster.
#[derive(Debug)]
pub struct Client {
    pub(crate) cluster: Cluster,
    pub(crate) keys: Keys,
    pub(crate) redundancy: Redundancy,
    pub(crate) min_shards: usize,
    pub(crate) window: usize,
    /// Files up to this size are stored inline in their index entry.
    pub(crate) inline_max: usize,
    /// Breaks ties between index entries of equal version.
    pub(crate) writer: [u8; 16],
    pub(crate) clock: Mutex<crate::index::Clock>,
    /// `scan_command`, if any.
    pub(crate) scan: Option<Vec<String>>,
}

impl Client {
    /// Opens a client for `config`'s user, deriving their keys from
    /// `passphrase` (Argon2id, a few tenths of a second, off the async
    /// threads). Connections open on first use.
    ///
    /// # Errors
    /// [`OpenError`] for an unusable configuration or passphrase.
    pub async fn open(config: &ClientConfig, passphrase: &[u8]) -> Result<Self, OpenError> {
        config.validate()?;
        let user = config.user.clone();
        let passphrase = zeroize::Zeroizing::new(passphrase.to_vec());
        let keys = tokio::task::spawn_blocking(move || {
            UserKeys::derive(&user, &passphrase, &KdfParams::default())
        })
        .await
        .expect("key derivation does not panic")?;
        Self::with_keys(config, keys)
    }

    /// Opens a client with keys already derived.
    ///
    /// # Errors
    /// [`OpenError`] for an unusable configuration.
    pub fn with_keys(config: &ClientConfig, keys: UserKeys) -> Result<Self, OpenError> {
        config.validate()?;
        let options = config.client_options();
        let cluster = Cluster::new(
            &config.servers,
            Credentials::User {
                user: config.user.clone(),
                auth: keys.auth.clone(),
            },
            options,
        )?;
        Ok(Self::assemble(cluster, &keys, config))
    }

    /// A client that only fetches files by capability, without an account:
    /// it needs nothing but the servers to ask.
    ///
    /// # Errors
    /// [`OpenError::Cluster`] for an unusable server list.
    pub fn anonymous(
        servers: &[cairn_net::NodeAddress],
        options: ClientOptions,
    ) -> Result<Self, OpenError> {
        let cluster = Cluster::new(servers, Credentials::Anonymous, options)?;
        // No user keys: a random master key that opens nothing but
        // capabilities (which carry their own keys).
        let mut master = [0u8; 32];
        getrandom(&mut master);
        let keys = UserKeys {
            auth: cairn_core::AuthKey::from_bytes([0; 32]),
            master: cairn_core::keys::MasterKey::from_bytes(master),
        };
        let config = ClientConfig {
            servers: servers.to_vec(),
            ..ClientConfig::default()
        };
        Ok(Self::assemble(cluster, &keys, &config))
    }

    fn assemble(cluster: Cluster, keys: &UserKeys, config: &ClientConfig) -> Self {
        let redundancy = config
            .redundancy()
            .unwrap_or_else(|_| Redundancy::default_for(cluster.len()));
        let mut writer = [0u8; 16];
        getrandom(&mut writer);
        Self {
            keys: Keys {
                convergence: keys.master.convergence_key(),
                index_name: keys.master.index_name_key(),
                index: keys.master.index_key(),
                manifests: keys.master.manifests_key(),
            },
            redundancy,
            min_shards: config.min_shards(),
            window: config.window.max(1),
            inline_max: config.inline_max.min(crate::index::MAX_INLINE_LEN),
            writer,
            clock: Mutex::new(crate::index::Clock::default()),
            scan: config.scan_command.clone(),
            cluster,
        }
    }

    /// Sets the program that scans every file stored and fetched (see
    /// [`ClientConfig::scan_command`]); for clients not opened from a
    /// config, such as [`anonymous`](Self::anonymous) ones.
    pub fn set_scan_command(&mut self, argv: Option<Vec<String>>) {
        self.scan = argv;
    }

    /// Stores the file at `local` as `remote`.
    ///
    /// # Errors
    /// See [`StoreError`].
    pub async fn store(
        &self,
        local: &Path,
        remote: &RemotePath,
    ) -> Result<StoreReport, StoreError> {
        self.store_file(local, remote, &|_| {}).await
    }

    /// Fetches `remote` into `local` (which must not exist yet).
    ///
    /// # Errors
    /// See [`FetchError`].
    pub async fn fetch(
        &self,
        remote: &RemotePath,
        local: &Path,
    ) -> Result<FetchReport, FetchError> {
        self.fetch_file(remote, local, false, &|_| {}).await
    }

    /// The files at or under `prefix` (everything for `""`), in path order.
    ///
    /// # Errors
    /// [`directory::DirectoryError::NoNode`] if no node answers.
    pub async fn list(&self, prefix: &str) -> Result<Vec<FileInfo>, directory::DirectoryError> {
        self.list_files(prefix, false).await
    }

    /// The redundancy new files are stored with.
    pub fn redundancy(&self) -> Redundancy {
        self.redundancy
    }

    /// The cluster.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Tries every node; returns which answered.
    pub(crate) async fn reachable(&self) -> Vec<Result<(), ClientError>> {
        self.cluster.connect_all().await
    }

    /// The nodes that failed in `attempts`, as `address (why)`.
    pub(crate) fn failures(&self, attempts: &[Result<(), ClientError>]) -> Vec<String> {
        attempts
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                r.as_ref()
                    .err()
                    .map(|e| format!("{} ({e})", self.cluster.address(i)))
            })
            .collect()
    }

    /// The nodes currently marked down, as `address (why)`.
    pub(crate) fn down_nodes(&self) -> Vec<String> {
        self.cluster.failures()
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.cluster.close().await;
    }
}

/// Fills `buf` from the system's random source.
fn getrandom(buf: &mut [u8]) {
    // aws-lc-rs is already linked for TLS; its RNG reads the OS source.
    aws_lc_rs::rand::fill(buf).expect("the system random source works");
}
