//! `keyward_preset`: a named set of scopes keys start from (`preset = "..."`). Its scopes and
//! description change in place; its name is its identity.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use keyward_api::presets::PresetRequest;
use keyward_core::permission::{Scope, ScopeInput};
use keyward_core::preset::{Preset, Presets};
use keyward_core::spec::PresetSpec;

use super::{Planned, Resource};
use crate::api::Api;
use crate::cty::{Type, Value};
use crate::diag::{Diagnostic, Diagnostics};
use crate::schema::{Attribute, Block};

#[derive(Debug, Default)]
pub struct PresetResource;

static SCHEMA: LazyLock<Block> = LazyLock::new(|| {
    Block {
    description: "A preset of this account: the scopes a key that names it starts with. The built-in presets cannot be redefined.".into(),
    attributes: vec![
        Attribute::computed("id", Type::String, "The preset's name."),
        Attribute::required("name", Type::String, "An id (letters, digits, `-` and `_`). Changing it replaces the preset."),
        Attribute::optional("description", Type::String, "At most 1024 characters."),
        Attribute::required("scopes", Type::set_of_strings(), "Scopes as a key's (`agent:editor`, `read`, `read:projects/*`); at least one, at most 64."),
    ],
}
});

impl Resource for PresetResource {
    fn type_name(&self) -> &'static str {
        "keyward_preset"
    }

    fn schema(&self) -> &Block {
        &SCHEMA
    }

    fn validate(&self, config: &Value) -> Diagnostics {
        if !config.is_wholly_known() {
            return Vec::new();
        }
        Diagnostic::fields(spec_of(config).to_preset().err().unwrap_or_default())
    }

    fn plan(
        &self,
        _api: &Api,
        prior: &Value,
        proposed: &Value,
        _config: &Value,
    ) -> Result<Planned, Diagnostics> {
        let mut state = proposed.clone();
        let mut requires_replace = Vec::new();
        if prior.is_null() {
            state.set("id", Value::Unknown);
        } else if proposed.get("name") != prior.get("name") {
            requires_replace.push("name");
            state.set("id", Value::Unknown);
        }
        Ok(Planned {
            state,
            requires_replace,
            diagnostics: Vec::new(),
        })
    }

    fn apply(&self, api: &Api, prior: &Value, planned: &Value) -> (Value, Diagnostics) {
        let result = write(api, prior, planned);
        // After the write: a key reading presets from now on sees this one as it is.
        api.forget_presets();
        result
    }

    fn read(&self, api: &Api, state: &Value) -> Result<Value, Diagnostics> {
        let name = state.get("name").as_str().unwrap_or_default();
        Ok(find(api, name)?.map_or(Value::Null, |p| state_of(&p, state)))
    }

    fn import(&self, api: &Api, name: &str) -> Result<Value, Diagnostics> {
        if Presets::builtin().get(name).is_some() {
            return Err(vec![Diagnostic::error(
                "Cannot import a built-in preset",
                format!(
                    "'{name}' is built in: it cannot be changed, so Terraform cannot manage it. Name it in keys as it is."
                ),
            )]);
        }
        find(api, name)?
            .map(|p| state_of(&p, &SCHEMA.null_object()))
            .ok_or_else(|| {
                vec![Diagnostic::error(
                    "No such preset",
                    format!("This account has no preset named '{name}'."),
                )]
            })
    }
}

/// Creates, updates or (with `planned` null) deletes the preset.
fn write(api: &Api, prior: &Value, planned: &Value) -> (Value, Diagnostics) {
    if planned.is_null() {
        let name = prior.get("name").as_str().unwrap_or_default();
        return match api.client.delete_preset(name) {
            Ok(()) => (Value::Null, Vec::new()),
            Err(e) if e.is_not_found() => (Value::Null, Vec::new()),
            Err(e) => (
                prior.clone(),
                vec![Diagnostic::api(&format!("deleting preset {name}"), &e)],
            ),
        };
    }
    let spec = spec_of(planned);
    let kept = if prior.is_null() {
        Value::Null
    } else {
        prior.clone()
    };
    if prior.is_null() {
        // PUT would silently take over (and destroy would delete) a preset made elsewhere.
        match find(api, &spec.name) {
            Ok(None) => {}
            Ok(Some(_)) => {
                return (
                    kept,
                    vec![
                        Diagnostic::error(
                            "Preset exists",
                            format!(
                                "This account already has a preset named '{0}'. To manage it here, import it: terraform import <address> {0}",
                                spec.name
                            ),
                        )
                        .at("name"),
                    ],
                );
            }
            Err(d) => return (kept, d),
        }
    }
    let request = PresetRequest {
        description: spec.description.clone(),
        scopes: Some(spec.scopes.clone()),
    };
    match api.client.put_preset(&spec.name, &request) {
        Ok(preset) => (state_of(&preset, planned), Vec::new()),
        Err(e) => (
            kept,
            vec![Diagnostic::api(
                &format!("writing preset {}", spec.name),
                &e,
            )],
        ),
    }
}

/// The account's own preset named `name`.
fn find(api: &Api, name: &str) -> Result<Option<Preset>, Diagnostics> {
    let listing = api
        .client
        .list_presets()
        .map_err(|e| vec![Diagnostic::api("listing presets", &e)])?;
    Ok(listing
        .items
        .into_iter()
        .find(|p| !p.builtin && p.preset.name == name)
        .map(|p| p.preset))
}

fn spec_of(values: &Value) -> PresetSpec {
    PresetSpec {
        name: values.get("name").as_str().unwrap_or_default().to_owned(),
        description: values.get("description").as_str().map(str::to_owned),
        scopes: values
            .get("scopes")
            .string_list()
            .unwrap_or_default()
            .iter()
            .map(|s| ScopeInput::from_flat(s))
            .collect(),
    }
}

fn state_of(preset: &Preset, wanted: &Value) -> Value {
    let server: BTreeSet<&str> = preset.scopes.iter().map(|s| s.scope.as_str()).collect();
    let same = wanted.get("scopes").string_list().is_some_and(|w| {
        w.iter()
            .map(|t| Scope::parse(&ScopeInput::from_flat(t)).map(|s| s.scope))
            .collect::<Result<BTreeSet<String>, _>>()
            .is_ok_and(|w| w.iter().map(String::as_str).collect::<BTreeSet<_>>() == server)
    });
    let scopes = if same {
        wanted.get("scopes").clone()
    } else {
        Value::strings(preset.scopes.iter().map(|s| s.scope.clone()))
    };
    let description = match wanted.get("description") {
        Value::Null if preset.description.is_empty() => Value::Null,
        _ => Value::string(&preset.description),
    };
    Value::object([
        ("id", Value::string(&preset.name)),
        ("name", Value::string(&preset.name)),
        ("description", description),
        ("scopes", scopes),
    ])
}
