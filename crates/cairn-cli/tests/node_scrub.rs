//! Scrubbing a node's disk: `cairn node scrub` on a stopped node, and the
//! background scrub of a running `cairn node run`.
//!
//! Bugs these guard against:
//! - a scrub that misses a kind of damage (flipped bits, a truncation, a
//!   deleted file), or exits 0 when it found some;
//! - an offline scrub run beside a running node (two stores on one
//!   directory);
//! - a background scrub that never runs, finds nothing, does not record its
//!   pass for `node status`, holds up requests, or keeps the node from
//!   shutting down.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_core::{AuthKey, Id, KdfParams};
use cairn_net::client::{ClientOptions, Connection};
use cairn_net::{NodeAddress, NodeId};
use cairn_store::{ShardPlace, Store, StoreOptions};
use cairn_testing::damage;
use cairn_testing::node::NodeProcess;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_cairn");
const PASSPHRASE: &str = "correct horse battery staple";

/// A node directory (tcp://, not started) whose store holds `count` shards
/// of `len` bytes for alice, put through the store directly: in segments
/// (the default), or in shard files with `segments` false.
fn node_with_shards(
    dir: &Path,
    count: u64,
    len: usize,
    segments: bool,
) -> (NodeProcess, Vec<(Id, Vec<u8>)>) {
    let node = NodeProcess::init(BIN.as_ref(), &dir.join("node"), &["tcp"]);
    let options = StoreOptions::default().with_segments(segments);
    let store = Store::open(node.dir(), options).unwrap();
    let shards: Vec<(Id, Vec<u8>)> = (0..count)
        .map(|seed| {
            let bytes = cairn_testing::seeded_bytes(1000 + seed, len);
            let id = Id::of(&bytes);
            store.put("alice", &id, &bytes, None).unwrap();
            (id, bytes)
        })
        .collect();
    (node, shards)
}

/// Runs `cairn` with `args`: exit code, stdout, stderr.
fn cairn(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `cairn node status --json` of `node`.
fn status(node: &NodeProcess) -> Value {
    let (code, out, err) = cairn(&[
        "node",
        "status",
        "--json",
        "--dir",
        node.dir().to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    serde_json::from_str(&out).unwrap()
}

/// The kinds of damage a disk does to a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Damage {
    Bits,
    Truncation,
    Deletion,
}

/// Does `kind` of damage to the shard at `place` (see
/// `cairn_testing::damage`: a truncated segment loses the records after
/// the cut, and a deleted record is zeroed, header and all).
fn damage(place: &ShardPlace, kind: Damage) {
    match kind {
        Damage::Bits => {
            damage::flip_bit(place, 17, 0);
        }
        Damage::Truncation => {
            damage::truncate(place, damage::len(place) / 2);
        }
        Damage::Deletion => damage::remove(place),
    }
}

/// Where shard `id`'s bytes are in the stopped node's store.
fn place(node: &NodeProcess, id: &Id) -> ShardPlace {
    node.shard_place(id).expect("the shard is stored")
}

/// In both layouts. The victim is the last shard put, so that a torn
/// segment takes no other record with it.
#[test]
fn node_scrub_finds_each_kind_of_damage_and_exits_1_and_passes_a_clean_store() {
    for segments in [true, false] {
        for kind in [
            None,
            Some(Damage::Bits),
            Some(Damage::Truncation),
            Some(Damage::Deletion),
        ] {
            scrub_finds(segments, kind);
        }
    }
}

fn scrub_finds(segments: bool, kind: Option<Damage>) {
    let dir = tempfile::tempdir().unwrap();
    let (node, shards) = node_with_shards(dir.path(), 4, 5000, segments);
    let d = node.dir().to_str().unwrap();
    let victim = shards[3].0.to_string();
    if let Some(kind) = kind {
        damage(&place(&node, &shards[3].0), kind);
    }
    // A deleted file is simply gone; a deleted (zeroed) record is
    // damage, found by reading it. A torn record cannot be read in
    // full; a truncated file hashes to another id.
    let (damaged_kind, found_by) = match (kind, segments) {
        (Some(Damage::Deletion), false) => (None, ""),
        (Some(Damage::Truncation), true) => (kind, "cannot be read"),
        (Some(_), _) => (kind, "hash to"),
        (None, _) => (None, ""),
    };

    let (code, out, err) = cairn(&["node", "scrub", "--dir", d, "--json"]);
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let damaged: Vec<&str> = report["damaged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    let missing: Vec<&str> = report["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    match kind {
        None => {
            assert_eq!(code, Some(0), "{err}");
            assert_eq!(report["ok"], true);
            assert_eq!(report["shards_checked"], 4);
            assert_eq!(report["bytes_checked"], 4 * 5000);
            assert!(damaged.is_empty() && missing.is_empty(), "{report}");
        }
        Some(_) if damaged_kind.is_none() => {
            assert_eq!(code, Some(1), "{report}");
            assert_eq!(report["shards_checked"], 3);
            assert!(damaged.is_empty(), "{report}");
            assert_eq!(missing, [victim.as_str()]);
            assert!(err.contains("0 damaged and 1 missing"), "{err}");
        }
        Some(kind) => {
            let at = format!("{kind:?}, segments {segments}");
            assert_eq!(code, Some(1), "{at}: {report}");
            assert_eq!(report["shards_checked"], 4, "{at}");
            assert_eq!(damaged, [victim.as_str()], "{at}");
            assert!(
                report["damaged"][0]["damage"]
                    .as_str()
                    .unwrap()
                    .contains(found_by),
                "{at}: {report}"
            );
            // Quarantined, and still referenced: missing too.
            let quarantined = report["damaged"][0]["quarantined"].as_str().unwrap();
            assert!(Path::new(quarantined).starts_with(node.dir().join("quarantine")));
            assert!(Path::new(quarantined).exists());
            assert_eq!(node.shard_place(&shards[3].0), None, "{at}");
            assert_eq!(missing, [victim.as_str()]);
            assert!(err.contains("1 damaged and 1 missing"), "{err}");
        }
    }
    // The other shards are untouched.
    for (id, bytes) in &shards[..3] {
        assert_eq!(&damage::read(&place(&node, id)), bytes);
    }
    // The pass is recorded for `node status`.
    let last = &status(&node)["last_scrub"];
    assert_eq!(last["missing"], u64::from(kind.is_some()), "{last}");
    assert_eq!(last["corrupt"], u64::from(damaged_kind.is_some()));

    // In text, the second pass names what is still missing.
    let (code, out, _) = cairn(&["node", "scrub", "--dir", d]);
    if kind.is_some() {
        assert_eq!(code, Some(1));
        assert!(
            out.contains(&format!("missing: {victim}: referenced, but not stored")),
            "{out}"
        );
    } else {
        assert_eq!(code, Some(0));
        assert!(out.contains("4 shards") && out.contains("ok:"), "{out}");
    }
}

#[test]
fn node_scrub_is_refused_while_the_node_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (mut node, _) = node_with_shards(dir.path(), 1, 100, true);
    node.start();
    let (code, _, err) = cairn(&["node", "scrub", "--dir", node.dir().to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("is running") && err.contains("stop it first"),
        "{err}"
    );
    assert!(node.stop().success());
    assert_eq!(status(&node)["last_scrub"], Value::Null);
}

async fn login(node: &NodeProcess, user: &str) -> Connection {
    let address: NodeAddress = node.address("tcp").parse().unwrap();
    let id: NodeId = node.node_id().parse().unwrap();
    let key = AuthKey::derive(user, PASSPHRASE.as_bytes(), &KdfParams::default())
        .unwrap()
        .for_node(id.0.as_bytes());
    let connection = Connection::connect(&address, &ClientOptions::default(), false)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", node.log()));
    connection
        .login(user, key.expose_secret())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", node.log()));
    connection
}

/// Waits up to 30 s for `done` to hold of the node's status.
fn wait_for_status(node: &NodeProcess, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = status(node);
        if done(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "status never came: {status}\n{}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn the_background_scrub_finds_damage_in_a_running_node_and_status_shows_the_pass() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = NodeProcess::init(BIN.as_ref(), &dir.path().join("node"), &["tcp"]);
    node.add_user("alice", PASSPHRASE, None);
    node.set("scrub_interval_secs", "1");
    node.set("scrub_rate", "\"1G\"");
    node.start();
    assert!(node.wait_for_log("background scrub: a full pass at 1G/s every 1 s"));
    let alice = login(&node, "alice").await;
    let mut shards = Vec::new();
    for seed in 0..5u64 {
        let bytes = Bytes::from(cairn_testing::seeded_bytes(2000 + seed, 40_000));
        let id = Id::of(&bytes);
        alice.put_shard(&id, bytes.clone()).await.unwrap();
        shards.push((id, bytes));
    }
    // A pass over the intact shards first: nothing found.
    wait_for_status(&node, |s| s["last_scrub"]["shards_checked"] == 5);

    // Bits flipped in the first, the second deleted, and the last (so that
    // a torn segment takes no other record with it) cut short.
    let hex = |i: usize| shards[i].0.to_string();
    let places: Vec<ShardPlace> = shards.iter().map(|(id, _)| place(&node, id)).collect();
    damage(&places[0], Damage::Bits);
    damage(&places[1], Damage::Deletion);
    damage(&places[4], Damage::Truncation);
    for (i, what) in [(0, "damaged"), (4, "damaged"), (1, "missing")] {
        let line = format!("shard {} is {what}", hex(i));
        assert!(node.wait_for_log(&line), "no {line:?} in\n{}", node.log());
    }
    // The pass that quarantined the damaged shards, and every pass after
    // it, finds the three shards missing; status shows the last. (The one
    // record with `corrupt` = 2 or 3 lasts a second: too short to wait
    // for.)
    let status = wait_for_status(&node, |s| {
        s["last_scrub"]["missing"] == 3 && s["last_scrub"]["corrupt"] == 0
    });
    assert_eq!(status["last_scrub"]["shards_checked"], 2, "{status}");
    let mut quarantined: Vec<String> = std::fs::read_dir(node.dir().join("quarantine"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    quarantined.sort();
    // A deleted file is gone; a deleted (zeroed) record is damage, and
    // its remains are kept like any other's.
    let mut expected = Vec::new();
    for i in [0, 1, 4] {
        match &places[i] {
            ShardPlace::Segment(_) => expected.push(format!("{}.seg.0", hex(i))),
            _ if i != 1 => expected.push(format!("{}.0", hex(i))),
            _ => {}
        }
    }
    expected.sort();
    assert_eq!(quarantined, expected);
    assert!(node.log().contains("WARN"), "{}", node.log());

    // The node serves on, and a put of a lost shard restores it.
    for (id, bytes) in &shards[2..4] {
        assert_eq!(&alice.get_shard(id).await.unwrap(), bytes);
    }
    for i in [0, 1, 4] {
        let (id, bytes) = &shards[i];
        assert!(alice.get_shard(id).await.is_err());
        alice.put_shard(id, bytes.clone()).await.unwrap();
    }
    wait_for_status(&node, |s| {
        s["last_scrub"]["missing"] == 0 && s["last_scrub"]["shards_checked"] == 5
    });
    assert!(node.stop().success());
}

/// A pass paced at 1 KiB/s over 512 KiB would take over eight minutes: the
/// node must serve meanwhile, and stop when told. The grace period is
/// longer than `stop` waits, so a shutdown that waited for the pass would
/// fail the test.
#[tokio::test]
async fn a_slow_background_scrub_holds_up_neither_requests_nor_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let (mut node, shards) = node_with_shards(dir.path(), 2, 256 * 1024, true);
    node.add_user("alice", PASSPHRASE, None);
    node.set("scrub_interval_secs", "1");
    node.set("scrub_rate", "\"1K\"");
    node.set("shutdown_grace_secs", "120");
    node.start();
    assert!(node.wait_for_log("scrub: starting a full pass"));

    let alice = login(&node, "alice").await;
    for (id, bytes) in &shards {
        assert_eq!(&alice.get_shard(id).await.unwrap()[..], &bytes[..]);
    }
    for seed in 0..4u64 {
        let bytes = Bytes::from(cairn_testing::seeded_bytes(3000 + seed, 100_000));
        let id = Id::of(&bytes);
        alice.put_shard(&id, bytes.clone()).await.unwrap();
        assert_eq!(alice.get_shard(&id).await.unwrap(), bytes);
    }
    alice.close().await;

    let status_code = node.stop();
    assert!(status_code.success(), "{status_code}\n{}", node.log());
    assert!(
        node.log().contains("pass stopped for shutdown"),
        "{}",
        node.log()
    );
    assert!(!node.log().contains("abandoned"), "{}", node.log());
    // A pass cut short is not a pass.
    assert_eq!(status(&node)["last_scrub"], Value::Null);
}
