//! Which deployment a command works on: the store, the data directory (database and pepper),
//! the token prefix and the account. `serve` and `authorize` open it the same way.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use clap::Args;
use keyward_core::hash::Pepper;
use keyward_core::token::Prefix;
use keyward_service::{App, Settings};

use crate::error::CliError;
use crate::store::{DB_FILE, StoreChoice};

const PEPPER_FILE: &str = "pepper";

#[derive(Debug, Args)]
pub struct DeploymentArgs {
    /// Where keys are stored: `sqlite` (in the data directory) or
    /// `dynamodb://TABLE[?endpoint=URL&region=REGION]` (create it with `keyward store init`).
    #[arg(long, env = "KEYWARD_STORE", default_value = "sqlite", value_parser = StoreChoice::parse)]
    store: StoreChoice,

    /// Directory for the database and the pepper; created (mode 0700) if missing.
    #[arg(long, env = "KEYWARD_DATA_DIR", default_value = ".keyward")]
    data_dir: PathBuf,

    /// Prefix of every token this deployment issues and accepts.
    #[arg(long, env = "KEYWARD_PREFIX", default_value = "kw_live", value_parser = parse_prefix)]
    prefix: Prefix,

    /// The account keys are issued in.
    #[arg(long, env = "KEYWARD_ACCOUNT", default_value = "default", value_parser = parse_account)]
    account: String,
}

fn parse_prefix(s: &str) -> Result<Prefix, String> {
    Prefix::parse(s).map_err(|e| e.to_string())
}

fn parse_account(s: &str) -> Result<String, String> {
    if keyward_core::permission::is_name(s) && s.len() <= 64 {
        Ok(s.to_owned())
    } else {
        Err("an account id is 1 to 64 letters, digits, '_', '-' or '.'".to_owned())
    }
}

impl DeploymentArgs {
    /// The services over this deployment's store, with its pepper.
    pub async fn open(&self) -> Result<App, CliError> {
        let dir = &self.data_dir;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| CliError::Io {
                action: "creating the data directory",
                path: dir.clone(),
                source,
            })?;
        let pepper = load_pepper(dir)?;
        let store = self.store.open(dir).await?;
        let settings = Settings {
            prefix: self.prefix.clone(),
            account: self.account.clone(),
            ..Settings::default()
        };
        Ok(App::new(store, pepper, settings))
    }
}
/// The pepper from `KEYWARD_PEPPER` (hex) when set, else the data directory's pepper file.
fn load_pepper(dir: &Path) -> Result<Pepper, CliError> {
    match std::env::var("KEYWARD_PEPPER") {
        Ok(hex) => Pepper::from_hex(&hex).map_err(|source| CliError::BadPepper {
            path: PathBuf::from("$KEYWARD_PEPPER"),
            source,
        }),
        Err(_) => load_or_create_pepper_file(dir),
    }
}

/// Reads the pepper file, or creates it (mode 0600) on the very first start.
fn load_or_create_pepper_file(dir: &Path) -> Result<Pepper, CliError> {
    let path = dir.join(PEPPER_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => Pepper::from_hex(&text).map_err(|source| CliError::BadPepper { path, source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if dir.join(DB_FILE).exists() {
                return Err(CliError::MissingPepper(dir.to_path_buf()));
            }
            let pepper = Pepper::generate().map_err(|source| CliError::BadPepper {
                path: path.clone(),
                source,
            })?;
            let io = |source| CliError::Io {
                action: "writing the pepper file",
                path: path.clone(),
                source,
            };
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(io)?;
            file.write_all(pepper.to_hex().as_bytes()).map_err(io)?;
            file.sync_all().map_err(io)?;
            Ok(pepper)
        }
        Err(source) => Err(CliError::Io {
            action: "reading the pepper file",
            path,
            source,
        }),
    }
}
