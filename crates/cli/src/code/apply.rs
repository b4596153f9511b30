//! `keyward apply`: makes a plan through the management API, one action at a time, each key
//! change under `If-Match` with the version planned (or left by the action before it), so a
//! key changed since the plan is refused, never overwritten. New secrets go straight from the
//! API's answer to their sink and are dropped; none is printed but by the stdout sink.
//!
//! Groups and presets go first, in order; then up to `--parallelism` keys at a time, each
//! key's own actions in order. After a failure no further key is started, and apply says what
//! was done and what was not: the plan is computed from the live records, so running it again
//! finishes the job.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use indicatif::{ProgressBar, ProgressStyle};
use keyward_client::Client;
use keyward_client::api::groups::CreateGroupRequest;
use keyward_client::api::keys::{ApiKey, RegenerateRequest, UpdateKeyRequest};
use keyward_client::api::presets::PresetRequest;
use keyward_core::managed::Manager;
use keyward_core::name::name_key;
use keyward_core::plan::{Action, Live, Plan, Shown};
use keyward_core::spec::SecretSpec;
use keyward_sinks::{Delivery, Fingerprint, Sinks, Target};

use crate::error::CliError;

/// What an apply did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// One line per action made.
    pub done: Vec<String>,
    /// The actions that failed and why, with what the operator should do.
    pub failed: Vec<String>,
    /// Actions not attempted after a failure.
    pub not_done: Vec<String>,
}

/// How many keys apply changes at once by default. Each key's own actions stay in order
/// (an update before its regeneration); different keys are independent.
pub const DEFAULT_PARALLELISM: u16 = 8;

/// Applies `plan`: sharing groups and presets first, in order (keys name them), then each
/// key's actions in order, up to `parallelism` keys at a time. After a failure no further
/// key is started; the keys in flight finish their current action. A progress bar shows on a
/// terminal for plans of more than a few actions.
pub fn execute(
    client: &Client,
    sinks: &Sinks,
    plan: &Plan,
    live: &Live,
    parallelism: usize,
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
    };
    let mut outcome = Outcome::default();
    let (shared, keys): (Vec<&Action>, Vec<&Action>) = plan
        .actions
        .iter()
        .partition(|a| matches!(a, Action::CreateGroup { .. } | Action::PutPreset { .. }));
    for (i, action) in shared.iter().enumerate() {
        bar.set_message(title(action));
        match run.shared(action) {
            Ok(line) => outcome.done.push(line),
            Err(e) => {
                outcome.failed.push(format!("{}: {e}", title(action)));
                outcome
                    .not_done
                    .extend(shared[i + 1..].iter().chain(&keys).map(|a| title(a)));
                bar.finish_and_clear();
                return outcome;
            }
        }
        bar.inc(1);
    }
    let chains = chains(&keys);
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let result = Mutex::new(outcome);
    let run = &run;
    std::thread::scope(|scope| {
        for _ in 0..parallelism.clamp(1, chains.len().max(1)) {
            scope.spawn(|| {
                loop {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(chain) = chains.get(i) else { return };
                    let mut version = None;
                    for (j, action) in chain.iter().enumerate() {
                        let made = run.key(action, &mut version);
                        let mut out = result.lock().unwrap_or_else(PoisonError::into_inner);
                        match made {
                            Ok(line) => out.done.push(line),
                            Err(Failed { done, error }) => {
                                stop.store(true, Ordering::SeqCst);
                                out.done.extend(done);
                                out.failed.push(format!("{}: {error}", title(action)));
                                out.not_done.extend(chain[j + 1..].iter().map(|a| title(a)));
                                return;
                            }
                        }
                        bar.inc(1);
                    }
                }
            });
        }
    });
    bar.finish_and_clear();
    let mut outcome = result.into_inner().unwrap_or_else(PoisonError::into_inner);
    let started = next.load(Ordering::SeqCst).min(chains.len());
    outcome
        .not_done
        .extend(chains[started..].iter().flatten().map(|a| title(a)));
    outcome
}

/// The key actions grouped by key, each group in plan order; groups in plan order of their
/// first action.
fn chains<'a>(actions: &[&'a Action]) -> Vec<Vec<&'a Action>> {
    let mut order: Vec<Vec<&Action>> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for action in actions {
        let key = match action {
            Action::CreateKey { spec, .. } => format!("name:{}", name_key(spec.name.trim())),
            other => format!("id:{}", other.key().map_or("", |(id, _)| id)),
        };
        match index.get(&key) {
            Some(&i) => order[i].push(action),
            None => {
                index.insert(key, order.len());
                order.push(vec![action]);
            }
        }
    }
    order
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
}

impl Run<'_> {
    /// A sharing group or preset action.
    fn shared(&mut self, action: &Action) -> Result<String, CliError> {
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
            other => Err(CliError::Input(format!(
                "{} is not a group or preset action",
                title(other)
            ))),
        }
    }

    /// One action on a key; `version` is the version this apply's last change to the key
    /// left (`None` before the first), sent as `If-Match` instead of the planned one.
    fn key(&self, action: &Action, version: &mut Option<u64>) -> Result<String, Failed> {
        match action {
            Action::CreateKey {
                spec,
                secret,
                replaces,
            } => {
                let ids = self.group_ids(&spec.groups)?;
                let created = self
                    .client
                    .create_key(&spec.create_request(ids, Manager::Spec), None)?;
                let key = created.key;
                let Some(token) = created.secret else {
                    return Err(CliError::Input(format!(
                        "key {} was created but the API answered no secret; regenerate it (raise `generation`)",
                        key.id
                    ))
                    .into());
                };
                *version = Some(key.version);
                let made = format!("created key \"{}\" ({})", key.name, key.id);
                let receipt = self
                    .deliver(&key, &token, secret, replaces.as_ref().map(fingerprint))
                    .map_err(|error| Failed::after(&made, error))?;
                let mut line = format!("{made}; secret {receipt}");
                if spec.active == Some(false) {
                    let patch = UpdateKeyRequest {
                        active: Some(false),
                        managed_by: Some(Some(Manager::Spec)),
                        ..UpdateKeyRequest::default()
                    };
                    let edited = self
                        .client
                        .update_key(&key.id, Some(key.version), &patch)
                        .map_err(|e| Failed::after(&line, e.into()))?;
                    *version = Some(edited.key.version);
                    line.push_str("; deactivated");
                }
                Ok(line)
            }
            Action::UpdateKey {
                id,
                name,
                version: planned,
                patch,
                ..
            } => {
                let mut patch = (**patch).clone();
                if let Some(names) = patch.groups.take() {
                    patch.groups = Some(self.group_ids(&names)?);
                }
                let at = version.unwrap_or(*planned);
                let edited = self.client.update_key(id, Some(at), &patch)?;
                *version = Some(edited.key.version);
                Ok(format!("updated key \"{name}\" ({id})"))
            }
            Action::RegenerateKey {
                id,
                version: planned,
                generation,
                grace_period_seconds,
                secret,
                replaces,
                ..
            } => {
                let at = version.unwrap_or(*planned);
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
                *version = Some(key.version);
                let Some(token) = regenerated.created.secret else {
                    return Err(CliError::Input(format!(
                        "key {id} was regenerated but the API answered no secret; raise `generation` again"
                    ))
                    .into());
                };
                let made = format!("regenerated key \"{}\" ({id})", key.name);
                let receipt = self
                    .deliver(&key, &token, secret, Some(fingerprint(replaces)))
                    .map_err(|error| Failed::after(&made, error))?;
                Ok(format!(
                    "regenerated key \"{}\" ({id}) to generation {generation}; secret {receipt}",
                    key.name
                ))
            }
            Action::RevokeKey {
                id,
                name,
                version: planned,
            } => {
                let at = version.unwrap_or(*planned);
                let revoked = self.client.revoke_key(id, Some(at))?;
                *version = Some(revoked.version);
                Ok(format!("revoked key \"{name}\" ({id})"))
            }
            other => Err(CliError::Input(format!("{} is not a key action", title(other))).into()),
        }
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

/// Why a key action failed, and what of it the server had already made (a key created whose
/// secret could not be delivered is done, and its failure reported too).
struct Failed {
    done: Option<String>,
    error: Box<CliError>,
}

impl Failed {
    fn after(done: &str, error: CliError) -> Self {
        Self {
            done: Some(format!("{done} (then failed: see below)")),
            error: Box::new(error),
        }
    }
}

impl<E: Into<CliError>> From<E> for Failed {
    fn from(error: E) -> Self {
        Self {
            done: None,
            error: Box::new(error.into()),
        }
    }
}

/// Refuses an apply before anything is made when a sink would refuse its secret: a file that
/// holds something other than the secret being replaced, a sink this build lacks, or two keys
/// of the plan writing to one file.
pub fn preflight(sinks: &Sinks, plan: &Plan) -> Result<(), CliError> {
    let mut problems = Vec::new();
    let mut files = HashMap::new();
    for action in &plan.actions {
        let (name, secret, replaces) = match action {
            Action::CreateKey {
                spec,
                secret,
                replaces,
            } => (spec.name.as_str(), secret, replaces.as_ref()),
            Action::RegenerateKey {
                name,
                secret,
                replaces,
                ..
            } => (name.as_str(), secret, Some(replaces)),
            _ => continue,
        };
        if let SecretSpec::File { path } = secret
            && let Some(other) = files.insert(path.as_str(), name)
        {
            problems.push(format!(
                "keys \"{other}\" and \"{name}\" both send their secret to {path}"
            ));
        }
        if let Err(e) = sinks.check(&target(secret), replaces.map(fingerprint)) {
            problems.push(format!("key \"{name}\": {e}"));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(CliError::Input(format!(
        "nothing was applied: {} secret sink{} would refuse the secret:\n  {}",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        problems.join("\n  ")
    )))
}

/// What a sink may find and overwrite, as the sinks crate takes it.
fn fingerprint(shown: &Shown) -> Fingerprint<'_> {
    Fingerprint {
        start: &shown.start,
        last4: &shown.last4,
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
