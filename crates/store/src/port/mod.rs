//! The Store port: what the services need from storage, and nothing about how it is done.
//!
//! One small trait per concern, so a reader finds a contract by its subject and an adapter
//! implements one concern per file:
//!
//! - [`AccountStore`] (`accounts`): accounts, created once.
//! - [`KeyStore`] (`keys`): key records, their lookup hashes and idempotency records, with
//!   [`KeyQuery`] for listing.
//! - [`GroupStore`] (`groups`): sharing groups.
//! - [`PresetStore`] (`presets`): an account's own presets.
//! - [`UsageStore`] (`usage`): the usage records engines flush and the figures they roll
//!   into.
//! - [`LeaseStore`] (`leases`): rate-limit budgets, leased in blocks per UTC minute.
//! - [`ChangeFeed`] (`changes`): the lookup hashes that stopped meaning what they meant.
//! - [`AuditLog`] (`audit`): reading the audit entries every mutation writes.
//!
//! [`Store`] is all of them at once, the type services hold as `Arc<dyn Store>`.

use std::fmt::Debug;

mod accounts;
mod audit;
mod changes;
mod groups;
mod keys;
mod leases;
mod presets;
mod usage;

pub use accounts::AccountStore;
pub use audit::AuditLog;
pub use changes::ChangeFeed;
pub use groups::GroupStore;
pub use keys::{KeyQuery, KeyStore, MAX_PAGE_SIZE, page_limit};
pub use leases::LeaseStore;
pub use presets::PresetStore;
pub use usage::{APPLIED_RECORD_RETENTION_SECS, UsageStore};

/// One page of results and where the next one starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Storage for accounts, keys and audit entries: every concern of the port in one object.
///
/// Every method speaks domain types; how key records come back is said on [`KeyStore`].
///
/// Implemented for every type that implements each small trait; there is nothing to write.
/// On `dyn Store` every method can be called with only `Store` in scope; on a concrete adapter
/// type, bring the traits in with `use keyward_store::prelude::*`.
pub trait Store:
    AccountStore
    + KeyStore
    + GroupStore
    + PresetStore
    + UsageStore
    + LeaseStore
    + ChangeFeed
    + AuditLog
    + Send
    + Sync
    + Debug
{
}

impl<T> Store for T where
    T: AccountStore
        + KeyStore
        + GroupStore
        + PresetStore
        + UsageStore
        + LeaseStore
        + ChangeFeed
        + AuditLog
        + Send
        + Sync
        + Debug
{
}
