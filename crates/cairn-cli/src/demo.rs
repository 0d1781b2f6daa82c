//! `cairn demo`: a local cluster doing cairn's main job.
//!
//! Starts four nodes as child processes in a temporary directory (one on
//! https://, two on tcp://, one on quic://), creates a user on each, writes
//! the client configuration, stores a generated file and a small
//! directory, lists them, kills two nodes, fetches the file back from the
//! other two and checks it bit for bit, restarts the killed nodes, verifies
//! every file, and stops everything. Each step prints what it did and how
//! long it took.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cairn_client::{Client, ClientConfig, RemotePath};
use cairn_core::Id;
use cairn_net::Scheme;
use cairn_node::local::LocalNode;

use crate::cli::DemoArgs;
use crate::units::{duration, rate, size};

const MIB: u64 = 1024 * 1024;
const USER: &str = "demo";
const PASSPHRASE: &str = "correct horse battery staple";
const TRANSPORTS: [Scheme; 4] = [Scheme::Https, Scheme::Tcp, Scheme::Tcp, Scheme::Quic];
/// The nodes the demo kills (node-2 and node-4).
const KILLED: [usize; 2] = [1, 3];

/// Prints numbered steps, each with its duration.
struct Steps {
    done: usize,
    total: usize,
}

impl Steps {
    /// Prints the step's title and returns when it started.
    fn begin(&mut self, title: &str) -> Instant {
        self.done += 1;
        print!("[{:>2}/{}] {title:<64}", self.done, self.total);
        let _ = io::stdout().flush();
        Instant::now()
    }

    /// Ends the current step's line with its duration.
    fn end(&self, started: Instant) {
        println!("{:>9}", duration(started.elapsed()));
    }

    /// A line of detail under the current step.
    fn detail(&self, line: impl AsRef<str>) {
        println!("        {}", line.as_ref());
    }
}

/// Runs the demo.
pub fn run(args: &DemoArgs) -> Result<()> {
    let all = Instant::now();
    if std::env::var_os("RUST_LOG").is_some() {
        crate::logging::init(crate::logging::Logger::Node);
    }
    let work = tempfile::Builder::new()
        .prefix("cairn-demo-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    println!(
        "cairn demo: a {} file and a small directory on a local cluster of four nodes",
        size(args.size_mib * MIB)
    );
    println!("working in {}\n", work.path().display());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut nodes = Vec::new();
    let outcome = runtime.block_on(demo(args, work.path(), &mut nodes));
    // Whatever happened, nothing is left running.
    for node in &mut nodes {
        if node.is_running() {
            let _ = node.stop(Duration::from_secs(10));
        }
    }
    drop(nodes);
    outcome?;
    println!();
    if args.keep {
        let kept = work.keep();
        println!(
            "Done in {}. Stopped the nodes; kept {}.",
            duration(all.elapsed()),
            kept.display()
        );
    } else {
        let path = work.path().to_owned();
        work.close()
            .with_context(|| format!("cannot remove {}", path.display()))?;
        println!(
            "Done in {}. Stopped the nodes and removed {}.",
            duration(all.elapsed()),
            path.display()
        );
    }
    Ok(())
}

async fn demo(args: &DemoArgs, work: &Path, nodes: &mut Vec<LocalNode>) -> Result<()> {
    let mut steps = Steps { done: 0, total: 10 };
    let bin = std::env::current_exe().context("cannot find the cairn binary")?;

    // 1. Nodes.
    let t = steps.begin("Start four nodes, each a `cairn node run` process");
    for (i, scheme) in TRANSPORTS.iter().enumerate() {
        let mut node = LocalNode::init(&bin, &work.join(format!("node-{}", i + 1)), &[*scheme])?;
        node.start()?;
        nodes.push(node);
    }
    steps.end(t);
    for (i, node) in nodes.iter().enumerate() {
        let address = node.addresses()[0].to_string();
        steps.detail(format!(
            "node-{}: {}…",
            i + 1,
            &address[..address.len() - 48]
        ));
    }

    // 2. User.
    let t = steps.begin(&format!("Create user \"{USER}\" on every node"));
    for node in nodes.iter() {
        node.add_user(USER, PASSPHRASE, None)?;
    }
    steps.end(t);
    steps.detail("each node keeps a salted hash of a key derived for it alone from the passphrase");

    // 3. Client config.
    let t = steps.begin("Write the client's configuration");
    let servers = nodes.iter().map(|n| n.addresses()[0].clone()).collect();
    let config = ClientConfig::new(USER, servers);
    let config_path = work.join("client.toml");
    fs::write(&config_path, config.to_toml())?;
    let client = Client::open(&config, PASSPHRASE.as_bytes()).await?;
    steps.end(t);
    steps.detail(format!(
        "{}: 4 pinned nodes, {}; the passphrase became keys by Argon2id",
        config_path.display(),
        client.redundancy()
    ));

    // 4. Data.
    let files = work.join("files");
    fs::create_dir_all(files.join("notes"))?;
    let big = files.join("big.bin");
    let text_len = args.size_mib * MIB / 4;
    let random_len = args.size_mib * MIB - text_len;
    let t = steps.begin(&format!(
        "Generate a {} file and a directory of three notes",
        size(args.size_mib * MIB)
    ));
    generate(&big, random_len, text_len)?;
    for (name, text) in [
        ("notes/todo.txt", "buy rope\nmark the trail\n"),
        ("notes/map.txt", "north at the third cairn\n"),
        ("notes/empty.txt", ""),
    ] {
        fs::write(files.join(name), text)?;
    }
    steps.end(t);
    steps.detail(format!(
        "{} random, {} of log-like text that compresses",
        size(random_len),
        size(text_len)
    ));

    // 5. Put the file.
    let remote: RemotePath = "demo/big.bin".parse()?;
    let t = steps.begin("Put the file: chunk, compress, encrypt, erasure-code, spread");
    let stored = client.store(&big, &remote).await?;
    let took = t.elapsed();
    steps.end(t);
    steps.detail(format!(
        "{} chunks, {} of shards sent, {} on {} distinct nodes per chunk, {}",
        stored.chunks,
        size(stored.bytes_sent),
        stored.redundancy,
        stored.fewest_nodes,
        rate(stored.size, took)
    ));

    // 6. Put the directory.
    let t = steps.begin("Put the directory");
    for name in ["notes/todo.txt", "notes/map.txt", "notes/empty.txt"] {
        let remote: RemotePath = format!("demo/{name}").parse()?;
        client.store(&files.join(name), &remote).await?;
    }
    steps.end(t);
    steps.detail("names live in sealed index entries on every node: no node sees a name or a path");

    // 7. List.
    let t = steps.begin("List what is stored under demo/");
    let listed = client.list("demo").await?;
    steps.end(t);
    for file in &listed {
        steps.detail(format!(
            "{:<24} {:>10}",
            file.path.to_string(),
            size(file.size)
        ));
    }
    client.close().await;

    // 8. Disaster.
    let t = steps.begin("Kill node-2 and node-4 (SIGKILL)");
    for &i in &KILLED {
        nodes[i].kill();
    }
    steps.end(t);
    steps.detail("half of every chunk's shards are out of reach");

    // 9. Get the file back.
    let copy = work.join("big.copy");
    let t = steps.begin("Get the file back from node-1 and node-3 alone");
    let mut client = Client::open(&config, PASSPHRASE.as_bytes()).await?;
    client.set_direct_io(crate::direct_io::from_env());
    let fetched = client.fetch(&remote, &copy).await?;
    let took = t.elapsed();
    let identical = same_bytes(&big, &copy)?;
    steps.end(t);
    steps.detail(format!(
        "{} chunks, {} rebuilt from parity, every shard checked against its id, {}",
        fetched.chunks,
        fetched.rebuilt,
        rate(fetched.size, took)
    ));
    if !identical {
        bail!("the fetched file differs from the original");
    }
    steps.detail(format!(
        "BLAKE3 {}…: identical bit for bit",
        &hash_file(&copy)?.to_string()[..16]
    ));
    client.close().await;

    // 10. Restart and verify.
    let t = steps.begin("Restart node-2 and node-4, verify every file");
    for &i in &KILLED {
        nodes[i].start()?;
    }
    let client = Client::open(&config, PASSPHRASE.as_bytes()).await?;
    let mut lines = Vec::new();
    for file in client.list("demo").await? {
        let layout = client.verify(&file.path).await?;
        lines.push(format!(
            "{:<24} {} ({} shards missing, {} corrupt)",
            file.path.to_string(),
            layout.health,
            layout.missing,
            layout.corrupt
        ));
    }
    client.close().await;
    steps.end(t);
    for line in lines {
        steps.detail(line);
    }
    Ok(())
}

/// Writes `random` pseudo-random bytes and then `text` bytes of log-like
/// text to `path`.
fn generate(path: &Path, random: u64, text: u64) -> Result<()> {
    let mut out = BufWriter::with_capacity(MIB as usize, File::create(path)?);
    io::copy(
        &mut blake3::Hasher::new_derive_key("cairn demo file")
            .finalize_xof()
            .take(random),
        &mut out,
    )?;
    let mut written = 0;
    let mut line = 0u64;
    while written < text {
        let entry = format!(
            "2026-11-22T10:{:02}:{:02}Z node-{} stored shard {} ({} bytes) for user demo\n",
            line / 60 % 60,
            line % 60,
            line % 4 + 1,
            Id::of(&line.to_le_bytes()),
            262_144 + line % 7 * 4096
        );
        let take = (text - written).min(entry.len() as u64) as usize;
        out.write_all(&entry.as_bytes()[..take])?;
        written += take as u64;
        line += 1;
    }
    out.flush()?;
    Ok(())
}

fn hash_file(path: &Path) -> Result<Id> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(File::open(path)?)?;
    Ok(hasher.finalize().into())
}

/// Whether two files hold the same bytes.
fn same_bytes(a: &Path, b: &Path) -> Result<bool> {
    let (mut a, mut b) = (
        BufReader::new(File::open(a)?),
        BufReader::new(File::open(b)?),
    );
    let (mut x, mut y) = (vec![0u8; MIB as usize], vec![0u8; MIB as usize]);
    loop {
        let n = read_full(&mut a, &mut x)?;
        let m = read_full(&mut b, &mut y)?;
        if n != m || x[..n] != y[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

/// Reads until `buf` is full or the input ends.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_file_has_the_requested_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        generate(&path, 1000, 777).unwrap();
        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 1777);
        assert!(bytes[1000..].starts_with(b"2026-11-22T10:00:00Z node-1"));
    }

    #[test]
    fn equal_and_different_files() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs::write(&a, vec![1u8; 3 * MIB as usize + 5]).unwrap();
        fs::write(&b, vec![1u8; 3 * MIB as usize + 5]).unwrap();
        assert!(same_bytes(&a, &b).unwrap());
        let mut changed = vec![1u8; 3 * MIB as usize + 5];
        changed[2 * MIB as usize + 1] = 2;
        fs::write(&b, &changed).unwrap();
        assert!(!same_bytes(&a, &b).unwrap());
        fs::write(&b, vec![1u8; 3 * MIB as usize]).unwrap();
        assert!(!same_bytes(&a, &b).unwrap());
    }
}
