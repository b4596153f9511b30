//! Keys as code: spec files (YAML or JSON documents with a `kind` and a `name`) that
//! `keyward validate` checks offline and `keyward plan`/`apply` compare with the server. Each
//! step is one module; [`source`] reads the files into documents that remember the file, line
//! and column every value came from, so every later error can say where to look.
//!
//! - [`source`]: files and directories into documents with positions.
//! - [`specs`]: documents into checked specs (schema, the core's rules, names across files).
//! - [`plan`]: the live records, the plan (the core's diff), its rendering and saved form.
//! - [`apply`]: a plan made through the management API, secrets into their sinks.
//! - [`import`]: the account written as spec files.
//! - [`bench`]: `keyward bench code`, the time of plan and apply for many keys.
//!
//! Exit codes: 0 success (for `plan --detailed-exitcode`: no changes), 1 error, 2 changes
//! (`plan --detailed-exitcode` only).

pub mod apply;
pub mod bench;
pub mod import;
pub mod plan;
pub mod source;
pub mod specs;

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use keyward_core::spec::SCHEMA_FILE;
use keyward_sinks::Sinks;

use crate::connect::Connection;
use crate::error::CliError;
use plan::SavedPlan;

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Spec files, or directories searched for *.yaml, *.yml and *.json.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Spec files, or directories searched for *.yaml, *.yml and *.json.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Revoke keys managed by spec that no spec names any more.
    #[arg(long)]
    pub prune: bool,
    /// Take over existing keys that specs name but nothing manages.
    #[arg(long)]
    pub adopt: bool,
    /// Exit 0 when there is nothing to do, 2 when there are changes, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
    /// Save the plan for `keyward apply --plan FILE` (it holds no secret).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// Spec files, or directories searched for *.yaml, *.yml and *.json.
    #[arg(value_name = "PATH", required_unless_present = "plan")]
    pub paths: Vec<PathBuf>,
    /// Apply a plan saved by `keyward plan --out`; refused as a whole if anything it touches
    /// changed since.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["paths", "prune", "adopt"])]
    pub plan: Option<PathBuf>,
    /// Revoke keys managed by spec that no spec names any more.
    #[arg(long)]
    pub prune: bool,
    /// Take over existing keys that specs name but nothing manages.
    #[arg(long)]
    pub adopt: bool,
    /// Apply without asking (needed when not on a terminal).
    #[arg(long)]
    pub auto_approve: bool,
    /// How many keys are changed at once (each key's own steps stay in order).
    #[arg(long, default_value_t = apply::DEFAULT_PARALLELISM, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallelism: u16,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The directory to write groups.yaml, presets.yaml and keys.yaml into (never
    /// overwritten).
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub connection: Connection,
}

/// `keyward validate`: every error at once, or a count of what is valid.
pub fn validate(args: &ValidateArgs) -> Result<ExitCode, CliError> {
    let checked = load(&args.paths)?;
    let mut by_kind = std::collections::BTreeMap::<&str, usize>::new();
    for c in &checked {
        *by_kind.entry(c.spec.kind()).or_default() += 1;
    }
    let counts: Vec<String> = by_kind.iter().map(|(k, n)| format!("{n} {k}")).collect();
    println!(
        "valid: {} document(s) ({})",
        checked.len(),
        counts.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

fn load(paths: &[PathBuf]) -> Result<Vec<specs::Checked>, CliError> {
    specs::load(paths).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        CliError::Input(format!(
            "{} error{} in the specs:\n{}",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" },
            lines.join("\n")
        ))
    })
}

/// `keyward plan`.
pub fn plan(args: &PlanArgs) -> Result<ExitCode, CliError> {
    let checked = load(&args.paths)?;
    let client = args.connection.client()?;
    let live = plan::live(&client)?;
    let made = plan::make(&client, &checked, &live, args.prune, args.adopt)?;
    let mut stdout = std::io::stdout().lock();
    if args.json {
        let text = serde_json::to_string_pretty(&plan::to_json(&made)).unwrap_or_default();
        writeln!(stdout, "{text}").map_err(stdout_error)?;
    } else {
        plan::render(&made, &mut stdout).map_err(stdout_error)?;
    }
    if let Some(out) = &args.out {
        SavedPlan {
            format: SavedPlan::FORMAT.to_owned(),
            endpoint: client.endpoint().as_str().to_owned(),
            created_at: chrono::Utc::now(),
            prune: args.prune,
            adopt: args.adopt,
            plan: made.clone(),
        }
        .write(out)?;
        if !args.json {
            writeln!(
                stdout,
                "\nSaved the plan to {}: `keyward apply --plan {}` makes exactly it.",
                out.display(),
                out.display()
            )
            .map_err(stdout_error)?;
        }
    }
    Ok(if args.detailed_exitcode && made.has_changes() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// `keyward apply`.
pub fn apply(args: &ApplyArgs) -> Result<ExitCode, CliError> {
    let client = args.connection.client()?;
    let (made, live) = match &args.plan {
        Some(file) => {
            let saved = SavedPlan::read(file)?;
            if saved.endpoint != client.endpoint().as_str() {
                return Err(CliError::Input(format!(
                    "the plan was made against {}, not {}",
                    saved.endpoint,
                    client.endpoint().as_str()
                )));
            }
            let live = plan::live(&client)?;
            if let Some(why) = keyward_core::plan::stale(&saved.plan, &live) {
                return Err(CliError::Input(format!(
                    "the saved plan is stale and was not applied (nothing changed): {why}. Run `keyward plan` again"
                )));
            }
            (saved.plan, live)
        }
        None => {
            let checked = load(&args.paths)?;
            let live = plan::live(&client)?;
            (
                plan::make(&client, &checked, &live, args.prune, args.adopt)?,
                live,
            )
        }
    };
    let mut stdout = std::io::stdout().lock();
    plan::render(&made, &mut stdout).map_err(stdout_error)?;
    if !made.has_changes() {
        return Ok(ExitCode::SUCCESS);
    }
    drop(stdout);
    let sinks = Sinks::new(Box::new(std::io::stdout()));
    apply::preflight(&sinks, &made)?;
    let mut stdout = std::io::stdout().lock();
    if !args.auto_approve {
        if !std::io::stdin().is_terminal() {
            return Err(CliError::Input(
                "apply asks for confirmation on a terminal; with no terminal, pass --auto-approve (nothing was changed)".into(),
            ));
        }
        write!(
            stdout,
            "\nDo you want to perform these actions? Only 'yes' will be accepted: "
        )
        .map_err(stdout_error)?;
        stdout.flush().map_err(stdout_error)?;
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map_err(stdout_error)?;
        if answer.trim() != "yes" {
            writeln!(stdout, "Apply cancelled; nothing was changed.").map_err(stdout_error)?;
            return Ok(ExitCode::FAILURE);
        }
    }
    drop(stdout);
    let outcome = apply::execute(
        &client,
        &sinks,
        &made,
        &live,
        usize::from(args.parallelism),
        std::io::stderr().is_terminal(),
    );
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout).map_err(stdout_error)?;
    for line in &outcome.done {
        writeln!(stdout, "  done: {line}").map_err(stdout_error)?;
    }
    if outcome.failed.is_empty() {
        writeln!(
            stdout,
            "\nApply complete: {} action(s).",
            outcome.done.len()
        )
        .map_err(stdout_error)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut message = format!(
        "apply stopped after {} of {} action(s).",
        outcome.done.len(),
        made.actions.len()
    );
    for line in &outcome.failed {
        message.push_str(&format!("\n  failed: {line}"));
    }
    for line in &outcome.not_done {
        message.push_str(&format!("\n  not done: {line}"));
    }
    message
        .push_str("\nRun `keyward apply` again to finish: it plans from what the server has now.");
    Err(CliError::Input(message))
}

/// `keyward import`.
pub fn import(args: &ImportArgs) -> Result<ExitCode, CliError> {
    let client = args.connection.client()?;
    let live = plan::live(&client)?;
    let schema = format!("https://keyward.dev/{SCHEMA_FILE}");
    let acting = live.keys.iter().find(|k| client.authenticates_as(k));
    let imported = import::write(&live, &args.out, &schema, acting.map(|k| k.id.as_str()))?;
    for line in &imported.written {
        println!("wrote {line}");
    }
    for line in &imported.skipped {
        eprintln!("skipped {line}");
    }
    println!(
        "Review the files, add a `secret` sink to keys you will regenerate, then `keyward plan --adopt {}`.",
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn stdout_error(source: std::io::Error) -> CliError {
    CliError::Io {
        action: "write to",
        path: PathBuf::from("standard output"),
        source,
    }
}
