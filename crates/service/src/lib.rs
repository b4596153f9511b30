//! Application services over a Store, and the management HTTP API as one axum Router.
//!
//! # Layout
//!
//! - [`settings`]: deployment settings (token prefix, key rules, account, body limit), checked
//!   once at start-up.
//! - [`config`]: the Lambda functions' configuration from the environment.
//! - [`app`]: [`App`], the services' shared state: a store, the pepper, the settings.
//! - [`error`]: [`ServiceError`], what an operation can fail with, in the caller's terms.
//! - [`issuance`]: creating (presets, `Idempotency-Key`), listing, reading, editing,
//!   revoking, regenerating and deleting keys; workspace association; bootstrap.
//! - [`groups`]: sharing groups and their members.
//! - [`presets`]: built-in and account-defined presets.
//! - [`audit`], [`usage`]: reading the audit log and usage counts.
//! - [`authorizer`]: API Gateway authorizer events in, IAM policies or simple responses out.
//! - [`engine`]: the verification engine: cache kept correct by the change feed within a
//!   bound, and batched usage. The hot path of the authorizer.
//! - [`verification`]: resolving a presented token to a key and deciding a request with it,
//!   for `POST /v1/verify` and for authenticating admin callers.
//! - [`http`]: the Router, request extraction (size limits, field-named JSON errors) and the one
//!   place errors become RFC 9457 problem documents.
//!
//! The same Router serves `keyward serve` and the issuer Lambda: only the Store adapter and the
//! way the client's address is learned differ.

pub mod app;
pub mod audit;
pub mod authorizer;
pub mod config;
pub mod engine;
pub mod error;
pub mod groups;
pub mod http;
pub mod issuance;
pub mod presets;
pub mod settings;
pub mod usage;
pub mod verification;

pub use app::App;
pub use error::ServiceError;
pub use settings::Settings;
