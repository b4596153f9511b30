//! Regeneration with a grace period, on SQLite and on DynamoDB Local: within the grace both
//! secrets verify, after it only the new one (cached entries included); a grace never outlives
//! the key's expiry; racing regenerations leave one current secret and at most one in grace; a
//! revoked or expired key cannot be regenerated.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use keyward_core::decision::Code;
use keyward_core::hash::Pepper;
use keyward_core::key::CreateKeyRequest;
use keyward_core::lifecycle::RegenerateRequest;
use keyward_service::app::Actor;
use keyward_service::issuance::CreateOutcome;
use keyward_service::rotation::ExpiryNotifier;
use keyward_service::verification::{Explain, Presented};
use keyward_service::{App, ServiceError, Settings};
use keyward_store::Store;
use serde_json::json;

fn app(store: Arc<dyn Store>) -> App {
    app_and_pepper(store).0
}

fn app_and_pepper(store: Arc<dyn Store>) -> (App, Pepper) {
    // A high limit: these tests verify often and are about secrets, not budgets.
    let mut settings = Settings::default();
    settings.rules.rate_limit_max = 100_000;
    let pepper = Pepper::generate().unwrap();
    (App::new(store, pepper.clone(), settings), pepper)
}

fn actor() -> Actor {
    Actor::system("default")
}

async fn key(app: &App, body: serde_json::Value) -> (String, String) {
    let mut body = body;
    body["scopes"] = json!(["read"]);
    body["rate_limit_per_minute"] = json!(100_000);
    let request: CreateKeyRequest = serde_json::from_value(body).unwrap();
    match app.create_key(&actor(), request, None).await.unwrap() {
        CreateOutcome::Created(c) => (c.key.id, c.secret.expose().to_owned()),
        CreateOutcome::Replayed(_) => unreachable!(),
    }
}

async fn code(app: &App, secret: &str) -> Code {
    let presented = Presented {
        token: Some(secret.into()),
        ..Presented::default()
    };
    app.verifier()
        .decide(&presented, Explain::No)
        .await
        .unwrap()
        .code
}

fn grace(seconds: i64) -> RegenerateRequest {
    RegenerateRequest {
        grace_period_seconds: Some(seconds),
        ..Default::default()
    }
}

async fn both_verify_within_the_grace_and_only_the_new_after(store: Arc<dyn Store>) {
    let app = app(store);
    let (id, old) = key(&app, json!({"name": "graced"})).await;
    assert_eq!(code(&app, &old).await, Code::Valid, "cached now");
    let regenerated = app
        .regenerate_key(&actor(), &id, None, &grace(2))
        .await
        .unwrap();
    let new = regenerated.secret.expose().to_owned();
    let until = regenerated.key.previous_secret.clone().unwrap().expires_at;
    assert!((until - Utc::now()).num_milliseconds() <= 2_000);
    assert_eq!(code(&app, &new).await, Code::Valid);
    assert_eq!(
        code(&app, &old).await,
        Code::Valid,
        "the old secret, in its grace"
    );
    // Past the grace: refused from that instant, though the engine still caches the entry.
    let wait = (until - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(50);
    tokio::time::sleep(wait).await;
    assert_eq!(code(&app, &old).await, Code::NotFound, "the grace is over");
    assert_eq!(code(&app, &new).await, Code::Valid);
    let shown = app.get_key(&actor(), &id).await.unwrap();
    assert_eq!(shown.previous_secret, None, "an ended grace is not shown");

    // Without a grace the old secret stops at once.
    let again = app
        .regenerate_key(&actor(), &id, None, &RegenerateRequest::default())
        .await
        .unwrap();
    assert_eq!(again.key.previous_secret, None);
    assert_eq!(code(&app, &new).await, Code::NotFound);
    assert_eq!(code(&app, again.secret.expose()).await, Code::Valid);
}

async fn a_grace_never_outlives_the_key(store: Arc<dyn Store>) {
    let app = app(store);
    let expires = Utc::now() + chrono::Duration::minutes(10);
    let (id, _) = key(&app, json!({"name": "expiring", "expires_at": expires})).await;
    let regenerated = app
        .regenerate_key(&actor(), &id, None, &grace(86_400))
        .await
        .unwrap();
    let until = regenerated.key.previous_secret.unwrap().expires_at;
    assert_eq!(
        until.timestamp_millis(),
        expires.timestamp_millis(),
        "clipped to the key's expiry"
    );
    for bad in [-1, 604_801] {
        let err = app
            .regenerate_key(&actor(), &id, None, &grace(bad))
            .await
            .unwrap_err();
        assert!(matches!(err, ServiceError::Invalid(_)), "{err:?}");
    }
}

async fn revoked_and_expired_keys_cannot_be_regenerated(store: Arc<dyn Store>) {
    let app = app(store);
    let (revoked, _) = key(&app, json!({"name": "revoked"})).await;
    app.revoke_key(&actor(), &revoked, None).await.unwrap();
    let err = app
        .regenerate_key(&actor(), &revoked, None, &grace(60))
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Conflict(_)), "{err:?}");

    let soon = Utc::now() + chrono::Duration::milliseconds(1_200);
    let (expired, _) = key(&app, json!({"name": "expired", "expires_at": soon})).await;
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    let err = app
        .regenerate_key(&actor(), &expired, None, &grace(60))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ServiceError::Conflict(m) if m.contains("expired")),
        "{err:?}"
    );
}

async fn racing_regenerations_leave_one_current_and_at_most_one_in_grace(store: Arc<dyn Store>) {
    let app = app(store);
    let (id, original) = key(&app, json!({"name": "raced"})).await;
    let racers: Vec<_> = (0..6)
        .map(|_| {
            let (app, id) = (app.clone(), id.clone());
            tokio::spawn(async move {
                app.regenerate_key(&actor(), &id, None, &grace(3_600))
                    .await
                    .map(|c| c.secret.expose().to_owned())
            })
        })
        .collect();
    let mut secrets = vec![original];
    for r in racers {
        secrets.push(r.await.unwrap().unwrap());
    }
    // The app's engine saw every change itself: nothing it caches is out of date.
    let mut valid = 0;
    for s in &secrets {
        valid += usize::from(code(&app, s).await == Code::Valid);
    }
    assert_eq!(valid, 2, "the current secret and the one in grace, no more");
}

/// Counts the warnings it is given.
#[derive(Default)]
struct Counting(std::sync::Mutex<Vec<String>>);

#[async_trait::async_trait]
impl ExpiryNotifier for Counting {
    async fn expiring(
        &self,
        key: &keyward_core::key::ApiKey,
        _: chrono::DateTime<Utc>,
    ) -> Result<(), String> {
        self.0.lock().unwrap().push(key.id.clone());
        Ok(())
    }
}

async fn the_sweep_tidies_up_once_and_warns_once(store: Arc<dyn Store>) {
    let (app, pepper) = app_and_pepper(store.clone());
    let window = chrono::Duration::days(7);
    // A grace that ends in a second, a key that expires in a second, one that expires in a day.
    let (graced, old) = key(&app, json!({"name": "graced"})).await;
    app.regenerate_key(&actor(), &graced, None, &grace(1))
        .await
        .unwrap();
    let soon = Utc::now() + chrono::Duration::milliseconds(1_000);
    let (expiring, _) = key(&app, json!({"name": "expiring", "expires_at": soon})).await;
    let tomorrow = Utc::now() + chrono::Duration::days(1);
    let (warned, _) = key(&app, json!({"name": "warned", "expires_at": tomorrow})).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;

    let notes = Counting::default();
    // Two sweeps at once (two rotator invocations): every change made once, one warning.
    let (a, b) = tokio::join!(app.sweep(window, &notes), app.sweep(window, &notes));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.graces_ended + b.graces_ended, 1, "{a:?} {b:?}");
    assert_eq!(a.expired + b.expired, 1, "{a:?} {b:?}");
    assert_eq!(a.warned + b.warned, 1, "{a:?} {b:?}");
    assert_eq!(*notes.0.lock().unwrap(), std::slice::from_ref(&warned));

    let found = store
        .find_key_by_hash(&pepper.hash(&keyward_core::token::Token::parse(&old).unwrap()))
        .await
        .unwrap();
    assert!(found.is_none(), "the old secret's hash is gone");
    let record = store.get_key("default", &graced).await.unwrap().unwrap();
    assert_eq!(record.previous_secret, None);
    let record = store.get_key("default", &expiring).await.unwrap().unwrap();
    assert_eq!(record.status, keyward_core::key::KeyStatus::Expired);
    let record = store.get_key("default", &warned).await.unwrap().unwrap();
    assert_eq!(
        record.expiry_warned_for.map(|t| t.timestamp_millis()),
        Some(tomorrow.timestamp_millis())
    );

    // Run again: nothing to do, no second warning.
    let again = app.sweep(window, &notes).await.unwrap();
    assert_eq!(
        (again.graces_ended, again.expired, again.warned),
        (0, 0, 0),
        "{again:?}"
    );
    assert_eq!(notes.0.lock().unwrap().len(), 1);

    // Every change is audited, with no secret in it.
    let audit = app.list_audit(&actor(), None, 100).await.unwrap();
    let actions: Vec<&str> = audit.items.iter().map(|e| e.action.as_str()).collect();
    for action in ["key.grace_ended", "key.expired", "key.expiry_warned"] {
        assert_eq!(
            actions.iter().filter(|a| **a == action).count(),
            1,
            "{action}: {actions:?}"
        );
    }
    assert!(
        !serde_json::to_string(&audit.items)
            .unwrap()
            .contains(&old[8..40])
    );
}

on_both_stores!(
    "kw-rotation";
    both_verify_within_the_grace_and_only_the_new_after,
    a_grace_never_outlives_the_key,
    revoked_and_expired_keys_cannot_be_regenerated,
    racing_regenerations_leave_one_current_and_at_most_one_in_grace,
    the_sweep_tidies_up_once_and_warns_once,
);
