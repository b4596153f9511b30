//! `keyward bench verify` (`keyward bench code` is in `code::bench`): what a cache-hit verification costs, next to a floor measured in
//! the same run, and what the store pays per 1,000 verifications.
//!
//! The floor is the least any authorizer must do for an HTTP API event: read its headers (and
//! skip the rest), check the token and compute its HMAC, look the hash up in a map, serialise a
//! simple response.
//! keyward's path is the real one: the event from its bytes (as the Lambda hands it over),
//! the route policy, the engine (cache, freshness rule, rate limit, usage counting), the
//! answer. The bench deployment raises the rate-limit bounds so the hot key stays on the
//! `VALID` path (spending its budget from leases) for the whole run; a second key at the
//! standard maximum (600 a minute) shows what a key at its limit costs.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use clap::{Args, Subcommand};
use keyward_aws::answer::Answer;
use keyward_aws::authorizer::Authorizer;
use keyward_aws::event::AuthorizerEvent;
use keyward_core::credential::KeySource;
use keyward_core::decision::Needs;
use keyward_core::hash::Pepper;
use keyward_core::key::{CreateKeyRequest, KeyRules, RATE_LIMIT_MAX};
use keyward_core::permission::Action;
use keyward_core::route::{RoutePolicy, RoutePolicySpec};
use keyward_core::token::Token;
use keyward_service::app::Actor;
use keyward_service::config::HttpApiResponse;
use keyward_service::issuance::CreateOutcome;
use keyward_service::verification::{Explain, Presented, Target, Verifier};
use keyward_service::{App, Settings};
use keyward_store::SqliteStore;
use serde_json::{Value, json};

use crate::error::CliError;

pub mod cost;
mod prices;
pub mod revocation;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Cache-hit verification against the floor, and store cost per 1,000 verifications.
    Verify(VerifyArgs),
    /// Keys as code against a management API: validate, plan and apply of N keys, a no-op
    /// plan, N in-place updates, and the prune that revokes them.
    Code(crate::code::bench::CodeArgs),
    /// A traffic model of what verification costs beyond API Gateway, per million requests:
    /// invocations, store reads and writes, usage aggregation, priced from list prices.
    Cost(cost::CostArgs),
    /// How long a revocation made through one server takes to be refused by another on the
    /// same store: N rounds of make, verify, revoke, poll until 401.
    Revocation(revocation::RevocationArgs),
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Verifications per measurement.
    #[arg(long, default_value_t = 200_000)]
    iterations: u64,
    /// Distinct keys for the many-keys measurement.
    #[arg(long, default_value_t = 1_000)]
    keys: usize,
}

/// The bench deployment's rate limit for its keys: no run reaches it.
const BENCH_RATE_LIMIT: u32 = 1_000_000_000;

const EVENT: &str = include_str!(
    "../../../tests/fixtures/events/example-apigw-v2-custom-authorizer-v2-request.json"
);

const REST_EVENT: &str = include_str!(
    "../../../tests/fixtures/events/example-apigw-custom-auth-request-type-request.json"
);

/// A REST REQUEST event for `GET /agents/ag_1` with `token` in its `X-API-Key` header.
fn rest_event_for(token: &str) -> Vec<u8> {
    let mut e: Value = serde_json::from_str(REST_EVENT).unwrap_or_default();
    e["headers"]["X-API-Key"] = json!(token);
    e["path"] = json!("/agents/ag_1");
    e["resource"] = json!("/agents/{id}");
    e["methodArn"] =
        json!("arn:aws:execute-api:us-east-1:123456789012:s4x3opwd6i/test/GET/agents/ag_1");
    serde_json::to_vec(&e).unwrap_or_default()
}

/// A route policy from its routes, as a spec document lists them.
fn route_policy(routes: Value) -> Result<RoutePolicy, CliError> {
    let spec: RoutePolicySpec = serde_json::from_value(json!({ "routes": routes }))
        .map_err(|e| CliError::Input(e.to_string()))?;
    RoutePolicy::compile(&spec).map_err(|e| CliError::Input(e.to_string()))
}

/// The REST API's route policy: a handful of routes, as a small API has.
fn rest_policy() -> Result<RoutePolicy, CliError> {
    route_policy(json!([
        {"method": "GET", "path": "/agents", "action": "discover", "resource": "agents"},
        {"method": "GET", "path": "/agents/{id}", "action": "read", "resource": "agents/{id}"},
        {"method": "POST", "path": "/agents", "action": "write", "resource": "agents"},
        {"method": "DELETE", "path": "/agents/{id}", "action": "admin", "resource": "agents/{id}"},
        {"method": "GET", "path": "/billing", "action": "read", "resource": "billing"},
        {"method": "GET", "path": "/ws/{ws}/agents/{id}", "action": "read", "resource": "agents/{id}", "workspace": {"path": "ws"}},
    ]))
}

fn event_for(token: &str) -> Vec<u8> {
    let mut e: Value = serde_json::from_str(EVENT).unwrap_or_default();
    e["headers"]["x-api-key"] = json!(token);
    e["rawPath"] = json!("/agents/ag_1");
    e["requestContext"]["http"]["method"] = json!("GET");
    e["requestContext"]["http"]["sourceIp"] = json!("10.0.0.1");
    serde_json::to_vec(&e).unwrap_or_default()
}

/// Lease writes and usage records between two snapshots of the engine's counters.
fn writes(
    before: &keyward_service::verification::EngineStats,
    after: &keyward_service::verification::EngineStats,
) -> (u64, u64) {
    (
        after.leases - before.leases,
        after.usage_records - before.usage_records,
    )
}

fn per_op(start: Instant, n: u64) -> f64 {
    start.elapsed().as_nanos() as f64 / n.max(1) as f64
}

/// Rounds the floor and the hot path are measured in, alternately.
const ROUNDS: u64 = 7;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or_default()
}

/// The least of an HTTP API event an authorizer must read: its headers.
#[derive(Debug, Default, serde::Deserialize)]
struct MinimalEvent {
    headers: HashMap<String, String>,
}

/// What the authorizer Lambda does with an event: parse, decide, serialise the answer.
async fn handle(
    authorizer: &Authorizer,
    bytes: &[u8],
) -> Result<(keyward_core::decision::Code, Vec<u8>), CliError> {
    let event = AuthorizerEvent::from_slice(bytes).map_err(|e| CliError::Input(e.to_string()))?;
    let explained = authorizer.authorize(&event).await?;
    let answer = match &explained.answer {
        Answer::Respond(r) => serde_json::to_vec(r).unwrap_or_default(),
        Answer::Unauthorized => Vec::new(),
    };
    Ok((explained.code, answer))
}

/// Refuses to measure unless `event` verifies as `VALID`: a bench of refusals measures nothing.
async fn expect_valid(authorizer: &Authorizer, event: &[u8], what: &str) -> Result<(), CliError> {
    let (code, _) = handle(authorizer, event).await?;
    if code.is_valid() {
        Ok(())
    } else {
        Err(CliError::Input(format!(
            "{what} was not valid: {}",
            code.as_str()
        )))
    }
}

/// `keyward bench verify`.
pub async fn verify(args: VerifyArgs) -> Result<(), CliError> {
    // A whole number of rounds.
    let n = args.iterations.max(ROUNDS) / ROUNDS * ROUNDS;
    let pepper = Pepper::generate().map_err(|e| CliError::Input(e.to_string()))?;
    let store = Arc::new(SqliteStore::in_memory()?);
    let settings = Settings {
        rules: KeyRules {
            rate_limit_max: BENCH_RATE_LIMIT,
            ..KeyRules::default()
        },
        ..Settings::default()
    };
    let app = App::new(store, pepper.clone(), settings);
    let system = Actor::system("default");
    let create = |name: String, limit: u32| {
        let app = &app;
        let system = &system;
        async move {
            let req: CreateKeyRequest = serde_json::from_value(json!({
                "name": name, "scopes": ["agent:viewer"], "rate_limit_per_minute": limit
            }))
            .map_err(|e| CliError::Input(e.to_string()))?;
            match app.create_key(system, req, None).await? {
                CreateOutcome::Created(c) => Ok(c.secret),
                CreateOutcome::Replayed(_) => {
                    Err(CliError::Input("a bench key was not created".into()))
                }
            }
        }
    };
    let mut tokens = Vec::with_capacity(args.keys);
    for i in 0..args.keys.max(1) {
        tokens.push(create(format!("bench-{i}"), BENCH_RATE_LIMIT).await?);
    }
    let limited = create("bench-at-limit".into(), RATE_LIMIT_MAX).await?;
    let policy = route_policy(json!([
        {"method": "GET", "path": "/agents/{id}", "action": "read", "resource": "agents/{id}"}
    ]))?;
    let authorizer = Authorizer::new(
        Verifier::new(app.engine().clone(), Some(policy)),
        HttpApiResponse::Simple,
    );
    let _poller = app.engine().spawn_background();
    let hot = tokens[0].clone();
    let hot_event = event_for(hot.expose());

    // The floor, its typed variant and keyward's hot path are measured in interleaved rounds,
    // and each figure is the median of its rounds: a burst of other work on the machine
    // lands in one round of one measure, not in the whole of it.
    let map: HashMap<_, _> = tokens.iter().map(|t| (pepper.hash(t), t.start())).collect();
    expect_valid(&authorizer, &hot_event, "the benchmark key").await?;
    app.engine().flush_usage().await?;
    let before = app.engine().stats();
    let per_round = n / ROUNDS;
    // What both floors do once the key's header is read: check it, hash it, look it up, answer.
    let floor_answer = |header: &str| {
        let found = Token::parse(header)
            .ok()
            .and_then(|t| map.get(&pepper.hash(&t)));
        let response = json!({"isAuthorized": found.is_some(), "context": {"key_id": found}});
        black_box(serde_json::to_vec(&response).unwrap_or_default());
    };
    // The floor: parse, HMAC, map lookup, serialise.
    let floor_of = |event: &[u8]| {
        let e: MinimalEvent = serde_json::from_slice(black_box(event)).unwrap_or_default();
        floor_answer(e.headers.get("x-api-key").map_or("", String::as_str));
    };
    let (mut floors, mut typed_floors, mut hots) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let started = Instant::now();
        for _ in 0..per_round {
            floor_of(&hot_event);
        }
        floors.push(per_op(started, per_round));

        // For context: the same, parsing the full typed event of `aws_lambda_events`.
        let started = Instant::now();
        for _ in 0..per_round {
            let e: aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request =
                serde_json::from_slice(black_box(&hot_event)).unwrap_or_default();
            floor_answer(
                e.headers
                    .get("x-api-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default(),
            );
        }
        typed_floors.push(per_op(started, per_round));

        // keyward, hot key, warm cache: the Lambda handler's own steps.
        let started = Instant::now();
        for _ in 0..per_round {
            black_box(handle(&authorizer, black_box(&hot_event)).await?);
        }
        hots.push(per_op(started, per_round));
    }
    let (floor, typed_floor, hot_ns) = (median(floors), median(typed_floors), median(hots));
    app.engine().flush_usage().await?;
    let after = app.engine().stats();
    let hot_reads = after.key_reads - before.key_reads;
    let hot_writes = writes(&before, &after);

    // Where the time goes: each stage alone, on the same hot event.
    let started = Instant::now();
    for _ in 0..n {
        black_box(AuthorizerEvent::from_slice(black_box(&hot_event)).ok());
    }
    let parse_ns = per_op(started, n);
    let parsed =
        AuthorizerEvent::from_slice(&hot_event).map_err(|e| CliError::Input(e.to_string()))?;

    let stated = Presented {
        token: Some(hot.expose().into()),
        source: KeySource::ApiKeyHeader,
        source_ip: "10.0.0.1".parse().ok(),
        target: Target::Stated {
            needs: Needs::Permission(Action::Read, "agents/ag_1".into()),
            workspace: None,
        },
    };
    let started = Instant::now();
    for _ in 0..n {
        black_box(
            app.verifier()
                .decide(black_box(&stated), Explain::No)
                .await?,
        );
    }
    let engine_ns = per_op(started, n);
    let started = Instant::now();
    for _ in 0..n {
        black_box(authorizer.authorize(black_box(&parsed)).await?);
    }
    let decide_ns = per_op(started, n);
    let explained = authorizer.authorize(&parsed).await?;
    let started = Instant::now();
    for _ in 0..n {
        if let Answer::Respond(r) = black_box(&explained.answer) {
            black_box(serde_json::to_vec(r).unwrap_or_default());
        }
    }
    let serialise_ns = per_op(started, n);

    // keyward, many distinct keys: the first sight of each is a miss.
    let events: Vec<Vec<u8>> = tokens.iter().map(|t| event_for(t.expose())).collect();
    let before = app.engine().stats();
    let started = Instant::now();
    for i in 0..n {
        black_box(handle(&authorizer, &events[(i as usize) % events.len()]).await?);
    }
    let many_ns = per_op(started, n);
    app.engine().flush_usage().await?;
    let after = app.engine().stats();
    let many_reads = after.key_reads - before.key_reads;
    let many_writes = writes(&before, &after);
    // Then every key is cached: cache hits spread over many keys, against the floor on the
    // same events (whose map lookups and parses miss the CPU's caches as keyward's do), in
    // interleaved rounds.
    let event_of = |i: u64| &events[(i as usize) % events.len()];
    let (mut many_floors, mut many_warms) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let started = Instant::now();
        for i in 0..per_round {
            floor_of(event_of(i));
        }
        many_floors.push(per_op(started, per_round));
        let started = Instant::now();
        for i in 0..per_round {
            black_box(handle(&authorizer, event_of(i)).await?);
        }
        many_warms.push(per_op(started, per_round));
    }
    let (many_floor, many_warm_ns) = (median(many_floors), median(many_warms));

    // A REST API in front: a REQUEST event, the policy for this request's ARN, and the
    // cache-safe policy for every route (what a deployment with API Gateway's result cache on
    // answers on each of its cache misses), in interleaved rounds.
    let rest = |cache_safe: bool| -> Result<Authorizer, CliError> {
        Ok(Authorizer::new(
            Verifier::new(app.engine().clone(), Some(rest_policy()?)),
            HttpApiResponse::Simple,
        )
        .with_cache_safe_answers(cache_safe))
    };
    let (per_arn, cache_safe) = (rest(false)?, rest(true)?);
    let rest_event = rest_event_for(hot.expose());
    for authorizer in [&per_arn, &cache_safe] {
        expect_valid(authorizer, &rest_event, "the REST benchmark event").await?;
    }
    let (mut per_arns, mut cache_safes) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        for (authorizer, times) in [(&per_arn, &mut per_arns), (&cache_safe, &mut cache_safes)] {
            let started = Instant::now();
            for _ in 0..per_round {
                black_box(handle(authorizer, black_box(&rest_event)).await?);
            }
            times.push(per_op(started, per_round));
        }
    }
    let (rest_ns, cache_safe_ns) = (median(per_arns), median(cache_safes));

    // A hot key at its limit (600 a minute): 600 admitted, the rest refused from memory.
    let limited_event = event_for(limited.expose());
    let before = app.engine().stats();
    let mut admitted = 0u64;
    let started = Instant::now();
    for _ in 0..n {
        let (code, _) = black_box(handle(&authorizer, black_box(&limited_event)).await?);
        admitted += u64::from(code.is_valid());
    }
    let limited_ns = per_op(started, n);
    app.engine().flush_usage().await?;
    let after = app.engine().stats();
    let limited_writes = writes(&before, &after);

    let per_thousand = |x: u64| x as f64 * 1000.0 / n as f64;
    println!(
        "keyward bench verify: {n} verifications per measurement, {} keys",
        tokens.len()
    );
    println!("{:<44} {:>10} {:>8}", "", "ns/op", "x floor");
    for (what, ns, floor) in [
        (
            "floor (headers + HMAC + map lookup + serialise)",
            floor,
            floor,
        ),
        (
            "  the same with the typed aws_lambda_events parse",
            typed_floor,
            floor,
        ),
        ("keyward, one hot key (cache hit)", hot_ns, floor),
        (
            "keyward, one hot key at its limit (600/min)",
            limited_ns,
            floor,
        ),
        ("keyward, REST REQUEST event, one hot key", rest_ns, floor),
        (
            "  the same, cache-safe policy (6 routes)",
            cache_safe_ns,
            floor,
        ),
        ("floor, many keys round-robin", many_floor, many_floor),
        (
            "keyward, many keys round-robin, all cached",
            many_warm_ns,
            many_floor,
        ),
        (
            "  the same, the first sight of each a miss",
            many_ns,
            many_floor,
        ),
    ] {
        println!("{what:<44} {ns:>10.0} {:>8.2}", ns / floor);
    }
    println!();
    println!("where the time goes (each stage alone, ns/op):");
    println!(
        "  event parse {parse_ns:.0}, engine verify {engine_ns:.0}, route + engine + answer {decide_ns:.0}, serialise {serialise_ns:.0}"
    );
    println!();
    println!(
        "{:<44} {:>10} {:>10} {:>10}",
        "store cost per 1,000 verifications", "key reads", "leases", "records"
    );
    for (what, reads, w) in [
        ("one hot key under its limit (warm)", hot_reads, hot_writes),
        (
            "many keys (first sight of each is a miss)",
            many_reads,
            many_writes,
        ),
        ("one hot key at its limit", 0, limited_writes),
    ] {
        println!(
            "{:<44} {:>10.3} {:>10.3} {:>10.3}",
            what,
            per_thousand(reads),
            per_thousand(w.0),
            per_thousand(w.1)
        );
    }
    println!();
    println!(
        "the key at its limit admitted {admitted} of {n} (its limit is {RATE_LIMIT_MAX} a minute)."
    );
    println!("a warm hit reads nothing; a miss reads once. A lease is one conditional write and");
    println!("grows with the rate it serves; a spent minute costs nothing more. A usage record");
    println!("(every 10 s by default, up to 40 keys) is one write, and one roll-up transaction.");
    Ok(())
}
