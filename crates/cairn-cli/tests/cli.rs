//! The `cairn` binary, run as a user runs it: help, version, usage errors
//! and the demo.

use std::path::Path;
use std::process::{Command, Output};

fn cairn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(args)
        .output()
        .expect("the cairn binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn help_explains_the_tool() {
    let out = cairn(&["--help"]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(
        text.contains("distributed, content-addressed file store"),
        "{text}"
    );
    assert!(text.contains("demo"), "{text}");
    let demo = stdout(&cairn(&["demo", "--help"]));
    assert!(demo.contains("--size-mib"), "{demo}");
}

#[test]
fn version_names_the_release() {
    let out = cairn(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        stdout(&out).trim(),
        format!("cairn {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn bad_usage_exits_2_with_a_message() {
    let out = cairn(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unrecognized subcommand"));
    let out = cairn(&["demo", "--size-mib", "0"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn demo_runs_a_cluster_loses_two_nodes_and_cleans_up() {
    let out = cairn(&["demo", "--size-mib", "8"]);
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in 1..=10 {
        assert!(text.contains(&format!("[{step:>2}/10]")), "{text}");
    }
    for transport in ["https://", "tcp://", "quic://"] {
        assert!(text.contains(transport), "{text}");
    }
    assert!(text.contains("identical bit for bit"), "{text}");
    assert_eq!(
        text.matches(" ok (0 shards missing, 0 corrupt)").count(),
        4,
        "{text}"
    );
    let removed = text
        .lines()
        .find_map(|line| {
            line.split_once("removed ")
                .map(|(_, p)| p.trim_end_matches('.'))
        })
        .expect("the demo says what it removed");
    assert!(!Path::new(removed).exists(), "{removed} was left behind");
    // No node of the demo is left running.
    let ps = std::process::Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&ps.stdout).contains(removed),
        "a node of the demo is still running"
    );
}

#[test]
fn bench_vs_restic_is_explained_and_says_so_when_restic_is_missing() {
    let help = stdout(&cairn(&["bench", "--help"]));
    assert!(help.contains("--vs-restic"), "{help}");
    // No restic on an empty PATH: the bench refuses at once, before it
    // starts any node or writes any file.
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["bench", "--vs-restic", "--size-mib", "1", "--files", "1"])
        .arg("--dir")
        .arg(empty.path())
        .env("PATH", empty.path())
        .output()
        .expect("the cairn binary runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("restic") && err.contains("not installed"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0);
    let both = cairn(&["bench", "--vs-restic", "--faults"]);
    assert_eq!(both.status.code(), Some(2));
}
