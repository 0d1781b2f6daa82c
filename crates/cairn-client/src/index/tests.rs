//! The index layer's decisions, on fake nodes in memory: quorum reads and
//! writes, merging by version, read repair, tombstones, listings, copies.
//! (The same decisions on real node processes: the client end-to-end tests.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_core::keys::{IndexKey, IndexNameKey};
use cairn_core::{Id, Redundancy};
use cairn_net::protocol::ErrorCode;

use super::*;
use crate::transport::{FailureKind, FailureTransport, Fault, MemoryTransport, Op};

fn keys() -> (IndexNameKey, IndexKey) {
    (
        IndexNameKey::from_bytes([2; 32]),
        IndexKey::from_bytes([1; 32]),
    )
}

fn index<T: Transport>(transport: &Arc<T>) -> Index<T> {
    let (name, seal) = keys();
    Index::new(transport.clone(), name, seal, [7; 16])
}

fn memory(nodes: usize) -> Arc<MemoryTransport> {
    Arc::new(MemoryTransport::new(nodes))
}

fn failing(nodes: usize) -> Arc<FailureTransport<MemoryTransport>> {
    Arc::new(FailureTransport::new(MemoryTransport::new(nodes)))
}

fn path(s: &str) -> RemotePath {
    s.parse().unwrap()
}

/// An inline file holding `bytes`.
fn file(bytes: &[u8]) -> EntryKind {
    EntryKind::File(FileEntry {
        size: bytes.len() as u64,
        content_hash: Id::of(bytes),
        content: Content::Inline(InlineBytes::new(bytes.to_vec()).unwrap()),
        modified_unix_ms: 1,
        chunks: 0,
        redundancy: Redundancy::new(2, 4).unwrap(),
    })
}

/// The inline bytes of `entry`.
fn bytes_of(entry: &Entry) -> Vec<u8> {
    match &entry.kind {
        EntryKind::File(FileEntry {
            content: Content::Inline(bytes),
            ..
        }) => bytes.to_vec(),
        other => panic!("not an inline file: {other:?}"),
    }
}

/// Seals `kind` for `remote` at `version`, as another writer would.
fn sealed(remote: &RemotePath, version: u64, kind: EntryKind) -> Bytes {
    let entry = Entry {
        path: remote.clone(),
        version: Version(version),
        writer: [9; 16],
        kind,
    };
    Bytes::from(entry.seal(&keys().1).unwrap().data)
}

#[tokio::test]
async fn quorums_are_majorities_that_meet() {
    for (nodes, write, read) in [
        (1, 1, 1),
        (2, 2, 1),
        (3, 2, 2),
        (4, 3, 2),
        (5, 3, 3),
        (6, 4, 3),
    ] {
        let index = index(&memory(nodes));
        assert_eq!(index.write_quorum(), write, "{nodes} nodes");
        assert_eq!(index.read_quorum(), read, "{nodes} nodes");
        assert!(index.read_quorum() + index.write_quorum() > nodes);
    }
}

#[tokio::test]
async fn a_write_reaches_every_node_and_a_lookup_finds_it() {
    let nodes = memory(4);
    let index = index(&nodes);
    let remote = path("notes/a.txt");
    assert_eq!(index.lookup(&remote).await.unwrap(), None);
    assert_eq!(index.write(&remote, file(b"one")).await.unwrap(), 4);
    let name = index.name(&remote);
    for node in 0..4 {
        assert!(nodes.index_entry(node, &name).is_some(), "node {node}");
    }
    let found = index.lookup(&remote).await.unwrap().unwrap();
    assert_eq!(bytes_of(&found), b"one");
    assert_eq!(found.path, remote);
}

#[tokio::test]
async fn read_repair_writes_the_newest_entry_to_a_stale_node_and_a_bare_one() {
    let nodes = memory(4);
    let index = index(&nodes);
    let remote = path("a.txt");
    let name = index.name(&remote);
    index.write(&remote, file(b"new")).await.unwrap();
    let newest = nodes.index_entry(0, &name).unwrap();
    // Node 2 missed the write and holds an older entry; node 3 none.
    nodes.set_index_entry(2, name, 5, sealed(&remote, 5, file(b"old")));
    nodes.remove_index_entry(3, &name);

    let found = index.lookup(&remote).await.unwrap().unwrap();
    assert_eq!(bytes_of(&found), b"new");
    assert_eq!(nodes.index_entry(2, &name), Some(newest.clone()));
    assert_eq!(nodes.index_entry(3, &name), Some(newest));
}

#[tokio::test]
async fn entries_merge_by_version_whichever_node_holds_the_newest() {
    let nodes = memory(4);
    let index = index(&nodes);
    let remote = path("a.txt");
    let name = index.name(&remote);
    index.write(&remote, file(b"ours")).await.unwrap();
    // Another writer's newer entry reached node 1 only.
    let future = Version::new(Clock::now_unix_ms() + 60_000, 0).0;
    let theirs = sealed(&remote, future, file(b"theirs"));
    nodes.set_index_entry(1, name, future, theirs.clone());

    let found = index.lookup(&remote).await.unwrap().unwrap();
    assert_eq!(bytes_of(&found), b"theirs");
    assert_eq!(found.version, Version(future));
    for node in 0..4 {
        assert_eq!(
            nodes.index_entry(node, &name),
            Some((future, theirs.clone()))
        );
    }
}

#[tokio::test]
async fn a_tombstone_wins_over_the_older_file_and_spreads_by_read_repair() {
    let nodes = memory(3);
    let index = index(&nodes);
    let remote = path("gone.txt");
    let name = index.name(&remote);
    index.write(&remote, file(b"x")).await.unwrap();
    let file_copy = nodes.index_entry(2, &name).unwrap();
    nodes.stop(2);
    assert_eq!(index.write(&remote, EntryKind::Deleted).await.unwrap(), 2);
    nodes.start(2);
    assert_eq!(nodes.index_entry(2, &name), Some(file_copy));

    let found = index.lookup(&remote).await.unwrap().unwrap();
    assert!(found.is_deleted(), "{found:?}");
    assert!(
        Entry::open(
            &nodes.index_entry(2, &name).unwrap().1,
            &keys().1,
            &name,
            &keys().0
        )
        .unwrap()
        .is_deleted()
    );
    let listed = index.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].entry.is_deleted());
}

#[tokio::test]
async fn a_write_short_of_a_majority_is_an_error_naming_the_nodes() {
    let nodes = memory(4);
    let index = index(&nodes);
    nodes.stop(1);
    nodes.stop(3);
    match index.write(&path("a.txt"), file(b"a")).await {
        Err(WriteError::NotStored {
            acknowledged,
            total,
            needed,
            failed,
        }) => {
            assert_eq!((acknowledged, total, needed), (2, 4, 3));
            let named: Vec<usize> = failed.iter().map(|f| f.index).collect();
            assert_eq!(named, [1, 3]);
            for failure in &failed {
                assert_eq!(failure.node, nodes.addresses()[failure.index]);
                assert_eq!(failure.kind, FailureKind::Unreachable);
            }
        }
        other => panic!("expected NotStored, got {other:?}"),
    }
}

#[tokio::test]
async fn a_refused_write_counts_against_the_quorum_with_the_nodes_code() {
    let nodes = failing(3);
    let index = index(&nodes);
    nodes.inject_any(Op::PutEntry, 2, Fault::Refuse(ErrorCode::DiskFull));
    match index.write(&path("a.txt"), file(b"a")).await {
        Err(WriteError::NotStored {
            acknowledged: 1,
            failed,
            ..
        }) => {
            assert_eq!(failed.len(), 2);
            assert!(failed.iter().all(|f| f.kind
                == FailureKind::Refused {
                    code: ErrorCode::DiskFull
                }));
        }
        other => panic!("expected NotStored, got {other:?}"),
    }
}

#[tokio::test]
async fn a_newer_entry_on_one_node_sends_the_writer_above_it() {
    let nodes = memory(4);
    let index = index(&nodes);
    let remote = path("a.txt");
    let name = index.name(&remote);
    // A writer whose clock runs an hour ahead reached node 3 only, which
    // a read quorum may not hear from.
    let ahead = Version::new(Clock::now_unix_ms() + 3_600_000, 0).0;
    nodes.set_index_entry(3, name, ahead, sealed(&remote, ahead, file(b"ahead")));
    nodes.stop(3);
    let first = index.lookup(&remote).await.unwrap();
    assert_eq!(first, None, "the quorum without node 3 knows nothing");
    nodes.start(3);

    assert_eq!(index.write(&remote, file(b"mine")).await.unwrap(), 4);
    let found = index.lookup(&remote).await.unwrap().unwrap();
    assert_eq!(bytes_of(&found), b"mine");
    assert!(found.version.0 > ahead);
}

#[tokio::test]
async fn a_lookup_with_no_node_answering_names_every_node() {
    let nodes = memory(3);
    let index = index(&nodes);
    for node in 0..3 {
        nodes.stop(node);
    }
    let NoNode { failed } = index.lookup(&path("a")).await.unwrap_err();
    assert_eq!(
        failed.iter().map(|f| &f.node).collect::<Vec<_>>(),
        nodes.addresses().iter().collect::<Vec<_>>()
    );
    assert!(index.list().await.is_err());
}

#[tokio::test]
async fn a_read_quorum_is_enough_and_a_slow_node_is_not_waited_for() {
    let nodes = failing(4);
    let index = index(&nodes);
    let remote = path("a.txt");
    index.write(&remote, file(b"a")).await.unwrap();
    // One node down, one answering in a minute: the other two make the
    // read quorum, and the slow one gets the grace period only.
    nodes.inner().stop(0);
    nodes.inject(2, Op::GetIndex, 1, Fault::Delay(Duration::from_secs(60)));
    let started = Instant::now();
    let found = index.lookup(&remote).await.unwrap().unwrap();
    assert_eq!(bytes_of(&found), b"a");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "waited {:?} for a slow node",
        started.elapsed()
    );
    assert_eq!(nodes.fired(), 1);
}

#[tokio::test]
async fn a_listing_merges_every_node_repairs_the_stale_and_counts_copies() {
    let nodes = memory(4);
    let index = index(&nodes);
    let (a, b) = (path("a"), path("dir/b"));
    index.write(&a, file(b"a")).await.unwrap();
    nodes.stop(2);
    index.write(&b, file(b"b")).await.unwrap();
    nodes.start(2);
    let b_name = index.name(&b);
    assert_eq!(nodes.index_entry(2, &b_name), None);

    let mut listed = index.list().await.unwrap();
    listed.sort_by(|x, y| x.entry.path.cmp(&y.entry.path));
    let summary: Vec<(String, usize)> = listed
        .iter()
        .map(|l| (l.entry.path.to_string(), l.copies))
        .collect();
    // "dir" is the folder entry the write of dir/b made first.
    assert_eq!(
        summary,
        [
            ("a".to_owned(), 4),
            ("dir".to_owned(), 4),
            ("dir/b".to_owned(), 4)
        ]
    );
    assert!(nodes.index_entry(2, &b_name).is_some(), "repaired");
}

#[tokio::test]
async fn a_listing_pages_through_a_node() {
    let nodes = memory(1);
    let index = index(&nodes);
    let names: Vec<RemotePath> = (0..LIST_PAGE as usize + 5)
        .map(|i| path(&format!("f{i:05}")))
        .collect();
    for name in &names {
        index.write(name, file(b"")).await.unwrap();
    }
    let listed = index.list().await.unwrap();
    assert_eq!(listed.len(), names.len());
    assert_eq!(nodes.requests(0, Op::ListIndex), 2);
}

#[tokio::test]
async fn copies_are_counted_per_node_and_repaired_where_missing() {
    let nodes = memory(4);
    let index = index(&nodes);
    let remote = path("a");
    let name = index.name(&remote);
    index.write(&remote, file(b"a")).await.unwrap();
    let version = nodes.index_entry(0, &name).unwrap().0;
    nodes.remove_index_entry(1, &name);
    // A copy that does not open (sealed under another key).
    let mut other = sealed(&remote, version, file(b"a")).to_vec();
    other[20] ^= 1;
    nodes.set_index_entry(3, name, version, Bytes::from(other));

    let copies = index.copies(&remote, version).await;
    assert_eq!(copies.per_node, [1, 0, 1, 0]);
    assert_eq!(copies.corrupt, 1);

    let repair = index.repair_copies(&remote, version).await;
    assert_eq!(repair.before.per_node, [1, 0, 1, 0]);
    // Node 3 refuses: it holds other bytes at that version.
    assert_eq!(repair.written, 1);
    assert_eq!(repair.failed.len(), 1);
    assert_eq!(repair.failed[0].index, 3);
    assert_eq!(
        repair.failed[0].kind,
        FailureKind::Refused {
            code: ErrorCode::Conflict
        }
    );
    assert_eq!(repair.after, [1, 1, 1, 0]);
}

/// Every entry of folder `folder`, `size` per page, as (path, kind, copies).
async fn folder_items(
    index: &Index<MemoryTransport>,
    folder: Option<&str>,
    size: u32,
) -> Vec<(String, &'static str, usize)> {
    let folder = folder.map(path);
    let mut listing = index.list_folder(folder.as_ref()).page_size(size);
    let mut items = Vec::new();
    while let Some(page) = listing.next_page().await.unwrap() {
        for listed in page {
            let kind = match &listed.entry.kind {
                EntryKind::File(_) => "file",
                EntryKind::Folder => "folder",
                EntryKind::Deleted => "deleted",
                EntryKind::RemovedFolder => "removed folder",
            };
            items.push((listed.entry.path.to_string(), kind, listed.copies));
        }
    }
    items.sort();
    items
}

#[tokio::test]
async fn a_folder_lists_exactly_its_files_and_folders_whatever_the_page_size() {
    let nodes = memory(4);
    let index = index(&nodes);
    for p in [
        "top.txt",
        "docs/a.txt",
        "docs/b.txt",
        "docs/deep/c.txt",
        "docsX/not-mine.txt",
        "other/d.txt",
    ] {
        index.write(&path(p), file(p.as_bytes())).await.unwrap();
    }
    let docs = vec![
        ("docs/a.txt".to_owned(), "file", 4),
        ("docs/b.txt".to_owned(), "file", 4),
        ("docs/deep".to_owned(), "folder", 4),
    ];
    for size in [1, 2, 1000] {
        assert_eq!(
            folder_items(&index, Some("docs"), size).await,
            docs,
            "{size}"
        );
    }
    let root: Vec<String> = folder_items(&index, None, 1)
        .await
        .into_iter()
        .map(|(p, _, _)| p)
        .collect();
    assert_eq!(root, ["docs", "docsX", "other", "top.txt"]);
    assert!(folder_items(&index, Some("nothing"), 10).await.is_empty());
    // A listing asks for the folder's entries only, never the whole index.
    assert_eq!(nodes.requests(0, Op::ListIndex), 0);
    // Listings carry summaries: an inline file's bytes stay on the nodes.
    let mut listing = index.list_folder(Some(&path("docs")));
    let page = listing.next_page().await.unwrap().unwrap();
    assert!(page.iter().any(|l| matches!(
        &l.entry.kind,
        EntryKind::File(FileEntry {
            content: Content::InlineUnread,
            ..
        })
    )));
}

#[tokio::test]
async fn a_folder_listing_repairs_the_node_that_missed_writes() {
    let nodes = memory(4);
    let index = index(&nodes);
    index.write(&path("d/one"), file(b"1")).await.unwrap();
    nodes.stop(3);
    index.write(&path("d/two"), file(b"2")).await.unwrap();
    let removed = index.write(&path("d/one"), EntryKind::Deleted).await;
    assert!(removed.is_ok());
    nodes.start(3);
    let two = index.name(&path("d/two"));
    assert_eq!(nodes.index_entry(3, &two), None);

    let items = folder_items(&index, Some("d"), 1).await;
    assert_eq!(
        items,
        [
            ("d/one".to_owned(), "deleted", 4),
            ("d/two".to_owned(), "file", 4)
        ]
    );
    // Node 3 got the whole entry (read by a lookup, not the summary).
    let (_, data) = nodes.index_entry(3, &two).unwrap();
    let repaired = Entry::open(&data, &keys().1, &two, &keys().0).unwrap();
    assert_eq!(bytes_of(&repaired), b"2");
    assert_eq!(
        nodes.index_folder(3, &two).unwrap().0,
        index.folder_tag(Some(&path("d")))
    );
}

#[tokio::test]
async fn the_change_feed_returns_what_changed_since_the_cursor_and_nothing_older() {
    let nodes = memory(3);
    let index = index(&nodes);
    index.write(&path("a/old.txt"), file(b"old")).await.unwrap();
    let first = index.changes(&ChangeCursor::default(), None).await.unwrap();
    let paths: Vec<String> = first.entries.iter().map(|e| e.path.to_string()).collect();
    assert!(paths.contains(&"a/old.txt".to_owned()) && paths.contains(&"a".to_owned()));

    // Nothing changed: nothing returned.
    let quiet = index.changes(&first.cursor, None).await.unwrap();
    assert!(quiet.entries.is_empty(), "{:?}", quiet.entries);
    assert!(!quiet.more);

    index.write(&path("a/new.txt"), file(b"new")).await.unwrap();
    index
        .write(&path("a/old.txt"), EntryKind::Deleted)
        .await
        .unwrap();
    index
        .write(&path("b/else.txt"), file(b"else"))
        .await
        .unwrap();
    let next = index.changes(&quiet.cursor, None).await.unwrap();
    let mut changed: Vec<(String, bool)> = next
        .entries
        .iter()
        .map(|e| (e.path.to_string(), e.is_deleted()))
        .collect();
    changed.sort();
    assert_eq!(
        changed,
        [
            ("a/new.txt".to_owned(), false),
            ("a/old.txt".to_owned(), true),
            ("b".to_owned(), false),
            ("b/else.txt".to_owned(), false)
        ]
    );
    // Only one folder's changes.
    let in_a = index
        .changes(&quiet.cursor, Some(Some(&path("a"))))
        .await
        .unwrap();
    let mut in_a: Vec<String> = in_a.entries.iter().map(|e| e.path.to_string()).collect();
    in_a.sort();
    assert_eq!(in_a, ["a/new.txt", "a/old.txt"]);
    // The cursor survives being saved, as a sync keeps it.
    let saved = postcard::to_allocvec(&next.cursor).unwrap();
    let back: ChangeCursor = postcard::from_bytes(&saved).unwrap();
    assert!(index.changes(&back, None).await.unwrap().entries.is_empty());
}

#[tokio::test]
async fn entries_written_before_folders_are_listed_in_their_folders() {
    let nodes = memory(3);
    let index = index(&nodes);
    // Written by a cairn before folders: sealed whole, in no folder.
    for (p, version) in [("old/a.txt", 5), ("old/deep/b.txt", 6), ("top.txt", 7)] {
        let remote = path(p);
        let entry = Entry {
            path: remote.clone(),
            version: Version(version),
            writer: [3; 16],
            kind: file(p.as_bytes()),
        };
        let data = Bytes::from(entry.seal_legacy(&keys().1).unwrap());
        for node in 0..3 {
            nodes.set_index_entry(node, index.name(&remote), version, data.clone());
        }
    }
    let root: Vec<(String, &str)> = folder_items(&index, None, 1000)
        .await
        .into_iter()
        .map(|(p, k, _)| (p, k))
        .collect();
    assert_eq!(
        root,
        [("old".to_owned(), "folder"), ("top.txt".to_owned(), "file")]
    );
    let old: Vec<(String, &str)> = folder_items(&index, Some("old"), 1)
        .await
        .into_iter()
        .map(|(p, k, _)| (p, k))
        .collect();
    assert_eq!(
        old,
        [
            ("old/a.txt".to_owned(), "file"),
            ("old/deep".to_owned(), "folder")
        ]
    );
    // A lookup reads an old entry whole.
    let found = index
        .lookup(&path("old/deep/b.txt"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bytes_of(&found), b"old/deep/b.txt");
    let all = index.list().await.unwrap();
    assert_eq!(all.iter().filter(|l| l.legacy).count(), 3);
}
