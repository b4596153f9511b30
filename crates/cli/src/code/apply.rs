//! `keyward apply`: makes a plan through the management API, one action at a time, each key
//! change under `If-Match` with the version planned (or left by the action before it), so a
//! key changed since the plan is refused, never overwritten. New secrets go straight from the
//! API's answer to their sink and are dropped; none is printed but by the stdout sink.
//!
//! On the first failure apply stops and says what was done and what was not: the plan is
//! computed from the live records, so running it again finishes the job.

use std::collections::HashMap;
use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use keyward_client::Client;
use keyward_client::api::groups::CreateGroupRequest;
use keyward_client::api::keys::{ApiKey, RegenerateRequest, UpdateKeyRequest};
use keyward_client::api::presets::PresetRequest;
use keyward_core::managed::Manager;
use keyward_core::name::name_key;
use keyward_core::plan::{Action, Live, Plan};
use keyward_core::spec::SecretSpec;
use keyward_sinks::{Delivery, Fingerprint, Sinks, Target};

use crate::error::CliError;

/// What an apply did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// One line per action made.
    pub done: Vec<String>,
    /// The action that failed and why, with what the operator should do.
    pub failed: Option<String>,
    /// Actions not attempted after the failure.
    pub not_done: Vec<String>,
}

/// Applies with a progress bar on a terminal for plans of more than a few actions.
pub fn execute(
    client: &Client,
    sinks: &Sinks,
    plan: &Plan,
    live: &Live,
    progress: bool,
) -> Outcome {
    let bar = if progress && plan.actions.len() > 10 {
        let bar = ProgressBar::new(plan.actions.len() as u64);
        if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}") {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut run = Run {
        client,
        sinks,
        groups: live
            .groups
            .iter()
            .map(|g| (name_key(&g.name), g.id.clone()))
            .collect(),
        versions: HashMap::new(),
        shown: live
            .keys
            .iter()
            .map(|k| (k.id.clone(), (k.start.clone(), k.last4.clone())))
            .collect(),
    };
    let mut outcome = Outcome::default();
    for (i, action) in plan.actions.iter().enumerate() {
        bar.set_message(title(action));
        match run.one(action) {
            Ok(line) => outcome.done.push(line),
            Err(e) => {
                outcome.failed = Some(format!("{}: {e}", title(action)));
                outcome.not_done = plan.actions[i + 1..].iter().map(title).collect();
                break;
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    outcome
}

/// An action in a few words.
fn title(action: &Action) -> String {
    match action {
        Action::CreateGroup { name, .. } => format!("create sharing group \"{name}\""),
        Action::PutPreset {
            name, exists: true, ..
        } => format!("update preset \"{name}\""),
        Action::PutPreset { name, .. } => format!("create preset \"{name}\""),
        Action::CreateKey { spec, .. } => format!("create key \"{}\"", spec.name),
        Action::UpdateKey { name, id, .. } => format!("update key \"{name}\" ({id})"),
        Action::RegenerateKey { name, id, .. } => format!("regenerate key \"{name}\" ({id})"),
        Action::RevokeKey { name, id, .. } => format!("revoke key \"{name}\" ({id})"),
    }
}

struct Run<'a> {
    client: &'a Client,
    sinks: &'a Sinks,
    /// Group names (folded) to ids, groups created by this apply included.
    groups: HashMap<String, String>,
    /// The version each key is at after this apply's last change to it.
    versions: HashMap<String, u64>,
    /// The start and last4 of each key's current secret (a file sink may replace it).
    shown: HashMap<String, (String, String)>,
}

impl Run<'_> {
    fn one(&mut self, action: &Action) -> Result<String, CliError> {
        match action {
            Action::CreateGroup { name, description } => {
                let group = self.client.create_group(&CreateGroupRequest {
                    name: Some(name.clone()),
                    description: Some(description.clone()),
                })?;
                self.groups.insert(name_key(&group.name), group.id.clone());
                Ok(format!("created sharing group \"{name}\" ({})", group.id))
            }
            Action::PutPreset {
                name,
                description,
                scopes,
                ..
            } => {
                self.client.put_preset(
                    name,
                    &PresetRequest {
                        description: Some(description.clone()),
                        scopes: Some(scopes.clone()),
                    },
                )?;
                Ok(format!("put preset \"{name}\""))
            }
            Action::CreateKey { spec, secret } => {
                let ids = self.group_ids(&spec.groups)?;
                let created = self.client.create_key(&spec.create_request(ids), None)?;
                let key = created.key;
                let Some(token) = created.secret else {
                    return Err(CliError::Input(format!(
                        "key {} was created but the API answered no secret; regenerate it (raise `generation`)",
                        key.id
                    )));
                };
                let receipt = self.deliver(&key, &token, secret, None)?;
                let mut line = format!(
                    "created key \"{}\" ({}); secret {receipt}",
                    key.name, key.id
                );
                self.versions.insert(key.id.clone(), key.version);
                if spec.active == Some(false) {
                    let patch = UpdateKeyRequest {
                        active: Some(false),
                        managed_by: Some(Some(Manager::Spec)),
                        ..UpdateKeyRequest::default()
                    };
                    let edited = self.client.update_key(&key.id, Some(key.version), &patch)?;
                    self.versions.insert(key.id.clone(), edited.key.version);
                    line.push_str("; deactivated");
                }
                Ok(line)
            }
            Action::UpdateKey {
                id,
                name,
                version,
                patch,
                ..
            } => {
                let mut patch = (**patch).clone();
                if let Some(names) = patch.groups.take() {
                    patch.groups = Some(self.group_ids(&names)?);
                }
                let at = self.version(id, *version);
                let edited = self.client.update_key(id, Some(at), &patch)?;
                self.versions.insert(id.clone(), edited.key.version);
                Ok(format!("updated key \"{name}\" ({id})"))
            }
            Action::RegenerateKey {
                id,
                version,
                generation,
                grace_period_seconds,
                secret,
                ..
            } => {
                let at = self.version(id, *version);
                let regenerated = self.client.regenerate_key(
                    id,
                    Some(at),
                    &RegenerateRequest {
                        grace_period_seconds: Some(*grace_period_seconds),
                        generation: i64::try_from(*generation).ok(),
                        managed_by: Some(Manager::Spec),
                    },
                )?;
                let key = regenerated.created.key;
                self.versions.insert(id.clone(), key.version);
                let Some(token) = regenerated.created.secret else {
                    return Err(CliError::Input(format!(
                        "key {id} was regenerated but the API answered no secret; raise `generation` again"
                    )));
                };
                let replaced = self.shown.get(id).cloned();
                let replaces = replaced
                    .as_ref()
                    .map(|(start, last4)| Fingerprint { start, last4 });
                let receipt = self.deliver(&key, &token, secret, replaces)?;
                Ok(format!(
                    "regenerated key \"{}\" ({id}) to generation {generation}; secret {receipt}",
                    key.name
                ))
            }
            Action::RevokeKey { id, name, version } => {
                let at = self.version(id, *version);
                self.client.revoke_key(id, Some(at))?;
                Ok(format!("revoked key \"{name}\" ({id})"))
            }
        }
    }

    fn version(&self, id: &str, planned: u64) -> u64 {
        self.versions.get(id).copied().unwrap_or(planned)
    }

    fn group_ids(&self, names: &[String]) -> Result<Vec<String>, CliError> {
        names
            .iter()
            .map(|n| {
                self.groups
                    .get(&name_key(n.trim()))
                    .cloned()
                    .ok_or_else(|| CliError::Input(format!("no sharing group '{n}' on the server")))
            })
            .collect()
    }

    /// Hands the secret to its sink. A failure names the key, so the operator can regenerate
    /// it into a sink that works.
    fn deliver(
        &self,
        key: &ApiKey,
        token: &str,
        secret: &SecretSpec,
        replaces: Option<Fingerprint<'_>>,
    ) -> Result<String, CliError> {
        let target = target(secret);
        let delivery = Delivery {
            key_id: &key.id,
            key_name: &key.name,
            secret: token,
            replaces,
        };
        match self.sinks.deliver(&target, &delivery) {
            Ok(receipt) => Ok(receipt.description),
            Err(e) => Err(CliError::Input(format!(
                "key {} (\"{}\") was made, but its secret could not be delivered to {}: {e}. The secret is lost: fix the sink, raise the key's `generation` and apply again to regenerate it",
                key.id,
                key.name,
                secret.describe()
            ))),
        }
    }
}

/// The sink a spec names, as the sinks crate takes it.
pub fn target(secret: &SecretSpec) -> Target {
    match secret {
        SecretSpec::Stdout => Target::Stdout,
        SecretSpec::File { path } => Target::File(PathBuf::from(path)),
        SecretSpec::SecretsManager { secret_id } => Target::SecretsManager {
            secret_id: secret_id.clone(),
        },
        SecretSpec::Ssm { parameter } => Target::Ssm {
            parameter: parameter.clone(),
        },
    }
}
