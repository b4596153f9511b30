//! `terraform-provider-keyward`: keyward's API keys, sharing groups and presets as Terraform
//! resources, with no secret in state.
//!
//! # Why our own server
//!
//! Terraform talks to a provider over gRPC (plugin protocol 6), after go-plugin's handshake and
//! with mutual TLS. The `tf-provider` crate wraps that, but it is no longer maintained, pins an
//! older tonic and hyper than the rest of the workspace, and needs `protoc` at build time. The
//! protocol is small for what keyward needs, so this crate serves it itself: tonic and prost
//! (the versions the workspace already builds), code generated from HashiCorp's own
//! `tfplugin6.proto` by protox (no `protoc` on the machine), and rustls for the TLS.
//!
//! # Layout
//!
//! - [`plugin`]: go-plugin's side of the handshake: the magic cookie, the listener, mutual
//!   TLS pinned to the certificate Terraform hands over, the line Terraform reads, and the
//!   controller and health services.
//! - [`proto`]: the generated protocol code.
//! - [`cty`]: Terraform's values (cty) as MessagePack and JSON, with unknowns.
//! - [`convert`]: the server's values (times, counters, metadata, group ids) as Terraform shows
//!   them.
//! - [`schema`]: the attribute and block builders the schemas are written with.
//! - [`provider`]: the gRPC `Provider` service: configuration, and each call dispatched to
//!   the resource or data source it names, with errors as Terraform diagnostics.
//! - [`resources`]: `keyward_api_key`, `keyward_sharing_group`, `keyward_preset`.
//! - [`data_sources`]: `keyward_api_key`, `keyward_presets`.
//!
//! Every rule is the core's: validation uses the spec types' own checks (the API's rule texts),
//! updates the plan's field comparison, and secrets go through `keyward-sinks`, the crate
//! `keyward apply` delivers with.

pub mod api;
pub mod convert;
pub mod cty;
pub mod data_sources;
pub mod diag;
pub mod plugin;
pub mod proto;
pub mod provider;
pub mod resources;
pub mod schema;
