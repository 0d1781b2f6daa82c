//! The liveness check of tcp:// connections, against real node processes
//! (see `cairn_net::protocol`, "Liveness").
//!
//! Bugs these guard against:
//! - a TLS record whose length field was corrupted (one flipped bit), on
//!   the last record before the sender waits for an answer: the receiver
//!   waits for bytes that never come, in either direction, and the request
//!   hangs until the request timeout (30 s by default, 60 s here) instead
//!   of being retried on a fresh connection within seconds;
//! - a live node taken for a stalled link, which would cut requests that
//!   are merely slow: an upload crawling over a throttled link, a request
//!   waiting for the node's body memory, in both cases longer than two ping
//!   intervals with no answer;
//! - a version 1 client sent frames it cannot read (the node's pongs).
//!
//! The stall is made deterministic by the TCP proxy's `stall_record` fault,
//! which flips bit 13 of the length of the next small TLS record in one
//! direction. Each test is bounded by a tokio timeout well under its
//! request timeout, so that it fails, rather than hangs, without the check.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cairn_client::{Cluster, Credentials};
use cairn_core::Id;
use cairn_faults::{Direction, TcpFaults, TcpProxy};
use cairn_net::client::{ClientOptions, Connection};
use cairn_net::protocol::{Request, Response};
use cairn_net::{NodeAddress, frame};
use cairn_testing::cluster::{TestCluster, keys};
use cairn_testing::raw;
use tokio::io::AsyncWriteExt;

/// Options with a request timeout far above what any test waits for: a
/// stall that only the timeout ends fails the test's own bound.
fn patient() -> ClientOptions {
    ClientOptions {
        connect_timeout: Duration::from_secs(3),
        request_timeout: Duration::from_secs(60),
        ..ClientOptions::default()
    }
}

/// How long a test waits for what the liveness check must bring about in
/// seconds: a third of the request timeout.
const BOUND: Duration = Duration::from_secs(20);

/// A connection to node `address`, logged in as alice.
async fn alice(address: &NodeAddress) -> Connection {
    let connection = Connection::connect(address, &patient(), false)
        .await
        .unwrap();
    let key = keys("alice")
        .auth
        .for_node(address.node_id.unwrap().0.as_bytes());
    connection
        .login("alice", key.expose_secret())
        .await
        .unwrap();
    connection
}

fn shard(seed: u8, len: usize) -> (Id, Bytes) {
    let bytes = Bytes::from(cairn_testing::seeded_bytes(u64::from(seed), len));
    (Id::of(&bytes), bytes)
}

/// A stalled record towards the node (its TLS reader waits inside the
/// request) and then one towards the client (its reader waits inside the
/// answer): each time the request comes back well before the 60 s request
/// timeout, on one fresh connection, and the node is not marked down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_tls_record_costs_one_retry_not_the_request_timeout() {
    let cluster = TestCluster::start_with(&["tcp"]);
    let proxy = TcpProxy::start(cluster.socket(0), TcpFaults::none(), 400)
        .await
        .unwrap();
    let nodes = Cluster::new(
        &[cluster.via(0, proxy.address())],
        Credentials::User {
            user: "alice".into(),
            auth: keys("alice").auth.clone(),
        },
        patient(),
    )
    .unwrap();
    // Small enough that its answer, and everything the node sends while
    // the client waits, stays far below the 8 KiB the stalled record
    // announces: nothing completes the record, only the check ends it.
    let (id, bytes) = shard(1, 4096);
    let put = bytes.clone();
    nodes
        .on(0, |c| {
            let put = put.clone();
            async move { c.put_shard(&id, put).await }
        })
        .await
        .unwrap();

    for direction in [Direction::Upstream, Direction::Downstream] {
        let before = proxy.stats();
        proxy.set(TcpFaults {
            stall_record: Some(direction),
            ..TcpFaults::none()
        });
        let got = tokio::time::timeout(
            BOUND,
            nodes.on(0, |c| async move { c.get_shard(&id).await }),
        )
        .await
        .unwrap_or_else(|_| panic!("{direction:?}: the stall lasted until the request timeout"))
        .unwrap();
        assert_eq!(got, bytes, "{direction:?}");
        let after = proxy.stats();
        assert_eq!(
            after.stalled_records,
            before.stalled_records + 1,
            "{direction:?}: the stall must have fired: {after:?}"
        );
        assert_eq!(
            after.accepted,
            before.accepted + 1,
            "{direction:?}: one fresh connection: {after:?}"
        );
        assert!(!nodes.is_down(0), "{direction:?}: {:?}", nodes.failures());
    }
    nodes.close().await;
}

/// A 1 MiB shard put through a link throttled to 256 KiB/s: about four
/// seconds without an answer, twice the time after which a silent link is
/// declared broken. The node's keep-alives while it reads the upload keep
/// the connection alive, and the put succeeds on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_crawling_over_a_throttled_link_is_not_a_stall() {
    let cluster = TestCluster::start_with(&["tcp"]);
    let throttled = TcpFaults {
        throttle: Some(256 * 1024),
        ..TcpFaults::none()
    };
    let proxy = TcpProxy::start(cluster.socket(0), throttled, 401)
        .await
        .unwrap();
    let connection = alice(&cluster.via(0, proxy.address())).await;
    let (id, bytes) = shard(2, 1 << 20);
    let written = tokio::time::timeout(BOUND, connection.put_shard(&id, bytes.clone()))
        .await
        .expect("the request timeout is 60 s")
        .expect("a slow link is not a broken one");
    assert!(written);
    assert!(!connection.is_closed());
    // It was slow: the whole shard crossed the throttle before the answer
    // could come, which takes 4 s at 256 KiB/s.
    assert!(
        proxy.stats().upstream_bytes >= 1 << 20,
        "{:?}",
        proxy.stats()
    );
    assert_eq!(proxy.stats().accepted, 1, "no second connection");
    assert_eq!(connection.get_shard(&id).await.unwrap(), bytes);
}

/// A node whose body memory is taken by an upload crawling in over a
/// throttled link: another client's request waits for room for seconds,
/// while the node's reader holds off reading its connection (and its
/// pings). The node's keep-alives say it is busy, and the request is
/// answered on the same connection once the upload is in. A version 1
/// client waiting the same way gets its answer and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_short_of_memory_is_busy_not_broken() {
    let mut cluster = TestCluster::start_with(&["tcp"]);
    let node = &mut cluster.nodes[0];
    node.stop();
    // One request body of up to 1 MiB at a time.
    node.set("max_shard_size", "\"1M\"");
    node.set("body_memory", "\"1M\"");
    node.start();
    let direct = cluster.servers()[0].clone();
    let (stored_id, stored) = shard(3, 1000);
    // Connected and logged in before the budget is taken: a login is a
    // request too, and would wait as well.
    let waiting = alice(&direct).await;
    waiting.put_shard(&stored_id, stored.clone()).await.unwrap();
    let mut old = raw::v1_connection(&direct).await;

    // The upload: a frame of exactly 1 MiB takes the whole budget while
    // its body crawls in at 256 KiB/s (about 4 s).
    let throttled = TcpFaults {
        throttle: Some(256 * 1024),
        ..TcpFaults::none()
    };
    let proxy = Arc::new(
        TcpProxy::start(cluster.socket(0), throttled, 402)
            .await
            .unwrap(),
    );
    let uploader = alice(&cluster.via(0, proxy.address())).await;
    let (big_id, big) = shard(4, (1 << 20) - 12 - 40);
    let message = frame::encode(&Request::PutShard { id: big_id });
    assert!(
        12 + message.len() + big.len() <= 1 << 20,
        "must fit the budget"
    );
    let upload = tokio::spawn(async move { uploader.put_shard(&big_id, big).await });
    // Once the node read the frame's length it holds the budget. Bytes the
    // proxy passed on may still sit in the node's socket under load, so
    // wait for a quarter of the body (about a second), not just the head:
    // the upload still has three seconds to go.
    while proxy.stats().upstream_bytes < 256 * 1024 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    frame::write_frame(
        &mut old,
        7,
        &frame::encode(&Request::GetShard { id: stored_id }),
        b"",
    )
    .await
    .unwrap();
    old.flush().await.unwrap();

    let got = tokio::time::timeout(BOUND, waiting.get_shard(&stored_id))
        .await
        .expect("the request timeout is 60 s")
        .expect("a busy node is not a broken link");
    assert_eq!(got, stored);
    assert!(!waiting.is_closed());
    // It did wait for the upload: the answer needed the budget back.
    assert!(
        proxy.stats().upstream_bytes >= (1 << 20) - 64,
        "{:?}",
        proxy.stats()
    );
    assert!(
        tokio::time::timeout(BOUND, upload)
            .await
            .unwrap()
            .unwrap()
            .unwrap()
    );

    // The version 1 client: its answer is the first and only frame it gets.
    let limits = cairn_net::protocol::Limits::default();
    let answer = tokio::time::timeout(BOUND, frame::read_frame(&mut old, &limits))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(answer.stream, 7);
    assert_eq!(
        frame::decode::<Response>(&answer.message).unwrap(),
        Response::Shard
    );
    assert_eq!(answer.body, stored);
    old.shutdown().await.unwrap();
    let after = tokio::time::timeout(BOUND, frame::read_frame(&mut old, &limits))
        .await
        .unwrap();
    assert!(
        matches!(after, Ok(None) | Err(_)),
        "a version 1 client got {after:?}"
    );
}
