//! The SQS adapter of the [`Queue`] port, chosen by [`crate::App::from_env`] when
//! `QUEUE_URL` is set. The message body is the [`Notification`] JSON; the notification id
//! travels as the `notification_id` string attribute as well (for tracing and for filters).
//! De-duplication is the notifier's job (SQS standard queues deliver at least once).

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::MessageAttributeValue;

use crate::error::ApiError;
use crate::outbox::{Notification, Queue};

/// The message attribute carrying the notification id.
pub const ID_ATTRIBUTE: &str = "notification_id";

#[derive(Clone)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
}

impl SqsQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        SqsQueue { client, queue_url: queue_url.into() }
    }

    /// A client from the environment (`AWS_ENDPOINT_URL`, `AWS_REGION`, credentials).
    pub async fn from_env(queue_url: impl Into<String>) -> Self {
        let conf = crate::aws::load();
        SqsQueue::new(Client::new(&conf), queue_url)
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, n: &Notification) -> Result<(), ApiError> {
        self.send_delayed(n, std::time::Duration::ZERO).await
    }

    async fn send_delayed(&self, n: &Notification, delay: std::time::Duration) -> Result<(), ApiError> {
        let body = serde_json::to_string(n).map_err(|e| ApiError::Internal(e.to_string()))?;
        let id = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(&n.id)
            .build()
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .message_attributes(ID_ATTRIBUTE, id)
            .delay_seconds(delay.min(crate::outbox::MAX_DELAY).as_secs() as i32)
            .send()
            .await
            .map_err(|e| {
                let text = DisplayErrorContext(&e).to_string();
                tracing::error!(id = %n.id, error = %text, "could not enqueue a notification");
                ApiError::Unavailable(text)
            })?;
        tracing::info!(id = %n.id, template = n.template(), "notification queued on SQS");
        Ok(())
    }
}
