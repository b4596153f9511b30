//! What the server keeps for keys as code, on SQLite and on DynamoDB Local: a create or edit
//! that names its manager leaves the key in step (`applied_version` = `version`); an edit by
//! anyone else puts it out of step (drift) until the next apply; housekeeping keeps a key in
//! step; generations only rise; `PATCH` takes whole workspace and group lists; revoke,
//! regenerate and delete honour `If-Match`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics

mod common;

use std::sync::Arc;

use chrono::Duration;
use keyward_core::edit::UpdateKeyRequest;
use keyward_core::group::CreateGroupRequest;
use keyward_core::key::{ApiKey, CreateKeyRequest};
use keyward_core::lifecycle::RegenerateRequest;
use keyward_core::managed::Manager;
use keyward_service::app::Actor;
use keyward_service::issuance::CreateOutcome;
use keyward_service::rotation::LogOnly;
use keyward_service::{App, ServiceError, Settings};
use keyward_store::Store;
use serde_json::{Value, json};

fn actor() -> Actor {
    Actor::system("default")
}

async fn create(app: &App, body: Value) -> ApiKey {
    let request: CreateKeyRequest = serde_json::from_value(body).unwrap();
    match app.create_key(&actor(), request, None).await.unwrap() {
        CreateOutcome::Created(c) => c.key,
        CreateOutcome::Replayed(_) => unreachable!(),
    }
}

fn patch(body: Value) -> UpdateKeyRequest {
    serde_json::from_value(body).unwrap()
}

async fn managed_keys_stay_in_step_only_through_their_manager(store: Arc<dyn Store>) {
    let app = App::new(
        store,
        keyward_core::hash::Pepper::generate().unwrap(),
        Settings::default(),
    );
    let key = create(
        &app,
        json!({"name": "ci", "scopes": ["read"], "managed_by": "spec", "generation": 3}),
    )
    .await;
    assert_eq!(
        (
            key.managed_by,
            key.generation,
            key.applied_version,
            key.version
        ),
        (Some(Manager::Spec), 3, Some(1), 1)
    );
    let plain = create(&app, json!({"name": "plain", "scopes": ["read"]})).await;
    assert_eq!(
        (plain.managed_by, plain.generation, plain.applied_version),
        (None, 1, None)
    );

    // An edit through the API: the key drifts.
    let edited = app
        .update_key(
            &actor(),
            &key.id,
            None,
            patch(json!({"description": "by hand"})),
        )
        .await
        .unwrap()
        .key;
    assert_eq!((edited.version, edited.applied_version), (2, Some(1)));
    assert_eq!(
        app.get_key(&actor(), &key.id).await.unwrap(),
        edited,
        "as stored"
    );

    // The apply restores it and is in step again, even when nothing but the stamp changes.
    let restored = app
        .update_key(
            &actor(),
            &key.id,
            Some(2),
            patch(json!({"description": "", "managed_by": "spec"})),
        )
        .await
        .unwrap()
        .key;
    assert_eq!((restored.version, restored.applied_version), (3, Some(3)));
    app.update_key(&actor(), &key.id, None, patch(json!({"description": "x"})))
        .await
        .unwrap();
    app.update_key(&actor(), &key.id, None, patch(json!({"description": ""})))
        .await
        .unwrap();
    let stamped = app
        .update_key(
            &actor(),
            &key.id,
            Some(5),
            patch(json!({"managed_by": "spec"})),
        )
        .await
        .unwrap()
        .key;
    assert_eq!((stamped.version, stamped.applied_version), (6, Some(6)));
    let same = app
        .update_key(
            &actor(),
            &key.id,
            Some(6),
            patch(json!({"managed_by": "spec"})),
        )
        .await
        .unwrap()
        .key;
    assert_eq!(
        same.version, 6,
        "an apply with nothing to do writes nothing"
    );

    // Housekeeping (a grace ending) keeps an in-step key in step.
    let regenerated = app
        .regenerate_key(
            &actor(),
            &key.id,
            Some(6),
            &RegenerateRequest {
                grace_period_seconds: Some(1),
                generation: Some(5),
                managed_by: Some(Manager::Spec),
            },
        )
        .await
        .unwrap()
        .key;
    assert_eq!(
        (
            regenerated.generation,
            regenerated.version,
            regenerated.applied_version
        ),
        (5, 7, Some(7))
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let report = app.sweep(Duration::hours(1), &LogOnly).await.unwrap();
    assert_eq!(report.graces_ended, 1);
    let swept = app.get_key(&actor(), &key.id).await.unwrap();
    assert_eq!((swept.version, swept.applied_version), (8, Some(8)));

    // Generations only rise; a regeneration without one takes the next.
    for stale in [5, 4] {
        let e = app
            .regenerate_key(
                &actor(),
                &key.id,
                None,
                &RegenerateRequest {
                    generation: Some(stale),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(e, ServiceError::Invalid(_)), "{e:?}");
    }
    let next = app
        .regenerate_key(&actor(), &key.id, None, &RegenerateRequest::default())
        .await
        .unwrap()
        .key;
    assert_eq!(
        (next.generation, next.applied_version),
        (6, Some(8)),
        "by hand: drift"
    );

    // Releasing the key forgets the stamp.
    let released = app
        .update_key(&actor(), &key.id, None, patch(json!({"managed_by": null})))
        .await
        .unwrap()
        .key;
    assert_eq!(
        (released.managed_by, released.applied_version),
        (None, None)
    );
}

async fn whole_lists_and_if_match_guard_every_change(store: Arc<dyn Store>) {
    let app = App::new(
        store,
        keyward_core::hash::Pepper::generate().unwrap(),
        Settings::default(),
    );
    let group = app
        .create_group(
            &actor(),
            CreateGroupRequest {
                name: Some("platform".into()),
                description: None,
            },
        )
        .await
        .unwrap();
    let key = create(
        &app,
        json!({"name": "k", "scopes": ["read"], "workspaces": ["ws_1"]}),
    )
    .await;
    let edited = app
        .update_key(
            &actor(),
            &key.id,
            Some(1),
            patch(json!({"workspaces": ["ws_2", "ws_3"], "groups": [group.id]})),
        )
        .await
        .unwrap()
        .key;
    assert_eq!(edited.workspaces, ["ws_2", "ws_3"]);
    assert_eq!(edited.groups, std::slice::from_ref(&group.id));
    let stored = app.get_key(&actor(), &key.id).await.unwrap();
    assert_eq!(stored.workspaces, ["ws_2", "ws_3"]);
    let missing = app
        .update_key(
            &actor(),
            &key.id,
            None,
            patch(json!({"groups": ["grp_nope"]})),
        )
        .await
        .unwrap_err();
    assert!(
        format!("{missing:?}").contains("no sharing group"),
        "{missing:?}"
    );

    // A stale If-Match is refused by regenerate, revoke and delete, and changes nothing.
    let stale = Some(1);
    let e = app
        .regenerate_key(&actor(), &key.id, stale, &RegenerateRequest::default())
        .await
        .unwrap_err();
    assert!(matches!(e, ServiceError::PreconditionFailed), "{e:?}");
    let e = app.revoke_key(&actor(), &key.id, stale).await.unwrap_err();
    assert!(matches!(e, ServiceError::PreconditionFailed), "{e:?}");
    let e = app.delete_key(&actor(), &key.id, stale).await.unwrap_err();
    assert!(matches!(e, ServiceError::PreconditionFailed), "{e:?}");
    assert_eq!(app.get_key(&actor(), &key.id).await.unwrap(), stored);
    let revoked = app.revoke_key(&actor(), &key.id, Some(2)).await.unwrap();
    assert_eq!(revoked.version, 3);

    // A revoked key frees its name for a new one.
    let again = create(
        &app,
        json!({"name": "k", "scopes": ["read"], "managed_by": "spec"}),
    )
    .await;
    assert_ne!(again.id, key.id);
}

on_both_stores!(
    "kw-managed";
    managed_keys_stay_in_step_only_through_their_manager,
    whole_lists_and_if_match_guard_every_change,
);
