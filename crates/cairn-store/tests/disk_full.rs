//! A full disk: puts are refused as `DiskFull`, and the store goes on by
//! itself once space is freed.
//!
//! Guards against redb's latch: after the first commit that fails for lack
//! of space, redb fails every transaction with `PreviousIo` until the
//! database is reopened, so a node that once filled its disk refused every
//! request, reads of usage included, until it was restarted.
//!
//! Also a full disk during a segment append (issue 17): refused as
//! `DiskFull`, nothing recorded, and the next append, once there is space,
//! overwrites the torn record.
//!
//! The tests need a small filesystem to fill: each mounts an 8 MiB tmpfs,
//! which takes root (or `CAP_SYS_ADMIN`). Where mounting fails they print
//! why and pass without testing anything, except under CI (the `CI`
//! environment variable set), where that is a failure. They mount one at a
//! time (see [`Tmpfs::mount_or_skip`]).

mod common;

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::thread;

use cairn_store::{Admin, PutError, QueryError, Store, StoreOptions};
use common::{shard, user_record};

/// A tmpfs mounted on a temporary directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
    /// Held while mounted: the tests of this file mount one at a time.
    _serial: MutexGuard<'static, ()>,
}

/// Serialises the tests that mount.
static MOUNTING: Mutex<()> = Mutex::new(());

impl Tmpfs {
    /// [`mount`](Self::mount), waiting for any other test's mount to go;
    /// `None` (after saying why) where mounting is not possible, which
    /// fails the test under CI.
    fn mount_or_skip(size: &str) -> Option<Self> {
        match Self::mount(size) {
            Ok(tmpfs) => Some(tmpfs),
            Err(reason) if std::env::var_os("CI").is_some() => {
                panic!("CI is set, so the disk-full tests must run: {reason}")
            }
            Err(reason) => {
                eprintln!("skipping a disk-full test: {reason}");
                None
            }
        }
    }

    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it), or says
    /// why it could not.
    fn mount(size: &str) -> Result<Self, String> {
        let serial = MOUNTING
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(Self {
            dir,
            _serial: serial,
        })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|status| status.success());
        if !unmounted {
            // Something still has a file open: detach it anyway, so that no
            // test leaves a mount behind.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// Writes a file until the filesystem is full; returns its path.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = File::create(&path).unwrap();
    let block = vec![0xa5u8; 64 * 1024];
    loop {
        match file.write(&block) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::StorageFull => break,
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
    path
}

#[test]
fn a_store_recovers_from_a_full_disk_once_space_is_freed() {
    let Some(tmpfs) = Tmpfs::mount_or_skip("8m") else {
        return;
    };
    let dir = tmpfs.path().join("store");
    let store = Store::open(&dir, StoreOptions::default()).unwrap();
    let (id, bytes) = shard(1, 1000);
    store.put("ann", &id, &bytes, None).unwrap();
    store.add_user("ann", &user_record(1, None)).unwrap();

    let filler = fill(tmpfs.path());
    // New references to a shard on disk: nothing to stage, only commits,
    // until one finds no space.
    let mut acknowledged = Vec::new();
    let (refused, err) = loop {
        let user = format!("u{}", acknowledged.len());
        match store.put(&user, &id, &bytes, None) {
            Ok(_) => acknowledged.push(user),
            Err(err) => break (user, err),
        }
        assert!(acknowledged.len() < 10_000, "the disk never filled up");
    };
    assert!(matches!(err, PutError::DiskFull { .. }), "{err:?}");
    assert!(err.to_string().contains("no space left"), "{err}");

    // While the disk is full: clear errors, no panic; reading the shard
    // needs no database.
    let err = store.put("bob", &id, &bytes, None).unwrap_err();
    assert!(matches!(err, PutError::DiskFull { .. }), "{err:?}");
    assert_eq!(store.get(&id).unwrap(), bytes);

    // Space comes back: so does the store, without a restart, for every
    // thread that finds the database closed at once (one reopens it).
    fs::remove_file(&filler).unwrap();
    thread::scope(|s| {
        for user in ["bob", "dee", "eve", "fay"] {
            let (store, bytes) = (&store, &bytes);
            s.spawn(move || {
                let outcome = store.put(user, &id, bytes, None).unwrap();
                assert!(outcome.newly_referenced, "{user}");
                assert_eq!(store.usage(user).unwrap(), 1000, "{user}");
            });
        }
    });
    assert_eq!(store.usage("ann").unwrap(), 1000);
    // Every put acknowledged before the disk filled is there; the refused
    // one is not.
    for user in &acknowledged {
        assert!(store.has_ref(user, &id).unwrap(), "{user}");
    }
    assert!(!store.has_ref(&refused, &id).unwrap());
    assert!(store.user("ann").unwrap().is_some());
    let err: Option<QueryError> = store.list_users().err();
    assert!(err.is_none(), "{err:?}");
    // And an admin opened now shares it as ever.
    let admin = Admin::open(&dir).unwrap();
    admin.add_user("cy", &user_record(3, None)).unwrap();
    assert!(store.user("cy").unwrap().is_some());
    drop(admin);
    drop(store);
}

#[test]
fn a_full_disk_during_a_segment_append_is_refused_and_recovered() {
    let Some(tmpfs) = Tmpfs::mount_or_skip("8m") else {
        return;
    };
    let dir = tmpfs.path().join("store");
    let store = Store::open(&dir, StoreOptions::default().with_segments(true)).unwrap();
    let before: Vec<_> = (0..4).map(|n| shard(n, 100_000)).collect();
    for (id, bytes) in &before {
        store.put("ann", id, bytes, None).unwrap();
    }

    let filler = fill(tmpfs.path());
    let (id, bytes) = shard(99, 300_000);
    let err = store.put("ann", &id, &bytes, None).unwrap_err();
    assert!(matches!(err, PutError::DiskFull { .. }), "{err:?}");
    assert!(!store.has_ref("ann", &id).unwrap());
    assert!(!store.contains(&id));
    assert!(store.shard_location(&id).unwrap().is_none());
    for (id, bytes) in &before {
        assert_eq!(store.get(id).unwrap(), *bytes);
    }

    fs::remove_file(&filler).unwrap();
    store.put("ann", &id, &bytes, None).unwrap();
    assert_eq!(store.get(&id).unwrap(), bytes);
    drop(store);
    // And after a reopen, nothing torn is in the way.
    let store = Store::open(&dir, StoreOptions::default().with_segments(true)).unwrap();
    assert_eq!(store.get(&id).unwrap(), bytes);
    for (id, bytes) in &before {
        assert_eq!(store.get(id).unwrap(), *bytes);
    }
    let report = store.scrub(&cairn_store::ScrubOptions::default()).unwrap();
    assert!(
        report.corrupt.is_empty() && report.missing.is_empty(),
        "{report:?}"
    );
    drop(store);
}
