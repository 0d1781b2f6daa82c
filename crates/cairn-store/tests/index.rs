//! Index entries: put, get, paging, delete, versions, limits and isolation;
//! folders, summaries and the change feed (schema version 4).
//!
//! Guards against an old or replayed write rolling an entry back, against
//! a retry after a lost reply failing (or two racing writers both
//! "winning" one version), against oversized entries, and above all
//! against one user reading, overwriting or deleting another's entries.
//! For folders and the feed (issue 13): against a folder listing that
//! shows a sibling folder's or another user's entries, or more of an entry
//! than its summary; against a feed that repeats a name, goes back past
//! its cursor, forgets a change, or never moves on when a folder filter
//! skips every row; and against rows left behind by deletes and removed
//! users.

mod common;

use cairn_store::{
    Admin, ChangePage, FolderTag, IndexEntry, IndexError, IndexPut, LEGACY_FOLDER,
    MAX_INDEX_ENTRY_LEN, MAX_SUMMARY_LEN, Store,
};
use common::{open, user_record};

fn entry(name: u8, version: u64, data: &[u8]) -> IndexEntry {
    IndexEntry {
        name: [name; 32],
        version,
        data: data.to_vec(),
    }
}

/// A store with users `ann` and `bob`.
fn store_with_users(dir: &std::path::Path) -> Store {
    let store = open(dir);
    store.add_user("ann", &user_record(1, None)).unwrap();
    store.add_user("bob", &user_record(2, None)).unwrap();
    store
}

#[test]
fn put_get_delete_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_users(dir.path());
    assert_eq!(store.get_index("ann", &[1; 32]).unwrap(), None);

    let first = entry(1, 1, b"v1");
    assert_eq!(
        store.put_index("ann", &first).unwrap(),
        IndexPut::Stored { replaced: None }
    );
    assert_eq!(store.get_index("ann", &[1; 32]).unwrap(), Some(first));
    // Versions need not be consecutive.
    let second = entry(1, 5, b"v5, longer");
    assert_eq!(
        store.put_index("ann", &second).unwrap(),
        IndexPut::Stored { replaced: Some(1) }
    );
    assert_eq!(store.get_index("ann", &[1; 32]).unwrap(), Some(second));

    assert_eq!(store.delete_index("ann", &[1; 32]).unwrap(), Some(5));
    assert_eq!(store.get_index("ann", &[1; 32]).unwrap(), None);
    assert_eq!(store.delete_index("ann", &[1; 32]).unwrap(), None);
    // A delete forgets the version: any version goes in afterwards.
    assert_eq!(
        store.put_index("ann", &entry(1, 0, b"")).unwrap(),
        IndexPut::Stored { replaced: None }
    );
}

#[test]
fn list_pages_through_entries_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_users(dir.path());
    // Names at both ends of the key space too.
    let names: [u8; 7] = [0xff, 0, 7, 3, 200, 1, 100];
    for &name in &names {
        store.put_index("ann", &entry(name, 1, &[name])).unwrap();
    }
    store.put_index("bob", &entry(5, 1, b"bob")).unwrap();

    let mut sorted = names;
    sorted.sort_unstable();
    let all = store.list_index("ann", None, 100).unwrap();
    assert_eq!(
        all.iter().map(|e| e.name[0]).collect::<Vec<_>>(),
        sorted.to_vec()
    );
    assert!(all.iter().all(|e| e.data == [e.name[0]]));

    // Pages of 3, each strictly after the last name of the one before.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.list_index("ann", after, 3).unwrap();
        assert!(page.len() <= 3);
        seen.extend(page.iter().map(|e| e.name[0]));
        if page.len() < 3 {
            break;
        }
        after = Some(page.last().unwrap().name);
    }
    assert_eq!(seen, sorted.to_vec());

    assert!(store.list_index("ann", None, 0).unwrap().is_empty());
    // After a name that is not stored: from the next one on.
    let from_middle = store.list_index("ann", Some([50; 32]), 10).unwrap();
    assert_eq!(
        from_middle.iter().map(|e| e.name[0]).collect::<Vec<_>>(),
        [100, 200, 0xff]
    );
    assert!(
        store
            .list_index("ann", Some([0xff; 32]), 10)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_lower_version_is_refused_as_stale() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_users(dir.path());
    store.put_index("ann", &entry(1, 10, b"current")).unwrap();
    let err = store.put_index("ann", &entry(1, 9, b"old")).unwrap_err();
    assert!(
        matches!(
            err,
            IndexError::Stale {
                stored: 10,
                offered: 9
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("version 9"), "{err}");
    assert_eq!(
        store.get_index("ann", &[1; 32]).unwrap(),
        Some(entry(1, 10, b"current"))
    );
}

#[test]
fn the_same_version_is_a_retry_if_identical_and_a_conflict_if_not() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_users(dir.path());
    let put = entry(1, 3, b"mine");
    store.put_index("ann", &put).unwrap();
    assert_eq!(store.put_index("ann", &put).unwrap(), IndexPut::Unchanged);

    let err = store.put_index("ann", &entry(1, 3, b"theirs")).unwrap_err();
    assert!(
        matches!(err, IndexError::Conflict { version: 3 }),
        "{err:?}"
    );
    assert_eq!(store.get_index("ann", &[1; 32]).unwrap(), Some(put));
}

#[test]
fn oversized_entries_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_users(dir.path());
    let largest = entry(1, 1, &vec![7; MAX_INDEX_ENTRY_LEN]);
    store.put_index("ann", &largest).unwrap();
    let err = store
        .put_index("ann", &entry(1, 2, &vec![7; MAX_INDEX_ENTRY_LEN + 1]))
        .unwrap_err();
    assert!(
        matches!(err, IndexError::TooLarge { len, max }
            if len == MAX_INDEX_ENTRY_LEN + 1 && max == MAX_INDEX_ENTRY_LEN),
        "{err:?}"
    );
    assert_eq!(store.get_index("ann", &[1; 32]).unwrap(), Some(largest));
}

#[test]
fn entries_need_a_user_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_users(dir.path());
    let err = store.put_index("eve", &entry(1, 1, b"x")).unwrap_err();
    assert!(
        matches!(&err, IndexError::NoSuchUser { user } if user == "eve"),
        "{err:?}"
    );
    assert!(store.list_index("eve", None, 10).unwrap().is_empty());
}

#[test]
fn users_cannot_see_overwrite_or_delete_each_others_entries() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_users(dir.path());
    let anns = entry(1, 5, b"ann's secret index");
    store.put_index("ann", &anns).unwrap();

    // Bob asks for Ann's entry by its exact name: nothing.
    assert_eq!(store.get_index("bob", &anns.name).unwrap(), None);
    assert!(store.list_index("bob", None, 100).unwrap().is_empty());
    assert!(
        store
            .list_index("bob", Some([0; 32]), 100)
            .unwrap()
            .is_empty()
    );
    // Bob's delete of that name deletes nothing of Ann's.
    assert_eq!(store.delete_index("bob", &anns.name).unwrap(), None);
    // Bob's put under that name, even at a lower version, makes Bob's own
    // entry: no Stale, no Conflict, nothing of Ann's visible or changed.
    assert_eq!(
        store.put_index("bob", &entry(1, 1, b"bob's")).unwrap(),
        IndexPut::Stored { replaced: None }
    );
    assert_eq!(
        store.put_index("bob", &entry(1, 5, b"bob's too")).unwrap(),
        IndexPut::Stored { replaced: Some(1) }
    );
    assert_eq!(
        store.get_index("ann", &anns.name).unwrap(),
        Some(anns.clone())
    );
    assert_eq!(
        store.list_index("ann", None, 100).unwrap(),
        std::slice::from_ref(&anns)
    );

    // Names that prefix one another are still different users.
    store.add_user("an", &user_record(3, None)).unwrap();
    store.add_user("anna", &user_record(4, None)).unwrap();
    for user in ["an", "anna"] {
        assert!(store.list_index(user, None, 100).unwrap().is_empty());
        assert_eq!(store.get_index(user, &anns.name).unwrap(), None);
    }
    // Removing Bob takes only Bob's entries.
    assert_eq!(store.remove_user("bob").unwrap().index_entries, 1);
    assert_eq!(store.get_index("ann", &anns.name).unwrap(), Some(anns));
}

#[test]
fn entries_survive_reopening_and_are_shared_with_an_admin() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_users(dir.path());
    store.put_index("ann", &entry(1, 1, b"one")).unwrap();
    let admin = Admin::open(dir.path()).unwrap();
    admin.put_index("ann", &entry(2, 1, b"two")).unwrap();
    assert_eq!(
        store.get_index("ann", &[2; 32]).unwrap(),
        Some(entry(2, 1, b"two"))
    );
    drop((store, admin));

    let store = open(dir.path());
    assert_eq!(
        store.list_index("ann", None, 10).unwrap(),
        [entry(1, 1, b"one"), entry(2, 1, b"two")]
    );
}

/// The feed examines this many rows at most in these tests, unless a test
/// says otherwise (the node's bound is larger).
const EXAMINE: usize = 4096;

fn changes(store: &Store, user: &str, since: u64, folder: Option<&FolderTag>) -> ChangePage {
    store.changes(user, since, folder, 1000, EXAMINE).unwrap()
}

/// The first bytes of `name`'s data, as its summary.
fn summary_of(data: &[u8], len: usize) -> Vec<u8> {
    data[..len].to_vec()
}

/// Names of a listing or a page of the feed, by their first byte.
fn names<'a>(names: impl IntoIterator<Item = &'a [u8; 32]>) -> Vec<u8> {
    names.into_iter().map(|n| n[0]).collect()
}

#[test]
fn a_folder_lists_exactly_its_entries_with_their_summaries() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_users(dir.path());
    let (docs, photos) = ([0xd0; 32], [0xf0; 32]);
    // Entries named around the folder tags too, so a range that slipped
    // into the name would show.
    for name in [1u8, 0xd0, 0xff, 7, 0] {
        let entry = entry(name, 1, &[name; 40]);
        store.put_entry("ann", &entry, &docs, 4).unwrap();
    }
    store
        .put_entry("ann", &entry(2, 1, b"a photo"), &photos, 1)
        .unwrap();
    store.put_index("ann", &entry(3, 1, b"legacy")).unwrap();
    // Bob's entries in Ann's folder tag: his, not hers.
    store
        .put_entry("bob", &entry(4, 1, b"bob's doc"), &docs, 2)
        .unwrap();

    let listed = store.list_folder("ann", &docs, None, 1000).unwrap();
    assert_eq!(names(listed.iter().map(|e| &e.name)), [0, 1, 7, 0xd0, 0xff]);
    for listed in &listed {
        // The summary only; the whole data from a get.
        assert_eq!(listed.data, summary_of(&[listed.name[0]; 40], 4));
        assert_eq!(listed.version, 1);
        let got = store.get_index("ann", &listed.name).unwrap().unwrap();
        assert_eq!(got.data, [listed.name[0]; 40]);
    }
    // Whole data in the listing of every entry, as before folders.
    let all = store.list_index("ann", None, 1000).unwrap();
    assert_eq!(all.len(), 7);
    assert!(all.iter().any(|e| e.data == [1; 40]));

    assert_eq!(
        store.list_folder("ann", &photos, None, 1000).unwrap(),
        [entry(2, 1, b"a")]
    );
    assert_eq!(
        store
            .list_folder("ann", &LEGACY_FOLDER, None, 1000)
            .unwrap(),
        [entry(3, 1, b"legacy")]
    );
    assert!(
        store
            .list_folder("ann", &[9; 32], None, 1000)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.list_folder("bob", &docs, None, 1000).unwrap(),
        [entry(4, 1, b"bo")]
    );
    assert!(
        store
            .list_folder("bob", &photos, None, 1000)
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_folder("eve", &docs, None, 1000)
            .unwrap()
            .is_empty()
    );

    // Pages of 1 and of 1000 list the same, each strictly after the last
    // name of the page before.
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = store.list_folder("ann", &docs, after, 1).unwrap();
        if page.is_empty() {
            break;
        }
        assert_eq!(page.len(), 1);
        after = Some(page[0].name);
        paged.extend(page);
    }
    assert_eq!(paged, listed);
    assert_eq!(
        names(
            store
                .list_folder("ann", &docs, Some([5; 32]), 1000)
                .unwrap()
                .iter()
                .map(|e| &e.name)
        ),
        [7, 0xd0, 0xff]
    );
}

#[test]
fn a_put_into_another_folder_moves_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_users(dir.path());
    let (a, b) = ([0xa; 32], [0xb; 32]);
    store.put_entry("ann", &entry(1, 1, b"one"), &a, 3).unwrap();
    store.put_entry("ann", &entry(1, 2, b"two"), &b, 1).unwrap();
    assert!(store.list_folder("ann", &a, None, 10).unwrap().is_empty());
    assert_eq!(
        store.list_folder("ann", &b, None, 10).unwrap(),
        [entry(1, 2, b"t")]
    );
    // A repeat (same version, same data) is a repeat in any folder: a move
    // takes a new version.
    assert_eq!(
        store.put_entry("ann", &entry(1, 2, b"two"), &a, 2).unwrap(),
        IndexPut::Unchanged
    );
    assert!(store.list_folder("ann", &a, None, 10).unwrap().is_empty());
    // The legacy put moves it to the legacy folder, all summary.
    store.put_index("ann", &entry(1, 3, b"three")).unwrap();
    assert!(store.list_folder("ann", &b, None, 10).unwrap().is_empty());
    assert_eq!(
        store.list_folder("ann", &LEGACY_FOLDER, None, 10).unwrap(),
        [entry(1, 3, b"three")]
    );
}

#[test]
fn summaries_are_bounded_and_within_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_users(dir.path());
    let data = vec![7; MAX_SUMMARY_LEN + 1];
    let err = store
        .put_entry("ann", &entry(1, 1, &data), &[1; 32], MAX_SUMMARY_LEN + 1)
        .unwrap_err();
    assert!(
        matches!(err, IndexError::SummaryTooLarge { len, max }
            if len == MAX_SUMMARY_LEN + 1 && max == MAX_SUMMARY_LEN),
        "{err:?}"
    );
    let err = store
        .put_entry("ann", &entry(1, 1, b"abc"), &[1; 32], 4)
        .unwrap_err();
    assert!(
        matches!(
            err,
            IndexError::SummaryBeyondData {
                summary_len: 4,
                data_len: 3
            }
        ),
        "{err:?}"
    );
    assert_eq!(store.get_index("ann", &[1; 32]).unwrap(), None);
    assert!(changes(&store, "ann", 0, None).entries.is_empty());
    // At the bounds: all of the data, the largest summary, none at all.
    store
        .put_entry("ann", &entry(1, 1, &data), &[1; 32], MAX_SUMMARY_LEN)
        .unwrap();
    store
        .put_entry("ann", &entry(2, 1, b"abc"), &[1; 32], 3)
        .unwrap();
    store
        .put_entry("ann", &entry(3, 1, b"abc"), &[1; 32], 0)
        .unwrap();
    let listed = store.list_folder("ann", &[1; 32], None, 10).unwrap();
    let lens: Vec<_> = listed.iter().map(|e| e.data.len()).collect();
    assert_eq!(lens, [MAX_SUMMARY_LEN, 3, 0]);
    // A legacy put's summary is all of its data, however long.
    store
        .put_index("ann", &entry(4, 1, &vec![4; MAX_INDEX_ENTRY_LEN]))
        .unwrap();
    let legacy = store.list_folder("ann", &LEGACY_FOLDER, None, 10).unwrap();
    assert_eq!(legacy[0].data.len(), MAX_INDEX_ENTRY_LEN);
}

#[test]
fn the_feed_holds_each_entrys_latest_change_after_a_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_users(dir.path());
    let folder = [0xf; 32];
    let empty = changes(&store, "ann", 0, None);
    assert!(empty.entries.is_empty() && !empty.more);
    assert_eq!(empty.next, 0);
    assert_ne!(empty.feed, 0);

    for name in [1u8, 2, 3] {
        store
            .put_entry("ann", &entry(name, 1, &[name; 10]), &folder, 2)
            .unwrap();
    }
    let first = changes(&store, "ann", 0, None);
    assert_eq!(names(first.entries.iter().map(|e| &e.name)), [1, 2, 3]);
    assert!(first.entries.iter().all(|e| e.summary == [e.name[0]; 2]));
    assert!(first.entries.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(first.next, first.entries[2].seq);
    assert!(!first.more);

    // Nothing since: the cursor stays.
    let quiet = changes(&store, "ann", first.next, None);
    assert!(quiet.entries.is_empty());
    assert_eq!(quiet.next, first.next);

    // A replacement and a creation since the cursor; nothing older.
    store
        .put_entry("ann", &entry(1, 2, b"one, again"), &folder, 3)
        .unwrap();
    store
        .put_entry("ann", &entry(4, 1, b"four"), &folder, 4)
        .unwrap();
    // A repeat is no change.
    store
        .put_entry("ann", &entry(4, 1, b"four"), &folder, 4)
        .unwrap();
    let since = changes(&store, "ann", first.next, None);
    let seen: Vec<_> = since
        .entries
        .iter()
        .map(|e| (e.name[0], e.version, e.summary.clone()))
        .collect();
    assert_eq!(seen, [(1, 2, b"one".to_vec()), (4, 1, b"four".to_vec())]);
    assert!(since.entries[0].seq > first.next);

    // From the start: each name once, at its latest change, in order.
    let all = changes(&store, "ann", 0, None);
    assert_eq!(names(all.entries.iter().map(|e| &e.name)), [2, 3, 1, 4]);
    assert_eq!(all.entries[2].version, 2);
    assert_eq!(all.next, since.next);

    // Pages of one go through the same changes, each after the last.
    let mut paged = Vec::new();
    let mut cursor = 0;
    loop {
        let page = store.changes("ann", cursor, None, 1, EXAMINE).unwrap();
        assert!(page.next >= cursor);
        paged.extend(page.entries.iter().map(|e| e.name[0]));
        cursor = page.next;
        if !page.more {
            break;
        }
    }
    assert_eq!(paged, [2, 3, 1, 4]);

    // A delete takes the entry out of the feed; others stay.
    assert_eq!(store.delete_index("ann", &[2; 32]).unwrap(), Some(1));
    let after_delete = changes(&store, "ann", 0, None);
    assert_eq!(
        names(after_delete.entries.iter().map(|e| &e.name)),
        [3, 1, 4]
    );
    // Recreated, it is a change again, after everything before.
    store
        .put_entry("ann", &entry(2, 1, b"back"), &folder, 1)
        .unwrap();
    let recreated = changes(&store, "ann", since.next, None);
    assert_eq!(names(recreated.entries.iter().map(|e| &e.name)), [2]);

    // Bob's feed is his own.
    assert!(changes(&store, "bob", 0, None).entries.is_empty());
    store
        .put_entry("bob", &entry(1, 1, b"bob's"), &folder, 5)
        .unwrap();
    let bobs = changes(&store, "bob", 0, None);
    assert_eq!(names(bobs.entries.iter().map(|e| &e.name)), [1]);
    assert_eq!(bobs.entries[0].summary, b"bob's");
    assert_eq!(
        names(
            changes(&store, "ann", 0, None)
                .entries
                .iter()
                .map(|e| &e.name)
        ),
        [3, 1, 4, 2]
    );
}

#[test]
fn a_folder_filter_moves_the_cursor_past_the_rows_it_skips() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_users(dir.path());
    let (wanted, other) = ([1; 32], [2; 32]);
    store
        .put_entry("ann", &entry(1, 1, b"a"), &wanted, 1)
        .unwrap();
    for name in 10..20u8 {
        store
            .put_entry("ann", &entry(name, 1, b"x"), &other, 1)
            .unwrap();
    }
    store
        .put_entry("ann", &entry(2, 1, b"b"), &wanted, 1)
        .unwrap();
    let all = changes(&store, "ann", 0, None);
    assert_eq!(all.entries.len(), 12);

    let filtered = changes(&store, "ann", 0, Some(&wanted));
    assert_eq!(names(filtered.entries.iter().map(|e| &e.name)), [1, 2]);
    assert_eq!(filtered.next, all.next);
    assert!(!filtered.more);

    // After the first wanted row, only skipped rows and then the second.
    let first = filtered.entries[0].seq;
    let skipping = store.changes("ann", first, Some(&wanted), 10, 4).unwrap();
    assert!(skipping.entries.is_empty(), "{skipping:?}");
    assert!(skipping.more);
    assert_eq!(skipping.next, first + 4, "examined four rows, all skipped");
    let rest = store
        .changes("ann", skipping.next, Some(&wanted), 10, 100)
        .unwrap();
    assert_eq!(names(rest.entries.iter().map(|e| &e.name)), [2]);
    assert_eq!(rest.next, all.next);

    // A move out of the folder shows in the folder's feed no more; into
    // it, it does.
    store
        .put_entry("ann", &entry(1, 2, b"a"), &other, 1)
        .unwrap();
    store
        .put_entry("ann", &entry(15, 2, b"y"), &wanted, 1)
        .unwrap();
    let moved = changes(&store, "ann", 0, Some(&wanted));
    assert_eq!(names(moved.entries.iter().map(|e| &e.name)), [2, 15]);
    let none = changes(&store, "ann", 0, Some(&[3; 32]));
    assert!(none.entries.is_empty());
    assert_eq!(none.next, moved.next);
}

#[test]
fn the_feed_keeps_its_id_and_numbers_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let (feed, next) = {
        let store = store_with_users(dir.path());
        store
            .put_entry("ann", &entry(1, 1, b"one"), &[1; 32], 3)
            .unwrap();
        let page = changes(&store, "ann", 0, None);
        assert_eq!(store.feed_id().unwrap(), page.feed);
        (page.feed, page.next)
    };
    let store = open(dir.path());
    assert_eq!(store.feed_id().unwrap(), feed);
    // An admin, in another process, shares the feed and its numbers.
    let admin = Admin::open(dir.path()).unwrap();
    admin
        .put_entry("ann", &entry(2, 1, b"two"), &[1; 32], 3)
        .unwrap();
    let page = changes(&store, "ann", next, None);
    assert_eq!(page.feed, feed);
    assert_eq!(names(page.entries.iter().map(|e| &e.name)), [2]);
    assert!(page.entries[0].seq > next, "numbers are never reused");

    // Another database is another feed.
    let other = tempfile::tempdir().unwrap();
    let other = open(other.path());
    assert_ne!(other.feed_id().unwrap(), feed);
}

#[test]
fn removing_a_user_takes_their_folders_and_feed_with_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_users(dir.path());
    let folder = [5; 32];
    for user in ["ann", "bob"] {
        store
            .put_entry(user, &entry(1, 1, b"one"), &folder, 1)
            .unwrap();
        store.put_index(user, &entry(2, 1, b"two")).unwrap();
    }
    assert_eq!(store.remove_user("bob").unwrap().index_entries, 2);
    assert!(
        store
            .list_folder("bob", &folder, None, 10)
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_folder("bob", &LEGACY_FOLDER, None, 10)
            .unwrap()
            .is_empty()
    );
    assert!(changes(&store, "bob", 0, None).entries.is_empty());
    // Ann keeps hers.
    assert_eq!(
        store.list_folder("ann", &folder, None, 10).unwrap().len(),
        1
    );
    assert_eq!(changes(&store, "ann", 0, None).entries.len(), 2);
    // Bob again, from nothing: no row of the old Bob comes back.
    store.add_user("bob", &user_record(2, None)).unwrap();
    store
        .put_entry("bob", &entry(3, 1, b"new"), &folder, 3)
        .unwrap();
    assert_eq!(
        names(
            store
                .list_folder("bob", &folder, None, 10)
                .unwrap()
                .iter()
                .map(|e| &e.name)
        ),
        [3]
    );
    assert_eq!(
        names(
            changes(&store, "bob", 0, None)
                .entries
                .iter()
                .map(|e| &e.name)
        ),
        [3]
    );
}
