//! `keyward bench cost`: what verification costs beyond API Gateway, per million requests — the
//! authorizer's Lambda invocations, the store reads and writes behind them, and the usage
//! aggregation they cause — priced from the list prices of [`super::prices`].
//!
//! The model is a pure function, [`evaluate`], from a [`TrafficModel`] to a [`Report`]; the
//! command only turns flags into the model and the report into text or JSON.
//!
//! # How a request turns into work, and where each rule comes from
//!
//! 1. **Popularity.** Key `k` (1-based) of `N` takes the share `k^-s / Σ j^-s` of the requests
//!    (Zipf-like, [`zipf_weights`]); each key's requests are a Poisson stream.
//! 2. **API Gateway's authorizer result cache** (deployment setting "cache-safe answers",
//!    DESIGN.md "Verification"). A REST authorizer's answer is cached per token and covers every
//!    route; an HTTP API's per identity-source tuple (token, route, path), so a key has
//!    `routes × paths` entries, its traffic split evenly over them. An entry refreshed on a miss
//!    and kept `T` seconds turns a Poisson rate `λ` into `λ / (1 + λT)` invocations
//!    ([`cached_invocation_rate`], exact: each miss opens a window of `T` and the next miss comes
//!    `1/λ` after it closes). `T = 0` invokes on every request. The deployment sets `T` to the
//!    revocation bound minus the engine's bound, in whole seconds, so a revoked key stops within
//!    the revocation bound end to end ([`TrafficModel::resolved_ttl`]).
//! 3. **Lambda instances.** Given, or derived from the mean concurrency (Little's law:
//!    invocations per second × billed duration, at least one). Each invocation goes to an
//!    instance drawn uniformly at random.
//! 4. **The engine's cache** (`crates/service/src/verification/engine.rs`, "The freshness
//!    rule"): per instance, an entry is served while `max(fetched, last sync)` is younger than
//!    the engine's bound; otherwise the key is read again. A read is one consistent `GetItem` of
//!    the key's `HASH#…` item (`crates/store/src/dynamodb/keys.rs` `find_key_by_hash`,
//!    `mod.rs` `get_item`): 1 RRU per 4 KB.
//! 5. **The change-feed poller** (`Engine::spawn_background`): one consistent `Query` of the
//!    `CHANGES` partition (`crates/store/src/dynamodb/changes.rs`) every
//!    [`EngineConfig::poll_interval`] (half the engine's bound), 1 RRU while the few seconds of
//!    changes it reads fit 4 KB. In Lambda the poller runs only while the instance handles an
//!    invocation (the environment is frozen between), and its interval delays missed ticks
//!    (`MissedTickBehavior::Delay`): a tick fires at the first invocation past its deadline, and
//!    the sync it starts lands after that invocation's own cache check. So a busy instance
//!    polls every interval and keeps its whole cache fresh; a quiet one polls less and its
//!    entries go stale. The simulation follows this per instance.
//! 6. **Rate-limit leases** (`crates/service/src/verification/limiter.rs`,
//!    `crates/core/src/rate.rs`, `crates/store/src/dynamodb/leases.rs`): every request that
//!    would otherwise be `VALID` spends one use of its key's minute from a block held in memory;
//!    when the block is empty the engine leases the next one, sized by the core's
//!    [`first_block`] and [`next_block`] (called here directly: the uses the rate seen since
//!    the last lease expects in the rest of the minute), with one conditional `UpdateItem`
//!    (1 WRU; a refused one costs its WRU too, and the remainder is asked for: [`grantable`]).
//!    Blocks and their clocks are per key per instance, the minute's budget per key in the
//!    store; a new minute empties the block. Once the store says the minute is spent the
//!    instance refuses without asking again.
//! 7. **Usage** (`crates/service/src/verification/usage.rs`): every verification is counted in
//!    memory and, at the first one at least `usage_flush` after the last flush, written as
//!    records: one per account (and day) per [`MAX_KEYS_PER_RECORD`] keys, each one `PutItem`
//!    (`crates/store/src/dynamodb/usage.rs` `write_usage`) of 1 WRU per KB of the record's item
//!    ([`record_item_bytes`], sized by the store's own compact encoding of the core's types,
//!    `crates/store/src/dynamodb/usage_record.rs`). The flush is awaited on the request path.
//! 8. **Aggregation** (`functions/aggregator`, `crates/service/src/aggregation.rs`,
//!    `apply_usage`): the table's stream delivers only usage-record inserts (the event source
//!    mapping's filter, `template.yaml` / `infra/main.tf`) in batches (batch size, a 1 s batching
//!    window, per stream shard); each record is rolled up in one `TransactWriteItems`: mark the
//!    record applied (an update of the whole record item), then per key its figures item
//!    (lifetime figures and the counts of its two latest days; never the key record), then one
//!    shard of the account's day ([`rollup_wru`]). A transactional write costs 2 WRU per KB of each item, an
//!    update the larger of its before and after size; a test holds this to the units DynamoDB
//!    Local reports for the store's own roll-up. Lambda's reads of the stream are free.
//! 9. **Compute.** Each invocation bills its duration rounded up to 1 ms, plus the store calls
//!    it waits for (a read, lease writes, usage puts) at `store_call_ms` each.
//!
//! Steps 1 and 2 have exact closed forms (used for the instance count, the first-sight reads and
//! a cross-check). Steps 4 to 8 depend on the order of events, so [`evaluate`] runs a seeded
//! simulation of the invocations — each cache entry as the renewal process step 2 describes,
//! instances starting at random phases of their poll and flush clocks — over a warm-up and then
//! the measured minutes: the same model and seed give the same report.
//!
//! # What it leaves out
//!
//! Every request is assumed to come with a valid key allowed on its route (denials spend no
//! lease), and every answer, allow or deny, is cached by API Gateway. Key changes (one re-read
//! per instance holding the key), cold starts (init time, the pepper's Secrets Manager call),
//! the day boundary's extra record, the engine's cache capacity, failures and retries are not
//! counted. A key read on first sight in an instance is amortised over the instance's lifetime
//! (closed form), not simulated.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use keyward_core::key::RATE_LIMIT_DEFAULT;
use keyward_core::rate::{first_block, grantable, next_block};
use keyward_core::usage::{KeyUse, MAX_KEYS_PER_RECORD, Outcomes, UsageRecord};
use keyward_service::verification::EngineConfig;
use keyward_store::dynamodb::usage_record;
use serde::Serialize;

use super::prices::{self, Price};
use crate::error::CliError;
use crate::output;

/// API Gateway's longest authorizer result TTL (REST and HTTP APIs alike).
pub const MAX_AUTHORIZER_TTL_SECS: u32 = 3600;

/// How many times a lease asks again (`LEASE_ATTEMPTS` in `crates/store/src/dynamodb/leases.rs`).
const LEASE_ATTEMPTS: u32 = 8;

/// A day item (a key's or a shard of the account's: keys, three counts and a TTL) is about
/// 100 bytes: 1 WRU.
const DAY_ITEM_WRU: u64 = 1;

/// A key's figures item (keys, a count, the last use and its address, two days' counts) is
/// about 300 bytes: 1 WRU.
const TOTAL_ITEM_WRU: u64 = 1;

/// A month as AWS bills it: 730 hours.
const SECONDS_PER_MONTH: f64 = 730.0 * 3600.0;

/// The most simulated invocations one evaluation may take (a bound on its time and memory).
const MAX_EVENTS: f64 = 50_000_000.0;

/// The most cache entries (keys × entries per key) one evaluation may track.
const MAX_ENTRIES: u64 = 5_000_000;

/// Which API Gateway fronts the authorizer: it decides what an authorizer result is cached by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// REST API: a result is cached per token and covers every route.
    Rest,
    /// HTTP API: a result is cached per (token, route, path).
    Http,
}

/// Everything the model takes. [`Default`] is the scenario `keyward bench cost` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrafficModel {
    /// Keys in use.
    pub keys: u32,
    /// Zipf exponent of their popularity (0: all alike).
    pub zipf_s: f64,
    /// Verification requests per second, all keys together.
    pub requests_per_second: f64,
    pub api: Api,
    /// Routes each key calls (HTTP API cache entries).
    pub routes_per_key: u32,
    /// Distinct paths per route (HTTP API cache entries).
    pub paths_per_route: u32,
    /// The end-to-end revocation bound, in seconds.
    pub revocation_bound_secs: f64,
    /// The engine's own bound (`EngineConfig::revocation_bound`), in milliseconds.
    pub engine_bound_ms: u64,
    /// The authorizer result TTL; `None`: revocation bound minus engine bound, whole seconds.
    pub authorizer_ttl_secs: Option<u32>,
    /// Lambda instances of the authorizer; `None`: the mean concurrency, at least one.
    pub instances: Option<u32>,
    /// A warm invocation's duration without store calls, in milliseconds.
    pub invocation_ms: f64,
    /// The authorizer's memory (arm64).
    pub memory_mb: u32,
    /// What one store call adds to an invocation that waits for it, in milliseconds.
    pub store_call_ms: f64,
    /// Every key's `rate_limit_per_minute`.
    pub rate_limit_per_minute: u32,
    /// Accounts the keys belong to (evenly): usage records are per account.
    pub accounts: u32,
    /// The engine's usage flush interval, in milliseconds.
    pub usage_flush_ms: u64,
    /// The size of the key's `HASH#` item a read fetches (a copy of its record), in bytes.
    pub key_item_bytes: u32,
    /// How long a Lambda instance lives, in minutes (first-sight key reads are spread over it).
    pub instance_lifetime_minutes: f64,
    /// Shards of the table's stream (the aggregator's batches are per shard).
    pub stream_shards: u32,
    /// The aggregator's largest batch.
    pub aggregator_batch: u32,
    /// The aggregator's batching window, in seconds.
    pub aggregator_window_secs: f64,
    /// The aggregator's time per record (one transaction), in milliseconds.
    pub aggregator_ms_per_record: f64,
    pub aggregator_memory_mb: u32,
    /// Measured minutes of simulation (after a warm-up).
    pub minutes: u32,
    pub seed: u64,
}

impl Default for TrafficModel {
    fn default() -> Self {
        let engine = EngineConfig::default();
        Self {
            keys: 10_000,
            zipf_s: 1.0,
            requests_per_second: 1_000.0,
            api: Api::Rest,
            routes_per_key: 5,
            paths_per_route: 1,
            revocation_bound_secs: 5.0,
            engine_bound_ms: engine.revocation_bound.as_millis() as u64,
            authorizer_ttl_secs: None,
            instances: None,
            invocation_ms: 2.0,
            memory_mb: 256,
            store_call_ms: 5.0,
            rate_limit_per_minute: RATE_LIMIT_DEFAULT,
            accounts: 1,
            usage_flush_ms: engine.usage_flush.as_millis() as u64,
            key_item_bytes: DEFAULT_KEY_ITEM_BYTES,
            instance_lifetime_minutes: 60.0,
            stream_shards: 1,
            aggregator_batch: 100,
            aggregator_window_secs: 1.0,
            aggregator_ms_per_record: 20.0,
            aggregator_memory_mb: 256,
            minutes: 10,
            seed: 1,
        }
    }
}

/// A key item as `keys create` makes it with two scopes: 846 bytes of JSON for the key, plus the
/// item's own keys, index keys and hash, and the last use once it has one.
pub const DEFAULT_KEY_ITEM_BYTES: u32 = 1_100;

/// A model that cannot be evaluated, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidModel(pub String);

impl std::fmt::Display for InvalidModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TrafficModel {
    /// The authorizer result TTL: as given, or the revocation bound minus the engine's bound in
    /// whole seconds (at least 0), so that the bound holds end to end.
    pub fn resolved_ttl(&self) -> u32 {
        self.authorizer_ttl_secs.unwrap_or_else(|| {
            let left = self.revocation_bound_secs - self.engine_bound_ms as f64 / 1000.0;
            left.floor().clamp(0.0, f64::from(MAX_AUTHORIZER_TTL_SECS)) as u32
        })
    }

    /// Authorizer cache entries per key: one token (REST), or one per route and path (HTTP).
    pub fn entries_per_key(&self) -> u32 {
        match self.api {
            Api::Rest => 1,
            Api::Http => self.routes_per_key.saturating_mul(self.paths_per_route),
        }
    }

    /// The engine configuration the model's authorizer runs with.
    pub fn engine(&self) -> EngineConfig {
        EngineConfig {
            revocation_bound: Duration::from_millis(self.engine_bound_ms),
            usage_flush: Duration::from_millis(self.usage_flush_ms),
            ..EngineConfig::default()
        }
    }

    /// The same model with the authorizer result cache off.
    pub fn without_cache(&self) -> Self {
        Self {
            authorizer_ttl_secs: Some(0),
            ..self.clone()
        }
    }

    fn check(&self) -> Result<(), InvalidModel> {
        let fail = |m: String| Err(InvalidModel(m));
        let finite = |v: f64| v.is_finite();
        if !(1..=1_000_000).contains(&self.keys) {
            return fail(format!("--keys must be 1 to 1,000,000, not {}", self.keys));
        }
        if !finite(self.zipf_s) || !(0.0..=5.0).contains(&self.zipf_s) {
            return fail(format!("--zipf must be 0 to 5, not {}", self.zipf_s));
        }
        if !finite(self.requests_per_second)
            || self.requests_per_second <= 0.0
            || self.requests_per_second > 1_000_000.0
        {
            return fail(format!(
                "--rps must be above 0 and at most 1,000,000, not {}",
                self.requests_per_second
            ));
        }
        if !(1..=1_000).contains(&self.routes_per_key)
            || !(1..=100_000).contains(&self.paths_per_route)
        {
            return fail(
                "--routes-per-key must be 1 to 1,000 and --paths-per-route 1 to 100,000".into(),
            );
        }
        if u64::from(self.keys) * u64::from(self.entries_per_key()) > MAX_ENTRIES {
            return fail(format!(
                "keys × routes × paths must be at most {MAX_ENTRIES} (cache entries the simulation tracks)"
            ));
        }
        if !finite(self.revocation_bound_secs)
            || self.revocation_bound_secs <= 0.0
            || self.revocation_bound_secs > 7_200.0
        {
            return fail("--revocation-bound-secs must be above 0 and at most 7,200".into());
        }
        if !(50..=3_600_000).contains(&self.engine_bound_ms) {
            return fail("--engine-bound-ms must be 50 to 3,600,000".into());
        }
        if self
            .authorizer_ttl_secs
            .is_some_and(|t| t > MAX_AUTHORIZER_TTL_SECS)
        {
            return fail(format!(
                "--ttl-secs must be at most {MAX_AUTHORIZER_TTL_SECS} (API Gateway's limit)"
            ));
        }
        if self.instances.is_some_and(|i| !(1..=10_000).contains(&i)) {
            return fail("--instances must be 1 to 10,000".into());
        }
        if !finite(self.invocation_ms)
            || self.invocation_ms <= 0.0
            || self.invocation_ms > 900_000.0
        {
            return fail("--invocation-ms must be above 0 and at most 900,000".into());
        }
        if !finite(self.store_call_ms) || !(0.0..=60_000.0).contains(&self.store_call_ms) {
            return fail("--store-call-ms must be 0 to 60,000".into());
        }
        for (flag, mb) in [
            ("--memory-mb", self.memory_mb),
            ("--aggregator-memory-mb", self.aggregator_memory_mb),
        ] {
            if !(128..=10_240).contains(&mb) {
                return fail(format!("{flag} must be 128 to 10,240 (Lambda's range)"));
            }
        }
        if self.rate_limit_per_minute == 0 {
            return fail("--rate-limit must be at least 1".into());
        }
        if self.accounts == 0 || self.accounts > self.keys {
            return fail("--accounts must be 1 to the number of keys".into());
        }
        if self.usage_flush_ms == 0 || self.usage_flush_ms > 3_600_000 {
            return fail("--usage-flush-ms must be 1 to 3,600,000".into());
        }
        if !(1..=400_000).contains(&self.key_item_bytes) {
            return fail("--key-item-bytes must be 1 to 400,000 (DynamoDB's item limit)".into());
        }
        if !finite(self.instance_lifetime_minutes)
            || self.instance_lifetime_minutes <= 0.0
            || self.instance_lifetime_minutes > 100_000.0
        {
            return fail("--instance-lifetime-minutes must be above 0".into());
        }
        if !(1..=1_000).contains(&self.stream_shards)
            || !(1..=10_000).contains(&self.aggregator_batch)
        {
            return fail(
                "--stream-shards must be 1 to 1,000 and --aggregator-batch 1 to 10,000".into(),
            );
        }
        if !finite(self.aggregator_window_secs)
            || !(0.0..=300.0).contains(&self.aggregator_window_secs)
            || !finite(self.aggregator_ms_per_record)
            || !(0.0..=900_000.0).contains(&self.aggregator_ms_per_record)
        {
            return fail(
                "--aggregator-window-secs must be 0 to 300 and --aggregator-ms-per-record 0 to 900,000"
                    .into(),
            );
        }
        if !(1..=240).contains(&self.minutes) {
            return fail("--minutes must be 1 to 240".into());
        }
        Ok(())
    }
}

/// Each key's share of the requests: key `k` (1-based) gets `k^-s`, normalised to sum to 1.
pub fn zipf_weights(keys: u32, s: f64) -> Vec<f64> {
    let raw: Vec<f64> = (1..=keys).map(|k| f64::from(k).powf(-s)).collect();
    let sum: f64 = raw.iter().sum();
    raw.into_iter().map(|w| w / sum).collect()
}

/// Invocations per second of one authorizer cache entry that sees Poisson requests at `rate`
/// and keeps an answer `ttl_secs` after each miss: `rate / (1 + rate × ttl)`; every request
/// when the TTL is 0.
pub fn cached_invocation_rate(rate: f64, ttl_secs: f64) -> f64 {
    if ttl_secs <= 0.0 {
        rate
    } else {
        rate / (1.0 + rate * ttl_secs)
    }
}

/// The size of a usage record's item with `keys` keys, in bytes, as DynamoDB counts it (names
/// and values): `pk`, `sk`, the record as the store writes it ([`usage_record`]: ids and times
/// of their real lengths, valid uses only, an IPv4 address) and `ttl`.
pub fn record_item_bytes(keys: usize) -> usize {
    let at: DateTime<Utc> =
        DateTime::from_timestamp(1_795_820_307, 123_456_789).unwrap_or_default();
    let record = UsageRecord {
        id: "usage_0123456789abcdefghij".into(),
        account: "default".into(),
        day: at.date_naive(),
        keys: (0..keys)
            .map(|i| KeyUse {
                key_id: format!("key_{i:020}"),
                outcomes: Outcomes {
                    valid: 25,
                    rate_limited: 0,
                    denied: 0,
                },
                last_used_at: at,
                last_used_ip: "203.0.113.70".parse().ok(),
            })
            .collect(),
    };
    let json = usage_record::encode(&record).map_or(0, |j| j.len());
    // pk "USAGE#RECORDS#15", sk "REC#" + id, record, ttl (a 10-digit number: 6 bytes).
    let pk = 2 + "USAGE#RECORDS#15".len();
    let sk = 2 + 4 + record.id.len();
    pk + sk + "record".len() + json + "ttl".len() + 6
}

/// Write units of a size: 1 per KB or part of one.
fn wru(bytes: usize) -> u64 {
    bytes.div_ceil(1024).max(1) as u64
}

/// Read units of a consistent read of a size: 1 per 4 KB or part of one.
fn consistent_rru(bytes: usize) -> u64 {
    bytes.div_ceil(4096).max(1) as u64
}

/// The write units of rolling up a record of `keys` keys: one transaction (2 WRU per KB of each
/// item) of the record's own item (updated: its size before, the larger), each key's figures
/// item, and a shard of the account's day.
pub fn rollup_wru(keys: usize) -> u64 {
    let items = wru(record_item_bytes(keys)) + keys as u64 * TOTAL_ITEM_WRU + DAY_ITEM_WRU;
    2 * items
}

/// One line of the bill, per million requests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    pub what: &'static str,
    /// Operations per million requests (invocations, reads, writes, records...).
    pub count: f64,
    /// Billed units per million requests.
    pub units: f64,
    pub unit: &'static str,
    pub usd: f64,
}

/// What the change-feed poller costs one instance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PollCost {
    pub interval_ms: u64,
    /// Polls per second of an instance as simulated (fewer than one per interval when idle).
    pub per_instance_second: f64,
    pub rru_per_instance_month: f64,
    pub usd_per_instance_month: f64,
    /// The same for an instance busy all month (one poll every interval).
    pub busy_rru_per_instance_month: f64,
    pub busy_usd_per_instance_month: f64,
}

/// How the rate limiter answered the invocations, and what the result cache admitted past it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LimitOutcomes {
    /// Shares of the invocations answered `VALID` and `RATE_LIMITED`.
    pub valid_share: f64,
    pub rate_limited_share: f64,
    /// Requests per million admitted by a cached allow after their key's minute was spent
    /// (API Gateway answers them; the limiter never sees them). 0 without the cache.
    pub admitted_past_limit: f64,
}

/// The model's answer for one scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub authorizer_ttl_secs: u32,
    /// Engine bound + TTL ≤ revocation bound.
    pub revocation_bound_holds: bool,
    pub cache_entries_per_key: u32,
    pub instances: u32,
    pub instances_derived: bool,
    /// Requests simulated in the measured minutes (the cached ones counted in expectation).
    pub requests_simulated: f64,
    /// Invocations per million requests by the closed form (a cross-check of the simulation's).
    pub closed_form_invocations: f64,
    /// Operations per million requests.
    pub invocations: f64,
    pub key_reads_stale: f64,
    pub key_reads_first_sight: f64,
    pub feed_polls: f64,
    pub lease_calls: f64,
    pub lease_writes: f64,
    /// The writes no lease of a minute's budget can do without: one for each key and minute in
    /// which the key admitted a request, whatever the blocks' sizes.
    pub lease_floor: f64,
    pub usage_records: f64,
    /// Keys per usage record, on average.
    pub keys_per_record: f64,
    pub aggregator_invocations: f64,
    pub lines: Vec<Line>,
    /// Dollars per million requests, every line together: what keyward adds beyond API Gateway.
    pub total_usd: f64,
    /// API Gateway's own price per million requests, for context (not in the total).
    pub api_gateway_usd: f64,
    pub polls: PollCost,
    pub outcomes: LimitOutcomes,
}

/// The simulation's clock ticks in microseconds; a UTC minute (a rate-limit window) is this many.
const MINUTE_US: u64 = 60_000_000;

/// A small deterministic generator (SplitMix64): the simulation needs no crate for it.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// An exponential gap at `rate` per second, in microseconds.
    fn gap_us(&mut self, rate: f64) -> u64 {
        (-self.unit().ln() / rate * 1e6).round() as u64
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u32) -> u32 {
        (((self.next() >> 32) * u64::from(n)) >> 32) as u32
    }
}

/// The figures of one evaluation, derived once from the model.
#[derive(Debug)]
struct Setup {
    ttl_us: u64,
    ttl_secs: f64,
    entries: u32,
    /// Requests per second of one cache entry of each key.
    entry_rate: Vec<f64>,
    /// Invocations per second of each key, by the closed form.
    key_invocations: Vec<f64>,
    instances: u32,
    instances_derived: bool,
    bound_us: u64,
    poll_us: u64,
    flush_us: u64,
    warm_end: u64,
    end: u64,
    limit: u32,
    accounts: u32,
    stream_shards: u32,
    /// Write units of a record's `PutItem` and of its roll-up, by its number of keys.
    record_wru: Vec<u64>,
    rollup_wru: Vec<u64>,
    gb: f64,
    invocation_ms: f64,
    store_call_ms: f64,
}

impl Setup {
    fn new(model: &TrafficModel) -> Result<Self, InvalidModel> {
        let ttl = model.resolved_ttl();
        let ttl_secs = f64::from(ttl);
        let entries = model.entries_per_key();
        let entry_rate: Vec<f64> = zipf_weights(model.keys, model.zipf_s)
            .iter()
            .map(|w| w * model.requests_per_second / f64::from(entries))
            .collect();
        let key_invocations: Vec<f64> = entry_rate
            .iter()
            .map(|nu| f64::from(entries) * cached_invocation_rate(*nu, ttl_secs))
            .collect();
        let per_second: f64 = key_invocations.iter().sum();
        let (instances, instances_derived) = match model.instances {
            Some(i) => (i, false),
            None => {
                let concurrency = per_second * model.invocation_ms.ceil() / 1000.0;
                (concurrency.ceil().clamp(1.0, 10_000.0) as u32, true)
            }
        };
        let engine = model.engine();
        // A warm-up long enough for blocks, caches and cache entries to settle, in whole minutes
        // so that rate-limit windows align with the measured ones.
        let warm_end = (2 * u64::from(ttl)).div_ceil(60).max(1) * MINUTE_US;
        let end = warm_end + u64::from(model.minutes) * MINUTE_US;
        let events = per_second * end as f64 / 1e6;
        if events > MAX_EVENTS {
            return Err(InvalidModel(format!(
                "the simulation would take about {events:.0} invocations (at most {MAX_EVENTS:.0}): use fewer --minutes"
            )));
        }
        Ok(Self {
            ttl_us: u64::from(ttl) * 1_000_000,
            ttl_secs,
            entries,
            entry_rate,
            key_invocations,
            instances,
            instances_derived,
            bound_us: engine.revocation_bound.as_micros() as u64,
            poll_us: engine.poll_interval().as_micros() as u64,
            flush_us: engine.usage_flush.as_micros() as u64,
            warm_end,
            end,
            limit: model.rate_limit_per_minute,
            accounts: model.accounts,
            stream_shards: model.stream_shards,
            record_wru: (0..=MAX_KEYS_PER_RECORD)
                .map(|n| wru(record_item_bytes(n)))
                .collect(),
            rollup_wru: (0..=MAX_KEYS_PER_RECORD).map(rollup_wru).collect(),
            gb: f64::from(model.memory_mb) / 1024.0,
            invocation_ms: model.invocation_ms,
            store_call_ms: model.store_call_ms,
        })
    }
}

/// One key's rate-limit state in one engine (`limiter.rs` `State`).
#[derive(Debug, Default)]
struct Budget {
    window: i64,
    tokens: u32,
    spent: bool,
    /// Uses asked for since the last lease, in whichever minute: spent or refused.
    uses: u32,
    leased_at: Option<u64>,
}

/// One Lambda instance's engine: its cache, poller, usage buffer and budgets.
#[derive(Debug, Default)]
struct Instance {
    /// Key → when it was fetched (µs).
    cache: HashMap<u32, u64>,
    /// The start of the last sync applied, and of one started but not yet applied.
    synced: u64,
    sync_in_flight: Option<u64>,
    next_poll: u64,
    last_flush: u64,
    /// Keys counted since the last flush.
    pending: HashSet<u32>,
    budgets: HashMap<u32, Budget>,
}

/// A key's current minute: what the store granted (its `LEASE#…` item) and what was admitted.
#[derive(Debug, Default, Clone, Copy)]
struct KeyMinute {
    window: i64,
    granted: u32,
    /// Requests admitted: `VALID` invocations and the cached allows after them.
    admitted: f64,
}

/// What the simulation counts in the measured minutes.
#[derive(Debug, Default)]
struct Tally {
    requests: f64,
    invocations: u64,
    valid: u64,
    stale_reads: u64,
    polls: u64,
    lease_calls: u64,
    lease_writes: u64,
    /// Key-minutes in which the key admitted at least one request.
    key_minutes_admitting: u64,
    records: u64,
    record_keys: u64,
    record_wru: u64,
    rollup_wru: u64,
    gb_seconds: f64,
    /// Requests admitted past their key's minute.
    admitted_past_limit: f64,
    /// Insert times of the measured records, per stream shard (µs).
    stream: Vec<Vec<u64>>,
}

/// The authorizer fleet in motion: every invocation through the engine's steps, in time order.
#[derive(Debug)]
struct Simulation<'a> {
    s: &'a Setup,
    rng: Rng,
    fleet: Vec<Instance>,
    minutes: Vec<KeyMinute>,
    tally: Tally,
}

impl<'a> Simulation<'a> {
    fn new(s: &'a Setup, seed: u64) -> Self {
        let mut rng = Rng(seed);
        // Instances started at different times: each poller and flush clock has its own phase
        // (otherwise every instance would flush in the same millisecond, for ever).
        let mut phase = |period: u64| (rng.unit() * period as f64) as u64;
        let fleet = (0..s.instances)
            .map(|_| Instance {
                next_poll: phase(s.poll_us),
                last_flush: phase(s.flush_us),
                ..Instance::default()
            })
            .collect();
        Self {
            s,
            rng,
            fleet,
            minutes: vec![KeyMinute::default(); s.entry_rate.len()],
            tally: Tally {
                stream: vec![Vec::new(); s.stream_shards as usize],
                ..Tally::default()
            },
        }
    }

    /// Runs every cache entry's invocations (step 2: a miss, then `T` of hits, then the next
    /// request) through the fleet until the end.
    fn run(mut self) -> Tally {
        let s = self.s;
        let mut heap: BinaryHeap<Reverse<(u64, u32)>> = BinaryHeap::new();
        for e in 0..s.entry_rate.len() as u32 * s.entries {
            let first = self.rng.gap_us(s.entry_rate[(e / s.entries) as usize]);
            if first < s.end {
                heap.push(Reverse((first, e)));
            }
        }
        while let Some(Reverse((t, e))) = heap.pop() {
            let key = e / s.entries;
            let next = t + s.ttl_us + self.rng.gap_us(s.entry_rate[key as usize]);
            if next < s.end {
                heap.push(Reverse((next, e)));
            }
            self.invoke(t, key);
        }
        for k in 0..self.minutes.len() {
            self.settle(k);
        }
        self.tally
    }

    /// One invocation at `t` for `key`, on an instance drawn at random.
    fn invoke(&mut self, t: u64, key: u32) {
        let i = self.rng.below(self.s.instances) as usize;
        let measured = t >= self.s.warm_end;
        let mut store_calls = self.resolve(i, key, t, measured);
        let (valid, lease_writes) = self.spend(i, key, t, measured);
        store_calls += lease_writes;
        store_calls += self.count(i, key, t, measured);
        self.tick(i, t, measured);
        if measured {
            let cached = self.s.entry_rate[key as usize] * self.s.ttl_secs;
            let tally = &mut self.tally;
            tally.requests += 1.0 + cached;
            tally.invocations += 1;
            tally.valid += u64::from(valid);
            let ms = (self.s.invocation_ms + store_calls as f64 * self.s.store_call_ms).ceil();
            tally.gb_seconds += ms / 1000.0 * self.s.gb;
        }
    }

    /// Step 4, the freshness rule: answers the store reads made (0 or 1). A first sight is read
    /// but not counted here (it is amortised over the instance's life instead).
    fn resolve(&mut self, i: usize, key: u32, t: u64, measured: bool) -> u64 {
        let inst = &mut self.fleet[i];
        // The sync an earlier invocation started has landed by now.
        if let Some(started) = inst.sync_in_flight.take() {
            inst.synced = started;
        }
        match inst.cache.get(&key).copied() {
            Some(fetched) if t - fetched.max(inst.synced) < self.s.bound_us => 0,
            seen => {
                inst.cache.insert(key, t);
                if seen.is_some() && measured {
                    self.tally.stale_reads += 1;
                }
                1
            }
        }
    }

    /// Step 6, the rate limit: spends from the block in memory, or leases the next one.
    /// Answers whether the request is admitted, and the lease writes made.
    fn spend(&mut self, i: usize, key: u32, t: u64, measured: bool) -> (bool, u64) {
        let limit = self.s.limit;
        let window = (t / MINUTE_US) as i64;
        if self.minutes[key as usize].window != window {
            self.settle(key as usize);
            self.minutes[key as usize] = KeyMinute {
                window,
                ..KeyMinute::default()
            };
        }
        let minute = &mut self.minutes[key as usize];
        let b = self.fleet[i].budgets.entry(key).or_insert_with(|| Budget {
            window,
            ..Budget::default()
        });
        if b.window != window {
            b.window = window;
            b.tokens = 0;
            b.spent = false;
        }
        let (valid, writes) = if b.tokens > 0 {
            b.tokens -= 1;
            b.uses += 1;
            (true, 0)
        } else if b.spent {
            b.uses += 1;
            (false, 0)
        } else {
            let want = match b.leased_at {
                Some(then) => next_block(
                    limit,
                    b.uses,
                    Duration::from_micros(t - then),
                    Duration::from_micros(MINUTE_US - t % MINUTE_US),
                ),
                None => first_block(limit),
            };
            // The store's conditional update (`leases.rs`): a refusal is billed, then what is
            // left is asked for.
            let (mut ask, mut granted, mut writes) = (grantable(limit, 0, want), 0, 0);
            for _ in 0..LEASE_ATTEMPTS {
                if ask == 0 {
                    break;
                }
                writes += 1;
                if minute.granted + ask <= limit {
                    minute.granted += ask;
                    granted = ask;
                    break;
                }
                ask = grantable(limit, minute.granted, want);
            }
            if measured {
                self.tally.lease_calls += 1;
                self.tally.lease_writes += writes;
            }
            if granted == 0 {
                b.spent = minute.granted >= limit;
                b.uses += 1;
                (false, writes)
            } else {
                b.tokens = granted - 1;
                b.uses = 1;
                b.leased_at = Some(t);
                (true, writes)
            }
        };
        if valid {
            // API Gateway caches the allow: the entry's requests in the next `T` are admitted.
            minute.admitted += 1.0 + self.s.entry_rate[key as usize] * self.s.ttl_secs;
        }
        (valid, writes)
    }

    /// Adds up a key's minute that ended: what was admitted past its limit.
    fn settle(&mut self, key: usize) {
        let m = self.minutes[key];
        let start = m.window as u64 * MINUTE_US;
        if start >= self.s.warm_end && start < self.s.end {
            self.tally.admitted_past_limit += (m.admitted - f64::from(self.s.limit)).max(0.0);
            self.tally.key_minutes_admitting += u64::from(m.admitted > 0.0);
        }
    }

    /// Step 7, usage: counts the key and, once the interval has passed, writes the buffer as
    /// records of one account and at most [`MAX_KEYS_PER_RECORD`] keys. Answers the `PutItem`s
    /// made (the request waits for them).
    fn count(&mut self, i: usize, key: u32, t: u64, measured: bool) -> u64 {
        let s = self.s;
        let inst = &mut self.fleet[i];
        inst.pending.insert(key);
        if t.saturating_sub(inst.last_flush) < s.flush_us {
            return 0;
        }
        inst.last_flush = t;
        let mut per_account: HashMap<u32, usize> = HashMap::new();
        for key in inst.pending.drain() {
            *per_account.entry(key % s.accounts).or_default() += 1;
        }
        let mut puts = 0;
        for n in per_account.into_values() {
            for in_record in (0..n)
                .step_by(MAX_KEYS_PER_RECORD)
                .map(|from| (n - from).min(MAX_KEYS_PER_RECORD))
            {
                puts += 1;
                if measured {
                    let tally = &mut self.tally;
                    tally.records += 1;
                    tally.record_keys += in_record as u64;
                    tally.record_wru += s.record_wru[in_record];
                    tally.rollup_wru += s.rollup_wru[in_record];
                    let shard = self.rng.below(s.stream_shards) as usize;
                    tally.stream[shard].push(t);
                }
            }
        }
        puts
    }

    /// Step 5, the poller: a tick that fell due while the instance was frozen fires now; the
    /// sync it starts lands after this invocation's own check.
    fn tick(&mut self, i: usize, t: u64, measured: bool) {
        let inst = &mut self.fleet[i];
        if t >= inst.next_poll {
            inst.sync_in_flight = Some(t);
            inst.next_poll = t + self.s.poll_us;
            if measured {
                self.tally.polls += 1;
            }
        }
    }
}

/// Step 8, the aggregator's invocations and GB-seconds: per stream shard, a batch opens at a
/// record and is delivered when the batching window closes or the batch is full; it takes
/// `aggregator_ms_per_record` per record.
fn aggregate(stream: &[Vec<u64>], model: &TrafficModel) -> (u64, f64) {
    let window_us = (model.aggregator_window_secs * 1e6).round() as u64;
    let most = model.aggregator_batch as usize;
    let gb = f64::from(model.aggregator_memory_mb) / 1024.0;
    let (mut invocations, mut gb_seconds) = (0, 0.0);
    for shard in stream {
        let mut i = 0;
        while i < shard.len() {
            let closes = shard[i] + window_us;
            let mut j = i + 1;
            while j < shard.len() && j - i < most && shard[j] < closes {
                j += 1;
            }
            invocations += 1;
            let ms = ((j - i) as f64 * model.aggregator_ms_per_record)
                .ceil()
                .max(1.0);
            gb_seconds += ms / 1000.0 * gb;
            i = j;
        }
    }
    (invocations, gb_seconds)
}

/// Key reads on first sight, per second: each instance reads a key once in its life if it
/// sees it at all, `I (1 − e^(−μL/I))` per life `L` for a key invoked `μ` times a second.
fn first_sight_reads(s: &Setup, lifetime_secs: f64) -> f64 {
    let instances = f64::from(s.instances);
    s.key_invocations
        .iter()
        .map(|mu| instances * (1.0 - (-mu * lifetime_secs / instances).exp()) / lifetime_secs)
        .sum()
}

/// Evaluates the model: see the module documentation for its rules.
pub fn evaluate(model: &TrafficModel) -> Result<Report, InvalidModel> {
    model.check()?;
    let s = Setup::new(model)?;
    let tally = Simulation::new(&s, model.seed).run();
    let (agg_invocations, agg_gb_seconds) = aggregate(&tally.stream, model);

    let requests = tally.requests.max(1.0);
    let per_m = |x: f64| x * 1e6 / requests;
    let first_sight = first_sight_reads(&s, model.instance_lifetime_minutes * 60.0)
        / model.requests_per_second
        * 1e6;
    let read_rru = consistent_rru(model.key_item_bytes as usize) as f64;
    let invocations = per_m(tally.invocations as f64);
    let stale = per_m(tally.stale_reads as f64);
    let polls = per_m(tally.polls as f64);
    let lease_writes = per_m(tally.lease_writes as f64);
    let records = per_m(tally.records as f64);
    let agg = per_m(agg_invocations as f64);
    let line = |what, count: f64, units: f64, unit, price: &Price| Line {
        what,
        count,
        units,
        unit,
        usd: price.cost(units),
    };
    let lines = vec![
        line(
            "authorizer invocations",
            invocations,
            invocations,
            "requests",
            &prices::LAMBDA_REQUESTS,
        ),
        line(
            "authorizer compute",
            invocations,
            per_m(tally.gb_seconds),
            "GB-s",
            &prices::LAMBDA_ARM64_GB_SECOND,
        ),
        line(
            "key reads (GetItem, consistent)",
            stale + first_sight,
            (stale + first_sight) * read_rru,
            "RRU",
            &prices::DYNAMODB_READ,
        ),
        line(
            "change-feed polls (Query, consistent)",
            polls,
            polls,
            "RRU",
            &prices::DYNAMODB_READ,
        ),
        line(
            "rate-limit leases (conditional UpdateItem)",
            lease_writes,
            lease_writes,
            "WRU",
            &prices::DYNAMODB_WRITE,
        ),
        line(
            "usage records (PutItem)",
            records,
            per_m(tally.record_wru as f64),
            "WRU",
            &prices::DYNAMODB_WRITE,
        ),
        line(
            "usage roll-ups (TransactWriteItems)",
            records,
            per_m(tally.rollup_wru as f64),
            "WRU",
            &prices::DYNAMODB_WRITE,
        ),
        line(
            "stream reads (Lambda trigger: free)",
            records,
            0.0,
            "stream RRU",
            &prices::DYNAMODB_STREAM_READ,
        ),
        line(
            "aggregator invocations",
            agg,
            agg,
            "requests",
            &prices::LAMBDA_REQUESTS,
        ),
        line(
            "aggregator compute",
            agg,
            per_m(agg_gb_seconds),
            "GB-s",
            &prices::LAMBDA_ARM64_GB_SECOND,
        ),
    ];
    let total_usd = lines.iter().map(|l| l.usd).sum();
    let api_gateway = match model.api {
        Api::Rest => prices::API_GATEWAY_REST,
        Api::Http => prices::API_GATEWAY_HTTP,
    };
    let measured_secs = f64::from(model.minutes) * 60.0;
    let polls_per_instance_second = tally.polls as f64 / (f64::from(s.instances) * measured_secs);
    let busy_per_second = 1e6 / s.poll_us as f64;
    let month = |per_second: f64| per_second * SECONDS_PER_MONTH;
    let invoked = (tally.invocations as f64).max(1.0);
    Ok(Report {
        authorizer_ttl_secs: model.resolved_ttl(),
        revocation_bound_holds: s.ttl_secs + model.engine_bound_ms as f64 / 1000.0
            <= model.revocation_bound_secs + 1e-9,
        cache_entries_per_key: s.entries,
        instances: s.instances,
        instances_derived: s.instances_derived,
        requests_simulated: tally.requests,
        closed_form_invocations: s.key_invocations.iter().sum::<f64>() / model.requests_per_second
            * 1e6,
        invocations,
        key_reads_stale: stale,
        key_reads_first_sight: first_sight,
        feed_polls: polls,
        lease_calls: per_m(tally.lease_calls as f64),
        lease_writes,
        lease_floor: per_m(tally.key_minutes_admitting as f64),
        usage_records: records,
        keys_per_record: tally.record_keys as f64 / (tally.records as f64).max(1.0),
        aggregator_invocations: agg,
        lines,
        total_usd,
        api_gateway_usd: api_gateway.cost(1e6),
        polls: PollCost {
            interval_ms: s.poll_us / 1000,
            per_instance_second: polls_per_instance_second,
            rru_per_instance_month: month(polls_per_instance_second),
            usd_per_instance_month: prices::DYNAMODB_READ.cost(month(polls_per_instance_second)),
            busy_rru_per_instance_month: month(busy_per_second),
            busy_usd_per_instance_month: prices::DYNAMODB_READ.cost(month(busy_per_second)),
        },
        outcomes: LimitOutcomes {
            valid_share: tally.valid as f64 / invoked,
            rate_limited_share: 1.0 - tally.valid as f64 / invoked,
            admitted_past_limit: per_m(tally.admitted_past_limit),
        },
    })
}

/// `keyward bench cost`: every input of the model is a flag; the defaults are
/// [`TrafficModel::default`].
#[derive(Debug, Args)]
pub struct CostArgs {
    /// Keys in use.
    #[arg(long, default_value_t = TrafficModel::default().keys)]
    keys: u32,
    /// Zipf exponent of key popularity (key k gets a share ∝ k^-s; 0: all alike).
    #[arg(long = "zipf", default_value_t = TrafficModel::default().zipf_s)]
    zipf_s: f64,
    /// Verification requests per second, all keys together.
    #[arg(long = "rps", default_value_t = TrafficModel::default().requests_per_second)]
    requests_per_second: f64,
    /// The API Gateway in front: rest (result cached per token) or http (per token, route, path).
    #[arg(long, value_enum, default_value_t = Api::Rest)]
    api: Api,
    /// Routes each key calls (cache entries of an HTTP API).
    #[arg(long, default_value_t = TrafficModel::default().routes_per_key)]
    routes_per_key: u32,
    /// Distinct paths per route (cache entries of an HTTP API).
    #[arg(long, default_value_t = TrafficModel::default().paths_per_route)]
    paths_per_route: u32,
    /// End-to-end revocation bound, in seconds.
    #[arg(long, default_value_t = TrafficModel::default().revocation_bound_secs)]
    revocation_bound_secs: f64,
    /// The engine's own bound (`EngineConfig::revocation_bound`), in milliseconds.
    #[arg(long, default_value_t = TrafficModel::default().engine_bound_ms)]
    engine_bound_ms: u64,
    /// Authorizer result TTL in seconds [default: revocation bound − engine bound, whole seconds].
    #[arg(long = "ttl-secs")]
    authorizer_ttl_secs: Option<u32>,
    /// Lambda instances of the authorizer [default: mean concurrency, at least 1].
    #[arg(long)]
    instances: Option<u32>,
    /// A warm invocation's duration without store calls, in milliseconds.
    #[arg(long, default_value_t = TrafficModel::default().invocation_ms)]
    invocation_ms: f64,
    /// The authorizer's memory in MB (arm64).
    #[arg(long, default_value_t = TrafficModel::default().memory_mb)]
    memory_mb: u32,
    /// Milliseconds one store call adds to an invocation waiting for it.
    #[arg(long, default_value_t = TrafficModel::default().store_call_ms)]
    store_call_ms: f64,
    /// Every key's rate limit per minute.
    #[arg(long = "rate-limit", default_value_t = TrafficModel::default().rate_limit_per_minute)]
    rate_limit_per_minute: u32,
    /// Accounts the keys belong to (evenly).
    #[arg(long, default_value_t = TrafficModel::default().accounts)]
    accounts: u32,
    /// The engine's usage flush interval, in milliseconds.
    #[arg(long, default_value_t = TrafficModel::default().usage_flush_ms)]
    usage_flush_ms: u64,
    /// Bytes of a key's item (what a key read fetches).
    #[arg(long, default_value_t = TrafficModel::default().key_item_bytes)]
    key_item_bytes: u32,
    /// Minutes a Lambda instance lives (first-sight key reads are spread over it).
    #[arg(long, default_value_t = TrafficModel::default().instance_lifetime_minutes)]
    instance_lifetime_minutes: f64,
    /// Shards of the table's stream.
    #[arg(long, default_value_t = TrafficModel::default().stream_shards)]
    stream_shards: u32,
    /// The aggregator's batch size (Terraform module: 100; SAM template: 25).
    #[arg(long, default_value_t = TrafficModel::default().aggregator_batch)]
    aggregator_batch: u32,
    /// The aggregator's batching window, in seconds.
    #[arg(long, default_value_t = TrafficModel::default().aggregator_window_secs)]
    aggregator_window_secs: f64,
    /// The aggregator's milliseconds per record (one transaction).
    #[arg(long, default_value_t = TrafficModel::default().aggregator_ms_per_record)]
    aggregator_ms_per_record: f64,
    /// The aggregator's memory in MB (arm64).
    #[arg(long, default_value_t = TrafficModel::default().aggregator_memory_mb)]
    aggregator_memory_mb: u32,
    /// Measured minutes of simulation (after a warm-up).
    #[arg(long, default_value_t = TrafficModel::default().minutes)]
    minutes: u32,
    /// Seed of the simulation: the same model and seed print the same figures.
    #[arg(long, default_value_t = TrafficModel::default().seed)]
    seed: u64,
    /// Print the model, the prices and both scenarios as JSON.
    #[arg(long)]
    json: bool,
}

impl From<&CostArgs> for TrafficModel {
    fn from(a: &CostArgs) -> Self {
        Self {
            keys: a.keys,
            zipf_s: a.zipf_s,
            requests_per_second: a.requests_per_second,
            api: a.api,
            routes_per_key: a.routes_per_key,
            paths_per_route: a.paths_per_route,
            revocation_bound_secs: a.revocation_bound_secs,
            engine_bound_ms: a.engine_bound_ms,
            authorizer_ttl_secs: a.authorizer_ttl_secs,
            instances: a.instances,
            invocation_ms: a.invocation_ms,
            memory_mb: a.memory_mb,
            store_call_ms: a.store_call_ms,
            rate_limit_per_minute: a.rate_limit_per_minute,
            accounts: a.accounts,
            usage_flush_ms: a.usage_flush_ms,
            key_item_bytes: a.key_item_bytes,
            instance_lifetime_minutes: a.instance_lifetime_minutes,
            stream_shards: a.stream_shards,
            aggregator_batch: a.aggregator_batch,
            aggregator_window_secs: a.aggregator_window_secs,
            aggregator_ms_per_record: a.aggregator_ms_per_record,
            aggregator_memory_mb: a.aggregator_memory_mb,
            minutes: a.minutes,
            seed: a.seed,
        }
    }
}

/// One scenario of the comparison.
#[derive(Debug, Serialize)]
pub struct Scenario {
    pub name: &'static str,
    pub report: Report,
}

/// The scenarios `keyward bench cost` prints: the model as given and, when its TTL is not 0
/// already, the same with the authorizer result cache off.
pub fn scenarios(model: &TrafficModel) -> Result<Vec<Scenario>, InvalidModel> {
    let mut out = vec![Scenario {
        name: if model.resolved_ttl() > 0 {
            "authorizer result cache on"
        } else {
            "authorizer result cache off"
        },
        report: evaluate(model)?,
    }];
    if model.resolved_ttl() > 0 {
        out.push(Scenario {
            name: "authorizer result cache off",
            report: evaluate(&model.without_cache())?,
        });
    }
    Ok(out)
}

/// `keyward bench cost`.
pub fn run(args: &CostArgs) -> Result<(), CliError> {
    let model = TrafficModel::from(args);
    let scenarios = scenarios(&model).map_err(|e| CliError::Input(e.0))?;
    if args.json {
        return output::print_json(&serde_json::json!({
            "model": model,
            "prices": prices::ALL,
            "scenarios": scenarios,
        }));
    }
    output::print(render(&model, &scenarios).trim_end())
}

/// `x` rounded, with thousands separated by commas.
fn grouped(x: f64) -> String {
    let digits = format!("{:.0}", x.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if x < -0.5 { format!("-{out}") } else { out }
}

/// A figure as the table shows it: two decimals below 100, whole and grouped above.
fn figure(x: f64) -> String {
    if x != 0.0 && x.abs() < 100.0 {
        format!("{x:.2}")
    } else {
        grouped(x)
    }
}

/// The report as a person reads it.
pub fn render(model: &TrafficModel, scenarios: &[Scenario]) -> String {
    let mut s = String::new();
    let api = match model.api {
        Api::Rest => "REST API (result cached per token)".to_owned(),
        Api::Http => format!(
            "HTTP API (result cached per token, route and path: {} routes × {} paths a key)",
            model.routes_per_key, model.paths_per_route
        ),
    };
    let _ = writeln!(
        s,
        "keyward bench cost: per million verification requests, beyond API Gateway"
    );
    let _ = writeln!(
        s,
        "prices: {} list prices as of {} (crates/cli/src/bench/prices.rs)",
        prices::LAMBDA_REQUESTS.region,
        prices::LAMBDA_REQUESTS.as_of
    );
    let _ = writeln!(
        s,
        "traffic: {} keys (Zipf s = {}), {} requests/s, {api}",
        grouped(f64::from(model.keys)),
        model.zipf_s,
        grouped(model.requests_per_second),
    );
    let _ = writeln!(
        s,
        "keys: rate limit {} a minute, {} account(s), item {} bytes; authorizer {} MB arm64, {} ms a warm invocation + {} ms a store call",
        model.rate_limit_per_minute,
        model.accounts,
        model.key_item_bytes,
        model.memory_mb,
        model.invocation_ms,
        model.store_call_ms
    );
    let _ = writeln!(
        s,
        "simulated: {} measured minutes after a warm-up, seed {}",
        model.minutes, model.seed
    );
    for sc in scenarios {
        let r = &sc.report;
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "{}: TTL {} s, engine bound {} ms, revocation bound {} s ({})",
            sc.name,
            r.authorizer_ttl_secs,
            model.engine_bound_ms,
            model.revocation_bound_secs,
            if r.revocation_bound_holds {
                "holds"
            } else {
                "EXCEEDED: TTL + engine bound is longer"
            }
        );
        let _ = writeln!(
            s,
            "  {} Lambda instance(s){}, feed poll every {} ms",
            r.instances,
            if r.instances_derived {
                " (mean concurrency, rounded up)"
            } else {
                ""
            },
            r.polls.interval_ms
        );
        let _ = writeln!(
            s,
            "  {:<44} {:>12} {:>14} {:<10} {:>9}",
            "", "per 1M req", "billed units", "", "$ per 1M"
        );
        for l in &r.lines {
            let _ = writeln!(
                s,
                "  {:<44} {:>12} {:>14} {:<10} {:>9.4}",
                l.what,
                figure(l.count),
                figure(l.units),
                l.unit,
                l.usd
            );
        }
        let _ = writeln!(
            s,
            "  {:<44} {:>12} {:>14} {:<10} {:>9.4}",
            "total beyond API Gateway", "", "", "", r.total_usd
        );
        let _ = writeln!(
            s,
            "  {:<44} {:>12} {:>14} {:<10} {:>9.4}",
            "(API Gateway itself, not in the total)", "", "", "", r.api_gateway_usd
        );
        let by = |unit: &[&str]| -> f64 {
            r.lines
                .iter()
                .filter(|l| unit.contains(&l.unit))
                .map(|l| l.usd)
                .sum()
        };
        let _ = writeln!(
            s,
            "  by service: Lambda ${:.4}, DynamoDB reads ${:.4}, DynamoDB writes ${:.4}",
            by(&["requests", "GB-s"]),
            by(&["RRU", "stream RRU"]),
            by(&["WRU"])
        );
        let _ = writeln!(
            s,
            "  invocations: {} by the closed form λ/(1+λT), {} simulated",
            grouped(r.closed_form_invocations),
            grouped(r.invocations)
        );
        let _ = writeln!(
            s,
            "  key reads: {} on first sight in an instance (over a {}-minute life), {} after the engine bound lapsed",
            grouped(r.key_reads_first_sight),
            model.instance_lifetime_minutes,
            grouped(r.key_reads_stale)
        );
        let _ = writeln!(
            s,
            "  leases: {} lease calls, {} writes (refusals included); {:.1} % of invocations VALID, {:.1} % RATE_LIMITED",
            grouped(r.lease_calls),
            grouped(r.lease_writes),
            100.0 * r.outcomes.valid_share,
            100.0 * r.outcomes.rate_limited_share
        );
        let _ = writeln!(
            s,
            "  lease floor: {} key-minutes admitting a request, ${:.4}: leases of a minute's budget write at least once in each",
            grouped(r.lease_floor),
            prices::DYNAMODB_WRITE.cost(r.lease_floor)
        );
        let _ = writeln!(
            s,
            "  usage: {} records of {:.1} keys on average, {} aggregator invocations",
            figure(r.usage_records),
            r.keys_per_record,
            figure(r.aggregator_invocations)
        );
        let _ = writeln!(
            s,
            "  feed polls: {:.2}/s per instance = {:.2} M RRU, ${:.2} per instance-month (busy all month: {:.2} M RRU, ${:.2})",
            r.polls.per_instance_second,
            r.polls.rru_per_instance_month / 1e6,
            r.polls.usd_per_instance_month,
            r.polls.busy_rru_per_instance_month / 1e6,
            r.polls.busy_usd_per_instance_month
        );
        if r.authorizer_ttl_secs > 0 {
            let _ = writeln!(
                s,
                "  requests a cached allow admitted past their key's minute: {} per million (the limiter never sees them)",
                grouped(r.outcomes.admitted_past_limit)
            );
        }
    }
    if let [on, off] = scenarios {
        let saved = off.report.total_usd - on.report.total_usd;
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "the result cache saves ${:.4} per million requests ({:.0} % of ${:.4}), leaving ${:.4}",
            saved,
            100.0 * saved / off.report.total_usd.max(f64::MIN_POSITIVE),
            off.report.total_usd,
            on.report.total_usd
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small, fast model: one key, REST, no usage aggregation surprises.
    fn small() -> TrafficModel {
        TrafficModel {
            keys: 1,
            requests_per_second: 50.0,
            instances: Some(1),
            minutes: 5,
            ..TrafficModel::default()
        }
    }

    fn line<'a>(r: &'a Report, what: &str) -> &'a Line {
        r.lines.iter().find(|l| l.what.starts_with(what)).unwrap()
    }

    #[test]
    fn zipf_weights_sum_to_one_and_fall_as_a_power() {
        let w = zipf_weights(10_000, 1.0);
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((w[0] / w[1] - 2.0).abs() < 1e-12);
        assert!((w[0] / w[9] - 10.0).abs() < 1e-9);
        // The harmonic number H(10,000) ≈ 9.7876: the top key takes 1/H.
        assert!((w[0] - 1.0 / 9.787_606).abs() < 1e-6);
        let flat = zipf_weights(4, 0.0);
        assert!(flat.iter().all(|x| (x - 0.25).abs() < 1e-12));
    }

    #[test]
    fn the_cache_formula_is_every_request_at_ttl_0_and_one_per_ttl_when_hot() {
        assert_eq!(cached_invocation_rate(123.0, 0.0), 123.0);
        assert!((cached_invocation_rate(1.0, 1.0) - 0.5).abs() < 1e-12);
        assert!((cached_invocation_rate(1e6, 4.0) - 0.25).abs() < 1e-6);
    }

    #[test]
    fn without_the_cache_every_request_is_an_invocation() {
        let model = TrafficModel {
            keys: 200,
            authorizer_ttl_secs: Some(0),
            instances: Some(2),
            minutes: 2,
            ..small()
        };
        let r = evaluate(&model).unwrap();
        assert!((r.invocations - 1e6).abs() < 1e-6, "{}", r.invocations);
        assert!((r.closed_form_invocations - 1e6).abs() < 1e-6);
        assert_eq!(r.outcomes.admitted_past_limit, 0.0);
    }

    #[test]
    fn a_hot_key_behind_a_ttl_invokes_about_once_per_ttl() {
        // 50 requests a second on one key, TTL 4 s: 1 / (4 + 1/50) = 0.2488 invocations a second.
        let model = TrafficModel {
            authorizer_ttl_secs: Some(4),
            minutes: 30,
            ..small()
        };
        let r = evaluate(&model).unwrap();
        let per_second = r.invocations / 1e6 * 50.0;
        assert!((per_second - 0.2488).abs() < 0.005, "{per_second}");
        assert!((r.closed_form_invocations / 1e6 * 50.0 - 0.2488).abs() < 1e-4);
        assert!(
            (r.invocations - r.closed_form_invocations).abs() / r.closed_form_invocations < 0.02
        );
    }

    #[test]
    fn the_ttl_defaults_to_what_keeps_the_revocation_bound() {
        let m = TrafficModel {
            revocation_bound_secs: 5.0,
            engine_bound_ms: 1_000,
            ..TrafficModel::default()
        };
        assert_eq!(m.resolved_ttl(), 4);
        let m = TrafficModel {
            engine_bound_ms: 1_500,
            ..m
        };
        assert_eq!(m.resolved_ttl(), 3, "whole seconds, rounded down");
        let m = TrafficModel {
            revocation_bound_secs: 1.0,
            ..m
        };
        assert_eq!(m.resolved_ttl(), 0, "never below 0");
        let r = evaluate(&TrafficModel {
            authorizer_ttl_secs: Some(10),
            ..small()
        })
        .unwrap();
        assert!(!r.revocation_bound_holds);
    }

    #[test]
    fn an_http_api_caches_per_route_and_path() {
        let rest = TrafficModel {
            authorizer_ttl_secs: Some(4),
            ..small()
        };
        let http = TrafficModel {
            api: Api::Http,
            routes_per_key: 5,
            ..rest.clone()
        };
        assert_eq!(http.entries_per_key(), 5);
        let (rest, http) = (evaluate(&rest).unwrap(), evaluate(&http).unwrap());
        // Five entries of 10 requests a second each: 5 × 10 / 41 against 50 / 201.
        let ratio = http.closed_form_invocations / rest.closed_form_invocations;
        assert!(
            (ratio - (50.0 / 41.0) / (50.0 / 201.0)).abs() < 1e-9,
            "{ratio}"
        );
        assert_eq!(http.api_gateway_usd, 1.0);
        assert_eq!(rest.api_gateway_usd, 3.5);
    }

    #[test]
    fn prices_are_applied_to_the_units_of_each_line() {
        let r = evaluate(&small()).unwrap();
        for l in &r.lines {
            let price = match l.unit {
                "requests" => prices::LAMBDA_REQUESTS,
                "GB-s" => prices::LAMBDA_ARM64_GB_SECOND,
                "RRU" => prices::DYNAMODB_READ,
                "WRU" => prices::DYNAMODB_WRITE,
                "stream RRU" => prices::DYNAMODB_STREAM_READ,
                other => panic!("unknown unit {other}"),
            };
            assert!(
                (l.usd - l.units * price.usd / price.per).abs() < 1e-12,
                "{}",
                l.what
            );
        }
        let sum: f64 = r.lines.iter().map(|l| l.usd).sum();
        assert!((r.total_usd - sum).abs() < 1e-12);
        // A million invocations at TTL 0 cost $0.20 in requests alone.
        let off = evaluate(&small().without_cache()).unwrap();
        assert!((line(&off, "authorizer invocations").usd - 0.20).abs() < 1e-9);
        // 2 ms at 256 MB: 0.0005 GB-s each, 500 GB-s a million, when no store call is waited for.
        let gb_s = line(&off, "authorizer compute").units;
        assert!((500.0..520.0).contains(&gb_s), "{gb_s}");
        assert_eq!(line(&off, "stream reads").usd, 0.0);
    }

    #[test]
    fn a_busy_instance_polls_every_half_bound_and_reads_nothing_stale() {
        let r = evaluate(&TrafficModel {
            authorizer_ttl_secs: Some(0),
            ..small()
        })
        .unwrap();
        // 50 invocations a second on one instance, bound 1 s: a tick every 500 ms, fired by the
        // first invocation after it (1/50 s later on average): 1 / 0.52 s.
        assert!(
            (r.polls.per_instance_second - 1.0 / 0.52).abs() < 0.03,
            "{}",
            r.polls.per_instance_second
        );
        assert_eq!(r.key_reads_stale, 0.0);
        assert!((r.polls.busy_rru_per_instance_month - 2.0 * 730.0 * 3600.0).abs() < 1.0);
    }

    #[test]
    fn a_quiet_instance_polls_less_and_rereads_its_keys() {
        // One request every 5 s: the engine is frozen past its bound between them.
        let r = evaluate(&TrafficModel {
            requests_per_second: 0.2,
            authorizer_ttl_secs: Some(0),
            minutes: 60,
            ..small()
        })
        .unwrap();
        // A poll at nearly every invocation (0.5 s + 5 s apart): about 0.18 a second.
        assert!(
            r.polls.per_instance_second < 0.25,
            "{}",
            r.polls.per_instance_second
        );
        assert!(r.key_reads_stale > 0.7e6, "{}", r.key_reads_stale);
    }

    #[test]
    fn leases_follow_the_cores_block_sizes() {
        // One key at 600 a minute on one instance, limit 60: the rate seen (refusals included)
        // asks for more than the cap, so four blocks of 15, then one refused ask: 5 writes a
        // minute.
        let r = evaluate(&TrafficModel {
            requests_per_second: 10.0,
            authorizer_ttl_secs: Some(0),
            minutes: 20,
            ..small()
        })
        .unwrap();
        let per_minute = r.lease_writes / 1e6 * 600.0;
        assert!((4.9..=5.2).contains(&per_minute), "{per_minute}");
        // The floor: one key, admitting in every minute.
        let floor_per_minute = r.lease_floor / 1e6 * 600.0;
        assert!(
            (0.99..=1.01).contains(&floor_per_minute),
            "{floor_per_minute}"
        );
        assert!(
            (r.outcomes.valid_share - 0.1).abs() < 0.01,
            "{}",
            r.outcomes.valid_share
        );
        // A key used once a minute: blocks of one, or two after a short gap (at most twice the
        // uses seen), so still about one lease a use.
        let r = evaluate(&TrafficModel {
            requests_per_second: 1.0 / 60.0,
            authorizer_ttl_secs: Some(0),
            minutes: 240,
            ..small()
        })
        .unwrap();
        assert!(
            (0.8..=0.9).contains(&(r.lease_writes / r.invocations)),
            "{}",
            r.lease_writes / r.invocations
        );
        // A minute with a use at all: 1 − 1/e of them, each costing its lease.
        let used = r.lease_floor / r.invocations;
        assert!((0.58..=0.68).contains(&used), "{used}");
        assert!(r.lease_floor <= r.lease_writes);
        // The same hot key behind API Gateway's cache (4 s TTL): about 15 verifications a
        // minute, 4 s or more apart, and about one lease a minute, not one a verification.
        let r = evaluate(&TrafficModel {
            requests_per_second: 10.0,
            authorizer_ttl_secs: Some(4),
            minutes: 20,
            ..small()
        })
        .unwrap();
        assert!(
            (0.05..0.1).contains(&(r.lease_writes / r.invocations)),
            "{}",
            r.lease_writes / r.invocations
        );
        assert!(r.lease_floor <= r.lease_writes && r.lease_floor > 0.0);
    }

    #[test]
    fn usage_records_hold_at_most_forty_keys_and_are_sized_as_the_store_writes_them() {
        let one = record_item_bytes(1);
        let forty = record_item_bytes(MAX_KEYS_PER_RECORD);
        assert!((150..400).contains(&one), "{one}");
        // The compact encoding keeps a full record within 4 KB: 4 write units, not 7.
        assert!((3_000..4_096).contains(&forty), "{forty}");
        // A record of one key: its item (1) + the key's figures (1) + account day (1), twice.
        assert_eq!(rollup_wru(1), 6);
        let r = evaluate(&TrafficModel {
            keys: 1_000,
            requests_per_second: 500.0,
            authorizer_ttl_secs: Some(0),
            minutes: 2,
            ..small()
        })
        .unwrap();
        assert!(
            r.keys_per_record <= 40.0 && r.keys_per_record > 30.0,
            "{}",
            r.keys_per_record
        );
    }

    /// An item's size as DynamoDB bills it: each attribute's name and value, a number one byte
    /// per two significant digits plus one, a set the sum of its members.
    fn billed_bytes(
        item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
    ) -> usize {
        use aws_sdk_dynamodb::types::AttributeValue as V;
        item.iter()
            .map(|(name, v)| {
                name.len()
                    + match v {
                        V::S(s) => s.len(),
                        V::N(n) => n.trim_start_matches(['-', '0']).len().div_ceil(2) + 1,
                        V::Null(_) | V::Bool(_) => 1,
                        V::Ss(set) => set.iter().map(String::len).sum(),
                        other => panic!("an attribute the roll-up does not write: {other:?}"),
                    }
            })
            .sum()
    }

    /// The items a roll-up of forty keys writes, by the store itself on DynamoDB Local, are the
    /// sizes [`rollup_wru`] prices: the record as [`record_item_bytes`] has it, each key's
    /// figures item holding two days, and the account's day, each within a kilobyte.
    #[tokio::test]
    async fn a_roll_up_writes_items_of_the_sizes_it_is_priced_at() {
        use keyward_core::usage::Applied;
        use keyward_store::conformance::{dynamodb_local, insert};
        use keyward_store::prelude::*;

        let store = dynamodb_local("kw-cost").await;
        let now = Utc::now();
        let mut uses = Vec::new();
        for i in 0..MAX_KEYS_PER_RECORD {
            let (key, _) = insert(
                &store,
                "default",
                serde_json::json!({"name": format!("k{i}")}),
            )
            .await;
            uses.push(KeyUse {
                key_id: key.id.clone(),
                outcomes: Outcomes {
                    valid: 25,
                    rate_limited: 0,
                    denied: 0,
                },
                last_used_at: now,
                last_used_ip: "203.0.113.70".parse().ok(),
            });
        }
        // Yesterday's record first, so that each key's figures hold two days, as they will.
        let yesterday = UsageRecord {
            id: keyward_core::id::new_id("usage").unwrap(),
            account: "default".into(),
            day: now.date_naive() - chrono::Duration::days(1),
            keys: uses.clone(),
        };
        store
            .write_usage(std::slice::from_ref(&yesterday))
            .await
            .unwrap();
        assert_eq!(store.apply_usage(&yesterday).await.unwrap(), Applied::Now);
        let record = UsageRecord {
            id: keyward_core::id::new_id("usage").unwrap(),
            account: "default".into(),
            day: now.date_naive(),
            keys: uses,
        };
        let scan = || async {
            store
                .client()
                .scan()
                .table_name(store.table())
                .send()
                .await
                .unwrap()
                .items
                .unwrap_or_default()
        };
        let kind = |item: &std::collections::HashMap<_, _>| {
            use aws_sdk_dynamodb::types::AttributeValue as V;
            match (item.get("pk"), item.get("sk")) {
                (Some(V::S(pk)), _) if pk.starts_with("USAGE#RECORDS#") => "record",
                (_, Some(V::S(sk))) if sk == "TOTAL" => "total",
                (_, Some(V::S(sk))) if sk.starts_with("DAY#") => "day",
                _ => "other",
            }
        };
        store
            .write_usage(std::slice::from_ref(&record))
            .await
            .unwrap();
        let written: Vec<usize> = scan()
            .await
            .iter()
            .filter(|i| kind(i) == "record" && i.contains_key("record"))
            .map(billed_bytes)
            .collect();
        assert_eq!(written.len(), 1, "one record not yet applied");
        assert_eq!(
            wru(written[0]),
            wru(record_item_bytes(MAX_KEYS_PER_RECORD)),
            "the record: {} bytes, priced as {}",
            written[0],
            record_item_bytes(MAX_KEYS_PER_RECORD)
        );
        assert_eq!(store.apply_usage(&record).await.unwrap(), Applied::Now);
        let items = scan().await;
        for (what, count, units) in [
            ("total", MAX_KEYS_PER_RECORD, TOTAL_ITEM_WRU),
            // A shard of the account's day for each record: the keys' days are held.
            ("day", 2, DAY_ITEM_WRU),
        ] {
            let sizes: Vec<usize> = items
                .iter()
                .filter(|i| kind(i) == what)
                .map(billed_bytes)
                .collect();
            assert_eq!(sizes.len(), count, "{what}");
            assert!(sizes.iter().all(|b| wru(*b) == units), "{what}: {sizes:?}");
        }
    }

    #[test]
    fn the_cache_lets_a_hot_key_past_its_limit() {
        // 10 a second on one key, limit 60 a minute: the limiter admits 60, a 4 s cache 600.
        let r = evaluate(&TrafficModel {
            requests_per_second: 10.0,
            authorizer_ttl_secs: Some(4),
            minutes: 20,
            ..small()
        })
        .unwrap();
        let per_minute = r.outcomes.admitted_past_limit / 1e6 * 600.0;
        assert!((500.0..560.0).contains(&per_minute), "{per_minute}");
    }

    #[test]
    fn the_same_model_and_seed_give_the_same_report() {
        let m = TrafficModel {
            keys: 300,
            minutes: 2,
            ..TrafficModel::default()
        };
        assert_eq!(evaluate(&m).unwrap(), evaluate(&m).unwrap());
    }

    #[test]
    fn bad_models_are_refused_with_the_flag_to_fix() {
        for (m, flag) in [
            (TrafficModel { keys: 0, ..small() }, "--keys"),
            (
                TrafficModel {
                    requests_per_second: f64::NAN,
                    ..small()
                },
                "--rps",
            ),
            (
                TrafficModel {
                    authorizer_ttl_secs: Some(3_601),
                    ..small()
                },
                "--ttl-secs",
            ),
            (
                TrafficModel {
                    accounts: 2,
                    ..small()
                },
                "--accounts",
            ),
            (
                TrafficModel {
                    memory_mb: 64,
                    ..small()
                },
                "--memory-mb",
            ),
        ] {
            let e = evaluate(&m).unwrap_err();
            assert!(e.0.contains(flag), "{e}");
        }
    }

    #[test]
    fn the_text_names_both_scenarios_and_the_saving() {
        let m = TrafficModel {
            keys: 100,
            requests_per_second: 20.0,
            engine_bound_ms: 1_000,
            minutes: 1,
            ..TrafficModel::default()
        };
        let text = render(&m, &scenarios(&m).unwrap());
        assert!(
            text.contains("authorizer result cache on: TTL 4 s"),
            "{text}"
        );
        assert!(
            text.contains("authorizer result cache off: TTL 0 s"),
            "{text}"
        );
        assert!(text.contains("total beyond API Gateway"));
        assert!(text.contains("the result cache saves $"));
    }
}
