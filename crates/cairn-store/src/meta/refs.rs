//! The reference tables: `refs` (who references which shard, and its
//! length), `holders` (the same, by shard) and `usage` (bytes per user).
//! See the [module docs](super) for how they stay in step.

use cairn_core::Id;
use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use super::locations::release_location_in;
use super::{Change, Changed, Metadata};
use crate::error::QueryError;
use crate::segment::Location;

/// `(user, shard id)` → shard length in bytes.
pub(super) const REFS: TableDefinition<(&str, &[u8; Id::LEN]), u64> = TableDefinition::new("refs");
/// `(shard id, user)` → nothing: the reverse index of `REFS`.
pub(super) const HOLDERS: TableDefinition<(&[u8; Id::LEN], &str), ()> =
    TableDefinition::new("holders");
/// `user` → bytes referenced.
pub(super) const USAGE: TableDefinition<&str, u64> = TableDefinition::new("usage");

/// What adding a reference did. Only `New` changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Added {
    New,
    AlreadyHeld,
    /// Over quota; `usage` is the user's usage before the attempt.
    OverQuota {
        usage: u64,
    },
}

/// What removing a reference did, and whether other holders remain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Removed {
    NotReferenced,
    OthersRemain,
    LastHolder,
}

impl Metadata {
    /// Records that `user` references shard `id` of `len` bytes, unless it
    /// already does or `quota` (in bytes) would be exceeded.
    pub(crate) fn add_ref(
        &self,
        user: &str,
        id: &Id,
        len: u64,
        quota: Option<u64>,
    ) -> Result<Added, redb::Error> {
        self.add_ref_at(user, id, len, quota, None)
    }

    /// [`add_ref`](Self::add_ref), and, unless refused for quota, records
    /// `location` as the shard's record in the same transaction (see
    /// the `locations` module).
    pub(crate) fn add_ref_at(
        &self,
        user: &str,
        id: &Id,
        len: u64,
        quota: Option<u64>,
        location: Option<Location>,
    ) -> Result<Added, redb::Error> {
        let change = Change::AddRef {
            user: user.to_owned(),
            id: *id,
            len,
            quota,
            location,
        };
        let Changed::Added(added) = self.change(change)? else {
            unreachable!("adding a reference yields `Added`")
        };
        Ok(added)
    }

    /// What [`add_ref`](Self::add_ref) would do now, in a read transaction
    /// that changes nothing: `New`, `AlreadyHeld` or `OverQuota`. Commits
    /// by others may change the answer before an `add_ref`, which decides
    /// for itself.
    pub(crate) fn would_add_ref(
        &self,
        user: &str,
        id: &Id,
        len: u64,
        quota: u64,
    ) -> Result<Added, redb::Error> {
        self.run(|db| {
            let txn = db.begin_read()?;
            if txn.open_table(REFS)?.get((user, id.as_bytes()))?.is_some() {
                return Ok(Added::AlreadyHeld);
            }
            let usage = txn.open_table(USAGE)?.get(user)?.map_or(0, |v| v.value());
            Ok(if usage.saturating_add(len) > quota {
                Added::OverQuota { usage }
            } else {
                Added::New
            })
        })
    }

    /// Removes `user`'s reference to `id`, if any, and says whether anyone
    /// still holds the shard.
    pub(crate) fn remove_ref(&self, user: &str, id: &Id) -> Result<Removed, redb::Error> {
        let change = Change::RemoveRef {
            user: user.to_owned(),
            id: *id,
        };
        let Changed::Removed(removed) = self.change(change)? else {
            unreachable!("removing a reference yields `Removed`")
        };
        Ok(removed)
    }

    /// Removes every user's reference to `id`, adjusting their usage.
    /// Returns how many references there were.
    pub(crate) fn remove_all_refs(&self, id: &Id) -> Result<u64, redb::Error> {
        self.run(|db| {
            let txn = db.begin_write()?;
            let mut removed = 0;
            {
                let mut refs = txn.open_table(REFS)?;
                let mut holders = txn.open_table(HOLDERS)?;
                let mut usage = txn.open_table(USAGE)?;
                while let Some(user) = first_holder(&holders, id)? {
                    holders.remove((id.as_bytes(), user.as_str()))?;
                    let len = refs
                        .remove((user.as_str(), id.as_bytes()))?
                        .map_or(0, |v| v.value());
                    subtract_usage(&mut usage, &user, len)?;
                    removed += 1;
                }
            }
            release_location_in(&txn, id)?;
            self.commit(txn)?;
            Ok(removed)
        })
    }

    /// Whether `user` references shard `id`.
    pub fn has_ref(&self, user: &str, id: &Id) -> Result<bool, QueryError> {
        self.run(|db| {
            let txn = db.begin_read()?;
            let refs = txn.open_table(REFS)?;
            Ok(refs
                .get((user, id.as_bytes()))
                .map_err(redb::Error::from)?
                .is_some())
        })
    }

    /// The length recorded for shard `id` when it was put (by its first
    /// holder, by name; every holder recorded the same, since the bytes of
    /// an id never vary), or `None` if nobody references it.
    pub(crate) fn held_len(&self, id: &Id) -> Result<Option<u64>, redb::Error> {
        self.run(|db| {
            let txn = db.begin_read()?;
            let holders = txn.open_table(HOLDERS)?;
            let Some(user) = first_holder(&holders, id)? else {
                return Ok(None);
            };
            let refs = txn.open_table(REFS)?;
            Ok(refs
                .get((user.as_str(), id.as_bytes()))?
                .map(|len| len.value()))
        })
    }

    /// Whether any user references `id`.
    pub(crate) fn is_held(&self, id: &Id) -> Result<bool, redb::Error> {
        self.run(|db| {
            let txn = db.begin_read()?;
            let holders = txn.open_table(HOLDERS)?;
            Ok(first_holder(&holders, id)?.is_some())
        })
    }

    /// Up to `limit` shards that at least one user references, in id order,
    /// starting after `after` (from the first if `None`). One read
    /// transaction per page: a caller walks every held shard in memory
    /// bounded by `limit` ids, where collecting them all would take 32
    /// bytes per shard (320 MB at ten million). Pages from successive
    /// transactions may miss or repeat nothing that stays held throughout;
    /// shards referenced or released meanwhile may or may not appear.
    pub(crate) fn held_shards_page(
        &self,
        after: Option<&Id>,
        limit: usize,
    ) -> Result<Vec<Id>, redb::Error> {
        let start = match after {
            None => [0; Id::LEN],
            Some(after) => match successor(after.as_bytes()) {
                Some(next) => next,
                // The highest id: nothing comes after it.
                None => return Ok(Vec::new()),
            },
        };
        self.run(|db| {
            let txn = db.begin_read()?;
            let holders = txn.open_table(HOLDERS)?;
            let mut ids: Vec<Id> = Vec::new();
            // The empty name sorts first: the range starts at `start`'s first
            // holder, if any.
            for entry in holders.range((&start, "")..)? {
                let (key, _) = entry?;
                let id = Id::from_bytes(*key.value().0);
                // Keys are sorted by shard first, so duplicates are adjacent.
                if ids.last() != Some(&id) {
                    if ids.len() == limit {
                        break;
                    }
                    ids.push(id);
                }
            }
            Ok(ids)
        })
    }

    /// The bytes `user` references: the sum of the lengths of their
    /// shards.
    pub fn usage(&self, user: &str) -> Result<u64, QueryError> {
        self.run(|db| {
            let txn = db.begin_read()?;
            let usage = txn.open_table(USAGE)?;
            Ok(usage
                .get(user)
                .map_err(redb::Error::from)?
                .map_or(0, |v| v.value()))
        })
    }

    /// Every user holding at least one reference, with their usage
    /// in bytes, in name order. Names come from the references, so
    /// a user without a record who has references (see
    /// [`Store::put`](crate::Store::put)) is listed too, and a user
    /// with a record but no references is not.
    pub fn usage_by_user(&self) -> Result<Vec<(String, u64)>, QueryError> {
        self.run(|db| {
            let txn = db.begin_read()?;
            let usage = txn.open_table(USAGE)?;
            usage
                .iter()?
                .map(|entry| {
                    let (user, bytes) = entry.map_err(redb::Error::from)?;
                    Ok((user.value().to_owned(), bytes.value()))
                })
                .collect()
        })
    }

    /// The number of shards here: shard files on disk, by walking them
    /// all, plus live records in segments. Nothing is read or checked; see
    /// [`count_shards`](crate::count_shards). A shard whose file an
    /// interrupted migration left beside its segment copy counts twice
    /// until the next migration removes the file.
    pub fn shard_count(&self) -> std::io::Result<u64> {
        let files = crate::count_shard_files(&self.dir)?;
        let records = self.live_record_count().map_err(std::io::Error::other)?;
        Ok(files + records)
    }
}

/// The first user (by name) holding `id`, if any.
pub(super) fn first_holder(
    holders: &impl ReadableTable<(&'static [u8; Id::LEN], &'static str), ()>,
    id: &Id,
) -> Result<Option<String>, redb::Error> {
    // The empty name sorts first, so the range starts at the shard's first
    // holder; it runs on into the next shards, hence the check.
    let first = holders.range((id.as_bytes(), "")..)?.next().transpose()?;
    Ok(first.and_then(|(key, _)| {
        let (holder_id, user) = key.value();
        (holder_id == id.as_bytes()).then(|| user.to_owned())
    }))
}

/// The id right after `id` in key order (as a 256-bit big-endian number,
/// plus one), or `None` for the highest.
fn successor(id: &[u8; Id::LEN]) -> Option<[u8; Id::LEN]> {
    let mut next = *id;
    for byte in next.iter_mut().rev() {
        let (sum, carry) = byte.overflowing_add(1);
        *byte = sum;
        if !carry {
            return Some(next);
        }
    }
    None
}

/// Adds `user`'s reference to `id` (`len` bytes) in `txn`, unless they
/// hold it already or `quota` would be exceeded by the usage as `txn` sees
/// it, which counts the changes of the batch applied before this one.
pub(super) fn add_ref_in(
    txn: &WriteTransaction,
    user: &str,
    id: &Id,
    len: u64,
    quota: Option<u64>,
) -> Result<Added, redb::Error> {
    let mut refs = txn.open_table(REFS)?;
    if refs.get((user, id.as_bytes()))?.is_some() {
        return Ok(Added::AlreadyHeld);
    }
    let mut usage = txn.open_table(USAGE)?;
    let before = usage.get(user)?.map_or(0, |v| v.value());
    let after = before.saturating_add(len);
    if quota.is_some_and(|quota| after > quota) {
        // Nothing written: the batch's other changes go on.
        return Ok(Added::OverQuota { usage: before });
    }
    refs.insert((user, id.as_bytes()), len)?;
    txn.open_table(HOLDERS)?.insert((id.as_bytes(), user), ())?;
    usage.insert(user, after)?;
    Ok(Added::New)
}

/// Removes `user`'s reference to `id` in `txn`, if any, and says whether
/// anyone still holds the shard.
pub(super) fn remove_ref_in(
    txn: &WriteTransaction,
    user: &str,
    id: &Id,
) -> Result<Removed, redb::Error> {
    let mut refs = txn.open_table(REFS)?;
    let Some(len) = refs.remove((user, id.as_bytes()))?.map(|v| v.value()) else {
        return Ok(Removed::NotReferenced);
    };
    let mut holders = txn.open_table(HOLDERS)?;
    holders.remove((id.as_bytes(), user))?;
    subtract_usage(&mut txn.open_table(USAGE)?, user, len)?;
    Ok(if first_holder(&holders, id)?.is_some() {
        Removed::OthersRemain
    } else {
        Removed::LastHolder
    })
}

/// Lowers `user`'s usage by `len`, dropping the entry when it reaches 0.
pub(super) fn subtract_usage(
    usage: &mut redb::Table<'_, &'static str, u64>,
    user: &str,
    len: u64,
) -> Result<(), redb::Error> {
    let before = usage.get(user)?.map_or(0, |v| v.value());
    let after = before.saturating_sub(len);
    if after == 0 {
        usage.remove(user)?;
    } else {
        usage.insert(user, after)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::meta::Opening;

    fn meta(dir: &Path) -> Metadata {
        Metadata::open(dir, Opening::CreateIfMissing).unwrap()
    }

    #[test]
    fn refs_usage_and_holders_move_together() {
        let dir = tempfile::tempdir().unwrap();
        let meta = meta(dir.path());
        let (a, b) = (Id::of(b"a"), Id::of(b"b"));
        assert_eq!(meta.add_ref("ann", &a, 10, None).unwrap(), Added::New);
        assert_eq!(
            meta.add_ref("ann", &a, 10, None).unwrap(),
            Added::AlreadyHeld
        );
        assert_eq!(meta.add_ref("bob", &a, 10, None).unwrap(), Added::New);
        assert_eq!(meta.add_ref("bob", &b, 5, None).unwrap(), Added::New);
        assert_eq!(
            meta.usage_by_user().unwrap(),
            [("ann".to_owned(), 10), ("bob".to_owned(), 15)]
        );
        let mut held = vec![a, b];
        held.sort();
        assert_eq!(meta.held_shards_page(None, 10).unwrap(), held);

        assert_eq!(meta.remove_ref("ann", &b).unwrap(), Removed::NotReferenced);
        assert_eq!(meta.remove_ref("ann", &a).unwrap(), Removed::OthersRemain);
        assert_eq!(meta.remove_ref("bob", &a).unwrap(), Removed::LastHolder);
        assert!(!meta.is_held(&a).unwrap());
        assert!(meta.is_held(&b).unwrap());
        assert_eq!(meta.usage_by_user().unwrap(), [("bob".to_owned(), 5)]);
        assert_eq!(meta.usage("ann").unwrap(), 0);
    }

    #[test]
    fn quota_is_checked_before_anything_changes() {
        let dir = tempfile::tempdir().unwrap();
        let meta = meta(dir.path());
        let id = Id::of(b"q");
        assert_eq!(
            meta.add_ref("ann", &Id::of(b"p"), 6, Some(10)).unwrap(),
            Added::New
        );
        assert_eq!(
            meta.add_ref("ann", &id, 5, Some(10)).unwrap(),
            Added::OverQuota { usage: 6 }
        );
        assert!(!meta.has_ref("ann", &id).unwrap());
        assert!(!meta.is_held(&id).unwrap());
        assert_eq!(meta.usage("ann").unwrap(), 6);
        // Exactly at the quota is allowed.
        assert_eq!(meta.add_ref("ann", &id, 4, Some(10)).unwrap(), Added::New);
    }

    #[test]
    fn remove_all_refs_releases_every_user() {
        let dir = tempfile::tempdir().unwrap();
        let meta = meta(dir.path());
        let (id, other) = (Id::of(b"x"), Id::of(b"y"));
        for user in ["ann", "bob", "cy"] {
            meta.add_ref(user, &id, 7, None).unwrap();
        }
        meta.add_ref("bob", &other, 3, None).unwrap();
        assert_eq!(meta.remove_all_refs(&id).unwrap(), 3);
        assert_eq!(meta.remove_all_refs(&id).unwrap(), 0);
        assert_eq!(meta.usage_by_user().unwrap(), [("bob".to_owned(), 3)]);
        assert!(meta.has_ref("bob", &other).unwrap());
    }

    /// Paging must neither skip nor repeat a shard, whatever the page
    /// length, including at the lowest and highest ids and for shards with
    /// several holders that straddle a page's end.
    #[test]
    fn held_shards_come_in_pages_without_gaps_or_repeats() {
        let dir = tempfile::tempdir().unwrap();
        let meta = meta(dir.path());
        let mut ids = vec![Id::from_bytes([0; 32]), Id::from_bytes([0xff; 32])];
        let mut below_carry = [0xff; 32];
        below_carry[0] = 0x10;
        ids.push(Id::from_bytes(below_carry));
        ids.extend((0..7u8).map(|n| Id::of(&[n])));
        for (n, id) in ids.iter().enumerate() {
            for user in ["ann", "bob", "cy"].iter().take(1 + n % 3) {
                meta.add_ref(user, id, 1, None).unwrap();
            }
        }
        ids.sort();
        for limit in 1..=ids.len() + 1 {
            let mut walked = Vec::new();
            let mut after = None;
            loop {
                let page = meta.held_shards_page(after.as_ref(), limit).unwrap();
                assert!(page.len() <= limit);
                walked.extend_from_slice(&page);
                // A paging bug that repeats shards must not loop forever.
                if page.len() < limit || walked.len() > ids.len() {
                    break;
                }
                after = page.last().copied();
            }
            assert_eq!(walked, ids, "pages of {limit}");
        }
        assert!(
            meta.held_shards_page(Some(&Id::from_bytes([0xff; 32])), 5)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn successor_counts_up_with_carry() {
        assert_eq!(successor(&[0; 32]).unwrap()[31], 1);
        let mut carry = [0; 32];
        carry[30] = 1;
        carry[31] = 0xff;
        let mut expected = [0; 32];
        expected[30] = 2;
        assert_eq!(successor(&carry), Some(expected));
        assert_eq!(successor(&[0xff; 32]), None);
    }

    #[test]
    fn first_holder_does_not_run_into_the_next_shard() {
        let dir = tempfile::tempdir().unwrap();
        let meta = meta(dir.path());
        let low = Id::from_bytes([1; 32]);
        let high = Id::from_bytes([2; 32]);
        meta.add_ref("ann", &high, 1, None).unwrap();
        assert!(!meta.is_held(&low).unwrap());
        assert!(meta.is_held(&high).unwrap());
    }
}
