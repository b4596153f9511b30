//! AWS Secrets Manager rotation of the keys that opt in (`secrets_manager_secret_id`): the
//! four steps of the rotation protocol, each idempotent and resumable, over a [`SecretVault`]
//! (the AWS adapter is `keyward_aws::secrets_manager`).
//!
//! The secret's value is JSON, `{"key_id": "key_...", "api_key": "kw_live_..."}`: whoever reads
//! `AWSCURRENT` holds a live key.
//!
//! - `createSecret`: the rotator generates the new secret itself and stores it as the version
//!   named by the request token, with `AWSPENDING` only. A pending version already there is
//!   kept (a rerun changes nothing).
//! - `setSecret`: installs the pending secret on the key, found by the key id and checked
//!   against the secret the key names, as a regeneration with a grace: `AWSCURRENT`'s secret
//!   keeps verifying until the grace ends. Idempotent by hash: when the pending secret already
//!   is the key's current one, nothing happens, so a rerun never ends the secret `AWSCURRENT`
//!   still holds.
//! - `testSecret`: the pending secret must verify (a dry run: no budget spent, no use counted).
//! - `finishSecret`: moves `AWSCURRENT` to the pending version (Secrets Manager moves
//!   `AWSPREVIOUS` with it); a rerun finds it moved.
//!
//! Every step writes an audit entry naming the secret and the version; never a secret.

use async_trait::async_trait;
use chrono::Duration;
use keyward_core::decision::{Code, Needs};
use keyward_core::lifecycle::{self, KeyOp};
use keyward_core::managed;
use keyward_core::token::Token;
use keyward_core::validation::ValidationErrors;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::app::{Actor, App};
use crate::error::ServiceError;
use crate::issuance::Change;
use crate::verification::{Explain, Presented, Target};

/// The stage of the version that holds the live secret.
pub const CURRENT: &str = "AWSCURRENT";
/// The stage of the version being rotated in.
pub const PENDING: &str = "AWSPENDING";

/// How long the secret a rotation replaces keeps verifying, by default: a day, so every reader
/// of `AWSCURRENT` (caching it for hours) picks up the new one first.
pub const DEFAULT_ROTATION_GRACE: Duration = Duration::days(1);

/// A step of the rotation protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Create,
    Set,
    Test,
    Finish,
}

impl Step {
    /// The step as Secrets Manager names it (`createSecret`, ...).
    pub fn parse(step: &str) -> Option<Self> {
        match step {
            "createSecret" => Some(Self::Create),
            "setSecret" => Some(Self::Set),
            "testSecret" => Some(Self::Test),
            "finishSecret" => Some(Self::Finish),
            _ => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Create => "createSecret",
            Self::Set => "setSecret",
            Self::Test => "testSecret",
            Self::Finish => "finishSecret",
        }
    }
}

/// The secret's value: which key, and its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretValue {
    pub key_id: String,
    pub api_key: String,
}

/// A version of the secret and its stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub id: String,
    pub stages: Vec<String>,
}

/// What a Secrets Manager failure is, as far as rotation cares.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    #[error("no such secret or version")]
    NotFound,
    #[error("secrets manager: {0}")]
    Failed(String),
}

/// What the rotation protocol needs of AWS Secrets Manager.
#[async_trait]
pub trait SecretVault: Send + Sync {
    /// The value of version `version_id`, or of the version in `stage` when no id is given.
    async fn value(
        &self,
        secret_id: &str,
        version_id: Option<&str>,
        stage: Option<&str>,
    ) -> Result<Option<String>, VaultError>;

    /// Stores `value` as version `version_id` with the stage `AWSPENDING` only (passing back
    /// the request's rotation token, when Secrets Manager sent one).
    async fn put_pending(
        &self,
        secret_id: &str,
        version_id: &str,
        value: &str,
        rotation_token: Option<&str>,
    ) -> Result<(), VaultError>;

    /// Every version of the secret and its stages.
    async fn versions(&self, secret_id: &str) -> Result<Vec<Version>, VaultError>;

    /// Moves `AWSCURRENT` to `version_id` from `from`.
    async fn promote(
        &self,
        secret_id: &str,
        version_id: &str,
        from: &str,
    ) -> Result<(), VaultError>;
}

impl From<VaultError> for ServiceError {
    fn from(e: VaultError) -> Self {
        Self::Unprocessable(e.to_string())
    }
}

/// One rotation request: the secret, the version it rotates to (the request token), the
/// rotation token Secrets Manager sent (if any), and the grace of the secret it replaces.
#[derive(Debug, Clone, Copy)]
pub struct Rotation<'a> {
    pub secret_id: &'a str,
    pub token: &'a str,
    pub rotation_token: Option<&'a str>,
    pub grace: Duration,
}

/// Whether a key's `secrets_manager_secret_id` names the secret `secret_id` (a name matches its
/// ARN, which ends `:secret:<name>-<6 characters>`).
pub fn names_secret(configured: &str, secret_id: &str) -> bool {
    configured == secret_id
        || secret_id
            .rsplit_once(":secret:")
            .and_then(|(_, rest)| rest.strip_prefix(configured))
            .is_some_and(|suffix| suffix.len() == 7 && suffix.starts_with('-'))
}

fn refused(message: impl Into<String>) -> ServiceError {
    ServiceError::Unprocessable(message.into())
}

fn parse_value(raw: &str) -> Result<SecretValue, ServiceError> {
    serde_json::from_str(raw)
        .map_err(|_| refused("the secret's value is not keyward's {\"key_id\", \"api_key\"} JSON"))
}

impl App {
    /// One step of a Secrets Manager rotation of `secret_id` to version `token` (the request
    /// token), with `grace` for the secret it replaces (see the module documentation).
    pub async fn rotate_secret(
        &self,
        vault: &dyn SecretVault,
        step: Step,
        rotation: &Rotation<'_>,
    ) -> Result<(), ServiceError> {
        let Rotation {
            secret_id,
            token,
            rotation_token,
            grace,
        } = *rotation;
        let versions = vault.versions(secret_id).await?;
        let version = versions.iter().find(|v| v.id == token);
        let has = |stage: &str| version.is_some_and(|v| v.stages.iter().any(|s| s == stage));
        if has(CURRENT) {
            // Already rotated (a rerun after finishSecret): nothing to do in any step.
            return self
                .audit_step(step, secret_id, token, "already current")
                .await;
        }
        // Secrets Manager names the version before it asks for createSecret; createSecret
        // also makes it when it is not there yet. Every later step needs it pending.
        if step != Step::Create && !has(PENDING) {
            return Err(refused(format!(
                "version {token} of {secret_id} is not AWSPENDING"
            )));
        }
        let current = vault
            .value(secret_id, None, Some(CURRENT))
            .await?
            .ok_or_else(|| refused(format!("{secret_id} has no AWSCURRENT value")))?;
        let current = parse_value(&current)?;
        let system = Actor::system(&self.settings.account);
        let key = self.get_key(&system, &current.key_id).await?;
        if !key
            .secrets_manager_secret_id
            .as_deref()
            .is_some_and(|configured| names_secret(configured, secret_id))
        {
            return Err(refused(format!(
                "key {} has not opted in to rotation by {secret_id} (secrets_manager_secret_id)",
                key.id
            )));
        }
        let outcome = match step {
            Step::Create => {
                if vault.value(secret_id, Some(token), None).await?.is_some() {
                    "pending version already stored"
                } else {
                    let fresh = Token::generate(&self.settings.prefix)?;
                    let value = serde_json::to_string(&SecretValue {
                        key_id: key.id.clone(),
                        api_key: fresh.expose().to_owned(),
                    })
                    .map_err(|e| ServiceError::Internal(e.to_string()))?;
                    vault
                        .put_pending(secret_id, token, &value, rotation_token)
                        .await?;
                    "pending version stored"
                }
            }
            Step::Set => {
                let pending = self.pending(vault, secret_id, token, &key.id).await?;
                if self.is_current_secret(&pending, &key.id).await? {
                    "already installed"
                } else {
                    // Never end the secret AWSCURRENT holds: it must be the key's current one
                    // (a key regenerated by hand since, or another rotation half done, is
                    // refused until the secret is brought back in step).
                    let holder = Token::parse_for(&current.api_key, &self.settings.prefix)
                        .map_err(|_| refused("AWSCURRENT holds no keyward secret"))?;
                    if !self.is_current_secret(&holder, &key.id).await? {
                        return Err(refused(format!(
                            "AWSCURRENT of {secret_id} no longer holds key {}'s current secret; \
                             put the key's current secret back into it, then rotate",
                            key.id
                        )));
                    }
                    let hash = self.pepper.hash(&pending);
                    let now = self.now();
                    self.change_key(&system, &key.id, KeyOp::Regenerate, None, |current| {
                        let shows = |start: &str, last4: &str, t: &Token| {
                            start == t.start() && last4 == t.last4()
                        };
                        if shows(&current.start, &current.last4, &pending) {
                            return Ok(None); // installed by a run that overlapped this one
                        }
                        if !shows(&current.start, &current.last4, &holder) {
                            return Err(refused("the key's secret changed during the rotation"));
                        }
                        let generation = managed::next_generation(current.generation, None)
                            .map_err(|e| ValidationErrors(vec![e]))?;
                        let next =
                            lifecycle::regenerate(current, &pending, grace, generation, now)?;
                        Ok(Some(Change {
                            details: json!({
                                "name": current.name,
                                "via": "secrets_manager",
                                "secret_id": secret_id,
                                "version_id": token,
                                "previous_secret_expires_at":
                                    next.previous_secret.as_ref().map(|p| p.expires_at),
                            }),
                            key: next,
                            new_hash: Some(hash),
                            applied: false,
                        }))
                    })
                    .await?;
                    "installed on the key"
                }
            }
            Step::Test => {
                let pending = self.pending(vault, secret_id, token, &key.id).await?;
                let presented = Presented {
                    token: Some(pending.expose().into()),
                    target: Target::Stated {
                        needs: Needs::KeyOnly,
                        workspace: None,
                    },
                    ..Presented::default()
                };
                let decided = self.verifier().decide(&presented, Explain::Steps).await?;
                if decided.code != Code::Valid {
                    return Err(refused(format!(
                        "the pending secret does not verify: {}",
                        decided.code.as_str()
                    )));
                }
                "pending secret verifies"
            }
            Step::Finish => {
                let from = versions
                    .iter()
                    .find(|v| v.stages.iter().any(|s| s == CURRENT))
                    .map(|v| v.id.clone())
                    .ok_or_else(|| refused(format!("{secret_id} has no AWSCURRENT version")))?;
                vault.promote(secret_id, token, &from).await?;
                "AWSCURRENT moved to the new version"
            }
        };
        self.audit_step(step, secret_id, token, outcome).await
    }

    /// Whether `token` is the current secret of key `key_id` (not a previous one in grace).
    async fn is_current_secret(&self, token: &Token, key_id: &str) -> Result<bool, ServiceError> {
        Ok(self
            .store
            .find_key_by_hash(&self.pepper.hash(token))
            .await?
            .is_some_and(|m| m.key.id == key_id && m.grace_until.is_none()))
    }

    /// The pending version's secret, checked to belong to `key_id` and to this deployment.
    async fn pending(
        &self,
        vault: &dyn SecretVault,
        secret_id: &str,
        token: &str,
        key_id: &str,
    ) -> Result<Token, ServiceError> {
        let raw = vault
            .value(secret_id, Some(token), Some(PENDING))
            .await?
            .ok_or_else(|| refused(format!("{secret_id} has no pending version {token}")))?;
        let value = parse_value(&raw)?;
        if value.key_id != key_id {
            return Err(refused("the pending version names another key"));
        }
        Token::parse_for(&value.api_key, &self.settings.prefix)
            .map_err(|_| refused("the pending version holds no keyward secret"))
    }

    async fn audit_step(
        &self,
        step: Step,
        secret_id: &str,
        token: &str,
        outcome: &str,
    ) -> Result<(), ServiceError> {
        let system = Actor::system(&self.settings.account);
        let entry = self.audit_entry(
            &system,
            "key.rotation_step",
            secret_id,
            json!({"step": step.as_str(), "version_id": token, "outcome": outcome}),
        )?;
        self.store.append_audit(&entry).await?;
        tracing::info!(
            step = step.as_str(),
            secret_id,
            version_id = token,
            outcome,
            "rotation step"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_matches_its_arn() {
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ci/deploy-AbCdEf";
        assert!(names_secret("ci/deploy", arn));
        assert!(names_secret(arn, arn));
        assert!(
            !names_secret("ci", arn),
            "a prefix of the name is another secret"
        );
        assert!(!names_secret("ci/deploy", "ci/deploy-other"));
        assert_eq!(Step::parse("setSecret"), Some(Step::Set));
        assert_eq!(Step::parse("nope"), None);
    }
}
