//! Usage: records in their own partitions until applied; lifetime figures in a small item per
//! key ([`UsageTotalItem`]); per-day figures by outcome in items that expire (the account's day
//! in shards).
//!
//! A record is applied in one transaction that marks it applied (on condition that it exists
//! and is not), so a stream that delivers it twice, or two aggregators that meet it, roll it up
//! once; the marked item stays an hour (TTL), so a retried write of it is refused too.
//!
//! A key's lifetime figures are written with its record and deleted with it, so their item
//! existing says the key does. A key created by a keyward that kept them in the record has no
//! such item: its first roll-up checks the record is there and creates the item, and reads add
//! the record's frozen figures to it.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem, Update};
use chrono::{Duration, NaiveDate};
use keyward_core::usage::{Applied, DayUsage, KeyUse, Outcomes, UsageRecord};

use super::items::*;
use super::{DynamoStore, build_error, bump, request_error, s};
use crate::error::{StoreError, StoreResult};
use crate::port::{APPLIED_RECORD_RETENTION_SECS, UsageStore};

/// How a key's lifetime figures are updated by a roll-up. A condition that fails says which to
/// try next ([`KeyUpdate::after_failed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyUpdate {
    /// Count, and take the last use unless a later one is stored.
    CountAndLastUse,
    /// Count only: a later use is stored already.
    Count,
    /// No figures item: if the key record is there (a key from before they had one), create it.
    Adopt,
    /// The key is gone: its uses count for the account only.
    Gone,
}

/// Which of a key's writes in a roll-up an item of the transaction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Its lifetime figures (an update, or the put of an adoption).
    Totals,
    /// The check that its record exists (an adoption).
    Record,
}

impl KeyUpdate {
    fn after_failed(self, part: Part) -> Self {
        match (self, part) {
            (Self::CountAndLastUse, _) => Self::Count,
            (Self::Count, _) => Self::Adopt,
            // Another roll-up created the figures meanwhile.
            (Self::Adopt, Part::Totals) => Self::CountAndLastUse,
            (Self::Adopt, Part::Record) | (Self::Gone, _) => Self::Gone,
        }
    }
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

impl DynamoStore {
    fn update(
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
    fn add_day(
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

    /// The writes of `how` to key `k`'s lifetime figures, each with the part it is.
    fn update_totals(
        &self,
        account: &str,
        k: &KeyUse,
        how: KeyUpdate,
    ) -> StoreResult<Vec<(TransactWriteItem, Part)>> {
        let totals = key_of(usage_pk(account, Some(&k.key_id)), USAGE_TOTAL_SK);
        let at = serde_dynamo::to_attribute_value(k.last_used_at)
            .map_err(|e| StoreError::Backend(format!("encoding a time: {e}")))?;
        let ip = k
            .last_used_ip
            .map_or(AttributeValue::Null(true), |ip| s(ip.to_string()));
        let ms = AttributeValue::N(k.last_used_at.timestamp_millis().to_string());
        let b = Update::builder()
            .set_key(Some(totals.clone()))
            .expression_attribute_values(":n", n(k.outcomes.total()));
        let update = match how {
            KeyUpdate::CountAndLastUse => b
                .update_expression(
                    "SET request_count = request_count + :n, last_used_at = :at, \
                     last_used_ip = :ip, last_used_ms = :ms",
                )
                .condition_expression(
                    "attribute_exists(pk) AND (attribute_not_exists(last_used_ms) OR last_used_ms <= :ms)",
                )
                .expression_attribute_values(":at", at)
                .expression_attribute_values(":ip", ip)
                .expression_attribute_values(":ms", ms),
            KeyUpdate::Count => b
                .update_expression("SET request_count = request_count + :n")
                .condition_expression("attribute_exists(pk)"),
            KeyUpdate::Adopt => {
                let check = ConditionCheck::builder()
                    .table_name(&self.table)
                    .set_key(Some(key_of(account_pk(account), key_sk(&k.key_id))))
                    .condition_expression("attribute_exists(pk)")
                    .build()
                    .map_err(|e| build_error("building a condition check", e))?;
                let mut item = totals;
                item.insert("request_count".into(), n(k.outcomes.total()));
                item.insert("last_used_at".into(), at);
                item.insert("last_used_ip".into(), ip);
                item.insert("last_used_ms".into(), ms);
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(pk)")
                    .build()
                    .map_err(|e| build_error("building a put", e))?;
                return Ok(vec![
                    (
                        TransactWriteItem::builder().condition_check(check).build(),
                        Part::Record,
                    ),
                    (TransactWriteItem::builder().put(put).build(), Part::Totals),
                ]);
            }
            KeyUpdate::Gone => return Ok(Vec::new()),
        };
        Ok(vec![(self.update(update)?, Part::Totals)])
    }
}

/// How many times a roll-up is rebuilt after a key's condition failed (each round moves at
/// least one key a step along [`KeyUpdate::after_failed`], and a key settles within four).
const APPLY_ROUNDS: usize = 4 * keyward_core::usage::MAX_KEYS_PER_RECORD + 1;

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
        let ttl = (record.day + Duration::days(USAGE_RETENTION_DAYS))
            .and_hms_opt(0, 0, 0)
            .map_or(0, |t| t.and_utc().timestamp());
        // One operation per item in a transaction: a key named twice is merged first.
        let record = &record.merged();
        let mut how = vec![KeyUpdate::CountAndLastUse; record.keys.len()];
        for _ in 0..APPLY_ROUNDS {
            // Item 0 marks the record applied; then, per key still there, its lifetime figures
            // and its day; last, the account's day (which counts every use, of gone keys too).
            let mut items = vec![self.mark_applied(record)?];
            let mut owners = vec![None];
            for (i, k) in record.keys.iter().enumerate() {
                if how[i] == KeyUpdate::Gone {
                    continue;
                }
                for (item, part) in self.update_totals(&record.account, k, how[i])? {
                    items.push(item);
                    owners.push(Some((i, part)));
                }
                items.push(self.add_day(
                    usage_pk(&record.account, Some(&k.key_id)),
                    usage_sk(record.day),
                    k.outcomes,
                    ttl,
                )?);
                owners.push(None);
            }
            items.push(self.add_day(
                usage_pk(&record.account, None),
                account_day_sk(record.day, &record.id),
                record.outcomes(),
                ttl,
            )?);
            let failed = self.transact_failures(items).await?;
            if failed.is_empty() {
                return Ok(Applied::Now);
            }
            if failed.contains(&0) {
                return Ok(Applied::Before);
            }
            // A key's record check fails before its put could (an adoption): take the first.
            let mut moved = vec![false; record.keys.len()];
            for (i, part) in failed
                .iter()
                .filter_map(|f| owners.get(*f).copied().flatten())
            {
                if !std::mem::replace(&mut moved[i], true) {
                    how[i] = how[i].after_failed(part);
                }
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
        let mut days: Vec<(NaiveDate, Outcomes)> = Vec::new();
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
                match days.last_mut() {
                    Some((d, sum)) if *d == date => sum.merge(o),
                    _ => days.push((date, o)),
                }
            }
            match out.last_evaluated_key {
                Some(k) => start = Some(k),
                None => break,
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
