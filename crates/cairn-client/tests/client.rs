//! The client library against real node processes on loopback: files go
//! in and come back bit for bit, at every size that has an edge (empty, one
//! byte, one past a MiB, a hundred MiB), through files and through async
//! readers and writers, across mixed transports, with nodes down.
//!
//! Bugs these guard against: a size that loses or adds a byte (the empty
//! file and the 1-byte tail of a chunk in particular), a transport that one
//! client cannot mix with the others, a large file that does not come back
//! whole, and a streaming variant that drops or reorders chunks.

use cairn_client::HashingWriter;
use cairn_client::directory::Health;
use cairn_testing::cluster::{MIB, TestCluster, hash_file, keys, remote};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_survive_two_of_four_nodes_down_over_mixed_transports() {
    let mut cluster = TestCluster::start();
    let data = cairn_testing::seeded_bytes(1, 3 * MIB + 1);
    let local = cluster.file("original", &data);
    let remote = remote("docs/report.bin");

    // Opened from the passphrase, as an application does.
    let client = cluster.open("alice").await;
    let report = client.store(&local, &remote).await.unwrap();
    assert_eq!(report.size, data.len() as u64);
    assert_eq!(report.redundancy.to_string(), "2-of-4");
    assert_eq!(report.fewest_nodes, 4);
    assert!(!report.degraded);

    let out = cluster.path("copy");
    client.fetch(&remote, &out).await.unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), data);
    let listed = client.list("docs").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].size, data.len() as u64);
    assert!(
        client.list("doc").await.unwrap().is_empty(),
        "prefixes match whole components"
    );
    client.close().await;

    // Two nodes gone: a new client still gets the file back.
    cluster.nodes[0].kill();
    cluster.nodes[2].kill();
    let client = cluster.client("alice");
    let out2 = cluster.path("copy-2");
    let fetched = client.fetch(&remote, &out2).await.unwrap();
    assert_eq!(std::fs::read(&out2).unwrap(), data, "{fetched:?}");
    // (Whether a chunk needed parity depends on where rendezvous put its
    // data shards, which changes with the nodes' random ids: in about one
    // run in 200 every data shard sits on the two live nodes. The parity
    // path is pinned by client_node_loss.rs and cairn-core's properties.)
    assert_eq!(client.stat(&remote).await.unwrap().health, Health::Degraded);
    client.close().await;

    cluster.nodes[0].start();
    cluster.nodes[2].start();
    let client = cluster.client("alice");
    let verified = client.verify(&remote).await.unwrap();
    assert_eq!(verified.health, Health::Ok, "{verified:?}");
    assert_eq!(verified.corrupt, 0);
    client.close().await;
}

/// Empty, one byte, and one byte past a MiB (a chunk plus a 1-byte tail
/// can be cut there) come back exactly, with the size the index records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_one_byte_and_one_mib_plus_one_files_round_trip_bit_exact() {
    let cluster = TestCluster::start();
    // Small files go inline in their index entry by default; with
    // inline_max = 0 they are chunked like any other, which must work too.
    let mut sharded = cluster.config("alice");
    sharded.inline_max = 0;
    let sharded = cairn_client::Client::with_keys(&sharded, keys("alice")).unwrap();
    let client = cluster.client("alice");
    for (seed, len) in [(10, 0), (11, 1), (12, MIB + 1)] {
        let data = cairn_testing::seeded_bytes(seed, len);
        let local = cluster.file(&format!("in-{len}"), &data);
        let name = remote(&format!("sizes/{len}.bin"));
        for (i, (client, inline)) in [(&sharded, false), (&client, len <= 4096)]
            .into_iter()
            .enumerate()
        {
            let report = client.store(&local, &name).await.unwrap();
            assert_eq!(report.size, len as u64, "{report:?}");
            assert!(!report.degraded, "{report:?}");
            assert_eq!(report.inline, inline, "{report:?}");
            assert_eq!(report.chunks == 0, len == 0 || inline, "{report:?}");

            let out = cluster.path(&format!("out-{len}-{i}"));
            let fetched = client.fetch(&name, &out).await.unwrap();
            assert_eq!(fetched.size, len as u64);
            assert_eq!(fetched.rebuilt, 0, "all data shards were at hand");
            assert_eq!(std::fs::read(&out).unwrap(), data, "{len} bytes");
            assert_eq!(client.file_info(&name).await.unwrap().size, len as u64);
        }
    }
    let listed: Vec<(String, u64)> = client
        .list("sizes")
        .await
        .unwrap()
        .into_iter()
        .map(|f| (f.path.to_string(), f.size))
        .collect();
    assert_eq!(
        listed,
        [
            ("sizes/0.bin".to_owned(), 0),
            ("sizes/1.bin".to_owned(), 1),
            (format!("sizes/{}.bin", MIB + 1), MIB as u64 + 1),
        ]
    );
}

/// 100 MiB of seeded bytes in from a file and back out through `fetch_to`,
/// compared by hash (the two copies are never held in memory), and out
/// again to a file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mib_file_round_trips_bit_exact() {
    let cluster = TestCluster::start();
    let client = cluster.client("alice");
    let len = 100 * MIB;
    let (local, hash) = cluster.seeded_file("big", 20, len);
    let name = remote("big.bin");

    let started = std::time::Instant::now();
    let report = client.store(&local, &name).await.unwrap();
    eprintln!("put 100 MiB in {:?}: {report:?}", started.elapsed());
    assert_eq!(report.size, len as u64);
    assert!(report.chunks >= 25, "{report:?}"); // chunks are at most 4 MiB
    assert_eq!(report.shards_sent, (report.chunks + 1) * 4, "{report:?}");
    assert!(!report.degraded, "{report:?}");

    let started = std::time::Instant::now();
    let mut sink = HashingWriter::default();
    let fetched = client.fetch_to(&name, &mut sink, &|_| {}).await.unwrap();
    eprintln!("got 100 MiB in {:?}", started.elapsed());
    assert_eq!(fetched.size, len as u64);
    assert_eq!(sink.len, len as u64);
    assert_eq!(sink.hasher.finalize(), hash);

    let out = cluster.path("big-copy");
    client.fetch(&name, &out).await.unwrap();
    assert_eq!(hash_file(&out), hash);
}

/// `store_async` from an async reader and `fetch_to` an async writer give
/// the same bytes as the file variants, and the modification time passed
/// in is the one listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_async_and_fetch_to_round_trip_through_async_io() {
    let cluster = TestCluster::start();
    let client = cluster.client("alice");
    let data = cairn_testing::seeded_bytes(30, 5 * MIB + 3);
    let name = remote("streams/five.bin");
    let seen = std::sync::atomic::AtomicU64::new(0);
    let progress = |bytes| {
        seen.fetch_max(bytes, std::sync::atomic::Ordering::Relaxed);
    };
    let report = client
        .store_async(
            std::io::Cursor::new(data.clone()),
            &name,
            1_700_000_000_000,
            &progress,
        )
        .await
        .unwrap();
    assert_eq!(report.size, data.len() as u64);
    assert_eq!(seen.load(std::sync::atomic::Ordering::Relaxed), report.size);
    let info = client.file_info(&name).await.unwrap();
    assert_eq!(info.modified_unix_ms, 1_700_000_000_000);

    let mut out: Vec<u8> = Vec::new();
    seen.store(0, std::sync::atomic::Ordering::Relaxed);
    let fetched = client.fetch_to(&name, &mut out, &progress).await.unwrap();
    assert_eq!(fetched.size, data.len() as u64);
    assert_eq!(
        seen.load(std::sync::atomic::Ordering::Relaxed),
        fetched.size
    );
    assert!(out == data, "fetch_to wrote other bytes");

    // What store_async wrote, a file fetch reads, and the reverse.
    let file_copy = cluster.path("five-copy");
    client.fetch(&name, &file_copy).await.unwrap();
    assert!(std::fs::read(&file_copy).unwrap() == data);
    let empty = remote("streams/empty.bin");
    client
        .store_async(tokio::io::empty(), &empty, 0, &|_| {})
        .await
        .unwrap();
    let mut out: Vec<u8> = Vec::new();
    client.fetch_to(&empty, &mut out, &|_| {}).await.unwrap();
    assert!(out.is_empty());
}
