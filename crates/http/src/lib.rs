//! The management HTTP API: one axum Router for `keyward serve` and the issuer Lambda, and the
//! local gateway.
//!
//! # Layout
//!
//! - [`router`](mod@router): the route table (it builds both the Router and the OpenAPI document), limits
//!   and layers.
//! - [`problem`]: the one place errors become HTTP statuses and RFC 9457 problem documents.
//! - [`extract`]: request extraction that fails with problems: JSON bodies with per-field
//!   errors and a size limit, query strings, `If-Match`, the admin key, the client's address.
//! - [`keys`], [`groups`], [`presets`], [`audit`], [`verify`]: the handlers, thin translations
//!   between HTTP and [`keyward_service::App`]; bodies are the wire types of `keyward-api`.
//! - [`console`]: the web console, pages rendered from the same service calls, served by the
//!   same Router.
//! - [`gateway`]: the local gateway: the verifier in front of a local service.
//! - [`serve`](mod@serve): the serving loop of both (`keyward serve`): a connection cap, header-read,
//!   idle and request timeouts, refusal with 503 beyond the cap, graceful shutdown.
//! - [`openapi`]: the OpenAPI 3.1 document, generated from the route table and the types.
//!
//! Request and response bodies are never logged: they carry secrets (a created key, a key to
//! verify).

pub mod audit;
pub mod console;
pub mod extract;
pub mod gateway;
pub mod groups;
pub mod keys;
pub mod openapi;
pub mod presets;
pub mod problem;
pub mod router;
pub mod serve;
pub mod verify;

pub use extract::ClientIp;
pub use router::router;
pub use serve::{Limits, serve};
