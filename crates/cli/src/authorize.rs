//! `keyward authorize --event FILE [--policy FILE]`: the authorizer's own handler on an API
//! Gateway event file, against this deployment's keys, with every step of the decision.
//!
//! It reads a deployment and never makes one: a data directory or table that holds none is
//! refused with what is missing ([`DeploymentArgs::open_existing`]), and the event file is read
//! up to [`MAX_EVENT_BYTES`].

use std::io::Read;
use std::path::{Path, PathBuf};

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

/// The largest event file read. API Gateway's own limits keep a real authorizer event far
/// smaller: request line and headers within 10 KiB for a REST API, and no body at all, so a
/// larger file is not an event (and `/dev/zero` must not be read until memory runs out).
pub const MAX_EVENT_BYTES: u64 = 1024 * 1024;

pub async fn run(args: AuthorizeArgs) -> Result<(), CliError> {
    let text = read_event(&args.event)?;
    let event = AuthorizerEvent::from_slice(&text)
        .map_err(|e| CliError::Input(format!("{}: {e}", args.event.display())))?;
    let config = &args.deployment.config;
    let app = args.deployment.open_existing().await?;
    let verifier = Verifier::new(app.engine().clone(), config.route_policy.clone());
    let authorizer = Authorizer::new(verifier, config.http_api_response)
        .with_cache_safe_answers(config.cache_safe_answers);
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

/// The event file, read up to [`MAX_EVENT_BYTES`] and refused beyond.
fn read_event(path: &Path) -> Result<Vec<u8>, CliError> {
    let io = |source| CliError::Io {
        action: "reading the event",
        path: path.to_path_buf(),
        source,
    };
    let mut text = Vec::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(MAX_EVENT_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(io)?;
    if u64::try_from(text.len()).unwrap_or(u64::MAX) > MAX_EVENT_BYTES {
        return Err(CliError::Input(format!(
            "{}: larger than {} MiB, so not an authorizer event (API Gateway's are a few KiB); \
             give the event's JSON",
            path.display(),
            MAX_EVENT_BYTES / (1024 * 1024)
        )));
    }
    Ok(text)
}
