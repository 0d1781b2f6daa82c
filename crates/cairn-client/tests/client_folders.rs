//! Folders, the change feed and entries from before folders, through the
//! client library against real node processes.
//!
//! Bugs these guard against:
//! - a folder listing that shows entries of a sibling folder, or misses
//!   one a node did not get while it was down;
//! - a change feed that repeats old changes, or misses a removal;
//! - an upgrade that hides the files written by an older cairn until
//!   something rewrites them, or a migration that loses one.

use cairn_client::index::{Entry, EntryKind, Version};
use cairn_client::{ChangeCursor, Client, ListItem, RemotePath};
use cairn_net::protocol::LEGACY_FOLDER;
use cairn_testing::cluster::{TestCluster, keys, options, remote};

/// Stores `bytes` as `path` (inline: small).
async fn put(client: &Client, path: &str, bytes: &[u8]) {
    client
        .store_reader(
            std::io::Cursor::new(bytes.to_vec()),
            &remote(path),
            0,
            &|_| {},
        )
        .await
        .unwrap();
}

/// The items of `folder`, as `ls` prints them.
async fn ls(client: &Client, folder: Option<&str>, recursive: bool) -> Vec<String> {
    let folder = folder.map(remote);
    let mut items = Vec::new();
    let found = client
        .walk(folder.as_ref(), recursive, false, &mut |item| {
            items.push(match item {
                ListItem::File(info) => info.path.to_string(),
                ListItem::Folder(path) => format!("{path}/"),
            });
            true
        })
        .await
        .unwrap();
    assert!(found, "{folder:?} is a folder");
    items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_lists_its_own_entries_and_the_change_feed_what_changed() {
    let mut cluster = TestCluster::start();
    let client = cluster.client("alice");
    put(&client, "a/one.txt", b"one").await;
    put(&client, "a/b/deep.txt", b"deep").await;
    put(&client, "aa/sibling.txt", b"sibling").await;
    put(&client, "top.txt", b"top").await;
    let mut cursor = ChangeCursor::default();
    loop {
        let changes = client.changes(&cursor, None).await.unwrap();
        cursor = changes.cursor;
        if !changes.more {
            break;
        }
    }

    // Node 2 misses a put and a removal.
    cluster.nodes[2].kill();
    put(&client, "a/two.txt", b"two").await;
    client.remove(&remote("a/one.txt")).await.unwrap();
    client.close().await;
    cluster.nodes[2].start();
    let client = cluster.client("alice");
    for connected in client.cluster().connect_all().await {
        connected.unwrap();
    }

    assert_eq!(ls(&client, Some("a"), false).await, ["a/b/", "a/two.txt"]);
    assert_eq!(ls(&client, None, false).await, ["a/", "aa/", "top.txt"]);
    assert_eq!(
        ls(&client, None, true).await,
        [
            "a/",
            "a/b/",
            "a/b/deep.txt",
            "a/two.txt",
            "aa/",
            "aa/sibling.txt",
            "top.txt"
        ]
    );
    // The listing brought node 2 up to date.
    assert_eq!(
        cluster.index_entries(2, "alice"),
        cluster.index_entries(0, "alice")
    );
    // Not a folder.
    let missing = client
        .walk(Some(&remote("nothing")), false, false, &mut |_| true)
        .await
        .unwrap();
    assert!(!missing);

    // The feed: the put and the removal, nothing older.
    let changes = client.changes(&cursor, None).await.unwrap();
    let mut changed: Vec<(String, bool)> = changes
        .entries
        .iter()
        .map(|e| (e.path.to_string(), e.is_deleted()))
        .collect();
    changed.sort();
    assert_eq!(
        changed,
        [
            ("a/one.txt".to_owned(), true),
            ("a/two.txt".to_owned(), false)
        ]
    );
    // Nothing changed since.
    let quiet = client.changes(&changes.cursor, None).await.unwrap();
    assert!(quiet.entries.is_empty(), "{:?}", quiet.entries);
    // The content is still read whole by a get.
    let mut out = Vec::new();
    client
        .fetch_to(&remote("a/two.txt"), &mut out, &|_| {})
        .await
        .unwrap();
    assert_eq!(out, b"two");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_from_before_folders_are_listed_then_migrated_by_repair() {
    let cluster = TestCluster::start();
    // An older cairn wrote three files: whole entries, in no folder.
    let keys = keys("alice");
    let files = [
        ("old/a.txt", b"old a".as_slice()),
        ("old/deep/b.txt", b"old b"),
        ("c.txt", b"old c"),
    ];
    for i in 0..cluster.nodes.len() {
        let address = cluster.servers()[i].clone();
        let connection = cairn_net::client::Connection::connect(&address, &options(), false)
            .await
            .unwrap();
        let node_key = keys.auth.for_node(address.node_id.unwrap().0.as_bytes());
        connection
            .login("alice", node_key.expose_secret())
            .await
            .unwrap();
        for (n, (path, bytes)) in files.iter().enumerate() {
            let path: RemotePath = remote(path);
            let entry = Entry {
                path: path.clone(),
                version: Version::new(1_790_000_000_000 + n as u64, 0),
                writer: [5; 16],
                kind: EntryKind::File(cairn_client::index::FileEntry {
                    content: cairn_client::index::Content::Inline(
                        cairn_client::index::InlineBytes::new(bytes.to_vec()).unwrap(),
                    ),
                    size: bytes.len() as u64,
                    modified_unix_ms: 1,
                    chunks: 0,
                    redundancy: cairn_core::Redundancy::new(2, 4).unwrap(),
                    content_hash: cairn_core::Id::of(bytes),
                }),
            };
            let sealed = entry.seal_legacy(&keys.master.index_key()).unwrap();
            let name = cairn_client::index::entry_name(&keys.master.index_name_key(), &path);
            connection
                .put_index(&name, entry.version.0, sealed.into())
                .await
                .unwrap();
        }
        connection.close().await;
    }

    let client = cluster.client("alice");
    assert_eq!(ls(&client, None, false).await, ["c.txt", "old/"]);
    assert_eq!(
        ls(&client, Some("old"), false).await,
        ["old/a.txt", "old/deep/"]
    );
    assert_eq!(client.migrate_index().await.unwrap(), 3);
    assert_eq!(client.migrate_index().await.unwrap(), 0, "all rewritten");
    // No node keeps an entry in no folder; the listings are the same.
    for i in 0..cluster.nodes.len() {
        let address = cluster.servers()[i].clone();
        let connection = cairn_net::client::Connection::connect(&address, &options(), false)
            .await
            .unwrap();
        let node_key = keys.auth.for_node(address.node_id.unwrap().0.as_bytes());
        connection
            .login("alice", node_key.expose_secret())
            .await
            .unwrap();
        let legacy = connection
            .list_folder(&LEGACY_FOLDER, None, 100)
            .await
            .unwrap();
        assert!(legacy.entries.is_empty(), "node {i}: {legacy:?}");
        connection.close().await;
    }
    assert_eq!(
        ls(&client, None, true).await,
        ["c.txt", "old/", "old/a.txt", "old/deep/", "old/deep/b.txt"]
    );
    for (path, bytes) in files {
        let mut out = Vec::new();
        client
            .fetch_to(&remote(path), &mut out, &|_| {})
            .await
            .unwrap();
        assert_eq!(out, bytes, "{path}");
    }
}
