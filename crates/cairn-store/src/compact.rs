//! Compaction of segments: [`Store::compact`].
//!
//! Dropping a shard's last reference, quarantining it, or a put that failed
//! after its append leaves dead bytes in a segment; nothing reclaims them
//! until the segment is rewritten. A segment whose dead share (of its
//! length past the header) reaches [`CompactOptions::dead_share`] is
//! compacted: its live records are read and checked, appended to the open
//! segment and flushed, and then moved in the metadata database in one
//! transaction, each only if it is still live where it was (a drop,
//! quarantine or repair meanwhile wins). Once no live record names the old
//! segment, its file is deleted.
//!
//! Crash-safe: before the transaction, the records are read from the old
//! segment (the new copies are dead bytes); after it, from the new one. A
//! segment left with no live records by a crash before its deletion is
//! deleted at the next open (see [`Store::open`]). Rate-limited by
//! [`CompactOptions::max_bytes_per_second`]. The open segment is never
//! compacted.
//!
//! A live record whose header is damaged is not seen by the scan and keeps
//! its segment alive; the scrub (which walks locations, not headers)
//! quarantines it, and the next compaction deletes the segment.
//!
//! A running node compacts in the background (`cairn_node::maintenance`)
//! and stops it on shutdown through [`CompactOptions::stop`]: between two
//! records, the moves copied so far are committed (each still only if
//! live where it was) and the compaction returns with
//! [`CompactReport::stopped`]; the segment it was working on stays, its
//! remaining records still read from it, for the next compaction.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;

use crate::Store;
use crate::meta::Stored;
use crate::pace::{self, Stop, Throttle};
use crate::segment::{HEADER_LEN, Scanned};
use crate::shards::FileError;

/// How [`Store::compact`] runs.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CompactOptions {
    /// The share of a segment's bytes (past its header) that must be dead
    /// for it to be rewritten, from 0 to 1. Default: 0.5.
    pub dead_share: f64,
    /// Most bytes of live records copied per second; `None`: as fast as
    /// the disk allows. Default: 50 MB/s, so that a node serving requests
    /// is not starved.
    pub max_bytes_per_second: Option<u64>,
    /// A handle another thread can stop the compaction with (see the
    /// [module docs](self)). Default: none.
    pub stop: Option<Stop>,
}

impl Default for CompactOptions {
    fn default() -> Self {
        Self {
            dead_share: 0.5,
            max_bytes_per_second: Some(50_000_000),
            stop: None,
        }
    }
}

impl CompactOptions {
    /// These options with [`dead_share`](Self::dead_share) set.
    #[must_use]
    pub fn with_dead_share(mut self, share: f64) -> Self {
        self.dead_share = share;
        self
    }

    /// These options with [`max_bytes_per_second`](Self::max_bytes_per_second) set.
    #[must_use]
    pub fn with_max_bytes_per_second(mut self, rate: Option<u64>) -> Self {
        self.max_bytes_per_second = rate;
        self
    }

    /// These options with [`stop`](Self::stop) set.
    #[must_use]
    pub fn with_stop(mut self, stop: Stop) -> Self {
        self.stop = Some(stop);
        self
    }
}

/// What [`Store::compact`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompactReport {
    /// Segments whose live records were copied out.
    pub segments_rewritten: u64,
    /// Segment files deleted (rewritten ones, and ones with no live record).
    pub segments_removed: u64,
    /// Records moved to the open segment.
    pub records_moved: u64,
    /// Bytes of the shards moved.
    pub bytes_moved: u64,
    /// Length of the segment files deleted: what the disk got back, less
    /// the space the moved records took in the open segment.
    pub bytes_freed: u64,
    /// The compaction was stopped through [`CompactOptions::stop`] before
    /// it went through every segment.
    pub stopped: bool,
}

/// Why [`Store::compact`] stopped. What it moved so far stays moved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompactError {
    /// Listing, reading, appending to or deleting a segment failed.
    #[error("compaction cannot access {path}")]
    Io {
        /// The file or directory being worked on.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The metadata database failed.
    #[error("metadata database failed")]
    Database(#[from] redb::Error),
}

impl From<FileError> for CompactError {
    fn from(e: FileError) -> Self {
        Self::Io {
            path: e.path,
            source: e.source,
        }
    }
}

impl Store {
    /// Rewrites every segment (but the open one) whose dead share reaches
    /// `options.dead_share`, and deletes segments with no live record. See
    /// the [`compact`](crate::compact) module docs.
    pub fn compact(&self, options: &CompactOptions) -> Result<CompactReport, CompactError> {
        let mut report = CompactReport::default();
        let io_error = |path: PathBuf| move |source| CompactError::Io { path, source };
        let live: HashMap<u64, u64> = self.meta.live_bytes_by_segment()?.into_iter().collect();
        let mut numbers = self
            .segments
            .list()
            .map_err(io_error(self.dir.join("segments")))?;
        numbers.sort_unstable();
        let mut throttle = Throttle::new(options.max_bytes_per_second, options.stop.clone());
        let stopped = || pace::stopped(options.stop.as_ref());
        for number in numbers {
            if stopped() {
                report.stopped = true;
                break;
            }
            if self.segments.open_number() == Some(number) {
                continue;
            }
            let path = self.segments.path(number);
            let file_len = match self.segments.len(number) {
                Ok(len) => len,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => return Err(CompactError::Io { path, source }),
            };
            let used = file_len.saturating_sub(HEADER_LEN);
            let live_bytes = live.get(&number).copied().unwrap_or(0);
            if live_bytes > 0 {
                let dead = used.saturating_sub(live_bytes);
                if (dead as f64) < options.dead_share * used as f64 {
                    continue;
                }
                let mut moves = Vec::new();
                for scanned in self.segments.scan(number).map_err(io_error(path.clone()))? {
                    if stopped() {
                        report.stopped = true;
                        break;
                    }
                    let Scanned::Record { id, location } = scanned else {
                        continue;
                    };
                    if self.meta.location(&id)? != Some(Stored::Live(location)) {
                        continue;
                    }
                    match self.read_record(&id, &location)? {
                        Ok(bytes) => {
                            let new = self
                                .segments
                                .append(&id, &bytes)
                                .map_err(io_error(self.dir.join("segments")))?;
                            moves.push((id, location, new));
                            report.bytes_moved += location.len;
                            throttle.consume(location.len);
                        }
                        Err(_) => {
                            // Quarantined (and reported by the next scrub
                            // as missing); not copied.
                            self.quarantine_record_if_damaged::<CompactError>(&id, &mut |_| {})?;
                        }
                    }
                }
                // Stopped half way, what was copied is still moved: it is
                // as safe as a whole segment's moves, and not wasted.
                report.records_moved += self.meta.relocate(&moves)?;
                if report.stopped {
                    break;
                }
                report.segments_rewritten += 1;
                let left = self
                    .meta
                    .live_bytes_by_segment()?
                    .into_iter()
                    .any(|(n, live)| n == number && live > 0);
                if left {
                    continue;
                }
            }
            self.segments.remove(number).map_err(io_error(path))?;
            report.segments_removed += 1;
            report.bytes_freed += file_len;
        }
        Ok(report)
    }

    /// Deletes the segments that hold no live record: left by a crash
    /// after a compaction's switch, or written only by puts that never
    /// completed. Called at open, before any append.
    pub(crate) fn remove_dead_segments(&self) -> Result<(), CompactError> {
        let live: HashMap<u64, u64> = self.meta.live_bytes_by_segment()?.into_iter().collect();
        let numbers = self.segments.list().map_err(|source| CompactError::Io {
            path: self.dir.join("segments"),
            source,
        })?;
        for number in numbers {
            if live.get(&number).copied().unwrap_or(0) == 0 {
                self.segments
                    .remove(number)
                    .map_err(|source| CompactError::Io {
                        path: self.segments.path(number),
                        source,
                    })?;
            }
        }
        Ok(())
    }
}
