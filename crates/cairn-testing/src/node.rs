//! Real `cairn node` processes on 127.0.0.1, for black-box tests: a thin
//! layer over [`cairn_node::local::LocalNode`] that panics instead of
//! returning errors (a test cannot go on without its node), logs every
//! request, and prints the node's log when something goes wrong.

use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use cairn_net::Scheme;
use cairn_node::local::LocalNode;
use cairn_store::{Id, ShardPlace};

/// A node directory and, while it runs, its process.
#[derive(Debug)]
pub struct NodeProcess {
    node: LocalNode,
    /// The addresses `cairn node init` printed, `URL#NODE_ID`.
    pub addresses: Vec<String>,
}

fn scheme(name: &str) -> Scheme {
    match name {
        "tcp" => Scheme::Tcp,
        "https" => Scheme::Https,
        "quic" => Scheme::Quic,
        other => panic!("unknown scheme {other}"),
    }
}

impl NodeProcess {
    /// Runs `cairn node init` in `dir` with one listener per scheme
    /// (`"tcp"`, `"https"`, `"quic"`) on free ports.
    pub fn init(bin: &Path, dir: &Path, schemes: &[&str]) -> Self {
        let schemes: Vec<Scheme> = schemes.iter().map(|s| scheme(s)).collect();
        let mut node = LocalNode::init(bin, dir, &schemes).unwrap_or_else(|e| panic!("{e}"));
        node.set_log_level("debug");
        let addresses = node.addresses().iter().map(ToString::to_string).collect();
        Self { node, addresses }
    }

    /// The node's directory.
    pub fn dir(&self) -> &Path {
        self.node.dir()
    }

    /// The address of the listener of `scheme`, `URL#NODE_ID`.
    pub fn address(&self, scheme: &str) -> &str {
        self.addresses
            .iter()
            .find(|a| a.starts_with(&format!("{scheme}://")))
            .unwrap_or_else(|| panic!("no {scheme}:// listener"))
    }

    /// The node id (the part after `#` of any address).
    pub fn node_id(&self) -> &str {
        self.addresses[0].split_once('#').expect("pinned").1
    }

    /// Adds a user with `cairn node user add … --passphrase-stdin`.
    pub fn add_user(&self, name: &str, passphrase: &str, quota: Option<&str>) {
        self.node
            .add_user(name, passphrase, quota)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Sets one setting of `node.toml`.
    pub fn set(&self, key: &str, value: &str) {
        self.node.set(key, value).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Starts `cairn node run` and waits until every listener is bound.
    pub fn start(&mut self) {
        self.node.start().unwrap_or_else(|e| panic!("{e}"));
    }

    /// Sends SIGTERM and waits for the process to end.
    pub fn stop(&mut self) -> ExitStatus {
        self.node
            .stop(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{e}:\n{}", self.log()))
    }

    /// Sends SIGINT and waits for the process to end.
    pub fn interrupt(&mut self) -> ExitStatus {
        self.node.signal(rustix::process::Signal::INT);
        self.wait(Duration::from_secs(30))
    }

    /// Sends SIGTERM without waiting.
    pub fn signal_stop(&self) {
        self.node.signal(rustix::process::Signal::TERM);
    }

    /// Waits up to `limit` for the process to end.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        self.node
            .wait(limit)
            .unwrap_or_else(|e| panic!("{e}:\n{}", self.log()))
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        self.node.kill();
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        self.node.is_running()
    }

    /// What the node logged so far.
    pub fn log(&self) -> String {
        self.node.log()
    }

    /// Waits up to 10 s for the log to contain `text` (the log is copied
    /// from the process by a thread, so a line can lag behind the event).
    pub fn wait_for_log(&self, text: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.log().contains(text) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// The shards in the node's store and where their bytes are (shard
    /// files and segment records), in id order; quarantined ones are not
    /// listed. Works while the node runs. See [`crate::damage`].
    pub fn shards(&self) -> Vec<(Id, ShardPlace)> {
        crate::damage::shards(self.dir())
    }

    /// Where shard `id`'s bytes are in the node's store now, in either
    /// layout; `None` if it has none here.
    pub fn shard_place(&self, id: &Id) -> Option<ShardPlace> {
        crate::damage::place(self.dir(), id)
    }
}
