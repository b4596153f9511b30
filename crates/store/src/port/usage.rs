//! Usage: the records engines flush, rolled up once each into per-key and per-account figures.

use async_trait::async_trait;
use chrono::NaiveDate;
use keyward_core::usage::{Applied, DayUsage, UsageRecord};

use crate::error::StoreResult;

/// How long an applied record is remembered after it was rolled up: a write of it retried
/// within this (an engine's flush that failed after the write landed) is refused instead of
/// counting twice.
pub const APPLIED_RECORD_RETENTION_SECS: i64 = 3600;

/// Storage for usage: records waiting to be rolled up, and the figures they roll into.
#[async_trait]
pub trait UsageStore: Send + Sync {
    /// Stores records an engine flushed, for the aggregator (in AWS, the table's stream
    /// delivers them; in one process, [`UsageStore::pending_usage`] finds them). A record
    /// written before (pending, or applied within [`APPLIED_RECORD_RETENTION_SECS`]) is left as
    /// it is: an engine retries a failed flush with the same records.
    async fn write_usage(&self, records: &[UsageRecord]) -> StoreResult<()>;

    /// Records written and not yet applied, oldest first where the store knows, at most
    /// `limit`.
    async fn pending_usage(&self, limit: usize) -> StoreResult<Vec<UsageRecord>>;

    /// Rolls `record` up, atomically and at most once: each key's lifetime count and last use
    /// (the latest wins, whatever the order records arrive in), each key's day by outcome and
    /// the account's day by outcome; the record is marked applied in the same write. A record
    /// already applied, or not written, changes nothing ([`Applied::Before`]). Uses of keys
    /// that no longer exist count for the account only.
    async fn apply_usage(&self, record: &UsageRecord) -> StoreResult<Applied>;

    /// Per-day figures from `from` to `to` inclusive, for one key or (with `None`) the whole
    /// account; days without requests are omitted.
    async fn usage_days(
        &self,
        account: &str,
        key_id: Option<&str>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<DayUsage>>;
}
