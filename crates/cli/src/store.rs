//! Choosing and opening a store: `--store sqlite` (the data directory's database, the default)
//! or `--store dynamodb://TABLE[?endpoint=URL&region=R]`; and `keyward store init`.

use std::path::Path;
use std::sync::Arc;

use clap::{Args, Subcommand};
use keyward_store::dynamodb::InitOutcome;
use keyward_store::{DynamoLocation, DynamoStore, SqliteStore, Store};

use crate::error::CliError;

pub const DB_FILE: &str = "keyward.db";

/// Where keys are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice {
    /// SQLite in the data directory.
    Sqlite,
    Dynamo(DynamoLocation),
}

impl StoreChoice {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s == "sqlite" {
            Ok(Self::Sqlite)
        } else if s.starts_with("dynamodb://") {
            DynamoLocation::parse(s).map(Self::Dynamo)
        } else {
            Err("use 'sqlite' or 'dynamodb://TABLE[?endpoint=URL&region=REGION]'".to_owned())
        }
    }

    /// Opens the store; a DynamoDB table must exist already (`keyward store init`).
    pub async fn open(&self, data_dir: &Path) -> Result<Arc<dyn Store>, CliError> {
        match self {
            Self::Sqlite => Ok(Arc::new(SqliteStore::open(&data_dir.join(DB_FILE))?)),
            Self::Dynamo(location) => {
                let store = DynamoStore::connect(location).await;
                store.check().await?;
                Ok(Arc::new(store))
            }
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Create the DynamoDB table (on-demand billing, streams and TTL on). Idempotent.
    Init(InitArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The table, as dynamodb://TABLE[?endpoint=URL&region=REGION].
    #[arg(long, env = "KEYWARD_STORE", value_parser = DynamoLocation::parse)]
    store: DynamoLocation,
}

pub async fn run(command: StoreCommand) -> Result<(), CliError> {
    match command {
        StoreCommand::Init(args) => {
            let store = DynamoStore::connect(&args.store).await;
            let outcome = store.init().await?;
            let what = match outcome {
                InitOutcome::Created => "created",
                InitOutcome::AlreadyExisted => "already exists; left as it is",
            };
            println!("keyward: table {} {what}", args.store.table);
            Ok(())
        }
    }
}
