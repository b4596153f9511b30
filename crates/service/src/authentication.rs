//! Authenticating a caller by the key it presents in its headers: an admin key for management
//! calls, a verifier key for the details of `POST /v1/verify`. The key is always read from the
//! store (no cache), so a revocation or deactivation stops its calls at once, and it is judged
//! by the core's decision table like any other key. Each key's management calls are limited
//! per UTC minute by a deployment setting, from a budget of their own: an admin key's calls
//! never spend what it may use to call the APIs it protects.

use std::net::IpAddr;

use keyward_core::decision::{AccessRequest, Code, Needs, decide};
use keyward_core::key::ApiKey;
use keyward_core::permission::Action;
use keyward_core::rate::Purpose;
use keyward_core::session::{Session, Sessions};
use keyward_core::token::Token;

use crate::app::{Actor, App};
use crate::error::{STORE_RETRY_AFTER_SECS, ServiceError};
use crate::verification::Spend;

impl App {
    /// The key `presented` belongs to, if it is well formed, ours, and stored (always read
    /// from the store: management calls must see revocations at once).
    async fn resolve(&self, presented: &str) -> Result<Option<ApiKey>, ServiceError> {
        let Ok(token) = Token::parse_for(presented, &self.settings.prefix) else {
            return Ok(None);
        };
        let found = self
            .store
            .find_key_by_hash(&self.pepper.hash(&token))
            .await?;
        // A previous secret authenticates only within its grace.
        let now = self.now();
        Ok(found.filter(|m| m.secret_live_at(now)).map(|m| m.key))
    }

    /// Admits a management call: the key must hold `admin` on `keys/**` and pass every rule
    /// (status, expiry, source address).
    pub async fn authenticate_admin(
        &self,
        presented: Option<&str>,
        source_ip: Option<IpAddr>,
    ) -> Result<Actor, ServiceError> {
        self.authenticate(presented, source_ip, Caller::Admin).await
    }

    /// Admits a caller of `POST /v1/verify` that asks for the details of every answer: the key
    /// must hold `read` (or `admin`) on `keys/**` and pass every rule.
    pub async fn authenticate_verifier(
        &self,
        presented: Option<&str>,
        source_ip: Option<IpAddr>,
    ) -> Result<Actor, ServiceError> {
        self.authenticate(presented, source_ip, Caller::Verifier)
            .await
    }

    /// Admits a console request by its session (the cookie the console set at sign-in): the
    /// key it names is read from the store and judged as an admin call, and its current secret
    /// must be the one that signed in.
    pub async fn authenticate_session(
        &self,
        session: &Session,
        source_ip: Option<IpAddr>,
    ) -> Result<Actor, ServiceError> {
        let key = self
            .store
            .get_key(&session.account, &session.key_id)
            .await?
            .filter(|k| Session::fingerprint_of(&k.start, &k.last4) == session.fingerprint);
        let (actor, _) = self.judge(key, source_ip, Caller::Admin).await?;
        Ok(actor)
    }

    /// What signs the console's sessions: a key derived from this deployment's pepper.
    pub fn sessions(&self) -> Sessions {
        Sessions::new(&self.pepper)
    }

    /// The session an admin key starts by signing in to the console.
    pub async fn sign_in(
        &self,
        presented: Option<&str>,
        source_ip: Option<IpAddr>,
    ) -> Result<Session, ServiceError> {
        // The key admitted is the one the session is bound to: one read, not a second.
        let (actor, key) = self.admit(presented, source_ip, Caller::Admin).await?;
        let now = self.now();
        Ok(Session {
            account: actor.account,
            key_id: actor.id,
            issued_at: chrono::DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now),
            fingerprint: Session::fingerprint_of(&key.start, &key.last4),
        })
    }

    async fn authenticate(
        &self,
        presented: Option<&str>,
        source_ip: Option<IpAddr>,
        caller: Caller,
    ) -> Result<Actor, ServiceError> {
        let (actor, _) = self.admit(presented, source_ip, caller).await?;
        Ok(actor)
    }

    /// The key `presented` belongs to, admitted as `caller`, and who it acts as.
    async fn admit(
        &self,
        presented: Option<&str>,
        source_ip: Option<IpAddr>,
        caller: Caller,
    ) -> Result<(Actor, ApiKey), ServiceError> {
        let Some(presented) = presented else {
            return Err(ServiceError::Unauthenticated(caller.missing()));
        };
        let key = self.resolve(presented).await?;
        self.judge(key, source_ip, caller).await
    }

    /// Admits `key` as `caller` by the core's decision table, spending a management call.
    async fn judge(
        &self,
        key: Option<ApiKey>,
        source_ip: Option<IpAddr>,
        caller: Caller,
    ) -> Result<(Actor, ApiKey), ServiceError> {
        let now = self.now();
        let code = caller
            .actions()
            .iter()
            .map(|action| {
                let request = AccessRequest {
                    needs: Needs::Permission(*action, "keys".to_owned()),
                    workspace: None,
                    source_ip,
                };
                decide(key.as_ref(), &request, now)
            })
            .find(|code| *code != Code::PermissionDenied)
            .unwrap_or(Code::PermissionDenied);
        match (code, key) {
            (Code::Valid, Some(key)) => {
                self.spend_management_budget(&key, now).await?;
                let actor = Actor {
                    account: key.account.clone(),
                    id: key.id.clone(),
                    source_ip,
                };
                Ok((actor, key))
            }
            (code, _) if code.http_status() == 401 => Err(ServiceError::Unauthenticated(
                "the API key is not valid (unknown, revoked, expired or malformed)",
            )),
            (Code::PermissionDenied, _) => Err(ServiceError::Forbidden(caller.denied())),
            (Code::IpDenied, _) => Err(ServiceError::Forbidden(
                "this API key may not be used from this address",
            )),
            _ => Err(ServiceError::Forbidden("this API key is not active")),
        }
    }
}

impl App {
    /// Spends one management call of `key`, or refuses it: 429 past the limit, 503 when no
    /// lease can be had (never admitted on credit).
    async fn spend_management_budget(
        &self,
        key: &ApiKey,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), ServiceError> {
        let limit = self.settings.management_rate_limit;
        match self
            .engine()
            .spend(key, Purpose::Manage, limit, now)
            .await?
        {
            Spend::Granted => Ok(()),
            Spend::Limited { retry_after_secs } => {
                Err(ServiceError::RateLimited { retry_after_secs })
            }
            Spend::Unavailable => Err(ServiceError::Unavailable {
                retry_after_secs: STORE_RETRY_AFTER_SECS,
            }),
        }
    }
}

/// Who a key is presented as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    /// Manages keys: `admin` on `keys/**`.
    Admin,
    /// Sees the details of verifications: `read` or `admin` on `keys/**`.
    Verifier,
}

impl Caller {
    /// The actions on `keys/**` that admit this caller, any one of them.
    const fn actions(self) -> &'static [Action] {
        match self {
            Self::Admin => &[Action::Admin],
            Self::Verifier => &[Action::Read, Action::Admin],
        }
    }

    const fn missing(self) -> &'static str {
        match self {
            Self::Admin => {
                "an admin API key is required: send it as X-API-Key or Authorization: Bearer"
            }
            Self::Verifier => {
                "a verifier API key is required: send it as X-API-Key or Authorization: Bearer"
            }
        }
    }

    const fn denied(self) -> &'static str {
        match self {
            Self::Admin => "this API key may not manage keys: it needs admin on keys/**",
            Self::Verifier => {
                "this API key may not see verification details: it needs read on keys/**"
            }
        }
    }
}
