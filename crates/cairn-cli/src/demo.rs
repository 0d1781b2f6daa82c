//! `cairn demo`: the storage pipeline at work on local directories.
//!
//! Generates a file, seals it into 2-of-4 shards spread over four stores
//! (one directory each, as four nodes would have), destroys two of the
//! stores, rebuilds the file from the other two and checks it bit for bit,
//! printing each step with sizes and timings. Shard i of every chunk goes
//! to store i + 1; the networked cluster will place them by rendezvous
//! hashing instead.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use cairn_core::pipeline::{open_manifest, seal_manifest};
use cairn_core::{
    Capability, FileOpener, FileSealer, Id, KdfParams, Redundancy, StripeRef, UserKeys,
};
use cairn_store::{Store, StoreOptions};

use crate::cli::DemoArgs;
use crate::units::{duration, rate, size};

const MIB: u64 = 1024 * 1024;
const STORES: usize = 4;
const DESTROYED: [usize; 2] = [1, 3];
const USER: &str = "demo";
const PASSPHRASE: &str = "correct horse battery staple";

/// Prints numbered steps, each with its duration.
struct Steps {
    done: usize,
    total: usize,
}

impl Steps {
    /// Prints the step's title and returns when it started.
    fn begin(&mut self, title: &str) -> Instant {
        self.done += 1;
        print!("[{}/{}] {title:<62}", self.done, self.total);
        let _ = io::stdout().flush();
        Instant::now()
    }

    /// Ends the current step's line with its duration.
    fn end(&self, started: Instant) {
        println!("{:>9}", duration(started.elapsed()));
    }

    /// A line of detail under the current step.
    fn detail(&self, line: impl AsRef<str>) {
        println!("      {}", line.as_ref());
    }
}

/// Runs the demo.
pub fn run(args: &DemoArgs) -> Result<()> {
    let all = Instant::now();
    let work = tempfile::Builder::new()
        .prefix("cairn-demo-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let redundancy = Redundancy::new(2, STORES)?;
    println!(
        "cairn demo: a {} file through the pipeline, onto {STORES} local stores ({redundancy})",
        size(args.size_mib * MIB)
    );
    println!("working in {}\n", work.path().display());
    let mut steps = Steps { done: 0, total: 8 };

    // 1. The file.
    let original = work.path().join("original.bin");
    let text_len = args.size_mib * MIB / 4;
    let random_len = args.size_mib * MIB - text_len;
    let t = steps.begin(&format!(
        "Generate a {} file ({} random, {} text)",
        size(args.size_mib * MIB),
        size(random_len),
        size(text_len)
    ));
    generate(&original, random_len, text_len)?;
    steps.end(t);

    // 2. Keys.
    let t = steps.begin(&format!(
        "Derive the keys of user \"{USER}\" from a passphrase (Argon2id)"
    ));
    let keys = UserKeys::derive(USER, PASSPHRASE.as_bytes(), &KdfParams::default())?;
    steps.end(t);
    steps.detail("auth key for the nodes, master key for the data: neither leaves this process");

    // 3. Stores.
    let dirs: Vec<PathBuf> = (1..=STORES)
        .map(|i| work.path().join(format!("node-{i}")))
        .collect();
    let t = steps.begin(&format!("Open {STORES} stores: node-1 … node-{STORES}"));
    let mut stores: Vec<Option<Store>> = dirs
        .iter()
        .map(|dir| {
            Store::open(dir, StoreOptions::default())
                .with_context(|| format!("cannot open a store in {}", dir.display()))
                .map(Some)
        })
        .collect::<Result<_>>()?;
    steps.end(t);

    // 4. Seal and spread.
    let t = steps.begin("Chunk, compress, encrypt, erasure-code and store the file");
    let seal = seal_file(&original, &keys, redundancy, &stores)?;
    let sealing = t.elapsed();
    steps.end(t);
    steps.detail(format!(
        "{} chunks (FastCDC), {} on average",
        seal.chunks,
        size(seal.plain / seal.chunks.max(1) as u64)
    ));
    steps.detail(format!(
        "{} → {} sealed: zstd shrank {} text-like chunks, AES-256-GCM sealed all",
        size(seal.plain),
        size(seal.sealed),
        seal.compressed
    ));
    steps.detail(format!(
        "→ {} shards, {} in all, {} on each store, every write fsync'd",
        seal.shards,
        size(seal.shard_bytes),
        size(seal.shard_bytes / STORES as u64)
    ));
    steps.detail(format!("{} of file data", rate(seal.plain, sealing)));

    // 5. Manifest and capability.
    let t = steps.begin("Seal the manifest and make the capability that reads the file");
    let (capability, shards) =
        seal_manifest(&seal.manifest, &keys.master.manifests_key(), redundancy)?;
    for (shard, store) in shards.iter().zip(&stores) {
        let store = store.as_ref().expect("all stores are up");
        store.put(USER, &shard.id, &shard.bytes, None)?;
    }
    steps.end(t);
    let capability_text = capability.to_string();
    steps.detail(format!(
        "manifest: {} sealed, stored as {redundancy} shards like a chunk",
        size(u64::from(capability.manifest.blob_len))
    ));
    steps.detail(format!("capability: {capability_text}"));

    // 6. Disaster.
    let t = steps.begin("Destroy node-2 and node-4: delete their directories");
    for index in DESTROYED {
        drop(stores[index].take());
        fs::remove_dir_all(&dirs[index])
            .with_context(|| format!("cannot delete {}", dirs[index].display()))?;
    }
    steps.end(t);
    steps.detail("half the shards of every chunk are gone, data and parity alike");

    // 7. Rebuild.
    let rebuilt = work.path().join("rebuilt.bin");
    let t = steps.begin("Rebuild the file from node-1 and node-3 alone");
    let rebuild = rebuild_file(&capability_text, &stores, &rebuilt)?;
    let rebuilding = t.elapsed();
    steps.end(t);
    steps.detail(format!(
        "{} chunks: {} rebuilt from parity with Reed-Solomon, every shard checked against its id",
        rebuild.chunks, rebuild.decoded
    ));
    steps.detail(format!("{} of file data", rate(seal.plain, rebuilding)));

    // 8. Check.
    let t = steps.begin("Compare the rebuilt file with the original");
    let (a, b) = (hash_file(&original)?, hash_file(&rebuilt)?);
    let identical = a == b && files_equal(&original, &rebuilt)?;
    steps.end(t);
    steps.detail(format!("BLAKE3 original {}…", &a.to_string()[..16]));
    steps.detail(format!("BLAKE3 rebuilt  {}…", &b.to_string()[..16]));
    if !identical {
        bail!("the rebuilt file differs from the original");
    }
    steps.detail(format!("{} bytes, identical bit for bit", seal.plain));

    println!();
    if args.keep {
        let kept = work.keep();
        println!(
            "Done in {}. Kept {}.",
            duration(all.elapsed()),
            kept.display()
        );
    } else {
        let path = work.path().to_owned();
        work.close()
            .with_context(|| format!("cannot remove {}", path.display()))?;
        println!(
            "Done in {}. Removed {}.",
            duration(all.elapsed()),
            path.display()
        );
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

/// What sealing the file produced.
struct Sealed {
    manifest: cairn_core::Manifest,
    chunks: usize,
    compressed: usize,
    plain: u64,
    sealed: u64,
    shards: usize,
    shard_bytes: u64,
}

/// Seals the file at `path` and puts shard i of every chunk in store i.
fn seal_file(
    path: &Path,
    keys: &UserKeys,
    redundancy: Redundancy,
    stores: &[Option<Store>],
) -> Result<Sealed> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut sealer = FileSealer::new(file, &keys.master.convergence_key(), redundancy);
    let (mut chunks, mut compressed, mut sealed, mut shards, mut shard_bytes) = (0, 0, 0, 0, 0);
    for stripe in sealer.by_ref() {
        let stripe = stripe?;
        chunks += 1;
        let blob = u64::from(stripe.chunk.stripe.blob_len);
        sealed += blob;
        if blob < u64::from(stripe.chunk.len) {
            compressed += 1;
        }
        for (shard, store) in stripe.shards.iter().zip(stores) {
            let store = store.as_ref().expect("all stores are up");
            store
                .put(USER, &shard.id, &shard.bytes, None)
                .with_context(|| format!("cannot store shard {}", shard.id))?;
            shards += 1;
            shard_bytes += shard.bytes.len() as u64;
        }
    }
    let manifest = sealer.finish()?;
    Ok(Sealed {
        plain: manifest.size,
        manifest,
        chunks,
        compressed,
        sealed,
        shards,
        shard_bytes,
    })
}

/// What rebuilding the file took.
struct Rebuilt {
    chunks: usize,
    decoded: usize,
}

/// Shard `id` from store `index`, if the store is there and the shard
/// reads back intact.
fn fetch(stores: &[Option<Store>], index: usize, id: &Id) -> Option<Vec<u8>> {
    let store = stores.get(index)?.as_ref()?;
    match store.get(id) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            eprintln!("      warning: node-{}: {e}", index + 1);
            None
        }
    }
}

/// Every shard of `stripe` that the remaining stores give back intact.
fn fetch_stripe(stores: &[Option<Store>], stripe: &StripeRef) -> Vec<Option<Vec<u8>>> {
    stripe
        .shards
        .iter()
        .enumerate()
        .map(|(index, id)| fetch(stores, index, id))
        .collect()
}

/// Rebuilds the file a capability names from whatever stores remain, into
/// a temporary file renamed to `out` once its hash checks out.
fn rebuild_file(capability: &str, stores: &[Option<Store>], out: &Path) -> Result<Rebuilt> {
    let capability: Capability = capability.parse()?;
    let manifest = open_manifest(&capability, &fetch_stripe(stores, &capability.manifest))?;

    let partial = out.with_extension("partial");
    let writer = BufWriter::with_capacity(MIB as usize, File::create(&partial)?);
    let mut opener = FileOpener::new(manifest, writer);
    let (mut chunks, mut decoded) = (0, 0);
    while let Some((_, chunk)) = opener.next_chunk() {
        let shards = fetch_stripe(stores, &chunk.stripe);
        if shards[..chunk.stripe.redundancy.data()]
            .iter()
            .any(Option::is_none)
        {
            decoded += 1;
        }
        opener.write_chunk(&shards)?;
        chunks += 1;
    }
    let writer = opener.finish()?;
    writer
        .into_inner()
        .map_err(io::IntoInnerError::into_error)?
        .sync_all()?;
    fs::rename(&partial, out)?;
    Ok(Rebuilt { chunks, decoded })
}

fn hash_file(path: &Path) -> Result<Id> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(File::open(path)?)?;
    Ok(hasher.finalize().into())
}

/// Compares two files byte by byte.
fn files_equal(a: &Path, b: &Path) -> Result<bool> {
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
        assert!(files_equal(&a, &b).unwrap());
        let mut changed = vec![1u8; 3 * MIB as usize + 5];
        changed[2 * MIB as usize + 1] = 2;
        fs::write(&b, &changed).unwrap();
        assert!(!files_equal(&a, &b).unwrap());
        fs::write(&b, vec![1u8; 3 * MIB as usize]).unwrap();
        assert!(!files_equal(&a, &b).unwrap());
    }
}
