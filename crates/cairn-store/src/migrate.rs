//! Moving shard files (the first layout) into segments: [`Store::migrate`].
//!
//! Each shard moves on its own, under its id's lock: its file is read and
//! checked, appended to a segment and flushed, the location committed to
//! the database, and only then the file removed. A crash (kill -9, power
//! loss) at any point leaves the shard readable: before the commit, from
//! its file (the appended bytes are dead); after it, from the segment (a
//! file left behind is removed by the next migration, which finds the
//! location already recorded). Reads prefer the segment, so the two copies
//! never disagree in what is served: both hash to the id.
//!
//! Files nobody references are left for the scrub to delete (after its
//! grace period); damaged files are left for a get or the scrub to
//! quarantine and report, so that a migration never hides damage.
//!
//! A running node migrates in the background (`cairn_node::maintenance`),
//! so [`MigrateOptions`] bound the rate (paced between shards, never while
//! an id's lock is held, so a get waits at most for one shard's move) and
//! carry a [`Stop`] for shutdown; [`Store::migrate_with`] reports progress
//! after every file. A stopped migration has lost nothing: what it moved
//! stays moved, the rest is still in files, and the next one goes on.

use cairn_core::Id;

use crate::meta::Stored;
use crate::pace::{self, Stop, Throttle};
use crate::shards::{Checked, FileError};
use crate::{MigrateError, Store};

/// How [`Store::migrate_with`] runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrateOptions {
    /// Most bytes of shard files moved per second; `None`: as fast as the
    /// disk allows (`Some(0)` is taken as 1). Default: `None`, for a node
    /// that is stopped (`cairn node migrate`); a running node sets one so
    /// that the requests it serves are not starved.
    pub max_bytes_per_second: Option<u64>,
    /// A handle another thread can stop the migration with; it then
    /// returns within one shard or 100 ms of a pause, with
    /// [`MigrateReport::stopped`] set. Default: none.
    pub stop: Option<Stop>,
}

impl MigrateOptions {
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

/// What [`Store::migrate`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrateReport {
    /// Shard files moved into segments (and removed).
    pub migrated: u64,
    /// Shard files removed because an earlier, interrupted migration had
    /// already recorded their segment copy.
    pub already_migrated: u64,
    /// Shard files left in place because nobody references them (the
    /// scrub deletes them).
    pub unreferenced: u64,
    /// Shard files left in place because they are damaged (a get or the
    /// scrub quarantines and reports them).
    pub damaged: u64,
    /// Bytes of the shards moved (counted in [`migrated`](Self::migrated)).
    pub bytes_migrated: u64,
    /// The migration was stopped through [`MigrateOptions::stop`] before it
    /// reached every file; the files not reached are still in place.
    pub stopped: bool,
}

impl MigrateReport {
    /// Shard files looked at so far, whatever became of them.
    pub fn files_seen(&self) -> u64 {
        self.migrated + self.already_migrated + self.unreferenced + self.damaged
    }
}

impl Store {
    /// Moves every shard file into segments, as fast as the disk allows;
    /// see the [`migrate`](crate::migrate) module docs for why it is safe
    /// to kill at any moment. Runs beside puts, gets and drops; returns
    /// what it did.
    pub fn migrate(&self) -> Result<MigrateReport, MigrateError> {
        self.migrate_with(&MigrateOptions::default(), &mut |_| {})
    }

    /// [`migrate`](Self::migrate) at the rate and with the stop handle of
    /// `options`, calling `progress` with the report so far after every
    /// shard file looked at.
    pub fn migrate_with(
        &self,
        options: &MigrateOptions,
        progress: &mut dyn FnMut(&MigrateReport),
    ) -> Result<MigrateReport, MigrateError> {
        let mut report = MigrateReport::default();
        let mut throttle = Throttle::new(options.max_bytes_per_second, options.stop.clone());
        for id in self.files.iter() {
            if pace::stopped(options.stop.as_ref()) {
                report.stopped = true;
                break;
            }
            let id = id.map_err(|source| MigrateError::Io {
                path: self.dir.join("shards"),
                source,
            })?;
            // Paced here, with the id's lock released.
            let read = self.migrate_one(&id, &mut report)?;
            progress(&report);
            throttle.consume(read);
        }
        Ok(report)
    }

    /// Moves shard file `id` into a segment (see the module docs), and
    /// returns the bytes read.
    fn migrate_one(&self, id: &Id, report: &mut MigrateReport) -> Result<u64, MigrateError> {
        let _guard = self.lock(id);
        if let Some(Stored::Live(_)) = self.meta.location(id)? {
            if self.files.remove(id)? {
                report.already_migrated += 1;
            }
            return Ok(0);
        }
        if !self.meta.is_held(id)? {
            report.unreferenced += 1;
            return Ok(0);
        }
        let mut read = 0;
        let bytes = match self.files.read(id, &mut |n| read += n)? {
            Checked::Intact(bytes) => bytes,
            Checked::Damaged(_) => {
                report.damaged += 1;
                return Ok(read);
            }
            Checked::Missing => return Ok(0),
        };
        let location = self
            .segments
            .append(id, &bytes)
            .map_err(|source| MigrateError::Io {
                path: self.dir.join("segments"),
                source,
            })?;
        if self.meta.record_location_if_held(id, &location)? {
            self.files.remove(id)?;
            report.migrated += 1;
            report.bytes_migrated += location.len;
        }
        Ok(read)
    }
}

impl From<FileError> for MigrateError {
    fn from(e: FileError) -> Self {
        Self::Io {
            path: e.path,
            source: e.source,
        }
    }
}
