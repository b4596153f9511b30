//! Accounts: one item each, created with a conditional put.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use keyward_core::audit::Account;

use super::items::*;
use super::{DynamoStore, bump, request_error};
use crate::error::StoreResult;
use crate::port::AccountStore;

#[async_trait]
impl AccountStore for DynamoStore {
    async fn create_account(&self, account: &Account) -> StoreResult<bool> {
        let item = to_item(&AccountItem {
            pk: account_pk(&account.id),
            sk: account_sk().to_owned(),
            account: account.clone(),
        })?;
        bump(&self.calls.put_item);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(request_error("creating the account", e)),
        }
    }

    async fn get_account(&self, id: &str) -> StoreResult<Option<Account>> {
        let item = self.get_item(key_of(account_pk(id), account_sk())).await?;
        Ok(item
            .map(from_item::<AccountItem>)
            .transpose()?
            .map(|a| a.account))
    }
}
