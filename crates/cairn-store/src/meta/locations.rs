//! The segment tables: `locations` (where each shard's record is) and
//! `segments` (live bytes per segment), for the segment layout of issue 17
//! (see the crate's `segment` module).
//!
//! | table | key | value | meaning |
//! | --- | --- | --- | --- |
//! | `locations` | shard id | 25 bytes | segment `u64`, offset `u64`, length `u64` (big-endian), state `u8`: 0 live, 1 quarantined |
//! | `segments` | segment number | `u64` | bytes of live records in it (padded footprints) |
//!
//! A location is written in the transaction that records the put
//! referencing it, and released in the transaction that drops the last
//! reference; so the live bytes of a segment always match the locations
//! that name it, and a segment's dead bytes are its length past the header
//! less its live bytes (records never acknowledged, released or
//! quarantined). Nothing here touches a segment file: a compaction reads
//! these tables to choose what to rewrite.
//!
//! A store that has only ever written shard files (`segments = false`)
//! records no location, and these tables stay empty.

use cairn_core::Id;
use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use super::Metadata;
use crate::error::QueryError;
use crate::segment::{Location, RECORD_HEADER_LEN};
use crate::{ShardLocation, ShardPlace, Shards};

/// Shard id → encoded [`Stored`] location.
pub(super) const LOCATIONS: TableDefinition<&[u8; Id::LEN], &[u8]> =
    TableDefinition::new("locations");
/// Segment number → bytes of live records in it.
pub(super) const SEGMENTS: TableDefinition<u64, u64> = TableDefinition::new("segments");

/// Length of an encoded location.
const ENCODED_LEN: usize = 25;

/// A shard's record, as the metadata database knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stored {
    /// Served from here.
    Live(Location),
    /// Found damaged: never served again; its bytes count as dead.
    Quarantined(Location),
}

impl Stored {
    fn encode(&self) -> [u8; ENCODED_LEN] {
        let (location, state) = match self {
            Self::Live(location) => (location, 0),
            Self::Quarantined(location) => (location, 1),
        };
        let mut out = [0; ENCODED_LEN];
        out[..8].copy_from_slice(&location.segment.to_be_bytes());
        out[8..16].copy_from_slice(&location.offset.to_be_bytes());
        out[16..24].copy_from_slice(&location.len.to_be_bytes());
        out[24] = state;
        out
    }

    /// Decodes a stored value of `id`; anything else than 25 bytes with a
    /// known state is damage in the database, reported as such.
    fn decode(bytes: &[u8], id: &Id) -> Result<Self, redb::Error> {
        let corrupt = || redb::Error::Corrupted(format!("location of shard {id} is unreadable"));
        let bytes: &[u8; ENCODED_LEN] = bytes.try_into().map_err(|_| corrupt())?;
        let word = |n: usize| {
            let mut b = [0; 8];
            b.copy_from_slice(&bytes[n..n + 8]);
            u64::from_be_bytes(b)
        };
        let location = Location {
            segment: word(0),
            offset: word(8),
            len: word(16),
        };
        match bytes[24] {
            0 => Ok(Self::Live(location)),
            1 => Ok(Self::Quarantined(location)),
            _ => Err(corrupt()),
        }
    }
}

impl Metadata {
    /// Where shard `id`'s bytes are in a segment, if it has a live record
    /// there; `None` for a shard in its own file, quarantined, or absent.
    /// See [`shard_place`](Self::shard_place) for either layout.
    pub fn shard_location(&self, id: &Id) -> Result<Option<ShardLocation>, QueryError> {
        Ok(match self.location(id)? {
            Some(Stored::Live(location)) => Some(self.shard_location_of(&location)),
            Some(Stored::Quarantined(_)) | None => None,
        })
    }

    /// Where shard `id`'s bytes are, in either layout: its live record in
    /// a segment if it has one, else its shard file if there is one, else
    /// `None`. These are the bytes a [`Store::get`](crate::Store::get)
    /// reads: a shard that an interrupted migration left both in a file
    /// and in a segment is read from the segment.
    ///
    /// Reads only the metadata database and looks the file up (nothing is
    /// read or checked), so it works from an [`Admin`](crate::Admin) beside
    /// a running node. The answer may be stale by the time it is used.
    pub fn shard_place(&self, id: &Id) -> Result<Option<ShardPlace>, QueryError> {
        if let Some(location) = self.shard_location(id)? {
            return Ok(Some(ShardPlace::Segment(location)));
        }
        let path = crate::shards::shard_file_path(&self.dir.join("shards"), id);
        Ok(path.is_file().then_some(ShardPlace::File(path)))
    }

    /// The public description of a live record's place.
    fn shard_location_of(&self, location: &Location) -> ShardLocation {
        ShardLocation {
            path: crate::segment::segment_path(&self.dir.join("segments"), location.segment),
            offset: location.offset + RECORD_HEADER_LEN,
            len: location.len,
            record_offset: location.offset,
            record_len: location.footprint(),
        }
    }

    /// The ids of the shards here, in shard files and in segments: see
    /// [`Shards`] (and [`Store::iter`](crate::Store::iter), the same walk).
    /// Lists files and looks up records, reading no shard, so it works
    /// from an [`Admin`](crate::Admin) beside a running node.
    pub fn shards(&self) -> Shards<'_> {
        Shards::new(&self.dir.join("shards"), self)
    }

    /// Where shard `id`'s record is, if it has one.
    pub(crate) fn location(&self, id: &Id) -> Result<Option<Stored>, redb::Error> {
        self.run(|db| {
            let txn = db.begin_read()?;
            let locations = txn.open_table(LOCATIONS)?;
            match locations.get(id.as_bytes())? {
                Some(value) => Ok(Some(Stored::decode(value.value(), id)?)),
                None => Ok(None),
            }
        })
    }

    /// Marks shard `id`'s record quarantined: never served again, its
    /// bytes dead. Returns the location it had, if it was live.
    pub(crate) fn quarantine_location(&self, id: &Id) -> Result<Option<Location>, redb::Error> {
        self.run(|db| {
            let txn = db.begin_write()?;
            let marked = {
                let mut locations = txn.open_table(LOCATIONS)?;
                let found = match locations.get(id.as_bytes())? {
                    Some(value) => Some(Stored::decode(value.value(), id)?),
                    None => None,
                };
                match found {
                    Some(Stored::Live(location)) => {
                        let quarantined = Stored::Quarantined(location).encode();
                        locations.insert(id.as_bytes(), quarantined.as_slice())?;
                        subtract_live(&mut txn.open_table(SEGMENTS)?, &location)?;
                        Some(location)
                    }
                    Some(Stored::Quarantined(_)) | None => None,
                }
            };
            self.commit(txn)?;
            Ok(marked)
        })
    }

    /// Up to `limit` live records, in id order, of shards after `after`
    /// (from the first if `None`): the scrub's walk over the segment
    /// layout, a page per read transaction.
    pub(crate) fn live_locations_page(
        &self,
        after: Option<&Id>,
        limit: usize,
    ) -> Result<Vec<(Id, Location)>, redb::Error> {
        self.run(|db| {
            let txn = db.begin_read()?;
            let locations = txn.open_table(LOCATIONS)?;
            let range = match after {
                Some(after) => locations.range::<&[u8; Id::LEN]>((
                    std::ops::Bound::Excluded(after.as_bytes()),
                    std::ops::Bound::Unbounded,
                ))?,
                None => locations.range::<&[u8; Id::LEN]>(..)?,
            };
            let mut page = Vec::new();
            for entry in range {
                if page.len() == limit {
                    break;
                }
                let (key, value) = entry?;
                let id = Id::from_bytes(*key.value());
                if let Stored::Live(location) = Stored::decode(value.value(), &id)? {
                    page.push((id, location));
                }
            }
            Ok(page)
        })
    }

    /// Records `location` as shard `id`'s record if someone references the
    /// shard and it has no live record yet (a migration's commit). Returns
    /// whether it did.
    pub(crate) fn record_location_if_held(
        &self,
        id: &Id,
        location: &Location,
    ) -> Result<bool, redb::Error> {
        self.run(|db| {
            let txn = db.begin_write()?;
            let held =
                super::refs::first_holder(&txn.open_table(super::refs::HOLDERS)?, id)?.is_some();
            let live = match txn.open_table(LOCATIONS)?.get(id.as_bytes())? {
                Some(value) => matches!(Stored::decode(value.value(), id)?, Stored::Live(_)),
                None => false,
            };
            if !held || live {
                return Ok(false);
            }
            record_location_in(&txn, id, location)?;
            self.commit(txn)?;
            Ok(true)
        })
    }

    /// Moves the records in `moves` (shard id, old location, new
    /// location) in one transaction: each only if the shard's record is
    /// still live at its old location (not dropped, quarantined or
    /// replaced meanwhile). Returns how many moved.
    pub(crate) fn relocate(&self, moves: &[(Id, Location, Location)]) -> Result<u64, redb::Error> {
        self.run(|db| {
            let txn = db.begin_write()?;
            let mut moved = 0;
            for (id, old, new) in moves {
                let current = match txn.open_table(LOCATIONS)?.get(id.as_bytes())? {
                    Some(value) => Some(Stored::decode(value.value(), id)?),
                    None => None,
                };
                if current == Some(Stored::Live(*old)) {
                    record_location_in(&txn, id, new)?;
                    moved += 1;
                }
            }
            self.commit(txn)?;
            Ok(moved)
        })
    }

    /// The number of live records in segments, by walking the locations.
    pub(crate) fn live_record_count(&self) -> Result<u64, redb::Error> {
        self.run(|db| {
            let txn = db.begin_read()?;
            let locations = txn.open_table(LOCATIONS)?;
            let mut count = 0;
            for entry in locations.iter()? {
                let (key, value) = entry?;
                let id = Id::from_bytes(*key.value());
                if let Stored::Live(_) = Stored::decode(value.value(), &id)? {
                    count += 1;
                }
            }
            Ok(count)
        })
    }

    /// Every segment with live records, with their live bytes, in number
    /// order.
    pub(crate) fn live_bytes_by_segment(&self) -> Result<Vec<(u64, u64)>, redb::Error> {
        self.run(|db| {
            let txn = db.begin_read()?;
            let segments = txn.open_table(SEGMENTS)?;
            segments
                .iter()?
                .map(|entry| {
                    let (number, live) = entry?;
                    Ok((number.value(), live.value()))
                })
                .collect()
        })
    }
}

/// Records `location` as shard `id`'s record in `txn`, releasing any record
/// it had (whose bytes become dead).
pub(super) fn record_location_in(
    txn: &WriteTransaction,
    id: &Id,
    location: &Location,
) -> Result<(), redb::Error> {
    release_location_in(txn, id)?;
    let encoded = Stored::Live(*location).encode();
    txn.open_table(LOCATIONS)?
        .insert(id.as_bytes(), encoded.as_slice())?;
    let mut segments = txn.open_table(SEGMENTS)?;
    let live = segments.get(location.segment)?.map_or(0, |v| v.value());
    segments.insert(location.segment, live.saturating_add(location.footprint()))?;
    Ok(())
}

/// Forgets shard `id`'s record in `txn`, if any; a live one's bytes become
/// dead. Returns what was recorded.
pub(super) fn release_location_in(
    txn: &WriteTransaction,
    id: &Id,
) -> Result<Option<Stored>, redb::Error> {
    let mut locations = txn.open_table(LOCATIONS)?;
    let Some(value) = locations.remove(id.as_bytes())? else {
        return Ok(None);
    };
    let stored = Stored::decode(value.value(), id)?;
    drop(value);
    drop(locations);
    if let Stored::Live(location) = &stored {
        subtract_live(&mut txn.open_table(SEGMENTS)?, location)?;
    }
    Ok(Some(stored))
}

/// Lowers the live bytes of `location`'s segment by its footprint,
/// dropping the entry at 0.
fn subtract_live(
    segments: &mut redb::Table<'_, u64, u64>,
    location: &Location,
) -> Result<(), redb::Error> {
    let live = segments.get(location.segment)?.map_or(0, |v| v.value());
    let left = live.saturating_sub(location.footprint());
    if left == 0 {
        segments.remove(location.segment)?;
    } else {
        segments.insert(location.segment, left)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::{Added, Opening, Removed};

    fn at(segment: u64, offset: u64, len: u64) -> Location {
        Location {
            segment,
            offset,
            len,
        }
    }

    #[test]
    fn a_location_is_recorded_with_its_reference_and_released_with_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let meta = Metadata::open(dir.path(), Opening::CreateIfMissing).unwrap();
        let (a, b) = (Id::of(b"a"), Id::of(b"b"));
        let (la, lb) = (at(1, 4096, 10), at(1, 8192, 5000));
        assert_eq!(
            meta.add_ref_at("ann", &a, 10, None, Some(la)).unwrap(),
            Added::New
        );
        assert_eq!(
            meta.add_ref_at("bob", &b, 5000, None, Some(lb)).unwrap(),
            Added::New
        );
        assert_eq!(meta.add_ref("bob", &a, 10, None).unwrap(), Added::New);
        assert_eq!(meta.location(&a).unwrap(), Some(Stored::Live(la)));
        assert_eq!(meta.live_bytes_by_segment().unwrap(), [(1, 4096 + 8192)]);

        // Over quota: neither the reference nor the location is recorded.
        let c = Id::of(b"c");
        assert_eq!(
            meta.add_ref_at("cy", &c, 10, Some(5), Some(at(1, 16384, 10)))
                .unwrap(),
            Added::OverQuota { usage: 0 }
        );
        assert_eq!(meta.location(&c).unwrap(), None);

        assert_eq!(meta.remove_ref("ann", &a).unwrap(), Removed::OthersRemain);
        assert!(meta.location(&a).unwrap().is_some());
        assert_eq!(meta.remove_ref("bob", &a).unwrap(), Removed::LastHolder);
        assert_eq!(meta.location(&a).unwrap(), None);
        assert_eq!(meta.live_bytes_by_segment().unwrap(), [(1, 8192)]);

        assert_eq!(meta.remove_all_refs(&b).unwrap(), 1);
        assert_eq!(meta.location(&b).unwrap(), None);
        assert!(meta.live_bytes_by_segment().unwrap().is_empty());
    }

    #[test]
    fn a_new_record_replaces_the_old_and_quarantine_kills_it() {
        let dir = tempfile::tempdir().unwrap();
        let meta = Metadata::open(dir.path(), Opening::CreateIfMissing).unwrap();
        let id = Id::of(b"x");
        meta.add_ref_at("ann", &id, 100, None, Some(at(1, 4096, 100)))
            .unwrap();
        // A repair's put, say: the old record's bytes are dead.
        assert_eq!(
            meta.add_ref_at("ann", &id, 100, None, Some(at(2, 4096, 100)))
                .unwrap(),
            Added::AlreadyHeld
        );
        assert_eq!(meta.live_bytes_by_segment().unwrap(), [(2, 4096)]);
        assert_eq!(
            meta.quarantine_location(&id).unwrap(),
            Some(at(2, 4096, 100))
        );
        assert_eq!(
            meta.location(&id).unwrap(),
            Some(Stored::Quarantined(at(2, 4096, 100)))
        );
        assert!(meta.live_bytes_by_segment().unwrap().is_empty());
        assert_eq!(meta.quarantine_location(&id).unwrap(), None);
    }

    #[test]
    fn removing_a_user_releases_the_records_nobody_holds() {
        let dir = tempfile::tempdir().unwrap();
        let meta = Metadata::open(dir.path(), Opening::CreateIfMissing).unwrap();
        let (mine, shared) = (Id::of(b"mine"), Id::of(b"shared"));
        meta.add_ref_at("ann", &mine, 1, None, Some(at(3, 4096, 1)))
            .unwrap();
        meta.add_ref_at("ann", &shared, 1, None, Some(at(3, 8192, 1)))
            .unwrap();
        meta.add_ref("bob", &shared, 1, None).unwrap();
        let removed = meta.remove_user("ann").unwrap();
        assert_eq!(removed.unheld, [mine]);
        assert_eq!(meta.location(&mine).unwrap(), None);
        assert!(meta.location(&shared).unwrap().is_some());
        assert_eq!(meta.live_bytes_by_segment().unwrap(), [(3, 4096)]);
    }

    #[test]
    fn a_damaged_location_value_is_an_error_not_a_guess() {
        let id = Id::of(b"z");
        assert!(Stored::decode(&[0; 24], &id).is_err());
        let mut bad_state = Stored::Live(at(1, 2, 3)).encode();
        bad_state[24] = 7;
        assert!(Stored::decode(&bad_state, &id).is_err());
        let good = Stored::Quarantined(at(9, 8192, 77));
        assert_eq!(Stored::decode(&good.encode(), &id).unwrap(), good);
    }
}
