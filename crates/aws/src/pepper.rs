//! The deployment's pepper, read once at start-up from where the configuration says it is kept:
//! an AWS Secrets Manager secret (`KEYWARD_PEPPER_SECRET`) or an SSM Parameter Store
//! `SecureString` (`KEYWARD_PEPPER_PARAMETER`), each holding the pepper as hex. The value
//! stays in the process for its life (a Lambda instance's): a new pepper means new instances,
//! and every stored key hash is tied to the pepper, so it never changes under a running one.
//!
//! `KEYWARD_PEPPER` (the value itself) is kept for local runs and tests. No error ever holds
//! the value: a secret that is not a valid pepper is reported by where it is kept.
//!
//! Each is one signed JSON call (`GetSecretValue`, `GetParameter`) made by [`crate::aws_json`]
//! on the process's SDK configuration, rather than through the generated clients: see there why.

use aws_types::SdkConfig;
use keyward_core::hash::Pepper;
use serde::Deserialize;
use serde_json::json;

use crate::aws_json::{self, Reply, SECRETS_MANAGER, SSM};
use keyward_service::config::{Config, PEPPER, PEPPER_PARAMETER, PEPPER_SECRET, PepperFrom};

/// Why the pepper could not be had. Its debug form is its message: a function that cannot start
/// logs it as such (the runtime prints a failed `main`'s error with `{:?}`).
#[derive(thiserror::Error)]
pub enum PepperError {
    #[error(
        "no pepper: set {PEPPER_SECRET} (a Secrets Manager secret) or {PEPPER_PARAMETER} (an SSM SecureString) to where the deployment keeps it, or {PEPPER} for a local run"
    )]
    Missing,
    #[error("could not read the pepper from the {from}: {reason}")]
    Unreadable { from: PepperFrom, reason: String },
    #[error("the {from} does not hold a pepper: {reason}")]
    Invalid { from: PepperFrom, reason: String },
}

impl std::fmt::Debug for PepperError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// The pepper of `config`: its value when given, else read from where it is kept.
pub async fn load(sdk: &SdkConfig, config: &Config) -> Result<Pepper, PepperError> {
    if let Some(pepper) = &config.pepper {
        return Ok(pepper.clone());
    }
    let from = config.pepper_from.clone().ok_or(PepperError::Missing)?;
    let unreadable = |reason: String| PepperError::Unreadable {
        from: from.clone(),
        reason,
    };
    let text = match &from {
        PepperFrom::SecretsManager(id) => {
            #[derive(Deserialize)]
            struct Secret {
                #[serde(rename = "SecretString")]
                text: Option<String>,
            }
            let reply = aws_json::call(
                sdk,
                SECRETS_MANAGER,
                "GetSecretValue",
                json!({ "SecretId": id }).to_string(),
            )
            .await
            .map_err(|e| unreadable(e.to_string()))?;
            parse::<Secret>(&reply)
                .map_err(unreadable)?
                .text
                .ok_or_else(|| unreadable("the secret holds no text value".into()))?
        }
        PepperFrom::Parameter(name) => {
            #[derive(Deserialize)]
            struct Answer {
                #[serde(rename = "Parameter")]
                parameter: Option<Parameter>,
            }
            #[derive(Deserialize)]
            struct Parameter {
                #[serde(rename = "Value")]
                value: Option<String>,
            }
            let reply = aws_json::call(
                sdk,
                SSM,
                "GetParameter",
                json!({ "Name": name, "WithDecryption": true }).to_string(),
            )
            .await
            .map_err(|e| unreadable(e.to_string()))?;
            parse::<Answer>(&reply)
                .map_err(unreadable)?
                .parameter
                .and_then(|p| p.value)
                .ok_or_else(|| unreadable("the parameter holds no value".into()))?
        }
    };
    Pepper::from_hex(text.trim()).map_err(|e| PepperError::Invalid {
        from,
        reason: e.to_string(),
    })
}

/// The answer's fields, or where it stopped making sense: never the serde message, which may
/// quote a value.
fn parse<T: serde::de::DeserializeOwned>(reply: &Reply) -> Result<T, String> {
    serde_json::from_slice(reply.as_bytes()).map_err(|e| {
        format!(
            "the answer is not the JSON expected (line {}, column {})",
            e.line(),
            e.column()
        )
    })
}
