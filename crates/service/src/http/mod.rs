//! The management HTTP API: one axum Router for `keyward serve` and the issuer Lambda.
//!
//! - [`router`]: routes, limits and layers.
//! - [`problem`]: RFC 9457 problem documents; the one place errors get an HTTP status.
//! - [`extract`]: request extraction that fails with problems: JSON bodies with per-field
//!   errors and a size limit, query strings, the admin key, the client's address.
//! - [`dto`]: response bodies, one type each, so the OpenAPI document matches them.
//! - [`keys`], [`groups`], [`presets`], [`audit`], [`verify`]: the handlers, thin translations
//!   between HTTP and [`crate::App`].
//! - [`gateway`]: the local gateway: the authorizer in front of a local service.
//! - [`openapi`]: the OpenAPI 3.1 document, generated from the route table and the types.

pub mod audit;
pub mod dto;
pub mod extract;
pub mod gateway;
pub mod groups;
pub mod keys;
pub mod openapi;
pub mod presets;
pub mod problem;
pub mod router;
pub mod verify;

pub use extract::ClientIp;
pub use router::router;
