//! Verifying a presented token: parse (no I/O on a bad shape), hash, one store read, decide.
//!
//! Used by `POST /v1/verify` and to authenticate every management call. The authorizer's
//! cache and rate limits build on [`App::verify`].

use std::net::IpAddr;

use keyward_core::decision::{AccessRequest, Code, decide};
use keyward_core::key::ApiKey;
use keyward_core::permission::{Action, ResourcePattern, is_name};
use keyward_core::token::Token;
use keyward_core::validation::{FieldError, ValidationErrors};
use serde::Deserialize;

use crate::app::{Actor, App};
use crate::error::ServiceError;

/// The outcome of a verification, with the key when one was found.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub code: Code,
    pub key: Option<ApiKey>,
}

/// The body of `POST /v1/verify`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The token to verify. Missing counts as unknown (401), like a missing header.
    pub key: Option<String>,
    pub action: Option<String>,
    pub resource: Option<String>,
    pub workspace: Option<String>,
    pub source_ip: Option<String>,
}

impl VerifyRequest {
    /// Checks the request's own fields and turns them into what the decision needs.
    pub fn access(&self) -> Result<AccessRequest, ValidationErrors> {
        let mut errors = Vec::new();
        let action = match self.action.as_deref().map(str::parse::<Action>) {
            Some(Ok(a)) => Some(a),
            Some(Err(e)) => {
                errors.push(FieldError::new("action", e.to_string()));
                None
            }
            None => None,
        };
        let resource = self.resource.clone().unwrap_or_default();
        let concrete = resource.split('/').filter(|s| !s.is_empty()).all(is_name);
        if !concrete || ResourcePattern::parse(&resource).is_err() {
            errors.push(FieldError::new(
                "resource",
                "a resource is a '/'-separated path of names, such as agents/ag_1",
            ));
        }
        if self.resource.is_some() && action.is_none() && self.action.is_none() {
            errors.push(FieldError::new(
                "action",
                "give an action to check the resource against",
            ));
        }
        if let Some(ws) = &self.workspace
            && !is_name(ws)
        {
            errors.push(FieldError::new("workspace", "not a workspace id"));
        }
        let source_ip = match self.source_ip.as_deref().map(str::parse::<IpAddr>) {
            Some(Ok(ip)) => Some(ip),
            Some(Err(_)) => {
                errors.push(FieldError::new("source_ip", "not an IPv4 or IPv6 address"));
                None
            }
            None => None,
        };
        if !errors.is_empty() {
            return Err(ValidationErrors(errors));
        }
        Ok(AccessRequest {
            permission: action.map(|a| (a, resource)),
            workspace: self.workspace.clone(),
            source_ip,
        })
    }
}

impl App {
    /// The key `presented` belongs to, if it is well formed, ours, and stored (always read
    /// from the store: management calls must see revocations at once).
    async fn resolve(&self, presented: &str) -> Result<Option<ApiKey>, ServiceError> {
        let Ok(token) = Token::parse_for(presented, &self.settings.prefix) else {
            return Ok(None);
        };
        Ok(self
            .store
            .find_key_by_hash(&self.pepper.hash(&token))
            .await?)
    }

    /// Decides `request` for the key `presented` resolves to, through the engine (cached
    /// within the revocation bound, usage counted).
    pub async fn verify(
        &self,
        presented: Option<&str>,
        request: &AccessRequest,
    ) -> Result<Verdict, ServiceError> {
        let decision = self.engine.verify(presented, request).await?;
        let now = self.now();
        Ok(Verdict {
            code: decision.code,
            key: decision.key.map(|k| (*k).clone().as_of(now)),
        })
    }

    /// Admits a management call: the key must hold `admin` on `keys/**` and pass every rule
    /// (status, expiry, source address).
    pub async fn authenticate_admin(
        &self,
        presented: Option<&str>,
        source_ip: Option<IpAddr>,
    ) -> Result<Actor, ServiceError> {
        let Some(presented) = presented else {
            return Err(ServiceError::Unauthenticated(
                "an admin API key is required: send it as X-API-Key or Authorization: Bearer",
            ));
        };
        let request = AccessRequest {
            permission: Some((Action::Admin, "keys".to_owned())),
            workspace: None,
            source_ip,
        };
        let key = self.resolve(presented).await?;
        let code = decide(key.as_ref(), &request, self.now());
        match (code, key) {
            (Code::Valid, Some(key)) => Ok(Actor {
                account: key.account,
                id: key.id,
                source_ip,
            }),
            (code, _) if code.http_status() == 401 => Err(ServiceError::Unauthenticated(
                "the API key is not valid (unknown, revoked, expired or malformed)",
            )),
            (Code::PermissionDenied, _) => Err(ServiceError::Forbidden(
                "this API key may not manage keys: it needs admin on keys/**",
            )),
            (Code::IpDenied, _) => Err(ServiceError::Forbidden(
                "this API key may not be used from this address",
            )),
            _ => Err(ServiceError::Forbidden("this API key is not active")),
        }
    }
}
