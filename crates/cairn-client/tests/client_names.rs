//! The replicated index of names, seen through the client library against
//! real node processes: health in listings, read repair, two writers of
//! one name, and files shared by capability with other users.
//!
//! Bugs these guard against:
//! - `ls -l` calling a file `ok` that was stored while a node was down;
//! - a node that missed index writes while it was down and never catches
//!   up (a later node loss would then hide names);
//! - a name that shows an older version after a newer one was stored
//!   elsewhere, or nothing while the newer one is still being uploaded;
//! - a capability that only its owner can fetch.

use cairn_client::directory::Health;
use cairn_client::{Client, FetchError};
use cairn_testing::cluster::{MIB, TestCluster, keys, options, remote};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_missed_puts_gets_the_index_entries_back_on_the_next_read() {
    let mut cluster = TestCluster::start();
    cluster.nodes[2].kill();
    let client = cluster.client("alice");
    for (i, name) in ["a.bin", "b.bin"].into_iter().enumerate() {
        let data = cairn_testing::seeded_bytes(60 + i as u64, MIB / 2);
        let local = cluster.file(name, &data);
        let report = client.store(&local, &remote(name)).await.unwrap();
        assert!(report.degraded, "{report:?}");
    }
    client.close().await;
    let whole = cluster.index_entries(0, "alice");
    assert_eq!(whole.len(), 2);
    assert_eq!(cluster.index_entries(1, "alice"), whole);
    assert_eq!(cluster.index_entries(3, "alice"), whole);
    assert!(cluster.index_entries(2, "alice").is_empty());

    // Node 2 returns. Reading one name (a get) repairs that name on it...
    cluster.nodes[2].start();
    let client = cluster.client("alice");
    // Connected first: a quorum read waits only QUORUM_GRACE for the nodes
    // after a majority, and on a loaded machine a fresh TLS connection and
    // login to the restarted node can take longer, which left it out of the
    // read and so out of its repair.
    for connected in client.cluster().connect_all().await {
        connected.unwrap();
    }
    client
        .fetch(&remote("a.bin"), &cluster.path("a-copy"))
        .await
        .unwrap();
    let repaired = cluster.index_entries(2, "alice");
    assert_eq!(repaired.len(), 1, "only the name that was read");
    assert!(whole.contains(&repaired[0]), "same name, same version");

    // ...and a listing repairs every name: node 2's index is whole again.
    let listed = client.list("").await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(cluster.index_entries(2, "alice"), whole);
}

/// The issue: "`ls` after a put made while one node was down shows
/// `degraded`". With one of four nodes down, placement puts the fourth
/// shard of every chunk on a node that already holds one (there is no
/// other), so every shard *id* is stored somewhere, but on 3 nodes, not 4:
/// one more node loss can leave a chunk with fewer than k shards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ls_l_shows_a_file_stored_while_a_node_was_down_as_degraded() {
    let mut cluster = TestCluster::start();
    cluster.nodes[2].kill();
    let client = cluster.client("alice");
    let data = cairn_testing::seeded_bytes(62, 2 * MIB);
    let local = cluster.file("data", &data);
    let report = client.store(&local, &remote("data.bin")).await.unwrap();
    assert!(report.degraded, "{report:?}");
    assert_eq!(report.fewest_nodes, 3, "{report:?}");

    let listed = client.list_files("", true).await.unwrap();
    assert_eq!(
        listed[0].health,
        Some(Health::Degraded),
        "while node 2 is still down"
    );
    client.close().await;

    // Back up, but the shards are where the put left them until a repair.
    cluster.nodes[2].start();
    let client = cluster.client("alice");
    let listed = client.list_files("", true).await.unwrap();
    assert_eq!(
        listed[0].health,
        Some(Health::Degraded),
        "after node 2 returned"
    );
    assert_eq!(
        client.stat(&remote("data.bin")).await.unwrap().health,
        Health::Degraded
    );
}

/// Two clients of one user (two machines) store the same name: the newer
/// put wins everywhere, and until its index entry is written the older
/// version stays readable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_writing_one_name_newer_wins_and_the_older_stays_readable_until_then() {
    let cluster = TestCluster::start();
    let name = remote("shared/notes.bin");
    let v1 = cairn_testing::seeded_bytes(63, MIB + 11);
    let v2 = cairn_testing::seeded_bytes(64, 24 * MIB);
    let v3 = cairn_testing::seeded_bytes(65, 1000);
    let a = cluster.client("alice");
    let b = cluster.client("alice");
    a.store(&cluster.file("v1", &v1), &name).await.unwrap();

    // B's put of v2 stops after 8 MiB were sealed, its progress callback
    // blocking until a reader (a third machine: its own client, thread and
    // runtime) has read the name. The reader must get v1 whole.
    let (paused_tx, paused_rx) = std::sync::mpsc::channel::<()>();
    let (resume_tx, resume_rx) = std::sync::mpsc::channel::<()>();
    let paused = std::sync::Mutex::new(Some(paused_tx));
    let resume = std::sync::Mutex::new(resume_rx);
    let progress = move |bytes: u64| {
        if bytes >= 8 * MIB as u64
            && let Some(paused) = paused.lock().unwrap().take()
        {
            paused.send(()).unwrap();
            tokio::task::block_in_place(|| resume.lock().unwrap().recv().unwrap());
        }
    };
    let reader = {
        let client = cluster.client("alice");
        let name = name.clone();
        let out = cluster.path("during");
        std::thread::spawn(move || {
            paused_rx.recv().unwrap();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let result = runtime.block_on(async {
                let fetched = client.fetch(&name, &out).await;
                let info = client.file_info(&name).await;
                client.close().await;
                (fetched.map(|_| std::fs::read(&out).unwrap()), info)
            });
            resume_tx.send(()).unwrap();
            result
        })
    };
    let v2_path = cluster.file("v2", &v2);
    let report = b.store_file(&v2_path, &name, &progress).await.unwrap();
    assert_eq!(report.size, v2.len() as u64);
    let (during, info) = reader.join().unwrap();
    let during = during.expect("v1 is readable while v2 is uploading");
    assert!(
        during == v1,
        "the reader got something other than v1 mid-put"
    );
    assert_eq!(info.unwrap().size, v1.len() as u64);

    // Once B's put returned, both clients see v2.
    for (who, client) in [("A", &a), ("B", &b)] {
        let out = cluster.path(&format!("v2-{who}"));
        client.fetch(&name, &out).await.unwrap();
        assert!(std::fs::read(&out).unwrap() == v2, "{who} after B's put");
    }
    let listed = a.list("shared").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].size, v2.len() as u64);

    // And A writing again wins over B's version in turn.
    a.store(&cluster.file("v3", &v3), &name).await.unwrap();
    for (who, client) in [("A", &a), ("B", &b)] {
        let out = cluster.path(&format!("v3-{who}"));
        client.fetch(&name, &out).await.unwrap();
        assert!(std::fs::read(&out).unwrap() == v3, "{who} after A's put");
    }
    let versions: Vec<u64> = (0..4)
        .map(|node| cluster.index_entries(node, "alice")[0].1)
        .collect();
    assert!(
        versions.iter().all(|v| *v == versions[0]),
        "every node holds the newest entry: {versions:?}"
    );
}

/// Alice shares a file; bob (another account) and a client with no
/// account at all fetch it by its capability, even with a node down, and
/// neither can see it by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capability_is_fetched_by_another_user_and_by_an_anonymous_client() {
    let mut cluster = TestCluster::start();
    let data = cairn_testing::seeded_bytes(66, 3 * MIB + 1);
    let name = remote("photos/summit.jpg");
    let alice = cluster.client("alice");
    alice
        .store(&cluster.file("summit", &data), &name)
        .await
        .unwrap();
    // The capability travels as text.
    let text = alice.capability(&name).await.unwrap().to_string();
    let capability: cairn_core::Capability = text.parse().unwrap();

    let bob = cluster.client("bob");
    let out = cluster.path("bob-copy");
    bob.fetch_capability_to_file(&capability, &out, false, &|_| {})
        .await
        .unwrap();
    assert!(std::fs::read(&out).unwrap() == data, "bob's copy");
    assert!(bob.list("").await.unwrap().is_empty(), "bob has no files");
    let error = bob
        .fetch(&name, &cluster.path("by-name"))
        .await
        .unwrap_err();
    assert!(matches!(error, FetchError::NotFound(_)), "{error}");

    cluster.nodes[1].kill();
    let anonymous = Client::anonymous(&cluster.servers(), options()).unwrap();
    let out = cluster.path("anonymous-copy");
    let fetched = anonymous
        .fetch_capability_to_file(&capability, &out, false, &|_| {})
        .await
        .unwrap();
    assert_eq!(fetched.size, data.len() as u64);
    assert!(std::fs::read(&out).unwrap() == data, "the anonymous copy");
    assert!(
        anonymous.list("").await.is_err(),
        "an anonymous client lists nothing"
    );
}

/// A put writes its index entry from the clock, without reading the name
/// first; an entry a node holds with a later version (from a machine whose
/// clock runs an hour ahead, or a write that reached one node and died)
/// must send the put back to write above it, even when a majority of nodes
/// accepted it, or readers, who take the newest entry, would not see it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_lands_above_a_newer_entry_that_a_single_node_holds() {
    let cluster = TestCluster::start();
    let name = remote("skewed.bin");
    let first = cairn_testing::seeded_bytes(66, 5000);
    let client = cluster.client("alice");
    client
        .store(&cluster.file("first", &first), &name)
        .await
        .unwrap();

    // A tombstone an hour in the future, on node 1 only.
    let keys = keys("alice");
    let tombstone = cairn_client::index::Entry {
        path: name.clone(),
        version: cairn_client::index::Version::new(
            cairn_client::index::Clock::now_unix_ms() + 3_600_000,
            0,
        ),
        writer: [9; 16],
        kind: cairn_client::index::EntryKind::Deleted,
    };
    // Written as a cairn before folders wrote it: whole, in no folder.
    let sealed = tombstone.seal_legacy(&keys.master.index_key()).unwrap();
    let entry_name = cairn_client::index::entry_name(&keys.master.index_name_key(), &name);
    let address = cluster.servers()[1].clone();
    let connection = cairn_net::client::Connection::connect(&address, &options(), false)
        .await
        .unwrap();
    let node_key = keys.auth.for_node(address.node_id.unwrap().0.as_bytes());
    connection
        .login("alice", node_key.expose_secret())
        .await
        .unwrap();
    connection
        .put_index(&entry_name, tombstone.version.0, sealed.into())
        .await
        .unwrap();
    connection.close().await;

    let second = cairn_testing::seeded_bytes(67, 7000);
    let other = cluster.client("alice");
    other
        .store(&cluster.file("second", &second), &name)
        .await
        .unwrap();
    let reader = cluster.client("alice");
    let out = cluster.path("read");
    reader.fetch(&name, &out).await.unwrap();
    assert!(std::fs::read(&out).unwrap() == second, "the put was lost");
}
