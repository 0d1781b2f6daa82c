//! The HTTPS API: the client's scenario over https://, then the API as a
//! generic HTTPS client sees it (the node's certificate as the only trust
//! root, as `curl --cacert node.crt` would), its refusals, and its
//! connection limits.

use std::time::{Duration, Instant};

use cairn_net::Scheme;
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

    let health = http.get(url(&node, "/v1/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(json_of(health).await, json!({"status": "ok"}));

    let info = json_of(http.get(url(&node, "/v1/info")).send().await.unwrap()).await;
    assert_eq!(info["node_id"], node.node_id.to_string());
    assert_eq!(info["public_read"], true);

    let doc = json_of(
        http.get(url(&node, "/v1/openapi.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/v1/shards/{id}",
        "/v1/shards/have",
        "/v1/shards/drop",
        "/v1/index",
        "/v1/index/{name}",
        "/v1/login",
        "/v1/info",
        "/v1/health",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} not described");
    }
    assert!(doc["components"]["schemas"]["ErrorJson"].is_object());

    // Shards with HTTP Basic on each request.
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
    let head = http.head(&shard_url).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert!(head.bytes().await.unwrap().is_empty());
    let (absent, _) = shard(10, 10);
    let head = http
        .head(url(&node, &format!("/v1/shards/{absent}")))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::NOT_FOUND);

    // A token from /v1/login works in place of Basic.
    let login = http
        .post(url(&node, "/v1/login"))
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

    let have = http
        .post(url(&node, "/v1/shards/have"))
        .bearer_auth(&token)
        .json(&json!({"ids": [id.to_string(), absent.to_string()]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_of(have).await,
        json!({"stored": [true, false], "mine": [true, false]})
    );

    let name = "ab".repeat(32);
    let entry_url = url(&node, &format!("/v1/index/{name}"));
    let stored = http
        .put(format!("{entry_url}?version=4"))
        .bearer_auth(&token)
        .body("entry data")
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(stored).await, json!({"replaced": null}));
    // The version may come in a header instead.
    let stored = http
        .put(&entry_url)
        .header("cairn-version", "5")
        .bearer_auth(&token)
        .body("newer data")
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(stored).await, json!({"replaced": 4}));
    let entry = http
        .get(&entry_url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(entry.headers()["cairn-version"], "5");
    assert_eq!(entry.bytes().await.unwrap(), "newer data");
    let list = http
        .get(url(&node, "/v1/index?limit=10"))
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
    let deleted = http
        .delete(&entry_url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(deleted).await, json!({"version": 5}));

    let dropped = http
        .post(url(&node, "/v1/shards/drop"))
        .bearer_auth(&token)
        .json(&json!({"ids": [id.to_string(), absent.to_string()]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_of(dropped).await,
        json!({"outcomes": ["deleted", "not_referenced"]})
    );
    let gone = http.head(&shard_url).send().await.unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    node.stop().await;
}

#[tokio::test]
async fn bad_input_gets_json_errors_and_the_node_keeps_serving() {
    let node = start(|c| c.max_shard_size = Size(64 * 1024)).await;
    let http = generic_client(&node);
    let alice = password(&node, "alice");
    let index_url = url(&node, "/v1/index");

    // Wrong credentials, in every form.
    let wrong_key = data_encoding::BASE64.encode(&[0u8; 32]);
    let refused = http
        .get(&index_url)
        .basic_auth("alice", Some(&wrong_key))
        .send()
        .await
        .unwrap();
    assert!(refused.headers().contains_key("www-authenticate"));
    assert_error(refused, 401, "unauthorized").await;
    let refused = http
        .post(url(&node, "/v1/login"))
        .basic_auth("mallory", Some(&wrong_key))
        .send()
        .await
        .unwrap();
    assert_error(refused, 401, "unauthorized").await;
    let refused = http
        .get(&index_url)
        .basic_auth("alice", Some("not base64 of 32 bytes"))
        .send()
        .await
        .unwrap();
    assert_error(refused, 401, "unauthorized").await;
    let refused = http
        .get(&index_url)
        .bearer_auth("made-up-token")
        .send()
        .await
        .unwrap();
    assert_error(refused, 401, "unauthorized").await;
    let refused = http.post(url(&node, "/v1/login")).send().await.unwrap();
    assert_error(refused, 401, "unauthorized").await;
    // No credentials where a user is needed.
    let refused = http.get(&index_url).send().await.unwrap();
    assert_error(refused, 401, "unauthorized").await;

    // Malformed ids and names never reach the store.
    for bad in [
        "not-hex",
        "..%2F..%2Fetc%2Fpasswd",
        &"g".repeat(64),
        &"a".repeat(63),
    ] {
        let refused = http
            .put(url(&node, &format!("/v1/shards/{bad}")))
            .basic_auth("alice", Some(&alice))
            .body("x")
            .send()
            .await
            .unwrap();
        assert_error(refused, 400, "bad_request").await;
        let refused = http
            .get(url(&node, &format!("/v1/index/{bad}")))
            .basic_auth("alice", Some(&alice))
            .send()
            .await
            .unwrap();
        assert_error(refused, 400, "bad_request").await;
    }
    let refused = http
        .post(url(&node, "/v1/shards/have"))
        .body("{\"ids\": [1, 2]}")
        .send()
        .await
        .unwrap();
    assert_error(refused, 400, "bad_request").await;
    let name = "cd".repeat(32);
    let refused = http
        .put(url(&node, &format!("/v1/index/{name}")))
        .basic_auth("alice", Some(&alice))
        .body("no version")
        .send()
        .await
        .unwrap();
    assert_error(refused, 400, "bad_request").await;

    // Bytes that do not hash to the id.
    let (id, _) = shard(1, 100);
    let refused = http
        .put(url(&node, &format!("/v1/shards/{id}")))
        .basic_auth("alice", Some(&alice))
        .body("other bytes")
        .send()
        .await
        .unwrap();
    assert_error(refused, 422, "hash_mismatch").await;

    // Bodies over the limits, refused from their length; then the node
    // serves the next request.
    let (id, bytes) = shard(2, 64 * 1024 + 1);
    let refused = http
        .put(url(&node, &format!("/v1/shards/{id}")))
        .basic_auth("alice", Some(&alice))
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_error(refused, 413, "too_large").await;
    let refused = http
        .put(url(&node, &format!("/v1/index/{name}?version=1")))
        .basic_auth("alice", Some(&alice))
        .body(vec![0u8; cairn_store::MAX_INDEX_ENTRY_LEN + 1])
        .send()
        .await
        .unwrap();
    assert_error(refused, 413, "too_large").await;
    let (id, bytes) = shard(3, 64 * 1024);
    let stored = http
        .put(url(&node, &format!("/v1/shards/{id}")))
        .basic_auth("alice", Some(&alice))
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(stored.status(), StatusCode::CREATED);

    // Routes that do not exist, and methods a route does not take.
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
    let shard_url = url(&node, &format!("/v1/shards/{id}"));
    http.put(&shard_url)
        .basic_auth("alice", Some(&alice))
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    let anonymous = http.head(&shard_url).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let anonymous = http.get(&shard_url).send().await.unwrap();
    assert_error(anonymous, 401, "unauthorized").await;
    let head = http
        .head(&shard_url)
        .basic_auth("alice", Some(&alice))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    let got = http
        .get(&shard_url)
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
    let head = format!(
        "PUT /v1/shards/{id} HTTP/1.1\r\nhost: node\r\nauthorization: Basic {}\r\ncontent-length: 1000\r\n\r\nabc",
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
    let health = generic_client(&node)
        .get(url(&node, "/v1/health"))
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
    let health = http.get(url(&node, "/v1/health")).send().await.unwrap();
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
    let get = format!("GET /v1/shards/{id} HTTP/1.1\r\nhost: node\r\n\r\n");
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
        if let Ok(health) = http.get(url(&node, "/v1/health")).send().await {
            assert_eq!(health.status(), StatusCode::OK);
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "the freed connection slot was not reused");
    node.stop().await;
}
