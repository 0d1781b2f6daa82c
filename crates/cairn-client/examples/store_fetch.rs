//! Store a file in a cluster of four local cairn nodes, fetch it back, and
//! check it.
//!
//! ```sh
//! cargo run -p cairn-client --example store_fetch
//! ```
//!
//! The nodes run in this process on loopback ports, each in a temporary
//! directory, so the example needs nothing else; against real nodes, build
//! the `ClientConfig` from their addresses (`cairn node init` prints them).

use std::error::Error;
use std::sync::Arc;

use cairn_client::{Client, ClientConfig, RemotePath};
use cairn_core::{AuthKey, KdfParams};
use cairn_net::identity::NodeIdentity;
use cairn_net::{NodeAddress, Scheme};
use cairn_node::server::{Listeners, run as serve};
use cairn_node::{Node, NodeConfig, auth};
use cairn_store::{Store, StoreOptions};

const USER: &str = "alice";
const PASSPHRASE: &[u8] = b"correct horse battery staple";

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    run().await
}

/// The example, callable from a test.
pub async fn run() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;

    // Four nodes, each knowing alice (with the key derived for that node).
    let auth_key = AuthKey::derive(USER, PASSPHRASE, &KdfParams::default())?;
    let mut servers = Vec::new();
    let mut stops = Vec::new();
    for (i, scheme) in [Scheme::Https, Scheme::Tcp, Scheme::Tcp, Scheme::Quic]
        .into_iter()
        .enumerate()
    {
        let identity = NodeIdentity::generate(&["127.0.0.1".into()])?;
        let store = Store::open(
            dir.path().join(format!("node-{i}")),
            StoreOptions::default(),
        )?;
        let key = auth_key.for_node(identity.id().0.as_bytes());
        store.add_user(USER, &auth::new_user_record(key.expose_secret(), None))?;
        let listen = vec![NodeAddress {
            scheme,
            host: "127.0.0.1".into(),
            port: 0,
            node_id: None,
        }];
        let listeners = Listeners::bind(&listen).await?;
        servers.extend(listeners.addresses(&identity.id()));
        let config = NodeConfig {
            listen,
            ..NodeConfig::default()
        };
        let node = Arc::new(Node::new(store, identity.id(), config));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        stops.push(stop);
        tokio::spawn(async move {
            let _ = serve(node, &identity, listeners, async {
                let _ = stopped.await;
            })
            .await;
        });
    }

    // The client: a user name, the nodes' pinned addresses, a passphrase.
    let config = ClientConfig::new(USER, servers);
    let client = Client::open(&config, PASSPHRASE).await?;

    let original = dir.path().join("hello.txt");
    std::fs::write(&original, "a cairn marks the way\n".repeat(100_000))?;
    let remote: RemotePath = "notes/hello.txt".parse()?;
    let stored = client.store(&original, &remote).await?;
    println!(
        "stored {remote}: {} bytes in {} chunks, {} over {} nodes",
        stored.size, stored.chunks, stored.redundancy, stored.fewest_nodes
    );

    let copy = dir.path().join("copy.txt");
    let fetched = client.fetch(&remote, &copy).await?;
    let same = std::fs::read(&original)? == std::fs::read(&copy)?;
    println!(
        "fetched {} bytes from {} shards: {}",
        fetched.size,
        fetched.shards_fetched,
        if same { "identical" } else { "DIFFERENT" }
    );
    for file in client.list("notes").await? {
        println!("listed {} ({} bytes)", file.path, file.size);
    }
    client.close().await;
    for stop in stops {
        let _ = stop.send(());
    }
    if !same {
        return Err("the fetched file differs".into());
    }
    Ok(())
}
