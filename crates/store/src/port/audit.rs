//! The audit log: who changed what. Entries are written by the mutations themselves (each
//! takes its entry and writes it in the same transaction); this trait reads them, and appends
//! the entries of events that change no record (a step of a Secrets Manager rotation).

use async_trait::async_trait;
use keyward_core::audit::AuditEntry;

use super::Page;
use crate::error::StoreResult;

/// Reading an account's audit entries.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// A page of the account's audit entries, newest first.
    async fn list_audit(
        &self,
        account: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<AuditEntry>>;

    /// Appends an entry about something that changed no record of this store.
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()>;
}
