//! `Client::repair` against real nodes: shards deleted, corrupted, or
//! doubled up on one node by a put made while another was down.
//!
//! Bugs these guard against:
//! - a repair that leaves a chunk with fewer than n shards on distinct
//!   nodes (so that losing n − k nodes loses the file), or that writes
//!   shards whose bytes do not match the manifest;
//! - a repair that is not idempotent (rewrites shards on every run);
//! - a repair that claims to have fixed a chunk it could not rebuild.

use cairn_client::directory::Health;
use cairn_testing::cluster::{MIB, TestCluster, remote};
use cairn_testing::damage;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_restores_every_shard_to_a_node_of_its_own_and_a_second_run_does_nothing() {
    let mut cluster = TestCluster::start();
    let data = cairn_testing::seeded_bytes(70, 9 * MIB + 3);
    let local = cluster.file("data", &data);
    let name = remote("data.bin");

    // Stored while node 3 was down: its shards doubled up on other nodes.
    cluster.nodes[3].kill();
    let client = cluster.client("alice");
    let stored = client.store(&local, &name).await.unwrap();
    assert!(stored.degraded, "{stored:?}");
    client.close().await;
    cluster.nodes[3].start();
    let stripes = stored.chunks + 1;

    // And then disks went bad: a deleted shard on node 0, a flipped bit on
    // node 1.
    let shards = cluster.all_shards();
    damage::remove(&shards[0][0].1);
    damage::flip_middle_bit(&shards[1][0].1);

    let client = cluster.client("alice");
    let report = client.repair(&name).await.unwrap();
    assert_eq!(report.before, Health::Degraded, "{report:?}");
    assert_eq!(report.after, Health::Ok, "{report:?}");
    assert_eq!(report.stripes, stripes, "{report:?}");
    assert!(report.problems.is_empty(), "{report:?}");
    assert_eq!(report.corrupt, 1, "{report:?}");
    assert_eq!(report.unplaced, 0, "{report:?}");
    // Node 3 missed every stripe, and nodes 0 and 1 lost one shard each.
    assert!(report.shards_written >= stripes, "{report:?}");
    assert!(report.shards_written <= stripes + 2, "{report:?}");

    // What verify sees, from a fresh client: every node holds a shard of
    // every stripe.
    client.close().await;
    let client = cluster.client("alice");
    let after = client.verify(&name).await.unwrap();
    assert_eq!(after.health, Health::Ok, "{after:?}");
    assert_eq!(after.missing, 0, "{after:?}");
    for (node, shards) in &after.shards_per_node {
        assert!(*shards >= stripes, "{node} holds {shards} of {stripes}");
    }

    // Idempotent: nothing left to do.
    let again = client.repair(&name).await.unwrap();
    assert_eq!(again.before, Health::Ok, "{again:?}");
    assert_eq!(again.shards_written, 0, "{again:?}");
    assert_eq!(again.stripes_repaired, 0, "{again:?}");
    client.close().await;

    // The point of it all: any two of the four nodes can go now.
    for down in [[0, 1], [2, 3]] {
        for &i in &down {
            cluster.nodes[i].kill();
        }
        let client = cluster.client("alice");
        let out = cluster.path(&format!("copy-{}{}", down[0], down[1]));
        client.fetch(&name, &out).await.unwrap();
        assert!(
            std::fs::read(&out).unwrap() == data,
            "other bytes with nodes {down:?} down"
        );
        client.close().await;
        for &i in &down {
            cluster.nodes[i].start();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_of_a_chunk_with_fewer_than_k_shards_says_it_is_lost() {
    let cluster = TestCluster::start();
    let data = cairn_testing::seeded_bytes(71, MIB / 2);
    let local = cluster.file("data", &data);
    let name = remote("small.bin");
    let client = cluster.client("alice");
    client.store(&local, &name).await.unwrap();

    // One chunk plus the manifest: two shards per node. Take the chunk's
    // shard away from three nodes; the manifest's stay.
    for node_shards in cluster.all_shards().iter().take(3) {
        assert_eq!(node_shards.len(), 2);
        // The chunk's shard is the larger one (the manifest is tiny).
        let (_, chunk_shard) = node_shards
            .iter()
            .max_by_key(|(_, place)| damage::len(place))
            .unwrap();
        damage::remove(chunk_shard);
    }

    let report = client.repair(&name).await.unwrap();
    assert_eq!(report.before, Health::Lost, "{report:?}");
    assert_eq!(report.after, Health::Lost, "{report:?}");
    assert_eq!(report.problems.len(), 1, "{report:?}");
    assert!(
        report.problems[0]
            .to_string()
            .contains("1 of the 2 good shards needed"),
        "{report:?}"
    );
    assert_eq!(report.shards_written, 0, "{report:?}");
}
