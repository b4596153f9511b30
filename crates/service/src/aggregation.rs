//! Usage aggregation: rolling the records engines flush into per-key and per-account figures.
//!
//! In AWS the table's stream delivers each record to the `aggregator` function (the AWS edge
//! decodes the batch and calls [`Aggregator::apply_batch`]); in `keyward serve` the same
//! aggregator finds waiting records itself ([`Aggregator::apply_pending`], on a timer). Either
//! way a record is applied by [`UsageStore::apply_usage`](keyward_store::UsageStore::apply_usage),
//! which consumes it in the same write: a redelivered batch, or two aggregators meeting the
//! same record, count it once. Engines never write the account's day: only roll-ups do, spread
//! over a few items (see the DynamoDB adapter), so no item is written by every engine's flush.

use std::sync::Arc;
use std::time::Duration;

use keyward_core::usage::{Applied, UsageRecord};
use keyward_store::Store;

use crate::error::ServiceError;
use crate::fault::FAULTS;

/// How many waiting records one in-process pass applies at most.
pub const PENDING_BATCH: usize = 500;

/// How often `keyward serve` rolls up waiting records: with the engine's flush interval (10 s),
/// figures are complete within about 15 s.
pub const IN_PROCESS_INTERVAL: Duration = Duration::from_secs(5);

/// One item of a delivered batch: its identifier in the batch (for a DynamoDB stream, the
/// sequence number) and the record it holds, or why it holds none.
#[derive(Debug)]
pub struct Delivered {
    pub id: String,
    pub record: Result<UsageRecord, String>,
}

/// What applying a batch did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchReport {
    /// Records rolled up now.
    pub applied: usize,
    /// Records rolled up before (redeliveries): nothing changed.
    pub repeated: usize,
    /// The identifiers of the items that failed (a record that cannot be read, a store that
    /// refused): only these are delivered again.
    pub failed: Vec<String>,
}

impl crate::App {
    /// An aggregator on this app's store.
    pub fn aggregator(&self) -> Aggregator {
        Aggregator::new(self.store.clone())
    }
}

/// Applies usage records to a store.
#[derive(Debug, Clone)]
pub struct Aggregator {
    store: Arc<dyn Store>,
}

impl Aggregator {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Applies every record of a delivered batch, each at most once; a failure fails only its
    /// own item.
    pub async fn apply_batch(&self, batch: Vec<Delivered>) -> BatchReport {
        let mut report = BatchReport::default();
        for item in batch {
            let record = match item.record {
                Ok(record) => record,
                Err(why) => {
                    tracing::error!(item = %item.id, %why, "a usage record cannot be read");
                    report.failed.push(item.id);
                    continue;
                }
            };
            match self.store.apply_usage(&record).await {
                Ok(Applied::Now) => report.applied += 1,
                Ok(Applied::Before) => report.repeated += 1,
                Err(e) => {
                    let e = ServiceError::from(e);
                    tracing::error!(item = %item.id, record = %record.id, error = %e, "a usage record was not applied");
                    report.failed.push(item.id);
                }
            }
        }
        report
    }

    /// Applies records waiting in the store (`keyward serve`, where no stream delivers them).
    /// Answers how many were rolled up now. A record that fails is logged and left for the next
    /// pass; the others are applied all the same (a store that is unavailable ends the pass).
    pub async fn apply_pending(&self) -> Result<usize, ServiceError> {
        let pending = self.store.pending_usage(PENDING_BATCH).await?;
        let mut applied = 0;
        for record in &pending {
            match self.store.apply_usage(record).await {
                Ok(Applied::Now) => applied += 1,
                Ok(Applied::Before) => {}
                Err(e) => match ServiceError::from(e) {
                    unavailable @ ServiceError::Unavailable { .. } => return Err(unavailable),
                    e => {
                        tracing::error!(record = %record.id, error = %e, "a usage record was not applied");
                    }
                },
            }
        }
        Ok(applied)
    }

    /// Runs [`Self::apply_pending`] every `interval` until the process ends; errors are logged
    /// once per fault interval and retried on the next tick.
    pub fn spawn(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let aggregator = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = aggregator.apply_pending().await {
                    FAULTS.report("usage aggregation failed", &e);
                }
            }
        })
    }
}
