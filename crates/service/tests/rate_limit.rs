//! The rate limit across engines, on SQLite and on DynamoDB Local: three engines sharing one
//! store, four tasks each hammering one key limited to 60 a minute. No UTC minute ever has
//! more than 60 VALID; the key still gets (close to) all 60; and the store writes per 1,000
//! requests are printed. A store that cannot grant a lease never turns into an allow.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use keyward_core::decision::Code;
use keyward_core::hash::Pepper;
use keyward_core::key::CreateKeyRequest;
use keyward_core::rate::Window;
use keyward_core::token::Prefix;
use keyward_service::app::Actor;
use keyward_service::issuance::CreateOutcome;
use keyward_service::verification::{Engine, EngineConfig, Explain, Presented, Verifier};
use keyward_service::{App, Settings};
use keyward_store::conformance::dynamodb_local;
use keyward_store::{DynamoStore, SqliteStore, Store};
use serde_json::json;

const ENGINES: usize = 3;
const TASKS: usize = 4;
const LIMIT: u64 = 60;

async fn key(store: Arc<dyn Store>, pepper: &Pepper, limit: u64) -> String {
    let app = App::new(store, pepper.clone(), Settings::default());
    let req: CreateKeyRequest = serde_json::from_value(json!({
        "name": "hammered", "scopes": ["read"], "rate_limit_per_minute": limit
    }))
    .unwrap();
    match app
        .create_key(&Actor::system("default"), req, None)
        .await
        .unwrap()
    {
        CreateOutcome::Created(c) => c.secret.expose().to_owned(),
        CreateOutcome::Replayed(_) => unreachable!(),
    }
}

/// VALID answers per UTC minute, and every answer's count, of `ENGINES` engines with `TASKS`
/// tasks each verifying `secret` for `run`.
async fn hammer(
    store: Arc<dyn Store>,
    pepper: &Pepper,
    secret: &str,
    run: Duration,
) -> (BTreeMap<i64, u64>, u64, Vec<Engine>) {
    let engines: Vec<Engine> = (0..ENGINES)
        .map(|_| {
            Engine::new(
                store.clone(),
                Arc::new(pepper.clone()),
                Prefix::live(),
                EngineConfig::default(),
            )
        })
        .collect();
    let valid_by_minute = Arc::new(Mutex::new(BTreeMap::new()));
    let requests = Arc::new(Mutex::new(0u64));
    let until = Instant::now() + run;
    let mut tasks = Vec::new();
    for engine in &engines {
        for _ in 0..TASKS {
            let verifier = Verifier::new(engine.clone(), None);
            let secret = secret.to_owned();
            let valid_by_minute = valid_by_minute.clone();
            let requests = requests.clone();
            tasks.push(tokio::spawn(async move {
                let presented = Presented {
                    token: Some(secret.as_str().into()),
                    ..Presented::default()
                };
                while Instant::now() < until {
                    let d = verifier.decide(&presented, Explain::No).await.unwrap();
                    let at = Utc::now();
                    *requests.lock().unwrap() += 1;
                    match d.code {
                        Code::Valid => {
                            *valid_by_minute
                                .lock()
                                .unwrap()
                                .entry(Window::of(at).0)
                                .or_insert(0) += 1;
                        }
                        Code::RateLimited => {
                            let wait = d.retry_after_secs.unwrap();
                            assert!((1..=60).contains(&wait));
                        }
                        other => panic!("unexpected {other:?}"),
                    }
                    tokio::task::yield_now().await;
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let by_minute = valid_by_minute.lock().unwrap().clone();
    let n = *requests.lock().unwrap();
    (by_minute, n, engines)
}

async fn three_engines_share_one_limit(store: Arc<dyn Store>, dynamo: Option<DynamoStore>) {
    let pepper = Pepper::generate().unwrap();
    let secret = key(store.clone(), &pepper, LIMIT).await;
    // Within one minute first: the whole budget, and no more.
    common::with_seconds_left(8).await;
    let before = dynamo.as_ref().map(DynamoStore::calls);
    let (by_minute, requests, engines) =
        hammer(store.clone(), &pepper, &secret, Duration::from_secs(3)).await;
    let valid: u64 = by_minute.values().sum();
    for (minute, n) in &by_minute {
        assert!(*n <= LIMIT, "minute {minute}: {n} VALID");
    }
    assert!(
        valid >= LIMIT - 3,
        "engines that share fairly get close to the whole budget: {valid}"
    );
    let leases: u64 = engines.iter().map(|e| e.stats().leases).sum();
    for e in &engines {
        e.flush_usage().await.unwrap();
    }
    let records: u64 = engines.iter().map(|e| e.stats().usage_records).sum();
    let per_thousand = |x: u64| x as f64 * 1000.0 / requests.max(1) as f64;
    eprintln!(
        "{ENGINES} engines x {TASKS} tasks, limit {LIMIT}/min: {requests} requests, {valid} VALID \
         ({by_minute:?}); store writes per 1,000 requests: {:.3} leases + {:.3} usage records \
         ({leases} leases in all, {:.1} VALID per lease)",
        per_thousand(leases),
        per_thousand(records),
        valid as f64 / leases.max(1) as f64,
    );
    if let (Some(before), Some(d)) = (before, &dynamo) {
        let after = d.calls();
        eprintln!(
            "  DynamoDB requests per 1,000 verifications: {:.3} writes, {:.3} reads",
            per_thousand(after.writes() - before.writes()),
            per_thousand(after.reads() - before.reads()),
        );
    }
    assert!(
        leases + records < requests / 20,
        "far fewer writes than requests: {leases} leases, {records} records for {requests}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_three_engines_never_exceed_the_limit() {
    three_engines_share_one_limit(Arc::new(SqliteStore::in_memory().unwrap()), None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_three_engines_never_exceed_the_limit() {
    let store = dynamodb_local("kw-limit").await;
    three_engines_share_one_limit(Arc::new(store.clone()), Some(store)).await;
}

/// Across a minute's turn: each minute on its own holds at most the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_minute_holds_more_than_the_limit_across_the_turn() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    let pepper = Pepper::generate().unwrap();
    let secret = key(store.clone(), &pepper, 20).await;
    // Start two seconds before a minute turns; run six.
    let second = Utc::now().timestamp().rem_euclid(60);
    let wait = (58 - second).rem_euclid(60);
    tokio::time::sleep(Duration::from_secs(wait as u64)).await;
    let (by_minute, _, _) = hammer(store, &pepper, &secret, Duration::from_secs(6)).await;
    assert!(by_minute.len() >= 2, "the run spans a turn: {by_minute:?}");
    for (minute, n) in &by_minute {
        assert!(*n <= 20, "minute {minute}: {n} VALID");
    }
    // The new minute starts from a budget of its own (blocks leased in the old minute and not
    // spent by its end are lost, never carried over): most of it is used in 4 s of hammering.
    let last = by_minute.values().last().copied().unwrap_or_default();
    assert!(
        last >= 10,
        "the new minute has a budget of its own: {by_minute:?}"
    );
}

/// A store that cannot be reached grants no lease: refused, never admitted on credit.
#[tokio::test]
async fn an_unreachable_store_admits_nothing_beyond_what_was_leased() {
    let reachable: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    let pepper = Pepper::generate().unwrap();
    let secret = key(reachable.clone(), &pepper, 60).await;
    let location =
        keyward_store::DynamoLocation::parse("dynamodb://gone?endpoint=http://127.0.0.1:9")
            .unwrap();
    let gone: Arc<dyn Store> = Arc::new(keyward_store::conformance::local_store(&location));
    // An engine on a store that is down: nothing cached, so the key itself cannot be read.
    let engine = Engine::new(
        gone,
        Arc::new(pepper),
        Prefix::live(),
        EngineConfig::default(),
    );
    let d = Verifier::new(engine, None)
        .decide(
            &Presented {
                token: Some(secret.as_str().into()),
                ..Presented::default()
            },
            Explain::No,
        )
        .await
        .unwrap();
    assert_eq!((d.code, d.retry_after_secs), (Code::Unavailable, Some(5)));
}
