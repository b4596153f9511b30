//! The DynamoDB adapter: one table, transactions for every multi-item change, one `GetItem`
//! for verification.
//!
//! - [`items`]: the table layout and item shapes.
//! - [`usage_record`]: a usage record as its item holds it (compact JSON), and the form before.
//! - [`table`]: creating the table (`keyward store init`).
//! - [`upgrade`]: bringing a table written by an older keyward up to date (`keyward store
//!   init`): name claims under folded names, and none held by revoked keys.
//! - this file: the store, its request counters, and the building blocks every concern uses
//!   (conditional puts, updates and deletes, transactions with retry, reads).
//! - one file per port trait: `accounts`, `keys` (with idempotency records and the index
//!   listing), `groups`, `presets`, `usage`, `leases`, `changes` (the change feed, and the entry key edits
//!   add to their transaction) and `audit`.
//!
//! Writes that touch several items (record, hash copy, name claim, memberships, audit entry)
//! are one `TransactWriteItems`, guarded by conditions: the name claim must not exist, the
//! record must still be at the expected version, a released claim must still be the key's.
//! Listing reads a GSI, never `Scan`.

pub mod items;
pub mod table;
pub mod upgrade;
pub mod usage_record;

mod accounts;
mod audit;
mod changes;
mod groups;
mod keys;
mod leases;
mod presets;
mod totals;
mod usage;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, TransactWriteItem, Update,
};

use self::items::*;
use crate::error::{StoreError, StoreResult};

pub use table::InitOutcome;
pub use upgrade::NameUpgrade;

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
    /// Only the upgrade of `keyward store init` scans; nothing a request does.
    pub scan: AtomicU64,
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
    pub scan: u64,
}

impl CallCounts {
    pub fn reads(&self) -> u64 {
        self.get_item + self.query + self.batch_get_item + self.scan
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

/// A request that could not be built: a bug on this side.
fn build_error<E: std::error::Error + 'static>(what: &str, e: E) -> StoreError {
    StoreError::Backend(format!("{what}: {}", DisplayErrorContext(e)))
}

/// A request DynamoDB did not answer: unavailable when it may succeed later (a timeout, no
/// connection, throttling, a server error), a backend failure otherwise.
fn request_error<E, R>(what: &str, e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let transient = match &e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(s) => matches!(
            s.err().code(),
            Some(
                "ThrottlingException"
                    | "ProvisionedThroughputExceededException"
                    | "RequestLimitExceeded"
                    | "InternalServerError"
                    | "ServiceUnavailable"
            )
        ),
        _ => false,
    };
    let message = format!("{what}: {}", DisplayErrorContext(&e));
    if transient {
        StoreError::Unavailable(message)
    } else {
        StoreError::Backend(message)
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

impl DynamoStore {
    /// The store on `table`, through `client` (built by the process from its one AWS
    /// configuration; no request is sent until the first call).
    pub fn new(client: Client, table: &str) -> Self {
        Self {
            client,
            table: table.to_owned(),
            calls: Arc::default(),
        }
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
            scan: c.scan.load(Ordering::Relaxed),
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
            .map_err(|e| build_error("building a put", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Sets every attribute of `item` but its keys and `skip`, and removes each attribute of
    /// `optional` that `item` lacks (a field serialised only when set, such as a previous
    /// secret whose grace ended), if the stored version is still `expected`: an edit that
    /// leaves usage counters to
    /// [`UsageStore::apply_usage`](crate::port::UsageStore::apply_usage).
    fn update_replacing(
        &self,
        item: Item,
        skip: &[&str],
        optional: &[&str],
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
        let removes: Vec<&str> = optional
            .iter()
            .copied()
            .filter(|name| !item.contains_key(*name))
            .collect();
        let fields = item
            .into_iter()
            .filter(|(k, _)| k != PK && k != SK && !skip.contains(&k.as_str()));
        for (i, (name, value)) in fields.enumerate() {
            sets.push(format!("#a{i} = :a{i}"));
            b = b
                .expression_attribute_names(format!("#a{i}"), name)
                .expression_attribute_values(format!(":a{i}"), value);
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            let names: Vec<String> = (0..removes.len()).map(|i| format!("#r{i}")).collect();
            for (i, name) in removes.iter().enumerate() {
                b = b.expression_attribute_names(format!("#r{i}"), *name);
            }
            expression.push_str(&format!(" REMOVE {}", names.join(", ")));
        }
        let update = b
            .update_expression(expression)
            .build()
            .map_err(|e| build_error("building an update", e))?;
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
        let delete = b.build().map_err(|e| build_error("building a delete", e))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// Deletes the name claim `sk` of `account` unless another key than `key_id` holds it (an
    /// absent claim is no failure): a release that can never take a name from its new owner.
    fn release_claim(
        &self,
        account: &str,
        sk: String,
        key_id: &str,
    ) -> StoreResult<TransactWriteItem> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key_of(account_pk(account), sk)))
            .condition_expression("attribute_not_exists(pk) OR #owner = :owner")
            .expression_attribute_names("#owner", CLAIM_KEY_ID)
            .expression_attribute_values(":owner", s(key_id))
            .build()
            .map_err(|e| build_error("building a delete", e))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// Runs a transaction, retrying when a concurrent transaction got in the way. Answers the
    /// index of the first item whose condition failed, if the transaction was refused so.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> StoreResult<Option<usize>> {
        Ok(self.transact_failures(items).await?.first().copied())
    }

    /// Runs a transaction like [`Self::transact`], answering the index of every item whose
    /// condition failed (none: it was written).
    async fn transact_failures(&self, items: Vec<TransactWriteItem>) -> StoreResult<Vec<usize>> {
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
                Ok(_) => return Ok(Vec::new()),
                Err(e) => e,
            };
            match refusal(&err, attempt) {
                Refusal::Conditions(failed) => return Ok(failed),
                Refusal::Retry(wait) if attempt < TRANSACTION_ATTEMPTS => {
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                }
                Refusal::Retry(_) | Refusal::Fail => {
                    return Err(request_error("writing a transaction", err));
                }
            }
        }
    }

    /// Items by primary key, read consistently, in no particular order (missing ones are
    /// skipped): `BatchGetItem` in chunks of 100, asking again for what it leaves unprocessed.
    pub(super) async fn batch_get(&self, keys: Vec<Item>, what: &str) -> StoreResult<Vec<Item>> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let mut pending = chunk.to_vec();
            let mut rounds = 0;
            while !pending.is_empty() {
                rounds += 1;
                if rounds > 10 {
                    return Err(StoreError::Backend(format!(
                        "a batch read kept leaving {what} unprocessed"
                    )));
                }
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| build_error("building a batch read", e))?;
                bump(&self.calls.batch_get_item);
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| request_error(&format!("reading {what}"), e))?;
                found.extend(
                    out.responses
                        .unwrap_or_default()
                        .remove(&self.table)
                        .unwrap_or_default(),
                );
                if let Some(mut rest) = out.unprocessed_keys
                    && let Some(r) = rest.remove(&self.table)
                {
                    pending = r.keys;
                    tokio::time::sleep(Duration::from_millis(20 * rounds)).await;
                }
            }
        }
        Ok(found)
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
            .map_err(|e| request_error("reading an item", e))?;
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
            let out = q.send().await.map_err(|e| request_error("querying", e))?;
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
}

/// What a refused transaction calls for.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// These items' conditions failed: the caller decides what that means.
    Conditions(Vec<usize>),
    /// Nothing was written and asking again may succeed, after this wait.
    Retry(Duration),
    /// Nothing to do but report it.
    Fail,
}

/// Reads a refused `TransactWriteItems` (attempt `attempt`, from 1).
fn refusal(err: &SdkError<TransactWriteItemsError>, attempt: u32) -> Refusal {
    if let SdkError::ServiceError(service) = err
        && let TransactWriteItemsError::TransactionCanceledException(cancel) = service.err()
    {
        let codes: Vec<&str> = cancel
            .cancellation_reasons()
            .iter()
            .map(|r| r.code().unwrap_or("None"))
            .collect();
        let failed: Vec<usize> = (0..codes.len())
            .filter(|i| codes[*i] == "ConditionalCheckFailed")
            .collect();
        if !failed.is_empty() {
            return Refusal::Conditions(failed);
        }
        if codes.contains(&"TransactionConflict") {
            let jitter = u64::from(getrandom_u8()) % 20;
            return Refusal::Retry(Duration::from_millis(10 * u64::from(attempt) + jitter));
        }
        return Refusal::Fail;
    }
    match err.code() {
        Some("TransactionInProgressException") => {
            Refusal::Retry(Duration::from_millis(20 * u64::from(attempt)))
        }
        // The SDK's client request token taken as one used before with other items (DynamoDB
        // Local says so now and then for a fresh token: aws/aws-sdk#413). Nothing was
        // written; a new call asks again under a new token.
        Some("IdempotentParameterMismatchException") => Refusal::Retry(Duration::ZERO),
        _ => Refusal::Fail,
    }
}

fn getrandom_u8() -> u8 {
    keyward_core::token::random_base62(1)
        .ok()
        .and_then(|s| s.bytes().next())
        .unwrap_or(7)
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::config::http::HttpResponse;
    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::types::CancellationReason;
    use aws_sdk_dynamodb::types::error::{
        TransactionCanceledException, TransactionInProgressException,
    };
    use aws_smithy_types::body::SdkBody;

    use super::*;

    fn refused(e: TransactWriteItemsError) -> SdkError<TransactWriteItemsError> {
        let status = 400.try_into().expect("a status");
        SdkError::service_error(e, HttpResponse::new(status, SdkBody::empty()))
    }

    /// A cancelled transaction with these reasons, one per item, as DynamoDB reports it.
    fn cancelled(reasons: &[&str]) -> SdkError<TransactWriteItemsError> {
        let reasons = reasons
            .iter()
            .map(|code| CancellationReason::builder().code(*code).build())
            .collect();
        refused(TransactWriteItemsError::TransactionCanceledException(
            TransactionCanceledException::builder()
                .set_cancellation_reasons(Some(reasons))
                .meta(
                    ErrorMetadata::builder()
                        .code("TransactionCanceledException")
                        .build(),
                )
                .build(),
        ))
    }

    #[test]
    fn failed_conditions_are_named_by_item_and_never_retried() {
        let err = cancelled(&["None", "ConditionalCheckFailed", "TransactionConflict"]);
        assert_eq!(refusal(&err, 1), Refusal::Conditions(vec![1]));
    }

    #[test]
    fn conflicts_and_transactions_in_progress_are_retried_after_a_growing_wait() {
        let Refusal::Retry(first) = refusal(&cancelled(&["None", "TransactionConflict"]), 1) else {
            panic!("a conflict is retried");
        };
        assert!(first >= Duration::from_millis(10) && first < Duration::from_millis(30));
        let in_progress = refused(TransactWriteItemsError::TransactionInProgressException(
            TransactionInProgressException::builder()
                .meta(
                    ErrorMetadata::builder()
                        .code("TransactionInProgressException")
                        .build(),
                )
                .build(),
        ));
        assert_eq!(
            refusal(&in_progress, 3),
            Refusal::Retry(Duration::from_millis(60))
        );
    }

    #[test]
    fn other_cancellations_and_errors_fail() {
        assert_eq!(
            refusal(&cancelled(&["None", "ValidationError"]), 1),
            Refusal::Fail
        );
        let throttled = refused(TransactWriteItemsError::generic(
            ErrorMetadata::builder().code("ThrottlingException").build(),
        ));
        assert_eq!(refusal(&throttled, 1), Refusal::Fail);
    }
}
