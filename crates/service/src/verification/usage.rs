//! The usage buffer: verifications counted in memory after the decision, by outcome, and
//! flushed as usage records in batches.
//!
//! A hot key costs one record entry per flush interval, not a write per request. The buffer is
//! flushed from here only: when a count finds the interval passed (the request path, which is
//! all a Lambda between invocations has), and by the engine's background task in long-lived
//! processes. Records are built once and keep their ids: a failed write is retried with the
//! same records, so a record the store did take is never rolled up twice under two ids.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use keyward_core::id::new_id;
use keyward_core::key::ApiKey;
use keyward_core::usage::{KeyUse, MAX_KEYS_PER_RECORD, Outcome, Outcomes, UsageRecord};
use keyward_store::Store;

use super::lock;
use crate::error::ServiceError;
use crate::fault::FAULTS;

/// The most records kept for a retry while the store refuses them; past it the oldest are
/// dropped (and the loss logged): counts are bounded, memory too.
const MAX_UNWRITTEN_RECORDS: usize = 10_000;

/// One key's uses on one day.
#[derive(Debug)]
struct Pending {
    account: String,
    day: NaiveDate,
    uses: KeyUse,
}

#[derive(Debug, Default)]
struct Buffer {
    /// The current day's uses, by key id.
    open: HashMap<String, Pending>,
    /// Uses of days that ended before their flush.
    sealed: Vec<Pending>,
    /// Records built and not yet written (a failed flush).
    unwritten: Vec<UsageRecord>,
}

#[derive(Debug)]
pub(crate) struct UsageBuffer {
    interval: Duration,
    buffer: Mutex<Buffer>,
    last_flush: Mutex<Instant>,
    /// Serialises flushes, so two never write the same records.
    flushing: tokio::sync::Mutex<()>,
    pub(crate) flushes: AtomicU64,
    pub(crate) flushed_records: AtomicU64,
}

impl UsageBuffer {
    pub(crate) fn new(interval: Duration) -> Self {
        Self {
            interval,
            buffer: Mutex::default(),
            last_flush: Mutex::new(Instant::now()),
            flushing: tokio::sync::Mutex::new(()),
            flushes: AtomicU64::new(0),
            flushed_records: AtomicU64::new(0),
        }
    }

    /// Counts one decided verification of `key`, by its outcome.
    pub(crate) fn count(
        &self,
        key: &ApiKey,
        outcome: Outcome,
        ip: Option<IpAddr>,
        at: DateTime<Utc>,
    ) {
        let day = at.date_naive();
        let mut buffer = lock(&self.buffer);
        let buffer = &mut *buffer;
        // A hot key finds its entry without allocating: the id is copied once per flush.
        if !matches!(buffer.open.get(&key.id), Some(p) if p.day == day) {
            let fresh = Pending {
                account: key.account.clone(),
                day,
                uses: KeyUse {
                    key_id: key.id.clone(),
                    outcomes: Outcomes::default(),
                    last_used_at: at,
                    last_used_ip: None,
                },
            };
            if let Some(ended) = buffer.open.insert(key.id.clone(), fresh) {
                buffer.sealed.push(ended);
            }
        }
        let Some(pending) = buffer.open.get_mut(&key.id) else {
            return;
        };
        pending.uses.outcomes.add(outcome);
        if at >= pending.uses.last_used_at {
            pending.uses.last_used_at = at;
            if ip.is_some() {
                pending.uses.last_used_ip = ip;
            }
        }
    }

    /// Writes what is buffered now. Answers how many records were written.
    pub(crate) async fn flush(&self, store: &dyn Store) -> Result<usize, ServiceError> {
        let _flushing = self.flushing.lock().await;
        let records = {
            let mut buffer = lock(&self.buffer);
            let mut pending: Vec<Pending> = buffer.open.drain().map(|(_, p)| p).collect();
            pending.append(&mut buffer.sealed);
            let mut records = std::mem::take(&mut buffer.unwritten);
            records.extend(into_records(pending)?);
            records
        };
        *lock(&self.last_flush) = Instant::now();
        if records.is_empty() {
            return Ok(0);
        }
        self.flushes.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = store.write_usage(&records).await {
            // Keep the records (same ids) for the next flush.
            let mut buffer = lock(&self.buffer);
            let mut kept = records;
            kept.append(&mut buffer.unwritten);
            if kept.len() > MAX_UNWRITTEN_RECORDS {
                let dropped = kept.len() - MAX_UNWRITTEN_RECORDS;
                kept.drain(..dropped);
                FAULTS.report(
                    "usage records dropped",
                    &format!("{dropped} records could not be written and were dropped"),
                );
            }
            buffer.unwritten = kept;
            return Err(e.into());
        }
        self.flushed_records
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        Ok(records.len())
    }

    /// Flushes if the interval has passed (cheap to call after every decision).
    pub(crate) async fn flush_if_due(&self, store: &dyn Store) -> Result<usize, ServiceError> {
        let due = lock(&self.last_flush).elapsed() >= self.interval;
        if due { self.flush(store).await } else { Ok(0) }
    }
}

/// Groups uses into records: one account and day each, at most [`MAX_KEYS_PER_RECORD`] keys.
fn into_records(pending: Vec<Pending>) -> Result<Vec<UsageRecord>, ServiceError> {
    let mut groups: HashMap<(String, NaiveDate), Vec<KeyUse>> = HashMap::new();
    for p in pending {
        groups.entry((p.account, p.day)).or_default().push(p.uses);
    }
    let mut records = Vec::new();
    for ((account, day), uses) in groups {
        for chunk in uses.chunks(MAX_KEYS_PER_RECORD) {
            records.push(UsageRecord {
                id: new_id("usage")?,
                account: account.clone(),
                day,
                keys: chunk.to_vec(),
            });
        }
    }
    Ok(records)
}
