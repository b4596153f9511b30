//! Keys as code: the spec documents a team keeps in git (`ApiKey`, `SharingGroup`, `Preset`,
//! `RoutePolicy`), and the offline rules `keyward validate` applies to them: the same
//! validators as the API (so a spec refused by `validate` would be refused by the server with
//! the same words), names unique per kind, and references between the given documents.
//!
//! The JSON Schema of a spec file (`schemas/keyward-spec.schema.json`) is generated from
//! [`Spec`]; the plan diff against the server is [`crate::plan`].
//!
//! A spec manages what it says. Fields it leaves out take their defaults (an empty
//! description, list or metadata; no expiry; active), except `rate_limit_per_minute`, whose
//! default is a deployment setting: left out, it is set by the server on create and left as
//! it is afterwards.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::cidr::{CidrList, CidrText, MAX_CIDRS};
use crate::id::{IdText, check_id};
use crate::key::{
    CreateKeyRequest, KeyDraft, KeyRules, MAX_DESCRIPTION_LEN, MAX_GROUPS, MAX_SCOPES,
    MAX_WORKSPACES, NameText, RATE_LIMIT_DEFAULT, RATE_LIMIT_MAX, RATE_LIMIT_MIN,
    metadata_description, validate_description, validate_name, validate_scopes, whole_number,
};
use crate::lifecycle::{MAX_GRACE_SECONDS, grace_period};
use crate::managed::{MAX_GENERATION, Manager, initial_generation};
use crate::name::name_key;
use crate::permission::ScopeInput;
use crate::preset::{Preset, Presets};
use crate::route::{RoutePolicy, RoutePolicySpec as Routes, RouteSpec};
use crate::validation::FieldError;

/// The most documents one `validate`, `plan` or `apply` takes (keys, groups and presets).
pub const MAX_DOCUMENTS: usize = 10_000;

/// One document of a spec file, told apart by its `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind")]
pub enum Spec {
    ApiKey(Box<ApiKeySpec>),
    SharingGroup(SharingGroupSpec),
    Preset(PresetSpec),
    RoutePolicy(RoutePolicyDocument),
}

/// The kinds of document, as a spec file spells them.
pub const KINDS: [&str; 4] = ["ApiKey", "SharingGroup", "Preset", "RoutePolicy"];

impl Spec {
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::ApiKey(_) => "ApiKey",
            Self::SharingGroup(_) => "SharingGroup",
            Self::Preset(_) => "Preset",
            Self::RoutePolicy(_) => "RoutePolicy",
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Self::ApiKey(s) => &s.name,
            Self::SharingGroup(s) => &s.name,
            Self::Preset(s) => &s.name,
            Self::RoutePolicy(s) => &s.name,
        }
    }
}

/// An API key. Its `name` is its identity in the account: renaming it in git is a new key
/// (and, with `--prune`, the old one revoked).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeySpec {
    /// The key's identity: unique per account among keys that are not revoked (after NFKC case
    /// folding), 1 to 128 characters of one script.
    #[schemars(with = "NameText")]
    pub name: String,
    /// At most 1024 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_DESCRIPTION_LEN))]
    pub description: Option<String>,
    /// A built-in preset, one of this account's, or one a `Preset` document defines; its scopes
    /// come first and `scopes` are added to them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<IdText>")]
    pub preset: Option<String>,
    /// Roles (`agent:editor`), actions (`read`), toggles (`agents`) or `{action, resource}`; at
    /// least one with the preset's, at most 64.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_SCOPES))]
    pub scopes: Vec<ScopeInput>,
    /// Workspace ids, at most 40.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<IdText>", length(max = MAX_WORKSPACES))]
    pub workspaces: Vec<String>,
    /// Sharing groups by name: a `SharingGroup` document or a group the server has.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<NameText>", length(max = MAX_GROUPS))]
    pub groups: Vec<String>,
    /// Source ranges, at most 100; none admits every address.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<CidrText>", length(max = MAX_CIDRS))]
    pub allowed_cidrs: Vec<String>,
    /// Requests per minute within the deployment's bounds (these are the defaults). Left out:
    /// the deployment's default on create, and whatever the key has afterwards.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "whole_number"
    )]
    #[schemars(
        with = "Option<i64>",
        range(min = RATE_LIMIT_MIN, max = RATE_LIMIT_MAX),
        extend("default" = RATE_LIMIT_DEFAULT)
    )]
    pub rate_limit_per_minute: Option<i64>,
    /// RFC 3339, in the future; left out, the key never expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// `false` deactivates the key (it can be reactivated); default `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = true))]
    pub active: Option<bool>,
    /// The secret's generation: raise it to regenerate the secret (a reviewed rotation).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "whole_number"
    )]
    #[schemars(with = "Option<i64>", range(min = 1, max = MAX_GENERATION), extend("default" = 1))]
    pub generation: Option<i64>,
    /// How long the old secret keeps verifying when `generation` rises, in seconds (at most 7
    /// days; default 0: it stops at once).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "whole_number"
    )]
    #[schemars(with = "Option<i64>", range(min = 0, max = MAX_GRACE_SECONDS), extend("default" = 0))]
    pub grace_period_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(description = metadata_description())]
    pub metadata: Option<Map<String, Value>>,
    /// Where the secret goes when apply creates or regenerates the key: required then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretSpec>,
}

/// Where a new secret goes. Never into git, a plan, a log or a state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "sink", deny_unknown_fields)]
pub enum SecretSpec {
    /// Printed once on apply's standard output.
    #[serde(rename = "stdout")]
    Stdout,
    /// A file created with mode 0600; a relative path is relative to the spec file. A file
    /// holding another secret is never overwritten.
    #[serde(rename = "file")]
    File {
        #[schemars(length(min = 1, max = 4096))]
        path: String,
    },
    /// An AWS Secrets Manager secret (name or ARN), created when missing, else a new version.
    #[serde(rename = "aws-secretsmanager")]
    SecretsManager {
        #[schemars(length(min = 1, max = 2048))]
        secret_id: String,
    },
    /// An SSM Parameter Store parameter, written as a `SecureString`.
    #[serde(rename = "aws-ssm")]
    Ssm {
        #[schemars(length(min = 1, max = 2048))]
        parameter: String,
    },
}

impl SecretSpec {
    /// Checks the sink's own fields (an empty path or id is refused; the AWS services check
    /// the rest).
    fn check(&self) -> Option<FieldError> {
        let (field, value) = match self {
            Self::Stdout => return None,
            Self::File { path } => ("secret.path", path),
            Self::SecretsManager { secret_id } => ("secret.secret_id", secret_id),
            Self::Ssm { parameter } => ("secret.parameter", parameter),
        };
        let bad = value.trim().is_empty() || value.chars().any(char::is_control);
        bad.then(|| FieldError::new(field, "must not be empty or hold control characters"))
    }

    /// How the sink is shown in a plan: where the secret will go, never the secret.
    pub fn describe(&self) -> String {
        match self {
            Self::Stdout => "stdout".into(),
            Self::File { path } => format!("file {path}"),
            Self::SecretsManager { secret_id } => format!("aws-secretsmanager {secret_id}"),
            Self::Ssm { parameter } => format!("aws-ssm {parameter}"),
        }
    }
}

/// A sharing group: keys in it share ownership of what they create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SharingGroupSpec {
    #[schemars(with = "NameText")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_DESCRIPTION_LEN))]
    pub description: Option<String>,
}

/// An account preset: scopes a key may start from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PresetSpec {
    /// Not one of the built-in presets.
    #[schemars(with = "IdText")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_DESCRIPTION_LEN))]
    pub description: Option<String>,
    #[schemars(length(min = 1, max = MAX_SCOPES))]
    pub scopes: Vec<ScopeInput>,
}

/// A route policy for the authorizer and the local gateway; validated here, never stored on
/// the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutePolicyDocument {
    #[schemars(with = "IdText")]
    pub name: String,
    /// Tried in order; the first route whose method and path match decides.
    pub routes: Vec<RouteSpec>,
}

impl RoutePolicyDocument {
    pub fn routes(&self) -> Routes {
        Routes {
            routes: self.routes.clone(),
        }
    }
}

/// Where the schema of spec files is published in this repository.
pub const SCHEMA_FILE: &str = "schemas/keyward-spec.schema.json";

/// The JSON Schema of a spec file, generated from [`Spec`]: one document (an object with a
/// `kind`) or, in a JSON file, an array of them. Each document may name this schema in a
/// `$schema` member, so editors validate and complete it.
pub fn json_schema() -> Value {
    let mut document = serde_json::to_value(schemars::schema_for!(Spec)).unwrap_or_default();
    let defs = document
        .as_object_mut()
        .and_then(|d| d.remove("$defs"))
        .unwrap_or_else(|| Value::Object(Map::new()));
    if let Some(kinds) = document.get_mut("oneOf").and_then(Value::as_array_mut) {
        for kind in kinds {
            if let Some(props) = kind.get_mut("properties").and_then(Value::as_object_mut) {
                props.insert(
                    "$schema".into(),
                    serde_json::json!({"type": "string", "description": "The JSON Schema of this document (for editors)."}),
                );
            }
        }
    }
    if let Some(d) = document.as_object_mut() {
        d.remove("$schema");
        d.remove("title");
    }
    let mut defs = match defs {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    defs.insert("Document".into(), document);
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://keyward.dev/schemas/keyward-spec.schema.json",
        "title": "keyward spec",
        "description": "A keyward spec file: keys, sharing groups, presets and route policies as code (`keyward validate`, `plan`, `apply`). YAML files hold one document per `---`; JSON files an object or an array of them.",
        "oneOf": [
            {"$ref": "#/$defs/Document"},
            {"type": "array", "items": {"$ref": "#/$defs/Document"}}
        ],
        "$defs": defs,
    })
}

/// The schema one document of `kind` must meet (for validators that report by document).
pub fn document_schema(kind: &str) -> Option<Value> {
    let root = json_schema();
    let variant = root["$defs"]["Document"]["oneOf"]
        .as_array()?
        .iter()
        .find(|v| v["properties"]["kind"]["const"] == kind)?
        .clone();
    let mut schema = variant;
    if let Some(s) = schema.as_object_mut() {
        s.insert("$defs".into(), root["$defs"].clone());
        s.insert(
            "$schema".into(),
            Value::String("https://json-schema.org/draft/2020-12/schema".into()),
        );
    }
    Some(schema)
}

/// A route policy from the JSON of a policy file: `{"routes": [...]}`, or a `RoutePolicy`
/// spec document (`kind`, `name`, `routes`, and optionally `$schema`), so the file kept with
/// the specs is the one the authorizer and the local gateway load.
pub fn route_policy_from_json(text: &str) -> Result<Routes, String> {
    let mut value: Value =
        serde_json::from_str(text).map_err(|e| format!("not a route policy: {e}"))?;
    let Some(object) = value.as_object_mut() else {
        return Err("not a route policy: expected a JSON object".into());
    };
    if object.get("kind").and_then(Value::as_str) == Some("RoutePolicy") {
        object.remove("kind");
        object.remove("$schema");
        let document: RoutePolicyDocument = serde_json::from_value(value)
            .map_err(|e| format!("not a RoutePolicy document: {e}"))?;
        return Ok(document.routes());
    }
    serde_json::from_value(value).map_err(|e| format!("not a route policy: {e}"))
}

/// An error in one document: the field as the API names it (`scopes[1]`), and the rule's text.
pub type SpecError = FieldError;

/// The JSON pointer of an API field name: `scopes[1].resource` is `/scopes/1/resource`.
pub fn pointer_of(field: &str) -> String {
    let mut out = String::new();
    for part in field.split('.') {
        let (head, rest) = part.split_once('[').unwrap_or((part, ""));
        if !head.is_empty() {
            out.push('/');
            out.push_str(&head.replace('~', "~0").replace('/', "~1"));
        }
        for index in rest.split('[') {
            let index = index.trim_end_matches(']');
            if !index.is_empty() {
                out.push('/');
                out.push_str(index);
            }
        }
    }
    out
}

/// What the offline rules know beyond one document: the presets it may name (built-ins and
/// the given `Preset` documents), the deployment's key rules, and the time.
#[derive(Debug, Clone)]
pub struct Context {
    pub rules: KeyRules,
    pub presets: Presets,
    pub now: DateTime<Utc>,
}

impl Context {
    /// The built-in presets plus those `specs` define (valid ones).
    pub fn offline(specs: &[&Spec], now: DateTime<Utc>) -> Self {
        let own = specs
            .iter()
            .filter_map(|s| match s {
                Spec::Preset(p) => p.to_preset().ok(),
                _ => None,
            })
            .collect();
        Self {
            rules: KeyRules::default(),
            presets: Presets::builtin().extended(own),
            now,
        }
    }
}

impl PresetSpec {
    /// The preset, its scopes normalised as a key's are.
    pub fn to_preset(&self) -> Result<Preset, Vec<FieldError>> {
        let mut errors = Vec::new();
        if let Err(e) = check_id("name", &self.name) {
            errors.push(e);
        }
        if Presets::builtin().get(&self.name).is_some() {
            errors.push(FieldError::new(
                "name",
                format!(
                    "'{}' is a built-in preset and cannot be redefined",
                    self.name
                ),
            ));
        }
        let description = validate_description(self.description.as_deref())
            .map_err(|e| errors.extend(e))
            .unwrap_or_default();
        let scopes = validate_scopes(&self.scopes)
            .map_err(|e| errors.extend(e))
            .unwrap_or_default();
        if errors.is_empty() {
            Ok(Preset {
                name: self.name.clone(),
                description,
                scopes,
            })
        } else {
            Err(errors)
        }
    }
}

impl ApiKeySpec {
    /// The create request this spec makes for `manager`, with `groups` as the server's ids for
    /// its names.
    pub fn create_request(&self, group_ids: Vec<String>, manager: Manager) -> CreateKeyRequest {
        CreateKeyRequest {
            name: Some(self.name.clone()),
            description: self.description.clone(),
            preset: self.preset.clone(),
            scopes: Some(self.scopes.clone()),
            workspaces: Some(self.workspaces.clone()),
            groups: Some(group_ids),
            allowed_cidrs: Some(self.allowed_cidrs.clone()),
            rate_limit_per_minute: self.rate_limit_per_minute,
            expires_at: self.expires_at,
            metadata: self.metadata.clone(),
            secrets_manager_secret_id: None,
            managed_by: Some(manager),
            generation: self.generation,
        }
    }

    /// The key this spec describes, validated by the rules of create: every broken rule, by
    /// field. Group names are checked by the name rule (plan resolves them to ids); a preset
    /// only the server knows is left to plan.
    pub fn draft(&self, ctx: &Context) -> Result<KeyDraft, Vec<FieldError>> {
        let mut errors = Vec::new();
        for (i, group) in self.groups.iter().enumerate() {
            if let Err(e) = validate_name(Some(group)) {
                let field = format!("groups[{i}]");
                errors.extend(e.into_iter().map(|e| FieldError::new(&field, e.message)));
            }
        }
        if let Some(secret) = &self.secret
            && let Some(e) = secret.check()
        {
            errors.push(e);
        }
        if let Err(e) = grace_period(self.grace_period_seconds) {
            errors.push(e);
        }
        if let Err(e) = initial_generation(self.generation) {
            errors.push(e);
        }
        // The core's own create rules, with group ids that pass the id rule (the names were
        // checked above) and a preset known here or left to plan.
        let mut request = self.create_request(vec![], Manager::Spec);
        let known_preset = self
            .preset
            .as_deref()
            .is_none_or(|p| ctx.presets.get(p).is_some());
        if !known_preset {
            request.preset = None;
            if self.scopes.is_empty() {
                // The server's preset may grant the scopes: plan checks.
                request.scopes = Some(vec![ScopeInput::from("read")]);
            }
        }
        // An expiry that has passed is a fact about time, not about the file: a spec stays
        // valid when its key expires. Plan refuses what the server would (a new key, or an
        // expiry moved, into the past).
        request.expires_at = None;
        match KeyDraft::from_request(request, &ctx.rules, &ctx.presets, ctx.now) {
            Ok((mut draft, _)) if errors.is_empty() => {
                draft.expires_at = self.expires_at;
                Ok(draft)
            }
            Ok(_) => Err(errors),
            Err(e) => {
                errors.extend(e.0);
                Err(errors)
            }
        }
    }

    /// The spec's allowed ranges as the server keeps them.
    pub fn cidrs(&self) -> Result<CidrList, Vec<FieldError>> {
        CidrList::parse("allowed_cidrs", &self.allowed_cidrs).map(|(list, _)| list)
    }
}

/// Checks one document offline: every broken rule, by field.
pub fn check(spec: &Spec, ctx: &Context) -> Vec<FieldError> {
    match spec {
        Spec::ApiKey(key) => key.draft(ctx).err().unwrap_or_default(),
        Spec::SharingGroup(group) => {
            let mut errors = validate_name(Some(&group.name)).err().unwrap_or_default();
            errors.extend(
                validate_description(group.description.as_deref())
                    .err()
                    .unwrap_or_default(),
            );
            errors
        }
        Spec::Preset(preset) => preset.to_preset().err().unwrap_or_default(),
        Spec::RoutePolicy(policy) => {
            let mut errors: Vec<FieldError> =
                check_id("name", &policy.name).err().into_iter().collect();
            if let Err(e) = RoutePolicy::compile(&policy.routes()) {
                errors.extend(e.0);
            }
            errors
        }
    }
}

/// A problem across documents, naming the document (by its index in the slice checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetError {
    pub document: usize,
    pub error: FieldError,
    /// The other document involved (the first definition of a name defined twice).
    pub also: Option<usize>,
}

/// Checks the documents together: names unique per kind (key and group names as the server
/// compares them, after case folding), and the group and preset references the documents can
/// answer. A group or preset that is neither built in nor given here may be the server's:
/// plan checks those.
pub fn check_set(specs: &[&Spec]) -> Vec<SetError> {
    let mut errors = Vec::new();
    let mut seen: BTreeMap<(&str, String), usize> = BTreeMap::new();
    for (i, spec) in specs.iter().enumerate() {
        let folded = match spec {
            Spec::ApiKey(_) | Spec::SharingGroup(_) => name_key(spec.name().trim()),
            _ => spec.name().to_owned(),
        };
        if let Some(first) = seen.insert((spec.kind(), folded), i) {
            errors.push(SetError {
                document: i,
                error: FieldError::new(
                    "name",
                    format!("{} '{}' is defined twice", spec.kind(), spec.name()),
                ),
                also: Some(first),
            });
        }
    }
    for (i, spec) in specs.iter().enumerate() {
        let Spec::ApiKey(key) = spec else { continue };
        let mut seen_groups = BTreeSet::new();
        for (g, group) in key.groups.iter().enumerate() {
            if !seen_groups.insert(name_key(group.trim())) {
                errors.push(SetError {
                    document: i,
                    error: FieldError::new(
                        format!("groups[{g}]"),
                        format!("group '{group}' is listed twice"),
                    ),
                    also: None,
                });
            }
        }
    }
    errors
}

/// The group names a key spec names that no given `SharingGroup` defines (plan looks for them
/// on the server).
pub fn groups_not_given<'a>(key: &'a ApiKeySpec, specs: &[&Spec]) -> Vec<&'a str> {
    let given: BTreeSet<String> = specs
        .iter()
        .filter_map(|s| match s {
            Spec::SharingGroup(g) => Some(name_key(g.name.trim())),
            _ => None,
        })
        .collect();
    key.groups
        .iter()
        .filter(|g| !given.contains(&name_key(g.trim())))
        .map(String::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(value: Value) -> Spec {
        serde_json::from_value(value).unwrap()
    }

    fn ctx() -> Context {
        Context::offline(&[], Utc::now())
    }

    #[test]
    fn documents_read_by_kind() {
        let s = spec(json!({
            "kind": "ApiKey", "name": "ci", "scopes": ["agent:editor", {"action": "read", "resource": "projects/*"}],
            "secret": {"sink": "file", "path": "secrets/ci.key"}
        }));
        assert_eq!((s.kind(), s.name()), ("ApiKey", "ci"));
        let Spec::ApiKey(k) = &s else { unreachable!() };
        assert_eq!(
            k.secret,
            Some(SecretSpec::File {
                path: "secrets/ci.key".into()
            })
        );
        assert!(check(&s, &ctx()).is_empty());
        for bad in [
            json!({"kind": "ApiKey", "name": "x", "scopes": ["read"], "colour": "red"}),
            json!({"kind": "Nope", "name": "x"}),
            json!({"kind": "ApiKey", "name": "x", "secret": {"sink": "file"}}),
        ] {
            assert!(serde_json::from_value::<Spec>(bad).is_err());
        }
    }

    #[test]
    fn the_api_rules_apply_with_their_own_words() {
        let s = spec(json!({
            "kind": "ApiKey", "name": " ", "scopes": ["agent:admin", "read"],
            "allowed_cidrs": ["10.0.0.0/33"], "rate_limit_per_minute": 0,
            "groups": ["ok", ""], "generation": 0, "grace_period_seconds": -1,
            "secret": {"sink": "file", "path": ""}
        }));
        let errors = check(&s, &ctx());
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "name",
            "scopes[0]",
            "allowed_cidrs[0]",
            "rate_limit_per_minute",
            "groups[1]",
            "generation",
            "grace_period_seconds",
            "secret.path",
        ] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
        let role = errors.iter().find(|e| e.field == "scopes[0]").unwrap();
        assert!(
            role.message.contains("discoverer") && role.message.contains("owner"),
            "an invalid pairing names the valid roles: {}",
            role.message
        );
    }

    #[test]
    fn presets_given_here_count_and_server_ones_wait_for_plan() {
        let preset =
            spec(json!({"kind": "Preset", "name": "ci-runner", "scopes": ["agent:executor"]}));
        let uses = spec(json!({"kind": "ApiKey", "name": "k", "preset": "ci-runner"}));
        let ctx = Context::offline(&[&preset], Utc::now());
        assert!(check(&uses, &ctx).is_empty());
        let elsewhere = spec(json!({"kind": "ApiKey", "name": "k", "preset": "the-servers"}));
        assert!(check(&elsewhere, &ctx).is_empty());
        let builtin = spec(json!({"kind": "Preset", "name": "deploy", "scopes": ["read"]}));
        assert!(check(&builtin, &ctx)[0].message.contains("built-in"));
        let empty = spec(json!({"kind": "ApiKey", "name": "k", "preset": "custom"}));
        assert!(check(&empty, &ctx)[0].message.contains("grants no scopes"));
    }

    #[test]
    fn names_are_unique_per_kind_as_the_server_folds_them() {
        let docs = [
            spec(json!({"kind": "ApiKey", "name": "CI", "scopes": ["read"]})),
            spec(json!({"kind": "SharingGroup", "name": "ci"})),
            spec(
                json!({"kind": "ApiKey", "name": "ci", "scopes": ["read"], "groups": ["ci", "CI"]}),
            ),
        ];
        let refs: Vec<&Spec> = docs.iter().collect();
        let errors = check_set(&refs);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].document, 2);
        assert!(errors[0].error.message.contains("defined twice"));
        assert_eq!(errors[0].also, Some(0));
        assert_eq!(errors[1].error.field, "groups[1]");
        let Spec::ApiKey(k) = &docs[2] else {
            unreachable!()
        };
        assert!(groups_not_given(k, &refs).is_empty());
    }

    #[test]
    fn route_policies_compile() {
        let ok = spec(
            json!({"kind": "RoutePolicy", "name": "agents-api", "routes": [
                {"method": "GET", "path": "/agents/{agent_id}", "action": "read", "resource": "agents/{agent_id}"}
            ]}),
        );
        assert!(check(&ok, &ctx()).is_empty());
        let bad = spec(json!({"kind": "RoutePolicy", "name": "x", "routes": [
            {"method": "GET", "path": "/agents/{a}", "action": "read", "resource": "agents/{b}"}
        ]}));
        assert!(!check(&bad, &ctx()).is_empty());
    }

    #[test]
    fn a_policy_file_is_either_shape() {
        let routes = r#"[{"method": "GET", "path": "/a", "action": "read", "resource": "a"}]"#;
        let bare = route_policy_from_json(&format!(r#"{{"routes": {routes}}}"#)).unwrap();
        let document = route_policy_from_json(&format!(
            r#"{{"$schema": "x", "kind": "RoutePolicy", "name": "api", "routes": {routes}}}"#
        ))
        .unwrap();
        assert_eq!(bare, document);
        assert!(route_policy_from_json(r#"{"kind": "RoutePolicy", "routes": []}"#).is_err());
        assert!(route_policy_from_json("[1]").is_err());
    }

    #[test]
    fn fields_become_pointers() {
        assert_eq!(pointer_of("scopes[1]"), "/scopes/1");
        assert_eq!(pointer_of("secret.path"), "/secret/path");
        assert_eq!(pointer_of("name"), "/name");
        assert_eq!(pointer_of("routes[2].resource"), "/routes/2/resource");
    }
}
