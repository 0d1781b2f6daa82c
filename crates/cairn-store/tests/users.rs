//! User accounts: adding, reading, listing, quotas and removal.
//!
//! Guards against a name that could be mistaken for a path or an option
//! getting in, against two accounts under one name, against a removed user
//! leaving references (and so usage, and files nobody can drop) or index
//! entries behind, against removing a user deleting a shard another user
//! still holds, and against the auth hash reaching logs through `Debug`.

mod common;

use cairn_store::{
    DropOutcome, IndexEntry, InvalidNameReason, MAX_USER_NAME_LEN, UserError, UserRecord,
};
use common::{LAYOUTS, Layout, open, open_in, shard, shard_path, user_record};

fn entry(name: u8, version: u64, data: &[u8]) -> IndexEntry {
    IndexEntry {
        name: [name; 32],
        version,
        data: data.to_vec(),
    }
}

#[test]
fn add_get_list_and_set_quota() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert_eq!(store.user("ann").unwrap(), None);
    assert!(store.list_users().unwrap().is_empty());

    // Added out of order, listed in name order.
    store.add_user("cy", &user_record(3, None)).unwrap();
    store.add_user("ann", &user_record(1, Some(10))).unwrap();
    store.add_user("Bob", &user_record(2, None)).unwrap();
    assert_eq!(store.user("ann").unwrap(), Some(user_record(1, Some(10))));
    assert_eq!(
        store.list_users().unwrap(),
        [
            ("Bob".to_owned(), user_record(2, None)),
            ("ann".to_owned(), user_record(1, Some(10))),
            ("cy".to_owned(), user_record(3, None)),
        ]
    );

    store.set_quota("ann", None).unwrap();
    store.set_quota("cy", Some(1 << 40)).unwrap();
    assert_eq!(store.user("ann").unwrap(), Some(user_record(1, None)));
    assert_eq!(
        store.user("cy").unwrap(),
        Some(user_record(3, Some(1 << 40)))
    );
    // Names are exact: no case folding.
    assert_eq!(store.user("bob").unwrap(), None);

    let err = store.set_quota("dora", Some(1)).unwrap_err();
    assert!(
        matches!(&err, UserError::NoSuchUser { name } if name == "dora"),
        "{err:?}"
    );
    assert!(store.user("dora").unwrap().is_none());

    // Everything survives reopening.
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.list_users().unwrap().len(), 3);
    assert_eq!(
        store.user("cy").unwrap(),
        Some(user_record(3, Some(1 << 40)))
    );
}

#[test]
fn a_second_user_of_the_same_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.add_user("ann", &user_record(1, Some(10))).unwrap();
    let err = store.add_user("ann", &user_record(9, None)).unwrap_err();
    assert!(
        matches!(&err, UserError::Exists { name } if name == "ann"),
        "{err:?}"
    );
    assert!(err.to_string().contains("already exists"), "{err}");
    // The first record is untouched.
    assert_eq!(store.user("ann").unwrap(), Some(user_record(1, Some(10))));
}

#[test]
fn invalid_names_are_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let too_long = "n".repeat(MAX_USER_NAME_LEN + 1);
    let cases = [
        ("", InvalidNameReason::Empty),
        (too_long.as_str(), InvalidNameReason::TooLong { len: 65 }),
        (
            "../x",
            InvalidNameReason::BadCharacter {
                character: '/',
                position: 2,
            },
        ),
        (
            "a/b",
            InvalidNameReason::BadCharacter {
                character: '/',
                position: 1,
            },
        ),
        (".hidden", InvalidNameReason::BadStart { first: '.' }),
        ("-x", InvalidNameReason::BadStart { first: '-' }),
        (
            "é",
            InvalidNameReason::BadCharacter {
                character: 'é',
                position: 0,
            },
        ),
    ];
    for (name, expected) in cases {
        let err = store.add_user(name, &user_record(1, None)).unwrap_err();
        let UserError::InvalidName {
            name: reported,
            reason,
        } = &err
        else {
            panic!("{name:?}: expected InvalidName, got {err:?}");
        };
        assert_eq!((reported.as_str(), *reason), (name, expected));
        assert!(err.to_string().contains("invalid user name"), "{err}");
        assert_eq!(store.user(name).unwrap(), None);
    }
    assert!(store.list_users().unwrap().is_empty());
    // The longest allowed name, and every allowed character, go in.
    let longest = "n".repeat(MAX_USER_NAME_LEN);
    store.add_user(&longest, &user_record(1, None)).unwrap();
    store.add_user("Az09._-", &user_record(2, None)).unwrap();
    assert_eq!(store.list_users().unwrap().len(), 2);
}

#[test]
fn remove_user_takes_references_usage_and_entries_but_not_shared_shards() {
    for layout in LAYOUTS {
        remove_user_takes_references_usage_and_entries_but_not_shared_shards_in(layout);
    }
}

fn remove_user_takes_references_usage_and_entries_but_not_shared_shards_in(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(dir.path(), layout);
    for (seed, name) in [(1, "ann"), (2, "bob")] {
        store.add_user(name, &user_record(seed, None)).unwrap();
    }
    let (shared, shared_bytes) = shard(1, 500);
    let (own_a, own_a_bytes) = shard(2, 300);
    let (own_b, own_b_bytes) = shard(3, 200);
    let (bobs, bobs_bytes) = shard(4, 100);
    for (user, id, bytes) in [
        ("ann", &shared, &shared_bytes),
        ("ann", &own_a, &own_a_bytes),
        ("ann", &own_b, &own_b_bytes),
        ("bob", &shared, &shared_bytes),
        ("bob", &bobs, &bobs_bytes),
    ] {
        store.put(user, id, bytes, None).unwrap();
    }
    for name in 1..=3 {
        store.put_index("ann", &entry(name, 1, b"ann's")).unwrap();
    }
    store.put_index("bob", &entry(1, 1, b"bob's")).unwrap();
    assert_eq!(store.usage("ann").unwrap(), 1000);

    let removed = store.remove_user("ann").unwrap();
    assert_eq!(removed.references, 3);
    assert_eq!(removed.index_entries, 3);
    let mut unheld = vec![own_a, own_b];
    unheld.sort();
    assert_eq!(removed.unheld, unheld);
    // Files are deleted after the commit; records released in it.
    let deleted = match layout {
        Layout::Files => (2, 0),
        Layout::Segments => (0, 2),
    };
    assert_eq!((removed.files_deleted, removed.records_released), deleted);

    // Ann is gone, with everything she had.
    assert_eq!(store.user("ann").unwrap(), None);
    assert_eq!(store.usage("ann").unwrap(), 0);
    for id in [&shared, &own_a, &own_b] {
        assert!(!store.has_ref("ann", id).unwrap());
    }
    assert!(store.list_index("ann", None, 10).unwrap().is_empty());
    assert_eq!(store.shard_place(&own_a).unwrap(), None);
    assert_eq!(store.shard_place(&own_b).unwrap(), None);
    assert!(!shard_path(dir.path(), &own_a).exists());
    assert!(!shard_path(dir.path(), &own_b).exists());

    // Bob keeps his references, usage, entries and the shared file.
    assert_eq!(store.usage_by_user().unwrap(), [("bob".to_owned(), 600)]);
    assert_eq!(store.get(&shared).unwrap(), shared_bytes);
    assert_eq!(
        store.get_index("bob", &[1; 32]).unwrap(),
        Some(entry(1, 1, b"bob's"))
    );
    // The holders were adjusted: Bob is now the shared shard's last holder.
    assert_eq!(
        store.drop_ref("bob", &shared).unwrap(),
        DropOutcome::Deleted
    );

    // Removing again finds nothing.
    let err = store.remove_user("ann").unwrap_err();
    assert!(
        matches!(&err, UserError::NoSuchUser { name } if name == "ann"),
        "{err:?}"
    );
}

#[test]
fn remove_user_cleans_up_references_under_a_name_without_a_record() {
    // Store::put takes any name; references under a name that never was,
    // or no longer is, a user can still be removed.
    for layout in LAYOUTS {
        let dir = tempfile::tempdir().unwrap();
        let store = open_in(dir.path(), layout);
        let (id, bytes) = shard(5, 50);
        store.put("ghost", &id, &bytes, None).unwrap();
        let removed = store.remove_user("ghost").unwrap();
        let expected = match layout {
            Layout::Files => (1, 1, 0),
            Layout::Segments => (1, 0, 1),
        };
        assert_eq!(
            (
                removed.references,
                removed.files_deleted,
                removed.records_released
            ),
            expected
        );
        assert!(store.usage_by_user().unwrap().is_empty());
        assert!(!store.contains(&id));
    }
}

#[test]
fn debug_of_a_user_record_hides_the_hash() {
    let record = UserRecord {
        salt: [0x11; 16],
        auth_hash: [0xee; 32],
        quota: Some(7),
        created_unix: 1,
    };
    let debug = format!("{record:?}");
    let pretty = format!("{record:#?}");
    for shown in [&debug, &pretty] {
        assert!(!shown.contains("ee"), "{shown}");
        assert!(!shown.contains("238"), "{shown}"); // 0xee in decimal
        assert!(shown.contains("redacted"), "{shown}");
        assert!(shown.contains("quota"), "{shown}");
    }
}
