//! The verification engine's promises, on SQLite and on DynamoDB Local: a warm hit reads
//! nothing, a revoke reaches another engine within the bound (poller running or frozen),
//! usage is written in batches (one record per flush, whatever the outcome of each request),
//! and a key's budget and uses outlive its cache entries.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use keyward_core::decision::Code;
use keyward_core::hash::Pepper;
use keyward_core::key::CreateKeyRequest;
use keyward_core::permission::ScopeInput;
use keyward_core::token::{Prefix, Token};
use keyward_service::aggregation::Aggregator;
use keyward_service::app::Actor;
use keyward_service::issuance::CreateOutcome;
use keyward_service::verification::{Decided, Engine, EngineConfig, Explain, Presented, Verifier};
use keyward_service::{App, Settings};
use keyward_store::conformance::dynamodb_local;
use keyward_store::{SqliteStore, Store};

const BOUND: Duration = Duration::from_millis(800);

async fn dynamodb() -> Arc<dyn Store> {
    Arc::new(dynamodb_local("kw-engine").await)
}

fn sqlite() -> Arc<dyn Store> {
    Arc::new(SqliteStore::in_memory().unwrap())
}

struct World {
    app: App,
    pepper: Arc<Pepper>,
    store: Arc<dyn Store>,
}

impl World {
    fn new(store: Arc<dyn Store>) -> Self {
        let pepper = Pepper::generate().unwrap();
        let app = App::new(store.clone(), pepper.clone(), Settings::default());
        Self {
            app,
            pepper: Arc::new(pepper),
            store,
        }
    }

    fn engine(&self) -> Engine {
        self.engine_holding(EngineConfig::default().cache_capacity)
    }

    /// An engine whose cache holds at most `capacity` entries.
    fn engine_holding(&self, capacity: usize) -> Engine {
        let config = EngineConfig {
            revocation_bound: BOUND,
            cache_capacity: capacity,
            ..EngineConfig::default()
        };
        Engine::new(
            self.store.clone(),
            self.pepper.clone(),
            Prefix::live(),
            config,
        )
    }

    async fn key(&self, name: &str) -> (String, String) {
        let req = CreateKeyRequest {
            name: Some(name.into()),
            scopes: Some(vec![ScopeInput::from("read")]),
            ..CreateKeyRequest::default()
        };
        match self
            .app
            .create_key(&Actor::system("default"), req, None)
            .await
            .unwrap()
        {
            CreateOutcome::Created(c) => (c.key.id, c.secret.expose().to_owned()),
            CreateOutcome::Replayed(_) => unreachable!(),
        }
    }
}

/// Verifies `token` through `engine` alone (no route policy, only the key is checked), as the
/// authorizer, the gateway and `POST /v1/verify` do through their verifiers.
async fn verify(engine: &Engine, token: Option<&str>, ip: Option<&str>) -> Decided {
    let presented = Presented {
        token: token.map(Into::into),
        source_ip: ip.map(|ip| ip.parse().unwrap()),
        ..Presented::default()
    };
    Verifier::new(engine.clone(), None)
        .decide(&presented, Explain::No)
        .await
        .unwrap()
}

async fn warm_hits_read_nothing_and_bad_tokens_never_read(store: Arc<dyn Store>) {
    let w = World::new(store);
    let engine = w.engine();
    engine.sync().await.unwrap();
    let (_, secret) = w.key("hot").await;
    assert!(!verify(&engine, Some(&secret), None).await.cached);
    for _ in 0..50 {
        let d = verify(&engine, Some(&secret), None).await;
        assert!(d.cached && d.code == Code::Valid, "{d:?}");
    }
    assert_eq!(engine.stats().key_reads, 1);
    let unknown = Token::generate(&Prefix::live()).unwrap();
    verify(&engine, Some(unknown.expose()), None).await;
    let d = verify(&engine, Some(unknown.expose()), None).await;
    assert_eq!(
        (d.code, d.cached),
        (Code::NotFound, true),
        "unknown hashes are cached too"
    );
    verify(&engine, Some("kw_live_malformed"), None).await;
    verify(&engine, None, None).await;
    assert_eq!(
        engine.stats().key_reads,
        2,
        "malformed and missing tokens read nothing"
    );
}

/// Revokes through the management service and measures how long another engine still says
/// VALID; `poll` runs that engine's change-feed poller, otherwise it is frozen (as a Lambda
/// between invocations).
async fn a_revoke_reaches_another_engine_within_the_bound(store: Arc<dyn Store>, poll: bool) {
    let w = World::new(store);
    let other = w.engine();
    let poller = poll.then(|| other.spawn_background());
    let (id, secret) = w.key("shared").await;
    assert_eq!(verify(&other, Some(&secret), None).await.code, Code::Valid);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(verify(&other, Some(&secret), None).await.cached);

    w.app
        .revoke_key(&Actor::system("default"), &id, None)
        .await
        .unwrap();
    let revoked = Instant::now();
    loop {
        let d = verify(&other, Some(&secret), None).await;
        if d.code == Code::Revoked {
            break;
        }
        assert_eq!(d.code, Code::Valid);
        assert!(
            revoked.elapsed() < BOUND + Duration::from_millis(300),
            "still valid {:?} after revoke",
            revoked.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delay = revoked.elapsed();
    eprintln!("revocation reached the other engine in {delay:?} (bound {BOUND:?}, poller {poll})");
    assert!(delay <= BOUND + Duration::from_millis(100));
    if let Some(p) = poller {
        p.abort();
    }
}

async fn a_hot_key_costs_one_usage_write_per_interval(store: Arc<dyn Store>) {
    let w = World::new(store.clone());
    let engine = w.engine();
    let (id, secret) = w.key("busy").await;
    let mut valid = 0;
    for _ in 0..1000 {
        valid +=
            u64::from(verify(&engine, Some(&secret), Some("10.0.0.7")).await.code == Code::Valid);
    }
    assert_eq!(valid, 60, "the default limit: 60 a minute");
    assert_eq!(engine.flush_usage().await.unwrap(), 1, "one record");
    assert_eq!(
        engine.flush_usage().await.unwrap(),
        0,
        "nothing left to write"
    );
    let stats = engine.stats();
    assert_eq!(
        (stats.usage_flushes, stats.usage_records, stats.key_reads),
        (1, 1, 1)
    );
    assert!(
        stats.leases < 12,
        "a few leases, not one per request: {}",
        stats.leases
    );
    apply_all(&store).await;
    let key = w.store.get_key("default", &id).await.unwrap().unwrap();
    assert_eq!(
        key.request_count, 1000,
        "every verification of the key is a request"
    );
    assert_eq!(key.last_used_ip, Some("10.0.0.7".parse().unwrap()));
}

/// A key's leased budget and its counted uses are kept by the engine per key, not in its cache
/// entries: dropping those (a local change, a full cache) loses neither.
async fn budgets_and_uses_outlive_cache_entries(store: Arc<dyn Store>) {
    let w = World::new(store.clone());
    let engine = w.engine_holding(2);
    let (id, secret) = w.key("kept").await;
    // The lease counts below hold within one UTC minute.
    common::with_seconds_left(5).await;
    for _ in 0..2 {
        assert_eq!(verify(&engine, Some(&secret), None).await.code, Code::Valid);
    }
    // The first lease of a 60-a-minute key is 3 uses: one is left in memory.
    assert_eq!(engine.stats().leases, 1);
    engine.forget_key(&id, None);
    let d = verify(&engine, Some(&secret), None).await;
    assert_eq!((d.code, d.cached), (Code::Valid, false), "{d:?}");
    assert_eq!(
        engine.stats().leases,
        1,
        "the use left of the first lease was spent, not leased again"
    );

    // Three keys through a cache of two, flushed after each round: cache entries are dropped
    // all the time, and key entries nothing holds (no cache entry, no use to write) are
    // forgotten past the capacity; no use is lost.
    let others = [w.key("one").await, w.key("two").await];
    for _ in 0..10 {
        for (_, token) in &others {
            verify(&engine, Some(token), None).await;
        }
        verify(&engine, Some(&secret), None).await;
        engine.flush_usage().await.unwrap();
    }
    apply_all(&store).await;
    for (key_id, uses) in [(&id, 13), (&others[0].0, 10), (&others[1].0, 10)] {
        assert_eq!(request_count(&w, key_id).await, uses, "{key_id}");
    }
}

/// Counting and flushing at once, on two threads: every use is written exactly once (a key's
/// uses are counted under its own lock and taken by a flush under the same lock).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uses_counted_while_flushes_run_are_each_written_once() {
    let store = sqlite();
    let w = World::new(store.clone());
    let engine = w.engine();
    let keys = [w.key("a").await, w.key("b").await, w.key("c").await];
    let flusher = {
        let engine = engine.clone();
        tokio::spawn(async move {
            loop {
                engine.flush_usage().await.unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    let counters: Vec<_> = (0..4)
        .map(|task| {
            let (engine, keys) = (engine.clone(), keys.clone());
            tokio::spawn(async move {
                for i in 0..300 {
                    let (_, token) = &keys[(task + i) % keys.len()];
                    verify(&engine, Some(token), None).await;
                }
            })
        })
        .collect();
    for counter in counters {
        counter.await.unwrap();
    }
    flusher.abort();
    let _ = flusher.await;
    engine.flush_usage().await.unwrap();
    apply_all(&store).await;
    let mut total = 0;
    for (id, _) in &keys {
        total += request_count(&w, id).await;
    }
    assert_eq!(total, 4 * 300, "every verification counted once");
}

/// A flush whose caller goes away while the store writes (a cancelled request) leaves its
/// records to the next flush: no use is lost, none counted twice.
async fn a_cancelled_flush_loses_no_use(store: Arc<dyn Store>) {
    let w = World::new(store.clone());
    let engine = w.engine();
    let (id, secret) = w.key("cancelled").await;
    for _ in 0..5 {
        verify(&engine, Some(&secret), None).await;
    }
    let cancelled = tokio::time::timeout(Duration::ZERO, engine.flush_usage()).await;
    assert!(cancelled.is_err(), "the flush was cut off mid-write");
    assert_eq!(engine.flush_usage().await.unwrap(), 1, "its record, again");
    apply_all(&store).await;
    assert_eq!(request_count(&w, &id).await, 5);
}

/// On DynamoDB only: SQLite's write finishes within the first poll, leaving nothing to cut off.
#[tokio::test]
async fn dynamodb_a_cancelled_flush_loses_no_use() {
    a_cancelled_flush_loses_no_use(dynamodb().await).await;
}

/// Rolls up every usage record written (the aggregator takes a batch at a time).
async fn apply_all(store: &Arc<dyn Store>) {
    let aggregator = Aggregator::new(store.clone());
    while aggregator.apply_pending().await.unwrap() > 0 {}
}

/// The lifetime request count of key `id`, as rolled up.
async fn request_count(w: &World, id: &str) -> u64 {
    w.store
        .get_key("default", id)
        .await
        .unwrap()
        .unwrap()
        .request_count
}

#[tokio::test]
async fn sqlite_warm_hits_read_nothing() {
    warm_hits_read_nothing_and_bad_tokens_never_read(sqlite()).await;
}

#[tokio::test]
async fn dynamodb_warm_hits_read_nothing() {
    warm_hits_read_nothing_and_bad_tokens_never_read(dynamodb().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_revocation_reaches_a_polling_engine_within_the_bound() {
    a_revoke_reaches_another_engine_within_the_bound(sqlite(), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_revocation_reaches_a_frozen_engine_within_the_bound() {
    a_revoke_reaches_another_engine_within_the_bound(sqlite(), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_revocation_reaches_a_polling_engine_within_the_bound() {
    a_revoke_reaches_another_engine_within_the_bound(dynamodb().await, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_revocation_reaches_a_frozen_engine_within_the_bound() {
    a_revoke_reaches_another_engine_within_the_bound(dynamodb().await, false).await;
}

#[tokio::test]
async fn sqlite_usage_is_batched() {
    a_hot_key_costs_one_usage_write_per_interval(sqlite()).await;
}

#[tokio::test]
async fn dynamodb_usage_is_batched() {
    a_hot_key_costs_one_usage_write_per_interval(dynamodb().await).await;
}

#[tokio::test]
async fn sqlite_budgets_and_uses_outlive_cache_entries() {
    budgets_and_uses_outlive_cache_entries(sqlite()).await;
}

#[tokio::test]
async fn dynamodb_budgets_and_uses_outlive_cache_entries() {
    budgets_and_uses_outlive_cache_entries(dynamodb().await).await;
}
