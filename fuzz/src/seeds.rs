//! Seed inputs for every target, made from real encodings: frames of real
//! requests, a manifest and capability of a sealed file, a real index
//! entry and store records. Each seed starts with the target's mode byte
//! (see the target's docs).

use bytes::Bytes;
use cairn_client::RemotePath;
use cairn_client::index::{
    Content, Entry, EntryKind, FileEntry, InlineBytes, SEALED_BODY, SEALED_ENTRY, Version,
};
use cairn_core::keys::{ConvergenceKey, IndexKey, KeyMaterial, ManifestsKey};
use cairn_core::pipeline::seal_manifest;
use cairn_core::seal::ChunkSealer;
use cairn_core::{Capability, FileSealer, Id, Redundancy, envelope};
use cairn_net::frame;
use cairn_net::protocol::{
    AuthKeyBytes, Dropped, ErrorBody, ErrorCode, Request, Response, VERSIONS,
};
use data_encoding::BASE64URL_NOPAD;

/// Seeds by target name.
pub fn all() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let (capability, manifest_bytes, sealed_manifest, shard) = file();
    vec![
        ("answer", answers()),
        ("frame", frames()),
        ("hello", hellos()),
        ("shard", vec![with_mode(0, &shard), stripe_seed()]),
        ("chunk", chunks()),
        (
            "manifest",
            vec![
                with_mode(0, &manifest_bytes),
                with_mode(1, &sealed_manifest),
            ],
        ),
        (
            "envelope",
            vec![
                with_mode(0, &sealed_manifest),
                with_mode(1, &[9, 0, 7, 0, 1, b'h', b'i']),
            ],
        ),
        ("capability", capabilities(&capability)),
        ("index_entry", index_entries(&capability)),
        ("store_record", store_records()),
    ]
}

fn with_mode(mode: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![mode];
    out.extend_from_slice(bytes);
    out
}

/// A small file sealed as the client seals it: its capability, its
/// encoded and sealed manifest, and one shard of its first chunk.
fn file() -> (Capability, Vec<u8>, Vec<u8>, Vec<u8>) {
    let data: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
    let redundancy = Redundancy::new(2, 3).expect("valid");
    let mut sealer = FileSealer::new(&data[..], &ConvergenceKey::from_bytes([4; 32]), redundancy);
    let stripes: Vec<_> = sealer.by_ref().map(|s| s.expect("seals")).collect();
    let manifest = sealer.finish().expect("finishes");
    let (capability, _) =
        seal_manifest(&manifest, &ManifestsKey::from_bytes([5; 32]), redundancy).expect("seals");
    let sealed = manifest.seal(&capability.key);
    let shard = stripes[0].shards[0].bytes.clone();
    (capability, manifest.encode(), sealed, shard)
}

fn frames() -> Vec<Vec<u8>> {
    let id = Id::of(b"shard");
    let requests = [
        (
            Request::Login {
                user: "alice".into(),
                auth_key: AuthKeyBytes([7; 32]),
            },
            Bytes::new(),
        ),
        (Request::Info, Bytes::new()),
        (Request::PutShard { id }, Bytes::from_static(b"shard bytes")),
        (Request::GetShard { id }, Bytes::new()),
        (Request::HasShards { ids: vec![id, id] }, Bytes::new()),
        (Request::DropShards { ids: vec![id] }, Bytes::new()),
        (
            Request::PutIndex {
                name: [3; 32],
                version: 300,
            },
            Bytes::from_static(b"sealed entry"),
        ),
        (Request::GetIndex { name: [3; 32] }, Bytes::new()),
        (
            Request::ListIndex {
                after: Some([1; 32]),
                limit: 100,
            },
            Bytes::new(),
        ),
        (Request::DeleteIndex { name: [3; 32] }, Bytes::new()),
        (Request::Ping, Bytes::new()),
        (
            Request::PutEntry {
                name: [3; 32],
                version: 301,
                folder: [9; 32],
                summary_len: 6,
            },
            Bytes::from_static(b"sealed entry"),
        ),
        (
            Request::ListFolder {
                folder: [9; 32],
                after: Some([1; 32]),
                limit: 100,
            },
            Bytes::new(),
        ),
        (
            Request::Changes {
                since: 40,
                folder: Some([9; 32]),
                limit: 100,
            },
            Bytes::new(),
        ),
    ];
    let responses = [
        Response::LoggedIn {
            user: "alice".into(),
        },
        Response::ShardStored { written: true },
        Response::Has {
            stored: vec![true, false],
            mine: vec![false, false],
        },
        Response::Dropped {
            outcomes: vec![Dropped::Released, Dropped::Deleted],
        },
        Response::IndexStored { replaced: Some(4) },
        Response::IndexList {
            entries: vec![([1; 32], 5, 3), ([2; 32], 6, 0)],
            more: true,
        },
        Response::IndexDeleted { version: None },
        Response::Error(ErrorBody::new(ErrorCode::QuotaExceeded, "over quota")),
        Response::Pong,
        Response::ChangeList {
            feed: 0xfeed,
            entries: vec![([1; 32], 5, 41, 2), ([2; 32], 6, 44, 1)],
            next: 47,
            more: true,
        },
    ];
    let mut seeds = Vec::new();
    let mut all = Vec::new();
    futures::executor::block_on(async {
        for (stream, (request, body)) in requests.iter().enumerate() {
            let mut wire = Vec::new();
            frame::write_frame(&mut wire, stream as u32, &frame::encode(request), body)
                .await
                .expect("to memory");
            all.extend_from_slice(&wire);
            seeds.push(wire);
        }
        for response in &responses {
            let mut wire = Vec::new();
            frame::write_frame(&mut wire, 1, &frame::encode(response), b"abc")
                .await
                .expect("to memory");
            seeds.push(wire);
        }
    });
    seeds.push(all);
    seeds
}

fn answers() -> Vec<Vec<u8>> {
    let listing = Response::IndexList {
        entries: vec![([1; 32], 5, 3), ([2; 32], 6, 0), ([3; 32], 7, 4)],
        more: true,
    };
    let message = frame::encode(&listing);
    let mut framed = vec![0];
    framed.extend_from_slice(&(message.len() as u16).to_le_bytes());
    framed.extend_from_slice(&message);
    framed.extend_from_slice(b"abcdefg");
    let json = format!(
        r#"{{"entries":[{{"name":"{}","version":5,"data":"YWJj"}},{{"name":"{}","version":6,"data":""}}],"more":false}}"#,
        "01".repeat(32),
        "AB".repeat(32)
    );
    let info = format!(
        r#"{{"node_id":"{}","software":"0.1.0","protocol":1,"capacity_bytes":100,"free_bytes":50,"used_bytes":10,"public_read":true,"max_shard_len":67108876}}"#,
        "5f".repeat(32)
    );
    let changes = Response::ChangeList {
        feed: 0xfeed,
        entries: vec![
            ([1; 32], 5, 41, 3),
            ([2; 32], 6, 44, 0),
            ([3; 32], 7, 45, 4),
        ],
        next: 47,
        more: false,
    };
    let message = frame::encode(&changes);
    let mut framed_changes = vec![0];
    framed_changes.extend_from_slice(&(message.len() as u16).to_le_bytes());
    framed_changes.extend_from_slice(&message);
    framed_changes.extend_from_slice(b"abcdefg");
    let changes_json = format!(
        r#"{{"feed":65261,"entries":[{{"name":"{}","version":5,"seq":41,"data":"YWJj"}},{{"name":"{}","version":6,"seq":44,"data":""}}],"next":47,"more":true}}"#,
        "01".repeat(32),
        "AB".repeat(32)
    );
    vec![
        framed,
        framed_changes,
        with_mode(1, json.as_bytes()),
        with_mode(2, info.as_bytes()),
        with_mode(2, br#"{"error":"not_found","message":"no such shard"}"#),
        with_mode(2, br#"{"status":"ok","protocol":3}"#),
        with_mode(3, changes_json.as_bytes()),
    ]
}

fn hellos() -> Vec<Vec<u8>> {
    let mut client = b"cnwp".to_vec();
    client.push(VERSIONS.len() as u8);
    client.extend_from_slice(VERSIONS);
    let node = b"cnwp\x01\x01\x01\x00\x00".to_vec();
    let mut refusal = b"cnwp\x00\x01\x01".to_vec();
    refusal.extend_from_slice(&5u16.to_le_bytes());
    refusal.extend_from_slice(b"sorry");
    vec![
        with_mode(0, &client),
        with_mode(1, &[&[1, 1][..], &node].concat()),
        with_mode(1, &[&[2, 2, 1][..], &refusal].concat()),
        vec![2, 2, 2, 1, 1, 1],
    ]
}

fn stripe_seed() -> Vec<u8> {
    // k - 1 = 1, n - k = 1 (2-of-3), shards 0 and 2 given, ids kept, one
    // flip in shard 1 (not given), then the blob.
    let mut seed = vec![1, 1, 1, 0b101, 0, 0, 0, 1, 1, 20, 0, 0xff];
    seed.extend_from_slice(b"a blob of some bytes, spread over three shards");
    seed
}

fn chunks() -> Vec<Vec<u8>> {
    let text = b"cairn cairn cairn cairn cairn cairn cairn cairn cairn cairn".repeat(4);
    let material = KeyMaterial::from_bytes([7; 32]);
    let sealed = ChunkSealer::new().seal_with(&material, &text);
    let compressed = zstd::bulk::compress(&text, 1).expect("compresses");
    let len = (text.len() as u32).to_le_bytes();
    vec![
        with_mode(0, &[&len[..], &sealed].concat()),
        with_mode(1, &[&len[..], &[1], &compressed].concat()),
        with_mode(1, &[&len[..], &[0], &text].concat()),
        with_mode(2, &[&[9, 0, 1][..], &text].concat()),
    ]
}

fn capabilities(capability: &Capability) -> Vec<Vec<u8>> {
    let text = capability.to_string();
    let bytes = BASE64URL_NOPAD
        .decode(text.strip_prefix("cairn:").expect("prefix").as_bytes())
        .expect("base64");
    vec![
        with_mode(0, text.as_bytes()),
        with_mode(1, &bytes[..bytes.len() - 4]),
    ]
}

fn index_entries(capability: &Capability) -> Vec<Vec<u8>> {
    let key = IndexKey::from_bytes([1; 32]);
    let path: RemotePath = "photos/2026/cairn.jpg".parse().expect("a path");
    let file = Entry {
        path: path.clone(),
        version: Version(1_790_000_000_000 << 16),
        writer: [7; 16],
        kind: EntryKind::File(FileEntry {
            content: Content::Stored(capability.clone()),
            size: 3000,
            modified_unix_ms: 1_790_000_000_000,
            chunks: 1,
            redundancy: Redundancy::new(2, 3).expect("valid"),
            content_hash: Id::of(b"content"),
        }),
    };
    let tombstone = Entry {
        kind: EntryKind::Deleted,
        ..file.clone()
    };
    let data = b"a small file kept inline".to_vec();
    let inline = Entry {
        kind: EntryKind::File(FileEntry {
            size: data.len() as u64,
            content_hash: Id::of(&data),
            content: Content::Inline(InlineBytes::new(data).expect("small")),
            modified_unix_ms: 1_790_000_000_000,
            chunks: 0,
            redundancy: Redundancy::new(2, 3).expect("valid"),
        }),
        ..file.clone()
    };
    let mut seeds = Vec::new();
    let folder = Entry {
        kind: EntryKind::Folder,
        ..file.clone()
    };
    for entry in [file, tombstone, inline, folder] {
        if let Ok(legacy) = entry.seal_legacy(&key) {
            let plain = envelope::open(&SEALED_ENTRY, key.expose_secret(), &legacy).expect("opens");
            seeds.push(with_mode(0, &plain));
            seeds.push(with_mode(1, &legacy));
        }
        // Split: "cnse" 0x01, summary length (4), summary, body.
        let sealed = entry.seal(&key).expect("seals");
        let (summary, body) = sealed.data.split_at(sealed.summary_len as usize);
        let summary =
            envelope::open(&SEALED_ENTRY, key.expose_secret(), &summary[9..]).expect("opens");
        let mut input = vec![u8::try_from(summary.len()).expect("a short summary")];
        input.extend_from_slice(&summary);
        if !body.is_empty() {
            input.extend(envelope::open(&SEALED_BODY, key.expose_secret(), body).expect("opens"));
        }
        seeds.push(with_mode(3, &input));
        seeds.push(with_mode(1, &sealed.data));
    }
    seeds.push(with_mode(2, path.as_str().as_bytes()));
    seeds.push(with_mode(2, b"/a/./b//c"));
    seeds
}

fn store_records() -> Vec<Vec<u8>> {
    let user = cairn_store::UserRecord {
        salt: [1; 16],
        auth_hash: [2; 32],
        quota: Some(20 << 30),
        created_unix: 1_790_000_000,
    };
    // A scrub record: format 1, then five varints.
    let scrub = [1, 0x80, 0x80, 0x04, 10, 0xa0, 0x1f, 1, 0];
    vec![
        with_mode(0, &user.encode()),
        with_mode(1, &scrub),
        with_mode(
            2,
            &cairn_store::index::encode(&cairn_store::index::IndexRecord {
                version: 300,
                folder: [9; 32],
                seq: 41,
                summary_len: 6,
                data: b"sealed entry",
            }),
        ),
        // Format 1, as schema version 2 wrote it: version 300, 12 bytes.
        with_mode(2, &[&[1, 0xac, 0x02, 12][..], b"sealed entry"].concat()),
    ]
}
