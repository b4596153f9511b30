//! Where the table is and how to reach it: `dynamodb://TABLE[?endpoint=URL&region=R]`.
//!
//! Credentials, region and endpoint otherwise come from the standard AWS chain
//! (`AWS_ENDPOINT_URL`, `AWS_REGION`, profiles, the Lambda role). The HTTPS client is rustls
//! with ring, built explicitly because the SDK's default features are off.

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

/// Attempts per request, including the first: throttling and transient errors are retried
/// with the SDK's standard (exponential, jittered) strategy.
pub const MAX_ATTEMPTS: u32 = 5;

/// A parsed `dynamodb://` store location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoLocation {
    pub table: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
}

impl DynamoLocation {
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("dynamodb://")
            .ok_or_else(|| format!("'{url}' is not a dynamodb://TABLE location"))?;
        let (table, query) = rest.split_once('?').unwrap_or((rest, ""));
        let valid_table = (3..=255).contains(&table.len())
            && table
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !valid_table {
            return Err(format!(
                "'{table}' is not a DynamoDB table name (3 to 255 of letters, digits, '_', '-', '.')"
            ));
        }
        let mut location = Self {
            table: table.to_owned(),
            endpoint: None,
            region: None,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("endpoint", v)) if v.starts_with("http://") || v.starts_with("https://") => {
                    location.endpoint = Some(v.to_owned());
                }
                Some(("region", v)) if !v.is_empty() => location.region = Some(v.to_owned()),
                _ => {
                    return Err(format!(
                        "unknown or malformed option '{pair}'; use endpoint=http(s)://... or region=..."
                    ));
                }
            }
        }
        Ok(location)
    }

    /// A DynamoDB client for this location.
    pub async fn client(&self) -> aws_sdk_dynamodb::Client {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS));
        if let Some(region) = &self.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &self.endpoint {
            loader = loader.endpoint_url(endpoint);
            // A local endpoint (DynamoDB Local) accepts any credentials and region; supply
            // harmless ones when none are configured so local use needs no AWS set-up.
            if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
                loader = loader.credentials_provider(Credentials::new(
                    "local",
                    "local",
                    None,
                    None,
                    "keyward-local",
                ));
            }
            if self.region.is_none() && std::env::var_os("AWS_REGION").is_none() {
                loader = loader.region(Region::new("us-east-1"));
            }
        }
        aws_sdk_dynamodb::Client::new(&loader.load().await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_and_bad_ones_say_why() {
        assert_eq!(
            DynamoLocation::parse(
                "dynamodb://keys?endpoint=http://localhost:8000&region=eu-west-1"
            ),
            Ok(DynamoLocation {
                table: "keys".into(),
                endpoint: Some("http://localhost:8000".into()),
                region: Some("eu-west-1".into()),
            })
        );
        assert_eq!(
            DynamoLocation::parse("dynamodb://keyward")
                .unwrap()
                .endpoint,
            None
        );
        for bad in [
            "sqlite",
            "dynamodb://",
            "dynamodb://a",
            "dynamodb://t t",
            "dynamodb://tab?x=1",
            "dynamodb://tab?endpoint=ftp://x",
        ] {
            assert!(DynamoLocation::parse(bad).is_err(), "{bad}");
        }
    }
}
