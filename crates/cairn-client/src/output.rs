//! The output file of a get: large files written with direct I/O.
//!
//! A get of a large file used to spend half of the client's CPU time in the
//! kernel, copying the output into the page cache (`perf`: 50 % of 4.8
//! CPU-seconds per GiB, under `write`). Those pages are of no use to the
//! client: the file is fsync'd, renamed, and rarely read back at once. With
//! `O_DIRECT` the device reads the bytes straight out of our buffers, and
//! the copy goes away (1.6 instead of 3.2 CPU-seconds per GiB on the
//! machine the figures in `docs/design.md` come from).
//!
//! ```text
//! verified plaintext ─▶ aligned buffer (256 KiB, doubling to 8 MiB)
//!   full ──▶ written on a blocking thread while the next one fills
//!            (O_DIRECT: the buffer's address, its length and the file
//!            offset are all multiples of ALIGN)
//! finish ─▶ the aligned part of the last buffer, direct; O_DIRECT cleared;
//!           the unaligned tail written buffered; fsync
//! ```
//!
//! Direct I/O is used only for files of at least [`DIRECT_MIN`] bytes, when
//! the client allows it ([`Client::set_direct_io`], which `cairn` turns off
//! with `CAIRN_DIRECT_IO=0`), and when the file system accepts it: a file
//! system that refuses `O_DIRECT` answers `EINVAL` (some do so only at the
//! first write), and the file is then written buffered, as every file is on
//! systems other than Linux. What was written, and how, changes nothing
//! else: the caller still fsyncs through [`OutputFile::finish`] and renames
//! only a file whose every byte was verified.
//!
//! [`Client::set_direct_io`]: crate::Client::set_direct_io

use std::fs::File;
use std::io::{self, Write};

use tokio::task::JoinHandle;

/// Alignment of the buffers' addresses and lengths and of the file offsets
/// of direct writes: the page size, a multiple of every logical block size
/// in common use (512 and 4096 bytes).
pub const ALIGN: usize = 4096;

/// Files smaller than this are written buffered: for them the page-cache
/// copy costs little, and a direct write would only add a wait.
pub const DIRECT_MIN: u64 = 1024 * 1024;

/// The first buffer's size; each next one doubles, up to [`LARGEST_BUFFER`],
/// so that a small file does not allocate megabytes and a large one is
/// written in few, large requests.
const FIRST_BUFFER: usize = 256 * 1024;

/// The largest buffer. Two are alive at once (one filling, one being
/// written).
const LARGEST_BUFFER: usize = 8 * 1024 * 1024;

/// A buffer whose bytes start at an address that is a multiple of
/// [`ALIGN`], as `O_DIRECT` demands.
///
/// Allocated as a plain `Vec` of `capacity + ALIGN` bytes, used from the
/// first aligned address on: no `unsafe` (which the workspace forbids), at
/// the price of one page per buffer.
struct AlignedBuf {
    storage: Vec<u8>,
    /// Where the aligned part of `storage` starts.
    start: usize,
    /// Usable bytes: a multiple of [`ALIGN`].
    capacity: usize,
    /// Bytes filled, from `start`.
    len: usize,
}

impl AlignedBuf {
    /// An empty buffer of `capacity` bytes (a multiple of [`ALIGN`]).
    fn new(capacity: usize) -> Self {
        debug_assert_eq!(capacity % ALIGN, 0);
        let storage = vec![0u8; capacity + ALIGN];
        let start = (ALIGN - storage.as_ptr().addr() % ALIGN) % ALIGN;
        Self {
            storage,
            start,
            capacity,
            len: 0,
        }
    }

    /// Copies as much of `bytes` as fits; returns how much that was.
    fn fill(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.capacity - self.len);
        let at = self.start + self.len;
        self.storage[at..at + n].copy_from_slice(&bytes[..n]);
        self.len += n;
        n
    }

    fn is_full(&self) -> bool {
        self.len == self.capacity
    }

    /// The bytes filled so far, starting at an aligned address.
    fn filled(&self) -> &[u8] {
        &self.storage[self.start..self.start + self.len]
    }

    fn clear(&mut self) {
        self.len = 0;
    }
}

/// The size of the buffer after one of `capacity` bytes.
fn grown(capacity: usize) -> usize {
    (capacity * 2).min(LARGEST_BUFFER)
}

/// A write on a blocking thread: it hands back the file and the buffer.
type InFlight = JoinHandle<(File, AlignedBuf, io::Result<bool>)>;

/// A file being written by a get, from aligned buffers, with direct I/O
/// when [`begin`](Self::begin) allowed it (see the module docs).
///
/// Buffers are written on tokio's blocking threads, one at a time and in
/// order, while the next one fills. Nothing is durable until
/// [`finish`](Self::finish); dropping an `OutputFile` abandons the file
/// (a write in flight runs to its end).
pub struct OutputFile {
    /// The file, while no write is in flight.
    file: Option<File>,
    /// The write in flight, if any.
    in_flight: Option<InFlight>,
    /// The buffer being filled.
    current: AlignedBuf,
    /// The buffer last written, for reuse.
    spare: Option<AlignedBuf>,
    /// Whether direct I/O may be used, as the client says.
    allowed: bool,
    /// Whether the file is in direct mode (`O_DIRECT` set). Cleared if a
    /// direct write was refused.
    direct: bool,
}

impl std::fmt::Debug for OutputFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputFile")
            .field("direct", &self.direct)
            .field("buffer", &self.current.capacity)
            .field("filled", &self.current.len)
            .finish_non_exhaustive()
    }
}

impl OutputFile {
    /// Writes to `file`, opened for writing and empty; `allow_direct` says
    /// whether direct I/O may be tried (it is, for large files, at
    /// [`begin`](Self::begin)).
    pub fn new(file: File, allow_direct: bool) -> Self {
        Self {
            file: Some(file),
            in_flight: None,
            current: AlignedBuf::new(FIRST_BUFFER),
            spare: None,
            allowed: allow_direct,
            direct: false,
        }
    }

    /// Told the file's size before its first byte: switches to direct
    /// I/O if the file is large enough and the client and the file system
    /// allow it. Returns whether it did.
    pub fn begin(&mut self, size: u64) -> bool {
        if !self.allowed || size < DIRECT_MIN || self.direct {
            return self.direct;
        }
        let file = self.file.as_ref().expect("begin comes before any write");
        match set_direct(file, true) {
            Ok(()) => self.direct = true,
            Err(e) => {
                tracing::debug!("direct I/O refused ({e}); writing the file buffered");
            }
        }
        self.direct
    }

    /// Whether the file is being written with direct I/O.
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// Takes `bytes`, writing out each buffer that fills (waiting for the
    /// write before it).
    pub async fn write_all(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let n = self.current.fill(bytes);
            bytes = &bytes[n..];
            if self.current.is_full() {
                self.submit().await?;
            }
        }
        Ok(())
    }

    /// Writes the full current buffer on a blocking thread and starts
    /// filling the next one.
    async fn submit(&mut self) -> io::Result<()> {
        let file = self.reclaim().await?;
        let next = match self.spare.take() {
            Some(mut spare) if spare.capacity >= grown(self.current.capacity) => {
                spare.clear();
                spare
            }
            _ => AlignedBuf::new(grown(self.current.capacity)),
        };
        let full = std::mem::replace(&mut self.current, next);
        let mut direct = self.direct;
        self.in_flight = Some(tokio::task::spawn_blocking(move || {
            let written = write_out(&file, full.filled(), &mut direct).map(|()| direct);
            (file, full, written)
        }));
        Ok(())
    }

    /// Waits for the write in flight, if any, and returns the file.
    async fn reclaim(&mut self) -> io::Result<File> {
        if let Some(in_flight) = self.in_flight.take() {
            let (file, buffer, written) = in_flight.await.map_err(io::Error::other)?;
            self.spare = Some(buffer);
            self.direct = written?;
            return Ok(file);
        }
        Ok(self
            .file
            .take()
            .expect("the file is here when no write is in flight"))
    }

    /// Writes what is left (the aligned part direct, the tail buffered)
    /// and fsyncs the file. Returns whether the file was written with
    /// direct I/O throughout.
    pub async fn finish(mut self) -> io::Result<bool> {
        let file = self.reclaim().await?;
        let last = self.current;
        let mut direct = self.direct;
        tokio::task::spawn_blocking(move || {
            let filled = last.filled();
            let aligned = filled.len() / ALIGN * ALIGN;
            write_out(&file, &filled[..aligned], &mut direct)?;
            if direct {
                set_direct(&file, false)?;
            }
            write_out(&file, &filled[aligned..], &mut false)?;
            file.sync_all()?;
            Ok(direct)
        })
        .await
        .map_err(io::Error::other)?
    }
}

/// Writes all of `bytes` to `file`. If a direct write is refused with
/// `EINVAL` (a file system that accepted the flag but not the write, or
/// wants a larger alignment), clears `O_DIRECT`, sets `*direct` false and
/// goes on buffered.
fn write_out(mut file: &File, mut bytes: &[u8], direct: &mut bool) -> io::Result<()> {
    while !bytes.is_empty() {
        match file.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if *direct && is_einval(&e) => {
                tracing::debug!("a direct write was refused ({e}); going on buffered");
                set_direct(file, false)?;
                *direct = false;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Sets or clears `O_DIRECT` on `file`.
#[cfg(target_os = "linux")]
fn set_direct(file: &File, on: bool) -> io::Result<()> {
    use rustix::fs::OFlags;
    #[cfg(test)]
    if on && tests::REFUSE_DIRECT.with(std::cell::Cell::get) {
        return Err(rustix::io::Errno::INVAL.into());
    }
    let flags = rustix::fs::fcntl_getfl(file)?;
    let flags = if on {
        flags | OFlags::DIRECT
    } else {
        flags - OFlags::DIRECT
    };
    Ok(rustix::fs::fcntl_setfl(file, flags)?)
}

/// Direct I/O is used on Linux only.
#[cfg(not(target_os = "linux"))]
fn set_direct(_file: &File, on: bool) -> io::Result<()> {
    if on {
        Err(io::ErrorKind::Unsupported.into())
    } else {
        Ok(())
    }
}

#[cfg(target_os = "linux")]
fn is_einval(e: &io::Error) -> bool {
    rustix::io::Errno::from_io_error(e) == Some(rustix::io::Errno::INVAL)
}

#[cfg(not(target_os = "linux"))]
fn is_einval(_e: &io::Error) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    thread_local! {
        /// Makes `set_direct(_, true)` fail with `EINVAL` on this thread,
        /// as a file system without direct I/O does.
        pub(super) static REFUSE_DIRECT: Cell<bool> = const { Cell::new(false) };
    }

    /// Sizes with an edge: empty, around the alignment, around the first
    /// buffer and the switch to direct I/O, and several buffers plus an odd
    /// tail.
    const SIZES: &[usize] = &[
        0,
        1,
        ALIGN - 1,
        ALIGN,
        ALIGN + 1,
        FIRST_BUFFER - 1,
        FIRST_BUFFER,
        FIRST_BUFFER + 1,
        1024 * 1024 - 1,
        1024 * 1024,
        1024 * 1024 + 1,
        3 * LARGEST_BUFFER + 12_345,
    ];

    fn seeded(len: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; len];
        blake3::Hasher::new_derive_key("cairn output tests")
            .update(&(len as u64).to_le_bytes())
            .finalize_xof()
            .fill(&mut bytes);
        bytes
    }

    /// Writes `data` to a new file in `dir` in pieces of `piece` bytes;
    /// returns what `finish` said and the file's bytes.
    async fn write(
        dir: &std::path::Path,
        data: &[u8],
        piece: usize,
        allow: bool,
    ) -> (bool, Vec<u8>) {
        let path = dir.join(format!("out-{}-{piece}-{allow}", data.len()));
        let file = File::create(&path).unwrap();
        let mut out = OutputFile::new(file, allow);
        out.begin(data.len() as u64);
        for part in data.chunks(piece.max(1)) {
            out.write_all(part).await.unwrap();
        }
        let direct = out.finish().await.unwrap();
        (direct, std::fs::read(&path).unwrap())
    }

    /// A directory on the disk the tests build on (`target/`), where
    /// direct I/O works, unlike in some temporary directories.
    fn disk_dir() -> tempfile::TempDir {
        let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target");
        std::fs::create_dir_all(&target).unwrap();
        tempfile::tempdir_in(target).unwrap()
    }

    #[test]
    fn buffers_start_aligned_and_fill_to_their_capacity() {
        for capacity in [ALIGN, FIRST_BUFFER, LARGEST_BUFFER] {
            let mut buf = AlignedBuf::new(capacity);
            assert_eq!(buf.filled().as_ptr().addr() % ALIGN, 0);
            assert_eq!(buf.fill(&[7; 10]), 10);
            assert_eq!(buf.fill(&vec![8; capacity]), capacity - 10);
            assert!(buf.is_full());
            assert_eq!(buf.fill(&[9]), 0);
            assert_eq!(buf.filled().len(), capacity);
            assert_eq!(&buf.filled()[..11], &[7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8]);
            buf.clear();
            assert!(buf.filled().is_empty());
        }
    }

    #[test]
    fn buffers_grow_from_the_first_to_the_largest_size_in_aligned_steps() {
        let mut sizes = vec![FIRST_BUFFER];
        while *sizes.last().unwrap() < LARGEST_BUFFER {
            sizes.push(grown(*sizes.last().unwrap()));
        }
        assert_eq!(sizes.len(), 6, "{sizes:?}");
        assert_eq!(grown(LARGEST_BUFFER), LARGEST_BUFFER);
        assert!(sizes.iter().all(|s| s % ALIGN == 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_size_comes_back_exactly_direct_or_buffered() {
        let dir = disk_dir();
        for &len in SIZES {
            let data = seeded(len);
            for allow in [true, false] {
                // Whole, and in odd pieces that straddle every buffer edge.
                for piece in [len, 100_003] {
                    let (direct, back) = write(dir.path(), &data, piece, allow).await;
                    assert!(back == data, "{len} bytes, piece {piece}, direct {allow}");
                    let expected = allow && len as u64 >= DIRECT_MIN && cfg!(target_os = "linux");
                    assert_eq!(direct, expected, "{len} bytes, direct allowed {allow}");
                }
            }
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_file_system_that_refuses_direct_io_gets_a_buffered_file() {
        // current_thread: `begin` runs on this thread, where the refusal is set.
        let dir = disk_dir();
        REFUSE_DIRECT.with(|r| r.set(true));
        let data = seeded(2 * 1024 * 1024 + 3);
        let (direct, back) = write(dir.path(), &data, 65_537, true).await;
        REFUSE_DIRECT.with(|r| r.set(false));
        assert!(!direct);
        assert!(back == data);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_direct_write_refused_midway_goes_on_buffered() {
        let dir = disk_dir();
        let data = seeded(LARGEST_BUFFER + 5);
        let path = dir.path().join("refused");
        let mut out = OutputFile::new(File::create(&path).unwrap(), true);
        assert_eq!(out.begin(data.len() as u64), cfg!(target_os = "linux"));
        // An unaligned buffer address makes the kernel answer EINVAL, as a
        // file system with a larger block size would.
        out.current.start += 1;
        out.current.capacity -= ALIGN;
        out.write_all(&data).await.unwrap();
        assert!(!out.finish().await.unwrap());
        assert!(std::fs::read(&path).unwrap() == data);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn o_direct_is_set_and_cleared() {
        let dir = disk_dir();
        let file = File::create(dir.path().join("flags")).unwrap();
        let direct = || {
            rustix::fs::fcntl_getfl(&file)
                .unwrap()
                .contains(rustix::fs::OFlags::DIRECT)
        };
        set_direct(&file, true).unwrap();
        assert!(direct());
        set_direct(&file, false).unwrap();
        assert!(!direct());
    }
}
