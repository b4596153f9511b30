//! Sharing groups: named sets of keys within an account.

use async_trait::async_trait;
use keyward_core::audit::AuditEntry;
use keyward_core::group::Group;

use super::Page;
use crate::error::StoreResult;

/// Storage for sharing groups; a group's name is unique in its account.
#[async_trait]
pub trait GroupStore: Send + Sync {
    /// Creates a sharing group with its audit entry; `NameTaken` if the name is in use.
    async fn insert_group(&self, group: &Group, audit: &AuditEntry) -> StoreResult<()>;

    async fn get_group(&self, account: &str, id: &str) -> StoreResult<Option<Group>>;

    /// A page of the account's groups, ordered by id.
    async fn list_groups(
        &self,
        account: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<Group>>;

    /// Removes a group (its name becomes free) with its audit entry; `NotFound` if absent.
    async fn delete_group(&self, account: &str, id: &str, audit: &AuditEntry) -> StoreResult<()>;
}
