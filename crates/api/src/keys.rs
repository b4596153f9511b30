//! Keys on the wire.

pub use keyward_core::edit::UpdateKeyRequest;
pub use keyward_core::key::{ApiKey, CreateKeyRequest, KeyStatus};
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

/// The record after an edit, with `warnings` when the edit may break live callers.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct EditedKey {
    #[serde(flatten)]
    pub key: ApiKey,
    pub warnings: Vec<Warning>,
}
