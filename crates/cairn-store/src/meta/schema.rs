//! The `meta` table: database-wide settings and records, under fixed keys:
//! the schema version (checked at every open; see
//! [Versioning](super#versioning)), the last scrub, and the change feed's
//! id and next sequence number (kept by the `folders` module).

use std::path::Path;
use std::{fs, io};

use redb::{
    Database, ReadableDatabase, ReadableTable, TableDefinition, TableError, TableHandle,
    WriteTransaction,
};

use super::folders::{CHANGES, FOLDERS, fill_folder_entries_in, start_feed_in};
use super::index::INDEX;
use super::locations::{LOCATIONS, SEGMENTS};
use super::refs::{HOLDERS, REFS, USAGE};
use super::users::USERS;
use super::{Metadata, Opening};
use crate::error::{OpenError, QueryError};
use crate::scrub::ScrubRecord;

/// The schema version this code reads and writes.
pub(crate) const SCHEMA_VERSION: u64 = 4;

/// The oldest schema version this code upgrades at open, to
/// [`SCHEMA_VERSION`], in one transaction:
///
/// - version 1 lacked the `locations` and `segments` tables; the upgrade
///   creates them (empty: a version 1 store has no segments). From then on
///   a cairn that knows only version 1 refuses the store, rather than miss
///   every shard kept in a segment;
/// - version 2 lacked the `folders` and `changes` tables and the feed's
///   keys in `meta`, and wrote index entries in record format 1; the
///   upgrade rewrites every entry in format 2, in the legacy folder with
///   its whole data as its summary and a sequence number of its own, adds
///   its rows, and starts the feed (see the `folders` module). A cairn that
///   knows only version 2 refuses the store from then on, rather than
///   write entries without their rows;
/// - version 3 kept a folder's rows without values (a listing read every
///   entry's index record for its summary); the upgrade replaces them with
///   `folder_entries` rows holding each entry's version and summary.
///   Versions 1 and 2 get those rows directly, as their entries are
///   rewritten.
const OLDEST_UPGRADABLE: u64 = 1;

/// The first schema version with `folder_entries` rows: version 3 gets
/// them at its upgrade.
const FOLDER_ENTRIES_VERSION: u64 = 4;

/// The first schema version with the change feed: older ones get it at
/// their upgrade.
const FEED_VERSION: u64 = 3;

const SCHEMA_VERSION_KEY: &str = "schema_version";
const LAST_SCRUB_KEY: &str = "last_scrub";

/// Database-wide settings and records: the schema version, the last scrub,
/// the feed's id and next sequence number. Its key and value types never
/// change, so that any cairn can read the version.
pub(super) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

impl Metadata {
    /// Records a finished scrub, replacing the previous record.
    pub(crate) fn record_scrub(&self, record: &ScrubRecord) -> Result<(), redb::Error> {
        self.run(|db| {
            let txn = db.begin_write()?;
            txn.open_table(META)?
                .insert(LAST_SCRUB_KEY, record.encode().as_slice())?;
            self.commit(txn)?;
            Ok(())
        })
    }

    /// When the last [scrub](crate::Store::scrub) of this store
    /// finished and what it found, or `None` if none has finished.
    pub fn last_scrub(&self) -> Result<Option<ScrubRecord>, QueryError> {
        self.run(|db| {
            let txn = db.begin_read()?;
            let meta = txn.open_table(META)?;
            let Some(value) = meta.get(LAST_SCRUB_KEY)? else {
                return Ok(None);
            };
            Ok(Some(ScrubRecord::decode(value.value(), LAST_SCRUB_KEY)?))
        })
    }
}

/// Whether the database file at `path` does not exist or is empty: what
/// redb would initialise as a new database.
pub(super) fn is_missing_or_empty(path: &Path) -> Result<bool, OpenError> {
    match fs::metadata(path) {
        Ok(file) => Ok(file.len() == 0),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(source) => Err(OpenError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Refuses to create a new database (at `path`) in `dir` if `dir/shards/`
/// holds any shard file or `dir/segments/` any record: the old database was
/// lost, and a new, empty one would disown every shard (see
/// [`OpenError::MetadataMissing`]). For segments this matters even more
/// than for files: the open itself deletes every segment that the
/// database says holds nothing live.
pub(super) fn refuse_if_shards_exist(dir: &Path, path: &Path) -> Result<(), OpenError> {
    let shards_dir = dir.join("shards");
    let files = match crate::count_shard_files(dir) {
        Ok(files) => files,
        // A new store: no `shards/` yet.
        Err(e) if e.kind() == io::ErrorKind::NotFound && !shards_dir.exists() => 0,
        Err(source) => {
            return Err(OpenError::Io {
                path: shards_dir,
                source,
            });
        }
    };
    let records = crate::segment::count_records(dir).map_err(|source| OpenError::Io {
        path: dir.join("segments"),
        source,
    })?;
    let shards = files + records;
    if shards == 0 {
        return Ok(());
    }
    Err(OpenError::MetadataMissing {
        path: path.to_owned(),
        shards,
    })
}

/// Checks (or, for a new database, writes) the schema version and makes
/// sure every table exists, so read transactions can open them.
pub(super) fn check_schema(
    db: &Database,
    dir: &Path,
    path: &Path,
    opening: Opening,
) -> Result<(), OpenError> {
    let txn = db.begin_write().map_err(redb::Error::from)?;
    let (starts_feed, fills_folders) = match read_schema(&txn)? {
        Schema::Version(SCHEMA_VERSION) => (false, false),
        // `create_schema`, `start_feed_in` and `fill_folder_entries_in`
        // below are the upgrade: missing tables, index records rewritten,
        // new version; all in this one transaction.
        Schema::Version(found) if (OLDEST_UPGRADABLE..SCHEMA_VERSION).contains(&found) => (
            found < FEED_VERSION,
            (FEED_VERSION..FOLDER_ENTRIES_VERSION).contains(&found),
        ),
        // Returning drops (aborts) the transaction: nothing is written.
        Schema::Version(found) => {
            return Err(OpenError::UnsupportedSchema {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        Schema::Foreign => {
            return Err(OpenError::MissingSchemaVersion {
                path: path.to_owned(),
            });
        }
        // A store that crashed before its first commit, or an empty
        // file: nothing an admin could work on.
        Schema::Empty if opening == Opening::ExistingOnly => {
            return Err(OpenError::NotAStore {
                dir: dir.to_owned(),
            });
        }
        // A database redb initialised but cairn never wrote to is as new
        // as a missing one.
        Schema::Empty => {
            refuse_if_shards_exist(dir, path)?;
            (true, false)
        }
    };
    create_schema(&txn)?;
    if starts_feed {
        start_feed_in(&txn)?;
    }
    if fills_folders {
        fill_folder_entries_in(&txn)?;
    }
    txn.commit().map_err(redb::Error::from)?;
    Ok(())
}

/// What a database says about its schema.
enum Schema {
    /// A version is recorded.
    Version(u64),
    /// No version, and no other table: a new database.
    Empty,
    /// No readable version, but tables: not written by cairn.
    Foreign,
}

/// Reads the schema version recorded in a database.
fn read_schema(txn: &WriteTransaction) -> Result<Schema, redb::Error> {
    let foreign_tables = txn.list_tables()?.any(|table| table.name() != META.name());
    let meta = match txn.open_table(META) {
        Ok(meta) => meta,
        // A `meta` table of other types is someone else's.
        Err(TableError::TableTypeMismatch { .. }) => return Ok(Schema::Foreign),
        Err(e) => return Err(e.into()),
    };
    let found = meta.get(SCHEMA_VERSION_KEY)?;
    Ok(match found {
        Some(value) => match <[u8; 8]>::try_from(value.value()) {
            Ok(bytes) => Schema::Version(u64::from_be_bytes(bytes)),
            Err(_) => Schema::Foreign,
        },
        None if foreign_tables => Schema::Foreign,
        None => Schema::Empty,
    })
}

/// Writes the current schema version and creates any missing table.
fn create_schema(txn: &WriteTransaction) -> Result<(), redb::Error> {
    txn.open_table(META)?
        .insert(SCHEMA_VERSION_KEY, SCHEMA_VERSION.to_be_bytes().as_slice())?;
    txn.open_table(REFS)?;
    txn.open_table(HOLDERS)?;
    txn.open_table(USAGE)?;
    txn.open_table(USERS)?;
    txn.open_table(INDEX)?;
    txn.open_table(FOLDERS)?;
    txn.open_table(CHANGES)?;
    txn.open_table(LOCATIONS)?;
    txn.open_table(SEGMENTS)?;
    Ok(())
}
