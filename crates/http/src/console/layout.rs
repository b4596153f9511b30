//! The page around every page, and the small pieces pages share: a key's status, scope chips,
//! "5m ago", and the notices that confirm what an action did.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use keyward_core::key::{ApiKey, KeyStatus};
use keyward_service::ServiceError;
use maud::{DOCTYPE, Markup, html};

use super::form::capitalised;
use super::session::Signed;

/// The sections of the console, as the navigation shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Keys,
    Usage,
    Audit,
    Groups,
    Presets,
    QuickStart,
}

/// Links are relative to the page's base (`<prefix>/console/`), so the console works under any
/// path prefix (a REST API's stage).
const SECTIONS: [(Section, &str, &str); 6] = [
    (Section::Keys, "keys", "Keys"),
    (Section::Usage, "usage", "Usage"),
    (Section::Audit, "audit", "Audit log"),
    (Section::Groups, "groups", "Sharing groups"),
    (Section::Presets, "presets", "Presets"),
    (Section::QuickStart, "quick-start", "Quick start"),
];

/// What an action did, shown once on the page it leads to. Only these fixed texts are shown
/// (the query names one), so nothing a link carries is reflected into the page.
pub fn notice_text(code: &str) -> Option<(&'static str, bool)> {
    Some(match code {
        "created" => ("Key created. Its secret was shown once.", true),
        "regenerated" => ("New secret issued. It was shown once.", true),
        "updated" => ("Key updated.", true),
        "activated" => ("Key activated: it verifies again.", true),
        "deactivated" => (
            "Key deactivated: requests with it are refused until it is activated.",
            true,
        ),
        "revoked" => ("Key revoked: it will never verify again.", true),
        "deleted" => ("Key deleted.", true),
        "group-created" => ("Sharing group created.", true),
        _ => return None,
    })
}

fn head(prefix: &str, title: &str) -> Markup {
    html! {
        meta charset="utf-8";
        base href={ (prefix) "/console/" };
        meta name="viewport" content="width=device-width, initial-scale=1";
        title { (title) " · keyward" }
        link rel="stylesheet" href="assets/console.css";
        script src="assets/console.js" defer {}
    }
}

/// A page of the signed-in console.
pub fn page(
    signed: &Signed,
    section: Section,
    title: &str,
    notice: Option<&str>,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(&signed.prefix, title)) }
            body {
                header class="top" {
                    span class="brand" { "keyward" }
                    nav aria-label="Console" {
                        @for (s, href, label) in SECTIONS {
                            @if s == section {
                                a href=(href) aria-current="page" { (label) }
                            } @else {
                                a href=(href) { (label) }
                            }
                        }
                    }
                    span class="who" { "Signed in as " code { (signed.actor.id) } }
                    form method="post" action="sign-out" {
                        input type="hidden" name="_csrf" value=(signed.csrf);
                        button type="submit" { "Sign out" }
                    }
                }
                main id="main" {
                    @if let Some((text, ok)) = notice.and_then(notice_text) {
                        div class={ "notice" @if !ok { " failure" } } role="status" { (text) }
                    }
                    (body)
                }
            }
        }
    }
}

/// A page outside the session (sign-in, refusals).
pub fn bare(prefix: &str, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(prefix, title)) }
            body { main id="main" { (body) } }
        }
    }
}

/// An error page for a failure that is not about a form (the store down, a key not found).
pub fn failure_page(prefix: &str, e: &ServiceError) -> Response {
    let status = match e {
        ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
        ServiceError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        ServiceError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        ServiceError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    let message = match e {
        ServiceError::Internal(_) => "Something went wrong on the server; try again.".to_owned(),
        other => capitalised(&other.to_string()),
    };
    (
        status,
        Html(
            bare(
                prefix,
                "Error",
                html! {
                    h1 { "That did not work" }
                    div class="notice failure" role="alert" { (message) }
                    p { a href="keys" { "Back to the keys" } }
                },
            )
            .into_string(),
        ),
    )
        .into_response()
}

/// A key's status as a badge (`Expired` shown as such).
pub fn status(key: &ApiKey) -> Markup {
    let (class, text) = match key.status {
        KeyStatus::Active => ("active", "Active"),
        KeyStatus::Inactive => ("inactive", "Inactive"),
        KeyStatus::Expired => ("expired", "Expired"),
        KeyStatus::Revoked => ("revoked", "Revoked"),
    };
    html! { span class={ "status " (class) } { (text) } }
}

/// A key's scopes as chips.
pub fn scope_chips(key: &ApiKey) -> Markup {
    html! {
        @for (i, s) in key.scopes.iter().enumerate() {
            @if i > 0 { span class="sr-only" { ", " } }
            span class="chip" { (s.scope) }
        }
    }
}

/// `start…last4`: how a secret is recognised.
pub fn shown(key: &ApiKey) -> Markup {
    html! { code { (key.start) "…" (key.last4) } }
}

/// "5m ago", "3h ago", "2d ago", or "Never".
pub fn ago(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let Some(at) = at else {
        return "Never".to_owned();
    };
    let secs = now.signed_duration_since(at).num_seconds().max(0);
    match secs {
        0..60 => "just now".to_owned(),
        60..3600 => format!("{}m ago", secs / 60),
        3600..86400 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86400),
    }
}

/// A date people read: `27 Nov 2026`.
pub fn date(at: DateTime<Utc>) -> String {
    at.format("%-d %b %Y").to_string()
}

/// A time people read: `27 Nov 2026 14:05 UTC`.
pub fn time(at: DateTime<Utc>) -> String {
    at.format("%-d %b %Y %H:%M UTC").to_string()
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    #[test]
    fn times_read_as_people_say_them() {
        let now = Utc::now();
        assert_eq!(ago(None, now), "Never");
        assert_eq!(ago(Some(now - Duration::seconds(5)), now), "just now");
        assert_eq!(ago(Some(now - Duration::minutes(5)), now), "5m ago");
        assert_eq!(ago(Some(now - Duration::hours(3)), now), "3h ago");
        assert_eq!(ago(Some(now - Duration::days(2)), now), "2d ago");
        assert!(notice_text("<script>").is_none());
    }
}
