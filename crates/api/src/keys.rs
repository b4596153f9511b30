//! Keys on the wire.

pub use keyward_core::edit::UpdateKeyRequest;
pub use keyward_core::key::{ApiKey, CreateKeyRequest, KeyStatus, PreviousSecret};
pub use keyward_core::lifecycle::RegenerateRequest;
use keyward_core::validation::Warning;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `201` from create and `200` from regenerate: the secret, shown this once. A replayed
/// `Idempotency-Key` create answers the first key with `secret: null`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct KeyWithSecret {
    pub key: ApiKey,
    pub secret: Option<String>,
    pub warnings: Vec<Warning>,
}

/// `200` from regenerate: the create shape, and when the old secret stops verifying (`null`:
/// it stopped at once).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct RegeneratedKey {
    #[serde(flatten)]
    pub created: KeyWithSecret,
    pub previous_secret_expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The record after an edit, with `warnings` when the edit may break live callers.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct EditedKey {
    #[serde(flatten)]
    pub key: ApiKey,
    pub warnings: Vec<Warning>,
}
