//! The first admin key of a deployed stack: `keyward store bootstrap` reads the deployment's
//! pepper from Secrets Manager (moto) as the functions do, prints the root key once on standard
//! output and nothing on a second run; the key verifies on a server with that pepper. Without
//! a readable pepper it refuses and makes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics

use std::process::{Command, Output, Stdio};

use keyward_core::token::{Prefix, Token};
use keyward_e2e::{Backend, Server, keyward_bin, moto_call};
use serde_json::json;

fn bootstrap(location: &str, moto: &str, secret: &str) -> Output {
    Command::new(keyward_bin())
        .args([
            "store",
            "bootstrap",
            "--store",
            location,
            "--pepper-secret",
            secret,
        ])
        .env("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto)
        .env("AWS_REGION", "us-east-1")
        // DynamoDB Local keeps tables per access key: the one `store init` used (keyward's
        // local default); moto takes any.
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env_remove("KEYWARD_PEPPER")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn the_first_admin_key_is_printed_once_with_the_deployments_pepper() {
    let Ok(moto) = std::env::var("KEYWARD_TEST_MOTO_ENDPOINT") else {
        eprintln!("skipped: KEYWARD_TEST_MOTO_ENDPOINT is not set (./scripts/test starts moto)");
        return;
    };
    let Backend::DynamoDb { location, .. } = Backend::dynamodb() else {
        unreachable!()
    };
    let hex = "5eed".repeat(16);
    let secret = format!("keyward/e2e-pepper-{}", std::process::id());
    moto_call(
        &moto,
        "secretsmanager",
        "secretsmanager.CreateSecret",
        &json!({"Name": secret, "SecretString": hex}),
    );

    // A pepper that cannot be read: refused, nothing made.
    let out = bootstrap(&location, &moto, "keyward/no-such-secret");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("keyward/no-such-secret"), "{err}");
    assert!(out.stdout.is_empty());

    let out = bootstrap(&location, &moto, &secret);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    Token::parse_for(&root, &Prefix::live()).expect("one key, alone on stdout");
    assert!(String::from_utf8_lossy(&out.stderr).contains("shown once"));

    let again = bootstrap(&location, &moto, &secret);
    assert!(again.status.success());
    assert!(again.stdout.is_empty(), "a second run prints no key");
    assert!(String::from_utf8_lossy(&again.stderr).contains("bootstrapped already"));

    // The key works on a server with the deployment's pepper.
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start_with_env(
        &tmp.path().join("data"),
        &tmp.path().join("serve.log"),
        &["--store", location.as_str()],
        &[("KEYWARD_PEPPER", hex.as_str())],
    );
    assert!(
        server.root_key().is_none(),
        "the account exists: serve makes no key"
    );
    let listing = server.client().with_key(&root).get("/v1/keys");
    assert_eq!(listing.status, 200);
    assert_eq!(listing.json()["items"][0]["name"], "root");
}
