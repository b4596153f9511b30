//! `POST /v1/verify` on the wire.

use chrono::{DateTime, Utc};
use keyward_core::decision::Code;
use keyward_core::permission::Scope;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The body of `POST /v1/verify`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The token to verify. Missing counts as unknown (401), like a missing header.
    pub key: Option<String>,
    pub action: Option<String>,
    pub resource: Option<String>,
    pub workspace: Option<String>,
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
