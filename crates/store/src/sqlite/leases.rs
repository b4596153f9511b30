//! Rate-limit leases in `rate_leases`: one row per counter and minute, granted in a
//! transaction (SQLite serialises writers, so the check and the grant are one step).

use async_trait::async_trait;
use keyward_core::rate::{Counter, Grant, Window, grantable};
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{SqliteStore, backend};
use crate::error::StoreResult;
use crate::port::LeaseStore;

/// Windows older than this many minutes are deleted when a counter opens a new one.
const KEEP_WINDOWS: i64 = 2;

#[async_trait]
impl LeaseStore for SqliteStore {
    async fn lease(
        &self,
        counter: &Counter,
        window: Window,
        limit: u32,
        want: u32,
    ) -> StoreResult<Grant> {
        let name = counter.name();
        self.with(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let total: Option<u32> = tx
                .query_row(
                    "SELECT granted FROM rate_leases WHERE counter = ?1 AND window = ?2",
                    params![name, window.0],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
            if total.is_none() {
                tx.execute(
                    "DELETE FROM rate_leases WHERE counter = ?1 AND window < ?2",
                    params![name, window.0 - KEEP_WINDOWS],
                )
                .map_err(backend)?;
            }
            let total = total.unwrap_or(0);
            let granted = grantable(limit, total, want);
            if granted > 0 {
                tx.execute(
                    "INSERT INTO rate_leases (counter, window, granted) VALUES (?1, ?2, ?3)
                     ON CONFLICT (counter, window) DO UPDATE SET granted = granted + excluded.granted",
                    params![name, window.0, granted],
                )
                .map_err(backend)?;
            }
            tx.commit().map_err(backend)?;
            Ok(Grant {
                granted,
                total: total + granted,
            })
        })
        .await
    }

    async fn leased(&self, counter: &Counter, window: Window) -> StoreResult<u32> {
        let name = counter.name();
        self.with(move |c| {
            c.query_row(
                "SELECT granted FROM rate_leases WHERE counter = ?1 AND window = ?2",
                params![name, window.0],
                |r| r.get(0),
            )
            .optional()
            .map(Option::unwrap_or_default)
            .map_err(backend)
        })
        .await
    }
}
