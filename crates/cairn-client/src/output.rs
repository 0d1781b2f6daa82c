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

use cairn_dio::{ALIGN, AlignedBuf, is_einval};
use tokio::task::JoinHandle;

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
            .field("buffer", &self.current.capacity())
            .field("filled", &self.current.len())
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
            Some(mut spare) if spare.capacity() >= grown(self.current.capacity()) => {
                spare.clear();
                spare
            }
            _ => AlignedBuf::new(grown(self.current.capacity())),
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

/// Sets or clears `O_DIRECT` on `file` ([`cairn_dio::set_direct`]), or,
/// in tests that ask for it, refuses as a file system without direct I/O.
fn set_direct(file: &File, on: bool) -> io::Result<()> {
    #[cfg(test)]
    if on && tests::REFUSE_DIRECT.with(std::cell::Cell::get) {
        const EINVAL: i32 = 22;
        return Err(io::Error::from_raw_os_error(EINVAL));
    }
    cairn_dio::set_direct(file, on)
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
        out.current.misalign_for_tests();
        out.write_all(&data).await.unwrap();
        assert!(!out.finish().await.unwrap());
        assert!(std::fs::read(&path).unwrap() == data);
    }
}
