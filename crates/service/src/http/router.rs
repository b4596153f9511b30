//! The routes of the management API, with the limits and layers every request passes.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::routing::{get, post};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::app::App;
use crate::http::problem::Problem;
use crate::http::{keys, verify};

/// The whole management API. Request and response bodies are never logged: they carry
/// secrets (a created key, a key to verify).
pub fn router(app: App) -> Router {
    let limit = app.settings().max_body_bytes;
    Router::new()
        .route("/v1/keys", post(keys::create).get(keys::list))
        .route("/v1/keys/{id}", get(keys::get).delete(keys::delete))
        .route("/v1/keys/{id}/revoke", post(keys::revoke))
        .route("/v1/verify", post(verify::verify))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async { Problem::not_found_route() })
        .method_not_allowed_fallback(|| async { Problem::method_not_allowed() })
        .layer(DefaultBodyLimit::max(limit))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(app)
}
