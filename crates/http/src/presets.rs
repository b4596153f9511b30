//! Handlers for `/v1/presets`: built-in and account-defined presets.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use keyward_api::presets::Preset;

use crate::extract::{Admin, JsonBody, PathParams};
use crate::problem::HttpError;
use keyward_api::presets::{PresetEntry, PresetListing, PresetRequest};
use keyward_service::App;

/// `GET /v1/presets`: built-ins first, then the account's own.
pub async fn list(
    State(app): State<App>,
    Admin(actor): Admin,
) -> Result<Json<PresetListing>, HttpError> {
    let items = app
        .list_presets(&actor)
        .await?
        .into_iter()
        .map(|(preset, builtin)| PresetEntry { preset, builtin })
        .collect();
    Ok(Json(PresetListing { items }))
}

/// `PUT /v1/presets/{name}`: define or replace the account's preset.
pub async fn put(
    State(app): State<App>,
    Admin(actor): Admin,
    PathParams(name): PathParams<String>,
    JsonBody(request): JsonBody<PresetRequest>,
) -> Result<Json<Preset>, HttpError> {
    Ok(Json(app.put_preset(&actor, &name, request).await?))
}

/// `DELETE /v1/presets/{name}`: 204.
pub async fn delete(
    State(app): State<App>,
    Admin(actor): Admin,
    PathParams(name): PathParams<String>,
) -> Result<StatusCode, HttpError> {
    app.delete_preset(&actor, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
