//! The management API in-process: the Router over an in-memory store, driven request by
//! request. Covers authentication, limits, listing parameters and every verify outcome.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::{Duration, Utc};
use http_body_util::BodyExt;
use keyward_core::audit::AuditEntry;
use keyward_core::hash::Pepper;
use keyward_core::key::KeyStatus;
use keyward_http::ClientIp;
use keyward_service::{App, Settings};
use keyward_store::SqliteStore;
use keyward_store::prelude::*;
use serde_json::{Value, json};
use tower::ServiceExt;

struct Harness {
    app: App,
    store: Arc<SqliteStore>,
    root: String,
}

impl Harness {
    async fn new() -> Self {
        Self::with(Settings::default()).await
    }

    async fn with(settings: Settings) -> Self {
        let store = Arc::new(SqliteStore::in_memory().unwrap());
        let app = App::new(store.clone(), Pepper::generate().unwrap(), settings);
        let root = app.bootstrap().await.unwrap().unwrap().expose().to_owned();
        Self { app, store, root }
    }

    async fn send(&self, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
        let resp = keyward_http::router(self.app.clone())
            .oneshot(req)
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, headers, body)
    }

    fn req(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> Request<Body> {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(k) = key {
            b = b.header("x-api-key", k);
        }
        match body {
            Some(v) => b
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(v.to_string()))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        }
    }

    async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let (s, _, b) = self
            .send(self.req(method, path, Some(&self.root), body.as_ref()))
            .await;
        (s, b)
    }

    async fn create(&self, body: Value) -> (String, String) {
        let (s, b) = self.admin("POST", "/v1/keys", Some(body)).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        (
            b["key"]["id"].as_str().unwrap().into(),
            b["secret"].as_str().unwrap().into(),
        )
    }

    async fn verify(&self, body: Value) -> (StatusCode, Value) {
        let (s, _, b) = self
            .send(self.req("POST", "/v1/verify", None, Some(&body)))
            .await;
        (s, b)
    }

    /// Edits a key directly in the store, as another writer (or time) would.
    async fn edit(&self, id: &str, f: impl FnOnce(&mut keyward_core::key::ApiKey)) {
        let key = self.store.get_key("default", id).await.unwrap().unwrap();
        let mut next = key.clone();
        f(&mut next);
        next.version += 1;
        let audit = AuditEntry::new(
            "default",
            "test",
            "key.updated",
            Some(id),
            None,
            json!({}),
            Utc::now(),
        )
        .unwrap();
        self.store
            .update_key(&next, key.version, None, &audit)
            .await
            .unwrap();
        // As if by another process: this engine learns of it from the change feed.
        self.app.engine().sync().await.unwrap();
    }
}

#[tokio::test]
async fn management_calls_need_an_admin_key() {
    let h = Harness::new().await;
    let (s, headers, b) = h.send(h.req("GET", "/v1/keys", None, None)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    assert!(headers.contains_key(header::WWW_AUTHENTICATE));
    assert!(b["detail"].as_str().unwrap().contains("X-API-Key"));

    let (s, _, _) = h
        .send(h.req("GET", "/v1/keys", Some("kw_live_garbage"), None))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Bearer works as well as X-API-Key.
    let req = Request::builder()
        .uri("/v1/keys")
        .header("authorization", format!("Bearer {}", h.root))
        .body(Body::empty())
        .unwrap();
    assert_eq!(h.send(req).await.0, StatusCode::OK);

    // A valid key without admin on keys/** is forbidden, not unauthenticated.
    let (_, reader) = h
        .create(json!({"name": "reader", "scopes": ["read"]}))
        .await;
    let (s, _, b) = h.send(h.req("GET", "/v1/keys", Some(&reader), None)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");

    // An inactive admin is forbidden; a revoked one is unknown.
    let (admin_id, admin2) = h
        .create(json!({"name": "admin2", "scopes": ["admin"]}))
        .await;
    assert_eq!(
        h.send(h.req("GET", "/v1/keys", Some(&admin2), None))
            .await
            .0,
        StatusCode::OK
    );
    h.edit(&admin_id, |k| k.status = KeyStatus::Inactive).await;
    assert_eq!(
        h.send(h.req("GET", "/v1/keys", Some(&admin2), None))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    h.edit(&admin_id, |k| k.status = KeyStatus::Revoked).await;
    assert_eq!(
        h.send(h.req("GET", "/v1/keys", Some(&admin2), None))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn an_admin_key_restricted_by_address_is_refused_elsewhere() {
    let h = Harness::new().await;
    let (_, admin) = h
        .create(json!({"name": "office", "scopes": ["admin"], "allowed_cidrs": ["10.0.0.0/8"]}))
        .await;
    let from = |ip: &str| {
        let mut r = h.req("GET", "/v1/keys", Some(&admin), None);
        r.extensions_mut()
            .insert(ClientIp(Some(ip.parse().unwrap())));
        r
    };
    assert_eq!(h.send(from("10.2.3.4")).await.0, StatusCode::OK);
    assert_eq!(h.send(from("192.0.2.1")).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn bodies_are_limited_and_must_be_json() {
    let h = Harness::with(Settings {
        max_body_bytes: 1024,
        ..Settings::default()
    })
    .await;
    let big = json!({"name": "x", "scopes": ["read"], "description": "y".repeat(2000)});
    let (s, headers, b) = h
        .send(h.req("POST", "/v1/keys", Some(&h.root), Some(&big)))
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{b}");
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");

    let req = Request::builder()
        .method("POST")
        .uri("/v1/keys")
        .header("x-api-key", &h.root)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(h.send(req).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Authentication comes before the body is even read.
    let (s, _, _) = h.send(h.req("POST", "/v1/keys", None, Some(&big))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let h = Harness::new().await;
    let (s, headers, b) = h.send(h.req("GET", "/v2/nothing", None, None)).await;
    assert_eq!(
        (s, b["status"].as_u64()),
        (StatusCode::NOT_FOUND, Some(404))
    );
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    let (s, _, _) = h.send(h.req("PUT", "/v1/verify", None, None)).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    let (s, _) = h.admin("GET", "/v1/keys/key_doesnotexist", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = h
        .admin("POST", "/v1/keys/key_doesnotexist/revoke", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = h.admin("DELETE", "/v1/keys/key_doesnotexist", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn names_are_unique_and_a_clash_is_409_naming_the_field() {
    let h = Harness::new().await;
    h.create(json!({"name": "dup", "scopes": ["read"]})).await;
    let (s, b) = h
        .admin(
            "POST",
            "/v1/keys",
            Some(json!({"name": "dup", "scopes": ["read"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(b["errors"][0]["field"], "name");
    // Look-alike spellings are the same name.
    for look_alike in ["DUP", "\u{ff24}\u{ff35}\u{ff30}"] {
        let (s, b) = h
            .admin(
                "POST",
                "/v1/keys",
                Some(json!({"name": look_alike, "scopes": ["read"]})),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT, "{b}");
        assert!(
            b["detail"]
                .as_str()
                .unwrap()
                .contains("only in case, width"),
            "{b}"
        );
    }
    let (s, b) = h
        .admin(
            "POST",
            "/v1/keys",
            Some(json!({"name": "d\u{200D}up", "scopes": ["read"]})),
        )
        .await;
    assert_eq!(
        (s, &b["errors"][0]["field"]),
        (StatusCode::BAD_REQUEST, &json!("name"))
    );
}

/// `{"a": {"a": ... 1}}`, `levels` objects deep.
fn nested(levels: usize) -> Value {
    let mut v = json!(1);
    for _ in 0..levels {
        v = json!({ "a": v });
    }
    v
}

#[tokio::test]
async fn metadata_over_a_limit_is_a_400_naming_metadata_and_changes_nothing() {
    let h = Harness::new().await;
    let cases = [
        (nested(31), "at most 10 levels"),
        (json!({"n": 1e200}), "between 1e-130 and 1e126"),
        (json!({"": 1}), "keys are 1 to 128 characters"),
        (
            json!({"tags": (0..101).collect::<Vec<_>>()}),
            "at most 100 items in one array",
        ),
        (json!({"pad": "x".repeat(5000)}), "at most 4096 bytes"),
    ];
    for (metadata, says) in &cases {
        let (s, b) = h
            .admin(
                "POST",
                "/v1/keys",
                Some(json!({"name": "meta", "scopes": ["read"], "metadata": metadata})),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        assert_eq!(b["errors"][0]["field"], "metadata", "{b}");
        let message = b["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
    }
    let (s, b) = h.admin("GET", "/v1/keys?q=meta", None).await;
    assert_eq!(
        (s, b["items"].as_array().unwrap().len()),
        (StatusCode::OK, 0)
    );

    // At the limits: accepted, and an edit over one is refused and leaves the record alone.
    let (id, _) = h
        .create(json!({"name": "meta", "scopes": ["read"], "metadata": nested(10)}))
        .await;
    for (metadata, _) in &cases {
        let (s, b) = h
            .admin(
                "PATCH",
                &format!("/v1/keys/{id}"),
                Some(json!({"metadata": metadata})),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        assert_eq!(b["errors"][0]["field"], "metadata");
    }
    let (_, b) = h.admin("GET", &format!("/v1/keys/{id}"), None).await;
    assert_eq!((&b["metadata"], &b["version"]), (&nested(10), &json!(1)));
}

#[tokio::test]
async fn listing_filters_pages_and_refuses_bad_parameters() {
    let h = Harness::new().await;
    for i in 0..5 {
        h.create(json!({"name": format!("svc-{i}"), "scopes": ["read"], "workspaces": [if i % 2 == 0 { "even" } else { "odd" }]})).await;
    }
    let (id, _) = h.create(json!({"name": "old", "scopes": ["read"]})).await;
    h.edit(&id, |k| k.status = KeyStatus::Inactive).await;

    let names = |b: &Value| -> Vec<String> {
        b["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, b) = h.admin("GET", "/v1/keys", None).await;
    assert_eq!(
        names(&b),
        ["root", "svc-0", "svc-1", "svc-2", "svc-3", "svc-4"],
        "default: active"
    );
    let (_, b) = h.admin("GET", "/v1/keys?status=inactive", None).await;
    assert_eq!(names(&b), ["old"]);
    let (_, b) = h.admin("GET", "/v1/keys?workspace=odd", None).await;
    assert_eq!(names(&b), ["svc-1", "svc-3"]);
    let (_, b) = h.admin("GET", "/v1/keys?q=SVC&limit=2", None).await;
    assert_eq!(names(&b), ["svc-0", "svc-1"]);
    let cursor = b["next_cursor"].as_str().unwrap().to_owned();
    let (_, b) = h
        .admin(
            "GET",
            &format!("/v1/keys?q=SVC&limit=2&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(names(&b), ["svc-2", "svc-3"]);
    let (_, b) = h.admin("GET", "/v1/keys?status=all", None).await;
    assert_eq!(names(&b).len(), 7);
    assert!(b["next_cursor"].is_null());

    for (query, field) in [
        ("status=gone", "status"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=x", "limit"),
        ("cursor=nonsense", "cursor"),
        ("colour=blue", "colour"),
        ("workspace=", "workspace"),
        ("group=a%20b", "group"),
    ] {
        let (s, b) = h.admin("GET", &format!("/v1/keys?{query}"), None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{query}: {b}");
        assert_eq!(b["errors"][0]["field"], field, "{query}");
    }
}

#[tokio::test]
async fn verify_answers_every_outcome_of_the_table() {
    let h = Harness::new().await;
    let (s, group) = h
        .admin("POST", "/v1/groups", Some(json!({"name": "platform"})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{group}");
    let group_id = group["id"].as_str().unwrap().to_owned();
    let (id, key) = h
        .create(json!({
            "name": "caller",
            "scopes": ["agent:viewer", {"action": "execute", "resource": "agents/ag_1"}],
            "workspaces": ["ws_1"],
            "allowed_cidrs": ["10.0.0.0/8", "2001:db8::/32"],
            "groups": [group_id],
        }))
        .await;
    let ok = json!({"key": key, "action": "read", "resource": "agents/ag_9", "workspace": "ws_1", "source_ip": "10.1.2.3"});
    let (s, b) = h.verify(ok.clone()).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::OK, Some("VALID")),
        "{b}"
    );
    assert_eq!(b["groups"], json!([group_id]));
    assert_eq!(b["workspaces"], json!(["ws_1"]));

    let with = |patch: Value| {
        let mut v = ok.clone();
        v.as_object_mut()
            .unwrap()
            .extend(patch.as_object().unwrap().clone());
        v
    };
    let cases = [
        (with(json!({"source_ip": "192.0.2.1"})), 403, "IP_DENIED"),
        (with(json!({"source_ip": "2001:db8::7"})), 200, "VALID"),
        (with(json!({"workspace": "ws_2"})), 403, "WORKSPACE_DENIED"),
        (with(json!({"action": "write"})), 403, "PERMISSION_DENIED"),
        (
            with(json!({"action": "execute", "resource": "agents/ag_1"})),
            200,
            "VALID",
        ),
        (
            with(json!({"action": "execute", "resource": "agents/ag_2"})),
            403,
            "PERMISSION_DENIED",
        ),
        (with(json!({"key": "kw_live_short"})), 401, "NOT_FOUND"),
        (with(json!({"key": "x".repeat(5000)})), 401, "NOT_FOUND"),
    ];
    for (body, status, code) in cases {
        let (s, b) = h.verify(body.clone()).await;
        assert_eq!(
            (s.as_u16(), b["code"].as_str()),
            (status, Some(code)),
            "{body}"
        );
        if status != 200 {
            assert!(
                b.get("scopes").is_none(),
                "a denial does not show the key's grants"
            );
        }
    }

    h.edit(&id, |k| k.status = KeyStatus::Inactive).await;
    let (s, b) = h.verify(ok.clone()).await;
    assert_eq!((s.as_u16(), b["code"].as_str()), (403, Some("INACTIVE")));
    h.edit(&id, |k| {
        k.status = KeyStatus::Active;
        k.expires_at = Some(Utc::now() - Duration::seconds(1));
    })
    .await;
    let (s, b) = h.verify(ok.clone()).await;
    assert_eq!((s.as_u16(), b["code"].as_str()), (401, Some("EXPIRED")));
    let (_, b) = h.admin("GET", &format!("/v1/keys/{id}"), None).await;
    assert_eq!(
        b["status"], "expired",
        "an expired key shows status expired"
    );

    // A token of another deployment's prefix is unknown here.
    let other = keyward_core::token::Token::generate(&keyward_core::token::Prefix::test()).unwrap();
    let (s, _) = h.verify(json!({"key": other.expose()})).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

/// An unauthenticated caller learns a denial's code and nothing about the key; a verifier (a
/// key with read or admin on keys/**, in the headers) sees whose key it was.
#[tokio::test]
async fn denials_show_the_key_only_to_a_verifier() {
    let h = Harness::new().await;
    let (id, key) = h.create(json!({"name": "held", "scopes": ["read"]})).await;
    h.edit(&id, |k| k.status = KeyStatus::Inactive).await;
    let body = json!({"key": key});
    let (s, b) = h.verify(body.clone()).await;
    assert_eq!((s.as_u16(), b["code"].as_str()), (403, Some("INACTIVE")));
    assert_eq!(
        (b.get("key_id"), b.get("account")),
        (Some(&Value::Null), Some(&Value::Null)),
        "an anonymous denial names no key: {b}"
    );
    let (_, reader) = h
        .create(json!({"name": "reader", "scopes": [{"action": "read", "resource": "keys/**"}]}))
        .await;
    for verifier in [&h.root, &reader] {
        let (s, _, b) = h
            .send(h.req("POST", "/v1/verify", Some(verifier), Some(&body)))
            .await;
        assert_eq!(
            (s.as_u16(), b["key_id"].as_str()),
            (403, Some(id.as_str())),
            "{b}"
        );
        assert_eq!(b["account"], "default");
        assert!(b.get("scopes").is_none(), "a denial never shows the grants");
    }
    let (_, other) = h
        .create(json!({"name": "other", "scopes": ["agent:viewer"]}))
        .await;
    let (s, _, b) = h
        .send(h.req("POST", "/v1/verify", Some(&other), Some(&body)))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "not a verifier: {b}");
    assert_eq!(b["type"], "urn:keyward:problem:forbidden");

    let closed = Harness::with(Settings {
        verify_access: keyward_service::settings::VerifyAccess::VerifierKey,
        ..Settings::default()
    })
    .await;
    let (_, key) = closed
        .create(json!({"name": "k", "scopes": ["read"]}))
        .await;
    let (s, b) = closed.verify(json!({"key": key})).await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "a verifier key is required: {b}"
    );
    let (s, _, b) = closed
        .send(closed.req(
            "POST",
            "/v1/verify",
            Some(&closed.root),
            Some(&json!({"key": key})),
        ))
        .await;
    assert_eq!((s, b["code"].as_str()), (StatusCode::OK, Some("VALID")));
}

#[tokio::test]
async fn verify_refuses_malformed_requests_by_field() {
    let h = Harness::new().await;
    for (body, field) in [
        (json!({"key": "k", "action": "fly"}), "action"),
        (
            json!({"key": "k", "action": "read", "resource": "agents/*"}),
            "resource",
        ),
        (json!({"key": "k", "resource": "agents/a"}), "action"),
        (json!({"key": "k", "source_ip": "10.0.0.300"}), "source_ip"),
        (json!({"key": "k", "workspace": "a b"}), "workspace"),
        (json!({"key": 12}), "key"),
        (json!({"key": "k", "extra": 1}), "extra"),
    ] {
        let (s, b) = h.verify(body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {b}");
        assert_eq!(b["errors"][0]["field"], field, "{body}");
    }
}

#[tokio::test]
async fn every_change_is_audited_without_secrets() {
    let h = Harness::new().await;
    let (id, secret) = h
        .create(json!({"name": "audited", "scopes": ["read"]}))
        .await;
    h.admin("POST", &format!("/v1/keys/{id}/revoke"), None)
        .await;
    h.admin("DELETE", &format!("/v1/keys/{id}"), None).await;
    let page = h.store.list_audit("default", None, 50).await.unwrap();
    let actions: Vec<_> = page.items.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["key.deleted", "key.revoked", "key.created", "key.created"]
    );
    let dump = serde_json::to_string(&page.items).unwrap();
    assert!(
        !dump.contains(&secret[8..40]),
        "an audit entry holds a secret"
    );
    assert!(!dump.contains(&h.root[8..40]));
}

#[tokio::test]
async fn an_admin_key_cannot_lock_itself_out() {
    let h = Harness::new().await;
    let (_, body) = h.admin("GET", "/v1/keys?q=root", None).await;
    let root_id = body["items"][0]["id"].as_str().unwrap().to_owned();
    for (method, path, patch) in [
        ("POST", format!("/v1/keys/{root_id}/revoke"), None),
        ("POST", format!("/v1/keys/{root_id}/regenerate"), None),
        ("DELETE", format!("/v1/keys/{root_id}"), None),
        (
            "PATCH",
            format!("/v1/keys/{root_id}"),
            Some(json!({"active": false})),
        ),
        (
            "PATCH",
            format!("/v1/keys/{root_id}"),
            Some(json!({"scopes": ["read"]})),
        ),
        (
            "PATCH",
            format!("/v1/keys/{root_id}"),
            Some(json!({"allowed_cidrs": ["10.0.0.0/8"]})),
        ),
    ] {
        let (s, b) = h.admin(method, &path, patch).await;
        assert_eq!(s, StatusCode::CONFLICT, "{method} {path}: {b}");
        assert!(
            b["detail"]
                .as_str()
                .unwrap()
                .contains("use another admin key")
        );
    }
    let (s, _) = h
        .admin(
            "PATCH",
            &format!("/v1/keys/{root_id}"),
            Some(json!({"description": "mine"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "harmless edits to itself are fine");
    // Another admin key may do what the key may not do to itself.
    let (_, other) = h
        .create(json!({"name": "second-admin", "scopes": ["admin"]}))
        .await;
    let req = h.req(
        "POST",
        &format!("/v1/keys/{root_id}/regenerate"),
        Some(&other),
        None,
    );
    assert_eq!(h.send(req).await.0, StatusCode::OK);
}

/// A PATCH of `body` with `If-Match: etag`, as the root key.
fn patch_if_match(h: &Harness, id: &str, etag: &str, body: &Value) -> Request<Body> {
    let mut req = h.req(
        "PATCH",
        &format!("/v1/keys/{id}"),
        Some(&h.root),
        Some(body),
    );
    req.headers_mut()
        .insert(header::IF_MATCH, etag.parse().unwrap());
    req
}

/// Requests the OpenAPI document calls valid are accepted (schemathesis's
/// `positive_data_acceptance` found these refused).
#[tokio::test]
async fn requests_the_document_calls_valid_are_accepted() {
    let h = Harness::new().await;
    // JSON Schema's `integer`, which the document promises, counts 60.0 as an integer.
    let (s, b) = h
        .admin(
            "POST",
            "/v1/keys",
            Some(json!({"name": "whole", "scopes": ["read"], "rate_limit_per_minute": 60.0})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let id = b["key"]["id"].as_str().unwrap().to_owned();
    let (s, b) = h
        .admin(
            "PATCH",
            &format!("/v1/keys/{id}"),
            Some(json!({"rate_limit_per_minute": 120.0})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["rate_limit_per_minute"], 120);
    let (s, b) = h
        .admin(
            "PATCH",
            &format!("/v1/keys/{id}"),
            Some(json!({"rate_limit_per_minute": 1.5})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(b["errors"][0]["field"], "rate_limit_per_minute");

    // An ETag of the documented shape that no version has is stale (412), not malformed (400).
    let edit = json!({"description": "x"});
    let (s, _, b) = h
        .send(patch_if_match(
            &h,
            &id,
            "\"99999999999999999999999\"",
            &edit,
        ))
        .await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED, "{b}");
    let (s, _, b) = h.send(patch_if_match(&h, &id, "W/\"2\"", &edit)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

/// A precondition is weighed last (RFC 9110, 13.2.2): an edit refused without `If-Match` is
/// refused the same with a stale one, not answered 412 (schemathesis's
/// `negative_data_rejection` found an invalid body answered 412).
#[tokio::test]
async fn a_stale_if_match_does_not_hide_what_is_wrong_with_the_edit() {
    let h = Harness::new().await;
    let (id, _) = h
        .create(json!({"name": "guarded", "scopes": ["read"]}))
        .await;
    let too_long = json!({"description": "x".repeat(2000)});
    let (s, _, b) = h.send(patch_if_match(&h, &id, "\"7\"", &too_long)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(b["errors"][0]["field"], "description");
    h.admin("POST", &format!("/v1/keys/{id}/revoke"), None)
        .await;
    let (s, _, b) = h
        .send(patch_if_match(
            &h,
            &id,
            "\"1\"",
            &json!({"description": "x"}),
        ))
        .await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "revoked is final, whatever the ETag: {b}"
    );
    // A stale ETag on a valid edit, even one that changes nothing, is still 412.
    let (other, _) = h.create(json!({"name": "other", "scopes": ["read"]})).await;
    let (s, _, b) = h
        .send(patch_if_match(
            &h,
            &other,
            "\"7\"",
            &json!({"name": "other"}),
        ))
        .await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED, "{b}");
}

/// What the document calls invalid is refused, by field, even where a lenient parser would
/// have guessed: `If-Match` and usage days are read exactly as their patterns say.
#[tokio::test]
async fn requests_the_document_calls_invalid_are_refused() {
    let h = Harness::new().await;
    let (id, _) = h
        .create(json!({"name": "strict", "scopes": ["read"]}))
        .await;
    let edit = json!({"description": "x"});
    for etag in ["", "1", "\"+1\"", "W/W/\"1\"", "\"1\", \"2\""] {
        let (s, _, b) = h.send(patch_if_match(&h, &id, etag, &edit)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{etag}: {b}");
        assert_eq!(b["errors"][0]["field"], "If-Match", "{etag}");
    }
    for (query, field) in [
        ("from=2026-1-5", "from"),
        ("to=%2B2026-01-05", "to"),
        ("to=2026-02-30", "to"),
    ] {
        let (s, b) = h.admin("GET", &format!("/v1/usage?{query}"), None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{query}: {b}");
        assert_eq!(b["errors"][0]["field"], field, "{query}");
    }
}
