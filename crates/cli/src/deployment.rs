//! Which deployment a command works on, and opening it. The settings are the service's one
//! table ([`keyward_service::config::VARIABLES`]): each command offers some of them as flags
//! (each also read from its `KEYWARD_*` variable), and [`Config::from_lookup`] checks them, so
//! the command and the Lambda functions read configuration the same way.

use std::fs;
use std::io::Write;
use std::marker::PhantomData;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;

use clap::error::ErrorKind;
use clap::{Arg, ArgMatches, Args, Command, FromArgMatches};
use keyward_core::hash::Pepper;
use keyward_service::App;
use keyward_service::config::{
    ACCOUNT, Config, DATA_DIR, EXPIRY_WARNING_HOURS, MANAGEMENT_RATE_LIMIT, PEPPER,
    PEPPER_PARAMETER, PEPPER_SECRET, PREFIX, Process, REVOCATION_BOUND_MS, ROUTE_POLICY,
    ROUTE_POLICY_FILE, STALE_IF_ERROR_MS, STORE, VARIABLES, VERIFY_ACCESS,
};
use keyward_store::location::SQLITE_FILE;
use keyward_store::{DynamoLocation, DynamoStore, SqliteStore, Store, StoreLocation};

use crate::error::CliError;

const PEPPER_FILE: &str = "pepper";

/// Which settings a command reads: as flags (each also from its variable) where the table
/// gives one, from the environment only where it does not (the pepper, an inline route
/// policy). The others keep their defaults.
pub trait Offered {
    /// Variable names; `None` offers every variable.
    const ONLY: Option<&'static [&'static str]>;
}

/// `serve`: everything but the HTTP API answer format.
#[derive(Debug, Clone, Copy)]
pub struct ForServe;
impl Offered for ForServe {
    const ONLY: Option<&'static [&'static str]> = Some(&[
        STORE,
        DATA_DIR,
        PEPPER,
        PEPPER_SECRET,
        PEPPER_PARAMETER,
        PREFIX,
        ACCOUNT,
        REVOCATION_BOUND_MS,
        STALE_IF_ERROR_MS,
        ROUTE_POLICY_FILE,
        ROUTE_POLICY,
        VERIFY_ACCESS,
        MANAGEMENT_RATE_LIMIT,
        EXPIRY_WARNING_HOURS,
    ]);
}

/// `authorize`: every setting.
#[derive(Debug, Clone, Copy)]
pub struct ForAuthorize;
impl Offered for ForAuthorize {
    const ONLY: Option<&'static [&'static str]> = None;
}

/// `store init`: the store only.
#[derive(Debug, Clone, Copy)]
pub struct ForStore;
impl Offered for ForStore {
    const ONLY: Option<&'static [&'static str]> = Some(&[STORE]);
}

/// `store bootstrap`: the table, its pepper (wherever it is kept), the account and the token
/// prefix of the deployment.
#[derive(Debug, Clone, Copy)]
pub struct ForBootstrap;
impl Offered for ForBootstrap {
    const ONLY: Option<&'static [&'static str]> = Some(&[
        STORE,
        PEPPER,
        PEPPER_SECRET,
        PEPPER_PARAMETER,
        PREFIX,
        ACCOUNT,
    ]);
}

fn offered<O: Offered>(name: &str) -> bool {
    O::ONLY.is_none_or(|only| only.contains(&name))
}

/// A deployment's configuration, from the flags a command offers and the environment.
#[derive(Debug, Clone)]
pub struct DeploymentArgs<O> {
    pub config: Config,
    offered: PhantomData<O>,
}

impl<O: Offered> Args for DeploymentArgs<O> {
    fn augment_args(cmd: Command) -> Command {
        VARIABLES
            .iter()
            .filter(|v| offered::<O>(v.name))
            .filter_map(|v| {
                let flag = v.flag?;
                let arg = Arg::new(v.name)
                    .long(flag)
                    .value_name(v.value)
                    .env(v.name)
                    .help(v.help.trim_end_matches('.'));
                Some(match v.default {
                    Some(d) => arg.default_value(d),
                    None => arg,
                })
            })
            .fold(cmd, Command::arg)
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl<O: Offered> FromArgMatches for DeploymentArgs<O> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let lookup = |name: &str| {
            let variable = VARIABLES.iter().find(|v| v.name == name)?;
            if !offered::<O>(name) {
                None
            } else if variable.flag.is_some() {
                matches.get_one::<String>(name).cloned()
            } else {
                std::env::var(name).ok()
            }
        };
        let config = Config::from_lookup(Process::Local, lookup).map_err(|e| {
            clap::Error::raw(ErrorKind::ValueValidation, format!("{}\n", flagged(e)))
        })?;
        Ok(Self {
            config,
            offered: PhantomData,
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

/// A configuration error in the terms of the command: the flag and its variable.
fn flagged(e: keyward_service::config::ConfigError) -> String {
    let text = e.to_string();
    VARIABLES
        .iter()
        .find_map(|v| {
            let flag = v.flag?;
            text.strip_prefix(v.name)
                .map(|rest| format!("--{flag} ({}){rest}", v.name))
        })
        .unwrap_or(text)
}

/// The DynamoDB store at `location`, on the AWS configuration loaded for it (once per command).
async fn dynamodb(location: &DynamoLocation) -> DynamoStore {
    keyward_aws::sdk::dynamodb(&keyward_aws::sdk::load(location).await, location)
}

impl<O> DeploymentArgs<O> {
    /// Opens the store: SQLite in the data directory, or a DynamoDB table that must exist
    /// already (`keyward store init`).
    pub async fn open_store(&self) -> Result<Arc<dyn Store>, CliError> {
        match &self.config.store {
            StoreLocation::Sqlite => Ok(Arc::new(SqliteStore::open(
                &self.config.data_dir.join(SQLITE_FILE),
            )?)),
            StoreLocation::Dynamo(location) => {
                let store = dynamodb(location).await;
                store.check().await?;
                Ok(Arc::new(store))
            }
        }
    }

    /// The services over an existing deployment, creating nothing: for the commands that read
    /// one (`authorize`). A mistyped `--data-dir` or `--store` must not answer as an empty
    /// deployment (every key `NOT_FOUND`) and leave a fresh pepper and database behind. A
    /// deployment is its store (the database file, or a keyward table), its pepper
    /// (`KEYWARD_PEPPER` or the pepper file), and its account record, written by the first
    /// `keyward serve`.
    pub async fn open_existing(&self) -> Result<App, CliError> {
        let config = &self.config;
        let dir = &config.data_dir;
        let account = &config.settings.account;
        let place = match &config.store {
            StoreLocation::Sqlite => format!("--data-dir {}", dir.display()),
            StoreLocation::Dynamo(location) => format!("--store dynamodb://{}", location.table),
        };
        let create = format!(
            "`keyward serve {place} --account {account}` creates a deployment on its first start"
        );
        let missing = |missing: String, fix: String| CliError::NoDeployment {
            place: place.clone(),
            missing,
            fix,
        };
        // The store is checked first, opened only once the pepper is known to be there too:
        // opening the SQLite database writes beside it.
        let db = dir.join(SQLITE_FILE);
        let dynamo = match &config.store {
            StoreLocation::Sqlite => {
                let check = format!("Check --data-dir ({DATA_DIR}); {create}");
                if !dir.is_dir() {
                    return Err(missing("the directory does not exist".into(), check));
                }
                if !db.is_file() {
                    return Err(missing(format!("no database ({})", db.display()), check));
                }
                None
            }
            StoreLocation::Dynamo(location) => {
                let store = dynamodb(location).await;
                if let Err(e) = store.check().await {
                    return Err(missing(e.to_string(), format!("Check --store ({STORE})")));
                }
                Some(store)
            }
        };
        let pepper = match (&config.pepper, &config.pepper_from) {
            (Some(pepper), _) => pepper.clone(),
            (None, Some(_)) => self.kept_pepper().await?,
            (None, None) => read_pepper_file(dir)?.ok_or_else(|| {
                missing(
                    format!(
                        "no pepper file ({}) and {PEPPER} is not set",
                        dir.join(PEPPER_FILE).display()
                    ),
                    format!(
                        "Without its pepper no stored key can be verified: point \
                         --data-dir ({DATA_DIR}) at the directory that holds it, or set {PEPPER}"
                    ),
                )
            })?,
        };
        let store: Arc<dyn Store> = match dynamo {
            Some(table) => Arc::new(table),
            None => Arc::new(SqliteStore::open(&db)?),
        };
        if store.get_account(account).await?.is_none() {
            return Err(missing(
                format!("no account '{account}'"),
                format!("Check --account ({ACCOUNT}); {create}"),
            ));
        }
        Ok(App::with_engine(
            store,
            pepper,
            config.settings.clone(),
            config.engine,
        ))
    }

    /// The pepper from where a deployment keeps it (`--pepper-secret`, `--pepper-parameter`),
    /// read with the AWS configuration of its table.
    async fn kept_pepper(&self) -> Result<Pepper, CliError> {
        let location = self.config.require_dynamodb().map_err(|_| {
            CliError::Input(format!(
                "the pepper is kept in AWS ({}), so the store must be a dynamodb:// table",
                self.config
                    .pepper_from
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            ))
        })?;
        let sdk = keyward_aws::sdk::load(location).await;
        keyward_aws::pepper::load(&sdk, &self.config)
            .await
            .map_err(|e| CliError::Input(e.to_string()))
    }

    /// The services over a deployed table (which must exist) with the deployment's pepper:
    /// from where it is kept, or `KEYWARD_PEPPER`; never a new one.
    pub async fn open_table(&self) -> Result<App, CliError> {
        let location = self
            .config
            .require_dynamodb()
            .map_err(|e| CliError::Input(e.to_string()))?;
        let pepper = match &self.config.pepper {
            Some(pepper) => pepper.clone(),
            None => self.kept_pepper().await?,
        };
        let store = dynamodb(location).await;
        store.check().await.map_err(|e| {
            CliError::Input(format!(
                "table {}: {e}. Deploy the stack (or run `keyward store init`) first",
                location.table
            ))
        })?;
        Ok(App::with_engine(
            Arc::new(store),
            pepper,
            self.config.settings.clone(),
            self.config.engine,
        ))
    }

    /// The services over this deployment's store, with its pepper; creates the data directory
    /// and the pepper on the first start (`serve`).
    pub async fn open(&self) -> Result<App, CliError> {
        let dir = &self.config.data_dir;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| CliError::Io {
                action: "creating the data directory",
                path: dir.clone(),
                source,
            })?;
        let pepper = match (&self.config.pepper, &self.config.pepper_from) {
            (Some(pepper), _) => pepper.clone(),
            (None, Some(_)) => self.kept_pepper().await?,
            (None, None) => load_or_create_pepper_file(dir)?,
        };
        let store = self.open_store().await?;
        Ok(App::with_engine(
            store,
            pepper,
            self.config.settings.clone(),
            self.config.engine,
        ))
    }
}

/// The data directory's pepper file, or `None` when there is none.
fn read_pepper_file(dir: &Path) -> Result<Option<Pepper>, CliError> {
    let path = dir.join(PEPPER_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => Pepper::from_hex(&text)
            .map(Some)
            .map_err(|source| CliError::BadPepper { path, source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CliError::Io {
            action: "reading the pepper file",
            path,
            source,
        }),
    }
}

/// Reads the pepper file, or creates it (mode 0600) on the very first start.
fn load_or_create_pepper_file(dir: &Path) -> Result<Pepper, CliError> {
    if let Some(pepper) = read_pepper_file(dir)? {
        return Ok(pepper);
    }
    if dir.join(SQLITE_FILE).exists() {
        return Err(CliError::MissingPepper(dir.to_path_buf()));
    }
    let path = dir.join(PEPPER_FILE);
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
