//! A full Secrets Manager rotation against moto's Secrets Manager (`./scripts/test` starts
//! moto; moto cannot invoke a Lambda without Docker, so the test calls the rotator with each
//! step's request, as Secrets Manager would): `AWSCURRENT` ends holding a key that verifies,
//! `AWSPREVIOUS` one that stops after the grace; every step rerun, and a rerun after a failed
//! step, converges to the same state; a key that did not opt in is never rotated.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use chrono::Duration;
use keyward_aws::rotator::Rotator;
use keyward_aws::secrets_manager::SecretsManager;
use keyward_core::decision::Code;
use keyward_core::hash::Pepper;
use keyward_core::key::CreateKeyRequest;
use keyward_service::app::Actor;
use keyward_service::issuance::CreateOutcome;
use keyward_service::rotation::LogOnly;
use keyward_service::secret_rotation::{SecretValue, SecretVault, VaultError, Version};
use keyward_service::verification::{Explain, Presented};
use keyward_service::{App, Settings};
use keyward_store::{AuditLog, SqliteStore};
use serde_json::{Value, json};

fn moto() -> Option<Client> {
    let Ok(endpoint) = std::env::var("KEYWARD_TEST_MOTO_ENDPOINT") else {
        eprintln!("skipped: KEYWARD_TEST_MOTO_ENDPOINT is not set (./scripts/test starts moto)");
        return None;
    };
    use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(http)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(endpoint)
        .build();
    Some(Client::from_conf(config))
}

/// Secrets Manager, failing `promote` once when told to (a finishSecret that dies midway).
struct Flaky {
    real: SecretsManager,
    fail_promote: AtomicBool,
}

#[async_trait]
impl SecretVault for Flaky {
    async fn value(
        &self,
        id: &str,
        version: Option<&str>,
        stage: Option<&str>,
    ) -> Result<Option<String>, VaultError> {
        self.real.value(id, version, stage).await
    }
    async fn put_pending(
        &self,
        id: &str,
        version: &str,
        value: &str,
        rotation_token: Option<&str>,
    ) -> Result<(), VaultError> {
        self.real
            .put_pending(id, version, value, rotation_token)
            .await
    }
    async fn versions(&self, id: &str) -> Result<Vec<Version>, VaultError> {
        self.real.versions(id).await
    }
    async fn promote(&self, id: &str, version: &str, from: &str) -> Result<(), VaultError> {
        if self.fail_promote.swap(false, Ordering::SeqCst) {
            return Err(VaultError::Failed(
                "simulated: the connection dropped".into(),
            ));
        }
        self.real.promote(id, version, from).await
    }
}

async fn verifies(app: &App, secret: &str) -> Code {
    let p = Presented {
        token: Some(secret.into()),
        ..Presented::default()
    };
    app.verifier().decide(&p, Explain::No).await.unwrap().code
}

async fn stage_value(client: &Client, secret_id: &str, stage: &str) -> SecretValue {
    let out = client
        .get_secret_value()
        .secret_id(secret_id)
        .version_stage(stage)
        .send()
        .await
        .unwrap();
    serde_json::from_str(out.secret_string().unwrap()).unwrap()
}

fn step(name: &str, secret_id: &str, token: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "Step": name, "SecretId": secret_id, "ClientRequestToken": token
    }))
    .unwrap()
}

#[tokio::test]
async fn a_full_rotation_converges_and_keeps_the_old_secret_for_the_grace() {
    let Some(client) = moto() else { return };
    let name = format!("keyward/ci-{}", keyward_core::id::new_id("s").unwrap());
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let app = App::new(
        store.clone(),
        Pepper::generate().unwrap(),
        Settings::default(),
    );
    let request: CreateKeyRequest = serde_json::from_value(json!({
        "name": "ci", "scopes": ["read"], "secrets_manager_secret_id": name
    }))
    .unwrap();
    let CreateOutcome::Created(created) = app
        .create_key(&Actor::system("default"), request, None)
        .await
        .unwrap()
    else {
        panic!("created")
    };
    let (key_id, original) = (created.key.id.clone(), created.secret.expose().to_owned());
    let arn = client
        .create_secret()
        .name(&name)
        .secret_string(json!({"key_id": key_id, "api_key": original}).to_string())
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();

    let vault = Arc::new(Flaky {
        real: SecretsManager::new(client.clone()),
        fail_promote: AtomicBool::new(true),
    });
    let rotator = Rotator::new(app.clone(), Arc::new(LogOnly), Duration::days(7))
        .with_secrets_manager(vault, Duration::seconds(2));
    let token = "3f1c6a3e-1111-4222-8333-444455556666";

    // createSecret, twice: one pending version, the same value. AWS sends a RotationToken too.
    let mut create: Value = serde_json::from_slice(&step("createSecret", &arn, token)).unwrap();
    create["RotationToken"] = json!("a0b1c2d3-rotation-token");
    assert_eq!(
        rotator
            .handle(&serde_json::to_vec(&create).unwrap())
            .await
            .unwrap(),
        Value::Null
    );
    let pending = stage_value(&client, &arn, "AWSPENDING").await;
    rotator
        .handle(&step("createSecret", &arn, token))
        .await
        .unwrap();
    assert_eq!(
        stage_value(&client, &arn, "AWSPENDING").await,
        pending,
        "a rerun keeps it"
    );
    assert_eq!(pending.key_id, key_id);
    assert_ne!(pending.api_key, original);
    assert_eq!(
        verifies(&app, &pending.api_key).await,
        Code::NotFound,
        "not installed yet"
    );

    // setSecret, twice: installed once; the secret AWSCURRENT holds keeps verifying.
    rotator
        .handle(&step("setSecret", &arn, token))
        .await
        .unwrap();
    rotator
        .handle(&step("setSecret", &arn, token))
        .await
        .unwrap();
    assert_eq!(verifies(&app, &pending.api_key).await, Code::Valid);
    assert_eq!(
        verifies(&app, &original).await,
        Code::Valid,
        "AWSCURRENT's, in its grace"
    );

    // testSecret passes; finishSecret fails once midway, and its rerun converges.
    rotator
        .handle(&step("testSecret", &arn, token))
        .await
        .unwrap();
    let err = rotator
        .handle(&step("finishSecret", &arn, token))
        .await
        .unwrap_err();
    assert!(
        err.error_message.contains("simulated"),
        "{}",
        err.error_message
    );
    rotator
        .handle(&step("finishSecret", &arn, token))
        .await
        .unwrap();
    rotator
        .handle(&step("finishSecret", &arn, token))
        .await
        .unwrap();
    // Any step rerun after the rotation changes nothing.
    for s in ["createSecret", "setSecret", "testSecret"] {
        rotator.handle(&step(s, &arn, token)).await.unwrap();
    }

    let current = stage_value(&client, &arn, "AWSCURRENT").await;
    let previous = stage_value(&client, &arn, "AWSPREVIOUS").await;
    assert_eq!(current, pending);
    assert_eq!(previous.api_key, original);
    assert_eq!(verifies(&app, &current.api_key).await, Code::Valid);
    assert_eq!(
        verifies(&app, &previous.api_key).await,
        Code::Valid,
        "in its grace"
    );
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    assert_eq!(
        verifies(&app, &previous.api_key).await,
        Code::NotFound,
        "after the grace"
    );
    assert_eq!(verifies(&app, &current.api_key).await, Code::Valid);

    // Regenerated by hand since: AWSCURRENT no longer holds the key's current secret, and a
    // new rotation refuses to install over it (it would end the secret readers still use).
    app.regenerate_key(
        &Actor::system("default"),
        &key_id,
        None,
        &keyward_core::lifecycle::RegenerateRequest {
            grace_period_seconds: Some(3600),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let again = "5f1c6a3e-1111-4222-8333-444455556666";
    rotator
        .handle(&step("createSecret", &arn, again))
        .await
        .unwrap();
    let err = rotator
        .handle(&step("setSecret", &arn, again))
        .await
        .unwrap_err();
    assert!(
        err.error_message.contains("no longer holds"),
        "{}",
        err.error_message
    );
    assert_eq!(
        verifies(&app, &current.api_key).await,
        Code::Valid,
        "not ended"
    );

    // Every step is audited; no entry holds a secret.
    let audit = store.list_audit("default", None, 100).await.unwrap();
    let text = serde_json::to_string(&audit.items).unwrap();
    assert!(
        audit
            .items
            .iter()
            .filter(|e| e.action == "key.rotation_step")
            .count()
            >= 8
    );
    assert_eq!(
        audit
            .items
            .iter()
            .filter(|e| e.action == "key.regenerated" && e.details["via"] == "secrets_manager")
            .count(),
        1,
        "installed once"
    );
    for secret in [&original, &current.api_key] {
        assert!(!text.contains(&secret[8..40]), "no secret in the audit log");
    }
}

#[tokio::test]
async fn a_key_that_did_not_opt_in_is_never_rotated() {
    let Some(client) = moto() else { return };
    let name = format!("keyward/other-{}", keyward_core::id::new_id("s").unwrap());
    let app = App::new(
        Arc::new(SqliteStore::in_memory().unwrap()),
        Pepper::generate().unwrap(),
        Settings::default(),
    );
    let request: CreateKeyRequest =
        serde_json::from_value(json!({"name": "plain", "scopes": ["read"]})).unwrap();
    let CreateOutcome::Created(created) = app
        .create_key(&Actor::system("default"), request, None)
        .await
        .unwrap()
    else {
        panic!("created")
    };
    client
        .create_secret()
        .name(&name)
        .secret_string(
            json!({"key_id": created.key.id, "api_key": created.secret.expose()}).to_string(),
        )
        .send()
        .await
        .unwrap();
    let rotator = Rotator::new(app.clone(), Arc::new(LogOnly), Duration::days(7))
        .with_secrets_manager(
            Arc::new(SecretsManager::new(client.clone())),
            Duration::hours(1),
        );
    let err = rotator
        .handle(&step(
            "createSecret",
            &name,
            "4f1c6a3e-1111-4222-8333-444455556666",
        ))
        .await
        .unwrap_err();
    assert!(
        err.error_message.contains("has not opted in"),
        "{}",
        err.error_message
    );
    assert_eq!(
        verifies(&app, created.secret.expose()).await,
        Code::Valid,
        "the key is untouched"
    );
    // The real fixture is read as a rotation request: its secret does not exist here.
    let fixture = std::fs::read(format!(
        "{}/../../tests/fixtures/events/example-secretsmanager-secret-rotation-event.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let err = rotator.handle(&fixture).await.unwrap_err();
    assert_eq!(err.error_type, "RotationFailed", "{err:?}");
    assert!(
        err.error_message.contains("no such secret"),
        "{}",
        err.error_message
    );
    for bad in [
        json!({"Step": "dropSecret", "SecretId": name, "ClientRequestToken": "t"}),
        json!({"Step": "setSecret", "SecretId": name, "ClientRequestToken": "no-such-version"}),
    ] {
        let err = rotator
            .handle(&serde_json::to_vec(&bad).unwrap())
            .await
            .unwrap_err();
        assert!(
            ["UnsupportedEvent", "RotationFailed"].contains(&err.error_type.as_str()),
            "{bad}: {err:?}"
        );
    }
}
