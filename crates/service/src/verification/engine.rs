//! The verification engine: resolves a presented token to its key through a cache kept correct
//! by the store's change feed, and holds the usage buffer. It decides nothing: the one decision
//! function ([`super::Verifier::decide`]) asks it for the key and tells it the outcome.
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
//! # When the store is down
//!
//! A read that fails because the store is unavailable may be answered from an entry older
//! than the bound, while it is less than `bound + stale_if_error` old: the only time the
//! revocation bound stretches, and only by that window. An entry the change feed or a local
//! change evicted is gone, so a change the engine has seen is never served stale. Without a
//! usable entry the read fails, and the decision answers `UNAVAILABLE`. After a read fails,
//! the engine stops asking the store for [`PROBE_INTERVAL`] (one request then probes it, and a
//! successful change-feed sync ends the outage at once): during an outage verifications answer
//! at once, not each after the store's full timeout.
//!
//! Usage is counted in memory per key and outcome and written as usage records
//! ([`UsageStore::write_usage`](keyward_store::UsageStore::write_usage)) at most once per
//! `usage_flush` interval (see the `usage` module). Rate-limit budgets are spent from leases
//! the engine holds (see the `limiter` module). Both are kept in the key's one entry (the
//! `key_state` module), which its cache entries hold: a cache hit looks up one map.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use keyward_core::decision::Code;
use keyward_core::hash::{KeyHash, Pepper};
use keyward_core::key::ApiKey;
use keyward_core::rate::{Counter, Purpose};
use keyward_core::token::{Prefix, Token};
use keyward_core::usage::Outcome;
use keyward_store::{Store, StoreError};

use super::key_state::{KeyState, KeyStates};
use super::limiter::{Limiter, Spend};
use super::usage::UsageBuffer;
use super::{AtomicInstant, FastMap, lock};
use crate::error::{STORE_RETRY_AFTER_SECS, ServiceError};
use crate::fault::FAULTS;

/// How long after a failed store read verifications answer without asking the store again.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// How the engine trades freshness for cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineConfig {
    /// The longest a change may take to reach this engine.
    pub revocation_bound: Duration,
    /// The most keys (and unknown hashes) held in memory.
    pub cache_capacity: usize,
    /// How often buffered usage is written.
    pub usage_flush: Duration,
    /// How long past the bound a cached entry may still answer while the store is
    /// unavailable (zero: never).
    pub stale_if_error: Duration,
}

impl EngineConfig {
    /// How often a long-lived engine applies the change feed: twice per bound, so a change is
    /// applied well within it (one consistent query of the feed per poll).
    pub fn poll_interval(&self) -> Duration {
        (self.revocation_bound / 2).max(Duration::from_millis(50))
    }
}

impl Default for EngineConfig {
    /// Changes reach a running engine within a second: two feed polls a second, about 5.3
    /// million consistent reads per instance-month (docs/performance.md prices them).
    fn default() -> Self {
        Self {
            revocation_bound: Duration::from_secs(1),
            cache_capacity: 100_000,
            usage_flush: Duration::from_secs(10),
            stale_if_error: Duration::from_secs(60),
        }
    }
}

/// A presented token resolved to its key (or to none).
#[derive(Debug, Clone)]
pub struct Resolved {
    pub key: Option<Arc<ApiKey>>,
    /// The key's state in this engine (with `key`): what spending and counting use.
    pub(crate) state: Option<Arc<KeyState>>,
    /// When the token is the key's previous secret: the end of its grace.
    pub grace_until: Option<DateTime<Utc>>,
    /// Whether the cache answered (no store read).
    pub cached: bool,
    /// Whether the entry was past the bound, served because the store is unavailable.
    pub stale: bool,
}

/// Counters, for tests, logs and `keyward bench`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub verifications: u64,
    pub cache_hits: u64,
    pub key_reads: u64,
    pub feed_reads: u64,
    /// Flushes that wrote usage records, and the records written.
    pub usage_flushes: u64,
    pub usage_records: u64,
    /// Rate-limit leases asked of the store.
    pub leases: u64,
}

#[derive(Debug)]
struct Entry {
    known: Known,
    fetched: Instant,
}

/// What a cached entry holds: the key (or none) with its state, and, for a previous secret,
/// its grace end.
#[derive(Debug, Clone)]
struct Known {
    key: Option<(Arc<ApiKey>, Arc<KeyState>)>,
    grace_until: Option<DateTime<Utc>>,
}

impl Known {
    fn resolved(self, cached: bool, stale: bool) -> Resolved {
        let (key, state) = self.key.unzip();
        Resolved {
            key,
            state,
            grace_until: self.grace_until,
            cached,
            stale,
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    verifications: AtomicU64,
    cache_hits: AtomicU64,
    key_reads: AtomicU64,
    feed_reads: AtomicU64,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn Store>,
    pepper: Arc<Pepper>,
    prefix: Prefix,
    config: EngineConfig,
    cache: Mutex<FastMap<KeyHash, Entry>>,
    keys: KeyStates,
    /// The start of the last successful sync: changes before it are applied. Stored after
    /// the sync's evictions, so whoever loads it sees them.
    synced: AtomicInstant,
    /// The same instant on the wall clock, where the next sync reads from.
    synced_wall: Mutex<DateTime<Utc>>,
    /// When a store read last failed as unavailable, while the outage lasts.
    down_since: Mutex<Option<Instant>>,
    usage: UsageBuffer,
    limiter: Limiter,
    counters: Counters,
}

/// A verification engine. Cheap to clone; clones share the cache.
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
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
                cache: Mutex::default(),
                keys: KeyStates::new(config.cache_capacity),
                synced: AtomicInstant::none(),
                synced_wall: Mutex::new(Utc::now()),
                down_since: Mutex::new(None),
                usage: UsageBuffer::new(config.usage_flush),
                limiter: Limiter::default(),
                counters: Counters::default(),
            }),
        }
    }

    /// The cached entry for `hash`, if what it knows is less than `max_age` old.
    fn cached(&self, hash: &KeyHash, now: Instant, max_age: Duration) -> Option<Known> {
        let synced = self.inner.synced.load();
        let cache = lock(&self.inner.cache);
        let entry = cache.get(hash)?;
        let known_as_of = synced.map_or(entry.fetched, |s| s.max(entry.fetched));
        (now.duration_since(known_as_of) < max_age).then(|| entry.known.clone())
    }

    fn remember(&self, hash: KeyHash, known: Known, fetched: Instant) {
        let mut cache = lock(&self.inner.cache);
        if cache.len() >= self.inner.config.cache_capacity && !cache.contains_key(&hash) {
            // Drop what can no longer be served anyway; if that frees nothing, start over.
            let bound = self.inner.config.revocation_bound;
            cache.retain(|_, e| fetched.duration_since(e.fetched) < bound);
            if cache.len() >= self.inner.config.cache_capacity {
                cache.clear();
            }
        }
        cache.insert(hash, Entry { known, fetched });
    }

    /// The key the token `presented` belongs to: shape and checksum first (no I/O), then the
    /// cache, then at most one store read.
    pub async fn resolve(&self, presented: Option<&str>) -> Result<Resolved, ServiceError> {
        let c = &self.inner.counters;
        c.verifications.fetch_add(1, Ordering::Relaxed);
        let Some(Ok(token)) = presented.map(|p| Token::parse_for(p, &self.inner.prefix)) else {
            return Ok(Known {
                key: None,
                grace_until: None,
            }
            .resolved(false, false));
        };
        let hash = self.inner.pepper.hash(&token);
        let now = Instant::now();
        let config = &self.inner.config;
        if let Some(known) = self.cached(&hash, now, config.revocation_bound) {
            c.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(known.resolved(true, false));
        }
        let down = *lock(&self.inner.down_since);
        if down.is_some_and(|since| now.duration_since(since) < PROBE_INTERVAL) {
            return self.while_down(&hash, now);
        }
        c.key_reads.fetch_add(1, Ordering::Relaxed);
        match self.inner.store.find_key_by_hash(&hash).await {
            Ok(found) => {
                *lock(&self.inner.down_since) = None;
                let known = Known {
                    grace_until: found.as_ref().and_then(|m| m.grace_until),
                    key: found.map(|m| {
                        let state = self.inner.keys.of(&m.key.id);
                        (Arc::new(m.key), state)
                    }),
                };
                self.remember(hash, known.clone(), now);
                Ok(known.resolved(false, false))
            }
            Err(StoreError::Unavailable(cause)) => {
                FAULTS.report("the store is unavailable to verification", &cause);
                *lock(&self.inner.down_since) = Some(Instant::now());
                self.while_down(&hash, now)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The answer while the store is unavailable: a cached entry within the stale-if-error
    /// window, or `Unavailable`.
    fn while_down(&self, hash: &KeyHash, now: Instant) -> Result<Resolved, ServiceError> {
        let config = &self.inner.config;
        let window = config.revocation_bound + config.stale_if_error;
        match self.cached(hash, now, window) {
            Some(known) if !config.stale_if_error.is_zero() => Ok(known.resolved(true, true)),
            _ => Err(ServiceError::Unavailable {
                retry_after_secs: STORE_RETRY_AFTER_SECS,
            }),
        }
    }

    /// Counts a decided verification of `key`, whose state is `state` (once, after the
    /// decision, by its outcome) and writes the buffer when the flush interval has passed.
    pub(crate) async fn count(
        &self,
        state: &Arc<KeyState>,
        key: &ApiKey,
        code: Code,
        ip: Option<IpAddr>,
        at: DateTime<Utc>,
    ) {
        self.inner
            .usage
            .count(state, key, Outcome::of(code), ip, at);
        if let Err(e) = self.inner.usage.flush_if_due(&*self.inner.store).await {
            FAULTS.report("usage flush failed", &e);
        }
    }

    /// Spends one use of `key`'s `purpose` budget, limited to `limit` a minute (see the
    /// `limiter` module), for a key read without the cache (management calls).
    pub(crate) async fn spend(
        &self,
        key: &ApiKey,
        purpose: Purpose,
        limit: u32,
        at: DateTime<Utc>,
    ) -> Result<Spend, ServiceError> {
        let state = self.inner.keys.of(&key.id);
        self.spend_from(&state, key, purpose, limit, at).await
    }

    /// Spends one use of `key`'s `purpose` budget, held in its `state`. While the store is
    /// known to be down (a read or a lease failed less than [`PROBE_INTERVAL`] ago), a use
    /// that needs a lease answers unavailable at once.
    pub(crate) async fn spend_from(
        &self,
        state: &KeyState,
        key: &ApiKey,
        purpose: Purpose,
        limit: u32,
        at: DateTime<Utc>,
    ) -> Result<Spend, ServiceError> {
        let store_down =
            || lock(&self.inner.down_since).is_some_and(|t| t.elapsed() < PROBE_INTERVAL);
        let spent = self
            .inner
            .limiter
            .spend(
                state.budget(purpose),
                &*self.inner.store,
                &key.account,
                &key.id,
                purpose,
                limit,
                at,
                &store_down,
            )
            .await?;
        if spent == Spend::Unavailable && !store_down() {
            // Like a failed read: requests that need the store answer at once for a while.
            *lock(&self.inner.down_since) = Some(Instant::now());
        }
        Ok(spent)
    }

    /// What is left of `key`'s verification budget this minute, at most (nothing is spent).
    pub(crate) async fn budget_left(
        &self,
        key: &ApiKey,
        at: DateTime<Utc>,
    ) -> Result<u32, ServiceError> {
        let counter = Counter {
            account: key.account.clone(),
            key_id: key.id.clone(),
            purpose: Purpose::Verify,
        };
        self.inner
            .limiter
            .left(&*self.inner.store, &counter, key.rate_limit_per_minute, at)
            .await
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
        let since = *lock(&self.inner.synced_wall) - overlap;
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
        let mut wall = lock(&self.inner.synced_wall);
        self.inner.synced.store(started);
        *lock(&self.inner.down_since) = None;
        *wall = started_wall;
        Ok(dropped)
    }

    /// Drops every cached entry of the key `key_id`, and what is cached for `new_hash` (a
    /// secret just installed may have been cached as unknown): a change made in this process
    /// is seen by this engine at once (other processes see it within the bound, via the change
    /// feed).
    pub fn forget_key(&self, key_id: &str, new_hash: Option<&KeyHash>) {
        let mut cache = lock(&self.inner.cache);
        cache.retain(|_, e| e.known.key.as_ref().is_none_or(|(k, _)| k.id != key_id));
        if let Some(hash) = new_hash {
            cache.remove(hash);
        }
    }

    /// Writes buffered usage now. Answers how many usage records were written.
    pub async fn flush_usage(&self) -> Result<usize, ServiceError> {
        self.inner.usage.flush(&*self.inner.store).await
    }

    /// Runs the change-feed poller and the usage flusher until the process ends: a sync every
    /// [`EngineConfig::poll_interval`], a flush every interval. Errors are logged and retried on the next tick.
    pub fn spawn_background(&self) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        let tick = engine.inner.config.poll_interval();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(tick);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                if let Err(e) = engine.sync().await {
                    FAULTS.report("change feed sync failed", &e);
                }
                if let Err(e) = engine.inner.usage.flush_if_due(&*engine.inner.store).await {
                    FAULTS.report("usage flush failed", &e);
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
            usage_flushes: self.inner.usage.flushes.load(Ordering::Relaxed),
            usage_records: self.inner.usage.flushed_records.load(Ordering::Relaxed),
            leases: self.inner.limiter.leases.load(Ordering::Relaxed),
        }
    }
}
