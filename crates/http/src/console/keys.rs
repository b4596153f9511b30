//! The keys page: the table (filtered by status, searched by name, paged), the create dialog,
//! and the copy-once dialog that shows a new secret.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::{Duration, NaiveDate, Utc};
use keyward_core::key::{ApiKey, CreateKeyRequest, KeyStatus};
use keyward_core::permission::ScopeInput;
use keyward_core::validation::Warning;
use keyward_service::App;
use keyward_service::issuance::{CreateOutcome, Idempotency};
use keyward_store::port::KeyQuery;
use maud::{Markup, html};
use serde::Deserialize;

use super::form::{Form, Problems};
use super::layout::{self, Section};
use super::session::{Signed, SignedForm};

const PAGE_SIZE: usize = 25;

const STATUSES: [(&str, &str); 5] = [
    ("active", "Active"),
    ("inactive", "Inactive"),
    ("expired", "Expired"),
    ("revoked", "Revoked"),
    ("all", "All"),
];

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    q: Option<String>,
    cursor: Option<String>,
    notice: Option<String>,
}

pub async fn list(
    State(app): State<App>,
    signed: Signed,
    Query(query): Query<ListQuery>,
) -> Response {
    render(&app, &signed, &query, None).await
}

/// The create dialog's state when it is shown again: what was typed and what was wrong.
struct Draft<'a> {
    form: &'a Form,
    problems: Problems,
}

async fn render(
    app: &App,
    signed: &Signed,
    query: &ListQuery,
    draft: Option<Draft<'_>>,
) -> Response {
    let status_param = query.status.as_deref().unwrap_or("active");
    let status = match status_param {
        "all" => None,
        s => Some(KeyStatus::parse(s).unwrap_or(KeyStatus::Active)),
    };
    let q = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let key_query = KeyQuery {
        status,
        name_contains: q.map(str::to_owned),
        cursor: query.cursor.clone(),
        limit: PAGE_SIZE,
        ..KeyQuery::all(app.now())
    };
    let page = match app.list_keys(&signed.actor, &key_query).await {
        Ok(page) => page,
        Err(e) => return layout::failure_page(&signed.prefix, &e),
    };
    let presets = app.list_presets(&signed.actor).await.unwrap_or_default();
    let groups = app
        .list_groups(&signed.actor, None, 200)
        .await
        .map(|p| p.items)
        .unwrap_or_default();
    let now = app.now();
    let filtered = q.is_some() || status_param != "active";
    let failed = draft.is_some();
    let body = html! {
        div class="bar" {
            div class="grow" {
                h1 { "API keys" }
                p class="subtitle" { "Keys let scripts, CI jobs and services call your APIs. A key's secret is shown once, when it is created or regenerated." }
            }
            button class="primary" type="button" data-open="create-dialog" { "+ Create API key" }
        }
        form class="bar" method="get" action="keys" role="search" data-loading="loading" {
            div {
                label for="status" { "Status" }
                select id="status" name="status" {
                    @for (value, label) in STATUSES {
                        option value=(value) selected[value == status_param] { (label) }
                    }
                }
            }
            div class="grow" {
                label for="q" { "Search by name" }
                input id="q" name="q" type="search" value=(q.unwrap_or_default()) placeholder="ci-nightly";
            }
            button type="submit" { "Apply" }
        }
        div id="loading" class="loading" hidden { div class="spinner" {} "Loading keys…" }
        @if page.items.is_empty() {
            div class="card empty" {
                @if filtered {
                    p { "No keys match these filters." }
                    a href="keys" { "Show active keys" }
                } @else {
                    p { "No API keys yet. Create one to let a script, a CI job or a service call your APIs." }
                    button class="primary" type="button" data-open="create-dialog" { "Create your first key" }
                }
            }
        } @else {
            table {
                caption class="sr-only" { "API keys" }
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "Key" } th scope="col" { "Scopes" }
                    th scope="col" { "Workspaces" } th scope="col" { "Status" } th scope="col" { "Rate limit" }
                    th scope="col" { "Requests" } th scope="col" { "Last used" } th scope="col" { "Created" }
                } }
                tbody {
                    @for key in &page.items {
                        tr {
                            td { a href={ "keys/" (key.id) } { (key.name) } }
                            td { (layout::shown(key)) }
                            td { (layout::scope_chips(key)) }
                            td { (key.workspaces.join(", ")) }
                            td { (layout::status(key)) }
                            td { (key.rate_limit_per_minute) "/min" }
                            td { (key.request_count) }
                            td { (layout::ago(key.last_used_at, now)) }
                            td { (layout::date(key.created_at)) }
                        }
                    }
                }
            }
            @if let Some(next) = &page.next_cursor {
                div class="pager" {
                    a class="button" href=(next_link(status_param, q, next)) { "Next page →" }
                }
            }
        }
        (create_dialog(signed, now.date_naive(), &presets, &groups, draft))
    };
    let markup = layout::page(
        signed,
        Section::Keys,
        "API keys",
        query.notice.as_deref(),
        body,
    );
    let status = if failed {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    (status, Html(markup.into_string())).into_response()
}

fn next_link(status: &str, q: Option<&str>, cursor: &str) -> String {
    let query = serde_urlencoded::to_string([
        ("status", status),
        ("q", q.unwrap_or_default()),
        ("cursor", cursor),
    ])
    .unwrap_or_default();
    format!("keys?{query}")
}

/// A labelled field with its hint and its errors (read by screen readers with the input).
fn field(
    name: &str,
    label: &str,
    hint: Option<&str>,
    problems: &Problems,
    input: Markup,
) -> Markup {
    let errors = problems.about(name);
    html! {
        label for=(name) { (label) @if let Some(h) = hint { " " span class="hint" { (h) } } }
        (input)
        @if !errors.is_empty() {
            p class="error" id={ (name) "-error" } { (errors.join(" ")) }
        }
    }
}

fn invalid(problems: &Problems, name: &str) -> Option<&'static str> {
    (!problems.about(name).is_empty()).then_some("true")
}

fn create_dialog(
    signed: &Signed,
    today: NaiveDate,
    presets: &[(keyward_core::preset::Preset, bool)],
    groups: &[keyward_core::group::Group],
    draft: Option<Draft<'_>>,
) -> Markup {
    let empty = Form::default();
    let (form, problems, show) = match &draft {
        Some(d) => (d.form, d.problems.clone(), true),
        None => (&empty, Problems::default(), false),
    };
    let value = |name: &str| form.get(name).unwrap_or_default().to_owned();
    let chosen = form.all("groups");
    let tomorrow = (today + Duration::days(1)).to_string();
    html! {
        dialog id="create-dialog" aria-labelledby="create-title" data-show[show] {
            form method="post" action="keys" data-validate novalidate {
                input type="hidden" name="_csrf" value=(signed.csrf);
                h2 id="create-title" { "Create API key" }
                @if let Some(message) = &problems.form {
                    div class="notice failure" role="alert" { (message) }
                }
                @for message in problems.others(CREATE_FIELDS) {
                    div class="notice failure" role="alert" { (message) }
                }
                // One create per drawing of the form: a second submit (a double click, Back)
                // answers the key the first made.
                input type="hidden" name="_once" value=(keyward_core::id::new_id("create").unwrap_or_default());
                (field("name", "Name", Some("required, e.g. CI: nightly evals"), &problems, html! {
                    input id="name" name="name" type="text" required maxlength="128" value=(value("name"))
                        aria-invalid=[invalid(&problems, "name")] aria-describedby="name-error";
                }))
                (field("preset", "Preset", Some("its scopes come first"), &problems, html! {
                    select id="preset" name="preset" {
                        option value="" { "No preset" }
                        @for (p, _) in presets {
                            option value=(p.name) selected[value("preset") == p.name] { (p.name) " — " (p.description) }
                        }
                    }
                }))
                (field("scopes", "Scopes", Some("roles (agent:editor), actions (read), toggles (agents) or action:resource, separated by commas; at least one with the preset's"), &problems, html! {
                    input id="scopes" name="scopes" type="text" value=(value("scopes"))
                        aria-invalid=[invalid(&problems, "scopes")] aria-describedby="scopes-error";
                }))
                (field("workspaces", "Workspaces", Some("workspace ids, separated by commas"), &problems, html! {
                    input id="workspaces" name="workspaces" type="text" value=(value("workspaces"))
                        aria-invalid=[invalid(&problems, "workspaces")] aria-describedby="workspaces-error";
                }))
                @if !groups.is_empty() {
                    fieldset {
                        legend { "Sharing groups" }
                        @for g in groups {
                            label {
                                input type="checkbox" name="groups" value=(g.id) checked[chosen.contains(&g.id)];
                                " " (g.name)
                            }
                        }
                    }
                    @for e in problems.about("groups") { p class="error" { (e) } }
                }
                (field("allowed_cidrs", "Allowed ranges", Some("CIDR ranges, one per line; empty admits every address"), &problems, html! {
                    textarea id="allowed_cidrs" name="allowed_cidrs" rows="2"
                        aria-invalid=[invalid(&problems, "allowed_cidrs")] aria-describedby="allowed_cidrs-error" { (value("allowed_cidrs")) }
                }))
                div class="warning" data-wildcard hidden role="note" {
                    "A wildcard range (0.0.0.0/0 or ::/0) admits every address of its family."
                }
                div class="grid2" {
                    div { (field("rate_limit_per_minute", "Rate limit", Some("requests per minute, 1–600"), &problems, html! {
                        input id="rate_limit_per_minute" name="rate_limit_per_minute" type="number" min="1" max="600"
                            value=(form.get("rate_limit_per_minute").unwrap_or("60"))
                            aria-invalid=[invalid(&problems, "rate_limit_per_minute")] aria-describedby="rate_limit_per_minute-error";
                    })) }
                    div { (field("expires_at", "Expires", Some("optional, after today"), &problems, html! {
                        input id="expires_at" name="expires_at" type="date" min=(tomorrow) value=(value("expires_at"))
                            aria-invalid=[invalid(&problems, "expires_at")] aria-describedby="expires_at-error";
                    })) }
                }
                div class="actions" {
                    button type="button" data-close { "Cancel" }
                    // Enabled here so the form works without the script, which disables it until
                    // the form is valid.
                    button class="primary" type="submit" { "Create" }
                }
            }
        }
    }
}

/// The fields of the create dialog, in the API's names.
const CREATE_FIELDS: &[&str] = &[
    "name",
    "preset",
    "scopes",
    "workspaces",
    "groups",
    "allowed_cidrs",
    "rate_limit_per_minute",
    "expires_at",
];

/// The create request a form makes, or the fields that cannot be read.
fn create_request(form: &Form) -> Result<CreateKeyRequest, Problems> {
    let mut problems = Problems::default();
    let rate_limit_per_minute = match form.get("rate_limit_per_minute") {
        None => None,
        Some(text) => match text.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                problems = Problems::field(
                    "rate_limit_per_minute",
                    "a whole number of requests per minute",
                );
                None
            }
        },
    };
    let expires_at = match form.get("expires_at") {
        None => None,
        Some(text) => match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            Ok(day) => day.and_hms_opt(0, 0, 0).map(|t| t.and_utc()),
            Err(_) => {
                problems
                    .fields
                    .entry("expires_at".into())
                    .or_default()
                    .push("a date as YYYY-MM-DD".into());
                None
            }
        },
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(CreateKeyRequest {
        name: form.get("name").map(str::to_owned),
        description: None,
        preset: form.get("preset").map(str::to_owned),
        scopes: Some(
            form.list("scopes")
                .iter()
                .map(|s| ScopeInput::from_flat(s))
                .collect(),
        ),
        workspaces: Some(form.list("workspaces")),
        groups: Some(form.all("groups")),
        allowed_cidrs: Some(form.list("allowed_cidrs")),
        rate_limit_per_minute,
        expires_at,
        metadata: None,
        secrets_manager_secret_id: None,
        managed_by: None,
        generation: None,
    })
}

pub async fn create(State(app): State<App>, SignedForm(signed, form): SignedForm) -> Response {
    let outcome = match create_request(&form) {
        Ok(request) => {
            // The create is idempotent on the form's one-time token and what was typed.
            let body = serde_json::to_vec(&request).unwrap_or_default();
            let once = form
                .get("_once")
                .map(|key| Idempotency { key, body: &body });
            app.create_key(&signed.actor, request, once)
                .await
                .map_err(Problems::from)
        }
        Err(problems) => Err(problems),
    };
    match outcome {
        Ok(CreateOutcome::Created(created)) => copy_once(
            &signed,
            &created.key,
            created.secret.expose(),
            &created.warnings,
            "created",
            None,
        ),
        Ok(CreateOutcome::Replayed(key)) => signed.redirect(&format!("keys/{}", key.id)),
        Err(problems) => {
            render(
                &app,
                &signed,
                &ListQuery::default(),
                Some(Draft {
                    form: &form,
                    problems,
                }),
            )
            .await
        }
    }
}

/// The copy-once dialog: the new secret, shown in this answer only (which is `no-store`), with
/// a copy button; Done leads to the key's page, which never holds it.
pub fn copy_once(
    signed: &Signed,
    key: &ApiKey,
    secret: &str,
    warnings: &[Warning],
    notice: &str,
    old_secret_until: Option<chrono::DateTime<Utc>>,
) -> Response {
    let body = html! {
        h1 { (key.name) }
        p class="subtitle" { "Copy the secret before you continue." }
        dialog id="secret-dialog" aria-labelledby="secret-title" aria-describedby="secret-warning" data-show data-acknowledge {
            h2 id="secret-title" { "Copy your new key now" }
            p id="secret-warning" class="warning" {
                "This is the only time the full key is shown. Store it in your secrets manager: keyward keeps only its start and last four characters."
            }
            div class="secret" {
                code id="secret" data-secret { (secret) }
                button type="button" data-copy="secret" data-status="copy-status" aria-label="Copy the key" {
                    span data-icon aria-hidden="true" { "⧉" }
                }
            }
            p id="copy-status" class="hint" role="status" aria-live="polite" {}
            @for w in warnings { p class="warning" { (w.message) } }
            @if let Some(until) = old_secret_until {
                p class="hint" { "The previous secret keeps working until " (layout::time(until)) "." }
            }
            div class="actions" {
                a class="button primary" data-done href={ "keys/" (key.id) "?notice=" (notice) } { "Done" }
            }
        }
    };
    Html(layout::page(signed, Section::Keys, &key.name, None, body).into_string()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_becomes_the_apis_create_request() {
        let form = Form::parse(
            b"name=ci&preset=deploy&scopes=read%2C+read%3Aprojects%2F*&workspaces=ws_1+ws_2&groups=grp_1&allowed_cidrs=10.0.0.0%2F8%0D%0A%3A%3A%2F0&rate_limit_per_minute=120&expires_at=2030-06-30",
        );
        let request = create_request(&form).unwrap_or_default();
        assert_eq!(request.name.as_deref(), Some("ci"));
        assert_eq!(request.scopes.as_ref().map(Vec::len), Some(2));
        assert_eq!(request.workspaces, Some(vec!["ws_1".into(), "ws_2".into()]));
        assert_eq!(request.allowed_cidrs.as_ref().map(Vec::len), Some(2));
        assert_eq!(request.rate_limit_per_minute, Some(120));
        assert_eq!(
            request.expires_at.map(|t| t.to_rfc3339()),
            Some("2030-06-30T00:00:00+00:00".into())
        );
        let bad = create_request(&Form::parse(
            b"name=ci&rate_limit_per_minute=lots&expires_at=soon",
        ));
        let problems = bad.err().unwrap_or_default();
        assert!(!problems.about("rate_limit_per_minute").is_empty());
        assert!(!problems.about("expires_at").is_empty());
    }
}
