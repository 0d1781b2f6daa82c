//! The table against itself, both directions of its mappings, and the
//! OpenAPI document against the table.

use std::collections::BTreeSet;

use bytes::Bytes;
use cairn_core::Id;

use super::*;
use crate::identity::NodeId;
use crate::protocol::{
    AuthKeyBytes, Dropped, ErrorCode, LEGACY_FOLDER, Limits, NodeInfo, Request, Response,
};

/// The number of a request's variant. Exhaustive, so that a new variant
/// fails to compile here until it has a sample below (and so a route).
fn variant(request: &Request) -> usize {
    match request {
        Request::Login { .. } => 0,
        Request::Info => 1,
        Request::PutShard { .. } => 2,
        Request::GetShard { .. } => 3,
        Request::HasShards { .. } => 4,
        Request::DropShards { .. } => 5,
        Request::PutIndex { .. } => 6,
        Request::GetIndex { .. } => 7,
        Request::ListIndex { .. } => 8,
        Request::DeleteIndex { .. } => 9,
        Request::Ping => 10,
        Request::PutEntry { .. } => 11,
        Request::ListFolder { .. } => 12,
        Request::Changes { .. } => 13,
    }
}

/// A request of every variant (some twice), with the body beside it.
fn samples() -> Vec<(Request, Bytes)> {
    let none = Bytes::new();
    let (a, b) = (Id::of(b"a"), Id::of(b"b"));
    vec![
        (
            Request::Login {
                user: "alice".into(),
                auth_key: AuthKeyBytes([7; 32]),
            },
            none.clone(),
        ),
        (Request::Info, none.clone()),
        (Request::PutShard { id: a }, Bytes::from_static(b"a")),
        (Request::GetShard { id: b }, none.clone()),
        (Request::HasShards { ids: vec![a, b] }, none.clone()),
        (Request::DropShards { ids: vec![b] }, none.clone()),
        (
            Request::PutIndex {
                name: [0xab; 32],
                version: u64::MAX,
            },
            Bytes::from_static(b"sealed entry"),
        ),
        (
            Request::PutIndex {
                name: [1; 32],
                version: 0,
            },
            none.clone(),
        ),
        (Request::GetIndex { name: [2; 32] }, none.clone()),
        (
            Request::ListIndex {
                after: Some([3; 32]),
                limit: 10,
            },
            none.clone(),
        ),
        (
            Request::ListIndex {
                after: None,
                limit: 1,
            },
            none.clone(),
        ),
        (Request::DeleteIndex { name: [4; 32] }, none.clone()),
        (Request::Ping, none.clone()),
        (
            Request::PutEntry {
                name: [5; 32],
                version: 7,
                folder: [0xf0; 32],
                summary_len: 3,
            },
            Bytes::from_static(b"summary and body"),
        ),
        // The legacy folder and no summary are still a `PutEntry`: the
        // query says so.
        (
            Request::PutEntry {
                name: [6; 32],
                version: 1,
                folder: LEGACY_FOLDER,
                summary_len: 0,
            },
            none.clone(),
        ),
        (
            Request::ListFolder {
                folder: [7; 32],
                after: Some([8; 32]),
                limit: 10,
            },
            none.clone(),
        ),
        (
            Request::ListFolder {
                folder: LEGACY_FOLDER,
                after: None,
                limit: 1,
            },
            none.clone(),
        ),
        (
            Request::Changes {
                since: 12,
                folder: Some([9; 32]),
                limit: 1000,
            },
            none.clone(),
        ),
        (
            Request::Changes {
                since: u64::MAX,
                folder: None,
                limit: 0,
            },
            none,
        ),
    ]
}

/// The path parameter of `path` if it matches `template`.
fn matches(template: &str, path: &str) -> Option<Option<String>> {
    let (t, p): (Vec<_>, Vec<_>) = (template.split('/').collect(), path.split('/').collect());
    if t.len() != p.len() {
        return None;
    }
    let mut param = None;
    for (t, p) in t.iter().zip(&p) {
        if t.starts_with('{') {
            param = Some((*p).to_owned());
        } else if t != p {
            return None;
        }
    }
    Some(param)
}

fn head_parts<'a>(call: &'a Call, param: Option<&'a str>, query: Option<&'a str>) -> HeadParts<'a> {
    HeadParts {
        param,
        query,
        version: None,
        authorization: call.authorization.as_ref().map(|a| a.as_bytes()),
    }
}

#[test]
fn the_table_is_in_the_order_of_its_ops_and_consistent() {
    for (i, route) in ROUTES.iter().enumerate() {
        assert_eq!(route.op as usize, i, "{:?}", route.op);
        assert!(std::ptr::eq(route.op.route(), route));
        // The path names its parameter, and only then has one.
        let braces = route.path.matches('{').count();
        match route.param {
            Some(param) => {
                assert_eq!(braces, 1, "{}", route.path);
                assert!(route.path.contains(&format!("{{{}}}", param.name())));
            }
            None => assert_eq!(braces, 0, "{}", route.path),
        }
        assert!(route.path.starts_with(API_PREFIX));
        // Every route documents a success, and the failures its row
        // implies: 401 where it reads credentials, 400 where there is
        // something to get wrong, 413 where there is a body.
        let documents = |status| route.doc.statuses.iter().any(|(s, _)| *s == status);
        assert!(route.doc.statuses.iter().any(|(s, _)| *s < 300));
        let what = format!("{} {}", route.method, route.path);
        assert_eq!(documents(401), route.auth != Auth::None, "{what}");
        let malformed =
            route.param.is_some() || route.query != Query::None || route.body == Body::Ids;
        assert!(!malformed || documents(400), "{what}");
        assert_eq!(documents(413), route.body != Body::None, "{what}");
    }
    let names: BTreeSet<_> = ROUTES.iter().map(|r| r.op.name()).collect();
    assert_eq!(names.len(), ROUTES.len());
    let rows: BTreeSet<_> = ROUTES.iter().map(|r| (r.path, r.method.as_str())).collect();
    assert_eq!(rows.len(), ROUTES.len(), "two rows share a method and path");
}

/// Every request variant has a route, and what the client sends is what
/// the node reads back: the same request and the same body.
#[test]
fn every_request_goes_and_comes_back_unchanged() {
    let mut seen = BTreeSet::new();
    for (request, body) in samples() {
        seen.insert(variant(&request));
        let call = Call::of(&request, &body);
        assert_eq!(call.route.op, Op::of(&request));
        assert!(!format!("{call:?}").contains(&basic_credentials("alice", &[7; 32])));
        let (path, query) = match call.path.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (call.path.as_str(), None),
        };
        let param = matches(call.route.path, path)
            .unwrap_or_else(|| panic!("{path} is not {}", call.route.path));
        let sent = match &call.body {
            CallBody::None => Bytes::new(),
            CallBody::Octets(bytes) => {
                // The client shares the request's body, never copies it.
                assert_eq!(bytes.as_ptr(), body.as_ptr());
                bytes.clone()
            }
            CallBody::Json(json) => Bytes::from(json.clone()),
        };
        let head = call
            .route
            .head(head_parts(&call, param.as_deref(), query))
            .unwrap_or_else(|e| panic!("{request:?}: {e}"));
        let (read, read_body) = head.request(sent).unwrap();
        assert_eq!(
            postcard::to_allocvec(&read).unwrap(),
            postcard::to_allocvec(&request).unwrap(),
            "{request:?} came back as {read:?}"
        );
        assert_eq!(read_body, body, "{request:?}");
    }
    assert_eq!(seen.len(), 14, "a request variant has no sample");
}

#[test]
fn heads_refuse_what_is_malformed_before_the_body() {
    let bad = |op: Op, parts: HeadParts<'_>| op.route().head(parts).unwrap_err().code;
    let hex = "ab".repeat(32);
    for text in [
        "not-hex",
        "../../etc/passwd",
        &"g".repeat(64),
        &"a".repeat(63),
    ] {
        let parts = HeadParts {
            param: Some(text),
            ..HeadParts::default()
        };
        for op in [
            Op::PutShard,
            Op::GetShard,
            Op::HeadShard,
            Op::GetIndex,
            Op::DeleteIndex,
            Op::ListFolder,
        ] {
            assert_eq!(bad(op, parts), ErrorCode::BadRequest, "{op:?} {text}");
        }
    }
    let put_index = |query, version| HeadParts {
        param: Some(&hex),
        query,
        version,
        authorization: None,
    };
    assert_eq!(
        bad(Op::PutIndex, put_index(None, None)),
        ErrorCode::BadRequest
    );
    assert_eq!(
        bad(Op::PutIndex, put_index(Some("version=x"), None)),
        ErrorCode::BadRequest
    );
    assert_eq!(
        bad(Op::PutIndex, put_index(None, Some(b"x"))),
        ErrorCode::BadRequest
    );
    // The header stands in for the query; the query wins over it.
    for (query, header, version) in [
        (None, Some(&b" 5 "[..]), 5),
        (Some("version=4"), Some(&b"5"[..]), 4),
    ] {
        let head = Op::PutIndex.route().head(put_index(query, header)).unwrap();
        let (request, _) = head.request(Bytes::new()).unwrap();
        assert!(matches!(request, Request::PutIndex { version: v, .. } if v == version));
    }
    let list = |query| HeadParts {
        query: Some(query),
        ..HeadParts::default()
    };
    for query in [
        "limit=x",
        "limit=-1",
        "after=ab",
        "limit=4294967296",
        "limit=1&limit=2",
        "limit=",
    ] {
        assert_eq!(
            bad(Op::ListIndex, list(query)),
            ErrorCode::BadRequest,
            "{query}"
        );
        if query.starts_with("limit") {
            assert_eq!(
                bad(Op::Changes, list(query)),
                ErrorCode::BadRequest,
                "{query}"
            );
        }
        let folder = HeadParts {
            param: Some(&hex),
            query: Some(query),
            ..HeadParts::default()
        };
        assert_eq!(
            bad(Op::ListFolder, folder),
            ErrorCode::BadRequest,
            "{query}"
        );
    }
    for query in [
        "since=-1",
        "since=x",
        "folder=ab",
        "folder=",
        "since=1&since=2",
    ] {
        assert_eq!(
            bad(Op::Changes, list(query)),
            ErrorCode::BadRequest,
            "{query}"
        );
    }
    // A put's folder and summary length: hex and a number within the
    // summary limit, each optional.
    for query in [
        "version=1&folder=ab",
        "version=1&summary_len=x",
        "version=1&summary_len=-1",
        "version=1&summary_len=8193",
        "version=1&folder=1&folder=2",
    ] {
        assert_eq!(
            bad(Op::PutIndex, put_index(Some(query), None)),
            ErrorCode::BadRequest,
            "{query}"
        );
    }
    let folder = "f0".repeat(32);
    for (query, body, expected) in [
        (
            format!("version=2&folder={folder}&summary_len=8192"),
            &b""[..],
            Request::PutEntry {
                name: [0xab; 32],
                version: 2,
                folder: [0xf0; 32],
                summary_len: 8192,
            },
        ),
        // No summary length: all of the data.
        (
            format!("version=2&folder={folder}"),
            b"12345",
            Request::PutEntry {
                name: [0xab; 32],
                version: 2,
                folder: [0xf0; 32],
                summary_len: 5,
            },
        ),
        // No folder: the legacy one.
        (
            "version=2&summary_len=1".to_owned(),
            b"12345",
            Request::PutEntry {
                name: [0xab; 32],
                version: 2,
                folder: LEGACY_FOLDER,
                summary_len: 1,
            },
        ),
        (
            "version=2".to_owned(),
            b"12345",
            Request::PutIndex {
                name: [0xab; 32],
                version: 2,
            },
        ),
    ] {
        let parts = HeadParts {
            param: Some(&hex),
            query: Some(&query),
            ..HeadParts::default()
        };
        let head = Op::PutIndex.route().head(parts).unwrap();
        let (request, _) = head.request(Bytes::from_static(body)).unwrap();
        assert_eq!(
            postcard::to_allocvec(&request).unwrap(),
            postcard::to_allocvec(&expected).unwrap(),
            "{query}: {request:?}"
        );
    }
    // A change feed request without a query: from the start, as much as
    // the node gives.
    let head = Op::Changes.route().head(HeadParts::default()).unwrap();
    let (request, _) = head.request(Bytes::new()).unwrap();
    assert!(matches!(
        request,
        Request::Changes {
            since: 0,
            folder: None,
            limit: u32::MAX
        }
    ));
    // Values are percent-decoded.
    let head = Op::ListIndex.route().head(list("limit=%31%32")).unwrap();
    let (request, _) = head.request(Bytes::new()).unwrap();
    assert!(matches!(request, Request::ListIndex { limit: 12, .. }));
    // Without a limit, as many as the node gives in a page; unknown
    // parameters are ignored.
    let head = Op::ListIndex.route().head(list("other=1")).unwrap();
    let (request, _) = head.request(Bytes::new()).unwrap();
    assert!(matches!(
        request,
        Request::ListIndex {
            after: None,
            limit: u32::MAX
        }
    ));
    // A login takes Basic credentials, nothing else.
    for authorization in [None, Some(&b"Bearer abc"[..]), Some(b"Basic !!")] {
        let parts = HeadParts {
            authorization,
            ..HeadParts::default()
        };
        assert_eq!(bad(Op::Login, parts), ErrorCode::Unauthorized);
    }
    assert_eq!(bad(Op::Describe, HeadParts::default()), ErrorCode::Internal);
}

#[test]
fn batches_of_ids_must_be_json_of_hex_ids() {
    for body in [
        &b"{\"ids\": [1, 2]}"[..],
        b"{\"ids\": [\"ab\"]}",
        b"[]",
        b"",
    ] {
        for op in [Op::HaveShards, Op::DropShards] {
            let head = op.route().head(HeadParts::default()).unwrap();
            let refused = head.request(Bytes::copy_from_slice(body)).unwrap_err();
            assert_eq!(refused.code, ErrorCode::BadRequest);
        }
    }
}

fn info() -> NodeInfo {
    NodeInfo {
        node_id: NodeId(Id::of(b"node")),
        software: "cairn 0.1.0".into(),
        protocol: 3,
        capacity_bytes: 1 << 40,
        free_bytes: 1 << 39,
        used_bytes: 12,
        public_read: true,
        max_shard_len: 1 << 26,
    }
}

/// What the node sends is what the client reads back: the same response
/// and the same body.
#[test]
fn every_answer_goes_and_comes_back_unchanged() {
    let none = Bytes::new();
    let answers = [
        (
            Op::PutShard,
            Response::ShardStored { written: true },
            none.clone(),
            201,
        ),
        (
            Op::PutShard,
            Response::ShardStored { written: false },
            none.clone(),
            200,
        ),
        (
            Op::GetShard,
            Response::Shard,
            Bytes::from_static(b"shard"),
            200,
        ),
        (
            Op::HaveShards,
            Response::Has {
                stored: vec![true, false],
                mine: vec![false, false],
            },
            none.clone(),
            200,
        ),
        (
            Op::DropShards,
            Response::Dropped {
                outcomes: vec![Dropped::Deleted, Dropped::Released, Dropped::NotReferenced],
            },
            none.clone(),
            200,
        ),
        (
            Op::PutIndex,
            Response::IndexStored { replaced: Some(3) },
            none.clone(),
            200,
        ),
        (
            Op::PutIndex,
            Response::IndexStored { replaced: None },
            none.clone(),
            200,
        ),
        (
            Op::GetIndex,
            Response::IndexEntry { version: 9 },
            Bytes::from_static(b"data"),
            200,
        ),
        (
            Op::ListIndex,
            Response::IndexList {
                entries: vec![([1; 32], 1, 3), ([2; 32], 2, 0), ([3; 32], 7, 2)],
                more: true,
            },
            Bytes::from_static(b"abcde"),
            200,
        ),
        (
            Op::DeleteIndex,
            Response::IndexDeleted { version: None },
            none.clone(),
            200,
        ),
        (
            Op::ListFolder,
            Response::IndexList {
                entries: vec![([1; 32], 1, 2), ([4; 32], u64::MAX, 1)],
                more: false,
            },
            Bytes::from_static(b"abc"),
            200,
        ),
        (
            Op::Changes,
            Response::ChangeList {
                feed: u64::MAX,
                entries: vec![([1; 32], 1, 5, 3), ([2; 32], 2, 9, 0), ([3; 32], 7, 10, 2)],
                next: 12,
                more: true,
            },
            Bytes::from_static(b"abcde"),
            200,
        ),
        (
            Op::Changes,
            Response::ChangeList {
                feed: 1,
                entries: Vec::new(),
                next: 0,
                more: false,
            },
            none.clone(),
            200,
        ),
        (
            Op::Login,
            Response::LoggedIn {
                user: "alice".into(),
            },
            Bytes::from_static(b"token"),
            200,
        ),
        (Op::Info, Response::Info(info()), none.clone(), 200),
        (Op::Health, Response::Pong, none, 200),
    ];
    for (op, response, body, status) in answers {
        let route = op.route();
        let reply = route.reply(response.clone(), body.clone()).unwrap();
        let (sent, version) = match reply {
            Reply::Json { status: s, json } => {
                assert_eq!(s, status, "{op:?}");
                assert!(matches!(route.answer, Answer::Json(_)));
                (Bytes::from(json), None)
            }
            Reply::Octets { bytes, version } => {
                // The node sends the service's bytes as they are.
                assert_eq!(bytes.as_ptr(), body.as_ptr());
                (bytes, version.map(|v| v.to_string()))
            }
            Reply::Status(_) => panic!("{op:?} answers a body"),
        };
        assert!(sent.len() <= route.answer.max_len(&Limits::default()));
        let (back, back_body) = route
            .decode(version.as_deref().map(str::as_bytes), sent)
            .unwrap_or_else(|e| panic!("{op:?}: {e}"));
        assert_eq!(back, response, "{op:?}");
        assert_eq!(back_body, body, "{op:?}");
    }
}

#[test]
fn replies_are_only_what_the_route_answers() {
    let head = Op::HeadShard.route();
    let has = |stored| Response::Has {
        stored: vec![stored],
        mine: vec![false],
    };
    assert!(matches!(
        head.reply(has(true), Bytes::new()),
        Ok(Reply::Status(200))
    ));
    assert!(matches!(
        head.reply(has(false), Bytes::new()),
        Ok(Reply::Status(404))
    ));
    for (op, response) in [
        (Op::GetShard, Response::Pong),
        (Op::PutShard, has(true)),
        (Op::Info, Response::Shard),
        (Op::HeadShard, Response::Shard),
        (Op::Health, Response::IndexDeleted { version: None }),
    ] {
        let refused = op.route().reply(response, Bytes::new()).unwrap_err();
        assert_eq!(refused.code, ErrorCode::Internal, "{op:?}");
    }
    // An entry without its version, or JSON of another shape, is the
    // node's mistake, not an answer.
    assert!(matches!(
        Op::GetIndex.route().decode(None, Bytes::new()),
        Err(AnswerError::NoVersion)
    ));
    assert!(matches!(
        Op::PutShard
            .route()
            .decode(None, Bytes::from_static(b"{\"stored\":[]}")),
        Err(AnswerError::Json(_))
    ));
}

/// The OpenAPI document lists exactly the table's routes, with what
/// schemathesis (`scripts/schemathesis.sh`) found undocumented once: the
/// form of ids and names, the version an index put requires, and that an
/// index entry may be empty.
#[test]
fn the_openapi_document_describes_exactly_the_table() {
    let doc: serde_json::Value = serde_json::from_str(&openapi().to_json().unwrap()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let mut described = BTreeSet::new();
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap();
            described.insert((path.clone(), method.to_uppercase(), id.to_owned()));
        }
    }
    let table: BTreeSet<_> = ROUTES
        .iter()
        .map(|r| {
            (
                r.path.to_owned(),
                r.method.to_string(),
                r.op.name().to_owned(),
            )
        })
        .collect();
    assert_eq!(described, table);

    // Every schema referred to is there.
    let text = doc.to_string();
    for reference in text.split("\"$ref\":\"").skip(1) {
        let name = reference.split('"').next().unwrap();
        let name = name.strip_prefix("#/components/schemas/").unwrap();
        assert!(doc["components"]["schemas"][name].is_object(), "{name}");
    }
    let hex = "^[0-9a-fA-F]{64}$";
    let shard = &paths["/v1/shards/{id}"]["get"]["parameters"][0];
    assert_eq!(shard["schema"]["pattern"], hex);
    assert_eq!(
        doc["components"]["schemas"]["IdsJson"]["properties"]["ids"]["items"]["pattern"],
        hex
    );
    let put_index = &paths["/v1/index/{name}"]["put"];
    assert_eq!(put_index["parameters"][0]["schema"]["pattern"], hex);
    assert_eq!(put_index["parameters"][1]["name"], "version");
    assert_eq!(put_index["parameters"][1]["required"], true);
    assert_eq!(put_index["requestBody"]["required"], false);
    let entry = &put_index["responses"]["200"];
    assert_eq!(
        entry["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/IndexStoredJson"
    );
    // The put's folder and summary length (version 3): optional, the
    // summary length bounded by what a node keeps.
    assert_eq!(put_index["parameters"][2]["name"], "folder");
    assert_eq!(put_index["parameters"][2]["required"], false);
    assert_eq!(put_index["parameters"][2]["schema"]["pattern"], hex);
    assert_eq!(put_index["parameters"][3]["name"], "summary_len");
    assert_eq!(put_index["parameters"][3]["required"], false);
    assert_eq!(
        put_index["parameters"][3]["schema"]["maximum"],
        crate::protocol::MAX_SUMMARY_LEN
    );
    let folder = &paths["/v1/folders/{folder}"]["get"];
    assert_eq!(folder["parameters"][0]["schema"]["pattern"], hex);
    assert_eq!(
        folder["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/IndexListJson"
    );
    let changes = &paths["/v1/changes"]["get"];
    let names: Vec<_> = changes["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["since", "folder", "limit"]);
    assert!(
        changes["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["required"] == false)
    );
    assert_eq!(
        changes["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ChangeListJson"
    );
    let got = &paths["/v1/index/{name}"]["get"]["responses"]["200"];
    assert!(got["headers"][VERSION_HEADER].is_object());
    let limit = &paths["/v1/index"]["get"]["parameters"][1];
    assert_eq!(limit["schema"]["maximum"], u64::from(u32::MAX));
    assert!(doc["components"]["securitySchemes"]["basic"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    // Failures are ErrorJson, except for HEAD, which answers no body.
    let failure = &paths["/v1/shards/{id}"]["put"]["responses"]["422"];
    assert_eq!(
        failure["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorJson"
    );
    let head = &paths["/v1/shards/{id}"]["head"]["responses"];
    assert!(
        head.as_object()
            .unwrap()
            .values()
            .all(|r| r.get("content").is_none())
    );
}

/// A node says in its health answer which protocol version it speaks, so
/// that a client sends version 3 requests only to nodes that serve them;
/// a node before version 3 says nothing, and is taken as version 2.
#[test]
fn health_answers_name_the_protocol_version() {
    let (_, json) = match Op::Health
        .route()
        .reply(Response::Pong, Bytes::new())
        .unwrap()
    {
        Reply::Json { status, json } => (status, json),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        health_protocol(&json).unwrap(),
        crate::protocol::VERSIONS[0]
    );
    assert_eq!(health_protocol(br#"{"status":"ok"}"#).unwrap(), 2);
    // A newer node: the newest version both speak.
    assert_eq!(
        health_protocol(br#"{"status":"ok","protocol":200}"#).unwrap(),
        crate::protocol::VERSIONS[0]
    );
    assert!(health_protocol(b"not json").is_err());
}

/// A change feed page's summaries are cut from its body by the lengths
/// the message gives, and a body too short for them is refused.
#[test]
fn change_lists_split_into_their_summaries() {
    use crate::client::split_change_list;
    let entries = vec![([1; 32], 1, 5, 3), ([2; 32], 2, 9, 0), ([3; 32], 7, 10, 2)];
    let split = split_change_list(entries.clone(), Bytes::from_static(b"abcde")).unwrap();
    let summaries: Vec<_> = split.iter().map(|c| &c.summary[..]).collect();
    assert_eq!(summaries, [&b"abc"[..], b"", b"de"]);
    assert_eq!(
        split
            .iter()
            .map(|c| (c.name, c.version, c.seq))
            .collect::<Vec<_>>(),
        [([1; 32], 1, 5), ([2; 32], 2, 9), ([3; 32], 7, 10)]
    );
    assert!(split_change_list(entries, Bytes::from_static(b"abcd")).is_err());
}
