//! Handlers for `/v1/groups`: sharing groups and their members.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use keyward_api::groups::{CreateGroupRequest, Group};

use keyward_api::listing::{GroupListing, KeyListing};
use keyward_service::App;

use crate::extract::{Admin, JsonBody, PathParams, QueryMap};
use crate::keys::listing;
use crate::problem::HttpError;

/// `POST /v1/groups`: 201 with the group.
pub async fn create(
    State(app): State<App>,
    Admin(actor): Admin,
    JsonBody(request): JsonBody<CreateGroupRequest>,
) -> Result<Response, HttpError> {
    let group = app.create_group(&actor, request).await?;
    Ok((StatusCode::CREATED, Json(group)).into_response())
}

/// `GET /v1/groups?cursor=&limit=`.
pub async fn list(
    State(app): State<App>,
    Admin(actor): Admin,
    mut query: QueryMap,
) -> Result<Json<GroupListing>, HttpError> {
    let mut errors = Vec::new();
    let cursor = query.take("cursor");
    let limit = query.limit(&mut errors);
    query.finish(errors, "cursor, limit")?;
    Ok(Json(listing(
        app.list_groups(&actor, cursor.as_deref(), limit).await?,
    )))
}

/// `GET /v1/groups/{id}`.
pub async fn get(
    State(app): State<App>,
    Admin(actor): Admin,
    PathParams(id): PathParams<String>,
) -> Result<Json<Group>, HttpError> {
    Ok(Json(app.get_group(&actor, &id).await?))
}

/// `DELETE /v1/groups/{id}`: removes it from every member first; 204.
pub async fn delete(
    State(app): State<App>,
    Admin(actor): Admin,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, HttpError> {
    app.delete_group(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/groups/{id}/members?cursor=&limit=`: the member keys, every status.
pub async fn members(
    State(app): State<App>,
    Admin(actor): Admin,
    PathParams(id): PathParams<String>,
    mut query: QueryMap,
) -> Result<Json<KeyListing>, HttpError> {
    let mut errors = Vec::new();
    let cursor = query.take("cursor");
    let limit = query.limit(&mut errors);
    query.finish(errors, "cursor, limit")?;
    Ok(Json(listing(
        app.group_members(&actor, &id, cursor, limit).await?,
    )))
}

/// `PUT /v1/groups/{id}/members/{key_id}`: answers the key (idempotent).
pub async fn add_member(
    State(app): State<App>,
    Admin(actor): Admin,
    PathParams((id, key_id)): PathParams<(String, String)>,
) -> Result<Response, HttpError> {
    let key = app.add_member(&actor, &id, &key_id).await?;
    Ok(Json(key).into_response())
}

/// `DELETE /v1/groups/{id}/members/{key_id}`: answers the key (idempotent).
pub async fn remove_member(
    State(app): State<App>,
    Admin(actor): Admin,
    PathParams((id, key_id)): PathParams<(String, String)>,
) -> Result<Response, HttpError> {
    let key = app.remove_member(&actor, &id, &key_id).await?;
    Ok(Json(key).into_response())
}
