//! The API Gateway custom authorizer: REST `TOKEN` and `REQUEST` events and HTTP API
//! (payload 2.0) events, answered with IAM policies or simple responses.
//!
//! Each event is normalised into one [`Presented`] request (token, method, path, headers,
//! source address), the route policy turns it into what the key must allow, the
//! [`Engine`](crate::engine::Engine) decides, and the answer takes the event's format:
//!
//! | outcome | REST (TOKEN, REQUEST) | HTTP API, IAM | HTTP API, simple |
//! |---|---|---|---|
//! | valid | Allow policy on the method ARN, context | Allow policy on the route ARN | `isAuthorized: true`, context |
//! | 401 outcomes (unknown, malformed, revoked, expired) | `Unauthorized` error: 401 | Deny policy: 403 | `false`: 403 |
//! | 403 outcomes (inactive, address, workspace, permission, rate limit) | Deny policy: 403 | Deny policy: 403 | `false`: 403 |
//!
//! Policies name only the ARN of the request decided, never a wildcard: a cached policy can
//! refuse a route it was not made for, but never allow one. Run API Gateway's authorizer cache
//! with TTL 0 (the engine's cache makes that cheap), or include the route in the identity
//! sources.

use std::net::IpAddr;
use std::sync::Arc;

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerResponse,
    ApiGatewayV2CustomAuthorizerIamPolicyResponse, ApiGatewayV2CustomAuthorizerSimpleResponse,
};
use aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};
use keyward_core::decision::{AccessRequest, Code};
use keyward_core::key::ApiKey;
use keyward_core::route::{RoutePolicy, RouteRequest};
use serde_json::Value;
use thiserror::Error;

use crate::engine::Engine;
use crate::error::ServiceError;

/// How an HTTP API's authorizer is configured to answer (API Gateway decides, not the event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpApiFormat {
    #[default]
    Simple,
    Iam,
}

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
    fn name(self) -> &'static str {
        match self {
            Self::Token => "REST TOKEN",
            Self::Request => "REST REQUEST",
            Self::HttpApi => "HTTP API (payload 2.0)",
        }
    }
}

/// An authorizer event: its kind and the request it describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizerEvent {
    pub kind: EventKind,
    pub presented: Presented,
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
        let presented = match kind {
            EventKind::Token => {
                let arn = raw.method_arn.unwrap_or_default();
                let (method, path) = method_and_path(&arn).unwrap_or_default();
                let token = raw
                    .authorization_token
                    .as_deref()
                    .map(|t| bearer(t).unwrap_or(t).trim().to_owned());
                Presented {
                    token: token.filter(|t| !t.is_empty()),
                    token_source: "authorizationToken",
                    method,
                    path,
                    arn,
                    ..Presented::default()
                }
            }
            EventKind::Request => {
                let headers = raw.headers.0;
                let (token, token_source) = token_from_headers(&headers);
                let arn = raw.method_arn.unwrap_or_default();
                let (arn_method, arn_path) = method_and_path(&arn).unwrap_or_default();
                Presented {
                    token,
                    token_source,
                    method: raw.http_method.unwrap_or(arn_method),
                    path: raw.path.unwrap_or(arn_path),
                    query: raw.query_string_parameters.0,
                    source_ip: context
                        .identity
                        .and_then(|i| i.source_ip)
                        .and_then(|ip| ip.parse().ok()),
                    headers,
                    arn,
                }
            }
            EventKind::HttpApi => {
                let headers = raw.headers.0;
                let (token, token_source) = token_from_headers(&headers);
                let http = context.http.unwrap_or_default();
                let raw_path = raw.raw_path.or(http.path).unwrap_or_else(|| "/".into());
                Presented {
                    token,
                    token_source,
                    method: http.method.unwrap_or_default(),
                    path: without_stage(&raw_path, context.stage.as_deref()),
                    query: raw.query_string_parameters.0,
                    source_ip: http.source_ip.and_then(|ip| ip.parse().ok()),
                    headers,
                    arn: raw.route_arn.unwrap_or_default(),
                }
            }
        };
        Ok(Self { kind, presented })
    }
}

/// A request as the authorizer sees it, whatever the event kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Presented {
    pub token: Option<String>,
    /// Where the token came from, for explanations.
    pub token_source: &'static str,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
    pub source_ip: Option<IpAddr>,
    /// The ARN a policy is about (method ARN or route ARN).
    pub arn: String,
}

fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The key from `X-API-Key`, else `Authorization: Bearer` (header names in any case).
pub fn token_from_headers(headers: &[(String, String)]) -> (Option<String>, &'static str) {
    let find = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    if let Some(v) = find("x-api-key") {
        return (Some(v.trim().to_owned()), "X-API-Key header");
    }
    match find("authorization").and_then(|v| bearer(v)) {
        Some(t) => (Some(t.to_owned()), "Authorization: Bearer header"),
        None => (None, "no X-API-Key or Authorization: Bearer header"),
    }
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

/// What the backend learns: an allowed key's identity and grants, or a denial's code. REST
/// context values must be strings, numbers or booleans, so lists are comma-separated.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Context {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspaces: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<String>,
}

/// An authorizer response in the format its event asks for, serialised once, as it is.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Response {
    Policy(ApiGatewayCustomAuthorizerResponse<Context>),
    Simple(ApiGatewayV2CustomAuthorizerSimpleResponse<Context>),
    Iam(ApiGatewayV2CustomAuthorizerIamPolicyResponse<Context>),
}

impl Response {
    /// The response as a JSON value (for explanations and tests).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// What the authorizer answers: a response document, or the `Unauthorized` error that makes
/// a REST API answer 401.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Respond(Box<Response>),
    Unauthorized,
}

/// The decision, with every step of how it was reached.
#[derive(Debug, Clone, PartialEq)]
pub struct Explained {
    pub answer: Answer,
    pub code: Code,
    pub key_id: Option<String>,
    pub steps: Vec<String>,
}

/// A decision on a [`Presented`] request, before it is put in any event's format.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    pub code: Code,
    pub key: Option<Arc<ApiKey>>,
    pub steps: Vec<String>,
}

/// Explanation steps, written only when asked for (the hot path formats nothing).
struct Steps(Option<Vec<String>>);

impl Steps {
    fn add(&mut self, step: impl FnOnce() -> String) {
        if let Some(steps) = &mut self.0 {
            steps.push(step());
        }
    }
}

/// The authorizer: an engine, a route policy (without one, only the key itself is checked),
/// and the HTTP API answer format.
#[derive(Debug, Clone)]
pub struct Authorizer {
    engine: Engine,
    policy: Option<Arc<RoutePolicy>>,
    http_api: HttpApiFormat,
}

impl Authorizer {
    pub fn new(engine: Engine, policy: RoutePolicy, http_api: HttpApiFormat) -> Self {
        Self {
            engine,
            policy: Some(Arc::new(policy)),
            http_api,
        }
    }

    /// An authorizer that checks only the key (status, expiry, address), for explaining.
    pub fn without_policy(engine: Engine, http_api: HttpApiFormat) -> Self {
        Self {
            engine,
            policy: None,
            http_api,
        }
    }

    /// Decides an event (the hot path: no explanation is written).
    pub async fn authorize(&self, event: &AuthorizerEvent) -> Result<Explained, ServiceError> {
        self.run(event, false).await
    }

    /// Decides an event and explains every step.
    pub async fn explain(&self, event: &AuthorizerEvent) -> Result<Explained, ServiceError> {
        self.run(event, true).await
    }

    async fn run(&self, event: &AuthorizerEvent, explain: bool) -> Result<Explained, ServiceError> {
        let p = &event.presented;
        let mut decided = self.decide_with(p, explain).await?;
        let answer = self.answer(event.kind, p, decided.code, decided.key.as_deref());
        if !explain {
            return Ok(Explained {
                answer,
                code: decided.code,
                key_id: decided.key.as_ref().map(|k| k.id.clone()),
                steps: Vec::new(),
            });
        }
        decided
            .steps
            .insert(0, format!("event: {}", event.kind.name()));
        decided.steps.push(match &answer {
            Answer::Unauthorized => "answer: Unauthorized (API Gateway answers 401)".to_owned(),
            Answer::Respond(r) if matches!(**r, Response::Simple(_)) => {
                format!("answer: isAuthorized {}", r.to_value()["isAuthorized"])
            }
            Answer::Respond(r) => format!(
                "answer: {} policy on {}",
                r.to_value()["policyDocument"]["Statement"][0]["Effect"]
                    .as_str()
                    .unwrap_or("?"),
                p.arn
            ),
        });
        Ok(Explained {
            answer,
            code: decided.code,
            key_id: decided.key.as_ref().map(|k| k.id.clone()),
            steps: decided.steps,
        })
    }

    /// Decides a request in the order of the outcome table: token, key, status and expiry,
    /// address, workspace, permission (a route outside the policy is denied); with `explain`,
    /// every step is written down.
    pub async fn decide(&self, p: &Presented, explain: bool) -> Result<Decided, ServiceError> {
        self.decide_with(p, explain).await
    }

    async fn decide_with(&self, p: &Presented, explain: bool) -> Result<Decided, ServiceError> {
        let mut steps = Steps(explain.then(Vec::new));
        steps.add(|| {
            format!(
                "request: {} {} from {}",
                p.method,
                p.path,
                p.source_ip
                    .map_or("an unknown address".into(), |ip| ip.to_string())
            )
        });
        steps.add(|| {
            format!(
                "token: {}",
                if p.token.is_some() {
                    p.token_source
                } else {
                    "none presented"
                }
            )
        });
        let headers: Vec<(&str, &str)> = p
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let query: Vec<(&str, &str)> = p
            .query
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let request = RouteRequest {
            method: &p.method,
            path: &p.path,
            headers: &headers,
            query: &query,
            source_ip: p.source_ip,
        };
        let only_key = AccessRequest {
            source_ip: p.source_ip,
            ..AccessRequest::default()
        };
        let (access, route_ok) = match self.policy.as_deref().map(|policy| policy.access(&request))
        {
            None => {
                steps.add(|| {
                    "route: no route policy given; only the key itself is checked".to_owned()
                });
                (only_key, true)
            }
            Some(Ok((access, template))) => {
                if let Some((action, resource)) = &access.permission {
                    steps.add(|| {
                        format!(
                            "route: {template} needs {action} on '{resource}'{}",
                            access
                                .workspace
                                .as_ref()
                                .map_or(String::new(), |w| format!(" in workspace {w}"))
                        )
                    });
                }
                (access, true)
            }
            Some(Err(denied)) => {
                steps.add(|| format!("route: {denied}"));
                (only_key, false)
            }
        };
        let decision = self.engine.verify(p.token.as_deref(), &access).await?;
        let mut code = decision.code;
        if !route_ok && code == Code::Valid {
            // The key is good but the route is not in the policy: denied by default.
            code = Code::PermissionDenied;
        }
        steps.add(|| match &decision.key {
            Some(k) => format!(
                "key: {} ({}), {}",
                k.id,
                k.name,
                if decision.cached {
                    "from the cache"
                } else {
                    "read from the store"
                }
            ),
            None if p.token.is_some() => {
                "key: none matches (malformed, unknown or deleted)".to_owned()
            }
            None => "key: none presented".to_owned(),
        });
        steps.add(|| format!("decision: {} (HTTP {})", code.as_str(), code.http_status()));
        if let Err(e) = self.engine.flush_usage_if_due().await {
            tracing::warn!(error = %e, "usage flush failed");
        }
        Ok(Decided {
            code,
            key: decision.key,
            steps: steps.0.unwrap_or_default(),
        })
    }

    fn answer(&self, kind: EventKind, p: &Presented, code: Code, key: Option<&ApiKey>) -> Answer {
        let allow = code == Code::Valid;
        let context = match key.filter(|_| allow) {
            Some(k) => context_of(k),
            None => Context {
                code: Some(code.as_str().to_owned()),
                ..Context::default()
            },
        };
        let principal = key
            .filter(|_| allow)
            .map_or_else(|| "anonymous".to_owned(), |k| k.id.clone());
        match kind {
            EventKind::Token | EventKind::Request => {
                if code.http_status() == 401 {
                    return Answer::Unauthorized;
                }
                let mut response = ApiGatewayCustomAuthorizerResponse::<Context>::default();
                response.principal_id = Some(principal);
                response.policy_document = policy(allow, &p.arn);
                response.context = context;
                Answer::Respond(Box::new(Response::Policy(response)))
            }
            EventKind::HttpApi => match self.http_api {
                HttpApiFormat::Simple => {
                    let mut response =
                        ApiGatewayV2CustomAuthorizerSimpleResponse::<Context>::default();
                    response.is_authorized = allow;
                    response.context = context;
                    Answer::Respond(Box::new(Response::Simple(response)))
                }
                HttpApiFormat::Iam => {
                    let mut response =
                        ApiGatewayV2CustomAuthorizerIamPolicyResponse::<Context>::default();
                    response.principal_id = Some(principal);
                    response.policy_document = policy(allow, &p.arn);
                    response.context = context;
                    Answer::Respond(Box::new(Response::Iam(response)))
                }
            },
        }
    }
}

fn policy(allow: bool, arn: &str) -> ApiGatewayCustomAuthorizerPolicy {
    let mut statement = IamPolicyStatement::default();
    statement.action = vec!["execute-api:Invoke".to_owned()];
    statement.effect = if allow {
        IamPolicyEffect::Allow
    } else {
        IamPolicyEffect::Deny
    };
    statement.resource = vec![arn.to_owned()];
    let mut policy = ApiGatewayCustomAuthorizerPolicy::default();
    policy.version = Some("2012-10-17".to_owned());
    policy.statement = vec![statement];
    policy
}

/// The context of an allowed key.
pub fn context_of(key: &ApiKey) -> Context {
    let scopes: Vec<&str> = key.scopes.iter().map(|s| s.scope.as_str()).collect();
    Context {
        code: None,
        key_id: Some(key.id.clone()),
        account: Some(key.account.clone()),
        principal: Some(key.id.clone()),
        name: Some(key.name.clone()),
        workspaces: Some(key.workspaces.join(",")),
        scopes: Some(scopes.join(",")),
        groups: Some(key.groups.join(",")),
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

    #[test]
    fn tokens_come_from_either_header_in_any_case() {
        let h = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            token_from_headers(&h(&[("X-Api-Key", " t1 ")]))
                .0
                .as_deref(),
            Some("t1")
        );
        assert_eq!(
            token_from_headers(&h(&[("authorization", "BEARER t2")]))
                .0
                .as_deref(),
            Some("t2")
        );
        assert_eq!(
            token_from_headers(&h(&[("authorization", "Basic t3")])).0,
            None
        );
        assert_eq!(token_from_headers(&h(&[])).0, None);
    }
}
