//! Authentication: what a node keeps of a user's credentials, and how it
//! slows down guessing.
//!
//! A user logs in with the auth key their client derives from their
//! passphrase (Argon2id, see `cairn_core::keys`). The node keeps only a
//! salted hash of it:
//!
//! ```text
//! auth hash = BLAKE3-keyed(BLAKE3-derive("cairn 2026-11 node auth-key hash", salt), auth key)
//! ```
//!
//! The auth key is already a 256-bit Argon2id output, so a fast keyed hash
//! is enough: the slow work that protects a weak passphrase happened on the
//! client, and an attacker who steals the node's database still has to
//! guess passphrases through Argon2id. The auth key cannot decrypt
//! anything: data keys come from a different Argon2id run.
//!
//! Guessing online is throttled per user and source address: after
//! [`Throttle::FREE_FAILURES`] failures, each further attempt waits for a
//! slot, and the slots spread out exponentially up to
//! [`Throttle::MAX_DELAY`]. Because attempts wait for a slot rather than
//! being delayed after the fact, opening many connections does not speed
//! guessing up. A success clears the record.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cairn_store::UserRecord;

/// The salted hash of an auth key that a node stores.
pub fn hash_auth_key(salt: &[u8; 16], auth_key: &[u8; 32]) -> [u8; 32] {
    let key = blake3::derive_key("cairn 2026-11 node auth-key hash", salt);
    *blake3::keyed_hash(&key, auth_key).as_bytes()
}

/// A new user record for `auth_key`, with a fresh random salt.
pub fn new_user_record(auth_key: &[u8; 32], quota: Option<u64>) -> UserRecord {
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).expect("the system random source works");
    let created_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    UserRecord {
        salt,
        auth_hash: hash_auth_key(&salt, auth_key),
        quota,
        created_unix,
    }
}

/// Whether `auth_key` is the key `record` was made from. Constant time.
pub fn verify(record: &UserRecord, auth_key: &[u8; 32]) -> bool {
    // blake3::Hash compares in constant time.
    blake3::Hash::from(hash_auth_key(&record.salt, auth_key))
        == blake3::Hash::from(record.auth_hash)
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    /// When the next attempt may be checked.
    next_slot: Instant,
    last: Instant,
}

/// Slows down repeated failed logins per user and source address.
#[derive(Debug, Default)]
pub struct Throttle {
    failures: Mutex<HashMap<(String, IpAddr), Failures>>,
}

impl Throttle {
    /// Failures before attempts start to wait.
    pub const FREE_FAILURES: u32 = 3;
    /// Wait after the first throttled failure; doubles with each further one.
    pub const FIRST_DELAY: Duration = Duration::from_millis(250);
    /// Longest wait between attempts.
    pub const MAX_DELAY: Duration = Duration::from_secs(8);
    /// A record with no failure for this long is forgotten.
    pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);

    /// How long an attempt by `user` from `source` must wait before it is
    /// checked; takes the attempt's slot.
    pub fn wait_before_attempt(&self, user: &str, source: IpAddr) -> Duration {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let Some(entry) = map.get_mut(&(user.to_owned(), source)) else {
            return Duration::ZERO;
        };
        if entry.count < Self::FREE_FAILURES {
            return Duration::ZERO;
        }
        // Take the next free slot; an attempt made at the same time waits
        // for the one after.
        let slot = entry.next_slot.max(now);
        entry.next_slot = slot + Self::delay(entry.count);
        slot - now
    }

    /// Records a failed attempt.
    pub fn failed(&self, user: &str, source: IpAddr) {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, f| now.duration_since(f.last) < Self::FORGET_AFTER);
        let entry = map.entry((user.to_owned(), source)).or_insert(Failures {
            count: 0,
            next_slot: now,
            last: now,
        });
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
        if entry.count >= Self::FREE_FAILURES {
            // The next attempt waits a full delay after this failure.
            entry.next_slot = entry.next_slot.max(now + Self::delay(entry.count));
        }
    }

    /// Records a success, which forgets the failures.
    pub fn succeeded(&self, user: &str, source: IpAddr) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(user.to_owned(), source));
    }

    fn delay(failures: u32) -> Duration {
        let doublings = failures.saturating_sub(Self::FREE_FAILURES).min(16);
        (Self::FIRST_DELAY * 2u32.pow(doublings)).min(Self::MAX_DELAY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_right_key_verifies() {
        let key = [7u8; 32];
        let record = new_user_record(&key, None);
        assert!(verify(&record, &key));
        assert!(!verify(&record, &[8u8; 32]));
        // Salted: the same key gives another hash for another user.
        assert_ne!(new_user_record(&key, None).auth_hash, record.auth_hash);
        assert_ne!(record.auth_hash, key);
    }

    #[test]
    fn failures_make_attempts_wait_longer_per_user_and_source() {
        let throttle = Throttle::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let other_ip: IpAddr = "127.0.0.2".parse().unwrap();
        for _ in 0..Throttle::FREE_FAILURES {
            assert_eq!(throttle.wait_before_attempt("alice", ip), Duration::ZERO);
            throttle.failed("alice", ip);
        }
        // Slots are taken one after another, each further away.
        let first = throttle.wait_before_attempt("alice", ip);
        let second = throttle.wait_before_attempt("alice", ip);
        assert!(
            second > first + Duration::from_millis(200),
            "{first:?} {second:?}"
        );
        throttle.failed("alice", ip);
        // Other users and other sources are not affected.
        assert_eq!(throttle.wait_before_attempt("bob", ip), Duration::ZERO);
        assert_eq!(
            throttle.wait_before_attempt("alice", other_ip),
            Duration::ZERO
        );
        // A success forgets.
        throttle.succeeded("alice", ip);
        assert_eq!(throttle.wait_before_attempt("alice", ip), Duration::ZERO);
        // The delay is capped.
        assert_eq!(Throttle::delay(100), Throttle::MAX_DELAY);
    }
}
