//! The AWS SDK configuration, loaded once per process in `main` and shared by every client it
//! builds (DynamoDB; EventBridge, Secrets Manager and SSM as a process needs them), so
//! credentials are resolved once and every client retries the same way.
//!
//! Two loaders, one shape:
//!
//! - [`load`] (feature `credentials-chain`, on by default; the `keyward` command) runs the SDK's
//!   standard chain: environment, shared config and credentials files, SSO-less profiles, web
//!   identity through STS, container and instance metadata.
//! - [`load_for_lambda`] (the functions) reads what Lambda puts in a function's environment:
//!   `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, and the
//!   SDK's endpoint settings (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`,
//!   `AWS_USE_FIPS_ENDPOINT`, `AWS_USE_DUALSTACK_ENDPOINT`). In Lambda the standard chain ends
//!   there too; its other providers (an STS client, profile and metadata parsers) were some
//!   550 KiB of the authorizer's machine code, loaded on every cold start and never used.
//!
//! The HTTPS client is rustls with ring, built explicitly because the SDK's default features are
//! off. A `dynamodb://` location may name its own endpoint (DynamoDB Local) and region; they
//! apply to the DynamoDB client only.
//!
//! Every call is bounded: a connection must open within [`CONNECT_TIMEOUT`], an attempt answer
//! within [`ATTEMPT_TIMEOUT`], and the whole call, retries with their jittered backoff
//! included, within [`OPERATION_TIMEOUT`]; so a request that needs the store answers within
//! 5 s even when the store hangs (docs/operations.md).

use std::time::Duration;

use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_async::rt::sleep::default_async_sleep;
use aws_smithy_async::time::SharedTimeSource;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use aws_types::SdkConfig;
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};
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

/// The process's AWS configuration, from the SDK's standard chain. `region`, when the process
/// knows it (a `dynamodb://` location's `region=`), spares the chain's lookup; a location with a
/// local endpoint (DynamoDB Local) names one too, so a laptop never asks the instance metadata
/// service.
#[cfg(feature = "credentials-chain")]
pub async fn load(location: &DynamoLocation) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = known_region(location) {
        loader = loader.region(Region::new(region));
    }
    loader
        .http_client(https_client())
        .retry_config(retry_config())
        .timeout_config(timeout_config())
        .load()
        .await
}

/// A Lambda function's AWS configuration: region and credentials from the environment Lambda
/// sets, endpoints from the SDK's own environment settings, and the same HTTPS client, retries
/// and timeouts as [`load`]. Missing credentials are reported by the first call that needs them,
/// as the standard chain does (a local endpoint supplies its own: see [`dynamodb`]).
pub fn load_for_lambda(location: &DynamoLocation) -> SdkConfig {
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(https_client())
        .retry_config(retry_config())
        .timeout_config(timeout_config())
        .time_source(SharedTimeSource::default())
        .credentials_provider(SharedCredentialsProvider::new(LambdaCredentials))
        .service_config(EnvEndpoints);
    if let Some(sleep) = default_async_sleep() {
        builder = builder.sleep_impl(sleep);
    }
    let region = known_region(location)
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"));
    if let Some(region) = region {
        builder = builder.region(Region::new(region));
    }
    if let Some(fips) = env_flag("AWS_USE_FIPS_ENDPOINT") {
        builder = builder.use_fips(fips);
    }
    if let Some(dual_stack) = env_flag("AWS_USE_DUALSTACK_ENDPOINT") {
        builder = builder.use_dual_stack(dual_stack);
    }
    builder.build()
}

/// The region the location names, or `us-east-1` for a local endpoint when the environment
/// names none (DynamoDB Local takes any).
fn known_region(location: &DynamoLocation) -> Option<String> {
    match (&location.region, &location.endpoint) {
        (Some(region), _) => Some(region.clone()),
        (None, Some(_)) if std::env::var_os("AWS_REGION").is_none() => Some("us-east-1".into()),
        _ => None,
    }
}

fn https_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

fn retry_config() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS)
}

fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// A set, non-blank environment variable.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A boolean SDK setting (`true` / `false`, any case); anything else is ignored, with a warning.
fn env_flag(name: &str) -> Option<bool> {
    let value = env(name)?;
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => {
            tracing::warn!("{name} is neither true nor false; ignored");
            None
        }
    }
}

/// The credentials Lambda gives a function's role, read at each resolution as the SDK's own
/// environment provider does (the SDK caches them between calls).
#[derive(Debug)]
struct LambdaCredentials;

impl ProvideCredentials for LambdaCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let credentials = match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            (Some(access_key_id), Some(secret_access_key)) => Ok(Credentials::new(
                access_key_id,
                secret_access_key,
                env("AWS_SESSION_TOKEN"),
                None,
                "Environment",
            )),
            _ => Err(CredentialsError::not_loaded(
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set (Lambda sets them from the function's role)",
            )),
        };
        future::ProvideCredentials::ready(credentials)
    }
}

/// The SDK's endpoint settings from the environment, as the standard chain reads them: a
/// service's own `AWS_ENDPOINT_URL_<SERVICE ID>` (upper case, `_` for spaces) before the global
/// `AWS_ENDPOINT_URL`, none of them when `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is true.
#[derive(Debug)]
struct EnvEndpoints;

impl LoadServiceConfig for EnvEndpoints {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        env_setting(key.env(), key.service_id(), env)
    }
}

/// The setting `name` for the service `service_id`, from `lookup`.
fn env_setting(
    name: &str,
    service_id: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    let ignored = lookup("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if name == "AWS_ENDPOINT_URL" && ignored {
        return None;
    }
    let service = service_id.to_uppercase().replace(' ', "_");
    lookup(&format!("{name}_{service}")).or_else(|| lookup(name))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn setting(service: &str, pairs: &[(&str, &str)]) -> Option<String> {
        env_setting("AWS_ENDPOINT_URL", service, |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn a_service_endpoint_comes_before_the_global_one_unless_endpoints_are_ignored() {
        let both = [
            ("AWS_ENDPOINT_URL", "http://global"),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://secrets"),
        ];
        assert_eq!(
            setting("Secrets Manager", &both).as_deref(),
            Some("http://secrets")
        );
        assert_eq!(setting("SSM", &both).as_deref(), Some("http://global"));
        assert_eq!(setting("DynamoDB", &[]), None);
        let ignored = [
            ("AWS_ENDPOINT_URL", "http://global"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "TRUE"),
        ];
        assert_eq!(setting("SSM", &ignored), None);
    }
}
