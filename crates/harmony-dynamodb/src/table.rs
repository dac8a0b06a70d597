//! The table: created on first start (on demand capacity) unless the settings refuse, and
//! waited for until it is active.

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
};
use aws_sdk_dynamodb::Client;
use harmony_core::ports::StoreError;

use crate::unavailable;

/// How long a table may take to become active.
const ACTIVE_WITHIN: Duration = Duration::from_secs(60);

fn bad(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("dynamodb table definition: {e}"))
}

/// Makes sure `table` exists and is active, creating it when `create` allows.
pub(crate) async fn ensure(client: &Client, table: &str, create: bool) -> Result<(), StoreError> {
    match client.describe_table().table_name(table).send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            if !create {
                return Err(StoreError::Unavailable(format!(
                    "the DynamoDB table {table} does not exist, and history.dynamodb.create_table \
                     is false: create it (decision record 0005 has its definition) or allow it"
                )));
            }
            tracing::info!(table, "creating the DynamoDB message table");
            let key = |name: &str, kind: KeyType| {
                KeySchemaElement::builder()
                    .attribute_name(name)
                    .key_type(kind)
                    .build()
                    .map_err(bad)
            };
            let attribute = |name: &str, kind: ScalarAttributeType| {
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(kind)
                    .build()
                    .map_err(bad)
            };
            let created = client
                .create_table()
                .table_name(table)
                .attribute_definitions(attribute("c", ScalarAttributeType::S)?)
                .attribute_definitions(attribute("s", ScalarAttributeType::N)?)
                .key_schema(key("c", KeyType::Hash)?)
                .key_schema(key("s", KeyType::Range)?)
                .billing_mode(BillingMode::PayPerRequest)
                .send()
                .await;
            match created {
                Ok(_) => {}
                // Another node created it meanwhile.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_in_use_exception()) => {}
                Err(e) => return Err(unavailable(e)),
            }
        }
        Err(e) => return Err(unavailable(e)),
    }
    let deadline = tokio::time::Instant::now() + ACTIVE_WITHIN;
    loop {
        let described = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(unavailable)?;
        let status = described.table().and_then(|t| t.table_status());
        if status == Some(&TableStatus::Active) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(StoreError::Unavailable(format!(
                "the DynamoDB table {table} is not active after {ACTIVE_WITHIN:?} ({status:?})"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
