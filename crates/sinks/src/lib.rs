//! Where a new API key's secret goes.
//!
//! `keyward apply` and the Terraform provider create and regenerate keys; the secret exists in
//! one answer of the management API and must go straight to the sink the spec names, never to
//! git, a plan, a log, an error or a state file. This crate is that last step, shared by both.
//!
//! # Layout
//!
//! - [`Sinks`] (here): the blocking entry point, [`Sinks::deliver`], with the [`Target`] a spec
//!   names and the [`Delivery`] to make; it dispatches to one module per sink.
//! - `stdout`: the secret printed once, as one line, to the writer the caller hands over.
//! - `file`: a file created with mode 0600, written atomically (a 0600 temporary file in the
//!   same directory, fsync, rename), idempotent on a rerun, and never overwriting a secret other
//!   than the one being replaced.
//! - `secrets_manager` (feature `aws-secretsmanager`): `PutSecretValue`, or `CreateSecret`
//!   with keyward's tags when the secret does not exist yet.
//! - `ssm` (feature `aws-ssm`): an SSM `SecureString` parameter, overwritten, then tagged.
//! - `aws`: [`AwsSettings`] and, with either AWS feature, the one SDK configuration, clients
//!   and private runtime those two share.
//! - `error`: [`SinkError`], whose messages say what failed and what to do, and never hold a
//!   secret (AWS messages are scrubbed of it too).
//!
//! # Why blocking
//!
//! The CLI's plan and apply are synchronous, so [`Sinks::deliver`] blocks. The AWS sinks run on
//! a current-thread tokio runtime of their own, created with the SDK clients on the first AWS
//! delivery only (a file or stdout delivery never starts it or reads AWS configuration).
//! `deliver` may be called from anywhere, a tokio runtime included (the provider's gRPC
//! server): there it runs the AWS call on a short-lived thread of its own, because tokio
//! refuses a nested `block_on` and `block_in_place` works only on a multi-thread runtime.
//!
//! # Secrets
//!
//! The secret is only ever written to its sink. [`Delivery`]'s `Debug` hides it, no error
//! carries it, and a file sink's error never quotes what an existing file holds.

mod aws;
mod error;
mod file;
#[cfg(feature = "aws-secretsmanager")]
mod secrets_manager;
#[cfg(feature = "aws-ssm")]
mod ssm;
mod stdout;

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

pub use aws::{AwsSettings, StaticCredentials};
pub use error::{AwsFailure, FileAction, SinkError};

/// Where a secret goes: the `secret.sink` of a spec (or the provider's `secret` block).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `stdout`: printed once, as one line.
    Stdout,
    /// `file`: the path, already resolved by the caller (e.g. against the spec file's folder).
    File(PathBuf),
    /// `aws-secretsmanager`: a secret's name (created when missing) or ARN (must exist).
    SecretsManager { secret_id: String },
    /// `aws-ssm`: a parameter's name, stored as a `SecureString`.
    Ssm { parameter: String },
}

impl Target {
    /// The sink's name as specs spell it (`stdout`, `file`, `aws-secretsmanager`, `aws-ssm`),
    /// which is also the name of the cargo feature for the AWS ones.
    pub fn sink(&self) -> &'static str {
        match self {
            Target::Stdout => "stdout",
            Target::File(_) => "file",
            Target::SecretsManager { .. } => SECRETS_MANAGER,
            Target::Ssm { .. } => SSM,
        }
    }
}

impl fmt::Display for Target {
    /// The sink and where, for plans and messages: `file secrets/ci.key`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Stdout => f.write_str("stdout"),
            Target::File(path) => write!(f, "file {}", path.display()),
            Target::SecretsManager { secret_id } => write!(f, "{SECRETS_MANAGER} {secret_id}"),
            Target::Ssm { parameter } => write!(f, "{SSM} {parameter}"),
        }
    }
}

const SECRETS_MANAGER: &str = "aws-secretsmanager";
const SSM: &str = "aws-ssm";

/// One secret to deliver: the key it belongs to, the secret, and on a regeneration which secret
/// it replaces.
#[derive(Clone, Copy)]
pub struct Delivery<'a> {
    pub key_id: &'a str,
    pub key_name: &'a str,
    /// The token (`kw_live_…`, see the token format in DESIGN.md).
    pub secret: &'a str,
    /// On a regeneration: the `start` and `last4` of the secret being replaced, so that a file
    /// holding it may be overwritten. `None` on a create.
    pub replaces: Option<Fingerprint<'a>>,
}

impl fmt::Debug for Delivery<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("key_id", &self.key_id)
            .field("key_name", &self.key_name)
            .field("secret", &"<redacted>")
            .field("replaces", &self.replaces)
            .finish()
    }
}

/// What a key record shows of a secret: its `start` (prefix plus 4 characters) and `last4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint<'a> {
    pub start: &'a str,
    pub last4: &'a str,
}

impl fmt::Display for Fingerprint<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}…{}", self.start, self.last4)
    }
}

/// What a delivery did, for the person running apply: e.g. "written to secrets/ci.key (mode
/// 0600)" or "stored in SSM parameter /keyward/ci (SecureString, version 3)". Never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub description: String,
}

impl fmt::Display for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.description)
    }
}

/// The sinks of one process. Blocking; shareable across threads (`Sync`).
pub struct Sinks {
    stdout: Mutex<Box<dyn Write + Send>>,
    #[cfg_attr(
        not(any(feature = "aws-secretsmanager", feature = "aws-ssm")),
        allow(dead_code)
    )]
    aws_settings: AwsSettings,
    /// The AWS runtime and clients, created on the first AWS delivery and kept; a failed start
    /// (no region, say) is not kept, so a later delivery tries again.
    #[cfg(any(feature = "aws-secretsmanager", feature = "aws-ssm"))]
    aws: Mutex<Option<std::sync::Arc<aws::Aws>>>,
}

impl fmt::Debug for Sinks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sinks")
            .field("aws_settings", &self.aws_settings)
            .finish_non_exhaustive()
    }
}

impl Default for Sinks {
    /// Sinks printing to the process's standard output, AWS from the standard chain.
    fn default() -> Self {
        Sinks::new(Box::new(std::io::stdout()))
    }
}

impl Sinks {
    /// Sinks whose `stdout` target writes to `stdout`; AWS settings from the standard chain
    /// (environment, profile, role), AWS clients created on the first AWS delivery.
    pub fn new(stdout: Box<dyn Write + Send>) -> Sinks {
        Sinks {
            stdout: Mutex::new(stdout),
            aws_settings: AwsSettings::default(),
            #[cfg(any(feature = "aws-secretsmanager", feature = "aws-ssm"))]
            aws: Mutex::new(None),
        }
    }

    /// The same sinks with explicit AWS settings (endpoint, region, credentials) over the
    /// standard chain's; for tests against a local emulator, or a CLI flag.
    pub fn with_aws(mut self, settings: AwsSettings) -> Sinks {
        self.aws_settings = settings;
        self
    }

    /// Delivers the secret to `target`. Blocks until it is stored (AWS calls are bounded by
    /// the timeouts in the `aws` module). Callable from inside a tokio runtime too.
    /// Checks, before a key is made, that a delivery to `target` will not be refused for what
    /// is there now: a file must be absent or hold the secret `replaces` names, and the sink
    /// must be built in. (The AWS services are not called: their permissions show at
    /// delivery.)
    pub fn check(
        &self,
        target: &Target,
        replaces: Option<Fingerprint<'_>>,
    ) -> Result<(), SinkError> {
        match target {
            Target::Stdout => Ok(()),
            Target::File(path) => file::check(path, replaces),
            Target::SecretsManager { .. } if !cfg!(feature = "aws-secretsmanager") => {
                Err(SinkError::NotBuilt {
                    sink: SECRETS_MANAGER,
                })
            }
            Target::Ssm { .. } if !cfg!(feature = "aws-ssm") => {
                Err(SinkError::NotBuilt { sink: SSM })
            }
            Target::SecretsManager { .. } | Target::Ssm { .. } => Ok(()),
        }
    }

    pub fn deliver(&self, target: &Target, delivery: &Delivery<'_>) -> Result<Receipt, SinkError> {
        match target {
            Target::Stdout => {
                let mut out = self.stdout.lock().unwrap_or_else(PoisonError::into_inner);
                stdout::deliver(&mut **out, delivery)
            }
            Target::File(path) => file::deliver(path, delivery),
            Target::SecretsManager { secret_id } => self.secrets_manager(secret_id, delivery),
            Target::Ssm { parameter } => self.ssm(parameter, delivery),
        }
    }

    #[cfg(feature = "aws-secretsmanager")]
    fn secrets_manager(
        &self,
        secret_id: &str,
        delivery: &Delivery<'_>,
    ) -> Result<Receipt, SinkError> {
        let aws = self.aws(SECRETS_MANAGER)?;
        secrets_manager::deliver(&aws, secret_id, delivery)
    }

    #[cfg(not(feature = "aws-secretsmanager"))]
    fn secrets_manager(&self, _: &str, _: &Delivery<'_>) -> Result<Receipt, SinkError> {
        Err(SinkError::NotBuilt {
            sink: SECRETS_MANAGER,
        })
    }

    #[cfg(feature = "aws-ssm")]
    fn ssm(&self, parameter: &str, delivery: &Delivery<'_>) -> Result<Receipt, SinkError> {
        let aws = self.aws(SSM)?;
        ssm::deliver(&aws, parameter, delivery)
    }

    #[cfg(not(feature = "aws-ssm"))]
    fn ssm(&self, _: &str, _: &Delivery<'_>) -> Result<Receipt, SinkError> {
        Err(SinkError::NotBuilt { sink: SSM })
    }

    /// The shared AWS runtime and clients, started on first use. The lock is held while
    /// starting so two threads never start two.
    #[cfg(any(feature = "aws-secretsmanager", feature = "aws-ssm"))]
    fn aws(&self, sink: &'static str) -> Result<std::sync::Arc<aws::Aws>, SinkError> {
        let mut slot = self.aws.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(aws) = slot.as_ref() {
            return Ok(aws.clone());
        }
        let aws = std::sync::Arc::new(aws::Aws::start(&self.aws_settings, sink)?);
        *slot = Some(aws.clone());
        Ok(aws)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

    use super::*;
    use std::sync::Arc;

    /// A writer the test can read back after handing it to `Sinks`.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    const SECRET: &str = "kw_live_AbCdEfGhIjKlMnOpQrStUvWxYz012345abcdef";

    fn delivery() -> Delivery<'static> {
        Delivery {
            key_id: "key_123",
            key_name: "ci-nightly",
            secret: SECRET,
            replaces: None,
        }
    }

    #[test]
    fn stdout_gets_one_line_with_name_id_and_secret() {
        let out = Shared::default();
        let sinks = Sinks::new(Box::new(out.clone()));
        let receipt = sinks.deliver(&Target::Stdout, &delivery()).unwrap();
        let printed = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(printed, format!("ci-nightly (key_123): {SECRET}\n"));
        assert!(!receipt.description.contains(SECRET));
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let shown = format!("{:?}", delivery());
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains("ci-nightly"));
    }

    #[test]
    fn targets_name_their_sink_as_specs_do() {
        assert_eq!(Target::Stdout.sink(), "stdout");
        assert_eq!(Target::File("a".into()).sink(), "file");
        let sm = Target::SecretsManager {
            secret_id: "keyward/ci".into(),
        };
        assert_eq!(sm.sink(), "aws-secretsmanager");
        assert_eq!(sm.to_string(), "aws-secretsmanager keyward/ci");
        let ssm = Target::Ssm {
            parameter: "/keyward/ci".into(),
        };
        assert_eq!(ssm.sink(), "aws-ssm");
    }

    #[cfg(not(feature = "aws-ssm"))]
    #[test]
    fn an_ssm_target_without_the_feature_says_so() {
        let sinks = Sinks::new(Box::new(Shared::default()));
        let target = Target::Ssm {
            parameter: "/keyward/ci".into(),
        };
        let err = sinks.deliver(&target, &delivery()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "this keyward was built without the aws-ssm sink; use a build with the `aws-ssm` \
             feature (on by default) or name another sink"
        );
    }

    #[cfg(not(feature = "aws-secretsmanager"))]
    #[test]
    fn a_secrets_manager_target_without_the_feature_says_so() {
        let sinks = Sinks::new(Box::new(Shared::default()));
        let target = Target::SecretsManager {
            secret_id: "keyward/ci".into(),
        };
        let err = sinks.deliver(&target, &delivery()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("this keyward was built without the aws-secretsmanager sink"),
            "{err}"
        );
    }
}
