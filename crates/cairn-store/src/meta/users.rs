//! The `users` table: user name → user record (see the `users` module of
//! the crate for the record and the name rules).

use cairn_core::Id;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use super::folders::remove_user_rows_in;
use super::index::INDEX;
use super::locations::{Stored, release_location_in};
use super::refs::{HOLDERS, REFS, USAGE, first_holder};
use super::{FIRST_KEY, LAST_KEY, Metadata};
use crate::error::{QueryError, UserError};
use crate::users::{RemovedUser, UserRecord, check_user_name};

/// `user` → user record.
pub(super) const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");

impl Metadata {
    /// Adds user `name` with `record`.
    ///
    /// Refused with [`UserError::InvalidName`]
    /// if the name breaks the [rules](crate::check_user_name), and
    /// with [`UserError::Exists`] if the
    /// user exists (whatever their record says).
    pub fn add_user(&self, name: &str, record: &UserRecord) -> Result<(), UserError> {
        check_user_name(name).map_err(|reason| UserError::InvalidName {
            name: name.to_owned(),
            reason,
        })?;
        self.run(|db| {
            let txn = db.begin_write()?;
            {
                let mut users = txn.open_table(USERS)?;
                if users.get(name)?.is_some() {
                    return Err(UserError::Exists {
                        name: name.to_owned(),
                    });
                }
                users.insert(name, record.encode().as_slice())?;
            }
            self.commit(txn)?;
            Ok(())
        })
    }

    /// User `name`'s record, or `None` if there is no such user.
    pub fn user(&self, name: &str) -> Result<Option<UserRecord>, QueryError> {
        self.run(|db| {
            let txn = db.begin_read()?;
            let users = txn.open_table(USERS)?;
            let Some(value) = users.get(name)? else {
                return Ok(None);
            };
            Ok(Some(UserRecord::decode(value.value(), name)?))
        })
    }

    /// Every user and their record, in name order.
    pub fn list_users(&self) -> Result<Vec<(String, UserRecord)>, QueryError> {
        self.run(|db| {
            let txn = db.begin_read()?;
            let users = txn.open_table(USERS)?;
            users
                .iter()?
                .map(|entry| {
                    let (name, value) = entry?;
                    let name = name.value();
                    Ok((name.to_owned(), UserRecord::decode(value.value(), name)?))
                })
                .collect()
        })
    }

    /// Sets user `name`'s quota in bytes (`None`: no limit), leaving the
    /// rest of their record as is. The quota is a record field:
    /// [`Store::put`](crate::Store::put) enforces the quota its caller
    /// passes, which the node reads from here. Lowering it below the
    /// user's usage removes nothing; it only refuses new references.
    pub fn set_quota(&self, name: &str, quota: Option<u64>) -> Result<(), UserError> {
        self.run(|db| {
            let txn = db.begin_write()?;
            {
                let mut users = txn.open_table(USERS)?;
                let mut record = match users.get(name)? {
                    Some(value) => UserRecord::decode(value.value(), name)?,
                    None => {
                        return Err(UserError::NoSuchUser {
                            name: name.to_owned(),
                        });
                    }
                };
                record.quota = quota;
                users.insert(name, record.encode().as_slice())?;
            }
            self.commit(txn)?;
            Ok(())
        })
    }

    /// Removes, in one transaction, user `name`'s record, references (with
    /// their usage and holder entries) and index entries (with their
    /// folder and change feed rows), and lists the
    /// shards nobody holds any more, releasing their segment records (whose
    /// bytes are then dead). Deletes no file: that is the caller's
    /// business. Refused as `NoSuchUser` only if there was nothing at all
    /// under the name, so that references left by puts for a name without
    /// a record can be cleaned up too.
    pub(crate) fn remove_user(&self, name: &str) -> Result<RemovedUser, UserError> {
        self.run(|db| {
            let txn = db.begin_write()?;
            let mut removed = RemovedUser::default();
            let had_record = txn.open_table(USERS)?.remove(name)?.is_some();
            {
                let mut refs = txn.open_table(REFS)?;
                let mut ids = Vec::new();
                // Every key of the range is the user's: it is bounded by their
                // name on both sides.
                for entry in
                    refs.extract_from_if((name, &FIRST_KEY)..=(name, &LAST_KEY), |_, _| true)?
                {
                    let (key, _) = entry?;
                    ids.push(Id::from_bytes(*key.value().1));
                }
                let mut holders = txn.open_table(HOLDERS)?;
                for id in ids {
                    holders.remove((id.as_bytes(), name))?;
                    removed.references += 1;
                    if first_holder(&holders, &id)?.is_none() {
                        // `refs` is ordered by id within a user, so this is too.
                        if let Some(Stored::Live(_)) = release_location_in(&txn, &id)? {
                            removed.records_released += 1;
                        }
                        removed.unheld.push(id);
                    }
                }
                // The usage was the sum of exactly these references.
                txn.open_table(USAGE)?.remove(name)?;
            }
            {
                let mut index = txn.open_table(INDEX)?;
                for entry in
                    index.extract_from_if((name, &FIRST_KEY)..=(name, &LAST_KEY), |_, _| true)?
                {
                    entry?;
                    removed.index_entries += 1;
                }
            }
            remove_user_rows_in(&txn, name)?;
            if !had_record && removed.references == 0 && removed.index_entries == 0 {
                return Err(UserError::NoSuchUser {
                    name: name.to_owned(),
                });
            }
            self.commit(txn)?;
            Ok(removed)
        })
    }
}
