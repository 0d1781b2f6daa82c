//! The façade: [`Client`], the one type an application holds.
//!
//! A client owns a [`Transport`] and the two layers over it, and every
//! public operation is a few lines here that hand the work to the module
//! that does it:
//!
//! ```text
//! Client ── store*, store_tree ─▶ store, tree ─┐
//!        ── fetch*              ─▶ fetch       ├─▶ index layer ─┐
//!        ── capability          ─▶ share       │   (names)      ├─▶ Transport ─▶ nodes
//!        ── list, stat, verify, remove ─▶ directory             │
//!        ── repair              ─▶ repair    ──┴─▶ shard layer ─┘
//!                                                  (stripes; placement)
//! ```
//!
//! Nothing else in the crate implements `Client`; the modules behind it
//! take the layers they need, borrowed (`Put`, `Get`, `Directory`,
//! `Repair`), and never call back up into the façade.

use std::path::Path;
use std::sync::Arc;

use cairn_core::{Capability, KdfParams, Redundancy, UserKeys};
use cairn_net::client::ClientOptions;
use tokio::io::AsyncWrite;

use crate::cluster::{Cluster, ClusterError, Credentials};
use crate::config::ClientConfig;
use crate::directory::{
    Changes, Directory, DirectoryError, FileInfo, FileLayout, ListItem, RemoveReport,
};
use crate::fetch::{FetchError, FetchReport, Get};
use crate::index::{ChangeCursor, Content, Index, RemotePath};
use crate::repair::{Repair, RepairReport};
use crate::shards::Shards;
use crate::store::{Put, StoreError, StoreReport, StoreSettings};
use crate::transport::{NetTransport, Transport};
use crate::tree::{TreeError, TreeEvent, TreeOptions, TreePlan, TreeReport};

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

/// A client of one user on one cluster, over transport `T` (real
/// connections unless a test says otherwise).
#[derive(Debug)]
pub struct Client<T: Transport = NetTransport> {
    transport: Arc<T>,
    index: Index<T>,
    shards: Shards<T>,
    store: StoreSettings,
    /// `scan_command`, if any.
    scan: Option<Vec<String>>,
    /// Whether gets may write large files with direct I/O (on unless
    /// [`set_direct_io`](Self::set_direct_io) turned it off).
    direct_io: bool,
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
        let cluster = Cluster::new(
            &config.servers,
            Credentials::User {
                user: config.user.clone(),
                auth: keys.auth.clone(),
            },
            config.client_options(),
        )?;
        Ok(Self::assemble(NetTransport::new(cluster), &keys, config))
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
        Ok(Self::assemble(NetTransport::new(cluster), &keys, &config))
    }

    /// The cluster.
    pub fn cluster(&self) -> &Cluster {
        self.transport.cluster()
    }
}

impl<T: Transport> Client<T> {
    /// A client of `config`'s user over `transport` (an in-memory or a
    /// failure-injecting one, for tests), with keys already derived. The
    /// transport's nodes are the servers: `config.servers` is not used.
    ///
    /// # Errors
    /// [`OpenError::Config`] for unusable settings.
    pub fn with_transport(
        transport: T,
        config: &ClientConfig,
        keys: &UserKeys,
    ) -> Result<Self, OpenError> {
        let config = ClientConfig {
            servers: transport.addresses().to_vec(),
            ..config.clone()
        };
        config.validate()?;
        Ok(Self::assemble(transport, keys, &config))
    }

    fn assemble(transport: T, keys: &UserKeys, config: &ClientConfig) -> Self {
        let transport = Arc::new(transport);
        let nodes = transport.addresses().len();
        let mut writer = [0u8; 16];
        getrandom(&mut writer);
        let window = config.window.max(1);
        Self {
            index: Index::new(
                transport.clone(),
                keys.master.index_name_key(),
                keys.master.index_key(),
                writer,
            ),
            shards: Shards::new(transport.clone(), window),
            store: StoreSettings {
                convergence: keys.master.convergence_key(),
                manifests: keys.master.manifests_key(),
                redundancy: config
                    .redundancy()
                    .unwrap_or_else(|_| Redundancy::default_for(nodes)),
                min_shards: config.min_shards(),
                window,
                inline_max: config.inline_max.min(crate::index::MAX_INLINE_LEN),
            },
            scan: config.scan_command.clone(),
            direct_io: true,
            transport,
        }
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Sets the program that scans every file stored and fetched (see
    /// [`ClientConfig::scan_command`]); for clients not opened from a
    /// config, such as [`anonymous`](Client::anonymous) ones.
    pub fn set_scan_command(&mut self, argv: Option<Vec<String>>) {
        self.scan = argv;
    }

    /// Whether gets into a file may write large files with direct I/O,
    /// past the page cache (on by default; see [`crate::output`]). The
    /// library reads no environment: `cairn` turns it off for
    /// `CAIRN_DIRECT_IO=0`.
    pub fn set_direct_io(&mut self, on: bool) {
        self.direct_io = on;
    }

    /// The redundancy new files are stored with.
    pub fn redundancy(&self) -> Redundancy {
        self.store.redundancy
    }

    fn put(&self) -> Put<'_, T> {
        Put {
            index: &self.index,
            shards: &self.shards,
            settings: &self.store,
        }
    }

    fn get(&self) -> Get<'_, T> {
        Get {
            shards: &self.shards,
            scan: self.scan.as_deref(),
            direct_io: self.direct_io,
        }
    }

    fn directory(&self) -> Directory<'_, T> {
        Directory {
            index: &self.index,
            shards: &self.shards,
        }
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

    /// Stores the file at `local` as `remote` (see [`crate::store`]).
    /// `progress` is told the number of file bytes sealed so far.
    ///
    /// # Errors
    /// [`StoreError`]: the file cannot be read, too few nodes are reachable,
    /// a chunk or the index entry did not reach enough nodes.
    pub async fn store_file(
        &self,
        local: &Path,
        remote: &RemotePath,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<StoreReport, StoreError> {
        self.put()
            .file(local, remote, self.scan.as_deref(), progress)
            .await
    }

    /// Stores what the asynchronous `reader` yields as `remote`, with
    /// modification time `modified_unix_ms`.
    ///
    /// # Errors
    /// As [`store_file`](Self::store_file);
    /// [`crate::scan::ScanError::NeedsFile`] while a scan command is
    /// configured.
    pub async fn store_async<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
        &self,
        reader: R,
        remote: &RemotePath,
        modified_unix_ms: u64,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<StoreReport, StoreError> {
        // The sealer reads on a blocking thread; the bridge turns the async
        // reader into a blocking one there.
        let reader = tokio_util::io::SyncIoBridge::new(reader);
        self.store_reader(reader, remote, modified_unix_ms, progress)
            .await
    }

    /// Stores what `reader` yields as `remote`, with modification time
    /// `modified_unix_ms`. `reader` is read on a blocking thread.
    ///
    /// # Errors
    /// As [`store_file`](Self::store_file);
    /// [`crate::scan::ScanError::NeedsFile`] while a scan command is
    /// configured.
    pub async fn store_reader<R: std::io::Read + Send + 'static>(
        &self,
        reader: R,
        remote: &RemotePath,
        modified_unix_ms: u64,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<StoreReport, StoreError> {
        if self.scan.is_some() {
            return Err(crate::scan::ScanError::NeedsFile.into());
        }
        self.put()
            .reader(reader, remote, modified_unix_ms, progress)
            .await
    }

    /// Stores every regular file under the directory `dir` as
    /// `prefix/relative/path` (`relative/path` without a prefix), many at
    /// once, going on past the files that fail; see [`crate::tree`].
    /// `progress` hears of each file as it is stored, skipped or failed.
    ///
    /// # Errors
    /// [`TreeError`] only if `dir` itself cannot be read: a file that fails
    /// is in the report.
    pub async fn store_tree(
        &self,
        dir: &Path,
        prefix: Option<&RemotePath>,
        options: &TreeOptions,
        progress: &(dyn Fn(TreeEvent<'_>) + Send + Sync),
    ) -> Result<TreeReport, TreeError> {
        let scan = self.scan.as_deref();
        crate::tree::store_tree(&self.put(), scan, dir, prefix, options, progress).await
    }

    /// Stores the files of `plan` (made by [`TreePlan::walk`], which needs
    /// no client), as [`store_tree`](Self::store_tree) does; `progress`
    /// hears only of the files stored and failed, as the caller has seen
    /// the plan's skipped and failed entries already.
    pub async fn store_plan(
        &self,
        plan: TreePlan,
        options: &TreeOptions,
        progress: &(dyn Fn(TreeEvent<'_>) + Send + Sync),
    ) -> TreeReport {
        crate::tree::store_plan(&self.put(), self.scan.as_deref(), plan, options, progress).await
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

    /// Fetches `remote` into the file `local`: written to a temporary file
    /// beside it and renamed into place only once the whole file checks
    /// out. `progress` is told the bytes written so far.
    ///
    /// # Errors
    /// [`FetchError`]: no such file, `local` exists and `overwrite` is
    /// false, a chunk is unavailable, or the bytes do not check out.
    pub async fn fetch_file(
        &self,
        remote: &RemotePath,
        local: &Path,
        overwrite: bool,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<FetchReport, FetchError> {
        let started = std::time::Instant::now();
        let file = crate::fetch::file_entry(&self.index, remote).await?;
        tracing::debug!("looked up {remote} in {:?}", started.elapsed());
        self.get()
            .to_file(&file.content, local, overwrite, progress)
            .await
    }

    /// Fetches `remote` and writes it to the asynchronous `out`. Every chunk
    /// written was verified; the whole-file hash is checked at the end, so
    /// only an `Ok` means `out` holds the file.
    ///
    /// # Errors
    /// As [`fetch_file`](Self::fetch_file);
    /// [`crate::scan::ScanError::NeedsFile`] while a scan command is
    /// configured.
    pub async fn fetch_to<W: AsyncWrite + Unpin>(
        &self,
        remote: &RemotePath,
        out: &mut W,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<FetchReport, FetchError> {
        if self.scan.is_some() {
            return Err(crate::scan::ScanError::NeedsFile.into());
        }
        let file = crate::fetch::file_entry(&self.index, remote).await?;
        self.get().to_writer(&file.content, out, progress).await
    }

    /// Fetches the file `capability` names into `local`, as
    /// [`fetch_file`](Self::fetch_file) does.
    ///
    /// # Errors
    /// As [`fetch_file`](Self::fetch_file).
    pub async fn fetch_capability_to_file(
        &self,
        capability: &Capability,
        local: &Path,
        overwrite: bool,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<FetchReport, FetchError> {
        // (A clone of a few hundred bytes: the content owns its capability.)
        let content = Content::Stored(capability.clone());
        self.get()
            .to_file(&content, local, overwrite, progress)
            .await
    }

    /// Fetches the file `capability` names and writes it to `out`, chunk by
    /// chunk, as [`fetch_to`](Self::fetch_to) does.
    ///
    /// # Errors
    /// As [`fetch_to`](Self::fetch_to).
    pub async fn fetch_capability_to<W: AsyncWrite + Unpin>(
        &self,
        capability: &Capability,
        out: &mut W,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<FetchReport, FetchError> {
        let content = Content::Stored(capability.clone());
        self.get().to_writer(&content, out, progress).await
    }

    /// The capability of the file named `remote`: whoever holds it can read
    /// that one file. An inline file is stored as chunks first (see
    /// [`Content::Inline`]).
    ///
    /// # Errors
    /// [`FetchError::NotFound`] if there is no such file (or it was
    /// removed); for an inline file, [`FetchError::Store`] if storing it
    /// failed.
    pub async fn capability(&self, remote: &RemotePath) -> Result<Capability, FetchError> {
        crate::share::capability(&self.put(), remote).await
    }

    /// The files at or under `prefix` (everything for `""`), in path order.
    ///
    /// # Errors
    /// [`DirectoryError::NoNode`] if no node answers.
    pub async fn list(&self, prefix: &str) -> Result<Vec<FileInfo>, DirectoryError> {
        self.list_files(prefix, false).await
    }

    /// The files at or under `prefix`, in path order; with `health`, each
    /// file's health, from the nodes' shard lists.
    ///
    /// # Errors
    /// [`DirectoryError::NoNode`] if no node answers.
    pub async fn list_files(
        &self,
        prefix: &str,
        health: bool,
    ) -> Result<Vec<FileInfo>, DirectoryError> {
        self.directory().list(prefix, health).await
    }

    /// The files and folders of folder `folder` (`None`: the root), in
    /// path order, a folder's items after it when `recursive`; with
    /// `health`, each file's health. Handed to `each` as they are listed
    /// (return false to stop); each folder costs its own entries, not the
    /// store's. Returns false if `folder` is not a folder.
    ///
    /// # Errors
    /// [`DirectoryError::NoNode`] if no node answers.
    pub async fn walk(
        &self,
        folder: Option<&RemotePath>,
        recursive: bool,
        health: bool,
        each: &mut (dyn FnMut(ListItem) -> bool + Send),
    ) -> Result<bool, DirectoryError> {
        self.directory().walk(folder, recursive, health, each).await
    }

    /// What changed in the user's index since `cursor` (everything, for a
    /// default cursor), optionally only in folder `folder` (`Some(None)`:
    /// the root): the newest entry of each changed path, tombstones
    /// included, and the cursor to pass next time. Cheap when nothing
    /// changed: one small request per node.
    ///
    /// # Errors
    /// [`DirectoryError::NoNode`] if no node answers.
    pub async fn changes(
        &self,
        cursor: &ChangeCursor,
        folder: Option<Option<&RemotePath>>,
    ) -> Result<Changes, DirectoryError> {
        let batch = self.index.changes(cursor, folder).await?;
        Ok(Changes {
            entries: batch.entries,
            cursor: batch.cursor,
            more: batch.more,
        })
    }

    /// What the index says of `remote` (size, time, version), without
    /// touching its data.
    ///
    /// # Errors
    /// [`DirectoryError::NotFound`] if there is no such file.
    pub async fn file_info(&self, remote: &RemotePath) -> Result<FileInfo, DirectoryError> {
        self.directory().file(remote).await.map(|file| file.info)
    }

    /// The layout and health of `remote`.
    ///
    /// # Errors
    /// [`DirectoryError::NotFound`] for no such file, or a fetch error for
    /// its manifest.
    pub async fn stat(&self, remote: &RemotePath) -> Result<FileLayout, DirectoryError> {
        self.directory().stat(remote).await
    }

    /// Reads every copy of every shard of `remote` from every node that
    /// claims it and checks its hash.
    ///
    /// # Errors
    /// As [`stat`](Self::stat).
    pub async fn verify(&self, remote: &RemotePath) -> Result<FileLayout, DirectoryError> {
        self.directory().verify(remote).await
    }

    /// Repairs `remote`: rebuilds every shard that is missing, corrupt, or
    /// doubled up on a node, and stores it on a node of its own (see
    /// [`crate::repair`]).
    ///
    /// # Errors
    /// [`DirectoryError::NotFound`] for no such file, or a fetch error when
    /// its manifest cannot be read. A chunk that cannot be repaired is not
    /// an error: the report says so.
    pub async fn repair(&self, remote: &RemotePath) -> Result<RepairReport, DirectoryError> {
        Repair {
            directory: self.directory(),
        }
        .file(remote)
        .await
    }

    /// Rewrites every index entry written before folders (sealed whole, in
    /// no folder) in the current format, in its folder, with the folders
    /// above it: what `repair` of everything does first. Returns how many
    /// it rewrote. A rewrite is an ordinary write with a newer version, so
    /// an interrupted migration loses nothing and the next one goes on.
    ///
    /// # Errors
    /// [`DirectoryError::NoNode`] if no node answers; a store error if a
    /// rewrite did not reach a majority.
    pub async fn migrate_index(&self) -> Result<usize, DirectoryError> {
        let mut rewritten = 0;
        for listed in self.index.list().await? {
            if !listed.legacy {
                continue;
            }
            self.index
                .write(&listed.entry.path, listed.entry.kind)
                .await
                .map_err(|e| DirectoryError::Store(e.into()))?;
            rewritten += 1;
        }
        Ok(rewritten)
    }

    /// Removes `remote`: writes a tombstone on a majority of nodes, then
    /// drops the references to its shards that no other file of the user
    /// still needs.
    ///
    /// # Errors
    /// [`DirectoryError::NotFound`] if there is no such file; a store error
    /// if the tombstone did not reach a majority (then nothing is dropped).
    pub async fn remove(&self, remote: &RemotePath) -> Result<RemoveReport, DirectoryError> {
        self.directory().remove(remote).await
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.transport.close().await;
    }
}

/// Fills `buf` from the system's random source.
fn getrandom(buf: &mut [u8]) {
    // aws-lc-rs is already linked for TLS; its RNG reads the OS source.
    aws_lc_rs::rand::fill(buf).expect("the system random source works");
}
