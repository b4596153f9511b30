//! `keyward plan`: the specs against the live records, printed in the manner of `terraform
//! plan` (or as JSON), and optionally saved for `keyward apply --plan`. A saved plan holds
//! no secret: only what will change, and the version each key was planned against.

use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Utc};
use keyward_client::{Client, KeyFilter, StatusFilter};
use keyward_core::plan::{self, Action, FieldChange, Live, Options, Plan};
use keyward_core::spec::{ApiKeySpec, Spec};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::specs::Checked;
use crate::error::CliError;

/// Keys per page when reading the account (the API's largest page).
const PAGE: u32 = 200;

/// What the server has now: the keys (revoked ones apart), the groups, the account presets.
pub fn live(client: &Client) -> Result<Live, CliError> {
    let keys = client.all_keys(&KeyFilter {
        status: Some(StatusFilter::All),
        limit: Some(PAGE),
        ..KeyFilter::default()
    })?;
    let groups = client.list_groups()?;
    let presets = client.account_presets()?;
    let (revoked, keys) = keys
        .into_iter()
        .partition(|k| k.status == keyward_core::key::KeyStatus::Revoked);
    Ok(Live {
        keys,
        groups,
        presets,
        revoked,
    })
}

/// Plans `checked` against `live`, or says every reason it cannot. The admin key `client`
/// runs with is never changed (a key cannot change itself) nor pruned.
pub fn make(
    client: &Client,
    checked: &[Checked],
    live: &Live,
    prune: bool,
    adopt: bool,
) -> Result<Plan, CliError> {
    let specs: Vec<&Spec> = checked.iter().map(|c| &c.spec).collect();
    let options = Options {
        prune,
        adopt,
        now: Utc::now(),
        acting_key: live
            .keys
            .iter()
            .find(|k| client.authenticates_as(k))
            .map(|k| k.id.clone()),
    };
    plan::plan(&specs, live, options).map_err(|refusals| {
        let lines: Vec<String> = refusals
            .iter()
            .map(|r| format!("  {} '{}': {}", r.kind, r.name, r.message))
            .collect();
        CliError::Input(format!(
            "the specs cannot be planned ({} problem{}):\n{}",
            refusals.len(),
            if refusals.len() == 1 { "" } else { "s" },
            lines.join("\n")
        ))
    })
}

/// A plan saved by `keyward plan --out`, for `keyward apply --plan`.
#[derive(Debug, Serialize, Deserialize)]
pub struct SavedPlan {
    /// Always [`SavedPlan::FORMAT`].
    pub format: String,
    /// The management API it was planned against; apply refuses another.
    pub endpoint: String,
    pub created_at: DateTime<Utc>,
    pub prune: bool,
    pub adopt: bool,
    pub plan: Plan,
}

impl SavedPlan {
    pub const FORMAT: &str = "keyward-plan/1";

    pub fn write(&self, path: &Path) -> Result<(), CliError> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| CliError::Input(format!("could not write the plan: {e}")))?;
        std::fs::write(path, text + "\n").map_err(|source| CliError::Io {
            action: "write the plan to",
            path: path.to_path_buf(),
            source,
        })
    }

    pub fn read(path: &Path) -> Result<Self, CliError> {
        let text = std::fs::read_to_string(path).map_err(|source| CliError::Io {
            action: "read the plan",
            path: path.to_path_buf(),
            source,
        })?;
        let saved: SavedPlan = serde_json::from_str(&text).map_err(|e| {
            CliError::Input(format!("{} is not a keyward plan: {e}", path.display()))
        })?;
        if saved.format != Self::FORMAT {
            return Err(CliError::Input(format!(
                "{} is a plan of format '{}'; this keyward reads '{}'",
                path.display(),
                saved.format,
                Self::FORMAT
            )));
        }
        Ok(saved)
    }
}

/// The plan as JSON, for machines: the actions, drift and counts.
pub fn to_json(plan: &Plan) -> Value {
    serde_json::json!({
        "format": SavedPlan::FORMAT,
        "changes": plan.has_changes(),
        "summary": plan.summary(),
        "actions": plan.actions,
        "drift": plan.drift,
        "notes": plan.notes,
    })
}

/// The plan for people, in the manner of `terraform plan`.
pub fn render(plan: &Plan, out: &mut dyn Write) -> std::io::Result<()> {
    if plan.has_changes() {
        writeln!(out, "keyward will perform these actions:\n")?;
    }
    for action in &plan.actions {
        match action {
            Action::CreateGroup { name, description } => {
                writeln!(out, "  + create sharing group \"{name}\"")?;
                if !description.is_empty() {
                    writeln!(
                        out,
                        "      description = {}",
                        show(&Value::from(description.as_str()))
                    )?;
                }
            }
            Action::PutPreset {
                name,
                exists,
                changes,
                scopes,
                ..
            } => {
                if *exists {
                    writeln!(out, "  ~ update preset \"{name}\"")?;
                    render_changes(changes, out)?;
                } else {
                    writeln!(out, "  + create preset \"{name}\"")?;
                    writeln!(out, "      scopes = {}", show(&serde_json::json!(scopes)))?;
                }
            }
            Action::CreateKey { spec, secret, .. } => {
                writeln!(out, "  + create key \"{}\"", spec.name)?;
                for (field, value) in shown_fields(spec) {
                    writeln!(out, "      {field:<22} = {}", show(&value))?;
                }
                writeln!(out, "      {:<22} -> {}", "secret", secret.describe())?;
            }
            Action::UpdateKey {
                id,
                name,
                changes,
                adopt,
                ..
            } => {
                let what = if *adopt { "adopt" } else { "update" };
                writeln!(out, "  ~ {what} key \"{name}\" ({id}) in place")?;
                if *adopt {
                    writeln!(out, "      + managed_by: null -> \"spec\"")?;
                }
                render_changes(changes, out)?;
            }
            Action::RegenerateKey {
                id,
                name,
                from_generation,
                generation,
                grace_period_seconds,
                secret,
                ..
            } => {
                writeln!(out, "  ± regenerate key \"{name}\" ({id})")?;
                writeln!(out, "      ~ generation: {from_generation} -> {generation}")?;
                let grace = if *grace_period_seconds > 0 {
                    format!("verifies for {grace_period_seconds} s more")
                } else {
                    "stops at once".to_owned()
                };
                writeln!(
                    out,
                    "      the old secret {grace}; the new one -> {}",
                    secret.describe()
                )?;
            }
            Action::RevokeKey { id, name, .. } => {
                writeln!(
                    out,
                    "  - revoke key \"{name}\" ({id}): no spec names it (--prune)"
                )?;
            }
        }
    }
    for note in &plan.notes {
        writeln!(out, "\nNote: {note}")?;
    }
    if !plan.drift.is_empty() {
        writeln!(out, "\nDrift: changed outside git since the last apply:")?;
        for d in &plan.drift {
            writeln!(out, "  ! key \"{}\" ({}): {}", d.name, d.id, d.note)?;
        }
    }
    let s = plan.summary();
    if plan.has_changes() {
        writeln!(
            out,
            "\nPlan: {} to create, {} to update, {} to regenerate, {} to revoke; {} unchanged.",
            s.create, s.update, s.regenerate, s.revoke, s.unchanged
        )
    } else {
        writeln!(
            out,
            "No changes. The server matches the specs ({} unchanged).",
            s.unchanged
        )
    }
}

/// The settings a new key's plan line shows.
fn shown_fields(spec: &ApiKeySpec) -> Vec<(&'static str, Value)> {
    let mut fields = Vec::new();
    if let Some(p) = &spec.preset {
        fields.push(("preset", Value::from(p.as_str())));
    }
    if !spec.scopes.is_empty() {
        fields.push(("scopes", json(&spec.scopes)));
    }
    if !spec.workspaces.is_empty() {
        fields.push(("workspaces", json(&spec.workspaces)));
    }
    if !spec.groups.is_empty() {
        fields.push(("groups", json(&spec.groups)));
    }
    if !spec.allowed_cidrs.is_empty() {
        fields.push(("allowed_cidrs", json(&spec.allowed_cidrs)));
    }
    if let Some(r) = spec.rate_limit_per_minute {
        fields.push(("rate_limit_per_minute", Value::from(r)));
    }
    if let Some(e) = spec.expires_at {
        fields.push(("expires_at", Value::from(e.to_rfc3339())));
    }
    if spec.active == Some(false) {
        fields.push(("active", Value::from(false)));
    }
    if let Some(m) = spec.metadata.as_ref().filter(|m| !m.is_empty()) {
        fields.push(("metadata", Value::Object(m.clone())));
    }
    fields
}

/// A change in place, a field a line: `~ field: old -> new`.
fn render_changes(changes: &[FieldChange], out: &mut dyn Write) -> std::io::Result<()> {
    for c in changes {
        writeln!(
            out,
            "      ~ {}: {} -> {}",
            c.field,
            show(&c.old),
            show(&c.new)
        )?;
    }
    Ok(())
}

/// Values as JSON, on one line.
fn show(value: &Value) -> String {
    match value {
        Value::Null => "(none)".to_owned(),
        other => other.to_string(),
    }
}

fn json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or_default()
}
