//! `keyward authorize --event FILE [--policy FILE]`: the authorizer's own handler on an API
//! Gateway event file, against this deployment's keys, with every step of the decision.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use keyward_core::route::{RoutePolicy, RoutePolicySpec};
use keyward_service::authorizer::{Answer, Authorizer, AuthorizerEvent, HttpApiFormat};

use crate::deployment::DeploymentArgs;
use crate::error::CliError;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Simple,
    Iam,
}

#[derive(Debug, Args)]
pub struct AuthorizeArgs {
    #[command(flatten)]
    deployment: DeploymentArgs,

    /// An API Gateway authorizer event (REST TOKEN or REQUEST, or HTTP API 2.0), as JSON.
    #[arg(long)]
    event: PathBuf,

    /// A route policy (JSON); without one, only the key itself is checked.
    #[arg(long)]
    policy: Option<PathBuf>,

    /// How an HTTP API authorizer answers.
    #[arg(long, value_enum, default_value = "simple")]
    http_api: Format,
}

fn read(path: &PathBuf, what: &'static str) -> Result<serde_json::Value, CliError> {
    let text = std::fs::read_to_string(path).map_err(|source| CliError::Io {
        action: what,
        path: path.clone(),
        source,
    })?;
    serde_json::from_str(&text)
        .map_err(|e| CliError::Input(format!("{}: not JSON: {e}", path.display())))
}

/// A route policy file, checked, with errors that name the file and the place in it.
pub fn load_policy(path: &PathBuf) -> Result<RoutePolicy, CliError> {
    let spec: RoutePolicySpec = serde_json::from_value(read(path, "reading the route policy")?)
        .map_err(|e| CliError::Input(format!("{}: {e}", path.display())))?;
    RoutePolicy::compile(&spec).map_err(|e| CliError::Input(format!("{}: {e}", path.display())))
}

pub async fn run(args: AuthorizeArgs) -> Result<(), CliError> {
    let event = AuthorizerEvent::parse(read(&args.event, "reading the event")?)
        .map_err(|e| CliError::Input(format!("{}: {e}", args.event.display())))?;
    let format = match args.http_api {
        Format::Simple => HttpApiFormat::Simple,
        Format::Iam => HttpApiFormat::Iam,
    };
    let app = args.deployment.open().await?;
    let engine = app.engine().clone();
    let authorizer = match &args.policy {
        Some(path) => Authorizer::new(engine, load_policy(path)?, format),
        None => Authorizer::without_policy(engine, format),
    };
    let explained = authorizer.explain(&event).await?;
    for (i, step) in explained.steps.iter().enumerate() {
        println!("{}. {step}", i + 1);
    }
    match explained.answer {
        Answer::Respond(r) => println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default()),
        Answer::Unauthorized => println!("error: Unauthorized"),
    }
    Ok(())
}
