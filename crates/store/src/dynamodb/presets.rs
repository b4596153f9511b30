//! An account's own presets: one item each, under the account.

use async_trait::async_trait;
use keyward_core::audit::AuditEntry;
use keyward_core::preset::Preset;

use super::DynamoStore;
use super::items::*;
use crate::error::{StoreError, StoreResult};
use crate::port::PresetStore;

#[async_trait]
impl PresetStore for DynamoStore {
    async fn put_preset(
        &self,
        account: &str,
        preset: &Preset,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let item = PresetItem {
            pk: account_pk(account),
            sk: preset_sk(&preset.name),
            preset: preset.clone(),
        };
        let items = vec![
            self.put(to_item(&item)?, None)?,
            self.put(to_item(&AuditItem::new(audit))?, None)?,
        ];
        match self.transact(items).await? {
            None => Ok(()),
            Some(_) => Err(StoreError::Backend("writing a preset was refused".into())),
        }
    }

    async fn list_presets(&self, account: &str) -> StoreResult<Vec<Preset>> {
        let (items, _) = self
            .query_prefix(account_pk(account), PRESET_PREFIX, None, None)
            .await?;
        items
            .into_iter()
            .map(|i| from_item::<PresetItem>(i).map(|p| p.preset))
            .collect()
    }

    async fn delete_preset(
        &self,
        account: &str,
        name: &str,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let items = vec![
            self.delete_if(key_of(account_pk(account), preset_sk(name)), None, true)?,
            self.put(to_item(&AuditItem::new(audit))?, None)?,
        ];
        match self.transact(items).await? {
            None => Ok(()),
            Some(_) => Err(StoreError::NotFound),
        }
    }
}
