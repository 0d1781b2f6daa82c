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

use cairn_core::Id;

use crate::meta::Stored;
use crate::shards::{Checked, FileError};
use crate::{MigrateError, Store};

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
}

impl Store {
    /// Moves every shard file into segments; see the [`migrate`](crate::migrate)
    /// module docs for why it is safe to kill at any moment. Runs beside
    /// puts, gets and drops; returns what it did.
    pub fn migrate(&self) -> Result<MigrateReport, MigrateError> {
        let mut report = MigrateReport::default();
        for id in self.files.iter() {
            let id = id.map_err(|source| MigrateError::Io {
                path: self.dir.join("shards"),
                source,
            })?;
            self.migrate_one(&id, &mut report)?;
        }
        Ok(report)
    }

    fn migrate_one(&self, id: &Id, report: &mut MigrateReport) -> Result<(), MigrateError> {
        let _guard = self.lock(id);
        if let Some(Stored::Live(_)) = self.meta.location(id)? {
            if self.files.remove(id)? {
                report.already_migrated += 1;
            }
            return Ok(());
        }
        if !self.meta.is_held(id)? {
            report.unreferenced += 1;
            return Ok(());
        }
        let bytes = match self.files.read(id, &mut |_| {})? {
            Checked::Intact(bytes) => bytes,
            Checked::Damaged(_) => {
                report.damaged += 1;
                return Ok(());
            }
            Checked::Missing => return Ok(()),
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
        }
        Ok(())
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
