//! The OpenAPI 3.1 document, generated from the route table and the request and response
//! types (schemars writes JSON Schema 2020-12, the dialect of OpenAPI 3.1).
//!
//! What a schema can state, it states: lengths, patterns, enums, ranges, array sizes, formats
//! and `additionalProperties: false`, each from the rule that enforces it. What no schema can
//! state (a time, two fields together, stored state) is in descriptions, and listed in
//! `docs/api-contract.md`.

use axum::Json;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use keyward_api::problem::Problem;
use keyward_core::token::{MAX_TOKEN_LEN, token_pattern};

use crate::router::{Auth, Endpoint, Param, endpoints, id_schema};

/// A header of an answer, as the document describes it.
fn response_header((_, description, schema): &Param) -> Value {
    json!({"description": description, "required": true, "schema": schema.to_value()})
}

/// How a key is presented, with the token's shape (the checksum is checked too).
fn security_schemes() -> Value {
    let shape = format!(
        "A key of this deployment: `<prefix>_<random><checksum>`, matching `{}`, at most {MAX_TOKEN_LEN} characters.",
        token_pattern()
    );
    json!({
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": shape},
        "bearer": {"type": "http", "scheme": "bearer", "description": shape},
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No content",
        400 => "Invalid request; every bad field is named in errors",
        401 => "Missing, malformed, unknown, revoked or expired key",
        403 => "The key may not do this (inactive, address, workspace or permission)",
        404 => "Not found",
        409 => "Conflict (a name in use, a revoked key, a built-in preset)",
        412 => "The key changed since the ETag given in If-Match",
        413 => "Request body too large",
        415 => "The body must be application/json",
        422 => "The Idempotency-Key was used with another body",
        429 => "Rate limited: the key's budget for this UTC minute is spent",
        503 => {
            "The store cannot answer now (or a write met too many concurrent writers); retry after Retry-After seconds"
        }
        _ => "Internal error",
    }
}

/// The whole document.
pub fn document() -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    let problem = generator.subschema_for::<Problem>();
    let mut paths = Map::new();
    for Endpoint {
        method, path, doc, ..
    } in endpoints()
    {
        let mut parameters: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(
                |name| json!({"name": name, "in": "path", "required": true, "schema": id_schema()}),
            )
            .collect();
        parameters.extend(doc.query.iter().map(|(name, description, schema)| {
            json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema.to_value()})
        }));
        parameters.extend(doc.headers.iter().map(|(name, description, schema)| {
            json!({"name": name, "in": "header", "required": false, "description": description, "schema": schema.to_value()})
        }));

        let mut responses = Map::new();
        let (ok, body) = doc.success;
        let mut success = json!({"description": reason(ok)});
        if let Some(schema) = body {
            success["content"] = json!({"application/json": {"schema": schema(&mut generator)}});
        } else if path == "/healthz" || path == "/readyz" {
            success["content"] = json!({"text/plain": {"schema": {"type": "string"}}});
        } else if path == "/v1/openapi.json" {
            success["content"] = json!({"application/json": {"schema": {"type": "object"}}});
        }
        if !doc.response_headers.is_empty() {
            success["headers"] = doc
                .response_headers
                .iter()
                .map(|h| (h.0.to_owned(), response_header(h)))
                .collect::<Map<_, _>>()
                .into();
        }
        if !doc.links.is_empty() {
            success["links"] = doc
                .links
                .iter()
                .map(|(operation, parameters)| {
                    let parameters: Map<String, Value> = parameters
                        .iter()
                        .map(|(name, expression)| ((*name).to_owned(), json!(expression)))
                        .collect();
                    (
                        (*operation).to_owned(),
                        json!({"operationId": operation, "parameters": parameters}),
                    )
                })
                .collect::<Map<_, _>>()
                .into();
        }
        responses.insert(ok.to_string(), success);
        let mut problems: Vec<u16> = doc.also.to_vec();
        if doc.auth != Auth::None {
            // Every call that authenticates reads the store, which may be unavailable, and
            // spends the key's management budget.
            problems.extend([401, 403, 429, 503]);
        }
        if doc.request.is_some() || !doc.query.is_empty() || path.contains('{') {
            problems.push(400);
        }
        if doc.request.is_some() {
            problems.extend([413, 415]);
        }
        problems.push(500);
        problems.sort_unstable();
        problems.dedup();
        for status in problems {
            if status == ok {
                continue;
            }
            let mut headers = Map::new();
            let content = if status == 200 && body.is_some() {
                // 200 beside 201: the same body (an Idempotency-Key replay), without Location.
                for h in doc.response_headers.iter().filter(|h| h.0 != "Location") {
                    headers.insert(h.0.to_owned(), response_header(h));
                }
                headers.insert(
                    "Idempotent-Replayed".to_owned(),
                    json!({"description": "This answers an earlier create.", "required": true, "schema": {"const": "true"}}),
                );
                json!({"application/json": {"schema": body.map(|s| s(&mut generator))}})
            } else if path == "/v1/verify" && matches!(status, 401 | 403 | 429 | 503) {
                // The verified key's answer, or a problem with the caller's own key (or with
                // the store while authenticating it, or its management budget).
                json!({
                    "application/json": {"schema": body.map(|s| s(&mut generator))},
                    "application/problem+json": {"schema": problem.clone()},
                })
            } else {
                json!({"application/problem+json": {"schema": problem.clone()}})
            };
            if matches!(status, 429 | 503) {
                headers.insert(
                    "Retry-After".to_owned(),
                    json!({
                        "description": "Whole seconds to wait before retrying: to the next UTC minute when rate limited.",
                        "required": true,
                        "schema": {"type": "integer", "minimum": 1}
                    }),
                );
            }
            let mut response = json!({"description": reason(status), "content": content});
            if !headers.is_empty() {
                response["headers"] = headers.into();
            }
            responses.insert(status.to_string(), response);
        }

        let mut operation = json!({
            "operationId": doc.id,
            "summary": doc.summary,
            "parameters": parameters,
            "responses": responses,
        });
        if let Some(schema) = doc.request {
            operation["requestBody"] = json!({
                "required": !doc.body_optional,
                "content": {"application/json": {"schema": schema(&mut generator)}},
            });
        }
        operation["security"] = match doc.auth {
            Auth::Admin => json!([{"apiKey": []}, {"bearer": []}]),
            Auth::Optional => json!([{}, {"apiKey": []}, {"bearer": []}]),
            Auth::None => json!([]),
        };
        let entry = paths.entry(path.to_owned()).or_insert_with(|| json!({}));
        entry[method] = operation;
    }
    let schemas: Map<String, Value> = generator.take_definitions(true).into_iter().collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "keyward management API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Issue, verify and manage API keys. Errors are RFC 9457 problem documents.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": security_schemes(),
        },
    })
}

/// `GET /v1/openapi.json`.
pub async fn serve() -> Json<Value> {
    Json(document())
}
