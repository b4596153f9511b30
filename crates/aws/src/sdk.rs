//! The AWS SDK configuration, loaded once per process in `main` and shared by every client it
//! builds (DynamoDB today; Secrets Manager, SSM and EventBridge as they come), so credentials
//! are resolved once and every client retries the same way.
//!
//! Credentials and region come from the standard chain (environment, profiles, the Lambda
//! role). The HTTPS client is rustls with ring, built explicitly because the SDK's default
//! features are off. A `dynamodb://` location may name its own endpoint (DynamoDB Local) and
//! region; they apply to the DynamoDB client only.
//!
//! Every call is bounded: a connection must open within [`CONNECT_TIMEOUT`], an attempt answer
//! within [`ATTEMPT_TIMEOUT`], and the whole call, retries with their jittered backoff
//! included, within [`OPERATION_TIMEOUT`]; so a request that needs the store answers within
//! 5 s even when the store hangs (docs/operations.md).

use aws_config::BehaviorVersion;
use aws_config::SdkConfig;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use keyward_store::{DynamoLocation, DynamoStore};

/// Attempts per call, including the first: throttling and transient errors are retried with
/// the SDK's standard (exponential, jittered) strategy.
pub const MAX_ATTEMPTS: u32 = 3;
/// The longest a new connection may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
/// The longest one attempt may take (DynamoDB answers a single-item read in milliseconds).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1500);
/// The longest a whole call may take, retries included.
pub const OPERATION_TIMEOUT: Duration = Duration::from_millis(4000);

/// The process's AWS configuration. `region`, when the process knows it (a `dynamodb://`
/// location's `region=`), spares the chain's lookup; a location with a local endpoint
/// (DynamoDB Local) names one too, so a laptop never asks the instance metadata service.
pub async fn load(location: &DynamoLocation) -> SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let region = match (&location.region, &location.endpoint) {
        (Some(region), _) => Some(region.clone()),
        (None, Some(_)) if std::env::var_os("AWS_REGION").is_none() => Some("us-east-1".into()),
        _ => None,
    };
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = region {
        loader = loader.region(Region::new(region));
    }
    loader
        .http_client(http)
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        .load()
        .await
}

/// The DynamoDB store at `location`, on the process's configuration.
pub fn dynamodb(sdk: &SdkConfig, location: &DynamoLocation) -> DynamoStore {
    let mut config = aws_sdk_dynamodb::config::Builder::from(sdk);
    if let Some(region) = &location.region {
        config = config.region(Region::new(region.clone()));
    }
    if let Some(endpoint) = &location.endpoint {
        config = config.endpoint_url(endpoint);
        // A local endpoint (DynamoDB Local) accepts any credentials and region; supply
        // harmless ones when none are configured, so local use needs no AWS set-up.
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            config = config.credentials_provider(Credentials::new(
                "local",
                "local",
                None,
                None,
                "keyward-local",
            ));
        }
    }
    DynamoStore::new(
        aws_sdk_dynamodb::Client::from_conf(config.build()),
        &location.table,
    )
}

/// An EventBridge client on the process's configuration (its endpoint, if any, from the SDK's
/// own `AWS_ENDPOINT_URL_EVENTBRIDGE` / `AWS_ENDPOINT_URL`).
#[cfg(feature = "eventbridge")]
pub fn eventbridge(sdk: &SdkConfig) -> aws_sdk_eventbridge::Client {
    aws_sdk_eventbridge::Client::new(sdk)
}

/// A Secrets Manager client on the process's configuration.
#[cfg(feature = "secretsmanager")]
pub fn secrets_manager(sdk: &SdkConfig) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(sdk)
}
