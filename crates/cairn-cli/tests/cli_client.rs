//! The client commands as a user types them: `cairn init/put/get/ls/rm/
//! stat/verify/share` run as processes against real `cairn node run`
//! processes on 127.0.0.1.
//!
//! Each test has its own nodes and its own "shell": a temporary HOME (so
//! the config lands in ~/.config/cairn/config.toml), no standard input, and
//! the passphrase in $CAIRN_PASSPHRASE or a file. They guard the
//! command-line contract of issue 4: argument forms, exit statuses (0, 1,
//! 2), what goes to stdout, and that --json parses.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use cairn_client::ClientConfig;
use cairn_store::{Id, ShardPlace};
use cairn_testing::node::NodeProcess;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_cairn");
const PASSPHRASE: &str = "correct horse battery staple";

/// Nodes of the given schemes, each with users alice and bob, running.
fn nodes(dir: &Path, schemes: &[&str]) -> Vec<NodeProcess> {
    schemes
        .iter()
        .enumerate()
        .map(|(i, scheme)| {
            let mut node =
                NodeProcess::init(BIN.as_ref(), &dir.join(format!("node-{i}")), &[scheme]);
            node.add_user("alice", PASSPHRASE, None);
            node.add_user("bob", PASSPHRASE, None);
            node.start();
            node
        })
        .collect()
}

/// Whether any file under `dir` holds `needle`.
fn tree_contains(dir: &Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().any(|entry| {
        let path = entry.unwrap().path();
        if path.is_dir() {
            tree_contains(&path, needle)
        } else {
            let bytes = std::fs::read(&path).unwrap_or_default();
            bytes.windows(needle.len()).any(|w| w == needle)
        }
    })
}

/// The ids of the shards on `node`'s disk, in either layout.
fn shard_ids(node: &NodeProcess) -> Vec<Id> {
    node.shards().into_iter().map(|(id, _)| id).collect()
}

fn addresses(nodes: &[NodeProcess]) -> Vec<String> {
    nodes.iter().map(|n| n.addresses[0].clone()).collect()
}

/// A user's shell: a HOME of their own, and how they give the passphrase.
struct Shell {
    home: PathBuf,
    env: Vec<(&'static str, String)>,
}

impl Shell {
    fn new(root: &Path, name: &str) -> Self {
        let home = root.join(name);
        std::fs::create_dir_all(&home).unwrap();
        Self {
            home,
            env: Vec::new(),
        }
    }

    /// A shell with $CAIRN_PASSPHRASE set.
    fn with_passphrase(root: &Path, name: &str, passphrase: &str) -> Self {
        let mut shell = Self::new(root, name);
        shell.env.push(("CAIRN_PASSPHRASE", passphrase.to_owned()));
        shell
    }

    fn config_path(&self) -> PathBuf {
        self.home.join(".config/cairn/config.toml")
    }

    fn cairn(&self, args: &[&str]) -> Output {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .current_dir(&self.home)
            .env("HOME", &self.home)
            .env_remove("CAIRN_PASSPHRASE")
            .env_remove("CAIRN_CONFIG")
            .env_remove("RUST_LOG")
            .env_remove("CAIRN_DIRECT_IO")
            .stdin(Stdio::null());
        for (key, value) in &self.env {
            command.env(key, value);
        }
        command.output().expect("the cairn binary runs")
    }

    /// Runs `cairn args…` and expects success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.cairn(args);
        assert!(
            out.status.success(),
            "cairn {args:?} failed ({:?}):\n{}{}",
            out.status.code(),
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    /// Runs `cairn args…` and expects exit status `code`; returns stderr.
    fn fails(&self, code: i32, args: &[&str]) -> String {
        let out = self.cairn(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "cairn {args:?}:\n{}{}",
            stdout(&out),
            stderr(&out)
        );
        stderr(&out)
    }

    fn json(&self, args: &[&str]) -> Value {
        let text = self.ok(args);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("cairn {args:?}: {e}:\n{text}"))
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.home.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.home.join(name)).unwrap()
    }

    /// `cairn init --user USER --server A --server B …` plus `extra`.
    fn init(&self, user: &str, servers: &[String], extra: &[&str]) -> String {
        self.ok(&init_args(user, servers, extra))
    }
}

fn init_args<'a>(user: &'a str, servers: &'a [String], extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["init", "--user", user];
    for server in servers {
        args.extend(["--server", server.as_str()]);
    }
    args.extend(extra);
    args
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn config(shell: &Shell) -> ClientConfig {
    ClientConfig::parse(&std::fs::read_to_string(shell.config_path()).unwrap()).unwrap()
}

#[test]
fn init_pins_servers_refuses_unpinned_ones_and_trusts_on_first_use_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = nodes(dir.path(), &["tcp", "quic"]);
    let pinned = addresses(&nodes);
    let shell = Shell::with_passphrase(dir.path(), "alice", PASSPHRASE);

    // Pinned addresses: written as given, every field commented, logins
    // checked.
    let out = shell.init("alice", &pinned, &["--data", "1", "--total", "2"]);
    let written = config(&shell);
    assert_eq!(written.user, "alice");
    let servers: Vec<String> = written.servers.iter().map(ToString::to_string).collect();
    assert_eq!(servers, pinned);
    assert_eq!((written.data, written.total), (Some(1), Some(2)));
    let text = std::fs::read_to_string(shell.config_path()).unwrap();
    assert!(text.contains("# n: shards per chunk"), "{text}");
    for server in &pinned {
        let url = server.split_once('#').unwrap().0;
        assert!(out.contains(&format!("{url} accepts alice")), "{out}");
    }

    // An existing config is kept without --force.
    let err = shell.fails(1, &init_args("bob", &pinned, &[]));
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(config(&shell).user, "alice");

    // A URL without #NODE_ID is bad usage, and nothing is written.
    let bare: Vec<String> = pinned
        .iter()
        .map(|a| a.split_once('#').unwrap().0.to_owned())
        .collect();
    let other = dir.path().join("other.toml");
    let other = other.to_str().unwrap();
    let err = shell.fails(2, &init_args("alice", &bare, &["--config", other]));
    assert!(
        err.contains("#NODE_ID") && err.contains("--trust-on-first-use"),
        "{err}"
    );
    assert!(!Path::new(other).exists());

    // With --trust-on-first-use the ids the nodes show are recorded and
    // printed.
    let out = shell.init(
        "alice",
        &bare,
        &["--config", other, "--trust-on-first-use", "--json"],
    );
    let json: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let trusted: Vec<&str> = json["trusted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        trusted,
        pinned.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(
        json["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["login"] == "accepted")
    );
    let recorded = ClientConfig::parse(&std::fs::read_to_string(other).unwrap()).unwrap();
    for (server, node) in recorded.servers.iter().zip(&nodes) {
        assert_eq!(server.node_id.unwrap().to_string(), node.node_id());
    }

    // --force replaces; a down node is a warning, not a failure.
    let mut nodes = nodes;
    nodes[1].kill();
    let out = shell.cairn(&init_args("bob", &pinned, &["--force"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot reach"), "{}", stderr(&out));
    assert_eq!(config(&shell).user, "bob");
}

#[test]
fn files_go_in_and_come_back_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = nodes(dir.path(), &["https", "tcp", "tcp", "quic"]);
    let servers = addresses(&nodes);
    let alice = Shell::with_passphrase(dir.path(), "alice", PASSPHRASE);
    alice.init("alice", &servers, &[]);

    let data = cairn_testing::seeded_bytes(7, 1024 * 1024 + 1);
    alice.write("src/report.bin", &data);
    let out = alice.ok(&["put", "src/report.bin", "docs/report.bin"]);
    assert_eq!(
        out.trim(),
        "stored docs/report.bin (1.0 MiB, 2-of-4, on 4 nodes)"
    );
    // REMOTE defaults to the file name; --json describes the put.
    alice.write("empty", b"");
    let put = alice.json(&["put", "--json", "empty"]);
    assert_eq!(put["path"], "empty");
    assert_eq!(put["size"], 0);
    assert_eq!(put["redundancy"], "2-of-4");
    assert_eq!(put["health"], "ok");
    assert_eq!(put["inline"], true);
    assert_eq!(put["chunks"], 0);
    // A small file says where it went: into its index entry, on every node.
    alice.write("note.txt", b"a short note");
    assert_eq!(
        alice.ok(&["put", "note.txt"]).trim(),
        "stored note.txt (12 B, inline, on 4 nodes)"
    );
    let stat = alice.ok(&["stat", "note.txt"]);
    assert!(
        stat.contains("stored      inline") && stat.contains("health      ok"),
        "{stat}"
    );
    assert_eq!(alice.json(&["stat", "--json", "note.txt"])["inline"], true);
    alice.ok(&["rm", "note.txt"]);

    // ls (a folder: its files and folders), ls -r, ls -l, ls --json.
    assert_eq!(alice.ok(&["ls"]), "docs/\nempty\n");
    assert_eq!(alice.ok(&["ls", "-r"]), "docs/report.bin\nempty\n");
    assert_eq!(alice.ok(&["ls", "docs"]), "docs/report.bin\n");
    assert_eq!(alice.ok(&["ls", "/docs/"]), "docs/report.bin\n");
    assert_eq!(alice.ok(&["ls", "docs/report.bin"]), "docs/report.bin\n");
    let err = alice.fails(1, &["ls", "doc"]);
    assert!(err.contains("no file or folder doc"), "{err}");
    let root = alice.json(&["--json", "ls"]);
    assert_eq!(root[0]["path"], "docs");
    assert_eq!(root[0]["type"], "folder");
    assert_eq!(root[1]["type"], "file");
    let long = alice.ok(&["ls", "-l", "docs"]);
    assert!(
        long.contains("1.0 MiB") && long.contains(" ok ") && long.contains("docs/report.bin"),
        "{long}"
    );
    let listed = alice.json(&["--json", "ls", "-l", "-r"]);
    assert_eq!(listed[0]["path"], "docs/report.bin");
    assert_eq!(listed[0]["size"], data.len());
    assert_eq!(listed[0]["health"], "ok");

    // stat.
    let stat = alice.ok(&["stat", "docs/report.bin"]);
    assert!(
        stat.contains("2-of-4") && stat.contains("health      ok"),
        "{stat}"
    );
    let stat = alice.json(&["stat", "docs/report.bin", "--json"]);
    assert_eq!(
        (stat["data"].as_u64(), stat["total"].as_u64()),
        (Some(2), Some(4))
    );
    let per_node = stat["shards_per_node"].as_array().unwrap();
    assert_eq!(per_node.len(), 4);
    assert!(per_node.iter().all(|n| n["shards"].as_u64() >= Some(1)));

    // get: LOCAL defaults to the base name; no overwrite without --force.
    alice.ok(&["get", "docs/report.bin"]);
    assert_eq!(alice.read("report.bin"), data);
    let err = alice.fails(1, &["get", "docs/report.bin", "report.bin"]);
    assert!(err.contains("exists") && err.contains("--force"), "{err}");
    alice.write("report.bin", b"something else");
    alice.ok(&["get", "-q", "docs/report.bin", "report.bin", "--force"]);
    assert_eq!(alice.read("report.bin"), data);
    let got = alice.json(&["get", "--json", "docs/report.bin", "copy.bin"]);
    assert_eq!(got["size"], data.len());
    assert_eq!(alice.read("copy.bin"), data);
    // A file of a MiB and more is written with direct I/O, unless
    // CAIRN_DIRECT_IO=0 says not to (both give the same bytes).
    #[cfg(target_os = "linux")]
    assert_eq!(got["direct_io"], true, "{got}");
    let mut buffered = Command::new(BIN);
    buffered
        .args(["get", "--json", "docs/report.bin", "buffered.bin"])
        .current_dir(&alice.home)
        .env("HOME", &alice.home)
        .env("CAIRN_PASSPHRASE", PASSPHRASE)
        .env("CAIRN_DIRECT_IO", "0")
        .stdin(Stdio::null());
    let buffered = buffered.output().unwrap();
    assert!(buffered.status.success(), "{}", stderr(&buffered));
    let got: Value = serde_json::from_slice(&buffered.stdout).unwrap();
    assert_eq!(got["direct_io"], false, "{got}");
    assert_eq!(alice.read("buffered.bin"), data);

    // Standard input and output stand in for files with -.
    let mut put = Command::new(BIN)
        .args(["put", "-", "piped/stdin.bin"])
        .current_dir(&alice.home)
        .env("HOME", &alice.home)
        .env("CAIRN_PASSPHRASE", PASSPHRASE)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut put.stdin.take().unwrap(), &data[..300_000]).unwrap();
    let put = put.wait_with_output().unwrap();
    assert!(put.status.success(), "{}", stderr(&put));
    assert_eq!(
        stdout(&put).trim(),
        "stored piped/stdin.bin (293.0 KiB, 2-of-4, on 4 nodes)"
    );
    let piped = alice.cairn(&["get", "piped/stdin.bin", "-"]);
    assert!(piped.status.success(), "{}", stderr(&piped));
    assert_eq!(piped.stdout, &data[..300_000]);
    alice.ok(&["rm", "-q", "piped/stdin.bin"]);

    // share prints the capability alone; another user, with no config and
    // no account, fetches it with --cap.
    let capability = alice.ok(&["share", "docs/report.bin"]);
    assert_eq!(capability.lines().count(), 1);
    assert!(capability.starts_with("cairn:"), "{capability}");
    let stranger = Shell::new(dir.path(), "stranger");
    let mut args = vec!["get", "--cap", capability.trim(), "shared.bin"];
    for server in &servers[..2] {
        args.extend(["--server", server.as_str()]);
    }
    stranger.ok(&args);
    assert_eq!(stranger.read("shared.bin"), data);
    assert!(!stranger.config_path().exists());
    // Bob's shell has a config (and so the servers) but not alice's files.
    let bob = Shell::with_passphrase(dir.path(), "bob", PASSPHRASE);
    bob.init("bob", &servers, &[]);
    assert_eq!(bob.ok(&["ls"]), "");
    bob.ok(&["get", "--cap", capability.trim(), "from-alice.bin"]);
    assert_eq!(bob.read("from-alice.bin"), data);

    // The passphrase from a file instead of the environment.
    let mut by_file = Shell::new(dir.path(), "alice-file");
    std::fs::create_dir_all(by_file.config_path().parent().unwrap()).unwrap();
    std::fs::copy(alice.config_path(), by_file.config_path()).unwrap();
    let secret = by_file.write("secret", format!("{PASSPHRASE}\n").as_bytes());
    let secret = secret.to_str().unwrap().to_owned();
    assert_eq!(
        by_file.ok(&["ls", "-r", "--passphrase-file", &secret]),
        "docs/report.bin\nempty\n"
    );
    by_file.write("note.txt", b"written with the passphrase from a file");
    by_file.ok(&["--passphrase-file", &secret, "put", "note.txt", "notes/"]);
    by_file.ok(&[
        "get",
        "--passphrase-file",
        &secret,
        "notes/note.txt",
        "back.txt",
    ]);
    assert_eq!(
        by_file.read("back.txt"),
        b"written with the passphrase from a file"
    );
    by_file.ok(&["rm", "--passphrase-file", &secret, "notes/note.txt"]);
    // No passphrase at all, and no terminal to ask on: a clear error.
    let err = by_file.fails(1, &["ls"]);
    assert!(
        err.contains("CAIRN_PASSPHRASE") && err.contains("--passphrase-file"),
        "{err}"
    );
    // A wrong passphrase is named as such.
    by_file
        .env
        .push(("CAIRN_PASSPHRASE", "not the passphrase".into()));
    let err = by_file.fails(1, &["ls"]);
    assert!(err.contains("wrong passphrase for alice"), "{err}");

    // rm, then the file is gone for ls and get.
    let removed = alice.json(&["rm", "--json", "docs/report.bin"]);
    assert_eq!(removed["path"], "docs/report.bin");
    // The folder stays, empty, as rm of a local file leaves its folder.
    assert_eq!(alice.ok(&["ls", "-r"]), "empty\n");
    assert_eq!(alice.ok(&["ls", "docs"]), "");
    let err = alice.fails(1, &["get", "docs/report.bin", "again.bin"]);
    assert!(err.contains("no file docs/report.bin"), "{err}");
    let err = alice.fails(1, &["rm", "docs/report.bin"]);
    assert!(err.contains("no file docs/report.bin"), "{err}");
}

#[test]
fn put_r_stores_a_tree_and_verify_names_a_file_missing_a_shard() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = nodes(dir.path(), &["tcp", "tcp", "quic"]);
    let alice = Shell::with_passphrase(dir.path(), "alice", PASSPHRASE);
    alice.init("alice", &addresses(&nodes), &[]);

    alice.write("tree/a.txt", b"alpha");
    alice.write("tree/sub/b.txt", b"beta");
    alice.write(
        "tree/sub/deeper/c.txt",
        &cairn_testing::seeded_bytes(3, 300_000),
    );
    std::os::unix::fs::symlink("a.txt", alice.home.join("tree/link")).unwrap();
    let out = alice.cairn(&["put", "-r", "tree"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for path in ["tree/a.txt", "tree/sub/b.txt", "tree/sub/deeper/c.txt"] {
        assert!(text.contains(&format!("stored {path} (")), "{text}");
    }
    assert!(
        stderr(&out).contains("skipping the symbolic link"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        alice.ok(&["ls", "-r", "tree/sub"]),
        "tree/sub/b.txt\ntree/sub/deeper/c.txt\n"
    );
    assert_eq!(
        alice.ok(&["ls", "tree/sub"]),
        "tree/sub/b.txt\ntree/sub/deeper/\n"
    );
    // Empty folders are kept; odd names (spaces, Unicode, names that differ
    // only by case) come back as they were.
    std::fs::create_dir_all(alice.home.join("odd/empty/deeper")).unwrap();
    alice.write("odd/with space/été ü.txt", b"unicode");
    alice.write("odd/Case.txt", b"upper");
    alice.write("odd/case.txt", b"lower");
    let out = alice.cairn(&["put", "-r", "odd"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        alice.ok(&["ls", "odd"]),
        "odd/Case.txt\nodd/case.txt\nodd/empty/\nodd/with space/\n"
    );
    assert_eq!(alice.ok(&["ls", "odd/empty"]), "odd/empty/deeper/\n");
    assert_eq!(alice.ok(&["ls", "odd/empty/deeper"]), "");
    assert_eq!(
        alice.ok(&["ls", "-r", "odd"]),
        "odd/Case.txt\nodd/case.txt\nodd/with space/été ü.txt\n"
    );
    alice.ok(&["get", "odd/with space/été ü.txt", "back.txt"]);
    assert_eq!(alice.read("back.txt"), b"unicode");
    alice.ok(&["get", "odd/case.txt", "lower.txt"]);
    assert_eq!(alice.read("lower.txt"), b"lower");
    let walked = alice.json(&["--json", "ls", "-r", "odd"]);
    assert_eq!(walked.as_array().unwrap().len(), 3);
    // No node learns a name: not of a file, not of a folder.
    for node in &nodes {
        for name in ["with space", "Case.txt", "été ü", "tree/sub", "odd/empty"] {
            assert!(
                !tree_contains(node.dir(), name.as_bytes()),
                "{name:?} is readable in {}",
                node.dir().display()
            );
        }
    }
    // Under another prefix, as JSON.
    let put = alice.json(&["put", "-r", "tree/sub", "backup/", "--json"]);
    assert_eq!(put["stored"].as_array().unwrap().len(), 2);
    assert_eq!(put["failed"].as_array().unwrap().len(), 0);
    assert_eq!(
        alice.ok(&["ls", "-r", "backup"]),
        "backup/b.txt\nbackup/deeper/c.txt\n"
    );
    let err = alice.fails(1, &["put", "tree"]);
    assert!(err.contains("pass -r"), "{err}");

    // Everything verifies; then one shard of d.bin goes missing.
    let verified = alice.json(&["verify", "--json"]);
    assert_eq!(verified["ok"], 8);
    let before = shard_ids(&nodes[0]);
    alice.write("d.bin", &cairn_testing::seeded_bytes(4, 200_000));
    alice.ok(&["put", "d.bin"]);
    let new: Vec<(Id, ShardPlace)> = nodes[0]
        .shards()
        .into_iter()
        .filter(|(id, _)| !before.contains(id))
        .collect();
    assert!(!new.is_empty(), "node 0 got none of d.bin's shards");
    cairn_testing::damage::remove(&new[0].1);

    let out = alice.cairn(&["verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("degraded  d.bin"), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("ok        tree/a.txt"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("1 of 9 files not ok: d.bin (degraded)"),
        "{}",
        stderr(&out)
    );
    // One file at a time: only d.bin fails.
    alice.ok(&["verify", "tree/a.txt"]);
    let out = alice.cairn(&["verify", "-q", "d.bin"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "degraded  d.bin (1 shard missing)\n");
    assert!(
        stderr(&out).contains("d.bin (degraded)"),
        "{}",
        stderr(&out)
    );

    // Repair puts the shard back; a second run has nothing to do.
    let out = alice.cairn(&["repair", "--all"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("ok        d.bin: 1 shard rebuilt on 1 chunk"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("checked 9 files: 1 repaired, 0 not ok"),
        "{}",
        stdout(&out)
    );
    let back = nodes[0].shard_place(&new[0].0).expect("back on node 0");
    assert_eq!(Id::of(&cairn_testing::damage::read(&back)), new[0].0);
    alice.ok(&["verify", "d.bin"]);
    let again = alice.json(&["repair", "d.bin", "--json"]);
    assert_eq!(again["repaired"], 0, "{again}");
    assert_eq!(again["files"][0]["shards_written"], 0, "{again}");
    assert_eq!(again["files"][0]["after"], "ok", "{again}");

    // A file with every shard gone (its manifest too) cannot be repaired:
    // it is counted among the files checked, named, and `--json` still
    // prints one JSON document and nothing else.
    let before: Vec<Vec<Id>> = nodes.iter().map(shard_ids).collect();
    alice.write("e.bin", &cairn_testing::seeded_bytes(5, 200_000));
    alice.ok(&["put", "e.bin"]);
    for (node, before) in nodes.iter().zip(&before) {
        for (id, place) in node.shards() {
            if !before.contains(&id) {
                cairn_testing::damage::remove(&place);
            }
        }
    }
    let out = alice.cairn(&["repair", "--all", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let document: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: stdout is not one JSON document: {}", stdout(&out)));
    assert!(
        document["not_ok"].to_string().contains("e.bin"),
        "{document}"
    );
    let out = alice.cairn(&["repair", "--all"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("e.bin"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("1 of 10 files still not ok: e.bin"),
        "{}",
        stderr(&out)
    );
}

/// A "virus scanner" that refuses any file containing the word EICAR.
const SCANNER: &str = r#"scan_command = ["sh", "-c", "if grep -q EICAR \"$1\"; then echo \"$1: Eicar FOUND\"; exit 1; fi", "scan"]"#;

#[test]
fn scan_command_blocks_a_put_and_keeps_a_refused_get_out_of_place() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = nodes(dir.path(), &["tcp", "tcp", "quic"]);
    let alice = Shell::with_passphrase(dir.path(), "alice", PASSPHRASE);
    alice.init("alice", &addresses(&nodes), &[]);
    // Stored before the scan was configured.
    alice.write("old.txt", b"an EICAR test string");
    alice.ok(&["put", "old.txt"]);

    let mut config = std::fs::read_to_string(alice.config_path()).unwrap();
    config.push_str(SCANNER);
    config.push('\n');
    std::fs::write(alice.config_path(), config).unwrap();

    alice.write("clean.txt", b"nothing to see");
    alice.ok(&["put", "clean.txt"]);
    alice.write("bad.txt", b"X5O!P%@AP EICAR-STANDARD-ANTIVIRUS-TEST-FILE");
    let err = alice.fails(1, &["put", "bad.txt"]);
    assert!(err.contains("not stored"), "{err}");
    assert!(err.contains("Eicar FOUND"), "{err}");
    assert_eq!(alice.ok(&["ls"]), "clean.txt\nold.txt\n");
    // A stream cannot be scanned: refused, not let through.
    let err = alice.fails(1, &["put", "-", "stdin.txt"]);
    assert!(err.contains("needs a file"), "{err}");

    alice.ok(&["get", "clean.txt", "clean-copy.txt"]);
    assert_eq!(alice.read("clean-copy.txt"), b"nothing to see");
    let err = alice.fails(1, &["get", "old.txt", "old-copy.txt"]);
    assert!(err.contains("Eicar FOUND"), "{err}");
    assert!(err.contains("old-copy.txt.cairn-blocked"), "{err}");
    assert!(!alice.home.join("old-copy.txt").exists());
    assert_eq!(
        alice.read("old-copy.txt.cairn-blocked"),
        b"an EICAR test string"
    );
    // By capability too, with the servers on the command line.
    let capability = alice.ok(&["share", "old.txt"]);
    let server = addresses(&nodes)[0].clone();
    let err = alice.fails(
        1,
        &[
            "get",
            "--cap",
            capability.trim(),
            "cap-copy.txt",
            "--server",
            &server,
        ],
    );
    assert!(err.contains("Eicar FOUND"), "{err}");
    assert!(!alice.home.join("cap-copy.txt").exists());
}

#[test]
fn bad_usage_exits_2_and_every_command_explains_itself() {
    let dir = tempfile::tempdir().unwrap();
    let shell = Shell::new(dir.path(), "user");
    let id = "0".repeat(64);
    let server = format!("tcp://127.0.0.1:9#{id}");
    for args in [
        vec!["put"],
        vec!["get"],
        vec!["get", "--cap", "not-a-capability", "out"],
        vec!["get", "--server", server.as_str(), "remote"],
        vec!["init", "--user", "alice"],
        vec!["init", "--user", "alice", "--server", "ftp://host:1"],
        vec![
            "init", "--user", "alice", "--server", &server, "--data", "2", "--total", "3",
        ],
        vec!["ls", "--frobnicate"],
        vec!["stat", "a//b"],
        vec!["put", "file", "a/../b"],
        vec!["repair"],
        vec!["repair", "d.bin", "--all"],
    ] {
        let err = shell.fails(2, &args);
        assert!(err.contains("error"), "{args:?}: {err}");
    }
    assert!(!shell.config_path().exists());
    for command in [
        "init", "put", "get", "ls", "rm", "stat", "verify", "repair", "share",
    ] {
        let help = shell.ok(&[command, "--help"]);
        assert!(help.contains("Usage: cairn"), "{command}: {help}");
        assert!(help.contains("--config"), "{command}: {help}");
    }
    // No config: a failure that says how to make one.
    let err = shell.fails(1, &["ls"]);
    assert!(err.contains("cairn init"), "{err}");
}
