//! `keyward_sharing_group`: a sharing group keys name. The API cannot rename or re-describe a
//! group, so either change replaces it.

use std::sync::LazyLock;

use keyward_core::group::{CreateGroupRequest, Group};

use super::{Planned, Resource};
use crate::api::Api;
use crate::cty::{Type, Value};
use crate::diag::{Diagnostic, Diagnostics};
use crate::schema::{Attribute, Block};

#[derive(Debug, Default)]
pub struct SharingGroupResource;

static SCHEMA: LazyLock<Block> = LazyLock::new(|| Block {
    description:
        "A sharing group: keys in it share what the group is granted. Keys name it by `name`."
            .into(),
    attributes: vec![
        Attribute::computed("id", Type::String, "The group's id."),
        Attribute::required(
            "name",
            Type::String,
            "Unique per account (after NFKC case folding), 1 to 128 characters of one script. Changing it replaces the group.",
        ),
        Attribute::optional(
            "description",
            Type::String,
            "At most 1024 characters. Changing it replaces the group.",
        ),
        Attribute::computed(
            "created_at",
            Type::String,
            "When the group was created (RFC 3339).",
        ),
    ],
});

impl Resource for SharingGroupResource {
    fn type_name(&self) -> &'static str {
        "keyward_sharing_group"
    }

    fn schema(&self) -> &Block {
        &SCHEMA
    }

    fn validate(&self, config: &Value) -> Diagnostics {
        let mut errors = Vec::new();
        if let Some(name) = config.get("name").as_str() {
            errors.extend(
                keyward_core::name::validate_name(Some(name))
                    .err()
                    .unwrap_or_default(),
            );
        }
        if let Some(description) = config.get("description").as_str() {
            errors.extend(
                keyward_core::key::validate_description(Some(description))
                    .err()
                    .unwrap_or_default(),
            );
        }
        Diagnostic::fields(errors)
    }

    fn plan(
        &self,
        _api: &Api,
        prior: &Value,
        proposed: &Value,
        _config: &Value,
    ) -> Result<Planned, Diagnostics> {
        let mut state = proposed.clone();
        if prior.is_null() {
            state.set("id", Value::Unknown);
            state.set("created_at", Value::Unknown);
            return Ok(Planned {
                state,
                ..Planned::default()
            });
        }
        let requires_replace: Vec<&'static str> = ["name", "description"]
            .into_iter()
            .filter(|a| proposed.get(a) != prior.get(a))
            .collect();
        let mut diagnostics = Vec::new();
        if !requires_replace.is_empty() {
            state.set("id", Value::Unknown);
            state.set("created_at", Value::Unknown);
            diagnostics.push(Diagnostic::warning(
                "Replacing a sharing group",
                format!(
                    "The API cannot rename or re-describe a group, so {} is deleted and made again: the keys in it leave it, and keys that name it join the new group at their next apply.",
                    prior.get("name").as_str().unwrap_or_default()
                ),
            ));
        }
        Ok(Planned {
            state,
            requires_replace,
            diagnostics,
        })
    }

    fn apply(&self, api: &Api, prior: &Value, planned: &Value) -> (Value, Diagnostics) {
        if planned.is_null() {
            let id = prior.get("id").as_str().unwrap_or_default();
            return match api.client.delete_group(id) {
                Ok(()) => (Value::Null, Vec::new()),
                Err(e) if e.is_not_found() => (Value::Null, Vec::new()),
                Err(e) => (
                    prior.clone(),
                    vec![Diagnostic::api(&format!("deleting sharing group {id}"), &e)],
                ),
            };
        }
        // Only a create reaches here: every change replaces the group.
        let request = CreateGroupRequest {
            name: planned.get("name").as_str().map(str::to_owned),
            description: planned.get("description").as_str().map(str::to_owned),
        };
        match api.client.create_group(&request) {
            Ok(group) => (state_of(&group, planned), Vec::new()),
            Err(e) => (
                Value::Null,
                vec![Diagnostic::api(
                    &format!(
                        "creating sharing group {}",
                        request.name.unwrap_or_default()
                    ),
                    &e,
                )],
            ),
        }
    }

    fn read(&self, api: &Api, state: &Value) -> Result<Value, Diagnostics> {
        let id = state.get("id").as_str().unwrap_or_default();
        match api.client.get_group(id) {
            Ok(group) => Ok(state_of(&group, state)),
            Err(e) if e.is_not_found() => Ok(Value::Null),
            Err(e) => Err(vec![Diagnostic::api(
                &format!("reading sharing group {id}"),
                &e,
            )]),
        }
    }

    fn import(&self, api: &Api, id: &str) -> Result<Value, Diagnostics> {
        api.client
            .get_group(id)
            .map(|group| state_of(&group, &SCHEMA.null_object()))
            .map_err(|e| vec![Diagnostic::api(&format!("reading sharing group {id}"), &e)])
    }
}

fn state_of(group: &Group, wanted: &Value) -> Value {
    let description = match wanted.get("description") {
        Value::Null if group.description.is_empty() => Value::Null,
        _ => Value::string(&group.description),
    };
    Value::object([
        ("id", Value::string(&group.id)),
        (
            "name",
            super::api_key::same_name(wanted.get("name"), &group.name),
        ),
        ("description", description),
        ("created_at", crate::convert::time(group.created_at)),
    ])
}
