//! `cairn bench`: a local cluster of four nodes storing and fetching a large
//! file and many small ones, with the CPU time the client and the nodes
//! spend per GiB, against the in-memory pipeline measured in the same run.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cairn_net::Scheme;
use cairn_node::local::LocalNode;

use super::files::{file_hash, write_random};
use super::report::{mbps, verdict};
use super::usage::{cpu_seconds, memory, reset_peak_memory};
use super::{PASSPHRASE, USER};
use crate::units::size;

/// Runs `cairn bench`: a local cluster storing and fetching a large file and
/// many small ones.
pub fn run(args: &crate::cli::ClusterBenchArgs) -> Result<()> {
    // Before anything is set up: --vs-restic cannot run without restic.
    let restic = if args.vs_restic {
        Some(super::restic::find()?)
    } else {
        None
    };
    let work = super::work_dir(args.dir.as_deref())?;
    let bin = std::env::current_exe().context("cannot find the cairn binary")?;
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

        // restic with the same file, in the same run.
        let vs_restic = match restic {
            Some(program) => {
                let restic = super::restic::compare(program, work.path(), &big)?;
                let (backup, restore) = (restic.backup, restic.restore);
                let rate =
                    |run: &super::restic::Run| big_len as f64 / run.elapsed.as_secs_f64() / 1e6;
                println!(
                    "  {}: backup {} ({:.2} CPU-s per GiB)   restore {} ({:.2} CPU-s per GiB)",
                    restic.version,
                    mbps(rate(&backup)),
                    backup.cpu / gib,
                    mbps(rate(&restore)),
                    restore.cpu / gib,
                );
                let ratios = (
                    backup.elapsed.as_secs_f64() / put.as_secs_f64(),
                    restore.elapsed.as_secs_f64() / get.as_secs_f64(),
                );
                println!(
                    "  put {:.2}× restic backup   get {:.2}× restic restore",
                    ratios.0, ratios.1
                );
                Some(ratios)
            }
            None => None,
        };

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
        if let Some((put_ratio, get_ratio)) = vs_restic {
            println!(
                "  put {put_ratio:.2}× restic backup (target ≥ 1.5×) {}",
                verdict(put_ratio >= 1.5)
            );
            println!(
                "  get {get_ratio:.2}× restic restore (target ≥ 2×) {}",
                verdict(get_ratio >= 2.0)
            );
        }
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
