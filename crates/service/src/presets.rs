//! Presets: the built-in four, plus the ones an account defines (as code, through the API).
//! A built-in name cannot be redefined or deleted.

use keyward_api::presets::PresetRequest;
use keyward_core::id::check_id;
use keyward_core::preset::{Preset, Presets};
use keyward_core::validation::ValidationErrors;
use keyward_store::StoreError;
use serde_json::json;

use crate::app::{Actor, App};
use crate::error::ServiceError;

impl App {
    /// Every preset a create may name in `account`: built-ins first, then the account's own.
    pub(crate) async fn presets_for(&self, account: &str) -> Result<Presets, ServiceError> {
        let own = self.store.list_presets(account).await?;
        Ok(self.settings.presets.extended(own))
    }

    pub async fn list_presets(&self, actor: &Actor) -> Result<Vec<(Preset, bool)>, ServiceError> {
        let all = self.presets_for(&actor.account).await?;
        Ok(all
            .all()
            .iter()
            .map(|p| (p.clone(), self.settings.presets.get(&p.name).is_some()))
            .collect())
    }

    pub async fn put_preset(
        &self,
        actor: &Actor,
        name: &str,
        request: PresetRequest,
    ) -> Result<Preset, ServiceError> {
        check_id("name", name).map_err(|e| ValidationErrors(vec![e]))?;
        if self.settings.presets.get(name).is_some() {
            return Err(ServiceError::Conflict(format!(
                "'{name}' is a built-in preset and cannot be redefined"
            )));
        }
        let description = keyward_core::key::validate_description(request.description.as_deref())
            .map_err(ValidationErrors)?;
        let inputs = request.scopes.unwrap_or_default();
        let scopes = keyward_core::key::validate_scopes(&inputs).map_err(ValidationErrors)?;
        let preset = Preset {
            name: name.to_owned(),
            description,
            scopes,
        };
        let names: Vec<&str> = preset.scopes.iter().map(|s| s.scope.as_str()).collect();
        let audit = self.audit_entry(actor, "preset.put", name, json!({"scopes": names}))?;
        self.store
            .put_preset(&actor.account, &preset, &audit)
            .await?;
        Ok(preset)
    }

    pub async fn delete_preset(&self, actor: &Actor, name: &str) -> Result<(), ServiceError> {
        if self.settings.presets.get(name).is_some() {
            return Err(ServiceError::Conflict(format!(
                "'{name}' is a built-in preset and cannot be deleted"
            )));
        }
        let audit = self.audit_entry(actor, "preset.deleted", name, json!({}))?;
        match self.store.delete_preset(&actor.account, name, &audit).await {
            Err(StoreError::NotFound) => Err(ServiceError::NotFound("preset")),
            other => Ok(other?),
        }
    }
}
