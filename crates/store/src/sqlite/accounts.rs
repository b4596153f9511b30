//! Accounts in the `accounts` table.

use async_trait::async_trait;
use keyward_core::audit::Account;
use rusqlite::params;

use super::{SqliteStore, backend, one, to_json};
use crate::error::StoreResult;
use crate::port::AccountStore;

#[async_trait]
impl AccountStore for SqliteStore {
    async fn create_account(&self, account: &Account) -> StoreResult<bool> {
        let (id, record) = (account.id.clone(), to_json(account)?);
        self.with(move |c| {
            let n = c
                .execute(
                    "INSERT INTO accounts (id, record) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING",
                    params![id, record],
                )
                .map_err(backend)?;
            Ok(n == 1)
        })
        .await
    }

    async fn get_account(&self, id: &str) -> StoreResult<Option<Account>> {
        let id = id.to_owned();
        self.with(move |c| one(c, "SELECT record FROM accounts WHERE id = ?1", params![id]))
            .await
    }
}
