//! A running node's background upkeep of segments (issue 17): it migrates
//! shard files of the first layout into segments while it serves, and it
//! compacts segments whose shards were mostly dropped, both losing nothing
//! when killed with SIGKILL half way.
//!
//! Guards against a node that leaves shard files behind when `segments =
//! true` (only `cairn node migrate` moved them before), that stops serving
//! or serves other bytes while it migrates, that loses acknowledged shards
//! to a kill during either job, and that never gives back the space of
//! dropped shards. Each job is slowed by its node.toml rate so that the
//! test can act in the middle of it; the tests wait on the node's log and
//! on the files, never on fixed sleeps for the outcome.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_core::{AuthKey, Id, KdfParams};
use cairn_net::client::{ClientError, ClientOptions, Connection};
use cairn_net::protocol::ErrorCode;
use cairn_net::{NodeAddress, NodeId};
use cairn_store::{Store, StoreOptions};
use cairn_testing::node::NodeProcess;

const BIN: &str = env!("CARGO_BIN_EXE_cairn");
const USER: &str = "alice";
const PASSPHRASE: &str = "correct horse battery staple";

/// Shard bytes of `seed`, `len` long.
fn shard(seed: u64, len: usize) -> (Id, Bytes) {
    let bytes = Bytes::from(cairn_testing::seeded_bytes(seed, len));
    (Id::of(&bytes), bytes)
}

/// A stopped node with user alice and `count` shards of `len` bytes that
/// she references, written as shard files (the first layout) by a store
/// opened without segments, as a node from before issue 17 left them.
fn node_with_shard_files(dir: &Path, count: u64, len: usize) -> (NodeProcess, HashMap<Id, Bytes>) {
    let node = NodeProcess::init(BIN.as_ref(), &dir.join("node"), &["tcp"]);
    node.add_user(USER, PASSPHRASE, None);
    let store = Store::open(node.dir(), StoreOptions::default().with_segments(false)).unwrap();
    let shards: HashMap<Id, Bytes> = (0..count).map(|seed| shard(seed, len)).collect();
    for (id, bytes) in &shards {
        store.put(USER, id, bytes, None).unwrap();
    }
    drop(store);
    assert_eq!(cairn_testing::damage::shard_files(node.dir()), count);
    (node, shards)
}

async fn connect(node: &NodeProcess) -> Connection {
    let address: NodeAddress = node.address("tcp").parse().unwrap();
    Connection::connect(&address, &ClientOptions::default(), false)
        .await
        .unwrap()
}

async fn login(node: &NodeProcess) -> Connection {
    let node_id: NodeId = node.node_id().parse().unwrap();
    let key = *AuthKey::derive(USER, PASSPHRASE.as_bytes(), &KdfParams::default())
        .unwrap()
        .for_node(node_id.0.as_bytes())
        .expose_secret();
    let connection = connect(node).await;
    connection.login(USER, &key).await.unwrap();
    connection
}

/// Reads every shard of `shards` through the node and compares it, bit
/// for bit.
async fn assert_all_served(connection: &Connection, shards: &HashMap<Id, Bytes>, context: &str) {
    for (id, bytes) in shards {
        let got = connection
            .get_shard(id)
            .await
            .unwrap_or_else(|e| panic!("{context}: {id} not served: {e}"));
        assert!(got == bytes, "{context}: {id} served other bytes");
    }
}

/// Polls `condition` every 20 ms for up to `limit`.
fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    condition()
}

/// Bytes of the segment files, and their names.
fn segments(dir: &Path) -> (u64, Vec<String>) {
    let mut names = Vec::new();
    let mut bytes = 0;
    for entry in std::fs::read_dir(dir.join("segments")).unwrap() {
        let entry = entry.unwrap();
        bytes += entry.metadata().unwrap().len();
        names.push(entry.file_name().into_string().unwrap());
    }
    names.sort();
    (bytes, names)
}

/// A node switched to segments serves its shard files at once, while it
/// moves them into segments in the background, and ends with none left
/// and every shard served bit for bit, before and after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_migrates_its_shard_files_in_the_background_while_serving() {
    let dir = tempfile::tempdir().unwrap();
    // 96 shards of 16 KiB at 512 KiB/s: about three seconds of migration.
    let (mut node, shards) = node_with_shard_files(dir.path(), 96, 16 * 1024);
    node.set("segments", "true");
    node.set("migrate_rate", "\"512K\"");
    node.start();

    // Serving at once: reads succeed while shard files are still there.
    let reader = connect(&node).await;
    let mut read_during = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while cairn_testing::damage::shard_files(node.dir()) > 0
        && !node.log().contains("migration: done")
        && Instant::now() < deadline
    {
        for (id, bytes) in shards.iter().take(8) {
            let got = reader.get_shard(id).await.unwrap();
            assert!(got == bytes, "{id} served other bytes during the migration");
            read_during += 1;
        }
    }
    assert!(read_during > 0, "no read finished during the migration");
    assert!(
        node.wait_for_log("migration: done"),
        "the migration did not finish:\n{}",
        node.log()
    );
    assert!(
        node.log().contains("96 shard files moved into segments"),
        "{}",
        node.log()
    );
    assert_eq!(
        cairn_testing::damage::shard_files(node.dir()),
        0,
        "shard files left"
    );
    assert_all_served(&reader, &shards, "after the migration").await;
    reader.close().await;

    assert!(node.stop().success(), "{}", node.log());
    node.start();
    let reader = connect(&node).await;
    assert_all_served(&reader, &shards, "after a restart").await;
    reader.close().await;
    assert!(node.stop().success(), "{}", node.log());
    // The store agrees: every shard has its place in a segment.
    let store = Store::open(node.dir(), StoreOptions::default()).unwrap();
    for id in shards.keys() {
        assert!(store.shard_location(id).unwrap().is_some(), "{id}");
    }
}

/// SIGKILL in the middle of the background migration, with puts
/// acknowledged meanwhile: after a restart every shard, old and new, is
/// served bit for bit, and the migration goes on to the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_the_background_migration_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // 160 shards of 8 KiB at 256 KiB/s: five seconds, unless killed.
    let total = 160;
    let (mut node, mut shards) = node_with_shard_files(dir.path(), total, 8 * 1024);
    node.set("segments", "true");
    node.set("migrate_rate", "\"256K\"");
    node.start();

    let writer = login(&node).await;
    for seed in 1000..1020 {
        let (id, bytes) = shard(seed, 5000 + seed as usize);
        writer.put_shard(&id, bytes.clone()).await.unwrap();
        shards.insert(id, bytes);
    }
    let dir_path = node.dir().to_owned();
    let half_way = wait_until(Duration::from_secs(10), || {
        cairn_testing::damage::shard_files(&dir_path) <= total * 3 / 4
    });
    assert!(half_way, "the migration did not start:\n{}", node.log());
    node.kill();
    let left = cairn_testing::damage::shard_files(node.dir());
    assert!(
        left > 0,
        "the migration ended before the kill; slow it down further"
    );

    node.set("migrate_rate", "\"50M\"");
    node.start();
    let reader = login(&node).await;
    assert_all_served(&reader, &shards, "after the kill").await;
    assert!(
        node.wait_for_log("migration: done"),
        "the migration did not finish after the restart:\n{}",
        node.log()
    );
    assert_eq!(
        cairn_testing::damage::shard_files(node.dir()),
        0,
        "shard files left"
    );
    assert_all_served(&reader, &shards, "after the migration").await;
    let ids: Vec<Id> = shards.keys().copied().collect();
    let has = reader.has_shards(&ids).await.unwrap();
    assert!(has.mine.iter().all(|&mine| mine), "{has:?}");
    reader.close().await;
    writer.close().await;
    assert!(node.stop().success(), "{}", node.log());
}

/// A node whose segment lost most of its shards to drops gives the space
/// back by itself: background compaction rewrites the segment (killed
/// with SIGKILL once half way, losing nothing), deletes it, and the shards
/// still referenced are served bit for bit; the dropped ones are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_compaction_frees_dropped_shards_and_survives_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = NodeProcess::init(BIN.as_ref(), &dir.path().join("node"), &["tcp"]);
    node.add_user(USER, PASSPHRASE, None);
    node.set("segments", "true");
    node.set("compact_interval_secs", "0");
    node.start();
    // 100 shards of 16 KiB into one segment.
    let connection = login(&node).await;
    let mut shards: Vec<(Id, Bytes)> = (0..100).map(|seed| shard(seed, 16 * 1024)).collect();
    for (id, bytes) in &shards {
        connection.put_shard(id, bytes.clone()).await.unwrap();
    }
    connection.close().await;
    assert!(node.stop().success(), "{}", node.log());
    let (full_bytes, full) = segments(node.dir());
    assert_eq!(full.len(), 1, "{full:?}");

    // Restarted (so that segment is no longer the one appended to), with
    // compaction every second at 128 KiB/s: the 40 shards left take about
    // five seconds to copy.
    node.set("compact_interval_secs", "1");
    node.set("compact_rate", "\"128K\"");
    node.start();
    let connection = login(&node).await;
    let dropped: Vec<(Id, Bytes)> = shards.drain(..60).collect();
    let ids: Vec<Id> = dropped.iter().map(|(id, _)| *id).collect();
    connection.drop_shards(&ids).await.unwrap();
    connection.close().await;
    let kept: HashMap<Id, Bytes> = shards.into_iter().collect();

    // Half way through the copy: a segment beside the old one has grown.
    let dir_path = node.dir().to_owned();
    let copying = wait_until(Duration::from_secs(10), || {
        let (bytes, names) = segments(&dir_path);
        names.contains(&full[0]) && bytes >= full_bytes + 10 * 16 * 1024
    });
    assert!(copying, "the compaction did not start:\n{}", node.log());
    node.kill();
    let (_, at_kill) = segments(node.dir());
    assert!(
        at_kill.contains(&full[0]),
        "the compaction ended before the kill; slow it down further"
    );

    node.set("compact_rate", "\"50M\"");
    node.start();
    let reader = login(&node).await;
    assert_all_served(&reader, &kept, "after the kill").await;
    let dir_path = node.dir().to_owned();
    let compacted = wait_until(Duration::from_secs(10), || {
        !segments(&dir_path).1.contains(&full[0])
    });
    assert!(
        compacted,
        "the mostly dead segment was not compacted:\n{}",
        node.log()
    );
    assert!(node.wait_for_log("compaction: done"), "{}", node.log());
    let (after_bytes, _) = segments(node.dir());
    assert!(
        after_bytes < full_bytes * 6 / 10,
        "the disk did not get the dropped shards' space back: {after_bytes} of {full_bytes} bytes"
    );
    assert_all_served(&reader, &kept, "after the compaction").await;
    for (id, _) in &dropped {
        let err = reader.get_shard(id).await.unwrap_err();
        assert!(
            matches!(&err, ClientError::Node(e) if e.code == ErrorCode::NotFound),
            "dropped {id}: {err}"
        );
    }
    reader.close().await;
    assert!(node.stop().success(), "{}", node.log());
}

/// `cairn node compact` on a stopped node rewrites the mostly dead segment
/// at once, and is refused beside the running node.
#[test]
fn node_compact_compacts_a_stopped_node_and_refuses_a_running_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = NodeProcess::init(BIN.as_ref(), &dir.path().join("node"), &["tcp"]);
    let shards: Vec<(Id, Bytes)> = (0..10).map(|seed| shard(seed, 10_000)).collect();
    {
        let store = Store::open(node.dir(), StoreOptions::default().with_segments(true)).unwrap();
        for (id, bytes) in &shards {
            store.put(USER, id, bytes, None).unwrap();
        }
    }
    let store = Store::open(node.dir(), StoreOptions::default().with_segments(true)).unwrap();
    for (id, _) in &shards[..7] {
        store.drop_ref(USER, id).unwrap();
    }
    drop(store);
    let (before, names) = segments(node.dir());
    let node_dir = node.dir().to_str().unwrap().to_owned();
    let compact = || {
        std::process::Command::new(BIN)
            .args(["node", "compact", "--dir", &node_dir])
            .output()
            .unwrap()
    };

    node.start();
    let refused = compact();
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("is running"), "{err}");
    assert!(node.stop().success(), "{}", node.log());

    let out = compact();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("1 segments rewritten"), "{text}");
    let (after, now) = segments(node.dir());
    assert!(names.iter().all(|n| !now.contains(n)), "{names:?} {now:?}");
    assert!(after < before / 2, "{after} of {before} bytes");
    let store = Store::open(node.dir(), StoreOptions::default()).unwrap();
    for (id, bytes) in &shards[7..] {
        assert_eq!(store.get(id).unwrap(), *bytes);
    }
}
