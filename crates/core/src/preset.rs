//! Presets: named sets of default scopes offered when creating a key.
//!
//! The built-in four come from the product notes; a deployment may define more as code, which
//! are validated exactly like a key's scopes so a broken preset fails at load, not at use.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::permission::{PermissionError, Scope, ScopeInput};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Preset {
    pub name: String,
    pub description: String,
    pub scopes: Vec<Scope>,
}

impl Preset {
    pub fn new(name: &str, description: &str, scopes: &[&str]) -> Result<Self, PermissionError> {
        Ok(Self {
            name: name.to_owned(),
            description: description.to_owned(),
            scopes: scopes
                .iter()
                .map(|s| Scope::parse(&ScopeInput::from(*s)))
                .collect::<Result<_, _>>()?,
        })
    }
}

/// The presets a deployment offers: built-ins first, then its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presets(Vec<Preset>);

impl Presets {
    pub fn builtin() -> Self {
        // These spellings are fixed and covered by tests, so a failure here is unreachable.
        let defs: [(&str, &str, &[&str]); 4] = [
            (
                "deploy",
                "CI/CD pipelines and deployments",
                &["namespace:admin", "agent:editor", "project:editor"],
            ),
            (
                "read-only",
                "Monitoring and dashboards",
                &["agent:viewer", "project:viewer"],
            ),
            (
                "agent-runner",
                "Execute tasks and manage files",
                &["agent:viewer", "project:editor"],
            ),
            ("custom", "Manual scope configuration", &[]),
        ];
        Self(
            defs.iter()
                .filter_map(|(n, d, s)| Preset::new(n, d, s).ok())
                .collect(),
        )
    }

    /// These presets followed by `extra` (a deployment's own); a built-in name is never
    /// shadowed.
    pub fn extended(&self, extra: Vec<Preset>) -> Self {
        let mut all = self.0.clone();
        all.extend(extra.into_iter().filter(|p| self.get(&p.name).is_none()));
        Self(all)
    }

    pub fn get(&self, name: &str) -> Option<&Preset> {
        self.0.iter().find(|p| p.name == name)
    }

    pub fn all(&self) -> &[Preset] {
        &self.0
    }

    pub fn names(&self) -> Vec<&str> {
        self.0.iter().map(|p| p.name.as_str()).collect()
    }
}

impl Default for Presets {
    fn default() -> Self {
        Self::builtin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_the_documented_four() {
        let p = Presets::builtin();
        assert_eq!(p.names(), ["deploy", "read-only", "agent-runner", "custom"]);
        let deploy: Vec<_> = p
            .get("deploy")
            .unwrap()
            .scopes
            .iter()
            .map(|s| s.scope.as_str())
            .collect();
        assert_eq!(
            deploy,
            ["namespace:admin", "agent:editor", "project:editor"]
        );
        assert!(p.get("custom").unwrap().scopes.is_empty());
        assert_eq!(p.get("read-only").unwrap().scopes.len(), 2);
        assert!(p.get("nope").is_none());
    }
}
