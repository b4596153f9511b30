//! `POST /v1/verify`: the key in the body is what is verified; no admin key is needed.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::app::App;
use crate::http::dto::VerifyResult;
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
    if let Err(e) = app.engine().flush_usage_if_due().await {
        tracing::warn!(error = %e, "usage flush failed");
    }
    let status =
        StatusCode::from_u16(verdict.code.http_status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let valid = verdict.code.is_valid();
    let grants = verdict.key.as_ref().filter(|_| valid);
    let body = VerifyResult {
        valid,
        code: verdict.code,
        key_id: verdict.key.as_ref().map(|k| k.id.clone()),
        account: verdict.key.as_ref().map(|k| k.account.clone()),
        name: grants.map(|k| k.name.clone()),
        workspaces: grants.map(|k| k.workspaces.clone()),
        scopes: grants.map(|k| k.scopes.clone()),
        groups: grants.map(|k| k.groups.clone()),
        expires_at: grants.map(|k| k.expires_at),
        rate_limit_per_minute: grants.map(|k| k.rate_limit_per_minute),
    };
    Ok((status, Json(body)).into_response())
}
