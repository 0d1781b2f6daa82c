//! `cairn bench --faults`: the large file put and got over bad links, each
//! transport directly, through a fault proxy that injects nothing, and
//! through one that does.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cairn_core::{Id, KdfParams};
use cairn_net::Scheme;
use cairn_net::quic::Congestion;
use cairn_node::local::LocalNode;

use super::files::{file_hash, write_seeded};
use super::report::{mbps, verdict};
use super::{PASSPHRASE, USER};
use crate::units::size;

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
pub fn run(args: &crate::cli::ClusterBenchArgs) -> Result<()> {
    use cairn_faults::{TcpFaults, TcpProxy, UdpFaults, UdpProxy};
    let work = super::work_dir(args.dir.as_deref())?;
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
