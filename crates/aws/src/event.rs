//! API Gateway authorizer events: REST `TOKEN` and `REQUEST`, and HTTP API (payload 2.0),
//! decoded in one pass into the [`Presented`] request every verifying edge hands the decision.

use keyward_core::credential::{self, KeySource};
use keyward_service::verification::{Presented, Target};
use serde_json::Value;
use thiserror::Error;

/// An authorizer event that cannot be understood.
#[derive(Debug, Error)]
pub enum EventError {
    #[error("the event is not JSON of an API Gateway authorizer: {0}")]
    Malformed(String),
    #[error("the event is not an API Gateway authorizer event (expected type TOKEN or REQUEST)")]
    Unknown,
}

/// The three kinds of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Token,
    Request,
    HttpApi,
}

impl EventKind {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Token => "REST TOKEN",
            Self::Request => "REST REQUEST",
            Self::HttpApi => "HTTP API (payload 2.0)",
        }
    }
}

/// An authorizer event: its kind, the request it describes, and the ARN a policy answers for
/// (the method ARN of a REST event, the route ARN of an HTTP API event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizerEvent {
    pub kind: EventKind,
    pub presented: Presented,
    pub arn: String,
}

/// The fields any of the three events may carry that the authorizer reads; every other field
/// is skipped unread, so one pass over the bytes decodes any kind.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEvent {
    #[serde(rename = "type")]
    kind: Option<String>,
    version: Option<String>,
    authorization_token: Option<String>,
    method_arn: Option<String>,
    route_arn: Option<String>,
    path: Option<String>,
    raw_path: Option<String>,
    http_method: Option<String>,
    #[serde(default)]
    headers: Pairs,
    #[serde(default)]
    query_string_parameters: Pairs,
    request_context: Option<RawContext>,
}

/// A JSON object of strings (or `null`, or absent) read straight into name-value pairs:
/// headers and query parameters, without a map in between. `null` values are skipped.
#[derive(Debug, Default)]
struct Pairs(Vec<(String, String)>);

impl<'de> serde::Deserialize<'de> for Pairs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Pairs;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of strings, or null")
            }

            fn visit_unit<E: serde::de::Error>(self) -> Result<Pairs, E> {
                Ok(Pairs::default())
            }

            fn visit_none<E: serde::de::Error>(self) -> Result<Pairs, E> {
                Ok(Pairs::default())
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Pairs, A::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((k, v)) = map.next_entry::<String, Option<String>>()? {
                    if let Some(v) = v {
                        pairs.push((k, v));
                    }
                }
                Ok(Pairs(pairs))
            }
        }
        d.deserialize_any(Visit)
    }
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawContext {
    stage: Option<String>,
    identity: Option<RawIdentity>,
    http: Option<RawHttp>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawIdentity {
    source_ip: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawHttp {
    method: Option<String>,
    path: Option<String>,
    source_ip: Option<String>,
}

impl AuthorizerEvent {
    /// Parses an event from its JSON bytes (the hot path: one pass, only what is read).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, EventError> {
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(EventError::Malformed("an event is a JSON object".into()));
        }
        let raw: RawEvent =
            serde_json::from_slice(bytes).map_err(|e| EventError::Malformed(e.to_string()))?;
        Self::from_raw(raw)
    }

    /// Parses an event already read as a JSON value.
    pub fn parse(event: Value) -> Result<Self, EventError> {
        if !event.is_object() {
            return Err(EventError::Malformed("an event is a JSON object".into()));
        }
        let raw: RawEvent =
            serde_json::from_value(event).map_err(|e| EventError::Malformed(e.to_string()))?;
        Self::from_raw(raw)
    }

    fn from_raw(raw: RawEvent) -> Result<Self, EventError> {
        let kind = match (
            raw.kind.as_deref().map(str::to_ascii_uppercase).as_deref(),
            raw.version.as_deref(),
        ) {
            (Some("TOKEN"), _) => EventKind::Token,
            (Some("REQUEST"), Some("2.0")) => EventKind::HttpApi,
            (Some("REQUEST"), _) => EventKind::Request,
            _ => return Err(EventError::Unknown),
        };
        let context = raw.request_context.unwrap_or_default();
        let (arn, presented) = match kind {
            EventKind::Token => {
                let arn = raw.method_arn.unwrap_or_default();
                let (method, path) = method_and_path(&arn).unwrap_or_default();
                let token = raw
                    .authorization_token
                    .as_deref()
                    .map(|t| credential::bearer(t).unwrap_or(t).trim().to_owned())
                    .filter(|t| !t.is_empty());
                let presented = Presented {
                    token,
                    source: KeySource::AuthorizationToken,
                    source_ip: None,
                    target: Target::Route {
                        method,
                        path,
                        headers: Vec::new(),
                        query: Vec::new(),
                    },
                };
                (arn, presented)
            }
            EventKind::Request => {
                let headers = raw.headers.0;
                let (token, source) = token_of(&headers);
                let arn = raw.method_arn.unwrap_or_default();
                let (arn_method, arn_path) = method_and_path(&arn).unwrap_or_default();
                let presented = Presented {
                    token,
                    source,
                    source_ip: context
                        .identity
                        .and_then(|i| i.source_ip)
                        .and_then(|ip| ip.parse().ok()),
                    target: Target::Route {
                        method: raw.http_method.unwrap_or(arn_method),
                        path: raw.path.unwrap_or(arn_path),
                        headers,
                        query: raw.query_string_parameters.0,
                    },
                };
                (arn, presented)
            }
            EventKind::HttpApi => {
                let headers = raw.headers.0;
                let (token, source) = token_of(&headers);
                let http = context.http.unwrap_or_default();
                let raw_path = raw.raw_path.or(http.path).unwrap_or_else(|| "/".into());
                let presented = Presented {
                    token,
                    source,
                    source_ip: http.source_ip.and_then(|ip| ip.parse().ok()),
                    target: Target::Route {
                        method: http.method.unwrap_or_default(),
                        path: without_stage(&raw_path, context.stage.as_deref()),
                        headers,
                        query: raw.query_string_parameters.0,
                    },
                };
                (raw.route_arn.unwrap_or_default(), presented)
            }
        };
        Ok(Self {
            kind,
            presented,
            arn,
        })
    }
}

/// The key of a request's headers, by the core's rule.
fn token_of(headers: &[(String, String)]) -> (Option<String>, KeySource) {
    let (token, source) =
        credential::from_headers(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    (token.map(str::to_owned), source)
}

/// `arn:aws:execute-api:region:account:api/stage/METHOD/path` -> (METHOD, /path).
fn method_and_path(arn: &str) -> Option<(String, String)> {
    let resource = arn.splitn(6, ':').nth(5)?;
    let mut parts = resource.splitn(4, '/');
    let (_api, _stage, method) = (parts.next()?, parts.next()?, parts.next()?);
    Some((
        method.to_owned(),
        format!("/{}", parts.next().unwrap_or_default()),
    ))
}

/// `path` without the `/<stage>` API Gateway puts in front on a named stage.
pub fn without_stage(path: &str, stage: Option<&str>) -> String {
    match stage.filter(|s| *s != "$default") {
        Some(s) => match path.strip_prefix('/').and_then(|p| p.strip_prefix(s)) {
            Some("") => "/".to_owned(),
            Some(rest) if rest.starts_with('/') => rest.to_owned(),
            _ => path.to_owned(),
        },
        None => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_and_stages_give_method_and_path() {
        assert_eq!(
            method_and_path(
                "arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod/GET/agents/ag_1"
            ),
            Some(("GET".into(), "/agents/ag_1".into()))
        );
        assert_eq!(
            method_and_path("arn:aws:execute-api:us-east-1:1:api/test/POST/"),
            Some(("POST".into(), "/".into()))
        );
        assert_eq!(method_and_path("not an arn"), None);
        assert_eq!(without_stage("/prod/agents", Some("prod")), "/agents");
        assert_eq!(without_stage("/agents", Some("$default")), "/agents");
        assert_eq!(
            without_stage("/production/x", Some("prod")),
            "/production/x"
        );
    }
}
