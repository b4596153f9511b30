//! The Store port and its adapters.
//!
//! # Layout
//!
//! - [`port`]: the port, one small trait per concern ([`AccountStore`], [`KeyStore`],
//!   [`GroupStore`], [`PresetStore`], [`UsageStore`], [`LeaseStore`], [`ChangeFeed`], [`AuditLog`]), their
//!   union [`Store`], and [`KeyQuery`] and [`Page`].
//! - [`error`]: [`StoreError`], the domain meaning of every storage failure (name taken,
//!   version conflict, not found), so no adapter's error type leaks upward.
//! - `sqlite` (feature `sqlite`): the embedded adapter (rusqlite, bundled SQLite) behind `keyward serve`; one
//!   file per trait.
//! - [`dynamodb`]: the production adapter: one table, transactions, one `GetItem` to verify;
//!   one file per trait.
//! - [`cursor`]: the opaque paging cursor both adapters hand out, one encoder and decoder per
//!   kind.
//! - [`location`]: where a deployment keeps its keys: `sqlite` or `dynamodb://TABLE`. The AWS
//!   configuration is not loaded here: each process loads it once and hands the client in.
//! - [`prelude`]: every trait of the port, for callers that hold a concrete adapter type.
//! - `conformance` (feature `conformance`): the behaviours every adapter must have, written
//!   once against the port and run by each adapter's tests; with `LegacyNames`, the way each
//!   adapter wrote records before names were folded, so the suite proves old stores keep
//!   working.
//!
//! Names are unique per account by their folded form (`keyward_core::name::name_key`) among
//! keys that are not revoked: each adapter claims it atomically with the write (SQLite: a
//! partial unique index that revoked rows leave; DynamoDB: a claim item in the transaction,
//! deleted by the revoke's) and keeps the NFC name in the record, revoked or not.
//!
//! # Why the port looks like this
//!
//! It is split by concern so each contract is short and found by its subject, and so an
//! adapter implements one concern per file; [`Store`] joins them (implemented for every type
//! that has them all) so services hold one `Arc<dyn Store>`.
//!
//! Every mutation carries its audit entry, so an adapter writes both in one transaction and a
//! change can never land without its record of who made it ([`AuditLog`] only reads them).
//! Updates are conditional on the version the caller read, so no concurrent edit is lost.
//! Lookup by hash ([`KeyStore::find_key_by_hash`]) is its own method because it is the hot
//! path: each adapter answers it with a single read. Key edits record the hash they retire in
//! the same transaction, so verifiers learn from the [`ChangeFeed`] what to drop from a cache.

#[cfg(feature = "conformance")]
pub mod conformance;
pub mod cursor;
pub mod dynamodb;
pub mod error;
pub mod location;
pub mod port;
#[cfg(feature = "sqlite")]
pub mod sqlite;

pub use dynamodb::DynamoStore;
pub use error::{StoreError, StoreResult};
pub use location::{DynamoLocation, StoreLocation};
pub use port::{
    AccountStore, AuditLog, ChangeFeed, GroupStore, KeyQuery, KeyStore, LeaseStore, Page,
    PresetStore, Store, UsageStore,
};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

/// Every trait of the port, for code that calls the store through a concrete adapter type
/// (`SqliteStore`, `DynamoStore`): `use keyward_store::prelude::*;`. Code holding a
/// `dyn Store` needs only [`Store`].
pub mod prelude {
    pub use crate::port::{
        AccountStore, AuditLog, ChangeFeed, GroupStore, KeyStore, LeaseStore, PresetStore, Store,
        UsageStore,
    };
}
