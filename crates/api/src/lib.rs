//! The management API's wire types: every request and response body, with the JSON Schema the
//! OpenAPI document is generated from. The server, its clients and the Terraform provider share
//! them, so a field renamed here is renamed for all of them, and the drift test of
//! `schemas/openapi.json` notices.
//!
//! # Layout
//!
//! - [`keys`]: keys (the record and the create and edit bodies, from the core), the one-time
//!   secret answer, and edited records with their warnings.
//! - [`listing`]: one page of keys, groups or audit entries, and where the next starts.
//! - [`groups`], [`presets`]: sharing groups and presets.
//! - [`usage`]: a key's and the account's use per day.
//! - [`verify`]: `POST /v1/verify`, asked and answered.
//! - [`problem`]: RFC 9457 problem documents, the shape of every error.
//!
//! Request bodies that a rule of the core validates (create, edit) are the core's own types,
//! re-exported here: one type, so the schema a client sees is the one the server parses.

pub mod groups;
pub mod keys;
pub mod listing;
pub mod presets;
pub mod problem;
pub mod usage;
pub mod verify;

pub use problem::Problem;
