//! Handlers for `/v1/audit` and `/v1/usage`: what happened, and how much keys were used.

use axum::Json;
use axum::extract::State;

use crate::app::App;
use crate::http::dto::AuditListing;
use crate::http::extract::{Admin, QueryMap};
use crate::http::keys::day_range;
use crate::http::problem::Problem;
use crate::usage::AccountUsage;

/// `GET /v1/audit?cursor=&limit=`: newest first.
pub async fn list(
    State(app): State<App>,
    Admin(actor): Admin,
    mut query: QueryMap,
) -> Result<Json<AuditListing>, Problem> {
    let mut errors = Vec::new();
    let cursor = query.take("cursor");
    let limit = query.limit(&mut errors);
    query.finish(errors, "cursor, limit")?;
    Ok(Json(
        app.list_audit(&actor, cursor.as_deref(), limit)
            .await?
            .into(),
    ))
}

/// `GET /v1/usage?from=&to=`: the account's requests per day.
pub async fn usage(
    State(app): State<App>,
    Admin(actor): Admin,
    mut query: QueryMap,
) -> Result<Json<AccountUsage>, Problem> {
    let range = day_range(&app, &mut query)?;
    Ok(Json(app.account_usage(&actor, range).await?))
}
