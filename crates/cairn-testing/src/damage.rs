//! Damage to shards on a node's disk, behind the node's back, in either
//! store layout: the bit rot, torn writes and lost sectors that a store must
//! report as damage (never serve) and that a client must repair.
//!
//! A shard's bytes are either a file of their own (`shards/ab/cd/<id>`, the
//! first layout) or a record in a segment file that other shards' records
//! share (`segments/NNNNNNNN.seg`, the default layout since issue 17). A
//! test that damaged "the shard file" by path would damage nothing once the
//! shard is in a segment, and pass without testing anything; so tests find
//! a shard's bytes with [`shards`] (or [`cairn_store::Metadata::shard_place`])
//! and damage them with the functions here, which change exactly the bytes
//! a read of the shard returns (and, for a segment record, nothing of any
//! other record, except where [`truncate`] says so).
//!
//! Everything here goes through [`cairn_store::Admin`], which opens only the
//! metadata database and shares it with a running node, so it works while a
//! node process holds the store's lock.
//!
//! | damage | shard file | segment record | found by |
//! | --- | --- | --- | --- |
//! | [`flip_bit`] | one bit of the file | one bit of the shard in the record | a read (get, scrub) |
//! | [`truncate`] | the file cut short | the segment file cut inside the record: a torn tail, which loses every record after it | asking whether the shard is here (length), or a read |
//! | [`remove`] | the file deleted | the whole record (header too) zeroed, as lost sectors read | asking (file gone; record header gone), or a read |
//!
//! A removed file reads as not found; a removed record reads as damage
//! (it is quarantined, and then not found). Either way the node no longer
//! claims the shard.
//!
//! `cairn-store`'s own integration tests include this file by path
//! (`#[path]`), since they cannot depend on this crate, which depends on
//! `cairn-store`: keep it to `std` and `cairn_store`.

use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::Path;

use cairn_store::{Admin, Id, ShardPlace};

/// The number of shard files (the first layout) under the store's
/// `shards/` in `dir`: what a migration has yet to move. (`count_shards`
/// counts the shards of both layouts.)
pub fn shard_files(dir: &Path) -> u64 {
    fn walk(dir: &Path) -> u64 {
        std::fs::read_dir(dir).map_or(0, |entries| {
            entries
                .map(|entry| entry.unwrap().path())
                .map(|path| if path.is_dir() { walk(&path) } else { 1 })
                .sum()
        })
    }
    walk(&dir.join("shards"))
}

/// The shards in the store in `dir` and where their bytes are, in id
/// order: shard files and live segment records (quarantined ones are not
/// listed). Works beside a running node.
///
/// # Panics
///
/// If `dir` holds no store (no initialised `meta.redb`), or listing fails.
pub fn shards(dir: &Path) -> Vec<(Id, ShardPlace)> {
    let admin = Admin::open(dir).unwrap_or_else(|e| panic!("store in {}: {e}", dir.display()));
    let mut places: Vec<(Id, ShardPlace)> = admin
        .shards()
        .filter_map(|id| {
            let id = id.expect("listing the shards");
            let place = admin.shard_place(&id).expect("looking a shard up")?;
            Some((id, place))
        })
        .collect();
    places.sort_by(|(a, _), (b, _)| a.as_bytes().cmp(b.as_bytes()));
    places.dedup_by(|(a, _), (b, _)| a == b);
    places
}

/// Where shard `id`'s bytes are in the store in `dir` now; `None` if it
/// has none there (never stored, dropped or quarantined).
pub fn place(dir: &Path, id: &Id) -> Option<ShardPlace> {
    let admin = Admin::open(dir).unwrap_or_else(|e| panic!("store in {}: {e}", dir.display()));
    admin.shard_place(id).expect("looking a shard up")
}

/// The file holding `place`, its shard's first byte in it, and the shard's
/// length.
fn span(place: &ShardPlace) -> (&Path, u64, u64) {
    match place {
        ShardPlace::File(path) => {
            let len = fs::metadata(path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                .len();
            (path, 0, len)
        }
        ShardPlace::Segment(location) => (&location.path, location.offset, location.len),
        other => panic!("a shard place this harness does not know: {other:?}"),
    }
}

/// Opens `path` for reading and writing in place.
fn open(path: &Path) -> File {
    File::options()
        .read(true)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The shard's bytes as they are on disk now, up to where the file ends:
/// what a read of it would hash.
pub fn read(place: &ShardPlace) -> Vec<u8> {
    let (path, offset, len) = span(place);
    let file = open(path);
    let end = file.metadata().unwrap().len();
    let have = len.min(end.saturating_sub(offset));
    let mut bytes = vec![0; usize::try_from(have).unwrap()];
    file.read_exact_at(&mut bytes, offset).unwrap();
    bytes
}

/// The shard's length in bytes.
pub fn len(place: &ShardPlace) -> u64 {
    span(place).2
}

/// Flips bit `bit` (0 to 7) of the shard's byte `at`, in place. Returns the
/// shard's bytes as a read now finds them.
///
/// # Panics
///
/// If `at` is not within the shard.
pub fn flip_bit(place: &ShardPlace, at: u64, bit: u8) -> Vec<u8> {
    let (path, offset, len) = span(place);
    assert!(at < len, "byte {at} of a {len}-byte shard");
    let file = open(path);
    let mut byte = [0];
    file.read_exact_at(&mut byte, offset + at).unwrap();
    byte[0] ^= 1 << bit;
    file.write_all_at(&byte, offset + at).unwrap();
    read(place)
}

/// Flips one bit in the middle of the shard. Returns the shard's bytes as a
/// read now finds them.
pub fn flip_middle_bit(place: &ShardPlace) -> Vec<u8> {
    flip_bit(place, len(place) / 2, 4)
}

/// Cuts the shard short, to its first `keep` bytes. Returns the bytes left.
///
/// A shard file is truncated. A segment cannot lose bytes from the middle:
/// the segment file is truncated at the same point of the record (a torn
/// tail, as a crash during an append leaves), so **every record after it in
/// that segment is lost too** (cut off entirely). Pick the last records of
/// a segment (see [`segment_order`]) when the others must stay intact.
///
/// # Panics
///
/// If `keep` is not shorter than the shard.
pub fn truncate(place: &ShardPlace, keep: u64) -> Vec<u8> {
    let (path, offset, len) = span(place);
    assert!(keep < len, "keeping {keep} of a {len}-byte shard");
    open(path).set_len(offset + keep).unwrap();
    read(place)
}

/// Removes the shard's bytes. A shard file is deleted. A segment record,
/// whose file other records share, is overwritten with zeros, header
/// included, as sectors lost and read back as zeros would be: its bytes
/// and the record that named them are gone, and every other record is
/// untouched.
pub fn remove(place: &ShardPlace) {
    match place {
        ShardPlace::File(path) => {
            fs::remove_file(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        ShardPlace::Segment(location) => {
            let file = open(&location.path);
            let zeros = vec![0; usize::try_from(location.record_len).unwrap()];
            file.write_all_at(&zeros, location.record_offset).unwrap();
        }
        other => panic!("a shard place this harness does not know: {other:?}"),
    }
}

/// `places` in the order their bytes lie on disk: shard files first (by
/// path), then segment records by segment and offset. The last records of
/// the last segment are the ones a [`truncate`] can cut without losing
/// others.
pub fn segment_order(places: &mut [(Id, ShardPlace)]) {
    places.sort_by_key(|(_, place)| match place {
        ShardPlace::Segment(location) => (1, location.path.clone(), location.record_offset),
        other => (0, other.path().to_owned(), 0),
    });
}
