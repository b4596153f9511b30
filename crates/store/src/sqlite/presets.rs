//! An account's own presets in the `presets` table.

use async_trait::async_trait;
use keyward_core::audit::AuditEntry;
use keyward_core::preset::Preset;
use rusqlite::params;

use super::audit::insert_audit;
use super::{SqliteStore, all, backend, to_json};
use crate::error::StoreResult;
use crate::port::PresetStore;

#[async_trait]
impl PresetStore for SqliteStore {
    async fn put_preset(
        &self,
        account: &str,
        preset: &Preset,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let (account, preset, audit) = (account.to_owned(), preset.clone(), audit.clone());
        self.with(move |c| {
            let tx = c.transaction().map_err(backend)?;
            tx.execute(
                "INSERT INTO presets (account, name, record) VALUES (?1, ?2, ?3)
                 ON CONFLICT (account, name) DO UPDATE SET record = excluded.record",
                params![account, preset.name, to_json(&preset)?],
            )
            .map_err(backend)?;
            insert_audit(&tx, &audit)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn list_presets(&self, account: &str) -> StoreResult<Vec<Preset>> {
        let account = account.to_owned();
        self.with(move |c| {
            all(
                c,
                "SELECT record FROM presets WHERE account = ?1 ORDER BY name",
                params![account],
            )
        })
        .await
    }

    async fn delete_preset(
        &self,
        account: &str,
        name: &str,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        self.delete_audited(
            "DELETE FROM presets WHERE account = ?1 AND name = ?2",
            account,
            name,
            audit,
        )
        .await
    }
}
