//! The deployment's pepper, read once at start-up from where the configuration says it is kept:
//! an AWS Secrets Manager secret (`KEYWARD_PEPPER_SECRET`) or an SSM Parameter Store
//! `SecureString` (`KEYWARD_PEPPER_PARAMETER`), each holding the pepper as hex. The value
//! stays in the process for its life (a Lambda instance's): a new pepper means new instances,
//! and every stored key hash is tied to the pepper, so it never changes under a running one.
//!
//! `KEYWARD_PEPPER` (the value itself) is kept for local runs and tests. No error ever holds
//! the value: a secret that is not a valid pepper is reported by where it is kept.

use aws_config::SdkConfig;
use keyward_core::hash::Pepper;
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
        PepperFrom::SecretsManager(id) => aws_sdk_secretsmanager::Client::new(sdk)
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| unreadable(sdk_reason(&e)))?
            .secret_string
            .ok_or_else(|| unreadable("the secret holds no text value".into()))?,
        PepperFrom::Parameter(name) => aws_sdk_ssm::Client::new(sdk)
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| unreadable(sdk_reason(&e)))?
            .parameter
            .and_then(|p| p.value)
            .ok_or_else(|| unreadable("the parameter holds no value".into()))?,
    };
    Pepper::from_hex(text.trim()).map_err(|e| PepperError::Invalid {
        from,
        reason: e.to_string(),
    })
}

/// An SDK error's code and message (AWS never echoes a secret's value in them).
fn sdk_reason<E, R>(error: &aws_sdk_secretsmanager::error::SdkError<E, R>) -> String
where
    E: aws_sdk_secretsmanager::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_secretsmanager::error::ProvideErrorMetadata as _;
    match (error.code(), error.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        _ => aws_sdk_secretsmanager::error::DisplayErrorContext(error).to_string(),
    }
}
