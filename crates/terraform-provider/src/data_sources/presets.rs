//! `data "keyward_presets"`: every preset a key may name, built-in and the account's.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use super::DataSource;
use crate::api::Api;
use crate::cty::{Type, Value};
use crate::diag::{Diagnostic, Diagnostics};
use crate::schema::{Attribute, Block};

#[derive(Debug)]
pub struct PresetsData;

static SCHEMA: LazyLock<Block> = LazyLock::new(|| Block {
    description: "Every preset a key may name: the built-in ones and this account's.".into(),
    attributes: vec![Attribute::computed(
        "presets",
        Type::List(Box::new(Type::Object(BTreeMap::from([
            ("name".to_owned(), Type::String),
            ("description".to_owned(), Type::String),
            ("scopes".to_owned(), Type::List(Box::new(Type::String))),
            ("builtin".to_owned(), Type::Bool),
        ])))),
        "Each preset: `name`, `description`, `scopes` and whether it is `builtin`.",
    )],
});

impl DataSource for PresetsData {
    fn type_name(&self) -> &'static str {
        "keyward_presets"
    }

    fn schema(&self) -> &Block {
        &SCHEMA
    }

    fn validate(&self, _config: &Value) -> Diagnostics {
        Vec::new()
    }

    fn read(&self, api: &Api, _config: &Value) -> Result<Value, Diagnostics> {
        let listing = api
            .client
            .list_presets()
            .map_err(|e| vec![Diagnostic::api("listing presets", &e)])?;
        let presets = listing
            .items
            .iter()
            .map(|p| {
                Value::object([
                    ("name", Value::string(&p.preset.name)),
                    ("description", Value::string(&p.preset.description)),
                    (
                        "scopes",
                        Value::strings(p.preset.scopes.iter().map(|s| s.scope.clone())),
                    ),
                    ("builtin", Value::Bool(p.builtin)),
                ])
            })
            .collect();
        Ok(Value::object([("presets", Value::List(presets))]))
    }
}
