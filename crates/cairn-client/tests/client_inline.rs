//! Small files kept inline in their index entry, against four real node
//! processes: no shard is written, the bytes come back while any one node
//! is up, a node that missed the put is caught up by repair, `share`
//! turns the file into a stored one, and the size limit is exact.

use cairn_client::Health;
use cairn_client::fetch::FetchError;
use cairn_testing::cluster::{TestCluster, keys, remote};

const MIB: usize = 1024 * 1024;

async fn fetch(client: &cairn_client::Client, path: &str) -> Result<Vec<u8>, FetchError> {
    let mut out = Vec::new();
    client.fetch_to(&remote(path), &mut out, &|_| {}).await?;
    Ok(out)
}

/// Shards stored on all nodes together, in either layout.
fn shard_count(cluster: &TestCluster) -> usize {
    cluster.all_shards().iter().map(Vec::len).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_file_lives_in_its_entry_and_is_read_while_one_node_is_up() {
    let mut cluster = TestCluster::start_with(&["tcp", "tcp", "https", "quic"]);
    let client = cluster.client("alice");
    let bytes: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8).collect();
    let local = cluster.file("small.txt", &bytes);

    let stored = client
        .store(&local, &remote("notes/small.txt"))
        .await
        .unwrap();
    assert!(stored.inline, "{stored:?}");
    assert_eq!((stored.chunks, stored.shards_sent), (0, 0), "{stored:?}");
    assert_eq!(stored.fewest_nodes, 4, "{stored:?}");
    assert!(!stored.degraded, "{stored:?}");
    // Nothing but index entries (the file's and its folder's): no chunk,
    // no manifest shard anywhere.
    assert_eq!(shard_count(&cluster), 0);
    for node in 0..4 {
        assert_eq!(cluster.index_entries(node, "alice").len(), 2);
    }

    assert_eq!(fetch(&client, "notes/small.txt").await.unwrap(), bytes);
    let copy = cluster.path("copy.txt");
    client
        .fetch_file(&remote("notes/small.txt"), &copy, false, &|_| {})
        .await
        .unwrap();
    assert_eq!(std::fs::read(&copy).unwrap(), bytes);

    let stat = client.stat(&remote("notes/small.txt")).await.unwrap();
    assert!(stat.inline, "{stat:?}");
    assert_eq!(stat.health, Health::Ok);
    assert_eq!(stat.chunks, 0);
    assert!(
        stat.shards_per_node.iter().all(|(_, n)| *n == 1),
        "{stat:?}"
    );
    let listed = client.list_files("notes", true).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].size, 4096);
    assert_eq!(listed[0].health, Some(Health::Ok));

    // Three of four nodes gone: a stored 2-of-4 file would be lost, the
    // inline one is whole on the last node.
    for node in 1..4 {
        cluster.nodes[node].kill();
    }
    let fresh = cluster.client("alice");
    assert_eq!(fetch(&fresh, "notes/small.txt").await.unwrap(), bytes);
    let listed = fresh.list_files("notes", true).await.unwrap();
    assert_eq!(listed[0].health, Some(Health::Degraded));
    let verified = fresh.verify(&remote("notes/small.txt")).await.unwrap();
    assert_eq!(verified.health, Health::Degraded);
    assert_eq!(verified.missing, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_gives_a_node_that_missed_the_put_its_copy() {
    let mut cluster = TestCluster::start();
    cluster.nodes[2].kill();
    let client = cluster.client("alice");
    let local = cluster.file("a.txt", b"written while node 2 was down");
    let stored = client.store(&local, &remote("a.txt")).await.unwrap();
    assert!(stored.inline && stored.degraded, "{stored:?}");
    assert_eq!(stored.fewest_nodes, 3, "{stored:?}");
    assert!(cluster.index_entries(2, "alice").is_empty());

    cluster.nodes[2].start();
    let client = cluster.client("alice");
    let report = client.repair(&remote("a.txt")).await.unwrap();
    assert_eq!(report.after, Health::Ok, "{report:?}");
    assert_eq!(cluster.index_entries(2, "alice").len(), 1);
    // Idempotent: nothing left to write.
    let again = client.repair(&remote("a.txt")).await.unwrap();
    assert_eq!((again.before, again.shards_written), (Health::Ok, 0));
    let verified = client.verify(&remote("a.txt")).await.unwrap();
    assert_eq!((verified.health, verified.corrupt), (Health::Ok, 0));
    assert_eq!(shard_count(&cluster), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharing_stores_the_file_as_chunks_and_remove_leaves_nothing() {
    let cluster = TestCluster::start();
    let alice = cluster.client("alice");
    let local = cluster.file("share.txt", b"a capability names a manifest");
    alice.store(&local, &remote("share.txt")).await.unwrap();
    assert_eq!(shard_count(&cluster), 0);

    let capability = alice.capability(&remote("share.txt")).await.unwrap();
    // Now a stored file: chunk and manifest shards on the nodes, the entry
    // pointing at them, and the same bytes.
    let stat = alice.stat(&remote("share.txt")).await.unwrap();
    assert!(!stat.inline, "{stat:?}");
    assert_eq!((stat.chunks, stat.health), (1, Health::Ok));
    assert_eq!(shard_count(&cluster), 8);
    let bob = cluster.client("bob");
    let mut out = Vec::new();
    bob.fetch_capability_to(&capability, &mut out, &|_| {})
        .await
        .unwrap();
    assert_eq!(out, b"a capability names a manifest");
    // Asking again gives the same capability and stores nothing more.
    let again = alice.capability(&remote("share.txt")).await.unwrap();
    assert_eq!(again.to_string(), capability.to_string());

    let small = cluster.file("gone.txt", b"inline, then removed");
    alice.store(&small, &remote("gone.txt")).await.unwrap();
    let removed = alice.remove(&remote("gone.txt")).await.unwrap();
    assert_eq!(removed.references_dropped, 0);
    assert!(matches!(
        fetch(&alice, "gone.txt").await,
        Err(FetchError::NotFound(_))
    ));
    let names: Vec<_> = alice
        .list_files("", false)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.path.to_string())
        .collect();
    assert_eq!(names, ["share.txt"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inline_limit_is_exact_and_zero_turns_it_off() {
    let cluster = TestCluster::start();
    let client = cluster.client("alice");
    let limit = cairn_client::config::DEFAULT_INLINE_MAX;
    for (name, len, inline) in [
        ("empty", 0, true),
        ("at-limit", limit, true),
        ("over-limit", limit + 1, false),
        ("one-mib", MIB, false),
    ] {
        let (local, hash) = cluster.seeded_file(name, len as u64, len);
        let stored = client.store(&local, &remote(name)).await.unwrap();
        assert_eq!(stored.inline, inline, "{name}: {stored:?}");
        let back = fetch(&client, name).await.unwrap();
        assert_eq!(blake3::hash(&back), hash, "{name}");
    }
    // A put that grows a file past the limit turns it into a stored one,
    // and shrinking it brings it back inline: the newest entry wins.
    let grown = cluster.file("g", &vec![5u8; limit + 10]);
    assert!(
        !client
            .store(&grown, &remote("at-limit"))
            .await
            .unwrap()
            .inline
    );
    assert_eq!(
        fetch(&client, "at-limit").await.unwrap(),
        vec![5u8; limit + 10]
    );
    let shrunk = cluster.file("s", b"short again");
    assert!(
        client
            .store(&shrunk, &remote("at-limit"))
            .await
            .unwrap()
            .inline
    );
    assert_eq!(fetch(&client, "at-limit").await.unwrap(), b"short again");

    let mut config = cluster.config("alice");
    config.inline_max = 0;
    let sharded = cairn_client::Client::with_keys(&config, keys("alice")).unwrap();
    let local = cluster.file("tiny", b"x");
    let stored = sharded.store(&local, &remote("tiny")).await.unwrap();
    assert!(!stored.inline, "{stored:?}");
    assert_eq!(stored.chunks, 1);
    // Either client reads either kind.
    assert_eq!(fetch(&client, "tiny").await.unwrap(), b"x");
    assert_eq!(fetch(&sharded, "empty").await.unwrap(), b"");
}
