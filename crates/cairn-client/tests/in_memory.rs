//! The client's public operations over fake nodes in memory
//! (`MemoryTransport`) and injected faults (`FailureTransport`): what a put,
//! a get, a tree put, a removal and a repair decide, in milliseconds and
//! without node processes. The same operations against real nodes are in
//! cairn-cli's `client*.rs` tests.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cairn_client::fetch::{FetchError, Part};
use cairn_client::transport::{
    FailureKind, FailureTransport, Fault, MemoryTransport, Op, Transport,
};
use cairn_client::tree::{FailedFile, FileError, SkipReason, TreeEvent, TreeOptions, TreePlan};
use cairn_client::{Client, ClientConfig, Health, RemotePath, StoreError};
use cairn_core::keys::MasterKey;
use cairn_core::{AuthKey, UserKeys};
use cairn_net::protocol::ErrorCode;

fn keys() -> UserKeys {
    UserKeys {
        auth: AuthKey::from_bytes([1; 32]),
        master: MasterKey::from_bytes([2; 32]),
    }
}

/// A client of four fake nodes (2-of-4, a put needs three), behind a
/// failure transport.
fn client() -> Client<FailureTransport<MemoryTransport>> {
    let transport = FailureTransport::new(MemoryTransport::new(4));
    Client::with_transport(transport, &ClientConfig::new("alice", Vec::new()), &keys()).unwrap()
}

fn nodes<T: Transport>(client: &Client<FailureTransport<T>>) -> &T {
    client.transport().inner()
}

fn remote(path: &str) -> RemotePath {
    path.parse().unwrap()
}

fn seeded(seed: u8, len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    blake3::Hasher::new_derive_key("cairn in-memory client tests")
        .update(&[seed])
        .finalize_xof()
        .fill(&mut bytes);
    bytes
}

/// Writes `bytes` to `dir/name` and returns the path.
fn file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, bytes).unwrap();
    path
}

async fn fetched<T: Transport>(client: &Client<T>, path: &str) -> Result<Vec<u8>, FetchError> {
    let mut out = Vec::new();
    client.fetch_to(&remote(path), &mut out, &|_| {}).await?;
    Ok(out)
}

#[tokio::test]
async fn a_small_file_goes_inline_and_a_larger_one_into_chunks() {
    let client = client();
    let dir = tempfile::tempdir().unwrap();
    let small = seeded(1, 100);
    let large = seeded(2, 300_000);
    let stored = client
        .store(&file(dir.path(), "small", &small), &remote("small"))
        .await
        .unwrap();
    assert!(stored.inline && !stored.degraded, "{stored:?}");
    assert_eq!((stored.chunks, stored.fewest_nodes), (0, 4));
    assert!((0..4).all(|n| nodes(&client).shard_ids(n).is_empty()));

    let stored = client
        .store(&file(dir.path(), "large", &large), &remote("large"))
        .await
        .unwrap();
    assert!(!stored.inline && !stored.degraded, "{stored:?}");
    // One chunk and the manifest, four shards each.
    assert_eq!((stored.chunks, stored.shards_sent), (1, 8));
    assert_eq!(fetched(&client, "small").await.unwrap(), small);
    assert_eq!(fetched(&client, "large").await.unwrap(), large);
}

#[tokio::test]
async fn a_put_with_one_of_four_nodes_failing_is_degraded_and_names_the_node() {
    let client = client();
    client.transport().inject(
        2,
        Op::PutShard,
        usize::MAX,
        Fault::Refuse(ErrorCode::DiskFull),
    );
    let data = seeded(3, 300_000);
    let dir = tempfile::tempdir().unwrap();
    let stored = client
        .store(&file(dir.path(), "f", &data), &remote("f"))
        .await
        .unwrap();
    assert!(stored.degraded, "{stored:?}");
    assert_eq!(stored.fewest_nodes, 3, "{stored:?}");
    assert_eq!(stored.failed_nodes.len(), 1, "{stored:?}");
    assert_eq!(stored.failed_nodes[0].index, 2);
    assert_eq!(
        stored.failed_nodes[0].kind,
        FailureKind::Refused {
            code: ErrorCode::DiskFull
        }
    );
    assert!(nodes(&client).shard_ids(2).is_empty());
    assert_eq!(fetched(&client, "f").await.unwrap(), data);

    let layout = client.stat(&remote("f")).await.unwrap();
    assert_eq!(layout.health, Health::Degraded);
    client.transport().clear();
    let repaired = client.repair(&remote("f")).await.unwrap();
    assert_eq!(
        (repaired.before, repaired.after),
        (Health::Degraded, Health::Ok)
    );
    assert_eq!(repaired.shards_written, 2, "{repaired:?}");
    assert_eq!(nodes(&client).shard_ids(2).len(), 2);
}

#[tokio::test]
async fn a_put_short_of_min_shards_names_the_unreachable_nodes_and_stores_nothing() {
    let client = client();
    nodes(&client).stop(1);
    nodes(&client).stop(3);
    let dir = tempfile::tempdir().unwrap();
    let error = client
        .store(&file(dir.path(), "f", &seeded(4, 300_000)), &remote("f"))
        .await
        .unwrap_err();
    match &error {
        StoreError::TooFewNodes {
            reachable: 2,
            total: 4,
            needed: 3,
            failed,
        } => {
            let named: Vec<usize> = failed.iter().map(|f| f.index).collect();
            assert_eq!(named, [1, 3]);
        }
        other => panic!("expected TooFewNodes, got {other:?}"),
    }
    for node in [1, 3] {
        assert!(
            error
                .to_string()
                .contains(&nodes(&client).addresses()[node].to_string())
        );
    }
    assert!((0..4).all(|n| nodes(&client).shard_ids(n).is_empty()));
}

#[tokio::test]
async fn an_index_write_short_of_a_majority_fails_the_put_naming_the_nodes() {
    let client = client();
    for node in [0, 1] {
        client.transport().inject(
            node,
            Op::PutEntry,
            usize::MAX,
            Fault::Timeout(Duration::ZERO),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let error = client
        .store(&file(dir.path(), "f", b"tiny"), &remote("f"))
        .await
        .unwrap_err();
    match error {
        StoreError::IndexNotStored {
            acknowledged: 2,
            total: 4,
            needed: 3,
            failed,
        } => {
            let named: Vec<(usize, FailureKind)> =
                failed.iter().map(|f| (f.index, f.kind)).collect();
            let timeout = FailureKind::Timeout {
                after: Duration::ZERO,
            };
            assert_eq!(named, [(0, timeout), (1, timeout)]);
        }
        other => panic!("expected IndexNotStored, got {other:?}"),
    }
}

#[tokio::test]
async fn a_get_refuses_a_shard_corrupted_on_the_way_and_fetches_another() {
    let client = client();
    let data = seeded(5, 300_000);
    let dir = tempfile::tempdir().unwrap();
    client
        .store(&file(dir.path(), "f", &data), &remote("f"))
        .await
        .unwrap();
    client
        .transport()
        .inject_any(Op::GetShard, 1, Fault::CorruptShard);
    let mut out = Vec::new();
    let report = client
        .fetch_to(&remote("f"), &mut out, &|_| {})
        .await
        .unwrap();
    assert_eq!(out, data);
    assert_eq!(report.shards_failed, 1, "{report:?}");
}

#[tokio::test]
async fn a_chunk_without_k_shards_is_unavailable_naming_it_and_the_shards() {
    let client = client();
    let dir = tempfile::tempdir().unwrap();
    client
        .store(&file(dir.path(), "f", &seeded(6, 300_000)), &remote("f"))
        .await
        .unwrap();
    // Three of the four nodes lose every shard: each chunk keeps one.
    for node in 0..3 {
        for id in nodes(&client).shard_ids(node) {
            nodes(&client).remove_shard(node, &id);
        }
    }
    match fetched(&client, "f").await {
        Err(FetchError::Unavailable {
            what,
            found,
            needed: 2,
            failed,
        }) => {
            assert_eq!(what, Part::Manifest);
            assert!(found < 2);
            assert!(!failed.is_empty());
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_file_is_not_found_and_a_lookup_nobody_answers_names_the_nodes() {
    let client = client();
    assert!(matches!(
        fetched(&client, "nope").await,
        Err(FetchError::NotFound(path)) if path == remote("nope")
    ));
    for node in 0..4 {
        nodes(&client).stop(node);
    }
    match fetched(&client, "nope").await {
        Err(FetchError::NoNode { path, failed }) => {
            assert_eq!(path, remote("nope"));
            assert_eq!(failed.len(), 4);
        }
        other => panic!("expected NoNode, got {other:?}"),
    }
}

#[tokio::test]
async fn remove_writes_a_tombstone_and_drops_only_the_shards_no_other_file_uses() {
    let client = client();
    let dir = tempfile::tempdir().unwrap();
    let data = seeded(7, 300_000);
    let local = file(dir.path(), "f", &data);
    client.store(&local, &remote("a")).await.unwrap();
    client.store(&local, &remote("b")).await.unwrap();
    let report = client.remove(&remote("a")).await.unwrap();
    assert_eq!(report.references_dropped, 0, "b uses every shard");
    assert!(report.shards_kept > 0);
    let report = client.remove(&remote("b")).await.unwrap();
    assert_eq!(report.references_dropped, 8);
    assert!(client.list("").await.unwrap().is_empty());
    assert!((0..4).all(|n| nodes(&client).shard_ids(n).is_empty()));
    assert!(matches!(
        fetched(&client, "a").await,
        Err(FetchError::NotFound(_))
    ));
}

#[tokio::test]
async fn sharing_an_inline_file_stores_it_as_chunks_first() {
    let client = client();
    let dir = tempfile::tempdir().unwrap();
    client
        .store(&file(dir.path(), "s", b"small"), &remote("s"))
        .await
        .unwrap();
    let capability = client.capability(&remote("s")).await.unwrap();
    assert!(!nodes(&client).shard_ids(0).is_empty());
    let mut out = Vec::new();
    client
        .fetch_capability_to(&capability, &mut out, &|_| {})
        .await
        .unwrap();
    assert_eq!(out, b"small");
    assert!(!client.stat(&remote("s")).await.unwrap().inline);
}

/// A tree with two files to store, a file whose put the scan refuses, a
/// name that is not UTF-8 and a symbolic link.
fn tree() -> (tempfile::TempDir, Vec<u8>, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (seeded(8, 1000), seeded(9, 300_000));
    file(dir.path(), "a.txt", &a);
    file(dir.path(), "bad.txt", b"refused");
    file(dir.path(), "sub/b.bin", &b);
    let odd = std::ffi::OsStr::from_bytes(b"odd-\xff");
    std::fs::write(dir.path().join(odd), b"x").unwrap();
    std::os::unix::fs::symlink(dir.path().join("a.txt"), dir.path().join("link")).unwrap();
    (dir, a, b)
}

#[tokio::test]
async fn a_tree_put_stores_every_file_skips_links_and_goes_on_past_failures() {
    let mut client = client();
    // A scan that refuses bad.txt (the path is the script's $0).
    client.set_scan_command(Some(vec![
        "sh".into(),
        "-c".into(),
        "case \"$0\" in *bad.txt) exit 1;; esac".into(),
    ]));
    let (dir, a, b) = tree();
    let events = Mutex::new(Vec::new());
    let bytes = Mutex::new(0u64);
    let report = client
        .store_tree(
            dir.path(),
            Some(&remote("backup")),
            &TreeOptions::default(),
            &|event| match event {
                TreeEvent::Progress { bytes: done } => {
                    let mut bytes = bytes.lock().unwrap();
                    assert!(done >= *bytes, "progress only grows");
                    *bytes = done;
                }
                TreeEvent::Skipped(s) => events
                    .lock()
                    .unwrap()
                    .push(format!("skipped {}", s.local.display())),
                TreeEvent::Failed(f) => events
                    .lock()
                    .unwrap()
                    .push(format!("failed {}", f.local.display())),
                TreeEvent::Stored(s) => events.lock().unwrap().push(format!("stored {}", s.remote)),
                _ => {}
            },
        )
        .await
        .unwrap();

    let stored: Vec<String> = report.stored.iter().map(|s| s.remote.to_string()).collect();
    assert_eq!(stored, ["backup/a.txt", "backup/sub/b.bin"]);
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].reason, SkipReason::SymbolicLink);
    assert_eq!(report.failed.len(), 2, "{:?}", report.failed);
    assert!(matches!(report.failed[0].error, FileError::NotUtf8));
    assert_eq!(report.failed[0].name, None);
    assert!(matches!(
        report.failed[1].error,
        FileError::Store(StoreError::Scan(_))
    ));
    assert_eq!(report.failed[1].name.as_deref(), Some("backup/bad.txt"));
    let d = dir.path().display();
    assert_eq!(
        *events.lock().unwrap(),
        [
            format!("skipped {d}/link"),
            format!("failed {d}/odd-\u{fffd}"),
            "stored backup/a.txt".to_owned(),
            format!("failed {d}/bad.txt"),
            "stored backup/sub/b.bin".to_owned(),
        ]
    );
    assert_eq!(*bytes.lock().unwrap(), (a.len() + b.len() + 7) as u64);

    client.set_scan_command(None);
    assert_eq!(fetched(&client, "backup/a.txt").await.unwrap(), a);
    assert_eq!(fetched(&client, "backup/sub/b.bin").await.unwrap(), b);
}

#[tokio::test]
async fn a_tree_plan_needs_no_client_and_names_files_without_a_prefix() {
    let (dir, a, b) = tree();
    let plan = TreePlan::walk(dir.path(), None).unwrap();
    let names: Vec<String> = plan.files.iter().map(|f| f.remote.to_string()).collect();
    assert_eq!(names, ["a.txt", "bad.txt", "sub/b.bin"]);
    assert_eq!(plan.bytes(), (a.len() + b.len() + 7) as u64);
    assert!(TreePlan::walk(&dir.path().join("missing"), None).is_err());

    // Storing a plan the caller has seen tells only of the files stored.
    let client = client();
    let events = Mutex::new(Vec::new());
    let report = client
        .store_plan(plan, &TreeOptions::default(), &|event| match event {
            TreeEvent::Progress { .. } => {}
            other => events.lock().unwrap().push(format!("{other:?}")),
        })
        .await;
    let events = events.into_inner().unwrap();
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(events.iter().all(|e| e.starts_with("Stored")), "{events:?}");
    assert_eq!((report.stored.len(), report.skipped.len()), (3, 1));
    assert!(matches!(
        report.failed[..],
        [FailedFile {
            error: FileError::NotUtf8,
            ..
        }]
    ));
}

#[tokio::test]
async fn a_tree_put_keeps_many_small_files_in_flight() {
    let client = client();
    let dir = tempfile::tempdir().unwrap();
    for i in 0..32 {
        file(dir.path(), &format!("f{i:02}"), &seeded(i, 100));
    }
    // Every index write takes 100 ms: one file at a time would take over
    // three seconds.
    client.transport().inject_any(
        Op::PutEntry,
        usize::MAX,
        Fault::Delay(Duration::from_millis(100)),
    );
    let started = Instant::now();
    let report = client
        .store_tree(dir.path(), None, &TreeOptions::default(), &|_| {})
        .await
        .unwrap();
    assert_eq!(report.stored.len(), 32);
    assert!(report.failed.is_empty());
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );

    // One file at a time, for comparison.
    let one = TreeOptions {
        files_in_flight: 1,
        ..TreeOptions::default()
    };
    let started = Instant::now();
    client
        .store_tree(dir.path(), Some(&remote("again")), &one, &|_| {})
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(3200));
}
