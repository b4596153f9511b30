//! Issuing and managing keys: create, list, get, revoke, delete, and bootstrap.
//!
//! Every change goes through the store with its audit entry in the same write. Reads return
//! records as of now, so an expired key always shows `expired`.

use chrono::Utc;
use keyward_core::audit::{Account, AuditEntry};
use keyward_core::key::{ApiKey, CreateKeyRequest, KeyDraft, KeyStatus};
use keyward_core::permission::{Action, ScopeInput};
use keyward_core::token::Token;
use keyward_core::validation::Warning;
use keyward_store::{KeyQuery, Page, StoreError};
use serde_json::json;

use crate::app::{Actor, App};
use crate::error::ServiceError;

/// How many times a read-modify-write is retried when another writer got there first.
const MAX_RETRIES: usize = 5;

/// The name of the admin key made by bootstrap.
pub const ROOT_KEY_NAME: &str = "root";

/// A new key and its secret, shown to its owner once and never again.
#[derive(Debug)]
pub struct Created {
    pub key: ApiKey,
    pub secret: Token,
    pub warnings: Vec<Warning>,
}

/// A listing request; `status: None` lists every status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListParams {
    pub status: Option<KeyStatus>,
    pub workspace: Option<String>,
    pub name_contains: Option<String>,
    pub cursor: Option<String>,
    pub limit: usize,
}

impl Default for ListParams {
    fn default() -> Self {
        Self {
            status: Some(KeyStatus::Active),
            workspace: None,
            name_contains: None,
            cursor: None,
            limit: 50,
        }
    }
}

impl App {
    fn audit(
        &self,
        actor: &Actor,
        action: &str,
        key: &ApiKey,
        details: serde_json::Value,
    ) -> Result<AuditEntry, ServiceError> {
        Ok(AuditEntry::new(
            &key.account,
            &actor.id,
            action,
            Some(&key.id),
            actor.source_ip,
            details,
            self.now(),
        )?)
    }

    pub async fn create_key(
        &self,
        actor: &Actor,
        request: CreateKeyRequest,
    ) -> Result<Created, ServiceError> {
        let now = self.now();
        let (draft, warnings) =
            KeyDraft::from_request(request, &self.settings.rules, &self.settings.presets, now)?;
        let secret = Token::generate(&self.settings.prefix)?;
        let key = ApiKey::new(draft, &actor.account, &secret, &actor.id, now)?;
        let scopes: Vec<&str> = key.scopes.iter().map(|s| s.scope.as_str()).collect();
        let audit = self.audit(
            actor,
            "key.created",
            &key,
            json!({"name": key.name, "scopes": scopes}),
        )?;
        self.store
            .insert_key(&key, &self.pepper.hash(&secret), &audit)
            .await?;
        tracing::info!(key_id = %key.id, actor = %actor.id, "key created");
        Ok(Created {
            key,
            secret,
            warnings,
        })
    }

    pub async fn get_key(&self, actor: &Actor, id: &str) -> Result<ApiKey, ServiceError> {
        self.store
            .get_key(&actor.account, id)
            .await?
            .map(|k| k.as_of(self.now()))
            .ok_or(ServiceError::NotFound("key"))
    }

    pub async fn list_keys(
        &self,
        actor: &Actor,
        params: ListParams,
    ) -> Result<Page<ApiKey>, ServiceError> {
        let query = KeyQuery {
            status: params.status,
            workspace: params.workspace,
            name_contains: params.name_contains,
            cursor: params.cursor,
            limit: params.limit,
            now: self.now(),
        };
        Ok(self.store.list_keys(&actor.account, &query).await?)
    }

    /// Revokes the key for good. Revoking a revoked key changes nothing and answers the record.
    pub async fn revoke_key(&self, actor: &Actor, id: &str) -> Result<ApiKey, ServiceError> {
        for _ in 0..MAX_RETRIES {
            let current = self.get_key(actor, id).await?;
            if current.is_final() {
                return Ok(current);
            }
            let mut next = current.clone();
            next.status = KeyStatus::Revoked;
            next.version += 1;
            next.updated_at = self.now();
            let audit = self.audit(actor, "key.revoked", &next, json!({"name": next.name}))?;
            match self
                .store
                .update_key(&next, current.version, None, &audit)
                .await
            {
                Ok(()) => {
                    tracing::info!(key_id = %id, actor = %actor.id, "key revoked");
                    return Ok(next);
                }
                Err(StoreError::VersionConflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::PreconditionFailed)
    }

    /// Deletes the key: its secret stops working and its name is free again.
    pub async fn delete_key(&self, actor: &Actor, id: &str) -> Result<(), ServiceError> {
        for _ in 0..MAX_RETRIES {
            let current = self.get_key(actor, id).await?;
            let audit = self.audit(
                actor,
                "key.deleted",
                &current,
                json!({"name": current.name}),
            )?;
            match self
                .store
                .delete_key(&actor.account, id, Some(current.version), &audit)
                .await
            {
                Ok(()) => {
                    tracing::info!(key_id = %id, actor = %actor.id, "key deleted");
                    return Ok(());
                }
                Err(StoreError::VersionConflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::PreconditionFailed)
    }

    /// Creates the account and its root admin key the first time; answers the root secret then
    /// and `None` on every later start.
    pub async fn bootstrap(&self) -> Result<Option<Token>, ServiceError> {
        let account = &self.settings.account;
        if self.store.get_account(account).await?.is_some() {
            return Ok(None);
        }
        let system = Actor::system(account);
        let request = CreateKeyRequest {
            name: Some(ROOT_KEY_NAME.to_owned()),
            description: Some("Created by bootstrap; manages every key of the account.".into()),
            scopes: Some(vec![ScopeInput::Explicit {
                action: Action::Admin.as_str().to_owned(),
                resource: Some("keys/**".to_owned()),
            }]),
            ..CreateKeyRequest::default()
        };
        let secret = match self.create_key(&system, request).await {
            Ok(created) => Some(created.secret),
            // A start that stopped between the key and the account: the key exists, its secret
            // was already shown (or lost); never mint a second root silently.
            Err(ServiceError::NameTaken(_)) => {
                tracing::warn!(
                    "a root key exists but the account record did not; completing bootstrap without a new key"
                );
                None
            }
            Err(e) => return Err(e),
        };
        self.store
            .create_account(&Account {
                id: account.clone(),
                created_at: Utc::now(),
            })
            .await?;
        tracing::info!(account = %account, "account bootstrapped");
        Ok(secret)
    }
}
