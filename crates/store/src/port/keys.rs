//! Keys: the key records, the lookup hash each is found by (the hot path), the idempotency
//! records that make a retried create safe, and the filtered, paged listing.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keyward_core::audit::AuditEntry;
use keyward_core::hash::KeyHash;
use keyward_core::idempotency::IdempotencyRecord;
use keyward_core::key::{ApiKey, KeyMatch, KeyStatus};
use keyward_core::name::name_key;

use super::Page;
#[cfg(doc)]
use super::UsageStore;
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
    /// Only keys whose name contains this, compared as names collide: after NFKC case folding
    /// (`ci` finds `CI-Bot`, `strasse` finds `Straße`).
    pub name_contains: Option<String>,
    /// Where the previous page ended (opaque, from [`Page::next_cursor`]).
    pub cursor: Option<String>,
    /// At most this many items (1..=[`MAX_PAGE_SIZE`]).
    pub limit: usize,
    /// The time expiry is judged at.
    pub now: DateTime<Utc>,
}

impl KeyQuery {
    /// Every key as stored: nothing judged as of a time (no status brought up to date, no
    /// ended grace dropped), for the rotation sweep, which acts on what is stored.
    pub fn as_stored() -> Self {
        Self::all(DateTime::<Utc>::MIN_UTC)
    }

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
                .is_none_or(|q| name_key(&key.name).contains(&name_key(q)))
    }
}

/// Storage for key records, found by id, by lookup hash, or listed by [`KeyQuery`].
///
/// Records come back with their status as of the read (see [`ApiKey::as_of`]) where the method
/// says so; the hash never comes back at all.
///
/// # Names
///
/// A name is unique per account among keys that are not revoked, by its folded form
/// ([`keyward_core::name::name_key`]): a key claims its name while it is not revoked. Revoking
/// a key (an [`update_key`](Self::update_key) to [`KeyStatus::Revoked`] from another status)
/// releases the claim in the same transaction, so a new key, or a rename of another key, may
/// take the name at once, in any spelling that folds to it. The revoked record keeps its name
/// for history: it still loads, lists and shows in the audit log under it, and several revoked
/// keys may share one name. Deleting a revoked key never touches a claim another key now holds.
/// (That a revoked key is never renamed or edited is a rule of the core, checked before the
/// store is called.)
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Inserts a new key under its lookup hash, with its audit entry and (for an
    /// `Idempotency-Key` request) its idempotency record, atomically. Fails with `NameTaken`
    /// when the account already has a key of that name (folded) that is not revoked, and
    /// `IdempotencyKeyUsed` when a live record for the same idempotency key exists.
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

    /// The key a token hashes to, and whether the hash is its current secret or its previous
    /// one (in grace): the hot path, one read in every adapter.
    async fn find_key_by_hash(&self, hash: &KeyHash) -> StoreResult<Option<KeyMatch>>;

    /// Replaces the key if its stored version is still `expected_version`, optionally moving
    /// it to a new lookup hash (regeneration), with its audit entry, atomically.
    ///
    /// The key's previous secret follows `key.previous_secret`: on a regeneration, when it is
    /// set, the hash the key had keeps finding the key until `previous_secret.expires_at`, and
    /// any older previous hash is removed (at most two live); when an update leaves it unset,
    /// a previous hash the key still had is removed (the grace ended). Every hash that stops
    /// meaning what it meant, or whose copy of the key changed, goes to the change feed. Usage fields
    /// (`request_count`, `last_used_at`, `last_used_ip`) are kept as stored: they belong to
    /// [`UsageStore::apply_usage`](crate::port::UsageStore::apply_usage), which may have run since the key was read.
    ///
    /// A rename claims the new name (`NameTaken` when a key that is not revoked holds it) and
    /// releases the old one; a revoke releases the name (see [Names](Self#names)).
    async fn update_key(
        &self,
        key: &ApiKey,
        expected_version: u64,
        new_hash: Option<&KeyHash>,
        audit: &AuditEntry,
    ) -> StoreResult<()>;

    /// Removes the key (and its hash, and its name claim if it still holds one) if it exists
    /// and, when given, is still at `expected_version`, with its audit entry, atomically.
    async fn delete_key(
        &self,
        account: &str,
        id: &str,
        expected_version: Option<u64>,
        audit: &AuditEntry,
    ) -> StoreResult<()>;

    /// A page of the account's keys matching `query`, ordered by name, each as of `query.now`.
    async fn list_keys(&self, account: &str, query: &KeyQuery) -> StoreResult<Page<ApiKey>>;
}
