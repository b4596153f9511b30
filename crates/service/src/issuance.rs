//! Issuing and managing keys: create (with presets and `Idempotency-Key`), list, get, edit,
//! activate and deactivate, revoke, regenerate, workspace association, delete; and bootstrap.
//!
//! Every change is a read-modify-write through `App::change_key`: revoked keys are final,
//! `If-Match` is honoured, the version goes up by one, and the audit entry is written in the
//! same store transaction. Reads return records as of now, so an expired key shows `expired`.

use std::time::Duration;

use chrono::Utc;
use keyward_core::audit::{Account, AuditEntry};
use keyward_core::edit::UpdateKeyRequest;
use keyward_core::hash::KeyHash;
use keyward_core::idempotency::{IdempotencyRecord, fingerprint, valid_idempotency_key};
use keyward_core::key::{ApiKey, CreateKeyRequest, KeyDraft};
use keyward_core::lifecycle::{self, KeyOp, RegenerateRequest};
use keyward_core::managed;
use keyward_core::permission::{Action, ScopeInput};
use keyward_core::token::Token;
use keyward_core::validation::{FieldError, ValidationErrors, Warning};
use keyward_store::{KeyQuery, Page, StoreError};
use serde_json::{Value, json};

use crate::app::{Actor, App};
use crate::error::ServiceError;

/// How a read-modify-write that lost a race to another writer tries again: after a jittered,
/// exponentially growing pause (full jitter, so racing writers spread out), at most
/// [`Retry::ATTEMPTS`] times in all (about 1.2 s at worst). A writer that still loses answers
/// 503 with `Retry-After`, never 412: 412 is only for a caller's own stale `If-Match`.
#[derive(Debug, Default)]
struct Retry {
    attempt: u32,
}

impl Retry {
    const ATTEMPTS: u32 = 12;
    const BASE: Duration = Duration::from_millis(4);
    const CAP: Duration = Duration::from_millis(200);
    const RETRY_AFTER_SECS: u32 = 1;

    /// Counts an attempt; answers whether another may follow.
    fn next(&mut self) -> bool {
        self.attempt += 1;
        self.attempt <= Self::ATTEMPTS
    }

    /// Waits before the next attempt.
    async fn pause(&self) {
        let ceiling = Self::BASE
            .saturating_mul(1 << self.attempt.min(16))
            .min(Self::CAP);
        let fraction = f64::from(getrandom::u32().unwrap_or(u32::MAX / 2)) / f64::from(u32::MAX);
        tokio::time::sleep(ceiling.mul_f64(fraction)).await;
    }

    fn exhausted() -> ServiceError {
        ServiceError::Unavailable {
            retry_after_secs: Self::RETRY_AFTER_SECS,
        }
    }
}

/// The name of the admin key made by bootstrap.
pub const ROOT_KEY_NAME: &str = "root";

/// A new key and its secret, shown to its owner once and never again.
#[derive(Debug)]
pub struct Created {
    pub key: ApiKey,
    pub secret: Token,
    pub warnings: Vec<Warning>,
}

/// What a create answered: a new key, or (a retried `Idempotency-Key`) the key the first
/// request made, without its secret.
#[derive(Debug)]
pub enum CreateOutcome {
    Created(Created),
    Replayed(ApiKey),
}

/// The `Idempotency-Key` of a create and the exact body it came with.
#[derive(Debug, Clone, Copy)]
pub struct Idempotency<'a> {
    pub key: &'a str,
    pub body: &'a [u8],
}

/// A key after an edit, with the warnings the edit deserves.
#[derive(Debug)]
pub struct Updated {
    pub key: ApiKey,
    pub warnings: Vec<Warning>,
}

/// One change to a key, made by `App::change_key`'s caller from the current record.
#[derive(Debug)]
pub(crate) struct Change {
    pub key: ApiKey,
    pub details: Value,
    pub new_hash: Option<KeyHash>,
    /// An apply by the key's manager: the key is in step with it after this change.
    pub applied: bool,
}

impl Change {
    pub(crate) fn to(key: ApiKey, details: Value) -> Self {
        Self {
            key,
            details,
            new_hash: None,
            applied: false,
        }
    }
}

impl App {
    pub(crate) fn audit_entry(
        &self,
        actor: &Actor,
        action: &str,
        target: &str,
        details: Value,
    ) -> Result<AuditEntry, ServiceError> {
        Ok(AuditEntry::new(
            &actor.account,
            &actor.id,
            action,
            Some(target),
            actor.source_ip,
            details,
            self.now(),
        )?)
    }

    /// The read-modify-write every key change goes through. The core's lifecycle rules for
    /// `op` are checked first (who may make it, and whether the key's state allows it); `edit`
    /// sees the stored record and answers the change, or `None` when there is nothing to do.
    /// `if_match` pins the version the caller saw. It is weighed last, as RFC 9110 (13.2.2)
    /// says: a request refused without the condition (404, 409, an invalid edit's 400) is
    /// refused the same with it, never answered 412.
    pub(crate) async fn change_key<F>(
        &self,
        actor: &Actor,
        id: &str,
        op: KeyOp<'_>,
        if_match: Option<u64>,
        mut edit: F,
    ) -> Result<ApiKey, ServiceError>
    where
        F: FnMut(&ApiKey) -> Result<Option<Change>, ServiceError>,
    {
        op.check_actor(&actor.id, id)?;
        let action = op.audit_action();
        let mut retry = Retry::default();
        while retry.next() {
            let now = self.now();
            let current = self
                .store
                .get_key(&actor.account, id)
                .await?
                .ok_or(ServiceError::NotFound("key"))?;
            op.check_state(&current)?;
            let change = edit(&current)?;
            if if_match.is_some_and(|v| v != current.version) {
                return Err(ServiceError::PreconditionFailed);
            }
            let Some(change) = change else {
                return Ok(current.as_of(now));
            };
            let mut next = change.key;
            next.version = current.version + 1;
            next.updated_at = now;
            // The bookkeeping of keys as code (core::managed): an apply puts the key in step;
            // housekeeping keeps a key that was in step there.
            let in_step = current.applied_version == Some(current.version);
            if change.applied || (op.is_housekeeping() && in_step) {
                next.applied_version = Some(next.version);
            }
            // A grace that ended is dropped by whatever change comes next (the store removes
            // the old secret's hash with it).
            next.end_grace_if_over(now);
            let audit = self.audit_entry(actor, action, id, change.details)?;
            match self
                .store
                .update_key(&next, current.version, change.new_hash.as_ref(), &audit)
                .await
            {
                Ok(()) => {
                    self.engine().forget_key(id, change.new_hash.as_ref());
                    tracing::info!(key_id = %id, actor = %actor.id, action, "key changed");
                    return Ok(next.as_of(now));
                }
                Err(StoreError::VersionConflict) if if_match.is_none() => retry.pause().await,
                Err(StoreError::NameTaken(name)) => {
                    return Err(ServiceError::NameTaken("key", name));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Retry::exhausted())
    }

    pub async fn create_key(
        &self,
        actor: &Actor,
        request: CreateKeyRequest,
        idempotency: Option<Idempotency<'_>>,
    ) -> Result<CreateOutcome, ServiceError> {
        if let Some(idem) = idempotency {
            if !valid_idempotency_key(idem.key) {
                return Err(ValidationErrors::one(
                    "Idempotency-Key",
                    "1 to 255 visible ASCII characters",
                )
                .into());
            }
            if let Some(replay) = self.replay(actor, idem).await? {
                return Ok(CreateOutcome::Replayed(replay));
            }
        }
        let now = self.now();
        let presets = self.presets_for(&actor.account).await?;
        let (draft, warnings) =
            KeyDraft::from_request(request, &self.settings.rules, &presets, now)?;
        self.check_groups_exist(&actor.account, &draft.groups)
            .await?;
        let secret = Token::generate(&self.settings.prefix)?;
        let key = ApiKey::new(draft, &actor.account, &secret, &actor.id, now)?;
        let scopes: Vec<&str> = key.scopes.iter().map(|s| s.scope.as_str()).collect();
        let audit = self.audit_entry(
            actor,
            "key.created",
            &key.id,
            json!({"name": key.name, "scopes": scopes}),
        )?;
        let record = idempotency
            .map(|i| IdempotencyRecord::new(&actor.account, i.key, i.body, &key.id, now));
        match self
            .store
            .insert_key(&key, &self.pepper.hash(&secret), &audit, record.as_ref())
            .await
        {
            Ok(()) => {}
            // Another request with the same Idempotency-Key won the race: answer as it did.
            Err(StoreError::IdempotencyKeyUsed) => {
                if let Some(idem) = idempotency
                    && let Some(replay) = self.replay(actor, idem).await?
                {
                    return Ok(CreateOutcome::Replayed(replay));
                }
                return Err(StoreError::IdempotencyKeyUsed.into());
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(key_id = %key.id, actor = %actor.id, "key created");
        Ok(CreateOutcome::Created(Created {
            key,
            secret,
            warnings,
        }))
    }

    /// The key an earlier request with this `Idempotency-Key` created, if there is a live
    /// record of one; a different body under the same key is refused.
    async fn replay(
        &self,
        actor: &Actor,
        idem: Idempotency<'_>,
    ) -> Result<Option<ApiKey>, ServiceError> {
        let now = self.now();
        let Some(record) = self.store.get_idempotency(&actor.account, idem.key).await? else {
            return Ok(None);
        };
        if !record.is_live(now) {
            return Ok(None);
        }
        if record.fingerprint != fingerprint(idem.body) {
            return Err(ServiceError::Unprocessable(
                "this Idempotency-Key was used with a different request body; use a new key for a new request".into(),
            ));
        }
        match self.store.get_key(&actor.account, &record.key_id).await? {
            Some(key) => Ok(Some(key.as_of(now))),
            None => Err(ServiceError::Conflict(
                "the key this Idempotency-Key created has since been deleted".into(),
            )),
        }
    }

    async fn check_groups_exist(
        &self,
        account: &str,
        groups: &[String],
    ) -> Result<(), ServiceError> {
        let mut errors = Vec::new();
        for (i, g) in groups.iter().enumerate() {
            if self.store.get_group(account, g).await?.is_none() {
                errors.push(FieldError::new(
                    format!("groups[{i}]"),
                    format!("no sharing group '{g}'"),
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(errors).into())
        }
    }

    pub async fn get_key(&self, actor: &Actor, id: &str) -> Result<ApiKey, ServiceError> {
        self.store
            .get_key(&actor.account, id)
            .await?
            .map(|k| k.as_of(self.now()))
            .ok_or(ServiceError::NotFound("key"))
    }

    /// A page of the account's keys matching `query`, each as of `query.now`.
    pub async fn list_keys(
        &self,
        actor: &Actor,
        query: &KeyQuery,
    ) -> Result<Page<ApiKey>, ServiceError> {
        Ok(self.store.list_keys(&actor.account, query).await?)
    }

    /// `PATCH`: applies the edit with the rules of create, warning when it may break callers.
    pub async fn update_key(
        &self,
        actor: &Actor,
        id: &str,
        if_match: Option<u64>,
        request: UpdateKeyRequest,
    ) -> Result<Updated, ServiceError> {
        if let Some(groups) = &request.groups {
            self.check_groups_exist(&actor.account, groups).await?;
        }
        let mut warnings = Vec::new();
        let rules = self.settings.rules;
        let now = self.now();
        let key = self
            .change_key(actor, id, KeyOp::Update(&request), if_match, |current| {
                let edited = request.clone().apply(current, &rules, now)?;
                warnings = edited.warnings;
                if edited.changed.is_empty() {
                    return Ok(None);
                }
                Ok(Some(Change {
                    applied: edited.applied,
                    ..Change::to(edited.key, json!({"changed": edited.changed}))
                }))
            })
            .await?;
        Ok(Updated { key, warnings })
    }

    /// Revokes the key for good. Revoking a revoked key changes nothing and answers the record.
    /// `if_match` pins the version the caller saw (`keyward apply --prune` revokes only the key
    /// it planned to).
    pub async fn revoke_key(
        &self,
        actor: &Actor,
        id: &str,
        if_match: Option<u64>,
    ) -> Result<ApiKey, ServiceError> {
        self.change_key(actor, id, KeyOp::Revoke, if_match, |current| {
            Ok(lifecycle::revoke(current)
                .map(|next| Change::to(next, json!({"name": current.name}))))
        })
        .await
    }

    /// Issues a new secret for the same key (same id, settings and usage). Without a grace the
    /// old secret stops at once; with one it keeps verifying until the grace ends (never past
    /// the key's expiry), and a secret still in an earlier grace ends now (the core's
    /// [`lifecycle::regenerate`]). A revoked or expired key is refused (409). The generation
    /// rises by one, or to the one requested, which must be higher; `if_match` pins the version
    /// the caller saw.
    pub async fn regenerate_key(
        &self,
        actor: &Actor,
        id: &str,
        if_match: Option<u64>,
        request: &RegenerateRequest,
    ) -> Result<Created, ServiceError> {
        let grace = lifecycle::grace_period(request.grace_period_seconds)
            .map_err(|e| ValidationErrors(vec![e]))?;
        let mut issued: Option<Token> = None;
        let key = self
            .change_key(actor, id, KeyOp::Regenerate, if_match, |current| {
                let generation = managed::next_generation(current.generation, request.generation)
                    .map_err(|e| ValidationErrors(vec![e]))?;
                let token = Token::generate(&self.settings.prefix)?;
                let mut next =
                    lifecycle::regenerate(current, &token, grace, generation, self.now())?;
                if let Some(manager) = request.managed_by {
                    next.managed_by = Some(manager);
                }
                let details = json!({
                    "name": current.name,
                    "generation": generation,
                    "grace_period_seconds": grace.num_seconds(),
                    "previous_secret_expires_at": next.previous_secret.as_ref().map(|p| p.expires_at),
                });
                let change = Change {
                    key: next,
                    details,
                    new_hash: Some(self.pepper.hash(&token)),
                    applied: request.managed_by.is_some(),
                };
                issued = Some(token);
                Ok(Some(change))
            })
            .await?;
        let secret = issued.ok_or_else(|| ServiceError::Internal("no secret was issued".into()))?;
        Ok(Created {
            key,
            secret,
            warnings: Vec::new(),
        })
    }

    /// Associates the key with a workspace (idempotent).
    pub async fn add_workspace(
        &self,
        actor: &Actor,
        id: &str,
        workspace: &str,
    ) -> Result<ApiKey, ServiceError> {
        check_id("workspace", workspace)?;
        self.change_key(actor, id, KeyOp::AddWorkspace, None, |current| {
            Ok(lifecycle::add_workspace(current, workspace)?
                .map(|next| Change::to(next, json!({"workspace": workspace}))))
        })
        .await
    }

    /// Ends the key's association with a workspace (idempotent).
    pub async fn remove_workspace(
        &self,
        actor: &Actor,
        id: &str,
        workspace: &str,
    ) -> Result<ApiKey, ServiceError> {
        check_id("workspace", workspace)?;
        self.change_key(actor, id, KeyOp::RemoveWorkspace, None, |current| {
            Ok(lifecycle::remove_workspace(current, workspace)
                .map(|next| Change::to(next, json!({"workspace": workspace}))))
        })
        .await
    }

    /// Deletes the key: its secret stops working and its name is free again.
    pub async fn delete_key(
        &self,
        actor: &Actor,
        id: &str,
        if_match: Option<u64>,
    ) -> Result<(), ServiceError> {
        let op = KeyOp::Delete;
        op.check_actor(&actor.id, id)?;
        let mut retry = Retry::default();
        while retry.next() {
            let current = self.get_key(actor, id).await?;
            op.check_state(&current)?;
            if if_match.is_some_and(|v| v != current.version) {
                return Err(ServiceError::PreconditionFailed);
            }
            let audit =
                self.audit_entry(actor, op.audit_action(), id, json!({"name": current.name}))?;
            match self
                .store
                .delete_key(&actor.account, id, Some(current.version), &audit)
                .await
            {
                Ok(()) => {
                    self.engine().forget_key(id, None);
                    tracing::info!(key_id = %id, actor = %actor.id, "key deleted");
                    return Ok(());
                }
                Err(StoreError::VersionConflict) if if_match.is_none() => retry.pause().await,
                Err(StoreError::VersionConflict) => return Err(ServiceError::PreconditionFailed),
                Err(e) => return Err(e.into()),
            }
        }
        Err(Retry::exhausted())
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
        let secret = match self.create_key(&system, request, None).await {
            Ok(CreateOutcome::Created(created)) => Some(created.secret),
            Ok(CreateOutcome::Replayed(_)) => None,
            // A start that stopped between the key and the account: the key exists, its secret
            // was already shown (or lost); never mint a second root silently.
            Err(ServiceError::NameTaken(..)) => {
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

/// A workspace or group id from a path: the id rule of the core.
pub(crate) fn check_id(field: &str, id: &str) -> Result<(), ServiceError> {
    keyward_core::id::check_id(field, id).map_err(|e| ValidationErrors(vec![e]).into())
}
