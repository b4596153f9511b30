//! The OpenAPI document: the committed copy under `schemas/` matches the code, and every
//! documented operation is served by the Router.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use keyward_core::hash::Pepper;
use keyward_http::openapi::document;
use keyward_service::{App, Settings};
use keyward_store::SqliteStore;
use tower::ServiceExt;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas/openapi.json")
}

#[test]
fn the_committed_document_matches_the_code() {
    let generated = serde_json::to_string_pretty(&document()).unwrap() + "\n";
    let path = committed_path();
    if std::env::var_os("KEYWARD_WRITE_SCHEMAS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "schemas/openapi.json is out of date: run `KEYWARD_WRITE_SCHEMAS=1 cargo test -p keyward-http --test openapi` and commit it"
    );
}

#[test]
fn the_document_is_openapi_3_1_with_unique_operations() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut ids = Vec::new();
    for (_, ops) in doc["paths"].as_object().unwrap() {
        for (_, op) in ops.as_object().unwrap() {
            ids.push(op["operationId"].as_str().unwrap().to_owned());
            for (status, response) in op["responses"].as_object().unwrap() {
                assert!(status.parse::<u16>().is_ok());
                assert!(response["description"].is_string());
            }
        }
    }
    let count = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count, "operation ids are unique");
    // Every link leads to an operation, and names parameters that operation has.
    let operations: Vec<&serde_json::Value> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|ops| ops.as_object().unwrap().values())
        .collect();
    let mut links = 0;
    for op in &operations {
        for response in op["responses"].as_object().unwrap().values() {
            let Some(found) = response.get("links") else {
                continue;
            };
            for link in found.as_object().unwrap().values() {
                links += 1;
                let target = operations
                    .iter()
                    .find(|o| o["operationId"] == link["operationId"])
                    .unwrap_or_else(|| panic!("no operation {}", link["operationId"]));
                for name in link["parameters"].as_object().unwrap().keys() {
                    let (place, name) = name.split_once('.').unwrap_or(("path", name));
                    assert!(
                        target["parameters"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|p| p["name"] == name && p["in"] == place),
                        "{} has no {place} parameter {name}",
                        link["operationId"]
                    );
                }
            }
        }
    }
    assert!(links > 10, "creates link to what they create");
    // Every schema reference resolves.
    let text = doc.to_string();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = part.split('"').next().unwrap();
        assert!(schemas.contains_key(name), "unresolved $ref {name}");
    }
}

/// Every `pattern` of the document, wherever it is.
fn patterns(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("pattern", serde_json::Value::String(p)) => out.push(p.clone()),
                    _ => patterns(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| patterns(v, out)),
        _ => {}
    }
}

#[test]
fn every_pattern_is_anchored_and_compiles() {
    let mut all = Vec::new();
    patterns(&document(), &mut all);
    assert!(all.len() > 10, "the document states its patterns");
    for p in all {
        // JSON Schema patterns match anywhere; an unanchored one would state nothing.
        assert!(p.starts_with('^') && p.ends_with('$'), "{p}");
        regex_lite::Regex::new(&p).unwrap_or_else(|e| panic!("{p}: {e}"));
    }
}

#[tokio::test]
async fn every_documented_operation_is_served() {
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let app = App::new(store, Pepper::generate().unwrap(), Settings::default());
    let doc = document();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, _) in ops.as_object().unwrap() {
            let concrete: String = path
                .split('/')
                .map(|seg| if seg.starts_with('{') { "x" } else { seg })
                .collect::<Vec<_>>()
                .join("/");
            let req = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&concrete)
                .body(Body::empty())
                .unwrap();
            let resp = keyward_http::router(app.clone())
                .oneshot(req)
                .await
                .unwrap();
            let status = resp.status();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            let text = String::from_utf8_lossy(&body);
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert!(
                !text.contains("no such endpoint"),
                "{method} {path} is not routed"
            );
        }
    }
}

#[test]
fn the_committed_route_policy_schema_matches_the_code() {
    let schema = schemars::schema_for!(keyward_core::route::RoutePolicySpec);
    let generated = serde_json::to_string_pretty(&schema).unwrap() + "\n";
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas/route-policy.schema.json");
    if std::env::var_os("KEYWARD_WRITE_SCHEMAS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "schemas/route-policy.schema.json is out of date: run `KEYWARD_WRITE_SCHEMAS=1 cargo test -p keyward-http --test openapi` and commit it"
    );
}
