//! `data "keyward_api_key"`: one key, by `id` or by `name` (revoked keys are not found by
//! name: their names are free). Everything the record shows but the secret, usage included.

use std::sync::LazyLock;

use keyward_api::keys::{ApiKey, KeyStatus};
use keyward_client::KeyFilter;
use keyward_client::StatusFilter;
use keyward_core::group::names_of;
use keyward_core::managed::Manager;
use keyward_core::name::name_key;

use super::DataSource;
use crate::api::Api;
use crate::convert::{metadata, number, opt_time, time};
use crate::cty::{Type, Value};
use crate::diag::{Diagnostic, Diagnostics};
use crate::schema::{Attribute, Block};

#[derive(Debug)]
pub struct ApiKeyData;

static SCHEMA: LazyLock<Block> = LazyLock::new(|| {
    Block {
    description: "An API key as the server has it, by id or by name: its settings, status and usage, never its secret.".into(),
    attributes: vec![
        Attribute::optional_computed("id", Type::String, "The key's id (give this or `name`)."),
        Attribute::optional_computed("name", Type::String, "The key's name (give this or `id`); revoked keys are not found by name."),
        Attribute::computed("description", Type::String, "The description."),
        Attribute::computed("status", Type::String, "`active`, `inactive`, `expired` or `revoked`."),
        Attribute::computed("scopes", Type::List(Box::new(Type::String)), "The scopes, as the server spells them (a preset's included)."),
        Attribute::computed("workspaces", Type::List(Box::new(Type::String)), "Workspace ids."),
        Attribute::computed("groups", Type::List(Box::new(Type::String)), "Sharing group names."),
        Attribute::computed("allowed_cidrs", Type::List(Box::new(Type::String)), "Source ranges (empty: every address)."),
        Attribute::computed("rate_limit_per_minute", Type::Number, "Requests per minute."),
        Attribute::computed("expires_at", Type::String, "When it expires (RFC 3339), or null."),
        Attribute::computed("generation", Type::Number, "The secret's generation."),
        Attribute::computed("managed_by", Type::String, "`spec`, `terraform`, or null."),
        Attribute::computed("metadata", Type::map_of_strings(), "Labels (values that are not strings as JSON)."),
        Attribute::computed("start", Type::String, "The secret's prefix and first 4 random characters."),
        Attribute::computed("last4", Type::String, "The secret's last 4 characters."),
        Attribute::computed("created_at", Type::String, "When it was created."),
        Attribute::computed("last_used_at", Type::String, "When it last verified, or null."),
        Attribute::computed("request_count", Type::Number, "Requests it has verified."),
        Attribute::computed("version", Type::Number, "The record's version."),
    ],
}
});

impl DataSource for ApiKeyData {
    fn type_name(&self) -> &'static str {
        "keyward_api_key"
    }

    fn schema(&self) -> &Block {
        &SCHEMA
    }

    fn validate(&self, config: &Value) -> Diagnostics {
        let id = config.get("id");
        let name = config.get("name");
        if id.is_unknown() || name.is_unknown() || id.is_null() != name.is_null() {
            Vec::new()
        } else {
            vec![Diagnostic::error(
                "Give id or name",
                "A keyward_api_key data source finds a key by exactly one of `id` and `name`.",
            )]
        }
    }

    fn read(&self, api: &Api, config: &Value) -> Result<Value, Diagnostics> {
        let key = match (config.get("id").as_str(), config.get("name").as_str()) {
            (Some(id), _) => api
                .client
                .get_key(id)
                .map_err(|e| vec![Diagnostic::api(&format!("reading key {id}"), &e)])?,
            (None, Some(name)) => by_name(api, name)?,
            (None, None) => return Err(self.validate(config)),
        };
        let groups = api
            .groups()
            .map_err(|e| vec![Diagnostic::api("listing sharing groups", &e)])?;
        Ok(Value::object([
            ("id", Value::string(&key.id)),
            ("name", Value::string(&key.name)),
            ("description", Value::string(&key.description)),
            ("status", Value::string(key.status.as_str())),
            (
                "scopes",
                Value::strings(key.scopes.iter().map(|s| s.scope.clone())),
            ),
            ("workspaces", Value::strings(key.workspaces.clone())),
            ("groups", Value::strings(names_of(&key.groups, &groups))),
            (
                "allowed_cidrs",
                Value::strings(key.allowed_cidrs.ranges().iter().map(ToString::to_string)),
            ),
            (
                "rate_limit_per_minute",
                Value::Number(i64::from(key.rate_limit_per_minute)),
            ),
            ("expires_at", opt_time(key.expires_at)),
            ("generation", number(key.generation)),
            (
                "managed_by",
                Value::opt_string(key.managed_by.map(Manager::as_str)),
            ),
            ("metadata", metadata(&key.metadata)),
            ("start", Value::string(&key.start)),
            ("last4", Value::string(&key.last4)),
            ("created_at", time(key.created_at)),
            ("last_used_at", opt_time(key.last_used_at)),
            ("request_count", number(key.request_count)),
            ("version", number(key.version)),
        ]))
    }
}

/// The key of this name that is not revoked.
fn by_name(api: &Api, name: &str) -> Result<ApiKey, Diagnostics> {
    let filter = KeyFilter {
        status: Some(StatusFilter::All),
        q: Some(name.to_owned()),
        ..KeyFilter::default()
    };
    let keys = api
        .client
        .all_keys(&filter)
        .map_err(|e| vec![Diagnostic::api("listing keys", &e)])?;
    keys.into_iter()
        .find(|k| k.status != KeyStatus::Revoked && name_key(&k.name) == name_key(name))
        .ok_or_else(|| {
            vec![
                Diagnostic::error(
                    "No such key",
                    format!("No key that is not revoked is named '{name}'."),
                )
                .at("name"),
            ]
        })
}
