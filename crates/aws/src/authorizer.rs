//! The API Gateway custom authorizer: an event in, the one decision, the answer out. A REST
//! API's 401 is the Lambda error `Unauthorized`; a broken event or a failed store read is an
//! error too (API Gateway answers 500), never an allow.

use std::sync::Arc;

use keyward_core::decision::Code;
use keyward_core::key::ApiKey;
use keyward_service::ServiceError;
use keyward_service::error::STORE_RETRY_AFTER_SECS;
use keyward_service::verification::{Explain, Verifier};

use keyward_service::config::HttpApiResponse;
use lambda_runtime::Diagnostic;

use crate::answer::{Answer, Response};
use crate::event::AuthorizerEvent;

/// The decision on an event, with every step of how it was reached when explained.
#[derive(Debug, Clone, PartialEq)]
pub struct Explained {
    pub answer: Answer,
    pub code: Code,
    pub key: Option<Arc<ApiKey>>,
    pub steps: Vec<String>,
}

/// A verifier (the engine and the route policy) and the HTTP API answer format.
#[derive(Debug, Clone)]
pub struct Authorizer {
    verifier: Verifier,
    http_api: HttpApiResponse,
}

impl Authorizer {
    pub fn new(verifier: Verifier, http_api: HttpApiResponse) -> Self {
        Self { verifier, http_api }
    }

    /// What the Lambda function answers for an event's bytes: the response, or the error
    /// API Gateway expects (`Unauthorized` for a REST 401). One log line per decision, with
    /// the outcome and the key id, never the token.
    pub async fn handle(&self, event: &[u8]) -> Result<Response, Diagnostic> {
        let event = AuthorizerEvent::from_slice(event).map_err(|e| Diagnostic {
            error_type: "InvalidEvent".into(),
            error_message: e.to_string(),
        })?;
        let explained = self.authorize(&event).await.map_err(|e| Diagnostic {
            error_type: "AuthorizerError".into(),
            error_message: e.to_string(),
        })?;
        tracing::info!(
            code = explained.code.as_str(),
            key_id = explained.key.as_ref().map_or("-", |k| k.id.as_str()),
            "authorized"
        );
        match explained.answer {
            Answer::Respond(r) => Ok(*r),
            Answer::Unauthorized => Err(Diagnostic {
                error_type: "Unauthorized".into(),
                error_message: "Unauthorized".into(),
            }),
        }
    }

    /// Decides an event (the hot path: no explanation is written).
    pub async fn authorize(&self, event: &AuthorizerEvent<'_>) -> Result<Explained, ServiceError> {
        self.run(event, Explain::No).await
    }

    /// Decides an event and explains every step.
    pub async fn explain(&self, event: &AuthorizerEvent<'_>) -> Result<Explained, ServiceError> {
        self.run(event, Explain::Steps).await
    }

    async fn run(
        &self,
        event: &AuthorizerEvent<'_>,
        explain: Explain,
    ) -> Result<Explained, ServiceError> {
        let mut decided = self.verifier.decide(&event.presented, explain).await?;
        if decided.code == Code::Unavailable {
            // Fail closed: an error, which API Gateway answers with 500, never an allow.
            return Err(ServiceError::Unavailable {
                retry_after_secs: STORE_RETRY_AFTER_SECS,
            });
        }
        let answer = Answer::of(
            event.kind,
            self.http_api,
            &event.arn,
            decided.code,
            decided.retry_after_secs,
            decided.key.as_deref(),
        );
        if explain == Explain::Steps {
            decided
                .steps
                .insert(0, format!("event: {}", event.kind.name()));
            decided.steps.push(answer.describe(&event.arn));
        }
        Ok(Explained {
            answer,
            code: decided.code,
            key: decided.key,
            steps: decided.steps,
        })
    }
}
