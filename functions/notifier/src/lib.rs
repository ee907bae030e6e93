//! The notifier: an SQS-triggered Lambda that renders each [`Notification`] and sends it
//! through SES, once per business event.
//!
//! - **Batch**: every record is handled on its own; failed records are listed in
//!   `batchItemFailures` (partial batch response, `ReportBatchItemFailures` in the event source
//!   mapping), so SQS redelivers only those. After `maxReceiveCount` receives SQS moves a
//!   message to the dead-letter queue, which has an alarm.
//! - **Poison messages**: a body that is not a notification, an unknown template, a bad
//!   recipient or data a template cannot use fail before anything is claimed or sent; they are
//!   reported as failures every time and so end in the DLQ.
//! - **De-duplication** (the store, DynamoDB in AWS): before sending, the notifier claims the
//!   notification id with a conditional create of `pk = "mail#<id>"` (state `sending`); after
//!   SES accepts the email it marks the claim `sent`. A delivery that finds `sent` skips the
//!   message (success, no email). A delivery that finds `sending` (another delivery is sending
//!   right now, or one died mid-send) fails and is retried later.
//! - **Trade-off: at most once.** When SES rejects the request outright (a service error or a
//!   connection that never reached SES) the claim is released and the message is retried:
//!   nothing was sent. When the outcome is unknown (a timeout after the request left, a crash
//!   between the claim and the mark) the claim stays `sending`: redeliveries fail, the message
//!   ends in the DLQ, and the DLQ alarm asks a person to look. We never send twice; the rare
//!   unknown case is surfaced rather than guessed. Claims expire (DynamoDB TTL) after 15 days,
//!   longer than SQS keeps a message (14 days at most).

pub mod render;
#[cfg(feature = "ses")]
mod ses;

use std::sync::Arc;

use async_trait::async_trait;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use serde_json::json;
use shared::Clock;
use shared::mail::Notification;
use shared::store::{Cond, Item, Store, StoreError};

pub use render::{Email, RenderError, Renderer};
#[cfg(feature = "ses")]
pub use ses::SesMailer;

/// How long a claim is kept (seconds): longer than SQS can keep a message.
pub const CLAIM_TTL_SECS: i64 = 15 * 24 * 3600;

/// Why an email was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// SES refused it or was never reached: nothing was sent, a retry is safe.
    #[error("not sent: {0}")]
    NotSent(String),
    /// The request may have reached SES: it may or may not have been sent.
    #[error("outcome unknown: {0}")]
    Unknown(String),
}

/// The email sending port.
#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    async fn send(&self, email: &Email) -> Result<(), SendError>;

    /// Makes what a first send needs and can make before it has an email (SES's HTTP client
    /// with its trusted roots). Nothing by default.
    fn prepare(&self) {}
}

/// The MIME message for an email.
pub fn mime(from: &str, email: &Email) -> Result<Vec<u8>, String> {
    let local: String = email
        .id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' })
        .collect();
    let mut msg = mail_builder::MessageBuilder::new()
        .from(from)
        .to(email.to.as_str())
        .subject(email.subject.as_str())
        .message_id(format!("{local}@notifier"))
        .text_body(email.text.as_str())
        .html_body(email.html.as_str());
    for img in &email.inline {
        msg = msg.inline(img.content_type, img.cid.as_str(), img.bytes.as_slice());
    }
    msg.write_to_vec().map_err(|e| e.to_string())
}

/// What the handler needs.
pub struct Deps {
    pub store: Arc<dyn Store>,
    pub mailer: Arc<dyn Mailer>,
    pub renderer: Renderer,
    pub clock: Clock,
    /// Where a webhook's next attempt is queued (the notification queue itself).
    pub queue: Option<Arc<dyn shared::outbox::Queue>>,
    /// Webhooks may reach loopback over http (the local server only).
    pub allow_loopback: bool,
}

impl Deps {
    pub fn new(store: Arc<dyn Store>, mailer: Arc<dyn Mailer>) -> Deps {
        Deps {
            store,
            mailer,
            renderer: Renderer::new(),
            clock: Clock::default(),
            queue: None,
            allow_loopback: false,
        }
    }

    /// From the environment: the store as configured for every function (`TABLE_NAME`),
    /// SES with the sender `MAIL_FROM` (default `noreply@example.com`).
    #[cfg(feature = "ses")]
    pub async fn from_env() -> Result<Deps, String> {
        let app = shared::App::from_env().await?;
        let from = app.config.mail_from.clone();
        let mailer = Arc::new(match &app.sdk {
            Some(sdk) => SesMailer::new(sdk, from),
            None => SesMailer::from_env(from),
        });
        let mut deps = Deps::new(app.store.clone(), mailer);
        deps.queue = Some(app.queue.clone());
        Ok(deps)
    }

    /// Makes, ahead of the first message, what its email will need whatever it is: the mailer's
    /// HTTP client and the base most HTML emails extend. `main` runs it while the runtime API is
    /// asked for the first event (one thread: the task runs while that request waits), so a
    /// cold start's first email does not wait for them.
    pub fn prepare(&self) {
        self.mailer.prepare();
        self.renderer.prepare();
    }
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Already sent by an earlier delivery: nothing done.
    Duplicate,
}

/// Why one message failed (it stays on the queue).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// It can never succeed: it will end in the DLQ.
    #[error("poison message: {0}")]
    Poison(String),
    /// A later delivery may succeed.
    #[error("retry later: {0}")]
    Retry(String),
}

fn claim_key(id: &str) -> (String, String) {
    (format!("mail#{id}"), "mail".to_owned())
}

async fn webhook(
    deps: &Deps,
    n: &Notification,
    m: &shared::mail::WebhookMessage,
) -> Result<Outcome, Failure> {
    use shared::webhooks::{Dispatched, Dispatcher};
    let queue = deps.queue.as_ref().ok_or_else(|| Failure::Retry("no queue for webhook retries".into()))?;
    let d = Dispatcher {
        store: deps.store.as_ref(),
        queue: queue.as_ref(),
        now: deps.clock.now(),
        allow_loopback: deps.allow_loopback,
    };
    match d.dispatch(n, m).await {
        Ok(Dispatched::Delivered) => Ok(Outcome::Sent),
        // Done with this queue message: a retry, if any, is a message of its own.
        Ok(_) => Ok(Outcome::Duplicate),
        Err(e) => Err(Failure::Retry(format!("webhook {}: {e}", n.id))),
    }
}

/// Parses a message body into a notification.
pub fn decode(body: Option<&str>) -> Result<Notification, Failure> {
    let body = body.ok_or_else(|| Failure::Poison("message without a body".into()))?;
    let n: Notification = serde_json::from_str(body)
        .map_err(|e| Failure::Poison(format!("body is not a notification: {e}")))?;
    if n.id.trim().is_empty() {
        return Err(Failure::Poison("notification without an id".into()));
    }
    Ok(n)
}

/// Renders and sends one notification, at most once per notification id. A webhook message
/// is delivered instead (`shared::webhooks`: one attempt; a failure queues the next).
pub async fn process(deps: &Deps, n: &Notification) -> Result<Outcome, Failure> {
    if let shared::mail::Message::Webhook(m) = &n.message {
        return webhook(deps, n, m).await;
    }
    let email = deps.renderer.render(n).map_err(|e| Failure::Poison(e.to_string()))?;
    let (pk, sk) = claim_key(&n.id);
    let unavailable = |e: StoreError| Failure::Retry(format!("store: {e}"));
    let now = deps.clock.now();
    let claim = |state: &str| {
        let data = json!({ "state": state, "template": n.template(), "to": n.to, "at": now.to_rfc3339() });
        Item::from_value(&pk, &sk, &data).map(|i| i.with_ttl(Some(now.timestamp() + CLAIM_TTL_SECS)))
    };
    // The claim first, without reading it: a delivery of a new notification (nearly every one)
    // takes one conditional write before its send. Only a claim already there is read, to
    // tell a repeat of a sent email from one still being sent by another delivery.
    let claimed = claim("sending").map_err(unavailable)?;
    match deps.store.put(claimed, Cond::NotExists).await {
        Ok(()) => {}
        Err(StoreError::Conflict { .. }) => {
            let existing = deps.store.get(&pk, &sk).await.map_err(unavailable)?;
            return match existing.as_ref().and_then(|e| e.data.get("state")).and_then(|s| s.as_str()) {
                Some("sent") => Ok(Outcome::Duplicate),
                Some(_) => Err(Failure::Retry(format!("{} is being sent or its outcome is unknown", n.id))),
                // Released between the two calls (a send refused): the next delivery sends it.
                None => Err(Failure::Retry(format!("{} was released by a concurrent delivery", n.id))),
            };
        }
        Err(e) => return Err(unavailable(e)),
    }
    match deps.mailer.send(&email).await {
        Ok(()) => {
            shared::metrics::count("EmailsSent", &[("Template", n.template())]);
            let sent = claim("sent").map_err(unavailable)?.with_version(2);
            if let Err(e) = deps.store.put(sent, Cond::Version(1)).await {
                // The email is out; the claim stays `sending`, so a redelivery will not send again.
                tracing::error!(id = %n.id, error = %e, "sent, but could not mark the claim sent");
            }
            Ok(Outcome::Sent)
        }
        Err(SendError::NotSent(reason)) => {
            if let Err(e) = deps.store.delete(&pk, &sk, Cond::Version(1)).await {
                tracing::error!(id = %n.id, error = %e, "could not release the claim");
            }
            Err(Failure::Retry(reason))
        }
        Err(SendError::Unknown(reason)) => {
            tracing::error!(id = %n.id, %reason, "send outcome unknown: the claim is kept, the message will reach the DLQ");
            Err(Failure::Retry(reason))
        }
    }
}

/// One SQS record.
pub async fn handle_message(deps: &Deps, msg: &SqsMessage) -> Result<Outcome, Failure> {
    use tracing::Instrument;
    let message_id = msg.message_id.clone().unwrap_or_default();
    let n = match decode(msg.body.as_deref()) {
        Ok(n) => n,
        Err(failure) => {
            tracing::error!(%message_id, error = %failure, "message failed");
            return Err(failure);
        }
    };
    // Every line about it names the notification (its id names the deal, order or payment)
    // and the API request that caused it.
    let span = tracing::info_span!("notification", notification = %n.id, template = n.template(),
        request_id = n.request_id.as_deref().unwrap_or("-"));
    async {
        let result = process(deps, &n).await;
        match &result {
            Ok(outcome) => tracing::info!(%message_id, ?outcome, "message handled"),
            Err(failure @ Failure::Poison(_)) => {
                tracing::error!(%message_id, error = %failure, "message failed")
            }
            Err(failure) => tracing::warn!(%message_id, error = %failure, "message failed"),
        }
        result
    }
    .instrument(span)
    .await
}

/// The Lambda handler: every record on its own, failures reported for redelivery.
pub async fn handle(deps: &Deps, event: SqsEvent) -> SqsBatchResponse {
    handle_until(deps, event, None).await
}

/// The longest one record can take: a webhook attempt's address lookup (3 s) and request
/// (5 s), with room to spare.
pub const ONE_RECORD: std::time::Duration = std::time::Duration::from_secs(10);

/// [`handle`] within the invocation's `deadline`: a record is started only while
/// [`ONE_RECORD`] is left before it; the rest are reported as failures, to come again. A few
/// slow receivers in one batch then delay the batch's other messages instead of timing the
/// whole invocation out (which would make every record of it come again, and push a message
/// whose send was cut short towards the dead-letter queue).
pub async fn handle_until(
    deps: &Deps,
    event: SqsEvent,
    deadline: Option<std::time::SystemTime>,
) -> SqsBatchResponse {
    let mut failures = Vec::new();
    for msg in &event.records {
        let late = deadline.is_some_and(|d| {
            d.duration_since(std::time::SystemTime::now()).map_or(true, |left| left < ONE_RECORD)
        });
        if late {
            tracing::warn!(
                message_id = msg.message_id.as_deref().unwrap_or(""),
                "left for the next invocation: the deadline is near"
            );
        }
        if late || handle_message(deps, msg).await.is_err() {
            let mut item = BatchItemFailure::default();
            item.item_identifier = msg.message_id.clone().unwrap_or_default();
            failures.push(item);
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}

/// A mailer that keeps what it is asked to send (tests, local runs).
#[derive(Default)]
pub struct MemoryMailer {
    sent: std::sync::Mutex<Vec<Email>>,
    fail_next: std::sync::Mutex<Option<SendError>>,
}

impl MemoryMailer {
    pub fn sent(&self) -> Vec<Email> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The next send fails with this error.
    pub fn fail_next(&self, e: SendError) {
        *self.fail_next.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
    }
}

#[async_trait]
impl Mailer for MemoryMailer {
    async fn send(&self, email: &Email) -> Result<(), SendError> {
        if let Some(e) = self.fail_next.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(e);
        }
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).push(email.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use shared::store::memory::MemoryStore;

    use super::*;

    fn setup() -> (Deps, Arc<MemoryMailer>) {
        let mailer = Arc::new(MemoryMailer::default());
        (Deps::new(Arc::new(MemoryStore::new()), mailer.clone()), mailer)
    }

    fn note(id: &str) -> Notification {
        use shared::mail::{Message, RefundMail, Rub};
        let hundred = Rub(rust_decimal::Decimal::new(10000, 2));
        let mail = RefundMail {
            subject: "Заказ №5".into(),
            customer_name: None,
            amount: hundred,
            reason: String::new(),
            refunded: hundred,
            total: hundred,
        };
        Notification::new(id, "buyer@example.com", Message::Refund(mail))
    }

    #[tokio::test]
    async fn rejected_send_releases_the_claim_and_is_retried() {
        let (deps, mailer) = setup();
        mailer.fail_next(SendError::NotSent("throttled".into()));
        assert!(matches!(process(&deps, &note("r-1")).await, Err(Failure::Retry(_))));
        assert_eq!(deps.store.get("mail#r-1", "mail").await.unwrap(), None, "claim released");
        assert_eq!(process(&deps, &note("r-1")).await, Ok(Outcome::Sent));
        assert_eq!(process(&deps, &note("r-1")).await, Ok(Outcome::Duplicate));
        assert_eq!(mailer.sent().len(), 1);
    }

    #[tokio::test]
    async fn unknown_outcome_keeps_the_claim_and_never_sends_again() {
        let (deps, mailer) = setup();
        mailer.fail_next(SendError::Unknown("timeout".into()));
        assert!(matches!(process(&deps, &note("u-1")).await, Err(Failure::Retry(_))));
        for _ in 0..3 {
            assert!(matches!(process(&deps, &note("u-1")).await, Err(Failure::Retry(_))));
        }
        assert!(mailer.sent().is_empty(), "at most once: no second attempt after an unknown outcome");
        let claim = deps.store.get("mail#u-1", "mail").await.unwrap().unwrap();
        assert_eq!(claim.data["state"], "sending");
    }

    // Concurrent deliveries of one message: tests/tests/notifier_moto.rs races them for
    // real (worker threads, a barrier, a jittery store, on both stores).

    #[tokio::test]
    async fn poison_messages_are_refused_before_any_claim() {
        let (deps, mailer) = setup();
        assert!(matches!(decode(Some("nope")), Err(Failure::Poison(_))));
        assert!(matches!(decode(None), Err(Failure::Poison(_))));
        assert!(matches!(
            decode(Some(r#"{"id":"","template":"refund","to":"a@b.c","data":{}}"#)),
            Err(Failure::Poison(_))
        ));
        assert!(matches!(
            decode(Some(r#"{"id":"p-0","template":"unknown","to":"a@b.c","data":{}}"#)),
            Err(Failure::Poison(_))
        ));
        let mut bad = note("p-1");
        bad.to = "no address".into();
        assert!(matches!(process(&deps, &bad).await, Err(Failure::Poison(_))));
        assert_eq!(deps.store.get("mail#p-1", "mail").await.unwrap(), None);
        assert!(mailer.sent().is_empty());
    }

    /// Records of a batch as SQS hands them over, one per notification.
    fn batch(ids: &[&str]) -> SqsEvent {
        let mut event = SqsEvent::default();
        event.records = ids
            .iter()
            .map(|id| {
                let mut m = SqsMessage::default();
                m.message_id = Some(format!("m-{id}"));
                m.body = Some(serde_json::to_string(&note(id)).unwrap());
                m
            })
            .collect();
        event
    }

    /// Near the invocation's deadline no record is started: each is reported to come again,
    /// none sent (nor claimed); with time enough, all are handled.
    #[tokio::test]
    async fn records_are_left_for_later_near_the_deadline() {
        let (deps, mailer) = setup();
        let near = std::time::SystemTime::now() + ONE_RECORD / 2;
        let response = handle_until(&deps, batch(&["d-1", "d-2"]), Some(near)).await;
        let failed: Vec<&str> =
            response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        assert_eq!(failed, ["m-d-1", "m-d-2"]);
        assert!(mailer.sent().is_empty());
        assert_eq!(deps.store.get("mail#d-1", "mail").await.unwrap(), None, "not claimed");
        let later = std::time::SystemTime::now() + 3 * ONE_RECORD;
        let response = handle_until(&deps, batch(&["d-1", "d-2"]), Some(later)).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(mailer.sent().len(), 2);
    }

    #[test]
    fn mime_has_both_alternatives_and_a_stable_message_id() {
        let email = Renderer::new().render(&note("deal-1/paid")).unwrap();
        let raw = String::from_utf8(mime("noreply@example.com", &email).unwrap()).unwrap();
        assert!(raw.contains("Message-ID: <deal-1_paid@notifier>"), "{raw}");
        assert!(raw.contains("text/plain") && raw.contains("text/html"));
    }
}
