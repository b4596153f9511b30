//! `POST /v1/verify`: the key in the body is what is verified; no admin key is needed. A caller
//! may present a verifier key in its headers to see the key's id and account with denials too
//! (and must, when the deployment says so).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keyward_api::problem::Problem;
use keyward_api::verify::{VerifyRequest, VerifyResult};
use keyward_service::App;
use keyward_service::settings::VerifyAccess;
use keyward_service::verification::{Explain, request};

use crate::extract::{CallerKey, ClientIp, JsonBody};
use crate::problem::HttpError;

/// Answers with the status of the outcome table and `{"valid", "code", ...}`. The key's grants
/// are shown only when it is valid; its id and account with `VALID`, or with any answer to a
/// verifier.
pub async fn verify(
    State(app): State<App>,
    ClientIp(ip): ClientIp,
    CallerKey(caller_key): CallerKey,
    JsonBody(body): JsonBody<VerifyRequest>,
) -> Result<Response, HttpError> {
    let caller_key = caller_key.as_deref();
    let required = app.settings().verify_access == VerifyAccess::VerifierKey;
    let verifier = if caller_key.is_some() || required {
        Some(app.authenticate_verifier(caller_key, ip).await?)
    } else {
        None
    };
    let presented = request::presented(body).map_err(|e| Problem::invalid(e.0))?;
    let decided = app.verifier().decide(&presented, Explain::No).await?;
    let status =
        StatusCode::from_u16(decided.code.http_status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let valid = decided.code.is_valid();
    let key = decided
        .key
        .as_deref()
        .filter(|_| valid || verifier.is_some());
    let grants = key.filter(|_| valid);
    let body = VerifyResult {
        valid,
        code: decided.code,
        key_id: key.map(|k| k.id.clone()),
        account: key.map(|k| k.account.clone()),
        name: grants.map(|k| k.name.clone()),
        workspaces: grants.map(|k| k.workspaces.clone()),
        scopes: grants.map(|k| k.scopes.clone()),
        groups: grants.map(|k| k.groups.clone()),
        expires_at: grants.map(|k| k.expires_at),
        rate_limit_per_minute: grants.map(|k| k.rate_limit_per_minute),
    };
    let mut response = (status, Json(body)).into_response();
    if let Some(secs) = decided.retry_after_secs {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    Ok(response)
}
