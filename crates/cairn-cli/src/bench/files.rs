//! The files the benchmarks store: incompressible, drawn from a seed, and
//! compared by hash.

use std::path::Path;

use anyhow::Result;
use cairn_core::Id;

/// Writes `len` incompressible bytes to `path`.
pub fn write_random(path: &Path, len: u64) -> Result<()> {
    write_seeded(path, len, "cairn bench file")
}

pub fn file_hash(path: &Path) -> Result<Id> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(std::fs::File::open(path)?)?;
    Ok(hasher.finalize().into())
}

/// Writes `len` incompressible bytes drawn from `seed` to `path`.
pub fn write_seeded(path: &Path, len: u64, seed: &str) -> Result<()> {
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
