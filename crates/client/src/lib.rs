//! A small blocking client of keyward's management API, on the API's own wire types
//! ([`keyward_api`]): what `keyward keys`, `keyward usage` and `keyward audit` call, and what
//! the Terraform provider and `keyward apply` build on. No server crate and no AWS SDK: it
//! speaks HTTP(S) to any deployment, `keyward serve` or the issuer behind API Gateway.
//!
//! # Layout
//!
//! - [`endpoint`]: the deployment's base URL, checked once (http or https, no query, no user
//!   info), and the URLs of its routes with every path segment percent-encoded.
//! - [`client`]: [`Client`], the connection (timeouts, User-Agent, the admin key as
//!   `X-API-Key`) and the one place a request is sent, retried (reads only) and its answer
//!   read.
//! - [`keys`], [`groups`], [`presets`], [`reports`]: one method per route of the API, grouped
//!   as the server's handlers are (`crates/http/src/router.rs` is the route table they follow).
//! - [`filter`]: what a listing asks for (status, workspace, name search, page) and day ranges.
//! - [`error`]: [`ClientError`]: the server's problem documents, kept whole, and what went wrong
//!   on the way (transport, an unexpected answer, a bad endpoint).
//!
//! # Why it is shaped like this
//!
//! Blocking (ureq): the CLI runs one request after another, and a blocking client needs no
//! runtime, so a command that only talks to the API starts none. Never call it from an async
//! runtime's worker thread. Secrets stay out of everything this crate prints: the admin key is
//! never in `Debug` or in an error, and answers that hold a secret (create, regenerate) are
//! only ever returned, never quoted in an error.

pub mod client;
pub mod endpoint;
pub mod error;
pub mod filter;
pub mod groups;
pub mod keys;
pub mod presets;
pub mod reports;

pub use client::Client;
pub use endpoint::Endpoint;
pub use error::ClientError;
pub use filter::{DayRange, KeyFilter, PageRequest, StatusFilter};
pub use keyward_api as api;
