//! The web console: keys, usage and audit in a browser, served by the management Router itself
//! (so `keyward serve` and the issuer Lambda both serve it, with nothing else to deploy).
//!
//! Pages render on the server from the same service calls as the API (no second copy of a
//! rule); forms post back here; one small script (`assets/console.js`) opens dialogs, enables
//! Create when the form is valid, copies the secret and asks before risky edits.
//!
//! - [`session`]: signing in with an admin key (the browser then holds a session cookie,
//!   never the key), signing out, and every request's session and CSRF checks.
//! - [`form`]: form bodies, and errors as people read them (each invalid field beside its
//!   input).
//! - [`layout`]: the page around every page: navigation, notices, the assets.
//! - [`keys`]: the keys table, the create dialog and the copy-once secret.
//! - [`key`]: one key: settings and their edit, activate and deactivate, regenerate with a
//!   grace, revoke and delete, usage by day and the audit trail.
//! - [`account`]: the account's usage and audit log, sharing groups, presets, a quick start.
//! - [`chart`]: usage by day as an SVG bar chart, split by outcome.
//!
//! Security: pages are `no-store` (the Router's layer) and carry a Content-Security-Policy that
//! allows only what keyward serves; the secret appears only in the answer to a create or a
//! regenerate, never in a URL, a log, or a page after the copy-once dialog.

mod account;
mod chart;
mod form;
mod key;
mod keys;
mod layout;
mod session;

pub use session::PathPrefix;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use keyward_service::App;
use tower_http::set_header::SetResponseHeaderLayer;

/// Where the console lives.
pub const BASE: &str = "/console";

/// What a console page may load: only what keyward serves, no framing, forms only to itself.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'self'";

/// The console's routes, to merge into the management Router.
pub fn routes() -> Router<App> {
    Router::new()
        // Relative: under a stage prefix it stays under it.
        .route("/console", get(|| async { Redirect::to("console/keys") }))
        .route(
            "/console/sign-in",
            get(session::sign_in_page).post(session::sign_in),
        )
        .route("/console/sign-out", post(session::sign_out))
        .route("/console/keys", get(keys::list).post(keys::create))
        .route("/console/keys/{id}", get(key::show).post(key::edit))
        .route("/console/keys/{id}/active", post(key::set_active))
        .route("/console/keys/{id}/regenerate", post(key::regenerate))
        .route("/console/keys/{id}/revoke", post(key::revoke))
        .route("/console/keys/{id}/delete", post(key::delete))
        .route("/console/usage", get(account::usage))
        .route("/console/audit", get(account::audit))
        .route(
            "/console/groups",
            get(account::groups).post(account::create_group),
        )
        .route("/console/presets", get(account::presets))
        .route("/console/quick-start", get(account::quick_start))
        .route("/console/assets/console.css", get(stylesheet))
        .route("/console/assets/console.js", get(script))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../assets/console.css"),
    )
        .into_response()
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../assets/console.js"),
    )
        .into_response()
}
