//! Verification: the one decision function every verifying edge calls (the authorizer,
//! `POST /v1/verify`, the local gateway, `keyward authorize`), and what it stands on.
//!
//! # Layout
//!
//! - this module: [`Presented`] (a request as any edge presents it), [`Verifier::decide`] (the
//!   decision, with its explanation when asked) and [`Decided`].
//! - [`engine`]: resolves a token to its key through a cache kept correct by the change feed.
//! - `key_state`: what the engine keeps per key (budgets, uses to write), in one entry.
//! - `limiter`: the rate limit: budgets per key and UTC minute, spent from leased blocks.
//! - `usage`: the usage buffer, counted after each decision by outcome and flushed as records.
//! - [`request`]: a `POST /v1/verify` body checked and turned into a [`Presented`] request.
//!
//! # One order, counted once
//!
//! [`Verifier::decide`] asks the route policy what the request needs (a request no route
//! matches needs what no key has), resolves the key (at most one store read), applies the
//! core's decision table, spends the key's rate limit only when everything else allows the
//! request, and only then counts the verification, by its outcome: a request the policy, a
//! permission or the limit refuses is never counted as a valid use, and never spends budget.

pub mod engine;
mod key_state;
mod limiter;
pub mod request;
mod usage;

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use keyward_core::credential::KeySource;
use keyward_core::decision::{AccessRequest, Code, Needs, decide};
use keyward_core::key::{ApiKey, secret_live};
use keyward_core::rate::Purpose;
use keyward_core::route::{RoutePolicy, RouteRequest};

use crate::error::{STORE_RETRY_AFTER_SECS, ServiceError};
pub use engine::{Engine, EngineConfig, EngineStats, Resolved};
use key_state::KeyState;
pub use limiter::Spend;

/// A request as an edge presents it for verification. Its text borrows from what the edge
/// received where it can (the authorizer's event bytes, the gateway's request): on the hot path
/// nothing is copied that the decision does not keep.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Presented<'a> {
    /// The token, as presented (not yet parsed).
    pub token: Option<Cow<'a, str>>,
    /// Where the token came from, for explanations.
    pub source: KeySource,
    /// The caller's address, when the edge knows it.
    pub source_ip: Option<IpAddr>,
    pub target: Target<'a>,
}

/// Name-value pairs (headers, query parameters) as they came.
pub type Pairs<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// What the request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target<'a> {
    /// A request to a protected API; the route policy says what it needs.
    Route {
        method: Cow<'a, str>,
        path: Cow<'a, str>,
        headers: Pairs<'a>,
        query: Pairs<'a>,
    },
    /// What the caller states it needs (`POST /v1/verify`).
    Stated {
        needs: Needs,
        workspace: Option<String>,
    },
}

impl Default for Target<'_> {
    fn default() -> Self {
        Self::Stated {
            needs: Needs::KeyOnly,
            workspace: None,
        }
    }
}

/// Whether a decision is live or explained (the hot path formats nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Explain {
    /// A live decision: spends rate-limit budget and counts the use.
    No,
    /// A dry run that writes down every step: it spends no budget and counts no use (it
    /// reports the budget left instead), so explaining a request changes nothing.
    Steps,
}

/// A decision: the outcome, the key it was about (when one was found), and how it was reached.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    pub code: Code,
    pub key: Option<Arc<ApiKey>>,
    /// Whether the key came from the cache (no store read).
    pub cached: bool,
    /// How long the caller should wait before retrying, in whole seconds: to the next minute
    /// when rate limited, the store's delay when unavailable.
    pub retry_after_secs: Option<u32>,
    /// Every step, when asked for with [`Explain::Steps`].
    pub steps: Vec<String>,
}

/// Explanation steps, written only when asked for.
struct Steps(Option<Vec<String>>);

impl Steps {
    fn add(&mut self, step: impl FnOnce() -> String) {
        if let Some(steps) = &mut self.0 {
            steps.push(step());
        }
    }
}

/// The engine's maps (the cache on every verification, the keys' state on a miss), keyed by a
/// key's lookup hash (an HMAC under the pepper) or its id (made by the server), neither of
/// which a caller can choose: a fast hasher with a per-process seed does, where SipHash cost
/// about 25 ns a lookup.
type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Locks, recovering the data if a panicking thread poisoned it (the maps stay consistent:
/// every critical section is a single insert, remove or swap).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// An instant (or none yet) read on every verification, so held in an atomic rather than
/// behind a lock: nanoseconds since the holder was made, plus one (zero: none). A store is a
/// Release and a load an Acquire, so what was done before a store is seen after its load.
#[derive(Debug)]
struct AtomicInstant {
    origin: Instant,
    nanos: AtomicU64,
}

impl AtomicInstant {
    fn none() -> Self {
        Self {
            origin: Instant::now(),
            nanos: AtomicU64::new(0),
        }
    }

    fn now() -> Self {
        let held = Self::none();
        held.store(held.origin);
        held
    }

    fn load(&self) -> Option<Instant> {
        match self.nanos.load(Ordering::Acquire) {
            0 => None,
            n => Some(self.origin + Duration::from_nanos(n - 1)),
        }
    }

    fn store(&self, at: Instant) {
        let since = at.saturating_duration_since(self.origin).as_nanos();
        let n = u64::try_from(since).map_or(u64::MAX, |n| n.saturating_add(1));
        self.nanos.store(n, Ordering::Release);
    }
}

/// An engine and, for edges in front of an API, its route policy. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Verifier {
    engine: Engine,
    policy: Option<Arc<RoutePolicy>>,
}

impl Verifier {
    /// A verifier for `engine`; without a policy, a [`Target::Route`] checks only the key.
    pub fn new(engine: Engine, policy: Option<RoutePolicy>) -> Self {
        Self {
            engine,
            policy: policy.map(Arc::new),
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The route policy requests to a protected API are decided by.
    pub fn policy(&self) -> Option<&RoutePolicy> {
        self.policy.as_deref()
    }

    /// Decides `p` in the order of the outcome table: token, key, status and expiry, address,
    /// workspace, permission (a route outside the policy is denied); then counts it, once, by
    /// its outcome. With [`Explain::Steps`], every step is written down.
    pub async fn decide(
        &self,
        p: &Presented<'_>,
        explain: Explain,
    ) -> Result<Decided, ServiceError> {
        let mut steps = Steps((explain == Explain::Steps).then(Vec::new));
        steps.add(|| {
            let address = p
                .source_ip
                .map_or("an unknown address".into(), |ip| ip.to_string());
            match &p.target {
                Target::Route { method, path, .. } => {
                    format!("request: {method} {path} from {address}")
                }
                Target::Stated { .. } => format!("request: as stated, from {address}"),
            }
        });
        steps.add(|| {
            format!(
                "token: {}",
                if p.token.is_some() {
                    p.source.describe()
                } else {
                    "none presented"
                }
            )
        });
        let access = self.requirement(p, &mut steps);
        let resolved = match self.engine.resolve(p.token.as_deref()).await {
            Ok(resolved) => resolved,
            Err(ServiceError::Unavailable { .. }) => {
                // Fail closed: nothing usable is cached and the store cannot say.
                steps.add(|| "key: the store is unavailable and nothing usable is cached".into());
                steps.add(|| "decision: UNAVAILABLE (HTTP 503)".into());
                return Ok(Decided {
                    code: Code::Unavailable,
                    key: None,
                    cached: false,
                    retry_after_secs: Some(STORE_RETRY_AFTER_SECS),
                    steps: steps.0.unwrap_or_default(),
                });
            }
            Err(e) => return Err(e),
        };
        let now = Utc::now();
        // A previous secret verifies only within its grace, cached or not.
        let ended = resolved
            .grace_until
            .filter(|&until| !secret_live(Some(until), now));
        let resolved = Resolved {
            key: resolved.key.filter(|_| ended.is_none()),
            ..resolved
        };
        if let Some(until) = ended {
            steps
                .add(|| format!("token: an earlier secret of a key, whose grace ended at {until}"));
        } else if let Some(until) = resolved.grace_until {
            steps.add(|| format!("token: the key's previous secret, verifying until {until}"));
        }
        let mut code = decide(resolved.key.as_deref(), &access, now);
        steps.add(|| match &resolved.key {
            Some(k) => format!(
                "key: {} ({}), {}",
                k.id,
                k.name,
                match (resolved.cached, resolved.stale) {
                    (true, false) => "from the cache",
                    (true, true) => "from the cache past its bound (the store is unavailable)",
                    (false, _) => "read from the store",
                }
            ),
            None if p.token.is_some() => {
                "key: none matches (malformed, unknown or deleted)".to_owned()
            }
            None => "key: none presented".to_owned(),
        });
        let mut retry_after_secs = None;
        let counted = resolved.key.as_deref().zip(resolved.state.as_ref());
        if let (Code::Valid, Some((key, state))) = (code, counted) {
            (code, retry_after_secs) = self.limit(key, state, explain, now, &mut steps).await?;
        }
        if code == Code::Unavailable {
            retry_after_secs = Some(STORE_RETRY_AFTER_SECS);
        }
        steps.add(|| format!("decision: {} (HTTP {})", code.as_str(), code.http_status()));
        if let (Some((key, state)), Explain::No) = (counted, explain) {
            self.engine.count(state, key, code, p.source_ip, now).await;
        }
        Ok(Decided {
            code,
            key: resolved.key,
            cached: resolved.cached,
            retry_after_secs,
            steps: steps.0.unwrap_or_default(),
        })
    }

    /// The last step, for a request everything else allows: the key's rate limit. Live, one
    /// use is spent; explained, the budget left is read and nothing is spent.
    async fn limit(
        &self,
        key: &ApiKey,
        state: &KeyState,
        explain: Explain,
        now: DateTime<Utc>,
        steps: &mut Steps,
    ) -> Result<(Code, Option<u32>), ServiceError> {
        let limit = key.rate_limit_per_minute;
        let retry = keyward_core::rate::Window::retry_after_secs(now);
        if explain == Explain::Steps {
            return Ok(match self.engine.budget_left(key, now).await {
                Ok(0) => {
                    steps.add(|| format!("rate limit: {limit} a minute, none left this minute"));
                    (Code::RateLimited, Some(retry))
                }
                Ok(left) => {
                    steps.add(|| {
                        format!(
                            "rate limit: {limit} a minute, at most {left} left this minute (nothing spent)"
                        )
                    });
                    (Code::Valid, None)
                }
                Err(ServiceError::Unavailable { .. }) => {
                    // As live: no lease could be had, so the request would be refused.
                    steps.add(|| {
                        format!("rate limit: {limit} a minute; the store is unavailable, so no lease can be had")
                    });
                    (Code::Unavailable, Some(STORE_RETRY_AFTER_SECS))
                }
                Err(e) => return Err(e),
            });
        }
        Ok(
            match self
                .engine
                .spend_from(state, key, Purpose::Verify, limit, now)
                .await?
            {
                Spend::Granted => (Code::Valid, None),
                Spend::Limited { retry_after_secs } => (Code::RateLimited, Some(retry_after_secs)),
                Spend::Unavailable => (Code::Unavailable, Some(STORE_RETRY_AFTER_SECS)),
            },
        )
    }

    /// What the request needs from its key: stated by the caller, or found by the route policy.
    fn requirement(&self, p: &Presented<'_>, steps: &mut Steps) -> AccessRequest {
        let (method, path, headers, query) = match &p.target {
            Target::Stated { needs, workspace } => {
                return AccessRequest {
                    needs: needs.clone(),
                    workspace: workspace.clone(),
                    source_ip: p.source_ip,
                };
            }
            Target::Route {
                method,
                path,
                headers,
                query,
            } => (method, path, headers, query),
        };
        let key_only = AccessRequest {
            source_ip: p.source_ip,
            ..AccessRequest::default()
        };
        let Some(policy) = &self.policy else {
            steps.add(|| "route: no route policy given; only the key itself is checked".to_owned());
            return key_only;
        };
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (&**k, &**v)).collect();
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (&**k, &**v)).collect();
        let request = RouteRequest {
            method,
            path,
            headers: &headers,
            query: &query,
            source_ip: p.source_ip,
        };
        match policy.access(&request) {
            Ok((access, template)) => {
                if let Needs::Permission(action, resource) = &access.needs {
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
                access
            }
            Err(denied) => {
                steps.add(|| format!("route: {denied}"));
                AccessRequest {
                    needs: Needs::NoRoute,
                    ..key_only
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_atomic_instant_gives_back_what_was_stored() {
        let held = AtomicInstant::none();
        assert_eq!(held.load(), None);
        let at = Instant::now() + Duration::from_millis(5);
        held.store(at);
        assert_eq!(held.load(), Some(at));
        assert_eq!(
            AtomicInstant::now().load().map(|t| t <= Instant::now()),
            Some(true)
        );
    }
}
