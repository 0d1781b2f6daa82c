//! Nodes as child processes on this machine: for `cairn demo`, `cairn
//! bench` and black-box tests.
//!
//! A [`LocalNode`] is a node directory made by `cairn node init` with
//! listeners on free loopback ports, and the `cairn node run` process that
//! serves it, which the caller starts, stops with SIGTERM, kills with
//! SIGKILL and starts again. The process's log goes to `<dir>/node.log`.
//! Dropping a `LocalNode` kills its process, so nothing is left running.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cairn_net::{NodeAddress, Scheme};

/// Why a local node could not be set up or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalError {
    /// The `cairn` binary could not be run.
    #[error("cannot run {bin}: {source}")]
    Spawn {
        /// The binary.
        bin: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A `cairn` command failed.
    #[error("`cairn {command}` failed: {stderr}")]
    Command {
        /// The command.
        command: String,
        /// What it said.
        stderr: String,
    },
    /// The node did not start serving in time, or exited.
    #[error("the node in {dir} did not start: {reason}")]
    Start {
        /// Its directory.
        dir: PathBuf,
        /// What happened, with the end of its log.
        reason: String,
    },
    /// The node did not stop in time.
    #[error("the node in {0} did not stop in time and was killed")]
    Stop(PathBuf),
    /// A file of the node could not be read or written.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A free port on 127.0.0.1 for `scheme` (UDP for QUIC, TCP otherwise).
///
/// Free when this returns; on loopback nothing else takes it before the
/// node binds it in practice.
pub fn free_port(scheme: Scheme) -> std::io::Result<u16> {
    Ok(match scheme {
        Scheme::Quic => UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port(),
        Scheme::Tcp | Scheme::Https => TcpListener::bind("127.0.0.1:0")?.local_addr()?.port(),
    })
}

/// A node directory on this machine and, while it runs, its process.
#[derive(Debug)]
pub struct LocalNode {
    bin: PathBuf,
    dir: PathBuf,
    addresses: Vec<NodeAddress>,
    log_level: String,
    child: Option<Child>,
}

impl LocalNode {
    /// Runs `cairn node init` in `dir` with one listener per scheme on free
    /// loopback ports. `bin` is the `cairn` binary.
    ///
    /// # Errors
    /// [`LocalError`] if the command cannot run or fails.
    pub fn init(bin: &Path, dir: &Path, schemes: &[Scheme]) -> Result<Self, LocalError> {
        let mut args = vec!["node".to_owned(), "init".into(), "--dir".into()];
        args.push(dir.to_string_lossy().into_owned());
        for &scheme in schemes {
            args.push("--listen".into());
            args.push(format!("{scheme}://127.0.0.1:{}", free_port(scheme)?));
        }
        let stdout = cairn(bin, &args, "")?;
        let addresses = stdout
            .lines()
            .map(|line| {
                line.parse().map_err(|e| LocalError::Command {
                    command: "node init".into(),
                    stderr: format!("printed {line:?}, not an address: {e}"),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            bin: bin.to_owned(),
            dir: dir.to_owned(),
            addresses,
            log_level: "info".into(),
            child: None,
        })
    }

    /// Sets `RUST_LOG` for the process from the next start on (default
    /// `info`; tests use `debug` to see every request).
    pub fn set_log_level(&mut self, level: &str) {
        level.clone_into(&mut self.log_level);
    }

    /// The node's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The node's addresses, `URL#NODE_ID`.
    pub fn addresses(&self) -> &[NodeAddress] {
        &self.addresses
    }

    /// The address of the listener of `scheme`, if the node has one.
    pub fn address(&self, scheme: Scheme) -> Option<&NodeAddress> {
        self.addresses.iter().find(|a| a.scheme == scheme)
    }

    /// Adds a user with `cairn node user add … --passphrase-stdin`.
    ///
    /// # Errors
    /// [`LocalError::Command`] if the command fails.
    pub fn add_user(
        &self,
        name: &str,
        passphrase: &str,
        quota: Option<&str>,
    ) -> Result<(), LocalError> {
        let mut args: Vec<String> = ["node", "user", "add", "--dir"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        args.push(self.dir.to_string_lossy().into_owned());
        args.push(name.to_owned());
        args.push("--passphrase-stdin".into());
        if let Some(quota) = quota {
            args.push("--quota".into());
            args.push(quota.to_owned());
        }
        cairn(&self.bin, &args, &format!("{passphrase}\n")).map(drop)
    }

    /// Sets one setting of `node.toml` (replaces the line `key = …`).
    ///
    /// # Errors
    /// If the file cannot be read or written.
    pub fn set(&self, key: &str, value: &str) -> Result<(), LocalError> {
        let path = self.dir.join(crate::dir::CONFIG_FILE);
        let text = fs::read_to_string(&path)?;
        let prefix = format!("{key} = ");
        let edited: Vec<String> = text
            .lines()
            .map(|line| {
                if line.starts_with(&prefix) {
                    format!("{prefix}{value}")
                } else {
                    line.to_owned()
                }
            })
            .collect();
        fs::write(&path, edited.join("\n") + "\n")?;
        Ok(())
    }

    /// Starts `cairn node run` and waits until every listener is bound.
    ///
    /// # Errors
    /// [`LocalError::Start`] if the process exits or is not serving within
    /// 30 s.
    ///
    /// # Panics
    /// If the node is already running.
    pub fn start(&mut self) -> Result<(), LocalError> {
        assert!(self.child.is_none(), "the node is already running");
        let mut log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let mut child = Command::new(&self.bin)
            .args(["node", "run", "--dir"])
            .arg(&self.dir)
            .env("RUST_LOG", &self.log_level)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| LocalError::Spawn {
                bin: self.bin.clone(),
                source,
            })?;
        let stderr = child.stderr.take().expect("stderr is piped");
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
            if serving.recv_timeout(Duration::from_millis(20)).is_ok() {
                self.child = Some(child);
                return Ok(());
            }
            let exited = child.try_wait()?;
            if exited.is_some() || Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                let reason = match exited {
                    Some(status) => format!("it exited with {status}"),
                    None => "it was not serving after 30 s".into(),
                };
                return Err(LocalError::Start {
                    dir: self.dir.clone(),
                    reason: format!("{reason}; its log ends:\n{}", self.log_tail(20)),
                });
            }
        }
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends `signal` (without waiting).
    pub fn signal(&self, signal: rustix::process::Signal) {
        if let Some(child) = &self.child {
            let _ = rustix::process::kill_process(rustix::process::Pid::from_child(child), signal);
        }
    }

    /// Sends SIGTERM and waits up to `limit` for the process to end.
    ///
    /// # Errors
    /// [`LocalError::Stop`] if it does not end in time (it is then killed).
    pub fn stop(&mut self, limit: Duration) -> Result<ExitStatus, LocalError> {
        self.signal(rustix::process::Signal::TERM);
        self.wait(limit)
    }

    /// Waits up to `limit` for the process to end.
    ///
    /// # Errors
    /// [`LocalError::Stop`] if it does not end in time (it is then killed).
    ///
    /// # Panics
    /// If the node is not running.
    pub fn wait(&mut self, limit: Duration) -> Result<ExitStatus, LocalError> {
        let mut child = self.child.take().expect("the node is running");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(LocalError::Stop(self.dir.clone()));
            }
            std::thread::sleep(Duration::from_millis(10));
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

    /// Where the process's log goes.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("node.log")
    }

    /// What the node logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for LocalNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `bin args…` with `stdin`, returning its standard output.
fn cairn(bin: &Path, args: &[String], stdin: &str) -> Result<String, LocalError> {
    let spawn_error = |source| LocalError::Spawn {
        bin: bin.to_owned(),
        source,
    };
    let mut child = Command::new(bin)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin.as_bytes())
        // A command that refuses early exits before reading its input; its
        // own message (below) says why.
        .or_else(|e| {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                Ok(())
            } else {
                Err(e)
            }
        })?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        return Err(LocalError::Command {
            command: args.join(" "),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
