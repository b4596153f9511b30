//! `keyward_api_key`: an API key, with the field names of the `ApiKey` spec (DESIGN.md).
//!
//! - **Create** checks the sink, creates the key `managed_by: terraform`, and delivers the
//!   secret to the sink. State keeps `start` and `last4`, never the secret.
//! - **Update** is in place: the `PATCH` that `keyward plan` would make (the core's
//!   [`key_changes`]), sent with `If-Match` on the version Terraform last read; raising
//!   `generation` regenerates the secret into the sink with `grace_period_seconds`.
//! - **Read** shows the key as the server has it, in the configuration's own spellings where
//!   they mean the same (a preset's scopes, `10.0.0.1` for `10.0.0.1/32`), so only real changes
//!   show as drift. A key deleted or revoked outside Terraform is gone, and planned again.
//! - **Destroy** revokes (freeing the name), or deletes with `on_destroy = "delete"`.
//! - A key `keyward apply` manages (`managed_by: spec`) is never changed or imported.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use keyward_api::keys::{ApiKey, KeyStatus, RegenerateRequest};
use keyward_client::{KeyFilter, StatusFilter};
use keyward_core::cidr::CidrList;
use keyward_core::group::{Group, names_of};
use keyward_core::key::KeyRules;
use keyward_core::managed::Manager;
use keyward_core::name::{name_key, validate_name};
use keyward_core::permission::{Scope, ScopeInput};
use keyward_core::plan::key_changes;
use keyward_core::preset::Presets;
use keyward_core::spec::{ApiKeySpec, Context};
use keyward_sinks::{Delivery, Fingerprint, Target};
use serde_json::{Map, Value as Json};

use super::{Planned, Resource};
use crate::api::Api;
use crate::convert::{metadata, number, opt_time, time};
use crate::cty::{Type, Value};
use crate::diag::{Diagnostic, Diagnostics, has_errors};
use crate::schema::{Attribute, Block, Mode};

const TERRAFORM: &str = "terraform";

#[derive(Debug, Default)]
pub struct ApiKeyResource;

static SCHEMA: LazyLock<Block> = LazyLock::new(|| {
    Block {
    description: "An API key. Its secret is shown once, at create and on each rotation, and goes to the sink `secret` names: never to Terraform state or a plan.".into(),
    attributes: vec![
        Attribute::computed("id", Type::String, "The key's id."),
        Attribute::required("name", Type::String, "Unique per account among keys that are not revoked (compared after NFKC case folding); 1 to 128 characters of one script."),
        Attribute::optional("description", Type::String, "At most 1024 characters."),
        Attribute::optional("preset", Type::String, "A built-in preset or one of the account's (`keyward_preset`): its scopes come first and `scopes` are added to them."),
        Attribute::optional("scopes", Type::set_of_strings(), "Roles (`agent:editor`), actions (`read`), toggles (`agents`) or explicit `action:resource` scopes (`read:projects/*`); at least one with the preset's, at most 64."),
        Attribute::optional("workspaces", Type::set_of_strings(), "Workspace ids, at most 40."),
        Attribute::optional("groups", Type::set_of_strings(), "Sharing group names (`keyward_sharing_group.x.name`), at most 100."),
        Attribute::optional("allowed_cidrs", Type::set_of_strings(), "Source ranges, at most 100; none admits every address. `0.0.0.0/0` and `::/0` are accepted with a warning."),
        Attribute::optional_computed("rate_limit_per_minute", Type::Number, "Requests per minute within the deployment's bounds (default 1 to 600). Left out: the deployment's default (60) on create, and whatever the key has afterwards."),
        Attribute::optional("expires_at", Type::String, "RFC 3339, in the future; left out, the key never expires."),
        Attribute::optional_computed("active", Type::Bool, "`false` deactivates the key (it can be reactivated). Default `true`: a key deactivated outside Terraform is reactivated."),
        Attribute::optional_computed("generation", Type::Number, "The secret's generation: raise it to regenerate the secret into the sink (a reviewed rotation). Default 1."),
        Attribute::optional("grace_period_seconds", Type::Number, "How long the old secret keeps verifying when `generation` rises, in seconds (0 to 604800; default 0: it stops at once)."),
        Attribute::optional("metadata", Type::map_of_strings(), "Free-form labels (at most 32 keys)."),
        Attribute::nested(
            "secret",
            Mode::Optional,
            vec![
                Attribute::required("sink", Type::String, "`file`, `aws-secretsmanager` or `aws-ssm`."),
                Attribute::optional("path", Type::String, "`file`: the file, created with mode 0600; a file holding another secret is never overwritten."),
                Attribute::optional("secret_id", Type::String, "`aws-secretsmanager`: the secret's name (created when missing) or ARN."),
                Attribute::optional("parameter", Type::String, "`aws-ssm`: the parameter's name, written as a SecureString."),
            ],
            "Where the secret goes on create and whenever `generation` rises (required then). Changing it alone moves nothing: the next secret goes there.",
        ),
        Attribute::optional("on_destroy", Type::String, "`revoke` (default: the key stops at once and frees its name, and its record stays for audit) or `delete` (the record is removed too)."),
        Attribute::computed("start", Type::String, "The secret's prefix and first 4 random characters, for recognising it."),
        Attribute::computed("last4", Type::String, "The secret's last 4 characters."),
        Attribute::computed("status", Type::String, "`active`, `inactive` or `expired`."),
        Attribute::computed("version", Type::Number, "The record's version; every change raises it."),
        Attribute::computed("created_at", Type::String, "When the key was created (RFC 3339)."),
        Attribute::computed("managed_by", Type::String, "`terraform` for keys this provider manages (an imported key becomes one at the next apply)."),
        Attribute::computed("previous_secret_expires_at", Type::String, "During a rotation's grace: when the previous secret stops verifying."),
    ],
}
});

impl Resource for ApiKeyResource {
    fn type_name(&self) -> &'static str {
        "keyward_api_key"
    }

    fn schema(&self) -> &Block {
        &SCHEMA
    }

    fn validate(&self, config: &Value) -> Diagnostics {
        let mut diagnostics = Vec::new();
        if let Err(d) = target(config.get("secret")) {
            diagnostics.push(d);
        }
        let on_destroy = config.get("on_destroy");
        if let Some(text) = on_destroy.as_str()
            && !matches!(text, "revoke" | "delete")
        {
            diagnostics.push(
                Diagnostic::error(
                    "Invalid on_destroy",
                    format!("'{text}' is not one of: revoke, delete"),
                )
                .at("on_destroy"),
            );
        }
        // The core's rules of create, once the values they read are known. A group or preset
        // name is checked as a name here; that the server has it is checked at apply.
        if let Some(map) = config.get("metadata").as_map()
            && let Some((k, _)) = map.iter().find(|(_, v)| v.is_null())
        {
            diagnostics.push(
                Diagnostic::error(
                    "Invalid metadata",
                    format!("metadata.{k} is null: give a string, or leave the label out"),
                )
                .at("metadata"),
            );
        }
        let mut checked = config.clone();
        if !checked.get("groups").is_wholly_known() {
            checked.set("groups", Value::Null);
        }
        if let Some(text) = checked.get("expires_at").as_str()
            && DateTime::parse_from_rfc3339(text).is_err()
        {
            diagnostics.push(invalid_time(text));
            checked.set("expires_at", Value::Null);
        }
        // A preset named by reference (`keyward_preset.x.name`) is unknown while validating:
        // the rules run without it unless its scopes could be all the key has.
        if checked.get("preset").is_unknown()
            && checked
                .get("scopes")
                .string_list()
                .is_some_and(|s| !s.is_empty())
        {
            checked.set("preset", Value::Null);
        }
        if [
            "name",
            "preset",
            "scopes",
            "workspaces",
            "groups",
            "allowed_cidrs",
            "rate_limit_per_minute",
            "expires_at",
            "generation",
            "grace_period_seconds",
            "metadata",
            "description",
        ]
        .iter()
        .all(|a| checked.get(a).is_wholly_known())
        {
            match spec_of(&checked) {
                Ok(spec) => {
                    let ctx = Context {
                        rules: rules(),
                        presets: Presets::builtin(),
                        now: Utc::now(),
                    };
                    if let Err(errors) = spec.draft(&ctx) {
                        diagnostics.extend(Diagnostic::fields(errors));
                    }
                }
                Err(d) => diagnostics.extend(d),
            }
        }
        diagnostics
    }

    fn plan(
        &self,
        _api: &Api,
        prior: &Value,
        proposed: &Value,
        config: &Value,
    ) -> Result<Planned, Diagnostics> {
        // The rules again, now that references made while validating are known.
        let refused = self.validate(config);
        if has_errors(&refused) {
            return Err(refused);
        }
        let mut planned = proposed.clone();
        if prior.is_null() {
            if config.get("secret").is_null() {
                return Err(vec![
                    Diagnostic::error(
                        "A new key needs a secret sink",
                        "The secret is shown once, when the key is created: add a `secret` block (file, aws-secretsmanager or aws-ssm) to say where it goes.",
                    )
                    .at("secret"),
                ]);
            }
            for computed in [
                "id",
                "start",
                "last4",
                "status",
                "version",
                "created_at",
                "previous_secret_expires_at",
            ] {
                planned.set(computed, Value::Unknown);
            }
            planned.set("managed_by", Value::string(TERRAFORM));
            default(&mut planned, config, "active", Value::Bool(true));
            default(&mut planned, config, "generation", Value::Number(1));
            default(
                &mut planned,
                config,
                "rate_limit_per_minute",
                Value::Unknown,
            );
            return Ok(Planned {
                state: planned,
                ..Planned::default()
            });
        }

        if prior.get("managed_by").as_str() == Some("spec") {
            return Err(vec![Diagnostic::error(
                "Key managed by keyward apply",
                format!(
                    "Key {} is managed by spec files (keyward apply), and this provider never changes it. Remove it from the specs first, or remove this resource from Terraform (terraform state rm).",
                    prior.get("id").as_str().unwrap_or_default()
                ),
            )]);
        }
        // Left out, a key is active (as in a spec file): a key deactivated elsewhere is drift.
        default(&mut planned, config, "active", Value::Bool(true));
        if planned == *prior {
            // No change: Terraform calls no apply.
            return Ok(Planned {
                state: planned,
                ..Planned::default()
            });
        }
        let mut diagnostics = Vec::new();
        let from = prior.get("generation").as_i64().unwrap_or(1);
        let to = planned.get("generation");
        if let Some(to) = to.as_i64()
            && to < from
        {
            return Err(vec![
                Diagnostic::error(
                    "Generation below the key's",
                    format!(
                        "generation {to} is below the key's {from}: its secret was regenerated outside Terraform. Set generation to {from} to accept that secret, or above {from} to regenerate it."
                    ),
                )
                .at("generation"),
            ]);
        }
        let rotates = to.as_i64().is_none_or(|to| to > from);
        if rotates && config.get("secret").is_null() {
            return Err(vec![
                Diagnostic::error(
                    "A new secret needs a sink",
                    "Raising generation regenerates the secret, which is shown once: add a `secret` block to say where it goes.",
                )
                .at("secret"),
            ]);
        }
        let server_fields = [
            "name",
            "description",
            "preset",
            "scopes",
            "workspaces",
            "groups",
            "allowed_cidrs",
            "rate_limit_per_minute",
            "expires_at",
            "active",
            "metadata",
        ];
        let edits = server_fields.iter().any(|f| planned.get(f) != prior.get(f))
            || prior.get("managed_by").as_str() != Some(TERRAFORM);
        if edits || rotates {
            planned.set("version", Value::Unknown);
            planned.set("managed_by", Value::string(TERRAFORM));
        }
        // An update: time moves between plan and apply (the key may expire, a grace may end).
        planned.set("status", Value::Unknown);
        planned.set("previous_secret_expires_at", Value::Unknown);
        if rotates {
            for computed in ["start", "last4"] {
                planned.set(computed, Value::Unknown);
            }
        }
        if ["scopes", "allowed_cidrs"]
            .iter()
            .any(|f| planned.get(f) != prior.get(f))
        {
            diagnostics.push(Diagnostic::warning(
                "Live callers may break",
                format!(
                    "This changes the scopes or allowed ranges of key {}: callers using it may be refused after apply.",
                    prior.get("name").as_str().unwrap_or_default()
                ),
            ));
        }
        Ok(Planned {
            state: planned,
            requires_replace: Vec::new(),
            diagnostics,
        })
    }

    fn apply(&self, api: &Api, prior: &Value, planned: &Value) -> (Value, Diagnostics) {
        let result = if planned.is_null() {
            destroy(api, prior).map(|()| Value::Null)
        } else if prior.is_null() {
            return create(api, planned);
        } else {
            return update(api, prior, planned);
        };
        match result {
            Ok(state) => (state, Vec::new()),
            Err(d) => (prior.clone(), d),
        }
    }

    fn read(&self, api: &Api, state: &Value) -> Result<Value, Diagnostics> {
        let id = state.get("id").as_str().unwrap_or_default();
        let key = match api.client.get_key(id) {
            Ok(key) => key,
            Err(e) if e.is_not_found() => return Ok(Value::Null),
            Err(e) => return Err(vec![Diagnostic::api(&format!("reading key {id}"), &e)]),
        };
        if key.status == KeyStatus::Revoked {
            // Revoked outside Terraform: it can never verify again, so it is gone.
            return Ok(Value::Null);
        }
        state_of(api, &key, state)
    }

    fn import(&self, api: &Api, id: &str) -> Result<Value, Diagnostics> {
        let key = api
            .client
            .get_key(id)
            .map_err(|e| vec![Diagnostic::api(&format!("reading key {id}"), &e)])?;
        if key.status == KeyStatus::Revoked {
            return Err(vec![Diagnostic::error(
                "Cannot import a revoked key",
                format!("Key {id} is revoked: it can never verify again."),
            )]);
        }
        if key.managed_by == Some(Manager::Spec) {
            return Err(vec![Diagnostic::error(
                "Key managed by keyward apply",
                format!(
                    "Key {id} is managed by spec files (keyward apply); remove it from the specs and run keyward apply before importing it into Terraform."
                ),
            )]);
        }
        state_of(api, &key, &SCHEMA.null_object())
    }
}

/// The rules of create, but for the rate limit's bounds: those are the deployment's, and the
/// server applies them.
fn rules() -> KeyRules {
    KeyRules {
        rate_limit_min: 1,
        rate_limit_max: u32::MAX,
        ..KeyRules::default()
    }
}

/// Sets `attribute` to `value` when the configuration leaves it out.
fn default(planned: &mut Value, config: &Value, attribute: &str, value: Value) {
    if config.get(attribute).is_null() {
        planned.set(attribute, value);
    }
}

fn create(api: &Api, planned: &Value) -> (Value, Diagnostics) {
    let fail = |d: Diagnostics| (Value::Null, d);
    let spec = match spec_of(planned) {
        Ok(spec) => spec,
        Err(d) => return fail(d),
    };
    let target = match target(planned.get("secret")) {
        Ok(Some(target)) => target,
        Ok(None) => {
            return fail(vec![
                Diagnostic::error("A new key needs a secret sink", "add a `secret` block")
                    .at("secret"),
            ]);
        }
        Err(d) => return fail(vec![d]),
    };
    let groups = match api.groups() {
        Ok(groups) => groups,
        Err(e) => return fail(vec![Diagnostic::api("listing sharing groups", &e)]),
    };
    let ids = match group_ids(&spec.groups, &groups) {
        Ok(ids) => ids,
        Err(d) => return fail(vec![d]),
    };
    // A file left by a revoked key of this name (a destroy, then a create) may be replaced.
    let replaced = match last_revoked(api, &spec.name) {
        Ok(key) => key,
        Err(d) => return fail(vec![d]),
    };
    let replaces = replaced.as_ref().map(|k| Fingerprint {
        start: &k.start,
        last4: &k.last4,
    });
    if let Err(e) = api.sinks.check(&target, replaces) {
        return fail(vec![
            Diagnostic::error("The secret's sink refuses it", e.to_string()).at("secret"),
        ]);
    }
    let created = match api
        .client
        .create_key(&spec.create_request(ids, Manager::Terraform), None)
    {
        Ok(created) => created,
        Err(e) => {
            let mut d = Diagnostic::api(&format!("creating key {}", spec.name), &e);
            if e.is_conflict() {
                d.detail.push_str(&format!(
                    "\n\nIf that key is the one this resource should manage, import it: terraform import <address> <key id> (keyward keys list --q '{}' shows its id).",
                    spec.name
                ));
            }
            return fail(vec![d]);
        }
    };
    let mut diagnostics: Diagnostics = created
        .warnings
        .iter()
        .map(|w| Diagnostic::warning(format!("Key {}", spec.name), w.message.clone()))
        .collect();
    let mut key = created.key;
    let delivered = match created.secret.as_deref() {
        Some(secret) => api
            .sinks
            .deliver(
                &target,
                &Delivery {
                    key_id: &key.id,
                    key_name: &key.name,
                    secret,
                    replaces,
                },
            )
            .map(|_| ())
            .map_err(|e| e.to_string()),
        None => Err("the API answered no secret".to_owned()),
    };
    if let Err(why) = delivered {
        diagnostics.push(Diagnostic::error(
            "Key created, but its secret was not delivered",
            format!(
                "Key {} was created, but its secret could not be delivered to {target}: {why}\n\nThe secret is lost, so the key is tainted: the next terraform apply revokes it and creates a new one.",
                key.id
            ),
        ).at("secret"));
    }
    if spec.active == Some(false) {
        let patch = keyward_api::keys::UpdateKeyRequest {
            active: Some(false),
            managed_by: Some(Some(Manager::Terraform)),
            ..Default::default()
        };
        match api.client.update_key(&key.id, Some(key.version), &patch) {
            Ok(edited) => key = edited.key,
            Err(e) => {
                diagnostics.push(Diagnostic::api(&format!("deactivating key {}", key.id), &e))
            }
        }
    }
    match state_of(api, &key, planned) {
        Ok(state) => (state, diagnostics),
        Err(d) => {
            // The key exists: keep it in state (Terraform taints it) rather than lose it.
            diagnostics.extend(d);
            (
                state_with(&key, planned, &Presets::builtin(), &[]),
                diagnostics,
            )
        }
    }
}

fn update(api: &Api, prior: &Value, planned: &Value) -> (Value, Diagnostics) {
    let fail = |d: Diagnostics| (prior.clone(), d);
    let id = prior.get("id").as_str().unwrap_or_default().to_owned();
    let spec = match spec_of(planned) {
        Ok(spec) => spec,
        Err(d) => return fail(d),
    };
    let live = match api.client.get_key(&id) {
        Ok(key) => key,
        Err(e) => return fail(vec![Diagnostic::api(&format!("reading key {id}"), &e)]),
    };
    if live.managed_by == Some(Manager::Spec) {
        return fail(vec![Diagnostic::error(
            "Key managed by keyward apply",
            format!("Key {id} is managed by spec files; this provider never changes it."),
        )]);
    }
    let presets = match api.presets() {
        Ok(p) => p,
        Err(e) => return fail(vec![Diagnostic::api("listing presets", &e)]),
    };
    let groups = match api.groups() {
        Ok(groups) => groups,
        Err(e) => return fail(vec![Diagnostic::api("listing sharing groups", &e)]),
    };
    let ctx = Context {
        rules: rules(),
        presets,
        now: Utc::now(),
    };
    let draft = match spec.draft(&ctx) {
        Ok(draft) => draft,
        Err(errors) => return fail(Diagnostic::fields(errors)),
    };
    let ids = match group_ids(&spec.groups, &groups) {
        Ok(ids) => ids,
        Err(d) => return fail(vec![d]),
    };
    let id_refs: Vec<Option<&str>> = ids.iter().map(|i| Some(i.as_str())).collect();

    let (changes, mut patch) =
        key_changes(&spec, &live, &draft, &groups, &id_refs, Manager::Terraform);
    if patch.groups.is_some() {
        // The plan's comparison names groups; the API takes their ids.
        patch.groups = Some(ids.clone());
    }
    if live.name != spec.name {
        patch.name = Some(spec.name.clone());
    }
    // Exactly when the plan said the version would move: a setting shown in the plan, or the
    // key taken over (after an import).
    let adopting = live.managed_by != Some(Manager::Terraform);
    let mut diagnostics = Vec::new();
    let mut key = live;
    // If-Match on the version Terraform read when it planned: a key changed since then is
    // refused, not overwritten.
    let planned_version = prior
        .get("version")
        .as_i64()
        .and_then(|v| u64::try_from(v).ok());
    if !changes.is_empty() || patch.name.is_some() || adopting {
        match api.client.update_key(&id, planned_version, &patch) {
            Ok(edited) => {
                diagnostics.extend(
                    edited.warnings.iter().map(|w| {
                        Diagnostic::warning(format!("Key {}", spec.name), w.message.clone())
                    }),
                );
                key = edited.key;
            }
            Err(e) => return fail(vec![Diagnostic::api(&format!("updating key {id}"), &e)]),
        }
    } else if planned_version.is_some_and(|v| v != key.version) {
        return fail(vec![Diagnostic::error(
            "Key changed since the plan",
            format!(
                "Key {id} changed on the server since Terraform read it: run terraform plan again."
            ),
        )]);
    }

    let generation = spec.generation.map_or(key.generation, i64::unsigned_abs);
    if generation > key.generation {
        match rotate(api, &key, &spec, generation) {
            Ok(rotated) => key = rotated,
            Err(failed) => {
                let (rotated, d) = *failed;
                diagnostics.extend(d);
                if let Some(rotated) = rotated {
                    key = rotated;
                } else {
                    return (state_or(api, &key, planned, prior), diagnostics);
                }
            }
        }
    }
    match state_of(api, &key, planned) {
        Ok(state) => (state, diagnostics),
        Err(d) => {
            diagnostics.extend(d);
            (prior.clone(), diagnostics)
        }
    }
}

/// The state of `key` after a step that failed part-way, or the prior state if even that
/// cannot be read.
fn state_or(api: &Api, key: &ApiKey, planned: &Value, prior: &Value) -> Value {
    state_of(api, key, planned).unwrap_or_else(|_| prior.clone())
}

/// Regenerates `key`'s secret to `generation` and delivers it. On failure, the key as it is
/// now (when the regeneration itself went through) and why.
fn rotate(
    api: &Api,
    key: &ApiKey,
    spec: &ApiKeySpec,
    generation: u64,
) -> Result<ApiKey, Box<(Option<ApiKey>, Diagnostics)>> {
    let target = match target_of(spec) {
        Ok(target) => target,
        Err(d) => return Err(Box::new((None, vec![d]))),
    };
    let replaces = Fingerprint {
        start: &key.start,
        last4: &key.last4,
    };
    if let Err(e) = api.sinks.check(&target, Some(replaces)) {
        return Err(Box::new((
            None,
            vec![Diagnostic::error("The secret's sink refuses it", e.to_string()).at("secret")],
        )));
    }
    let request = RegenerateRequest {
        grace_period_seconds: spec.grace_period_seconds,
        generation: i64::try_from(generation).ok(),
        managed_by: Some(Manager::Terraform),
    };
    let regenerated = api
        .client
        .regenerate_key(&key.id, Some(key.version), &request)
        .map_err(|e| {
            Box::new((
                None,
                vec![Diagnostic::api(&format!("regenerating key {}", key.id), &e)],
            ))
        })?;
    let new = regenerated.created.key;
    let delivered = match regenerated.created.secret.as_deref() {
        Some(secret) => api
            .sinks
            .deliver(
                &target,
                &Delivery {
                    key_id: &new.id,
                    key_name: &new.name,
                    secret,
                    replaces: Some(replaces),
                },
            )
            .map(|_| ())
            .map_err(|e| e.to_string()),
        None => Err("the API answered no secret".to_owned()),
    };
    match delivered {
        Ok(()) => Ok(new),
        Err(why) => Err(Box::new((
            Some(new.clone()),
            vec![Diagnostic::error(
                "Secret regenerated, but not delivered",
                format!(
                    "Key {} has a new secret (generation {}), but it could not be delivered to {target}: {why}\n\nThe new secret is lost; the previous one keeps verifying until its grace ends. Fix the sink and raise generation again.",
                    new.id, new.generation
                ),
            )
            .at("secret")],
        ))),
    }
}

fn destroy(api: &Api, prior: &Value) -> Result<(), Diagnostics> {
    let id = prior.get("id").as_str().unwrap_or_default();
    let result = if prior.get("on_destroy").as_str() == Some("delete") {
        api.client.delete_key(id, None)
    } else {
        match api.client.get_key(id) {
            Ok(key) if key.status == KeyStatus::Revoked => Ok(()),
            Ok(key) if key.managed_by == Some(Manager::Spec) => {
                return Err(vec![Diagnostic::error(
                    "Key managed by keyward apply",
                    format!(
                        "Key {id} is now managed by spec files; this provider does not revoke it. Remove it from Terraform with terraform state rm."
                    ),
                )]);
            }
            Ok(_) => api.client.revoke_key(id, None).map(|_| ()),
            Err(e) => Err(e),
        }
    };
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(vec![Diagnostic::api(&format!("destroying key {id}"), &e)]),
    }
}

/// The most recently revoked key named `name` (as names compare).
fn last_revoked(api: &Api, name: &str) -> Result<Option<ApiKey>, Diagnostic> {
    let filter = KeyFilter {
        status: Some(StatusFilter::Only(KeyStatus::Revoked)),
        q: Some(name.to_owned()),
        ..KeyFilter::default()
    };
    let keys = api
        .client
        .all_keys(&filter)
        .map_err(|e| Diagnostic::api("listing revoked keys", &e))?;
    Ok(keys
        .into_iter()
        .filter(|k| name_key(&k.name) == name_key(name))
        .max_by_key(|k| k.updated_at))
}

/// The server's ids of the named groups.
fn group_ids(names: &[String], groups: &[Group]) -> Result<Vec<String>, Diagnostic> {
    names
        .iter()
        .map(|name| {
            groups
                .iter()
                .find(|g| name_key(&g.name) == name_key(name.trim()))
                .map(|g| g.id.clone())
                .ok_or_else(|| {
                    Diagnostic::error(
                        "Unknown sharing group",
                        format!("no sharing group '{name}' on the server"),
                    )
                    .at("groups")
                })
        })
        .collect()
}

/// The spec these (known) values describe: the provider's and `keyward apply`'s model are one.
fn spec_of(values: &Value) -> Result<ApiKeySpec, Diagnostics> {
    let mut errors = Vec::new();
    let strings = |attribute: &str, errors: &mut Diagnostics| {
        values.get(attribute).string_list().unwrap_or_else(|| {
            errors.push(
                Diagnostic::error(
                    "Value not known yet",
                    format!("{attribute} must be known when the key is made or changed"),
                )
                .at(attribute),
            );
            Vec::new()
        })
    };
    let scopes = strings("scopes", &mut errors)
        .iter()
        .map(|s| ScopeInput::from_flat(s))
        .collect();
    let workspaces = strings("workspaces", &mut errors);
    let groups = strings("groups", &mut errors);
    let allowed_cidrs = strings("allowed_cidrs", &mut errors);
    let expires_at = match values.get("expires_at").as_str() {
        None => None,
        Some(text) => match DateTime::parse_from_rfc3339(text) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                errors.push(invalid_time(text));
                None
            }
        },
    };
    let metadata = values.get("metadata").as_map().map(|m| {
        m.iter()
            .map(|(k, v)| (k.clone(), Json::from(v.as_str().unwrap_or_default())))
            .collect::<Map<String, Json>>()
    });
    let secret = secret_spec(values.get("secret"));
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ApiKeySpec {
        name: values.get("name").as_str().unwrap_or_default().to_owned(),
        description: values.get("description").as_str().map(str::to_owned),
        preset: values.get("preset").as_str().map(str::to_owned),
        scopes,
        workspaces,
        groups,
        allowed_cidrs,
        rate_limit_per_minute: values.get("rate_limit_per_minute").as_i64(),
        expires_at,
        active: values.get("active").as_bool(),
        generation: values.get("generation").as_i64(),
        grace_period_seconds: values.get("grace_period_seconds").as_i64(),
        metadata,
        secret,
    })
}

fn invalid_time(text: &str) -> Diagnostic {
    Diagnostic::error(
        "Invalid expires_at",
        format!("'{text}' is not an RFC 3339 time, such as 2030-06-30T00:00:00Z"),
    )
    .at("expires_at")
}

/// The `secret` block as the core's sink spec (for its rules), when it reads as one.
fn secret_spec(secret: &Value) -> Option<keyward_core::spec::SecretSpec> {
    let mut json = Map::new();
    for (k, v) in secret.as_map()? {
        if let Some(s) = v.as_str() {
            json.insert(k.clone(), Json::from(s));
        }
    }
    serde_json::from_value(Json::Object(json)).ok()
}

fn target_of(spec: &ApiKeySpec) -> Result<Target, Diagnostic> {
    use keyward_core::spec::SecretSpec;
    match &spec.secret {
        Some(SecretSpec::File { path }) => Ok(Target::File(PathBuf::from(path))),
        Some(SecretSpec::SecretsManager { secret_id }) => Ok(Target::SecretsManager {
            secret_id: secret_id.clone(),
        }),
        Some(SecretSpec::Ssm { parameter }) => Ok(Target::Ssm {
            parameter: parameter.clone(),
        }),
        Some(SecretSpec::Stdout) | None => {
            Err(Diagnostic::error("A new secret needs a sink", "add a `secret` block").at("secret"))
        }
    }
}

/// Where the `secret` block sends a secret (`None`: no block).
fn target(secret: &Value) -> Result<Option<Target>, Diagnostic> {
    if secret.is_null() || !secret.is_wholly_known() {
        return Ok(None);
    }
    let field = |name: &str| secret.get(name).as_str().filter(|s| !s.is_empty());
    let invalid = |detail: String| Diagnostic::error("Invalid secret", detail).at("secret");
    let needs = |sink: &str, name: &str| invalid(format!("sink {sink} needs `{name}`"));
    let sink = field("sink").unwrap_or_default();
    let (target, own) = match sink {
        "file" => (
            Target::File(PathBuf::from(
                field("path").ok_or_else(|| needs(sink, "path"))?,
            )),
            "path",
        ),
        "aws-secretsmanager" => (
            Target::SecretsManager {
                secret_id: field("secret_id")
                    .ok_or_else(|| needs(sink, "secret_id"))?
                    .to_owned(),
            },
            "secret_id",
        ),
        "aws-ssm" => (
            Target::Ssm {
                parameter: field("parameter")
                    .ok_or_else(|| needs(sink, "parameter"))?
                    .to_owned(),
            },
            "parameter",
        ),
        "stdout" => {
            return Err(invalid(
                "Terraform keeps a provider's output to itself, so there is no stdout sink here: use file, aws-secretsmanager or aws-ssm".into(),
            ));
        }
        other => {
            return Err(invalid(format!(
                "'{other}' is not one of: file, aws-secretsmanager, aws-ssm"
            )));
        }
    };
    for other in ["path", "secret_id", "parameter"] {
        if other != own && field(other).is_some() {
            return Err(invalid(format!("sink {sink} takes `{own}`, not `{other}`")));
        }
    }
    Ok(Some(target))
}

/// The state of `key`, in `wanted`'s spellings wherever they mean what the server has (so a
/// plan shows only real differences), and the configuration-only attributes from `wanted`.
fn state_of(api: &Api, key: &ApiKey, wanted: &Value) -> Result<Value, Diagnostics> {
    let listing = |e| vec![Diagnostic::api("listing presets", &e)];
    let mut presets = api.presets().map_err(listing)?;
    if let Some(name) = wanted.get("preset").as_str()
        && presets.get(name).is_none()
    {
        // Made since the presets were read (in this run, by a keyward_preset).
        api.forget_presets();
        presets = api.presets().map_err(listing)?;
    }
    let groups = if key.groups.is_empty() {
        Vec::new()
    } else {
        api.groups()
            .map_err(|e| vec![Diagnostic::api("listing sharing groups", &e)])?
    };
    Ok(state_with(key, wanted, &presets, &groups))
}

fn state_with(key: &ApiKey, wanted: &Value, presets: &Presets, groups: &[Group]) -> Value {
    let keep = |attribute: &str, same: bool, server: Value| {
        if same {
            wanted.get(attribute).clone()
        } else {
            server
        }
    };
    let scopes_server: BTreeSet<&str> = key.scopes.iter().map(|s| s.scope.as_str()).collect();
    let scopes_wanted = wanted_scopes(wanted, presets);
    let scopes = keep(
        "scopes",
        scopes_wanted.as_ref().is_some_and(|w| {
            w.iter().map(String::as_str).collect::<BTreeSet<_>>() == scopes_server
        }),
        Value::strings(key.scopes.iter().map(|s| s.scope.clone())),
    );
    let names = names_of(&key.groups, groups);
    let folded = |items: &[&str]| {
        items
            .iter()
            .map(|n| name_key(n.trim()))
            .collect::<BTreeSet<_>>()
    };
    let groups_same = wanted.get("groups").string_list().is_some_and(|w| {
        let w: Vec<&str> = w.iter().map(String::as_str).collect();
        folded(&w) == folded(&names)
    });
    let workspaces_same = wanted.get("workspaces").string_list().is_some_and(|w| {
        w.iter().collect::<BTreeSet<_>>() == key.workspaces.iter().collect::<BTreeSet<_>>()
    });
    let cidrs_same = wanted
        .get("allowed_cidrs")
        .string_list()
        .and_then(|w| CidrList::parse("allowed_cidrs", &w).ok())
        .is_some_and(|(list, _)| list == key.allowed_cidrs);
    let metadata_server: Map<String, Json> = key.metadata.clone();
    let metadata_same = wanted.get("metadata").as_map().map_or_else(
        || wanted.get("metadata").is_null() && metadata_server.is_empty(),
        |m| {
            m.len() == metadata_server.len()
                && m.iter()
                    .all(|(k, v)| metadata_server.get(k).and_then(Json::as_str) == v.as_str())
        },
    );
    let expires_same = match (wanted.get("expires_at").as_str(), key.expires_at) {
        (Some(text), Some(at)) => DateTime::parse_from_rfc3339(text).is_ok_and(|t| t == at),
        (None, None) => wanted.get("expires_at").is_null(),
        _ => false,
    };
    let description_same = wanted.get("description").as_str().map_or(
        key.description.is_empty() && wanted.get("description").is_null(),
        |d| d == key.description,
    );
    Value::object([
        ("id", Value::string(&key.id)),
        ("name", same_name(wanted.get("name"), &key.name)),
        (
            "description",
            keep(
                "description",
                description_same,
                Value::string(&key.description),
            ),
        ),
        ("preset", wanted.get("preset").clone()),
        ("scopes", scopes),
        (
            "workspaces",
            keep(
                "workspaces",
                workspaces_same,
                Value::strings(key.workspaces.clone()),
            ),
        ),
        ("groups", keep("groups", groups_same, Value::strings(names))),
        (
            "allowed_cidrs",
            keep(
                "allowed_cidrs",
                cidrs_same,
                Value::strings(key.allowed_cidrs.ranges().iter().map(ToString::to_string)),
            ),
        ),
        (
            "rate_limit_per_minute",
            Value::Number(i64::from(key.rate_limit_per_minute)),
        ),
        (
            "expires_at",
            keep("expires_at", expires_same, opt_time(key.expires_at)),
        ),
        ("active", Value::Bool(key.status != KeyStatus::Inactive)),
        ("generation", number(key.generation)),
        (
            "grace_period_seconds",
            wanted.get("grace_period_seconds").clone(),
        ),
        (
            "metadata",
            keep("metadata", metadata_same, metadata(&metadata_server)),
        ),
        ("secret", wanted.get("secret").clone()),
        ("on_destroy", wanted.get("on_destroy").clone()),
        ("start", Value::string(&key.start)),
        ("last4", Value::string(&key.last4)),
        ("status", Value::string(key.status.as_str())),
        ("version", number(key.version)),
        ("created_at", time(key.created_at)),
        (
            "managed_by",
            Value::opt_string(key.managed_by.map(Manager::as_str)),
        ),
        (
            "previous_secret_expires_at",
            opt_time(key.previous_secret.as_ref().map(|p| p.expires_at)),
        ),
    ])
}

/// The scopes `wanted` asks for, as the server spells them: its preset's, then its own. `None`
/// when they cannot be known (unknown values, an unknown preset, a scope that does not parse).
fn wanted_scopes(wanted: &Value, presets: &Presets) -> Option<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    match wanted.get("preset") {
        Value::Null => {}
        Value::String(name) => {
            out.extend(presets.get(name)?.scopes.iter().map(|s| s.scope.clone()))
        }
        _ => return None,
    }
    for text in wanted.get("scopes").string_list()? {
        out.insert(Scope::parse(&ScopeInput::from_flat(&text)).ok()?.scope);
    }
    Some(out)
}

/// The configured name where the server stores it as written (trimmed, NFC), else the
/// server's.
pub(crate) fn same_name(wanted: &Value, server: &str) -> Value {
    match wanted.as_str() {
        Some(name) if validate_name(Some(name)).is_ok_and(|n| n == server) => wanted.clone(),
        _ => Value::string(server),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use keyward_api::keys::CreateKeyRequest;
    use keyward_core::key::KeyDraft;
    use keyward_core::token::{Prefix, Token};
    use serde_json::json;

    use super::*;

    fn live_key(body: Json) -> ApiKey {
        let request: CreateKeyRequest = serde_json::from_value(body).unwrap();
        let (draft, _) = KeyDraft::from_request(
            request,
            &KeyRules::default(),
            &Presets::builtin(),
            Utc::now(),
        )
        .unwrap();
        let token = Token::generate(&Prefix::live()).unwrap();
        ApiKey::new(draft, "acc", &token, "t", Utc::now()).unwrap()
    }

    fn api() -> Api {
        Api::new(keyward_client::Client::new("http://127.0.0.1:9", "kw_test_x".into()).unwrap())
    }

    /// A configuration of this resource: every attribute null but those given.
    fn config(attrs: &[(&str, Value)]) -> Value {
        let mut value = SCHEMA.null_object();
        for (name, v) in attrs {
            value.set(name, v.clone());
        }
        value
    }

    fn file_secret() -> Value {
        Value::object([
            ("sink", Value::string("file")),
            ("path", Value::string("secrets/ci.key")),
            ("secret_id", Value::Null),
            ("parameter", Value::Null),
        ])
    }

    #[test]
    fn state_keeps_the_configurations_spellings_where_they_mean_what_the_server_has() {
        let presets = Presets::builtin();
        let preset = presets.names()[0].to_owned();
        let preset_scopes: Vec<String> = presets
            .get(&preset)
            .unwrap()
            .scopes
            .iter()
            .map(|s| s.scope.clone())
            .collect();
        let key = live_key(json!({
            "name": "ci", "preset": preset, "scopes": [{"action": "read", "resource": "projects/*"}],
            "allowed_cidrs": ["10.0.0.1"], "expires_at": "2030-06-30T00:00:00Z",
            "metadata": {"team": "platform"}
        }));
        let wanted = config(&[
            ("name", Value::string("ci")),
            ("preset", Value::string(&preset)),
            ("scopes", Value::strings(["read:projects/*"])),
            ("allowed_cidrs", Value::strings(["10.0.0.1"])),
            ("expires_at", Value::string("2030-06-30T00:00:00+00:00")),
            (
                "metadata",
                Value::Map([("team".to_owned(), Value::string("platform"))].into()),
            ),
            ("secret", file_secret()),
        ]);
        let state = state_with(&key, &wanted, &presets, &[]);
        for same in [
            "scopes",
            "allowed_cidrs",
            "expires_at",
            "metadata",
            "preset",
            "secret",
        ] {
            assert_eq!(state.get(same), wanted.get(same), "{same}");
        }
        // Left out and empty on the server: still left out.
        assert!(state.get("description").is_null());
        assert!(state.get("workspaces").is_null());
        assert_eq!(state.get("active"), &Value::Bool(true));
        assert_eq!(state.get("generation"), &Value::Number(1));

        // What differs shows the server's value: the preset's scopes are the server's too.
        let other = config(&[
            ("scopes", Value::strings(["agents"])),
            ("allowed_cidrs", Value::strings(["10.0.0.0/8"])),
            ("expires_at", Value::string("2031-01-01T00:00:00Z")),
        ]);
        let state = state_with(&key, &other, &presets, &[]);
        let mut scopes = state.get("scopes").string_list().unwrap();
        scopes.sort();
        let mut expected = preset_scopes.clone();
        expected.push("read:projects/*".into());
        expected.sort();
        expected.dedup();
        assert_eq!(scopes, expected);
        assert_eq!(
            state.get("allowed_cidrs").string_list().unwrap(),
            ["10.0.0.1/32"]
        );
        assert_eq!(
            state.get("expires_at").as_str(),
            Some("2030-06-30T00:00:00Z")
        );
    }

    #[test]
    fn plans_fill_what_the_server_decides_and_refuse_what_it_would() {
        let api = api();
        let resource = ApiKeyResource;
        let wanted = config(&[
            ("name", Value::string("ci")),
            ("scopes", Value::strings(["read"])),
            ("secret", file_secret()),
        ]);
        // A create: computed values unknown, defaults filled.
        let planned = resource.plan(&api, &Value::Null, &wanted, &wanted).unwrap();
        assert!(planned.state.get("id").is_unknown());
        assert!(planned.state.get("rate_limit_per_minute").is_unknown());
        assert_eq!(planned.state.get("active"), &Value::Bool(true));
        assert_eq!(planned.state.get("generation"), &Value::Number(1));
        assert_eq!(planned.state.get("managed_by").as_str(), Some("terraform"));
        // Without a sink, no create.
        let mut no_sink = wanted.clone();
        no_sink.set("secret", Value::Null);
        let refused = resource
            .plan(&api, &Value::Null, &no_sink, &no_sink)
            .unwrap_err();
        assert_eq!(refused[0].attribute.as_deref(), Some("secret"));

        let key = live_key(json!({"name": "ci", "scopes": ["read"], "managed_by": "terraform"}));
        let prior = state_with(&key, &wanted, &Presets::builtin(), &[]);
        // Nothing changed: the plan is the prior state.
        let same = resource.plan(&api, &prior, &prior, &wanted).unwrap();
        assert_eq!(same.state, prior);
        // A raised generation: a new secret, so a new start and last4.
        let mut raised = prior.clone();
        raised.set("generation", Value::Number(2));
        let rotated = resource.plan(&api, &prior, &raised, &raised).unwrap();
        assert!(rotated.state.get("last4").is_unknown());
        assert!(rotated.state.get("version").is_unknown());
        // A lowered one is refused in the plan's words.
        let mut lowered = prior.clone();
        lowered.set("generation", Value::Number(2));
        let refused = resource
            .plan(&api, &raised_prior(&prior), &lowered, &lowered)
            .unwrap_err();
        assert!(
            refused[0].detail.contains("below the key's 3"),
            "{:?}",
            refused[0]
        );
        // A key spec files manage is never planned.
        let mut spec_key = prior.clone();
        spec_key.set("managed_by", Value::string("spec"));
        let refused = resource.plan(&api, &spec_key, &prior, &wanted).unwrap_err();
        assert!(refused[0].detail.contains("managed by spec files"));
    }

    fn raised_prior(prior: &Value) -> Value {
        let mut p = prior.clone();
        p.set("generation", Value::Number(3));
        p
    }

    #[test]
    fn a_name_the_server_normalises_keeps_its_configured_spelling() {
        // Trimmed and composed (NFC) by the server: the configuration's spelling stays.
        for written in ["ci ", "cafe\u{301}"] {
            let stored = validate_name(Some(written)).unwrap();
            assert_ne!(stored, written);
            assert_eq!(
                same_name(&Value::string(written), &stored).as_str(),
                Some(written)
            );
        }
        // A real rename shows the server's name.
        assert_eq!(same_name(&Value::string("ci"), "CI").as_str(), Some("CI"));
        assert_eq!(same_name(&Value::Null, "ci").as_str(), Some("ci"));
    }

    #[test]
    fn validation_speaks_the_apis_rules_and_names_the_attribute() {
        let resource = ApiKeyResource;
        let bad = config(&[
            ("name", Value::string("ci")),
            ("scopes", Value::strings(["nope:x"])),
            ("rate_limit_per_minute", Value::Number(0)),
            ("expires_at", Value::string("next week")),
            ("on_destroy", Value::string("forget")),
            ("secret", Value::object([("sink", Value::string("stdout"))])),
        ]);
        let diagnostics = resource.validate(&bad);
        let at: Vec<&str> = diagnostics
            .iter()
            .filter_map(|d| d.attribute.as_deref())
            .collect();
        for attribute in [
            "scopes",
            "rate_limit_per_minute",
            "expires_at",
            "on_destroy",
            "secret",
        ] {
            assert!(at.contains(&attribute), "{attribute}: {diagnostics:?}");
        }
        assert!(
            diagnostics
                .iter()
                .any(|d| d.detail.contains("no stdout sink"))
        );
        // A null label is refused (the API would store an empty string).
        let null_label = config(&[
            ("name", Value::string("ci")),
            ("scopes", Value::strings(["read"])),
            (
                "metadata",
                Value::Map([("team".to_owned(), Value::Null)].into()),
            ),
        ]);
        assert_eq!(
            resource.validate(&null_label)[0].attribute.as_deref(),
            Some("metadata")
        );
        // Unknown values wait for the plan.
        let unknown = config(&[("name", Value::string("ci")), ("scopes", Value::Unknown)]);
        assert!(resource.validate(&unknown).is_empty());
        // A sink with the wrong field for it.
        let wrong = Value::object([
            ("sink", Value::string("aws-ssm")),
            ("parameter", Value::string("/p")),
            ("path", Value::string("x")),
        ]);
        assert!(
            target(&wrong)
                .unwrap_err()
                .detail
                .contains("takes `parameter`, not `path`")
        );
        assert_eq!(
            target(&file_secret()).unwrap(),
            Some(Target::File(PathBuf::from("secrets/ci.key")))
        );
    }
}
