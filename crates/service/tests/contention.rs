//! Writers racing on one key, on SQLite and on DynamoDB Local: a write without `If-Match`
//! retries past the writers that got there first and never answers 412; a revoke is never lost
//! to concurrent edits.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics

use std::sync::Arc;

use keyward_core::decision::Code;
use keyward_core::edit::UpdateKeyRequest;
use keyward_core::hash::Pepper;
use keyward_core::key::{CreateKeyRequest, KeyStatus};
use keyward_core::permission::ScopeInput;
use keyward_service::app::Actor;
use keyward_service::issuance::CreateOutcome;
use keyward_service::verification::{Explain, Presented};
use keyward_service::{App, ServiceError, Settings};
use keyward_store::conformance::dynamodb_local;
use keyward_store::{SqliteStore, Store};

fn app(store: Arc<dyn Store>) -> App {
    App::new(store, Pepper::generate().unwrap(), Settings::default())
}

async fn key(app: &App) -> String {
    let request = CreateKeyRequest {
        name: Some("raced".into()),
        scopes: Some(vec![ScopeInput::from("read")]),
        ..CreateKeyRequest::default()
    };
    match app
        .create_key(&Actor::system("default"), request, None)
        .await
        .unwrap()
    {
        CreateOutcome::Created(c) => c.key.id,
        CreateOutcome::Replayed(_) => unreachable!(),
    }
}

async fn verifies(app: &App, secret: &str) -> bool {
    let presented = Presented {
        token: Some(secret.into()),
        ..Presented::default()
    };
    app.verifier()
        .decide(&presented, Explain::No)
        .await
        .unwrap()
        .code
        == Code::Valid
}

async fn ten_racing_regenerates_leave_one_live_secret(store: Arc<dyn Store>) {
    let app = app(store);
    let id = key(&app).await;
    let racers: Vec<_> = (0..10)
        .map(|_| {
            let (app, id) = (app.clone(), id.clone());
            tokio::spawn(async move {
                app.regenerate_key(&Actor::system("default"), &id, None, &Default::default())
                    .await
                    .map(|c| c.secret.expose().to_owned())
            })
        })
        .collect();
    let mut secrets = Vec::new();
    for racer in racers {
        match racer.await.unwrap() {
            Ok(secret) => secrets.push(secret),
            Err(ServiceError::PreconditionFailed) => panic!("a write without If-Match got 412"),
            Err(e) => panic!("a racing regenerate failed: {e}"),
        }
    }
    assert_eq!(secrets.len(), 10, "every racer got through");
    let mut live = 0;
    for secret in &secrets {
        live += usize::from(verifies(&app, secret).await);
    }
    assert_eq!(live, 1, "exactly one of the ten secrets is live");
}

async fn a_revoke_racing_edits_is_never_lost(store: Arc<dyn Store>) {
    let app = app(store);
    let id = key(&app).await;
    let editors: Vec<_> = (0..8)
        .map(|i| {
            let (app, id) = (app.clone(), id.clone());
            tokio::spawn(async move {
                let edit = UpdateKeyRequest {
                    description: Some(format!("edit {i}")),
                    ..UpdateKeyRequest::default()
                };
                app.update_key(&Actor::system("default"), &id, None, edit)
                    .await
                    .map(|_| ())
            })
        })
        .collect();
    let revoke = app.revoke_key(&Actor::system("default"), &id, None).await;
    assert!(revoke.is_ok(), "the revoke went through: {revoke:?}");
    for editor in editors {
        match editor.await.unwrap() {
            Ok(()) => {}
            // An edit that comes after the revoke meets a final key.
            Err(ServiceError::Conflict(_)) => {}
            Err(e) => panic!("an edit racing a revoke answered {e}"),
        }
    }
    let stored = app.get_key(&Actor::system("default"), &id).await.unwrap();
    assert_eq!(stored.status, KeyStatus::Revoked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_racing_regenerates_answer_no_412() {
    ten_racing_regenerates_leave_one_live_secret(Arc::new(SqliteStore::in_memory().unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_racing_regenerates_answer_no_412() {
    ten_racing_regenerates_leave_one_live_secret(Arc::new(dynamodb_local("kw-race").await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_a_revoke_racing_edits_wins() {
    a_revoke_racing_edits_is_never_lost(Arc::new(SqliteStore::in_memory().unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_a_revoke_racing_edits_wins() {
    a_revoke_racing_edits_is_never_lost(Arc::new(dynamodb_local("kw-race").await)).await;
}
