//! The harness of cairn's tests against real nodes: node processes on
//! loopback ([`node`]), a cluster of them with library clients
//! ([`cluster`]), a node served inside the test's own process
//! ([`in_process`]), raw protocol connections ([`raw`]) and damage to
//! shards on a node's disk, in either store layout ([`damage`]).
//!
//! Nothing here ships: the `cairn` binary does not link it (the fault
//! proxies that `cairn bench --faults` uses are their own crate,
//! `cairn-faults`). Test data that needs nothing of cairn (boundary sizes,
//! seeded bytes) lives in the `testdata` crate, re-exported here, so that
//! the lowest crates' tests do not build a node.

pub mod cluster;
pub mod damage;
pub mod in_process;
pub mod node;
pub mod raw;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub use testdata::*;

/// The `cairn` binary that node processes run, built from this checkout.
///
/// `$CAIRN_BIN` when set (a binary built elsewhere, e.g. a release build).
/// Otherwise the first call in a test process runs `cargo build -p cairn-cli
/// --bin cairn` in the profile and target directory of the running test
/// (a no-op when it is up to date, as it is under `cargo test --workspace`,
/// which builds it anyway), so that a test never runs against a stale
/// binary, whichever crate's tests started it. Cargo releases its lock on
/// the target directory before it runs tests, so the nested build does not
/// wait for the outer one.
///
/// # Panics
///
/// If the build fails: the tests cannot run without their nodes.
pub fn cairn_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("CAIRN_BIN") {
            return PathBuf::from(bin);
        }
        // A test executable lives in <target>/<profile>/deps/.
        let exe = std::env::current_exe().expect("the test executable's path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("a test executable in <target>/<profile>/deps");
        let target_dir = profile_dir.parent().expect("a profile directory");
        let profile = profile_dir.file_name().and_then(|p| p.to_str());
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args(["build", "--quiet", "-p", "cairn-cli", "--bin", "cairn"])
            .arg("--target-dir")
            .arg(target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        match profile {
            Some("debug") => {}
            Some("release") => {
                build.arg("--release");
            }
            Some(other) => {
                build.args(["--profile", other]);
            }
            None => panic!("cannot tell the build profile from {}", exe.display()),
        }
        let status = build
            .status()
            .expect("cargo runs, to build the cairn binary");
        assert!(status.success(), "building the cairn binary failed");
        profile_dir.join(format!("cairn{}", std::env::consts::EXE_SUFFIX))
    })
}
