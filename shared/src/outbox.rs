//! The outbox port: domain changes that must notify someone enqueue a [`Notification`].
//!
//! In AWS the adapter puts it on SQS and the notifier function renders and sends it with SES;
//! under `make run` the in-process [`MemoryOutbox`] keeps it for a developer to inspect.
//! Each notification carries a deterministic `id` naming the business event (for example
//! `deal-17-paid`), so the sender can de-duplicate repeated deliveries.

use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ApiError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The business event, unique per email to send: the de-duplication key.
    pub id: String,
    /// Template name, e.g. `deal_state_changed`.
    pub template: String,
    /// Recipient email address.
    pub to: String,
    /// Template data.
    pub data: Value,
}

#[async_trait]
pub trait Outbox: Send + Sync + 'static {
    async fn enqueue(&self, n: Notification) -> Result<(), ApiError>;
}

/// In-process outbox for local runs and tests. It keeps one message per id, as the notifier
/// sends one email per id: what it lists is what would be sent.
#[derive(Default)]
pub struct MemoryOutbox {
    sent: Mutex<Vec<Notification>>,
}

impl MemoryOutbox {
    pub fn messages(&self) -> Vec<Notification> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait]
impl Outbox for MemoryOutbox {
    async fn enqueue(&self, n: Notification) -> Result<(), ApiError> {
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        if sent.iter().any(|m| m.id == n.id) {
            tracing::debug!(id = %n.id, "notification already queued");
        } else {
            tracing::info!(id = %n.id, template = %n.template, to = %n.to, "notification queued");
            sent.push(n);
        }
        Ok(())
    }
}
