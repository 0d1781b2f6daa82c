//! The node's service: what each request does to the store, whatever
//! transport carried it.
//!
//! Transports turn bytes into [`Request`]s and call [`Node::handle`] with
//! the connection's [`Session`]; the answer goes back the same way. Store
//! errors are translated into protocol [`ErrorCode`]s here, once, so every
//! transport reports a failure the same way (the HTTPS API then maps codes
//! to statuses).
//!
//! Rules:
//! - Reading shards (`GetShard`, `HasShards`) needs no login when
//!   `public_read` is on; everything else needs one.
//! - A user's references, usage and index entries are theirs alone: every
//!   store call is made with the session's user name, never one taken
//!   from the request.
//! - Store calls block (file I/O, fsync) and run on tokio's blocking pool.
//! - Listings (`ListIndex`, `ListFolder`) and the change feed (`Changes`)
//!   answer at most [`MAX_LIST_PAGE`] entries and [`MAX_LIST_BYTES`] of
//!   data a page, whatever limit the client asks for; a filtered `Changes`
//!   examines at most [`changes_examined`] rows of the feed, so that a
//!   request stays bounded when few rows match.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use cairn_core::Id;
use cairn_net::NodeId;
use cairn_net::protocol::{
    Dropped, ErrorBody, ErrorCode, FolderTag, IndexName, LEGACY_FOLDER, Limits, MAX_SUMMARY_LEN,
    NodeInfo, Request, Response, VERSIONS,
};
use cairn_store::{
    DropOutcome, GetError, IndexEntry, IndexError, MAX_INDEX_ENTRY_LEN, PutError, Store,
};
use tracing::{debug, warn};

use crate::auth::{self, Throttle};
use crate::config::NodeConfig;

/// Logs, at warn, a damaged shard file the node found and set aside.
pub(crate) fn log_damage(id: &Id, damage: &cairn_store::Damage, quarantined: Option<&Path>) {
    match quarantined {
        Some(path) => warn!(
            "shard {id} is damaged ({damage}); quarantined as {}",
            path.display()
        ),
        None => warn!("shard {id} is damaged ({damage}); moving it to quarantine failed"),
    }
}

/// Most index entries in one list page.
pub const MAX_LIST_PAGE: usize = 1000;

/// Most bytes of entry data in one list page (or of summaries in one page
/// of the change feed).
pub const MAX_LIST_BYTES: usize = 4 * 1024 * 1024;

/// Fewest rows of the change feed one `Changes` request may examine.
pub const MIN_CHANGES_EXAMINED: usize = 4096;

/// How many rows of the change feed one `Changes` request for `limit`
/// entries examines at most: 16 × `limit`, at least
/// [`MIN_CHANGES_EXAMINED`]. Rows a folder filter skips count too, so a
/// request costs a bounded scan even when few rows match; its answer's
/// `next` then lets the client go on from there.
pub fn changes_examined(limit: usize) -> usize {
    limit.saturating_mul(16).max(MIN_CHANGES_EXAMINED)
}

// The store and the protocol must agree on the legacy folder and the
// summary bound: the store cannot depend on the protocol crate.
const _: () = assert!(cairn_store::MAX_SUMMARY_LEN == MAX_SUMMARY_LEN);
const _: () = {
    let mut i = 0;
    while i < LEGACY_FOLDER.len() {
        assert!(cairn_store::LEGACY_FOLDER[i] == LEGACY_FOLDER[i]);
        i += 1;
    }
};

/// Who a connection acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Not logged in.
    Anonymous,
    /// Logged in as this user.
    User(String),
}

/// One connection's state.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who the connection acts for.
    pub caller: Caller,
    /// The peer's address, for throttling and logs.
    pub source: IpAddr,
}

impl Session {
    /// A session from `source`, not logged in.
    pub fn new(source: IpAddr) -> Self {
        Self {
            caller: Caller::Anonymous,
            source,
        }
    }

    fn user(&self) -> Result<&str, ErrorBody> {
        match &self.caller {
            Caller::User(user) => Ok(user),
            Caller::Anonymous => Err(ErrorBody::new(
                ErrorCode::Unauthorized,
                "log in first: this request needs a user",
            )),
        }
    }
}

/// A node: the store and the rules around it.
#[derive(Debug)]
pub struct Node {
    store: Arc<Store>,
    node_id: NodeId,
    config: NodeConfig,
    limits: Limits,
    throttle: Throttle,
}

type Answer = (Response, Bytes);

fn error(code: ErrorCode, message: impl Into<String>) -> Answer {
    (Response::Error(ErrorBody::new(code, message)), Bytes::new())
}

fn internal(what: &str, e: impl std::fmt::Display) -> ErrorBody {
    warn!("{what}: {e}");
    ErrorBody::new(ErrorCode::Internal, format!("{what} failed on the node"))
}

impl Node {
    /// A node serving `store` under `node_id` with `config`.
    pub fn new(store: Store, node_id: NodeId, config: NodeConfig) -> Self {
        let limits = Limits {
            max_shard_len: config.max_shard_size.0 as usize,
            ..Limits::default()
        };
        Self {
            store: Arc::new(store),
            node_id,
            config,
            limits,
            throttle: Throttle::default(),
        }
    }

    /// The node's id.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// The node's settings.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// What the node accepts.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The store, shared, for work that outlives a borrow of the node.
    pub(crate) fn shared_store(&self) -> Arc<Store> {
        self.store.clone()
    }

    /// Checks `user`'s auth key, throttling repeated failures from the
    /// same source, and returns the caller to act for.
    ///
    /// # Errors
    /// [`ErrorCode::Unauthorized`] for an unknown user or a wrong key (the
    /// message does not say which).
    pub async fn login(
        &self,
        user: &str,
        auth_key: &[u8; 32],
        source: IpAddr,
    ) -> Result<Caller, ErrorBody> {
        let wait = self.throttle.wait_before_attempt(user, source);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let store = self.store.clone();
        let name = user.to_owned();
        let record = tokio::task::spawn_blocking(move || store.user(&name))
            .await
            .map_err(|e| internal("login", e))?
            .map_err(|e| internal("login", e))?;
        match record {
            Some(record) if auth::verify(&record, auth_key) => {
                self.throttle.succeeded(user, source);
                Ok(Caller::User(user.to_owned()))
            }
            _ => {
                self.throttle.failed(user, source);
                debug!(%source, user, "login refused");
                Err(ErrorBody::new(
                    ErrorCode::Unauthorized,
                    "unknown user or wrong passphrase",
                ))
            }
        }
    }

    /// Answers one request. A `Login` changes `session`.
    pub async fn handle(&self, session: &mut Session, request: Request, body: Bytes) -> Answer {
        let started = Instant::now();
        let kind = request.kind();
        let answer = match self.dispatch(session, request, body).await {
            Ok(answer) => answer,
            Err(body) => (Response::Error(body), Bytes::new()),
        };
        let user = match &session.caller {
            Caller::User(user) => user.as_str(),
            Caller::Anonymous => "-",
        };
        let outcome = match &answer.0 {
            Response::Error(e) => e.code.as_str(),
            _ => "ok",
        };
        debug!(
            source = %session.source,
            user,
            request = kind,
            outcome,
            micros = started.elapsed().as_micros() as u64,
            "request"
        );
        answer
    }

    async fn dispatch(
        &self,
        session: &mut Session,
        request: Request,
        body: Bytes,
    ) -> Result<Answer, ErrorBody> {
        if !request.has_body() && !body.is_empty() {
            return Ok(error(
                ErrorCode::BadRequest,
                format!("a {} request has no body", request.kind()),
            ));
        }
        match request {
            Request::Login { user, auth_key } => {
                session.caller = self.login(&user, &auth_key.0, session.source).await?;
                Ok((Response::LoggedIn { user }, Bytes::new()))
            }
            Request::Info => Ok((Response::Info(self.info().await?), Bytes::new())),
            Request::PutShard { id } => {
                let user = session.user()?.to_owned();
                self.put_shard(user, id, body).await
            }
            Request::GetShard { id } => {
                self.check_read(session)?;
                self.get_shard(id).await
            }
            Request::HasShards { ids } => {
                self.check_read(session)?;
                self.check_batch(ids.len())?;
                let user = match &session.caller {
                    Caller::User(user) => Some(user.clone()),
                    Caller::Anonymous => None,
                };
                self.has_shards(user, ids).await
            }
            Request::DropShards { ids } => {
                let user = session.user()?.to_owned();
                self.check_batch(ids.len())?;
                self.drop_shards(user, ids).await
            }
            Request::PutIndex { name, version } => {
                let user = session.user()?.to_owned();
                self.put_index(user, name, version, None, body).await
            }
            Request::PutEntry {
                name,
                version,
                folder,
                summary_len,
            } => {
                let user = session.user()?.to_owned();
                self.put_index(user, name, version, Some((folder, summary_len)), body)
                    .await
            }
            Request::GetIndex { name } => {
                let user = session.user()?.to_owned();
                self.get_index(user, name).await
            }
            Request::ListIndex { after, limit } => {
                let user = session.user()?.to_owned();
                self.list_index(user, None, after, limit as usize).await
            }
            Request::ListFolder {
                folder,
                after,
                limit,
            } => {
                let user = session.user()?.to_owned();
                self.list_index(user, Some(folder), after, limit as usize)
                    .await
            }
            Request::Changes {
                since,
                folder,
                limit,
            } => {
                let user = session.user()?.to_owned();
                self.changes(user, since, folder, limit as usize).await
            }
            Request::DeleteIndex { name } => {
                let user = session.user()?.to_owned();
                self.delete_index(user, name).await
            }
            // Needs no login: it says only that the node is there.
            Request::Ping => Ok((Response::Pong, Bytes::new())),
        }
    }

    fn check_read(&self, session: &Session) -> Result<(), ErrorBody> {
        if self.config.public_read {
            Ok(())
        } else {
            session.user().map(drop)
        }
    }

    fn check_batch(&self, len: usize) -> Result<(), ErrorBody> {
        if len > self.limits.max_batch {
            return Err(ErrorBody::new(
                ErrorCode::TooLarge,
                format!(
                    "{len} ids in one request; the node takes at most {}",
                    self.limits.max_batch
                ),
            ));
        }
        Ok(())
    }

    /// Runs a blocking store call on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        what: &str,
        f: impl FnOnce(&Store) -> T + Send + 'static,
    ) -> Result<T, ErrorBody> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| internal(what, e))
    }

    async fn info(&self) -> Result<NodeInfo, ErrorBody> {
        let dir = self.store.dir().to_owned();
        let (fs, usage) = self
            .blocking("info", move |store| {
                (rustix::fs::statvfs(&dir), store.usage_by_user())
            })
            .await?;
        let fs = fs.map_err(|e| internal("reading the disk's size", e))?;
        let used = usage
            .map_err(|e| internal("reading usage", e))?
            .iter()
            .map(|(_, bytes)| bytes)
            .sum();
        Ok(NodeInfo {
            node_id: self.node_id,
            software: env!("CARGO_PKG_VERSION").to_owned(),
            protocol: VERSIONS[0],
            capacity_bytes: fs.f_blocks.saturating_mul(fs.f_frsize),
            free_bytes: fs.f_bavail.saturating_mul(fs.f_frsize),
            used_bytes: used,
            public_read: self.config.public_read,
            max_shard_len: self.limits.max_shard_len as u64,
        })
    }

    async fn put_shard(&self, user: String, id: Id, body: Bytes) -> Result<Answer, ErrorBody> {
        if body.len() > self.limits.max_shard_len {
            return Ok(error(
                ErrorCode::TooLarge,
                format!(
                    "shard of {} bytes; the node takes at most {}",
                    body.len(),
                    self.limits.max_shard_len
                ),
            ));
        }
        let result = self
            .blocking("storing a shard", move |store| {
                let record = store.user(&user)?;
                Ok::<_, cairn_store::QueryError>(
                    record.map(|record| store.put(&user, &id, &body, record.quota)),
                )
            })
            .await?
            .map_err(|e| internal("storing a shard", e))?;
        let Some(result) = result else {
            return Ok(error(ErrorCode::Unauthorized, "the user no longer exists"));
        };
        Ok(match result {
            Ok(outcome) => (
                Response::ShardStored {
                    written: outcome.stored,
                },
                Bytes::new(),
            ),
            Err(PutError::IdMismatch { expected, actual }) => error(
                ErrorCode::HashMismatch,
                format!("the bytes hash to {actual}, not to the id {expected}"),
            ),
            Err(PutError::TooLarge { len, max }) => error(
                ErrorCode::TooLarge,
                format!("shard of {len} bytes; the node takes at most {max}"),
            ),
            Err(PutError::QuotaExceeded {
                usage,
                quota,
                needed,
                ..
            }) => error(
                ErrorCode::QuotaExceeded,
                format!("quota exceeded: {usage} of {quota} bytes used, {needed} more needed"),
            ),
            Err(e @ PutError::DiskFull { .. }) => {
                warn!("disk full: {e}");
                error(ErrorCode::DiskFull, "the node's disk is full")
            }
            Err(e @ PutError::Unverified { .. }) => {
                warn!("shard {id} not stored: {e}");
                error(
                    ErrorCode::Internal,
                    "the node's disk returned other bytes than were written (write verification failed); nothing was stored",
                )
            }
            Err(e) => return Err(internal("storing a shard", e)),
        })
    }

    async fn get_shard(&self, id: Id) -> Result<Answer, ErrorBody> {
        Ok(
            match self
                .blocking("reading a shard", move |s| s.get(&id))
                .await?
            {
                Ok(bytes) => (Response::Shard, Bytes::from(bytes)),
                Err(GetError::NotFound { .. }) => {
                    error(ErrorCode::NotFound, format!("no shard {id} here"))
                }
                Err(GetError::Corrupt {
                    id,
                    damage,
                    quarantined,
                }) => {
                    log_damage(&id, &damage, quarantined.as_deref());
                    error(
                        ErrorCode::Corrupt,
                        format!("shard {id} is damaged on this node's disk; it was quarantined"),
                    )
                }
                Err(e) => return Err(internal("reading a shard", e)),
            },
        )
    }

    /// Which of `ids` the node has, and which of those `user` references.
    ///
    /// "Has" is [`Store::is_present`]: a file of the recorded length. A
    /// shard whose file is gone is not claimed even though its references
    /// remain (they are what a repair restores), and a truncated file is
    /// quarantined on the spot; both make a client's put or repair send
    /// the shard again.
    async fn has_shards(&self, user: Option<String>, ids: Vec<Id>) -> Result<Answer, ErrorBody> {
        let (stored, mine) = self
            .blocking("checking shards", move |store| {
                let stored = ids
                    .iter()
                    .map(|id| match store.is_present(id) {
                        Ok(present) => Ok(present),
                        Err(GetError::Corrupt {
                            id,
                            damage,
                            quarantined,
                        }) => {
                            log_damage(&id, &damage, quarantined.as_deref());
                            Ok(false)
                        }
                        Err(e) => Err(e.to_string()),
                    })
                    .collect::<Result<Vec<bool>, String>>()?;
                let mine = match &user {
                    None => vec![false; ids.len()],
                    Some(user) => ids
                        .iter()
                        .zip(&stored)
                        .map(|(id, &stored)| Ok(stored && store.has_ref(user, id)?))
                        .collect::<Result<Vec<bool>, cairn_store::QueryError>>()
                        .map_err(|e| e.to_string())?,
                };
                Ok::<_, String>((stored, mine))
            })
            .await?
            .map_err(|e| internal("checking shards", e))?;
        Ok((Response::Has { stored, mine }, Bytes::new()))
    }

    async fn drop_shards(&self, user: String, ids: Vec<Id>) -> Result<Answer, ErrorBody> {
        let outcomes = self
            .blocking("dropping shards", move |store| {
                ids.iter()
                    .map(|id| {
                        store.drop_ref(&user, id).map(|outcome| match outcome {
                            DropOutcome::NotReferenced => Dropped::NotReferenced,
                            DropOutcome::Released => Dropped::Released,
                            _ => Dropped::Deleted,
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?
            .map_err(|e| internal("dropping shards", e))?;
        Ok((Response::Dropped { outcomes }, Bytes::new()))
    }

    /// Stores an index entry: in `folder` with its first `summary_len`
    /// bytes as summary (`PutEntry`), or, without them, in the legacy
    /// folder, all summary (`PutIndex`).
    async fn put_index(
        &self,
        user: String,
        name: IndexName,
        version: u64,
        folder: Option<(FolderTag, u32)>,
        data: Bytes,
    ) -> Result<Answer, ErrorBody> {
        if data.len() > MAX_INDEX_ENTRY_LEN {
            return Ok(error(
                ErrorCode::TooLarge,
                format!(
                    "index entry of {} bytes; the node takes at most {MAX_INDEX_ENTRY_LEN}",
                    data.len()
                ),
            ));
        }
        let entry = IndexEntry {
            name,
            version,
            data: data.to_vec(),
        };
        let result = self
            .blocking("storing an index entry", move |s| match folder {
                Some((folder, summary_len)) => {
                    s.put_entry(&user, &entry, &folder, summary_len as usize)
                }
                None => s.put_index(&user, &entry),
            })
            .await?;
        Ok(match result {
            Ok(cairn_store::IndexPut::Stored { replaced }) => {
                (Response::IndexStored { replaced }, Bytes::new())
            }
            Ok(cairn_store::IndexPut::Unchanged) => (
                Response::IndexStored {
                    replaced: Some(version),
                },
                Bytes::new(),
            ),
            Ok(other) => return Err(internal("storing an index entry", format!("{other:?}"))),
            Err(IndexError::Stale { stored, offered }) => error(
                ErrorCode::Conflict,
                format!("version {offered} is older than the stored version {stored}"),
            ),
            Err(IndexError::Conflict { version }) => error(
                ErrorCode::Conflict,
                format!("another entry is stored at version {version}"),
            ),
            Err(IndexError::TooLarge { .. }) => error(ErrorCode::TooLarge, "index entry too large"),
            Err(IndexError::SummaryTooLarge { len, max }) => error(
                ErrorCode::TooLarge,
                format!("a summary of {len} bytes; the node keeps at most {max}"),
            ),
            Err(IndexError::SummaryBeyondData {
                summary_len,
                data_len,
            }) => error(
                ErrorCode::BadRequest,
                format!("a summary of {summary_len} bytes in an entry of {data_len} bytes"),
            ),
            Err(IndexError::NoSuchUser { .. }) => {
                error(ErrorCode::Unauthorized, "the user no longer exists")
            }
            Err(e) => return Err(internal("storing an index entry", e)),
        })
    }

    async fn get_index(&self, user: String, name: IndexName) -> Result<Answer, ErrorBody> {
        let entry = self
            .blocking("reading an index entry", move |s| s.get_index(&user, &name))
            .await?
            .map_err(|e| internal("reading an index entry", e))?;
        Ok(match entry {
            Some(entry) => (
                Response::IndexEntry {
                    version: entry.version,
                },
                Bytes::from(entry.data),
            ),
            None => error(ErrorCode::NotFound, "no such index entry"),
        })
    }

    /// A page of the user's entries after `after`: all of them with their
    /// whole data (`ListIndex`), or those of `folder` with their summaries
    /// (`ListFolder`).
    async fn list_index(
        &self,
        user: String,
        folder: Option<FolderTag>,
        after: Option<IndexName>,
        limit: usize,
    ) -> Result<Answer, ErrorBody> {
        let limit = limit.clamp(1, MAX_LIST_PAGE);
        // One more than asked tells whether more follow.
        let entries = self
            .blocking("listing the index", move |s| match folder {
                Some(folder) => s.list_folder(&user, &folder, after, limit + 1),
                None => s.list_index(&user, after, limit + 1),
            })
            .await?
            .map_err(|e| internal("listing the index", e))?;
        let mut more = entries.len() > limit;
        let mut listed = Vec::new();
        let mut body = Vec::new();
        for entry in entries.into_iter().take(limit) {
            if !listed.is_empty() && body.len() + entry.data.len() > MAX_LIST_BYTES {
                more = true;
                break;
            }
            listed.push((entry.name, entry.version, entry.data.len() as u32));
            body.extend_from_slice(&entry.data);
        }
        Ok((
            Response::IndexList {
                entries: listed,
                more,
            },
            Bytes::from(body),
        ))
    }

    /// A page of the user's change feed after `since`, optionally of one
    /// folder: at most `limit` (capped at [`MAX_LIST_PAGE`]) entries and
    /// [`MAX_LIST_BYTES`] of summaries, after examining at most
    /// [`changes_examined`] rows.
    async fn changes(
        &self,
        user: String,
        since: u64,
        folder: Option<FolderTag>,
        limit: usize,
    ) -> Result<Answer, ErrorBody> {
        let limit = limit.clamp(1, MAX_LIST_PAGE);
        let page = self
            .blocking("reading the change feed", move |s| {
                s.changes(
                    &user,
                    since,
                    folder.as_ref(),
                    limit,
                    changes_examined(limit),
                )
            })
            .await?
            .map_err(|e| internal("reading the change feed", e))?;
        let mut next = page.next;
        let mut more = page.more;
        let mut listed = Vec::with_capacity(page.entries.len());
        let mut body = Vec::new();
        for entry in page.entries {
            if !listed.is_empty() && body.len() + entry.summary.len() > MAX_LIST_BYTES {
                // Cut short: the next page starts after the last entry
                // sent, and examines again what came after it.
                next = listed.last().map_or(since, |&(_, _, seq, _)| seq);
                more = true;
                break;
            }
            listed.push((
                entry.name,
                entry.version,
                entry.seq,
                entry.summary.len() as u32,
            ));
            body.extend_from_slice(&entry.summary);
        }
        Ok((
            Response::ChangeList {
                feed: page.feed,
                entries: listed,
                next,
                more,
            },
            Bytes::from(body),
        ))
    }

    async fn delete_index(&self, user: String, name: IndexName) -> Result<Answer, ErrorBody> {
        let version = self
            .blocking("deleting an index entry", move |s| {
                s.delete_index(&user, &name)
            })
            .await?
            .map_err(|e| internal("deleting an index entry", e))?;
        Ok((Response::IndexDeleted { version }, Bytes::new()))
    }
}
