//! Configuration of the Lambda functions, from the environment, checked once at start-up with
//! messages that name the variable to fix.
//!
//! | variable | meaning |
//! |---|---|
//! | `KEYWARD_STORE` | `dynamodb://TABLE[?region=R]` (required) |
//! | `KEYWARD_PEPPER` | the pepper, hex, at least 32 bytes (required; from Secrets Manager or SSM via the deployment) |
//! | `KEYWARD_PREFIX` | token prefix, default `kw_live` |
//! | `KEYWARD_ACCOUNT` | account id, default `default` |

use keyward_core::hash::Pepper;
use keyward_core::token::Prefix;
use keyward_store::DynamoLocation;
use thiserror::Error;

use crate::settings::Settings;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// What a function needs to serve.
#[derive(Debug)]
pub struct FunctionConfig {
    pub store: DynamoLocation,
    pub pepper: Pepper,
    pub settings: Settings,
}

impl FunctionConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The same, from any lookup (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let invalid = |name, reason: String| ConfigError::Invalid { name, reason };
        let store = get("KEYWARD_STORE").ok_or(ConfigError::Missing("KEYWARD_STORE"))?;
        let store = DynamoLocation::parse(&store).map_err(|r| invalid("KEYWARD_STORE", r))?;
        let pepper = get("KEYWARD_PEPPER").ok_or(ConfigError::Missing("KEYWARD_PEPPER"))?;
        // The pepper's value never goes into an error.
        let pepper =
            Pepper::from_hex(&pepper).map_err(|e| invalid("KEYWARD_PEPPER", e.to_string()))?;
        let mut settings = Settings::default();
        if let Some(p) = get("KEYWARD_PREFIX") {
            settings.prefix =
                Prefix::parse(&p).map_err(|e| invalid("KEYWARD_PREFIX", e.to_string()))?;
        }
        if let Some(a) = get("KEYWARD_ACCOUNT") {
            if !keyward_core::permission::is_name(&a) || a.len() > 64 {
                return Err(invalid(
                    "KEYWARD_ACCOUNT",
                    "1 to 64 letters, digits, '_', '-' or '.'".into(),
                ));
            }
            settings.account = a;
        }
        Ok(Self {
            store,
            pepper,
            settings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<FunctionConfig, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        FunctionConfig::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn every_variable_is_checked_by_name() {
        let pepper = "ab".repeat(32);
        assert!(
            config(&[
                ("KEYWARD_STORE", "dynamodb://keys"),
                ("KEYWARD_PEPPER", &pepper)
            ])
            .is_ok()
        );
        let err = config(&[("KEYWARD_PEPPER", &pepper)]).unwrap_err();
        assert_eq!(err.to_string(), "KEYWARD_STORE is not set");
        let err = config(&[
            ("KEYWARD_STORE", "dynamodb://keys"),
            ("KEYWARD_PEPPER", "zzzz-secret"),
        ])
        .unwrap_err();
        assert!(err.to_string().starts_with("KEYWARD_PEPPER is invalid"));
        assert!(
            !err.to_string().contains("zzzz-secret"),
            "never echo the pepper"
        );
        let err = config(&[("KEYWARD_STORE", "s3://x"), ("KEYWARD_PEPPER", &pepper)]).unwrap_err();
        assert!(err.to_string().starts_with("KEYWARD_STORE is invalid"));
        let err = config(&[
            ("KEYWARD_STORE", "dynamodb://keys"),
            ("KEYWARD_PEPPER", &pepper),
            ("KEYWARD_PREFIX", "Bad"),
        ])
        .unwrap_err();
        assert!(err.to_string().starts_with("KEYWARD_PREFIX"));
        let ok = config(&[
            ("KEYWARD_STORE", "dynamodb://keys"),
            ("KEYWARD_PEPPER", &pepper),
            ("KEYWARD_PREFIX", "kw_test"),
            ("KEYWARD_ACCOUNT", "acme"),
        ])
        .unwrap();
        assert_eq!(
            (ok.settings.prefix.as_str(), ok.settings.account.as_str()),
            ("kw_test", "acme")
        );
    }
}
