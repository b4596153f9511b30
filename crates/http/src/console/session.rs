//! Signing in and out, and what every console request checks: the session cookie (opened with
//! the core's [`Sessions`]), the key it names (judged by the service as an admin call: a key
//! without `admin` on `keys/**`, revoked or deactivated, is refused at once), and on every
//! change the form's CSRF token.
//!
//! Cookies are `HttpOnly`, `SameSite=Strict`, `Path=/console`, and `Secure` when the page was
//! served over HTTPS (API Gateway says so in `X-Forwarded-Proto`). The session cookie holds the
//! sealed session, never the key.

use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{AppendHeaders, Html, IntoResponse, Redirect, Response};
use keyward_core::session::SESSION_TTL_SECS;
use keyward_service::{App, ServiceError, app::Actor};
use maud::html;

use super::form::{Form, capitalised};
use super::layout;
use crate::extract::ClientIp;

const SESSION_COOKIE: &str = "keyward_session";
/// The sign-in form's own CSRF nonce (there is no session yet to bind its token to).
const SIGN_IN_COOKIE: &str = "keyward_sign_in";

/// A signed-in request: who, and what its forms must carry.
#[derive(Debug)]
pub struct Signed {
    pub actor: Actor,
    /// The CSRF token every form of the page carries.
    pub csrf: String,
}

/// The value of cookie `name`.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether the page was served over HTTPS (directly, or behind API Gateway).
fn secure(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

fn set_cookie(headers: &HeaderMap, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = if secure(headers) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn to_sign_in(reason: Option<&str>) -> Response {
    let to = match reason {
        Some(r) => format!("/console/sign-in?reason={r}"),
        None => "/console/sign-in".to_owned(),
    };
    Redirect::to(&to).into_response()
}

/// The signed-in request, or the answer to give instead: the sign-in page for no session or
/// one that ended, an error page when the service cannot answer.
pub async fn signed(
    app: &App,
    headers: &HeaderMap,
    ip: Option<IpAddr>,
) -> Result<Signed, Response> {
    let sessions = app.sessions();
    let Some(value) = cookie(headers, SESSION_COOKIE) else {
        return Err(to_sign_in(None));
    };
    let Some(session) = sessions.open(value, app.now()) else {
        return Err(to_sign_in(Some("expired")));
    };
    match app.authenticate_session(&session, ip).await {
        Ok(actor) => Ok(Signed {
            actor,
            csrf: sessions.csrf(value),
        }),
        Err(ServiceError::Unauthenticated(_) | ServiceError::Forbidden(_)) => {
            Err(to_sign_in(Some("refused")))
        }
        Err(e) => Err(layout::failure_page(&e)),
    }
}

/// A signed-in form post whose CSRF token is the session's, or the answer to give instead (a
/// 403 page for a form that did not come from this console).
pub async fn signed_form(
    app: &App,
    headers: &HeaderMap,
    ip: Option<IpAddr>,
    body: &Bytes,
) -> Result<(Signed, Form), Response> {
    let signed = signed(app, headers, ip).await?;
    let form = Form::parse(body);
    let session = cookie(headers, SESSION_COOKIE).unwrap_or_default();
    let token = form.get("_csrf").unwrap_or_default();
    if app.sessions().csrf_ok(session, token) {
        Ok((signed, form))
    } else {
        Err(forbidden_form())
    }
}

fn forbidden_form() -> Response {
    (
        StatusCode::FORBIDDEN,
        Html(
            layout::bare(
                "Refused",
                html! {
                    h1 { "This form was refused" }
                    p { "It did not come from a page of this console (its CSRF token is missing or wrong), so nothing was changed." }
                    p { a href="/console/keys" { "Back to the console" } }
                },
            )
            .into_string(),
        ),
    )
        .into_response()
}

#[derive(Debug, serde::Deserialize)]
pub struct SignInQuery {
    reason: Option<String>,
}

/// The sign-in page: paste an admin key once.
pub async fn sign_in_page(
    State(app): State<App>,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<SignInQuery>,
) -> Response {
    let message = match query.reason.as_deref() {
        Some("expired") => Some("Your session ended. Sign in again."),
        Some("refused") => Some("Your key may no longer manage keys. Sign in with an admin key."),
        Some("signed-out") => Some("You are signed out."),
        _ => None,
    };
    sign_in_form(&app, &headers, message, StatusCode::OK)
}

fn sign_in_form(
    app: &App,
    headers: &HeaderMap,
    message: Option<&str>,
    status: StatusCode,
) -> Response {
    let nonce = keyward_core::id::new_id("signin").unwrap_or_default();
    let token = app.sessions().csrf(&nonce);
    let page = layout::bare(
        "Sign in",
        html! {
            div class="signin card" {
                h1 { "keyward console" }
                p class="subtitle" { "Sign in with an admin key (one with admin on keys/**). The browser keeps a session for an hour, never the key." }
                @if let Some(m) = message {
                    div class="notice failure" role="alert" { (m) }
                }
                form method="post" action="/console/sign-in" {
                    input type="hidden" name="_csrf" value=(token);
                    label for="api_key" { "Admin key" }
                    input id="api_key" name="api_key" type="password" autocomplete="off" required
                        spellcheck="false" placeholder="kw_live_…";
                    div class="actions" { button class="primary" type="submit" { "Sign in" } }
                }
            }
        },
    );
    (
        status,
        [(
            header::SET_COOKIE,
            set_cookie(headers, SIGN_IN_COOKIE, &nonce, 600),
        )],
        Html(page.into_string()),
    )
        .into_response()
}

/// Signs in: the key is judged as an admin call; the browser gets a session, never the key.
pub async fn sign_in(
    State(app): State<App>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    let nonce = cookie(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    if nonce.is_empty()
        || !app
            .sessions()
            .csrf_ok(nonce, form.get("_csrf").unwrap_or_default())
    {
        return forbidden_form();
    }
    match app.sign_in(form.get("api_key"), ip).await {
        Ok(session) => {
            let sealed = app.sessions().seal(&session);
            (
                // Appended: a second `Set-Cookie` must not replace the first.
                AppendHeaders([
                    (
                        header::SET_COOKIE,
                        set_cookie(&headers, SESSION_COOKIE, &sealed, SESSION_TTL_SECS),
                    ),
                    (
                        header::SET_COOKIE,
                        set_cookie(&headers, SIGN_IN_COOKIE, "", 0),
                    ),
                ]),
                Redirect::to("/console/keys"),
            )
                .into_response()
        }
        Err(e) => {
            let message = match &e {
                ServiceError::Unauthenticated(_) => {
                    "That is not a valid key of this deployment.".to_owned()
                }
                ServiceError::Forbidden(_) => {
                    "That key may not manage keys: the console needs admin on keys/**.".to_owned()
                }
                other => capitalised(&other.to_string()),
            };
            sign_in_form(&app, &headers, Some(&message), StatusCode::UNAUTHORIZED)
        }
    }
}

/// Signs out: the session cookie is dropped.
pub async fn sign_out(
    State(app): State<App>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refused) = signed_form(&app, &headers, ip, &body).await {
        return refused;
    }
    (
        [(
            header::SET_COOKIE,
            set_cookie(&headers, SESSION_COOKIE, "", 0),
        )],
        Redirect::to("/console/sign-in?reason=signed-out"),
    )
        .into_response()
}
