//! The account's pages: usage by day, the audit log, sharing groups, presets, and a quick
//! start with curl examples written for the console's own address.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use keyward_core::group::CreateGroupRequest;
use keyward_service::App;
use keyward_service::usage::DayRange;
use maud::{Markup, html};
use serde::Deserialize;

use super::chart;
use super::form::Problems;
use super::key::audit_table;
use super::layout::{self, Section};
use super::session::{Signed, SignedForm};

const AUDIT_PAGE: usize = 50;

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    cursor: Option<String>,
    notice: Option<String>,
}

fn ok(markup: Markup) -> Response {
    Html(markup.into_string()).into_response()
}

pub async fn usage(State(app): State<App>, signed: Signed) -> Response {
    let today = app.now().date_naive();
    let range = DayRange::parse(None, None, today).unwrap_or(DayRange {
        from: today,
        to: today,
    });
    let usage = match app.account_usage(&signed.actor, range).await {
        Ok(u) => u,
        Err(e) => return layout::failure_page(&signed.prefix, &e),
    };
    ok(layout::page(
        &signed,
        Section::Usage,
        "Usage",
        None,
        html! {
            h1 { "Usage" }
            p class="subtitle" { "Every verification of the account's keys over the last 30 days, by outcome." }
            section class="card" { (chart::usage(&usage.days, usage.from, usage.to)) }
        },
    ))
}

pub async fn audit(
    State(app): State<App>,
    signed: Signed,
    Query(query): Query<PageQuery>,
) -> Response {
    let page = match app
        .list_audit(&signed.actor, query.cursor.as_deref(), AUDIT_PAGE)
        .await
    {
        Ok(p) => p,
        Err(e) => return layout::failure_page(&signed.prefix, &e),
    };
    ok(layout::page(
        &signed,
        Section::Audit,
        "Audit log",
        None,
        html! {
            h1 { "Audit log" }
            p class="subtitle" { "Every change to the account's keys, groups and presets: who made it, when, and from where." }
            (audit_table(&page.items, false))
            @if let Some(next) = &page.next_cursor {
                div class="pager" {
                    a class="button" href={ "audit?" (serde_urlencoded::to_string([("cursor", next.as_str())]).unwrap_or_default()) } { "Older entries →" }
                }
            }
        },
    ))
}

pub async fn groups(
    State(app): State<App>,
    signed: Signed,
    Query(query): Query<PageQuery>,
) -> Response {
    render_groups(&app, &signed, query.notice.as_deref(), None).await
}

async fn render_groups(
    app: &App,
    signed: &Signed,
    notice: Option<&str>,
    problems: Option<(Problems, String)>,
) -> Response {
    let groups = match app.list_groups(&signed.actor, None, 200).await {
        Ok(p) => p.items,
        Err(e) => return layout::failure_page(&signed.prefix, &e),
    };
    let failed = problems.is_some();
    let (problems, typed) = problems.unwrap_or_default();
    let markup = layout::page(
        signed,
        Section::Groups,
        "Sharing groups",
        notice,
        html! {
            h1 { "Sharing groups" }
            p class="subtitle" { "When a key in a group creates an agent or a project, the group's members get owner access to it." }
            @if groups.is_empty() {
                div class="card empty" { p { "No sharing groups yet." } }
            } @else {
                table {
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Description" } th scope="col" { "Id" } th scope="col" { "Created" } } }
                    tbody {
                        @for g in &groups {
                            tr { td { (g.name) } td { (g.description) } td { code { (g.id) } } td { (layout::date(g.created_at)) } }
                        }
                    }
                }
            }
            section class="card" aria-labelledby="new-group" {
                h2 id="new-group" { "New sharing group" }
                form method="post" action="groups" {
                    input type="hidden" name="_csrf" value=(signed.csrf);
                    @if let Some(m) = &problems.form { div class="notice failure" role="alert" { (m) } }
                    label for="group-name" { "Name" }
                    input id="group-name" name="name" type="text" required maxlength="128" value=(typed);
                    @for e in problems.about("name") { p class="error" { (e) } }
                    label for="group-description" { "Description" }
                    input id="group-description" name="description" type="text" maxlength="1024";
                    div class="actions" { button class="primary" type="submit" { "Create group" } }
                }
            }
        },
    );
    let status = if failed {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    (status, Html(markup.into_string())).into_response()
}

pub async fn create_group(
    State(app): State<App>,
    SignedForm(signed, form): SignedForm,
) -> Response {
    let request = CreateGroupRequest {
        name: form.get("name").map(str::to_owned),
        description: form.get("description").map(str::to_owned),
    };
    match app.create_group(&signed.actor, request).await {
        Ok(_) => signed.redirect("groups?notice=group-created"),
        Err(e) => {
            let typed = form.get("name").unwrap_or_default().to_owned();
            render_groups(&app, &signed, None, Some((Problems::from(e), typed))).await
        }
    }
}

pub async fn presets(State(app): State<App>, signed: Signed) -> Response {
    let presets = match app.list_presets(&signed.actor).await {
        Ok(p) => p,
        Err(e) => return layout::failure_page(&signed.prefix, &e),
    };
    ok(layout::page(
        &signed,
        Section::Presets,
        "Presets",
        None,
        html! {
            h1 { "Presets" }
            p class="subtitle" { "Sensible starting scopes for common uses: a key made from a preset starts with its scopes. Define your own with the API, spec files or Terraform." }
            table {
                thead { tr { th scope="col" { "Preset" } th scope="col" { "Scopes" } th scope="col" { "Description" } th scope="col" { "Kind" } } }
                tbody {
                    @for (p, builtin) in &presets {
                        tr {
                            td { code { (p.name) } }
                            td { @for s in &p.scopes { span class="chip" { (s.scope) } } }
                            td { (p.description) }
                            td { @if *builtin { "built in" } @else { "this account's" } }
                        }
                    }
                }
            }
        },
    ))
}

pub async fn quick_start(State(app): State<App>, signed: Signed) -> Response {
    let token_prefix = app.settings().prefix.to_string();
    let base = format!("{{origin}}{}", signed.prefix);
    ok(layout::page(
        &signed,
        Section::QuickStart,
        "Quick start",
        None,
        html! {
            h1 { "Quick start" }
            p class="subtitle" { "Create a key, copy it once, and send it in the X-API-Key header. The examples are written for this console's address." }
            ol {
                li { "Create a key on the " a href="keys" { "Keys" } " page, with the scopes its caller needs." }
                li { "Copy the secret from the dialog into your secrets manager: it is shown once." }
                li { "Send it with every request, as " code { "X-API-Key" } " or " code { "Authorization: Bearer" } "." }
            }
            section class="card" {
                h2 { "Check a key" }
                pre data-origin { "curl -s " (base) "/v1/verify \\\n  -H 'Content-Type: application/json' \\\n  -d '{\"key\": \"" (token_prefix) "_…\"}'" }
            }
            section class="card" {
                h2 { "List your keys (admin key)" }
                pre data-origin { "curl -s " (base) "/v1/keys -H \"X-API-Key: $KEYWARD_API_KEY\"" }
            }
            section class="card" {
                h2 { "Create a key (admin key)" }
                pre data-origin { "curl -s " (base) "/v1/keys \\\n  -H \"X-API-Key: $KEYWARD_API_KEY\" -H 'Content-Type: application/json' \\\n  -d '{\"name\": \"ci-nightly\", \"preset\": \"deploy\"}'" }
            }
            p { "The whole API is described at " a href="../v1/openapi.json" { "/v1/openapi.json" } "." }
        },
    ))
}
