//! The outbox relay (see `shared::outbox`): the table's DynamoDB Stream invokes it with new
//! and changed items; every outbox item among them is sent to the notification queue and
//! then deleted. An item already gone was relayed by an earlier delivery of the same record
//! (or by the `outbox` job) and is skipped, so a redelivered batch sends nothing twice (and
//! the notifier would send one email per id anyway). A record that fails is reported
//! (`ReportBatchItemFailures`), so the stream retries from it.

use std::collections::HashMap;

use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_dynamodb::types::AttributeValue;
use shared::outbox::{self, Queue};
use shared::store::dynamo::item_from_attrs;
use shared::store::{Item, Store, StoreError};

/// The outbox item a record carries, if it carries one.
fn outbox_item(record: &EventRecord) -> Result<Option<Item>, StoreError> {
    if !matches!(record.event_name.as_str(), "INSERT" | "MODIFY") {
        return Ok(None);
    }
    let attrs: HashMap<String, AttributeValue> = record.change.new_image.clone().into();
    match attrs.get("pk") {
        Some(AttributeValue::S(pk)) if outbox::is_outbox_key(pk) => item_from_attrs(attrs).map(Some),
        _ => Ok(None),
    }
}

/// Relays one record; `false` when it must be retried.
async fn relay_record(store: &dyn Store, queue: &dyn Queue, record: &EventRecord) -> bool {
    let item = match outbox_item(record) {
        Ok(Some(item)) => item,
        Ok(None) => return true,
        Err(e) => {
            // An outbox item no relay can read; retrying would not help. Logged for a person.
            tracing::error!(event = %record.event_id, error = %e, "unreadable outbox record skipped");
            return true;
        }
    };
    match store.get(&item.pk, &item.sk).await {
        Ok(None) => return true,
        Ok(Some(_)) => {}
        Err(e) => {
            tracing::warn!(pk = %item.pk, error = %e, "outbox item not read; retried");
            return false;
        }
    }
    outbox::relay(store, queue, std::slice::from_ref(&item)).await == 1
}

/// The Lambda handler.
pub async fn handle(store: &dyn Store, queue: &dyn Queue, event: Event) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    for record in &event.records {
        if !relay_record(store, queue, record).await {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = record.change.sequence_number.clone();
            response.batch_item_failures.push(failure);
            // The stream retries from the first failure; later records come again with it.
            break;
        }
    }
    response
}
