//! The plan: what `keyward apply` must do to make the server match the specs, computed from the
//! live records alone (the server keeps no spec). Pure: the CLI reads the server, calls
//! [`plan`], prints the result, and makes it through the management API.
//!
//! - A key spec with no live key of its name is **created** (`managed_by: spec`).
//! - A managed key whose settings differ is **updated in place**, each field shown old -> new.
//! - A key whose spec raises `generation` gets a **new secret** (with the spec's grace).
//! - With `prune`, a `spec` key no spec names is **revoked** (freeing its name).
//! - A managed key changed outside git since the last apply (`version` past
//!   `applied_version`) is reported as **drift**; the update restores the spec's settings.
//! - Keys that are not `spec`'s are never touched: a spec naming one is refused, unless
//!   `adopt` takes over an unmanaged key; a `terraform` key is never adopted.
//! - Groups and presets the specs define are created (presets updated); neither is pruned, as
//!   the server does not record who made them.
//!
//! Every key action carries the `version` it was planned against: apply sends it as
//! `If-Match`, so a key changed since the plan is refused, not overwritten.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::edit::UpdateKeyRequest;
use crate::group::{Group, names_of};
use crate::key::{ApiKey, KeyRules, KeyStatus};
use crate::managed::Manager;
use crate::name::name_key;
use crate::permission::ScopeInput;
use crate::preset::{Preset, Presets};
use crate::spec::{ApiKeySpec, Context, PresetSpec, SecretSpec, SharingGroupSpec, Spec};

/// What the server has: keys that are not revoked, groups, and the account's own presets;
/// and the revoked keys, whose secrets a new key of the same name may replace in a file.
#[derive(Debug, Clone, Default)]
pub struct Live {
    pub keys: Vec<ApiKey>,
    pub groups: Vec<Group>,
    pub presets: Vec<Preset>,
    pub revoked: Vec<ApiKey>,
}

/// How a secret is shown (its start and last four characters): what a sink may find where it
/// writes and overwrite, never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shown {
    pub start: String,
    pub last4: String,
}

impl Shown {
    fn of(key: &ApiKey) -> Self {
        Self {
            start: key.start.clone(),
            last4: key.last4.clone(),
        }
    }
}

/// How to plan.
#[derive(Debug, Clone)]
pub struct Options {
    /// Revoke `spec` keys that no spec names.
    pub prune: bool,
    /// Take over unmanaged keys that specs name.
    pub adopt: bool,
    pub now: DateTime<Utc>,
    /// The id of the admin key the plan will be applied with: a key cannot change itself
    /// (the server refuses), so the plan never asks it to, and prune leaves it alone.
    pub acting_key: Option<String>,
}

/// One field's change, as a plan shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub old: Value,
    pub new: Value,
}

impl FieldChange {
    fn new(field: &str, old: Value, new: Value) -> Self {
        Self {
            field: field.to_owned(),
            old,
            new,
        }
    }
}

/// One step of a plan. Groups and presets come first, then keys, then revocations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    CreateGroup {
        name: String,
        description: String,
    },
    /// Creates or replaces an account preset (`PUT /v1/presets/{name}`); `changes` is empty
    /// for a new one.
    PutPreset {
        name: String,
        description: String,
        scopes: Vec<ScopeInput>,
        exists: bool,
        changes: Vec<FieldChange>,
        /// The preset as planned against (absent: a new one), so a saved plan notices an edit.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        was: Option<Preset>,
    },
    /// `spec.groups` are names; apply sends their ids.
    CreateKey {
        spec: Box<ApiKeySpec>,
        secret: SecretSpec,
        /// The secret of the last revoked key of this name, which the sink may replace.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replaces: Option<Shown>,
    },
    /// `patch.groups` holds group names; apply sends their ids.
    UpdateKey {
        id: String,
        name: String,
        version: u64,
        changes: Vec<FieldChange>,
        patch: Box<UpdateKeyRequest>,
        adopt: bool,
    },
    RegenerateKey {
        id: String,
        name: String,
        /// The version planned against, unless an update of the same key comes first.
        version: u64,
        from_generation: u64,
        generation: u64,
        grace_period_seconds: i64,
        secret: SecretSpec,
        /// The secret being replaced, which the sink may overwrite.
        replaces: Shown,
    },
    RevokeKey {
        id: String,
        name: String,
        version: u64,
    },
}

impl Action {
    /// The key the action changes, and the version it was planned against.
    pub fn key(&self) -> Option<(&str, u64)> {
        match self {
            Self::UpdateKey { id, version, .. }
            | Self::RegenerateKey { id, version, .. }
            | Self::RevokeKey { id, version, .. } => Some((id, *version)),
            _ => None,
        }
    }
}

/// A managed key changed outside git since the last apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    pub id: String,
    pub name: String,
    pub version: u64,
    pub applied_version: Option<u64>,
    pub note: String,
}

/// Why a plan cannot be made, naming the spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub kind: String,
    pub name: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub drift: Vec<Drift>,
    /// Documents (keys, groups, presets) that need nothing.
    pub unchanged: usize,
    /// What the plan leaves alone that a reader might expect it to change, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        !self.actions.is_empty()
    }

    /// Counts by kind of action: create, update, regenerate, revoke.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for a in &self.actions {
            match a {
                Action::CreateGroup { .. } | Action::CreateKey { .. } => s.create += 1,
                Action::PutPreset { exists: false, .. } => s.create += 1,
                Action::PutPreset { .. } | Action::UpdateKey { .. } => s.update += 1,
                Action::RegenerateKey { .. } => s.regenerate += 1,
                Action::RevokeKey { .. } => s.revoke += 1,
            }
        }
        s.unchanged = self.unchanged;
        s
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub regenerate: usize,
    pub revoke: usize,
    pub unchanged: usize,
}

/// Plans `specs` (each already valid by itself: see [`crate::spec::check`]) against `live`.
/// Every refusal is reported at once.
pub fn plan(specs: &[&Spec], live: &Live, options: Options) -> Result<Plan, Vec<Refusal>> {
    let prune = options.prune;
    let mut planner = Planner::new(specs, live, options);
    for spec in specs {
        match spec {
            Spec::SharingGroup(g) => planner.group(g),
            Spec::Preset(p) => planner.preset(p),
            Spec::ApiKey(_) | Spec::RoutePolicy(_) => {}
        }
    }
    for spec in specs {
        if let Spec::ApiKey(k) = spec {
            planner.key(k);
        }
    }
    if prune {
        planner.prune(specs);
    }
    if planner.refusals.is_empty() {
        Ok(planner.plan)
    } else {
        Err(planner.refusals)
    }
}

struct Planner<'a> {
    live: &'a Live,
    options: Options,
    /// Group names (folded) to ids; groups the plan creates have none yet.
    groups: HashMap<String, Option<&'a str>>,
    presets: Presets,
    keys: HashMap<String, &'a ApiKey>,
    plan: Plan,
    refusals: Vec<Refusal>,
}

impl<'a> Planner<'a> {
    fn new(specs: &[&'a Spec], live: &'a Live, options: Options) -> Self {
        let mut groups: HashMap<String, Option<&str>> = live
            .groups
            .iter()
            .map(|g| (name_key(&g.name), Some(g.id.as_str())))
            .collect();
        for spec in specs {
            if let Spec::SharingGroup(g) = spec {
                groups.entry(name_key(g.name.trim())).or_insert(None);
            }
        }
        let own: Vec<Preset> = specs
            .iter()
            .filter_map(|s| match s {
                Spec::Preset(p) => p.to_preset().ok(),
                _ => None,
            })
            .collect();
        let own_names: BTreeSet<&str> = own.iter().map(|p| p.name.as_str()).collect();
        let server: Vec<Preset> = live
            .presets
            .iter()
            .filter(|p| !own_names.contains(p.name.as_str()))
            .cloned()
            .collect();
        let presets = Presets::builtin().extended(own).extended(server);
        Self {
            live,
            options,
            groups,

            presets,
            keys: live
                .keys
                .iter()
                .filter(|k| k.status != KeyStatus::Revoked)
                .map(|k| (name_key(&k.name), k))
                .collect(),
            plan: Plan {
                actions: Vec::new(),
                drift: Vec::new(),
                unchanged: 0,
                notes: Vec::new(),
            },
            refusals: Vec::new(),
        }
    }

    fn refuse(&mut self, kind: &str, name: &str, message: String) {
        self.refusals.push(Refusal {
            kind: kind.to_owned(),
            name: name.to_owned(),
            message,
        });
    }

    fn group(&mut self, spec: &SharingGroupSpec) {
        let name = spec.name.trim();
        let exists = self
            .live
            .groups
            .iter()
            .any(|g| name_key(&g.name) == name_key(name));
        if exists {
            self.plan.unchanged += 1;
        } else {
            self.plan.actions.push(Action::CreateGroup {
                name: name.to_owned(),
                description: spec.description.clone().unwrap_or_default(),
            });
        }
    }

    fn preset(&mut self, spec: &PresetSpec) {
        let Ok(wanted) = spec.to_preset() else {
            return; // validate reports it
        };
        let scopes: Vec<ScopeInput> = wanted.scopes.iter().map(|s| s.input()).collect();
        let current = self.live.presets.iter().find(|p| p.name == wanted.name);
        let changes = match current {
            None => Vec::new(),
            Some(p) => {
                let mut changes = Vec::new();
                if p.description != wanted.description {
                    changes.push(FieldChange::new(
                        "description",
                        json!(p.description),
                        json!(wanted.description),
                    ));
                }
                if scope_set(&p.scopes) != scope_set(&wanted.scopes) {
                    changes.push(FieldChange::new(
                        "scopes",
                        scope_list(&p.scopes),
                        scope_list(&wanted.scopes),
                    ));
                }
                if changes.is_empty() {
                    self.plan.unchanged += 1;
                    return;
                }
                changes
            }
        };
        self.plan.actions.push(Action::PutPreset {
            name: wanted.name,
            description: wanted.description,
            scopes,
            exists: current.is_some(),
            changes,
            was: current.cloned(),
        });
    }

    /// The ids of `names` (folded lookups), or a refusal for each one neither the server nor
    /// the specs have. Groups the plan creates are `None`.
    fn resolve_groups(&mut self, key: &ApiKeySpec) -> Option<Vec<Option<&'a str>>> {
        let mut out = Vec::new();
        let mut ok = true;
        for g in &key.groups {
            match self.groups.get(&name_key(g.trim())) {
                Some(id) => out.push(*id),
                None => {
                    ok = false;
                    self.refuse(
                        "ApiKey",
                        &key.name,
                        format!("no sharing group '{g}' on the server or in the specs"),
                    );
                }
            }
        }
        ok.then_some(out)
    }

    fn key(&mut self, spec: &ApiKeySpec) {
        let ctx = Context {
            rules: KeyRules {
                // The server applies its own bounds and default; the plan compares what the
                // spec names.
                rate_limit_min: 1,
                rate_limit_max: u32::MAX,
                ..KeyRules::default()
            },
            presets: self.presets.clone(),
            now: self.options.now,
        };
        if let Some(p) = spec.preset.as_deref()
            && self.presets.get(p).is_none()
        {
            let names = self.presets.names().join(", ");
            self.refuse(
                "ApiKey",
                &spec.name,
                format!("unknown preset '{p}'; available: {names}"),
            );
            return;
        }
        let draft = match spec.draft(&ctx) {
            Ok(d) => d,
            Err(errors) => {
                for e in errors {
                    self.refuse("ApiKey", &spec.name, format!("{}: {}", e.field, e.message));
                }
                return;
            }
        };
        let Some(group_ids) = self.resolve_groups(spec) else {
            return;
        };
        let live = self.keys.get(&name_key(&draft.name)).copied();
        let past = draft.expires_at.filter(|e| *e <= self.options.now);
        let Some(live) = live else {
            if let Some(e) = past {
                self.refuse(
                    "ApiKey",
                    &spec.name,
                    format!("expires_at {e} has passed: a new key must expire in the future"),
                );
                return;
            }
            let replaces = self
                .live
                .revoked
                .iter()
                .filter(|k| name_key(&k.name) == name_key(&draft.name))
                .max_by_key(|k| k.updated_at)
                .map(Shown::of);
            match &spec.secret {
                Some(secret) => self.plan.actions.push(Action::CreateKey {
                    spec: Box::new(spec.clone()),
                    secret: secret.clone(),
                    replaces,
                }),
                None => self.refuse(
                    "ApiKey",
                    &spec.name,
                    "would be created, but its spec names no secret sink: add a `secret` block (stdout, file, aws-secretsmanager or aws-ssm)".into(),
                ),
            }
            return;
        };
        let adopt = match live.managed_by {
            Some(Manager::Spec) => false,
            Some(Manager::Terraform) => {
                self.refuse(
                    "ApiKey",
                    &spec.name,
                    format!(
                        "key {} is managed by Terraform; keyward apply never touches it",
                        live.id
                    ),
                );
                return;
            }
            None if self.options.adopt => true,
            None => {
                self.refuse(
                    "ApiKey",
                    &spec.name,
                    format!(
                        "key {} exists and is not managed by keyward apply; pass --adopt to take it over",
                        live.id
                    ),
                );
                return;
            }
        };

        let (changes, patch) = key_changes(
            spec,
            live,
            &draft,
            &self.live.groups,
            &group_ids,
            Manager::Spec,
        );
        if let Some(e) = past
            && live.expires_at != draft.expires_at
        {
            self.refuse(
                "ApiKey",
                &spec.name,
                format!("expires_at {e} has passed: a key's expiry can only move into the future"),
            );
            return;
        }
        let drifted = !adopt && live.applied_version != Some(live.version);
        let generation = spec
            .generation
            .map_or(live.generation, |g| g.unsigned_abs());
        if drifted {
            let note = if changes.is_empty() {
                "changed outside git since the last apply; its settings match the specs again"
                    .to_owned()
            } else {
                let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
                format!(
                    "changed outside git since the last apply; apply restores {}",
                    fields.join(", ")
                )
            };
            self.plan.drift.push(Drift {
                id: live.id.clone(),
                name: live.name.clone(),
                version: live.version,
                applied_version: live.applied_version,
                note,
            });
        }
        if generation < live.generation {
            self.refuse(
                "ApiKey",
                &spec.name,
                format!(
                    "generation {generation} is below the key's {0}: its secret was regenerated outside git. Set generation to {0} to accept that secret, or above {0} to regenerate it",
                    live.generation
                ),
            );
            return;
        }
        let touched = !changes.is_empty() || adopt || drifted;
        let acting = self.options.acting_key.as_deref() == Some(live.id.as_str());
        if acting && (!changes.is_empty() || generation > live.generation) {
            self.refuse(
                "ApiKey",
                &spec.name,
                format!(
                    "key {} is the admin key this runs with, and a key cannot change itself: apply with another admin key, or leave its settings as they are",
                    live.id
                ),
            );
            return;
        }
        if touched {
            self.plan.actions.push(Action::UpdateKey {
                id: live.id.clone(),
                name: live.name.clone(),
                version: live.version,
                changes,
                patch: Box::new(patch),
                adopt,
            });
        }
        if generation > live.generation {
            match &spec.secret {
                Some(secret) => self.plan.actions.push(Action::RegenerateKey {
                    id: live.id.clone(),
                    name: live.name.clone(),
                    version: live.version,
                    from_generation: live.generation,
                    generation,
                    grace_period_seconds: spec.grace_period_seconds.unwrap_or(0),
                    secret: secret.clone(),
                    replaces: Shown::of(live),
                }),
                None => self.refuse(
                    "ApiKey",
                    &spec.name,
                    "raises its generation, but its spec names no secret sink: add a `secret` block".into(),
                ),
            }
        } else if !touched {
            self.plan.unchanged += 1;
        }
    }

    fn prune(&mut self, specs: &[&Spec]) {
        let named: BTreeSet<String> = specs
            .iter()
            .filter_map(|s| match s {
                Spec::ApiKey(k) => Some(name_key(k.name.trim())),
                _ => None,
            })
            .collect();
        let mut gone: Vec<&ApiKey> = self
            .live
            .keys
            .iter()
            .filter(|k| k.managed_by == Some(Manager::Spec) && k.status != KeyStatus::Revoked)
            .filter(|k| !named.contains(&name_key(&k.name)))
            .collect();
        gone.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(acting) = self.options.acting_key.as_deref()
            && let Some(i) = gone.iter().position(|k| k.id == acting)
        {
            let k = gone.remove(i);
            self.plan.notes.push(format!(
                "key \"{}\" ({}) is not revoked though no spec names it: it is the admin key this runs with",
                k.name, k.id
            ));
        }
        for k in gone {
            self.plan.actions.push(Action::RevokeKey {
                id: k.id.clone(),
                name: k.name.clone(),
                version: k.version,
            });
        }
    }
}

/// The fields where `live` differs from `spec`, and the `PATCH` that changes them: an apply by
/// `manager`, which it always names. `draft` is the spec's key as [`ApiKeySpec::draft`] makes
/// it; `groups` are the server's groups (their ids are shown by name), and `group_ids` holds the id
/// of each of the spec's groups (`None`: a group not made yet). `keyward plan` and the
/// Terraform provider both decide an update with this.
pub fn key_changes(
    spec: &ApiKeySpec,
    live: &ApiKey,
    draft: &crate::key::KeyDraft,
    groups: &[Group],
    group_ids: &[Option<&str>],
    manager: Manager,
) -> (Vec<FieldChange>, UpdateKeyRequest) {
    let mut changes = Vec::new();
    let mut patch = UpdateKeyRequest {
        managed_by: Some(Some(manager)),
        ..UpdateKeyRequest::default()
    };
    if draft.description != live.description {
        changes.push(FieldChange::new(
            "description",
            json!(live.description),
            json!(draft.description),
        ));
        patch.description = Some(draft.description.clone());
    }
    if scope_set(&draft.scopes) != scope_set(&live.scopes) {
        changes.push(FieldChange::new(
            "scopes",
            scope_list(&live.scopes),
            scope_list(&draft.scopes),
        ));
        patch.scopes = Some(draft.scopes.iter().map(|s| s.input()).collect());
    }
    if set(&draft.workspaces) != set(&live.workspaces) {
        changes.push(FieldChange::new(
            "workspaces",
            json!(live.workspaces),
            json!(draft.workspaces),
        ));
        patch.workspaces = Some(draft.workspaces.clone());
    }
    let live_groups: BTreeSet<String> = live
        .groups
        .iter()
        .map(|id| {
            groups
                .iter()
                .find(|g| &g.id == id)
                .map_or_else(|| id.clone(), |g| name_key(&g.name))
        })
        .collect();
    let wanted_groups: BTreeSet<String> = spec.groups.iter().map(|g| name_key(g.trim())).collect();
    let same_ids = group_ids.iter().all(Option::is_some);
    if live_groups != wanted_groups || !same_ids {
        changes.push(FieldChange::new(
            "groups",
            json!(names_of(&live.groups, groups)),
            json!(spec.groups),
        ));
        patch.groups = Some(spec.groups.iter().map(|g| g.trim().to_owned()).collect());
    }
    if draft.allowed_cidrs != live.allowed_cidrs {
        changes.push(FieldChange::new(
            "allowed_cidrs",
            json!(live.allowed_cidrs),
            json!(draft.allowed_cidrs),
        ));
        patch.allowed_cidrs = Some(spec.allowed_cidrs.clone());
    }
    if let Some(rate) = spec.rate_limit_per_minute
        && u64::try_from(rate).ok() != Some(u64::from(live.rate_limit_per_minute))
    {
        changes.push(FieldChange::new(
            "rate_limit_per_minute",
            json!(live.rate_limit_per_minute),
            json!(rate),
        ));
        patch.rate_limit_per_minute = Some(rate);
    }
    if draft.expires_at != live.expires_at {
        changes.push(FieldChange::new(
            "expires_at",
            json!(live.expires_at),
            json!(draft.expires_at),
        ));
        patch.expires_at = Some(draft.expires_at);
    }
    let active = spec.active.unwrap_or(true);
    // `active` is about deactivation: an expired key that was never deactivated is active
    // in this sense (its expiry is its own field).
    let live_active = live.status != KeyStatus::Inactive;
    if active != live_active {
        changes.push(FieldChange::new(
            "active",
            json!(live_active),
            json!(active),
        ));
        patch.active = Some(active);
    }
    if draft.metadata != live.metadata {
        changes.push(FieldChange::new(
            "metadata",
            Value::Object(live.metadata.clone()),
            Value::Object(draft.metadata.clone()),
        ));
        patch.metadata = Some(draft.metadata.clone());
    }
    (changes, patch)
}

/// Whether a plan's action may change `key`: a `spec` key, or an unmanaged one it adopts.
fn may_touch(action: &Action, key: &ApiKey) -> bool {
    match key.managed_by {
        Some(Manager::Spec) => true,
        Some(Manager::Terraform) => false,
        None => matches!(action, Action::UpdateKey { adopt: true, .. }),
    }
}

fn scope_set(scopes: &[crate::permission::Scope]) -> BTreeSet<&str> {
    scopes.iter().map(|s| s.scope.as_str()).collect()
}

fn scope_list(scopes: &[crate::permission::Scope]) -> Value {
    json!(scopes.iter().map(|s| s.scope.as_str()).collect::<Vec<_>>())
}

fn set(items: &[String]) -> BTreeSet<&str> {
    items.iter().map(String::as_str).collect()
}

/// Why a saved plan no longer holds: the first key, group or preset that moved since it was
/// made. A stale plan is refused as a whole.
pub fn stale(plan: &Plan, live: &Live) -> Option<String> {
    let keys: BTreeMap<&str, &ApiKey> = live.keys.iter().map(|k| (k.id.as_str(), k)).collect();
    let mut seen = BTreeSet::new();
    for action in &plan.actions {
        match action {
            Action::CreateKey { spec, .. } => {
                let taken = live.keys.iter().any(|k| {
                    k.status != KeyStatus::Revoked
                        && name_key(&k.name) == name_key(spec.name.trim())
                });
                if taken {
                    return Some(format!(
                        "a key named '{}' was created since the plan",
                        spec.name
                    ));
                }
            }
            Action::CreateGroup { name, .. }
                if live
                    .groups
                    .iter()
                    .any(|g| name_key(&g.name) == name_key(name)) =>
            {
                return Some(format!("a group named '{name}' was created since the plan"));
            }
            Action::PutPreset { name, was, .. }
                if live.presets.iter().find(|p| &p.name == name) != was.as_ref() =>
            {
                return Some(format!("preset '{name}' changed since the plan"));
            }
            _ => {}
        }
        if let Some((id, version)) = action.key()
            && seen.insert(id)
        {
            match keys.get(id) {
                None => return Some(format!("key {id} was revoked or deleted since the plan")),
                Some(k) if k.version != version => {
                    return Some(format!(
                        "key '{}' ({id}) changed since the plan (version {version}, now {})",
                        k.name, k.version
                    ));
                }
                Some(k) if !may_touch(action, k) => {
                    return Some(format!(
                        "key '{}' ({id}) is not managed by spec, and the plan does not adopt it",
                        k.name
                    ));
                }
                Some(_) => {}
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::test_key;

    fn spec(value: Value) -> Spec {
        serde_json::from_value(value).unwrap()
    }

    fn live_key(body: Value) -> ApiKey {
        test_key(body)
    }

    fn options(prune: bool, adopt: bool) -> Options {
        Options {
            prune,
            adopt,
            now: Utc::now(),
            acting_key: None,
        }
    }

    fn run(specs: &[Spec], live: &Live, o: Options) -> Result<Plan, Vec<Refusal>> {
        let refs: Vec<&Spec> = specs.iter().collect();
        plan(&refs, live, o)
    }

    const SINK: &str = "stdout";

    #[test]
    fn new_specs_are_created_and_matching_keys_left_alone() {
        let specs = [
            spec(json!({"kind": "SharingGroup", "name": "platform"})),
            spec(
                json!({"kind": "ApiKey", "name": "ci", "preset": "read-only", "groups": ["platform"], "secret": {"sink": SINK}}),
            ),
        ];
        let p = run(&specs, &Live::default(), options(false, false)).unwrap();
        assert!(matches!(p.actions[0], Action::CreateGroup { .. }));
        assert!(matches!(p.actions[1], Action::CreateKey { .. }));
        assert_eq!(p.summary().create, 2);

        let key = live_key(json!({"name": "ci", "preset": "read-only", "managed_by": "spec"}));
        let group = Group {
            id: "grp_1".into(),
            account: "acc".into(),
            name: "platform".into(),
            description: String::new(),
            created_at: Utc::now(),
            created_by: "t".into(),
        };
        let mut key = key;
        key.groups = vec!["grp_1".into()];
        let live = Live {
            keys: vec![key],
            groups: vec![group],
            ..Live::default()
        };
        let p = run(&specs, &live, options(true, false)).unwrap();
        assert!(!p.has_changes(), "{p:?}");
        assert_eq!(p.unchanged, 2);
    }

    #[test]
    fn changes_are_shown_field_by_field_and_drift_is_named() {
        let mut key = live_key(json!({"name": "ci", "scopes": ["read"], "managed_by": "spec"}));
        let specs = [spec(json!({
            "kind": "ApiKey", "name": "ci", "scopes": ["read", "agent:editor"],
            "rate_limit_per_minute": 120, "active": false
        }))];
        let live = Live {
            keys: vec![key.clone()],
            ..Live::default()
        };
        let p = run(&specs, &live, options(false, false)).unwrap();
        let Action::UpdateKey {
            changes,
            patch,
            version,
            ..
        } = &p.actions[0]
        else {
            panic!("{p:?}")
        };
        let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["scopes", "rate_limit_per_minute", "active"]);
        assert_eq!(*version, 1);
        assert_eq!(patch.managed_by, Some(Some(Manager::Spec)));
        assert!(p.drift.is_empty());

        key.version = 3; // edited outside git since the apply that left version 1
        key.description = "by hand".into();
        let live = Live {
            keys: vec![key],
            ..Live::default()
        };
        let specs = [spec(
            json!({"kind": "ApiKey", "name": "ci", "scopes": ["read"]}),
        )];
        let p = run(&specs, &live, options(false, false)).unwrap();
        assert_eq!(p.drift.len(), 1);
        assert!(
            p.drift[0].note.contains("restores description"),
            "{:?}",
            p.drift
        );
        assert!(
            matches!(&p.actions[0], Action::UpdateKey { changes, .. } if changes[0].field == "description")
        );
    }

    #[test]
    fn a_raised_generation_regenerates_into_the_sink() {
        let key = live_key(json!({"name": "ci", "scopes": ["read"], "managed_by": "spec"}));
        let live = Live {
            keys: vec![key],
            ..Live::default()
        };
        let raised = [spec(
            json!({"kind": "ApiKey", "name": "ci", "scopes": ["read"], "generation": 2, "grace_period_seconds": 60, "secret": {"sink": SINK}}),
        )];
        let p = run(&raised, &live, options(false, false)).unwrap();
        assert!(matches!(
            &p.actions[..],
            [Action::RegenerateKey {
                from_generation: 1,
                generation: 2,
                grace_period_seconds: 60,
                ..
            }]
        ));
        let no_sink = [spec(
            json!({"kind": "ApiKey", "name": "ci", "scopes": ["read"], "generation": 2}),
        )];
        let e = run(&no_sink, &live, options(false, false)).unwrap_err();
        assert!(e[0].message.contains("no secret sink"));
        let create_no_sink = [spec(
            json!({"kind": "ApiKey", "name": "new", "scopes": ["read"]}),
        )];
        let e = run(&create_no_sink, &Live::default(), options(false, false)).unwrap_err();
        assert!(e[0].message.contains("no secret sink"));
    }

    #[test]
    fn prune_revokes_only_spec_keys_and_foreign_keys_are_refused() {
        let ours = live_key(json!({"name": "gone", "scopes": ["read"], "managed_by": "spec"}));
        let theirs = live_key(json!({"name": "tf", "scopes": ["read"], "managed_by": "terraform"}));
        let by_hand = live_key(json!({"name": "hand", "scopes": ["read"]}));
        let live = Live {
            keys: vec![ours.clone(), theirs, by_hand],
            ..Live::default()
        };
        let p = run(&[], &live, options(true, false)).unwrap();
        assert_eq!(
            p.actions,
            [Action::RevokeKey {
                id: ours.id.clone(),
                name: "gone".into(),
                version: 1
            }]
        );
        let naming = [
            spec(json!({"kind": "ApiKey", "name": "tf", "scopes": ["read"]})),
            spec(json!({"kind": "ApiKey", "name": "HAND", "scopes": ["read"]})),
            spec(
                json!({"kind": "ApiKey", "name": "x", "scopes": ["read"], "groups": ["nowhere"], "secret": {"sink": SINK}}),
            ),
            spec(
                json!({"kind": "ApiKey", "name": "y", "preset": "nope", "secret": {"sink": SINK}}),
            ),
        ];
        let e = run(&naming, &live, options(false, false)).unwrap_err();
        let messages: Vec<&str> = e.iter().map(|r| r.message.as_str()).collect();
        assert!(messages[0].contains("managed by Terraform"), "{messages:?}");
        assert!(messages[1].contains("--adopt"), "{messages:?}");
        assert!(
            messages[2].contains("no sharing group 'nowhere'"),
            "{messages:?}"
        );
        assert!(
            messages[3].contains("unknown preset 'nope'"),
            "{messages:?}"
        );
        let adopted = run(&naming[1..2], &live, options(false, true)).unwrap();
        assert!(matches!(
            &adopted.actions[..],
            [Action::UpdateKey { adopt: true, .. }]
        ));
    }

    #[test]
    fn a_saved_plan_goes_stale_when_anything_it_touches_moves() {
        let key = live_key(json!({"name": "ci", "scopes": ["read"], "managed_by": "spec"}));
        let mut live = Live {
            keys: vec![key.clone()],
            ..Live::default()
        };
        let specs = [
            spec(json!({"kind": "ApiKey", "name": "ci", "scopes": ["write"]})),
            spec(
                json!({"kind": "ApiKey", "name": "new", "scopes": ["read"], "secret": {"sink": SINK}}),
            ),
        ];
        let p = run(&specs, &live, options(false, false)).unwrap();
        assert_eq!(stale(&p, &live), None);
        live.keys[0].version = 2;
        assert!(stale(&p, &live).unwrap().contains("changed since the plan"));
        live.keys[0].version = 1;
        live.keys
            .push(live_key(json!({"name": "new", "scopes": ["read"]})));
        assert!(
            stale(&p, &live)
                .unwrap()
                .contains("was created since the plan")
        );
    }

    #[test]
    fn time_passing_breaks_no_spec() {
        let past = Utc::now() - chrono::Duration::hours(1);
        let mut key = live_key(json!({"name": "old", "scopes": ["read"], "managed_by": "spec"}));
        key.expires_at = Some(past);
        let live = Live {
            keys: vec![key],
            ..Live::default()
        };
        let spec_of = |name: &str| {
            spec(
                json!({"kind": "ApiKey", "name": name, "scopes": ["read"], "expires_at": past, "secret": {"sink": SINK}}),
            )
        };
        let p = run(&[spec_of("old")], &live, options(false, false)).unwrap();
        assert!(
            !p.has_changes(),
            "an expired key matching its spec needs nothing"
        );
        let e = run(&[spec_of("new")], &live, options(false, false)).unwrap_err();
        assert!(e[0].message.contains("has passed"), "{e:?}");
    }

    #[test]
    fn the_acting_key_is_never_changed_or_pruned() {
        let me = live_key(json!({"name": "root", "scopes": ["admin"], "managed_by": "spec"}));
        let live = Live {
            keys: vec![me.clone()],
            ..Live::default()
        };
        let o = Options {
            acting_key: Some(me.id.clone()),
            ..options(true, false)
        };
        let p = plan(&[], &live, o.clone()).unwrap();
        assert!(!p.has_changes());
        assert!(p.notes[0].contains("admin key this runs with"));
        let narrower = [spec(
            json!({"kind": "ApiKey", "name": "root", "scopes": ["read"]}),
        )];
        let refs: Vec<&Spec> = narrower.iter().collect();
        let e = plan(&refs, &live, o).unwrap_err();
        assert!(e[0].message.contains("cannot change itself"), "{e:?}");
    }

    #[test]
    fn a_generation_below_the_servers_is_refused() {
        let mut key = live_key(json!({"name": "ci", "scopes": ["read"], "managed_by": "spec"}));
        key.generation = 4;
        let live = Live {
            keys: vec![key],
            ..Live::default()
        };
        let at = |g: u32| {
            [spec(
                json!({"kind": "ApiKey", "name": "ci", "scopes": ["read"], "generation": g, "secret": {"sink": SINK}}),
            )]
        };
        let e = run(&at(3), &live, options(false, false)).unwrap_err();
        assert!(e[0].message.contains("Set generation to 4"), "{e:?}");
        assert!(
            !run(&at(4), &live, options(false, false))
                .unwrap()
                .has_changes()
        );
        assert_eq!(
            run(&at(5), &live, options(false, false))
                .unwrap()
                .summary()
                .regenerate,
            1
        );
    }

    #[test]
    fn a_saved_plan_touches_only_what_it_may() {
        let hand = live_key(json!({"name": "hand", "scopes": ["read"]}));
        let live = Live {
            keys: vec![hand.clone()],
            presets: vec![Preset::new("ci", "", &["read"]).unwrap()],
            ..Live::default()
        };
        let forged = Plan {
            actions: vec![Action::RevokeKey {
                id: hand.id.clone(),
                name: hand.name.clone(),
                version: hand.version,
            }],
            drift: vec![],
            unchanged: 0,
            notes: vec![],
        };
        assert!(
            stale(&forged, &live)
                .unwrap()
                .contains("not managed by spec")
        );
        let specs = [spec(
            json!({"kind": "Preset", "name": "ci", "scopes": ["write"]}),
        )];
        let p = run(&specs, &live, options(false, false)).unwrap();
        assert_eq!(stale(&p, &live), None);
        let mut edited = live.clone();
        edited.presets[0].description = "by hand".into();
        assert!(stale(&p, &edited).unwrap().contains("preset 'ci' changed"));
    }
}
