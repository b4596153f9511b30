//! The configuration of a keyward process: one table of every setting ([`VARIABLES`]), read
//! once in `main` into one typed [`Config`], with messages that name the variable to fix.
//!
//! The Lambda functions read the table from the environment ([`Config::from_env`]); the
//! `keyward` command offers each variable as a flag too (`--store`, ...), built from the same
//! table, so `keyward serve --help` and this page cannot disagree.

use std::path::PathBuf;
use std::time::Duration;

use keyward_core::hash::Pepper;
use keyward_core::id::{ID_RULE, is_id};
use keyward_core::route::RoutePolicy;
use keyward_core::token::Prefix;
use keyward_store::{DynamoLocation, StoreLocation};
use thiserror::Error;

use crate::rotation::DEFAULT_EXPIRY_WARNING;
use crate::secret_rotation::DEFAULT_ROTATION_GRACE;
use crate::settings::{MAX_MANAGEMENT_RATE_LIMIT, Settings, VerifyAccess};
use crate::verification::EngineConfig;

/// One setting: its environment variable, its flag (if the command offers one), its default for
/// a local process, and what it means.
#[derive(Debug, Clone, Copy)]
pub struct Variable {
    pub name: &'static str,
    /// The `keyward` flag, without `--`; `None` for a secret, which a flag would put in `ps`.
    pub flag: Option<&'static str>,
    /// What the value is, as `--help` shows it.
    pub value: &'static str,
    /// The value a local process (`keyward`) uses when the variable is not set. Functions take
    /// no defaults for the store and the pepper: they must be named.
    pub default: Option<&'static str>,
    pub help: &'static str,
}

pub const STORE: &str = "KEYWARD_STORE";
pub const DATA_DIR: &str = "KEYWARD_DATA_DIR";
pub const PEPPER: &str = "KEYWARD_PEPPER";
pub const PEPPER_SECRET: &str = "KEYWARD_PEPPER_SECRET";
pub const PEPPER_PARAMETER: &str = "KEYWARD_PEPPER_PARAMETER";
pub const PREFIX: &str = "KEYWARD_PREFIX";
pub const ACCOUNT: &str = "KEYWARD_ACCOUNT";
pub const REVOCATION_BOUND_MS: &str = "KEYWARD_REVOCATION_BOUND_MS";
pub const STALE_IF_ERROR_MS: &str = "KEYWARD_STALE_IF_ERROR_MS";
pub const ROUTE_POLICY: &str = "KEYWARD_ROUTE_POLICY";
pub const ROUTE_POLICY_FILE: &str = "KEYWARD_ROUTE_POLICY_FILE";
pub const HTTP_API_RESPONSE: &str = "KEYWARD_HTTP_API_RESPONSE";
pub const CACHE_SAFE_ANSWERS: &str = "KEYWARD_CACHE_SAFE_ANSWERS";
pub const VERIFY_ACCESS: &str = "KEYWARD_VERIFY_ACCESS";
pub const MANAGEMENT_RATE_LIMIT: &str = "KEYWARD_MANAGEMENT_RATE_LIMIT";
pub const EXPIRY_WARNING_HOURS: &str = "KEYWARD_EXPIRY_WARNING_HOURS";
pub const EVENT_BUS: &str = "KEYWARD_EVENT_BUS";
pub const ROTATION_GRACE_HOURS: &str = "KEYWARD_ROTATION_GRACE_HOURS";

/// Every setting of every keyward process.
pub const VARIABLES: &[Variable] = &[
    Variable {
        name: STORE,
        flag: Some("store"),
        value: "LOCATION",
        default: Some("sqlite"),
        help: "Where keys are stored: `sqlite` (in the data directory) or \
               `dynamodb://TABLE[?endpoint=URL&region=REGION]` (create it with `keyward store init`).",
    },
    Variable {
        name: DATA_DIR,
        flag: Some("data-dir"),
        value: "DIR",
        default: Some(".keyward"),
        help: "Directory for the database and the pepper; created (mode 0700) if missing.",
    },
    Variable {
        name: PEPPER,
        flag: None,
        value: "HEX",
        default: None,
        help: "The pepper itself, hex, at least 32 bytes: for local runs and tests. A deployment \
               names where it is kept instead (KEYWARD_PEPPER_SECRET or KEYWARD_PEPPER_PARAMETER); \
               locally, the data directory's pepper file is used when none is set.",
    },
    Variable {
        name: PEPPER_SECRET,
        flag: Some("pepper-secret"),
        value: "SECRET",
        default: None,
        help: "The AWS Secrets Manager secret (name or ARN) whose value is the pepper (hex), read \
               once at start-up.",
    },
    Variable {
        name: PEPPER_PARAMETER,
        flag: Some("pepper-parameter"),
        value: "NAME",
        default: None,
        help: "The SSM Parameter Store SecureString whose value is the pepper (hex), read once \
               at start-up.",
    },
    Variable {
        name: PREFIX,
        flag: Some("prefix"),
        value: "PREFIX",
        default: Some("kw_live"),
        help: "Prefix of every token this deployment issues and accepts.",
    },
    Variable {
        name: ACCOUNT,
        flag: Some("account"),
        value: "ID",
        default: Some("default"),
        help: "The account keys are issued in.",
    },
    Variable {
        name: REVOCATION_BOUND_MS,
        flag: Some("revocation-bound-ms"),
        value: "MS",
        default: Some("1000"),
        help: "The longest a revocation, deactivation or scope change takes to reach a running \
               verifier, in milliseconds.",
    },
    Variable {
        name: STALE_IF_ERROR_MS,
        flag: Some("stale-if-error-ms"),
        value: "MS",
        default: Some("60000"),
        help: "While the store is unavailable, how long past the revocation bound a verifier may \
               still answer from its cache, in milliseconds (0: never).",
    },
    Variable {
        name: ROUTE_POLICY_FILE,
        flag: Some("policy"),
        value: "FILE",
        default: None,
        help: "The route policy (JSON: {\"routes\": [...]} or a RoutePolicy spec document) of the authorizer or the local gateway.",
    },
    Variable {
        name: ROUTE_POLICY,
        flag: None,
        value: "JSON",
        default: None,
        help: "The route policy itself, as JSON (instead of a file).",
    },
    Variable {
        name: VERIFY_ACCESS,
        flag: Some("verify-access"),
        value: "ACCESS",
        default: Some("open"),
        help: "Who may call POST /v1/verify: `open` (anyone; denials show only their code) or \
               `verifier-key` (only callers presenting a key with read on keys/**).",
    },
    Variable {
        name: MANAGEMENT_RATE_LIMIT,
        flag: Some("management-rate-limit"),
        value: "N",
        default: Some("6000"),
        help: "Management API calls each admin key may make per UTC minute (1 to 1000000); \
               beyond it the API answers 429 with Retry-After.",
    },
    Variable {
        name: EXPIRY_WARNING_HOURS,
        flag: Some("expiry-warning-hours"),
        value: "HOURS",
        default: Some("168"),
        help: "How long before a key expires its owners are warned (once per expiry: a log line, \
               and an EventBridge event from the rotator), in hours (1 to 8760).",
    },
    Variable {
        name: EVENT_BUS,
        flag: Some("event-bus"),
        value: "BUS",
        default: None,
        help: "The EventBridge bus (name or ARN) the rotator sends expiry warnings to; unset, \
               warnings go to the log only.",
    },
    Variable {
        name: ROTATION_GRACE_HOURS,
        flag: Some("rotation-grace-hours"),
        value: "HOURS",
        default: Some("24"),
        help: "How long the secret a Secrets Manager rotation replaces keeps verifying, in hours \
               (1 to 168; never past the key's expiry): readers of AWSCURRENT need time to move.",
    },
    Variable {
        name: HTTP_API_RESPONSE,
        flag: Some("http-api"),
        value: "FORMAT",
        default: Some("simple"),
        help: "How an HTTP API authorizer answers: `simple` or `iam`.",
    },
    Variable {
        name: CACHE_SAFE_ANSWERS,
        flag: Some("cache-safe-answers"),
        value: "on|off",
        default: Some("off"),
        help: "Answers API Gateway may cache: a REST policy allows exactly the routes of the \
               route policy the key may call and denies the rest; an HTTP API request is \
               refused unless its identity sources hold its route and path. Refused at \
               start-up for a route policy that cannot be answered so (docs/authorizer.md).",
    },
];

/// Which kind of process reads the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    /// `keyward` on a machine: local defaults (SQLite in `./.keyward`, a pepper file).
    Local,
    /// A Lambda function: the DynamoDB table and the pepper must be named.
    Function,
}

/// How an HTTP API's authorizer is configured to answer (API Gateway decides, not the event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpApiResponse {
    #[default]
    Simple,
    Iam,
}

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// What a process needs to serve, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub store: StoreLocation,
    pub data_dir: PathBuf,
    /// `None` locally when unset: the data directory's pepper file is used.
    pub pepper: Option<Pepper>,
    /// Where a deployment keeps its pepper, read at start-up by the process (which has the AWS
    /// clients): `keyward_aws::pepper`. At most one of this and `pepper` is set.
    pub pepper_from: Option<PepperFrom>,
    pub settings: Settings,
    pub engine: EngineConfig,
    pub route_policy: Option<RoutePolicy>,
    pub http_api_response: HttpApiResponse,
    /// Whether the authorizer answers so that API Gateway's result cache stays right
    /// (`keyward_core::cache_safe`); the route policy has passed its check.
    pub cache_safe_answers: bool,
    /// How long before its expiry a key's owners are warned.
    pub expiry_warning: chrono::Duration,
    /// Where the rotator sends expiry warnings (none: the log only).
    pub event_bus: Option<String>,
    /// How long the secret a Secrets Manager rotation replaces keeps verifying.
    pub rotation_grace: chrono::Duration,
}

impl Config {
    /// The configuration of a Lambda function, from the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(Process::Function, |name| std::env::var(name).ok())
    }

    /// The configuration from any lookup of the variables by name (the command passes its
    /// flags and the environment; tests pass a map).
    pub fn from_lookup(
        process: Process,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let default = |name: &str| match (process, name) {
            (Process::Function, STORE) => None,
            _ => VARIABLES
                .iter()
                .find(|v| v.name == name)
                .and_then(|v| v.default),
        };
        let value = |name: &str| get(name).or_else(|| default(name).map(str::to_owned));
        let invalid = |name, reason: String| ConfigError::Invalid { name, reason };

        let store = value(STORE).ok_or(ConfigError::Missing(STORE))?;
        let store = StoreLocation::parse(&store).map_err(|r| invalid(STORE, r))?;
        // The pepper's value never goes into an error.
        let pepper = match value(PEPPER) {
            Some(hex) => Some(Pepper::from_hex(&hex).map_err(|e| invalid(PEPPER, e.to_string()))?),
            None => None,
        };
        let pepper_from = match (value(PEPPER_SECRET), value(PEPPER_PARAMETER)) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    PEPPER_SECRET,
                    format!("set {PEPPER_SECRET} or {PEPPER_PARAMETER}, not both"),
                ));
            }
            (Some(id), None) => Some(PepperFrom::SecretsManager(non_empty(PEPPER_SECRET, id)?)),
            (None, Some(name)) => Some(PepperFrom::Parameter(non_empty(PEPPER_PARAMETER, name)?)),
            (None, None) => None,
        };
        if pepper.is_some() && pepper_from.is_some() {
            return Err(invalid(
                PEPPER,
                format!(
                    "set {PEPPER} or where the pepper is kept ({PEPPER_SECRET}, {PEPPER_PARAMETER}), not both"
                ),
            ));
        }
        let mut settings = Settings::default();
        if let Some(p) = value(PREFIX) {
            settings.prefix = Prefix::parse(&p).map_err(|e| invalid(PREFIX, e.to_string()))?;
        }
        if let Some(a) = value(ACCOUNT) {
            if !is_id(&a) {
                return Err(invalid(ACCOUNT, format!("not an account id: {ID_RULE}")));
            }
            settings.account = a;
        }
        settings.verify_access = match value(VERIFY_ACCESS).as_deref() {
            None | Some("open") => VerifyAccess::Open,
            Some("verifier-key") => VerifyAccess::VerifierKey,
            Some(other) => {
                return Err(invalid(
                    VERIFY_ACCESS,
                    format!("'{other}'; use open or verifier-key"),
                ));
            }
        };
        if let Some(n) = value(MANAGEMENT_RATE_LIMIT) {
            settings.management_rate_limit = n
                .parse()
                .ok()
                .filter(|n| (1..=MAX_MANAGEMENT_RATE_LIMIT).contains(n))
                .ok_or_else(|| {
                    invalid(
                        MANAGEMENT_RATE_LIMIT,
                        format!("'{n}' is not a number from 1 to {MAX_MANAGEMENT_RATE_LIMIT}"),
                    )
                })?;
        }
        let expiry_warning = match value(EXPIRY_WARNING_HOURS) {
            None => DEFAULT_EXPIRY_WARNING,
            Some(h) => h
                .parse::<i64>()
                .ok()
                .filter(|h| (1..=8760).contains(h))
                .map(chrono::Duration::hours)
                .ok_or_else(|| {
                    invalid(
                        EXPIRY_WARNING_HOURS,
                        format!("'{h}' is not a number of hours from 1 to 8760"),
                    )
                })?,
        };
        let rotation_grace = match value(ROTATION_GRACE_HOURS) {
            None => DEFAULT_ROTATION_GRACE,
            Some(h) => h
                .parse::<i64>()
                .ok()
                .filter(|h| (1..=168).contains(h))
                .map(chrono::Duration::hours)
                .ok_or_else(|| {
                    invalid(
                        ROTATION_GRACE_HOURS,
                        format!("'{h}' is not a number of hours from 1 to 168"),
                    )
                })?,
        };
        let mut engine = EngineConfig::default();
        if let Some(ms) = value(REVOCATION_BOUND_MS) {
            let ms: u64 = ms.parse().ok().filter(|ms| *ms > 0).ok_or_else(|| {
                invalid(
                    REVOCATION_BOUND_MS,
                    format!("'{ms}' is not a positive number of milliseconds"),
                )
            })?;
            engine.revocation_bound = Duration::from_millis(ms);
        }
        if let Some(ms) = value(STALE_IF_ERROR_MS) {
            let ms: u64 = ms.parse().map_err(|_| {
                invalid(
                    STALE_IF_ERROR_MS,
                    format!("'{ms}' is not a number of milliseconds"),
                )
            })?;
            engine.stale_if_error = Duration::from_millis(ms);
        }
        let route_policy = match (value(ROUTE_POLICY), value(ROUTE_POLICY_FILE)) {
            (Some(json), _) => Some(route_policy(&json).map_err(|r| invalid(ROUTE_POLICY, r))?),
            (None, Some(path)) => {
                let json = std::fs::read_to_string(&path)
                    .map_err(|e| invalid(ROUTE_POLICY_FILE, format!("{path}: {e}")))?;
                Some(
                    route_policy(&json)
                        .map_err(|r| invalid(ROUTE_POLICY_FILE, format!("{path}: {r}")))?,
                )
            }
            (None, None) => None,
        };
        let http_api_response = match value(HTTP_API_RESPONSE).as_deref() {
            None | Some("simple") => HttpApiResponse::Simple,
            Some("iam") => HttpApiResponse::Iam,
            Some(other) => {
                return Err(invalid(
                    HTTP_API_RESPONSE,
                    format!("'{other}'; use simple or iam"),
                ));
            }
        };
        let cache_safe_answers = match value(CACHE_SAFE_ANSWERS).as_deref() {
            None | Some("off") => false,
            Some("on") => {
                let policy = route_policy.as_ref().ok_or_else(|| {
                    invalid(
                        CACHE_SAFE_ANSWERS,
                        "'on' needs a route policy (KEYWARD_ROUTE_POLICY or \
                         KEYWARD_ROUTE_POLICY_FILE)"
                            .into(),
                    )
                })?;
                keyward_core::cache_safe::check(policy)
                    .map_err(|e| invalid(CACHE_SAFE_ANSWERS, format!("the route policy: {e}")))?;
                true
            }
            Some(other) => {
                return Err(invalid(
                    CACHE_SAFE_ANSWERS,
                    format!("'{other}'; use on or off"),
                ));
            }
        };
        Ok(Self {
            store,
            data_dir: PathBuf::from(value(DATA_DIR).unwrap_or_else(|| ".keyward".into())),
            pepper,
            pepper_from,
            settings,
            engine,
            route_policy,
            http_api_response,
            cache_safe_answers,
            expiry_warning,
            event_bus: value(EVENT_BUS).filter(|b| !b.trim().is_empty()),
            rotation_grace,
        })
    }

    /// The route policy, which the authorizer and the local gateway cannot run without.
    pub fn require_route_policy(&self) -> Result<RoutePolicy, ConfigError> {
        self.route_policy
            .clone()
            .ok_or(ConfigError::Missing(ROUTE_POLICY_FILE))
    }

    /// The DynamoDB table of a process that cannot use the embedded store.
    pub fn require_dynamodb(&self) -> Result<&DynamoLocation, ConfigError> {
        match &self.store {
            StoreLocation::Dynamo(location) => Ok(location),
            StoreLocation::Sqlite => Err(ConfigError::Invalid {
                name: STORE,
                reason: "this process keeps its keys in DynamoDB: dynamodb://TABLE".into(),
            }),
        }
    }
}

/// Where a deployment keeps its pepper (the value, hex, is read at start-up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PepperFrom {
    /// An AWS Secrets Manager secret, by name or ARN.
    SecretsManager(String),
    /// An SSM Parameter Store `SecureString`, by name.
    Parameter(String),
}

impl std::fmt::Display for PepperFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SecretsManager(id) => write!(f, "Secrets Manager secret {id} ({PEPPER_SECRET})"),
            Self::Parameter(name) => write!(f, "SSM parameter {name} ({PEPPER_PARAMETER})"),
        }
    }
}

fn non_empty(name: &'static str, value: String) -> Result<String, ConfigError> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.chars().any(char::is_control) {
        return Err(ConfigError::Invalid {
            name,
            reason: "must name a secret or parameter".into(),
        });
    }
    Ok(trimmed.to_owned())
}

/// A route policy from its JSON text (`{"routes"}` or a `RoutePolicy` spec document), checked.
fn route_policy(json: &str) -> Result<RoutePolicy, String> {
    let spec = keyward_core::spec::route_policy_from_json(json)?;
    RoutePolicy::compile(&spec).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(process: Process, pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(process, |k| map.get(k).cloned())
    }

    #[test]
    fn every_variable_is_checked_by_name() {
        let pepper = "ab".repeat(32);
        let f = Process::Function;
        assert!(config(f, &[(STORE, "dynamodb://keys"), (PEPPER, &pepper)]).is_ok());
        let err = config(f, &[(PEPPER, &pepper)]).unwrap_err();
        assert_eq!(err.to_string(), "KEYWARD_STORE is not set");
        // The aggregator needs no pepper; the others read it from where it is kept.
        let no_pepper = config(f, &[(STORE, "dynamodb://keys")]).unwrap();
        assert!(no_pepper.pepper.is_none() && no_pepper.pepper_from.is_none());
        let kept = config(
            f,
            &[
                (STORE, "dynamodb://keys"),
                (PEPPER_SECRET, " keyward/pepper "),
            ],
        );
        assert_eq!(
            kept.unwrap().pepper_from,
            Some(PepperFrom::SecretsManager("keyward/pepper".into()))
        );
        let both = config(
            f,
            &[
                (STORE, "dynamodb://keys"),
                (PEPPER_SECRET, "a"),
                (PEPPER_PARAMETER, "b"),
            ],
        );
        assert!(both.unwrap_err().to_string().contains("not both"));
        let twice = config(
            f,
            &[
                (STORE, "dynamodb://keys"),
                (PEPPER, &pepper),
                (PEPPER_PARAMETER, "/p"),
            ],
        );
        assert!(
            twice
                .unwrap_err()
                .to_string()
                .starts_with("KEYWARD_PEPPER is invalid")
        );
        let empty = config(f, &[(STORE, "dynamodb://keys"), (PEPPER_PARAMETER, " ")]);
        assert!(empty.is_err());
        let err = config(f, &[(STORE, "dynamodb://keys"), (PEPPER, "zzzz-secret")]).unwrap_err();
        assert!(err.to_string().starts_with("KEYWARD_PEPPER is invalid"));
        assert!(
            !err.to_string().contains("zzzz-secret"),
            "never echo the pepper"
        );
        let err = config(f, &[(STORE, "s3://x"), (PEPPER, &pepper)]).unwrap_err();
        assert!(err.to_string().starts_with("KEYWARD_STORE is invalid"));
        let local = config(f, &[(STORE, "sqlite"), (PEPPER, &pepper)]).unwrap();
        let err = local.require_dynamodb().unwrap_err();
        assert!(err.to_string().starts_with("KEYWARD_STORE is invalid"));
        let err = config(
            f,
            &[
                (STORE, "dynamodb://keys"),
                (PEPPER, &pepper),
                (PREFIX, "Bad"),
            ],
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("KEYWARD_PREFIX"));
        let err = config(
            f,
            &[
                (STORE, "dynamodb://keys"),
                (PEPPER, &pepper),
                (REVOCATION_BOUND_MS, "soon"),
            ],
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("KEYWARD_REVOCATION_BOUND_MS is invalid")
        );
        let err = config(
            f,
            &[
                (STORE, "dynamodb://keys"),
                (PEPPER, &pepper),
                (HTTP_API_RESPONSE, "xml"),
            ],
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("KEYWARD_HTTP_API_RESPONSE is invalid")
        );
        let err = config(
            f,
            &[
                (STORE, "dynamodb://keys"),
                (PEPPER, &pepper),
                (ROUTE_POLICY, "{\"routes\": 5}"),
            ],
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("KEYWARD_ROUTE_POLICY is invalid")
        );
        let header_workspace = r#"{"routes": [{"method": "GET", "path": "/a/{id}", "action": "read",
            "workspace": {"header": "X-Workspace"}}]}"#;
        for (policy, answers, says) in [
            (
                None,
                "on",
                "KEYWARD_CACHE_SAFE_ANSWERS is invalid: 'on' needs a route policy",
            ),
            (
                None,
                "yes",
                "KEYWARD_CACHE_SAFE_ANSWERS is invalid: 'yes'; use on or off",
            ),
            (
                Some(header_workspace),
                "on",
                "KEYWARD_CACHE_SAFE_ANSWERS is invalid: the route policy: routes[0].workspace: \
                 cache-safe answers need the workspace in the path",
            ),
        ] {
            let mut vars = vec![
                (STORE, "dynamodb://keys"),
                (PEPPER, pepper.as_str()),
                (CACHE_SAFE_ANSWERS, answers),
            ];
            vars.extend(policy.map(|p| (ROUTE_POLICY, p)));
            let err = config(f, &vars).unwrap_err().to_string();
            assert!(err.starts_with(says), "{err}");
        }
        let ok = config(
            f,
            &[
                (STORE, "dynamodb://keys"),
                (PEPPER, &pepper),
                (CACHE_SAFE_ANSWERS, "on"),
                (
                    ROUTE_POLICY,
                    &header_workspace.replace(r#"{"header": "X-Workspace"}"#, "null"),
                ),
            ],
        )
        .unwrap();
        assert!(ok.cache_safe_answers);
        let ok = config(
            f,
            &[
                (STORE, "dynamodb://keys"),
                (PEPPER, &pepper),
                (PREFIX, "kw_test"),
                (ACCOUNT, "acme"),
                (HTTP_API_RESPONSE, "iam"),
                (REVOCATION_BOUND_MS, "750"),
                (VERIFY_ACCESS, "verifier-key"),
                (STALE_IF_ERROR_MS, "0"),
            ],
        )
        .unwrap();
        assert_eq!(
            (ok.settings.prefix.as_str(), ok.settings.account.as_str()),
            ("kw_test", "acme")
        );
        assert_eq!(ok.http_api_response, HttpApiResponse::Iam);
        assert_eq!(ok.engine.revocation_bound, Duration::from_millis(750));
        assert_eq!(ok.settings.verify_access, VerifyAccess::VerifierKey);
        assert_eq!(ok.engine.stale_if_error, Duration::ZERO);
        assert!(matches!(
            ok.require_route_policy(),
            Err(ConfigError::Missing(ROUTE_POLICY_FILE))
        ));
    }

    #[test]
    fn a_local_process_has_defaults_for_everything() {
        let c = config(Process::Local, &[]).unwrap();
        assert_eq!(c.store, StoreLocation::Sqlite);
        assert_eq!(c.data_dir, PathBuf::from(".keyward"));
        assert!(c.pepper.is_none());
        assert_eq!(c.settings.prefix.as_str(), "kw_live");
        assert_eq!(c.settings.account, "default");
        assert_eq!(c.engine, EngineConfig::default());
        let err = config(Process::Local, &[(ACCOUNT, "a b")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("KEYWARD_ACCOUNT is invalid: not an account id: {ID_RULE}")
        );
    }

    #[test]
    fn the_table_is_consistent() {
        for v in VARIABLES {
            assert!(v.name.starts_with("KEYWARD_"), "{}", v.name);
            assert!(
                v.flag.is_some() || v.default.is_none(),
                "{} has a default but no flag",
                v.name
            );
        }
    }
}
