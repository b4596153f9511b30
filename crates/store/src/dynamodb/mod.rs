//! The DynamoDB adapter: one table, transactions for every multi-item change, one `GetItem`
//! for verification.
//!
//! - [`items`]: the table layout and item shapes.
//! - [`table`]: creating the table (`keyward store init`).
//! - [`connect`]: `dynamodb://` locations and the SDK client.
//!
//! Writes that touch several items (record, hash copy, name claim, memberships, audit entry)
//! are one `TransactWriteItems`, guarded by conditions: the name claim must not exist, the
//! record must still be at the expected version. Listing reads a GSI, never `Scan`.

pub mod connect;
pub mod items;
pub mod table;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, TransactWriteItem, Update,
};
use chrono::{NaiveDate, Utc};
use keyward_core::audit::{Account, AuditEntry};
use keyward_core::group::Group;
use keyward_core::hash::KeyHash;
use keyward_core::idempotency::IdempotencyRecord;
use keyward_core::key::ApiKey;
use keyward_core::preset::Preset;
use keyward_core::usage::{DayCount, KeyChange, UsageDelta};

use self::items::*;
use crate::cursor;
use crate::error::{StoreError, StoreResult};
use crate::port::{KeyQuery, Page, Store, page_limit};

pub use connect::DynamoLocation;
pub use table::InitOutcome;

/// How often a transaction cancelled by a concurrent one is retried (the SDK does not).
const TRANSACTION_ATTEMPTS: u32 = 8;

/// Requests sent, by operation: the adapter's cost, observable in tests and benchmarks.
#[derive(Debug, Default)]
pub struct Calls {
    pub get_item: AtomicU64,
    pub put_item: AtomicU64,
    pub update_item: AtomicU64,
    pub query: AtomicU64,
    pub batch_get_item: AtomicU64,
    pub transact_write_items: AtomicU64,
}

/// A snapshot of [`Calls`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallCounts {
    pub get_item: u64,
    pub put_item: u64,
    pub update_item: u64,
    pub query: u64,
    pub batch_get_item: u64,
    pub transact_write_items: u64,
}

impl CallCounts {
    pub fn reads(&self) -> u64 {
        self.get_item + self.query + self.batch_get_item
    }

    pub fn writes(&self) -> u64 {
        self.put_item + self.update_item + self.transact_write_items
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The DynamoDB adapter. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    calls: Arc<Calls>,
}

fn backend<E: std::error::Error + 'static>(what: &str, e: E) -> StoreError {
    StoreError::Backend(format!("{what}: {}", DisplayErrorContext(e)))
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

impl DynamoStore {
    pub fn new(client: Client, table: &str) -> Self {
        Self {
            client,
            table: table.to_owned(),
            calls: Arc::default(),
        }
    }

    /// Connects to `location` (no request is sent until the first call).
    pub async fn connect(location: &DynamoLocation) -> Self {
        Self::new(location.client().await, &location.table)
    }

    /// Creates the table if needed (idempotent).
    pub async fn init(&self) -> StoreResult<InitOutcome> {
        table::init(&self.client, &self.table).await
    }

    /// Checks that the table exists and has keyward's layout, with a message that says what to
    /// do when it does not.
    pub async fn check(&self) -> StoreResult<()> {
        table::check(&self.client, &self.table).await
    }

    pub fn calls(&self) -> CallCounts {
        let c = &self.calls;
        CallCounts {
            get_item: c.get_item.load(Ordering::Relaxed),
            put_item: c.put_item.load(Ordering::Relaxed),
            update_item: c.update_item.load(Ordering::Relaxed),
            query: c.query.load(Ordering::Relaxed),
            batch_get_item: c.batch_get_item.load(Ordering::Relaxed),
            transact_write_items: c.transact_write_items.load(Ordering::Relaxed),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn put(&self, item: Item, condition: Option<&str>) -> StoreResult<TransactWriteItem> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_owned))
            .build()
            .map_err(|e| backend("building a put", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Sets every attribute of `item` but its keys and `skip`, if the stored version is still
    /// `expected`: an edit that leaves usage counters to [`Store::record_usage`].
    fn update_except(
        &self,
        item: Item,
        skip: &[&str],
        expected: u64,
    ) -> StoreResult<TransactWriteItem> {
        let mut b = Update::builder()
            .table_name(&self.table)
            .key(PK, item.get(PK).cloned().unwrap_or_else(|| s("")))
            .key(SK, item.get(SK).cloned().unwrap_or_else(|| s("")))
            .condition_expression("#v = :expected")
            .expression_attribute_names("#v", VERSION)
            .expression_attribute_values(":expected", AttributeValue::N(expected.to_string()));
        let mut sets = Vec::new();
        let fields = item
            .into_iter()
            .filter(|(k, _)| k != PK && k != SK && !skip.contains(&k.as_str()));
        for (i, (name, value)) in fields.enumerate() {
            sets.push(format!("#a{i} = :a{i}"));
            b = b
                .expression_attribute_names(format!("#a{i}"), name)
                .expression_attribute_values(format!(":a{i}"), value);
        }
        let update = b
            .update_expression(format!("SET {}", sets.join(", ")))
            .build()
            .map_err(|e| backend("building an update", e))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    fn delete(&self, key: Item, expected: Option<u64>) -> StoreResult<TransactWriteItem> {
        self.delete_if(key, expected, false)
    }

    /// A delete, conditional on the version (when given) or on the item existing.
    fn delete_if(
        &self,
        key: Item,
        expected: Option<u64>,
        must_exist: bool,
    ) -> StoreResult<TransactWriteItem> {
        let mut b = Delete::builder().table_name(&self.table).set_key(Some(key));
        if must_exist {
            b = b.condition_expression("attribute_exists(pk)");
        }
        if let Some(v) = expected {
            b = b
                .condition_expression("#v = :expected")
                .expression_attribute_names("#v", VERSION)
                .expression_attribute_values(":expected", AttributeValue::N(v.to_string()));
        }
        let delete = b.build().map_err(|e| backend("building a delete", e))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// The change-feed entry for a key whose lookup hash `old` stops meaning what it meant.
    fn change(&self, old: &KeyHash) -> StoreResult<TransactWriteItem> {
        let nonce = keyward_core::token::random_base62(8)
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        self.put(to_item(&ChangeItem::new(old, Utc::now(), &nonce))?, None)
    }

    /// Runs a transaction, retrying when a concurrent transaction got in the way. Answers the
    /// index of the first item whose condition failed, if the transaction was refused so.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> StoreResult<Option<usize>> {
        if items.len() > 100 {
            return Err(StoreError::Backend(format!(
                "a change of {} items exceeds DynamoDB's transaction limit of 100",
                items.len()
            )));
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            bump(&self.calls.transact_write_items);
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(None),
                Err(e) => e,
            };
            if let SdkError::ServiceError(service) = &err
                && let TransactWriteItemsError::TransactionCanceledException(cancel) = service.err()
            {
                let codes: Vec<&str> = cancel
                    .cancellation_reasons()
                    .iter()
                    .map(|r| r.code().unwrap_or("None"))
                    .collect();
                if let Some(i) = codes.iter().position(|c| *c == "ConditionalCheckFailed") {
                    return Ok(Some(i));
                }
                if codes.contains(&"TransactionConflict") && attempt < TRANSACTION_ATTEMPTS {
                    let jitter = u64::from(getrandom_u8()) % 20;
                    tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt) + jitter))
                        .await;
                    continue;
                }
            }
            if err.code() == Some("TransactionInProgressException")
                && attempt < TRANSACTION_ATTEMPTS
            {
                tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
                continue;
            }
            return Err(backend("writing a transaction", err));
        }
    }

    /// One item by its key, read consistently.
    async fn get_item(&self, key: Item) -> StoreResult<Option<Item>> {
        bump(&self.calls.get_item);
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("reading an item", e))?;
        Ok(out.item)
    }

    /// Every item of `pk` whose sort key starts with `prefix`, after `after` (a full sort
    /// key), up to `limit` (or all, when `None`).
    async fn query_prefix(
        &self,
        pk: String,
        prefix: &str,
        after: Option<String>,
        limit: Option<usize>,
    ) -> StoreResult<(Vec<Item>, bool)> {
        let mut out_items = Vec::new();
        let mut start = after.map(|sk| key_of(pk.clone(), sk));
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(pk.clone()))
                .expression_attribute_values(":prefix", s(prefix))
                .set_exclusive_start_key(start.take());
            if let Some(limit) = limit {
                q = q.limit(i32::try_from(limit + 1 - out_items.len()).unwrap_or(i32::MAX));
            }
            bump(&self.calls.query);
            let out = q.send().await.map_err(|e| backend("querying", e))?;
            out_items.extend(out.items.unwrap_or_default());
            let full = limit.is_some_and(|l| out_items.len() > l);
            match out.last_evaluated_key {
                Some(k) if !full => start = Some(k),
                _ => break,
            }
        }
        let more = limit.is_some_and(|l| out_items.len() > l);
        if let Some(l) = limit {
            out_items.truncate(l);
        }
        Ok((out_items, more))
    }

    /// The key record item, read consistently.
    async fn get_key_item(&self, account: &str, id: &str) -> StoreResult<Option<KeyItem>> {
        let item = self
            .get_item(key_of(account_pk(account), key_sk(id)))
            .await?;
        item.map(from_item).transpose()
    }

    /// Key records by id, in the order given, read consistently (missing ones are skipped).
    async fn batch_get_keys(&self, account: &str, ids: &[String]) -> StoreResult<Vec<ApiKey>> {
        let mut found: HashMap<String, ApiKey> = HashMap::new();
        for chunk in ids.chunks(100) {
            let mut pending: Vec<Item> = chunk
                .iter()
                .map(|id| key_of(account_pk(account), key_sk(id)))
                .collect();
            let mut rounds = 0;
            while !pending.is_empty() {
                rounds += 1;
                if rounds > 10 {
                    return Err(StoreError::Backend(
                        "batch read kept leaving keys unprocessed".into(),
                    ));
                }
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| backend("building a batch read", e))?;
                bump(&self.calls.batch_get_item);
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| backend("reading keys", e))?;
                for item in out
                    .responses
                    .unwrap_or_default()
                    .remove(&self.table)
                    .unwrap_or_default()
                {
                    let k: KeyItem = from_item(item)?;
                    found.insert(k.key.id.clone(), k.key);
                }
                if let Some(mut rest) = out.unprocessed_keys
                    && let Some(r) = rest.remove(&self.table)
                {
                    pending = r.keys;
                    tokio::time::sleep(Duration::from_millis(20 * rounds)).await;
                }
            }
        }
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }

    /// One page of candidate keys from an index, in name order after `after`.
    async fn query_page(
        &self,
        account: &str,
        query: &KeyQuery,
        after: Option<&str>,
        start: Option<Item>,
        limit: i32,
    ) -> StoreResult<(Vec<ApiKey>, Option<Item>)> {
        let (index, pk_attr, sk_attr, pk) = match &query.workspace {
            Some(ws) => (GSI2, GSI2_PK, GSI2_SK, workspace_gsi_pk(account, ws)),
            None => (GSI1, GSI1_PK, GSI1_SK, keys_gsi_pk(account)),
        };
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .expression_attribute_names("#pk", pk_attr)
            .expression_attribute_values(":pk", s(pk))
            .set_exclusive_start_key(start)
            .limit(limit);
        q = match after {
            Some(name) => q
                .key_condition_expression("#pk = :pk AND #sk > :after")
                .expression_attribute_names("#sk", sk_attr)
                .expression_attribute_values(":after", s(name)),
            None => q.key_condition_expression("#pk = :pk"),
        };
        bump(&self.calls.query);
        let out = q.send().await.map_err(|e| backend("listing keys", e))?;
        let items = out.items.unwrap_or_default();
        let keys = if query.workspace.is_some() {
            let ids: Vec<String> = items
                .iter()
                .filter_map(|i| match i.get(SK) {
                    Some(AttributeValue::S(sk)) => member_key_id(sk).map(str::to_owned),
                    _ => None,
                })
                .collect();
            self.batch_get_keys(account, &ids).await?
        } else {
            items
                .into_iter()
                .map(|i| from_item::<KeyItem>(i).map(|k| k.key))
                .collect::<StoreResult<_>>()?
        };
        Ok((keys, out.last_evaluated_key))
    }
}

fn getrandom_u8() -> u8 {
    keyward_core::token::random_base62(1)
        .ok()
        .and_then(|s| s.bytes().next())
        .unwrap_or(7)
}

#[async_trait]
impl Store for DynamoStore {
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
            Err(e) => Err(backend("creating the account", e)),
        }
    }

    async fn get_account(&self, id: &str) -> StoreResult<Option<Account>> {
        let item = self.get_item(key_of(account_pk(id), account_sk())).await?;
        Ok(item
            .map(from_item::<AccountItem>)
            .transpose()?
            .map(|a| a.account))
    }

    async fn insert_key(
        &self,
        key: &ApiKey,
        hash: &KeyHash,
        audit: &AuditEntry,
        idempotency: Option<&IdempotencyRecord>,
    ) -> StoreResult<()> {
        const NOT_EXISTS: Option<&str> = Some("attribute_not_exists(pk)");
        // The idempotency record goes first, so a replay is reported before anything else.
        let mut items = Vec::new();
        if let Some(record) = idempotency {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(to_item(&IdempotencyItem::new(record))?))
                .condition_expression("attribute_not_exists(pk) OR #ttl <= :now")
                .expression_attribute_names("#ttl", TTL)
                .expression_attribute_values(
                    ":now",
                    AttributeValue::N(Utc::now().timestamp().to_string()),
                )
                .build()
                .map_err(|e| backend("building a put", e))?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        let first = items.len();
        items.push(self.put(to_item(&KeyItem::new(key, hash))?, NOT_EXISTS)?);
        items.push(self.put(to_item(&HashItem::new(key, hash))?, NOT_EXISTS)?);
        items.push(self.put(to_item(&NameItem::new(key))?, NOT_EXISTS)?);
        for ws in &key.workspaces {
            items.push(self.put(to_item(&MemberItem::new(key, ws))?, None)?);
        }
        items.push(self.put(to_item(&AuditItem::new(audit))?, None)?);
        match self.transact(items).await?.map(|i| i.checked_sub(first)) {
            None => Ok(()),
            Some(None) => Err(StoreError::IdempotencyKeyUsed),
            Some(Some(0)) => Err(StoreError::AlreadyExists),
            Some(Some(2)) => Err(StoreError::NameTaken(key.name.clone())),
            Some(_) => Err(StoreError::Backend(
                "the lookup hash is already in use".into(),
            )),
        }
    }

    async fn get_idempotency(
        &self,
        account: &str,
        key: &str,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        let item = self
            .get_item(key_of(account_pk(account), idempotency_sk(key)))
            .await?;
        Ok(item
            .map(from_item::<IdempotencyItem>)
            .transpose()?
            .map(|i| i.record))
    }

    async fn get_key(&self, account: &str, id: &str) -> StoreResult<Option<ApiKey>> {
        Ok(self.get_key_item(account, id).await?.map(|i| i.key))
    }

    async fn find_key_by_hash(&self, hash: &KeyHash) -> StoreResult<Option<ApiKey>> {
        let item = self.get_item(key_of(hash_pk(hash), HASH_SK)).await?;
        Ok(item.map(from_item::<HashItem>).transpose()?.map(|i| i.key))
    }

    async fn update_key(
        &self,
        key: &ApiKey,
        expected_version: u64,
        new_hash: Option<&KeyHash>,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let current = self
            .get_key_item(&key.account, &key.id)
            .await?
            .ok_or(StoreError::NotFound)?;
        if current.key.version != expected_version {
            return Err(StoreError::VersionConflict);
        }
        let old_hash = KeyHash::from_hex(&current.hash)
            .ok_or_else(|| StoreError::Backend("corrupt hash on a key item".into()))?;
        let hash = new_hash.copied().unwrap_or(old_hash);
        let mut items = vec![self.update_except(
            to_item(&KeyItem::new(key, &hash))?,
            &USAGE_ATTRIBUTES,
            expected_version,
        )?];
        let mut new_name_at = None;
        if new_hash.is_some() {
            items.push(self.delete(key_of(hash_pk(&old_hash), HASH_SK), None)?);
            items.push(self.put(
                to_item(&HashItem::new(key, &hash))?,
                Some("attribute_not_exists(pk)"),
            )?);
        } else {
            items.push(self.put(to_item(&HashItem::new(key, &hash))?, None)?);
        }
        let renamed = current.key.name != key.name;
        if renamed {
            items.push(self.delete(
                key_of(account_pk(&key.account), name_sk(&current.key.name)),
                None,
            )?);
            new_name_at = Some(items.len());
            items.push(self.put(
                to_item(&NameItem::new(key))?,
                Some("attribute_not_exists(pk)"),
            )?);
        }
        let before: BTreeSet<&String> = current.key.workspaces.iter().collect();
        let after: BTreeSet<&String> = key.workspaces.iter().collect();
        for ws in before.difference(&after) {
            items.push(self.delete(
                key_of(account_pk(&key.account), member_sk(ws, &key.id)),
                None,
            )?);
        }
        for ws in &after {
            if renamed || !before.contains(ws) {
                items.push(self.put(to_item(&MemberItem::new(key, ws))?, None)?);
            }
        }
        items.push(self.change(&old_hash)?);
        items.push(self.put(to_item(&AuditItem::new(audit))?, None)?);
        match self.transact(items).await? {
            None => Ok(()),
            Some(0) => Err(StoreError::VersionConflict),
            Some(i) if Some(i) == new_name_at => Err(StoreError::NameTaken(key.name.clone())),
            Some(_) => Err(StoreError::Backend(
                "the new lookup hash is already in use".into(),
            )),
        }
    }

    async fn delete_key(
        &self,
        account: &str,
        id: &str,
        expected_version: Option<u64>,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let current = self
            .get_key_item(account, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        if expected_version.is_some_and(|v| v != current.key.version) {
            return Err(StoreError::VersionConflict);
        }
        let hash = KeyHash::from_hex(&current.hash)
            .ok_or_else(|| StoreError::Backend("corrupt hash on a key item".into()))?;
        let mut items = vec![
            self.delete(
                key_of(account_pk(account), key_sk(id)),
                Some(current.key.version),
            )?,
            self.delete(key_of(hash_pk(&hash), HASH_SK), None)?,
            self.delete(
                key_of(account_pk(account), name_sk(&current.key.name)),
                None,
            )?,
        ];
        for ws in &current.key.workspaces {
            items.push(self.delete(key_of(account_pk(account), member_sk(ws, id)), None)?);
        }
        items.push(self.change(&hash)?);
        items.push(self.put(to_item(&AuditItem::new(audit))?, None)?);
        match self.transact(items).await? {
            None => Ok(()),
            Some(_) => Err(StoreError::VersionConflict),
        }
    }

    async fn list_keys(&self, account: &str, query: &KeyQuery) -> StoreResult<Page<ApiKey>> {
        let after = match &query.cursor {
            Some(c) => cursor::decode(c, 1)?.pop(),
            None => None,
        };
        let limit = page_limit(query.limit);
        // Read in name order until one more admitted key than the page holds is seen (so the
        // cursor is only given when there is more) or the index is exhausted.
        let mut admitted: Vec<ApiKey> = Vec::with_capacity(limit + 1);
        let mut start = None;
        loop {
            let want = i32::try_from(limit + 1 - admitted.len())
                .unwrap_or(i32::MAX)
                .max(1);
            let (keys, next) = self
                .query_page(account, query, after.as_deref(), start, want)
                .await?;
            admitted.extend(
                keys.into_iter()
                    .map(|k| k.as_of(query.now))
                    .filter(|k| query.admits(k)),
            );
            if admitted.len() > limit || next.is_none() {
                break;
            }
            start = next;
        }
        let more = admitted.len() > limit;
        admitted.truncate(limit);
        let next_cursor = if more {
            admitted.last().map(|k| cursor::encode(&[&k.name]))
        } else {
            None
        };
        Ok(Page {
            items: admitted,
            next_cursor,
        })
    }

    async fn insert_group(&self, group: &Group, audit: &AuditEntry) -> StoreResult<()> {
        const NOT_EXISTS: Option<&str> = Some("attribute_not_exists(pk)");
        let claim = GroupNameItem {
            pk: account_pk(&group.account),
            sk: group_name_sk(&group.name),
            group_id: group.id.clone(),
        };
        let items = vec![
            self.put(to_item(&GroupItem::new(group))?, NOT_EXISTS)?,
            self.put(to_item(&claim)?, NOT_EXISTS)?,
            self.put(to_item(&AuditItem::new(audit))?, None)?,
        ];
        match self.transact(items).await? {
            None => Ok(()),
            Some(1) => Err(StoreError::NameTaken(group.name.clone())),
            Some(_) => Err(StoreError::AlreadyExists),
        }
    }

    async fn get_group(&self, account: &str, id: &str) -> StoreResult<Option<Group>> {
        let item = self
            .get_item(key_of(account_pk(account), group_sk(id)))
            .await?;
        Ok(item
            .map(from_item::<GroupItem>)
            .transpose()?
            .map(|g| g.group))
    }

    async fn list_groups(
        &self,
        account: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<Group>> {
        let after = cursor
            .map(|c| cursor::decode(c, 1))
            .transpose()?
            .and_then(|mut p| p.pop());
        let limit = page_limit(limit);
        let (items, more) = self
            .query_prefix(
                account_pk(account),
                GROUP_PREFIX,
                after.map(|id| group_sk(&id)),
                Some(limit),
            )
            .await?;
        let groups: Vec<Group> = items
            .into_iter()
            .map(|i| from_item::<GroupItem>(i).map(|g| g.group))
            .collect::<StoreResult<_>>()?;
        let next_cursor = if more {
            groups.last().map(|g| cursor::encode(&[&g.id]))
        } else {
            None
        };
        Ok(Page {
            items: groups,
            next_cursor,
        })
    }

    async fn delete_group(&self, account: &str, id: &str, audit: &AuditEntry) -> StoreResult<()> {
        let group = self
            .get_group(account, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let items = vec![
            self.delete_if(key_of(account_pk(account), group_sk(id)), None, true)?,
            self.delete(
                key_of(account_pk(account), group_name_sk(&group.name)),
                None,
            )?,
            self.put(to_item(&AuditItem::new(audit))?, None)?,
        ];
        match self.transact(items).await? {
            None => Ok(()),
            Some(_) => Err(StoreError::NotFound),
        }
    }

    async fn put_preset(
        &self,
        account: &str,
        preset: &Preset,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let item = PresetItem {
            pk: account_pk(account),
            sk: preset_sk(&preset.name),
            preset: preset.clone(),
        };
        let items = vec![
            self.put(to_item(&item)?, None)?,
            self.put(to_item(&AuditItem::new(audit))?, None)?,
        ];
        match self.transact(items).await? {
            None => Ok(()),
            Some(_) => Err(StoreError::Backend("writing a preset was refused".into())),
        }
    }

    async fn list_presets(&self, account: &str) -> StoreResult<Vec<Preset>> {
        let (items, _) = self
            .query_prefix(account_pk(account), PRESET_PREFIX, None, None)
            .await?;
        items
            .into_iter()
            .map(|i| from_item::<PresetItem>(i).map(|p| p.preset))
            .collect()
    }

    async fn delete_preset(
        &self,
        account: &str,
        name: &str,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let items = vec![
            self.delete_if(key_of(account_pk(account), preset_sk(name)), None, true)?,
            self.put(to_item(&AuditItem::new(audit))?, None)?,
        ];
        match self.transact(items).await? {
            None => Ok(()),
            Some(_) => Err(StoreError::NotFound),
        }
    }

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
                Err(e) => return Err(backend("recording usage", e)),
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
                    .map_err(|e| backend("counting usage", e))?;
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
                .map_err(|e| backend("reading usage", e))?;
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
                .map_err(|e| backend("reading key changes", e))?;
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

    async fn list_audit(
        &self,
        account: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<AuditEntry>> {
        let before = cursor.map(cursor::decode_audit).transpose()?;
        let limit = page_limit(limit);
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_values(":pk", s(audit_pk(account)))
            .scan_index_forward(false)
            .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX));
        q = match &before {
            Some((at, id)) => q
                .key_condition_expression("pk = :pk AND sk < :before")
                .expression_attribute_values(":before", s(audit_sk(*at, id))),
            None => q.key_condition_expression("pk = :pk"),
        };
        bump(&self.calls.query);
        let out = q
            .send()
            .await
            .map_err(|e| backend("listing audit entries", e))?;
        let mut entries: Vec<AuditEntry> = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|i| from_item::<AuditItem>(i).map(|a| a.entry))
            .collect::<StoreResult<_>>()?;
        let more = entries.len() > limit;
        entries.truncate(limit);
        let next_cursor = if more {
            entries
                .last()
                .map(|e| cursor::encode(&[&e.at.timestamp_micros().to_string(), &e.id]))
        } else {
            None
        };
        Ok(Page {
            items: entries,
            next_cursor,
        })
    }
}
