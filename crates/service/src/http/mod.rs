//! The management HTTP API: one axum Router for `keyward serve` and the issuer Lambda.
//!
//! - [`router`]: routes, limits and layers.
//! - [`problem`]: RFC 9457 problem documents; the one place errors get an HTTP status.
//! - [`extract`]: request extraction that fails with problems: JSON bodies with per-field
//!   errors and a size limit, query strings, the admin key, the client's address.
//! - [`keys`], [`verify`]: the handlers, thin translations between HTTP and [`crate::App`].

pub mod extract;
pub mod keys;
pub mod problem;
pub mod router;
pub mod verify;

pub use extract::ClientIp;
pub use router::router;
