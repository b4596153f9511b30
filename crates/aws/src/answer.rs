//! What the authorizer answers, in the format its event asks for:
//!
//! | outcome | REST (TOKEN, REQUEST) | HTTP API, IAM (and every payload 1.0) | HTTP API, simple (payload 2.0) |
//! |---|---|---|---|
//! | valid | Allow policy on the method ARN, context | Allow policy on the route (or method) ARN | `isAuthorized: true`, context |
//! | 401 outcomes (unknown, malformed, revoked, expired) | `Unauthorized` error: 401 | Deny policy: 403 | `false`: 403 |
//! | 403 outcomes (inactive, address, workspace, permission) | Deny policy: 403 | Deny policy: 403 | `false`: 403 |
//! | rate limited | Deny policy, context `code=RATE_LIMITED`, `retry_after`: 403 | Deny policy: 403 | `false`, the same context: 403 |
//!
//! API Gateway takes no status from a Lambda authorizer: every Deny answers with the
//! `ACCESS_DENIED` gateway response (403 unless changed), whose template can read
//! `$context.authorizer.code` and `$context.authorizer.retry_after` so the caller learns it was
//! rate limited and when to retry. docs/usage-and-limits.md shows the template and the usage
//! plan route to a real 429.
//!
//! An HTTP API turns a Lambda error (`Unauthorized` included) into a 500, so it is never
//! answered with one; and it takes simple responses only with payload 2.0.
//!
//! By default a policy names only the ARN of the request decided, never a wildcard: a cached
//! policy can refuse a route it was not made for, but never allow one. Run API Gateway's
//! authorizer cache with TTL 0 (the engine's cache makes that cheap), or turn on cache-safe
//! answers: a policy (REST, and HTTP API payload 1.0) then allows exactly the routes the key may
//! call and denies the rest ([`Answer::cached`], from [`keyward_core::cache_safe`]), and a key
//! that may call none, or is inactive, refused at its address or rate limited, is denied every
//! route ([`Answer::deny_all`]).

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerResponse,
    ApiGatewayV2CustomAuthorizerIamPolicyResponse, ApiGatewayV2CustomAuthorizerSimpleResponse,
};
use aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};
use keyward_core::cache_safe::{Effect, Statement};
use keyward_core::context::Context;
use keyward_core::decision::Code;
use keyward_core::key::ApiKey;
use keyward_service::config::HttpApiResponse;
use serde_json::Value;

use crate::event::EventKind;

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

impl Answer {
    /// The answer to a decision `code` about `key`, for an event of `kind` about `arn`.
    pub fn of(
        kind: EventKind,
        format: HttpApiResponse,
        arn: &str,
        code: Code,
        retry_after_secs: Option<u32>,
        key: Option<&ApiKey>,
    ) -> Self {
        let allowed = key.filter(|_| code == Code::Valid);
        let context =
            allowed.map_or_else(|| Context::denied(code, retry_after_secs), Context::allowed);
        let principal = || allowed.map_or_else(|| "anonymous".to_owned(), |k| k.id.clone());
        let allow = allowed.is_some();
        match (kind, format) {
            // Only a REST API turns the `Unauthorized` error into 401; an HTTP API would answer 500.
            (EventKind::Token | EventKind::Request, _) if code.http_status() == 401 => {
                Self::Unauthorized
            }
            (EventKind::Token | EventKind::Request | EventKind::HttpApiV1, _) => Self::rest(
                principal(),
                vec![statement(allow, vec![arn.to_owned()])],
                context,
            ),
            (EventKind::HttpApi, HttpApiResponse::Simple) => {
                let mut response = ApiGatewayV2CustomAuthorizerSimpleResponse::<Context>::default();
                response.is_authorized = allow;
                response.context = context;
                Self::Respond(Box::new(Response::Simple(response)))
            }
            (EventKind::HttpApi, HttpApiResponse::Iam) => {
                let mut response =
                    ApiGatewayV2CustomAuthorizerIamPolicyResponse::<Context>::default();
                response.principal_id = Some(principal());
                response.policy_document = document(vec![statement(allow, vec![arn.to_owned()])]);
                response.context = context;
                Self::Respond(Box::new(Response::Iam(response)))
            }
        }
    }

    /// A REST answer that stays right for every route while API Gateway caches it: `statements`
    /// (from [`keyward_core::cache_safe::grants`]) under the stage's ARN `prefix`, with the
    /// key's context (the same for every route it may call).
    pub fn cached(prefix: &str, statements: &[Statement], key: &ApiKey) -> Self {
        let resources = |effect: Effect| -> Vec<String> {
            statements
                .iter()
                .filter(|s| s.effect == effect)
                .map(|s| format!("{prefix}{}", s.pattern))
                .collect()
        };
        let mut allow = resources(Effect::Allow);
        let mut deny = resources(Effect::Deny);
        if allow.is_empty() && deny.is_empty() {
            deny.push(format!("{prefix}*"));
        }
        let statements = [(true, &mut allow), (false, &mut deny)]
            .into_iter()
            .filter(|(_, resources)| !resources.is_empty())
            .map(|(effect, resources)| statement(effect, std::mem::take(resources)))
            .collect();
        Self::rest(key.id.clone(), statements, Context::allowed(key))
    }

    /// A REST answer denying every route of the stage `prefix`, for an outcome about the key
    /// itself (inactive, its address, its rate limit), cached as such.
    pub fn deny_all(prefix: &str, key: &ApiKey, code: Code, retry_after_secs: Option<u32>) -> Self {
        Self::rest(
            key.id.clone(),
            vec![statement(false, vec![format!("{prefix}*")])],
            Context::denied(code, retry_after_secs),
        )
    }

    /// A policy answer (REST, and HTTP API payload 1.0).
    fn rest(principal: String, statements: Vec<IamPolicyStatement>, context: Context) -> Self {
        let mut response = ApiGatewayCustomAuthorizerResponse::<Context>::default();
        response.principal_id = Some(principal);
        response.policy_document = document(statements);
        response.context = context;
        Self::Respond(Box::new(Response::Policy(response)))
    }

    /// The size of the answer's JSON, which API Gateway limits.
    pub fn size(&self) -> usize {
        match self {
            Self::Respond(r) => serde_json::to_vec(r).map_or(usize::MAX, |v| v.len()),
            Self::Unauthorized => 0,
        }
    }

    /// One line saying what the answer is, for explanations.
    pub fn describe(&self, arn: &str) -> String {
        match self {
            Self::Unauthorized => "answer: Unauthorized (API Gateway answers 401)".to_owned(),
            Self::Respond(r) if matches!(**r, Response::Simple(_)) => {
                format!("answer: isAuthorized {}", r.to_value()["isAuthorized"])
            }
            Self::Respond(r) => {
                let value = r.to_value();
                let statements = value["policyDocument"]["Statement"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let count = |s: &Value| s["Resource"].as_array().map_or(1, Vec::len);
                match statements.as_slice() {
                    [one] if count(one) == 1 && one["Resource"][0] == arn => format!(
                        "answer: {} policy on {arn}",
                        one["Effect"].as_str().unwrap_or("?")
                    ),
                    _ => {
                        let parts: Vec<String> = statements
                            .iter()
                            .map(|s| {
                                format!("{} {}", s["Effect"].as_str().unwrap_or("?"), count(s))
                            })
                            .collect();
                        format!(
                            "answer: cache-safe policy for every route ({} resource patterns, \
                             {} bytes)",
                            parts.join(", "),
                            self.size()
                        )
                    }
                }
            }
        }
    }
}

fn statement(allow: bool, resources: Vec<String>) -> IamPolicyStatement {
    let mut statement = IamPolicyStatement::default();
    statement.action = vec!["execute-api:Invoke".to_owned()];
    statement.effect = if allow {
        IamPolicyEffect::Allow
    } else {
        IamPolicyEffect::Deny
    };
    statement.resource = resources;
    statement
}

fn document(statements: Vec<IamPolicyStatement>) -> ApiGatewayCustomAuthorizerPolicy {
    let mut policy = ApiGatewayCustomAuthorizerPolicy::default();
    policy.version = Some("2012-10-17".to_owned());
    policy.statement = statements;
    policy
}

/// The stage's ARN prefix of a method ARN: `arn:aws:execute-api:<region>:<account>:<api>/<stage>/`;
/// none for an ARN without one, or with a wildcard in it (a console test's stage `*`), which a
/// cached policy would turn into a wildcard over other stages, methods and paths.
pub fn stage_prefix(arn: &str) -> Option<&str> {
    let (colon, _) = arn.match_indices(':').nth(4)?;
    let rest = &arn[colon + 1..];
    let (slash, _) = rest.match_indices('/').nth(1)?;
    let prefix = &arn[..colon + 1 + slash + 1];
    (!prefix.contains(['*', '?'])).then_some(prefix)
}
