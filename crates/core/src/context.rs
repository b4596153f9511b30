//! What the protected backend learns about a request: an allowed key's identity and grants,
//! or a denial's code. The authorizer answers it as its context and the local gateway as
//! `X-Keyward-*` headers, so both pass exactly the same facts.
//!
//! API Gateway's REST context values must be strings, numbers or booleans, so lists are
//! comma-separated.

use serde::{Deserialize, Serialize};

use crate::decision::Code;
use crate::key::ApiKey;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// With `RATE_LIMITED`: whole seconds to the next UTC minute, for a gateway response that
    /// tells the caller when to retry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspaces: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<String>,
}

impl Context {
    /// The context of an allowed key.
    pub fn allowed(key: &ApiKey) -> Self {
        let mut scopes = String::new();
        for (i, s) in key.scopes.iter().enumerate() {
            if i > 0 {
                scopes.push(',');
            }
            scopes.push_str(s.scope.as_str());
        }
        Self {
            code: None,
            retry_after: None,
            key_id: Some(key.id.clone()),
            account: Some(key.account.clone()),
            principal: Some(key.id.clone()),
            name: Some(key.name.clone()),
            workspaces: Some(key.workspaces.join(",")),
            scopes: Some(scopes),
            groups: Some(key.groups.join(",")),
        }
    }

    /// The context of a denial: its code (and when to retry, if it says), never the key's
    /// details.
    pub fn denied(code: Code, retry_after_secs: Option<u32>) -> Self {
        Self {
            code: Some(code.as_str().to_owned()),
            retry_after: retry_after_secs.map(|s| s.to_string()),
            ..Self::default()
        }
    }

    /// Name-value pairs of every field set, in declaration order (`key_id`, `account`, ...).
    pub fn pairs(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("code", &self.code),
            ("retry_after", &self.retry_after),
            ("key_id", &self.key_id),
            ("account", &self.account),
            ("principal", &self.principal),
            ("name", &self.name),
            ("workspaces", &self.workspaces),
            ("scopes", &self.scopes),
            ("groups", &self.groups),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.as_deref().map(|v| (name, v)))
    }
}
