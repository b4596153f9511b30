//! The usage buffer: verifications counted in memory after the decision, written in batches.
//!
//! A hot key costs a few writes per flush interval, not one per request. The buffer is flushed
//! from here only: when a count finds the interval passed (the request path, which is all a
//! Lambda between invocations has), and by the engine's background task in long-lived
//! processes. A failed write puts the counts back for the next flush.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use keyward_core::decision::Code;
use keyward_core::key::ApiKey;
use keyward_core::usage::UsageDelta;
use keyward_store::Store;

use super::lock;
use crate::error::ServiceError;

#[derive(Debug)]
pub(crate) struct UsageBuffer {
    interval: Duration,
    deltas: Mutex<HashMap<String, UsageDelta>>,
    last_flush: Mutex<Instant>,
    pub(crate) flushes: AtomicU64,
    pub(crate) flushed_deltas: AtomicU64,
}

impl UsageBuffer {
    pub(crate) fn new(interval: Duration) -> Self {
        Self {
            interval,
            deltas: Mutex::new(HashMap::new()),
            last_flush: Mutex::new(Instant::now()),
            flushes: AtomicU64::new(0),
            flushed_deltas: AtomicU64::new(0),
        }
    }

    /// Counts one decided verification of `key`. Only a `VALID` one is a use of the key;
    /// denials are decided but not counted as uses.
    pub(crate) fn count(&self, key: &ApiKey, code: Code, ip: Option<IpAddr>, at: DateTime<Utc>) {
        if code != Code::Valid {
            return;
        }
        let mut deltas = lock(&self.deltas);
        // A hot key finds its entry without allocating: the id is copied once per flush.
        let delta = match deltas.get_mut(&key.id) {
            Some(delta) => delta,
            None => deltas.entry(key.id.clone()).or_insert_with(|| UsageDelta {
                account: key.account.clone(),
                key_id: key.id.clone(),
                count: 0,
                last_used_at: at,
                last_used_ip: None,
            }),
        };
        delta.count += 1;
        delta.last_used_at = at;
        if ip.is_some() {
            delta.last_used_ip = ip;
        }
    }

    /// Writes what is buffered now. Answers how many keys' usage was written.
    pub(crate) async fn flush(&self, store: &dyn Store) -> Result<usize, ServiceError> {
        let deltas: Vec<UsageDelta> = std::mem::take(&mut *lock(&self.deltas))
            .into_values()
            .collect();
        *lock(&self.last_flush) = Instant::now();
        if deltas.is_empty() {
            return Ok(0);
        }
        self.flushes.fetch_add(1, Ordering::Relaxed);
        self.flushed_deltas
            .fetch_add(deltas.len() as u64, Ordering::Relaxed);
        if let Err(e) = store.record_usage(&deltas).await {
            // Put the counts back so the next flush carries them.
            let mut buffered = lock(&self.deltas);
            for d in deltas {
                let slot = buffered
                    .entry(d.key_id.clone())
                    .or_insert_with(|| UsageDelta {
                        count: 0,
                        ..d.clone()
                    });
                slot.count += d.count;
            }
            return Err(e.into());
        }
        Ok(deltas.len())
    }

    /// Flushes if the interval has passed (cheap to call after every decision).
    pub(crate) async fn flush_if_due(&self, store: &dyn Store) -> Result<usize, ServiceError> {
        let due = lock(&self.last_flush).elapsed() >= self.interval;
        if due { self.flush(store).await } else { Ok(0) }
    }
}
