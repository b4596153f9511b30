//! The Store port and its adapters.
//!
//! # Layout
//!
//! - [`port`]: the [`Store`] trait, small and in domain types, with [`KeyQuery`] and [`Page`].
//! - [`error`]: [`StoreError`], the domain meaning of every storage failure (name taken,
//!   version conflict, not found), so no adapter's error type leaks upward.
//! - [`sqlite`]: the embedded adapter (rusqlite, bundled SQLite) behind `keyward serve`.
//! - [`dynamodb`]: the production adapter: one table, transactions, one `GetItem` to verify.
//! - [`cursor`]: the opaque paging cursor both adapters hand out.
//! - `conformance` (feature `conformance`): the behaviours every adapter must have, written
//!   once against the port and run by each adapter's tests.
//!
//! # Why the port looks like this
//!
//! Every mutation carries its audit entry, so an adapter writes both in one transaction and a
//! change can never land without its record of who made it. Updates are conditional on the
//! version the caller read, so no concurrent edit is lost. Lookup by hash is its own method
//! because it is the hot path: each adapter answers it with a single read.

#[cfg(feature = "conformance")]
pub mod conformance;
pub mod cursor;
pub mod dynamodb;
pub mod error;
pub mod port;
pub mod sqlite;

pub use dynamodb::{DynamoLocation, DynamoStore};
pub use error::{StoreError, StoreResult};
pub use port::{KeyQuery, Page, Store};
pub use sqlite::SqliteStore;
