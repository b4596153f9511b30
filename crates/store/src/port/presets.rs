//! Presets an account defines for itself (the built-in ones live in the core, not here).

use async_trait::async_trait;
use keyward_core::audit::AuditEntry;
use keyward_core::preset::Preset;

use crate::error::StoreResult;

/// Storage for an account's own presets, by name. (Not `Presets`: that is the core's set of
/// presets a key is resolved against.)
#[async_trait]
pub trait PresetStore: Send + Sync {
    /// Creates or replaces the account's preset of that name, with its audit entry.
    async fn put_preset(
        &self,
        account: &str,
        preset: &Preset,
        audit: &AuditEntry,
    ) -> StoreResult<()>;

    /// The account's own presets, ordered by name.
    async fn list_presets(&self, account: &str) -> StoreResult<Vec<Preset>>;

    /// Removes a preset with its audit entry; `NotFound` if absent.
    async fn delete_preset(&self, account: &str, name: &str, audit: &AuditEntry)
    -> StoreResult<()>;
}
