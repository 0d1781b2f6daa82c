//! A node served in this process (`cairn_node::server::run` on port-0
//! listeners, as mini-redis tests its server): users `alice` and `bob`
//! (1 MiB quota each) on 127.0.0.1 over tcp://, quic:// and https://, and
//! the scenario every transport must pass.

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

/// A node served by a task of the current runtime, in a temporary directory.
pub struct TestNode {
    /// Its listeners' addresses, pinned.
    pub addresses: Vec<NodeAddress>,
    /// Its node id.
    pub node_id: cairn_net::NodeId,
    /// The node's certificate, as `node.crt` holds it.
    pub certificate_pem: String,
    key_pem: String,
    config: NodeConfig,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
    dir: tempfile::TempDir,
}

/// `user`'s auth key (passphrase `"passphrase"`, the insecure test cost).
pub fn auth_key(user: &str) -> AuthKey {
    AuthKey::derive(user, b"passphrase", &KdfParams::INSECURE_FOR_TESTS).unwrap()
}

/// Starts a node with the settings `configure` leaves, users alice and bob.
pub async fn start(configure: impl FnOnce(&mut NodeConfig)) -> TestNode {
    let dir = tempfile::tempdir().unwrap();
    let listen: Vec<NodeAddress> = [Scheme::Tcp, Scheme::Quic, Scheme::Https]
        .into_iter()
        .map(|scheme| NodeAddress {
            scheme,
            host: "127.0.0.1".into(),
            port: 0,
            node_id: None,
        })
        .collect();
    let mut config = NodeConfig {
        listen,
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
    drop(store);
    serve(dir, identity, config).await
}

/// Serves the store in `dir` as `identity`, on `config.listen`.
async fn serve(dir: tempfile::TempDir, identity: NodeIdentity, config: NodeConfig) -> TestNode {
    let store = Store::open(dir.path(), StoreOptions::default().with_sync(false)).unwrap();
    let listeners = Listeners::bind(&config.listen).await.unwrap();
    let addresses = listeners.addresses(&identity.id());
    let node = Arc::new(Node::new(store, identity.id(), config.clone()));
    let (stop, stopped) = oneshot::channel::<()>();
    let node_id = identity.id();
    let certificate_pem = identity.certificate_pem();
    let key_pem = identity.key_pem().to_string();
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
        certificate_pem,
        key_pem,
        config,
        stop: Some(stop),
        done,
        dir,
    }
}

impl TestNode {
    /// The address of its `scheme` listener.
    pub fn address(&self, scheme: Scheme) -> &NodeAddress {
        self.addresses.iter().find(|a| a.scheme == scheme).unwrap()
    }

    /// A connection over `scheme`, not logged in.
    pub async fn connect(&self, scheme: Scheme) -> Connection {
        Connection::connect(self.address(scheme), &ClientOptions::default(), false)
            .await
            .unwrap()
    }

    /// A connection over `scheme`, logged in as `user`.
    pub async fn login(&self, scheme: Scheme, user: &str) -> Connection {
        let connection = self.connect(scheme).await;
        let key = auth_key(user).for_node(self.node_id.0.as_bytes());
        connection.login(user, key.expose_secret()).await.unwrap();
        connection
    }

    /// Stops serving and waits until the node has.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.done.await.unwrap();
    }

    /// Stops the node and serves it again: same directory, identity and
    /// ports, but a new process's memory (no sessions, no tokens).
    pub async fn restart(mut self) -> Self {
        let _ = self.stop.take().unwrap().send(());
        (&mut self.done).await.unwrap();
        let identity = NodeIdentity::from_pem(&self.certificate_pem, &self.key_pem).unwrap();
        let mut config = self.config.clone();
        config.listen = self
            .addresses
            .iter()
            .map(|a| NodeAddress {
                node_id: None,
                ..a.clone()
            })
            .collect();
        serve(self.dir, identity, config).await
    }
}

/// A shard of `len` bytes of `seed`, and its id.
pub fn shard(seed: u8, len: usize) -> (Id, Bytes) {
    let bytes = Bytes::from(vec![seed; len]);
    (Id::of(&bytes), bytes)
}

/// The scenario every transport must pass: shards and index entries
/// stored, read, listed and dropped, users kept apart.
pub async fn shards_and_index_work_over(scheme: Scheme) {
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
