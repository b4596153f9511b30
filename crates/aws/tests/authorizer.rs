//! The authorizer on every real authorizer event of `aws_lambda_events` (REST TOKEN and
//! REQUEST, HTTP API payload 1.0 and 2.0 with its null-map, cookie-less and identity-less
//! variants), and over the whole decision table.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics

use std::sync::Arc;

use chrono::{Duration, Utc};
use keyward_aws::answer::Answer;
use keyward_aws::authorizer::Authorizer;
use keyward_aws::event::AuthorizerEvent;
use keyward_core::audit::AuditEntry;
use keyward_core::edit::UpdateKeyRequest;
use keyward_core::hash::Pepper;
use keyward_core::key::CreateKeyRequest;
use keyward_core::route::{RoutePolicy, RoutePolicySpec};
use keyward_service::aggregation::Aggregator;
use keyward_service::app::Actor;
use keyward_service::config::HttpApiResponse;
use keyward_service::issuance::CreateOutcome;
use keyward_service::verification::Verifier;
use keyward_service::{App, Settings};
use keyward_store::{KeyStore, SqliteStore, UsageStore};
use serde_json::{Value, json};

const FIXTURES: [&str; 7] = [
    "example-apigw-custom-auth-request.json",
    "example-apigw-custom-auth-request-type-request.json",
    "example-apigw-v2-custom-authorizer-v1-request.json",
    "example-apigw-v2-custom-authorizer-v2-request.json",
    "example-apigw-v2-custom-authorizer-v2-request-null-maps.json",
    "example-apigw-v2-custom-authorizer-v2-request-without-cookies.json",
    "example-apigw-v2-custom-authorizer-v2-request-without-identity-source.json",
];

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../../tests/fixtures/events/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn policy() -> RoutePolicy {
    let spec: RoutePolicySpec = serde_json::from_value(json!({"routes": [
        {"method": "GET", "path": "/", "action": "read"},
        {"method": "GET", "path": "/request", "action": "read", "resource": "requests"},
        {"method": "POST", "path": "/my/path", "action": "write", "resource": "my/path"},
        {"method": "GET", "path": "/ws/{ws}/agents/{id}", "action": "read", "resource": "agents/{id}", "workspace": {"path": "ws"}},
    ]}))
    .unwrap();
    RoutePolicy::compile(&spec).unwrap()
}

struct World {
    app: App,
    store: Arc<SqliteStore>,
}

impl World {
    fn new() -> Self {
        let store = Arc::new(SqliteStore::in_memory().unwrap());
        let app = App::new(
            store.clone(),
            Pepper::generate().unwrap(),
            Settings::default(),
        );
        Self { app, store }
    }

    fn authorizer(&self, format: HttpApiResponse) -> Authorizer {
        Authorizer::new(
            Verifier::new(self.app.engine().clone(), Some(policy())),
            format,
        )
    }

    /// The same with cache-safe answers on.
    fn cache_safe(&self) -> Authorizer {
        self.authorizer(HttpApiResponse::Simple)
            .with_cache_safe_answers(true)
    }

    async fn key(&self, body: Value) -> (String, String) {
        let req: CreateKeyRequest = serde_json::from_value(body).unwrap();
        match self
            .app
            .create_key(&Actor::system("default"), req, None)
            .await
            .unwrap()
        {
            CreateOutcome::Created(c) => (c.key.id, c.secret.expose().to_owned()),
            CreateOutcome::Replayed(_) => unreachable!(),
        }
    }
}

/// The fixture with `token` where its kind carries one (every other field as shipped).
fn with_token(mut event: Value, token: &str, bearer: bool) -> Value {
    if event["type"] == "TOKEN" {
        event["authorizationToken"] = json!(if bearer {
            format!("Bearer {token}")
        } else {
            token.to_owned()
        });
    } else if bearer {
        event["headers"]["Authorization"] = json!(format!("Bearer {token}"));
    } else {
        event["headers"]["X-API-Key"] = json!(token);
    }
    event
}

async fn answer(a: &Authorizer, event: Value) -> (Answer, keyward_core::decision::Code) {
    let e = a
        .authorize(&AuthorizerEvent::parse(&event).unwrap())
        .await
        .unwrap();
    (e.answer, e.code)
}

fn allowed(answer: &Answer) -> bool {
    match answer {
        Answer::Unauthorized => false,
        Answer::Respond(r) => {
            let v = r.to_value();
            v.get("isAuthorized")
                .and_then(Value::as_bool)
                .unwrap_or_else(|| v["policyDocument"]["Statement"][0]["Effect"] == "Allow")
        }
    }
}

#[tokio::test]
async fn every_fixture_as_shipped_is_refused_as_unknown() {
    let w = World::new();
    let a = w.authorizer(HttpApiResponse::Simple);
    for name in FIXTURES {
        let (answer, code) = answer(&a, fixture(name)).await;
        assert_eq!(code.as_str(), "NOT_FOUND", "{name}");
        match fixture(name)["version"].as_str() {
            Some("2.0") => {
                let Answer::Respond(r) = answer else {
                    panic!("{name}: an HTTP API answers a response")
                };
                assert_eq!(
                    r.to_value(),
                    json!({"isAuthorized": false, "context": {"code": "NOT_FOUND"}}),
                    "{name}"
                );
            }
            Some("1.0") => {
                // An HTTP API answers a Lambda error with 500: payload 1.0 gets a Deny (403).
                let Answer::Respond(r) = answer else {
                    panic!("{name}: an HTTP API answers a response, never Unauthorized")
                };
                let v = r.to_value();
                assert_eq!(
                    v["policyDocument"]["Statement"][0]["Effect"], "Deny",
                    "{name}"
                );
                assert_eq!(v["context"], json!({"code": "NOT_FOUND"}), "{name}");
            }
            _ => assert_eq!(answer, Answer::Unauthorized, "{name}: REST answers 401"),
        }
    }
}

/// A key past its limit is denied on every event kind with `RATE_LIMITED` and when to retry in
/// the context (what an `ACCESS_DENIED` gateway response template reads), never 401 and never
/// an allow. Each fixture gets a fresh key limited to 1 a minute, so its second request is the
/// one refused.
#[tokio::test]
async fn a_rate_limited_key_is_denied_with_the_code_on_every_fixture() {
    let w = World::new();
    for format in [HttpApiResponse::Simple, HttpApiResponse::Iam] {
        let a = w.authorizer(format);
        for (i, name) in FIXTURES.iter().enumerate() {
            let (_, key) = w
                .key(json!({"name": format!("limited-{format:?}-{i}"), "scopes": ["read", "write"], "rate_limit_per_minute": 1}))
                .await;
            let mut event = with_token(fixture(name), &key, false);
            if event["version"] == "2.0" {
                event["rawPath"] = json!("/request");
                event["requestContext"]["http"]["method"] = json!("GET");
            }
            let (first, first_code) = answer(&a, event.clone()).await;
            let (second, second_code) = answer(&a, event).await;
            // A minute may turn between the two: then the second is a fresh minute's first.
            if first_code == keyward_core::decision::Code::Valid
                && second_code == keyward_core::decision::Code::Valid
            {
                continue;
            }
            assert!(
                allowed(&first),
                "{name}: the first of the minute is allowed"
            );
            assert_eq!(second_code.as_str(), "RATE_LIMITED", "{name}");
            assert!(!allowed(&second), "{name}: never an allow");
            let Answer::Respond(r) = second else {
                panic!("{name}: a rate limit is a Deny, never Unauthorized (401)")
            };
            let v = r.to_value();
            let context = &v["context"];
            assert_eq!(context["code"], "RATE_LIMITED", "{name}: {v}");
            let wait: u32 = context["retry_after"].as_str().unwrap().parse().unwrap();
            assert!((1..=60).contains(&wait), "{name}: {wait}");
            assert!(
                context.get("key_id").is_none(),
                "{name}: no key details on a denial"
            );
            match (v.get("isAuthorized"), format) {
                (Some(ok), HttpApiResponse::Simple) => assert_eq!(ok, false, "{name}"),
                _ => assert_eq!(
                    v["policyDocument"]["Statement"][0]["Effect"], "Deny",
                    "{name}"
                ),
            }
        }
    }
}

#[tokio::test]
async fn every_fixture_with_a_valid_key_is_allowed_with_its_context() {
    let w = World::new();
    let (id, key) = w
        .key(json!({"name": "caller", "scopes": ["read", "write"], "workspaces": ["ws_1"]}))
        .await;
    for format in [HttpApiResponse::Simple, HttpApiResponse::Iam] {
        let a = w.authorizer(format);
        for (i, name) in FIXTURES.iter().enumerate() {
            let event = with_token(fixture(name), &key, i % 2 == 1);
            let explained = a
                .explain(&AuthorizerEvent::parse(&event).unwrap())
                .await
                .unwrap();
            assert!(allowed(&explained.answer), "{name}: {:?}", explained.steps);
            let Answer::Respond(r) = &explained.answer else {
                unreachable!()
            };
            let v = &r.to_value();
            assert_eq!(v["context"]["key_id"], id.as_str(), "{name}");
            assert_eq!(v["context"]["workspaces"], "ws_1");
            assert_eq!(v["context"]["scopes"], "read,write");
            if let Some(stmt) = v["policyDocument"]["Statement"].get(0) {
                let arn = event["methodArn"]
                    .as_str()
                    .or(event["routeArn"].as_str())
                    .unwrap();
                assert_eq!(
                    stmt["Resource"],
                    json!([arn]),
                    "the policy names only this request's ARN"
                );
                assert_eq!(v["principalId"], id.as_str());
            }
        }
    }
}

#[tokio::test]
async fn the_decision_table_on_an_http_api_event() {
    let w = World::new();
    let a = w.authorizer(HttpApiResponse::Iam);
    let event = |token: &str, method: &str, path: &str, ip: &str| {
        let mut e = with_token(
            fixture("example-apigw-v2-custom-authorizer-v2-request.json"),
            token,
            false,
        );
        e["requestContext"]["http"]["method"] = json!(method);
        e["rawPath"] = json!(path);
        e["requestContext"]["http"]["sourceIp"] = json!(ip);
        e
    };
    let (_, good) = w.key(json!({"name": "good", "scopes": ["agent:viewer"], "workspaces": ["ws_1"], "allowed_cidrs": ["10.0.0.0/8"]})).await;
    let ok = |token: &str| event(token, "GET", "/ws/ws_1/agents/ag_1", "10.1.2.3");
    let cases = vec![
        (ok(&good), "VALID"),
        (
            event(&good, "GET", "/ws/ws_1/agents/ag_1", "192.0.2.9"),
            "IP_DENIED",
        ),
        (
            event(&good, "GET", "/ws/ws_2/agents/ag_1", "10.1.2.3"),
            "WORKSPACE_DENIED",
        ),
        (
            event(&good, "POST", "/my/path", "10.1.2.3"),
            "PERMISSION_DENIED",
        ),
        (
            event(&good, "DELETE", "/not/in/the/policy", "10.1.2.3"),
            "PERMISSION_DENIED",
        ),
        (ok("kw_live_tooshort"), "NOT_FOUND"),
        (
            ok(
                keyward_core::token::Token::generate(&keyward_core::token::Prefix::live())
                    .unwrap()
                    .expose(),
            ),
            "NOT_FOUND",
        ),
    ];
    for (e, expected) in cases {
        let (answer, code) = answer(&a, e).await;
        assert_eq!(code.as_str(), expected);
        assert_eq!(allowed(&answer), expected == "VALID", "{expected}");
    }

    let (inactive_id, inactive) = w
        .key(json!({"name": "paused", "scopes": ["read"], "workspaces": ["ws_1"]}))
        .await;
    let off: UpdateKeyRequest = serde_json::from_value(json!({"active": false})).unwrap();
    w.app
        .update_key(&Actor::system("default"), &inactive_id, None, off)
        .await
        .unwrap();
    assert_eq!(answer(&a, ok(&inactive)).await.1.as_str(), "INACTIVE");

    let (revoked_id, revoked) = w
        .key(json!({"name": "gone", "scopes": ["read"], "workspaces": ["ws_1"]}))
        .await;
    assert_eq!(answer(&a, ok(&revoked)).await.1.as_str(), "VALID");
    w.app
        .revoke_key(&Actor::system("default"), &revoked_id, None)
        .await
        .unwrap();
    assert_eq!(
        answer(&a, ok(&revoked)).await.1.as_str(),
        "REVOKED",
        "a revoke in this process is seen at once"
    );

    let (expired_id, expired) = w
        .key(json!({"name": "old", "scopes": ["read"], "workspaces": ["ws_1"]}))
        .await;
    let mut k = w
        .store
        .get_key("default", &expired_id)
        .await
        .unwrap()
        .unwrap();
    let v = k.version;
    k.expires_at = Some(Utc::now() - Duration::seconds(1));
    k.version += 1;
    let audit = AuditEntry::new(
        "default",
        "t",
        "key.updated",
        Some(&expired_id),
        None,
        json!({}),
        Utc::now(),
    )
    .unwrap();
    w.store.update_key(&k, v, None, &audit).await.unwrap();
    w.app.engine().sync().await.unwrap();
    assert_eq!(answer(&a, ok(&expired)).await.1.as_str(), "EXPIRED");

    // REST: 401 outcomes are the Unauthorized error, 403 outcomes a Deny policy.
    let rest = |token: &str| {
        with_token(
            fixture("example-apigw-custom-auth-request-type-request.json"),
            token,
            false,
        )
    };
    assert_eq!(answer(&a, rest(&revoked)).await.0, Answer::Unauthorized);
    let (deny, code) = answer(&a, rest(&inactive)).await;
    assert_eq!(code.as_str(), "INACTIVE");
    let Answer::Respond(r) = deny else {
        panic!("a 403 outcome is a policy")
    };
    let v = r.to_value();
    assert_eq!(v["policyDocument"]["Statement"][0]["Effect"], "Deny");
    assert_eq!(v["context"], json!({"code": "INACTIVE"}));
}

#[tokio::test]
async fn explanations_walk_through_every_step() {
    let w = World::new();
    let (id, key) = w
        .key(json!({"name": "explained", "scopes": ["read"]}))
        .await;
    let a = w.authorizer(HttpApiResponse::Simple);
    let event = with_token(
        fixture("example-apigw-custom-auth-request-type-request.json"),
        &key,
        false,
    );
    let e = a
        .explain(&AuthorizerEvent::parse(&event).unwrap())
        .await
        .unwrap();
    let text = e.steps.join("\n");
    for needle in [
        "event: REST REQUEST",
        "request: GET /request",
        "token: X-API-Key header",
        "route: GET /request needs read on 'requests'",
        &format!("key: {id} (explained)"),
        "decision: VALID",
        "answer: Allow policy",
    ] {
        assert!(text.contains(needle), "missing '{needle}' in:\n{text}");
    }
    assert!(
        !text.contains(&key[8..40]),
        "an explanation never shows the secret"
    );
}

/// The route policy is part of the one decision: a request it refuses is counted as denied,
/// never as a valid use of the key, whatever the key itself may do.
#[tokio::test]
async fn a_request_the_route_policy_refuses_is_not_a_valid_use() {
    let w = World::new();
    let (id, key) = w.key(json!({"name": "routed", "scopes": ["read"]})).await;
    let a = w.authorizer(HttpApiResponse::Simple);
    let mut outside = with_token(
        fixture("example-apigw-v2-custom-authorizer-v2-request.json"),
        &key,
        false,
    );
    outside["rawPath"] = json!("/not/in/the/policy");
    for _ in 0..3 {
        let (answer, code) = answer(&a, outside.clone()).await;
        assert_eq!(code, keyward_core::decision::Code::PermissionDenied);
        assert!(!allowed(&answer));
    }
    let outcomes = async || {
        w.app.engine().flush_usage().await.unwrap();
        Aggregator::new(w.store.clone())
            .apply_pending()
            .await
            .unwrap();
        let today = chrono::Utc::now().date_naive();
        let days = w
            .store
            .usage_days("default", Some(&id), today, today)
            .await
            .unwrap();
        days.first().map(|d| (d.valid, d.rate_limited, d.denied))
    };
    assert_eq!(
        outcomes().await,
        Some((0, 0, 3)),
        "refused requests are denials, not uses"
    );

    let mut inside = outside.clone();
    inside["rawPath"] = json!("/request");
    inside["requestContext"]["http"]["method"] = json!("GET");
    let (answer, code) = answer(&a, inside).await;
    assert_eq!(code, keyward_core::decision::Code::Valid);
    assert!(allowed(&answer));
    assert_eq!(
        outcomes().await,
        Some((1, 0, 3)),
        "only the allowed request is a valid use"
    );
    let stored = w.store.get_key("default", &id).await.unwrap().unwrap();
    assert_eq!(
        stored.request_count, 4,
        "every verification of the key is a request"
    );
}

/// With the store unreachable and nothing cached, the authorizer answers an error (API Gateway
/// answers 500), never an allow and never a hang.
#[tokio::test]
async fn an_unreachable_store_fails_closed() {
    let location =
        keyward_store::DynamoLocation::parse("dynamodb://gone?endpoint=http://127.0.0.1:9")
            .unwrap();
    let store = Arc::new(keyward_store::conformance::local_store(&location));
    let app = App::new(store, Pepper::generate().unwrap(), Settings::default());
    let a = Authorizer::new(
        Verifier::new(app.engine().clone(), Some(policy())),
        HttpApiResponse::Simple,
    );
    let token = keyward_core::token::Token::generate(&keyward_core::token::Prefix::live()).unwrap();
    let event = with_token(
        fixture("example-apigw-v2-custom-authorizer-v2-request.json"),
        token.expose(),
        false,
    );
    let started = std::time::Instant::now();
    let err = a
        .handle(&serde_json::to_vec(&event).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.error_type, "AuthorizerError");
    assert!(started.elapsed() < std::time::Duration::from_secs(6));
}

#[test]
fn broken_events_are_errors() {
    for bad in [
        json!({}),
        json!({"type": "WEBSOCKET"}),
        json!({"type": "TOKEN", "methodArn": 5}),
        json!([1, 2]),
        json!({"type": "REQUEST", "version": "2.0", "headers": "nope"}),
    ] {
        assert!(AuthorizerEvent::parse(&bad).is_err(), "{bad}");
    }
}

/// The stage prefix (`arn:…:<api>/<stage>/`) of an event's method ARN.
fn stage_prefix_of(event: &Value) -> String {
    keyward_aws::answer::stage_prefix(event["methodArn"].as_str().unwrap())
        .unwrap()
        .to_owned()
}

/// Whether a policy document admits `arn` as API Gateway evaluates it: some Allow resource
/// matches and no Deny does (`*` matches any text).
fn admits(answer: &Answer, arn: &str) -> bool {
    let Answer::Respond(r) = answer else {
        return false;
    };
    let v = r.to_value();
    let statements = v["policyDocument"]["Statement"].as_array().unwrap().clone();
    let matching = |effect: &str| {
        statements.iter().any(|s| {
            s["Effect"] == effect
                && s["Resource"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| keyward_core::cache_safe::glob_match(r.as_str().unwrap(), arn))
        })
    };
    matching("Allow") && !matching("Deny")
}

/// Cache-safe answers on the real REST fixtures (and the HTTP API payload 1.0 one, answered
/// with a policy too): the policy API Gateway caches for a key,
/// tried on every request of every route (with names the key's scopes spell and others),
/// admits exactly the requests the authorizer allows when asked each one afresh; a
/// request the key may not make is never admitted.
#[tokio::test]
async fn a_cached_rest_policy_never_allows_a_route_the_key_may_not_call() {
    let w = World::new();
    let plain = w.authorizer(HttpApiResponse::Simple);
    let cached = w.cache_safe();
    let keys = [
        json!({"name": "reader", "scopes": ["read"], "workspaces": ["ws_1"]}),
        json!({"name": "one-agent", "scopes": ["agent/ag_1:viewer"], "workspaces": ["ws_1", "ws_2"]}),
        json!({"name": "writer", "scopes": [{"action": "write", "resource": "my/path"}]}),
        json!({"name": "nothing", "scopes": [{"action": "read", "resource": "other/**"}]}),
    ];
    let requests: Vec<(&str, String)> = [
        ("GET", "/"),
        ("GET", "/request"),
        ("POST", "/my/path"),
        ("GET", "/my/path"),
    ]
    .into_iter()
    .map(|(m, p)| (m, p.to_owned()))
    .chain(["ws_1", "ws_2", "ws_3"].into_iter().flat_map(|ws| {
        ["ag_1", "ag_2", "ws_1"]
            .into_iter()
            .map(move |id| ("GET", format!("/ws/{ws}/agents/{id}")))
    }))
    .collect();
    for (i, body) in keys.into_iter().enumerate() {
        let (_, token) = w.key(body.clone()).await;
        for name in FIXTURES.iter().take(3) {
            let mut event = with_token(fixture(name), &token, false);
            // The REST fixtures are console tests, on stage `*`; a deployed stage has a name.
            let arn = event["methodArn"]
                .as_str()
                .unwrap()
                .replace("/*/", "/prod/");
            event["methodArn"] = json!(arn);
            let prefix = stage_prefix_of(&event);
            let (policy, _) = answer(&cached, event.clone()).await;
            let Answer::Respond(r) = &policy else {
                panic!("{name}: a usable key gets a policy")
            };
            assert_eq!(
                r.to_value()["principalId"],
                json!(w_key_id(&w, &token).await)
            );
            let mut allowed_somewhere = false;
            for (method, path) in &requests {
                let target = format!("{prefix}{method}{path}");
                let mut fresh = event.clone();
                fresh["methodArn"] = json!(target);
                if fresh["type"] == "REQUEST" {
                    fresh["httpMethod"] = json!(method);
                    fresh["path"] = json!(path);
                }
                let (direct, _) = answer(&plain, fresh).await;
                let want = allowed(&direct);
                allowed_somewhere |= want;
                assert_eq!(
                    admits(&policy, &target),
                    want,
                    "key {i} ({body}), {name}: {method} {path} under {}",
                    r.to_value()["policyDocument"]
                );
            }
            assert_eq!(
                allowed_somewhere,
                i != 3,
                "key {i}: the cases are not vacuous"
            );
        }
    }
    // A console test's stage `*` would make any cached allow a wildcard: refused.
    let (_, token) = w.key(json!({"name": "console", "scopes": ["read"]})).await;
    let (shipped, code) = answer(&cached, with_token(fixture(FIXTURES[0]), &token, false)).await;
    assert!(!allowed(&shipped), "{code:?}");
}

/// A REST policy for every route is worked out once per key version and stage, and kept: a
/// change of the key's rights is answered at once with its new policy, and another stage
/// gets a policy under its own ARN.
#[tokio::test]
async fn a_kept_rest_policy_follows_the_keys_changes_and_its_stage() {
    let w = World::new();
    let cached = w.cache_safe();
    let (id, token) = w.key(json!({"name": "changing", "scopes": ["read"]})).await;
    let event = |stage: &str| {
        let mut event = with_token(fixture(FIXTURES[1]), &token, false);
        let arn = event["methodArn"]
            .as_str()
            .unwrap()
            .replace("/test/", &format!("/{stage}/"));
        event["methodArn"] = json!(arn);
        event
    };
    let (prod, staging) = (event("prod"), event("staging"));
    let (read, write) = (
        format!("{}GET/request", stage_prefix_of(&prod)),
        format!("{}POST/my/path", stage_prefix_of(&prod)),
    );
    let (first, _) = answer(&cached, prod.clone()).await;
    assert!(admits(&first, &read) && !admits(&first, &write));
    assert_eq!(answer(&cached, prod.clone()).await.0, first, "kept");

    let edit: UpdateKeyRequest =
        serde_json::from_value(json!({"scopes": [{"action": "write", "resource": "my/path"}]}))
            .unwrap();
    w.app
        .update_key(&Actor::system("default"), &id, None, edit)
        .await
        .unwrap();
    let (changed, code) = answer(&cached, prod).await;
    assert!(
        admits(&changed, &write) && !admits(&changed, &read),
        "{code:?}: the policy follows the new rights"
    );

    let (other_stage, _) = answer(&cached, staging.clone()).await;
    let staged = format!("{}POST/my/path", stage_prefix_of(&staging));
    assert!(admits(&other_stage, &staged) && !admits(&other_stage, &write));
}

/// A payload 1.0 route ARN may name the route key rather than the request (`$default` names
/// no method or path): a policy of routes cannot be matched against it, and an allow of it
/// cached would serve every request of the route, so cache-safe answers refuse it.
#[tokio::test]
async fn a_payload_1_route_arn_that_names_no_request_is_refused_under_cache_safe_answers() {
    let w = World::new();
    let plain = w.authorizer(HttpApiResponse::Simple);
    let cached = w.cache_safe();
    let (_, token) = w.key(json!({"name": "v1", "scopes": ["read"]})).await;
    let named = with_token(fixture(FIXTURES[2]), &token, false);
    assert!(
        allowed(&answer(&cached, named.clone()).await.0),
        "GET/request is named"
    );
    let mut catch_all = named;
    catch_all["methodArn"] = json!(format!("{}$default", stage_prefix_of(&catch_all)));
    let (refused, code) = answer(&cached, catch_all.clone()).await;
    assert!(!allowed(&refused), "{code:?}");
    assert_eq!(code, keyward_core::decision::Code::PermissionDenied);
    assert!(
        allowed(&answer(&plain, catch_all).await.0),
        "without the setting, as before"
    );
}

async fn w_key_id(w: &World, token: &str) -> String {
    let hash = w.app.engine().resolve(Some(token)).await.unwrap();
    hash.key.unwrap().id.clone()
}

/// An HTTP API caches an answer by its identity sources: with cache-safe answers on, a
/// request is allowed only when they hold its route and path.
#[tokio::test]
async fn cache_safe_http_api_answers_need_the_route_and_path_in_the_identity_sources() {
    let w = World::new();
    let a = w.cache_safe();
    let (_, token) = w.key(json!({"name": "poster", "scopes": ["write"]})).await;
    let mut event = with_token(
        fixture("example-apigw-v2-custom-authorizer-v2-request.json"),
        &token,
        false,
    );
    event["rawPath"] = json!("/my/path");
    event["requestContext"]["http"]["method"] = json!("POST");
    event["routeKey"] = json!("POST /my/path");
    let (shipped, code) = answer(&a, event.clone()).await;
    assert!(
        !allowed(&shipped),
        "the fixture's identity sources are the key's only"
    );
    assert_eq!(code.as_str(), "PERMISSION_DENIED");
    event["identitySource"] = json!([token, "POST /my/path", "/my/path"]);
    let (keyed, code) = answer(&a, event).await;
    assert!(allowed(&keyed), "{code:?}");
}
