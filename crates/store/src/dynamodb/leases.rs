//! Rate-limit leases: one item per counter and minute, grown by conditional updates that can
//! never take `granted` past the limit. When a lease does not fit, the refusal carries what
//! was granted (`ReturnValuesOnConditionCheckFailure`), and the remainder is asked for.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use keyward_core::rate::{Counter, Grant, Window, grantable};

use super::items::*;
use super::{DynamoStore, bump, request_error};
use crate::error::{StoreError, StoreResult};
use crate::port::LeaseStore;

/// How many times a lease asks again for what is left after others took part of it.
const LEASE_ATTEMPTS: u32 = 8;

/// A lease item lives ten minutes past its window.
const LEASE_TTL_SECS: i64 = 600;

fn granted_of(item: Option<&Item>) -> StoreResult<u32> {
    match item.and_then(|i| i.get("granted")) {
        None => Ok(0),
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|_| StoreError::Backend("corrupt lease item".into())),
        Some(_) => Err(StoreError::Backend("corrupt lease item".into())),
    }
}

#[async_trait]
impl LeaseStore for DynamoStore {
    async fn lease(
        &self,
        counter: &Counter,
        window: Window,
        limit: u32,
        want: u32,
    ) -> StoreResult<Grant> {
        let key = key_of(lease_pk(counter), lease_sk(window));
        let ttl = (window.0 + 1) * 60 + LEASE_TTL_SECS;
        let mut ask = grantable(limit, 0, want);
        let mut total = 0;
        for _ in 0..LEASE_ATTEMPTS {
            if ask == 0 {
                break;
            }
            bump(&self.calls.update_item);
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key.clone()))
                .update_expression(
                    "SET granted = if_not_exists(granted, :zero) + :ask, #ttl = :ttl",
                )
                .condition_expression("attribute_not_exists(granted) OR granted <= :most")
                .expression_attribute_names("#ttl", TTL)
                .expression_attribute_values(":zero", AttributeValue::N("0".into()))
                .expression_attribute_values(":ask", AttributeValue::N(ask.to_string()))
                .expression_attribute_values(":most", AttributeValue::N((limit - ask).to_string()))
                .expression_attribute_values(":ttl", AttributeValue::N(ttl.to_string()))
                .return_values(ReturnValue::UpdatedNew)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            match result {
                Ok(out) => {
                    return Ok(Grant {
                        granted: ask,
                        total: granted_of(out.attributes.as_ref())?,
                    });
                }
                Err(e) if e.code() == Some("ConditionalCheckFailedException") => {
                    // Others took part of the window: ask for what is left, if anything.
                    let old = match e.as_service_error() {
                        Some(UpdateItemError::ConditionalCheckFailedException(c)) => {
                            c.item().cloned()
                        }
                        _ => None,
                    };
                    total = match old {
                        Some(item) => granted_of(Some(&item))?,
                        None => self.leased(counter, window).await?,
                    };
                    ask = grantable(limit, total, want);
                }
                Err(e) => return Err(request_error("leasing a rate limit", e)),
            }
        }
        Ok(Grant { granted: 0, total })
    }

    async fn leased(&self, counter: &Counter, window: Window) -> StoreResult<u32> {
        let item = self
            .get_item(key_of(lease_pk(counter), lease_sk(window)))
            .await?;
        granted_of(item.as_ref())
    }
}
