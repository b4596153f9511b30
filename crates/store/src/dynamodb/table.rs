//! Creating the table: on-demand billing, streams on (for usage aggregation), TTL on.
//! Idempotent: an existing table is checked and left as it is.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType, TableStatus,
    TimeToLiveSpecification, TimeToLiveStatus,
};

use super::items::{GSI1, GSI1_PK, GSI1_SK, GSI2, GSI2_PK, GSI2_SK, PK, SK, TTL};
use crate::error::{StoreError, StoreResult};

/// What `init` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitOutcome {
    Created,
    AlreadyExisted,
}

fn backend(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("{what}: {e}"))
}

fn key(name: &str, kind: KeyType) -> StoreResult<KeySchemaElement> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(|e| backend("key schema", e))
}

fn string_attr(name: &str) -> StoreResult<AttributeDefinition> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|e| backend("attribute definition", e))
}

fn index(
    name: &str,
    pk: &str,
    sk: &str,
    projection: ProjectionType,
) -> StoreResult<GlobalSecondaryIndex> {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key(pk, KeyType::Hash)?)
        .key_schema(key(sk, KeyType::Range)?)
        .projection(Projection::builder().projection_type(projection).build())
        .build()
        .map_err(|e| backend("index", e))
}

/// Creates the table if it does not exist, waits until it is active, and turns TTL on.
pub async fn init(client: &Client, table: &str) -> StoreResult<InitOutcome> {
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(PK, KeyType::Hash)?)
        .key_schema(key(SK, KeyType::Range)?)
        .attribute_definitions(string_attr(PK)?)
        .attribute_definitions(string_attr(SK)?)
        .attribute_definitions(string_attr(GSI1_PK)?)
        .attribute_definitions(string_attr(GSI1_SK)?)
        .attribute_definitions(string_attr(GSI2_PK)?)
        .attribute_definitions(string_attr(GSI2_SK)?)
        .global_secondary_indexes(index(GSI1, GSI1_PK, GSI1_SK, ProjectionType::All)?)
        .global_secondary_indexes(index(GSI2, GSI2_PK, GSI2_SK, ProjectionType::KeysOnly)?)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .map_err(|e| backend("stream specification", e))?,
        )
        .send()
        .await;
    let outcome = match created {
        Ok(_) => InitOutcome::Created,
        Err(e) if e.code() == Some("ResourceInUseException") => InitOutcome::AlreadyExisted,
        Err(e) => {
            return Err(backend(
                "creating the table",
                aws_sdk_dynamodb::error::DisplayErrorContext(e),
            ));
        }
    };
    wait_active(client, table).await?;
    check(client, table).await?;
    enable_ttl(client, table).await?;
    Ok(outcome)
}

async fn wait_active(client: &Client, table: &str) -> StoreResult<()> {
    for _ in 0..120 {
        let described = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| {
                backend(
                    "describing the table",
                    aws_sdk_dynamodb::error::DisplayErrorContext(e),
                )
            })?;
        if described.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(StoreError::Backend(format!(
        "table {table} did not become active within 60 s"
    )))
}

/// An existing table must have keyward's keys and indexes, or every later call would fail
/// in a confusing way.
pub async fn check(client: &Client, table: &str) -> StoreResult<()> {
    let described = match client.describe_table().table_name(table).send().await {
        Ok(d) => d,
        Err(e) if e.code() == Some("ResourceNotFoundException") => {
            return Err(StoreError::Backend(format!(
                "table {table} does not exist; create it with `keyward store init --store dynamodb://{table}`"
            )));
        }
        Err(e) => {
            return Err(backend(
                "describing the table",
                aws_sdk_dynamodb::error::DisplayErrorContext(e),
            ));
        }
    };
    let t = described.table();
    let keys: Vec<&str> = t
        .map(|t| t.key_schema().iter().map(|k| k.attribute_name()).collect())
        .unwrap_or_default();
    let indexes: Vec<&str> = t
        .map(|t| {
            t.global_secondary_indexes()
                .iter()
                .filter_map(|i| i.index_name())
                .collect()
        })
        .unwrap_or_default();
    if keys != [PK, SK] || !indexes.contains(&GSI1) || !indexes.contains(&GSI2) {
        return Err(StoreError::Backend(format!(
            "table {table} exists but is not a keyward table (keys {keys:?}, indexes {indexes:?}); choose another name"
        )));
    }
    Ok(())
}

async fn enable_ttl(client: &Client, table: &str) -> StoreResult<()> {
    let current = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|e| {
            backend(
                "describing TTL",
                aws_sdk_dynamodb::error::DisplayErrorContext(e),
            )
        })?;
    let status = current
        .time_to_live_description()
        .and_then(|d| d.time_to_live_status());
    if matches!(
        status,
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
    ) {
        return Ok(());
    }
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(TTL)
                .build()
                .map_err(|e| backend("TTL specification", e))?,
        )
        .send()
        .await
        .map_err(|e| {
            backend(
                "enabling TTL",
                aws_sdk_dynamodb::error::DisplayErrorContext(e),
            )
        })?;
    Ok(())
}
