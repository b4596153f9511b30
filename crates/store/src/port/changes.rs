//! The change feed: which lookup hashes verifiers must drop from their caches.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keyward_core::usage::KeyChange;

#[cfg(doc)]
use super::KeyStore;
use crate::error::StoreResult;

/// Reading the key changes that [`KeyStore::update_key`] and [`KeyStore::delete_key`] record.
#[async_trait]
pub trait ChangeFeed: Send + Sync {
    /// Every key change recorded at or after `since`, oldest first. `update_key` and
    /// `delete_key` record one (with the hash valid before the change) in their transaction;
    /// records are kept for at least a day.
    async fn changes_since(&self, since: DateTime<Utc>) -> StoreResult<Vec<KeyChange>>;
}
