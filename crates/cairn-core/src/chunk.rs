//! Content-defined chunking with FastCDC (v2020).
//!
//! A file is cut where a rolling hash of its content says so, not at fixed
//! offsets, so an insertion or a change in the middle of a file moves only the
//! boundaries near it and the other chunks stay identical (and deduplicate).
//!
//! Chunks are at least [`MIN_CHUNK`] bytes (except the last chunk of a file),
//! [`AVG_CHUNK`] on average and at most [`MAX_CHUNK`]. These three numbers are
//! part of the format: changing them changes every boundary and therefore
//! every chunk id of every stored file. The golden tests pin them.
//!
//! [`Chunker`] reads from any [`Read`] through a buffer of at most
//! [`Chunker::BUFFER_LEN`] bytes, so memory does not grow with the file (and
//! the buffer starts small, so a 4 KiB file does not pay for 16 MiB). It
//! uses the `fastcdc` crate's cut-point function directly rather than its
//! `StreamCDC` iterator: `StreamCDC` copies each chunk out and then shifts
//! the rest of its buffer down after every chunk (about four bytes copied per
//! input byte at 1 MiB chunks), while this buffer hands out borrowed slices
//! and only compacts once per several chunks. The cut points are the same;
//! a test checks that against `StreamCDC`.

use std::io::{self, Read};

use fastcdc::v2020::{Normalization, cut, select_masks};

/// Smallest chunk the chunker cuts (the last chunk of a file may be smaller).
pub const MIN_CHUNK: usize = 256 * 1024;
/// The chunk size the chunker aims for on average.
pub const AVG_CHUNK: usize = 1024 * 1024;
/// Largest chunk the chunker cuts.
pub const MAX_CHUNK: usize = 4 * 1024 * 1024;

/// Splits a stream into content-defined chunks.
///
/// Call [`next_chunk`](Self::next_chunk) until it returns `Ok(None)`. The
/// returned slice borrows the chunker's buffer and is valid until the next
/// call. An empty stream has no chunks.
pub struct Chunker<R> {
    reader: R,
    /// Grows (zeroed) as the stream turns out longer, up to
    /// [`BUFFER_LEN`](Self::BUFFER_LEN): a small file costs a small buffer.
    buffer: Vec<u8>,
    /// Start of the bytes not yet handed out.
    start: usize,
    /// End of the bytes read so far.
    end: usize,
    eof: bool,
    /// Stream offset of `buffer[start]`.
    offset: u64,
    mask_s: u64,
    mask_l: u64,
}

impl<R: Read> Chunker<R> {
    /// Size of the read buffer: several maximal chunks, so that compaction
    /// (moving the unread tail to the front) happens rarely.
    pub const BUFFER_LEN: usize = 4 * MAX_CHUNK;

    /// The buffer's first size; it doubles while the stream fills it.
    const FIRST_BUFFER_LEN: usize = 64 * 1024;

    /// A chunker over `reader`.
    pub fn new(reader: R) -> Self {
        let (mask_s, mask_l) = select_masks(AVG_CHUNK, Normalization::Level1);
        Self {
            reader,
            buffer: Vec::new(),
            start: 0,
            end: 0,
            eof: false,
            offset: 0,
            mask_s,
            mask_l,
        }
    }

    /// The next chunk, or `None` at the end of the stream.
    ///
    /// # Errors
    /// Any error of the underlying reader other than `Interrupted` (which is
    /// retried).
    pub fn next_chunk(&mut self) -> io::Result<Option<&[u8]>> {
        if self.end - self.start < MAX_CHUNK {
            self.refill()?;
        }
        let available = &self.buffer[self.start..self.end];
        if available.is_empty() {
            return Ok(None);
        }
        let (_, len) = cut(
            available,
            MIN_CHUNK,
            AVG_CHUNK,
            MAX_CHUNK,
            self.mask_s,
            self.mask_l,
            self.mask_s << 1,
            self.mask_l << 1,
        );
        let chunk = self.start..self.start + len;
        self.start += len;
        self.offset += len as u64;
        Ok(Some(&self.buffer[chunk]))
    }

    /// Number of bytes handed out as chunks so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Gives back the reader.
    pub fn into_inner(self) -> R {
        self.reader
    }

    /// Moves the unread bytes to the front and reads until the buffer is full
    /// or the stream ends, so that a cut always sees at least `MAX_CHUNK`
    /// bytes unless the stream is shorter.
    fn refill(&mut self) -> io::Result<()> {
        if self.eof {
            return Ok(());
        }
        self.buffer.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        while self.end < Self::BUFFER_LEN {
            if self.end == self.buffer.len() {
                let grown = (2 * self.buffer.len()).clamp(Self::FIRST_BUFFER_LEN, Self::BUFFER_LEN);
                self.buffer.resize(grown, 0);
            }
            match self.reader.read(&mut self.buffer[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lengths(data: &[u8]) -> Vec<usize> {
        let mut chunker = Chunker::new(data);
        let mut out = Vec::new();
        while let Some(chunk) = chunker.next_chunk().unwrap() {
            out.push(chunk.len());
        }
        out
    }

    #[test]
    fn empty_input_has_no_chunks() {
        assert!(lengths(&[]).is_empty());
    }

    #[test]
    fn chunks_cover_the_input_within_bounds() {
        let data = testdata::seeded_bytes(1, 20 * 1024 * 1024 + 3);
        let lens = lengths(&data);
        assert_eq!(lens.iter().sum::<usize>(), data.len());
        let (last, rest) = lens.split_last().unwrap();
        assert!(rest.iter().all(|&l| (MIN_CHUNK..=MAX_CHUNK).contains(&l)));
        assert!(*last <= MAX_CHUNK);
    }

    #[test]
    fn same_cut_points_as_fastcdc_stream() {
        // Several buffer compactions, and a small-read reader that returns a
        // few bytes at a time, must not change where the cuts fall.
        let data = testdata::seeded_bytes(2, 40 * 1024 * 1024 + 11);
        let expected: Vec<usize> =
            fastcdc::v2020::StreamCDC::new(&data[..], MIN_CHUNK, AVG_CHUNK, MAX_CHUNK)
                .map(|c| c.unwrap().length)
                .collect();
        assert_eq!(lengths(&data), expected);

        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(self.0.len()).min(4093);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut chunker = Chunker::new(Trickle(&data));
        let mut trickled = Vec::new();
        while let Some(chunk) = chunker.next_chunk().unwrap() {
            trickled.push(chunk.len());
        }
        assert_eq!(trickled, expected);
    }

    #[test]
    fn zeroes_cut_at_the_maximum() {
        let lens = lengths(&vec![0u8; 2 * MAX_CHUNK + 5]);
        assert_eq!(lens, vec![MAX_CHUNK, MAX_CHUNK, 5]);
    }

    #[test]
    fn shared_size_table_matches() {
        assert_eq!(testdata::CHUNK_MIN, MIN_CHUNK);
        assert_eq!(testdata::CHUNK_AVG, AVG_CHUNK);
        assert_eq!(testdata::CHUNK_MAX, MAX_CHUNK);
    }
}
