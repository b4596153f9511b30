//! keyward's AWS edges: where AWS event shapes and AWS answers meet the use cases. Nothing here
//! decides anything; each module translates.
//!
//! # Layout
//!
//! - [`sdk`]: the AWS SDK configuration, loaded once per process and shared by its clients:
//!   the standard chain for the `keyward` command, Lambda's environment for the functions.
//! - [`logging`]: a function's log (Lambda's level and JSON format), without a regex engine.
//! - [`event`]: API Gateway authorizer events (REST `TOKEN` and `REQUEST`, HTTP API) decoded in
//!   one pass into the request the decision takes.
//! - [`answer`]: IAM policies, simple responses and the REST `Unauthorized` error, with the
//!   backend's context.
//! - [`authorizer`]: [`Authorizer`](authorizer::Authorizer): event in, the one decision,
//!   answer out; what the authorizer function and `keyward authorize` run.
//! - `issuer` (feature `issuer`): the management Router behind API Gateway (stage prefix,
//!   caller's address); only the issuer function builds it.
//! - [`stream`]: DynamoDB Streams batches of usage records for the aggregator, with partial
//!   batch failures.
//! - [`rotator`]: EventBridge scheduled events for the rotator, each one rotation sweep.
//! - `events` (feature `eventbridge`): expiry warnings as EventBridge events.
//! - `secrets_manager` (feature `secretsmanager`): the rotator's Secrets Manager calls.
//! - `pepper` (feature `pepper`): the deployment's pepper, from Secrets Manager or SSM at
//!   start-up, each one signed JSON call made by `aws_json` rather than a generated client.
//!
//! # Why the authorizer's event is read this way
//!
//! The Lambda hands over bytes. [`event::AuthorizerEvent::from_slice`] reads only the fields an
//! authorizer uses, straight into name-value pairs, and skips the rest unread: one pass, no
//! intermediate JSON tree, whatever the event kind.

pub mod answer;
pub mod authorizer;
#[cfg(feature = "pepper")]
mod aws_json;
pub mod event;
#[cfg(feature = "eventbridge")]
pub mod events;
#[cfg(feature = "issuer")]
pub mod issuer;
pub mod logging;
#[cfg(feature = "pepper")]
pub mod pepper;
pub mod rotator;
pub mod sdk;
#[cfg(feature = "secretsmanager")]
pub mod secrets_manager;
pub mod stream;
