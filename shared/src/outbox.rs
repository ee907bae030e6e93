//! The transactional outbox: an email is an item written in the same transaction as the
//! state change that causes it, and a relay moves it to the queue the notifier reads.
//!
//! - **Write.** Domain code adds [`op`] (one per [`Notification`]) to the transaction of its
//!   state change: `pk = outbox#<notification id>`, `sk = outbox`, listed in the index under
//!   `outbox#pending#<shard>` until relayed. So there is no state change without its email
//!   and no email without its state change. The same notification written again (a retried
//!   step) overwrites its item: one id, one email.
//! - **Relay.** In AWS a DynamoDB Stream on the table triggers the relay function
//!   (`functions/relay`) with each new outbox item; locally and in tests the store is wrapped
//!   by [`Relaying`], which relays right after the write succeeded. Either way the relay sends
//!   the notification to the [`Queue`] (SQS, or the in-process [`MemoryQueue`]) and then
//!   deletes the item (on its version). A relay that fails leaves the item for the next try:
//!   the stream retries it, and the `outbox` job ([`sweep`]) relays anything pending for over
//!   a minute. A notification relayed twice is sent once: the notifier claims each id.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::json;

pub use crate::mail::{Message, Notification};

use crate::error::{ApiError, ApiResult};
use crate::store::{Cond, Item, QueryOpts, Store, StoreError, WriteLayer, WriteOp};
use crate::{App, Tally};

const SK: &str = "outbox";
/// Index partitions of pending outbox items.
pub const SHARDS: u32 = 4;
/// How long an item is left to the relay of its own write before the sweep takes it.
const SWEEP_AFTER_SECS: i64 = 60;
/// A relayed item is deleted; one the relay never reached expires after this long anyway.
const TTL_DAYS: i64 = 14;

pub fn is_outbox_key(pk: &str) -> bool {
    pk.starts_with("outbox#")
}

fn shard(id: &str) -> u32 {
    id.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32)) % SHARDS
}

/// The write that puts `n` in the outbox (for the transaction of the change that causes it).
pub fn op(n: &Notification, at: DateTime<Utc>) -> ApiResult<WriteOp> {
    let data = json!({ "notification": n });
    let item = Item::new(format!("outbox#{}", n.id), SK, data.as_object().cloned().unwrap_or_default())
        .with_gsi1(
            format!("outbox#pending#{}", shard(&n.id)),
            format!("{}#{}", crate::payments::ts(at), n.id),
        )
        .with_ttl(Some((at + chrono::Duration::days(TTL_DAYS)).timestamp()));
    Ok(WriteOp::Put { item, cond: Cond::Always })
}

/// The outbox writes of several notifications.
pub fn ops(app: &App, notifications: &[Notification]) -> ApiResult<Vec<WriteOp>> {
    let at = app.clock.now();
    notifications.iter().map(|n| op(n, at)).collect()
}

/// Puts notifications in the outbox on their own (an email that changes no state: an
/// admin's resend).
pub async fn put(app: &App, notifications: &[Notification]) -> ApiResult<()> {
    let ops = ops(app, notifications)?;
    if !ops.is_empty() {
        app.store.transact(ops).await?;
    }
    Ok(())
}

/// The notification an outbox item holds.
pub fn decode(item: &Item) -> Result<Notification, StoreError> {
    let value = item.data.get("notification").cloned().unwrap_or_default();
    serde_json::from_value(value).map_err(|e| StoreError::Codec(format!("{}: {e}", item.pk)))
}

/// The queue port: where the relay puts notifications for the notifier.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    async fn send(&self, n: &Notification) -> Result<(), ApiError>;
    /// Sends `n` to be received no sooner than `delay` from now (at most 15 minutes, the
    /// SQS limit; a longer wait is several hops: see `webhooks`).
    async fn send_delayed(&self, n: &Notification, delay: std::time::Duration) -> Result<(), ApiError>;
}

/// The longest delay a queue message can have (SQS `DelaySeconds`).
pub const MAX_DELAY: std::time::Duration = std::time::Duration::from_secs(900);

/// In-process queue for local runs and tests. It records every send; [`messages`] lists one
/// per id, as the notifier would send them.
///
/// [`messages`]: MemoryQueue::messages
#[derive(Default)]
pub struct MemoryQueue {
    sent: Mutex<Vec<Notification>>,
    /// Delayed sends not yet taken: each with the delay asked for.
    delayed: Mutex<Vec<(Notification, std::time::Duration)>>,
}

impl MemoryQueue {
    /// Every email sent, oldest first: an id enqueued twice is here twice (the notifier would
    /// send it once). Webhook messages are [`MemoryQueue::webhooks`].
    pub fn messages(&self) -> Vec<Notification> {
        let sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        sent.iter().filter(|n| !matches!(n.message, Message::Webhook(_))).cloned().collect()
    }

    /// Every webhook message sent (not delayed), oldest first.
    pub fn webhooks(&self) -> Vec<Notification> {
        let sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        sent.iter().filter(|n| matches!(n.message, Message::Webhook(_))).cloned().collect()
    }

    /// What would be emailed: the first send of each id, oldest first (the notifier's
    /// de-duplication).
    pub fn distinct(&self) -> Vec<Notification> {
        let mut seen = std::collections::HashSet::new();
        self.messages().into_iter().filter(|n| seen.insert(n.id.clone())).collect()
    }

    /// How many times a notification id was put on the queue.
    pub fn sends(&self, id: &str) -> usize {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).iter().filter(|n| n.id == id).count()
    }

    /// Takes the delayed sends (a local dispatcher or a test delivers them, having waited).
    pub fn take_delayed(&self) -> Vec<(Notification, std::time::Duration)> {
        std::mem::take(&mut *self.delayed.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[async_trait]
impl Queue for MemoryQueue {
    async fn send(&self, n: &Notification) -> Result<(), ApiError> {
        tracing::info!(id = %n.id, template = n.template(), to = %n.to, "notification queued");
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).push(n.clone());
        Ok(())
    }

    async fn send_delayed(&self, n: &Notification, delay: std::time::Duration) -> Result<(), ApiError> {
        tracing::info!(id = %n.id, delay_s = delay.as_secs(), "notification queued with a delay");
        self.delayed.lock().unwrap_or_else(|p| p.into_inner()).push((n.clone(), delay.min(MAX_DELAY)));
        Ok(())
    }
}

/// Relays outbox items: each is sent to the queue, then deleted on its version (a newer
/// write of the same id stays for its own relay). Answers how many were sent; a failure
/// leaves the item for the next try.
pub async fn relay(store: &dyn Store, queue: &dyn Queue, items: &[Item]) -> usize {
    let mut sent = 0;
    for item in items {
        let n = match decode(item) {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(pk = %item.pk, error = %e, "unreadable outbox item left in place");
                continue;
            }
        };
        if let Err(e) = queue.send(&n).await {
            tracing::warn!(id = %n.id, error = %e, "outbox relay failed; retried later");
            continue;
        }
        sent += 1;
        match store.delete(&item.pk, &item.sk, Cond::Version(item.version)).await {
            Ok(()) | Err(StoreError::Conflict { .. }) => {}
            Err(e) => {
                tracing::warn!(id = %n.id, error = %e, "relayed outbox item not deleted; it may be sent again")
            }
        }
    }
    sent
}

/// The `outbox` job: relays items pending for over a minute (their own relay failed).
pub async fn sweep(app: &App) -> ApiResult<Tally> {
    let until = crate::payments::ts(app.clock.now() - chrono::Duration::seconds(SWEEP_AFTER_SECS));
    let mut tally = Tally::default();
    for s in 0..SHARDS {
        let opts = QueryOpts { sk_until: Some(format!("{until}#~")), ..Default::default() };
        let items = app.store.query_gsi1(&format!("outbox#pending#{s}"), opts).await?;
        tally.examined += items.len();
        tally.changed += relay(app.store.as_ref(), app.queue.as_ref(), &items).await;
    }
    Ok(tally)
}

/// A store that relays the outbox items of every successful write right away (local runs and
/// tests; in AWS the stream relay does it).
pub struct Relaying {
    inner: Arc<dyn Store>,
    queue: Arc<dyn Queue>,
}

impl Relaying {
    pub fn new(inner: Arc<dyn Store>, queue: Arc<dyn Queue>) -> Relaying {
        Relaying { inner, queue }
    }

    async fn relay_written(&self, items: Vec<Item>) {
        if !items.is_empty() {
            relay(self.inner.as_ref(), self.queue.as_ref(), &items).await;
        }
    }
}

/// A copy of `item` to relay when it is an outbox message (nothing else is copied).
fn outbox_copy(item: &Item) -> Option<Item> {
    is_outbox_key(&item.pk).then(|| item.clone())
}

fn outbox_items(ops: &[WriteOp]) -> Vec<Item> {
    ops.iter()
        .filter_map(|op| match op {
            WriteOp::Put { item, .. } => outbox_copy(item),
            _ => None,
        })
        .collect()
}

#[async_trait]
impl WriteLayer for Relaying {
    fn inner(&self) -> &dyn Store {
        self.inner.as_ref()
    }
    async fn put(&self, item: Item, cond: Cond) -> Result<(), StoreError> {
        let written: Vec<Item> = outbox_copy(&item).into_iter().collect();
        self.inner.put(item, cond).await?;
        self.relay_written(written).await;
        Ok(())
    }
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        let written = outbox_items(&ops);
        self.inner.transact(ops).await?;
        self.relay_written(written).await;
        Ok(())
    }
}
