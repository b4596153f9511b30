//! Handlers for `/v1/audit` and `/v1/usage`: what happened, and how much keys were used.

use axum::Json;
use axum::extract::State;

use crate::extract::{Admin, QueryMap};
use crate::keys::{day_range, listing};
use crate::problem::HttpError;
use keyward_api::listing::AuditListing;
use keyward_api::usage::AccountUsage;
use keyward_service::App;

/// `GET /v1/audit?cursor=&limit=`: newest first.
pub async fn list(
    State(app): State<App>,
    Admin(actor): Admin,
    mut query: QueryMap,
) -> Result<Json<AuditListing>, HttpError> {
    let mut errors = Vec::new();
    let cursor = query.take("cursor");
    let limit = query.limit(&mut errors);
    query.finish(errors, "cursor, limit")?;
    Ok(Json(listing(
        app.list_audit(&actor, cursor.as_deref(), limit).await?,
    )))
}

/// `GET /v1/usage?from=&to=`: the account's requests per day.
pub async fn usage(
    State(app): State<App>,
    Admin(actor): Admin,
    mut query: QueryMap,
) -> Result<Json<AccountUsage>, HttpError> {
    let range = day_range(&app, &mut query)?;
    Ok(Json(app.account_usage(&actor, range).await?))
}
