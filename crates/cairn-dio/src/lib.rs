//! Direct I/O (`O_DIRECT`) for cairn: buffers aligned as it demands, and
//! switching a file to it and back.
//!
//! cairn writes two kinds of data it will not read back soon: a get's
//! output file (`cairn-client`'s `output` module) and a node's segment
//! appends (`cairn-store`'s `segment` module). Through the page cache, each
//! byte is copied once more by the kernel and the pages then linger,
//! evicting what is worth caching; `perf` put those copies among the
//! largest costs of both (see `docs/design.md`, "The write path"). With
//! `O_DIRECT` the device reads the bytes straight from the caller's buffer.
//!
//! Linux demands that the buffer's address, its length and the file offset
//! be multiples of the device's logical block size; [`ALIGN`] (a page) is a
//! multiple of every block size in common use. [`AlignedBuf`] gives such a
//! buffer without `unsafe`.
//!
//! A file system may refuse direct I/O, when the flag is set or only at the
//! first write, with `EINVAL` ([`is_einval`]); callers then write buffered.
//! On systems other than Linux, [`set_direct`] always refuses.

use std::fs::File;
use std::io;

/// Alignment of direct I/O's buffer addresses, lengths and file offsets:
/// the page size, a multiple of every logical block size in common use
/// (512 and 4096 bytes).
pub const ALIGN: usize = 4096;

/// A buffer whose bytes start at an address that is a multiple of
/// [`ALIGN`], as `O_DIRECT` demands.
///
/// Allocated as a plain `Vec` of `capacity + ALIGN` bytes, used from the
/// first aligned address on: no `unsafe` (which the workspace forbids), at
/// the price of one page per buffer.
pub struct AlignedBuf {
    storage: Vec<u8>,
    /// Where the aligned part of `storage` starts.
    start: usize,
    /// Usable bytes: a multiple of [`ALIGN`].
    capacity: usize,
    /// Bytes filled, from `start`.
    len: usize,
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlignedBuf")
            .field("capacity", &self.capacity)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl AlignedBuf {
    /// An empty buffer of `capacity` bytes, rounded up to a multiple of
    /// [`ALIGN`].
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.next_multiple_of(ALIGN);
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
    pub fn fill(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.capacity - self.len);
        let at = self.start + self.len;
        self.storage[at..at + n].copy_from_slice(&bytes[..n]);
        self.len += n;
        n
    }

    /// Fills with zeros up to the next multiple of [`ALIGN`], so that the
    /// filled bytes can be written directly.
    pub fn pad_to_align(&mut self) {
        let end = self.len.next_multiple_of(ALIGN);
        self.storage[self.start + self.len..self.start + end].fill(0);
        self.len = end;
    }

    /// Whether the buffer holds [`capacity`](Self::capacity) bytes.
    pub fn is_full(&self) -> bool {
        self.len == self.capacity
    }

    /// Usable bytes, a multiple of [`ALIGN`].
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes filled so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is filled.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes filled so far, starting at an aligned address.
    pub fn filled(&self) -> &[u8] {
        &self.storage[self.start..self.start + self.len]
    }

    /// `len` bytes from the start, aligned, for a direct read to fill
    /// (`len` at most the capacity). Marks them filled.
    pub fn filled_mut(&mut self, len: usize) -> &mut [u8] {
        assert!(len <= self.capacity, "{len} bytes past the capacity");
        self.len = len;
        &mut self.storage[self.start..self.start + len]
    }

    /// Moves the buffer's start one byte off alignment (a page less of
    /// capacity): a direct write of it is then refused with `EINVAL`, as on
    /// a file system with a larger block size. For tests of the fallback.
    #[doc(hidden)]
    pub fn misalign_for_tests(&mut self) {
        self.start += 1;
        self.capacity -= ALIGN;
    }

    /// Empties the buffer, keeping its memory.
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

/// Sets or clears `O_DIRECT` on `file`. Fails (with `EINVAL` on Linux) if
/// the file system refuses it; on other systems, always when setting it.
#[cfg(target_os = "linux")]
pub fn set_direct(file: &File, on: bool) -> io::Result<()> {
    use rustix::fs::OFlags;
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
pub fn set_direct(_file: &File, on: bool) -> io::Result<()> {
    if on {
        Err(io::ErrorKind::Unsupported.into())
    } else {
        Ok(())
    }
}

/// Whether `e` is `EINVAL`: how a file system refuses a direct write it
/// accepted the flag for (or one not aligned as it needs).
#[cfg(target_os = "linux")]
pub fn is_einval(e: &io::Error) -> bool {
    rustix::io::Errno::from_io_error(e) == Some(rustix::io::Errno::INVAL)
}

/// Direct I/O is used on Linux only.
#[cfg(not(target_os = "linux"))]
pub fn is_einval(_e: &io::Error) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt;

    use super::*;

    #[test]
    fn buffers_start_aligned_and_fill_to_their_capacity() {
        for capacity in [ALIGN, 3 * ALIGN, 1024 * 1024] {
            let mut buf = AlignedBuf::new(capacity);
            assert_eq!(buf.filled().as_ptr().addr() % ALIGN, 0);
            assert_eq!(buf.fill(&[7; 10]), 10);
            assert_eq!(buf.fill(&vec![8; capacity]), capacity - 10);
            assert!(buf.is_full());
            assert_eq!(buf.fill(&[9]), 0);
            assert_eq!(buf.filled().len(), capacity);
            assert_eq!(&buf.filled()[..11], &[7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8]);
            buf.clear();
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn capacities_round_up_and_padding_zeroes_to_the_next_page() {
        let mut buf = AlignedBuf::new(ALIGN + 1);
        assert_eq!(buf.capacity(), 2 * ALIGN);
        buf.fill(&vec![0xff; 2 * ALIGN]);
        buf.clear();
        buf.fill(&[1; 100]);
        buf.pad_to_align();
        assert_eq!(buf.len(), ALIGN);
        assert!(buf.filled()[100..].iter().all(|&b| b == 0), "stale bytes");
        buf.pad_to_align();
        assert_eq!(buf.len(), ALIGN, "already aligned: nothing added");
    }

    /// Where the file system takes direct I/O (this test's temporary
    /// directory, on Linux), an aligned buffer is written and read back
    /// through it.
    #[cfg(target_os = "linux")]
    #[test]
    fn aligned_buffers_go_through_direct_io_where_the_file_system_takes_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("f"))
            .unwrap();
        if let Err(e) = set_direct(&file, true) {
            assert!(is_einval(&e), "{e}");
            return;
        }
        let mut buf = AlignedBuf::new(2 * ALIGN);
        buf.fill(&[5; 5000]);
        buf.pad_to_align();
        match file.write_all_at(buf.filled(), ALIGN as u64) {
            Err(e) if is_einval(&e) => return,
            other => other.unwrap(),
        }
        let mut back = AlignedBuf::new(2 * ALIGN);
        file.read_exact_at(back.filled_mut(2 * ALIGN), ALIGN as u64)
            .unwrap();
        assert_eq!(back.filled(), buf.filled());
        set_direct(&file, false).unwrap();
    }
}
