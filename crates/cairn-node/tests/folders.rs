//! Protocol version 3 on a real node (served in-process on 127.0.0.1) through
//! the real client, over tcp://, quic:// and https://: entries put into
//! folders with summaries, folder listings, and the change feed (issue 13).
//!
//! Guards against a transport that loses a folder tag, a summary length
//! or a feed cursor on the way, against a listing that returns more of an
//! entry than its summary (or another folder's or user's entries), against
//! a feed that forgets its id across a restart, and against a change feed
//! request that is unbounded: in the bytes it answers, or in the rows it
//! examines when a folder filter matches few.

use bytes::Bytes;
use cairn_net::Scheme;
use cairn_net::client::{ChangePage, Connection};
use cairn_net::protocol::{ErrorCode, FOLDER_VERSION, LEGACY_FOLDER, MAX_SUMMARY_LEN};
use cairn_testing::in_process::start;

const DOCS: [u8; 32] = [0xd0; 32];
const PHOTOS: [u8; 32] = [0xf0; 32];

/// The first byte of each name.
fn names<'a>(names: impl IntoIterator<Item = &'a [u8; 32]>) -> Vec<u8> {
    names.into_iter().map(|n| n[0]).collect()
}

fn changed(page: &ChangePage) -> Vec<u8> {
    names(page.entries.iter().map(|c| &c.name))
}

/// Data of `len` bytes for entry `name`.
fn data(name: u8, len: usize) -> Bytes {
    Bytes::from(vec![name; len])
}

async fn scenario(scheme: Scheme) {
    let node = start(|_| {}).await;
    let alice = node.login(scheme, "alice").await;
    assert_eq!(alice.protocol(), FOLDER_VERSION, "{scheme}");

    // Three docs with 4-byte summaries, a photo, and a legacy entry.
    for name in [3u8, 1, 2] {
        let replaced = alice
            .put_entry(&[name; 32], 1, &DOCS, 4, data(name, 100))
            .await
            .unwrap();
        assert_eq!(replaced, None, "{scheme}");
    }
    alice
        .put_entry(&[4; 32], 1, &PHOTOS, 1, data(4, 10))
        .await
        .unwrap();
    alice.put_index(&[5; 32], 1, data(5, 6)).await.unwrap();

    // The folder lists exactly its entries, in name order, summaries only;
    // pages of one list the same as one page of a thousand.
    let page = alice.list_folder(&DOCS, None, 1000).await.unwrap();
    assert!(!page.more, "{scheme}");
    assert_eq!(names(page.entries.iter().map(|e| &e.name)), [1, 2, 3]);
    assert!(page.entries.iter().all(|e| e.data == data(e.name[0], 4)));
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let one = alice.list_folder(&DOCS, after.as_ref(), 1).await.unwrap();
        paged.extend(one.entries.iter().cloned());
        after = one.entries.last().map(|e| e.name);
        if !one.more {
            break;
        }
    }
    assert_eq!(paged, page.entries, "{scheme}");
    let legacy = alice.list_folder(&LEGACY_FOLDER, None, 10).await.unwrap();
    assert_eq!(names(legacy.entries.iter().map(|e| &e.name)), [5]);
    assert_eq!(legacy.entries[0].data, data(5, 6));
    // The whole data from a lookup, and from the listing of every entry.
    let entry = alice.get_index(&[1; 32]).await.unwrap().unwrap();
    assert_eq!(entry.data, data(1, 100), "{scheme}");
    let all = alice.list_index(None, 100).await.unwrap();
    assert_eq!(all.entries.len(), 5);
    assert!(all.entries.iter().any(|e| e.data == data(2, 100)));

    // The feed: every entry once, in the order they changed.
    let first = alice.changes(0, None, 1000).await.unwrap();
    assert_eq!(changed(&first), [3, 1, 2, 4, 5], "{scheme}");
    assert_eq!(first.entries[0].summary, data(3, 4));
    assert_eq!(first.entries[4].summary, data(5, 6));
    assert_eq!(first.next, first.entries[4].seq);
    assert!(!first.more);
    // Replacements and creations since; nothing older, each name once.
    alice
        .put_entry(&[1; 32], 2, &DOCS, 2, data(1, 50))
        .await
        .unwrap();
    alice
        .put_entry(&[1; 32], 3, &DOCS, 2, data(1, 60))
        .await
        .unwrap();
    alice
        .put_entry(&[6; 32], 1, &PHOTOS, 3, data(6, 3))
        .await
        .unwrap();
    let since = alice.changes(first.next, None, 1000).await.unwrap();
    assert_eq!(changed(&since), [1, 6], "{scheme}");
    assert_eq!(since.entries[0].version, 3);
    assert_eq!(since.feed, first.feed);
    // A folder filter: only photos, and the cursor past the rows skipped.
    let photos = alice
        .changes(first.next, Some(&PHOTOS), 1000)
        .await
        .unwrap();
    assert_eq!(changed(&photos), [6]);
    assert_eq!(photos.next, since.next);
    let nothing = alice.changes(since.next, Some(&DOCS), 1000).await.unwrap();
    assert!(nothing.entries.is_empty());
    assert_eq!(nothing.next, since.next);
    // Pages of one.
    let mut cursor = 0;
    let mut seen = Vec::new();
    loop {
        let page = alice.changes(cursor, None, 1).await.unwrap();
        seen.extend(changed(&page));
        cursor = page.next;
        if !page.more {
            break;
        }
    }
    assert_eq!(seen, [3, 2, 4, 5, 1, 6], "{scheme}");
    // A delete takes the entry out of its folder and the feed.
    assert_eq!(alice.delete_index(&[2; 32]).await.unwrap(), Some(1));
    let after_delete = alice.changes(0, None, 1000).await.unwrap();
    assert_eq!(changed(&after_delete), [3, 4, 5, 1, 6]);
    let docs = alice.list_folder(&DOCS, None, 1000).await.unwrap();
    assert_eq!(names(docs.entries.iter().map(|e| &e.name)), [1, 3]);

    // Bob sees none of it, even under Alice's folder tags.
    let bob = node.login(scheme, "bob").await;
    assert!(
        bob.list_folder(&DOCS, None, 10)
            .await
            .unwrap()
            .entries
            .is_empty()
    );
    let bobs = bob.changes(0, None, 10).await.unwrap();
    assert!(bobs.entries.is_empty(), "{scheme}");
    assert_eq!(bobs.feed, first.feed, "one feed per node");

    // Refusals, the connection still working after them.
    let err = alice
        .put_entry(&[7; 32], 1, &DOCS, 11, data(7, 10))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::BadRequest), "{scheme}: {err}");
    let summary_len = MAX_SUMMARY_LEN as u32 + 1;
    let err = alice
        .put_entry(&[7; 32], 1, &DOCS, summary_len, data(7, 9000))
        .await
        .unwrap_err();
    // The REST route refuses a summary_len past its documented bound as a
    // malformed query; the framed transports say what is wrong with it.
    let expected = match scheme {
        Scheme::Https => ErrorCode::BadRequest,
        Scheme::Tcp | Scheme::Quic => ErrorCode::TooLarge,
    };
    assert_eq!(err.code(), Some(expected), "{scheme}: {err}");
    let anonymous = node.connect(scheme).await;
    let err = anonymous.changes(0, None, 10).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Unauthorized), "{scheme}");
    assert_eq!(alice.get_index(&[7; 32]).await.unwrap(), None);

    // The feed keeps its id and its numbers across a restart.
    let node = node.restart().await;
    let alice: Connection = node.login(scheme, "alice").await;
    let again = alice.changes(0, None, 1000).await.unwrap();
    assert_eq!(again.feed, first.feed, "{scheme}");
    assert_eq!(again.entries, after_delete.entries);
    node.stop().await;
}

/// A page of the feed stops at 4 MiB of summaries, and goes on from its
/// last entry; a filtered request examines at most 4,096 rows (for a
/// small limit) and then answers where it got to.
#[tokio::test]
async fn change_feed_pages_are_bounded_in_bytes_and_rows() {
    let node = start(|_| {}).await;
    let alice = node.login(Scheme::Tcp, "alice").await;
    // Puts `count` entries from `first` on, in `folder`, with summaries of
    // `summary_len` bytes: 50 at a time, so they share commits.
    let put_many = |first: u16, count: u16, folder: [u8; 32], summary_len: usize| {
        let alice = alice.clone();
        async move {
            for chunk in (first..first + count).collect::<Vec<_>>().chunks(50) {
                let mut puts = tokio::task::JoinSet::new();
                for &n in chunk {
                    let alice = alice.clone();
                    puts.spawn(async move {
                        let mut name = [0; 32];
                        name[..2].copy_from_slice(&n.to_be_bytes());
                        let data = Bytes::from(vec![n as u8; summary_len]);
                        alice
                            .put_entry(&name, 1, &folder, summary_len as u32, data)
                            .await
                    });
                }
                while let Some(stored) = puts.join_next().await {
                    stored.unwrap().unwrap();
                }
            }
        }
    };
    // 600 full summaries: 4.7 MiB.
    put_many(0, 600, DOCS, MAX_SUMMARY_LEN).await;
    let first = alice.changes(0, None, 1000).await.unwrap();
    let fit = cairn_node::service::MAX_LIST_BYTES / MAX_SUMMARY_LEN;
    assert_eq!(first.entries.len(), fit);
    assert!(first.more);
    assert_eq!(first.next, first.entries[fit - 1].seq);
    let rest = alice.changes(first.next, None, 1000).await.unwrap();
    assert_eq!(rest.entries.len(), 600 - fit);
    assert!(!rest.more);

    // 5,000 more rows in the same folder, then one photo.
    put_many(1000, 5000, DOCS, 1).await;
    put_many(9999, 1, PHOTOS, 1).await;
    let examined = cairn_node::service::changes_examined(1);
    let scan = alice.changes(rest.next, Some(&PHOTOS), 1).await.unwrap();
    assert!(scan.entries.is_empty());
    assert!(scan.more);
    assert_eq!(scan.next, rest.next + examined as u64, "one row per put");
    let found = alice.changes(scan.next, Some(&PHOTOS), 1).await.unwrap();
    assert_eq!(changed(&found), [(9999u16 >> 8) as u8]);
    node.stop().await;
}

#[tokio::test]
async fn folders_and_the_change_feed_over_tcp() {
    scenario(Scheme::Tcp).await;
}

#[tokio::test]
async fn folders_and_the_change_feed_over_https() {
    scenario(Scheme::Https).await;
}

#[tokio::test]
async fn folders_and_the_change_feed_over_quic() {
    scenario(Scheme::Quic).await;
}
