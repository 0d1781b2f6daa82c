//! A cluster for the client library's tests against real nodes: four
//! `cairn node run` processes on 127.0.0.1, one over https://, two over
//! tcp:// and one over quic://, each with users alice and bob, and clients
//! of the library that talk to them.
//!
//! Users are added through the node's metadata ([`cairn_store::Admin`], as
//! `cairn node user add` does) with keys derived once per test binary, so
//! that a cluster starts without eight Argon2 runs; [`TestCluster::open`]
//! still goes the whole way from the passphrase.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use cairn_client::{Client, ClientConfig, RemotePath};
use cairn_core::{KdfParams, UserKeys};
use cairn_net::NodeAddress;
use cairn_store::{Id, ShardPlace};

use crate::node::NodeProcess;

/// The passphrase of every user of a [`TestCluster`].
pub const PASSPHRASE: &str = "correct horse battery staple";
/// One mebibyte.
pub const MIB: usize = 1024 * 1024;

/// The transports of the four nodes, in node order.
pub const SCHEMES: [&str; 4] = ["https", "tcp", "tcp", "quic"];

/// `user`'s keys, derived from [`PASSPHRASE`] once per test binary.
pub fn keys(user: &str) -> UserKeys {
    static KEYS: OnceLock<Mutex<HashMap<String, UserKeys>>> = OnceLock::new();
    let mut keys = KEYS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    keys.entry(user.to_owned())
        .or_insert_with(|| {
            UserKeys::derive(user, PASSPHRASE.as_bytes(), &KdfParams::default()).unwrap()
        })
        .clone()
}

/// Running nodes and a scratch directory for local files.
pub struct TestCluster {
    /// The nodes, in order.
    pub nodes: Vec<NodeProcess>,
    /// The nodes' directories live in it, and scratch files ([`Self::path`]).
    pub dir: tempfile::TempDir,
}

impl TestCluster {
    /// Starts the four nodes, each knowing alice and bob.
    pub fn start() -> Self {
        Self::start_with(&SCHEMES)
    }

    /// Starts one node per scheme (`"tcp"`, `"https"`, `"quic"`), each
    /// knowing alice and bob.
    pub fn start_with(schemes: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let users = [("alice", keys("alice")), ("bob", keys("bob"))];
        let nodes = std::thread::scope(|scope| {
            let starting: Vec<_> = schemes
                .iter()
                .enumerate()
                .map(|(i, scheme)| {
                    let path = dir.path().join(format!("node-{i}"));
                    let users = &users;
                    scope.spawn(move || {
                        let mut node = NodeProcess::init(crate::cairn_bin(), &path, &[scheme]);
                        let admin = cairn_store::Admin::open(node.dir()).unwrap();
                        let id = node_id(&node);
                        for (name, keys) in users {
                            let key = keys.auth.for_node(id.0.as_bytes());
                            let record =
                                cairn_node::auth::new_user_record(key.expose_secret(), None);
                            admin.add_user(name, &record).unwrap();
                        }
                        drop(admin);
                        node.start();
                        node
                    })
                })
                .collect();
            starting
                .into_iter()
                .map(|s| s.join().unwrap())
                .collect::<Vec<_>>()
        });
        Self { nodes, dir }
    }

    /// The nodes' addresses, pinned, in node order.
    pub fn servers(&self) -> Vec<NodeAddress> {
        self.nodes.iter().map(address).collect()
    }

    /// Node `i`'s address as the client prints it in errors.
    pub fn address(&self, i: usize) -> String {
        address(&self.nodes[i]).to_string()
    }

    /// A client config for `user`, with a 1 s connect timeout (a dead
    /// quic:// node costs a test the whole timeout) and a 10 s request
    /// timeout (a node killed mid-request over quic:// answers nothing).
    pub fn config(&self, user: &str) -> ClientConfig {
        let mut config = ClientConfig::new(user, self.servers());
        config.connect_timeout_secs = 1;
        config.request_timeout_secs = 10;
        config
    }

    /// A client of `user`, with keys derived once per test binary.
    pub fn client(&self, user: &str) -> Client {
        Client::with_keys(&self.config(user), keys(user)).unwrap()
    }

    /// A client of `user` opened from the passphrase, as an application
    /// opens one.
    pub async fn open(&self, user: &str) -> Client {
        Client::open(&self.config(user), PASSPHRASE.as_bytes())
            .await
            .unwrap()
    }

    /// A path in the scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `bytes` to the scratch file `name`.
    pub fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// Writes `len` seeded bytes to the scratch file `name` without holding
    /// them in memory; returns the path and their hash.
    pub fn seeded_file(&self, name: &str, seed: u64, len: usize) -> (PathBuf, blake3::Hash) {
        let path = self.path(name);
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let mut source = testdata::seeded_reader(seed);
        let mut hasher = blake3::Hasher::new();
        let mut block = vec![0u8; MIB];
        let mut left = len;
        while left > 0 {
            let n = left.min(block.len());
            source.fill(&mut block[..n]);
            out.write_all(&block[..n]).unwrap();
            hasher.update(&block[..n]);
            left -= n;
        }
        out.flush().unwrap();
        (path, hasher.finalize())
    }

    /// The metadata of node `i`'s store, opened beside the running node.
    pub fn admin(&self, i: usize) -> cairn_store::Admin {
        cairn_store::Admin::open(self.nodes[i].dir()).unwrap()
    }

    /// `user`'s index entries on node `i`: (name, version).
    pub fn index_entries(&self, i: usize, user: &str) -> Vec<([u8; 32], u64)> {
        self.admin(i)
            .list_index(user, None, 1000)
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.version))
            .collect()
    }

    /// The shards on node `i`'s disk and where their bytes are, in id
    /// order (quarantined ones not listed); see [`crate::damage`] to
    /// damage them.
    pub fn shards(&self, i: usize) -> Vec<(Id, ShardPlace)> {
        self.nodes[i].shards()
    }

    /// The shards of every node, in node order.
    pub fn all_shards(&self) -> Vec<Vec<(Id, ShardPlace)>> {
        (0..self.nodes.len()).map(|i| self.shards(i)).collect()
    }
}

impl TestCluster {
    /// Node `i`'s own socket address (to put a proxy in front of it).
    pub fn socket(&self, i: usize) -> std::net::SocketAddr {
        self.servers()[i].authority().parse().unwrap()
    }

    /// Node `i`'s pinned address, pointed at `proxy` instead.
    pub fn via(&self, i: usize, proxy: std::net::SocketAddr) -> NodeAddress {
        NodeAddress {
            port: proxy.port(),
            host: proxy.ip().to_string(),
            ..self.servers()[i].clone()
        }
    }
}

fn address(node: &NodeProcess) -> NodeAddress {
    node.addresses[0].parse().unwrap()
}

fn node_id(node: &NodeProcess) -> cairn_net::NodeId {
    address(node).node_id.expect("pinned")
}

/// Connection options with the timeouts of [`TestCluster::config`].
pub fn options() -> cairn_net::client::ClientOptions {
    cairn_net::client::ClientOptions {
        connect_timeout: std::time::Duration::from_secs(1),
        request_timeout: std::time::Duration::from_secs(10),
        ..Default::default()
    }
}

/// A remote path.
pub fn remote(path: &str) -> RemotePath {
    path.parse().unwrap()
}

/// The hash of a file's contents, read in blocks.
pub fn hash_file(path: &Path) -> blake3::Hash {
    let mut file = std::fs::File::open(path).unwrap();
    let mut hasher = blake3::Hasher::new();
    let mut block = vec![0u8; MIB];
    loop {
        let n = file.read(&mut block).unwrap();
        if n == 0 {
            return hasher.finalize();
        }
        hasher.update(&block[..n]);
    }
}
