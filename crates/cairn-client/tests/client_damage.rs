//! Shards damaged or lost on a node's disk (through `cairn_testing::damage`,
//! which changes the bytes a read returns, in segments, the nodes' default
//! layout, or in shard files), and puts of files the nodes already (partly)
//! hold.
//!
//! Bugs these guard against:
//! - a get that returns, or gives up on, bytes a node's disk corrupted,
//!   instead of detecting them by hash and using other shards;
//! - `stat`/`verify` that report a damaged or missing shard as `ok`, or
//!   count it wrongly;
//! - a put that sends shards the nodes hold (a re-run, a file with a few
//!   changed chunks), or that does not send one a node lost.

use std::collections::BTreeSet;

use cairn_client::directory::Health;
use cairn_store::{Id, ShardPlace};
use cairn_testing::cluster::{MIB, TestCluster, remote};
use cairn_testing::damage;

/// Files in node `i`'s quarantine.
fn quarantined(cluster: &TestCluster, i: usize) -> usize {
    std::fs::read_dir(cluster.nodes[i].dir().join("quarantine"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_disk_corrupted_every_shard_still_gives_exact_bytes_and_verify_says_so() {
    let cluster = TestCluster::start();
    let data = cairn_testing::seeded_bytes(50, 16 * MIB + 1);
    let local = cluster.file("data", &data);
    let name = remote("data.bin");
    let client = cluster.client("alice");
    let report = client.store(&local, &name).await.unwrap();
    let stripes = report.chunks + 1; // the manifest is striped like a chunk

    // Every shard node 2 holds: one per stripe.
    let damaged = cluster.shards(2);
    assert_eq!(damaged.len(), stripes);
    for (_, place) in &damaged {
        damage::flip_middle_bit(place);
    }

    let out = cluster.path("copy");
    let fetched = client.fetch(&name, &out).await.unwrap();
    assert!(
        std::fs::read(&out).unwrap() == data,
        "the get returned other bytes"
    );
    // Node 2 is the home of a data shard of about half the stripes: those
    // reads failed their hash and were replaced by parity from elsewhere.
    assert!(fetched.shards_failed > 0, "{fetched:?}");
    assert!(fetched.rebuilt > 0, "{fetched:?}");
    let caught_by_get = quarantined(&cluster, 2);
    assert_eq!(caught_by_get, fetched.shards_failed, "{fetched:?}");
    assert!(cluster.nodes[2].wait_for_log("damaged"));

    // verify reads every copy: the shards the get did not touch are caught
    // now; none of node 2's shards has a good copy anywhere.
    let verified = client.verify(&name).await.unwrap();
    assert_eq!(verified.health, Health::Degraded, "{verified:?}");
    assert_eq!(verified.corrupt, stripes - caught_by_get, "{verified:?}");
    assert_eq!(verified.missing, stripes, "{verified:?}");
    assert_eq!(verified.shards_per_node[2].1, 0, "{verified:?}");
    for other in [0, 1, 3] {
        assert_eq!(verified.shards_per_node[other].1, stripes, "{verified:?}");
    }
    assert_eq!(quarantined(&cluster, 2), stripes);
    // stat, which only asks which shards are stored, now agrees.
    let stat = client.stat(&name).await.unwrap();
    assert_eq!(stat.health, Health::Degraded, "{stat:?}");
    assert_eq!(stat.missing, stripes, "{stat:?}");
    let listed = client.list_files("", true).await.unwrap();
    assert_eq!(listed[0].health, Some(Health::Degraded));

    // A put of the same file puts the lost shards back.
    let again = client.store(&local, &name).await.unwrap();
    assert_eq!(again.shards_sent, stripes, "{again:?}");
    assert_eq!(client.verify(&name).await.unwrap().health, Health::Ok);
}

/// A lost shard file is gone; a lost segment record is zeroed, header and
/// all, which the node notices when asked whether it has the shard (and
/// quarantines). Either way the node does not claim it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_lost_shards_and_a_second_put_sends_exactly_those() {
    let cluster = TestCluster::start();
    let data = cairn_testing::seeded_bytes(51, 4 * MIB + 7);
    let local = cluster.file("data", &data);
    let name = remote("data.bin");
    let client = cluster.client("alice");
    let first = client.store(&local, &name).await.unwrap();
    let all = (first.chunks + 1) * 4;
    assert_eq!(first.shards_sent, all, "{first:?}");

    // Stored again unchanged: nothing is sent.
    let again = client.store(&local, &name).await.unwrap();
    assert_eq!(
        (again.shards_sent, again.shards_present, again.bytes_sent),
        (0, all, 0),
        "{again:?}"
    );

    // One shard's bytes gone from node 0's disk.
    let on_node_0 = cluster.shards(0);
    damage::remove(&on_node_0[0].1);
    let verified = client.verify(&name).await.unwrap();
    assert_eq!(verified.health, Health::Degraded, "{verified:?}");
    assert_eq!((verified.missing, verified.corrupt), (1, 0), "{verified:?}");
    assert_eq!(
        verified.shards_per_node[0].1,
        on_node_0.len() - 1,
        "{verified:?}"
    );
    let stat = client.stat(&name).await.unwrap();
    assert_eq!(
        (stat.health, stat.missing),
        (Health::Degraded, 1),
        "{stat:?}"
    );

    // Two more, on node 1 and node 3.
    damage::remove(&cluster.shards(1)[0].1);
    damage::remove(&cluster.shards(3).last().unwrap().1);
    assert_eq!(client.verify(&name).await.unwrap().missing, 3);

    // The node still has the user's reference but not the bytes: the put
    // sends exactly the three lost shards, and the file is whole again.
    let repaired = client.store(&local, &name).await.unwrap();
    assert_eq!(
        (repaired.shards_sent, repaired.shards_present),
        (3, all - 3),
        "{repaired:?}"
    );
    let verified = client.verify(&name).await.unwrap();
    assert_eq!((verified.health, verified.missing), (Health::Ok, 0));
    let out = cluster.path("copy");
    client.fetch(&name, &out).await.unwrap();
    assert!(std::fs::read(&out).unwrap() == data);
}

/// A 16 MiB file with 1 MiB in the middle changed: content-defined chunks
/// and convergent encryption mean only the chunks around the change (and
/// the manifest) are new, and only their shards are sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_file_sends_only_its_changed_chunks() {
    let cluster = TestCluster::start();
    let mut data = cairn_testing::seeded_bytes(52, 16 * MIB);
    let local = cluster.file("data", &data);
    let name = remote("data.bin");
    let client = cluster.client("alice");
    let first = client.store(&local, &name).await.unwrap();

    let change = cairn_testing::seeded_bytes(53, MIB);
    data[8 * MIB..9 * MIB].copy_from_slice(&change);
    std::fs::write(&local, &data).unwrap();
    let second = client.store(&local, &name).await.unwrap();
    let all = (second.chunks + 1) * 4;
    assert_eq!(second.shards_sent + second.shards_present, all);
    // New are the chunks the changed MiB falls in, a neighbour whose
    // boundary moved, and the manifest: a handful of 17 or so stripes.
    // Anything near a full re-send is the bug.
    assert!(second.shards_sent > 0, "{second:?}");
    assert!(
        second.shards_sent * 4 <= all,
        "a quarter of the shards or fewer: {second:?} after {first:?}"
    );
    assert!(
        second.bytes_sent * 4 <= first.bytes_sent,
        "{second:?} after {first:?}"
    );
    assert_eq!(second.shards_sent % 4, 0, "whole stripes: {second:?}");

    let out = cluster.path("copy");
    client.fetch(&name, &out).await.unwrap();
    assert!(std::fs::read(&out).unwrap() == data, "the new version");
}

/// The ids among `shards`.
fn ids_of(shards: &[(Id, ShardPlace)]) -> BTreeSet<String> {
    shards.iter().map(|(id, _)| id.to_string()).collect()
}

/// The ids of the shards in node `i`'s quarantine (`<id>.<n>` for a file,
/// `<id>.seg.<n>` for a copy of a segment record).
fn quarantined_ids(cluster: &TestCluster, i: usize) -> BTreeSet<String> {
    std::fs::read_dir(cluster.nodes[i].dir().join("quarantine"))
        .unwrap()
        .map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.split_once('.').unwrap().0.to_owned()
        })
        .collect()
}

/// A bad disk under one node: random bits flipped in a third of its
/// shards, another third cut short at random lengths, the rest lost.
/// Guards against a get that returns such bytes or gives up, against a node
/// that serves them or claims to have them, and against one that deletes
/// the evidence instead of quarantining it.
///
/// The shards cut short are the last third in disk order: in a segment, a
/// cut (a torn tail) takes every record after it, so the damage is the
/// same one whichever layout the node wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_disk_that_flips_bits_truncates_and_loses_shards_changes_nothing_a_get_returns() {
    let cluster = TestCluster::start();
    let data = cairn_testing::seeded_bytes(54, 12 * MIB + 3);
    let local = cluster.file("data", &data);
    let name = remote("data.bin");
    let client = cluster.client("alice");
    client.store(&local, &name).await.unwrap();

    let mut rng = fastrand::Rng::with_seed(54);
    let mut shards = cluster.shards(1);
    let all = shards.len();
    assert!(all >= 9, "{all} shards on node 1");
    damage::segment_order(&mut shards);
    let (rest, truncated) = shards.split_at(all - all / 3);
    let mut rest = rest.to_vec();
    rng.shuffle(&mut rest);
    let (flipped, lost) = rest.split_at(all / 3);
    for (_, place) in flipped {
        let len = damage::len(place);
        for _ in 0..rng.usize(1..=8) {
            damage::flip_bit(place, rng.u64(..len), rng.u8(0..8));
        }
    }
    // Last first, so that each cut shortens what is left.
    for (_, place) in truncated.iter().rev() {
        damage::truncate(place, rng.u64(..damage::len(place)));
    }
    for (_, place) in lost {
        damage::remove(place);
    }
    // A lost record is damage (its header is gone), read or asked about; a
    // lost file is simply not there.
    let lost_is_damage = lost
        .iter()
        .all(|(_, place)| matches!(place, ShardPlace::Segment(_)));
    let (flipped, truncated, lost) = (ids_of(flipped), ids_of(truncated), ids_of(lost));
    let mut damaged: BTreeSet<String> = flipped.union(&truncated).cloned().collect();
    if lost_is_damage {
        damaged.extend(lost.iter().cloned());
    }

    // The get gives the exact bytes; what it read of node 1's damage failed
    // its hash and went to quarantine, and nothing else did.
    let out = cluster.path("copy");
    let fetched = client.fetch(&name, &out).await.unwrap();
    assert!(
        std::fs::read(&out).unwrap() == data,
        "the get returned other bytes"
    );
    let caught_by_get = quarantined_ids(&cluster, 1);
    assert!(caught_by_get.is_subset(&damaged), "{caught_by_get:?}");
    assert!(fetched.shards_failed >= caught_by_get.len(), "{fetched:?}");

    // Asked which shards it has (stat), the node claims none it lost: a
    // lost shard is not there, and a truncated one has the wrong length,
    // which sends it to quarantine on the spot. Flipped bits need a read.
    let stat = client.stat(&name).await.unwrap();
    let not_claimed: BTreeSet<&String> = lost
        .iter()
        .chain(&truncated)
        .chain(&caught_by_get)
        .collect();
    assert_eq!(stat.missing, not_claimed.len(), "{stat:?}");
    assert!(quarantined_ids(&cluster, 1).is_superset(&truncated));
    if lost_is_damage {
        assert!(quarantined_ids(&cluster, 1).is_superset(&lost));
    }

    // verify reads every shard: now every damaged one is in quarantine,
    // and every lost shard is reported.
    let verified = client.verify(&name).await.unwrap();
    assert_eq!(verified.health, Health::Degraded, "{verified:?}");
    assert_eq!(verified.missing, all, "{verified:?}");
    assert_eq!(quarantined_ids(&cluster, 1), damaged);
    assert!(cluster.shards(1).is_empty());

    // A put of the same file puts back exactly what node 1 lost.
    let again = client.store(&local, &name).await.unwrap();
    assert_eq!(again.shards_sent, all, "{again:?}");
    assert_eq!(client.verify(&name).await.unwrap().health, Health::Ok);
    let out = cluster.path("copy-after-repair");
    client.fetch(&name, &out).await.unwrap();
    assert!(std::fs::read(&out).unwrap() == data);
}
