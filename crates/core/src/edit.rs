//! Editing a key: which fields a `PATCH` may change, their rules (the same validators as
//! create), and the warnings an edit that may break live callers must carry.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::cidr::{CidrList, CidrText, MAX_CIDRS};
use crate::id::IdText;
use crate::key::{
    ApiKey, KeyRules, KeyStatus, MAX_DESCRIPTION_LEN, MAX_GROUPS, MAX_SCOPES, MAX_WORKSPACES,
    NameText, RATE_LIMIT_MAX, RATE_LIMIT_MIN, SecretIdText, metadata_description,
    validate_description, validate_expiry, validate_ids, validate_metadata, validate_name,
    validate_rate_limit, validate_scopes, validate_secret_id, whole_number,
};
use crate::managed::Manager;
use crate::permission::ScopeInput;
use crate::validation::{FieldError, ValidationErrors, Warning};

/// The body of `PATCH /v1/keys/{id}`: absent (or `null`) fields stay as they are, except
/// `expires_at: null`, which removes the expiry; `active` deactivates (`false`) or reactivates
/// (`true`) the key. Each field has the rule it has on create.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateKeyRequest {
    /// 1 to 128 characters, stored in NFC and unique in the account after NFKC case folding
    /// (`CI-Bot` and `ci-bot` are one name); no control, bidirectional or invisible characters;
    /// letters of one script (Unicode UTS #39: single-script or highly restrictive).
    #[schemars(with = "Option<NameText>")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// At most 1024 characters.
    #[schemars(length(max = MAX_DESCRIPTION_LEN))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The whole new list, duplicates dropped: at least one, at most 64.
    #[schemars(length(min = 1, max = MAX_SCOPES))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<ScopeInput>>,
    /// The whole new list of source ranges, at most 100; empty admits every address.
    #[schemars(with = "Option<Vec<CidrText>>", length(max = MAX_CIDRS))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_cidrs: Option<Vec<String>>,
    /// Requests per minute, within the deployment's bounds (these are the defaults).
    #[serde(default, deserialize_with = "whole_number")]
    #[schemars(with = "Option<i64>", range(min = RATE_LIMIT_MIN, max = RATE_LIMIT_MAX))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_minute: Option<i64>,
    /// Must be in the future; `null` removes the expiry.
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<DateTime<Utc>>")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Option<DateTime<Utc>>>,
    /// `true` on an expired key needs a new `expires_at` too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    /// Replaces the whole object.
    #[schemars(description = metadata_description())]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// The Secrets Manager secret that holds and rotates the key; `null` opts it out.
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<SecretIdText>")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secrets_manager_secret_id: Option<Option<String>>,
    /// The whole new list of workspace ids, at most 40 (one workspace at a time:
    /// `PUT`/`DELETE /v1/keys/{id}/workspaces/{workspace}`).
    #[schemars(with = "Option<Vec<IdText>>", length(max = MAX_WORKSPACES))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspaces: Option<Vec<String>>,
    /// The whole new list of sharing group ids, at most 100, each of which must exist.
    #[schemars(with = "Option<Vec<IdText>>", length(max = MAX_GROUPS))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    /// An apply by the tool that manages the key: the key is in step with it after this edit
    /// (`applied_version` becomes the new `version`). `null` releases the key from its manager.
    #[serde(default, deserialize_with = "present")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub managed_by: Option<Option<Manager>>,
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// The outcome of applying an edit: the next record (version not yet bumped), what changed,
/// and the warnings to show.
#[derive(Debug, Clone, PartialEq)]
pub struct Edited {
    pub key: ApiKey,
    /// Whether this edit is an apply by the key's manager (it records `applied_version`).
    pub applied: bool,
    pub changed: Vec<&'static str>,
    pub warnings: Vec<Warning>,
}

impl UpdateKeyRequest {
    /// Whether the edit touches what could lock a key's own holder out: its status, scopes,
    /// allowed ranges or expiry.
    pub const fn could_lock_out(&self) -> bool {
        self.active.is_some()
            || self.scopes.is_some()
            || self.allowed_cidrs.is_some()
            || self.expires_at.is_some()
    }

    /// Applies the edit to `key`, reporting every invalid field at once. The caller refuses
    /// edits to revoked keys before this (they are final).
    pub fn apply(
        self,
        key: &ApiKey,
        rules: &KeyRules,
        now: DateTime<Utc>,
    ) -> Result<Edited, ValidationErrors> {
        let mut next = key.clone();
        let mut errors: Vec<FieldError> = Vec::new();
        let mut warnings = Vec::new();
        let mut changed = Vec::new();
        let mut take = |r: Result<(), Vec<FieldError>>| {
            if let Err(e) = r {
                errors.extend(e);
            }
        };

        if let Some(name) = self.name {
            take(validate_name(Some(&name)).map(|n| next.name = n));
        }
        if let Some(d) = self.description {
            take(validate_description(Some(&d)).map(|d| next.description = d));
        }
        if let Some(scopes) = self.scopes {
            take(validate_scopes(&scopes).map(|s| next.scopes = s));
        }
        if let Some(cidrs) = self.allowed_cidrs {
            take(CidrList::parse("allowed_cidrs", &cidrs).map(|(list, w)| {
                warnings.extend(w);
                next.allowed_cidrs = list;
            }));
        }
        if let Some(rate) = self.rate_limit_per_minute {
            take(validate_rate_limit(Some(rate), rules).map(|r| next.rate_limit_per_minute = r));
        }
        if let Some(expiry) = self.expires_at {
            take(validate_expiry(expiry, now).map(|e| next.expires_at = e));
        }
        if let Some(m) = self.metadata {
            take(validate_metadata(Some(m)).map(|m| next.metadata = m));
        }
        if let Some(id) = self.secrets_manager_secret_id {
            take(validate_secret_id(id.as_deref()).map(|id| next.secrets_manager_secret_id = id));
        }
        if let Some(workspaces) = self.workspaces {
            take(
                validate_ids("workspaces", workspaces, MAX_WORKSPACES).map(|w| next.workspaces = w),
            );
        }
        if let Some(groups) = self.groups {
            take(validate_ids("groups", groups, MAX_GROUPS).map(|g| next.groups = g));
        }
        if let Some(manager) = self.managed_by {
            next.managed_by = manager;
            next.applied_version = None;
        }
        match (self.active, next.status) {
            (Some(true), KeyStatus::Inactive | KeyStatus::Expired) => {
                next.status = KeyStatus::Active;
            }
            (Some(false), KeyStatus::Active | KeyStatus::Expired) => {
                next.status = KeyStatus::Inactive;
            }
            // A key marked expired in storage comes back (active) when its expiry moves on.
            (None, KeyStatus::Expired) if next.expires_at != key.expires_at => {
                next.status = KeyStatus::Active;
            }
            _ => {}
        }
        if self.active == Some(true) && next.status_at(now) == KeyStatus::Expired {
            errors.push(FieldError::new(
                "active",
                "the key has expired; set a new expires_at to use it again",
            ));
        }
        if !errors.is_empty() {
            return Err(ValidationErrors(errors));
        }

        let fields: [(&'static str, bool); 12] = [
            ("name", next.name != key.name),
            ("description", next.description != key.description),
            ("scopes", next.scopes != key.scopes),
            ("allowed_cidrs", next.allowed_cidrs != key.allowed_cidrs),
            (
                "rate_limit_per_minute",
                next.rate_limit_per_minute != key.rate_limit_per_minute,
            ),
            ("expires_at", next.expires_at != key.expires_at),
            ("metadata", next.metadata != key.metadata),
            ("active", next.status != key.status),
            (
                "secrets_manager_secret_id",
                next.secrets_manager_secret_id != key.secrets_manager_secret_id,
            ),
            ("workspaces", next.workspaces != key.workspaces),
            ("groups", next.groups != key.groups),
            ("managed_by", next.managed_by != key.managed_by),
        ];
        changed.extend(fields.iter().filter(|(_, c)| *c).map(|(f, _)| *f));
        // An apply re-stamps a key that drifted even when the spec now matches it again.
        let applied = matches!(self.managed_by, Some(Some(_)));
        if applied && changed.is_empty() && key.applied_version != Some(key.version) {
            changed.push("applied_version");
        }
        for field in ["scopes", "allowed_cidrs"] {
            if changed.contains(&field) {
                warnings.push(Warning::new(
                    field,
                    format!("changing {field} takes effect at once and may break callers that use this key"),
                ));
            }
        }
        if !changed.is_empty() {
            next.updated_at = now;
        }
        Ok(Edited {
            key: next,
            applied,
            changed,
            warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::test_key;
    use chrono::Duration;
    use serde_json::json;

    fn key() -> ApiKey {
        test_key(json!({
            "name": "k", "scopes": ["read"], "expires_at": Utc::now() + Duration::days(1)
        }))
    }

    fn edit(k: &ApiKey, body: Value) -> Result<Edited, ValidationErrors> {
        let req: UpdateKeyRequest = serde_json::from_value(body).unwrap();
        req.apply(k, &KeyRules::default(), Utc::now())
    }

    #[test]
    fn an_edit_changes_only_what_it_names() {
        let k = key();
        let e = edit(
            &k,
            json!({"description": "new", "rate_limit_per_minute": 120}),
        )
        .unwrap();
        assert_eq!(e.changed, ["description", "rate_limit_per_minute"]);
        assert_eq!(
            (e.key.description.as_str(), e.key.rate_limit_per_minute),
            ("new", 120)
        );
        assert_eq!(e.key.scopes, k.scopes);
        assert!(e.warnings.is_empty());
        let same = edit(&k, json!({"name": "k"})).unwrap();
        assert!(same.changed.is_empty());
    }

    #[test]
    fn scope_and_cidr_edits_warn() {
        let e = edit(
            &key(),
            json!({"scopes": ["write"], "allowed_cidrs": ["::/0"]}),
        )
        .unwrap();
        let fields: Vec<_> = e.warnings.iter().map(|w| w.field.as_str()).collect();
        assert_eq!(fields, ["allowed_cidrs[0]", "scopes", "allowed_cidrs"]);
    }

    #[test]
    fn null_expiry_clears_and_absent_keeps() {
        let k = key();
        assert!(
            edit(&k, json!({"expires_at": null}))
                .unwrap()
                .key
                .expires_at
                .is_none()
        );
        assert_eq!(edit(&k, json!({})).unwrap().key.expires_at, k.expires_at);
        let past = Utc::now() - Duration::seconds(5);
        let e = edit(&k, json!({"expires_at": past})).unwrap_err();
        assert_eq!(e.0[0].field, "expires_at");
    }

    #[test]
    fn active_toggles_status() {
        let k = key();
        let off = edit(&k, json!({"active": false})).unwrap().key;
        assert_eq!(off.status, KeyStatus::Inactive);
        let on = edit(&off, json!({"active": true})).unwrap().key;
        assert_eq!(on.status, KeyStatus::Active);
        let mut expired = k.clone();
        expired.expires_at = Some(Utc::now() - Duration::seconds(1));
        assert_eq!(
            edit(&expired, json!({"active": true})).unwrap_err().0[0].field,
            "active"
        );
        let later = Utc::now() + Duration::days(2);
        let revived = edit(&expired, json!({"active": true, "expires_at": later}))
            .unwrap()
            .key;
        assert_eq!(revived.status_at(Utc::now()), KeyStatus::Active);
        let mut marked = k.clone();
        marked.status = KeyStatus::Expired;
        let moved = edit(&marked, json!({"expires_at": later})).unwrap().key;
        assert_eq!(
            moved.status,
            KeyStatus::Active,
            "moving the expiry brings a marked key back"
        );
    }

    #[test]
    fn a_request_reads_back_as_it_was_written() {
        // A field left as it is must not come back as `null` (which clears it): saved plans
        // and clients write these requests and send them later.
        for body in [
            json!({"description": "x"}),
            json!({"expires_at": null, "managed_by": "spec"}),
            json!({"secrets_manager_secret_id": null, "workspaces": []}),
            json!({}),
        ] {
            let req: UpdateKeyRequest = serde_json::from_value(body.clone()).unwrap();
            assert_eq!(serde_json::to_value(&req).unwrap(), body);
            let back: UpdateKeyRequest =
                serde_json::from_value(serde_json::to_value(&req).unwrap()).unwrap();
            assert_eq!(back, req);
        }
    }

    #[test]
    fn every_bad_field_is_reported() {
        let e = edit(&key(), json!({"name": "", "scopes": [], "rate_limit_per_minute": 0, "allowed_cidrs": ["nope"]})).unwrap_err();
        let fields: Vec<_> = e.0.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "name",
                "scopes",
                "allowed_cidrs[0]",
                "rate_limit_per_minute"
            ]
        );
        assert!(serde_json::from_value::<UpdateKeyRequest>(json!({"generation": 2})).is_err());
    }
}
