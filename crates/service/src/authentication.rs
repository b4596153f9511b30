//! Authenticating a management call: the admin key is always read from the store (no cache),
//! so a revocation or deactivation stops management calls at once, and it is judged by the
//! core's decision table like any other key.

use std::net::IpAddr;

use keyward_core::decision::{AccessRequest, Code, Needs, decide};
use keyward_core::key::ApiKey;
use keyward_core::permission::Action;
use keyward_core::token::Token;

use crate::app::{Actor, App};
use crate::error::ServiceError;

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
            needs: Needs::Permission(Action::Admin, "keys".to_owned()),
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
