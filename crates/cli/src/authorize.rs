//! `keyward authorize --event FILE [--policy FILE]`: the authorizer's own handler on an API
//! Gateway event file, against this deployment's keys, with every step of the decision.

use std::path::PathBuf;

use clap::Args;
use keyward_aws::answer::Answer;
use keyward_aws::authorizer::Authorizer;
use keyward_aws::event::AuthorizerEvent;
use keyward_service::verification::Verifier;

use crate::deployment::{DeploymentArgs, ForAuthorize};
use crate::error::CliError;

#[derive(Debug, Args)]
pub struct AuthorizeArgs {
    /// The deployment; without --policy, only the key itself is checked.
    #[command(flatten)]
    deployment: DeploymentArgs<ForAuthorize>,

    /// An API Gateway authorizer event (REST TOKEN or REQUEST, or HTTP API 2.0), as JSON.
    #[arg(long)]
    event: PathBuf,
}

pub async fn run(args: AuthorizeArgs) -> Result<(), CliError> {
    let text = std::fs::read(&args.event).map_err(|source| CliError::Io {
        action: "reading the event",
        path: args.event.clone(),
        source,
    })?;
    let event = AuthorizerEvent::from_slice(&text)
        .map_err(|e| CliError::Input(format!("{}: {e}", args.event.display())))?;
    let config = &args.deployment.config;
    let app = args.deployment.open().await?;
    let verifier = Verifier::new(app.engine().clone(), config.route_policy.clone());
    let authorizer = Authorizer::new(verifier, config.http_api_response);
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
