//! `POST /v1/verify` on the wire.

use chrono::{DateTime, Utc};
use keyward_core::decision::Code;
use keyward_core::id::IdText;
use keyward_core::permission::{Action, MAX_PATTERN_LEN, Scope, resource_path_pattern};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The body of `POST /v1/verify`: the key, and what the request it stands for asks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend(
    "if" = {"required": ["resource"], "properties": {"resource": {"type": "string"}}},
    "then" = {"required": ["action"], "properties": {"action": {"type": "string"}}},
))]
pub struct VerifyRequest {
    /// The token to verify. Missing or malformed counts as unknown (401), like a missing header.
    pub key: Option<String>,
    /// The action to check; needed when `resource` is given.
    #[schemars(with = "Option<Action>")]
    pub action: Option<String>,
    /// The concrete resource path to check the action on (no wildcards); empty means the root.
    #[schemars(regex(pattern = resource_path_pattern()), length(max = MAX_PATTERN_LEN))]
    pub resource: Option<String>,
    /// The workspace the request is made in.
    #[schemars(with = "Option<IdText>")]
    pub workspace: Option<String>,
    /// The address to check the key's allowed ranges against.
    #[serde(default)]
    #[schemars(schema_with = "keyward_core::cidr::ip_address_or_null")]
    pub source_ip: Option<String>,
}

/// The answer of `POST /v1/verify`. The key's grants appear only when it is valid.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct VerifyResult {
    pub valid: bool,
    pub code: Code,
    pub key_id: Option<String>,
    pub account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspaces: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<Scope>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Option<DateTime<Utc>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_minute: Option<u32>,
}
