//! The AWS sinks against moto server, a real emulation of Secrets Manager and SSM
//! (`./scripts/test` starts it and sets `KEYWARD_TEST_MOTO_ENDPOINT`; without it these tests
//! skip, saying so). What is delivered is read back with the SDK and compared.
//!
//! By hand: `moto_server -p 8766 &` then
//! `KEYWARD_TEST_MOTO_ENDPOINT=http://127.0.0.1:8766 cargo test -p keyward-sinks --test aws`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics

use std::time::{SystemTime, UNIX_EPOCH};

use keyward_core::token::{Prefix, Token};
use keyward_sinks::{
    AwsSettings, Delivery, Fingerprint, Receipt, SinkError, Sinks, StaticCredentials, Target,
};

fn moto() -> Option<String> {
    let endpoint = std::env::var("KEYWARD_TEST_MOTO_ENDPOINT").ok();
    if endpoint.is_none() {
        eprintln!(
            "skipped: KEYWARD_TEST_MOTO_ENDPOINT is not set (./scripts/test starts moto; by hand: \
             moto_server -p 8766 and KEYWARD_TEST_MOTO_ENDPOINT=http://127.0.0.1:8766)"
        );
    }
    endpoint
}

/// Sinks pointed at `endpoint` with dummy credentials, as a test passes them (no environment).
fn sinks(endpoint: &str) -> Sinks {
    Sinks::new(Box::new(std::io::sink())).with_aws(AwsSettings {
        endpoint_url: Some(endpoint.to_owned()),
        region: Some("us-east-1".to_owned()),
        credentials: Some(StaticCredentials::new("testing", "testing")),
    })
}

/// A name no other run of these tests has used against the same moto.
fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

fn token() -> Token {
    Token::generate(&Prefix::live()).unwrap()
}

fn delivery<'a>(
    key_id: &'a str,
    secret: &'a Token,
    replaces: Option<Fingerprint<'a>>,
) -> Delivery<'a> {
    Delivery {
        key_id,
        key_name: "ci-nightly",
        secret: secret.expose(),
        replaces,
    }
}

fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    use aws_sdk_secretsmanager::config::{
        BehaviorVersion, Credentials, Region, SharedCredentialsProvider,
    };
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(http)
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "testing", "testing", None, None, "test",
        )))
        .endpoint_url(endpoint)
        .build()
}

fn version_of(receipt: &Receipt) -> String {
    let (_, rest) = receipt.description.split_once("(version ").unwrap();
    rest.trim_end_matches(')').to_owned()
}

#[test]
fn secrets_manager_creates_the_secret_then_adds_versions() {
    let Some(endpoint) = moto() else { return };
    let sinks = sinks(&endpoint);
    let secret_id = unique("keyward/test/ci");
    let target = Target::SecretsManager {
        secret_id: secret_id.clone(),
    };

    let first = token();
    let created = sinks
        .deliver(&target, &delivery("key_sm1", &first, None))
        .unwrap();
    assert!(
        created.description.starts_with(&format!(
            "stored in new Secrets Manager secret {secret_id} (version "
        )),
        "{created}"
    );

    let second = token();
    let old = (first.start(), first.last4());
    let replaced = Fingerprint {
        start: &old.0,
        last4: &old.1,
    };
    let updated = sinks
        .deliver(&target, &delivery("key_sm1", &second, Some(replaced)))
        .unwrap();
    assert!(
        updated.description.starts_with(&format!(
            "stored in Secrets Manager secret {secret_id} (version "
        )),
        "{updated}"
    );
    assert_ne!(version_of(&created), version_of(&updated));
    for receipt in [&created, &updated] {
        for secret in [&first, &second] {
            assert!(!receipt.description.contains(secret.expose()));
        }
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = aws_sdk_secretsmanager::Client::new(&sdk_config(&endpoint));
        let current = client
            .get_secret_value()
            .secret_id(&secret_id)
            .send()
            .await
            .unwrap();
        assert_eq!(current.secret_string(), Some(second.expose()));
        assert_eq!(current.version_id(), Some(version_of(&updated).as_str()));
        let previous = client
            .get_secret_value()
            .secret_id(&secret_id)
            .version_stage("AWSPREVIOUS")
            .send()
            .await
            .unwrap();
        assert_eq!(previous.secret_string(), Some(first.expose()));

        let described = client
            .describe_secret()
            .secret_id(&secret_id)
            .send()
            .await
            .unwrap();
        assert_eq!(
            described.description(),
            Some("keyward API key ci-nightly (key_sm1)")
        );
        let tags: Vec<(&str, &str)> = described
            .tags()
            .iter()
            .map(|t| (t.key().unwrap_or(""), t.value().unwrap_or("")))
            .collect();
        assert!(tags.contains(&("keyward:key-id", "key_sm1")), "{tags:?}");
        assert!(
            tags.contains(&("keyward:managed-by", "keyward")),
            "{tags:?}"
        );
    });
}

#[test]
fn secrets_manager_refuses_to_create_a_secret_named_by_an_arn() {
    let Some(endpoint) = moto() else { return };
    let secret = token();
    let arn = format!(
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:{}",
        unique("missing")
    );
    let target = Target::SecretsManager {
        secret_id: arn.clone(),
    };
    let err = sinks(&endpoint)
        .deliver(&target, &delivery("key_sm2", &secret, None))
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("Secrets Manager PutSecretValue on {arn} failed")),
        "{text}"
    );
    assert!(text.contains("create the secret first"), "{text}");
    assert!(!text.contains(secret.expose()));
}

/// Called from inside a tokio runtime (as a gRPC provider would), and dropped there: the sinks
/// run the call on a thread of their own and shut their runtime down without blocking.
#[tokio::test(flavor = "current_thread")]
async fn ssm_stores_a_secure_string_even_from_inside_a_runtime() {
    let Some(endpoint) = moto() else { return };
    let sinks = sinks(&endpoint);
    let parameter = unique("/keyward/test/ci");
    let target = Target::Ssm {
        parameter: parameter.clone(),
    };

    let first = token();
    let receipt = sinks
        .deliver(&target, &delivery("key_ssm1", &first, None))
        .unwrap();
    assert_eq!(
        receipt.description,
        format!("stored in SSM parameter {parameter} (SecureString, version 1)")
    );
    let second = token();
    let receipt = sinks
        .deliver(&target, &delivery("key_ssm1", &second, None))
        .unwrap();
    assert_eq!(
        receipt.description,
        format!("stored in SSM parameter {parameter} (SecureString, version 2)")
    );
    drop(sinks);

    let client = aws_sdk_ssm::Client::new(&sdk_config(&endpoint));
    let read = client
        .get_parameter()
        .name(&parameter)
        .with_decryption(true)
        .send()
        .await
        .unwrap();
    let stored = read.parameter().unwrap();
    assert_eq!(stored.value(), Some(second.expose()));
    assert_eq!(
        stored.r#type(),
        Some(&aws_sdk_ssm::types::ParameterType::SecureString)
    );
    assert_eq!(stored.version(), 2);

    let described = client
        .describe_parameters()
        .parameter_filters(
            aws_sdk_ssm::types::ParameterStringFilter::builder()
                .key("Name")
                .values(&parameter)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        described.parameters()[0].description(),
        Some("keyward API key ci-nightly (key_ssm1)")
    );
    let tags = client
        .list_tags_for_resource()
        .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
        .resource_id(&parameter)
        .send()
        .await
        .unwrap();
    let tags: Vec<(&str, &str)> = tags
        .tag_list()
        .iter()
        .map(|t| (t.key(), t.value()))
        .collect();
    assert!(tags.contains(&("keyward:key-id", "key_ssm1")), "{tags:?}");
    assert!(
        tags.contains(&("keyward:managed-by", "keyward")),
        "{tags:?}"
    );
}

#[test]
fn an_aws_refusal_names_the_target_and_what_to_do_without_the_secret() {
    let Some(endpoint) = moto() else { return };
    let secret = token();
    // Parameter names under /aws are reserved: SSM answers AccessDenied.
    let parameter = unique("/aws/keyward");
    let target = Target::Ssm {
        parameter: parameter.clone(),
    };
    let err = sinks(&endpoint)
        .deliver(&target, &delivery("key_ssm2", &secret, None))
        .unwrap_err();
    let SinkError::Aws(failure) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(failure.code.as_deref(), Some("AccessDeniedException"));
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "SSM PutParameter on {parameter} failed: AccessDeniedException"
        )),
        "{text}"
    );
    assert!(
        text.ends_with(&format!(
            "check that the AWS credentials in use are valid and allow ssm:PutParameter (and \
             kms:Encrypt with the parameter's key) on {parameter}"
        )),
        "{text}"
    );
    assert!(!text.contains(secret.expose()));
    assert!(!format!("{err:?}").contains(secret.expose()));
}

/// Needs no moto: nothing listens on the endpoint, and the failure is bounded and clear.
#[test]
fn an_unreachable_endpoint_fails_clearly() {
    let secret = token();
    let sinks = sinks("http://127.0.0.1:9");
    let target = Target::SecretsManager {
        secret_id: "keyward/unreachable".to_owned(),
    };
    let err = sinks
        .deliver(&target, &delivery("key_x", &secret, None))
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("Secrets Manager PutSecretValue on keyward/unreachable failed: "),
        "{text}"
    );
    assert!(
        text.ends_with("check the AWS credentials, region, endpoint and network, then run again"),
        "{text}"
    );
    assert!(!text.contains(secret.expose()));
}
