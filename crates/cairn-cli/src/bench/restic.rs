//! `cairn bench --vs-restic`: restic backs up and restores the same large
//! file, to a repository in the bench's temporary directory, in the same
//! run as cairn's put and get, so that the ratios printed compare the two
//! on the same machine at the same moment (this machine kind's speed drifts
//! by 2× from day to day, which makes figures from different runs useless).
//!
//! restic is run as a child process with a throwaway password, given to it
//! in `RESTIC_PASSWORD` and nowhere else: never on the command line, never
//! printed. Its CPU time is read from this process's reaped children's
//! (`/proc/self/stat`), which at that moment are restic's runs only (the
//! nodes are children too, but are not reaped until they stop).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::files::file_hash;
use super::usage::reaped_children_cpu_seconds;

/// How one restic command went.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    /// Wall-clock time.
    pub elapsed: Duration,
    /// CPU seconds (user + system) restic used.
    pub cpu: f64,
}

/// restic, with a repository of its own.
struct Restic {
    /// The restic program found on `PATH`.
    program: PathBuf,
    /// The repository.
    repo: PathBuf,
    /// restic's cache, kept beside the repository (not in `~/.cache`).
    cache: PathBuf,
    /// The repository's password: random, in the child's environment only.
    password: String,
}

impl std::fmt::Debug for Restic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Restic")
            .field("program", &self.program)
            .field("repo", &self.repo)
            .finish_non_exhaustive()
    }
}

/// The restic program on `PATH`.
///
/// # Errors
/// If there is none: `--vs-restic` cannot run without it.
pub fn find() -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("restic"))
        .find(|candidate| is_executable(candidate))
        .context(
            "--vs-restic needs restic, which is not installed (no restic on PATH); \
             install it (e.g. `apt install restic`) or run the bench without --vs-restic",
        )
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// What restic did with the file: its version, the backup and the restore.
#[derive(Debug)]
pub struct Comparison {
    /// `restic version`'s first words (`restic 0.14.0`).
    pub version: String,
    /// The backup of the file into a new repository.
    pub backup: Run,
    /// The restore of that backup into a new directory.
    pub restore: Run,
}

/// Backs `file` up with `program` into a new repository in `dir`, restores
/// it into `dir`, checks that the restored file has `file`'s bytes, and
/// removes the repository and the copy.
///
/// # Errors
/// If restic fails, or restores other bytes.
pub fn compare(program: PathBuf, dir: &Path, file: &Path) -> Result<Comparison> {
    let restic = Restic::init(program, dir)?;
    let version = restic.version()?;
    let backup = restic.backup(file)?;
    let target = dir.join("restic-restore");
    let restore = restic.restore(&target)?;
    // restic recreates the file's whole path under the target.
    let relative = file.strip_prefix("/").unwrap_or(file);
    let restored = target.join(relative);
    if file_hash(&restored).with_context(|| format!("restic restored no {}", restored.display()))?
        != file_hash(file)?
    {
        bail!("restic restored other bytes than it backed up");
    }
    std::fs::remove_dir_all(&target)?;
    std::fs::remove_dir_all(&restic.repo)?;
    std::fs::remove_dir_all(&restic.cache)?;
    Ok(Comparison {
        version,
        backup,
        restore,
    })
}

impl Restic {
    /// Initialises a repository in `dir/restic-repo` with `program`.
    fn init(program: PathBuf, dir: &Path) -> Result<Self> {
        let seed = format!("{:?} {}", std::time::SystemTime::now(), std::process::id());
        let restic = Self {
            program,
            repo: dir.join("restic-repo"),
            cache: dir.join("restic-cache"),
            password: blake3::hash(seed.as_bytes()).to_hex().to_string(),
        };
        restic.run(&["init"])?;
        Ok(restic)
    }

    /// `restic version`, up to the word "compiled".
    fn version(&self) -> Result<String> {
        let output = Command::new(&self.program)
            .arg("version")
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {}", self.program.display()))?;
        let text = String::from_utf8_lossy(&output.stdout);
        Ok(text
            .split(" compiled")
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned())
    }

    /// `restic backup FILE`.
    fn backup(&self, file: &Path) -> Result<Run> {
        let file = file.to_str().context("the file's path is not UTF-8")?;
        self.run(&["backup", "--quiet", file])
    }

    /// `restic restore latest --target TARGET`; restic recreates the backed
    /// up file's whole path under `target`.
    fn restore(&self, target: &Path) -> Result<Run> {
        let target = target.to_str().context("the target's path is not UTF-8")?;
        self.run(&["restore", "latest", "--quiet", "--target", target])
    }

    /// Runs restic with `args` on the repository and times it.
    fn run(&self, args: &[&str]) -> Result<Run> {
        let mut command = Command::new(&self.program);
        command
            .arg("--repo")
            .arg(&self.repo)
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(args)
            // Only ours: a password file or command from the user's
            // environment would conflict with it.
            .env_remove("RESTIC_REPOSITORY")
            .env_remove("RESTIC_REPOSITORY_FILE")
            .env_remove("RESTIC_PASSWORD_FILE")
            .env_remove("RESTIC_PASSWORD_COMMAND")
            .env("RESTIC_PASSWORD", &self.password)
            .stdin(Stdio::null());
        let cpu_before = reaped_children_cpu_seconds()?;
        let started = Instant::now();
        let output = command
            .output()
            .with_context(|| format!("cannot run {}", self.program.display()))?;
        let elapsed = started.elapsed();
        let cpu = reaped_children_cpu_seconds()? - cpu_before;
        if !output.status.success() {
            bail!(
                "restic {} exited with {}: {}",
                args[0],
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(Run { elapsed, cpu })
    }
}
