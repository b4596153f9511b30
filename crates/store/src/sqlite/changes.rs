//! The change feed in the `key_changes` table: written by key updates and deletes in their
//! transaction, read by verifiers.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keyward_core::hash::KeyHash;
use keyward_core::usage::KeyChange;
use rusqlite::{Transaction, params};

use super::{SqliteStore, backend, micros};
use crate::error::{StoreError, StoreResult};
use crate::port::ChangeFeed;

/// Records that `hash` stopped meaning what verifiers may have cached, and forgets changes
/// older than a day.
pub(super) fn record_change(tx: &Transaction<'_>, hash: &[u8]) -> StoreResult<()> {
    let now = Utc::now();
    tx.execute(
        "INSERT INTO key_changes (at, hash) VALUES (?1, ?2)",
        params![micros(now), hash],
    )
    .map_err(backend)?;
    tx.execute(
        "DELETE FROM key_changes WHERE at < ?1",
        params![micros(now - chrono::Duration::days(1))],
    )
    .map_err(backend)?;
    Ok(())
}

#[async_trait]
impl ChangeFeed for SqliteStore {
    async fn changes_since(&self, since: DateTime<Utc>) -> StoreResult<Vec<KeyChange>> {
        self.with(move |c| {
            let mut stmt = c
                .prepare("SELECT at, hash FROM key_changes WHERE at >= ?1 ORDER BY seq")
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![micros(since)], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
                })
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            rows.into_iter()
                .map(|(at, hash)| {
                    let hash: [u8; 32] = hash
                        .try_into()
                        .map_err(|_| StoreError::Backend("corrupt change hash".into()))?;
                    Ok(KeyChange {
                        hash: KeyHash::from_bytes(hash),
                        at: DateTime::from_timestamp_micros(at).unwrap_or_default(),
                    })
                })
                .collect()
        })
        .await
    }
}
