//! [`Admin`]: a store's metadata, opened beside a running node.

use std::path::Path;

use crate::error::{OpenError, UserError};
use crate::meta::{Metadata, Opening};
use crate::users::RemovedUser;

/// The metadata database of a store directory, without the shards: users,
/// index entries, usage and the last scrub.
///
/// For operators' commands (`cairn node user …`, `cairn node status`),
/// which run while the node may be running, and for tests that look at a
/// running node's disk ([`shard_place`](Metadata::shard_place),
/// [`shards`](Metadata::shards)). An `Admin` opens only `meta.redb`, which
/// redb shares between processes, and never reads, writes or deletes a
/// shard file, a segment or anything in `tmp/`, so it neither needs nor
/// takes the store's lock. Any number of `Admin`s can be open
/// beside one [`Store`](crate::Store), in any processes; each commit is
/// visible to all of them, and to the store, as soon as it returns.
///
/// Everything an `Admin` offers, a `Store` offers too, through the same
/// code. The one difference is [`remove_user`](Self::remove_user).
#[derive(Debug)]
pub struct Admin {
    meta: Metadata,
}

/// Everything but [`remove_user`](Admin::remove_user): the same
/// [`Metadata`] handle a [`Store`](crate::Store) holds.
impl std::ops::Deref for Admin {
    type Target = Metadata;

    fn deref(&self) -> &Metadata {
        &self.meta
    }
}

impl Admin {
    /// Opens the metadata database of the store in `dir`.
    ///
    /// Creates nothing: fails with [`OpenError::NotAStore`] if `dir` has no
    /// initialised `meta.redb` (a store has never been opened there). Checks
    /// the schema version as [`Store::open`](crate::Store::open) does.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, OpenError> {
        let meta = Metadata::open(dir.as_ref(), Opening::ExistingOnly)?;
        Ok(Self { meta })
    }

    /// Removes user `name`: in one transaction, their record, every
    /// reference they hold (their usage goes with them; other holders keep
    /// theirs) and all their index entries.
    ///
    /// Like [`Store::remove_user`](crate::Store::remove_user), releases the
    /// segment records of the shards nobody holds any more, in the same
    /// transaction ([`RemovedUser::records_released`]): their bytes are
    /// dead at once, for a compaction. Unlike it, deletes no
    /// file: the shards nobody holds any more are listed in
    /// [`RemovedUser::unheld`] and left on disk, and the node's
    /// [scrub](crate::Store::scrub) deletes them, as it deletes every
    /// unreferenced file once it is older than
    /// [`ScrubOptions::unreferenced_grace`](crate::ScrubOptions::unreferenced_grace). Deleting them here would race the node: its
    /// per-id locks, which keep a put from referencing a file while it is
    /// unlinked, live in the node's memory. Until then they take disk space
    /// but are invisible to users (a put of the same shard simply
    /// references the file again).
    ///
    /// Also removes references and entries left under a name that has no
    /// record; fails with [`UserError::NoSuchUser`] only if there was
    /// nothing at all.
    pub fn remove_user(&self, name: &str) -> Result<RemovedUser, UserError> {
        self.meta.remove_user(name)
    }
}
