//! The API Gateway custom authorizer: an event in, the one decision, the answer out. A REST
//! API's 401 is the Lambda error `Unauthorized`; a broken event or a failed store read is an
//! error too (API Gateway answers 500), never an allow.
//!
//! With cache-safe answers on ([`Authorizer::with_cache_safe_answers`]), what API Gateway
//! caches stays right for every request it answers from its cache: a policy (REST, and HTTP
//! API payload 1.0) covers every route (see [`crate::answer`]), and an HTTP API payload 2.0
//! allow is given only when the event's identity sources (its cache key) hold its route and
//! path, and its address when the key is limited to some.
//!
//! A REST policy for every route depends on the route policy and the key's rights only (what
//! depends on the request, its status, expiry and address, is decided before it is asked
//! for), so it is worked out once per key version and stage and kept ([`Worked`]): a cache
//! miss at API Gateway costs what any answer costs, not a decision per route.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::Utc;
use keyward_core::cache_safe::{self, MAX_POLICY_BYTES};
use keyward_core::decision::Code;
use keyward_core::key::ApiKey;
use keyward_service::ServiceError;
use keyward_service::error::STORE_RETRY_AFTER_SECS;
use keyward_service::fault::FAULTS;
use keyward_service::verification::{Decided, Explain, Target, Verifier};

use keyward_service::config::HttpApiResponse;
use lambda_runtime::Diagnostic;

use crate::answer::{Answer, Response, stage_prefix};
use crate::event::{AuthorizerEvent, EventKind};

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
    cache_safe: bool,
    worked: Arc<Worked>,
}

/// The most keys whose policy for every route is kept; past it, the kept ones are dropped.
/// A policy is at most [`MAX_POLICY_BYTES`] (8 KB): at most 16 MB of a Lambda's memory.
const WORKED_CAPACITY: usize = 2_000;

/// REST policies for every route already worked out, by key id: each for one version of the
/// key (held, and compared by value when the engine holds another copy) and one stage.
#[derive(Debug, Default)]
struct Worked(Mutex<HashMap<String, WorkedOut>>);

#[derive(Debug)]
struct WorkedOut {
    key: Arc<ApiKey>,
    prefix: String,
    /// The answer, or why the key's rights cannot be answered so.
    answer: Result<Answer, String>,
}

impl Worked {
    fn kept(&self) -> MutexGuard<'_, HashMap<String, WorkedOut>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The answer kept for `key` on the stage `prefix`, or the one `work` makes (then kept).
    fn get_or(
        &self,
        prefix: &str,
        key: &Arc<ApiKey>,
        work: impl FnOnce() -> Result<Answer, String>,
    ) -> Result<Answer, String> {
        {
            let mut kept = self.kept();
            if let Some(w) = kept.get_mut(&key.id)
                && w.prefix == prefix
                && (Arc::ptr_eq(&w.key, key) || *w.key == **key)
            {
                // The engine's copy from now on, so the next request compares a pointer.
                w.key = Arc::clone(key);
                return w.answer.clone();
            }
        }
        let answer = work();
        let mut kept = self.kept();
        if kept.len() >= WORKED_CAPACITY && !kept.contains_key(&key.id) {
            kept.clear();
        }
        kept.insert(
            key.id.clone(),
            WorkedOut {
                key: Arc::clone(key),
                prefix: prefix.to_owned(),
                answer: answer.clone(),
            },
        );
        answer
    }
}

impl Authorizer {
    pub fn new(verifier: Verifier, http_api: HttpApiResponse) -> Self {
        Self {
            verifier,
            http_api,
            cache_safe: false,
            worked: Arc::default(),
        }
    }

    /// Answers so that API Gateway's result cache stays right (the configuration has checked
    /// the route policy: `KEYWARD_CACHE_SAFE_ANSWERS`).
    pub fn with_cache_safe_answers(mut self, on: bool) -> Self {
        self.cache_safe = on;
        self
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
        let cache_safe = if self.cache_safe {
            self.cache_safe_answer(event, &mut decided)
        } else {
            None
        };
        let answer = cache_safe.unwrap_or_else(|| {
            Answer::of(
                event.kind,
                self.http_api,
                &event.arn,
                decided.code,
                decided.retry_after_secs,
                decided.key.as_deref(),
            )
        });
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

    /// The cache-safe answer to a decision, where it differs from the usual one.
    fn cache_safe_answer(
        &self,
        event: &AuthorizerEvent<'_>,
        decided: &mut Decided,
    ) -> Option<Answer> {
        let key = decided.key.clone()?;
        match event.kind {
            // A payload 1.0 HTTP API event is answered with a policy too, which API Gateway
            // evaluates against each request's route ARN, cached or not.
            EventKind::Token | EventKind::Request | EventKind::HttpApiV1 => {
                // An ARN with a wildcard would make even a narrow cached allow a wide one.
                let Some(prefix) =
                    stage_prefix(&event.arn).filter(|p| !event.arn[p.len()..].contains(['*', '?']))
                else {
                    refuse_allow(
                        decided,
                        "the method ARN has a wildcard or no stage, so a cached allow would be a \
                         wide one",
                    );
                    return None;
                };
                // A policy of routes is matched against `<METHOD>/<path>`. An HTTP API route's
                // ARN may name its route key instead (`$default` names no method or path): a
                // cached allow of it would serve every request of the route.
                if event.kind == EventKind::HttpApiV1
                    && !names_request(&event.arn[prefix.len()..], &event.presented.target)
                {
                    FAULTS.report(
                        "cache-safe answers refuse HTTP API payload 1.0 requests whose route ARN \
                         does not name their method and path",
                        &"use payload format 2.0, with the route and path in the identity \
                          sources (as the templates do)",
                    );
                    refuse_allow(
                        decided,
                        "the route ARN does not name the request's method and path, so a cached \
                         allow could serve another request",
                    );
                    return None;
                }
                match decided.code {
                    Code::Inactive | Code::IpDenied | Code::RateLimited => Some(Answer::deny_all(
                        prefix,
                        &key,
                        decided.code,
                        decided.retry_after_secs,
                    )),
                    Code::Valid | Code::PermissionDenied | Code::WorkspaceDenied => {
                        // Only the route told these apart: the key itself passed every check.
                        let policy = self.verifier.policy()?;
                        let source_ip = event.presented.source_ip;
                        let answer = self.worked.get_or(prefix, &key, || {
                            cache_safe::grants(policy, &key, source_ip, Utc::now())
                                .map(|statements| Answer::cached(prefix, &statements, &key))
                                .map_err(|e| e.to_string())
                                .and_then(|a| match a.size() {
                                    size if size <= MAX_POLICY_BYTES => Ok(a),
                                    size => Err(format!("the policy would take {size} bytes")),
                                })
                        });
                        match answer {
                            Ok(a) => Some(a),
                            Err(why) => {
                                // Answered for this request's ARN only: under a cache, the
                                // key's other routes may be refused until the TTL ends.
                                FAULTS.report(
                                    "a key's rights cannot be answered cache-safely",
                                    &format!("{}: {why}", key.id),
                                );
                                decided.steps.push(format!("cache-safe answer: not possible ({why}); answering this request's ARN only"));
                                None
                            }
                        }
                    }
                    _ => None,
                }
            }
            EventKind::HttpApi if decided.code == Code::Valid => {
                let Target::Route { path, .. } = &event.presented.target else {
                    return None;
                };
                let sources = &event.identity_source;
                let has = |v: &str| sources.iter().any(|s| s == v);
                let route = event.route_key.as_deref().is_some_and(has);
                let path = sources
                    .iter()
                    .any(|s| s.starts_with('/') && s.ends_with(&**path));
                let address = key.allowed_cidrs.is_empty()
                    || event
                        .presented
                        .source_ip
                        .is_some_and(|ip| has(&ip.to_string()));
                if route && path && address {
                    return None;
                }
                FAULTS.report(
                    "cache-safe answers refuse HTTP API requests whose identity sources miss \
                     their route, path or address",
                    &"add $context.routeKey and $context.path (and $context.identity.sourceIp \
                      for keys limited to some addresses) to the authorizer's identity sources",
                );
                refuse_allow(
                    decided,
                    "the identity sources miss the route, the path or the address, so a cached \
                     allow could serve another request",
                );
                None
            }
            _ => None,
        }
    }
}

/// Turns an allow into a denial, and says why in the decision's steps: a cached allow would
/// admit more than was decided.
fn refuse_allow(decided: &mut Decided, why: &str) {
    if decided.code == Code::Valid {
        decided.code = Code::PermissionDenied;
        decided
            .steps
            .push(format!("cache-safe answer: {why}: denied"));
    }
}

/// Whether `arn_rest` (an ARN after its stage) is `<METHOD>/<path>` of the request decided.
fn names_request(arn_rest: &str, target: &Target<'_>) -> bool {
    let Target::Route { method, path, .. } = target else {
        return false;
    };
    arn_rest
        .strip_prefix(&**method)
        .is_some_and(|rest| rest == path)
}
