//! Handlers for `/v1/keys`: thin translations between HTTP and the issuance service.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keyward_api::keys::{
    ApiKey, CreateKeyRequest, EditedKey, KeyStatus, KeyWithSecret, RegenerateRequest,
    RegeneratedKey, UpdateKeyRequest,
};
use keyward_api::listing::{KeyListing, Listing};
use keyward_api::problem::Problem;
use keyward_api::usage::KeyUsage;
use keyward_core::validation::{FieldError, Warning};
use keyward_service::App;
use keyward_service::issuance::{CreateOutcome, Created, Idempotency};
use keyward_service::usage::DayRange;
use keyward_store::{KeyQuery, Page};
use serde::Serialize;

use crate::extract::{Admin, IfMatch, JsonBody, OptionalJsonBody, PathParams, QueryMap, RawJson};
use crate::problem::HttpError;

/// A page of a listing as the API answers it.
pub(crate) fn listing<T>(page: Page<T>) -> Listing<T> {
    Listing {
        items: page.items,
        next_cursor: page.next_cursor,
    }
}

/// The shape of [`etag`], for the OpenAPI document.
pub const ETAG_PATTERN: &str = r#"^"[0-9]+"$"#;

/// The `ETag` of a record: its version, so `If-Match` can guard edits.
pub fn etag(key: &ApiKey) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{}\"", key.version))
        .unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
}

fn with_etag(status: StatusCode, key: &ApiKey, body: impl Serialize) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, etag(key));
    (status, headers, Json(body)).into_response()
}

fn record(key: ApiKey) -> Response {
    with_etag(StatusCode::OK, &key.clone(), key)
}

fn with_secret(status: StatusCode, created: Created) -> Response {
    let key = created.key;
    with_etag(
        status,
        &key.clone(),
        KeyWithSecret {
            key,
            secret: Some(created.secret.expose().to_owned()),
            warnings: created.warnings,
        },
    )
}

/// `POST /v1/keys`: 201 with the record and the secret, shown this once. With
/// `Idempotency-Key`, a retry answers 200 with the first key and no secret.
pub async fn create(
    State(app): State<App>,
    Admin(actor): Admin,
    headers: HeaderMap,
    RawJson(request, body): RawJson<CreateKeyRequest>,
) -> Result<Response, HttpError> {
    let idempotency_key = match headers.get("idempotency-key") {
        Some(v) => Some(v.to_str().map_err(|_| {
            HttpError::from(Problem::invalid(vec![FieldError::new(
                "Idempotency-Key",
                "visible ASCII only",
            )]))
        })?),
        None => None,
    };
    let idempotency = idempotency_key.map(|key| Idempotency { key, body: &body });
    match app.create_key(&actor, request, idempotency).await? {
        CreateOutcome::Created(created) => {
            let location = format!("/v1/keys/{}", created.key.id);
            let mut response = with_secret(StatusCode::CREATED, created);
            if let Ok(location) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            Ok(response)
        }
        CreateOutcome::Replayed(key) => {
            let mut response = with_etag(
                StatusCode::OK,
                &key.clone(),
                KeyWithSecret {
                    key,
                    secret: None,
                    warnings: vec![Warning::new(
                        "secret",
                        "this retry of an earlier create (same Idempotency-Key) answers the key it made; the secret was shown only in the first response. If it was lost, regenerate the key.",
                    )],
                },
            );
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            Ok(response)
        }
    }
}

/// `GET /v1/keys?status=&workspace=&group=&q=&cursor=&limit=`.
pub async fn list(
    State(app): State<App>,
    Admin(actor): Admin,
    mut query: QueryMap,
) -> Result<Json<KeyListing>, HttpError> {
    let mut errors = Vec::new();
    let mut params = KeyQuery {
        status: Some(KeyStatus::Active),
        ..KeyQuery::all(app.now())
    };
    match query.take("status").as_deref() {
        None => {}
        Some("all") => params.status = None,
        Some(s) => match KeyStatus::parse(s) {
            Some(s) => params.status = Some(s),
            None => errors.push(FieldError::new(
                "status",
                "one of active, inactive, expired, revoked, all",
            )),
        },
    }
    params.workspace = query.take_id("workspace", &mut errors);
    params.group = query.take_id("group", &mut errors);
    params.name_contains = query.take("q").filter(|q| !q.is_empty());
    params.cursor = query.take("cursor");
    params.limit = query.limit(&mut errors);
    query.finish(errors, "status, workspace, group, q, cursor, limit")?;
    Ok(Json(listing(app.list_keys(&actor, &params).await?)))
}

/// `GET /v1/keys/{id}`.
pub async fn get(
    State(app): State<App>,
    Admin(actor): Admin,
    PathParams(id): PathParams<String>,
) -> Result<Response, HttpError> {
    Ok(record(app.get_key(&actor, &id).await?))
}

/// `PATCH /v1/keys/{id}`, conditional on `If-Match` when given (412 on a stale version).
pub async fn update(
    State(app): State<App>,
    Admin(actor): Admin,
    PathParams(id): PathParams<String>,
    IfMatch(if_match): IfMatch,
    JsonBody(request): JsonBody<UpdateKeyRequest>,
) -> Result<Response, HttpError> {
    let updated = app.update_key(&actor, &id, if_match, request).await?;
    let key = updated.key;
    Ok(with_etag(
        StatusCode::OK,
        &key.clone(),
        EditedKey {
            key,
            warnings: updated.warnings,
        },
    ))
}

/// `POST /v1/keys/{id}/revoke`: final; the secret stops working.
pub async fn revoke(
    State(app): State<App>,
    Admin(actor): Admin,
    PathParams(id): PathParams<String>,
    IfMatch(if_match): IfMatch,
) -> Result<Response, HttpError> {
    Ok(record(app.revoke_key(&actor, &id, if_match).await?))
}

/// `POST /v1/keys/{id}/regenerate`: a new secret, shown this once; the old one stops at once,
/// or after `grace_period_seconds`.
pub async fn regenerate(
    State(app): State<App>,
    Admin(actor): Admin,
    PathParams(id): PathParams<String>,
    IfMatch(if_match): IfMatch,
    OptionalJsonBody(request): OptionalJsonBody<RegenerateRequest>,
) -> Result<Response, HttpError> {
    let created = app
        .regenerate_key(&actor, &id, if_match, &request.unwrap_or_default())
        .await?;
    let key = created.key;
    let previous_secret_expires_at = key.previous_secret.as_ref().map(|p| p.expires_at);
    Ok(with_etag(
        StatusCode::OK,
        &key.clone(),
        RegeneratedKey {
            created: KeyWithSecret {
                key,
                secret: Some(created.secret.expose().to_owned()),
                warnings: created.warnings,
            },
            previous_secret_expires_at,
        },
    ))
}

/// `PUT /v1/keys/{id}/workspaces/{workspace}`: associate (idempotent).
pub async fn add_workspace(
    State(app): State<App>,
    Admin(actor): Admin,
    PathParams((id, workspace)): PathParams<(String, String)>,
) -> Result<Response, HttpError> {
    Ok(record(app.add_workspace(&actor, &id, &workspace).await?))
}

/// `DELETE /v1/keys/{id}/workspaces/{workspace}`: dissociate (idempotent).
pub async fn remove_workspace(
    State(app): State<App>,
    Admin(actor): Admin,
    PathParams((id, workspace)): PathParams<(String, String)>,
) -> Result<Response, HttpError> {
    Ok(record(app.remove_workspace(&actor, &id, &workspace).await?))
}

/// `GET /v1/keys/{id}/usage?from=&to=`.
pub async fn usage(
    State(app): State<App>,
    Admin(actor): Admin,
    PathParams(id): PathParams<String>,
    mut query: QueryMap,
) -> Result<Json<KeyUsage>, HttpError> {
    let range = day_range(&app, &mut query)?;
    Ok(Json(app.key_usage(&actor, &id, range).await?))
}

/// Reads `from` and `to` and refuses anything else in the query.
pub(crate) fn day_range(app: &App, query: &mut QueryMap) -> Result<DayRange, HttpError> {
    let (from, to) = (query.take("from"), query.take("to"));
    let range = DayRange::parse(from.as_deref(), to.as_deref(), app.now().date_naive());
    let errors = match &range {
        Ok(_) => Vec::new(),
        Err(e) => e.0.clone(),
    };
    std::mem::take(query).finish(errors, "from, to")?;
    Ok(range.map_err(|e| Problem::invalid(e.0))?)
}

/// `DELETE /v1/keys/{id}`: 204; the key, its secret and its name are gone.
pub async fn delete(
    State(app): State<App>,
    Admin(actor): Admin,
    PathParams(id): PathParams<String>,
    IfMatch(if_match): IfMatch,
) -> Result<StatusCode, HttpError> {
    app.delete_key(&actor, &id, if_match).await?;
    Ok(StatusCode::NO_CONTENT)
}
