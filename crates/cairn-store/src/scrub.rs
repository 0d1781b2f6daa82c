//! Scrub: re-read every shard, set aside the damaged ones, and reconcile
//! the files with the metadata database.
//!
//! A scrub walks `shards/` once. For each file it
//!
//! 1. reads and re-hashes it, pausing as needed so that the bytes read
//!    since the start never exceed [`ScrubOptions::max_bytes_per_second`]
//!    times the time elapsed: a node can scrub continuously without
//!    starving the reads it serves;
//! 2. quarantines it if it is damaged (after re-checking under the id's
//!    lock, so a file replaced meanwhile is not set aside by mistake),
//!    including a file that cannot be read at all
//!    ([`Damage::Unreadable`]: a bad sector, for
//!    instance), and goes on with the next;
//! 3. deletes it if no user references it and it has not been modified
//!    for [`ScrubOptions::unreferenced_grace`] (an hour by default). Such
//!    files are the garbage of a crash between the commit that dropped a
//!    shard's last reference and the deletion of its file. The check and
//!    the deletion happen under the id's lock, so a concurrent put cannot
//!    reference the file in between. The grace period is a safety margin
//!    against mistakes that disown files wholesale (see its docs);
//!    [`Store::open`](crate::Store::open) refuses the worst of them, a lost
//!    database, outright.
//!
//! Then it lists the shards the database says someone references but that
//! have no file (reading them from the database 10,000 at a time, so that
//! its memory does not grow with the store): lost to a crash between a
//! put's commit and its rename, or to damage (a referenced shard
//! quarantined in step 2 shows up here too),
//! or deleted behind the store's back. Those are what repair must refetch.
//!
//! The scrub runs alongside other operations; shards written while it runs
//! may or may not be checked. Another thread can stop it through a
//! [`ScrubStop`] given in its options: it then returns
//! [`ScrubError::Stopped`] within one read block (256 KiB), or one slice of
//! a pause (at most 100 ms), and records nothing.
//!
//! A scrub that runs to the end records when it finished and its counts as
//! a [`ScrubRecord`] in the metadata database, replacing the previous one;
//! [`Admin::last_scrub`](crate::Metadata::last_scrub) reads it while the node
//! runs. A scrub that stops on an error records nothing.
//!
//! Files that nobody references are deleted here whatever made them so:
//! a crash, or [`Admin::remove_user`](crate::Admin::remove_user), which
//! cannot delete files itself (it runs beside the node, outside the node's
//! per-id locks).

use std::io;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use cairn_core::Id;
use serde::{Deserialize, Serialize};

use crate::error::RecordError;
use crate::pace::{Stop, Throttle};
use crate::record::{self, Place};
use crate::shards::{Checked, Damage, FileError};
use crate::{Store, Unreferenced};

/// How a scrub runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScrubOptions {
    /// Upper bound on the read rate, in bytes per second; `None` reads as
    /// fast as the disk allows. `Some(0)` is treated as 1 byte per second.
    /// Default: `None`.
    pub max_bytes_per_second: Option<u64>,
    /// How long an unreferenced shard file must have gone unmodified before
    /// the scrub deletes it; younger ones are counted in
    /// [`ScrubReport::unreferenced_kept`] and left for a later scrub.
    /// Default: one hour. Tests may set zero.
    ///
    /// The only legitimate unreferenced files are left by a crash between
    /// a drop's commit and its unlink, or by
    /// [`Admin::remove_user`](crate::Admin::remove_user): garbage at any
    /// age, for which an hour's wait costs nothing. Everything else that
    /// makes files unreferenced is a mistake (a database restored from an
    /// old backup or swapped for another store's, shards copied in by
    /// hand), and the grace keeps the scrub that runs right after it from
    /// deleting what was written or copied in the last hour.
    pub unreferenced_grace: Duration,
    /// A handle another thread can stop the scrub with. Default: none.
    pub stop: Option<ScrubStop>,
}

impl Default for ScrubOptions {
    fn default() -> Self {
        Self {
            max_bytes_per_second: None,
            unreferenced_grace: Duration::from_secs(60 * 60),
            stop: None,
        }
    }
}

/// Stops a running scrub from another thread (see the [module docs](self)):
/// the store's one [`Stop`] handle, under the name it first had.
pub type ScrubStop = Stop;

impl ScrubOptions {
    /// These options with [`unreferenced_grace`](Self::unreferenced_grace)
    /// set.
    #[must_use]
    pub fn with_unreferenced_grace(mut self, grace: Duration) -> Self {
        self.unreferenced_grace = grace;
        self
    }

    /// These options with the read rate bounded to `rate` bytes per second
    /// (`None` for unbounded).
    #[must_use]
    pub fn with_max_bytes_per_second(mut self, rate: Option<u64>) -> Self {
        self.max_bytes_per_second = rate;
        self
    }

    /// These options with [`stop`](Self::stop) set.
    #[must_use]
    pub fn with_stop(mut self, stop: ScrubStop) -> Self {
        self.stop = Some(stop);
        self
    }

    fn stopped(&self) -> bool {
        crate::pace::stopped(self.stop.as_ref())
    }
}

/// A shard file the scrub found damaged or unreadable.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DamagedShard {
    /// The shard.
    pub id: Id,
    /// What is wrong with its file.
    pub damage: Damage,
    /// Where the file was moved, or `None` if moving it failed (it then
    /// stays in place, and the next read or scrub finds it again).
    pub quarantined: Option<PathBuf>,
}

/// What a scrub found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScrubReport {
    /// Shard files read, damaged ones included.
    pub shards_checked: u64,
    /// Bytes read from those files.
    pub bytes_checked: u64,
    /// Shards whose file failed its hash or could not be read, in the
    /// order found; each was moved to quarantine unless the move failed.
    pub corrupt: Vec<DamagedShard>,
    /// Shards some user references that have no file, in id order: lost
    /// (deleted, or never renamed into place by a put a crash cut short),
    /// or quarantined, by this scrub (so also in
    /// [`corrupt`](Self::corrupt)) or earlier. Their references stay:
    /// they are what the owners' repair must put back.
    pub missing: Vec<Id>,
    /// Intact shard files that no user referenced and that were deleted.
    pub unreferenced_removed: u64,
    /// Intact shard files that no user referenced but that were modified
    /// within [`ScrubOptions::unreferenced_grace`], so were kept.
    pub unreferenced_kept: u64,
}

/// The record of a finished scrub, kept in the metadata database.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScrubRecord {
    /// When the scrub finished, in seconds since the Unix epoch (0 if the
    /// clock was before it).
    pub finished_unix: u64,
    /// Shard files read ([`ScrubReport::shards_checked`]).
    pub shards_checked: u64,
    /// Bytes read from them ([`ScrubReport::bytes_checked`]).
    pub bytes_checked: u64,
    /// Shards found damaged ([`ScrubReport::corrupt`]'s length).
    pub corrupt: u64,
    /// Referenced shards without a file ([`ScrubReport::missing`]'s
    /// length).
    pub missing: u64,
}

/// Format byte of a stored scrub record.
const SCRUB_FORMAT: u8 = 1;

/// Format 1 of a scrub record: five varints, in the order of the fields.
#[derive(Serialize, Deserialize)]
struct ScrubV1 {
    finished_unix: u64,
    shards_checked: u64,
    bytes_checked: u64,
    corrupt: u64,
    missing: u64,
}

impl ScrubRecord {
    /// The record of `report`, finished at `finished_unix`.
    fn of(report: &ScrubReport, finished_unix: u64) -> Self {
        Self {
            finished_unix,
            shards_checked: report.shards_checked,
            bytes_checked: report.bytes_checked,
            corrupt: report.corrupt.len() as u64,
            missing: report.missing.len() as u64,
        }
    }

    /// The record as stored: format byte 1, then `ScrubV1` in postcard.
    /// Public for the fuzz targets, like [`decode`](Self::decode).
    pub fn encode(&self) -> Vec<u8> {
        record::encode(
            SCRUB_FORMAT,
            &ScrubV1 {
                finished_unix: self.finished_unix,
                shards_checked: self.shards_checked,
                bytes_checked: self.bytes_checked,
                corrupt: self.corrupt,
                missing: self.missing,
            },
        )
    }

    /// Decodes a stored record kept under `key` of the `meta` table (used
    /// only in errors).
    ///
    /// # Errors
    /// [`RecordError`] for another format byte, bytes that do not decode,
    /// or bytes left over.
    pub fn decode(bytes: &[u8], key: &str) -> Result<Self, RecordError> {
        let v1: ScrubV1 = record::decode(
            SCRUB_FORMAT,
            bytes,
            Place {
                table: "meta",
                key: &key,
            },
        )?;
        Ok(Self {
            finished_unix: v1.finished_unix,
            shards_checked: v1.shards_checked,
            bytes_checked: v1.bytes_checked,
            corrupt: v1.corrupt,
            missing: v1.missing,
        })
    }
}

/// Why a scrub stopped before the end.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScrubError {
    /// Listing or deleting a shard file failed, or reading one failed for
    /// a reason that says nothing about the file (out of memory or file
    /// descriptors), which would fail every read after it too. A file that
    /// cannot be read is not an error: it is reported in
    /// [`ScrubReport::corrupt`].
    #[error("scrub cannot access {path}")]
    Io {
        /// The file or directory being worked on.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The metadata database failed (also when recording the finished
    /// scrub: the work was done, but [`last_scrub`](crate::Metadata::last_scrub)
    /// still shows the previous one).
    #[error("metadata database failed")]
    Database(#[from] redb::Error),
    /// The scrub was stopped through its [`ScrubStop`] before the end.
    /// What it quarantined or deleted so far stays so; nothing was
    /// recorded.
    #[error("the scrub was stopped before the end")]
    Stopped,
}

impl From<FileError> for ScrubError {
    fn from(e: FileError) -> Self {
        Self::Io {
            path: e.path,
            source: e.source,
        }
    }
}

/// Held shards read from the database at a time when looking for missing
/// files: 320 KB of ids per read transaction, whatever the store's size.
const HOLDERS_PAGE: usize = 10_000;

/// Adds to `report.missing` every shard someone references that has no
/// file, reading the held shards `page_len` at a time.
fn find_missing(
    store: &Store,
    options: &ScrubOptions,
    page_len: usize,
    report: &mut ScrubReport,
) -> Result<(), ScrubError> {
    let mut after = None;
    loop {
        if options.stopped() {
            return Err(ScrubError::Stopped);
        }
        // Each page in its own read transaction, released before the
        // per-id checks, which take locks and may wait.
        let page = store.meta.held_shards_page(after.as_ref(), page_len)?;
        for id in &page {
            if store.is_missing(id)? {
                report.missing.push(*id);
            }
        }
        if page.len() < page_len {
            return Ok(());
        }
        after = page.last().copied();
    }
}

/// Runs a scrub over `store`; see [`Store::scrub`].
/// Checks every live record of the segment layout, a page of
/// [`HOLDERS_PAGE`] at a time, each page read in segment order; damaged
/// records are quarantined and reported.
///
/// The walk follows the database's locations rather than the segments'
/// headers: a record whose header is damaged or cut off is then still
/// found (a header scan would only see garbage there), and dead records
/// are not read at all.
fn scrub_records(
    store: &Store,
    options: &ScrubOptions,
    throttle: &mut Throttle,
    report: &mut ScrubReport,
) -> Result<(), ScrubError> {
    let mut after = None;
    loop {
        if options.stopped() {
            return Err(ScrubError::Stopped);
        }
        let page = store
            .meta
            .live_locations_page(after.as_ref(), HOLDERS_PAGE)?;
        after = page.last().map(|(id, _)| *id);
        let mut by_place = page.clone();
        by_place.sort_unstable_by_key(|(_, location)| (location.segment, location.offset));
        for (id, location) in by_place {
            if options.stopped() {
                return Err(ScrubError::Stopped);
            }
            let read = store.read_record(&id, &location)?;
            throttle.consume(location.len);
            if read.is_err()
                && let (Checked::Damaged(damage), quarantined) = store
                    .quarantine_record_if_damaged::<ScrubError>(&id, &mut |n| throttle.consume(n))?
            {
                report.corrupt.push(DamagedShard {
                    id,
                    damage,
                    quarantined,
                });
            }
            report.shards_checked += 1;
            report.bytes_checked += location.len;
        }
        if page.len() < HOLDERS_PAGE {
            return Ok(());
        }
    }
}

pub(crate) fn run(store: &Store, options: &ScrubOptions) -> Result<ScrubReport, ScrubError> {
    let mut throttle = Throttle::new(options.max_bytes_per_second, options.stop.clone());
    let mut report = ScrubReport::default();
    scrub_records(store, options, &mut throttle, &mut report)?;
    for id in store.files.iter() {
        if options.stopped() {
            return Err(ScrubError::Stopped);
        }
        let id = id.map_err(|source| FileError {
            path: store.dir.join("shards"),
            source,
        })?;
        let mut read = 0;
        let checked = store.files.read(&id, &mut |n| {
            read += n;
            throttle.consume(n);
        })?;
        match checked {
            // Removed since the listing: nothing to check.
            Checked::Missing => continue,
            Checked::Intact(_) => {
                match store.remove_if_unreferenced::<ScrubError>(&id, options.unreferenced_grace)? {
                    Unreferenced::Removed => report.unreferenced_removed += 1,
                    Unreferenced::Young => report.unreferenced_kept += 1,
                    Unreferenced::Held | Unreferenced::Absent => {}
                }
            }
            Checked::Damaged(_) => {
                let (recheck, quarantined) =
                    store.quarantine_if_damaged(&id, &mut |n| throttle.consume(n))?;
                if let Checked::Damaged(damage) = recheck {
                    report.corrupt.push(DamagedShard {
                        id,
                        damage,
                        quarantined,
                    });
                }
            }
        }
        report.shards_checked += 1;
        report.bytes_checked += read;
    }
    find_missing(store, options, HOLDERS_PAGE, &mut report)?;
    let finished_unix = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    store
        .meta
        .record_scrub(&ScrubRecord::of(&report, finished_unix))?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::thread;

    use super::*;

    #[test]
    fn a_scrub_record_round_trips() {
        let record = ScrubRecord {
            finished_unix: 1_700_000_000,
            shards_checked: 3,
            bytes_checked: 1 << 40,
            corrupt: 1,
            missing: 2,
        };
        let bytes = record.encode();
        assert_eq!(bytes[0], SCRUB_FORMAT);
        assert_eq!(ScrubRecord::decode(&bytes, "last_scrub").unwrap(), record);
    }

    /// Missing shards on both sides of page boundaries, shards with
    /// several holders, and present ones between them: each missing one is
    /// reported once, in id order.
    #[test]
    fn missing_shards_are_found_page_by_page() {
        let dir = tempfile::tempdir().unwrap();
        // Shard files, deleted below behind the store's back.
        let options = crate::StoreOptions::default().with_segments(false);
        let store = Store::open(dir.path(), options).unwrap();
        let mut missing = Vec::new();
        for n in 0..9u8 {
            let bytes = [n; 10];
            let id = Id::of(&bytes);
            store.put("ann", &id, &bytes, None).unwrap();
            store.put("bob", &id, &bytes, None).unwrap();
            if n % 3 != 0 {
                std::fs::remove_file(store.files.path(&id)).unwrap();
                missing.push(id);
            }
        }
        missing.sort();
        for page_len in [1, 2, 3, 4, 100] {
            let mut report = ScrubReport::default();
            find_missing(&store, &ScrubOptions::default(), page_len, &mut report).unwrap();
            assert_eq!(report.missing, missing, "pages of {page_len}");
        }
    }

    /// A scrub stopped half way returns `Stopped` and records nothing: a
    /// partial pass must not pass for a full one in `node status`.
    #[test]
    fn a_stopped_scrub_records_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), crate::StoreOptions::default()).unwrap();
        for n in 0..4u8 {
            let bytes = [n; 2048];
            store.put("ann", &Id::of(&bytes), &bytes, None).unwrap();
        }
        let stop = ScrubStop::new();
        // 8 KiB at 1 KiB/s: eight seconds, unless stopped.
        let options = ScrubOptions::default()
            .with_max_bytes_per_second(Some(1024))
            .with_stop(stop.clone());
        let result = thread::scope(|s| {
            s.spawn(|| {
                thread::sleep(Duration::from_millis(300));
                stop.stop();
            });
            store.scrub(&options)
        });
        assert!(matches!(result, Err(ScrubError::Stopped)), "{result:?}");
        assert_eq!(store.last_scrub().unwrap(), None);
        // Stopped for good: the next scrub with this handle stops at once.
        assert!(matches!(store.scrub(&options), Err(ScrubError::Stopped)));
        let report = store.scrub(&ScrubOptions::default()).unwrap();
        assert_eq!(report.shards_checked, 4);
    }
}
