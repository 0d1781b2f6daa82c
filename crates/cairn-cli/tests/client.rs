//! The client library against real node processes on loopback: files go
//! in and come back bit for bit, across mixed transports, with nodes down.

use std::path::Path;

use cairn_client::directory::Health;
use cairn_client::{Client, ClientConfig, RemotePath};
use cairn_testing::node::NodeProcess;

const BIN: &str = env!("CARGO_BIN_EXE_cairn");
const PASSPHRASE: &str = "correct horse battery staple";

/// Four nodes: one over https://, two over tcp://, one over quic://.
struct TestCluster {
    nodes: Vec<NodeProcess>,
    dir: tempfile::TempDir,
}

impl TestCluster {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let nodes = ["https", "tcp", "tcp", "quic"]
            .iter()
            .enumerate()
            .map(|(i, scheme)| {
                let mut node = NodeProcess::init(
                    BIN.as_ref(),
                    &dir.path().join(format!("node-{i}")),
                    &[scheme],
                );
                node.add_user("alice", PASSPHRASE, None);
                node.add_user("bob", PASSPHRASE, None);
                node.start();
                node
            })
            .collect();
        Self { nodes, dir }
    }

    fn config(&self, user: &str) -> ClientConfig {
        let servers = self
            .nodes
            .iter()
            .map(|n| n.addresses[0].parse().unwrap())
            .collect();
        ClientConfig::new(user, servers)
    }

    async fn client(&self, user: &str) -> Client {
        Client::open(&self.config(user), PASSPHRASE.as_bytes())
            .await
            .unwrap()
    }

    fn file(&self, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_survive_two_of_four_nodes_down_over_mixed_transports() {
    let mut cluster = TestCluster::start();
    let data = cairn_testing::seeded_bytes(1, 3 * 1024 * 1024 + 1);
    let local = cluster.file("original", &data);
    let remote: RemotePath = "docs/report.bin".parse().unwrap();

    let client = cluster.client("alice").await;
    let report = client.store(&local, &remote).await.unwrap();
    assert_eq!(report.size, data.len() as u64);
    assert_eq!(report.redundancy.to_string(), "2-of-4");
    assert_eq!(report.fewest_nodes, 4);
    assert!(!report.degraded);

    let out = cluster.dir.path().join("copy");
    client.fetch(&remote, &out).await.unwrap();
    assert_eq!(read(&out), data);
    let listed = client.list("docs").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].size, data.len() as u64);
    assert!(
        client.list("doc").await.unwrap().is_empty(),
        "prefixes match whole components"
    );
    client.close().await;

    // Two nodes gone: a new client still gets the file back.
    cluster.nodes[0].kill();
    cluster.nodes[2].kill();
    let client = cluster.client("alice").await;
    let out2 = cluster.dir.path().join("copy-2");
    let fetched = client.fetch(&remote, &out2).await.unwrap();
    assert_eq!(read(&out2), data);
    assert!(fetched.rebuilt > 0 || fetched.chunks == 0, "{fetched:?}");
    assert_eq!(client.stat(&remote).await.unwrap().health, Health::Degraded);
    client.close().await;

    cluster.nodes[0].start();
    cluster.nodes[2].start();
    let client = cluster.client("alice").await;
    let verified = client.verify(&remote).await.unwrap();
    assert_eq!(verified.health, Health::Ok, "{verified:?}");
    assert_eq!(verified.corrupt, 0);
    client.close().await;
}
