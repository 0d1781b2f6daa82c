//! `cairn bench`: throughput measured on this machine.
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

use crate::cli::NodeBenchArgs;
use crate::units::size;

const USER: &str = "bench";
const PASSPHRASE: &str = "cairn bench passphrase";
const SHARD: usize = 1024 * 1024;

/// Runs `cairn bench node`.
pub fn node(args: &NodeBenchArgs) -> Result<()> {
    let parent = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let work = tempfile::Builder::new()
        .prefix("cairn-bench-")
        .tempdir_in(&parent)
        .with_context(|| format!("cannot create a directory in {}", parent.display()))?;
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

fn verdict(met: bool) -> &'static str {
    if met { "(met)" } else { "(missed)" }
}

fn mbps(rate: f64) -> String {
    format!("{rate:.0} MB/s")
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

/// Resident and peak resident memory of process `pid`, in bytes.
fn memory(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .context("cannot read the node's memory use (is this Linux?)")?;
    let field = |name: &str| -> Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("no {name} in /proc/{pid}/status"))?;
        let kib: u64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("cannot read {line:?}"))?;
        Ok(kib * 1024)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// Runs `cairn bench`: a local cluster storing and fetching a large file and
/// many small ones.
pub fn cluster(args: &crate::cli::ClusterBenchArgs) -> Result<()> {
    let parent = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let work = tempfile::Builder::new()
        .prefix("cairn-bench-")
        .tempdir_in(&parent)
        .with_context(|| format!("cannot create a directory in {}", parent.display()))?;
    let bin = std::env::current_exe().context("cannot find the cairn binary")?;
    if args.faults {
        return faults(args);
    }
    let big_len = args.size_mib.unwrap_or(1024) * 1024 * 1024;
    let transports = if args.mixed {
        [Scheme::Https, Scheme::Tcp, Scheme::Tcp, Scheme::Quic]
    } else {
        [Scheme::Tcp; 4]
    };
    println!(
        "cairn bench: 4 local nodes ({}) in {}",
        if args.mixed {
            "https, tcp, tcp, quic"
        } else {
            "tcp"
        },
        work.path().display()
    );

    // The in-memory pipeline, measured first, in this same run.
    let pipeline = pipeline_rate()?;
    println!(
        "in-memory pipeline, seal 2-of-4 of 256 MiB of random data: {}",
        mbps(pipeline)
    );

    let mut nodes = Vec::new();
    for (i, scheme) in transports.iter().enumerate() {
        let mut node = LocalNode::init(
            &bin,
            &work.path().join(format!("node-{}", i + 1)),
            &[*scheme],
        )?;
        node.add_user(USER, PASSPHRASE, None)?;
        node.start()?;
        nodes.push(node);
    }
    let servers = nodes.iter().map(|n| n.addresses()[0].clone()).collect();
    let mut config = cairn_client::ClientConfig::new(USER, servers);
    config.window = args.window;

    let big = work.path().join("big.bin");
    write_random(&big, big_len)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(async {
        let mut client = cairn_client::Client::open(&config, PASSPHRASE.as_bytes()).await?;
        client.set_direct_io(crate::direct_io::from_env());
        let remote: cairn_client::RemotePath = "bench/big.bin".parse()?;

        // The large file: put, then get, with the client's peak memory and
        // the CPU time the client and the nodes spent on each.
        reset_peak_memory();
        let pids: Vec<u32> = nodes.iter().filter_map(LocalNode::pid).collect();
        let cpu_before = cpu_seconds(std::process::id(), &pids)?;
        let started = Instant::now();
        let stored = client.store(&big, &remote).await?;
        let put = started.elapsed();
        let cpu_put = cpu_seconds(std::process::id(), &pids)?;
        let copy = work.path().join("big.copy");
        let started = Instant::now();
        let fetched = client.fetch(&remote, &copy).await?;
        let get = started.elapsed();
        let cpu_get = cpu_seconds(std::process::id(), &pids)?;
        let (_, peak) = memory(std::process::id())?;
        if file_hash(&big)? != file_hash(&copy)? {
            bail!("the fetched file differs from the original");
        }
        std::fs::remove_file(&copy)?;
        let put_rate = big_len as f64 / put.as_secs_f64() / 1e6;
        let get_rate = big_len as f64 / get.as_secs_f64() / 1e6;
        println!(
            "\n{} incompressible file, {}:",
            size(big_len),
            stored.redundancy
        );
        println!(
            "  put {} ({:.0}% of the pipeline)   get {} ({:.1}× put, {})   client peak RSS {}",
            mbps(put_rate),
            100.0 * put_rate / pipeline,
            mbps(get_rate),
            get_rate / put_rate,
            if fetched.direct_io {
                "direct I/O"
            } else {
                "buffered"
            },
            size(peak)
        );
        let gib = big_len as f64 / f64::from(1u32 << 30);
        println!(
            "  CPU seconds per GiB: put client {:.2} + nodes {:.2} ({:.1} cores busy)   \
             get client {:.2} + nodes {:.2}",
            (cpu_put.0 - cpu_before.0) / gib,
            (cpu_put.1 - cpu_before.1) / gib,
            (cpu_put.0 - cpu_before.0 + cpu_put.1 - cpu_before.1) / put.as_secs_f64(),
            (cpu_get.0 - cpu_put.0) / gib,
            (cpu_get.1 - cpu_put.1) / gib,
        );

        // Many small files, `concurrency` at once.
        let (puts, gets) = small_files(&client, args).await?;
        println!(
            "\n{} files of {}: put {:.0} files/s, get {:.0} files/s",
            args.files,
            size(args.file_size as u64),
            puts,
            gets
        );
        client.close().await;

        println!(
            "\ntargets: put ≥ 50% of the pipeline, get ≥ 1.5× put, client peak RSS ≤ 256 MiB,"
        );
        println!("         ≥ 1,000 small-file puts/s");
        println!(
            "  put {:.0}% {}",
            100.0 * put_rate / pipeline,
            verdict(put_rate >= pipeline / 2.0)
        );
        println!(
            "  get {:.1}× {}",
            get_rate / put_rate,
            verdict(get_rate >= 1.5 * put_rate)
        );
        println!(
            "  peak RSS {} {}",
            size(peak),
            verdict(peak <= 256 * 1024 * 1024)
        );
        println!("  {puts:.0} small-file puts/s {}", verdict(puts >= 1000.0));
        Ok(())
    });
    for node in &mut nodes {
        let _ = node.stop(Duration::from_secs(30));
    }
    outcome
}

/// MB/s of sealing 256 MiB of random data 2-of-4 in memory, one thread.
fn pipeline_rate() -> Result<f64> {
    let mut data = vec![0u8; 256 * 1024 * 1024];
    blake3::Hasher::new_derive_key("cairn bench pipeline")
        .finalize_xof()
        .fill(&mut data);
    let key = cairn_core::keys::ConvergenceKey::from_bytes([7; 32]);
    let redundancy = cairn_core::Redundancy::new(2, 4)?;
    let started = Instant::now();
    let mut sealer = cairn_core::FileSealer::new(&data[..], &key, redundancy);
    for stripe in sealer.by_ref() {
        drop(stripe?);
    }
    sealer.finish()?;
    Ok(data.len() as f64 / started.elapsed().as_secs_f64() / 1e6)
}

/// Writes `len` incompressible bytes to `path`.
fn write_random(path: &Path, len: u64) -> Result<()> {
    write_seeded(path, len, "cairn bench file")
}

fn file_hash(path: &Path) -> Result<Id> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(std::fs::File::open(path)?)?;
    Ok(hasher.finalize().into())
}

/// CPU seconds (user + system) used so far by process `client` and, summed,
/// by the processes `nodes` (Linux).
fn cpu_seconds(client: u32, nodes: &[u32]) -> Result<(f64, f64)> {
    let of = |pid: u32| -> Result<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .with_context(|| format!("cannot read /proc/{pid}/stat (is this Linux?)"))?;
        // Fields after the command name, which ends with the last ')':
        // utime and stime are the 12th and 13th of them, in clock ticks.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
        match (ticks(11), ticks(12)) {
            (Some(user), Some(system)) => Ok((user + system) / 100.0),
            _ => bail!("cannot read the CPU times in /proc/{pid}/stat"),
        }
    };
    let nodes = nodes.iter().map(|&pid| of(pid)).sum::<Result<f64>>()?;
    Ok((of(client)?, nodes))
}

/// Starts counting this process's peak resident memory afresh (Linux).
fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Files per second of putting, then getting, `args.files` small files.
async fn small_files(
    client: &cairn_client::Client,
    args: &crate::cli::ClusterBenchArgs,
) -> Result<(f64, f64)> {
    use futures::stream::{self, StreamExt};
    let names: Vec<cairn_client::RemotePath> = (0..args.files)
        .map(|i| format!("bench/small/{i:06}").parse())
        .collect::<Result<_, _>>()?;
    let content = |i: usize| {
        let mut bytes = vec![0u8; args.file_size];
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
        blake3::Hasher::new_keyed(&seed)
            .finalize_xof()
            .fill(&mut bytes);
        bytes
    };
    let started = Instant::now();
    let stored: Vec<Result<(), cairn_client::StoreError>> = stream::iter(names.iter().enumerate())
        .map(|(i, name)| {
            let bytes = content(i);
            async move {
                client
                    .store_reader(std::io::Cursor::new(bytes), name, 0, &|_| {})
                    .await
                    .map(drop)
            }
        })
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    let put = started.elapsed();
    stored.into_iter().collect::<Result<Vec<()>, _>>()?;
    let started = Instant::now();
    let fetched: Vec<Result<bool, cairn_client::FetchError>> =
        stream::iter(names.iter().enumerate())
            .map(|(i, name)| async move {
                let mut out = Vec::new();
                client.fetch_to(name, &mut out, &|_| {}).await?;
                Ok(out == content(i))
            })
            .buffer_unordered(args.concurrency)
            .collect()
            .await;
    let get = started.elapsed();
    for same in fetched {
        if !same? {
            bail!("a small file came back different");
        }
    }
    Ok((
        args.files as f64 / put.as_secs_f64(),
        args.files as f64 / get.as_secs_f64(),
    ))
}

/// One link of `cairn bench --faults`: how the client reaches the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// Straight to the nodes.
    Direct,
    /// Through a proxy injecting no fault: what the proxy itself costs.
    Proxied,
    /// Through a proxy injecting the faults.
    Faulty,
}

/// Rates of one put and one get, MB/s, and what the proxies saw.
struct LinkRun {
    put: f64,
    get: f64,
    note: String,
}

/// Runs `cairn bench --faults`.
fn faults(args: &crate::cli::ClusterBenchArgs) -> Result<()> {
    use cairn_faults::{TcpFaults, TcpProxy, UdpFaults, UdpProxy};
    let parent = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let work = tempfile::Builder::new()
        .prefix("cairn-bench-")
        .tempdir_in(&parent)
        .with_context(|| format!("cannot create a directory in {}", parent.display()))?;
    let bin = std::env::current_exe().context("cannot find the cairn binary")?;
    let len = args.size_mib.unwrap_or(64) * 1024 * 1024;
    println!(
        "cairn bench --faults: 4 local nodes (tcp:// and quic:// each) in {}, a {} file per run",
        work.path().display(),
        size(len)
    );
    let mut nodes = Vec::new();
    for i in 0..4 {
        let mut node = LocalNode::init(
            &bin,
            &work.path().join(format!("node-{}", i + 1)),
            &[Scheme::Tcp, Scheme::Quic],
        )?;
        node.add_user(USER, PASSPHRASE, None)?;
        node.start()?;
        nodes.push(node);
    }
    let keys = cairn_core::UserKeys::derive(USER, PASSPHRASE.as_bytes(), &KdfParams::default())?;
    // The proxies get threads of their own, so that they do not queue
    // behind the client's tasks (they still share the machine's cores).
    let proxies = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("fault-proxy")
        .enable_all()
        .build()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;

    let lossy = UdpFaults::lossy();
    let cutting = TcpFaults {
        cut_after: Some(4 * 1024 * 1024),
        corrupt_every: Some(4 * 1024 * 1024),
        ..TcpFaults::none()
    };
    // quic:// once per controller asked for (the nodes restarted with it),
    // then tcp://, where the setting plays no part.
    let mut series: Vec<(Scheme, Option<Congestion>)> = Vec::new();
    for congestion in &args.quic_congestion {
        if !series.contains(&(Scheme::Quic, Some(*congestion))) {
            series.push((Scheme::Quic, Some(*congestion)));
        }
    }
    series.push((Scheme::Tcp, None));
    let mut running = Congestion::default();
    let mut results: Vec<(Series, Link, Result<LinkRun>)> = Vec::new();
    println!(
        "\n{:<14} {:<40} {:>10} {:>10} {:>7} {:>7}",
        "", "link", "put", "get", "put %", "get %"
    );
    for (scheme, congestion) in series {
        let series = (scheme, congestion);
        let name = match congestion {
            Some(congestion) => format!("{scheme}:// {congestion}"),
            None => format!("{scheme}://"),
        };
        if let Some(congestion) = congestion
            && congestion != running
        {
            for node in &mut nodes {
                node.stop(Duration::from_secs(30))?;
                node.set("quic_congestion", &format!("\"{congestion}\""))?;
                node.start()?;
            }
            running = congestion;
        }
        for link in [Link::Direct, Link::Proxied, Link::Faulty] {
            let targets: Vec<cairn_net::NodeAddress> = nodes
                .iter()
                .map(|n| n.address(scheme).expect("listening").clone())
                .collect();
            let seed = results.len() as u64;
            let run = proxies.block_on(async {
                let mut servers = Vec::new();
                let mut udp = Vec::new();
                let mut tcp = Vec::new();
                for (i, target) in targets.iter().enumerate() {
                    if link == Link::Direct {
                        servers.push(target.clone());
                        continue;
                    }
                    let socket: std::net::SocketAddr = target.authority().parse()?;
                    let proxy_seed = seed * 10 + i as u64;
                    let address = if scheme == Scheme::Quic {
                        let faults = if link == Link::Faulty {
                            lossy
                        } else {
                            UdpFaults::none()
                        };
                        let proxy = UdpProxy::start(socket, faults, proxy_seed).await?;
                        let address = proxy.address();
                        udp.push(proxy);
                        address
                    } else {
                        let faults = if link == Link::Faulty {
                            cutting
                        } else {
                            TcpFaults::none()
                        };
                        let proxy = TcpProxy::start(socket, faults, proxy_seed).await?;
                        let address = proxy.address();
                        tcp.push(proxy);
                        address
                    };
                    servers.push(cairn_net::NodeAddress {
                        host: address.ip().to_string(),
                        port: address.port(),
                        ..target.clone()
                    });
                }
                Ok::<_, anyhow::Error>((servers, udp, tcp))
            });
            let (servers, udp, tcp) = run?;
            let mut config = cairn_client::ClientConfig::new(USER, servers);
            // A QUIC handshake that loses packets waits out probe timeouts.
            config.connect_timeout_secs = 10;
            config.quic_congestion = congestion.unwrap_or_default();
            let path = work.path().join(format!("file-{seed}"));
            let file_seed = format!("cairn bench faults file {seed}");
            let outcome = runtime.block_on(link_run(&config, keys.clone(), &path, len, &file_seed));
            let _ = std::fs::remove_file(&path);
            let outcome = outcome.map(|(put, get, sent)| {
                let note = if !udp.is_empty() && link == Link::Faulty {
                    let stats: Vec<_> = udp.iter().map(UdpProxy::stats).collect();
                    let sum = |f: &dyn Fn(&cairn_faults::LaneStats) -> u64| -> u64 {
                        stats.iter().map(|s| f(&s.upstream) + f(&s.downstream)).sum()
                    };
                    format!(
                        "datagrams: {} received, {} dropped, {} duplicated, {} reordered, {} corrupted",
                        sum(&|l| l.received),
                        sum(&|l| l.dropped),
                        sum(&|l| l.duplicated),
                        sum(&|l| l.reordered),
                        sum(&|l| l.corrupted)
                    )
                } else if !tcp.is_empty() && link == Link::Faulty {
                    let stats: Vec<_> = tcp.iter().map(TcpProxy::stats).collect();
                    let upstream: u64 = stats.iter().map(|s| s.upstream_bytes).sum();
                    format!(
                        "{} connections, {} cut, {} bits flipped; {} crossed towards the nodes for {} of shards ({:+.1}%)",
                        stats.iter().map(|s| s.accepted).sum::<u64>(),
                        stats.iter().map(|s| s.cuts).sum::<u64>(),
                        stats.iter().map(|s| s.corrupted).sum::<u64>(),
                        size(upstream),
                        size(sent),
                        100.0 * (upstream as f64 / sent as f64 - 1.0)
                    )
                } else {
                    String::new()
                };
                LinkRun { put, get, note }
            });
            drop((udp, tcp));
            let label = match (scheme, link) {
                (_, Link::Direct) => "direct".to_owned(),
                (_, Link::Proxied) => "through a proxy, no fault".to_owned(),
                (Scheme::Quic, Link::Faulty) => "10% loss 5% dup 25% reorder 1% corrupt".to_owned(),
                (_, Link::Faulty) => "cut every 2-6 MiB, a bit flipped per ~4 MiB".to_owned(),
            };
            let clean = results
                .iter()
                .find(|(s, l, _)| *s == series && *l == Link::Direct)
                .and_then(|(_, _, r)| r.as_ref().ok())
                .map(|r| (r.put, r.get));
            match &outcome {
                Ok(run) => {
                    let (put_share, get_share) = match clean {
                        Some((put, get)) if link != Link::Direct => (
                            format!("{:.0}%", 100.0 * run.put / put),
                            format!("{:.0}%", 100.0 * run.get / get),
                        ),
                        _ => (String::new(), String::new()),
                    };
                    println!(
                        "{:<14} {:<40} {:>10} {:>10} {:>7} {:>7}",
                        name,
                        label,
                        mbps(run.put),
                        mbps(run.get),
                        put_share,
                        get_share
                    );
                    if !run.note.is_empty() {
                        println!("{:<14} {:<40} {}", "", "", run.note);
                    }
                }
                Err(e) => println!("{name:<14} {label:<40} failed: {e:#}"),
            }
            results.push((series, link, outcome));
        }
    }
    for node in &mut nodes {
        let _ = node.stop(Duration::from_secs(30));
    }

    let rate = |series, link| {
        results
            .iter()
            .find(|(s, l, _)| *s == series && *l == link)
            .and_then(|(_, _, r)| r.as_ref().ok())
            .map(|r| (r.put, r.get))
    };
    println!("\ntarget: at 10% loss over quic://, ≥ 30% of the clean (direct) throughput");
    for congestion in &args.quic_congestion {
        let series = (Scheme::Quic, Some(*congestion));
        match (rate(series, Link::Direct), rate(series, Link::Faulty)) {
            (Some((clean_put, clean_get)), Some((put, get))) => {
                let (put_share, get_share) = (put / clean_put, get / clean_get);
                println!(
                    "  {congestion}: put {:.0}% {}, get {:.0}% {}",
                    100.0 * put_share,
                    verdict(put_share >= 0.3),
                    100.0 * get_share,
                    verdict(get_share >= 0.3)
                );
            }
            _ => println!("  {congestion}: not measured: a run failed (missed)"),
        }
    }
    if results.iter().any(|(_, _, r)| r.is_err()) {
        bail!("a run failed");
    }
    Ok(())
}

/// A series of `cairn bench --faults`: a transport, and for quic:// the
/// congestion controller of both ends.
type Series = (Scheme, Option<Congestion>);

/// Puts then gets a fresh file of `len` bytes with a client of `config`;
/// MB/s of each, and the bytes of shards the put sent.
async fn link_run(
    config: &cairn_client::ClientConfig,
    keys: cairn_core::UserKeys,
    path: &Path,
    len: u64,
    file_seed: &str,
) -> Result<(f64, f64, u64)> {
    write_seeded(path, len, file_seed)?;
    let expected = file_hash(path)?;
    let client = cairn_client::Client::with_keys(config, keys)?;
    let remote: cairn_client::RemotePath = "bench/link.bin".parse()?;
    let started = Instant::now();
    let stored = client.store(path, &remote).await?;
    let put = started.elapsed();
    let mut sink = cairn_client::HashingWriter::default();
    let started = Instant::now();
    client.fetch_to(&remote, &mut sink, &|_| {}).await?;
    let get = started.elapsed();
    if Id::from(sink.hasher.finalize()) != expected {
        bail!("the fetched file differs from the original");
    }
    client.remove(&remote).await?;
    client.close().await;
    let sent = stored.bytes_sent
        + stored.shards_present as u64 * (stored.bytes_sent / stored.shards_sent.max(1) as u64);
    Ok((
        len as f64 / put.as_secs_f64() / 1e6,
        len as f64 / get.as_secs_f64() / 1e6,
        sent,
    ))
}

/// Writes `len` incompressible bytes drawn from `seed` to `path`.
fn write_seeded(path: &Path, len: u64, seed: &str) -> Result<()> {
    use std::io::{Read, Write};
    let mut file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    std::io::copy(
        &mut blake3::Hasher::new_derive_key(seed)
            .finalize_xof()
            .take(len),
        &mut file,
    )?;
    file.flush()?;
    Ok(())
}
