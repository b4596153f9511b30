//! Accounts: the tenants every other record belongs to.

use async_trait::async_trait;
use keyward_core::audit::Account;

use crate::error::StoreResult;

/// Storage for accounts.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Creates the account unless it exists; answers whether it was created now.
    async fn create_account(&self, account: &Account) -> StoreResult<bool>;

    async fn get_account(&self, id: &str) -> StoreResult<Option<Account>>;
}
