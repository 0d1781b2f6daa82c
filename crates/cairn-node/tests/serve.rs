//! The node served in-process on 127.0.0.1 and driven through the real
//! client, over tcp:// and quic://: the protocol's operations, its rules,
//! and its refusals.

use std::sync::Arc;

use bytes::Bytes;
use cairn_core::{AuthKey, Id, KdfParams};
use cairn_net::client::{ClientOptions, Connection};
use cairn_net::identity::NodeIdentity;
use cairn_net::protocol::{Dropped, ErrorCode};
use cairn_net::{NodeAddress, Scheme};
use cairn_node::server::{Listeners, run};
use cairn_node::{Node, NodeConfig, auth};
use cairn_store::{Store, StoreOptions};
use tokio::sync::oneshot;

struct TestNode {
    addresses: Vec<NodeAddress>,
    node_id: cairn_net::NodeId,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

fn auth_key(user: &str) -> AuthKey {
    AuthKey::derive(user, b"passphrase", &KdfParams::INSECURE_FOR_TESTS).unwrap()
}

async fn start(configure: impl FnOnce(&mut NodeConfig)) -> TestNode {
    let dir = tempfile::tempdir().unwrap();
    let listen: Vec<NodeAddress> = [Scheme::Tcp, Scheme::Quic]
        .into_iter()
        .map(|scheme| NodeAddress {
            scheme,
            host: "127.0.0.1".into(),
            port: 0,
            node_id: None,
        })
        .collect();
    let mut config = NodeConfig {
        listen: listen.clone(),
        sync: false,
        ..NodeConfig::default()
    };
    configure(&mut config);
    let identity = NodeIdentity::generate(&["127.0.0.1".into()]).unwrap();
    let store = Store::open(dir.path(), StoreOptions::default().with_sync(false)).unwrap();
    for user in ["alice", "bob"] {
        let key = auth_key(user).for_node(identity.id().0.as_bytes());
        store
            .add_user(
                user,
                &auth::new_user_record(key.expose_secret(), Some(1 << 20)),
            )
            .unwrap();
    }
    let listeners = Listeners::bind(&listen).await.unwrap();
    let addresses = listeners.addresses(&identity.id());
    let node = Arc::new(Node::new(store, identity.id(), config));
    let (stop, stopped) = oneshot::channel::<()>();
    let node_id = identity.id();
    let done = tokio::spawn(async move {
        run(node, &identity, listeners, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    TestNode {
        addresses,
        node_id,
        stop: Some(stop),
        done,
        _dir: dir,
    }
}

impl TestNode {
    fn address(&self, scheme: Scheme) -> &NodeAddress {
        self.addresses.iter().find(|a| a.scheme == scheme).unwrap()
    }

    async fn connect(&self, scheme: Scheme) -> Connection {
        Connection::connect(self.address(scheme), &ClientOptions::default(), false)
            .await
            .unwrap()
    }

    async fn login(&self, scheme: Scheme, user: &str) -> Connection {
        let connection = self.connect(scheme).await;
        let key = auth_key(user).for_node(self.node_id.0.as_bytes());
        connection.login(user, key.expose_secret()).await.unwrap();
        connection
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.done.await.unwrap();
    }
}

fn shard(seed: u8, len: usize) -> (Id, Bytes) {
    let bytes = Bytes::from(vec![seed; len]);
    (Id::of(&bytes), bytes)
}

async fn shards_and_index_work_over(scheme: Scheme) {
    let node = start(|_| {}).await;
    let alice = node.login(scheme, "alice").await;
    let info = alice.info().await.unwrap();
    assert_eq!(info.node_id, node.node_id);

    let (id, bytes) = shard(1, 100_000);
    assert!(alice.put_shard(&id, bytes.clone()).await.unwrap());
    assert!(!alice.put_shard(&id, bytes.clone()).await.unwrap());
    assert_eq!(alice.get_shard(&id).await.unwrap(), bytes);
    let (absent, _) = shard(2, 10);
    let has = alice.has_shards(&[id, absent]).await.unwrap();
    assert_eq!(
        (has.stored, has.mine),
        (vec![true, false], vec![true, false])
    );

    // Public read: an anonymous connection reads but does not own.
    let anonymous = node.connect(scheme).await;
    assert_eq!(anonymous.get_shard(&id).await.unwrap(), bytes);
    let has = anonymous.has_shards(&[id]).await.unwrap();
    assert_eq!((has.stored, has.mine), (vec![true], vec![false]));
    let err = anonymous.put_shard(&id, bytes.clone()).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Unauthorized));

    // Bob cannot drop Alice's reference.
    let bob = node.login(scheme, "bob").await;
    assert_eq!(
        bob.drop_shards(&[id]).await.unwrap(),
        vec![Dropped::NotReferenced]
    );
    assert_eq!(alice.get_shard(&id).await.unwrap(), bytes);
    assert_eq!(
        alice.drop_shards(&[id]).await.unwrap(),
        vec![Dropped::Deleted]
    );
    let err = alice.get_shard(&id).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NotFound));

    // Index entries: versions, isolation, listing, deletion.
    let name = [7u8; 32];
    assert_eq!(
        alice
            .put_index(&name, 2, Bytes::from_static(b"v2"))
            .await
            .unwrap(),
        None
    );
    let stale = alice
        .put_index(&name, 1, Bytes::from_static(b"v1"))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Some(ErrorCode::Conflict));
    assert_eq!(
        alice
            .put_index(&name, 3, Bytes::from_static(b"v3"))
            .await
            .unwrap(),
        Some(2)
    );
    let entry = alice.get_index(&name).await.unwrap().unwrap();
    assert_eq!((entry.version, &entry.data[..]), (3, &b"v3"[..]));
    assert!(bob.get_index(&name).await.unwrap().is_none());
    assert!(bob.list_index(None, 10).await.unwrap().entries.is_empty());
    bob.put_index(&name, 1, Bytes::from_static(b"bob's"))
        .await
        .unwrap();
    assert_eq!(alice.get_index(&name).await.unwrap().unwrap().version, 3);
    for i in 0..5u8 {
        alice
            .put_index(&[i; 32], 1, Bytes::from(vec![i; 3]))
            .await
            .unwrap();
    }
    let page = alice.list_index(None, 4).await.unwrap();
    assert_eq!(page.entries.len(), 4);
    assert!(page.more);
    let rest = alice
        .list_index(Some(&page.entries[3].name), 10)
        .await
        .unwrap();
    assert_eq!(rest.entries.len(), 2);
    assert!(!rest.more);
    assert_eq!(alice.delete_index(&name).await.unwrap(), Some(3));
    assert!(alice.get_index(&name).await.unwrap().is_none());
    node.stop().await;
}

#[tokio::test]
async fn shards_and_index_over_tcp() {
    shards_and_index_work_over(Scheme::Tcp).await;
}

#[tokio::test]
async fn shards_and_index_over_quic() {
    shards_and_index_work_over(Scheme::Quic).await;
}

#[tokio::test]
async fn refusals_over_both_transports() {
    let node = start(|c| c.public_read = false).await;
    for scheme in [Scheme::Tcp, Scheme::Quic] {
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
    for scheme in [Scheme::Tcp, Scheme::Quic] {
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
