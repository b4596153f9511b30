//! `keyward bench code`: how long keys as code takes for many keys against a live management
//! API (`keyward serve`, or a deployment): validate, plan and apply of N new keys, the plan
//! that finds nothing to do, N in-place updates, and the prune that revokes them again.
//!
//! The keys are named `bench-<run>-<n>`, with a run id of their own, so a run never touches
//! other keys; the last step revokes every key it made. Secrets go to 0600 files in a
//! temporary directory that is removed at the end.

use std::path::Path;
use std::time::{Duration, Instant};

use clap::Args;
use keyward_client::Client;
use keyward_core::plan::Plan;
use keyward_sinks::Sinks;

use super::{apply, plan, specs};
use crate::connect::Connection;
use crate::error::CliError;

#[derive(Debug, Args)]
pub struct CodeArgs {
    /// Keys in the spec directory.
    #[arg(long, default_value_t = 1_000)]
    pub keys: usize,
    #[command(flatten)]
    pub connection: Connection,
}

/// One timed step.
struct Step {
    name: &'static str,
    took: Duration,
    actions: usize,
}

pub fn run(args: &CodeArgs) -> Result<(), CliError> {
    let client = args.connection.client()?;
    let dir = tempfile::tempdir().map_err(|source| CliError::Io {
        action: "create a temporary directory in",
        path: std::env::temp_dir(),
        source,
    })?;
    // A fresh id of its own, so this run's keys never share a name with another's.
    let run_id = keyward_core::id::new_id("run").map_err(|e| CliError::Input(e.to_string()))?;
    let sinks = Sinks::new(Box::new(std::io::sink()));
    let mut steps = Vec::new();

    write_specs(dir.path(), &run_id, args.keys, "read")?;
    let (checked, took) = timed(|| load(dir.path()));
    let checked = checked?;
    steps.push(Step {
        name: "validate (offline)",
        took,
        actions: 0,
    });
    let (created, took) = timed(|| plan_only(&client, &checked, false));
    let (created, live) = created?;
    steps.push(Step {
        name: "plan: create",
        took,
        actions: created.actions.len(),
    });
    steps.push(apply_step(
        "apply: create",
        &client,
        &sinks,
        &created,
        &live,
    )?);
    let (noop, took) = timed(|| plan_only(&client, &checked, false));
    steps.push(Step {
        name: "plan: nothing to do",
        took,
        actions: noop?.0.actions.len(),
    });

    write_specs(dir.path(), &run_id, args.keys, "write")?;
    let checked = load(dir.path())?;
    let (updates, took) = timed(|| plan_only(&client, &checked, false));
    let (updates, live) = updates?;
    steps.push(Step {
        name: "plan: update in place",
        took,
        actions: updates.actions.len(),
    });
    steps.push(apply_step(
        "apply: update in place",
        &client,
        &sinks,
        &updates,
        &live,
    )?);

    // Revoke them all again: the other files stay, so only this run's keys are pruned.
    remove_keys(dir.path())?;
    let checked = load(dir.path())?;
    let (pruned, took) = timed(|| plan_only(&client, &checked, true));
    let (pruned, live) = pruned?;
    let ours = pruned
        .actions
        .iter()
        .filter(|a| matches!(a, keyward_core::plan::Action::RevokeKey { name, .. } if name.starts_with(&format!("bench-{run_id}-"))))
        .count();
    if ours != pruned.actions.len() {
        return Err(CliError::Input(format!(
            "the prune would revoke {} key(s) this run did not make (other keys are managed by spec on this server); stopping",
            pruned.actions.len() - ours
        )));
    }
    steps.push(Step {
        name: "plan: prune",
        took,
        actions: pruned.actions.len(),
    });
    steps.push(apply_step(
        "apply: prune (revoke)",
        &client,
        &sinks,
        &pruned,
        &live,
    )?);

    println!(
        "keys as code against {} with {} keys:",
        client.endpoint().as_str(),
        args.keys
    );
    println!(
        "  {:<26} {:>9} {:>9} {:>12}",
        "step", "actions", "seconds", "ms/action"
    );
    for s in &steps {
        let per = if s.actions > 0 {
            format!("{:.2}", s.took.as_secs_f64() * 1000.0 / s.actions as f64)
        } else {
            "-".to_owned()
        };
        println!(
            "  {:<26} {:>9} {:>9.2} {:>12}",
            s.name,
            s.actions,
            s.took.as_secs_f64(),
            per
        );
    }
    Ok(())
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

fn load(dir: &Path) -> Result<Vec<specs::Checked>, CliError> {
    super::load(&[dir.to_path_buf()])
}

fn plan_only(
    client: &Client,
    checked: &[specs::Checked],
    prune: bool,
) -> Result<(Plan, keyward_core::plan::Live), CliError> {
    let live = plan::live(client)?;
    Ok((plan::make(client, checked, &live, prune, false)?, live))
}

fn apply_step(
    name: &'static str,
    client: &Client,
    sinks: &Sinks,
    made: &Plan,
    live: &keyward_core::plan::Live,
) -> Result<Step, CliError> {
    let (outcome, took) = timed(|| {
        apply::execute(
            client,
            sinks,
            made,
            live,
            usize::from(apply::DEFAULT_PARALLELISM),
            false,
        )
    });
    if let Some(failed) = outcome.failed.first() {
        return Err(CliError::Input(format!("{name} failed: {failed}")));
    }
    Ok(Step {
        name,
        took,
        actions: outcome.done.len(),
    })
}

/// Keys per spec file (well under the 1 MiB a file may hold).
const KEYS_PER_FILE: usize = 500;

/// `keys-*.yaml` with `n` keys holding `scope`, and the group they share.
fn write_specs(dir: &Path, run: &str, n: usize, scope: &str) -> Result<(), CliError> {
    let write = |name: String, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|source| CliError::Io {
            action: "write",
            path,
            source,
        })
    };
    write(
        "group.yaml".into(),
        "kind: SharingGroup\nname: bench-group\n",
    )?;
    for (f, start) in (0..n).step_by(KEYS_PER_FILE).enumerate() {
        let mut text = String::new();
        for i in start..n.min(start + KEYS_PER_FILE) {
            text.push_str(&format!(
                "---\nkind: ApiKey\nname: bench-{run}-{i:05}\nscopes: [{scope}, agent:viewer]\nworkspaces: [ws_{}]\ngroups: [bench-group]\nallowed_cidrs: [10.0.0.0/8]\nrate_limit_per_minute: 120\nmetadata: {{n: {i}}}\nsecret: {{sink: file, path: secrets/{i:05}.key}}\n",
                i % 7
            ));
        }
        write(format!("keys-{f:03}.yaml"), &text)?;
    }
    Ok(())
}

/// Removes the key files, leaving the group.
fn remove_keys(dir: &Path) -> Result<(), CliError> {
    let entries = std::fs::read_dir(dir).map_err(|source| CliError::Io {
        action: "read",
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("keys-"))
        {
            std::fs::remove_file(&path).map_err(|source| CliError::Io {
                action: "remove",
                path: path.clone(),
                source,
            })?;
        }
    }
    Ok(())
}
