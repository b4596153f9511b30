//! The authorization decision: given the key a token resolved to (or none) and what the request
//! needs, which outcome applies. One order, one table, for the authorizer, `POST /v1/verify`,
//! the local gateway and management calls alike.
//!
//! Order: token shape and checksum (the caller passes `None` when parsing failed), lookup,
//! status and expiry, source IP, workspace association, permission (a request no route of the
//! policy matches fails here). The rate limit, being stateful, is the service's last step.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::key::{ApiKey, KeyStatus};
use crate::permission::{Action, scopes_allow};

/// Every outcome, as the `code` field of `POST /v1/verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Code {
    Valid,
    NotFound,
    Expired,
    Revoked,
    Inactive,
    IpDenied,
    WorkspaceDenied,
    PermissionDenied,
    RateLimited,
    /// The store could not be reached and nothing usable was cached.
    Unavailable,
}

impl Code {
    /// The HTTP status of DESIGN.md's outcome table.
    pub const fn http_status(self) -> u16 {
        match self {
            Self::Valid => 200,
            Self::NotFound | Self::Expired | Self::Revoked => 401,
            Self::Inactive | Self::IpDenied | Self::WorkspaceDenied | Self::PermissionDenied => 403,
            Self::RateLimited => 429,
            Self::Unavailable => 503,
        }
    }

    pub const fn is_valid(self) -> bool {
        matches!(self, Self::Valid)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "VALID",
            Self::NotFound => "NOT_FOUND",
            Self::Expired => "EXPIRED",
            Self::Revoked => "REVOKED",
            Self::Inactive => "INACTIVE",
            Self::IpDenied => "IP_DENIED",
            Self::WorkspaceDenied => "WORKSPACE_DENIED",
            Self::PermissionDenied => "PERMISSION_DENIED",
            Self::RateLimited => "RATE_LIMITED",
            Self::Unavailable => "UNAVAILABLE",
        }
    }
}

/// The permission a request needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Needs {
    /// Only the key itself is checked (status, expiry, address).
    #[default]
    KeyOnly,
    /// An action on a concrete resource path (empty: the root).
    Permission(Action, String),
    /// Nothing can allow it: no route of the policy matches the request (denied by default).
    NoRoute,
}

/// What a request needs from its key. Absent parts are not checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessRequest {
    pub needs: Needs,
    /// The workspace the resource lives in.
    pub workspace: Option<String>,
    /// The caller's address, checked against the key's allowed ranges.
    pub source_ip: Option<IpAddr>,
}

/// Decides every step but the rate limit.
pub fn decide(key: Option<&ApiKey>, request: &AccessRequest, now: DateTime<Utc>) -> Code {
    let Some(key) = key else {
        return Code::NotFound;
    };
    match key.status_at(now) {
        KeyStatus::Revoked => return Code::Revoked,
        KeyStatus::Expired => return Code::Expired,
        KeyStatus::Inactive => return Code::Inactive,
        KeyStatus::Active => {}
    }
    // A key limited to some addresses needs the caller's address to be known: when it is not
    // (a TOKEN authorizer event, a verify call without `source_ip`), the key is refused.
    if !key.allowed_cidrs.is_empty()
        && request
            .source_ip
            .is_none_or(|ip| !key.allowed_cidrs.allows(ip))
    {
        return Code::IpDenied;
    }
    if let Some(ws) = &request.workspace
        && !key.workspaces.iter().any(|w| w == ws)
    {
        return Code::WorkspaceDenied;
    }
    match &request.needs {
        Needs::KeyOnly => Code::Valid,
        Needs::Permission(action, resource) if scopes_allow(&key.scopes, *action, resource) => {
            Code::Valid
        }
        Needs::Permission(..) | Needs::NoRoute => Code::PermissionDenied,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::test_key;
    use chrono::Duration;

    fn key() -> ApiKey {
        test_key(serde_json::json!({
            "name": "k",
            "scopes": ["agent:viewer"],
            "workspaces": ["ws_1"],
            "allowed_cidrs": ["10.0.0.0/8"],
            "expires_at": Utc::now() + Duration::hours(1),
        }))
    }

    fn req(action: Action, resource: &str, ws: &str, ip: &str) -> AccessRequest {
        AccessRequest {
            needs: Needs::Permission(action, resource.into()),
            workspace: Some(ws.into()),
            source_ip: Some(ip.parse().unwrap()),
        }
    }

    #[test]
    fn the_decision_table() {
        let now = Utc::now();
        let ok = req(Action::Read, "agents/a1", "ws_1", "10.1.1.1");
        let k = key();
        assert_eq!(decide(None, &ok, now), Code::NotFound);
        assert_eq!(decide(Some(&k), &ok, now), Code::Valid);
        assert_eq!(
            decide(Some(&k), &AccessRequest::default(), now),
            Code::IpDenied,
            "an unknown address fails a key limited to some"
        );
        assert_eq!(
            decide(
                Some(&k),
                &req(Action::Read, "agents/a1", "ws_1", "11.1.1.1"),
                now
            ),
            Code::IpDenied
        );
        assert_eq!(
            decide(
                Some(&k),
                &req(Action::Read, "agents/a1", "ws_2", "10.1.1.1"),
                now
            ),
            Code::WorkspaceDenied
        );
        assert_eq!(
            decide(
                Some(&k),
                &req(Action::Write, "agents/a1", "ws_1", "10.1.1.1"),
                now
            ),
            Code::PermissionDenied
        );
        assert_eq!(
            decide(
                Some(&k),
                &req(Action::Read, "projects/p", "ws_1", "10.1.1.1"),
                now
            ),
            Code::PermissionDenied
        );
        assert_eq!(
            decide(Some(&k), &ok, now + Duration::hours(2)),
            Code::Expired
        );
        let mut inactive = k.clone();
        inactive.status = KeyStatus::Inactive;
        assert_eq!(decide(Some(&inactive), &ok, now), Code::Inactive);
        let mut revoked = k.clone();
        revoked.status = KeyStatus::Revoked;
        assert_eq!(
            decide(Some(&revoked), &ok, now + Duration::hours(2)),
            Code::Revoked
        );
    }

    #[test]
    fn an_unknown_address_fails_a_key_limited_to_some() {
        let k = key();
        let nowhere = AccessRequest {
            source_ip: None,
            ..req(Action::Read, "agents/a1", "ws_1", "10.1.1.1")
        };
        assert_eq!(decide(Some(&k), &nowhere, Utc::now()), Code::IpDenied);
    }

    #[test]
    fn a_request_no_route_matches_is_denied_after_the_key_checks() {
        let k = key();
        let unrouted = AccessRequest {
            needs: Needs::NoRoute,
            ..req(Action::Read, "agents/a1", "ws_1", "10.1.1.1")
        };
        assert_eq!(
            decide(Some(&k), &unrouted, Utc::now()),
            Code::PermissionDenied
        );
        let elsewhere = AccessRequest {
            source_ip: Some("11.1.1.1".parse().unwrap()),
            ..unrouted.clone()
        };
        assert_eq!(decide(Some(&k), &elsewhere, Utc::now()), Code::IpDenied);
        assert_eq!(decide(None, &unrouted, Utc::now()), Code::NotFound);
    }

    #[test]
    fn status_checks_come_before_ip_and_permission() {
        let mut k = key();
        k.status = KeyStatus::Inactive;
        let bad_everything = req(Action::Write, "x", "nope", "1.1.1.1");
        assert_eq!(
            decide(Some(&k), &bad_everything, Utc::now()),
            Code::Inactive
        );
    }

    #[test]
    fn statuses_follow_the_outcome_table() {
        for (code, status) in [
            (Code::Valid, 200),
            (Code::NotFound, 401),
            (Code::Expired, 401),
            (Code::Revoked, 401),
            (Code::Inactive, 403),
            (Code::IpDenied, 403),
            (Code::WorkspaceDenied, 403),
            (Code::PermissionDenied, 403),
            (Code::RateLimited, 429),
            (Code::Unavailable, 503),
        ] {
            assert_eq!(code.http_status(), status);
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }
}
