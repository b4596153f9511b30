//! `POST /v1/verify`: the key in the body is what is verified; no admin key is needed.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::App;
use crate::http::extract::JsonBody;
use crate::http::problem::Problem;
use crate::verification::VerifyRequest;

/// Answers with the status of the outcome table and `{"valid", "code", "key_id", ...}`. The
/// key's grants are shown only when it is valid.
pub async fn verify(
    State(app): State<App>,
    JsonBody(request): JsonBody<VerifyRequest>,
) -> Result<Response, Problem> {
    let access = request.access().map_err(|e| Problem::invalid(e.0))?;
    let verdict = app.verify(request.key.as_deref(), &access).await?;
    let status =
        StatusCode::from_u16(verdict.code.http_status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let body = match (&verdict.key, verdict.code.is_valid()) {
        (Some(key), true) => json!({
            "valid": true,
            "code": verdict.code,
            "key_id": key.id,
            "account": key.account,
            "name": key.name,
            "workspaces": key.workspaces,
            "scopes": key.scopes,
            "groups": key.groups,
            "expires_at": key.expires_at,
            "rate_limit_per_minute": key.rate_limit_per_minute,
        }),
        (Some(key), false) => json!({
            "valid": false,
            "code": verdict.code,
            "key_id": key.id,
            "account": key.account,
        }),
        (None, _) => json!({
            "valid": false,
            "code": verdict.code,
            "key_id": null,
            "account": null,
        }),
    };
    Ok((status, Json(body)).into_response())
}
