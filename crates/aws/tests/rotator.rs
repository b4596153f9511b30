//! The rotator's edge on the real EventBridge fixtures: a scheduled event sweeps (and a second
//! changes nothing); any other event is refused by name. With moto (`./scripts/test` starts
//! it), expiry warnings are sent to a real EventBridge API.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics

use std::sync::Arc;

use chrono::{Duration, Utc};
use keyward_aws::rotator::Rotator;
use keyward_core::hash::Pepper;
use keyward_core::key::CreateKeyRequest;
use keyward_core::lifecycle::RegenerateRequest;
use keyward_service::app::Actor;
use keyward_service::issuance::CreateOutcome;
use keyward_service::rotation::LogOnly;
use keyward_service::{App, Settings};
use keyward_store::SqliteStore;
use serde_json::{Value, json};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../tests/fixtures/events/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(path).unwrap()
}

async fn key(app: &App, body: Value) -> String {
    let mut body = body;
    body["scopes"] = json!(["read"]);
    let request: CreateKeyRequest = serde_json::from_value(body).unwrap();
    match app
        .create_key(&Actor::system("default"), request, None)
        .await
        .unwrap()
    {
        CreateOutcome::Created(c) => c.key.id,
        CreateOutcome::Replayed(_) => unreachable!(),
    }
}

fn app() -> App {
    App::new(
        Arc::new(SqliteStore::in_memory().unwrap()),
        Pepper::generate().unwrap(),
        Settings::default(),
    )
}

#[tokio::test]
async fn a_scheduled_event_sweeps_once() {
    let app = app();
    let id = key(&app, json!({"name": "graced"})).await;
    app.regenerate_key(
        &Actor::system("default"),
        &id,
        None,
        &RegenerateRequest {
            grace_period_seconds: Some(1),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let soon = Utc::now() + Duration::days(2);
    key(&app, json!({"name": "soon", "expires_at": soon})).await;
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;

    let rotator = Rotator::new(app, Arc::new(LogOnly), Duration::days(7));
    let event = fixture("example-eventbridge-schedule.json");
    let first = rotator.sweep(&event).await.unwrap();
    assert_eq!(
        (first.keys, first.graces_ended, first.warned),
        (2, 1, 1),
        "{first:?}"
    );
    let second = rotator.sweep(&event).await.unwrap();
    assert_eq!(
        (second.graces_ended, second.expired, second.warned),
        (0, 0, 0),
        "a second run changes nothing: {second:?}"
    );
}

#[tokio::test]
async fn anything_but_a_schedule_is_refused() {
    let rotator = Rotator::new(app(), Arc::new(LogOnly), Duration::days(7));
    for (payload, says) in [
        (
            fixture("example-eventbridge-event-obj.json"),
            "not 'Scheduled Event'",
        ),
        (
            fixture("example-secretsmanager-secret-rotation-event.json"),
            "has no Secrets Manager client",
        ),
        (b"{not json".to_vec(), "not an EventBridge scheduled event"),
        (b"[]".to_vec(), "not an EventBridge scheduled event"),
    ] {
        let err = rotator.handle(&payload).await.unwrap_err();
        assert_eq!(err.error_type, "UnsupportedEvent");
        assert!(err.error_message.contains(says), "{}", err.error_message);
    }
}

/// Expiry warnings through moto's EventBridge: delivered to a bus that exists, reported as
/// failed (and not retried) for one that does not.
#[tokio::test]
async fn warnings_go_to_eventbridge() {
    let Ok(endpoint) = std::env::var("KEYWARD_TEST_MOTO_ENDPOINT") else {
        eprintln!("skipped: KEYWARD_TEST_MOTO_ENDPOINT is not set (./scripts/test starts moto)");
        return;
    };
    use aws_sdk_eventbridge::config::{BehaviorVersion, Credentials, Region};
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let config = aws_sdk_eventbridge::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(http)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(&endpoint)
        .build();
    let client = aws_sdk_eventbridge::Client::from_conf(config);
    let bus = format!("keyward-{}", keyward_core::id::new_id("bus").unwrap());
    client.create_event_bus().name(&bus).send().await.unwrap();

    let delivered = warn_through(
        keyward_aws::events::EventBridgeNotifier::new(client.clone(), &bus),
        "expiring",
    )
    .await;
    assert_eq!(
        (delivered.warned, delivered.warnings_failed),
        (1, 0),
        "{delivered:?}"
    );
    let lost = warn_through(
        keyward_aws::events::EventBridgeNotifier::new(client, "no-such-bus"),
        "lost",
    )
    .await;
    assert_eq!(
        (lost.warned, lost.warnings_failed),
        (1, 1),
        "recorded, and reported as not delivered: {lost:?}"
    );
}

/// One sweep of a fresh app holding a key named `name` that expires tomorrow, warning through
/// `notifier`.
async fn warn_through(
    notifier: keyward_aws::events::EventBridgeNotifier,
    name: &str,
) -> keyward_service::rotation::SweepReport {
    let app = app();
    key(
        &app,
        json!({"name": name, "expires_at": Utc::now() + Duration::days(1)}),
    )
    .await;
    Rotator::new(app, Arc::new(notifier), Duration::days(7))
        .sweep(&fixture("example-eventbridge-schedule.json"))
        .await
        .unwrap()
}
