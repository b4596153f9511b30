//! Usage: records in their own partitions until applied; per key, one item of figures (lifetime
//! counts, last use and the latest days' counts: the `totals` module) and day items for older
//! days; the account's days in shards. All per-day items expire.
//!
//! A record is applied in one transaction that marks it applied (on condition that it exists
//! and is not), so a stream that delivers it twice, or two aggregators that meet it, roll it up
//! once; the marked item stays an hour (TTL), so a retried write of it is refused too.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use chrono::{Duration, NaiveDate};
use keyward_core::usage::{Applied, DayUsage, Outcomes, UsageRecord};

use super::items::*;
use super::totals::{Held, KeyUpdate, Part, plan};
use super::{DynamoStore, build_error, bump, request_error, s};
use crate::error::{StoreError, StoreResult};
use crate::port::{APPLIED_RECORD_RETENTION_SECS, UsageStore};

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

impl DynamoStore {
    pub(super) fn update(
        &self,
        b: aws_sdk_dynamodb::types::builders::UpdateBuilder,
    ) -> StoreResult<TransactWriteItem> {
        let update = b
            .table_name(&self.table)
            .build()
            .map_err(|e| build_error("building an update", e))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Adds `o` to a day item (creating it), and pushes its expiry out.
    pub(super) fn add_day(
        &self,
        pk: String,
        sk: String,
        o: Outcomes,
        ttl: i64,
    ) -> StoreResult<TransactWriteItem> {
        self.update(
            Update::builder()
                .set_key(Some(key_of(pk, sk)))
                .update_expression("ADD valid :v, rate_limited :r, denied :d SET #ttl = :ttl")
                .expression_attribute_names("#ttl", TTL)
                .expression_attribute_values(":v", n(o.valid))
                .expression_attribute_values(":r", n(o.rate_limited))
                .expression_attribute_values(":d", n(o.denied))
                .expression_attribute_values(":ttl", AttributeValue::N(ttl.to_string())),
        )
    }

    /// Marks a record applied, if it is written and not applied yet: its body goes, and the
    /// item stays for [`APPLIED_RECORD_RETENTION_SECS`] to refuse a retried write of it.
    fn mark_applied(&self, record: &UsageRecord) -> StoreResult<TransactWriteItem> {
        let now = chrono::Utc::now().timestamp();
        self.update(
            Update::builder()
                .set_key(Some(key_of(
                    usage_record_pk(&record.id),
                    usage_record_sk(&record.id),
                )))
                .update_expression("SET applied = :now, #ttl = :ttl REMOVE #record")
                .condition_expression("attribute_exists(pk) AND attribute_not_exists(applied)")
                .expression_attribute_names("#ttl", TTL)
                .expression_attribute_names("#record", USAGE_RECORD_ATTRIBUTE)
                .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
                .expression_attribute_values(
                    ":ttl",
                    AttributeValue::N((now + APPLIED_RECORD_RETENTION_SECS).to_string()),
                ),
        )
    }
}

/// How many times a roll-up is rebuilt after a key's condition failed. Each time, the keys that
/// failed are read and written as they now stand ([`plan`]); a key settles within two rounds
/// unless another roll-up of it lands in between.
const APPLY_ROUNDS: usize = 8;

#[async_trait]
impl UsageStore for DynamoStore {
    async fn write_usage(&self, records: &[UsageRecord]) -> StoreResult<()> {
        let expires =
            (chrono::Utc::now() + Duration::days(USAGE_RECORD_RETENTION_DAYS)).timestamp();
        for r in records {
            let json = serde_json::to_string(r)
                .map_err(|e| StoreError::Backend(format!("encoding a usage record: {e}")))?;
            bump(&self.calls.put_item);
            let written = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(key_of(usage_record_pk(&r.id), usage_record_sk(&r.id))))
                .item(USAGE_RECORD_ATTRIBUTE, s(json))
                .item(TTL, AttributeValue::N(expires.to_string()))
                // A retried flush: written before (pending or applied), it is left alone.
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await;
            match written {
                Ok(_) => {}
                Err(e) if e.code() == Some("ConditionalCheckFailedException") => {}
                Err(e) => return Err(request_error("writing usage", e)),
            }
        }
        Ok(())
    }

    async fn pending_usage(&self, limit: usize) -> StoreResult<Vec<UsageRecord>> {
        let mut records = Vec::new();
        for shard in 0..USAGE_RECORD_SHARDS {
            let mut start = None;
            while records.len() < limit {
                bump(&self.calls.query);
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :pk AND begins_with(sk, :rec)")
                    .filter_expression("attribute_not_exists(applied)")
                    .expression_attribute_values(
                        ":pk",
                        s(format!("{USAGE_RECORD_PK_PREFIX}{shard}")),
                    )
                    .expression_attribute_values(":rec", s(USAGE_RECORD_SK_PREFIX))
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(|e| request_error("reading pending usage", e))?;
                for item in out.items.unwrap_or_default() {
                    records.push(usage_record_of(&item)?);
                }
                match out.last_evaluated_key {
                    Some(k) => start = Some(k),
                    None => break,
                }
            }
        }
        records.truncate(limit);
        Ok(records)
    }

    async fn apply_usage(&self, record: &UsageRecord) -> StoreResult<Applied> {
        let day_ttl = |day: NaiveDate| {
            (day + Duration::days(USAGE_RETENTION_DAYS))
                .and_hms_opt(0, 0, 0)
                .map_or(0, |t| t.and_utc().timestamp())
        };
        // One operation per item in a transaction: a key named twice is merged first.
        let record = &record.merged();
        let mut how = vec![KeyUpdate::Add { last_use: true }; record.keys.len()];
        for _ in 0..APPLY_ROUNDS {
            // Item 0 marks the record applied; then each key's writes (none for a gone key);
            // last, the account's day (which counts every use, of gone keys too).
            let mut items = vec![self.mark_applied(record)?];
            let mut owners = vec![None];
            for (i, k) in record.keys.iter().enumerate() {
                for (item, part) in
                    self.key_entry_writes(&record.account, record.day, k, how[i], day_ttl)?
                {
                    items.push(item);
                    owners.push(Some((i, part)));
                }
            }
            items.push(self.add_day(
                usage_pk(&record.account, None),
                account_day_sk(record.day, &record.id),
                record.outcomes(),
                day_ttl(record.day),
            )?);
            let failed = self.transact_failures(items).await?;
            if failed.is_empty() {
                return Ok(Applied::Now);
            }
            if failed.contains(&0) {
                return Ok(Applied::Before);
            }
            // An adoption whose key record is gone: the key is. Any other failed key is read
            // again and written as it now stands.
            let mut failed_keys: Vec<(usize, Part)> = Vec::new();
            for (i, part) in failed
                .iter()
                .filter_map(|f| owners.get(*f).copied().flatten())
            {
                match failed_keys.iter_mut().find(|(k, _)| *k == i) {
                    Some((_, p)) if part == Part::Record => *p = part,
                    Some(_) => {}
                    None => failed_keys.push((i, part)),
                }
            }
            for (i, part) in failed_keys {
                how[i] = if how[i] == KeyUpdate::Adopt && part == Part::Record {
                    KeyUpdate::Gone
                } else {
                    let k = &record.keys[i];
                    let item = self
                        .get_item(key_of(
                            usage_pk(&record.account, Some(&k.key_id)),
                            USAGE_TOTAL_SK,
                        ))
                        .await?;
                    let held = item.as_ref().map(Held::of).transpose()?;
                    plan(held.as_ref(), record.day, k.last_used_at.timestamp_millis())
                };
            }
        }
        Err(StoreError::Backend(format!(
            "usage record {} could not be applied: its keys kept changing",
            record.id
        )))
    }

    async fn usage_days(
        &self,
        account: &str,
        key_id: Option<&str>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<DayUsage>> {
        let mut days: BTreeMap<NaiveDate, Outcomes> = BTreeMap::new();
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
                // `~` sorts after the shard digits: the last day's shards are in range.
                .expression_attribute_values(":to", s(format!("{}#~", usage_sk(to))))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| request_error("reading usage", e))?;
            for item in out.items.unwrap_or_default() {
                let (date, o) = day_of(&item)?;
                days.entry(date).or_default().merge(o);
            }
            match out.last_evaluated_key {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        // A key's latest days are held on its figures item; those past retention are not shown,
        // as their day items would have expired.
        if let Some(key_id) = key_id
            && let Some(item) = self
                .get_item(key_of(usage_pk(account, Some(key_id)), USAGE_TOTAL_SK))
                .await?
        {
            let kept_from = chrono::Utc::now().date_naive() - Duration::days(USAGE_RETENTION_DAYS);
            for (date, o) in Held::of(&item)?.days {
                if date >= from.max(kept_from) && date <= to {
                    days.entry(date).or_default().merge(o);
                }
            }
        }
        Ok(days.into_iter().map(|(d, o)| DayUsage::new(d, o)).collect())
    }
}

/// A day item: its date (the sort key's, before any shard) and its counts. An item written
/// before usage had outcomes holds `count`, every one of them a valid use.
fn day_of(item: &Item) -> StoreResult<(NaiveDate, Outcomes)> {
    let corrupt = || StoreError::Backend("corrupt usage item".into());
    let date = match item.get(SK) {
        Some(AttributeValue::S(sk)) => sk
            .strip_prefix("DAY#")
            .and_then(|d| d.get(..10))
            .and_then(|d| d.parse().ok()),
        _ => None,
    }
    .ok_or_else(corrupt)?;
    let count = |name: &str| -> StoreResult<u64> {
        match item.get(name) {
            None => Ok(0),
            Some(AttributeValue::N(v)) => v.parse().map_err(|_| corrupt()),
            Some(_) => Err(corrupt()),
        }
    };
    Ok((
        date,
        Outcomes {
            valid: count("valid")? + count("count")?,
            rate_limited: count("rate_limited")?,
            denied: count("denied")?,
        },
    ))
}

/// The usage record an item (or a stream image of it) holds.
fn usage_record_of(item: &Item) -> StoreResult<UsageRecord> {
    match item.get(USAGE_RECORD_ATTRIBUTE) {
        Some(AttributeValue::S(json)) => serde_json::from_str(json)
            .map_err(|e| StoreError::Backend(format!("corrupt usage record: {e}"))),
        _ => Err(StoreError::Backend(
            "corrupt usage record: no record attribute".into(),
        )),
    }
}
