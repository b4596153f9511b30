//! `keyward store init`: create the DynamoDB table (idempotent).

use clap::{Args, Subcommand};
use keyward_aws::sdk;
use keyward_store::dynamodb::InitOutcome;

use crate::deployment::{DeploymentArgs, ForStore};
use crate::error::CliError;

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Create the DynamoDB table (on-demand billing, streams and TTL on). Idempotent.
    Init(InitArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The table, as --store dynamodb://TABLE[?endpoint=URL&region=REGION].
    #[command(flatten)]
    deployment: DeploymentArgs<ForStore>,
}

pub async fn run(command: StoreCommand) -> Result<(), CliError> {
    match command {
        StoreCommand::Init(args) => {
            let location = args
                .deployment
                .config
                .require_dynamodb()
                .map_err(|e| CliError::Input(e.to_string()))?;
            let store = sdk::dynamodb(&sdk::load().await, location);
            let what = match store.init().await? {
                InitOutcome::Created => "created",
                InitOutcome::AlreadyExisted => "already exists; left as it is",
            };
            println!("keyward: table {} {what}", location.table);
            Ok(())
        }
    }
}
