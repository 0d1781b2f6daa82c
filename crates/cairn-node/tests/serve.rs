//! The node served in-process on 127.0.0.1 and driven through the real
//! client, over tcp://, quic:// and https://: the protocol's operations,
//! its rules, and its refusals. (The HTTPS API as a generic HTTPS client
//! sees it is tested in `https.rs`.)

use std::sync::Arc;

use bytes::Bytes;
use cairn_core::Id;
use cairn_net::Scheme;
use cairn_net::client::{ClientOptions, Connection};
use cairn_net::protocol::ErrorCode;
use cairn_testing::in_process::{shard, shards_and_index_work_over, start};

#[tokio::test]
async fn shards_and_index_over_tcp() {
    shards_and_index_work_over(Scheme::Tcp).await;
}

#[tokio::test]
async fn shards_and_index_over_quic() {
    shards_and_index_work_over(Scheme::Quic).await;
}

#[tokio::test]
async fn refusals_over_every_transport() {
    let node = start(|c| c.public_read = false).await;
    for scheme in [Scheme::Tcp, Scheme::Quic, Scheme::Https] {
        // Wrong credentials.
        let connection = node.connect(scheme).await;
        let err = connection.login("alice", &[0; 32]).await.unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::Unauthorized), "{scheme}");
        let err = connection.login("mallory", &[0; 32]).await.unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::Unauthorized), "{scheme}");
        // No public reads on this node.
        let err = connection.get_shard(&Id::of(b"x")).await.unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::Unauthorized), "{scheme}");

        let alice = node.login(scheme, "alice").await;
        // Bytes that do not hash to the id.
        let (id, _) = shard(3, 10);
        let err = alice
            .put_shard(&id, Bytes::from_static(b"other bytes"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::HashMismatch), "{scheme}");
        // Over quota (1 MiB).
        let (id, bytes) = shard(4, 2 << 20);
        let err = alice.put_shard(&id, bytes).await.unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::QuotaExceeded), "{scheme}");
        // The connection still works after refusals.
        let (id, bytes) = shard(5, 1000);
        alice.put_shard(&id, bytes).await.unwrap();
    }
    node.stop().await;
}

#[tokio::test]
async fn a_pinned_client_refuses_another_node() {
    let node = start(|_| {}).await;
    for scheme in [Scheme::Tcp, Scheme::Quic, Scheme::Https] {
        let mut wrong = node.address(scheme).clone();
        wrong.node_id = Some(cairn_net::NodeId(Id::of(b"not this node")));
        let err = Connection::connect(&wrong, &ClientOptions::default(), false)
            .await
            .unwrap_err();
        assert!(
            matches!(err, cairn_net::client::ClientError::WrongNode { .. }),
            "{scheme}: {err}"
        );
    }
    node.stop().await;
}

#[tokio::test]
async fn many_requests_in_flight_on_one_tcp_connection() {
    let node = start(|_| {}).await;
    let alice = Arc::new(node.login(Scheme::Tcp, "alice").await);
    let mut tasks = Vec::new();
    for i in 0..64u8 {
        let alice = alice.clone();
        tasks.push(tokio::spawn(async move {
            let (id, bytes) = shard(i, 4096 + usize::from(i));
            alice.put_shard(&id, bytes.clone()).await.unwrap();
            assert_eq!(alice.get_shard(&id).await.unwrap(), bytes);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    node.stop().await;
}

/// `body_memory` may equal `max_shard_size`, which the config allows; a
/// shard of the largest size then arrives in a frame a little larger than
/// the whole budget (the header rides along) and must still be stored,
/// not wait for room that can never free up.
#[tokio::test]
async fn a_largest_shard_fits_a_body_budget_of_exactly_max_shard_size() {
    const MAX: u64 = 64 * 1024;
    let node = start(|c| {
        c.max_shard_size = cairn_node::Size(MAX);
        c.body_memory = cairn_node::Size(MAX);
        c.request_timeout_secs = 5;
    })
    .await;
    for (seed, scheme) in [(31, Scheme::Tcp), (32, Scheme::Quic), (33, Scheme::Https)] {
        let alice = node.login(scheme, "alice").await;
        let (id, bytes) = shard(seed, MAX as usize);
        let put = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            alice.put_shard(&id, bytes.clone()),
        )
        .await
        .unwrap_or_else(|_| panic!("{scheme}: the put waited for room it cannot get"));
        put.unwrap_or_else(|e| panic!("{scheme}: {e}"));
        assert_eq!(alice.get_shard(&id).await.unwrap(), bytes, "{scheme}");
    }
    node.stop().await;
}

/// A node's quic:// sockets get the buffers `cairn_net::quic` asks for, not
/// the kernel's default, which drops datagrams whenever the node falls
/// behind.
#[tokio::test]
async fn quic_listeners_ask_for_large_udp_buffers() {
    let listen = [cairn_net::NodeAddress {
        scheme: Scheme::Quic,
        host: "127.0.0.1".into(),
        port: 0,
        node_id: None,
    }];
    let listeners = cairn_node::server::Listeners::bind(&listen).await.unwrap();
    let (_, asked) = cairn_net::quic::bind_udp("127.0.0.1:0").unwrap();
    let plain = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    assert_ne!(asked, cairn_net::quic::receive_buffer(&plain));
    assert_eq!(cairn_net::quic::receive_buffer(&listeners.quic[0]), asked);
}
