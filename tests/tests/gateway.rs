//! The local gateway: `keyward serve --upstream URL --policy FILE` in front of a real local
//! HTTP service (a small echo server here), end to end.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use keyward_e2e::{Client, Server};
use serde_json::{Value, json};

/// An upstream that answers every request with its method, path and headers, as JSON.
fn echo_server() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut parts = line.split_whitespace();
            let (method, path) = (
                parts.next().unwrap_or("").to_owned(),
                parts.next().unwrap_or("").to_owned(),
            );
            let mut headers = serde_json::Map::new();
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    headers.insert(k.trim().to_ascii_lowercase(), json!(v.trim()));
                }
            }
            let body = json!({"method": method, "path": path, "headers": headers}).to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (format!("http://{addr}"), hits)
}

#[test]
fn the_gateway_forwards_allowed_requests_with_context_and_refuses_the_rest() {
    let (upstream, hits) = echo_server();
    let tmp = tempfile::tempdir().unwrap();
    let policy = tmp.path().join("routes.json");
    std::fs::write(
        &policy,
        json!({"routes": [
            {"method": "GET", "path": "/agents/{id}", "action": "read", "resource": "agents/{id}"},
            {"method": "POST", "path": "/agents", "action": "write", "resource": "agents"},
        ]})
        .to_string(),
    )
    .unwrap();
    let server = Server::start(
        &tmp.path().join("d"),
        &tmp.path().join("log"),
        &[
            "--upstream",
            &upstream,
            "--policy",
            policy.to_str().unwrap(),
            "--gateway-listen",
            "127.0.0.1:0",
        ],
    );
    let gateway_url = server
        .stdout
        .iter()
        .find_map(|l| l.strip_prefix("keyward: gateway listening on "))
        .and_then(|l| l.split(',').next())
        .expect("the gateway says where it listens")
        .to_owned();
    let admin = server.client().with_key(&server.root_key().unwrap());
    let r = admin.post(
        "/v1/keys",
        &json!({"name": "reader", "scopes": ["agent:viewer"], "groups": []}),
    );
    let (id, key) = (
        r.json()["key"]["id"].as_str().unwrap().to_owned(),
        r.json()["secret"].as_str().unwrap().to_owned(),
    );
    let gateway = Client::new(&gateway_url);

    let r = gateway.get("/agents/ag_1");
    assert_eq!(
        (r.status, r.content_type.as_str()),
        (401, "application/problem+json")
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a refused request never reaches the upstream"
    );

    let r = gateway.with_key(&key).get("/agents/ag_1?x=1");
    assert_eq!(r.status, 200, "{}", r.text);
    let echo: Value = r.json();
    assert_eq!(echo["path"], "/agents/ag_1?x=1");
    assert_eq!(echo["headers"]["x-keyward-key-id"], id.as_str());
    assert_eq!(echo["headers"]["x-keyward-scopes"], "agent:viewer");
    assert!(
        echo["headers"].get("x-api-key").is_none(),
        "the key itself is not forwarded"
    );
    assert!(!r.text.contains(&key[8..40]));

    let forged = gateway.with_key(&key).post_with("/agents", "{}", &[]);
    assert_eq!(forged.status, 403, "a viewer may not write");
    let r = gateway.with_key(&key).get("/not/in/the/policy");
    assert_eq!(r.status, 403, "routes outside the policy are denied");

    let r = gateway.get_with(
        "/agents/ag_2",
        &[
            ("Authorization", &format!("Bearer {key}")),
            ("X-Keyward-Key-Id", "key_forged"),
        ],
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["headers"]["x-keyward-key-id"],
        id.as_str(),
        "context headers cannot be forged"
    );
    assert!(r.json()["headers"].get("authorization").is_none());

    // A key limited to 2 a minute: the third request through the gateway is 429 with
    // Retry-After, and never reaches the upstream.
    let r = admin.post(
        "/v1/keys",
        &json!({"name": "scarce", "scopes": ["agent:viewer"], "rate_limit_per_minute": 2}),
    );
    let scarce = r.json()["secret"].as_str().unwrap().to_owned();
    keyward_e2e::with_seconds_left_in_minute(3); // all three in one minute
    let before = hits.load(Ordering::SeqCst);
    let statuses: Vec<u16> = (0..3)
        .map(|_| gateway.with_key(&scarce).get("/agents/ag_1").status)
        .collect();
    assert_eq!(statuses, [200, 200, 429]);
    let limited = gateway.with_key(&scarce).get("/agents/ag_1");
    assert_eq!(limited.content_type, "application/problem+json");
    let wait: u64 = limited.retry_after.as_deref().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        before + 2,
        "only the admitted two"
    );

    assert_eq!(
        admin
            .post(&format!("/v1/keys/{id}/revoke"), &json!({}))
            .status,
        200
    );
    assert_eq!(
        gateway.with_key(&key).get("/agents/ag_1").status,
        401,
        "a revoke in this process is seen at once"
    );
    server.stop();
}
