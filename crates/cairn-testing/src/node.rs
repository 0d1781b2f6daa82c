//! Real `cairn node` processes on 127.0.0.1, for black-box tests.
//!
//! A [`NodeProcess`] is a node directory made by `cairn node init` on free
//! ports, and the `cairn node run` process serving it, which a test can
//! start, stop gracefully (SIGTERM), kill (SIGKILL) and start again. Each
//! process logs at debug level to `<dir>/node.log`, which a failing test
//! prints.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A node directory and, while it runs, its process.
#[derive(Debug)]
pub struct NodeProcess {
    bin: PathBuf,
    dir: PathBuf,
    /// The addresses `cairn node init` printed, `URL#NODE_ID`.
    pub addresses: Vec<String>,
    child: Option<Child>,
}

/// A free port on 127.0.0.1 for `scheme` (UDP for quic, TCP otherwise).
///
/// The port is free when this returns; another process could take it
/// before the node binds it, which on a test machine's loopback does not
/// happen in practice.
pub fn free_port(scheme: &str) -> u16 {
    if scheme == "quic" {
        UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("a free UDP port")
            .port()
    } else {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("a free TCP port")
            .port()
    }
}

impl NodeProcess {
    /// Runs `cairn node init` in `dir` with one listener per scheme
    /// (`"tcp"`, `"https"`, `"quic"`) on free ports.
    ///
    /// # Panics
    /// If the command fails: a test cannot go on without its node.
    pub fn init(bin: &Path, dir: &Path, schemes: &[&str]) -> Self {
        let mut command = Command::new(bin);
        command.args(["node", "init", "--dir"]).arg(dir);
        for scheme in schemes {
            command
                .arg("--listen")
                .arg(format!("{scheme}://127.0.0.1:{}", free_port(scheme)));
        }
        let output = command.output().expect("cairn runs");
        assert!(
            output.status.success(),
            "cairn node init failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let addresses = String::from_utf8(output.stdout)
            .expect("UTF-8")
            .lines()
            .map(str::to_owned)
            .collect();
        Self {
            bin: bin.to_owned(),
            dir: dir.to_owned(),
            addresses,
            child: None,
        }
    }

    /// The node's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The address of the listener of `scheme`.
    ///
    /// # Panics
    /// If the node has no such listener.
    pub fn address(&self, scheme: &str) -> &str {
        self.addresses
            .iter()
            .find(|a| a.starts_with(&format!("{scheme}://")))
            .unwrap_or_else(|| panic!("no {scheme}:// listener"))
    }

    /// The node id (the part after `#` of any address).
    pub fn node_id(&self) -> &str {
        self.addresses[0].split_once('#').expect("pinned").1
    }

    /// Runs a `cairn` command with `args`, feeding `stdin`, and returns its
    /// output.
    pub fn cairn(&self, args: &[&str], stdin: &str) -> std::process::Output {
        let mut child = Command::new(&self.bin)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cairn runs");
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(stdin.as_bytes())
            .expect("stdin accepts");
        child.wait_with_output().expect("cairn ends")
    }

    /// Adds a user with `cairn node user add … --passphrase-stdin`.
    ///
    /// # Panics
    /// If the command fails.
    pub fn add_user(&self, name: &str, passphrase: &str, quota: Option<&str>) {
        let dir = self.dir.to_str().expect("UTF-8 path");
        let mut args = vec![
            "node",
            "user",
            "add",
            "--dir",
            dir,
            name,
            "--passphrase-stdin",
        ];
        if let Some(quota) = quota {
            args.extend(["--quota", quota]);
        }
        let output = self.cairn(&args, &format!("{passphrase}\n"));
        assert!(
            output.status.success(),
            "user add failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Rewrites `node.toml` with `edit`.
    pub fn edit_config(&self, edit: impl FnOnce(String) -> String) {
        let path = self.dir.join("node.toml");
        let text = fs::read_to_string(&path).expect("node.toml");
        fs::write(&path, edit(text)).expect("node.toml is writable");
    }

    /// Sets one setting of `node.toml` (the line `key = …`).
    pub fn set(&self, key: &str, value: &str) {
        self.edit_config(|text| {
            text.lines()
                .map(|line| {
                    if line.starts_with(&format!("{key} = ")) {
                        format!("{key} = {value}")
                    } else {
                        line.to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
        });
    }

    /// Starts `cairn node run` and waits until every listener is bound.
    ///
    /// # Panics
    /// If the node is already running, or does not come up within 30 s.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "the node is already running");
        let log_path = self.dir.join("node.log");
        let mut log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("the log opens");
        let mut child = Command::new(&self.bin)
            .args(["node", "run", "--dir"])
            .arg(&self.dir)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cairn node run starts");
        let stderr = child.stderr.take().expect("piped");
        let (ready, serving) = mpsc::channel();
        let listeners = self.addresses.len();
        std::thread::spawn(move || {
            let mut seen = 0;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(log, "{line}");
                if line.contains(" serving ") {
                    seen += 1;
                    if seen == listeners {
                        let _ = ready.send(());
                    }
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if serving.recv_timeout(Duration::from_millis(50)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the node exited with {status}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "the node did not start:\n{}",
                self.log()
            );
        }
        self.child = Some(child);
    }

    fn pid(&self) -> rustix::process::Pid {
        let child = self.child.as_ref().expect("the node is running");
        rustix::process::Pid::from_child(child)
    }

    /// Sends SIGTERM and waits for the process to end; returns its status.
    ///
    /// # Panics
    /// If the node is not running or does not stop within 30 s.
    pub fn stop(&mut self) -> ExitStatus {
        let _ = rustix::process::kill_process(self.pid(), rustix::process::Signal::TERM);
        self.wait(Duration::from_secs(30))
    }

    /// Sends SIGINT and waits for the process to end; returns its status.
    pub fn interrupt(&mut self) -> ExitStatus {
        let _ = rustix::process::kill_process(self.pid(), rustix::process::Signal::INT);
        self.wait(Duration::from_secs(30))
    }

    /// Sends SIGTERM without waiting.
    pub fn signal_stop(&self) {
        let _ = rustix::process::kill_process(self.pid(), rustix::process::Signal::TERM);
    }

    /// Waits up to `limit` for the process to end.
    ///
    /// # Panics
    /// If it does not.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("the node is running");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().expect("wait works") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the node did not stop in {limit:?}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Waits up to 10 s for the log to contain `text` (the log is copied
    /// from the process by a thread, so a line can lag behind the event).
    pub fn wait_for_log(&self, text: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.log().contains(text) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// What the node logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }

    /// The path of shard `hex` in the node's store.
    pub fn shard_path(&self, hex: &str) -> PathBuf {
        self.dir
            .join("shards")
            .join(&hex[..2])
            .join(&hex[2..4])
            .join(hex)
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
