//! What can go wrong in storage, in domain terms.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("a key named '{0}' already exists in this account")]
    NameTaken(String),
    #[error("the record does not exist")]
    NotFound,
    #[error("the record was changed by someone else since it was read")]
    VersionConflict,
    #[error("the record already exists")]
    AlreadyExists,
    #[error("the idempotency key was already used")]
    IdempotencyKeyUsed,
    #[error("the paging cursor is not valid")]
    InvalidCursor,
    /// The store did not answer in time, could not be reached, or is throttling: the same
    /// request may succeed later.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("the storage backend failed: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;
