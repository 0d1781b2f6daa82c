//! Nodes dying around and during puts and gets, with real node processes
//! killed by SIGKILL (as a crash or a pulled cable would).
//!
//! Bugs these guard against:
//! - a put with one of four nodes down that fails, or claims full
//!   redundancy it does not have;
//! - a put with two of four down that succeeds below `min_shards`, fails
//!   without naming the nodes, or leaves a name pointing at a partial file;
//! - a get that needs every node, or a particular one;
//! - a put or get that hangs, corrupts or half-finishes when a node dies
//!   under it, and a failed put whose re-run starts from scratch.

use cairn_client::HashingWriter;
use cairn_client::StoreError;
use cairn_client::directory::Health;
use cairn_testing::cluster::{MIB, TestCluster, hash_file, remote};

/// A watch sender fed by a progress callback, and a future that kills
/// `node` once `threshold` bytes were reported.
async fn kill_after(
    mut progress: tokio::sync::watch::Receiver<u64>,
    threshold: u64,
    node: &mut cairn_testing::node::NodeProcess,
) -> u64 {
    let seen = *progress
        .wait_for(|bytes| *bytes >= threshold)
        .await
        .expect("the operation reported progress before ending");
    node.kill();
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_node_down_a_put_succeeds_degraded_and_gets_survive_one_and_two_down() {
    let mut cluster = TestCluster::start();
    let whole = cairn_testing::seeded_bytes(40, 4 * MIB + 5);
    let partial = cairn_testing::seeded_bytes(41, 4 * MIB + 6);
    let whole_path = cluster.file("whole", &whole);
    let partial_path = cluster.file("partial", &partial);
    let client = cluster.client("alice");
    let report = client
        .store(&whole_path, &remote("whole.bin"))
        .await
        .unwrap();
    assert!(!report.degraded, "{report:?}");
    client.close().await;

    // Node 3 (quic://, where a dead node answers nothing at all) is down
    // before the put: every chunk still reaches min_shards = 3 nodes, and
    // the put says it is degraded and which node it missed.
    cluster.nodes[3].kill();
    let client = cluster.client("alice");
    let report = client
        .store(&partial_path, &remote("partial.bin"))
        .await
        .unwrap();
    assert!(report.degraded, "{report:?}");
    assert_eq!(report.fewest_nodes, 3, "{report:?}");
    assert_eq!(report.failed_nodes.len(), 1, "{report:?}");
    assert!(
        report.failed_nodes[0].node.to_string() == cluster.address(3),
        "{report:?}"
    );

    // Get with that node down, from a client that has not seen it fail.
    let client = cluster.client("alice");
    for (name, data) in [("whole.bin", &whole), ("partial.bin", &partial)] {
        let out = cluster.path(&format!("one-down-{name}"));
        client.fetch(&remote(name), &out).await.unwrap();
        assert!(std::fs::read(&out).unwrap() == *data, "{name}, 1 down");
    }
    client.close().await;

    // And with a second node (tcp://) down as well: k = 2 nodes are left.
    // The file put while node 3 was down has every shard on nodes 0-2, two
    // of them on one node, so it too survives losing any one of those.
    cluster.nodes[1].kill();
    let client = cluster.client("alice");
    for (name, data) in [("whole.bin", &whole), ("partial.bin", &partial)] {
        let out = cluster.path(&format!("two-down-{name}"));
        let fetched = client.fetch(&remote(name), &out).await.unwrap();
        assert!(std::fs::read(&out).unwrap() == *data, "{name}, 2 down");
        assert!(
            fetched.shards_failed > 0 || fetched.rebuilt > 0,
            "{fetched:?}"
        );
    }
    assert_eq!(
        client.stat(&remote("whole.bin")).await.unwrap().health,
        Health::Degraded
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_nodes_down_a_put_fails_naming_them_and_leaves_nothing_behind() {
    let mut cluster = TestCluster::start();
    let data = cairn_testing::seeded_bytes(42, 2 * MIB);
    let local = cluster.file("data", &data);
    cluster.nodes[1].kill();
    cluster.nodes[3].kill();

    let client = cluster.client("alice");
    let error = client
        .store(&local, &remote("nope.bin"))
        .await
        .expect_err("a put with 2 of 4 nodes cannot reach min_shards = 3");
    let message = error.to_string();
    match &error {
        StoreError::TooFewNodes {
            reachable,
            total,
            needed,
            failed,
        } => {
            assert_eq!((*reachable, *total, *needed), (2, 4, 3), "{message}");
            assert_eq!(failed.len(), 2, "{message}");
        }
        other => panic!("expected TooFewNodes, got {other:?}"),
    }
    for down in [1, 3] {
        assert!(message.contains(&cluster.address(down)), "{message}");
    }
    for up in [0, 2] {
        assert!(!message.contains(&cluster.address(up)), "{message}");
    }
    client.close().await;

    // Nothing was written anywhere: no shard, no index entry; with every
    // node back, the name is not listed and cannot be fetched.
    cluster.nodes[1].start();
    cluster.nodes[3].start();
    for node in 0..4 {
        assert!(cluster.shards(node).is_empty(), "node {node}");
        assert!(
            cluster.index_entries(node, "alice").is_empty(),
            "node {node}"
        );
    }
    let client = cluster.client("alice");
    assert!(client.list("").await.unwrap().is_empty());
    let error = client
        .fetch(&remote("nope.bin"), &cluster.path("out"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, cairn_client::FetchError::NotFound(_)),
        "{error}"
    );
}

/// A node killed once a quarter of a 64 MiB put was read: the put carries
/// on with the other three (re-placing what the dead node should have had)
/// and succeeds; re-run with every node up, it sends only the shards the
/// dead node missed. Then a node killed during a get of the file: the get
/// returns the exact bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_during_a_put_and_during_a_get_changes_nothing_the_user_sees() {
    let mut cluster = TestCluster::start();
    let len = 64 * MIB;
    let (local, hash) = cluster.seeded_file("big", 43, len);
    let name = remote("big.bin");
    let killed_address = cluster.address(1);

    let client = cluster.client("alice");
    let (tx, rx) = tokio::sync::watch::channel(0u64);
    let progress = move |bytes| {
        tx.send_replace(bytes);
    };
    let (first, killed_at) = tokio::join!(
        client.store_file(&local, &name, &progress),
        kill_after(rx, 16 * MIB as u64, &mut cluster.nodes[1]),
    );
    assert!(killed_at < len as u64, "the put ended before the kill");
    let first = first.expect("three nodes are enough for min_shards = 3");
    assert!(first.fewest_nodes >= 3, "{first:?}");
    assert!(first.degraded, "{first:?}");
    assert!(
        first
            .failed_nodes
            .iter()
            .any(|f| f.node.to_string() == killed_address),
        "{first:?}"
    );
    let all = (first.chunks + 1) * 4;
    assert_eq!(first.shards_sent + first.shards_present, all, "{first:?}");
    client.close().await;

    cluster.nodes[1].start();
    let client = cluster.client("alice");
    let again = client.store(&local, &name).await.unwrap();
    assert!(!again.degraded, "{again:?}");
    assert_eq!(again.shards_sent + again.shards_present, all, "{again:?}");
    assert!(again.shards_sent > 0, "node 1 missed shards: {again:?}");
    assert!(
        again.shards_sent < first.shards_sent / 2,
        "only what node 1 missed is sent again: {again:?} after {first:?}"
    );
    assert_eq!(
        client.verify(&name).await.unwrap().health,
        Health::Ok,
        "after the re-run every shard is home"
    );

    // Node 3 (quic://) dies a quarter of the way into a get.
    let (tx, rx) = tokio::sync::watch::channel(0u64);
    let progress = move |bytes| {
        tx.send_replace(bytes);
    };
    let mut sink = HashingWriter::default();
    let (fetched, killed_at) = tokio::join!(
        client.fetch_to(&name, &mut sink, &progress),
        kill_after(rx, 16 * MIB as u64, &mut cluster.nodes[3]),
    );
    assert!(killed_at < len as u64, "the get ended before the kill");
    let fetched = fetched.unwrap();
    assert_eq!(sink.len, len as u64);
    assert_eq!(sink.hasher.finalize(), hash);
    assert_eq!(fetched.size, len as u64);
    assert!(
        fetched.rebuilt > 0 || fetched.shards_failed > 0,
        "the get had to do without node 3: {fetched:?}"
    );
}

/// With one node down before the put and a second killed during it, some
/// chunk cannot reach min_shards: the put fails naming the node, no name
/// points at the partial file, and once the nodes are back the re-run
/// succeeds, reusing the shards the failed attempt stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_that_loses_too_many_nodes_midway_fails_cleanly_and_its_rerun_resumes() {
    let mut cluster = TestCluster::start();
    let len = 32 * MIB;
    let (local, hash) = cluster.seeded_file("big", 44, len);
    let name = remote("big.bin");
    cluster.nodes[3].kill();

    let client = cluster.client("alice");
    let (tx, rx) = tokio::sync::watch::channel(0u64);
    let progress = move |bytes| {
        tx.send_replace(bytes);
    };
    let (result, killed_at) = tokio::join!(
        client.store_file(&local, &name, &progress),
        kill_after(rx, 8 * MIB as u64, &mut cluster.nodes[2]),
    );
    assert!(killed_at < len as u64, "the put ended before the kill");
    let error = result.expect_err("two nodes left cannot hold min_shards = 3");
    assert!(
        matches!(
            error,
            StoreError::ChunkNotStored {
                needed: 3,
                stored: ..3,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().contains(&cluster.address(2)),
        "the error names the node that died: {error}"
    );
    assert!(
        client.list("").await.unwrap().is_empty(),
        "no name points at the partial file"
    );
    for node in 0..4 {
        assert!(
            cluster.index_entries(node, "alice").is_empty(),
            "node {node}"
        );
    }
    let stored_before: usize = cluster.all_shards().iter().map(Vec::len).sum();
    assert!(stored_before > 0, "the failed attempt stored some shards");
    client.close().await;

    cluster.nodes[2].start();
    cluster.nodes[3].start();
    let client = cluster.client("alice");
    let report = client.store(&local, &name).await.unwrap();
    assert!(!report.degraded, "{report:?}");
    assert!(
        report.shards_present > 0,
        "the re-run reuses what the failed attempt stored: {report:?}"
    );
    assert_eq!(
        report.shards_sent + report.shards_present,
        (report.chunks + 1) * 4
    );
    let out = cluster.path("copy");
    client.fetch(&name, &out).await.unwrap();
    assert_eq!(hash_file(&out), hash);
}
