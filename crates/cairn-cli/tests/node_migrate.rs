//! `cairn node migrate`: a stopped node's shard files move into segments
//! (issue 17), after which the node's store and `cairn node scrub` find
//! every shard intact, and running it again finds nothing left to move.
//!
//! Guards against a migration that loses or damages shards, leaves their
//! files behind, or that the scrub (which must walk segments too) then
//! reports as missing.

use std::path::Path;
use std::process::Command;

use cairn_core::Id;
use cairn_store::{Store, StoreOptions, count_shards};
use cairn_testing::node::NodeProcess;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_cairn");

fn cairn(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A stopped node whose store holds `count` shards in shard files, as
/// every store did before segments became the default.
fn node_with_shards(dir: &Path, count: u64) -> (NodeProcess, Vec<(Id, Vec<u8>)>) {
    let node = NodeProcess::init(BIN.as_ref(), &dir.join("node"), &["tcp"]);
    let options = StoreOptions::default().with_segments(false);
    let store = Store::open(node.dir(), options).unwrap();
    let shards = (0..count)
        .map(|seed| {
            let bytes = cairn_testing::seeded_bytes(500 + seed, 3000 + seed as usize * 101);
            let id = Id::of(&bytes);
            store.put("alice", &id, &bytes, None).unwrap();
            (id, bytes)
        })
        .collect();
    (node, shards)
}

#[test]
fn migrate_moves_every_shard_file_into_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (node, shards) = node_with_shards(dir.path(), 20);
    let node_dir = node.dir().to_str().unwrap();
    assert_eq!(cairn_testing::damage::shard_files(node.dir()), 20);
    assert_eq!(count_shards(node.dir()).unwrap(), 20);

    let (code, out, err) = cairn(&["node", "migrate", "--dir", node_dir]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("migrated 20 shard files"), "{out}");
    assert_eq!(cairn_testing::damage::shard_files(node.dir()), 0);
    assert_eq!(count_shards(node.dir()).unwrap(), 20);

    let (code, out, err) = cairn(&["node", "scrub", "--json", "--dir", node_dir]);
    assert_eq!(code, Some(0), "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["shards_checked"], 20, "{report}");
    assert_eq!(report["ok"], true, "{report}");

    let (code, out, err) = cairn(&["node", "migrate", "--dir", node_dir]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("migrated 0 shard files"), "{out}");

    // `node status` counts shards in segments too.
    let (code, out, err) = cairn(&["node", "status", "--json", "--dir", node_dir]);
    assert_eq!(code, Some(0), "{err}");
    let status: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["shards"], 20, "{status}");

    let store = Store::open(node.dir(), StoreOptions::default()).unwrap();
    for (id, bytes) in &shards {
        assert!(store.shard_location(id).unwrap().is_some());
        assert_eq!(store.get(id).unwrap(), *bytes);
    }
}
