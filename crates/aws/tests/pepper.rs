//! The deployment's pepper read at start-up from moto's Secrets Manager and SSM Parameter Store
//! (`./scripts/test` starts moto): the secret's and the parameter's hex become the pepper; a
//! missing one, or one that does not hold a pepper, is refused with where it is kept and never
//! with its value, which no log line holds either, even at TRACE; a pepper given as a value
//! needs no AWS call at all.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics

use std::io::Write;
use std::sync::{Arc, Mutex};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_secretsmanager::config::{Credentials, Region, SharedCredentialsProvider};
use keyward_aws::pepper::{self, PepperError};
use keyward_core::hash::Pepper;
use keyward_core::token::{Prefix, Token};
use keyward_service::config::{Config, PEPPER, PEPPER_PARAMETER, PEPPER_SECRET, Process, STORE};

fn moto() -> Option<SdkConfig> {
    let Ok(endpoint) = std::env::var("KEYWARD_TEST_MOTO_ENDPOINT") else {
        eprintln!("skipped: KEYWARD_TEST_MOTO_ENDPOINT is not set (./scripts/test starts moto)");
        return None;
    };
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    Some(
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(http)
            .region(Region::new("us-east-1"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "test", "test", None, None, "test",
            )))
            .endpoint_url(endpoint)
            .build(),
    )
}

fn config(pairs: &[(&str, &str)]) -> Config {
    Config::from_lookup(Process::Function, |name| {
        if name == STORE {
            return Some("dynamodb://keys".into());
        }
        pairs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| (*v).to_owned())
    })
    .unwrap()
}

/// The pepper as `pepper::load` reads it, and everything logged meanwhile at TRACE (the SDK's
/// runtime included).
async fn load_logged(sdk: &SdkConfig, config: &Config) -> (Result<Pepper, PepperError>, String) {
    #[derive(Clone)]
    struct Log(Arc<Mutex<Vec<u8>>>);
    impl Write for Log {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let log = Log(Arc::default());
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    let result = pepper::load(sdk, config).await;
    drop(guard);
    let text = String::from_utf8_lossy(&log.0.lock().unwrap()).into_owned();
    (result, text)
}

/// Whether two peppers are the same: they hash a token alike.
fn same(a: &Pepper, b: &Pepper) -> bool {
    let token = Token::generate(&Prefix::live()).unwrap();
    a.hash(&token) == b.hash(&token)
}

#[tokio::test]
async fn the_pepper_comes_from_secrets_manager_or_ssm_never_into_an_error() {
    let Some(sdk) = moto() else { return };
    let run = std::process::id();
    let hex = "0123456789abcdef".repeat(4);
    let expected = Pepper::from_hex(&hex).unwrap();

    let secret = format!("keyward/pepper-{run}");
    aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name(&secret)
        .secret_string(format!("{hex}\n"))
        .send()
        .await
        .unwrap();
    let (loaded, log) = load_logged(&sdk, &config(&[(PEPPER_SECRET, &secret)])).await;
    assert!(same(&loaded.unwrap(), &expected));
    assert!(
        log.contains("GetSecretValue"),
        "the call was traced:\n{log}"
    );
    assert!(!log.contains(&hex), "the secret was logged:\n{log}");

    let parameter = format!("/keyward/pepper-{run}");
    aws_sdk_ssm::Client::new(&sdk)
        .put_parameter()
        .name(&parameter)
        .value(&hex)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let (loaded, log) = load_logged(&sdk, &config(&[(PEPPER_PARAMETER, &parameter)])).await;
    assert!(same(&loaded.unwrap(), &expected));
    assert!(log.contains("GetParameter"), "the call was traced:\n{log}");
    assert!(!log.contains(&hex), "the secret was logged:\n{log}");

    // Missing: named by where it should be.
    let e = pepper::load(&sdk, &config(&[(PEPPER_SECRET, "keyward/nowhere")]))
        .await
        .unwrap_err();
    assert!(matches!(e, PepperError::Unreadable { .. }), "{e}");
    assert!(e.to_string().contains("keyward/nowhere"), "{e}");
    assert!(e.to_string().contains("ResourceNotFoundException"), "{e}");
    let e = pepper::load(&sdk, &config(&[(PEPPER_PARAMETER, "/keyward/nowhere")]))
        .await
        .unwrap_err();
    assert!(matches!(e, PepperError::Unreadable { .. }), "{e}");
    assert!(e.to_string().contains("/keyward/nowhere"), "{e}");
    assert!(e.to_string().contains("ParameterNotFound"), "{e}");

    // Not a pepper: refused without echoing what it holds.
    let bad = format!("keyward/not-a-pepper-{run}");
    aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name(&bad)
        .secret_string("hunter2-not-hex")
        .send()
        .await
        .unwrap();
    let (e, log) = load_logged(&sdk, &config(&[(PEPPER_SECRET, &bad)])).await;
    let e = e.unwrap_err();
    assert!(matches!(e, PepperError::Invalid { .. }), "{e}");
    assert!(!e.to_string().contains("hunter2"), "{e}");
    assert!(!log.contains("hunter2"), "the secret was logged:\n{log}");

    // Nothing named at all.
    let e = pepper::load(&sdk, &config(&[])).await.unwrap_err();
    assert!(e.to_string().contains(PEPPER_SECRET) && e.to_string().contains(PEPPER_PARAMETER));
}

#[tokio::test]
async fn a_pepper_given_as_a_value_needs_no_aws() {
    // An SDK configuration pointing nowhere: any call would fail.
    let sdk = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url("http://127.0.0.1:9")
        .build();
    let hex = "ab".repeat(32);
    let loaded = pepper::load(&sdk, &config(&[(PEPPER, &hex)]))
        .await
        .unwrap();
    assert!(same(&loaded, &Pepper::from_hex(&hex).unwrap()));
}
