//! `cairn node` as its operators and clients meet it: real `cairn node run`
//! processes on 127.0.0.1, driven through the real client and, for the
//! hostile cases, through raw TLS connections.
//!
//! Each test has its own node directory under a temporary directory, on
//! free ports; a failing test prints the node's log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_core::{AuthKey, Id, KdfParams};
use cairn_net::client::{ClientError, ClientOptions, Connection};
use cairn_net::frame;
use cairn_net::protocol::{Dropped, ErrorCode, Request, Response, VERSIONS};
use cairn_net::{NodeAddress, NodeId};
use cairn_testing::node::NodeProcess;
use cairn_testing::raw;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_cairn");
const PASSPHRASE: &str = "correct horse battery staple";

/// A node with users alice (quota 8M) and bob, running.
fn node(
    dir: &tempfile::TempDir,
    schemes: &[&str],
    configure: impl FnOnce(&NodeProcess),
) -> NodeProcess {
    let mut node = NodeProcess::init(BIN.as_ref(), &dir.path().join("node"), schemes);
    node.add_user("alice", PASSPHRASE, Some("8M"));
    node.add_user("bob", PASSPHRASE, None);
    configure(&node);
    node.start();
    node
}

fn address(node: &NodeProcess, scheme: &str) -> NodeAddress {
    node.address(scheme).parse().unwrap()
}

fn node_key(node: &NodeProcess, user: &str) -> [u8; 32] {
    let id: NodeId = node.node_id().parse().unwrap();
    *AuthKey::derive(user, PASSPHRASE.as_bytes(), &KdfParams::default())
        .unwrap()
        .for_node(id.0.as_bytes())
        .expose_secret()
}

async fn connect(node: &NodeProcess, scheme: &str) -> Connection {
    Connection::connect(&address(node, scheme), &ClientOptions::default(), false)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", node.log()))
}

async fn login(node: &NodeProcess, scheme: &str, user: &str) -> Connection {
    let connection = connect(node, scheme).await;
    connection
        .login(user, &node_key(node, user))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", node.log()));
    connection
}

fn shard(seed: u8, len: usize) -> (Id, Bytes) {
    let bytes = Bytes::from(cairn_testing::seeded_bytes(u64::from(seed), len));
    (Id::of(&bytes), bytes)
}

/// The operations of the protocol over one transport; `seed` keeps the
/// names and shards of several runs on one node apart.
async fn exercise(node: &NodeProcess, scheme: &str, seed: u8) {
    let alice = login(node, scheme, "alice").await;
    let bob = login(node, scheme, "bob").await;
    assert_eq!(
        alice.info().await.unwrap().node_id.to_string(),
        node.node_id()
    );

    let (id, bytes) = shard(seed, 300_000);
    assert!(alice.put_shard(&id, bytes.clone()).await.unwrap());
    assert_eq!(alice.get_shard(&id).await.unwrap(), bytes);
    assert!(node.shard_place(&id).is_some());
    let (absent, _) = shard(seed + 100, 10);
    let has = alice.has_shards(&[id, absent]).await.unwrap();
    assert_eq!(
        (has.stored, has.mine),
        (vec![true, false], vec![true, false])
    );
    let has = bob.has_shards(&[id]).await.unwrap();
    assert_eq!((has.stored, has.mine), (vec![true], vec![false]));
    // Bob can neither drop Alice's reference nor see her index.
    assert_eq!(
        bob.drop_shards(&[id]).await.unwrap(),
        vec![Dropped::NotReferenced]
    );
    let name = [seed; 32];
    alice
        .put_index(&name, 5, Bytes::from_static(b"five"))
        .await
        .unwrap();
    assert!(bob.get_index(&name).await.unwrap().is_none());
    assert!(bob.delete_index(&name).await.unwrap().is_none());
    bob.put_index(&name, 9, Bytes::from_static(b"bob"))
        .await
        .unwrap();
    assert_eq!(
        &alice.get_index(&name).await.unwrap().unwrap().data[..],
        b"five"
    );
    // Versions: older refused, newer replaces, list and delete.
    let stale = alice
        .put_index(&name, 4, Bytes::from_static(b"four"))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Some(ErrorCode::Conflict));
    assert_eq!(
        alice
            .put_index(&name, 6, Bytes::from_static(b"six"))
            .await
            .unwrap(),
        Some(5)
    );
    let listed = alice.list_index(None, 100).await.unwrap();
    assert_eq!(listed.entries.len(), 1);
    assert_eq!(listed.entries[0].name, name);
    assert_eq!(
        (listed.entries[0].version, &listed.entries[0].data[..]),
        (6, &b"six"[..])
    );
    assert_eq!(alice.delete_index(&name).await.unwrap(), Some(6));
    // Dropping the last reference deletes the shard.
    assert_eq!(
        alice.drop_shards(&[id]).await.unwrap(),
        vec![Dropped::Deleted]
    );
    assert_eq!(node.shard_place(&id), None);
    let gone = alice.get_shard(&id).await.unwrap_err();
    assert_eq!(gone.code(), Some(ErrorCode::NotFound));
}

#[tokio::test]
async fn every_transport_serves_shards_and_index_entries() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = node(&dir, &["tcp", "quic", "https"], |_| {});
    exercise(&node, "tcp", 1).await;
    exercise(&node, "quic", 2).await;
    exercise(&node, "https", 3).await;
    assert!(node.stop().success(), "{}", node.log());
}

#[tokio::test]
async fn wrong_credentials_are_refused_then_slowed_and_never_logged() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = node(&dir, &["tcp"], |_| {});
    let connection = connect(&node, "tcp").await;
    let mut wrong = node_key(&node, "alice");
    wrong[0] ^= 1;
    let mut waits = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let err = connection.login("alice", &wrong).await.unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::Unauthorized));
        waits.push(started.elapsed());
    }
    // Three free attempts, then at least 250 ms, then at least 500 ms more.
    assert!(waits[3] >= Duration::from_millis(240), "{waits:?}");
    assert!(waits[4] >= Duration::from_millis(490), "{waits:?}");
    // Another user from the same place is not slowed down.
    let started = Instant::now();
    let _ = connection.login("bob", &wrong).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(240));
    // The right key still works (and neither key reached the log).
    let right = node_key(&node, "alice");
    connection.login("alice", &right).await.unwrap();
    assert!(node.wait_for_log("login refused"), "failures are logged");
    assert!(node.stop().success());
    let log = node.log();
    for key in [right, wrong] {
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!log.contains(&hex[..16]), "an auth key reached the log");
    }
}

/// A raw TLS connection to a tcp:// node, after the hello. It offers
/// protocol version 1, whose node sends nothing but answers (version 2 adds
/// keep-alives while a frame trickles in), so that what a test reads is
/// exactly the node's answers and closes.
async fn raw_connection(node: &NodeProcess) -> raw::TlsStream {
    raw::v1_connection(&address(node, "tcp")).await
}

/// Reads one answer frame, or `None` once the node closed the connection.
async fn read_answer(stream: &mut raw::TlsStream) -> Option<(u32, Response)> {
    let limits = cairn_net::protocol::Limits::default();
    match tokio::time::timeout(Duration::from_secs(10), frame::read_frame(stream, &limits)).await {
        Ok(Ok(Some(f))) => Some((f.stream, frame::decode(&f.message).unwrap())),
        Ok(_) => None,
        Err(_) => panic!("the node neither answered nor closed"),
    }
}

fn error_code(response: &Response) -> Option<ErrorCode> {
    match response {
        Response::Error(body) => Some(body.code),
        _ => None,
    }
}

#[tokio::test]
async fn bad_frames_get_an_error_and_close_only_their_connection() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = node(&dir, &["tcp"], |_| {});
    let bystander = login(&node, "tcp", "alice").await;

    // A frame claiming 2 GiB: refused from its length alone.
    let mut stream = raw_connection(&node).await;
    stream.write_all(&(1u32 << 31).to_le_bytes()).await.unwrap();
    stream.write_all(&77u32.to_le_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    let (id, answer) = read_answer(&mut stream).await.expect("an error answer");
    assert_eq!((id, error_code(&answer)), (77, Some(ErrorCode::TooLarge)));
    assert!(
        read_answer(&mut stream).await.is_none(),
        "then the connection closes"
    );

    // A frame whose message is garbage.
    let mut stream = raw_connection(&node).await;
    frame::write_frame(&mut stream, 5, &[0xff; 40], b"")
        .await
        .unwrap();
    stream.flush().await.unwrap();
    let (id, answer) = read_answer(&mut stream).await.expect("an error answer");
    assert_eq!((id, error_code(&answer)), (5, Some(ErrorCode::BadRequest)));
    assert!(read_answer(&mut stream).await.is_none());

    // A frame whose fields contradict each other.
    let mut stream = raw_connection(&node).await;
    let mut bad = 12u32.to_le_bytes().to_vec();
    bad.extend_from_slice(&1u32.to_le_bytes());
    bad.extend_from_slice(&1000u32.to_le_bytes());
    bad.extend_from_slice(&[0; 4]);
    stream.write_all(&bad).await.unwrap();
    stream.flush().await.unwrap();
    let (_, answer) = read_answer(&mut stream).await.expect("an error answer");
    assert_eq!(error_code(&answer), Some(ErrorCode::BadRequest));

    // Everyone else is still served.
    let (id, bytes) = shard(9, 1000);
    bystander.put_shard(&id, bytes.clone()).await.unwrap();
    assert_eq!(bystander.get_shard(&id).await.unwrap(), bytes);
    assert!(node.stop().success());
}

#[tokio::test]
async fn an_unknown_protocol_version_is_told_which_versions_the_node_speaks() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = node(&dir, &["tcp"], |_| {});
    let mut stream = raw::tls_connection(&address(&node, "tcp")).await;
    match frame::client_hello(&mut stream, &[42]).await {
        Err(frame::HandshakeError::Version {
            supported, message, ..
        }) => {
            assert_eq!(supported, VERSIONS);
            assert!(
                message.contains(&format!("{VERSIONS:?}")) && message.contains("[42]"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(node.stop().success());
}

#[tokio::test]
async fn slow_senders_and_idle_connections_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = node(&dir, &["tcp"], |node| {
        node.set("request_timeout_secs", "2");
        node.set("idle_timeout_secs", "2");
    });
    // One byte of a frame every 300 ms: the frame never completes in time.
    let mut slow = raw_connection(&node).await;
    let started = Instant::now();
    let mut cut_off = false;
    for _ in 0..40 {
        if slow.write_all(&[1]).await.is_err() || slow.flush().await.is_err() {
            cut_off = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut probe = [0u8; 1];
        if let Ok(result) =
            tokio::time::timeout(Duration::from_millis(1), slow.read(&mut probe)).await
        {
            // An error answer or the end of the stream: either way, cut off.
            let _ = result;
            cut_off = true;
            break;
        }
    }
    assert!(cut_off, "a trickling sender kept its connection for 12 s");
    assert!(started.elapsed() < Duration::from_secs(10));

    // A connection that sends nothing is closed after the idle limit.
    let mut idle = raw_connection(&node).await;
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(10), idle.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0) | Err(_))),
        "the idle connection stayed open"
    );
    assert!(node.stop().success());
}

#[tokio::test]
async fn connections_beyond_the_cap_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = node(&dir, &["tcp"], |node| node.set("max_connections", "2"));
    let first = login(&node, "tcp", "alice").await;
    let second = login(&node, "tcp", "bob").await;
    let third = Connection::connect(&address(&node, "tcp"), &ClientOptions::default(), false).await;
    assert!(third.is_err(), "a third connection was served");
    // Closing one makes room.
    first.close().await;
    drop(first);
    let mut fourth = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Ok(c) =
            Connection::connect(&address(&node, "tcp"), &ClientOptions::default(), false).await
        {
            fourth = Some(c);
            break;
        }
    }
    fourth
        .expect("room after a connection closed")
        .info()
        .await
        .unwrap();
    second.info().await.unwrap();
    assert!(node.stop().success());
}

#[tokio::test]
async fn over_quota_is_refused_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = node(&dir, &["tcp"], |_| {});
    let alice = login(&node, "tcp", "alice").await;
    let (small, bytes) = shard(1, 5 << 20);
    alice.put_shard(&small, bytes).await.unwrap();
    let segments_before = segment_bytes(node.dir());
    let (big, bytes) = shard(2, 4 << 20);
    let err = alice.put_shard(&big, bytes).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::QuotaExceeded), "{err}");
    assert_eq!(node.shard_place(&big), None);
    // Not even dead bytes appended to a segment.
    assert_eq!(segment_bytes(node.dir()), segments_before);
    let tmp: Vec<_> = std::fs::read_dir(node.dir().join("tmp")).unwrap().collect();
    assert!(tmp.is_empty(), "a partial shard was left in tmp/");
    // The node and the connection go on; Bob has no quota.
    let bob = login(&node, "tcp", "bob").await;
    let (id, bytes) = shard(2, 4 << 20);
    bob.put_shard(&id, bytes).await.unwrap();
    alice.info().await.unwrap();
    assert!(node.stop().success());
}

#[tokio::test]
async fn a_shard_corrupted_on_disk_is_never_served_and_is_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = node(&dir, &["tcp", "quic"], |_| {});
    let alice = login(&node, "tcp", "alice").await;
    let (id, bytes) = shard(7, 50_000);
    alice.put_shard(&id, bytes).await.unwrap();
    let place = node.shard_place(&id).expect("the shard is stored");
    cairn_testing::damage::flip_bit(&place, 1234, 4);

    for scheme in ["quic", "tcp"] {
        let reader = connect(&node, scheme).await;
        match reader.get_shard(&id).await {
            Err(ClientError::Node(e))
                if e.code == ErrorCode::Corrupt || e.code == ErrorCode::NotFound => {}
            other => panic!("{scheme}: {other:?}"),
        }
    }
    assert_eq!(node.shard_place(&id), None);
    let quarantined: Vec<_> = std::fs::read_dir(node.dir().join("quarantine"))
        .unwrap()
        .collect();
    assert_eq!(quarantined.len(), 1);
    assert!(node.wait_for_log("quarantined as"), "{}", node.log());
    assert!(node.stop().success());
}

#[tokio::test]
async fn kill_9_during_uploads_loses_nothing_acknowledged_and_serves_nothing_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = node(&dir, &["tcp"], |node| node.set("sync", "true"));
    let alice = Arc::new(login(&node, "tcp", "bob").await);
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut uploads = Vec::new();
    for worker in 0..4u8 {
        let (alice, acknowledged) = (alice.clone(), acknowledged.clone());
        uploads.push(tokio::spawn(async move {
            for i in 0..200u8 {
                let (id, bytes) = shard(worker.wrapping_mul(61).wrapping_add(i), 256 * 1024);
                if alice.put_shard(&id, bytes.clone()).await.is_err() {
                    return;
                }
                acknowledged.lock().unwrap().push((id, bytes));
            }
        }));
    }
    // Let some uploads land, then crash.
    while acknowledged.lock().unwrap().len() < 20 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    node.kill();
    for upload in uploads {
        let _ = upload.await;
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    node.start();
    let reader = connect(&node, "tcp").await;
    for (id, bytes) in &acknowledged {
        assert_eq!(
            &reader.get_shard(id).await.unwrap(),
            bytes,
            "acknowledged {id} lost"
        );
    }
    // Whatever else the node has is whole: every shard it lists (files
    // and segment records) reads back under its id.
    for (id, _) in node.shards() {
        assert!(reader.get_shard(&id).await.is_ok(), "{id} is damaged");
    }
    let tmp: Vec<_> = std::fs::read_dir(node.dir().join("tmp")).unwrap().collect();
    assert!(tmp.is_empty(), "temporary files survived the restart");
    assert!(node.stop().success());
}

/// The bytes of every segment file in the store in `dir`, together.
fn segment_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir.join("segments")).map_or(0, |entries| {
        entries
            .map(|entry| entry.unwrap().metadata().unwrap().len())
            .sum()
    })
}

#[tokio::test]
async fn shutdown_finishes_the_request_in_flight_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = node(&dir, &["tcp"], |_| {});
    let mut stream = raw_connection(&node).await;
    // Log in as bob over the raw connection.
    let login = Request::Login {
        user: "bob".into(),
        auth_key: cairn_net::protocol::AuthKeyBytes(node_key(&node, "bob")),
    };
    frame::write_frame(&mut stream, 1, &frame::encode(&login), b"")
        .await
        .unwrap();
    stream.flush().await.unwrap();
    let (_, answer) = read_answer(&mut stream).await.unwrap();
    assert!(matches!(answer, Response::LoggedIn { .. }), "{answer:?}");

    // Half of an upload, then SIGTERM, then the rest.
    let (id, bytes) = shard(5, 1 << 20);
    let mut wire = Vec::new();
    frame::write_frame(
        &mut wire,
        2,
        &frame::encode(&Request::PutShard { id }),
        &bytes,
    )
    .await
    .unwrap();
    let half = wire.len() / 2;
    stream.write_all(&wire[..half]).await.unwrap();
    stream.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    node.signal_stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stream.write_all(&wire[half..]).await.unwrap();
    stream.flush().await.unwrap();
    let (stream_id, answer) = read_answer(&mut stream)
        .await
        .expect("the upload is answered");
    assert_eq!(stream_id, 2);
    assert!(matches!(answer, Response::ShardStored { .. }), "{answer:?}");
    let status = node.wait(Duration::from_secs(15));
    assert!(status.success(), "exit status {status}: {}", node.log());
    let place = node.shard_place(&id).expect("the upload is stored");
    assert_eq!(cairn_testing::damage::read(&place), bytes);
    assert!(node.wait_for_log("shutting down"));
    // New connections are refused once it is down, and SIGINT works too.
    assert!(
        TcpStream::connect(address(&node, "tcp").authority())
            .await
            .is_err()
    );
    node.start();
    assert!(node.interrupt().success());
}

/// A small tmpfs, unmounted when dropped.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(path: &std::path::Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(path).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        mounted.then(|| Self(path.to_owned()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[tokio::test]
async fn a_full_disk_is_refused_cleanly_and_the_node_recovers_when_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(&dir.path().join("small"), "24m") else {
        eprintln!(
            "SKIPPED: cannot mount a tmpfs here (needs root); the full-disk path is untested"
        );
        return;
    };
    let mut node = NodeProcess::init(BIN.as_ref(), &disk.0.join("node"), &["tcp"]);
    node.add_user("bob", PASSPHRASE, None);
    // Someone else's file on the same disk, for the operator to delete.
    let ballast = disk.0.join("ballast");
    std::fs::write(&ballast, vec![1u8; 4 << 20]).unwrap();
    node.start();
    let bob = login(&node, "tcp", "bob").await;
    let mut stored = Vec::new();
    let mut refusal = None;
    for i in 0..64u8 {
        let (id, bytes) = shard(i, 1 << 20);
        match bob.put_shard(&id, bytes).await {
            Ok(_) => stored.push(id),
            Err(e) => {
                refusal = Some((id, e));
                break;
            }
        }
    }
    let (refused, error) = refusal.expect("a 24 MiB disk fills up");
    assert_eq!(
        error.code(),
        Some(ErrorCode::DiskFull),
        "{error}\n{}",
        node.log()
    );
    assert_eq!(node.shard_place(&refused), None);
    let tmp: Vec<_> = std::fs::read_dir(node.dir().join("tmp")).unwrap().collect();
    assert!(tmp.is_empty(), "a partial shard was left behind");
    // The node still serves what it has…
    let first = stored[0];
    assert_eq!(Id::of(&bob.get_shard(&first).await.unwrap()), first);
    bob.info().await.unwrap();
    // …drops references on a full disk…
    let dropped: Vec<Id> = stored.drain(..stored.len() / 2).collect();
    bob.drop_shards(&dropped).await.unwrap();
    assert_eq!(node.shard_place(&dropped[0]), None);
    // …and takes writes again once space is freed. (Dropping frees none
    // in a segment, the default layout: the records' bytes are dead until
    // a compaction rewrites the segment. So the operator frees it.)
    std::fs::remove_file(&ballast).unwrap();
    let (id, bytes) = shard(200, 1 << 20);
    bob.put_shard(&id, bytes)
        .await
        .unwrap_or_else(|e| panic!("no recovery after freeing space: {e}\n{}", node.log()));
    assert!(node.stop().success());
    drop(node);
    drop(disk);
}

#[test]
fn operators_manage_a_node_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let node_dir = dir.path().join("node");
    let node = NodeProcess::init(BIN.as_ref(), &node_dir, &["tcp", "https"]);
    let cairn = |args: &[&str], stdin: &str| {
        let mut child = std::process::Command::new(BIN)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            // A command that refuses early exits before reading its input.
            .or_else(|e| {
                if e.kind() == std::io::ErrorKind::BrokenPipe {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let d = node_dir.to_str().unwrap();
    // init refuses a directory that holds a node; address prints the same lines.
    let (code, _, err) = cairn(
        &["node", "init", "--dir", d, "--listen", "tcp://127.0.0.1:1"],
        "",
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("already holds a cairn node"), "{err}");
    let (code, out, _) = cairn(&["node", "address", "--dir", d], "");
    assert_eq!(code, Some(0));
    assert_eq!(out.lines().collect::<Vec<_>>(), node.addresses);
    assert!(
        node.addresses
            .iter()
            .all(|a| a.ends_with(&format!("#{}", node.node_id())))
    );
    // Users: add with a quota, refuse duplicates and bad names, change, list, remove.
    node.add_user("carol", PASSPHRASE, Some("500M"));
    let (code, _, err) = cairn(
        &[
            "node",
            "user",
            "add",
            "--dir",
            d,
            "carol",
            "--passphrase-stdin",
        ],
        "x\n",
    );
    assert_eq!(code, Some(1), "{err}");
    let (code, _, err) = cairn(
        &[
            "node",
            "user",
            "add",
            "--dir",
            d,
            "../x",
            "--passphrase-stdin",
        ],
        "x\n",
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("invalid user name"), "{err}");
    let (code, _, err) = cairn(
        &[
            "node",
            "user",
            "add",
            "--dir",
            d,
            "dave",
            "--passphrase-stdin",
        ],
        "\n",
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("empty"), "{err}");
    let (code, _, _) = cairn(&["node", "user", "quota", "--dir", d, "carol", "20G"], "");
    assert_eq!(code, Some(0));
    let (code, out, _) = cairn(&["node", "user", "list", "--dir", d, "--json"], "");
    assert_eq!(code, Some(0));
    let users: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(users[0]["name"], "carol");
    assert_eq!(users[0]["quota_bytes"], 20u64 << 30);
    let (code, _, _) = cairn(&["node", "user", "quota", "--dir", d, "carol", "none"], "");
    assert_eq!(code, Some(0));
    let (code, out, _) = cairn(&["node", "status", "--dir", d, "--json"], "");
    assert_eq!(code, Some(0));
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["node_id"], node.node_id());
    assert_eq!(status["shards"], 0);
    assert_eq!(status["users"][0]["quota_bytes"], serde_json::Value::Null);
    assert_eq!(status["last_scrub"], serde_json::Value::Null);
    // http-auth prints the Basic credentials of the https:// API, only for
    // the right passphrase of an existing user.
    let http_auth = |user: &str, passphrase: &str| {
        cairn(
            &[
                "node",
                "user",
                "http-auth",
                "--dir",
                d,
                user,
                "--passphrase-stdin",
            ],
            &format!("{passphrase}\n"),
        )
    };
    let (code, out, err) = http_auth("carol", PASSPHRASE);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out.trim_end(),
        format!(
            "Authorization: {}",
            cairn_net::rest::basic_credentials("carol", &node_key(&node, "carol"))
        )
    );
    let (code, out, err) = http_auth("carol", "not the passphrase");
    assert_eq!((code, out.as_str()), (Some(1), ""));
    assert!(err.contains("wrong passphrase"), "{err}");
    let (code, _, err) = http_auth("nobody", PASSPHRASE);
    assert_eq!(code, Some(1));
    assert!(err.contains("no user nobody"), "{err}");
    let (code, _, err) = cairn(&["node", "user", "remove", "--dir", d, "carol"], "");
    assert_eq!(code, Some(0), "{err}");
    let (_, out, _) = cairn(&["node", "user", "list", "--dir", d, "--json"], "");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap(),
        serde_json::json!([])
    );
    // A directory without a node is named as such.
    let (code, _, err) = cairn(
        &["node", "status", "--dir", dir.path().to_str().unwrap()],
        "",
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("holds no cairn node"), "{err}");
}
