//! `keyward store init`: create the DynamoDB table, or bring one written by an older keyward up
//! to date (idempotent).

use clap::{Args, Subcommand};
use keyward_aws::sdk;
use keyward_store::dynamodb::InitOutcome;

use crate::deployment::{DeploymentArgs, ForStore};
use crate::error::CliError;

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Create the DynamoDB table (on-demand billing, streams and TTL on), or upgrade an
    /// existing one (name claims under folded names). Idempotent.
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
            let store = sdk::dynamodb(&sdk::load(location).await, location);
            let what = match store.init().await? {
                InitOutcome::Created => "created",
                InitOutcome::AlreadyExisted => "already exists; left as it is",
            };
            println!("keyward: table {} {what}", location.table);
            let names = store.upgrade_names().await?;
            if names.folded > 0 {
                println!(
                    "keyward: name claims moved to folded form (written by an older keyward): {}",
                    names.folded
                );
            }
            if names.released > 0 {
                println!(
                    "keyward: names of revoked keys freed (revoked by an older keyward): {}",
                    names.released
                );
            }
            if names.kept > 0 {
                println!(
                    "keyward: names left on their old claim, because another key or group has a name that differs only in case, width or Unicode form: {} (rename one of each pair)",
                    names.kept
                );
            }
            Ok(())
        }
    }
}
