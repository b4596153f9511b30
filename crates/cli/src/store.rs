//! `keyward store init`: create the DynamoDB table, or bring one written by an older keyward up
//! to date (idempotent). `keyward store bootstrap`: make a deployed table's account and its
//! first admin key, printed once (the deployment's pepper read from where it is kept).

use clap::{Args, Subcommand};
use keyward_aws::sdk;
use keyward_store::dynamodb::InitOutcome;

use crate::deployment::{DeploymentArgs, ForBootstrap, ForStore};
use crate::error::CliError;

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Create the DynamoDB table (on-demand billing, streams and TTL on), or upgrade an
    /// existing one (name claims under folded names). Idempotent.
    Init(InitArgs),
    /// Make the account of a deployed table and its first admin key, printed once on standard
    /// output (never in a template output or Terraform state). The deployment's pepper comes
    /// from --pepper-secret or --pepper-parameter, as the functions read it. Idempotent: a
    /// bootstrapped account prints no key.
    Bootstrap(BootstrapArgs),
}

#[derive(Debug, Args)]
pub struct BootstrapArgs {
    #[command(flatten)]
    deployment: DeploymentArgs<ForBootstrap>,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The table, as --store dynamodb://TABLE[?endpoint=URL&region=REGION].
    #[command(flatten)]
    deployment: DeploymentArgs<ForStore>,
}

pub async fn run(command: StoreCommand) -> Result<(), CliError> {
    match command {
        StoreCommand::Bootstrap(args) => {
            let deployment = &args.deployment;
            let location = deployment
                .config
                .require_dynamodb()
                .map_err(|e| CliError::Input(e.to_string()))?;
            let app = deployment.open_table().await?;
            match app.bootstrap().await? {
                Some(root) => {
                    eprintln!(
                        "keyward: bootstrapped account '{}' of table {}. Root admin key (shown once, store it now):",
                        deployment.config.settings.account, location.table
                    );
                    println!("{}", root.expose());
                }
                None => eprintln!(
                    "keyward: account '{}' of table {} is bootstrapped already; no key was made",
                    deployment.config.settings.account, location.table
                ),
            }
            Ok(())
        }
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
