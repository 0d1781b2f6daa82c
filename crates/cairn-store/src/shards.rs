//! Shard files: where they live, how they are written, read and set aside.
//!
//! # Layout
//!
//! ```text
//! <dir>/shards/ab/cd/abcd…(64 hex digits)   one file per shard, named by its id
//! <dir>/tmp/shard-*.tmp                      writes in progress (deleted at open)
//! <dir>/quarantine/<hex>.<n>                 files that failed their hash or a read
//! ```
//!
//! The two fan-out levels keep directories small (65,536 leaves).
//!
//! # Guarantees
//!
//! - **Nothing half-written is visible.** Bytes go to a temporary file in
//!   `tmp/` (on the same filesystem as `shards/`: both are under the
//!   store's directory), which is fsynced, renamed to its final name, and
//!   the directory that gained the name fsynced too. A crash leaves the
//!   whole file or none, plus perhaps a temporary file the next open
//!   deletes.
//! - **Writes are read back** (with `verify_writes`, the default): once the
//!   temporary file is flushed, its pages are dropped from the page cache
//!   (`posix_fadvise(DONTNEED)`, where the system has it) and the file is
//!   read again and compared with the bytes written, before it may be
//!   renamed into place. A disk that stores other bytes than it was given
//!   (firmware bugs, misdirected writes, a failing controller) fails the
//!   put instead of leaving a damaged shard to be found by a later read.
//!   See [`ShardFiles::stage`] for what this does and does not reach.
//! - **Directories survive too.** A new name is durable only once its
//!   directory is flushed, and a new directory only once its parent is.
//!   Every directory the store creates (the store's own and its missing
//!   ancestors, `shards/`, `tmp/`, `quarantine/`, the fan-out levels) is
//!   flushed into its parent; the store's directory is flushed at every
//!   open, and an existing fan-out directory the first time a process
//!   installs into it, since nothing on disk says whether whoever created
//!   it lived to flush it.
//! - **Reads verify.** Every read re-hashes; files longer than
//!   [`MAX_SHARD_LEN`] are reported without being read, so a damaged size
//!   cannot exhaust memory.
//! - **Unreadable is damaged.** A file that cannot be opened or read (`EIO`
//!   from a bad sector, `EACCES`, a directory under the shard's name) is
//!   [`Damage::Unreadable`], handled like a file that fails its hash: a get
//!   reports it as corrupt, a scrub lists it and goes on, and both move it
//!   to quarantine. Only an error about the process rather than the file
//!   (interrupted, out of memory or file descriptors) is returned as an
//!   error, and leaves the file where it is.
//! - **Damaged files are moved, not deleted**, to `quarantine/` for an
//!   operator to inspect; the shard then reads as absent.
//!
//! The caller holds the id's lock around every step that creates or removes
//! a final name; this module does no locking of its own.

use std::fs::{self, File, ReadDir};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use cairn_core::Id;

use crate::meta::{Metadata, Stored};

/// Largest shard the store accepts, in bytes: a maximal 4 MiB chunk can
/// never produce more, and 64 MiB leaves room for other codings, plus 64
/// bytes for a header.
pub const MAX_SHARD_LEN: usize = 64 * 1024 * 1024 + 64;

/// Bytes read between two calls of a read's progress callback, which the
/// scrub uses to pace itself: small enough that a large shard does not burst
/// past the rate bound, large enough to keep system calls few.
const READ_BLOCK: u64 = 256 * 1024;

/// How a shard file on disk differs from what its name promises.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Damage {
    /// The bytes hash to another id: bit rot, truncation, or a write from
    /// outside cairn.
    Mismatch {
        /// The id the bytes on disk actually have.
        actual: Id,
    },
    /// The file is longer than any shard can be; it was not read in full.
    Oversized {
        /// Length of the file in bytes, as far as it was measured.
        len: u64,
    },
    /// The file cannot be read, so its bytes are unknown: a bad sector
    /// (`EIO`), permissions changed behind the store's back (`EACCES`),
    /// something other than a file under the shard's name (`EISDIR`).
    /// Errors that say more about the process than about the file (out of
    /// memory or file descriptors) are not damage; see the module docs.
    Unreadable {
        /// The kind of the operating system's error.
        kind: io::ErrorKind,
        /// The operating system's error, as text.
        reason: String,
    },
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Mismatch { actual } => write!(f, "its bytes hash to {actual}"),
            Self::Oversized { len } => {
                write!(
                    f,
                    "it is {len} bytes long, over the {MAX_SHARD_LEN}-byte limit"
                )
            }
            Self::Unreadable { reason, .. } => write!(f, "it cannot be read ({reason})"),
        }
    }
}

/// The result of reading and verifying one shard file.
#[derive(Debug)]
pub(crate) enum Checked {
    Intact(Vec<u8>),
    Damaged(Damage),
    Missing,
}

/// How a shard file on disk compares with bytes that hash to its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnDisk {
    /// No file under the id.
    Missing,
    /// The file holds exactly those bytes: it is intact.
    Same,
    /// The file holds other bytes, or cannot be read: it is damaged.
    Different,
}

/// An I/O failure together with the path it happened on.
#[derive(Debug)]
pub(crate) struct FileError {
    pub(crate) path: PathBuf,
    pub(crate) source: io::Error,
}

/// Why [`ShardFiles::stage`] failed. Either way the temporary file is
/// already deleted.
#[derive(Debug)]
pub(crate) enum StageError {
    /// Writing, flushing or reading back failed.
    File(FileError),
    /// The bytes read back from the flushed temporary file at `path` differ
    /// from the bytes written.
    Unverified { path: PathBuf },
}

impl From<FileError> for StageError {
    fn from(e: FileError) -> Self {
        Self::File(e)
    }
}

/// Attaches a path to io errors.
trait AtPath<T> {
    fn at(self, path: &Path) -> Result<T, FileError>;
}

impl<T> AtPath<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T, FileError> {
        self.map_err(|source| FileError {
            path: path.to_owned(),
            source,
        })
    }
}

/// Shard bytes written and flushed to a temporary file, not yet visible
/// under their id. Dropping it deletes the temporary file.
#[derive(Debug)]
pub(crate) struct Staged(tempfile::NamedTempFile);

/// The shard files of one store directory.
#[derive(Debug)]
pub(crate) struct ShardFiles {
    shards: PathBuf,
    tmp: PathBuf,
    quarantine: PathBuf,
    /// Whether to fsync files and directories (see `StoreOptions::sync`).
    sync: bool,
    /// Whether to read every staged file back before it is installed (see
    /// `StoreOptions::verify_writes`).
    verify_writes: bool,
    /// The fan-out directories whose parent this process has flushed
    /// since they existed; see [`ensure_dir`](Self::ensure_dir).
    synced: SyncedDirs,
    /// Failures the unit tests inject.
    #[cfg(test)]
    pub(crate) faults: Faults,
}

/// One bit per fan-out directory: set once its parent has been flushed
/// with the directory in it. 256 `shards/ab/` plus 65,536 `shards/ab/cd/`
/// bits, 8 KiB in all.
#[derive(Debug)]
struct SyncedDirs(Box<[AtomicU64]>);

impl SyncedDirs {
    const FANS: usize = 256;
    const LEAVES: usize = 256 * 256;

    fn new() -> Self {
        Self(
            (0..(Self::FANS + Self::LEAVES).div_ceil(64))
                .map(|_| AtomicU64::new(0))
                .collect(),
        )
    }

    /// The bits of `shards/ab/` and `shards/ab/cd/` for an id.
    fn of(id: &Id) -> (usize, usize) {
        let [a, b, ..] = *id.as_bytes();
        let (a, b) = (usize::from(a), usize::from(b));
        (a, Self::FANS + a * 256 + b)
    }

    fn get(&self, bit: usize) -> bool {
        // Acquire pairs with the Release in `set`: whoever sees the bit
        // also sees the flush that came before it.
        self.0[bit / 64].load(Ordering::Acquire) & (1 << (bit % 64)) != 0
    }

    fn set(&self, bit: usize) {
        self.0[bit / 64].fetch_or(1 << (bit % 64), Ordering::Release);
    }
}

impl ShardFiles {
    /// Creates the three directories under `dir` if needed, flushes `dir`
    /// (so that they, `meta.redb` and `store.lock` survive a crash, even if
    /// an earlier open created them and died before flushing), and deletes
    /// everything left in `tmp/` by writes a crash interrupted.
    ///
    /// The caller must already hold the store's exclusive lock
    /// (`store.lock`, taken by `Store::open`), or this could delete another
    /// store's writes in progress. Nothing else writes to `tmp/`:
    /// [`Admin`](crate::Admin) never touches the shard directories.
    pub(crate) fn open(dir: &Path, sync: bool, verify_writes: bool) -> Result<Self, FileError> {
        let files = Self {
            shards: dir.join("shards"),
            tmp: dir.join("tmp"),
            quarantine: dir.join("quarantine"),
            sync,
            verify_writes,
            synced: SyncedDirs::new(),
            #[cfg(test)]
            faults: Faults::default(),
        };
        for sub in [&files.shards, &files.tmp, &files.quarantine] {
            if let Err(e) = fs::create_dir(sub)
                && e.kind() != io::ErrorKind::AlreadyExists
            {
                return Err(e).at(sub);
            }
        }
        if sync {
            sync_dir(dir)?;
        }
        files.clean_tmp()?;
        Ok(files)
    }

    /// Deletes every entry of `tmp/`. Nothing in there was ever visible as a
    /// shard, so nothing is lost.
    fn clean_tmp(&self) -> Result<(), FileError> {
        for entry in fs::read_dir(&self.tmp).at(&self.tmp)? {
            let entry = entry.at(&self.tmp)?;
            let path = entry.path();
            let removed = if entry.file_type().at(&path)?.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            match removed {
                // Gone already: nothing to do.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                other => other.at(&path)?,
            }
        }
        Ok(())
    }

    /// The final path of a shard: `shards/ab/cd/<64 hex digits>`.
    pub(crate) fn path(&self, id: &Id) -> PathBuf {
        shard_file_path(&self.shards, id)
    }

    /// Whether a file exists under the shard's final name.
    pub(crate) fn exists(&self, id: &Id) -> Result<bool, FileError> {
        let path = self.path(id);
        match fs::symlink_metadata(&path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(FileError { path, source }),
        }
    }

    /// Writes `bytes` to a new temporary file in `tmp/`, flushes it, and
    /// (with `verify_writes`) reads it back and compares it with `bytes`.
    /// On error the temporary file is already deleted.
    ///
    /// The read-back first drops the file's pages from the page cache with
    /// `posix_fadvise(POSIX_FADV_DONTNEED)`: after the flush they are clean,
    /// and Linux then evicts them, so the read reaches the device, not the
    /// copy the write left in memory. What it cannot reach is a cache inside
    /// the drive, nor systems without the call (the Apple platforms, which
    /// read from the cache: there the check covers the path through memory
    /// only). Without `sync` the pages are still dirty and stay cached. Direct
    /// I/O (`O_DIRECT`) would bypass the cache for certain, but it needs
    /// block-aligned buffers and lengths, is refused by some filesystems
    /// (tmpfs among them) and does not exist on every system: it would need
    /// this path as a fallback anyway. Nor is it cheaper: a direct read-back
    /// (`O_DIRECT` set with `fcntl` on the staged file, one aligned read per
    /// shard, this path where refused) was tried and measured, alternating
    /// with this one in `cairn bench --size-mib 512`: put 258–290 against
    /// 275–289 MB/s, the nodes' CPU per GiB the same (4.3–4.7 s), so it
    /// was not kept.
    ///
    /// The comparison is with the bytes themselves, which the caller has
    /// checked hash to the shard's id: the same verdict as re-hashing the
    /// file, at the cost of a `memcmp` instead of a BLAKE3 pass.
    pub(crate) fn stage(&self, bytes: &[u8]) -> Result<Staged, StageError> {
        let mut file = tempfile::Builder::new()
            .prefix("shard-")
            .suffix(".tmp")
            .tempfile_in(&self.tmp)
            .at(&self.tmp)?;
        let path = file.path().to_owned();
        file.write_all(bytes).at(&path)?;
        if self.sync {
            file.as_file().sync_all().at(&path)?;
        }
        #[cfg(test)]
        self.faults.damage_staged(file.as_file(), bytes.len());
        if self.verify_writes {
            let file = file.as_file_mut();
            drop_cached_pages(file);
            file.seek(io::SeekFrom::Start(0)).at(&path)?;
            match compare_contents(file, bytes) {
                Ok(OnDisk::Same) => {}
                Ok(_) => return Err(StageError::Unverified { path }),
                Err(source) => return Err(StageError::File(FileError { path, source })),
            }
        }
        Ok(Staged(file))
    }

    /// Makes a staged shard visible under its id: creates the fan-out
    /// directories, renames, and flushes every directory that changed.
    ///
    /// The caller holds the id's lock and has checked that the id matches
    /// the staged bytes; an existing file of the same name is replaced
    /// (it could only hold the same bytes).
    pub(crate) fn install(&self, staged: Staged, id: &Id) -> Result<(), FileError> {
        let path = self.path(id);
        let leaf = path.parent().expect("a shard path has fan-out parents");
        let fan = leaf.parent().expect("a shard path has two fan-out levels");
        let (fan_bit, leaf_bit) = SyncedDirs::of(id);
        self.ensure_dir(fan, &self.shards, fan_bit)?;
        self.ensure_dir(leaf, fan, leaf_bit)?;
        staged.0.persist(&path).map_err(|e| e.error).at(&path)?;
        if self.sync {
            sync_dir(leaf)?;
        }
        Ok(())
    }

    /// Creates `dir` (a child of `parent`) unless it exists, and flushes
    /// `parent` so that `dir` survives a crash: whenever `dir` is new, and
    /// the first time this process installs into an existing `dir`. An
    /// existing directory may never have been flushed into its parent (an
    /// earlier attempt created it and then failed to flush, or the process
    /// died in between), and nothing on disk tells. `synced` is `dir`'s bit
    /// in [`SyncedDirs`]; at most one flush per fan-out directory per
    /// process, so the cost is negligible.
    fn ensure_dir(&self, dir: &Path, parent: &Path, synced: usize) -> Result<(), FileError> {
        let created = match fs::create_dir(dir) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
            Err(source) => {
                return Err(FileError {
                    path: dir.to_owned(),
                    source,
                });
            }
        };
        if self.sync && (created || !self.synced.get(synced)) {
            sync_dir(parent)?;
            self.synced.set(synced);
        }
        Ok(())
    }

    /// Reads a shard and checks it against its id.
    ///
    /// `on_block` is called with the length of every block read, so a caller
    /// can pace itself. At most [`MAX_SHARD_LEN`] + 1 bytes are ever read.
    ///
    /// A file that cannot be read is [`Damage::Unreadable`]; only an error
    /// that says nothing about the file (see [`is_transient`]) is returned
    /// as an error.
    pub(crate) fn read(
        &self,
        id: &Id,
        on_block: &mut dyn FnMut(u64),
    ) -> Result<Checked, FileError> {
        let path = self.path(id);
        match self.read_at(&path, id, on_block) {
            Ok(checked) => Ok(checked),
            Err(source) if is_transient(&source) => Err(FileError { path, source }),
            Err(e) => Ok(Checked::Damaged(Damage::Unreadable {
                kind: e.kind(),
                reason: e.to_string(),
            })),
        }
    }

    /// [`read`](Self::read), with every I/O error returned as is.
    fn read_at(&self, path: &Path, id: &Id, on_block: &mut dyn FnMut(u64)) -> io::Result<Checked> {
        let mut file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Checked::Missing),
            Err(e) => return Err(e),
        };
        #[cfg(test)]
        self.faults.check_read(path)?;
        let max = MAX_SHARD_LEN as u64;
        let len = file.metadata()?.len();
        if len > max {
            return Ok(Checked::Damaged(Damage::Oversized { len }));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(MAX_SHARD_LEN));
        loop {
            let n = (&mut file).take(READ_BLOCK).read_to_end(&mut bytes)? as u64;
            if n == 0 {
                break;
            }
            on_block(n);
            // The file may have grown since its length was taken.
            if bytes.len() > MAX_SHARD_LEN {
                let len = bytes.len() as u64;
                return Ok(Checked::Damaged(Damage::Oversized { len }));
            }
        }
        let actual = Id::of(&bytes);
        Ok(if actual == *id {
            Checked::Intact(bytes)
        } else {
            Checked::Damaged(Damage::Mismatch { actual })
        })
    }

    /// Compares shard `id`'s file with `expected`, bytes the caller has
    /// checked hash to `id`. The same bytes mean an intact file, as the
    /// file hashing to `id` would, but this needs no second copy of the
    /// file in memory: it reads one block at a time and stops at the first
    /// difference. A file that cannot be read is
    /// [`Different`](OnDisk::Different), as [`read`](Self::read) calls it
    /// damaged; only an error about the process (see [`is_transient`]) is
    /// an error.
    pub(crate) fn compare(&self, id: &Id, expected: &[u8]) -> Result<OnDisk, FileError> {
        let path = self.path(id);
        match self.compare_at(&path, expected) {
            Ok(on_disk) => Ok(on_disk),
            Err(source) if is_transient(&source) => Err(FileError { path, source }),
            Err(_) => Ok(OnDisk::Different),
        }
    }

    /// [`compare`](Self::compare), with every I/O error returned as is.
    fn compare_at(&self, path: &Path, expected: &[u8]) -> io::Result<OnDisk> {
        let mut file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(OnDisk::Missing),
            Err(e) => return Err(e),
        };
        #[cfg(test)]
        self.faults.check_read(path)?;
        compare_contents(&mut file, expected)
    }

    /// The length of shard `id`'s file, or `None` if there is none.
    pub(crate) fn len(&self, id: &Id) -> Result<Option<u64>, FileError> {
        let path = self.path(id);
        match fs::symlink_metadata(&path) {
            Ok(metadata) => Ok(Some(metadata.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(FileError { path, source }),
        }
    }

    /// How long ago shard `id`'s file was last modified (written, for a
    /// shard: files are never changed once in place), or `None` if there
    /// is no file. A modification time in the future counts as now.
    pub(crate) fn age(&self, id: &Id) -> Result<Option<Duration>, FileError> {
        let path = self.path(id);
        let modified = match fs::symlink_metadata(&path).and_then(|m| m.modified()) {
            Ok(modified) => modified,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(FileError { path, source }),
        };
        Ok(Some(
            SystemTime::now()
                .duration_since(modified)
                .unwrap_or(Duration::ZERO),
        ))
    }

    /// Deletes a shard file. Returns whether there was one.
    pub(crate) fn remove(&self, id: &Id) -> Result<bool, FileError> {
        let path = self.path(id);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(source) => return Err(FileError { path, source }),
        }
        if self.sync {
            sync_dir(path.parent().expect("a shard path has a parent"))?;
        }
        Ok(true)
    }

    /// Moves a shard file to `quarantine/<hex>.<n>`, with the smallest `n`
    /// not yet taken, and returns the new path.
    ///
    /// The caller holds the id's lock, which is what makes picking a free
    /// name race-free: only this id's files are named after its hex.
    pub(crate) fn quarantine(&self, id: &Id) -> Result<PathBuf, FileError> {
        let from = self.path(id);
        let hex = id.to_string();
        let mut n = 0u64;
        let to = loop {
            let candidate = self.quarantine.join(format!("{hex}.{n}"));
            match fs::symlink_metadata(&candidate) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => break candidate,
                Err(source) => {
                    return Err(FileError {
                        path: candidate,
                        source,
                    });
                }
                Ok(_) => n += 1,
            }
        };
        fs::rename(&from, &to).at(&from)?;
        if self.sync {
            sync_dir(&self.quarantine)?;
            sync_dir(from.parent().expect("a shard path has a parent"))?;
        }
        Ok(to)
    }

    /// Walks `shards/` and yields the id of every well-placed shard file.
    pub(crate) fn iter(&self) -> ShardFileIds {
        ShardFileIds::in_dir(&self.shards)
    }
}

/// Compares what `file` holds from its current position on with
/// `expected`, one block at a time: [`OnDisk::Same`] or
/// [`OnDisk::Different`] (other bytes, or another length).
fn compare_contents(file: &mut File, expected: &[u8]) -> io::Result<OnDisk> {
    if file.metadata()?.len() != expected.len() as u64 {
        return Ok(OnDisk::Different);
    }
    // Filled by `read_to_end`, which reads into spare capacity: no zeroing.
    let mut block = Vec::with_capacity(expected.len().clamp(1, READ_BLOCK as usize));
    let mut rest = expected;
    loop {
        block.clear();
        let n = (&mut *file)
            .take(block.capacity() as u64)
            .read_to_end(&mut block)?;
        if n == 0 {
            // The end: a file that shrank since its length was taken is
            // short.
            return Ok(if rest.is_empty() {
                OnDisk::Same
            } else {
                OnDisk::Different
            });
        }
        match rest.split_at_checked(n) {
            Some((head, tail)) if head == &block[..n] => rest = tail,
            // Other bytes, or more of them than expected.
            _ => return Ok(OnDisk::Different),
        }
    }
}

/// Asks the kernel to drop `file`'s cached pages, so that the next read
/// goes to the device. Only clean pages go (flush first); advice that
/// fails is ignored, since the read that follows is correct either way,
/// only less searching.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
fn drop_cached_pages(file: &File) {
    let _ = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::DontNeed);
}

/// No portable way to drop cached pages here: the read-back may be served
/// from memory.
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
fn drop_cached_pages(_file: &File) {}

/// Whether a read error says something about the process or the system
/// rather than about the file: interrupted, out of memory, out of file
/// descriptors. Such an error is returned as an error, and the file is left
/// alone; any other error means the file cannot be read, which is damage.
/// Quarantining every shard read while the node ran out of descriptors
/// would set aside good files by the thousand.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock | io::ErrorKind::OutOfMemory
    ) || e
        .raw_os_error()
        .is_some_and(|code| OUT_OF_DESCRIPTORS.contains(&code))
}

/// `ENFILE` and `EMFILE`, which have these numbers on Linux, the BSDs and
/// the Apple platforms; std gives them no [`io::ErrorKind`] of their own.
#[cfg(unix)]
const OUT_OF_DESCRIPTORS: [i32; 2] = [23, 24];
/// `ERROR_TOO_MANY_OPEN_FILES`.
#[cfg(windows)]
const OUT_OF_DESCRIPTORS: [i32; 1] = [4];
#[cfg(not(any(unix, windows)))]
const OUT_OF_DESCRIPTORS: [i32; 0] = [];

/// Failures injected by unit tests: reads of the listed files fail, after
/// the file is opened, with the given operating system error, as reads of a
/// bad sector do. (An integration test can make a read fail for real by
/// putting a directory under a shard's name, but the walk of `shards/` skips
/// directories, so a scrub never reads it: only this reaches a scrub.)
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct Faults {
    reads: std::sync::Mutex<Vec<(PathBuf, i32)>>,
    /// Staged files to damage on disk after their flush, before they are
    /// read back: a disk that stored other bytes than it was given.
    damaged_stages: std::sync::atomic::AtomicU64,
}

#[cfg(test)]
impl Faults {
    /// Makes every read of the file at `path` fail with the OS error
    /// `code`.
    pub(crate) fn fail_reads(&self, path: PathBuf, code: i32) {
        self.reads.lock().unwrap().push((path, code));
    }

    /// Makes the next `count` staged files differ on disk from the bytes
    /// written (one byte flipped, or one added to an empty file).
    pub(crate) fn damage_stages(&self, count: u64) {
        self.damaged_stages.store(count, Ordering::SeqCst);
    }

    /// Damages `file` (`len` bytes, just flushed) if a test asked for it.
    fn damage_staged(&self, file: &File, len: usize) {
        use std::os::unix::fs::FileExt;
        let take = |n: u64| n.checked_sub(1);
        if self
            .damaged_stages
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, take)
            .is_err()
        {
            return;
        }
        let mut byte = [0u8];
        if len > 0 {
            file.read_exact_at(&mut byte, 0).unwrap();
            byte[0] ^= 0x01;
        }
        file.write_all_at(&byte, 0).unwrap();
        file.sync_all().unwrap();
    }

    fn check_read(&self, path: &Path) -> io::Result<()> {
        let reads = self.reads.lock().unwrap();
        match reads.iter().find(|(failing, _)| failing == path) {
            Some(&(_, code)) => Err(io::Error::from_raw_os_error(code)),
            None => Ok(()),
        }
    }
}

/// Creates directory `dir` and any missing ancestors, flushing the parent
/// of each one created so that it survives a crash (if `sync`).
pub(crate) fn create_dir_durably(dir: &Path, sync: bool) -> Result<(), FileError> {
    if fs::metadata(dir).is_ok_and(|m| m.is_dir()) {
        return Ok(());
    }
    let parent = parent_of(dir);
    if let Some(parent) = parent {
        create_dir_durably(parent, sync)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        // Created meanwhile, by someone who flushes it.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(source) => {
            return Err(FileError {
                path: dir.to_owned(),
                source,
            });
        }
    }
    match parent {
        Some(parent) if sync => sync_dir(parent),
        _ => Ok(()),
    }
}

/// The directory holding `path` (`.` for a bare relative name), or `None`
/// for a root.
pub(crate) fn parent_of(path: &Path) -> Option<&Path> {
    path.parent().map(|parent| {
        if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        }
    })
}

/// Flushes a directory, so that the names created or removed in it survive
/// a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), FileError> {
    #[cfg(test)]
    tests::SYNCED
        .lock()
        .unwrap()
        .push(dir.canonicalize().unwrap_or_else(|_| dir.to_owned()));
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// An iterator over the ids of the shards in a store, in both layouts: see
/// [`Store::iter`](crate::Store::iter).
///
/// First the shard files, by walking `shards/` (see below for what is
/// skipped), leaving out those that also have a live record in a segment
/// (a migration interrupted after its commit leaves such a file; reads
/// use the record); then the live records, from the metadata database, a
/// page at a time in id order. Quarantined records are not listed. Nothing
/// is read or checked.
///
/// Only regular files at their canonical place (`shards/ab/cd/abcd…`, lower
/// case) are yielded. Anything else (stray names, files in the wrong fan-out
/// directory, symbolic links) is skipped and never touched, so a scrub does
/// not delete what it does not understand.
///
/// Shards written or removed while the walk runs may or may not be seen. A
/// shard that a migration moves from its file into a segment meanwhile is
/// never missed (the records come after the files), but may be listed
/// twice.
#[derive(Debug)]
pub struct Shards<'a> {
    /// The walk over `shards/`; `None` once it is done.
    files: Option<ShardFileIds>,
    /// The metadata database, for the records and the files' check.
    meta: &'a Metadata,
    /// The current page of live records, in reverse id order (popped from
    /// the end).
    page: Vec<Id>,
    /// The last id of the last page read; `None` before the first.
    after: Option<Id>,
    /// The last page was short: no more records.
    records_done: bool,
}

/// Live records read from the database per page by [`Shards`].
const RECORDS_PAGE: usize = 10_000;

impl<'a> Shards<'a> {
    /// The shards of the store in `shards`, a store's `shards/`, whose
    /// metadata database is `meta`.
    pub(crate) fn new(shards: &Path, meta: &'a Metadata) -> Self {
        Self {
            files: Some(ShardFileIds::in_dir(shards)),
            meta,
            page: Vec::new(),
            after: None,
            records_done: false,
        }
    }
}

impl Iterator for Shards<'_> {
    type Item = io::Result<Id>;

    fn next(&mut self) -> Option<Self::Item> {
        while let Some(files) = &mut self.files {
            match files.next() {
                None => self.files = None,
                Some(Err(e)) => return Some(Err(e)),
                Some(Ok(id)) => match self.meta.location(&id) {
                    // Read from its record: listed with the records.
                    Ok(Some(Stored::Live(_))) => {}
                    Ok(_) => return Some(Ok(id)),
                    Err(e) => return Some(Err(io::Error::other(e))),
                },
            }
        }
        if self.page.is_empty() && !self.records_done {
            match self
                .meta
                .live_locations_page(self.after.as_ref(), RECORDS_PAGE)
            {
                Ok(page) => {
                    self.records_done = page.len() < RECORDS_PAGE;
                    self.after = page.last().map(|(id, _)| *id);
                    self.page = page.into_iter().rev().map(|(id, _)| id).collect();
                }
                Err(e) => {
                    self.records_done = true;
                    return Some(Err(io::Error::other(e)));
                }
            }
        }
        self.page.pop().map(Ok)
    }
}

/// An iterator over the ids of the shard files in a store, in no particular
/// order: the first half of [`Shards`], and [`count_shard_files`](crate::count_shard_files).
/// Yields what [`Shards`] describes; shards written or removed while the
/// walk runs may or may not be seen.
#[derive(Debug)]
pub(crate) struct ShardFileIds {
    /// `shards/`, or the error opening it (yielded once).
    top: Option<io::Result<Level>>,
    /// The current `shards/ab/` and `shards/ab/cd/`.
    fan: Option<Level>,
    leaf: Option<Level>,
}

impl ShardFileIds {
    /// Walks `shards`, a store's `shards/` directory. Only lists: opens
    /// directories, never files, so it is safe beside a running store.
    pub(crate) fn in_dir(shards: &Path) -> Self {
        Self {
            top: Some(fs::read_dir(shards).map(|entries| Level {
                prefix: String::new(),
                entries,
            })),
            fan: None,
            leaf: None,
        }
    }
}

/// One directory being listed, with the hex digits its path stands for.
#[derive(Debug)]
struct Level {
    /// `""` for `shards/`, `"ab"` for `shards/ab/`, `"abcd"` below that.
    prefix: String,
    entries: ReadDir,
}

impl Iterator for ShardFileIds {
    type Item = io::Result<Id>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(leaf) = &mut self.leaf {
                match leaf.entries.next() {
                    None => self.leaf = None,
                    Some(Err(e)) => return Some(Err(e)),
                    Some(Ok(entry)) => match shard_id(&leaf.prefix, &entry) {
                        Ok(Some(id)) => return Some(Ok(id)),
                        Ok(None) => {}
                        Err(e) => return Some(Err(e)),
                    },
                }
                continue;
            }
            if let Some(fan) = &mut self.fan {
                match fan.entries.next() {
                    None => self.fan = None,
                    Some(Err(e)) => return Some(Err(e)),
                    Some(Ok(entry)) => match descend(&fan.prefix, &entry) {
                        Ok(next) => self.leaf = next,
                        Err(e) => return Some(Err(e)),
                    },
                }
                continue;
            }
            match self.top.as_mut()? {
                Err(_) => {
                    let Some(Err(e)) = self.top.take() else {
                        unreachable!("matched an error just above")
                    };
                    return Some(Err(e));
                }
                Ok(top) => match top.entries.next() {
                    None => {
                        self.top = None;
                        return None;
                    }
                    Some(Err(e)) => return Some(Err(e)),
                    Some(Ok(entry)) => match descend(&top.prefix, &entry) {
                        Ok(next) => self.fan = next,
                        Err(e) => return Some(Err(e)),
                    },
                },
            }
        }
    }
}

/// Opens a fan-out directory entry if it is one: a real directory named by
/// two lowercase hex digits. Returns `None` for anything else.
fn descend(prefix: &str, entry: &fs::DirEntry) -> io::Result<Option<Level>> {
    let name = entry.file_name();
    let Some(name) = name.to_str() else {
        return Ok(None);
    };
    let is_fan_name = name.len() == 2 && name.bytes().all(is_lower_hex);
    if !is_fan_name || !entry.file_type()?.is_dir() {
        return Ok(None);
    }
    match fs::read_dir(entry.path()) {
        Ok(entries) => Ok(Some(Level {
            prefix: format!("{prefix}{name}"),
            entries,
        })),
        // Removed while we walked: nothing to list.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The id a leaf entry stands for, if it is a regular file whose name is an
/// id in canonical (lowercase) form starting with the fan-out digits.
fn shard_id(prefix: &str, entry: &fs::DirEntry) -> io::Result<Option<Id>> {
    let name = entry.file_name();
    let Some(name) = name.to_str() else {
        return Ok(None);
    };
    if !name.starts_with(prefix) || !name.bytes().all(is_lower_hex) {
        return Ok(None);
    }
    let Ok(id) = name.parse::<Id>() else {
        return Ok(None);
    };
    if !entry.file_type()?.is_file() {
        return Ok(None);
    }
    Ok(Some(id))
}

/// The path of shard `id`'s file under `shards`, a store's `shards/`:
/// `ab/cd/<64 hex digits>`.
pub(crate) fn shard_file_path(shards: &Path, id: &Id) -> PathBuf {
    let hex = id.to_string();
    shards.join(&hex[..2]).join(&hex[2..4]).join(hex)
}

/// Whether a byte is one of `0-9a-f`, the digits shard paths are made of.
fn is_lower_hex(byte: u8) -> bool {
    matches!(byte, b'0'..=b'9' | b'a'..=b'f')
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Every directory [`sync_dir`] flushed, canonicalised, in order, by
    /// every test of this crate at once: each test looks only under its
    /// own temporary directory.
    pub(crate) static SYNCED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

    /// Takes the flushes of directories under `top` recorded so far (so
    /// the next call sees only later ones).
    pub(crate) fn synced_under(top: &Path) -> Vec<PathBuf> {
        let mut synced = SYNCED.lock().unwrap();
        let (mine, others) = synced.drain(..).partition(|dir| dir.starts_with(top));
        *synced = others;
        mine
    }

    fn files(dir: &Path) -> ShardFiles {
        ShardFiles::open(dir, true, true).unwrap()
    }

    #[test]
    fn path_fans_out_over_two_levels() {
        let dir = tempfile::tempdir().unwrap();
        let files = files(dir.path());
        let id = Id::of(b"fan");
        let hex = id.to_string();
        let expected = dir
            .path()
            .join("shards")
            .join(&hex[..2])
            .join(&hex[2..4])
            .join(&hex);
        assert_eq!(files.path(&id), expected);
    }

    #[test]
    fn stage_install_read_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let files = files(dir.path());
        for bytes in [&b""[..], b"x", &[7u8; 600_000][..]] {
            let id = Id::of(bytes);
            files.install(files.stage(bytes).unwrap(), &id).unwrap();
            let mut blocks = Vec::new();
            let Checked::Intact(read) = files.read(&id, &mut |n| blocks.push(n)).unwrap() else {
                panic!("fresh shard must read back intact");
            };
            assert_eq!(read, bytes);
            assert_eq!(blocks.iter().sum::<u64>(), bytes.len() as u64);
            assert!(blocks.iter().all(|&n| n <= READ_BLOCK));
        }
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    /// A fan-out directory that exists but may never have been flushed
    /// into its parent (an earlier install created it and failed to flush,
    /// or the process died in between) used to be trusted as durable.
    #[test]
    fn install_flushes_existing_fan_out_directories_once() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().canonicalize().unwrap();
        let files = files(&top);
        let id = Id::of(b"first");
        let leaf = files.path(&id).parent().unwrap().to_owned();
        let fan = leaf.parent().unwrap().to_owned();
        fs::create_dir_all(&leaf).unwrap();
        synced_under(&top);

        files.install(files.stage(b"first").unwrap(), &id).unwrap();
        let synced = synced_under(&top);
        assert!(synced.contains(&top.join("shards")), "{synced:?}");
        assert!(synced.contains(&fan), "{synced:?}");
        assert!(synced.contains(&leaf), "{synced:?}");

        // Once per directory: a second shard in the same leaf flushes only
        // the leaf that gained its name.
        let mut second = *id.as_bytes();
        second[31] ^= 1;
        let second = Id::from_bytes(second);
        files
            .install(files.stage(b"second").unwrap(), &second)
            .unwrap();
        assert_eq!(synced_under(&top), [leaf]);
    }

    #[test]
    fn oversized_file_is_damage_and_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let files = files(dir.path());
        let id = Id::of(b"big");
        let path = files.path(&id);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        // A sparse file: long, but costs no disk.
        let file = File::create(&path).unwrap();
        file.set_len(MAX_SHARD_LEN as u64 + 1).unwrap();
        let mut read = 0;
        let checked = files.read(&id, &mut |n| read += n).unwrap();
        assert!(matches!(
            checked,
            Checked::Damaged(Damage::Oversized { len }) if len == MAX_SHARD_LEN as u64 + 1
        ));
        assert_eq!(read, 0);
    }

    #[test]
    fn compare_tells_the_same_bytes_from_any_other() {
        let dir = tempfile::tempdir().unwrap();
        let files = files(dir.path());
        // Longer than a block, so the comparison spans several reads.
        let long = vec![3u8; READ_BLOCK as usize + 10];
        for expected in [&b""[..], b"abc", &long[..]] {
            let id = Id::of(expected);
            assert_eq!(files.compare(&id, expected).unwrap(), OnDisk::Missing);
            files.install(files.stage(expected).unwrap(), &id).unwrap();
            assert_eq!(files.compare(&id, expected).unwrap(), OnDisk::Same);
            let path = files.path(&id);
            let mut longer = expected.to_vec();
            longer.push(0);
            let mut flipped = expected.to_vec();
            if let Some(last) = flipped.last_mut() {
                *last ^= 1;
            }
            let shorter = &expected[..expected.len().saturating_sub(1)];
            for other in [&longer[..], &flipped[..], shorter] {
                if other == expected {
                    continue;
                }
                fs::write(&path, other).unwrap();
                assert_eq!(files.compare(&id, expected).unwrap(), OnDisk::Different);
            }
        }
    }

    #[test]
    fn quarantine_picks_a_free_name() {
        let dir = tempfile::tempdir().unwrap();
        let files = files(dir.path());
        let id = Id::of(b"q");
        for n in 0..3 {
            files.install(files.stage(b"q").unwrap(), &id).unwrap();
            let to = files.quarantine(&id).unwrap();
            assert_eq!(to, dir.path().join("quarantine").join(format!("{id}.{n}")));
            assert!(!files.exists(&id).unwrap());
        }
    }

    #[test]
    fn lower_hex_is_exactly_the_path_alphabet() {
        let accepted: Vec<u8> = (0..=255u8).filter(|&b| is_lower_hex(b)).collect();
        assert_eq!(accepted, b"0123456789abcdef");
    }
}
