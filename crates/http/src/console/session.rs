//! Signing in and out, and what every console request checks: the session cookie (opened with
//! the core's `Sessions`), the key it names (judged by the service as an admin call: a key
//! without `admin` on `keys/**`, revoked or deactivated, is refused at once), and on every
//! change the form's CSRF token.
//!
//! Cookies are `HttpOnly`, `SameSite=Strict`, scoped to the console's path, and `Secure` when
//! the page was served over HTTPS (API Gateway says so in `X-Forwarded-Proto`). The session
//! cookie holds the sealed session, never the key.

use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
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

/// What the edge puts in front of every path, set as a request extension by the issuer behind
/// a REST API stage (`/prod`); empty under `keyward serve` and HTTP APIs' default stage. Pages
/// and redirects are written under it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathPrefix(pub String);

/// One request to the console: the caller's address, the path prefix, the headers.
#[derive(Debug)]
pub struct Visit {
    pub ip: Option<IpAddr>,
    pub prefix: String,
    pub headers: HeaderMap,
}

impl<S: Send + Sync> FromRequestParts<S> for Visit {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ClientIp(ip) = ClientIp::from_request_parts(parts, state).await?;
        Ok(Visit {
            ip,
            prefix: parts
                .extensions
                .get::<PathPrefix>()
                .map(|p| p.0.clone())
                .unwrap_or_default(),
            headers: parts.headers.clone(),
        })
    }
}

impl Visit {
    /// The cookie `name`'s value.
    fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// Whether the page was served over HTTPS (directly, or behind API Gateway).
    fn secure(&self) -> bool {
        self.headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
    }

    fn set_cookie(&self, name: &str, value: &str, max_age: i64) -> HeaderValue {
        let secure = if self.secure() { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{name}={value}; Path={}/console; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
            self.prefix
        ))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    pub fn redirect(&self, path: &str) -> Response {
        redirect(&self.prefix, path)
    }
}

/// A redirect to a console path (`keys?notice=...`), under the path prefix.
fn redirect(prefix: &str, path: &str) -> Response {
    Redirect::to(&format!("{prefix}/console/{path}")).into_response()
}

/// A signed-in request: who, and what its pages and forms need.
#[derive(Debug)]
pub struct Signed {
    pub actor: Actor,
    /// The CSRF token every form of the page carries.
    pub csrf: String,
    /// The path prefix the pages' base is written under.
    pub prefix: String,
}

impl Signed {
    pub fn redirect(&self, path: &str) -> Response {
        redirect(&self.prefix, path)
    }
}

/// A page handler's signed-in request; anyone else is answered with the sign-in page.
impl FromRequestParts<App> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let Ok(visit) = Visit::from_request_parts(parts, app).await;
        signed(app, &visit).await
    }
}

/// A form post of a signed-in request whose CSRF token is the session's; anything else is
/// answered with the sign-in page or a 403.
#[derive(Debug)]
pub struct SignedForm(pub Signed, pub Form);

impl FromRequest<App> for SignedForm {
    type Rejection = Response;

    async fn from_request(request: Request, app: &App) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let Ok(visit) = Visit::from_request_parts(&mut parts, app).await;
        let body = Bytes::from_request(Request::from_parts(parts, body), app)
            .await
            .map_err(IntoResponse::into_response)?;
        let (signed, form) = signed_form(app, &visit, &body).await?;
        Ok(SignedForm(signed, form))
    }
}

/// The signed-in request, or the answer to give instead: the sign-in page for no session or
/// one that ended, an error page when the service cannot answer.
async fn signed(app: &App, visit: &Visit) -> Result<Signed, Response> {
    let sessions = app.sessions();
    let Some(value) = visit.cookie(SESSION_COOKIE) else {
        return Err(visit.redirect("sign-in"));
    };
    let Some(session) = sessions.open(value, app.now()) else {
        return Err(visit.redirect("sign-in?reason=expired"));
    };
    match app.authenticate_session(&session, visit.ip).await {
        Ok(actor) => Ok(Signed {
            actor,
            csrf: sessions.csrf(value),
            prefix: visit.prefix.clone(),
        }),
        Err(ServiceError::Unauthenticated(_) | ServiceError::Forbidden(_)) => {
            Err(visit.redirect("sign-in?reason=refused"))
        }
        Err(e) => Err(layout::failure_page(&visit.prefix, &e)),
    }
}

/// A signed-in form post whose CSRF token is the session's, or the answer to give instead (a
/// 403 page for a form that did not come from this console).
async fn signed_form(app: &App, visit: &Visit, body: &Bytes) -> Result<(Signed, Form), Response> {
    let signed = signed(app, visit).await?;
    let form = Form::parse(body);
    let session = visit.cookie(SESSION_COOKIE).unwrap_or_default();
    let token = form.get("_csrf").unwrap_or_default();
    if app.sessions().csrf_ok(session, token) {
        Ok((signed, form))
    } else {
        Err(forbidden_form(&visit.prefix))
    }
}

fn forbidden_form(prefix: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        Html(
            layout::bare(
                prefix,
                "Refused",
                html! {
                    h1 { "This form was refused" }
                    p { "It did not come from a page of this console (its CSRF token is missing or wrong), so nothing was changed." }
                    p { a href="keys" { "Back to the console" } }
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
    visit: Visit,
    Query(query): Query<SignInQuery>,
) -> Response {
    let message = match query.reason.as_deref() {
        Some("expired") => Some("Your session ended. Sign in again."),
        Some("refused") => Some("Your key may no longer manage keys. Sign in with an admin key."),
        Some("signed-out") => Some("You are signed out."),
        _ => None,
    };
    sign_in_form(&app, &visit, message, StatusCode::OK)
}

fn sign_in_form(app: &App, visit: &Visit, message: Option<&str>, status: StatusCode) -> Response {
    let nonce = keyward_core::id::new_id("signin").unwrap_or_default();
    let token = app.sessions().csrf(&nonce);
    let page = layout::bare(
        &visit.prefix,
        "Sign in",
        html! {
            div class="signin card" {
                h1 { "keyward console" }
                p class="subtitle" { "Sign in with an admin key (one with admin on keys/**). The browser keeps a session for an hour, never the key." }
                @if let Some(m) = message {
                    div class="notice failure" role="alert" { (m) }
                }
                form method="post" action="sign-in" {
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
            visit.set_cookie(SIGN_IN_COOKIE, &nonce, 600),
        )],
        Html(page.into_string()),
    )
        .into_response()
}

/// Signs in: the key is judged as an admin call; the browser gets a session, never the key.
pub async fn sign_in(State(app): State<App>, visit: Visit, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let nonce = visit.cookie(SIGN_IN_COOKIE).unwrap_or_default();
    if nonce.is_empty()
        || !app
            .sessions()
            .csrf_ok(nonce, form.get("_csrf").unwrap_or_default())
    {
        return forbidden_form(&visit.prefix);
    }
    match app.sign_in(form.get("api_key"), visit.ip).await {
        Ok(session) => {
            let sealed = app.sessions().seal(&session);
            (
                // Appended: a second `Set-Cookie` must not replace the first.
                AppendHeaders([
                    (
                        header::SET_COOKIE,
                        visit.set_cookie(SESSION_COOKIE, &sealed, SESSION_TTL_SECS),
                    ),
                    (header::SET_COOKIE, visit.set_cookie(SIGN_IN_COOKIE, "", 0)),
                ]),
                visit.redirect("keys"),
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
            sign_in_form(&app, &visit, Some(&message), StatusCode::UNAUTHORIZED)
        }
    }
}

/// Signs out: the session cookie is dropped. Only the form's CSRF token is checked (not the
/// key, nor the management limit), so signing out works even when the key may no longer act.
pub async fn sign_out(State(app): State<App>, visit: Visit, body: Bytes) -> Response {
    let session = visit.cookie(SESSION_COOKIE).unwrap_or_default();
    let token = Form::parse(&body);
    if !app
        .sessions()
        .csrf_ok(session, token.get("_csrf").unwrap_or_default())
    {
        return forbidden_form(&visit.prefix);
    }
    (
        [(header::SET_COOKIE, visit.set_cookie(SESSION_COOKIE, "", 0))],
        visit.redirect("sign-in?reason=signed-out"),
    )
        .into_response()
}
