//! The HTTPS API: the client's scenario over https://, then the API as a
//! generic HTTPS client sees it (the node's certificate as the only trust
//! root, as `curl --cacert node.crt` would), its refusals, and its
//! connection limits.
//!
//! Requests name their route by its row of the table
//! (`cairn_net::rest::ROUTES`), as the node and the client do; the few
//! URLs spelled out here pin the wire contract itself (that a table edit
//! cannot move a route curl users rely on unnoticed).

use std::time::{Duration, Instant};

use cairn_net::Scheme;
use cairn_net::rest::{self, Op};
use cairn_net::tls::{self, ALPN_HTTP1, Pin};
use cairn_node::Size;
use cairn_testing::in_process::{TestNode, auth_key, shard, shards_and_index_work_over, start};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn shards_and_index_over_https() {
    shards_and_index_work_over(Scheme::Https).await;
}

/// A plain reqwest client that trusts the node's certificate and nothing
/// else, with normal verification (host name included).
fn generic_client(node: &TestNode) -> reqwest::Client {
    let certificate = reqwest::Certificate::from_pem(node.certificate_pem.as_bytes()).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([certificate])
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn url(node: &TestNode, path: &str) -> String {
    format!("https://{}{path}", node.address(Scheme::Https).authority())
}

/// The URL of `op`'s route on `node`: the table's path, with `param` for
/// its `{id}` or `{name}`.
fn url_of(node: &TestNode, op: Op, param: &str) -> String {
    url(node, &op.route().path_for(param))
}

/// A request on `op`'s route: the table's method and path.
fn call(http: &reqwest::Client, node: &TestNode, op: Op, param: &str) -> reqwest::RequestBuilder {
    http.request(op.route().method.clone(), url_of(node, op, param))
}

/// The same with a query.
fn call_query(
    http: &reqwest::Client,
    node: &TestNode,
    op: Op,
    param: &str,
    query: &str,
) -> reqwest::RequestBuilder {
    let url = format!("{}?{query}", url_of(node, op, param));
    http.request(op.route().method.clone(), url)
}

/// The Basic password of `user` on `node`: base64 of its auth key.
fn password(node: &TestNode, user: &str) -> String {
    let key = auth_key(user).for_node(node.node_id.0.as_bytes());
    data_encoding::BASE64.encode(key.expose_secret())
}

async fn json_of(response: reqwest::Response) -> Value {
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

/// Checks that `response` is the JSON error `code` with `status`.
async fn assert_error(response: reqwest::Response, status: u16, code: &str) {
    assert_eq!(response.status().as_u16(), status, "{response:?}");
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "{response:?}"
    );
    let body = json_of(response).await;
    assert_eq!(body["error"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[tokio::test]
async fn a_generic_https_client_uses_every_route() {
    let node = start(|_| {}).await;
    let http = generic_client(&node);

    let health = call(&http, &node, Op::Health, "").send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    // The health answer names the newest protocol version, which says
    // which routes the node serves.
    assert_eq!(
        json_of(health).await,
        json!({"status": "ok", "protocol": cairn_net::protocol::VERSIONS[0]})
    );

    let info = json_of(call(&http, &node, Op::Info, "").send().await.unwrap()).await;
    assert_eq!(info["node_id"], node.node_id.to_string());
    assert_eq!(info["public_read"], true);

    // The document served describes every row of the table.
    let doc = json_of(call(&http, &node, Op::Describe, "").send().await.unwrap()).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for route in &rest::ROUTES {
        let method = route.method.as_str().to_lowercase();
        assert!(
            doc["paths"][route.path][&method].is_object(),
            "{method} {} not described",
            route.path
        );
    }
    assert!(doc["components"]["schemas"]["ErrorJson"].is_object());

    // Shards with HTTP Basic on each request; the wire contract spelled
    // out: PUT answers 201 when it wrote the bytes, 200 when it had them.
    let alice = password(&node, "alice");
    let (id, bytes) = shard(9, 5000);
    let shard_url = url(&node, &format!("/v1/shards/{id}"));
    let put = || {
        http.put(&shard_url)
            .basic_auth("alice", Some(&alice))
            .body(bytes.clone())
    };
    let first = put().send().await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    assert_eq!(json_of(first).await, json!({"written": true}));
    let again = put().send().await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(json_of(again).await, json!({"written": false}));
    let got = http.get(&shard_url).send().await.unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.headers()["content-type"], "application/octet-stream");
    assert_eq!(got.bytes().await.unwrap(), bytes);

    // HEAD on a present and an absent shard.
    let id = id.to_string();
    let head = call(&http, &node, Op::HeadShard, &id).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert!(head.bytes().await.unwrap().is_empty());
    let (absent, _) = shard(10, 10);
    let absent = absent.to_string();
    let head = call(&http, &node, Op::HeadShard, &absent)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::NOT_FOUND);

    // A token from /v1/login works in place of Basic.
    let login = call(&http, &node, Op::Login, "")
        .basic_auth("alice", Some(&alice))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let login = json_of(login).await;
    assert_eq!(login["user"], "alice");
    assert_eq!(login["token_type"], "Bearer");
    assert!(login["expires_in"].as_u64().unwrap() > 60);
    let token = login["token"].as_str().unwrap().to_owned();

    let have = call(&http, &node, Op::HaveShards, "")
        .bearer_auth(&token)
        .json(&json!({"ids": [id, absent]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_of(have).await,
        json!({"stored": [true, false], "mine": [true, false]})
    );

    let name = "ab".repeat(32);
    let stored = call_query(&http, &node, Op::PutIndex, &name, "version=4")
        .bearer_auth(&token)
        .body("entry data")
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(stored).await, json!({"replaced": null}));
    // The version may come in a header instead.
    let stored = call(&http, &node, Op::PutIndex, &name)
        .header(rest::VERSION_HEADER, "5")
        .bearer_auth(&token)
        .body("newer data")
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(stored).await, json!({"replaced": 4}));
    // The version comes back in the cairn-version header (spelled out:
    // it is the contract).
    let entry = call(&http, &node, Op::GetIndex, &name)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(entry.headers()["cairn-version"], "5");
    assert_eq!(entry.bytes().await.unwrap(), "newer data");
    let list = call_query(&http, &node, Op::ListIndex, "", "limit=10")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_of(list).await,
        json!({
            "entries": [{
                "name": name,
                "version": 5,
                "data": data_encoding::BASE64URL_NOPAD.encode(b"newer data"),
            }],
            "more": false,
        })
    );
    let deleted = call(&http, &node, Op::DeleteIndex, &name)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(deleted).await, json!({"version": 5}));

    let dropped = call(&http, &node, Op::DropShards, "")
        .bearer_auth(&token)
        .json(&json!({"ids": [id, absent]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_of(dropped).await,
        json!({"outcomes": ["deleted", "not_referenced"]})
    );
    let gone = call(&http, &node, Op::HeadShard, &id).send().await.unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    node.stop().await;
}

/// Protocol version 3's routes as a generic HTTPS client uses them (the
/// URLs and JSON spelled out: they are the contract): an index put with a
/// folder and a summary length, the folder's listing of summaries, and the
/// change feed, with its cursor and folder filter.
#[tokio::test]
async fn a_generic_https_client_lists_folders_and_reads_the_change_feed() {
    let node = start(|_| {}).await;
    let http = generic_client(&node);
    let alice = password(&node, "alice");
    let b64 = |data: &[u8]| data_encoding::BASE64URL_NOPAD.encode(data);
    let (docs, photos) = ("d0".repeat(32), "f0".repeat(32));
    let put = |name: &str, query: String, body: &'static str| {
        http.put(url(&node, &format!("/v1/index/{name}?{query}")))
            .basic_auth("alice", Some(&alice))
            .body(body)
    };
    let (one, two, three) = ("01".repeat(32), "02".repeat(32), "03".repeat(32));
    for (name, query, body) in [
        (
            &one,
            format!("version=1&folder={docs}&summary_len=3"),
            "onebody",
        ),
        (
            &two,
            format!("version=1&folder={photos}&summary_len=2"),
            "twobody",
        ),
        // No summary length: all of the data.
        (&three, format!("version=1&folder={docs}"), "three"),
    ] {
        let stored = put(name, query, body).send().await.unwrap();
        assert_eq!(stored.status(), StatusCode::OK);
        assert_eq!(json_of(stored).await, json!({"replaced": null}));
    }
    // Without either, a legacy put: in the all-zero folder, all summary.
    let legacy = "04".repeat(32);
    put(&legacy, "version=1".into(), "legacy")
        .send()
        .await
        .unwrap();

    let listing = http
        .get(url(&node, &format!("/v1/folders/{docs}?limit=10")))
        .basic_auth("alice", Some(&alice))
        .send()
        .await
        .unwrap();
    assert_eq!(listing.status(), StatusCode::OK);
    assert_eq!(
        json_of(listing).await,
        json!({
            "entries": [
                {"name": one, "version": 1, "data": b64(b"one")},
                {"name": three, "version": 1, "data": b64(b"three")},
            ],
            "more": false,
        })
    );
    let page = http
        .get(url(
            &node,
            &format!("/v1/folders/{docs}?after={one}&limit=1"),
        ))
        .basic_auth("alice", Some(&alice))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(page).await["entries"][0]["name"], three);
    let zeros = "00".repeat(32);
    let legacy_listing = http
        .get(url(&node, &format!("/v1/folders/{zeros}")))
        .basic_auth("alice", Some(&alice))
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_of(legacy_listing).await["entries"][0]["data"],
        b64(b"legacy")
    );
    // The whole data from a get.
    let got = http
        .get(url(&node, &format!("/v1/index/{one}")))
        .basic_auth("alice", Some(&alice))
        .send()
        .await
        .unwrap();
    assert_eq!(got.bytes().await.unwrap(), "onebody");

    let feed = http
        .get(url(&node, "/v1/changes"))
        .basic_auth("alice", Some(&alice))
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status(), StatusCode::OK);
    let feed = json_of(feed).await;
    let entries = feed["entries"].as_array().unwrap();
    let names: Vec<_> = entries
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [&one, &two, &three, &legacy]);
    assert_eq!(entries[1]["data"], b64(b"tw"));
    assert_eq!(feed["next"], entries[3]["seq"]);
    assert_eq!(feed["more"], false);
    assert!(feed["feed"].as_u64().is_some());
    // Since the second change, in the docs folder only: the third; the
    // cursor ends past the legacy entry it skipped.
    let since = entries[1]["seq"].as_u64().unwrap();
    let filtered = http
        .get(url(
            &node,
            &format!("/v1/changes?since={since}&folder={docs}&limit=5"),
        ))
        .basic_auth("alice", Some(&alice))
        .send()
        .await
        .unwrap();
    let filtered = json_of(filtered).await;
    assert_eq!(filtered["feed"], feed["feed"]);
    assert_eq!(filtered["entries"].as_array().unwrap().len(), 1);
    assert_eq!(filtered["entries"][0]["name"], three);
    assert_eq!(filtered["next"], feed["next"]);

    // Refusals: a summary past the data, a summary over 8 KiB, a folder
    // that is not 64 hex digits, no credentials.
    let refused = put(
        &one,
        format!("version=2&folder={docs}&summary_len=8"),
        "seven!!",
    )
    .send()
    .await
    .unwrap();
    assert_error(refused, 400, "bad_request").await;
    let refused = put(
        &one,
        format!("version=2&folder={docs}&summary_len=8193"),
        "x",
    )
    .send()
    .await
    .unwrap();
    assert_error(refused, 400, "bad_request").await;
    let refused = http
        .get(url(&node, "/v1/folders/not-a-tag"))
        .basic_auth("alice", Some(&alice))
        .send()
        .await
        .unwrap();
    assert_error(refused, 400, "bad_request").await;
    let refused = http
        .get(url(&node, &format!("/v1/changes?folder={docs}")))
        .send()
        .await
        .unwrap();
    assert_error(refused, 401, "unauthorized").await;
    node.stop().await;
}

/// Every row of the table reaches its handler: none is answered by the
/// router's own 404 (no such route) or 405 (no such method).
#[tokio::test]
async fn every_row_of_the_table_is_routed() {
    let node = start(|_| {}).await;
    let http = generic_client(&node);
    let alice = password(&node, "alice");
    for route in &rest::ROUTES {
        let answer = call(&http, &node, route.op, &"ab".repeat(32))
            .basic_auth("alice", Some(&alice))
            .send()
            .await
            .unwrap();
        let status = answer.status();
        let body = answer.bytes().await.unwrap();
        let text = String::from_utf8_lossy(&body);
        assert_ne!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{} {}",
            route.method,
            route.path
        );
        assert!(
            !text.contains("no such route"),
            "{} {}: {text}",
            route.method,
            route.path
        );
    }
    node.stop().await;
}

#[tokio::test]
async fn bad_input_gets_json_errors_and_the_node_keeps_serving() {
    let node = start(|c| c.max_shard_size = Size(64 * 1024)).await;
    let http = generic_client(&node);
    let alice = password(&node, "alice");

    // Wrong credentials, in every form.
    let wrong_key = data_encoding::BASE64.encode(&[0u8; 32]);
    let refused = call(&http, &node, Op::ListIndex, "")
        .basic_auth("alice", Some(&wrong_key))
        .send()
        .await
        .unwrap();
    assert!(refused.headers().contains_key("www-authenticate"));
    assert_error(refused, 401, "unauthorized").await;
    let refused = call(&http, &node, Op::Login, "")
        .basic_auth("mallory", Some(&wrong_key))
        .send()
        .await
        .unwrap();
    assert_error(refused, 401, "unauthorized").await;
    let refused = call(&http, &node, Op::ListIndex, "")
        .basic_auth("alice", Some("not base64 of 32 bytes"))
        .send()
        .await
        .unwrap();
    assert_error(refused, 401, "unauthorized").await;
    let refused = call(&http, &node, Op::ListIndex, "")
        .bearer_auth("made-up-token")
        .send()
        .await
        .unwrap();
    assert_error(refused, 401, "unauthorized").await;
    let refused = call(&http, &node, Op::Login, "").send().await.unwrap();
    assert_error(refused, 401, "unauthorized").await;
    // No credentials where a user is needed.
    let refused = call(&http, &node, Op::ListIndex, "").send().await.unwrap();
    assert_error(refused, 401, "unauthorized").await;

    // Malformed ids and names never reach the store.
    for bad in [
        "not-hex",
        "..%2F..%2Fetc%2Fpasswd",
        &"g".repeat(64),
        &"a".repeat(63),
    ] {
        let refused = call(&http, &node, Op::PutShard, bad)
            .basic_auth("alice", Some(&alice))
            .body("x")
            .send()
            .await
            .unwrap();
        assert_error(refused, 400, "bad_request").await;
        let refused = call(&http, &node, Op::GetIndex, bad)
            .basic_auth("alice", Some(&alice))
            .send()
            .await
            .unwrap();
        assert_error(refused, 400, "bad_request").await;
    }
    let refused = call(&http, &node, Op::HaveShards, "")
        .body("{\"ids\": [1, 2]}")
        .send()
        .await
        .unwrap();
    assert_error(refused, 400, "bad_request").await;
    let name = "cd".repeat(32);
    let refused = call(&http, &node, Op::PutIndex, &name)
        .basic_auth("alice", Some(&alice))
        .body("no version")
        .send()
        .await
        .unwrap();
    assert_error(refused, 400, "bad_request").await;

    // Bytes that do not hash to the id.
    let (id, _) = shard(1, 100);
    let refused = call(&http, &node, Op::PutShard, &id.to_string())
        .basic_auth("alice", Some(&alice))
        .body("other bytes")
        .send()
        .await
        .unwrap();
    assert_error(refused, 422, "hash_mismatch").await;

    // Bodies over the limits, refused from their length; then the node
    // serves the next request.
    let (id, bytes) = shard(2, 64 * 1024 + 1);
    let refused = call(&http, &node, Op::PutShard, &id.to_string())
        .basic_auth("alice", Some(&alice))
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_error(refused, 413, "too_large").await;
    let refused = call_query(&http, &node, Op::PutIndex, &name, "version=1")
        .basic_auth("alice", Some(&alice))
        .body(vec![0u8; cairn_store::MAX_INDEX_ENTRY_LEN + 1])
        .send()
        .await
        .unwrap();
    assert_error(refused, 413, "too_large").await;
    let (id, bytes) = shard(3, 64 * 1024);
    let stored = call(&http, &node, Op::PutShard, &id.to_string())
        .basic_auth("alice", Some(&alice))
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(stored.status(), StatusCode::CREATED);

    // Routes that do not exist, and methods a route does not take
    // (spelled out: no row of the table may claim them).
    for path in ["/v1/nothing", "/", "/v2/info", "/v1/shards"] {
        let missing = http.get(url(&node, path)).send().await.unwrap();
        assert_error(missing, 404, "not_found").await;
    }
    let wrong_method = http
        .delete(url(&node, &format!("/v1/shards/{id}")))
        .send()
        .await
        .unwrap();
    assert_error(wrong_method, 405, "bad_request").await;
    node.stop().await;
}

#[tokio::test]
async fn a_private_node_answers_head_and_get_only_with_credentials() {
    let node = start(|c| c.public_read = false).await;
    let http = generic_client(&node);
    let alice = password(&node, "alice");
    let (id, bytes) = shard(4, 1000);
    let id = id.to_string();
    call(&http, &node, Op::PutShard, &id)
        .basic_auth("alice", Some(&alice))
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    let anonymous = call(&http, &node, Op::HeadShard, &id).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let anonymous = call(&http, &node, Op::GetShard, &id).send().await.unwrap();
    assert_error(anonymous, 401, "unauthorized").await;
    let anonymous = call(&http, &node, Op::HaveShards, "")
        .json(&json!({"ids": [id]}))
        .send()
        .await
        .unwrap();
    assert_error(anonymous, 401, "unauthorized").await;
    let head = call(&http, &node, Op::HeadShard, &id)
        .basic_auth("alice", Some(&alice))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    let got = call(&http, &node, Op::GetShard, &id)
        .basic_auth("alice", Some(&alice))
        .send()
        .await
        .unwrap();
    assert_eq!(got.bytes().await.unwrap(), bytes);
    node.stop().await;
}

/// A TLS connection to the node's HTTPS port, below any HTTP client.
async fn raw_connection(node: &TestNode) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let (config, _) = tls::client_config(Pin::Node(node.node_id), &[ALPN_HTTP1]);
    let tcp = tokio::net::TcpStream::connect(node.address(Scheme::Https).authority())
        .await
        .unwrap();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(tls::server_name(), tcp)
        .await
        .unwrap()
}

/// Reads until the node closes the connection; what it sent.
async fn read_until_closed(
    stream: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
) -> String {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the node kept the connection open");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn slow_senders_and_idle_connections_are_cut_off() {
    let node = start(|c| {
        c.request_timeout_secs = 1;
        c.idle_timeout_secs = 1;
    })
    .await;
    // Headers, then a body that stops after a few bytes.
    let mut slow = raw_connection(&node).await;
    let (id, _) = shard(5, 1000);
    let put = Op::PutShard.route();
    let head = format!(
        "{} {} HTTP/1.1\r\nhost: node\r\nauthorization: Basic {}\r\ncontent-length: 1000\r\n\r\nabc",
        put.method,
        put.path_for(&id.to_string()),
        data_encoding::BASE64.encode(format!("alice:{}", password(&node, "alice")).as_bytes())
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    slow.flush().await.unwrap();
    let started = Instant::now();
    let answer = read_until_closed(&mut slow).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("\"bad_request\""), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(4));

    // Half a request head, then nothing.
    let mut stalled = raw_connection(&node).await;
    stalled
        .write_all(b"GET /v1/health HTTP/1.1\r\nhost:")
        .await
        .unwrap();
    stalled.flush().await.unwrap();
    read_until_closed(&mut stalled).await;

    // Nothing at all.
    let mut idle = raw_connection(&node).await;
    read_until_closed(&mut idle).await;

    // Meanwhile, and afterwards, everyone else is served.
    let health = call(&generic_client(&node), &node, Op::Health, "")
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    node.stop().await;
}

#[tokio::test]
async fn shutdown_does_not_wait_for_idle_https_connections() {
    let node = start(|c| c.shutdown_grace_secs = 30).await;
    let http = generic_client(&node);
    // Leaves a kept-alive connection in the client's pool.
    let health = call(&http, &node, Op::Health, "").send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let mut raw = raw_connection(&node).await;
    let started = Instant::now();
    node.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown waited {:?}",
        started.elapsed()
    );
    read_until_closed(&mut raw).await;
}

#[tokio::test]
async fn the_client_logs_in_again_after_a_node_restart() {
    // Tokens live in the node's memory: a restart forgets them. The client
    // must take the 401 as a cue to log in again with its credentials.
    let node = start(|_| {}).await;
    let alice = node.login(Scheme::Https, "alice").await;
    let (id, bytes) = shard(6, 100);
    assert!(alice.put_shard(&id, bytes.clone()).await.unwrap());
    let node = node.restart().await;
    let (other, other_bytes) = shard(7, 100);
    assert!(alice.put_shard(&other, other_bytes).await.unwrap());
    assert_eq!(alice.get_shard(&id).await.unwrap(), bytes);
    let has = alice.has_shards(&[id, other]).await.unwrap();
    assert_eq!(has.mine, vec![true, true]);
    node.stop().await;
}

#[tokio::test]
async fn a_peer_that_does_not_read_its_answers_is_dropped() {
    let node = start(|c| c.request_timeout_secs = 1).await;
    let alice = node.login(Scheme::Https, "alice").await;
    let (id, bytes) = shard(8, 1_000_000);
    alice.put_shard(&id, bytes).await.unwrap();
    // Twenty pipelined reads of a 1 MB shard: far more than the socket
    // buffers hold, so the node's writes stall until the peer reads.
    let mut greedy = raw_connection(&node).await;
    let get = format!(
        "GET {} HTTP/1.1\r\nhost: node\r\n\r\n",
        Op::GetShard.route().path_for(&id.to_string())
    );
    greedy.write_all(get.repeat(20).as_bytes()).await.unwrap();
    greedy.flush().await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut received = Vec::new();
    let read =
        tokio::time::timeout(Duration::from_secs(5), greedy.read_to_end(&mut received)).await;
    assert!(read.is_ok(), "the node kept the connection open");
    assert!(
        received.len() < 20 * 1_000_000,
        "the node waited for the peer: {} bytes sent",
        received.len()
    );
    node.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_are_refused() {
    let node = start(|c| c.max_connections = 1).await;
    let first = raw_connection(&node).await;
    let (config, _) = tls::client_config(Pin::Node(node.node_id), &[ALPN_HTTP1]);
    let tcp = tokio::net::TcpStream::connect(node.address(Scheme::Https).authority())
        .await
        .unwrap();
    let second = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(tls::server_name(), tcp)
        .await;
    assert!(second.is_err(), "a second connection was served");
    // Once the first leaves, its place is free again.
    drop(first);
    let http = generic_client(&node);
    let mut served = false;
    for _ in 0..50 {
        if let Ok(health) = call(&http, &node, Op::Health, "").send().await {
            assert_eq!(health.status(), StatusCode::OK);
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "the freed connection slot was not reused");
    node.stop().await;
}
