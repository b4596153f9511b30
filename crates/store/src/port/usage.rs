//! Usage: how often and when each key was used, written in batches by verifiers.

use async_trait::async_trait;
use chrono::NaiveDate;
use keyward_core::usage::{DayCount, UsageDelta};

use crate::error::StoreResult;

/// Storage for use counts: each key's lifetime count and last use, and per-day counters.
#[async_trait]
pub trait UsageStore: Send + Sync {
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
}
