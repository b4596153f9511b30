//! One key's page: its settings and their edit (asking first when scopes or ranges change),
//! activate and deactivate, regenerate with a grace, revoke and delete behind confirmations
//! that say what breaks, its usage by day and its audit trail.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::NaiveDate;
use keyward_core::audit::AuditEntry;
use keyward_core::edit::UpdateKeyRequest;
use keyward_core::group::names_of;
use keyward_core::key::{ApiKey, KeyStatus};
use keyward_core::lifecycle::RegenerateRequest;
use keyward_core::permission::ScopeInput;
use keyward_service::App;
use keyward_service::usage::DayRange;
use maud::{Markup, html};
use serde::Deserialize;

use super::chart;
use super::form::{Form, Problems};
use super::keys::copy_once;
use super::layout::{self, Section};
use super::session::{Signed, SignedForm};

/// How many of the account's latest audit entries the key's trail is drawn from.
const AUDIT_WINDOW: usize = 500;

#[derive(Debug, Default, Deserialize)]
pub struct KeyQuery {
    notice: Option<String>,
}

pub async fn show(
    State(app): State<App>,
    signed: Signed,
    Path(id): Path<String>,
    Query(query): Query<KeyQuery>,
) -> Response {
    render(&app, &signed, &id, query.notice.as_deref(), None).await
}

/// The edit form's state when it is shown again.
struct Draft<'a> {
    /// What was typed into the edit form (`None`: another action failed; the form shows the
    /// key as it is).
    form: Option<&'a Form>,
    problems: Problems,
}

async fn render(
    app: &App,
    signed: &Signed,
    id: &str,
    notice: Option<&str>,
    draft: Option<Draft<'_>>,
) -> Response {
    let key = match app.get_key(&signed.actor, id).await {
        Ok(key) => key,
        Err(e) => return layout::failure_page(&signed.prefix, &e),
    };
    let today = app.now().date_naive();
    let range = DayRange::parse(None, None, today).unwrap_or(DayRange {
        from: today,
        to: today,
    });
    let usage = app.key_usage(&signed.actor, id, range).await.ok();
    let groups = app
        .list_groups(&signed.actor, None, 200)
        .await
        .map(|p| p.items)
        .unwrap_or_default();
    let trail: Vec<AuditEntry> = app
        .list_audit(&signed.actor, None, AUDIT_WINDOW)
        .await
        .map(|p| {
            p.items
                .into_iter()
                .filter(|e| e.target.as_deref() == Some(id))
                .collect()
        })
        .unwrap_or_default();
    let now = app.now();
    let failed = draft.is_some();
    let group_names = names_of(&key.groups, &groups);
    let live = key.status != KeyStatus::Revoked;
    let body = html! {
        div class="bar" {
            div class="grow" {
                h1 { (key.name) " " (layout::status(&key)) }
                p class="subtitle" { (layout::shown(&key)) " · " code { (key.id) } }
            }
            @if live {
                form method="post" action={ "keys/" (key.id) "/active" } {
                    input type="hidden" name="_csrf" value=(signed.csrf);
                    @if key.status == KeyStatus::Inactive {
                        input type="hidden" name="active" value="true";
                        button type="submit" { "Activate" }
                    } @else {
                        input type="hidden" name="active" value="false";
                        button type="submit" { "Deactivate" }
                    }
                }
                @if key.status != KeyStatus::Expired {
                    button type="button" data-open="regenerate-dialog" { "Regenerate" }
                }
                button type="button" class="danger" data-open="revoke-dialog" { "Revoke" }
            }
            button type="button" class="danger" data-open="delete-dialog" { "Delete" }
        }
        @if let Some(d) = &draft && let Some(message) = &d.problems.form {
            div class="notice failure" role="alert" { (message) }
        }
        @if let Some(manager) = key.managed_by {
            div class="warning" role="note" {
                "This key is managed by " (manager) " (" @if manager.as_str() == "spec" { "keyward apply" } @else { "Terraform" } "): a change made here shows there as drift, and its next apply puts the managed settings back."
            }
        }
        div class="grid2" {
            section class="card" aria-labelledby="settings-title" {
                h2 id="settings-title" { "Settings" }
                dl class="facts" {
                    dt { "Description" } dd { @if key.description.is_empty() { "—" } @else { (key.description) } }
                    dt { "Scopes" } dd { (layout::scope_chips(&key)) }
                    dt { "Workspaces" } dd { @if key.workspaces.is_empty() { "none" } @else { (key.workspaces.join(", ")) } }
                    dt { "Sharing groups" } dd { @if group_names.is_empty() { "none" } @else { (group_names.join(", ")) } }
                    dt { "Allowed ranges" } dd {
                        @if key.allowed_cidrs.is_empty() { "every address" }
                        @else { @for r in key.allowed_cidrs.ranges() { code { (r) } " " } }
                    }
                    dt { "Rate limit" } dd { (key.rate_limit_per_minute) " requests per minute" }
                    dt { "Expires" } dd { @if let Some(e) = key.expires_at { (layout::time(e)) } @else { "never" } }
                    dt { "Created" } dd { (layout::time(key.created_at)) " by " code { (key.created_by) } }
                    dt { "Last used" } dd {
                        (layout::ago(key.last_used_at, now))
                        @if let Some(ip) = key.last_used_ip { " from " code { (ip) } }
                    }
                    dt { "Requests" } dd { (key.request_count) }
                    @if let Some(previous) = &key.previous_secret {
                        dt { "Previous secret" } dd { code { (previous.start) "…" (previous.last4) } " works until " (layout::time(previous.expires_at)) }
                    }
                }
            }
            @if live {
                section class="card" aria-labelledby="edit-title" {
                    h2 id="edit-title" { "Edit" }
                    (edit_form(signed, &key, draft.as_ref()))
                }
            }
        }
        section class="card" aria-labelledby="usage-title" {
            h2 id="usage-title" { "Usage by day" }
            @match &usage {
                Some(u) => (chart::usage(&u.days, u.from, u.to)),
                None => p { "Usage could not be read just now." },
            }
        }
        section class="card" aria-labelledby="trail-title" {
            h2 id="trail-title" { "Audit trail" }
            p class="hint" { "This key's entries among the account's latest " (AUDIT_WINDOW) "; the " a href="audit" { "audit log" } " has them all." }
            (audit_table(&trail, true))
        }
        (confirm_dialogs(signed, &key))
    };
    let markup = layout::page(signed, Section::Keys, &key.name, notice, body);
    let status = if failed {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    (status, Html(markup.into_string())).into_response()
}

fn edit_form(signed: &Signed, key: &ApiKey, draft: Option<&Draft<'_>>) -> Markup {
    let problems = draft.map(|d| d.problems.clone()).unwrap_or_default();
    let typed = |name: &str, current: String| match draft.and_then(|d| d.form) {
        Some(form) => form.get(name).unwrap_or_default().to_owned(),
        None => current,
    };
    // What each field held when the page was drawn: an edit sends only what changed, so an
    // untouched field (an expiry at 14:05, the signed-in key's own scopes) is left alone.
    let was = |name: &str, current: String| match draft.and_then(|d| d.form) {
        Some(form) => form
            .get(&format!("{name}_was"))
            .unwrap_or_default()
            .to_owned(),
        None => current,
    };
    let scopes: Vec<&str> = key.scopes.iter().map(|s| s.scope.as_str()).collect();
    let ranges: Vec<String> = key
        .allowed_cidrs
        .ranges()
        .iter()
        .map(ToString::to_string)
        .collect();
    let errors = |name: &str| {
        let e = problems.about(name);
        html! { @if !e.is_empty() { p class="error" id={ (name) "-error" } { (e.join(" ")) } } }
    };
    let invalid = |name: &str| (!problems.about(name).is_empty()).then_some("true");
    let description = key.description.clone();
    let scope_text = scopes.join(", ");
    let workspace_text = key.workspaces.join(", ");
    let range_text = ranges.join("\n");
    let rate_text = key.rate_limit_per_minute.to_string();
    let expiry_text = key
        .expires_at
        .map(|e| e.date_naive().to_string())
        .unwrap_or_default();
    html! {
        form method="post" action={ "keys/" (key.id) } data-confirm-changes="scopes,allowed_cidrs" data-confirm-dialog="risky-dialog" {
            input type="hidden" name="_csrf" value=(signed.csrf);
            input type="hidden" name="version" value=(key.version);
            @for (name, current) in [("description", &description), ("scopes", &scope_text), ("workspaces", &workspace_text), ("allowed_cidrs", &range_text), ("rate_limit_per_minute", &rate_text), ("expires_at", &expiry_text)] {
                input type="hidden" name={ (name) "_was" } value=(was(name, current.clone()));
            }
            @for message in problems.others(EDIT_FIELDS) {
                div class="notice failure" role="alert" { (message) }
            }
            label for="description" { "Description" }
            input id="description" name="description" type="text" maxlength="1024" value=(typed("description", description.clone()))
                aria-invalid=[invalid("description")] aria-describedby="description-error";
            (errors("description"))
            label for="scopes" { "Scopes " span class="hint" { "separated by commas" } }
            input id="scopes" name="scopes" type="text" value=(typed("scopes", scope_text.clone()))
                aria-invalid=[invalid("scopes")] aria-describedby="scopes-error";
            (errors("scopes"))
            label for="workspaces" { "Workspaces " span class="hint" { "separated by commas" } }
            input id="workspaces" name="workspaces" type="text" value=(typed("workspaces", workspace_text.clone()))
                aria-invalid=[invalid("workspaces")] aria-describedby="workspaces-error";
            (errors("workspaces"))
            label for="allowed_cidrs" { "Allowed ranges " span class="hint" { "one per line; empty admits every address" } }
            textarea id="allowed_cidrs" name="allowed_cidrs" rows="2"
                aria-invalid=[invalid("allowed_cidrs")] aria-describedby="allowed_cidrs-error" { (typed("allowed_cidrs", range_text.clone())) }
            (errors("allowed_cidrs"))
            div class="grid2" {
                div {
                    label for="rate_limit_per_minute" { "Rate limit " span class="hint" { "per minute" } }
                    input id="rate_limit_per_minute" name="rate_limit_per_minute" type="number" min="1" max="600"
                        value=(typed("rate_limit_per_minute", rate_text.clone()))
                        aria-invalid=[invalid("rate_limit_per_minute")] aria-describedby="rate_limit_per_minute-error";
                    (errors("rate_limit_per_minute"))
                }
                div {
                    label for="expires_at" { "Expires " span class="hint" { "at 00:00 UTC of that day; empty: never" } }
                    input id="expires_at" name="expires_at" type="date"
                        value=(typed("expires_at", expiry_text.clone()))
                        aria-invalid=[invalid("expires_at")] aria-describedby="expires_at-error";
                    (errors("expires_at"))
                }
            }
            div class="actions" { button class="primary" type="submit" { "Save changes" } }
        }
        dialog id="risky-dialog" aria-labelledby="risky-title" {
            h2 id="risky-title" { "Callers may break" }
            p { "You are changing this key's scopes or allowed ranges. Services calling with it may be refused as soon as you save." }
            div class="actions" {
                button type="button" data-close { "Keep editing" }
                button type="button" class="primary" data-confirm { "Save anyway" }
            }
        }
    }
}

fn confirm_dialogs(signed: &Signed, key: &ApiKey) -> Markup {
    let action = |verb: &str| format!("keys/{}/{verb}", key.id);
    html! {
        dialog id="regenerate-dialog" aria-labelledby="regenerate-title" {
            form method="post" action=(action("regenerate")) {
                input type="hidden" name="_csrf" value=(signed.csrf);
                // A second submit (a double click, Back) is refused, not a second secret.
                input type="hidden" name="version" value=(key.version);
                h2 id="regenerate-title" { "Regenerate " (key.name) "?" }
                p { "A new secret is issued and shown once. Callers using the current secret (" (layout::shown(key)) ") must switch to the new one:" }
                fieldset {
                    legend { "The current secret stops working" }
                    label { input type="radio" name="grace_period_seconds" value="0" checked; " now" }
                    label { input type="radio" name="grace_period_seconds" value="3600"; " in 1 hour" }
                    label { input type="radio" name="grace_period_seconds" value="86400"; " in 24 hours" }
                }
                div class="actions" {
                    button type="button" data-close { "Cancel" }
                    button type="submit" class="primary" { "Regenerate" }
                }
            }
        }
        (destructive(signed, key, "revoke", "Revoke", "Every request with this key is refused from now on, by every service that checks it. Revoking is permanent: the key can never be used again, and its name becomes free."))
        (destructive(signed, key, "delete", "Delete", "The key and its record are removed: every consumer using it loses access at once, and it no longer appears in lists. Its audit entries stay."))
    }
}

/// The confirmation of a destructive action (`verb`: `revoke`, `delete`), saying what breaks.
fn destructive(
    signed: &Signed,
    key: &ApiKey,
    verb: &str,
    label: &str,
    what_breaks: &str,
) -> Markup {
    html! {
        dialog id={ (verb) "-dialog" } aria-labelledby={ (verb) "-title" } {
            form method="post" action={ "keys/" (key.id) "/" (verb) } {
                input type="hidden" name="_csrf" value=(signed.csrf);
                h2 id={ (verb) "-title" } { (label) " " (key.name) "?" }
                p { (what_breaks) }
                div class="actions" {
                    button type="button" data-close { "Cancel" }
                    button type="submit" class="danger" { (label) " key" }
                }
            }
        }
    }
}

/// Audit entries as a table (`for_key`: without the target column).
pub fn audit_table(entries: &[AuditEntry], for_key: bool) -> Markup {
    html! {
        @if entries.is_empty() {
            p class="empty" { "No entries." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "When" } th scope="col" { "What" }
                    @if !for_key { th scope="col" { "Target" } }
                    th scope="col" { "By" } th scope="col" { "From" }
                } }
                tbody {
                    @for e in entries {
                        tr {
                            td { (layout::time(e.at)) }
                            td { code { (e.action) } }
                            @if !for_key {
                                td { @if let Some(t) = &e.target {
                                    @if e.action.starts_with("key.") && e.action != "key.deleted" {
                                        a href={ "keys/" (t) } { code { (t) } }
                                    } @else { code { (t) } }
                                } }
                            }
                            td { code { (e.actor) } }
                            td { @if let Some(ip) = e.source_ip { (ip) } @else { "—" } }
                        }
                    }
                }
            }
        }
    }
}

/// The fields of the edit form, in the API's names.
const EDIT_FIELDS: &[&str] = &[
    "description",
    "scopes",
    "workspaces",
    "allowed_cidrs",
    "rate_limit_per_minute",
    "expires_at",
];

/// The edit the form asks for: only the fields whose value differs from what the page showed
/// (each travels with its `<name>_was`).
fn update_request(form: &Form) -> Result<UpdateKeyRequest, Problems> {
    let changed = |name: &str| form.get(name) != form.get(&format!("{name}_was"));
    let listed = |name: &str| {
        let now = form.list(name);
        (now != form.list(&format!("{name}_was"))).then_some(now)
    };
    let rate = match form
        .get("rate_limit_per_minute")
        .filter(|_| changed("rate_limit_per_minute"))
    {
        None => None,
        Some(t) => Some(t.parse::<i64>().map_err(|_| {
            Problems::field(
                "rate_limit_per_minute",
                "a whole number of requests per minute",
            )
        })?),
    };
    let expires_at = match form.get("expires_at") {
        _ if !changed("expires_at") => None,
        None => Some(None),
        Some(t) => Some(Some(
            NaiveDate::parse_from_str(t, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|d| d.and_utc())
                .ok_or_else(|| Problems::field("expires_at", "a date as YYYY-MM-DD"))?,
        )),
    };
    Ok(UpdateKeyRequest {
        description: changed("description")
            .then(|| form.get("description").unwrap_or_default().to_owned()),
        scopes: listed("scopes").map(|s| s.iter().map(|s| ScopeInput::from_flat(s)).collect()),
        workspaces: listed("workspaces"),
        allowed_cidrs: listed("allowed_cidrs"),
        rate_limit_per_minute: rate,
        expires_at,
        ..UpdateKeyRequest::default()
    })
}

pub async fn edit(
    State(app): State<App>,
    Path(id): Path<String>,
    SignedForm(signed, form): SignedForm,
) -> Response {
    let version = form.get("version").and_then(|v| v.parse().ok());
    let result = match update_request(&form) {
        Ok(request) => app
            .update_key(&signed.actor, &id, version, request)
            .await
            .map_err(Problems::from),
        Err(p) => Err(p),
    };
    match result {
        Ok(_) => signed.redirect(&format!("keys/{id}?notice=updated")),
        Err(problems) => {
            render(
                &app,
                &signed,
                &id,
                None,
                Some(Draft {
                    form: Some(&form),
                    problems,
                }),
            )
            .await
        }
    }
}

/// Renders the key's page again with what went wrong, or follows `ok` after a success.
async fn after(
    app: &App,
    signed: &Signed,
    id: &str,
    result: Result<(), keyward_service::ServiceError>,
    ok: &str,
) -> Response {
    match result {
        Ok(()) => signed.redirect(ok),
        Err(e) => {
            render(
                app,
                signed,
                id,
                None,
                Some(Draft {
                    form: None,
                    problems: Problems::from(e),
                }),
            )
            .await
        }
    }
}

pub async fn set_active(
    State(app): State<App>,
    Path(id): Path<String>,
    SignedForm(signed, form): SignedForm,
) -> Response {
    let active = form.get("active") == Some("true");
    let request = UpdateKeyRequest {
        active: Some(active),
        ..UpdateKeyRequest::default()
    };
    let result = app
        .update_key(&signed.actor, &id, None, request)
        .await
        .map(|_| ());
    let notice = if active { "activated" } else { "deactivated" };
    after(
        &app,
        &signed,
        &id,
        result,
        &format!("keys/{id}?notice={notice}"),
    )
    .await
}

pub async fn regenerate(
    State(app): State<App>,
    Path(id): Path<String>,
    SignedForm(signed, form): SignedForm,
) -> Response {
    let request = RegenerateRequest {
        grace_period_seconds: form
            .get("grace_period_seconds")
            .and_then(|g| g.parse().ok()),
        ..RegenerateRequest::default()
    };
    let version = form.get("version").and_then(|v| v.parse().ok());
    match app
        .regenerate_key(&signed.actor, &id, version, &request)
        .await
    {
        Ok(created) => {
            let until = created.key.previous_secret.as_ref().map(|p| p.expires_at);
            copy_once(
                &signed,
                &created.key,
                created.secret.expose(),
                &created.warnings,
                "regenerated",
                until,
            )
        }
        Err(e) => after(&app, &signed, &id, Err(e), "").await,
    }
}

pub async fn revoke(
    State(app): State<App>,
    Path(id): Path<String>,
    SignedForm(signed, _): SignedForm,
) -> Response {
    let result = app.revoke_key(&signed.actor, &id, None).await.map(|_| ());
    after(
        &app,
        &signed,
        &id,
        result,
        &format!("keys/{id}?notice=revoked"),
    )
    .await
}

pub async fn delete(
    State(app): State<App>,
    Path(id): Path<String>,
    SignedForm(signed, _): SignedForm,
) -> Response {
    let result = app.delete_key(&signed.actor, &id, None).await;
    after(&app, &signed, &id, result, "keys?notice=deleted&status=all").await
}
