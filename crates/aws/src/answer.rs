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
//! Policies name only the ARN of the request decided, never a wildcard: a cached policy can
//! refuse a route it was not made for, but never allow one. Run API Gateway's authorizer cache
//! with TTL 0 (the engine's cache makes that cheap), or include the route in the identity
//! sources.

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerResponse,
    ApiGatewayV2CustomAuthorizerIamPolicyResponse, ApiGatewayV2CustomAuthorizerSimpleResponse,
};
use aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};
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
        let principal = allowed.map_or_else(|| "anonymous".to_owned(), |k| k.id.clone());
        let allow = allowed.is_some();
        match (kind, format) {
            // Only a REST API turns the `Unauthorized` error into 401; an HTTP API would answer 500.
            (EventKind::Token | EventKind::Request, _) if code.http_status() == 401 => {
                Self::Unauthorized
            }
            (EventKind::Token | EventKind::Request | EventKind::HttpApiV1, _) => {
                let mut response = ApiGatewayCustomAuthorizerResponse::<Context>::default();
                response.principal_id = Some(principal);
                response.policy_document = policy(allow, arn);
                response.context = context;
                Self::Respond(Box::new(Response::Policy(response)))
            }
            (EventKind::HttpApi, HttpApiResponse::Simple) => {
                let mut response = ApiGatewayV2CustomAuthorizerSimpleResponse::<Context>::default();
                response.is_authorized = allow;
                response.context = context;
                Self::Respond(Box::new(Response::Simple(response)))
            }
            (EventKind::HttpApi, HttpApiResponse::Iam) => {
                let mut response =
                    ApiGatewayV2CustomAuthorizerIamPolicyResponse::<Context>::default();
                response.principal_id = Some(principal);
                response.policy_document = policy(allow, arn);
                response.context = context;
                Self::Respond(Box::new(Response::Iam(response)))
            }
        }
    }

    /// One line saying what the answer is, for explanations.
    pub fn describe(&self, arn: &str) -> String {
        match self {
            Self::Unauthorized => "answer: Unauthorized (API Gateway answers 401)".to_owned(),
            Self::Respond(r) if matches!(**r, Response::Simple(_)) => {
                format!("answer: isAuthorized {}", r.to_value()["isAuthorized"])
            }
            Self::Respond(r) => format!(
                "answer: {} policy on {arn}",
                r.to_value()["policyDocument"]["Statement"][0]["Effect"]
                    .as_str()
                    .unwrap_or("?"),
            ),
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
