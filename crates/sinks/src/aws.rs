//! What the two AWS sinks share: [`AwsSettings`], and (with either AWS feature) one SDK
//! configuration, the clients built on it and the private runtime they run on.
//!
//! Credentials, region and endpoint come from the standard chain (environment, profile, role;
//! `AWS_ENDPOINT_URL` is honoured by aws-config itself), each overridable by [`AwsSettings`].
//! With no region anywhere the delivery fails clearly rather than guess one, unless an endpoint
//! URL is configured (a local emulator), where `us-east-1` is harmless; that case also skips
//! the instance metadata lookup, so a laptop never waits on it.
//!
//! The HTTPS client is rustls with ring, built explicitly because the SDK's default features
//! are off (CONVENTIONS.md), as `crates/aws/src/sdk.rs` builds it. Every call is bounded: a
//! connection opens within [`CONNECT_TIMEOUT`], an attempt answers within [`ATTEMPT_TIMEOUT`],
//! and the whole call, [`MAX_ATTEMPTS`] attempts with the SDK's jittered backoff included,
//! within [`OPERATION_TIMEOUT`]. The figures are looser than the server's: a delivery is one
//! call per key made while a person or a CI job waits, not a request on a hot path, and
//! Secrets Manager encrypts with KMS on each write. Retrying is safe: Secrets Manager writes
//! carry an idempotency token the SDK fills in, and an SSM overwrite stores the same value.

use std::fmt;
#[cfg(any(feature = "aws-secretsmanager", feature = "aws-ssm"))]
use std::time::Duration;

/// How the AWS sinks reach AWS, over the standard chain. `Default` takes everything from the
/// chain; tests against a local emulator set all three.
#[derive(Clone, Default)]
pub struct AwsSettings {
    /// An endpoint for every AWS call (e.g. `http://127.0.0.1:8766` for moto). Without it, the
    /// chain's (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_SSM`, ...) or AWS's own.
    pub endpoint_url: Option<String>,
    /// A region (e.g. `eu-west-1`). Without it, the chain's.
    pub region: Option<String>,
    /// Fixed credentials. Without them, the chain's.
    pub credentials: Option<StaticCredentials>,
}

impl fmt::Debug for AwsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsSettings")
            .field("endpoint_url", &self.endpoint_url)
            .field("region", &self.region)
            .field("credentials", &self.credentials)
            .finish()
    }
}

/// An access key pair, for [`AwsSettings::credentials`]. Its `Debug` shows only the key id.
#[derive(Clone)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl StaticCredentials {
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        StaticCredentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
        }
    }
}

impl fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// The description an AWS sink gives what it stores: which key's secret it is.
#[cfg(any(feature = "aws-secretsmanager", feature = "aws-ssm"))]
pub(crate) fn description(delivery: &crate::Delivery<'_>) -> String {
    format!(
        "keyward API key {} ({})",
        delivery.key_name, delivery.key_id
    )
}

/// The tags an AWS sink puts on what it stores, so an account's keyward secrets can be found
/// and traced back to their key: `keyward:key-id` = the key's id, `keyward:managed-by` =
/// `keyward`.
#[cfg(any(feature = "aws-secretsmanager", feature = "aws-ssm"))]
pub(crate) fn tags<'a>(delivery: &crate::Delivery<'a>) -> [(&'static str, &'a str); 2] {
    [
        ("keyward:key-id", delivery.key_id),
        ("keyward:managed-by", "keyward"),
    ]
}

/// Attempts per call, including the first, with the SDK's standard (exponential, jittered)
/// backoff between them.
#[cfg(any(feature = "aws-secretsmanager", feature = "aws-ssm"))]
pub(crate) const MAX_ATTEMPTS: u32 = 3;
/// The longest a new connection may take to open.
#[cfg(any(feature = "aws-secretsmanager", feature = "aws-ssm"))]
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The longest one attempt may take.
#[cfg(any(feature = "aws-secretsmanager", feature = "aws-ssm"))]
pub(crate) const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a whole call may take, retries included.
#[cfg(any(feature = "aws-secretsmanager", feature = "aws-ssm"))]
pub(crate) const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);

#[cfg(any(feature = "aws-secretsmanager", feature = "aws-ssm"))]
pub(crate) use runtime::{Aws, failure};

#[cfg(any(feature = "aws-secretsmanager", feature = "aws-ssm"))]
mod runtime {
    use std::fmt;
    use std::future::Future;

    use aws_config::meta::region::RegionProviderChain;
    use aws_config::retry::RetryConfig;
    use aws_config::timeout::TimeoutConfig;
    use aws_config::{BehaviorVersion, Region, SdkConfig};
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

    #[cfg(feature = "aws-secretsmanager")]
    use aws_sdk_secretsmanager::{
        config::Credentials,
        error::{DisplayErrorContext, ProvideErrorMetadata, SdkError},
    };
    #[cfg(all(feature = "aws-ssm", not(feature = "aws-secretsmanager")))]
    use aws_sdk_ssm::{
        config::Credentials,
        error::{DisplayErrorContext, ProvideErrorMetadata, SdkError},
    };

    use super::{ATTEMPT_TIMEOUT, AwsSettings, CONNECT_TIMEOUT, MAX_ATTEMPTS, OPERATION_TIMEOUT};
    use crate::SinkError;
    use crate::error::{AwsFailure, scrub};

    /// The AWS side of [`crate::Sinks`], started on the first AWS delivery.
    pub(crate) struct Aws {
        runtime: OwnRuntime,
        #[cfg(feature = "aws-secretsmanager")]
        pub(crate) secrets_manager: aws_sdk_secretsmanager::Client,
        #[cfg(feature = "aws-ssm")]
        pub(crate) ssm: aws_sdk_ssm::Client,
    }

    impl fmt::Debug for Aws {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Aws").finish_non_exhaustive()
        }
    }

    impl Aws {
        /// Builds the runtime, loads the configuration and builds the clients. `sink` names
        /// the sink that asked, for the error when no region is configured.
        pub(crate) fn start(settings: &AwsSettings, sink: &'static str) -> Result<Aws, SinkError> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|runtime| OwnRuntime(Some(runtime)))
                .map_err(|source| SinkError::Runtime { source })?;
            let sdk = runtime.block_on(sink, "the AWS configuration", load(settings))?;
            if sdk.region().is_none() {
                return Err(SinkError::NoRegion { sink });
            }
            Ok(Aws {
                runtime,
                #[cfg(feature = "aws-secretsmanager")]
                secrets_manager: aws_sdk_secretsmanager::Client::new(&sdk),
                #[cfg(feature = "aws-ssm")]
                ssm: aws_sdk_ssm::Client::new(&sdk),
            })
        }

        /// Runs `call` to completion on the private runtime. `sink` and `target` name the
        /// delivery in the error when the call could not finish.
        pub(crate) fn run<F>(
            &self,
            sink: &'static str,
            target: &str,
            call: F,
        ) -> Result<F::Output, SinkError>
        where
            F: Future + Send,
            F::Output: Send,
        {
            self.runtime.block_on(sink, target, call)
        }
    }

    /// The configuration every AWS client of the process is built on.
    async fn load(settings: &AwsSettings) -> SdkConfig {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                    .operation_timeout(OPERATION_TIMEOUT)
                    .build(),
            );
        if let Some(url) = &settings.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(keys) = &settings.credentials {
            loader = loader.credentials_provider(Credentials::new(
                &keys.access_key_id,
                &keys.secret_access_key,
                keys.session_token.clone(),
                None,
                "keyward-sinks",
            ));
        }
        if let Some(region) = &settings.region {
            loader = loader.region(Region::new(region.clone()));
        } else if endpoint_configured(settings) {
            // A local endpoint: the environment's or the profile's region if there is one,
            // else us-east-1; never the instance metadata service.
            loader = loader.region(
                RegionProviderChain::first_try(
                    aws_config::environment::region::EnvironmentVariableRegionProvider::new(),
                )
                .or_else(aws_config::profile::ProfileFileRegionProvider::new())
                .or_else(Region::from_static("us-east-1")),
            );
        }
        loader.load().await
    }

    /// Whether AWS calls go to a configured endpoint (an emulator) rather than AWS's own.
    fn endpoint_configured(settings: &AwsSettings) -> bool {
        settings.endpoint_url.is_some()
            || [
                "AWS_ENDPOINT_URL",
                "AWS_ENDPOINT_URL_SECRETS_MANAGER",
                "AWS_ENDPOINT_URL_SSM",
            ]
            .iter()
            .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()))
    }

    /// A current-thread runtime that is shut down without waiting when dropped, so dropping
    /// [`crate::Sinks`] inside another runtime (where a blocking shutdown panics) is safe.
    struct OwnRuntime(Option<tokio::runtime::Runtime>);

    impl OwnRuntime {
        fn block_on<F>(
            &self,
            sink: &'static str,
            target: &str,
            call: F,
        ) -> Result<F::Output, SinkError>
        where
            F: Future + Send,
            F::Output: Send,
        {
            let interrupted = || SinkError::Interrupted {
                sink,
                target: target.to_owned(),
            };
            let Some(runtime) = &self.0 else {
                return Err(interrupted());
            };
            if tokio::runtime::Handle::try_current().is_err() {
                return Ok(runtime.block_on(call));
            }
            // Called from inside a runtime: tokio refuses a nested `block_on` on this thread,
            // and `block_in_place` works only on a multi-thread runtime. A thread of our own
            // works under any caller; it lives for one call, short next to an AWS round trip.
            std::thread::scope(|scope| {
                std::thread::Builder::new()
                    .name("keyward-sinks-aws".to_owned())
                    .spawn_scoped(scope, || runtime.block_on(call))
                    .map_err(|_| interrupted())?
                    .join()
                    .map_err(|_| interrupted())
            })
        }
    }

    impl Drop for OwnRuntime {
        fn drop(&mut self) {
            if let Some(runtime) = self.0.take() {
                runtime.shutdown_background();
            }
        }
    }

    /// A failed AWS call as an [`AwsFailure`]: AWS's code and message (scrubbed of `secret`),
    /// and what to do. `permissions` names the IAM actions the call needs.
    pub(crate) fn failure<E, R>(
        service: &'static str,
        operation: &'static str,
        target: &str,
        permissions: &str,
        secret: &str,
        err: &SdkError<E, R>,
    ) -> AwsFailure
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: fmt::Debug,
    {
        let code = err.code().map(str::to_owned);
        let message = match (err.code(), err.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_owned(),
            (None, _) => DisplayErrorContext(err).to_string(),
        };
        let hint = match (err, code.as_deref()) {
            (SdkError::TimeoutError(_), _) => {
                "AWS did not answer in time; check the network and run again".to_owned()
            }
            (
                _,
                Some(
                    "AccessDenied"
                    | "AccessDeniedException"
                    | "UnrecognizedClientException"
                    | "InvalidClientTokenId"
                    | "InvalidSignatureException"
                    | "ExpiredToken"
                    | "ExpiredTokenException",
                ),
            ) => format!(
                "check that the AWS credentials in use are valid and allow {permissions} on \
                 {target}"
            ),
            (_, Some("ThrottlingException")) => {
                "AWS is throttling these calls; wait a little and run again".to_owned()
            }
            (SdkError::ServiceError(_), _) => "correct what AWS reports and run again".to_owned(),
            _ => {
                "check the AWS credentials, region, endpoint and network, then run again".to_owned()
            }
        };
        AwsFailure {
            service,
            operation,
            target: target.to_owned(),
            code,
            message: scrub(&message, secret),
            hint,
        }
    }
}
