//! Audit entries: who did what to which key, when, and from where. Never a secret: details
//! hold names and changed field names, not values that could authenticate.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::id::new_id;
use crate::token::TokenError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AuditEntry {
    pub id: String,
    pub account: String,
    pub at: DateTime<Utc>,
    /// The key id that acted, or `system` for bootstrap and background work.
    pub actor: String,
    /// What happened, such as `key.created` or `key.revoked`.
    pub action: String,
    /// The key (or other resource) acted on.
    pub target: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "crate::cidr::ip_address_or_null")]
    pub source_ip: Option<IpAddr>,
    pub details: Value,
}

impl AuditEntry {
    pub fn new(
        account: &str,
        actor: &str,
        action: &str,
        target: Option<&str>,
        source_ip: Option<IpAddr>,
        details: Value,
        at: DateTime<Utc>,
    ) -> Result<Self, TokenError> {
        Ok(Self {
            id: new_id("aud")?,
            account: account.to_owned(),
            at,
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: target.map(str::to_owned),
            source_ip,
            details,
        })
    }
}

/// An account: the owner of keys. A deployment usually has one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    pub created_at: DateTime<Utc>,
}
