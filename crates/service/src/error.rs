//! What an operation can fail with, in the caller's terms. The HTTP edge maps these to status
//! codes and problem documents in one place (`http::problem`).

use keyward_core::validation::ValidationErrors;
use keyward_store::StoreError;
use thiserror::Error;

use crate::fault::FAULTS;

/// What a caller is told to wait when the store is unavailable.
pub const STORE_RETRY_AFTER_SECS: u32 = 5;

#[derive(Debug, Error)]
pub enum ServiceError {
    #[error("the request is invalid: {0}")]
    Invalid(ValidationErrors),
    #[error("{0}")]
    Unauthenticated(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error("a {0} named '{1}' already exists")]
    NameTaken(&'static str, String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("the key was changed since it was read; fetch it again and retry")]
    PreconditionFailed,
    /// The store cannot answer now (down, slow, throttling), or a write met more concurrent
    /// writers than it retries past: the same request may succeed after `retry_after_secs`.
    #[error("the service is unavailable; retry in {retry_after_secs} s")]
    Unavailable { retry_after_secs: u32 },
    /// The caller's key made as many management calls this minute as it may.
    #[error("too many requests with this key; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u32 },
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NameTaken(name) => Self::NameTaken("key", name),
            StoreError::NotFound => Self::NotFound("key"),
            StoreError::VersionConflict => Self::PreconditionFailed,
            StoreError::AlreadyExists => Self::Conflict("the record already exists".into()),
            StoreError::IdempotencyKeyUsed => {
                Self::Conflict("a request with this Idempotency-Key is being processed".into())
            }
            StoreError::InvalidCursor => Self::Invalid(ValidationErrors::one(
                "cursor",
                "not a cursor from a previous page",
            )),
            StoreError::Unavailable(cause) => {
                FAULTS.report("the store is unavailable", &cause);
                Self::Unavailable {
                    retry_after_secs: STORE_RETRY_AFTER_SECS,
                }
            }
            StoreError::Backend(msg) => Self::Internal(msg),
        }
    }
}

impl From<ValidationErrors> for ServiceError {
    fn from(e: ValidationErrors) -> Self {
        Self::Invalid(e)
    }
}

impl From<keyward_core::lifecycle::Refusal> for ServiceError {
    fn from(e: keyward_core::lifecycle::Refusal) -> Self {
        Self::Conflict(e.to_string())
    }
}

impl From<keyward_core::token::TokenError> for ServiceError {
    fn from(e: keyward_core::token::TokenError) -> Self {
        Self::Internal(e.to_string())
    }
}
