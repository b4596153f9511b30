//! Presets on the wire.

use keyward_core::key::{MAX_DESCRIPTION_LEN, MAX_SCOPES};
use keyward_core::permission::ScopeInput;
pub use keyward_core::preset::Preset;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The body of `PUT /v1/presets/{name}`: the scopes a key made from the preset starts with,
/// validated like a key's own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PresetRequest {
    #[schemars(length(max = MAX_DESCRIPTION_LEN))]
    pub description: Option<String>,
    /// Duplicates are dropped.
    #[schemars(required, with = "Vec<ScopeInput>", length(min = 1, max = MAX_SCOPES))]
    pub scopes: Option<Vec<ScopeInput>>,
}

/// A preset as listed: built-in ones cannot be changed.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct PresetEntry {
    #[serde(flatten)]
    pub preset: Preset,
    pub builtin: bool,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct PresetListing {
    pub items: Vec<PresetEntry>,
}
