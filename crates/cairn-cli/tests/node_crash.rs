//! Crash safety of a node: a real `cairn node run` process killed with
//! SIGKILL at random moments while clients stream shard puts at it, then
//! restarted, over and over.
//!
//! After every restart:
//! - every shard whose put was acknowledged, in any cycle so far, reads
//!   back bit for bit, and the node says its owner holds it;
//! - an upload cut off half way (its body never arrived) is not served and
//!   not claimed: a node must never make an unacknowledged, unfinished
//!   write visible;
//! - a put in flight at the kill (its answer lost) is either absent or
//!   whole and referenced, never damaged: the client that saw no answer
//!   retries, and either outcome is safe;
//! - every shard the node has (shard files and segment records) hashes to
//!   its id and belongs to a put the clients made; `tmp/` is empty.
//!
//! The moments are drawn from a seeded generator; a failure prints the
//! seed, and `CAIRN_CRASH_SEED=N` replays it. `cargo test -- --ignored
//! crash_stress` runs the 100-cycle variant.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use cairn_core::{AuthKey, Id, KdfParams};
use cairn_net::client::{ClientError, ClientOptions, Connection};
use cairn_net::frame;
use cairn_net::protocol::{ErrorCode, Request, Response};
use cairn_net::{NodeAddress, NodeId};
use cairn_testing::node::NodeProcess;
use cairn_testing::raw;
use tokio::io::AsyncWriteExt;

const BIN: &str = env!("CARGO_BIN_EXE_cairn");
const PASSPHRASE: &str = "correct horse battery staple";
const USER: &str = "alice";
/// Concurrent writers, each on its own connection.
const WRITERS: u64 = 4;
/// Longest wait before the kill, in milliseconds.
const MAX_KILL_DELAY_MS: u64 = 400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_loses_nothing_acknowledged_and_serves_nothing_unfinished() {
    crash_cycles(10, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "stress: 100 kill cycles, a few minutes; run with --ignored"]
async fn crash_stress_100_cycles() {
    crash_cycles(100, 10).await;
}

/// Shard bytes of `seed`: 1 B to 128 KiB, seeded.
fn shard(seed: u64) -> (Id, Bytes) {
    let len = fastrand::Rng::with_seed(seed).usize(1..=128 * 1024);
    let bytes = Bytes::from(cairn_testing::seeded_bytes(seed, len));
    (Id::of(&bytes), bytes)
}

/// Runs `cycles` kill-and-restart cycles; every `full_every` cycles (and
/// after the last) re-reads everything acknowledged so far and hashes every
/// file on disk, in between only what the cycle wrote.
async fn crash_cycles(cycles: u64, full_every: u64) {
    let seed = std::env::var("CAIRN_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_0005);
    println!("CAIRN_CRASH_SEED={seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut node = NodeProcess::init(BIN.as_ref(), &dir.path().join("node"), &["tcp"]);
    node.add_user(USER, PASSPHRASE, None);
    let address: NodeAddress = node.address("tcp").parse().unwrap();
    let node_id: NodeId = node.node_id().parse().unwrap();
    let key = *AuthKey::derive(USER, PASSPHRASE.as_bytes(), &KdfParams::default())
        .unwrap()
        .for_node(node_id.0.as_bytes())
        .expose_secret();
    node.start();

    // Every shard acknowledged so far, and every one that may be on disk
    // (acknowledged, or in flight at a kill and found whole after it).
    let mut acknowledged: HashMap<Id, Bytes> = HashMap::new();
    let mut known: HashMap<Id, Bytes> = HashMap::new();
    let (mut in_doubt_present, mut in_doubt_absent) = (0, 0);
    for cycle in 0..cycles {
        let context = format!("cycle {cycle}, CAIRN_CRASH_SEED={seed}");
        let acked = Arc::new(Mutex::new(Vec::new()));
        let in_flight = Arc::new(Mutex::new(HashMap::new()));
        let mut writers = Vec::new();
        for writer in 0..WRITERS {
            let connection = login(&address, &key).await;
            let (acked, in_flight) = (acked.clone(), in_flight.clone());
            writers.push(tokio::spawn(async move {
                for i in 0.. {
                    let (id, bytes) = shard((cycle << 32) | (writer << 24) | i);
                    in_flight.lock().unwrap().insert(id, bytes.clone());
                    if connection.put_shard(&id, bytes.clone()).await.is_err() {
                        return;
                    }
                    in_flight.lock().unwrap().remove(&id);
                    acked.lock().unwrap().push((id, bytes));
                }
            }));
        }
        // An upload whose body never arrives whole.
        let (unfinished, unfinished_bytes) = shard((cycle << 32) | (0xff << 24));
        let half_sent = half_upload(&address, &key, &unfinished, &unfinished_bytes).await;

        tokio::time::sleep(Duration::from_millis(rng.u64(0..=MAX_KILL_DELAY_MS))).await;
        node.kill();
        for writer in writers {
            writer.await.unwrap();
        }
        drop(half_sent);
        let acked = std::mem::take(&mut *acked.lock().unwrap());
        let in_doubt = std::mem::take(&mut *in_flight.lock().unwrap());
        node.start();

        let reader = login(&address, &key).await;
        for (id, bytes) in &acked {
            acknowledged.insert(*id, bytes.clone());
            known.insert(*id, bytes.clone());
        }
        let full = (cycle + 1) % full_every == 0 || cycle + 1 == cycles;
        let to_check: Vec<(Id, Bytes)> = if full {
            acknowledged
                .iter()
                .map(|(id, b)| (*id, b.clone()))
                .collect()
        } else {
            acked.clone()
        };
        for (id, bytes) in &to_check {
            let got = reader
                .get_shard(id)
                .await
                .unwrap_or_else(|e| panic!("{context}: acknowledged {id} lost: {e}"));
            assert!(got == bytes, "{context}: acknowledged {id} damaged");
        }
        for batch in to_check.chunks(500) {
            let ids: Vec<Id> = batch.iter().map(|(id, _)| *id).collect();
            let has = reader.has_shards(&ids).await.unwrap();
            assert!(has.mine.iter().all(|&m| m), "{context}: {has:?}");
        }

        // In flight at the kill: whole and referenced, or absent.
        for (id, bytes) in &in_doubt {
            let has = reader.has_shards(&[*id]).await.unwrap();
            match reader.get_shard(id).await {
                Ok(got) => {
                    assert!(got == bytes, "{context}: in-doubt {id} served damaged");
                    assert!(has.mine[0], "{context}: in-doubt {id} served, unreferenced");
                    known.insert(*id, bytes.clone());
                    in_doubt_present += 1;
                }
                Err(ClientError::Node(e)) if e.code == ErrorCode::NotFound => {
                    assert!(!has.stored[0], "{context}: {id} claimed, not served");
                    in_doubt_absent += 1;
                }
                Err(e) => panic!("{context}: in-doubt {id}: {e}"),
            }
        }
        // Never finished: never there.
        let err = reader.get_shard(&unfinished).await.unwrap_err();
        assert!(
            matches!(&err, ClientError::Node(e) if e.code == ErrorCode::NotFound),
            "{context}: the half-sent shard: {err}"
        );
        assert!(!reader.has_shards(&[unfinished]).await.unwrap().stored[0]);
        reader.close().await;

        // On disk: only known shards (files and live segment records),
        // each whole; nothing left in tmp/.
        for (id, place) in node.shards() {
            assert!(known.contains_key(&id), "{context}: unknown shard {id}");
            if full {
                let on_disk = cairn_testing::damage::read(&place);
                assert_eq!(Id::of(&on_disk), id, "{context}: {id} damaged on disk");
            }
        }
        let tmp = std::fs::read_dir(node.dir().join("tmp")).unwrap().count();
        assert_eq!(tmp, 0, "{context}: temporary files survived the restart");
    }
    println!(
        "{cycles} cycles: {} shards acknowledged; at the kills, {in_doubt_present} puts in flight had landed and {in_doubt_absent} had not",
        acknowledged.len()
    );
    assert!(!acknowledged.is_empty(), "no put was ever acknowledged");
    assert!(node.stop().success(), "{}", node.log());
}

async fn login(address: &NodeAddress, key: &[u8; 32]) -> Connection {
    let connection = Connection::connect(address, &ClientOptions::default(), false)
        .await
        .unwrap();
    connection.login(USER, key).await.unwrap();
    connection
}

/// Logs in over a raw tcp:// connection and sends the first half of a put
/// of `bytes`; returns the connection, to be held open until the kill.
async fn half_upload(
    address: &NodeAddress,
    key: &[u8; 32],
    id: &Id,
    bytes: &Bytes,
) -> raw::TlsStream {
    // Version 1: the node sends nothing but answers (no keep-alives).
    let mut stream = raw::v1_connection(address).await;
    let login = Request::Login {
        user: USER.into(),
        auth_key: cairn_net::protocol::AuthKeyBytes(*key),
    };
    frame::write_frame(&mut stream, 1, &frame::encode(&login), b"")
        .await
        .unwrap();
    stream.flush().await.unwrap();
    let limits = cairn_net::protocol::Limits::default();
    let answer = frame::read_frame(&mut stream, &limits)
        .await
        .unwrap()
        .unwrap();
    let answer: Response = frame::decode(&answer.message).unwrap();
    assert!(matches!(answer, Response::LoggedIn { .. }), "{answer:?}");
    let mut wire = Vec::new();
    frame::write_frame(
        &mut wire,
        2,
        &frame::encode(&Request::PutShard { id: *id }),
        bytes,
    )
    .await
    .unwrap();
    stream.write_all(&wire[..wire.len() / 2]).await.unwrap();
    stream.flush().await.unwrap();
    stream
}
