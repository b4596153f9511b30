//! The key record, its status rules, and the validation of a create request.
//!
//! Validation lives here, once: the HTTP API, `keyward apply` and bootstrap all build keys
//! through [`KeyDraft::from_request`], so a rule changed here changes everywhere.

use std::collections::BTreeSet;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{Error as _, Unexpected};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::cidr::{CidrList, CidrText, MAX_CIDRS};
use crate::id::{IdText, check_id, new_id};
use crate::managed::{MAX_GENERATION, Manager, initial_generation};
use crate::pattern;
use crate::permission::{Scope, ScopeInput};
use crate::preset::Presets;
use crate::token::{Token, TokenError};
use crate::validation::{FieldError, ValidationErrors, Warning};

// Input limits. Every one is a rule of the core, checked before any store is called, so both
// stores refuse the same input with the same 400. The binding store limits are DynamoDB's: an
// item of at most 400 KB (a key record is stored twice, as the record and as its hash copy,
// each well under 100 KB at these limits), attributes nested at most 32 levels, sort keys of at
// most 1024 bytes, transactions of at most 100 items, and numbers between 1e-130 and 1e126 in
// magnitude. SQLite holds the record as JSON text and has no tighter limit.

/// Names (of keys and groups) have their own rules, in [`crate::name`].
pub use crate::name::{MAX_NAME_KEY_BYTES, MAX_NAME_LEN, validate_name};
pub const MAX_DESCRIPTION_LEN: usize = 1024;
/// Each scope is bounded by the pattern limits of [`crate::permission`], so 64 scopes stay
/// under about 50 KB of record.
pub const MAX_SCOPES: usize = 64;
/// Keeps the largest key change (rename plus a full swap of workspaces) within one DynamoDB
/// transaction of at most 100 items.
pub const MAX_WORKSPACES: usize = 40;
/// Groups live in the record only (no item per membership), so this bounds its size.
pub const MAX_GROUPS: usize = 100;
/// The whole of `metadata`, serialised as JSON.
pub const MAX_METADATA_BYTES: usize = 4096;
/// Levels of nesting in `metadata`, the metadata object itself being level 1. DynamoDB refuses
/// an item nested deeper than 32 levels (metadata is a top-level attribute of the record), so 10
/// stays far inside it, whatever the store.
pub const MAX_METADATA_DEPTH: usize = 10;
/// Entries in one metadata object (keys) or array (items).
pub const MAX_METADATA_ENTRIES: usize = 100;
/// A metadata key's length in characters; keys are never empty (DynamoDB refuses empty
/// attribute names in maps).
pub const MAX_METADATA_KEY_LEN: usize = 128;
/// Numbers in metadata are 0 or of a magnitude in `[1e-130, 1e126)`, DynamoDB's number range
/// (a JSON number outside it is refused by DynamoDB and kept by SQLite).
pub const METADATA_NUMBER_MIN: f64 = 1e-130;
pub const METADATA_NUMBER_LIMIT: f64 = 1e126;

/// The rate limit bounds and default of a deployment that sets none (see [`KeyRules`]).
pub const RATE_LIMIT_MIN: u32 = 1;
pub const RATE_LIMIT_MAX: u32 = 600;
pub const RATE_LIMIT_DEFAULT: u32 = 60;

/// A name as [`validate_name`] accepts it, as a pattern: 1 to [`MAX_NAME_LEN`] characters once
/// trimmed, none of them a control character.
pub fn name_pattern() -> String {
    pattern::trimmed_text(MAX_NAME_LEN)
}

/// The schema of a key's or group's name, the `Name` component of the OpenAPI document. Only a
/// schema: name fields stay `String`.
#[derive(Debug)]
pub struct NameText;

impl JsonSchema for NameText {
    fn schema_name() -> Cow<'static, str> {
        "Name".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": name_pattern(),
            "description": format!(
                "1 to {MAX_NAME_LEN} characters once whitespace around is trimmed, no control characters; unique in the account."
            ),
        })
    }
}

/// A key's lifecycle state. `expired` is derived from `expires_at`; `revoked` is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    Active,
    Inactive,
    Expired,
    Revoked,
}

impl KeyStatus {
    /// Every status, in the order they are documented.
    pub const ALL: [KeyStatus; 4] = [Self::Active, Self::Inactive, Self::Expired, Self::Revoked];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => Self::Active,
            "inactive" => Self::Inactive,
            "expired" => Self::Expired,
            "revoked" => Self::Revoked,
            _ => return None,
        })
    }
}

/// Deployment-wide bounds for keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRules {
    pub rate_limit_min: u32,
    pub rate_limit_max: u32,
    pub rate_limit_default: u32,
}

impl Default for KeyRules {
    fn default() -> Self {
        Self {
            rate_limit_min: RATE_LIMIT_MIN,
            rate_limit_max: RATE_LIMIT_MAX,
            rate_limit_default: RATE_LIMIT_DEFAULT,
        }
    }
}

/// An API key as stored and shown. It never holds the secret or its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ApiKey {
    pub id: String,
    pub account: String,
    pub name: String,
    pub description: String,
    pub start: String,
    pub last4: String,
    pub status: KeyStatus,
    pub scopes: Vec<Scope>,
    pub workspaces: Vec<String>,
    pub allowed_cidrs: CidrList,
    pub rate_limit_per_minute: u32,
    pub expires_at: Option<DateTime<Utc>>,
    pub groups: Vec<String>,
    pub metadata: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    #[serde(default)]
    #[schemars(schema_with = "crate::cidr::ip_address_or_null")]
    pub last_used_ip: Option<IpAddr>,
    pub request_count: u64,
    pub version: u64,
    /// The secret this key had before its last regeneration, while it still verifies (a
    /// regeneration with a grace period); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_secret: Option<PreviousSecret>,
    /// The expiry the key's owners were last warned of (the rotator warns once per expiry);
    /// absent until a warning is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry_warned_for: Option<DateTime<Utc>>,
    /// The AWS Secrets Manager secret (name or ARN) that holds this key and rotates it through
    /// the rotator; absent: the key is never rotated automatically.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_manager_secret_id: Option<String>,
    /// The tool that manages the key (`spec`: `keyward apply`; `terraform`); absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_by: Option<Manager>,
    /// The generation of the key's secret: 1 at creation, raised by every regeneration.
    #[serde(default = "crate::managed::first_generation")]
    pub generation: u64,
    /// The `version` the last apply by its manager left; a larger `version` means the key was
    /// changed outside it (drift).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_version: Option<u64>,
}

/// The secret a key had before its last regeneration: how it is shown, and until when it
/// verifies. Never the secret or its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PreviousSecret {
    pub start: String,
    pub last4: String,
    /// The end of its grace: from this instant it no longer verifies.
    pub expires_at: DateTime<Utc>,
}

/// What a lookup hash found: the key, and whether the hash is its current secret or the
/// previous one, which verifies only until `grace_until`.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyMatch {
    pub key: ApiKey,
    /// `None` for the current secret; the end of the grace for the previous one.
    pub grace_until: Option<DateTime<Utc>>,
}

impl KeyMatch {
    /// The key, found by its current secret.
    pub fn current(key: ApiKey) -> Self {
        Self {
            key,
            grace_until: None,
        }
    }

    /// Whether the secret that was presented still verifies at `now`: the current one always
    /// (its key's own rules still apply), the previous one only before its grace ends.
    pub fn secret_live_at(&self, now: DateTime<Utc>) -> bool {
        secret_live(self.grace_until, now)
    }
}

/// Whether a secret with grace end `grace_until` (none: the current secret) verifies at `now`:
/// the previous secret stops at the very instant its grace ends.
pub fn secret_live(grace_until: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    grace_until.is_none_or(|until| now < until)
}

impl ApiKey {
    /// A new record for `draft`, displaying `token`'s start and last four characters.
    pub fn new(
        draft: KeyDraft,
        account: &str,
        token: &Token,
        created_by: &str,
        now: DateTime<Utc>,
    ) -> Result<Self, TokenError> {
        Ok(Self {
            id: new_id("key")?,
            account: account.to_owned(),
            name: draft.name,
            description: draft.description,
            start: token.start(),
            last4: token.last4(),
            status: KeyStatus::Active,
            scopes: draft.scopes,
            workspaces: draft.workspaces,
            allowed_cidrs: draft.allowed_cidrs,
            rate_limit_per_minute: draft.rate_limit_per_minute,
            expires_at: draft.expires_at,
            groups: draft.groups,
            metadata: draft.metadata,
            created_at: now,
            created_by: created_by.to_owned(),
            updated_at: now,
            last_used_at: None,
            last_used_ip: None,
            request_count: 0,
            version: 1,
            previous_secret: None,
            expiry_warned_for: None,
            secrets_manager_secret_id: draft.secrets_manager_secret_id,
            managed_by: draft.managed_by,
            generation: draft.generation,
            // A create that names its manager is an apply: the key starts in step.
            applied_version: draft.managed_by.map(|_| 1),
        })
    }

    /// The status as of `now`: a key past `expires_at` is expired unless already revoked.
    pub fn status_at(&self, now: DateTime<Utc>) -> KeyStatus {
        match self.status {
            KeyStatus::Revoked => KeyStatus::Revoked,
            _ if self.expires_at.is_some_and(|e| e <= now) => KeyStatus::Expired,
            other => other,
        }
    }

    /// The record with its status brought up to `now`, as every reader should see it.
    pub fn as_of(mut self, now: DateTime<Utc>) -> Self {
        self.status = self.status_at(now);
        self.end_grace_if_over(now);
        self
    }

    /// Whether the previous secret's grace is over at `now` (it no longer verifies, and the
    /// record should stop naming it).
    pub fn grace_over(&self, now: DateTime<Utc>) -> bool {
        self.previous_secret
            .as_ref()
            .is_some_and(|p| !secret_live(Some(p.expires_at), now))
    }

    /// Forgets the previous secret once its grace is over; answers whether it did.
    pub fn end_grace_if_over(&mut self, now: DateTime<Utc>) -> bool {
        let over = self.grace_over(now);
        if over {
            self.previous_secret = None;
        }
        over
    }

    /// Whether a request may still change this key: revoked keys are final.
    pub fn is_final(&self) -> bool {
        self.status == KeyStatus::Revoked
    }
}

/// The fields of a create request, exactly as a client may send them. Every field is optional
/// at this level so that a missing one is reported by name by [`KeyDraft::from_request`]; the
/// schema states the rules [`KeyDraft::from_request`] applies, field by field.
///
/// A key needs at least one scope: its own `scopes`, or a `preset` that grants some.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    description = "The body of `POST /v1/keys`. A key needs at least one scope: its own `scopes`, or a `preset` that grants some. Every broken rule is reported, by field."
)]
#[schemars(extend("anyOf" = [
    {"required": ["scopes"], "properties": {"scopes": {"type": "array", "minItems": 1}}},
    {"required": ["preset"], "properties": {"preset": {"type": "string"}}},
]))]
pub struct CreateKeyRequest {
    /// Required. 1 to 128 characters, stored in NFC and unique in the account after NFKC case
    /// folding (`CI-Bot` and `ci-bot` are one name); no control, bidirectional or invisible
    /// characters; letters of one script (Unicode UTS #39: single-script or highly restrictive).
    #[schemars(required, with = "NameText")]
    pub name: Option<String>,
    /// At most 1024 characters.
    #[schemars(length(max = MAX_DESCRIPTION_LEN))]
    pub description: Option<String>,
    /// A built-in preset or one the account defined; its scopes come first.
    #[schemars(with = "Option<IdText>")]
    pub preset: Option<String>,
    /// Duplicates (also of the preset's scopes) are dropped; at least one (with the preset's),
    /// at most 64.
    #[schemars(length(max = MAX_SCOPES))]
    pub scopes: Option<Vec<ScopeInput>>,
    /// At most 40 workspace ids.
    #[schemars(with = "Option<Vec<IdText>>", length(max = MAX_WORKSPACES))]
    pub workspaces: Option<Vec<String>>,
    /// At most 100 sharing group ids, each of which must exist.
    #[schemars(with = "Option<Vec<IdText>>", length(max = MAX_GROUPS))]
    pub groups: Option<Vec<String>>,
    /// At most 100 source ranges (a bare address is one host); none means every address.
    #[schemars(with = "Option<Vec<CidrText>>", length(max = MAX_CIDRS))]
    pub allowed_cidrs: Option<Vec<String>>,
    /// Requests per minute, within the deployment's bounds (these are the defaults).
    #[serde(default, deserialize_with = "whole_number")]
    #[schemars(
        with = "Option<i64>",
        range(min = RATE_LIMIT_MIN, max = RATE_LIMIT_MAX),
        extend("default" = RATE_LIMIT_DEFAULT)
    )]
    pub rate_limit_per_minute: Option<i64>,
    /// Must be in the future.
    pub expires_at: Option<DateTime<Utc>>,
    #[schemars(description = metadata_description())]
    pub metadata: Option<Map<String, Value>>,
    /// Opts the key in to AWS Secrets Manager rotation: the secret (name or ARN) that holds it
    /// and whose rotation function is keyward's rotator.
    #[schemars(with = "Option<SecretIdText>")]
    pub secrets_manager_secret_id: Option<String>,
    /// The tool that will manage the key (`keyward apply` sends `spec`, the Terraform provider
    /// `terraform`); the key starts in step with it.
    pub managed_by: Option<Manager>,
    /// The generation of the first secret (default 1).
    #[serde(default, deserialize_with = "whole_number")]
    #[schemars(with = "Option<i64>", range(min = 1, max = MAX_GENERATION))]
    pub generation: Option<i64>,
}

/// The schema of a Secrets Manager secret id (a name or an ARN). Only a schema: the field is a
/// `String`, checked by [`validate_secret_id`].
#[derive(Debug)]
pub struct SecretIdText;

impl JsonSchema for SecretIdText {
    fn schema_name() -> Cow<'static, str> {
        "SecretsManagerSecretId".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_SECRET_ID_LEN,
            "pattern": SECRET_ID_PATTERN,
            "description": "A Secrets Manager secret name or ARN: 1 to 2048 of A-Z a-z 0-9 / _ + = . @ - and, in an ARN, :",
        })
    }
}

/// The longest Secrets Manager secret id (an ARN).
pub const MAX_SECRET_ID_LEN: usize = 2048;
/// The characters of a Secrets Manager secret name, and `:` for an ARN.
pub const SECRET_ID_PATTERN: &str = "^[A-Za-z0-9/_+=.@:-]+$";

/// A Secrets Manager secret id as a request gives it (absent: none).
pub fn validate_secret_id(id: Option<&str>) -> Result<Option<String>, Vec<FieldError>> {
    let Some(id) = id else {
        return Ok(None);
    };
    let allowed = |c: char| c.is_ascii_alphanumeric() || "/_+=.@:-".contains(c);
    if id.is_empty() || id.len() > MAX_SECRET_ID_LEN || !id.chars().all(allowed) {
        return Err(one(
            "secrets_manager_secret_id",
            format!(
                "a Secrets Manager secret name or ARN: at most {MAX_SECRET_ID_LEN} of A-Z a-z 0-9 / _ + = . @ - :"
            ),
        ));
    }
    Ok(Some(id.to_owned()))
}

/// The metadata rule, which no schema keyword states (a size in bytes of serialised JSON).
pub fn metadata_description() -> String {
    format!(
        "A JSON object of your own, kept with the key. Limits (the same on every store): at most \
         {MAX_METADATA_BYTES} bytes as JSON; nested at most {MAX_METADATA_DEPTH} levels (this \
         object is level 1); at most {MAX_METADATA_ENTRIES} keys in an object and \
         {MAX_METADATA_ENTRIES} items in an array; keys of 1 to {MAX_METADATA_KEY_LEN} \
         characters; numbers 0 or between {METADATA_NUMBER_MIN:e} and {METADATA_NUMBER_LIMIT:e} \
         in magnitude. A request over a limit is refused with 400 naming `metadata` and the limit."
    )
}

/// An optional JSON integer, also when written with a zero fraction (`60.0`): the document
/// promises JSON Schema's `integer`, which counts such numbers as integers. One too large for
/// an `i64` saturates, for the field's own range rule to refuse by name.
pub(crate) fn whole_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    if let Some(i) = n.as_i64() {
        return Ok(Some(i));
    }
    if n.is_u64() {
        return Ok(Some(i64::MAX));
    }
    match n.as_f64() {
        // `as` saturates at the bounds of i64.
        Some(f) if f.is_finite() && f.fract() == 0.0 => Ok(Some(f as i64)),
        Some(f) => Err(D::Error::invalid_type(Unexpected::Float(f), &"an integer")),
        None => Err(D::Error::invalid_type(
            Unexpected::Other("a number"),
            &"an integer",
        )),
    }
}

/// A validated create request: everything a key needs but its identity and secret.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyDraft {
    pub name: String,
    pub description: String,
    pub scopes: Vec<Scope>,
    pub workspaces: Vec<String>,
    pub groups: Vec<String>,
    pub allowed_cidrs: CidrList,
    pub rate_limit_per_minute: u32,
    pub expires_at: Option<DateTime<Utc>>,
    pub metadata: Map<String, Value>,
    pub secrets_manager_secret_id: Option<String>,
    pub managed_by: Option<Manager>,
    pub generation: u64,
}

impl KeyDraft {
    /// Applies every rule and reports every broken one at once.
    pub fn from_request(
        req: CreateKeyRequest,
        rules: &KeyRules,
        presets: &Presets,
        now: DateTime<Utc>,
    ) -> Result<(Self, Vec<Warning>), ValidationErrors> {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();

        let name = check(&mut errors, validate_name(req.name.as_deref()));
        let description = check(
            &mut errors,
            validate_description(req.description.as_deref()),
        );

        let mut preset_scopes = Vec::new();
        let mut preset_unknown = false;
        if let Some(preset) = req.preset.as_deref() {
            match presets.get(preset) {
                Some(p) => preset_scopes.extend(p.scopes.iter().cloned()),
                None => {
                    preset_unknown = true;
                    errors.push(FieldError::new(
                        "preset",
                        format!(
                            "unknown preset '{}'; available: {}",
                            preset.chars().take(64).collect::<String>(),
                            presets.names().join(", ")
                        ),
                    ));
                }
            }
        }
        let explicit = req.scopes.unwrap_or_default();
        // With an unknown preset and no scopes of its own, the preset error says it all.
        let scopes = if preset_unknown && explicit.is_empty() {
            None
        } else {
            check(
                &mut errors,
                collect_scopes(preset_scopes, &explicit, req.preset.is_some()),
            )
        };

        let workspaces = check(
            &mut errors,
            validate_ids(
                "workspaces",
                req.workspaces.unwrap_or_default(),
                MAX_WORKSPACES,
            ),
        );
        let groups = check(
            &mut errors,
            validate_ids("groups", req.groups.unwrap_or_default(), MAX_GROUPS),
        );
        let allowed_cidrs =
            match CidrList::parse("allowed_cidrs", &req.allowed_cidrs.unwrap_or_default()) {
                Ok((list, w)) => {
                    warnings.extend(w);
                    Some(list)
                }
                Err(e) => {
                    errors.extend(e);
                    None
                }
            };
        let rate = check(
            &mut errors,
            validate_rate_limit(req.rate_limit_per_minute, rules),
        );
        let expires_at = check(&mut errors, validate_expiry(req.expires_at, now));
        let metadata = check(&mut errors, validate_metadata(req.metadata));
        let secret_id = check(
            &mut errors,
            validate_secret_id(req.secrets_manager_secret_id.as_deref()),
        );
        let generation = check(
            &mut errors,
            initial_generation(req.generation).map_err(|e| vec![e]),
        );

        match (
            name,
            description,
            scopes,
            workspaces,
            groups,
            allowed_cidrs,
            rate,
            expires_at,
            metadata,
            secret_id,
            generation,
        ) {
            (
                Some(name),
                Some(description),
                Some(scopes),
                Some(workspaces),
                Some(groups),
                Some(allowed_cidrs),
                Some(rate_limit_per_minute),
                Some(expires_at),
                Some(metadata),
                Some(secrets_manager_secret_id),
                Some(generation),
            ) if errors.is_empty() => Ok((
                Self {
                    name,
                    description,
                    scopes,
                    workspaces,
                    groups,
                    allowed_cidrs,
                    rate_limit_per_minute,
                    expires_at,
                    metadata,
                    secrets_manager_secret_id,
                    managed_by: req.managed_by,
                    generation,
                },
                warnings,
            )),
            _ => Err(ValidationErrors(errors)),
        }
    }
}

fn check<T>(errors: &mut Vec<FieldError>, result: Result<T, Vec<FieldError>>) -> Option<T> {
    match result {
        Ok(v) => Some(v),
        Err(e) => {
            errors.extend(e);
            None
        }
    }
}

fn one(field: &str, message: impl Into<String>) -> Vec<FieldError> {
    vec![FieldError::new(field, message)]
}

pub fn validate_description(description: Option<&str>) -> Result<String, Vec<FieldError>> {
    let d = description.unwrap_or_default();
    if d.chars().count() > MAX_DESCRIPTION_LEN {
        return Err(one(
            "description",
            format!("at most {MAX_DESCRIPTION_LEN} characters"),
        ));
    }
    Ok(d.to_owned())
}

/// Normalises scopes (a preset's, then explicit ones), dropping duplicates; at least one, and
/// at most [`MAX_SCOPES`] given and in all. Errors name the explicit scope by its index in the
/// request.
fn collect_scopes(
    preset: Vec<Scope>,
    explicit: &[ScopeInput],
    has_preset: bool,
) -> Result<Vec<Scope>, Vec<FieldError>> {
    if explicit.len() > MAX_SCOPES {
        return Err(one("scopes", format!("at most {MAX_SCOPES} scopes")));
    }
    let mut errors = Vec::new();
    let mut seen = BTreeSet::new();
    let mut scopes = Vec::new();
    let parsed = explicit.iter().enumerate().filter_map(|(i, input)| {
        Scope::parse(input)
            .map_err(|e| errors.push(FieldError::new(format!("scopes[{i}]"), e.to_string())))
            .ok()
    });
    for scope in preset.into_iter().chain(parsed.collect::<Vec<_>>()) {
        if seen.insert(scope.scope.clone()) {
            scopes.push(scope);
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if scopes.is_empty() {
        let hint = if has_preset {
            "the preset grants no scopes; add at least one scope"
        } else {
            "at least one scope is required"
        };
        return Err(one("scopes", hint));
    }
    if scopes.len() > MAX_SCOPES {
        return Err(one("scopes", format!("at most {MAX_SCOPES} scopes")));
    }
    Ok(scopes)
}

/// Validates scope spellings alone (for edits), reporting each bad one by index.
pub fn validate_scopes(inputs: &[ScopeInput]) -> Result<Vec<Scope>, Vec<FieldError>> {
    collect_scopes(Vec::new(), inputs, false)
}

pub fn validate_ids(
    field: &str,
    ids: Vec<String>,
    max: usize,
) -> Result<Vec<String>, Vec<FieldError>> {
    if ids.len() > max {
        return Err(one(field, format!("at most {max} entries")));
    }
    let mut out: Vec<String> = Vec::with_capacity(ids.len());
    let mut errors = Vec::new();
    for (i, id) in ids.into_iter().enumerate() {
        if let Err(e) = check_id(&format!("{field}[{i}]"), &id) {
            errors.push(e);
        } else if !out.contains(&id) {
            out.push(id);
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

pub fn validate_rate_limit(rate: Option<i64>, rules: &KeyRules) -> Result<u32, Vec<FieldError>> {
    let Some(rate) = rate else {
        return Ok(rules.rate_limit_default);
    };
    let (min, max) = (rules.rate_limit_min, rules.rate_limit_max);
    u32::try_from(rate)
        .ok()
        .filter(|r| (min..=max).contains(r))
        .ok_or_else(|| {
            one(
                "rate_limit_per_minute",
                format!("must be between {min} and {max} requests per minute"),
            )
        })
}

pub fn validate_expiry(
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, Vec<FieldError>> {
    match expires_at {
        Some(e) if e <= now => Err(one("expires_at", "must be in the future")),
        other => Ok(other),
    }
}

/// The metadata rules: size, depth, entries per object or array, key length, number range.
/// Every broken limit is reported once, on the field `metadata`, with the place it was found.
pub fn validate_metadata(
    metadata: Option<Map<String, Value>>,
) -> Result<Map<String, Value>, Vec<FieldError>> {
    let metadata = metadata.unwrap_or_default();
    let mut found = MetadataProblems::default();
    walk_object(&metadata, &mut String::from("metadata"), 1, &mut found);
    let size = serde_json::to_vec(&metadata)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_METADATA_BYTES {
        found.size = Some(format!(
            "is {size} bytes of JSON; at most {MAX_METADATA_BYTES} bytes"
        ));
    }
    let errors: Vec<FieldError> = [
        found.depth,
        found.entries,
        found.key,
        found.number,
        found.size,
    ]
    .into_iter()
    .flatten()
    .map(|message| FieldError::new("metadata", message))
    .collect();
    if errors.is_empty() {
        Ok(metadata)
    } else {
        Err(errors)
    }
}

/// The first place each metadata limit was broken.
#[derive(Default)]
struct MetadataProblems {
    depth: Option<String>,
    entries: Option<String>,
    key: Option<String>,
    number: Option<String>,
    size: Option<String>,
}

/// Keeps a path in a message short.
fn short_path(path: &str) -> String {
    const MAX: usize = 80;
    if path.chars().count() <= MAX {
        path.to_owned()
    } else {
        format!("{}…", path.chars().take(MAX).collect::<String>())
    }
}

fn walk_object(
    object: &Map<String, Value>,
    path: &mut String,
    depth: usize,
    found: &mut MetadataProblems,
) {
    if object.len() > MAX_METADATA_ENTRIES && found.entries.is_none() {
        found.entries = Some(format!(
            "{} has {} keys; at most {MAX_METADATA_ENTRIES} keys in one object",
            short_path(path),
            object.len()
        ));
    }
    for (key, value) in object {
        let chars = key.chars().count();
        if (chars == 0 || chars > MAX_METADATA_KEY_LEN) && found.key.is_none() {
            found.key = Some(format!(
                "{} has a key of {chars} characters; keys are 1 to {MAX_METADATA_KEY_LEN} characters",
                short_path(path)
            ));
        }
        let len = path.len();
        path.push('.');
        path.extend(key.chars().take(32));
        walk_value(value, path, depth, found);
        path.truncate(len);
    }
}

/// `depth` is the level of the container holding `value`.
fn walk_value(value: &Value, path: &mut String, depth: usize, found: &mut MetadataProblems) {
    let nested = depth + 1;
    match value {
        Value::Object(_) | Value::Array(_) if nested > MAX_METADATA_DEPTH => {
            // Deeper levels are not walked: the depth is already refused.
            if found.depth.is_none() {
                found.depth = Some(format!(
                    "{} is nested more than {MAX_METADATA_DEPTH} levels deep; at most {MAX_METADATA_DEPTH} levels (the metadata object is level 1)",
                    short_path(path)
                ));
            }
        }
        Value::Object(object) => walk_object(object, path, nested, found),
        Value::Array(items) => {
            if items.len() > MAX_METADATA_ENTRIES && found.entries.is_none() {
                found.entries = Some(format!(
                    "{} has {} items; at most {MAX_METADATA_ENTRIES} items in one array",
                    short_path(path),
                    items.len()
                ));
            }
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk_value(item, path, nested, found);
                path.truncate(len);
            }
        }
        Value::Number(n) => {
            let out_of_range = n.as_f64().is_some_and(|f| {
                let f = f.abs();
                f >= METADATA_NUMBER_LIMIT || (f != 0.0 && f < METADATA_NUMBER_MIN)
            });
            if out_of_range && found.number.is_none() {
                found.number = Some(format!(
                    "{} is {n}; numbers are 0 or between 1e-130 and 1e126 in magnitude",
                    short_path(path)
                ));
            }
        }
        Value::Null | Value::Bool(_) | Value::String(_) => {}
    }
}

/// A key made from a create request's JSON as the API makes one, in account `acc` with a fresh
/// live token: for the tests of every module that takes a key.
#[cfg(test)]
pub(crate) fn test_key(body: Value) -> ApiKey {
    let req: CreateKeyRequest = serde_json::from_value(body).unwrap_or_else(|e| panic!("{e}"));
    let (draft, _) =
        KeyDraft::from_request(req, &KeyRules::default(), &Presets::builtin(), Utc::now())
            .unwrap_or_else(|e| panic!("{e}"));
    let token = Token::generate(&crate::token::Prefix::live()).unwrap_or_else(|e| panic!("{e}"));
    ApiKey::new(draft, "acc", &token, "t", Utc::now()).unwrap_or_else(|e| panic!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn now() -> DateTime<Utc> {
        Utc::now()
    }

    fn draft(json: serde_json::Value) -> Result<(KeyDraft, Vec<Warning>), ValidationErrors> {
        let req: CreateKeyRequest = serde_json::from_value(json).unwrap();
        KeyDraft::from_request(req, &KeyRules::default(), &Presets::builtin(), now())
    }

    fn fields(e: ValidationErrors) -> Vec<String> {
        e.0.into_iter().map(|f| f.field).collect()
    }

    #[test]
    fn a_minimal_request_gets_the_defaults() {
        let (d, w) = draft(serde_json::json!({"name": " ci ", "scopes": ["read"]})).unwrap();
        assert_eq!(d.name, "ci");
        assert_eq!(d.rate_limit_per_minute, 60);
        assert!(d.allowed_cidrs.is_empty() && d.workspaces.is_empty() && w.is_empty());
    }

    #[test]
    fn every_rule_is_reported_by_field() {
        let past = now() - Duration::seconds(1);
        let e = draft(serde_json::json!({
            "scopes": [],
            "rate_limit_per_minute": 0,
            "expires_at": past,
            "allowed_cidrs": ["10.0.0.0/40"],
            "workspaces": ["bad id"],
        }))
        .unwrap_err();
        assert_eq!(
            fields(e),
            [
                "name",
                "scopes",
                "workspaces[0]",
                "allowed_cidrs[0]",
                "rate_limit_per_minute",
                "expires_at"
            ]
        );
        let e = draft(
            serde_json::json!({"name": "x", "scopes": ["read"], "rate_limit_per_minute": 601}),
        )
        .unwrap_err();
        assert_eq!(fields(e), ["rate_limit_per_minute"]);
        let e =
            draft(serde_json::json!({"name": "x", "scopes": ["namespace:viewer"]})).unwrap_err();
        assert_eq!(e.0[0].field, "scopes[0]");
        assert!(e.0[0].message.contains("valid roles: admin"));
    }

    #[test]
    fn rate_limit_bounds_are_inclusive_and_configurable() {
        for ok in [1, 600] {
            assert!(draft(serde_json::json!({"name": "x", "scopes": ["read"], "rate_limit_per_minute": ok})).is_ok());
        }
        let rules = KeyRules {
            rate_limit_min: 5,
            rate_limit_max: 10,
            rate_limit_default: 7,
        };
        assert_eq!(validate_rate_limit(None, &rules), Ok(7));
        assert!(validate_rate_limit(Some(4), &rules).is_err());
        assert!(validate_rate_limit(Some(i64::MAX), &rules).is_err());
        assert!(validate_rate_limit(Some(-1), &rules).is_err());
    }

    #[test]
    fn presets_supply_scopes_and_merge_without_duplicates() {
        let (d, _) = draft(serde_json::json!({"name": "x", "preset": "read-only", "scopes": ["agent:viewer", "read"]})).unwrap();
        let names: Vec<_> = d.scopes.iter().map(|s| s.scope.as_str()).collect();
        assert_eq!(names, ["agent:viewer", "project:viewer", "read"]);
        let e = draft(serde_json::json!({"name": "x", "preset": "custom"})).unwrap_err();
        assert!(e.0[0].message.contains("preset grants no scopes"));
        let e = draft(serde_json::json!({"name": "x", "preset": "nope", "scopes": ["read"]}))
            .unwrap_err();
        assert!(
            e.0[0]
                .message
                .contains("deploy, read-only, agent-runner, custom")
        );
    }

    #[test]
    fn wildcard_ranges_warn() {
        let (_, w) = draft(
            serde_json::json!({"name": "x", "scopes": ["read"], "allowed_cidrs": ["0.0.0.0/0"]}),
        )
        .unwrap();
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn unknown_fields_and_oversized_metadata_are_refused() {
        assert!(
            serde_json::from_value::<CreateKeyRequest>(
                serde_json::json!({"name": "x", "bogus": 1})
            )
            .is_err()
        );
        let big = "x".repeat(MAX_METADATA_BYTES);
        let e = draft(serde_json::json!({"name": "x", "scopes": ["read"], "metadata": {"k": big}}))
            .unwrap_err();
        assert_eq!(fields(e), ["metadata"]);
        let e = draft(serde_json::json!({"name": "a\u{7}b", "scopes": ["read"]})).unwrap_err();
        assert_eq!(fields(e), ["name"]);
    }

    /// Metadata `levels` deep: the metadata object holding `{"a": {"a": ... 1}}`.
    fn nested(levels: usize) -> Map<String, Value> {
        let mut v = serde_json::json!(1);
        for _ in 0..levels {
            v = serde_json::json!({ "a": v });
        }
        match v {
            Value::Object(m) => m,
            _ => unreachable!("an object was built"),
        }
    }

    fn metadata_errors(m: Value) -> Vec<FieldError> {
        let Value::Object(m) = m else {
            panic!("metadata is an object")
        };
        validate_metadata(Some(m)).unwrap_err()
    }

    #[test]
    fn metadata_depth_is_limited_to_ten_levels() {
        assert!(validate_metadata(Some(nested(MAX_METADATA_DEPTH))).is_ok());
        for levels in [MAX_METADATA_DEPTH + 1, 31, 200] {
            let e = validate_metadata(Some(nested(levels))).unwrap_err();
            assert_eq!(e.len(), 1, "{e:?}");
            assert_eq!(e[0].field, "metadata");
            assert!(
                e[0].message.contains("at most 10 levels"),
                "{}",
                e[0].message
            );
        }
        // Arrays count as levels too.
        let mut v = serde_json::json!([]);
        for _ in 0..MAX_METADATA_DEPTH {
            v = serde_json::json!([v]);
        }
        let e = metadata_errors(serde_json::json!({ "list": v }));
        assert!(e[0].message.starts_with("metadata.list[0]"), "{e:?}");
    }

    #[test]
    fn metadata_entries_and_keys_are_limited() {
        let wide: Map<String, Value> = (0..=MAX_METADATA_ENTRIES)
            .map(|i| (format!("k{i}"), Value::Null))
            .collect();
        let e = validate_metadata(Some(wide)).unwrap_err();
        assert_eq!(
            e[0].message,
            "metadata has 101 keys; at most 100 keys in one object"
        );
        let e = metadata_errors(serde_json::json!({"tags": vec![0; MAX_METADATA_ENTRIES + 1]}));
        assert_eq!(
            e[0].message,
            "metadata.tags has 101 items; at most 100 items in one array"
        );
        assert!(
            validate_metadata(Some(
                (0..MAX_METADATA_ENTRIES)
                    .map(|i| (format!("k{i}"), Value::Null))
                    .collect()
            ))
            .is_ok()
        );
        let e = metadata_errors(serde_json::json!({"": 1}));
        assert!(e[0].message.contains("keys are 1 to 128 characters"));
        let long = "k".repeat(MAX_METADATA_KEY_LEN + 1);
        let e = metadata_errors(serde_json::json!({"outer": {long: 1}}));
        assert!(
            e[0].message
                .starts_with("metadata.outer has a key of 129 characters")
        );
        let ok = "k".repeat(MAX_METADATA_KEY_LEN);
        assert!(validate_metadata(Some(Map::from_iter([(ok, Value::Null)]))).is_ok());
    }

    #[test]
    fn metadata_numbers_stay_in_dynamodb_range() {
        for ok in [
            serde_json::json!(0),
            serde_json::json!(-0.0),
            serde_json::json!(u64::MAX),
            serde_json::json!(i64::MIN),
            serde_json::json!(1.5),
            serde_json::json!(9.99e125),
            serde_json::json!(-1e-130),
        ] {
            assert!(
                validate_metadata(Some(Map::from_iter([("n".to_owned(), ok.clone())]))).is_ok(),
                "{ok}"
            );
        }
        for bad in [1e126, -1e200, 1e-131, f64::MAX, f64::MIN_POSITIVE] {
            let e = metadata_errors(serde_json::json!({"n": [bad]}));
            assert_eq!(e.len(), 1);
            assert!(
                e[0].message.starts_with("metadata.n[0] is ")
                    && e[0]
                        .message
                        .ends_with("between 1e-130 and 1e126 in magnitude"),
                "{}",
                e[0].message
            );
        }
    }

    #[test]
    fn every_broken_metadata_limit_is_reported_once() {
        let e = metadata_errors(serde_json::json!({
            "": 1e300,
            "b": 1e300,
            "deep": nested(MAX_METADATA_DEPTH + 5),
            "pad": "x".repeat(MAX_METADATA_BYTES),
        }));
        let messages: Vec<_> = e.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(messages.len(), 4, "{messages:?}");
        assert!(e.iter().all(|f| f.field == "metadata"));
        assert!(messages[0].contains("levels"));
        assert!(messages[1].contains("characters"));
        assert!(messages[2].contains("magnitude"));
        assert!(messages[3].contains("bytes"));
        // Through the create rules, the same answer.
        let e = draft(serde_json::json!({"name": "x", "scopes": ["read"], "metadata": nested(31)}))
            .unwrap_err();
        assert_eq!(fields(e), ["metadata"]);
    }

    #[test]
    fn the_schema_states_the_limits_the_rules_apply() {
        let create = serde_json::to_value(schemars::schema_for!(CreateKeyRequest)).unwrap();
        let edit =
            serde_json::to_value(schemars::schema_for!(crate::edit::UpdateKeyRequest)).unwrap();
        for schema in [create, edit] {
            let text = schema["properties"]["metadata"]["description"]
                .as_str()
                .unwrap()
                .replace('\n', " ");
            for limit in [
                MAX_METADATA_BYTES,
                MAX_METADATA_DEPTH,
                MAX_METADATA_ENTRIES,
                MAX_METADATA_KEY_LEN,
            ] {
                assert!(text.contains(&format!(" {limit} ")), "{limit}: {text}");
            }
        }
    }

    #[test]
    fn a_rate_limit_is_a_json_integer_with_or_without_a_zero_fraction() {
        let rate = |v: serde_json::Value| {
            serde_json::from_value::<CreateKeyRequest>(
                serde_json::json!({"rate_limit_per_minute": v}),
            )
            .map(|r| r.rate_limit_per_minute)
        };
        assert_eq!(rate(serde_json::json!(60)).unwrap(), Some(60));
        assert_eq!(rate(serde_json::json!(60.0)).unwrap(), Some(60));
        assert_eq!(rate(serde_json::json!(null)).unwrap(), None);
        assert_eq!(rate(serde_json::json!(u64::MAX)).unwrap(), Some(i64::MAX));
        assert_eq!(rate(serde_json::json!(-1e300)).unwrap(), Some(i64::MIN));
        assert!(rate(serde_json::json!(60.5)).is_err());
        assert!(rate(serde_json::json!("60")).is_err());
        let absent: CreateKeyRequest = serde_json::from_value(serde_json::json!({})).unwrap();
        assert_eq!(absent.rate_limit_per_minute, None);
    }

    #[test]
    fn scopes_are_counted_as_given_and_in_all() {
        let many = vec!["read"; MAX_SCOPES + 1];
        let e = draft(serde_json::json!({"name": "x", "scopes": many})).unwrap_err();
        assert_eq!(fields(e), ["scopes"]);
        let (d, _) =
            draft(serde_json::json!({"name": "x", "scopes": vec!["read"; MAX_SCOPES]})).unwrap();
        assert_eq!(d.scopes.len(), 1, "duplicates are dropped");
    }

    proptest::proptest! {
        /// The pattern states what a pattern can of the name rule: every valid name matches
        /// it, and on plain text (where no Unicode rule applies) it is the rule.
        #[test]
        fn the_name_pattern_states_the_rule(
            s in "[ \t\u{3000}\u{85}\u{7}a\u{e9}]{0,4}|[ a\u{e9}]{125,131}"
        ) {
            let pattern = crate::pattern::tests::compile(&name_pattern());
            let valid = validate_name(Some(&s)).is_ok();
            if valid {
                proptest::prop_assert!(pattern.is_match(&s), "{:?}", s);
            }
            if s.chars().all(|c| c == ' ' || c == 'a' || c == '\t' || c == '\u{7}') {
                proptest::prop_assert_eq!(pattern.is_match(&s), valid, "{:?}", s);
            }
        }
    }

    #[test]
    fn status_derivation() {
        let (d, _) = draft(serde_json::json!({"name": "x", "scopes": ["read"], "expires_at": now() + Duration::hours(1)})).unwrap();
        let token = Token::generate(&crate::token::Prefix::live()).unwrap();
        let mut k = ApiKey::new(d, "acc", &token, "tester", now()).unwrap();
        assert!(k.id.starts_with("key_") && k.id.len() == 24);
        let later = now() + Duration::hours(2);
        assert_eq!(k.status_at(now()), KeyStatus::Active);
        assert_eq!(k.status_at(later), KeyStatus::Expired);
        k.status = KeyStatus::Inactive;
        assert_eq!(k.status_at(now()), KeyStatus::Inactive);
        assert_eq!(k.status_at(later), KeyStatus::Expired);
        k.status = KeyStatus::Revoked;
        assert_eq!(k.status_at(later), KeyStatus::Revoked, "revoked is final");
        assert!(k.is_final());
        assert_eq!(k.clone().as_of(later).status, KeyStatus::Revoked);
    }
}
