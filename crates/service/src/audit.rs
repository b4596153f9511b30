//! Reading the audit log: who did what to which key, when, and from which address.

use keyward_core::audit::AuditEntry;
use keyward_store::Page;

use crate::app::{Actor, App};
use crate::error::ServiceError;

impl App {
    pub async fn list_audit(
        &self,
        actor: &Actor,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<AuditEntry>, ServiceError> {
        Ok(self.store.list_audit(&actor.account, cursor, limit).await?)
    }
}
