//! The verification engine behind the authorizer, `POST /v1/verify` in `keyward serve` and the
//! local gateway: a cache of verified keys, kept correct by the store's change feed, and a
//! usage buffer flushed in batches.
//!
//! # The freshness rule
//!
//! A cached entry reflects the store as of `max(fetched, synced)`: when it was read, or when
//! the change feed was last applied (every change committed before a sync started has evicted
//! its hash). An entry is served only while that instant is less than `bound` ago; otherwise
//! the key is read again (one store read). So a revoke, deactivation, scope change or delete
//! reaches every engine within `bound`, whether or not its poller ran (a frozen Lambda's does
//! not), and a warm hit costs no read at all while the poller keeps up.
//!
//! Usage is counted in memory per key and written with [`Store::record_usage`] at most once per
//! `usage_flush` interval, so a hot key costs a few writes per interval, not one per request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use keyward_core::decision::{AccessRequest, Code, decide};
use keyward_core::hash::{KeyHash, Pepper};
use keyward_core::key::ApiKey;
use keyward_core::token::{Prefix, Token};
use keyward_core::usage::UsageDelta;
use keyward_store::Store;

use crate::error::ServiceError;

/// How the engine trades freshness for cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineConfig {
    /// The longest a change may take to reach this engine.
    pub revocation_bound: Duration,
    /// The most keys (and unknown hashes) held in memory.
    pub cache_capacity: usize,
    /// How often buffered usage is written.
    pub usage_flush: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            revocation_bound: Duration::from_secs(5),
            cache_capacity: 100_000,
            usage_flush: Duration::from_secs(10),
        }
    }
}

/// The outcome of a verification and the key it was about (when one was found).
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub code: Code,
    pub key: Option<Arc<ApiKey>>,
    /// Whether the key came from the cache (no store read).
    pub cached: bool,
}

/// Counters, for tests, logs and `keyward bench`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub verifications: u64,
    pub cache_hits: u64,
    pub key_reads: u64,
    pub feed_reads: u64,
    pub usage_flushes: u64,
    pub usage_deltas: u64,
}

#[derive(Debug)]
struct Entry {
    key: Option<Arc<ApiKey>>,
    fetched: Instant,
}

#[derive(Debug)]
struct Sync {
    /// Monotonic start of the last successful sync: changes before it are applied.
    at: Option<Instant>,
    /// The same instant on the wall clock, where the next sync reads from.
    wall: DateTime<Utc>,
}

#[derive(Debug, Default)]
struct Counters {
    verifications: AtomicU64,
    cache_hits: AtomicU64,
    key_reads: AtomicU64,
    feed_reads: AtomicU64,
    usage_flushes: AtomicU64,
    usage_deltas: AtomicU64,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn Store>,
    pepper: Arc<Pepper>,
    prefix: Prefix,
    config: EngineConfig,
    cache: Mutex<HashMap<KeyHash, Entry>>,
    sync: Mutex<Sync>,
    usage: Mutex<HashMap<String, UsageDelta>>,
    last_flush: Mutex<Instant>,
    counters: Counters,
}

/// A verification engine. Cheap to clone; clones share the cache.
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

/// Locks, recovering the data if a panicking thread poisoned it (the maps stay consistent:
/// every critical section is a single insert, remove or swap).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Engine {
    pub fn new(
        store: Arc<dyn Store>,
        pepper: Arc<Pepper>,
        prefix: Prefix,
        config: EngineConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                pepper,
                prefix,
                config,
                cache: Mutex::new(HashMap::new()),
                sync: Mutex::new(Sync {
                    at: None,
                    wall: Utc::now(),
                }),
                usage: Mutex::new(HashMap::new()),
                last_flush: Mutex::new(Instant::now()),
                counters: Counters::default(),
            }),
        }
    }

    /// The cached entry for `hash`, if it is still within the freshness bound.
    fn cached(&self, hash: &KeyHash, now: Instant) -> Option<Option<Arc<ApiKey>>> {
        let synced = lock(&self.inner.sync).at;
        let cache = lock(&self.inner.cache);
        let entry = cache.get(hash)?;
        let known_as_of = synced.map_or(entry.fetched, |s| s.max(entry.fetched));
        (now.duration_since(known_as_of) < self.inner.config.revocation_bound)
            .then(|| entry.key.clone())
    }

    fn remember(&self, hash: KeyHash, key: Option<Arc<ApiKey>>, fetched: Instant) {
        let mut cache = lock(&self.inner.cache);
        if cache.len() >= self.inner.config.cache_capacity && !cache.contains_key(&hash) {
            // Drop what can no longer be served anyway; if that frees nothing, start over.
            let bound = self.inner.config.revocation_bound;
            cache.retain(|_, e| fetched.duration_since(e.fetched) < bound);
            if cache.len() >= self.inner.config.cache_capacity {
                cache.clear();
            }
        }
        cache.insert(hash, Entry { key, fetched });
    }

    /// Decides `request` for the token `presented`: shape and checksum first (no I/O), then the
    /// cache, then at most one store read.
    pub async fn verify(
        &self,
        presented: Option<&str>,
        request: &AccessRequest,
    ) -> Result<Decision, ServiceError> {
        let c = &self.inner.counters;
        c.verifications.fetch_add(1, Ordering::Relaxed);
        let token = match presented.map(|p| Token::parse_for(p, &self.inner.prefix)) {
            Some(Ok(token)) => token,
            _ => {
                return Ok(Decision {
                    code: Code::NotFound,
                    key: None,
                    cached: false,
                });
            }
        };
        let hash = self.inner.pepper.hash(&token);
        let now = Instant::now();
        let (key, cached) = match self.cached(&hash, now) {
            Some(key) => {
                c.cache_hits.fetch_add(1, Ordering::Relaxed);
                (key, true)
            }
            None => {
                c.key_reads.fetch_add(1, Ordering::Relaxed);
                let key = self
                    .inner
                    .store
                    .find_key_by_hash(&hash)
                    .await?
                    .map(Arc::new);
                self.remember(hash, key.clone(), now);
                (key, false)
            }
        };
        let wall = Utc::now();
        let code = decide(key.as_deref(), request, wall);
        if code == Code::Valid
            && let Some(k) = &key
        {
            self.count_use(k, request, wall);
        }
        Ok(Decision { code, key, cached })
    }

    fn count_use(&self, key: &ApiKey, request: &AccessRequest, at: DateTime<Utc>) {
        let mut usage = lock(&self.inner.usage);
        let delta = usage.entry(key.id.clone()).or_insert_with(|| UsageDelta {
            account: key.account.clone(),
            key_id: key.id.clone(),
            count: 0,
            last_used_at: at,
            last_used_ip: None,
        });
        delta.count += 1;
        delta.last_used_at = at;
        if request.source_ip.is_some() {
            delta.last_used_ip = request.source_ip;
        }
    }

    /// Applies the store's change feed: every hash changed since the last sync (with overlap
    /// for clock skew) is dropped from the cache. Answers how many entries were dropped.
    pub async fn sync(&self) -> Result<usize, ServiceError> {
        let started = Instant::now();
        let started_wall = Utc::now();
        let overlap = chrono::Duration::from_std(
            self.inner
                .config
                .revocation_bound
                .max(Duration::from_secs(2)),
        )
        .unwrap_or_else(|_| chrono::Duration::seconds(5));
        // The first sync reads from the engine's creation (minus the overlap), so it covers
        // every change made after any entry was fetched.
        let since = lock(&self.inner.sync).wall - overlap;
        self.inner
            .counters
            .feed_reads
            .fetch_add(1, Ordering::Relaxed);
        let changes = self.inner.store.changes_since(since).await?;
        let mut dropped = 0;
        {
            let mut cache = lock(&self.inner.cache);
            for change in &changes {
                dropped += usize::from(cache.remove(&change.hash).is_some());
            }
        }
        let mut s = lock(&self.inner.sync);
        s.at = Some(started);
        s.wall = started_wall;
        Ok(dropped)
    }

    /// Drops every cached entry of the key `key_id`: a change made in this process is seen by
    /// this engine at once (other processes see it within the bound, via the change feed).
    pub fn forget_key(&self, key_id: &str) {
        lock(&self.inner.cache).retain(|_, e| e.key.as_ref().is_none_or(|k| k.id != key_id));
    }

    /// Writes buffered usage now. Answers how many keys' usage was written.
    pub async fn flush_usage(&self) -> Result<usize, ServiceError> {
        let deltas: Vec<UsageDelta> = {
            let mut usage = lock(&self.inner.usage);
            std::mem::take(&mut *usage).into_values().collect()
        };
        *lock(&self.inner.last_flush) = Instant::now();
        if deltas.is_empty() {
            return Ok(0);
        }
        let c = &self.inner.counters;
        c.usage_flushes.fetch_add(1, Ordering::Relaxed);
        c.usage_deltas
            .fetch_add(deltas.len() as u64, Ordering::Relaxed);
        if let Err(e) = self.inner.store.record_usage(&deltas).await {
            // Put the counts back so the next flush carries them.
            let mut usage = lock(&self.inner.usage);
            for d in deltas {
                let slot = usage.entry(d.key_id.clone()).or_insert_with(|| UsageDelta {
                    count: 0,
                    ..d.clone()
                });
                slot.count += d.count;
            }
            return Err(e.into());
        }
        Ok(deltas.len())
    }

    /// Flushes usage if the interval has passed (cheap to call after every request).
    pub async fn flush_usage_if_due(&self) -> Result<usize, ServiceError> {
        let due = lock(&self.inner.last_flush).elapsed() >= self.inner.config.usage_flush;
        if due { self.flush_usage().await } else { Ok(0) }
    }

    /// Runs the change-feed poller and the usage flusher until the process ends: a sync every
    /// half bound, a flush every interval. Errors are logged and retried on the next tick.
    pub fn spawn_background(&self) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        let tick = (engine.inner.config.revocation_bound / 2).max(Duration::from_millis(50));
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(tick);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                if let Err(e) = engine.sync().await {
                    tracing::warn!(error = %e, "change feed sync failed");
                }
                if let Err(e) = engine.flush_usage_if_due().await {
                    tracing::warn!(error = %e, "usage flush failed");
                }
            }
        })
    }

    pub fn stats(&self) -> EngineStats {
        let c = &self.inner.counters;
        EngineStats {
            verifications: c.verifications.load(Ordering::Relaxed),
            cache_hits: c.cache_hits.load(Ordering::Relaxed),
            key_reads: c.key_reads.load(Ordering::Relaxed),
            feed_reads: c.feed_reads.load(Ordering::Relaxed),
            usage_flushes: c.usage_flushes.load(Ordering::Relaxed),
            usage_deltas: c.usage_deltas.load(Ordering::Relaxed),
        }
    }
}
