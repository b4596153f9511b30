//! Rate limits and usage as a user of `keyward serve` meets them, on both stores: 61 quick
//! verifications of a key limited to 60 give 60 VALID and one 429 with Retry-After; `keyward
//! authorize` explains without spending; an admin key's management calls spend their own
//! budget (the deployment's management limit), not the key's; and the usage endpoints report
//! every verification by outcome once the in-process aggregator has run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics

use std::process::Command;
use std::time::{Duration, Instant};

use keyward_e2e::{Backend, Server, keyward_bin, with_seconds_left_in_minute};
use serde_json::json;

keyward_e2e::on_both_stores!(sixty_a_minute_means_sixty,);

fn sixty_a_minute_means_sixty(backend: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut args = backend.serve_args();
    args.extend(["--management-rate-limit", "40"]);
    let server = Server::start(&data, &dir.path().join("serve.log"), &args);
    let anon = server.client();
    let root = server.root_key().unwrap();
    let admin = anon.with_key(&root);

    // Everything below, to the management limit, within one minute.
    with_seconds_left_in_minute(20);
    // The root key may verify 1 a minute: its management calls are not spent from that.
    let root_id = admin.get("/v1/keys?q=root").json()["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = admin.patch(
        &format!("/v1/keys/{root_id}"),
        &json!({"rate_limit_per_minute": 1}),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text);

    let (id, secret) = admin
        .create_key(&json!({"name": "sixty", "scopes": ["read"], "rate_limit_per_minute": 60}));
    let mut codes = Vec::new();
    let mut refused = None;
    for _ in 0..61 {
        let r = anon.verify(&secret, json!({"source_ip": "192.0.2.7"}));
        let code = r.json()["code"].as_str().unwrap().to_owned();
        if r.status == 429 {
            refused = Some(r.clone());
        }
        codes.push(code);
    }
    let valid = codes.iter().filter(|c| *c == "VALID").count();
    assert_eq!(valid, 60, "{codes:?}");
    let refused = refused.expect("the 61st is refused");
    assert_eq!(refused.json()["code"], "RATE_LIMITED");
    let wait: u64 = refused.retry_after.as_deref().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    eprintln!("61 verifications: 60 VALID, then 429 with Retry-After {wait}");

    // `keyward authorize` explains the next request: no budget left, and it spends nothing.
    let event = dir.path().join("event.json");
    let mut e: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/fixtures/events/example-apigw-v2-custom-authorizer-v2-request.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    e["headers"]["x-api-key"] = json!(secret);
    std::fs::write(&event, serde_json::to_vec(&e).unwrap()).unwrap();
    let mut cmd = Command::new(keyward_bin());
    cmd.args(["authorize", "--event"])
        .arg(&event)
        .arg("--data-dir")
        .arg(&data)
        .args(backend.serve_args());
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("rate limit: 60 a minute, none left this minute"),
        "{text}"
    );
    assert!(text.contains("decision: RATE_LIMITED"), "{text}");

    // Another admin key, to read usage while the root key is refused.
    let (_, reader) = admin.create_key(
        &json!({"name": "reader", "scopes": [{"action": "admin", "resource": "keys/**"}]}),
    );
    let reader = anon.with_key(&reader);

    // The management limit (40 a minute here): the root key is refused once it has made 40
    // calls this minute, with a problem and Retry-After; its verification limit of 1 never
    // came into it.
    let started = Instant::now();
    let mut admitted = 0;
    let limited = loop {
        let r = admin.get(&format!("/v1/keys/{id}"));
        if r.status == 429 {
            break r;
        }
        assert_eq!(r.status, 200, "{}", r.text);
        admitted += 1;
        assert!(admitted <= 40, "more than the management limit admitted");
    };
    assert_eq!(limited.content_type, "application/problem+json");
    let wait: u64 = limited.retry_after.as_deref().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    assert_eq!(
        admitted, 36,
        "the root key made 4 calls before (list, patch, two creates)"
    );
    eprintln!(
        "management calls: refused after {admitted} more in {:?}",
        started.elapsed()
    );

    // Usage, once the engine has flushed (10 s) and the aggregator has run (every 5 s): every
    // verification of the key, by outcome. `keyward authorize` counted nothing.
    let deadline = Instant::now() + Duration::from_secs(45);
    let usage = loop {
        let r = reader.get(&format!("/v1/keys/{id}/usage"));
        assert_eq!(r.status, 200, "{}", r.text);
        if r.json()["request_count"] == 61 {
            break r.json();
        }
        assert!(Instant::now() < deadline, "usage not rolled up: {}", r.text);
        std::thread::sleep(Duration::from_secs(2));
    };
    let day = &usage["days"][0];
    assert_eq!(
        (
            &day["valid"],
            &day["rate_limited"],
            &day["denied"],
            &day["total"]
        ),
        (&json!(60), &json!(1), &json!(0), &json!(61)),
        "{usage}"
    );
    assert_eq!(usage["last_used_ip"], "192.0.2.7", "{usage}");
    let today = chrono::Utc::now().date_naive().to_string();
    let account = reader.get(&format!("/v1/usage?from={today}&to={today}"));
    assert_eq!(account.status, 200, "{}", account.text);
    let days = account.json()["days"].clone();
    assert!(
        days[0]["valid"].as_u64().unwrap() >= 60 && days[0]["rate_limited"] == 1,
        "the account's day holds the key's: {days}"
    );
    let _ = server.stop();
}
