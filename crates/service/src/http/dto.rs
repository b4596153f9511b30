//! Response bodies: each a type, so the OpenAPI document is generated from exactly what the
//! handlers send.

use chrono::{DateTime, Utc};
use keyward_core::audit::AuditEntry;
use keyward_core::decision::Code;
use keyward_core::group::Group;
use keyward_core::key::ApiKey;
use keyward_core::permission::Scope;
use keyward_core::preset::Preset;
use keyward_core::validation::Warning;
use keyward_store::Page;
use schemars::JsonSchema;
use serde::Serialize;

/// `201` from create and `200` from regenerate: the secret, shown this once. A replayed
/// `Idempotency-Key` create answers the first key with `secret: null`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct KeyWithSecret {
    pub key: ApiKey,
    pub secret: Option<String>,
    pub warnings: Vec<Warning>,
}

/// The record after an edit, with `warnings` when the edit may break live callers.
#[derive(Debug, Serialize, JsonSchema)]
pub struct EditedKey {
    #[serde(flatten)]
    pub key: ApiKey,
    pub warnings: Vec<Warning>,
}

/// One page of a listing and where the next starts (`null` on the last page).
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "{T}Listing")]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> From<Page<T>> for Listing<T> {
    fn from(p: Page<T>) -> Self {
        Self {
            items: p.items,
            next_cursor: p.next_cursor,
        }
    }
}

pub type KeyListing = Listing<ApiKey>;
pub type GroupListing = Listing<Group>;
pub type AuditListing = Listing<AuditEntry>;

/// A preset as listed: built-in ones cannot be changed.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PresetEntry {
    #[serde(flatten)]
    pub preset: Preset,
    pub builtin: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PresetListing {
    pub items: Vec<PresetEntry>,
}

/// The answer of `POST /v1/verify`. The key's grants appear only when it is valid.
#[derive(Debug, Serialize, JsonSchema)]
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
