//! The change feed: expiring items under one partition, written in the transaction of each key
//! update and delete, read in time order.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::TransactWriteItem;
use chrono::Utc;
use keyward_core::hash::KeyHash;
use keyward_core::usage::KeyChange;

use super::items::*;
use super::{DynamoStore, bump, request_error, s};
use crate::error::{StoreError, StoreResult};
use crate::port::ChangeFeed;

impl DynamoStore {
    /// The change-feed entry for a key whose lookup hash `old` stops meaning what it meant.
    pub(super) fn change(&self, old: &KeyHash) -> StoreResult<TransactWriteItem> {
        let nonce = keyward_core::token::random_base62(8)
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        self.put(to_item(&ChangeItem::new(old, Utc::now(), &nonce))?, None)
    }
}

#[async_trait]
impl ChangeFeed for DynamoStore {
    async fn changes_since(&self, since: chrono::DateTime<Utc>) -> StoreResult<Vec<KeyChange>> {
        let mut changes = Vec::new();
        let mut start = None;
        loop {
            bump(&self.calls.query);
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk >= :since")
                .expression_attribute_values(":pk", s(CHANGES_PK))
                .expression_attribute_values(":since", s(change_sk(since.timestamp_micros(), "")))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| request_error("reading key changes", e))?;
            for item in out.items.unwrap_or_default() {
                let c: ChangeItem = from_item(item)?;
                let hash = KeyHash::from_hex(&c.hash)
                    .ok_or_else(|| StoreError::Backend("corrupt change hash".into()))?;
                changes.push(KeyChange { hash, at: c.at });
            }
            match out.last_evaluated_key {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        Ok(changes)
    }
}
