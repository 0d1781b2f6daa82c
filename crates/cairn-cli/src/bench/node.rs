//! `cairn bench node`: one node's throughput measured on this machine.
//!
//! `cairn bench node` starts one node as a child process (tcp://, quic://
//! and https:// on loopback, data in a temporary directory), then measures:
//!
//! 1. the disk: fsync'd 1 MiB files written into the node's directory by 1
//!    and by 8 writers, the ceiling for durable shard writes; and the time
//!    to read one back from the device, what write verification adds;
//! 2. per transport, PUT and GET of 1 MiB shards by 1 and by 8 clients,
//!    each client on its own connection;
//! 3. the node's resident memory with 100 idle connections open, and its
//!    peak over the whole run;
//! 4. the cost of write verification (`verify_writes`, on by default and in
//!    the runs above): PUT over tcp:// by 1 and 8 clients with it on and
//!    off, restarting the node between runs, the two settings alternating
//!    so that drifts of the machine hit both alike; medians.
//!
//! Client and node share the machine's cores, as they would on a node that
//! also runs a client.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use cairn_core::{AuthKey, Id, KdfParams};
use cairn_net::Scheme;
use cairn_net::client::{ClientOptions, Connection};
use cairn_net::quic::Congestion;
use cairn_node::local::LocalNode;

use super::report::{mbps, verdict};
use super::usage::memory;
use super::{PASSPHRASE, USER};
use crate::cli::NodeBenchArgs;
use crate::units::size;

const SHARD: usize = 1024 * 1024;

/// Runs `cairn bench node`.
pub fn run(args: &NodeBenchArgs) -> Result<()> {
    let work = super::work_dir(args.dir.as_deref())?;
    let bin = std::env::current_exe().context("cannot find the cairn binary")?;
    let mut node = LocalNode::init(
        &bin,
        &work.path().join("node"),
        &[Scheme::Tcp, Scheme::Quic, Scheme::Https],
    )?;
    node.add_user(USER, PASSPHRASE, None)?;
    let congestion = args.quic_congestion;
    node.set("quic_congestion", &format!("\"{congestion}\""))?;
    node.start()?;
    let pid = node.pid().expect("running");
    println!(
        "cairn bench node: {} shards of {} per run, node data in {}; quic:// congestion control {congestion}",
        args.shards,
        size(SHARD as u64),
        work.path().display()
    );

    let disk_dir = work.path().join("disk-rate");
    std::fs::create_dir(&disk_dir)?;
    let disk_one = disk_rate(&disk_dir, args.shards, 1)?;
    let disk_eight = disk_rate(&disk_dir, args.shards, 8)?;
    println!(
        "disk, fsync'd 1 MiB files: 1 writer {}, 8 writers {}",
        mbps(disk_one),
        mbps(disk_eight)
    );
    let (write_ms, read_ms) = disk_read_back(&disk_dir, args.shards)?;
    println!(
        "disk, one 1 MiB file (medians): write and fsync {write_ms:.2} ms; read back after dropping it from the page cache {read_ms:.2} ms (what verify_writes adds to a put)"
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let key = AuthKey::derive(USER, PASSPHRASE.as_bytes(), &KdfParams::default())?;
    let results = runtime.block_on(async {
        let mut results = Vec::new();
        println!(
            "\n{:<6} {:>7} {:>12} {:>14} {:>14} {:>12}",
            "", "clients", "PUT", "of 1 writer", "of 8 writers", "GET"
        );
        for scheme in [Scheme::Tcp, Scheme::Quic, Scheme::Https] {
            let address = node.address(scheme).expect("listening").clone();
            let node_key = key.for_node(address.node_id.expect("pinned").0.as_bytes());
            for clients in [1, 8] {
                let run = transfer(
                    &address,
                    node_key.expose_secret(),
                    clients,
                    args.shards,
                    results.len() as u64,
                    congestion,
                )
                .await;
                match run {
                    Ok((put, get)) => {
                        println!(
                            "{:<6} {:>7} {:>12} {:>13.0}% {:>13.0}% {:>12}",
                            scheme,
                            clients,
                            mbps(put),
                            100.0 * put / disk_one,
                            100.0 * put / disk_eight,
                            mbps(get)
                        );
                        results.push((scheme, clients, put, get));
                    }
                    Err(e) => println!("{scheme:<6} {clients:>7}  failed: {e:#}"),
                }
            }
        }
        let idle = idle_memory(&node).await;
        (results, idle)
    });
    let (results, idle) = results;
    let idle = idle.map_err(|e| e.to_string());
    let (rss, peak) = memory(pid)?;
    match &idle {
        Ok(idle_rss) => println!(
            "\nnode memory: {} resident with 100 idle connections; peak {} over the run (now {})",
            size(*idle_rss),
            size(peak),
            size(rss)
        ),
        Err(e) => println!("\nnode memory with 100 idle connections: failed: {e}"),
    }
    let verify = if args.verify_rounds > 0 {
        let address = node.address(Scheme::Tcp).expect("listening").clone();
        let node_key = key.for_node(address.node_id.expect("pinned").0.as_bytes());
        let costs = runtime.block_on(verify_cost(
            &mut node,
            node_key.expose_secret(),
            args.shards,
            args.verify_rounds,
        ));
        Some(costs)
    } else {
        None
    };
    let status = node.stop(Duration::from_secs(30))?;
    if !status.success() {
        bail!("the node exited with {status}");
    }
    if let Some(costs) = verify {
        let costs = costs?;
        println!(
            "\nwrite verification (verify_writes), PUT over tcp://, median of {} runs each, alternating:",
            args.verify_rounds
        );
        println!("{:>7} {:>12} {:>12} {:>8}", "clients", "on", "off", "cost");
        for (clients, on, off) in costs {
            println!(
                "{clients:>7} {:>12} {:>12} {:>7.0}%",
                mbps(on),
                mbps(off),
                100.0 * (1.0 - on / off)
            );
        }
    }

    println!(
        "\ntargets: PUT with 8 clients ≥ 80% of the disk's rate for fsync'd 1 MiB files (one writer);"
    );
    println!(
        "         GET ≥ 600 MB/s over tcp:// and quic://; node RSS ≤ 128 MiB with 100 idle connections"
    );
    for (scheme, clients, put, get) in &results {
        if *clients == 8 {
            let share = 100.0 * put / disk_one;
            let get_verdict = if *scheme == Scheme::Https {
                ""
            } else {
                verdict(*get >= 600.0)
            };
            println!(
                "  {scheme}: PUT {share:.0}% of the disk {}; GET {} {get_verdict}",
                verdict(share >= 80.0),
                mbps(*get),
            );
        }
    }
    if let Ok(idle) = idle {
        println!(
            "  memory: {} with 100 idle connections {}",
            size(idle),
            verdict(idle <= 128 * 1024 * 1024)
        );
    }
    Ok(())
}

/// Medians, in milliseconds, of writing and fsyncing one 1 MiB file and of
/// reading it back after dropping its pages from the page cache, as the
/// store's write verification does, over `count` files in `dir`.
fn disk_read_back(dir: &Path, count: usize) -> Result<(f64, f64)> {
    use std::io::{Read, Seek, Write};
    let data = cairn_core::Id::of(b"read back")
        .as_bytes()
        .repeat(SHARD / 32);
    let mut back = vec![0u8; SHARD];
    let (mut writes, mut reads) = (Vec::new(), Vec::new());
    for i in 0..count {
        let path = dir.join(format!("read-back-{i}"));
        let mut file = std::fs::File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        let started = Instant::now();
        file.write_all(&data)?;
        file.sync_all()?;
        let written = Instant::now();
        #[cfg(target_os = "linux")]
        rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed)?;
        file.rewind()?;
        file.read_exact(&mut back)?;
        writes.push((written - started).as_secs_f64() * 1e3);
        reads.push(written.elapsed().as_secs_f64() * 1e3);
        if back != data {
            bail!("{} read back other bytes than were written", path.display());
        }
        std::fs::remove_file(&path)?;
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Ok((median(&mut writes), median(&mut reads)))
}

/// PUT rates over tcp:// with `verify_writes` on and off, for 1 and 8
/// clients: `rounds` runs of each, alternating, the node restarted with the
/// setting before each; returns (clients, median on, median off) in MB/s.
/// Leaves the node running with `verify_writes` on.
async fn verify_cost(
    node: &mut LocalNode,
    key: &[u8; 32],
    count: usize,
    rounds: usize,
) -> Result<Vec<(usize, f64, f64)>> {
    let mut rates: [[Vec<f64>; 2]; 2] = Default::default();
    let mut run = 1000;
    for _ in 0..rounds {
        for (setting, verify) in [(0, "true"), (1, "false")] {
            node.stop(Duration::from_secs(30))?;
            node.set("verify_writes", verify)?;
            node.start()?;
            let address = node.address(Scheme::Tcp).expect("listening").clone();
            for (slot, clients) in [1, 8].into_iter().enumerate() {
                let (put, _) =
                    transfer(&address, key, clients, count, run, Default::default()).await?;
                rates[slot][setting].push(put);
                run += 1;
            }
        }
    }
    node.stop(Duration::from_secs(30))?;
    node.set("verify_writes", "true")?;
    node.start()?;
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Ok([1, 8]
        .into_iter()
        .zip(rates.iter_mut())
        .map(|(clients, [on, off])| (clients, median(on), median(off)))
        .collect())
}

/// MB/s of `count` fsync'd 1 MiB files written into `dir` by `writers`
/// threads.
fn disk_rate(dir: &Path, count: usize, writers: usize) -> Result<f64> {
    let data = Arc::new(cairn_core::Id::of(b"disk").as_bytes().repeat(SHARD / 32));
    let started = Instant::now();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let data = data.clone();
                let dir: PathBuf = dir.to_owned();
                scope.spawn(move || -> std::io::Result<()> {
                    for i in (w..count).step_by(writers) {
                        use std::io::Write;
                        let path = dir.join(format!("{w}-{i}"));
                        let mut file = std::fs::File::create(&path)?;
                        file.write_all(&data)?;
                        file.sync_all()?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().expect("no panic"))
    })?;
    let elapsed = started.elapsed();
    for entry in std::fs::read_dir(dir)? {
        std::fs::remove_file(entry?.path())?;
    }
    Ok((count * SHARD) as f64 / elapsed.as_secs_f64() / 1e6)
}

/// PUT then GET `count` fresh shards over `clients` connections, whose
/// quic:// sender uses `congestion`; MB/s of each.
async fn transfer(
    address: &cairn_net::NodeAddress,
    key: &[u8; 32],
    clients: usize,
    count: usize,
    run: u64,
    congestion: Congestion,
) -> Result<(f64, f64)> {
    let options = ClientOptions {
        quic_congestion: congestion,
        ..ClientOptions::default()
    };
    let mut connections = Vec::new();
    for _ in 0..clients {
        let connection = Connection::connect(address, &options, false).await?;
        connection.login(USER, key).await?;
        connections.push(Arc::new(connection));
    }
    // Distinct shards for every run, so that nothing is already stored.
    let shards: Vec<(Id, Bytes)> = (0..count)
        .map(|i| {
            let mut bytes = vec![0u8; SHARD];
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(run * 1_000_000 + i as u64).to_le_bytes());
            blake3::Hasher::new_keyed(&seed)
                .finalize_xof()
                .fill(&mut bytes);
            let bytes = Bytes::from(bytes);
            (Id::of(&bytes), bytes)
        })
        .collect();
    let shards = Arc::new(shards);
    let put = timed(&connections, &shards, |c, id, bytes| async move {
        c.put_shard(&id, bytes).await.map(drop)
    })
    .await?;
    let get = timed(&connections, &shards, |c, id, _| async move {
        c.get_shard(&id).await.map(drop)
    })
    .await?;
    let ids: Vec<Id> = shards.iter().map(|(id, _)| *id).collect();
    for batch in ids.chunks(1000) {
        connections[0].drop_shards(batch).await?;
    }
    for connection in connections {
        connection.close().await;
    }
    let bytes = (count * SHARD) as f64 / 1e6;
    Ok((bytes / put.as_secs_f64(), bytes / get.as_secs_f64()))
}

/// Runs `op` on every shard, the shards split over the connections, and
/// returns how long it took.
async fn timed<F, Fut>(
    connections: &[Arc<Connection>],
    shards: &Arc<Vec<(Id, Bytes)>>,
    op: F,
) -> Result<Duration>
where
    F: Fn(Arc<Connection>, Id, Bytes) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), cairn_net::client::ClientError>> + Send,
{
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (c, connection) in connections.iter().enumerate() {
        let (connection, shards, op) = (connection.clone(), shards.clone(), op.clone());
        let stride = connections.len();
        tasks.push(tokio::spawn(async move {
            for (id, bytes) in shards.iter().skip(c).step_by(stride) {
                op(connection.clone(), *id, bytes.clone()).await?;
            }
            Ok::<_, cairn_net::client::ClientError>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(started.elapsed())
}

/// The node's resident memory after opening 100 idle tcp:// connections.
async fn idle_memory(node: &LocalNode) -> Result<u64> {
    let address = node.address(Scheme::Tcp).expect("listening");
    let mut idle = Vec::new();
    for _ in 0..100 {
        idle.push(Connection::connect(address, &ClientOptions::default(), false).await?);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss, _) = memory(node.pid().expect("running"))?;
    for connection in idle {
        connection.close().await;
    }
    Ok(rss)
}
