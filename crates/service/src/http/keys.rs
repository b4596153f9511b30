//! Handlers for `/v1/keys`: thin translations between HTTP and the issuance service.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keyward_core::key::{ApiKey, CreateKeyRequest, KeyStatus};
use keyward_core::validation::FieldError;
use keyward_store::port::MAX_PAGE_SIZE;
use serde_json::json;

use crate::app::App;
use crate::http::extract::{Admin, JsonBody, PathId, QueryMap};
use crate::http::problem::Problem;
use crate::issuance::ListParams;

/// The `ETag` of a record: its version, so `If-Match` can guard edits.
pub fn etag(key: &ApiKey) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{}\"", key.version))
        .unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
}

fn with_etag(status: StatusCode, key: &ApiKey, body: serde_json::Value) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, etag(key));
    (status, headers, Json(body)).into_response()
}

fn record(key: &ApiKey) -> Response {
    with_etag(StatusCode::OK, key, json!(key))
}

/// `POST /v1/keys`: 201 with the record and the secret, shown this once.
pub async fn create(
    State(app): State<App>,
    Admin(actor): Admin,
    JsonBody(request): JsonBody<CreateKeyRequest>,
) -> Result<Response, Problem> {
    let created = app.create_key(&actor, request).await?;
    let mut response = with_etag(
        StatusCode::CREATED,
        &created.key,
        json!({
            "key": created.key,
            "secret": created.secret.expose(),
            "warnings": created.warnings,
        }),
    );
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/keys/{}", created.key.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `GET /v1/keys?status=&workspace=&q=&cursor=&limit=`.
pub async fn list(
    State(app): State<App>,
    Admin(actor): Admin,
    QueryMap(query): QueryMap,
) -> Result<Response, Problem> {
    let params = list_params(query)?;
    let page = app.list_keys(&actor, params).await?;
    Ok(Json(json!({"items": page.items, "next_cursor": page.next_cursor})).into_response())
}

fn list_params(query: std::collections::HashMap<String, String>) -> Result<ListParams, Problem> {
    let mut params = ListParams::default();
    let mut errors = Vec::new();
    for (name, value) in query {
        match name.as_str() {
            "status" if value == "all" => params.status = None,
            "status" => match KeyStatus::parse(&value) {
                Some(s) => params.status = Some(s),
                None => errors.push(FieldError::new(
                    "status",
                    "one of active, inactive, expired, revoked, all",
                )),
            },
            "workspace" => params.workspace = Some(value),
            "q" => params.name_contains = Some(value).filter(|q| !q.is_empty()),
            "cursor" => params.cursor = Some(value),
            "limit" => match value.parse::<usize>() {
                Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => params.limit = n,
                _ => errors.push(FieldError::new(
                    "limit",
                    format!("an integer from 1 to {MAX_PAGE_SIZE}"),
                )),
            },
            other => errors.push(FieldError::new(
                other.chars().take(64).collect::<String>(),
                "unknown query parameter; known: status, workspace, q, cursor, limit",
            )),
        }
    }
    if errors.is_empty() {
        Ok(params)
    } else {
        errors.sort_by(|a, b| a.field.cmp(&b.field));
        Err(Problem::invalid(errors))
    }
}

/// `GET /v1/keys/{id}`.
pub async fn get(
    State(app): State<App>,
    Admin(actor): Admin,
    PathId(id): PathId,
) -> Result<Response, Problem> {
    Ok(record(&app.get_key(&actor, &id).await?))
}

/// `POST /v1/keys/{id}/revoke`: final; the secret stops working.
pub async fn revoke(
    State(app): State<App>,
    Admin(actor): Admin,
    PathId(id): PathId,
) -> Result<Response, Problem> {
    Ok(record(&app.revoke_key(&actor, &id).await?))
}

/// `DELETE /v1/keys/{id}`: 204; the key, its secret and its name are gone.
pub async fn delete(
    State(app): State<App>,
    Admin(actor): Admin,
    PathId(id): PathId,
) -> Result<StatusCode, Problem> {
    app.delete_key(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
