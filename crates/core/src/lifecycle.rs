//! What may happen to an existing key, and who may do it. Each rule is here once; the service
//! asks before it writes.
//!
//! - **Revoked is final.** A revoked key refuses every change but the ones that only tidy up
//!   (revoking again, leaving a group, deleting).
//! - **No lock-out.** A key cannot revoke, delete, deactivate or regenerate itself, nor change
//!   its own scopes, ranges or expiry: its holder would lose the access needed to undo it.
//! - **Caps.** A key is in at most [`MAX_WORKSPACES`] workspaces and [`MAX_GROUPS`] groups.
//! - **Grace.** A regeneration may keep the old secret verifying for up to
//!   [`MAX_GRACE_SECONDS`], never past the key's expiry; at most two secrets are live, so
//!   regenerating during a grace ends the older one at once. A revoked or expired key cannot be
//!   regenerated.

use chrono::{DateTime, Duration, Utc};

use crate::edit::UpdateKeyRequest;
use crate::key::{ApiKey, KeyStatus, MAX_GROUPS, MAX_WORKSPACES, PreviousSecret};
use crate::managed::{MAX_GENERATION, Manager};
use crate::token::Token;
use crate::validation::{FieldError, ValidationErrors};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A change to an existing key.
#[derive(Debug, Clone, Copy)]
pub enum KeyOp<'a> {
    Update(&'a UpdateKeyRequest),
    Revoke,
    Regenerate,
    Delete,
    AddWorkspace,
    RemoveWorkspace,
    JoinGroup,
    LeaveGroup,
    /// The sweep: a grace period ended (the old secret is forgotten).
    EndGrace,
    /// The sweep: a key past its expiry is marked expired.
    MarkExpired,
    /// The sweep: the key's owners were warned that it expires soon.
    WarnExpiry,
}

/// Why a change may not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the key is revoked; a revoked key cannot be changed")]
    Final,
    #[error("a key cannot {0}; use another admin key")]
    LockOut(&'static str),
    #[error("the key has expired; an expired key cannot be regenerated (extend its expiry first)")]
    Expired,
}

impl KeyOp<'_> {
    /// The audit entry's action.
    pub const fn audit_action(self) -> &'static str {
        match self {
            Self::Update(_) => "key.updated",
            Self::Revoke => "key.revoked",
            Self::Regenerate => "key.regenerated",
            Self::Delete => "key.deleted",
            Self::AddWorkspace => "key.workspace_added",
            Self::RemoveWorkspace => "key.workspace_removed",
            Self::JoinGroup => "key.group_added",
            Self::LeaveGroup => "key.group_removed",
            Self::EndGrace => "key.grace_ended",
            Self::MarkExpired => "key.expired",
            Self::WarnExpiry => "key.expiry_warned",
        }
    }

    /// Whether the change is housekeeping (nobody's edit): a key in step with its manager
    /// stays in step through it.
    pub const fn is_housekeeping(self) -> bool {
        matches!(self, Self::EndGrace | Self::MarkExpired | Self::WarnExpiry)
    }

    /// What this change would do to the acting key itself that could lock its holder out.
    const fn lock_out(self) -> Option<&'static str> {
        match self {
            Self::Update(request) if request.could_lock_out() => {
                Some("change its own status, scopes, allowed ranges or expiry")
            }
            Self::Revoke => Some("revoke itself"),
            Self::Regenerate => Some("regenerate itself"),
            Self::Delete => Some("delete itself"),
            _ => None,
        }
    }

    /// Refuses a change the key `acting` would make to the key `target` that could lock its
    /// holder out.
    pub fn check_actor(self, acting: &str, target: &str) -> Result<(), Refusal> {
        match self.lock_out() {
            Some(what) if acting == target => Err(Refusal::LockOut(what)),
            _ => Ok(()),
        }
    }

    /// Refuses a change that the key's current state does not allow (revoked is final).
    pub fn check_state(self, current: &ApiKey) -> Result<(), Refusal> {
        let tidies_up = matches!(
            self,
            Self::Revoke | Self::LeaveGroup | Self::Delete | Self::EndGrace
        );
        if current.is_final() && !tidies_up {
            Err(Refusal::Final)
        } else {
            Ok(())
        }
    }
}

/// The key revoked, or `None` when it already is.
pub fn revoke(key: &ApiKey) -> Option<ApiKey> {
    (!key.is_final()).then(|| ApiKey {
        status: KeyStatus::Revoked,
        ..key.clone()
    })
}

/// The longest grace period of a regeneration: 7 days.
pub const MAX_GRACE_SECONDS: i64 = 7 * 24 * 3600;

/// The body of `POST /v1/keys/{id}/regenerate` (optional: no body is no grace).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegenerateRequest {
    /// How long the old secret keeps verifying, in seconds: 0 (the default) stops it at once;
    /// at most 7 days, and never past the key's expiry. Regenerating again during a grace ends
    /// the older secret at once.
    #[serde(default, deserialize_with = "crate::key::whole_number")]
    #[schemars(
        with = "Option<i64>",
        range(min = 0, max = MAX_GRACE_SECONDS),
        extend("default" = 0)
    )]
    pub grace_period_seconds: Option<i64>,
    /// The generation of the new secret: higher than the key's (a spec raised it); absent: the
    /// next.
    #[serde(default, deserialize_with = "crate::key::whole_number")]
    #[schemars(with = "Option<i64>", range(min = 1, max = MAX_GENERATION))]
    pub generation: Option<i64>,
    /// An apply by the tool that manages the key: the key is in step with it afterwards.
    pub managed_by: Option<Manager>,
}

/// A grace period as a request gives it (seconds, 0 to [`MAX_GRACE_SECONDS`]; absent: 0).
pub fn grace_period(seconds: Option<i64>) -> Result<Duration, FieldError> {
    match seconds.unwrap_or(0) {
        s @ 0..=MAX_GRACE_SECONDS => Ok(Duration::seconds(s)),
        _ => Err(FieldError::new(
            "grace_period_seconds",
            format!("from 0 to {MAX_GRACE_SECONDS} (7 days)"),
        )),
    }
}

/// The key with `token` as its secret. With a grace, the secret it had keeps verifying until
/// `now + grace`, clipped to the key's expiry; the one before (a grace still running) ends now.
/// A revoked or expired key is refused.
pub fn regenerate(
    key: &ApiKey,
    token: &Token,
    grace: Duration,
    generation: u64,
    now: DateTime<Utc>,
) -> Result<ApiKey, Refusal> {
    match key.status_at(now) {
        KeyStatus::Revoked => return Err(Refusal::Final),
        KeyStatus::Expired => return Err(Refusal::Expired),
        KeyStatus::Active | KeyStatus::Inactive => {}
    }
    let until = key
        .expires_at
        .map_or(now + grace, |expiry| expiry.min(now + grace));
    Ok(ApiKey {
        start: token.start(),
        last4: token.last4(),
        previous_secret: (until > now).then(|| PreviousSecret {
            start: key.start.clone(),
            last4: key.last4.clone(),
            expires_at: until,
        }),
        generation,
        ..key.clone()
    })
}

/// The key marked expired, if it is active, past its expiry and not marked yet. An inactive key
/// stays inactive (extending its expiry must not make it active), as a revoked one stays
/// revoked: both are refused at verification anyway.
pub fn mark_expired(key: &ApiKey, now: DateTime<Utc>) -> Option<ApiKey> {
    let unmarked = key.status == KeyStatus::Active;
    (unmarked && key.status_at(now) == KeyStatus::Expired).then(|| ApiKey {
        status: KeyStatus::Expired,
        ..key.clone()
    })
}

/// The expiry to warn the key's owners of, if the key expires within `window` of `now` and
/// they were not warned of this expiry yet (once per key and expiry: a new expiry warns again).
pub fn expiry_to_warn(key: &ApiKey, now: DateTime<Utc>, window: Duration) -> Option<DateTime<Utc>> {
    let expires_at = key.expires_at?;
    let live = matches!(key.status_at(now), KeyStatus::Active | KeyStatus::Inactive);
    (live && expires_at <= now + window && key.expiry_warned_for != Some(expires_at))
        .then_some(expires_at)
}

/// The key associated with `workspace`, or `None` when it already is.
pub fn add_workspace(key: &ApiKey, workspace: &str) -> Result<Option<ApiKey>, ValidationErrors> {
    add_member(
        key,
        |k| &mut k.workspaces,
        workspace,
        MAX_WORKSPACES,
        (
            "workspace",
            "a key may be associated with at most {} workspaces",
        ),
    )
}

/// The key without `workspace`, or `None` when it had none such.
pub fn remove_workspace(key: &ApiKey, workspace: &str) -> Option<ApiKey> {
    remove_member(key, |k| &mut k.workspaces, workspace)
}

/// The key in `group`, or `None` when it already is.
pub fn join_group(key: &ApiKey, group: &str) -> Result<Option<ApiKey>, ValidationErrors> {
    add_member(
        key,
        |k| &mut k.groups,
        group,
        MAX_GROUPS,
        ("group", "a key may be in at most {} groups"),
    )
}

/// The key out of `group`, or `None` when it was not in it.
pub fn leave_group(key: &ApiKey, group: &str) -> Option<ApiKey> {
    remove_member(key, |k| &mut k.groups, group)
}

fn add_member(
    key: &ApiKey,
    list: fn(&mut ApiKey) -> &mut Vec<String>,
    id: &str,
    cap: usize,
    (field, message): (&str, &str),
) -> Result<Option<ApiKey>, ValidationErrors> {
    let mut next = key.clone();
    let members = list(&mut next);
    if members.iter().any(|m| m == id) {
        return Ok(None);
    }
    if members.len() >= cap {
        return Err(ValidationErrors::one(
            field,
            message.replace("{}", &cap.to_string()),
        ));
    }
    members.push(id.to_owned());
    Ok(Some(next))
}

fn remove_member(
    key: &ApiKey,
    list: fn(&mut ApiKey) -> &mut Vec<String>,
    id: &str,
) -> Option<ApiKey> {
    let mut next = key.clone();
    let members = list(&mut next);
    let before = members.len();
    members.retain(|m| m != id);
    (members.len() != before).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::test_key;
    use crate::token::{Prefix, Token};
    use chrono::Utc;

    fn key() -> ApiKey {
        test_key(serde_json::json!({"name": "k", "scopes": ["read"]}))
    }

    #[test]
    fn revoked_is_final_except_for_tidying_up() {
        let revoked = revoke(&key()).unwrap();
        assert_eq!(revoke(&revoked), None, "revoking twice changes nothing");
        let edit = UpdateKeyRequest::default();
        for op in [
            KeyOp::Update(&edit),
            KeyOp::Regenerate,
            KeyOp::AddWorkspace,
            KeyOp::RemoveWorkspace,
            KeyOp::JoinGroup,
        ] {
            assert_eq!(op.check_state(&revoked), Err(Refusal::Final), "{op:?}");
            assert_eq!(op.check_state(&key()), Ok(()));
        }
        for op in [KeyOp::Revoke, KeyOp::LeaveGroup, KeyOp::Delete] {
            assert_eq!(op.check_state(&revoked), Ok(()), "{op:?}");
        }
    }

    #[test]
    fn a_key_cannot_lock_itself_out() {
        let harmless = UpdateKeyRequest {
            description: Some("d".into()),
            ..UpdateKeyRequest::default()
        };
        let deactivate = UpdateKeyRequest {
            active: Some(false),
            ..UpdateKeyRequest::default()
        };
        assert_eq!(KeyOp::Update(&harmless).check_actor("k1", "k1"), Ok(()));
        for op in [
            KeyOp::Update(&deactivate),
            KeyOp::Revoke,
            KeyOp::Regenerate,
            KeyOp::Delete,
        ] {
            assert!(
                matches!(op.check_actor("k1", "k1"), Err(Refusal::LockOut(_))),
                "{op:?}"
            );
            assert_eq!(op.check_actor("k1", "k2"), Ok(()), "another key may");
        }
        assert_eq!(
            KeyOp::Revoke.check_actor("k", "k").unwrap_err().to_string(),
            "a key cannot revoke itself; use another admin key"
        );
    }

    #[test]
    fn a_grace_keeps_one_previous_secret_never_past_expiry() {
        let now = Utc::now();
        let k = key();
        let t1 = Token::generate(&Prefix::live()).unwrap();
        let none = regenerate(&k, &t1, Duration::zero(), 2, now).unwrap();
        assert_eq!(
            (none.start.clone(), none.previous_secret.clone()),
            (t1.start(), None)
        );

        let graced = regenerate(&k, &t1, Duration::hours(1), 2, now).unwrap();
        let previous = graced.previous_secret.clone().unwrap();
        assert_eq!(
            (previous.start.as_str(), previous.last4.as_str()),
            (k.start.as_str(), k.last4.as_str())
        );
        assert_eq!(previous.expires_at, now + Duration::hours(1));

        // Again during the grace: the older secret ends now; the one just replaced is in grace.
        let t2 = Token::generate(&Prefix::live()).unwrap();
        let again = regenerate(&graced, &t2, Duration::hours(1), 3, now).unwrap();
        assert_eq!(again.previous_secret.unwrap().start, t1.start());

        // Clipped to the key's expiry; nothing left when the expiry is now.
        let expiring = ApiKey {
            expires_at: Some(now + Duration::minutes(5)),
            ..k.clone()
        };
        let clipped = regenerate(&expiring, &t1, Duration::hours(1), 2, now).unwrap();
        assert_eq!(
            clipped.previous_secret.unwrap().expires_at,
            now + Duration::minutes(5)
        );

        let expired = ApiKey {
            expires_at: Some(now - Duration::seconds(1)),
            ..k.clone()
        };
        assert_eq!(
            regenerate(&expired, &t1, Duration::hours(1), 2, now),
            Err(Refusal::Expired)
        );
        let revoked = revoke(&k).unwrap();
        assert_eq!(
            regenerate(&revoked, &t1, Duration::zero(), 2, now),
            Err(Refusal::Final)
        );

        assert_eq!(grace_period(None).unwrap(), Duration::zero());
        // JSON Schema's `integer` counts 60.0 as an integer: so does the request.
        let whole: RegenerateRequest =
            serde_json::from_str(r#"{"grace_period_seconds": 60.0}"#).unwrap();
        assert_eq!(whole.grace_period_seconds, Some(60));
        assert!(
            serde_json::from_str::<RegenerateRequest>(r#"{"grace_period_seconds": 1.5}"#).is_err()
        );
        assert_eq!(
            grace_period(Some(MAX_GRACE_SECONDS)).unwrap(),
            Duration::days(7)
        );
        for bad in [-1, MAX_GRACE_SECONDS + 1] {
            assert_eq!(
                grace_period(Some(bad)).unwrap_err().field,
                "grace_period_seconds"
            );
        }
        // A record read after its grace shows no previous secret.
        let later = graced.as_of(now + Duration::hours(2));
        assert_eq!(later.previous_secret, None);
    }

    #[test]
    fn the_sweep_marks_expiry_once_and_warns_once_per_expiry() {
        let now = Utc::now();
        let window = Duration::days(7);
        let soon = ApiKey {
            expires_at: Some(now + Duration::days(2)),
            ..key()
        };
        assert_eq!(mark_expired(&soon, now), None, "not yet");
        let due = expiry_to_warn(&soon, now, window).unwrap();
        let warned = ApiKey {
            expiry_warned_for: Some(due),
            ..soon.clone()
        };
        assert_eq!(expiry_to_warn(&warned, now, window), None, "once");
        let extended = ApiKey {
            expires_at: Some(now + Duration::days(3)),
            ..warned.clone()
        };
        assert!(
            expiry_to_warn(&extended, now, window).is_some(),
            "a new expiry warns again"
        );
        let far = ApiKey {
            expires_at: Some(now + Duration::days(30)),
            ..key()
        };
        assert_eq!(expiry_to_warn(&far, now, window), None);
        assert_eq!(expiry_to_warn(&key(), now, window), None, "no expiry");

        let past = ApiKey {
            expires_at: Some(now - Duration::seconds(1)),
            ..key()
        };
        let marked = mark_expired(&past, now).unwrap();
        assert_eq!(marked.status, KeyStatus::Expired);
        assert_eq!(mark_expired(&marked, now), None, "once");
        assert_eq!(expiry_to_warn(&past, now, window), None, "too late to warn");
        assert_eq!(
            mark_expired(&revoke(&past).unwrap(), now),
            None,
            "revoked stays revoked"
        );
        assert_eq!(KeyOp::EndGrace.check_state(&revoke(&past).unwrap()), Ok(()));
    }

    #[test]
    fn memberships_are_idempotent_and_capped() {
        let k = key();
        let one = add_workspace(&k, "ws_1").unwrap().unwrap();
        assert_eq!(one.workspaces, ["ws_1"]);
        assert_eq!(add_workspace(&one, "ws_1").unwrap(), None);
        assert_eq!(
            remove_workspace(&one, "ws_1").unwrap().workspaces,
            Vec::<String>::new()
        );
        assert_eq!(remove_workspace(&k, "ws_1"), None);
        let mut full = k.clone();
        full.workspaces = (0..MAX_WORKSPACES).map(|i| format!("ws_{i}")).collect();
        let e = add_workspace(&full, "one_more").unwrap_err();
        assert_eq!(e.0[0].field, "workspace");
        assert_eq!(
            e.0[0].message,
            format!("a key may be associated with at most {MAX_WORKSPACES} workspaces")
        );
        full.groups = (0..MAX_GROUPS).map(|i| format!("g_{i}")).collect();
        let e = join_group(&full, "g_x").unwrap_err();
        assert_eq!(
            e.0[0].message,
            format!("a key may be in at most {MAX_GROUPS} groups")
        );
        assert_eq!(
            leave_group(&full, "g_1").unwrap().groups.len(),
            MAX_GROUPS - 1
        );
    }
}
