//! Segment files: shards appended to large files, made durable in groups.
//!
//! Issue 17's write path. A [`Store`](crate::Store) opened with
//! [`StoreOptions::segments`](crate::StoreOptions::segments) (the default)
//! appends new shards here and records each one's [`Location`] in the
//! metadata database (the `meta::locations` module) in the transaction that
//! records the put; every store reads, drops, scrubs, lists and counts
//! shards of both layouts.
//! Shard files move in with [`Store::migrate`](crate::Store::migrate);
//! segments with many dead bytes are rewritten by
//! [`Store::compact`](crate::Store::compact), which uses the scan below.
//!
//! # Why
//!
//! One file per shard costs a create (an inode, a directory entry), an
//! fsync of the file, a rename and an fsync of the directory for every
//! put: perf put ext4's `ext4_create` and the per-shard flushes among the
//! largest costs of a node's put. Appending to a few large files costs one
//! `write` per shard, and one `fdatasync` shared by every put that arrives
//! while the previous one runs (group commit), as Haystack volumes and
//! SeaweedFS do.
//!
//! # Layout
//!
//! ```text
//! <dir>/segments/00000001.seg   segment 1, …, numbered from 1, never reused
//! ```
//!
//! A segment starts with a [`HEADER_LEN`]-byte header, then records, each
//! starting at a multiple of [`ALIGN`] (so a record can be written and read
//! with direct I/O, and a scan that lost its place can find the next record
//! by looking at aligned offsets only):
//!
//! | offset | bytes | segment header |
//! | --- | --- | --- |
//! | 0 | 8 | magic `CAIRNSEG` |
//! | 8 | 4 | format version, big-endian ([`FORMAT_VERSION`]) |
//! | 12 | 8 | segment number, big-endian (the file's name, repeated) |
//! | 20 | 4076 | zero |
//!
//! | offset | bytes | record header |
//! | --- | --- | --- |
//! | 0 | 8 | magic `CAIRNREC` |
//! | 8 | 32 | shard id |
//! | 40 | 8 | shard length in bytes, big-endian |
//! | 48 | 12 | zero |
//! | 60 | 4 | first 4 bytes of BLAKE3 of bytes 0..60 (guards the length) |
//! | 64 | len | the shard's bytes |
//! | … | | zero padding to the next multiple of [`ALIGN`] |
//!
//! A record is named by its [`Location`]: segment number, offset of its
//! header, and length. The metadata database will hold the location; the
//! header makes segments self-describing, so a scan can list what a
//! segment holds without the database (to rebuild it, or to check it).
//!
//! # Guarantees
//!
//! - **Acknowledged means durable.** [`Segments::append`] returns only once
//!   an `fdatasync` that began after its bytes were written has returned.
//!   Concurrent appends share that flush: the first to need one leads it,
//!   the others wait for it (or for the next one, if theirs came too late
//!   for it). Failure of the flush fails every append it was to cover.
//! - **Written past the page cache.** Records are written with direct I/O
//!   (`O_DIRECT`, from an aligned buffer: records are whole pages at page
//!   offsets already), so the kernel neither copies them into the page
//!   cache nor keeps pages no one will read soon; `perf` had that copy
//!   among the largest costs of a node's put. A file system that refuses
//!   direct I/O gets buffered writes, the same bytes.
//! - **Read back, with `verify`.** After the flush, the bytes are read
//!   again from the device (directly, or after dropping the record's pages
//!   from the page cache with `posix_fadvise(DONTNEED)` when written
//!   buffered) and compared.
//! - **Reads verify.** [`Segments::read`] checks the record header against
//!   the location and the bytes against the id; anything else is
//!   [`Damage`].
//! - **No append after a crash's tail.** Each open starts a new segment, so
//!   a record torn by a crash stays at the end of its segment, after
//!   everything that was acknowledged, and nothing is written after it.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use cairn_core::Id;
use cairn_dio::AlignedBuf;

use crate::shards::{Damage, MAX_SHARD_LEN};

/// Records start at multiples of this many bytes (a page, and the
/// alignment direct I/O needs on the filesystems we know).
pub(crate) const ALIGN: u64 = 4096;
/// Length of a segment's header; records start right after it.
pub(crate) const HEADER_LEN: u64 = ALIGN;
/// Length of a record's header.
pub(crate) const RECORD_HEADER_LEN: u64 = 64;
/// The segment format this code writes and reads.
pub(crate) const FORMAT_VERSION: u32 = 1;
/// A segment is closed and a new one started once it would pass this
/// many bytes.
pub(crate) const DEFAULT_SEGMENT_LEN: u64 = 256 * 1024 * 1024;

const SEGMENT_MAGIC: &[u8; 8] = b"CAIRNSEG";
const RECORD_MAGIC: &[u8; 8] = b"CAIRNREC";
/// Aligned buffers kept for later appends, at most this many...
const SPARE_BUFFERS: usize = 16;
/// ...of at most this many bytes each (a 4 MiB shard's record; larger ones
/// are rare and freed).
const SPARE_BUFFER_LEN: usize = 4 * 1024 * 1024 + ALIGN as usize;

/// Where a record lives: what the metadata database will keep per shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Location {
    /// The segment's number (its file name).
    pub(crate) segment: u64,
    /// Offset of the record's header in the segment.
    pub(crate) offset: u64,
    /// The shard's length in bytes.
    pub(crate) len: u64,
}

impl Location {
    /// Bytes the record takes in its segment, padding included.
    pub(crate) fn footprint(&self) -> u64 {
        padded(RECORD_HEADER_LEN + self.len)
    }
}

/// What a scan found at one aligned offset of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scanned {
    /// A record whose header is intact. Its bytes are not read: a scan
    /// lists, a read checks.
    Record { id: Id, location: Location },
    /// Bytes at `offset` that are not a record header (damage, or a tail
    /// torn by a crash). The scan goes on at the next aligned offset that
    /// holds one.
    Garbage { offset: u64 },
    /// A record header at `offset` whose record runs past the end of the
    /// file: truncated.
    Truncated { id: Id, offset: u64, len: u64 },
}

/// The open segment, written under [`Segments::writer`]'s lock.
#[derive(Debug)]
struct Writer {
    number: u64,
    file: Arc<File>,
    /// A second handle on the file, with `O_DIRECT` set, if the file
    /// system took it and direct writes have not been refused since.
    direct: Option<Arc<File>>,
    /// Where the next record goes.
    end: u64,
    /// Appends written so far, in this process: a ticket for
    /// [`Flushes`].
    written: u64,
}

/// Which appends are known durable, and whether a flush is running.
#[derive(Debug, Default)]
struct Flushes {
    /// Every append with a ticket up to this one is durable.
    durable: u64,
    /// A thread is flushing now; others wait for it.
    running: bool,
    /// The last flush that failed: appends up to this ticket fail.
    failed: Option<(u64, io::ErrorKind)>,
    /// Flushes made, for tests.
    count: u64,
}

/// The segments of one store directory. See the [module docs](self).
#[derive(Debug)]
pub(crate) struct Segments {
    dir: PathBuf,
    max_len: u64,
    sync: bool,
    verify: bool,
    /// Whether records are written with direct I/O: until the file system
    /// refuses it once.
    direct: AtomicBool,
    /// The open segment; `None` until the first append of this open, so
    /// that a store that writes nothing creates no segment.
    writer: Mutex<Option<Writer>>,
    /// The number the next segment created gets.
    next: std::sync::atomic::AtomicU64,
    flushes: Mutex<Flushes>,
    flushed: Condvar,
    /// Aligned buffers of earlier appends, for the next ones: a new one is
    /// zeroed, and two per append (the record and its read-back) cost a
    /// node about 4 % of its CPU during puts of 1 MiB shards.
    spare: Mutex<Vec<AlignedBuf>>,
    /// Held by a test to stop flushes from starting.
    #[cfg(test)]
    hold: Mutex<()>,
}

impl Segments {
    /// Opens `store_dir/segments/`, creating it if needed, and starts a new
    /// segment after the highest-numbered one there. With `direct`, records
    /// are written with direct I/O where the file system takes it.
    pub(crate) fn open(
        store_dir: &Path,
        max_len: u64,
        sync: bool,
        verify: bool,
        direct: bool,
    ) -> io::Result<Self> {
        let dir = store_dir.join("segments");
        fs::create_dir_all(&dir)?;
        let last = list(&dir)?.into_iter().max().unwrap_or(0);
        Ok(Self {
            dir,
            max_len: max_len.max(HEADER_LEN + ALIGN),
            sync,
            verify,
            direct: AtomicBool::new(direct && cfg!(target_os = "linux")),
            writer: Mutex::new(None),
            next: std::sync::atomic::AtomicU64::new(last + 1),
            flushes: Mutex::new(Flushes::default()),
            flushed: Condvar::new(),
            spare: Mutex::new(Vec::new()),
            #[cfg(test)]
            hold: Mutex::new(()),
        })
    }

    /// Whether records are being written with direct I/O (see the
    /// [module docs](self)).
    pub(crate) fn writes_direct(&self) -> bool {
        self.direct.load(Ordering::Relaxed)
    }

    /// Stops writing records with direct I/O, as a file system that refuses
    /// it makes the store do; for tests of that fallback.
    #[cfg(test)]
    fn refuse_direct(&self) {
        self.direct.store(false, Ordering::Relaxed);
        if let Some(writer) = lock(&self.writer).as_mut() {
            writer.direct = None;
        }
    }

    /// The number of the segment appends go to now, if one is open.
    pub(crate) fn open_number(&self) -> Option<u64> {
        lock(&self.writer).as_ref().map(|writer| writer.number)
    }

    /// Length of segment `number`'s file.
    pub(crate) fn len(&self, number: u64) -> io::Result<u64> {
        Ok(fs::metadata(self.path(number))?.len())
    }

    /// Deletes segment `number` (never the open one), and flushes the
    /// directory so the deletion is durable.
    pub(crate) fn remove(&self, number: u64) -> io::Result<()> {
        if self.open_number() == Some(number) {
            return Ok(());
        }
        fs::remove_file(self.path(number))?;
        if self.sync {
            File::open(&self.dir)?.sync_all()?;
        }
        Ok(())
    }

    /// The path of segment `number`.
    pub(crate) fn path(&self, number: u64) -> PathBuf {
        segment_path(&self.dir, number)
    }

    /// The numbers of the segments on disk, in no particular order.
    pub(crate) fn list(&self) -> io::Result<Vec<u64>> {
        list(&self.dir)
    }

    /// Appends shard `id`'s `bytes` (which the caller has checked hash to
    /// `id`) and returns its location once durable (and, with `verify`,
    /// read back and compared).
    pub(crate) fn append(&self, id: &Id, bytes: &[u8]) -> io::Result<Location> {
        let record = encode_record(
            self.buffer(RECORD_HEADER_LEN as usize + bytes.len()),
            id,
            bytes,
        );
        let appended = self.append_record(&record, bytes.len() as u64);
        self.recycle(record);
        appended
    }

    /// An empty aligned buffer of at least `capacity` bytes: a spare one if
    /// there is one.
    fn buffer(&self, capacity: usize) -> AlignedBuf {
        let mut spare = lock(&self.spare);
        match spare.iter().position(|buf| buf.capacity() >= capacity) {
            Some(at) => spare.swap_remove(at),
            None => AlignedBuf::new(capacity),
        }
    }

    /// Keeps `buf` for a later [`buffer`](Self::buffer), if there is room.
    fn recycle(&self, mut buf: AlignedBuf) {
        let mut spare = lock(&self.spare);
        if buf.capacity() <= SPARE_BUFFER_LEN && spare.len() < SPARE_BUFFERS {
            buf.clear();
            spare.push(buf);
        }
    }

    /// [`append`](Self::append) of an encoded record of a shard of `len`
    /// bytes.
    fn append_record(&self, record: &AlignedBuf, len: u64) -> io::Result<Location> {
        let (location, file, direct, ticket) = {
            let mut slot = lock(&self.writer);
            let full = slot.as_ref().is_some_and(|writer| {
                writer.end + record.len() as u64 > self.max_len && writer.end > HEADER_LEN
            });
            if full && let Some(writer) = slot.as_ref() {
                // Close this segment: flushed now, so that a flush of the
                // next one covers every append before it.
                if self.sync {
                    writer.file.sync_data()?;
                }
            }
            let writer = match slot.take() {
                Some(writer) if !full => slot.insert(writer),
                old => {
                    let number = self.next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let mut writer =
                        create_segment(&self.dir, number, self.sync, self.writes_direct())?;
                    // Tickets count on across segments.
                    writer.written = old.map_or(0, |old| old.written);
                    slot.insert(writer)
                }
            };
            let offset = writer.end;
            let direct = self.write_record(writer, record, offset)?;
            writer.end += record.len() as u64;
            writer.written += 1;
            let location = Location {
                segment: writer.number,
                offset,
                len,
            };
            let reader = if direct { &writer.direct } else { &None };
            let reader = Arc::clone(reader.as_ref().unwrap_or(&writer.file));
            (location, reader, direct, writer.written)
        };
        if self.sync {
            self.durable(ticket)?;
        }
        if self.verify {
            // The same aligned buffer size for the read, so that a direct
            // read is aligned as well.
            let mut back = self.buffer(record.len());
            if !direct {
                drop_cached_pages(&file, location.offset, location.footprint());
            }
            let read = file.read_exact_at(back.filled_mut(record.len()), location.offset);
            let same = back.filled() == record.filled();
            self.recycle(back);
            read?;
            if !same {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("segment {} read back other bytes", location.segment),
                ));
            }
        }
        Ok(location)
    }

    /// Writes `record` at `offset` of the open segment: directly if the
    /// writer has a direct handle, buffered otherwise or if the direct
    /// write is refused (`EINVAL`: then direct I/O stays off for this
    /// store). Returns whether the bytes went directly.
    fn write_record(
        &self,
        writer: &mut Writer,
        record: &AlignedBuf,
        offset: u64,
    ) -> io::Result<bool> {
        if let Some(direct) = &writer.direct {
            match direct.write_all_at(record.filled(), offset) {
                Ok(()) => return Ok(true),
                Err(e) if cairn_dio::is_einval(&e) => {
                    self.direct.store(false, Ordering::Relaxed);
                    writer.direct = None;
                }
                Err(e) => return Err(e),
            }
        }
        writer.file.write_all_at(record.filled(), offset)?;
        Ok(false)
    }

    /// Waits until append `ticket` is durable, leading a flush if none is
    /// running. One flush covers every append written before it starts.
    fn durable(&self, ticket: u64) -> io::Result<()> {
        let mut flushes = lock(&self.flushes);
        loop {
            if let Some((through, kind)) = flushes.failed
                && through >= ticket
                && flushes.durable < ticket
            {
                return Err(io::Error::new(kind, "flushing the segment failed"));
            }
            if flushes.durable >= ticket {
                return Ok(());
            }
            if flushes.running {
                flushes = self
                    .flushed
                    .wait(flushes)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                continue;
            }
            flushes.running = true;
            drop(flushes);
            #[cfg(test)]
            drop(lock(&self.hold));
            // What this flush covers: everything written to the open file
            // so far (earlier segments were flushed when they were closed).
            let (file, through) = {
                let slot = lock(&self.writer);
                match slot.as_ref() {
                    Some(writer) => (Some(Arc::clone(&writer.file)), writer.written),
                    None => (None, 0),
                }
            };
            let result = file.map_or(Ok(()), |file| file.sync_data());
            flushes = lock(&self.flushes);
            flushes.running = false;
            flushes.count += 1;
            match &result {
                Ok(()) => flushes.durable = flushes.durable.max(through),
                Err(e) => flushes.failed = Some((through, e.kind())),
            }
            self.flushed.notify_all();
        }
    }

    /// Flushes made so far (for tests of group commit).
    #[cfg(test)]
    fn flush_count(&self) -> u64 {
        lock(&self.flushes).count
    }

    /// Reads and verifies the record of shard `id` at `location`.
    pub(crate) fn read(&self, id: &Id, location: &Location) -> io::Result<Result<Vec<u8>, Damage>> {
        let file = match File::open(self.path(location.segment)) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Err(unreadable(&e)));
            }
            Err(e) => return Err(e),
        };
        if location.len > MAX_SHARD_LEN as u64 {
            return Ok(Err(Damage::Oversized { len: location.len }));
        }
        let read = if self.writes_direct() && cairn_dio::set_direct(&file, true).is_ok() {
            match self.read_directly(&file, location) {
                // Refused after all (this handle, this file system): that
                // says nothing about the record, so read it buffered.
                Err(e) if cairn_dio::is_einval(&e) => cairn_dio::set_direct(&file, false)
                    .and_then(|()| read_header_and_shard(&file, location)),
                read => read,
            }
        } else {
            read_header_and_shard(&file, location)
        };
        let (header, bytes) = match read {
            Ok(read) => read,
            Err(e) => return Ok(Err(unreadable(&e))),
        };
        match decode_header(&header) {
            Some((found, len)) if found == *id && len == location.len => {}
            _ => {
                return Ok(Err(Damage::Mismatch {
                    actual: Id::of(&bytes),
                }));
            }
        }
        let actual = Id::of(&bytes);
        if actual != *id {
            return Ok(Err(Damage::Mismatch { actual }));
        }
        Ok(Ok(bytes))
    }

    /// [`read_header_and_shard`] with direct I/O: the whole record (it is
    /// whole pages at a page offset) from the device into a spare aligned
    /// buffer, and the shard copied out of it.
    fn read_directly(
        &self,
        file: &File,
        location: &Location,
    ) -> io::Result<([u8; RECORD_HEADER_LEN as usize], Vec<u8>)> {
        let footprint = usize::try_from(location.footprint()).map_err(io::Error::other)?;
        let mut record = self.buffer(footprint);
        let read = file.read_exact_at(record.filled_mut(footprint), location.offset);
        let got = read.map(|()| {
            let (header, rest) = record.filled().split_at(RECORD_HEADER_LEN as usize);
            let header: [u8; RECORD_HEADER_LEN as usize] =
                header.try_into().expect("a header's length");
            (header, rest[..location.len as usize].to_vec())
        });
        self.recycle(record);
        got
    }

    /// Whether the record of shard `id` at `location` looks intact without
    /// reading the shard: its header is there and names `id` and the
    /// length, and the file is long enough to hold the shard. What a store
    /// can say about a record for the price of one small read, as a file's
    /// length is for a shard file; flipped bits in the shard need a full
    /// [`read`](Self::read). Any error looking counts as not intact (the
    /// caller's full read tells damage from a failure).
    pub(crate) fn looks_intact(&self, id: &Id, location: &Location) -> bool {
        let look = || -> io::Result<bool> {
            let file = File::open(self.path(location.segment))?;
            if file.metadata()?.len() < location.offset + RECORD_HEADER_LEN + location.len {
                return Ok(false);
            }
            let mut header = [0u8; RECORD_HEADER_LEN as usize];
            file.read_exact_at(&mut header, location.offset)?;
            Ok(decode_header(&header) == Some((*id, location.len)))
        };
        look().unwrap_or(false)
    }

    /// Lists what segment `number` holds, in file order. Reads only
    /// headers; see [`Scanned`].
    pub(crate) fn scan(&self, number: u64) -> io::Result<Vec<Scanned>> {
        scan(&self.path(number), number)
    }
}

/// The number of records whose header is intact in the segments of the
/// store directory `store_dir`, by scanning every segment's headers (live
/// or not: without the metadata database, nothing tells them apart). 0
/// if there is no `segments/`. Opens files for reading only.
pub(crate) fn count_records(store_dir: &Path) -> io::Result<u64> {
    let dir = store_dir.join("segments");
    let numbers = match list(&dir) {
        Ok(numbers) => numbers,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut count = 0;
    for number in numbers {
        let records = scan(&segment_path(&dir, number), number)?;
        count += records
            .iter()
            .filter(|found| matches!(found, Scanned::Record { .. }))
            .count() as u64;
    }
    Ok(count)
}

/// [`Segments::scan`] of the segment file at `path`, numbered `number`.
fn scan(path: &Path, number: u64) -> io::Result<Vec<Scanned>> {
    let file = File::open(path)?;
    let file_len = file.metadata()?.len();
    let mut found = Vec::new();
    let mut offset = HEADER_LEN;
    let mut in_garbage = false;
    let mut header = [0u8; RECORD_HEADER_LEN as usize];
    while offset + RECORD_HEADER_LEN <= file_len {
        file.read_exact_at(&mut header, offset)?;
        match decode_header(&header) {
            Some((id, len)) => {
                in_garbage = false;
                let location = Location {
                    segment: number,
                    offset,
                    len,
                };
                if offset + RECORD_HEADER_LEN + len > file_len {
                    found.push(Scanned::Truncated { id, offset, len });
                    break;
                }
                found.push(Scanned::Record { id, location });
                offset += location.footprint();
            }
            None => {
                // Zero padding at the end of the file is what an
                // append in progress leaves; anything else is damage.
                if !in_garbage && header.iter().any(|&b| b != 0) {
                    found.push(Scanned::Garbage { offset });
                    in_garbage = true;
                }
                offset += ALIGN;
            }
        }
    }
    Ok(found)
}

/// `n` rounded up to a multiple of [`ALIGN`].
fn padded(n: u64) -> u64 {
    n.div_ceil(ALIGN) * ALIGN
}

/// The record for `id` and `bytes`: header, bytes, zero padding, in a
/// buffer aligned for direct I/O.
fn encode_record(mut record: AlignedBuf, id: &Id, bytes: &[u8]) -> AlignedBuf {
    let mut header = [0u8; RECORD_HEADER_LEN as usize];
    header[..8].copy_from_slice(RECORD_MAGIC);
    header[8..40].copy_from_slice(id.as_bytes());
    header[40..48].copy_from_slice(&(bytes.len() as u64).to_be_bytes());
    let check = header_check(&header[..60]);
    header[60..].copy_from_slice(&check);
    record.clear();
    record.fill(&header);
    record.fill(bytes);
    record.pad_to_align();
    record
}

/// The header and the shard bytes of the record at `location`, read from
/// `file` straight into the vector that is returned: not zeroed first, and
/// not copied out of a buffer that holds the header as well (a node reads a
/// GiB of shards per GiB served). Fewer bytes than the record holds is an
/// `UnexpectedEof`.
fn read_header_and_shard(
    file: &File,
    location: &Location,
) -> io::Result<([u8; RECORD_HEADER_LEN as usize], Vec<u8>)> {
    let len = usize::try_from(location.len).map_err(io::Error::other)?;
    let mut header = [0u8; RECORD_HEADER_LEN as usize];
    file.read_exact_at(&mut header, location.offset)?;
    let mut bytes = Vec::with_capacity(len);
    let body = location.offset + RECORD_HEADER_LEN;
    while bytes.len() < len {
        let at = body + bytes.len() as u64;
        match rustix::io::pread(file, rustix::buffer::spare_capacity(&mut bytes), at) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok((header, bytes))
}

/// The check bytes of a record header's first 60 bytes.
fn header_check(first: &[u8]) -> [u8; 4] {
    let hash = Id::of(first);
    let mut check = [0; 4];
    check.copy_from_slice(&hash.as_bytes()[..4]);
    check
}

/// The id and length in a record header, if it is one (magic and check
/// intact, length within bounds).
fn decode_header(header: &[u8; RECORD_HEADER_LEN as usize]) -> Option<(Id, u64)> {
    if &header[..8] != RECORD_MAGIC || header[60..] != header_check(&header[..60]) {
        return None;
    }
    let id: [u8; Id::LEN] = header[8..40].try_into().ok()?;
    let len = u64::from_be_bytes(header[40..48].try_into().ok()?);
    (len <= MAX_SHARD_LEN as u64).then(|| (Id::from_bytes(id), len))
}

/// The path of segment `number` in `dir`, a store's `segments/`.
pub(crate) fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:08}.seg"))
}

/// The numbers of the segment files in `dir`; other names are skipped.
fn list(dir: &Path) -> io::Result<Vec<u64>> {
    let mut numbers = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        if let Some(number) = name
            .to_str()
            .and_then(|name| name.strip_suffix(".seg"))
            .and_then(|stem| stem.parse().ok())
        {
            numbers.push(number);
        }
    }
    Ok(numbers)
}

/// Creates segment `number` with its header, flushed (with `sync`) along
/// with the directory entry, so that a record's flush never depends on a
/// header or a name that could still be lost.
///
/// With `direct`, also opens the file a second time for direct I/O; a file
/// system that refuses it leaves the writer without that handle.
fn create_segment(dir: &Path, number: u64, sync: bool, direct: bool) -> io::Result<Writer> {
    let path = segment_path(dir, number);
    let file = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    let mut header = vec![0u8; HEADER_LEN as usize];
    header[..8].copy_from_slice(SEGMENT_MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_be_bytes());
    header[12..20].copy_from_slice(&number.to_be_bytes());
    file.write_all_at(&header, 0)?;
    if sync {
        file.sync_all()?;
        File::open(dir)?.sync_all()?;
    }
    let direct = if direct {
        let handle = File::options().read(true).write(true).open(&path)?;
        cairn_dio::set_direct(&handle, true)
            .ok()
            .map(|()| Arc::new(handle))
    } else {
        None
    };
    Ok(Writer {
        number,
        file: Arc::new(file),
        direct,
        end: HEADER_LEN,
        written: 0,
    })
}

fn unreadable(e: &io::Error) -> Damage {
    Damage::Unreadable {
        kind: e.kind(),
        reason: e.to_string(),
    }
}

/// Locks `mutex`, ignoring poison: the state behind these locks is changed
/// only in steps that cannot panic half-way.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Asks the kernel to drop the cached pages of `len` bytes at `offset`, so
/// that the read that follows goes to the device.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
fn drop_cached_pages(file: &File, offset: u64, len: u64) {
    let _ = rustix::fs::fadvise(
        file,
        offset,
        std::num::NonZeroU64::new(len),
        rustix::fs::Advice::DontNeed,
    );
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
fn drop_cached_pages(_file: &File, _offset: u64, _len: u64) {}

#[cfg(test)]
mod tests {
    use std::thread;

    use super::*;

    fn shard(seed: u64, len: usize) -> (Id, Vec<u8>) {
        let bytes = testdata::seeded_bytes(seed, len);
        (Id::of(&bytes), bytes)
    }

    fn open(dir: &Path, max_len: u64) -> Segments {
        Segments::open(dir, max_len, true, true, true).unwrap()
    }

    /// Appends records of edge sizes (around a page and a header) and
    /// returns them with their locations, after checking each reads back.
    fn append_edge_sizes(segments: &Segments) -> Vec<((Id, Vec<u8>), Location)> {
        [0, 1, 63, 64, 4031, 4032, 4033, 100_000, 1024 * 1024 + 7]
            .into_iter()
            .enumerate()
            .map(|(n, len)| {
                let (id, bytes) = shard(n as u64, len);
                let location = segments.append(&id, &bytes).unwrap();
                assert_eq!(segments.read(&id, &location).unwrap().unwrap(), bytes);
                ((id, bytes), location)
            })
            .collect()
    }

    /// A record encoded into a spare buffer that held a longer record
    /// carries none of the old bytes: smaller shards after larger ones read
    /// back and scan as themselves.
    #[test]
    fn spare_buffers_carry_nothing_of_earlier_records() {
        let dir = tempfile::tempdir().unwrap();
        let segments = open(dir.path(), DEFAULT_SEGMENT_LEN);
        let shards: Vec<_> = [1024 * 1024 + 7, 100_000, 4033, 64, 1, 0]
            .into_iter()
            .enumerate()
            .map(|(n, len)| shard(n as u64 + 50, len))
            .collect();
        let mut locations = Vec::new();
        for (id, bytes) in &shards {
            locations.push(segments.append(id, bytes).unwrap());
            assert!(!lock(&segments.spare).is_empty(), "the buffers are kept");
        }
        for ((id, bytes), location) in shards.iter().zip(&locations) {
            assert_eq!(segments.read(id, location).unwrap().unwrap(), *bytes);
        }
        let scanned = segments.scan(locations[0].segment).unwrap();
        assert_eq!(scanned.len(), shards.len(), "{scanned:?}");
    }

    /// Records go to the device with direct I/O where the file system takes
    /// it (Linux, on the disk the tests build on), and come back intact.
    #[cfg(target_os = "linux")]
    #[test]
    fn records_are_written_directly_where_the_file_system_takes_it() {
        let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target");
        fs::create_dir_all(&target).unwrap();
        let dir = tempfile::tempdir_in(target).unwrap();
        let segments = open(dir.path(), DEFAULT_SEGMENT_LEN);
        let appended = append_edge_sizes(&segments);
        assert!(lock(&segments.writer).as_ref().unwrap().direct.is_some());
        assert!(segments.writes_direct());
        drop(segments);
        // Reopened (a new segment for appends), every record still reads.
        let segments = open(dir.path(), DEFAULT_SEGMENT_LEN);
        for ((id, bytes), location) in appended {
            assert_eq!(segments.read(&id, &location).unwrap().unwrap(), bytes);
        }
    }

    /// A file system that refuses direct I/O gets the same records,
    /// written buffered, from the next append on.
    #[test]
    fn a_refusal_of_direct_io_goes_on_buffered() {
        let dir = tempfile::tempdir().unwrap();
        let segments = open(dir.path(), DEFAULT_SEGMENT_LEN);
        let (id, bytes) = shard(99, 5000);
        let first = segments.append(&id, &bytes).unwrap();
        segments.refuse_direct();
        let appended = append_edge_sizes(&segments);
        assert!(!segments.writes_direct());
        assert!(lock(&segments.writer).as_ref().unwrap().direct.is_none());
        assert_eq!(segments.read(&id, &first).unwrap().unwrap(), bytes);
        let scanned = segments.scan(first.segment).unwrap();
        assert_eq!(scanned.len(), appended.len() + 1, "{scanned:?}");
    }

    #[test]
    fn appended_records_read_back_and_scan_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let segments = open(dir.path(), DEFAULT_SEGMENT_LEN);
        let shards: Vec<_> = [0, 1, 63, 64, 4031, 4032, 4033, 100_000]
            .into_iter()
            .enumerate()
            .map(|(n, len)| shard(n as u64, len))
            .collect();
        let locations: Vec<_> = shards
            .iter()
            .map(|(id, bytes)| segments.append(id, bytes).unwrap())
            .collect();
        for ((id, bytes), location) in shards.iter().zip(&locations) {
            assert_eq!(location.offset % ALIGN, 0);
            assert_eq!(segments.read(id, location).unwrap().unwrap(), *bytes);
        }
        let scanned = segments.scan(locations[0].segment).unwrap();
        let expected: Vec<_> = shards
            .iter()
            .zip(&locations)
            .map(|((id, _), location)| Scanned::Record {
                id: *id,
                location: *location,
            })
            .collect();
        assert_eq!(scanned, expected);
    }

    #[test]
    fn segments_roll_at_their_length_and_each_open_starts_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let segments = open(dir.path(), HEADER_LEN + 3 * ALIGN);
        let locations: Vec<_> = (0..5)
            .map(|n| {
                let (id, bytes) = shard(n, 5000);
                segments.append(&id, &bytes).unwrap()
            })
            .collect();
        // Each 8 KiB record leaves 4 KiB of the 12 KiB of room: too little
        // for the next, so one record per segment.
        let numbers: Vec<_> = locations.iter().map(|l| l.segment).collect();
        assert_eq!(numbers, [1, 2, 3, 4, 5]);
        drop(segments);
        let segments = open(dir.path(), DEFAULT_SEGMENT_LEN);
        let (id, bytes) = shard(9, 10);
        assert_eq!(segments.append(&id, &bytes).unwrap().segment, 6);
        let mut listed = segments.list().unwrap();
        listed.sort_unstable();
        assert_eq!(listed, [1, 2, 3, 4, 5, 6]);
    }

    /// Appends that arrive while a flush is held back share the next one.
    #[test]
    fn appends_waiting_together_share_one_flush() {
        let dir = tempfile::tempdir().unwrap();
        let segments = open(dir.path(), DEFAULT_SEGMENT_LEN);
        let held = lock(&segments.hold);
        thread::scope(|s| {
            let handles: Vec<_> = (0..8u64)
                .map(|n| {
                    let segments = &segments;
                    s.spawn(move || {
                        let (id, bytes) = shard(n, 3000);
                        let location = segments.append(&id, &bytes).unwrap();
                        (id, bytes, location)
                    })
                })
                .collect();
            while lock(&segments.writer)
                .as_ref()
                .is_none_or(|writer| writer.written < 8)
            {
                thread::sleep(std::time::Duration::from_millis(1));
            }
            drop(held);
            for handle in handles {
                let (id, bytes, location) = handle.join().unwrap();
                assert_eq!(segments.read(&id, &location).unwrap().unwrap(), bytes);
            }
        });
        assert_eq!(segments.flush_count(), 1);
    }

    /// Many threads appending at once: every append readable once
    /// acknowledged, whatever the flushes' grouping.
    #[test]
    fn concurrent_appends_are_all_durable_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let segments = open(dir.path(), DEFAULT_SEGMENT_LEN);
        let appended: Vec<(Id, Vec<u8>, Location)> = thread::scope(|s| {
            let handles: Vec<_> = (0..8u64)
                .map(|t| {
                    let segments = &segments;
                    s.spawn(move || {
                        (0..25u64)
                            .map(|n| {
                                let (id, bytes) = shard(t * 1000 + n, 3000);
                                let location = segments.append(&id, &bytes).unwrap();
                                (id, bytes, location)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        assert!(segments.flush_count() <= appended.len() as u64);
        for (id, bytes, location) in &appended {
            assert_eq!(segments.read(id, location).unwrap().unwrap(), *bytes);
        }
    }

    #[test]
    fn a_flipped_bit_is_damage_and_the_scan_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let segments = open(dir.path(), DEFAULT_SEGMENT_LEN);
        let three: Vec<_> = (0..3).map(|n| shard(n, 6000)).collect();
        let locations: Vec<_> = three
            .iter()
            .map(|(id, bytes)| segments.append(id, bytes).unwrap())
            .collect();
        let path = segments.path(locations[1].segment);
        let mut raw = fs::read(&path).unwrap();
        // A bit of the second shard's bytes, then one of its header.
        let data = (locations[1].offset + RECORD_HEADER_LEN + 100) as usize;
        raw[data] ^= 0x10;
        fs::write(&path, &raw).unwrap();
        assert!(matches!(
            segments.read(&three[1].0, &locations[1]).unwrap(),
            Err(Damage::Mismatch { .. })
        ));
        assert_eq!(
            segments.read(&three[2].0, &locations[2]).unwrap().unwrap(),
            three[2].1
        );

        raw[locations[1].offset as usize + 41] ^= 0x01;
        fs::write(&path, &raw).unwrap();
        assert!(segments.read(&three[1].0, &locations[1]).unwrap().is_err());
        let scanned = segments.scan(locations[0].segment).unwrap();
        assert_eq!(scanned.len(), 3, "{scanned:?}");
        assert_eq!(
            scanned[1],
            Scanned::Garbage {
                offset: locations[1].offset
            }
        );
        assert!(matches!(scanned[2], Scanned::Record { id, .. } if id == three[2].0));
    }

    #[test]
    fn a_truncated_segment_is_found_by_reads_and_scans() {
        let dir = tempfile::tempdir().unwrap();
        let segments = open(dir.path(), DEFAULT_SEGMENT_LEN);
        let two: Vec<_> = (0..2).map(|n| shard(n, 10_000)).collect();
        let locations: Vec<_> = two
            .iter()
            .map(|(id, bytes)| segments.append(id, bytes).unwrap())
            .collect();
        let path = segments.path(locations[1].segment);
        let file = File::options().write(true).open(&path).unwrap();
        file.set_len(locations[1].offset + RECORD_HEADER_LEN + 5000)
            .unwrap();
        assert!(matches!(
            segments.read(&two[1].0, &locations[1]).unwrap(),
            Err(Damage::Unreadable { .. })
        ));
        assert_eq!(
            segments.read(&two[0].0, &locations[0]).unwrap().unwrap(),
            two[0].1
        );
        let scanned = segments.scan(locations[0].segment).unwrap();
        assert_eq!(
            scanned.last(),
            Some(&Scanned::Truncated {
                id: two[1].0,
                offset: locations[1].offset,
                len: 10_000
            })
        );
    }

    /// A record's location must name its own id: a read at the right
    /// offset for another id is damage, never the other shard's bytes.
    #[test]
    fn a_location_for_another_id_is_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let segments = open(dir.path(), DEFAULT_SEGMENT_LEN);
        let (a, a_bytes) = shard(1, 100);
        let (b, _) = shard(2, 100);
        let location = segments.append(&a, &a_bytes).unwrap();
        assert!(segments.read(&b, &location).unwrap().is_err());
    }
}
