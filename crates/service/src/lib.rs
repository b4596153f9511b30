//! keyward's use cases over a Store: issuance and lifecycle, sharing groups, presets, audit and
//! usage reads, admin authentication, and verification. It knows no HTTP and no AWS event
//! shapes: `crates/http` and `crates/aws` translate requests into these calls and their errors
//! into answers.
//!
//! # Layout
//!
//! - [`settings`]: deployment settings (token prefix, key rules, account, body limit), checked
//!   once at start-up.
//! - [`config`]: the configuration of a process, from the environment.
//! - [`app`]: [`App`], the services' shared state: a store, the pepper, the settings, the
//!   verifier of `POST /v1/verify`.
//! - [`error`]: [`ServiceError`], what an operation can fail with, in the caller's terms.
//! - [`fault`]: faults (a store that is down) logged once per interval, not per request.
//! - [`issuance`]: creating (presets, `Idempotency-Key`), listing, reading, editing,
//!   revoking, regenerating and deleting keys; workspace association; bootstrap. Every change
//!   goes through one read-modify-write that asks the core's lifecycle rules first.
//! - [`groups`]: sharing groups and their members.
//! - [`presets`]: built-in and account-defined presets.
//! - [`audit`], [`usage`]: reading the audit log and usage figures.
//! - [`secret_rotation`]: AWS Secrets Manager rotation of the keys that opt in (the four
//!   steps, over a small `SecretVault` port).
//! - [`rotation`]: the rotation sweep (ended graces, expired keys, expiry warnings) of the
//!   `rotator` function and `keyward serve`.
//! - [`aggregation`]: rolling the usage records engines flush into per-key and per-account
//!   figures, once each (the `aggregator` function's and `keyward serve`'s).
//! - [`authentication`]: admitting a management call by its admin key.
//! - [`verification`]: the one decision function of every verifying edge, the engine (cache
//!   kept correct by the change feed), the rate limiter (leased budgets) and the usage buffer.
//!
//! The same code serves `keyward serve` and the Lambda functions: only the Store adapter and
//! the edge in front differ.

pub mod aggregation;
pub mod app;
pub mod audit;
pub mod authentication;
pub mod config;
pub mod error;
pub mod fault;
pub mod groups;
pub mod issuance;
pub mod presets;
pub mod rotation;
pub mod secret_rotation;
pub mod settings;
pub mod usage;
pub mod verification;

pub use app::App;
pub use error::ServiceError;
pub use settings::Settings;
