//! Usage: counters on the key record (conditional on the key existing), and per-day counter
//! items that expire.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::NaiveDate;
use keyward_core::usage::{DayCount, UsageDelta};

use super::items::*;
use super::{DynamoStore, bump, request_error, s};
use crate::error::{StoreError, StoreResult};
use crate::port::UsageStore;

#[async_trait]
impl UsageStore for DynamoStore {
    async fn record_usage(&self, deltas: &[UsageDelta]) -> StoreResult<()> {
        for d in deltas {
            let at = serde_dynamo::to_attribute_value(d.last_used_at)
                .map_err(|e| StoreError::Backend(format!("encoding a time: {e}")))?;
            let ip = d
                .last_used_ip
                .map_or(AttributeValue::Null(true), |ip| s(ip.to_string()));
            bump(&self.calls.update_item);
            let updated = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key_of(account_pk(&d.account), key_sk(&d.key_id))))
                .update_expression(
                    "SET request_count = request_count + :n, last_used_at = :at, last_used_ip = :ip",
                )
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":n", AttributeValue::N(d.count.to_string()))
                .expression_attribute_values(":at", at)
                .expression_attribute_values(":ip", ip)
                .send()
                .await;
            match updated {
                Ok(_) => {}
                Err(e) if e.code() == Some("ConditionalCheckFailedException") => continue,
                Err(e) => return Err(request_error("recording usage", e)),
            }
            let day = d.last_used_at.date_naive();
            let ttl = (d.last_used_at + chrono::Duration::days(USAGE_RETENTION_DAYS)).timestamp();
            for key_id in [Some(d.key_id.as_str()), None] {
                bump(&self.calls.update_item);
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key_of(usage_pk(&d.account, key_id), usage_sk(day))))
                    .update_expression("ADD #count :n SET #ttl = :ttl")
                    .expression_attribute_names("#count", "count")
                    .expression_attribute_names("#ttl", TTL)
                    .expression_attribute_values(":n", AttributeValue::N(d.count.to_string()))
                    .expression_attribute_values(":ttl", AttributeValue::N(ttl.to_string()))
                    .send()
                    .await
                    .map_err(|e| request_error("counting usage", e))?;
            }
        }
        Ok(())
    }

    async fn usage_days(
        &self,
        account: &str,
        key_id: Option<&str>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<DayCount>> {
        let mut days = Vec::new();
        let mut start = None;
        loop {
            bump(&self.calls.query);
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                .expression_attribute_values(":pk", s(usage_pk(account, key_id)))
                .expression_attribute_values(":from", s(usage_sk(from)))
                .expression_attribute_values(":to", s(usage_sk(to)))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| request_error("reading usage", e))?;
            for item in out.items.unwrap_or_default() {
                let date = match item.get(SK) {
                    Some(AttributeValue::S(sk)) => sk.trim_start_matches("DAY#").parse().ok(),
                    _ => None,
                };
                let count = match item.get("count") {
                    Some(AttributeValue::N(n)) => n.parse().ok(),
                    _ => None,
                };
                match (date, count) {
                    (Some(date), Some(count)) => days.push(DayCount { date, count }),
                    _ => return Err(StoreError::Backend("corrupt usage item".into())),
                }
            }
            match out.last_evaluated_key {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        Ok(days)
    }
}
