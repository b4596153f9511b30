//! The issuer function on real API Gateway events: HTTP API (payload 2.0) and REST proxy
//! samples from `aws_lambda_events`, with only path, method, headers and body set per case.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics

use std::sync::Arc;

use axum::http::StatusCode;
use http_body_util::BodyExt;
use keyward_core::hash::Pepper;
use keyward_service::{App, Settings};
use keyward_store::{AuditLog, SqliteStore};
use serde_json::{Value, json};
use tower::ServiceExt;

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../../tests/fixtures/events/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// An HTTP API (payload 2.0) event for `method path` with `headers` and `body`.
fn http_api_event(method: &str, path: &str, headers: Value, body: Option<Value>) -> String {
    let mut e = fixture("example-apigw-v2-request-no-authorizer.json");
    e["rawPath"] = json!(path);
    e["rawQueryString"] = json!("");
    e["queryStringParameters"] = json!({});
    e["routeKey"] = json!(format!("{method} {path}"));
    e["requestContext"]["http"]["method"] = json!(method);
    e["requestContext"]["http"]["path"] = json!(path);
    e["headers"] = headers;
    e["cookies"] = json!([]);
    e["body"] = body.map_or(Value::Null, |b| json!(b.to_string()));
    e["isBase64Encoded"] = json!(false);
    e.to_string()
}

/// A REST API proxy event for `method path` with `headers`.
fn rest_event(method: &str, path: &str, headers: Value) -> String {
    let mut e = fixture("example-apigw-request.json");
    e["path"] = json!(path);
    e["resource"] = json!(path);
    e["httpMethod"] = json!(method);
    e["requestContext"]["httpMethod"] = json!(method);
    e["requestContext"]["path"] = json!(path);
    e["requestContext"]["resourcePath"] = json!(path);
    e["queryStringParameters"] = Value::Null;
    e["multiValueQueryStringParameters"] = Value::Null;
    e["pathParameters"] = Value::Null;
    let multi: serde_json::Map<String, Value> = headers
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), json!([v])))
        .collect();
    e["headers"] = headers;
    e["multiValueHeaders"] = Value::Object(multi);
    e["body"] = Value::Null;
    e.to_string()
}

async fn call(app: &App, event: &str) -> (StatusCode, Value) {
    let request = lambda_http::request::from_str(event).expect("a valid API Gateway event");
    let response = keyward_aws::issuer::router(app.clone())
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn app() -> (App, Arc<SqliteStore>, String) {
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let app = App::new(
        store.clone(),
        Pepper::generate().unwrap(),
        Settings::default(),
    );
    let root = app.bootstrap().await.unwrap().unwrap().expose().to_owned();
    (app, store, root)
}

#[tokio::test]
async fn an_http_api_event_creates_and_lists_keys() {
    let (app, store, root) = app().await;
    let headers = json!({"x-api-key": root, "content-type": "application/json"});
    let create = http_api_event(
        "POST",
        "/v1/keys",
        headers.clone(),
        Some(json!({"name": "from-lambda", "scopes": ["read"]})),
    );
    let (status, body) = call(&app, &create).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let secret = body["secret"].as_str().unwrap();
    assert!(keyward_core::token::Token::parse(secret).is_ok());

    let (status, body) = call(&app, &http_api_event("GET", "/v1/keys", headers, None)).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["from-lambda", "root"]);

    // The caller's address from the request context reaches the audit log.
    let audit = store.list_audit("default", None, 1).await.unwrap();
    assert_eq!(audit.items[0].source_ip, Some("1.2.3.4".parse().unwrap()));
}

#[tokio::test]
async fn a_rest_proxy_event_lists_keys_and_refuses_without_a_key() {
    let (app, _, root) = app().await;
    let (status, body) = call(
        &app,
        &rest_event("GET", "/v1/keys", json!({"X-API-Key": root})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"].as_array().unwrap().len(), 1);
    let (status, body) = call(&app, &rest_event("GET", "/v1/keys", json!({}))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["status"], 401);
}

/// Behind a REST API stage, the console's pages, cookies and redirects stay under the stage
/// (`lambda_http` puts it in front of the path; the issuer takes it off to route).
#[tokio::test]
async fn the_console_behind_a_rest_stage_keeps_the_stage_in_its_links() {
    let (app, _, _) = app().await;
    let event = rest_event(
        "GET",
        "/console/sign-in",
        json!({"X-Forwarded-Proto": "https"}),
    );
    let request = lambda_http::request::from_str(&event).unwrap();
    let response = keyward_aws::issuer::router(app.clone())
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.contains("Path=/testStage/console"), "{cookie}");
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let page = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(
        page.contains(r#"<base href="/testStage/console/">"#),
        "{page}"
    );
    // Signed out, a page redirects to sign-in under the stage.
    let request =
        lambda_http::request::from_str(&rest_event("GET", "/console/keys", json!({}))).unwrap();
    let response = keyward_aws::issuer::router(app)
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/testStage/console/sign-in");
}

#[tokio::test]
async fn an_admin_key_limited_to_a_range_is_checked_against_the_event_source() {
    let (app, _, root) = app().await;
    let headers = json!({"x-api-key": root, "content-type": "application/json"});
    let body =
        json!({"name": "office-admin", "scopes": ["admin"], "allowed_cidrs": ["10.0.0.0/8"]});
    let (_, created) = call(
        &app,
        &http_api_event("POST", "/v1/keys", headers, Some(body)),
    )
    .await;
    let office = created["secret"].as_str().unwrap();
    // The fixture's source is 1.2.3.4, outside 10.0.0.0/8.
    let (status, _) = call(
        &app,
        &http_api_event("GET", "/v1/keys", json!({"x-api-key": office}), None),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[test]
fn a_broken_event_is_an_error_not_a_panic() {
    for broken in ["", "{", "[]", r#"{"version": "2.0"}"#] {
        assert!(lambda_http::request::from_str(broken).is_err(), "{broken}");
    }
}
