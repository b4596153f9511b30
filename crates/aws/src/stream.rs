//! The aggregator's edge: DynamoDB Streams batches in, usage records out to the
//! [`Aggregator`], partial batch failures back (`ReportBatchItemFailures`).
//!
//! Only `INSERT`s of usage records matter (the event source mapping filters on them too; see
//! docs/usage-and-limits.md): every other change of the table (keys, leases, the removal of an
//! applied record) is skipped as done. A record that cannot be read fails alone, by its
//! sequence number, so Lambda retries from it and the rest of the batch is not held back; what
//! is redelivered after it was applied is applied once ([`Aggregator::apply_batch`]).

use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use keyward_service::aggregation::{Aggregator, BatchReport, Delivered};
use keyward_store::dynamodb::items::{PK, USAGE_RECORD_ATTRIBUTE, USAGE_RECORD_PK_PREFIX};
use keyward_store::dynamodb::usage_record;
use serde_dynamo::AttributeValue;

/// The usage record a stream record carries, if it carries one: `Some(Err)` for an insert of a
/// usage record that cannot be read.
fn usage_record(r: &EventRecord) -> Option<Delivered> {
    let is_record = matches!(
        r.change.keys.get(PK),
        Some(AttributeValue::S(pk)) if pk.starts_with(USAGE_RECORD_PK_PREFIX)
    );
    if r.event_name != "INSERT" || !is_record {
        return None;
    }
    let id = r
        .change
        .sequence_number
        .clone()
        .unwrap_or_else(|| r.event_id.clone());
    let record = match r.change.new_image.get(USAGE_RECORD_ATTRIBUTE) {
        Some(AttributeValue::S(json)) => {
            usage_record::decode(json).map_err(|e| format!("not a usage record: {e}"))
        }
        Some(_) => Err(format!("'{USAGE_RECORD_ATTRIBUTE}' is not a string")),
        None => Err(format!(
            "no '{USAGE_RECORD_ATTRIBUTE}' in the new image (the stream must carry new images)"
        )),
    };
    Some(Delivered { id, record })
}

/// The usage records of a batch, in stream order.
pub fn delivered(event: &Event) -> Vec<Delivered> {
    event.records.iter().filter_map(usage_record).collect()
}

/// Applies a batch and answers which items failed.
pub async fn handle(aggregator: &Aggregator, event: Event) -> DynamoDbEventResponse {
    let seen = event.records.len();
    let report = aggregator.apply_batch(delivered(&event)).await;
    let BatchReport {
        applied,
        repeated,
        ref failed,
    } = report;
    tracing::info!(
        seen,
        applied,
        repeated,
        failed = failed.len(),
        "usage batch"
    );
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures = report
        .failed
        .into_iter()
        .map(|id| {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(id);
            failure
        })
        .collect();
    response
}
