//! The Store port: what the services need from storage, and nothing about how it is done.

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::NaiveDate;
use chrono::{DateTime, Utc};
use keyward_core::audit::{Account, AuditEntry};
use keyward_core::group::Group;
use keyward_core::hash::KeyHash;
use keyward_core::idempotency::IdempotencyRecord;
use keyward_core::key::{ApiKey, KeyStatus};
use keyward_core::preset::Preset;
use keyward_core::usage::{DayCount, KeyChange, UsageDelta};

use crate::error::StoreResult;

/// Most items one page may hold.
pub const MAX_PAGE_SIZE: usize = 200;

/// A filtered, paged listing of an account's keys, ordered by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyQuery {
    /// Only keys whose status (as of `now`) is this; `None` lists every status.
    pub status: Option<KeyStatus>,
    /// Only keys associated with this workspace.
    pub workspace: Option<String>,
    /// Only keys that are members of this sharing group.
    pub group: Option<String>,
    /// Only keys whose name contains this, case-insensitively.
    pub name_contains: Option<String>,
    /// Where the previous page ended (opaque, from [`Page::next_cursor`]).
    pub cursor: Option<String>,
    /// At most this many items (1..=[`MAX_PAGE_SIZE`]).
    pub limit: usize,
    /// The time expiry is judged at.
    pub now: DateTime<Utc>,
}

impl KeyQuery {
    pub fn all(now: DateTime<Utc>) -> Self {
        Self {
            status: None,
            workspace: None,
            group: None,
            name_contains: None,
            cursor: None,
            limit: 50,
            now,
        }
    }
}

/// The page size actually used for a requested `limit`.
pub fn page_limit(limit: usize) -> usize {
    limit.clamp(1, MAX_PAGE_SIZE)
}

impl KeyQuery {
    /// Whether `key` (already brought up to `self.now`) belongs in this listing, apart from
    /// paging. Adapters that cannot filter in their query language use exactly this rule.
    pub fn admits(&self, key: &ApiKey) -> bool {
        self.status.is_none_or(|s| key.status_at(self.now) == s)
            && self
                .workspace
                .as_ref()
                .is_none_or(|w| key.workspaces.contains(w))
            && self.group.as_ref().is_none_or(|g| key.groups.contains(g))
            && self
                .name_contains
                .as_ref()
                .is_none_or(|q| key.name.to_lowercase().contains(&q.to_lowercase()))
    }
}

/// One page of results and where the next one starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Storage for accounts, keys and audit entries.
///
/// Every method speaks domain types. Records come back with their status as of the read (see
/// [`ApiKey::as_of`]) where the method says so; the hash never comes back at all.
#[async_trait]
pub trait Store: Send + Sync + Debug {
    /// Creates the account unless it exists; answers whether it was created now.
    async fn create_account(&self, account: &Account) -> StoreResult<bool>;

    async fn get_account(&self, id: &str) -> StoreResult<Option<Account>>;

    /// Inserts a new key under its lookup hash, with its audit entry and (for an
    /// `Idempotency-Key` request) its idempotency record, atomically. Fails with `NameTaken`
    /// when the account already has a key of that name, and `IdempotencyKeyUsed` when a live
    /// record for the same idempotency key exists.
    async fn insert_key(
        &self,
        key: &ApiKey,
        hash: &KeyHash,
        audit: &AuditEntry,
        idempotency: Option<&IdempotencyRecord>,
    ) -> StoreResult<()>;

    /// The idempotency record for `key` in `account`, live or expired.
    async fn get_idempotency(
        &self,
        account: &str,
        key: &str,
    ) -> StoreResult<Option<IdempotencyRecord>>;

    async fn get_key(&self, account: &str, id: &str) -> StoreResult<Option<ApiKey>>;

    /// The key a token hashes to: the hot path, one read in every adapter.
    async fn find_key_by_hash(&self, hash: &KeyHash) -> StoreResult<Option<ApiKey>>;

    /// Replaces the key if its stored version is still `expected_version`, optionally moving
    /// it to a new lookup hash (regeneration), with its audit entry, atomically. Usage fields
    /// (`request_count`, `last_used_at`, `last_used_ip`) are kept as stored: they belong to
    /// [`Store::record_usage`], which may have run since the key was read.
    async fn update_key(
        &self,
        key: &ApiKey,
        expected_version: u64,
        new_hash: Option<&KeyHash>,
        audit: &AuditEntry,
    ) -> StoreResult<()>;

    /// Removes the key (and its hash and name) if it exists and, when given, is still at
    /// `expected_version`, with its audit entry, atomically.
    async fn delete_key(
        &self,
        account: &str,
        id: &str,
        expected_version: Option<u64>,
        audit: &AuditEntry,
    ) -> StoreResult<()>;

    /// A page of the account's keys matching `query`, ordered by name, each as of `query.now`.
    async fn list_keys(&self, account: &str, query: &KeyQuery) -> StoreResult<Page<ApiKey>>;

    /// Creates a sharing group with its audit entry; `NameTaken` if the name is in use.
    async fn insert_group(&self, group: &Group, audit: &AuditEntry) -> StoreResult<()>;

    async fn get_group(&self, account: &str, id: &str) -> StoreResult<Option<Group>>;

    /// A page of the account's groups, ordered by id.
    async fn list_groups(
        &self,
        account: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<Group>>;

    /// Removes a group (its name becomes free) with its audit entry; `NotFound` if absent.
    async fn delete_group(&self, account: &str, id: &str, audit: &AuditEntry) -> StoreResult<()>;

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

    /// Adds batched uses to each key's lifetime count and last use, and to the per-day
    /// counters of the key and the account. Uses of deleted keys are dropped.
    async fn record_usage(&self, deltas: &[UsageDelta]) -> StoreResult<()>;

    /// Per-day request counts from `from` to `to` inclusive, for one key or (with `None`) the
    /// whole account; days without requests are omitted.
    async fn usage_days(
        &self,
        account: &str,
        key_id: Option<&str>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<DayCount>>;

    /// Every key change recorded at or after `since`, oldest first. `update_key` and
    /// `delete_key` record one (with the hash valid before the change) in their transaction;
    /// records are kept for at least a day.
    async fn changes_since(&self, since: DateTime<Utc>) -> StoreResult<Vec<KeyChange>>;

    /// A page of the account's audit entries, newest first.
    async fn list_audit(
        &self,
        account: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<AuditEntry>>;
}
