//! The usage buffer: verifications counted in memory after the decision, by outcome, and
//! flushed as usage records in batches.
//!
//! A hot key costs one record entry per flush interval, not a write per request. A key's
//! current uses are counted in its own entry (see the `key_state` module), under its own lock;
//! the buffer keeps the list of keys counted since the last flush. The buffer is flushed from
//! here only: when a count finds the interval passed (the request path, which is all a Lambda
//! between invocations has), and by the engine's background task in long-lived processes.
//! Records are built once and keep their ids, and are kept until the store has taken them: a
//! failed or cancelled write is retried with the same records, so a record the store did take
//! is never rolled up twice under two ids, and none is lost with a request that went away.

use std::collections::HashMap;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use keyward_core::id::new_id;
use keyward_core::key::ApiKey;
use keyward_core::usage::{KeyUse, MAX_KEYS_PER_RECORD, Outcome, Outcomes, UsageRecord};
use keyward_store::Store;

use super::key_state::KeyState;
use super::{AtomicInstant, lock};
use crate::error::ServiceError;
use crate::fault::FAULTS;

/// The most records kept for a retry while the store refuses them; past it the oldest are
/// dropped (and the loss logged): counts are bounded, memory too.
const MAX_UNWRITTEN_RECORDS: usize = 10_000;

/// One key's uses on one day.
#[derive(Debug)]
pub(crate) struct Pending {
    account: String,
    day: NaiveDate,
    uses: KeyUse,
}

#[derive(Debug, Default)]
struct Buffer {
    /// The keys whose entry holds uses not yet taken (each once).
    counted: Vec<Arc<KeyState>>,
    /// Uses of days that ended before their flush.
    sealed: Vec<Pending>,
    /// Records built and not yet written (a failed flush).
    unwritten: Vec<UsageRecord>,
}

#[derive(Debug)]
pub(crate) struct UsageBuffer {
    interval: Duration,
    buffer: Mutex<Buffer>,
    /// When the last flush started (at first, when the buffer was made).
    last_flush: AtomicInstant,
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
            last_flush: AtomicInstant::now(),
            flushing: tokio::sync::Mutex::new(()),
            flushes: AtomicU64::new(0),
            flushed_records: AtomicU64::new(0),
        }
    }

    /// Counts one decided verification of `key`, whose entry is `state`, by its outcome.
    pub(crate) fn count(
        &self,
        state: &Arc<KeyState>,
        key: &ApiKey,
        outcome: Outcome,
        ip: Option<IpAddr>,
        at: DateTime<Utc>,
    ) {
        let day = at.date_naive();
        let mut cell = lock(&state.usage);
        // A hot key counts into its entry without allocating: the id is copied once per flush.
        if !matches!(&*cell, Some(p) if p.day == day) {
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
            let mut buffer = lock(&self.buffer);
            match cell.replace(fresh) {
                Some(ended) => buffer.sealed.push(ended),
                // Listed while the entry's lock is held: a flush takes the list, then each
                // entry's uses, so an entry is listed exactly while it holds uses.
                None => buffer.counted.push(Arc::clone(state)),
            }
        }
        let Some(pending) = &mut *cell else {
            return;
        };
        pending.uses.outcomes.add(outcome);
        if at >= pending.uses.last_used_at {
            // The latest verification's address, unknown included.
            pending.uses.last_used_at = at;
            pending.uses.last_used_ip = ip;
        }
    }

    /// Writes what is buffered now. Answers how many records were written.
    pub(crate) async fn flush(&self, store: &dyn Store) -> Result<usize, ServiceError> {
        let _flushing = self.flushing.lock().await;
        // The list is taken under the buffer's lock, and each key's uses after it is released:
        // a count holds its key's lock while it takes the buffer's, never the other way round.
        let counted = std::mem::take(&mut lock(&self.buffer).counted);
        let mut pending: Vec<Pending> = counted
            .iter()
            .filter_map(|state| lock(&state.usage).take())
            .collect();
        let records = {
            let mut buffer = lock(&self.buffer);
            pending.append(&mut buffer.sealed);
            let built = match into_records(&pending) {
                Ok(built) => built,
                Err(e) => {
                    // No record id could be made (the OS RNG failed): keep every count.
                    buffer.sealed = pending;
                    return Err(e);
                }
            };
            // Kept as unwritten until the store has them, so that a flush that fails, or
            // whose caller goes away mid-write (a cancelled request), leaves them to the next;
            // a record written twice is taken once (by its id).
            buffer.unwritten.extend(built);
            let unwritten = buffer.unwritten.len();
            if unwritten > MAX_UNWRITTEN_RECORDS {
                let dropped = unwritten - MAX_UNWRITTEN_RECORDS;
                buffer.unwritten.drain(..dropped);
                FAULTS.report(
                    "usage records dropped",
                    &format!("{dropped} records could not be written and were dropped"),
                );
            }
            buffer.unwritten.clone()
        };
        self.last_flush.store(Instant::now());
        if records.is_empty() {
            return Ok(0);
        }
        self.flushes.fetch_add(1, Ordering::Relaxed);
        store.write_usage(&records).await?;
        // Flushes are serialised (`flushing`): what is unwritten now is what was written.
        lock(&self.buffer).unwritten.clear();
        self.flushed_records
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        Ok(records.len())
    }

    /// Flushes if the interval has passed (cheap to call after every decision).
    pub(crate) async fn flush_if_due(&self, store: &dyn Store) -> Result<usize, ServiceError> {
        let due = self
            .last_flush
            .load()
            .is_none_or(|last| last.elapsed() >= self.interval);
        if due { self.flush(store).await } else { Ok(0) }
    }
}

/// Groups uses into records: one account and day each, at most [`MAX_KEYS_PER_RECORD`] keys,
/// each key once (uses of one key and day that arrived out of order are merged: a roll-up
/// writes each item once).
fn into_records(pending: &[Pending]) -> Result<Vec<UsageRecord>, ServiceError> {
    let mut groups: HashMap<(&str, NaiveDate), HashMap<&str, KeyUse>> = HashMap::new();
    for p in pending {
        let keys = groups.entry((p.account.as_str(), p.day)).or_default();
        match keys.get_mut(p.uses.key_id.as_str()) {
            Some(merged) => merged.merge(&p.uses),
            None => {
                keys.insert(p.uses.key_id.as_str(), p.uses.clone());
            }
        }
    }
    let mut records = Vec::new();
    for ((account, day), keys) in groups {
        let uses: Vec<KeyUse> = keys.into_values().collect();
        for chunk in uses.chunks(MAX_KEYS_PER_RECORD) {
            records.push(UsageRecord {
                id: new_id("usage")?,
                account: account.to_owned(),
                day,
                keys: chunk.to_vec(),
            });
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(key_id: &str, day: &str, valid: u64, at: &str) -> Pending {
        Pending {
            account: "acc".into(),
            day: day.parse().unwrap(),
            uses: KeyUse {
                key_id: key_id.into(),
                outcomes: Outcomes {
                    valid,
                    ..Outcomes::default()
                },
                last_used_at: at.parse().unwrap(),
                last_used_ip: None,
            },
        }
    }

    #[test]
    fn a_key_appears_once_per_record_even_when_its_uses_arrived_out_of_order() {
        // Around midnight: day 2, a late day-1 count, day 2 again (each sealed the last).
        let records = into_records(&[
            pending("key_a", "2026-11-28", 2, "2026-11-28T00:00:01Z"),
            pending("key_a", "2026-11-27", 1, "2026-11-27T23:59:59Z"),
            pending("key_a", "2026-11-28", 3, "2026-11-28T00:00:02Z"),
            pending("key_b", "2026-11-28", 1, "2026-11-28T00:00:00Z"),
        ])
        .unwrap();
        let mut seen: Vec<(String, Vec<(String, u64)>)> = records
            .iter()
            .map(|r| {
                let mut keys: Vec<_> = r
                    .keys
                    .iter()
                    .map(|k| (k.key_id.clone(), k.outcomes.valid))
                    .collect();
                keys.sort();
                (r.day.to_string(), keys)
            })
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            [
                ("2026-11-27".into(), vec![("key_a".into(), 1)]),
                (
                    "2026-11-28".into(),
                    vec![("key_a".into(), 5), ("key_b".into(), 1)]
                ),
            ]
        );
        let merged = records
            .iter()
            .flat_map(|r| &r.keys)
            .find(|k| k.key_id == "key_a" && k.outcomes.valid == 5)
            .unwrap();
        assert_eq!(
            merged.last_used_at.to_rfc3339(),
            "2026-11-28T00:00:02+00:00"
        );
    }
}
