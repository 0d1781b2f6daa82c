//! Writes the seed corpora: `seeds DIR` creates `DIR/<target>/seed-<n>`
//! for every target (scripts/fuzz.sh runs it).

// Built with the targets' instrumentation, whose hooks libFuzzer defines.
use libfuzzer_sys as _;

fn main() -> std::io::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map(std::path::PathBuf::from)
        .expect("usage: seeds DIR");
    for (target, seeds) in cairn_fuzz::seeds::all() {
        let target_dir = dir.join(target);
        std::fs::create_dir_all(&target_dir)?;
        for (n, seed) in seeds.iter().enumerate() {
            std::fs::write(target_dir.join(format!("seed-{n}")), seed)?;
        }
    }
    Ok(())
}
