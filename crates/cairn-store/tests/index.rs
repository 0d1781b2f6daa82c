//! Index entries: put, get, paging, delete, versions, limits and isolation.
//!
//! Guards against an old or replayed write rolling an entry back, against
//! a retry after a lost reply failing (or two racing writers both
//! "winning" one version), against oversized entries, and above all
//! against one user reading, overwriting or deleting another's entries.

mod common;

use cairn_store::{Admin, IndexEntry, IndexError, IndexPut, MAX_INDEX_ENTRY_LEN, Store};
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
