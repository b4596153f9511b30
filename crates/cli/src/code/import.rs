//! `keyward import`: writes the account as spec files (sharing groups, account presets, and
//! the keys that are not revoked, with their normalised scopes) that validate as written, so
//! a team can adopt specs without recreating keys (`keyward apply --adopt` then takes them
//! over). Keys managed by Terraform and the admin key the import runs with are left out, and
//! said so.
//!
//! Files are YAML with every string double-quoted in JSON's syntax (which YAML reads the
//! same), so no name or value can change meaning on the way.

use std::fmt::Write as _;
use std::path::Path;

use chrono::Utc;
use keyward_core::group::{Group, names_of};
use keyward_core::key::{ApiKey, KeyStatus};
use keyward_core::managed::Manager;
use keyward_core::permission::Scope;
use keyward_core::plan::Live;
use keyward_core::spec::{ApiKeySpec, PresetSpec, SharingGroupSpec, Spec};
use serde_json::Value;

use crate::error::CliError;

/// The files import writes, beside each other in the output directory.
pub const FILES: [&str; 3] = ["groups.yaml", "presets.yaml", "keys.yaml"];

/// What was written, and what was left out and why.
#[derive(Debug, Default)]
pub struct Imported {
    pub written: Vec<String>,
    pub skipped: Vec<String>,
}

/// Writes `live` as spec files under `dir`, refusing to overwrite files already there.
pub fn write(
    live: &Live,
    dir: &Path,
    schema: &str,
    acting_key: Option<&str>,
) -> Result<Imported, CliError> {
    let mut imported = Imported::default();
    let groups: Vec<Spec> = live
        .groups
        .iter()
        .map(|g| {
            Spec::SharingGroup(SharingGroupSpec {
                name: g.name.clone(),
                description: non_empty(&g.description),
            })
        })
        .collect();
    let presets: Vec<Spec> = live
        .presets
        .iter()
        .map(|p| {
            Spec::Preset(PresetSpec {
                name: p.name.clone(),
                description: non_empty(&p.description),
                scopes: p.scopes.iter().map(Scope::input).collect(),
            })
        })
        .collect();
    let now = Utc::now();
    let mut keys = Vec::new();
    let mut sorted: Vec<&ApiKey> = live.keys.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    for key in sorted {
        if acting_key == Some(key.id.as_str()) {
            imported.skipped.push(format!(
                "key \"{}\" ({}): the admin key this import runs with (a key cannot manage itself)",
                key.name, key.id
            ));
            continue;
        }
        if key.managed_by == Some(Manager::Terraform) {
            imported.skipped.push(format!(
                "key \"{}\" ({}): managed by Terraform",
                key.name, key.id
            ));
            continue;
        }
        if key.status_at(now) == KeyStatus::Revoked {
            continue;
        }
        keys.push(key_spec(key, &live.groups));
    }
    std::fs::create_dir_all(dir).map_err(|source| CliError::Io {
        action: "create",
        path: dir.to_path_buf(),
        source,
    })?;
    for (file, docs) in FILES.iter().zip([groups, presets, keys]) {
        if docs.is_empty() {
            continue;
        }
        let path = dir.join(file);
        let values = docs
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<Value>, _>>()
            .map_err(|e| CliError::Input(format!("could not write the specs: {e}")))?;
        let text = yaml_documents(&values, schema);
        let mut handle = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|source| CliError::Io {
                action: "create (import never overwrites a file)",
                path: path.clone(),
                source,
            })?;
        std::io::Write::write_all(&mut handle, text.as_bytes()).map_err(|source| CliError::Io {
            action: "write",
            path: path.clone(),
            source,
        })?;
        imported.written.push(format!(
            "{} ({} document{})",
            path.display(),
            docs.len(),
            if docs.len() == 1 { "" } else { "s" }
        ));
    }
    Ok(imported)
}

/// A key as its spec: what it has now, with no sink (raising `generation` needs one).
fn key_spec(key: &ApiKey, groups: &[Group]) -> Spec {
    Spec::ApiKey(Box::new(ApiKeySpec {
        name: key.name.clone(),
        description: non_empty(&key.description),
        preset: None,
        scopes: key.scopes.iter().map(Scope::input).collect(),
        workspaces: key.workspaces.clone(),
        groups: names_of(&key.groups, groups)
            .into_iter()
            .map(str::to_owned)
            .collect(),
        allowed_cidrs: key
            .allowed_cidrs
            .ranges()
            .iter()
            .map(ToString::to_string)
            .collect(),
        rate_limit_per_minute: Some(i64::from(key.rate_limit_per_minute)),
        expires_at: key.expires_at,
        active: (key.status == KeyStatus::Inactive).then_some(false),
        generation: i64::try_from(key.generation).ok(),
        grace_period_seconds: None,
        metadata: (!key.metadata.is_empty()).then(|| key.metadata.clone()),
        secret: None,
    }))
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

/// Documents as one YAML file, with the schema comment editors read.
pub fn yaml_documents(docs: &[Value], schema: &str) -> String {
    let mut out = format!("# yaml-language-server: $schema={schema}\n");
    for (i, doc) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        block(&mut out, doc, 0);
    }
    out
}

fn block(out: &mut String, value: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = plain_key(k);
                if is_inline(v) {
                    let _ = writeln!(out, "{pad}{key}: {}", inline(v));
                } else {
                    let _ = writeln!(out, "{pad}{key}:");
                    block(out, v, indent + 2);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                if is_inline(item) {
                    let _ = writeln!(out, "{pad}- {}", inline(item));
                } else {
                    let _ = writeln!(out, "{pad}-");
                    block(out, item, indent + 2);
                }
            }
        }
        scalar => {
            let _ = writeln!(out, "{pad}{}", inline(scalar));
        }
    }
}

/// Scalars, empty collections and flat lists or objects of scalars fit on one line.
fn is_inline(value: &Value) -> bool {
    match value {
        Value::Array(items) => items
            .iter()
            .all(|i| !i.is_array() && !i.is_object() || is_flat(i)),
        Value::Object(map) => {
            map.is_empty()
                || map.values().all(|v| !v.is_array() && !v.is_object()) && map.len() <= 2
        }
        _ => true,
    }
}

fn is_flat(value: &Value) -> bool {
    matches!(value, Value::Object(m) if m.values().all(|v| !v.is_array() && !v.is_object()))
}

/// JSON text is YAML flow: strings double-quoted, numbers and booleans as they are.
fn inline(value: &Value) -> String {
    value.to_string()
}

/// A key as written: bare when it is a plain word, otherwise double-quoted.
fn plain_key(key: &str) -> String {
    let plain = !key.is_empty()
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && key.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    if plain {
        key.to_owned()
    } else {
        Value::from(key).to_string()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics
mod tests {
    use super::*;
    use crate::code::source::{Format, parse};
    use serde_json::json;

    #[test]
    fn written_yaml_reads_back_as_the_same_documents() {
        let docs = vec![
            json!({"kind": "ApiKey", "name": "ci: \"quoted\" # not a comment", "scopes": ["read", {"action": "write", "resource": "projects/*"}],
                   "metadata": {"team": "platform", "nested": {"deep": [1, 2, {"x": null}]}, "yes": "on"}, "generation": 3}),
            json!({"kind": "SharingGroup", "name": "ünïcode"}),
        ];
        let text = yaml_documents(&docs, "../schemas/keyward-spec.schema.json");
        let back = parse(Path::new("x.yaml"), &text, Format::Yaml).unwrap();
        let values: Vec<Value> = back.into_iter().map(|d| d.value).collect();
        assert_eq!(values, docs, "{text}");
    }
}
