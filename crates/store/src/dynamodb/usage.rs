//! Usage: records in their own partitions until applied; per key, one item of figures (lifetime
//! counts, last use and the latest days' counts: the `totals` module) and day items for older
//! days; the account's days in shards. All per-day items expire.
//!
//! A record is applied in one transaction that marks it applied (on condition that it exists
//! and is not), so a stream that delivers it twice, or two aggregators that meet it, roll it up
//! once; the marked item stays an hour (TTL), so a retried write of it is refused too.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use chrono::{Duration, NaiveDate};
use keyward_core::usage::{Applied, DayUsage, Outcomes, UsageRecord};

use super::items::*;
use super::totals::{Held, KeyUpdate, Part, plan};
use super::usage_record;
use super::{DynamoStore, build_error, bump, n, request_error, s};
use crate::error::{StoreError, StoreResult};
use crate::port::{APPLIED_RECORD_RETENTION_SECS, UsageStore};

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
/// failed are read and written as they now stand ([`plan`]): a key settles in the next round
/// (a deleted key in the one after: adoption, then gone) unless another roll-up of it lands in
/// between. Past this the record stays pending, and the stream delivers it again.
const APPLY_ROUNDS: usize = 8;

#[async_trait]
impl UsageStore for DynamoStore {
    async fn write_usage(&self, records: &[UsageRecord]) -> StoreResult<()> {
        let expires =
            (chrono::Utc::now() + Duration::days(USAGE_RECORD_RETENTION_DAYS)).timestamp();
        for r in records {
            let json = usage_record::encode(r)
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
            // An adoption whose key record is gone: the key is. Any other key that failed is
            // read again (all in one request) and written as it now stands.
            let mut reread: Vec<usize> = Vec::new();
            let mut gone: Vec<usize> = Vec::new();
            for (i, part) in failed
                .iter()
                .filter_map(|f| owners.get(*f).copied().flatten())
            {
                if how[i] == KeyUpdate::Adopt && part == Part::Record {
                    gone.push(i);
                } else {
                    reread.push(i);
                }
            }
            reread.retain(|i| !gone.contains(i));
            reread.dedup();
            for i in gone {
                how[i] = KeyUpdate::Gone;
            }
            let mut held: HashMap<String, Held> = HashMap::new();
            for item in self
                .batch_get(
                    reread
                        .iter()
                        .map(|&i| figures_key(&record.account, &record.keys[i].key_id))
                        .collect(),
                    "usage figures",
                )
                .await?
            {
                if let Some(AttributeValue::S(pk)) = item.get(PK) {
                    held.insert(pk.clone(), Held::of(&item)?);
                }
            }
            for i in reread {
                let k = &record.keys[i];
                let pk = usage_pk(&record.account, Some(&k.key_id));
                how[i] = plan(held.get(&pk), record.day, k.last_used_at.timestamp_millis());
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
        let Some(key_id) = key_id else {
            return Ok(self.day_items(account, None, from, to).await?.into_days());
        };
        // A key's latest days are held on its figures item, and a roll-up may move one of them
        // to a day item of its own between the two reads: read the figures again after the day
        // items, and take the pair only if the days held did not change in between.
        let figures = figures_key(account, key_id);
        let held_now = async || -> StoreResult<Held> {
            Ok(match self.get_item(figures.clone()).await? {
                Some(item) => Held::of(&item)?,
                None => Held::default(),
            })
        };
        // Held days past retention are not shown: their day items would have expired.
        let shown_from =
            from.max(chrono::Utc::now().date_naive() - Duration::days(USAGE_RETENTION_DAYS - 1));
        for _ in 0..USAGE_READ_ATTEMPTS {
            let before = held_now().await?;
            let mut days = self.day_items(account, Some(key_id), from, to).await?;
            let after = held_now().await?;
            if before.days.keys().eq(after.days.keys()) {
                for (date, o) in after.days {
                    if date >= shown_from && date <= to {
                        days.0.entry(date).or_default().merge(o);
                    }
                }
                return Ok(days.into_days());
            }
        }
        Err(StoreError::Unavailable(
            "a key's usage kept moving between reads; try again".into(),
        ))
    }
}

/// How many times a key's usage is read before giving up (see `usage_days`).
const USAGE_READ_ATTEMPTS: usize = 3;

/// Counts by date, from day items.
struct Days(BTreeMap<NaiveDate, Outcomes>);

impl Days {
    fn into_days(self) -> Vec<DayUsage> {
        self.0
            .into_iter()
            .map(|(d, o)| DayUsage::new(d, o))
            .collect()
    }
}

impl DynamoStore {
    /// The day items of a key (or, with `None`, the account's shards) from `from` to `to`.
    async fn day_items(
        &self,
        account: &str,
        key_id: Option<&str>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Days> {
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
        Ok(Days(days))
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
    Ok((
        date,
        Outcomes {
            valid: count_in(item, "valid")? + count_in(item, "count")?,
            rate_limited: count_in(item, "rate_limited")?,
            denied: count_in(item, "denied")?,
        },
    ))
}

/// The usage record an item (or a stream image of it) holds.
fn usage_record_of(item: &Item) -> StoreResult<UsageRecord> {
    match item.get(USAGE_RECORD_ATTRIBUTE) {
        Some(AttributeValue::S(json)) => usage_record::decode(json)
            .map_err(|e| StoreError::Backend(format!("corrupt usage record: {e}"))),
        _ => Err(StoreError::Backend(
            "corrupt usage record: no record attribute".into(),
        )),
    }
}
