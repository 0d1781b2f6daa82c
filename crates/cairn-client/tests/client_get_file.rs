//! Gets into a file against real nodes on loopback (and, for the failed
//! get, over fake nodes in memory too, which no store layout can change):
//! large files are written
//! with direct I/O from aligned buffers, their unaligned tail buffered
//! (`cairn_client::output`), and every size must come back exactly either
//! way.
//!
//! Bugs these guard against:
//! - a size around an alignment or buffer edge (4 KiB ± 1, 1 MiB ± 1, a
//!   file longer than the largest buffer plus an odd tail) that loses,
//!   repeats or zero-pads bytes, with direct I/O or with it off (as
//!   `CAIRN_DIRECT_IO=0` turns it off);
//! - a get into a file system that refuses `O_DIRECT`, or answers it
//!   differently (tmpfs), that fails instead of writing buffered;
//! - a get that fails partway (a chunk no k shards of which verify) and
//!   leaves a file, or a partial one, at the destination: the output is
//!   renamed into place only once every byte checked out.

use std::sync::atomic::{AtomicU64, Ordering};

use cairn_client::output::DIRECT_MIN;
use cairn_client::transport::MemoryTransport;
use cairn_client::{Client, ClientConfig, FetchError};
use cairn_testing::cluster::{MIB, TestCluster, keys, remote};

/// Sizes with an edge for the output's buffers and alignment.
const SIZES: &[usize] = &[
    0,
    1,
    4095,
    4096,
    4097,
    MIB - 1,
    MIB,
    MIB + 1,
    5 * MIB + 12_345,
    // Past the largest buffer (8 MiB, reached after 15.75 MiB).
    21 * MIB + 4097,
];

/// A directory on the disk the build is on, where direct I/O works (the
/// system's temporary directory may be a tmpfs).
fn disk_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

/// Files left in `dir` other than `keep`: a partial output must not stay.
fn others(dir: &std::path::Path, keep: &[&str]) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !keep.contains(&name.as_str()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_edge_size_comes_back_byte_identical_with_direct_io_and_without() {
    let cluster = TestCluster::start();
    // Chunked even when small (files up to 4 KiB go inline by default).
    let mut config = cluster.config("alice");
    config.inline_max = 0;
    let direct = Client::with_keys(&config, keys("alice")).unwrap();
    let mut buffered = Client::with_keys(&config, keys("alice")).unwrap();
    buffered.set_direct_io(false);
    let out = disk_dir();
    for (seed, &len) in SIZES.iter().enumerate() {
        let data = cairn_testing::seeded_bytes(100 + seed as u64, len);
        let local = cluster.file(&format!("in-{len}"), &data);
        let name = remote(&format!("sizes/{len}.bin"));
        direct.store(&local, &name).await.unwrap();
        for (client, label) in [(&direct, "direct"), (&buffered, "buffered")] {
            let copy = out.path().join(format!("{len}.{label}"));
            let report = client.fetch(&name, &copy).await.unwrap();
            let back = std::fs::read(&copy).unwrap();
            assert!(back == data, "{len} bytes, {label}: other bytes came back");
            assert_eq!(report.size, len as u64);
            let expected =
                label == "direct" && len as u64 >= DIRECT_MIN && cfg!(target_os = "linux");
            assert_eq!(
                report.direct_io, expected,
                "{len} bytes, {label}: {report:?}"
            );
        }
    }
    assert!(
        others(out.path(), &[])
            .iter()
            .all(|n| !n.contains("cairn-partial")),
        "a temporary file was left behind"
    );
    direct.close().await;
    buffered.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_into_tmpfs_succeeds_direct_or_falling_back_to_buffered() {
    let shm = std::path::Path::new("/dev/shm");
    if !shm.is_dir() {
        eprintln!("no /dev/shm here: nothing to test");
        return;
    }
    let cluster = TestCluster::start();
    let client = cluster.client("alice");
    let data = cairn_testing::seeded_bytes(7, 3 * MIB + 4097);
    let local = cluster.file("tmpfs-in", &data);
    let name = remote("tmpfs.bin");
    client.store(&local, &name).await.unwrap();
    let out = tempfile::tempdir_in(shm).unwrap();
    let copy = out.path().join("copy");
    // Older kernels' tmpfs refuses O_DIRECT, recent ones (6.18 here) take it: either
    // way the file comes back whole.
    let report = client.fetch(&name, &copy).await.unwrap();
    assert!(std::fs::read(&copy).unwrap() == data, "{report:?}");
    assert_eq!(others(out.path(), &["copy"]), Vec::<String>::new());
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_that_fails_on_a_later_chunk_leaves_nothing_at_the_destination() {
    let cluster = TestCluster::start();
    let client = cluster.client("alice");
    // B begins with A's bytes, so B's first chunks are A's and share its
    // shards (convergent encryption): damaging only the shards B added
    // breaks B's later chunks and leaves its first ones and its manifest
    // whole, so the get writes megabytes before it fails.
    let a = cairn_testing::seeded_bytes(20, 8 * MIB);
    let mut b = a.clone();
    b.extend_from_slice(&cairn_testing::seeded_bytes(21, 8 * MIB + 1));
    client
        .store(&cluster.file("a", &a), &remote("a.bin"))
        .await
        .unwrap();
    let before = cluster.all_shards();
    client
        .store(&cluster.file("b", &b), &remote("b.bin"))
        .await
        .unwrap();
    // Three of four nodes lose B's own chunk shards (larger than any
    // manifest shard): one shard of each such stripe is left, k is 2.
    let mut damaged = 0;
    for (i, before) in before.iter().enumerate().take(3) {
        for (id, place) in cluster.shards(i) {
            let new = !before.iter().any(|(old, _)| *old == id);
            if new && cairn_testing::damage::len(&place) > 64 * 1024 {
                cairn_testing::damage::flip_middle_bit(&place);
                damaged += 1;
            }
        }
    }
    assert!(damaged >= 3, "damaged {damaged} shards");

    let out = disk_dir();
    let copy = out.path().join("b.copy");
    let written = AtomicU64::new(0);
    let progress = |n: u64| written.store(n, Ordering::Relaxed);
    let error = client
        .fetch_file(&remote("b.bin"), &copy, false, &progress)
        .await
        .unwrap_err();
    assert!(matches!(error, FetchError::Unavailable { .. }), "{error:?}");
    let written = written.load(Ordering::Relaxed);
    assert!(
        written >= DIRECT_MIN,
        "the get failed before writing much ({written} bytes): {error}"
    );
    assert!(
        !copy.exists(),
        "a file that did not verify was put in place"
    );
    assert_eq!(others(out.path(), &[]), Vec::<String>::new(), "leftovers");

    // The same get, overwriting a file that is there: it stays as it was.
    std::fs::write(&copy, b"previous").unwrap();
    client
        .fetch_file(&remote("b.bin"), &copy, true, &|_| {})
        .await
        .unwrap_err();
    assert_eq!(std::fs::read(&copy).unwrap(), b"previous");
    assert_eq!(others(out.path(), &["b.copy"]), Vec::<String>::new());
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_fake_nodes_a_get_that_fails_on_a_later_chunk_leaves_nothing_either() {
    let keys = cairn_core::UserKeys {
        auth: cairn_core::AuthKey::from_bytes([1; 32]),
        master: cairn_core::keys::MasterKey::from_bytes([2; 32]),
    };
    let config = ClientConfig::new("alice", Vec::new());
    let client = Client::with_transport(MemoryTransport::new(4), &config, &keys).unwrap();
    let nodes = client.transport();
    let scratch = disk_dir();
    // As above: B shares A's first chunks; only the shards B added, its
    // manifest's aside, are damaged, on three of the four nodes.
    let a = cairn_testing::seeded_bytes(30, 8 * MIB);
    let mut b = a.clone();
    b.extend_from_slice(&cairn_testing::seeded_bytes(31, 8 * MIB + 1));
    let (a_path, b_path) = (scratch.path().join("a"), scratch.path().join("b"));
    std::fs::write(&a_path, &a).unwrap();
    std::fs::write(&b_path, &b).unwrap();
    client.store(&a_path, &remote("a.bin")).await.unwrap();
    let before: Vec<_> = (0..4).map(|i| nodes.shard_ids(i)).collect();
    client.store(&b_path, &remote("b.bin")).await.unwrap();
    let manifest = client.capability(&remote("b.bin")).await.unwrap().manifest;
    let mut damaged = 0;
    for (i, before) in before.iter().enumerate().take(3) {
        for id in nodes.shard_ids(i) {
            if !before.contains(&id) && !manifest.shards.contains(&id) {
                assert!(nodes.damage_shard(i, &id));
                damaged += 1;
            }
        }
    }
    assert!(damaged >= 3, "damaged {damaged} shards");

    let out = disk_dir();
    let copy = out.path().join("b.copy");
    let written = AtomicU64::new(0);
    let progress = |n: u64| written.store(n, Ordering::Relaxed);
    let error = client
        .fetch_file(&remote("b.bin"), &copy, false, &progress)
        .await
        .unwrap_err();
    assert!(matches!(error, FetchError::Unavailable { .. }), "{error:?}");
    assert!(written.load(Ordering::Relaxed) >= DIRECT_MIN, "{error}");
    assert!(
        !copy.exists(),
        "a file that did not verify was put in place"
    );
    assert_eq!(others(out.path(), &[]), Vec::<String>::new(), "leftovers");
}
