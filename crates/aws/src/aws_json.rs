//! One AWS JSON 1.1 call (the protocol of Secrets Manager and SSM): a `POST /` naming its
//! operation in `X-Amz-Target`, signed with SigV4, on everything the process's SDK configuration
//! holds: its HTTP client, credentials, region, endpoint settings, timeouts and retries.
//!
//! Why not the generated clients: a function reads its pepper once, at start-up, and nothing
//! else from these services. `aws-sdk-secretsmanager` and `aws-sdk-ssm` built for that one call
//! were some 330 KiB of the authorizer's machine code (cargo bloat), loaded on every cold start,
//! before what they made the SDK's runtime instantiate. The SDK's
//! orchestrator still runs the call (the same retry strategy, timeouts and connection handling
//! as every other call); only the request and the answer are written here.
//!
//! Secrets stay out of logs: the orchestrator is told the output is sensitive (it then redacts
//! the body it traces) and [`Reply`]'s debug form hides its bytes.

use std::fmt;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials as _;
use aws_runtime::retries::classifiers::AwsErrorCodeClassifier;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SigningParams, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_async::rt::sleep::default_async_sleep;
use aws_smithy_runtime::client::orchestrator::operation::Operation;
use aws_smithy_runtime::client::retries::classifiers::{
    HttpStatusCodeClassifier, TransientErrorClassifier,
};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::behavior_version::BehaviorVersion;
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::orchestrator::{
    HttpRequest, HttpResponse, OrchestratorError, SensitiveOutput,
};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::client::runtime_plugin::StaticRuntimePlugin;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{ConfigBag, Layer};
use aws_smithy_types::error::ErrorMetadata;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use aws_types::SdkConfig;
use aws_types::service_config::ServiceConfigKey;

use crate::sdk;

/// An AWS service that speaks JSON 1.1, with the names its endpoint, signature and operations
/// go by.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Service {
    /// The SDK's service id: `AWS_ENDPOINT_URL_<ID>` (upper case, `_` for spaces) and the
    /// profile's `services` section name it.
    pub id: &'static str,
    /// The host's first label on AWS (`<prefix>.<region>.amazonaws.com`).
    pub endpoint_prefix: &'static str,
    /// The SigV4 service name.
    pub signing_name: &'static str,
    /// What `X-Amz-Target` puts before the operation's name.
    pub target_prefix: &'static str,
}

pub(crate) const SECRETS_MANAGER: Service = Service {
    id: "Secrets Manager",
    endpoint_prefix: "secretsmanager",
    signing_name: "secretsmanager",
    target_prefix: "secretsmanager",
};

pub(crate) const SSM: Service = Service {
    id: "SSM",
    endpoint_prefix: "ssm",
    signing_name: "ssm",
    target_prefix: "AmazonSSM",
};

/// Why a call did not answer. None of these holds a reply's body.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    #[error("no AWS region: set AWS_REGION")]
    NoRegion,
    #[error("the AWS configuration has no credentials provider")]
    NoCredentialsProvider,
    #[error("the AWS configuration has no HTTP client")]
    NoHttpClient,
    #[error("no AWS credentials: {0}")]
    Credentials(String),
    /// The service's own error: its code and message.
    #[error("{0}")]
    Service(String),
    /// Anything else on the way: a connection, a timeout, a malformed answer.
    #[error("{0}")]
    Transport(String),
}

/// A successful call's body: JSON that may hold a secret, so its debug form shows its length
/// only (the orchestrator traces outputs by their debug form).
pub(crate) struct Reply(Vec<u8>);

impl Reply {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reply({} bytes, redacted)", self.0.len())
    }
}

/// `operation` on `service` with the JSON `body`, on the process's configuration.
pub(crate) async fn call(
    sdk: &SdkConfig,
    service: Service,
    operation: &'static str,
    body: String,
) -> Result<Reply, CallError> {
    let region = sdk.region().ok_or(CallError::NoRegion)?.to_string();
    let http_client = sdk.http_client().ok_or(CallError::NoHttpClient)?;
    let credentials = sdk
        .credentials_provider()
        .ok_or(CallError::NoCredentialsProvider)?
        .provide_credentials()
        .await
        .map_err(|e| CallError::Credentials(DisplayErrorContext(&e).to_string()))?;
    let endpoint = endpoint(sdk, service, &region);
    let target = format!("{}.{operation}", service.target_prefix);

    let mut sensitive = Layer::new("SensitiveOutput");
    sensitive.store_put(SensitiveOutput);
    let mut builder = Operation::builder()
        .service_name(service.id)
        .operation_name(operation)
        .behavior_version(
            sdk.behavior_version()
                .unwrap_or_else(BehaviorVersion::latest),
        )
        .http_client(http_client)
        .endpoint_url(&endpoint)
        .no_auth()
        .interceptor(SigV4 {
            credentials,
            region,
            signing_name: service.signing_name,
        })
        .timeout_config(sdk.timeout_config().cloned().unwrap_or_else(|| {
            TimeoutConfig::builder()
                .connect_timeout(sdk::CONNECT_TIMEOUT)
                .operation_attempt_timeout(sdk::ATTEMPT_TIMEOUT)
                .operation_timeout(sdk::OPERATION_TIMEOUT)
                .build()
        }))
        .runtime_plugin(StaticRuntimePlugin::new().with_config(sensitive.freeze()));
    if let Some(time_source) = sdk.time_source() {
        builder = builder.time_source(time_source);
    }
    builder =
        match sdk.sleep_impl().or_else(default_async_sleep) {
            Some(sleep) => builder
                .sleep_impl(sleep)
                .standard_retry(&sdk.retry_config().cloned().unwrap_or_else(|| {
                    RetryConfig::standard().with_max_attempts(sdk::MAX_ATTEMPTS)
                }))
                // Connection errors and timeouts, 5xx answers, and AWS's throttling and transient
                // error codes, as the generated clients classify them.
                .retry_classifier(TransientErrorClassifier::<ServiceError>::new())
                .retry_classifier(HttpStatusCodeClassifier::default())
                .retry_classifier(AwsErrorCodeClassifier::<ServiceError>::new()),
            None => builder.no_retry(),
        };
    let operation = builder
        .serializer(move |body: String| {
            let mut request = HttpRequest::new(SdkBody::from(body));
            request.set_method("POST")?;
            let headers = request.headers_mut();
            headers.try_insert("content-type", "application/x-amz-json-1.1")?;
            headers.try_insert("x-amz-target", target.clone())?;
            Ok(request)
        })
        .deserializer(|response: &HttpResponse| {
            let body = response.body().bytes().unwrap_or_default();
            if response.status().is_success() {
                Ok(Reply(body.to_vec()))
            } else {
                Err(OrchestratorError::operation(ServiceError::from_response(
                    response, body,
                )))
            }
        })
        .build();

    operation.invoke(body).await.map_err(|e| match e {
        SdkError::ServiceError(e) => CallError::Service(e.err().to_string()),
        e => CallError::Transport(DisplayErrorContext(&e).to_string()),
    })
}

/// Where the call goes, as the generated clients decide: an endpoint the configuration was given
/// in code, else the service's own setting (`AWS_ENDPOINT_URL_SECRETS_MANAGER`, ...), else the
/// global one (`AWS_ENDPOINT_URL`), else AWS's own for the region.
fn endpoint(sdk: &SdkConfig, service: Service, region: &str) -> String {
    let configured = if sdk.get_origin("endpoint_url").is_client_config() {
        sdk.endpoint_url().map(str::to_owned)
    } else {
        sdk.service_config()
            .and_then(|config| {
                let key = ServiceConfigKey::builder()
                    .service_id(service.id)
                    .env("AWS_ENDPOINT_URL")
                    .profile("endpoint_url")
                    .build()
                    .ok()?;
                config.load_config(key)
            })
            .or_else(|| sdk.endpoint_url().map(str::to_owned))
    };
    configured.unwrap_or_else(|| {
        default_endpoint(
            service,
            region,
            sdk.use_fips().unwrap_or(false),
            sdk.use_dual_stack().unwrap_or(false),
        )
    })
}

/// AWS's endpoint for `service` in `region`: `https://<prefix>[-fips].<region>.<suffix>`, the
/// suffix that of the region's partition (dual-stack partitions have their own).
fn default_endpoint(service: Service, region: &str, fips: bool, dual_stack: bool) -> String {
    const PARTITIONS: &[(&str, &str, &str)] = &[
        // (region prefix, DNS suffix, dual-stack DNS suffix)
        ("cn-", "amazonaws.com.cn", "api.amazonwebservices.com.cn"),
        ("us-isob-", "sc2s.sgov.gov", "api.aws.scloud"),
        ("us-isof-", "csp.hci.ic.gov", "api.aws.hci.ic.gov"),
        ("us-iso-", "c2s.ic.gov", "api.aws.ic.gov"),
        ("eu-isoe-", "cloud.adc-e.uk", "api.cloud-aws.adc-e.uk"),
        ("eusc-", "amazonaws.eu", "api.amazonwebservices.eu"),
    ];
    let (suffix, dual_stack_suffix) = PARTITIONS
        .iter()
        .find(|(prefix, ..)| region.starts_with(prefix))
        .map_or(("amazonaws.com", "api.aws"), |(_, s, d)| (*s, *d));
    format!(
        "https://{}{}.{region}.{}",
        service.endpoint_prefix,
        if fips { "-fips" } else { "" },
        if dual_stack {
            dual_stack_suffix
        } else {
            suffix
        },
    )
}

/// Signs each attempt with SigV4 once its endpoint is applied (so the signed host is the one
/// the request goes to), at the attempt's own time.
#[derive(Debug)]
struct SigV4 {
    credentials: Credentials,
    region: String,
    signing_name: &'static str,
}

impl Intercept for SigV4 {
    fn name(&self) -> &'static str {
        "keyward SigV4 signer"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        components: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let now = components
            .time_source()
            .map_or_else(SystemTime::now, |t| t.now());
        let identity: Identity = self.credentials.clone().into();
        let params: SigningParams<'_> = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(self.signing_name)
            .time(now)
            .settings(SigningSettings::default())
            .build()?
            .into();
        let request = context.request_mut();
        let signable = SignableRequest::new(
            request.method(),
            request.uri(),
            request.headers().iter(),
            SignableBody::Bytes(request.body().bytes().unwrap_or_default()),
        )?;
        let (instructions, _signature) = sign(signable, &params)?.into_parts();
        let (headers, _query) = instructions.into_parts();
        for header in headers {
            request
                .headers_mut()
                .try_insert(header.name(), header.value().to_owned())?;
        }
        Ok(())
    }
}

/// An error answer: AWS JSON's `__type` (or `X-Amzn-ErrorType`) and `message`, which name what
/// went wrong and never echo a secret.
#[derive(Debug)]
pub(crate) struct ServiceError {
    status: u16,
    meta: ErrorMetadata,
}

impl ServiceError {
    fn from_response(response: &HttpResponse, body: &[u8]) -> Self {
        #[derive(serde::Deserialize)]
        struct Body {
            #[serde(rename = "__type", alias = "code")]
            code: Option<String>,
            #[serde(alias = "Message", alias = "errorMessage")]
            message: Option<String>,
        }
        let parsed: Option<Body> = serde_json::from_slice(body).ok();
        let code = response
            .headers()
            .get("x-amzn-errortype")
            .map(str::to_owned)
            .or_else(|| parsed.as_ref().and_then(|b| b.code.clone()))
            .map(|code| sanitize_code(&code).to_owned());
        let mut meta = ErrorMetadata::builder();
        if let Some(code) = code {
            meta = meta.code(code);
        }
        if let Some(message) = parsed.and_then(|b| b.message) {
            meta = meta.message(message);
        }
        Self {
            status: response.status().as_u16(),
            meta: meta.build(),
        }
    }
}

/// `aws.protocoltests#ResourceNotFoundException:http://...` is `ResourceNotFoundException`.
fn sanitize_code(code: &str) -> &str {
    let code = code.split(':').next().unwrap_or(code);
    code.rsplit('#').next().unwrap_or(code)
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.meta.code(), self.meta.message()) {
            (Some(code), Some(message)) => write!(f, "{code}: {message}"),
            (Some(code), None) => f.write_str(code),
            (None, Some(message)) => write!(f, "HTTP {}: {message}", self.status),
            (None, None) => write!(f, "HTTP {}", self.status),
        }
    }
}

impl std::error::Error for ServiceError {}

impl ProvideErrorMetadata for ServiceError {
    fn meta(&self) -> &ErrorMetadata {
        &self.meta
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_endpoints_follow_the_region_partition_and_its_variants() {
        let cases = [
            (
                SECRETS_MANAGER,
                "eu-west-1",
                false,
                false,
                "https://secretsmanager.eu-west-1.amazonaws.com",
            ),
            (
                SSM,
                "us-east-2",
                true,
                false,
                "https://ssm-fips.us-east-2.amazonaws.com",
            ),
            (
                SSM,
                "eu-central-1",
                false,
                true,
                "https://ssm.eu-central-1.api.aws",
            ),
            (
                SECRETS_MANAGER,
                "cn-north-1",
                false,
                false,
                "https://secretsmanager.cn-north-1.amazonaws.com.cn",
            ),
            (
                SECRETS_MANAGER,
                "us-gov-west-1",
                true,
                false,
                "https://secretsmanager-fips.us-gov-west-1.amazonaws.com",
            ),
            (
                SSM,
                "us-isob-east-1",
                false,
                false,
                "https://ssm.us-isob-east-1.sc2s.sgov.gov",
            ),
        ];
        for (service, region, fips, dual_stack, expected) in cases {
            assert_eq!(
                default_endpoint(service, region, fips, dual_stack),
                expected
            );
        }
    }

    #[test]
    fn error_codes_lose_their_namespace_and_uri() {
        assert_eq!(
            sanitize_code("com.amazonaws.secretsmanager#ResourceNotFoundException"),
            "ResourceNotFoundException"
        );
        assert_eq!(
            sanitize_code("ParameterNotFound:http://internal.amazon.com/coral/com.amazon.ssm/"),
            "ParameterNotFound"
        );
        assert_eq!(sanitize_code("ThrottlingException"), "ThrottlingException");
    }
}
