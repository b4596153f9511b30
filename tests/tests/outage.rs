//! A store that hangs: DynamoDB Local paused with SIGSTOP under a running `keyward serve`.
//! Every answer comes within the documented bound (5 s); a cached, unchanged key keeps
//! verifying for the stale-if-error window; a key changed before the outage, or never seen, is
//! never VALID (503 UNAVAILABLE); the management API answers 503 problems with Retry-After;
//! readiness follows the store while liveness stays up; the fault is logged once per interval.
//! And a locked SQLite database answers the same way.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics

use std::time::{Duration, Instant};

use keyward_e2e::{Backend, Client, PrivateDynamo, Reply, Server, with_seconds_left_in_minute};
use serde_json::json;

/// Every request that needs the store answers within this (docs/operations.md), plus slack
/// for a loaded test machine.
const BOUND: Duration = Duration::from_millis(5_000 + 1_500);

/// Runs `f`, printing how long it took (the figures of docs/operations.md).
fn timed(what: &str, f: impl FnOnce() -> Reply) -> (Reply, Duration) {
    let started = Instant::now();
    let reply = f();
    let took = started.elapsed();
    eprintln!("{what}: {} in {took:?}", reply.status);
    (reply, took)
}

fn create(admin: &Client, name: &str) -> String {
    let r = admin.post("/v1/keys", &json!({"name": name, "scopes": ["read"]}));
    assert_eq!(r.status, 201, "{}", r.text);
    r.json()["secret"].as_str().unwrap().to_owned()
}

fn code(r: &Reply) -> String {
    r.json()["code"].as_str().unwrap_or_default().to_owned()
}

// A cached key verifies during the outage from the rate-limit lease it took before, which
// lasts until the minute ends (a new minute needs a new lease, which the paused store cannot
// grant: docs/usage-and-limits.md); so the test starts with 40 s of its minute left.
#[test]
fn a_hung_dynamodb_is_answered_within_the_bound_and_never_valid_for_a_changed_key() {
    with_seconds_left_in_minute(40);
    let dynamo = PrivateDynamo::start();
    let backend = Backend::dynamodb_at(&dynamo.endpoint);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.log");
    let mut args = backend.serve_args();
    args.extend([
        "--revocation-bound-ms",
        "1000",
        "--stale-if-error-ms",
        "60000",
    ]);
    let server = Server::start(&dir.path().join("data"), &log, &args);
    let anon = server.client();
    let admin = anon.with_key(&server.root_key().unwrap());

    let cached = create(&admin, "cached");
    let changed = create(&admin, "changed");
    let unseen = create(&admin, "unseen");
    assert_eq!(code(&anon.verify(&cached, json!({}))), "VALID");
    assert_eq!(code(&anon.verify(&changed, json!({}))), "VALID");
    let changed_id = admin.get("/v1/keys?q=changed").json()["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = admin.post(&format!("/v1/keys/{changed_id}/revoke"), &json!({}));
    assert_eq!(r.status, 200, "{}", r.text);

    dynamo.pause();
    // Past the revocation bound, so every verification must try the store.
    std::thread::sleep(Duration::from_millis(1_200));

    let (r, took) = timed("verify, cached key, store paused", || {
        anon.verify(&cached, json!({}))
    });
    assert!(took < BOUND, "a cached key answered in {took:?}");
    assert_eq!(
        (r.status, code(&r)),
        (200, "VALID".into()),
        "within the stale-if-error window an unchanged cached key verifies"
    );
    // The cached key holds a block of its rate limit (a twentieth of 60: 3 uses, one spent
    // before the pause, one just now): what is left admits, then no lease can be had and the
    // key is refused, never admitted on credit.
    let mut answers = Vec::new();
    for _ in 0..4 {
        let (r, took) = timed("verify, cached key, lease spent?", || {
            anon.verify(&cached, json!({}))
        });
        assert!(took < BOUND, "answered in {took:?}");
        answers.push((r.status, code(&r)));
    }
    assert_eq!(
        answers,
        [
            (200, "VALID".into()),
            (503, "UNAVAILABLE".into()),
            (503, "UNAVAILABLE".into()),
            (503, "UNAVAILABLE".into()),
        ],
        "the last leased use, then refusals"
    );
    let (r, took) = timed("verify, changed key, store paused", || {
        anon.verify(&changed, json!({}))
    });
    assert!(took < BOUND, "a changed key answered in {took:?}");
    assert_eq!(
        (r.status, code(&r)),
        (503, "UNAVAILABLE".into()),
        "{}",
        r.text
    );
    assert_eq!(r.retry_after.as_deref(), Some("5"));
    let (r, took) = timed("verify, unseen key, store paused", || {
        anon.verify(&unseen, json!({}))
    });
    assert!(took < BOUND, "an unseen key answered in {took:?}");
    assert_eq!((r.status, code(&r)), (503, "UNAVAILABLE".into()));

    let (r, took) = timed("GET /v1/keys, store paused", || admin.get("/v1/keys"));
    assert!(took < BOUND, "the management API answered in {took:?}");
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.content_type, "application/problem+json");
    assert_eq!(r.json()["type"], "urn:keyward:problem:unavailable");
    assert!(r.retry_after.is_some());

    let (r, took) = timed("GET /readyz, store paused", || anon.get("/readyz"));
    assert!(took < BOUND, "readiness answered in {took:?}");
    assert_eq!(r.status, 503, "readiness reflects the store");
    let (r, took) = timed("GET /healthz, store paused", || anon.get("/healthz"));
    assert_eq!(r.status, 200, "liveness stays up");
    assert!(took < Duration::from_secs(1));

    dynamo.resume();
    let started = Instant::now();
    while anon.get("/readyz").status != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never ready again"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(code(&anon.verify(&unseen, json!({}))), "VALID");
    assert_eq!(code(&anon.verify(&changed, json!({}))), "REVOKED");

    let stopped = server.stop();
    let faults = stopped
        .log
        .lines()
        .filter(|l| l.contains("unavailable") && l.contains("WARN"))
        .count();
    assert!(
        (1..=6).contains(&faults),
        "the outage is logged once per interval, not per request: {faults} lines"
    );
}

#[test]
fn a_locked_sqlite_database_answers_503_within_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(
        &data,
        &dir.path().join("serve.log"),
        &Backend::sqlite().serve_args(),
    );
    let admin = server.client().with_key(&server.root_key().unwrap());
    create(&admin, "before");

    // Another process holds the write lock, as a stuck backup or a second writer would.
    let locker = rusqlite::Connection::open(data.join("keyward.db")).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let (r, took) = timed("POST /v1/keys, database locked", || {
        admin.post("/v1/keys", &json!({"name": "during", "scopes": ["read"]}))
    });
    assert!(took < BOUND, "a write answered in {took:?}");
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(r.retry_after.is_some());
    locker.execute_batch("COMMIT").unwrap();
    drop(locker);

    let r = admin.post("/v1/keys", &json!({"name": "after", "scopes": ["read"]}));
    assert_eq!(r.status, 201, "the database serves again: {}", r.text);
}
