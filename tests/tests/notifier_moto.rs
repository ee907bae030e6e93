//! The notifier against real protocol peers on moto: SQS (with a dead-letter queue), SES v2
//! and DynamoDB (the de-duplication claims). The notifications are made by the domain (a zoo
//! session paid on the sandbox page, a deal approved, a ticket order refunded), sent through
//! the SQS queue adapter, and read back from moto's SES store as a reader would get them.
//!
//! Each test makes its own queues and uses its own recipient address, so the tests can share
//! one moto server and run in parallel.

use std::sync::Arc;

use mail_parser::MimeHeaders;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use notifier::{Deps, SesMailer};
use serde_json::{Value, json};
use shared::mail::Notification;
use shared::outbox::Queue as _;
use shared::queue_sqs::{ID_ATTRIBUTE, SqsQueue};

const FROM: &str = "tickets@example.com";

struct Env {
    sqs: aws_sdk_sqs::Client,
    deps: Deps,
    endpoint: String,
}

async fn env() -> Option<Env> {
    let endpoint = api_tests::moto_endpoint()?;
    let conf = shared::aws::load();
    let ses = aws_sdk_sesv2::Client::new(&conf);
    // moto only sends from a created identity; a second create is refused, which is fine.
    let _ = ses.create_email_identity().email_identity(FROM).send().await;
    let store = api_tests::dynamo_store().await.expect("moto is up");
    let deps = Deps::new(store, Arc::new(SesMailer::new(&conf, FROM)));
    Some(Env { sqs: aws_sdk_sqs::Client::new(&conf), deps, endpoint })
}

struct Queue {
    url: String,
    dlq_url: String,
}

/// A queue whose messages move to a fresh DLQ after `max_receive` receives; visibility 0, so
/// a failed message is visible again at once (as after a visibility timeout).
async fn queue(sqs: &aws_sdk_sqs::Client, max_receive: u32) -> Queue {
    let name = format!("notify-{}", uuid::Uuid::new_v4().simple());
    let dlq_url =
        sqs.create_queue().queue_name(format!("{name}-dlq")).send().await.unwrap().queue_url.unwrap();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let dlq_arn = attrs.attributes().unwrap()[&QueueAttributeName::QueueArn].clone();
    let redrive = json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive.to_string()});
    let url = sqs
        .create_queue()
        .queue_name(&name)
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .attributes(QueueAttributeName::VisibilityTimeout, "0")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    Queue { url, dlq_url }
}

/// Receives what is visible on `url` (up to 10 messages).
async fn receive(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
    sqs.receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .message_attribute_names("All")
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default()
}

/// The Lambda event SQS would build for these messages.
fn event(messages: &[aws_sdk_sqs::types::Message]) -> SqsEvent {
    let mut ev = SqsEvent::default();
    ev.records = messages
        .iter()
        .map(|m| {
            let mut r = SqsMessage::default();
            r.message_id = m.message_id.clone();
            r.receipt_handle = m.receipt_handle.clone();
            r.body = m.body.clone();
            r.event_source = Some("aws:sqs".into());
            r
        })
        .collect();
    ev
}

/// One poll of the event source mapping: receive, invoke the handler, delete the records
/// that did not fail. Returns the handler's answer and how many messages it got.
async fn poll(env: &Env, url: &str) -> (SqsBatchResponse, usize) {
    let messages = receive(&env.sqs, url).await;
    let response = notifier::handle(&env.deps, event(&messages)).await;
    let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    for m in &messages {
        if !failed.contains(&m.message_id().unwrap_or("")) {
            env.sqs
                .delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    (response, messages.len())
}

/// Raw MIME messages moto's SES accepted for `to`.
async fn mails_to(env: &Env, to: &str) -> Vec<String> {
    let data: Value =
        reqwest::get(format!("{}/moto-api/data.json", env.endpoint)).await.unwrap().json().await.unwrap();
    let raw = data["ses"]["RawMessage"].as_array().cloned().unwrap_or_default();
    raw.iter()
        .filter(|m| m["destinations"].as_array().is_some_and(|d| d.iter().any(|a| a == to)))
        .map(|m| m["raw_data"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn recipient() -> String {
    format!("buyer-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// A domain-made notification, addressed for this test.
fn addressed(n: &Notification, id: &str, to: &str) -> Notification {
    Notification { id: id.into(), to: to.into(), ..n.clone() }
}

async fn zoo_tickets(id: &str, to: &str) -> (Notification, Value) {
    let srv = api_tests::TestServer::memory().await;
    let (n, session) = api_tests::emails::zoo_tickets(&srv).await;
    (addressed(&n, id, to), session)
}

#[tokio::test]
async fn a_queued_notification_is_sent_through_ses() {
    let Some(env) = env().await else { return };
    let q = queue(&env.sqs, 3).await;
    let to = recipient();
    let id = format!("payment-{}-succeeded", uuid::Uuid::new_v4().simple());
    let (n, session) = zoo_tickets(&id, &to).await;
    SqsQueue::new(env.sqs.clone(), &q.url).send(&n).await.unwrap();

    let messages = receive(&env.sqs, &q.url).await;
    assert_eq!(messages.len(), 1);
    let attr = &messages[0].message_attributes().unwrap()[ID_ATTRIBUTE];
    assert_eq!(attr.string_value(), Some(id.as_str()));
    let response = notifier::handle(&env.deps, event(&messages)).await;
    assert!(response.batch_item_failures.is_empty(), "{:?}", response.batch_item_failures);

    let mails = mails_to(&env, &to).await;
    assert_eq!(mails.len(), 1, "one email in moto's SES store");
    let parsed = mail_parser::MessageParser::default().parse(mails[0].as_bytes()).expect("a MIME message");
    let date = chrono::NaiveDate::parse_from_str(&api_tests::emails::visit_date(), "%Y-%m-%d").unwrap();
    let shown = date.format("%d.%m.%Y").to_string();
    assert_eq!(parsed.subject(), Some(format!("Ваши билеты в зоопарк на {shown} в 10:00").as_str()));
    let text = parsed.body_text(0).unwrap();
    assert!(text.contains("2500.00 ₽") && text.contains(&format!("{shown} 10:30")), "{text}");
    let html = parsed.body_html(0).unwrap();
    assert!((1..=3).all(|i| html.contains(&format!("cid:qr-{i}@tickets"))), "{html}");
    let images: Vec<_> = parsed
        .attachments()
        .filter(|a| a.content_type().is_some_and(|c| c.ctype() == "image" && c.subtype() == Some("png")))
        .collect();
    assert_eq!(images.len(), 3, "one QR image per ticket");
    // Each image is the QR code a gate reads: the ticket's own signed payload.
    let mut in_email: Vec<String> = images.iter().map(|i| api_tests::decode_qr_png(i.contents())).collect();
    let mut issued: Vec<String> = session["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let b64 = t["qr_code"].as_str().unwrap().trim_start_matches("data:image/png;base64,");
            api_tests::decode_qr_png(
                &base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).unwrap(),
            )
        })
        .collect();
    in_email.sort();
    issued.sort();
    assert_eq!(in_email, issued);
    assert!(in_email.iter().all(|p| p.starts_with("ZOOTICKET;")));
    assert_eq!(parsed.from().and_then(|f| f.first()).and_then(|a| a.address()), Some(FROM));
}

#[tokio::test]
async fn a_message_delivered_twice_sends_one_email() {
    let Some(env) = env().await else { return };
    let q = queue(&env.sqs, 3).await;
    let to = recipient();
    let id = format!("deal-{}-shipping", uuid::Uuid::new_v4().simple());
    let srv = api_tests::TestServer::memory().await;
    let (n, deal) = api_tests::emails::deal_approved(&srv).await;
    let n = addressed(&n, &id, &to);
    // SQS may deliver one message twice; a relay may also send one outbox item twice.
    let queue = SqsQueue::new(env.sqs.clone(), &q.url);
    queue.send(&n).await.unwrap();
    queue.send(&n).await.unwrap();

    let messages = receive(&env.sqs, &q.url).await;
    assert_eq!(messages.len(), 2);
    // The first delivery, then both messages again (a redelivery of the first).
    let first = notifier::handle(&env.deps, event(&messages[..1])).await;
    assert!(first.batch_item_failures.is_empty());
    let again = notifier::handle(&env.deps, event(&messages)).await;
    assert!(again.batch_item_failures.is_empty(), "a duplicate is a success, not a failure");

    let mails = mails_to(&env, &to).await;
    assert_eq!(mails.len(), 1, "exactly one email for one business event");
    let parsed = mail_parser::MessageParser::default().parse(mails[0].as_bytes()).unwrap();
    assert_eq!(parsed.subject(), Some(format!("Сделка №{deal}: Подтверждена продавцом").as_str()));
    assert!(parsed.body_text(0).unwrap().contains("Изменение внёс: продавец"));
    let claim = env.deps.store.get(&format!("mail#{id}"), "mail").await.unwrap().expect("claim stored");
    assert_eq!(claim.data["state"], "sent");
    assert!(claim.ttl.is_some(), "claims expire");
}

#[tokio::test]
async fn a_poison_message_ends_in_the_dlq() {
    let Some(env) = env().await else { return };
    let q = queue(&env.sqs, 2).await;
    let to = recipient();
    let unknown = json!({"id": "x-1", "template": "no_such_template", "to": to, "data": {}}).to_string();
    for body in ["this is not json", unknown.as_str()] {
        env.sqs.send_message().queue_url(&q.url).message_body(body).send().await.unwrap();
    }
    let mut failed_receives = 0;
    for _ in 0..10 {
        let (response, received) = poll(&env, &q.url).await;
        if received == 0 {
            break;
        }
        assert_eq!(response.batch_item_failures.len(), received, "every poison message fails");
        failed_receives += received;
    }
    assert_eq!(failed_receives, 4, "each message is tried maxReceiveCount = 2 times");
    let mut dead: Vec<String> =
        receive(&env.sqs, &q.dlq_url).await.into_iter().filter_map(|m| m.body).collect();
    dead.sort();
    let mut expected = vec!["this is not json".to_owned(), unknown.clone()];
    expected.sort();
    assert_eq!(dead, expected, "both poison messages are in the DLQ");
    assert!(receive(&env.sqs, &q.url).await.is_empty());
    assert!(mails_to(&env, &to).await.is_empty(), "nothing was sent");
}

#[tokio::test]
async fn a_good_message_in_a_batch_with_a_poison_one_is_sent() {
    let Some(env) = env().await else { return };
    let q = queue(&env.sqs, 1).await;
    let to = recipient();
    let (n, _) = zoo_tickets(&format!("pay-{}", uuid::Uuid::new_v4().simple()), &to).await;
    SqsQueue::new(env.sqs.clone(), &q.url).send(&n).await.unwrap();
    env.sqs.send_message().queue_url(&q.url).message_body("{\"id\": 1}").send().await.unwrap();
    let messages = receive(&env.sqs, &q.url).await;
    assert_eq!(messages.len(), 2);
    let response = notifier::handle(&env.deps, event(&messages)).await;
    let poison = messages.iter().find(|m| m.body() == Some("{\"id\": 1}")).unwrap();
    let failed: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
    assert_eq!(failed, vec![poison.message_id().unwrap().to_owned()], "only the poison message is reported");
    assert_eq!(mails_to(&env, &to).await.len(), 1);
}

#[tokio::test]
async fn a_refused_send_is_retried_and_then_sent_once() {
    let Some(env) = env().await else { return };
    let conf = shared::aws::load();
    // SES refuses a sender that is not a verified identity: nothing is sent, the claim is
    // released, and a later delivery (here with the right sender) sends the email.
    let unverified = format!("nobody-{}@unverified.example", uuid::Uuid::new_v4().simple());
    let refusing = Deps::new(env.deps.store.clone(), Arc::new(SesMailer::new(&conf, unverified)));
    let q = queue(&env.sqs, 5).await;
    let to = recipient();
    let id = format!("refund-{}", uuid::Uuid::new_v4().simple());
    let srv = api_tests::TestServer::memory().await;
    let (n, _) = api_tests::emails::deal_approved(&srv).await;
    SqsQueue::new(env.sqs.clone(), &q.url).send(&addressed(&n, &id, &to)).await.unwrap();
    let messages = receive(&env.sqs, &q.url).await;
    let refused = notifier::handle(&refusing, event(&messages)).await;
    assert_eq!(refused.batch_item_failures.len(), 1, "reported for redelivery");
    assert_eq!(env.deps.store.get(&format!("mail#{id}"), "mail").await.unwrap(), None, "claim released");
    assert!(mails_to(&env, &to).await.is_empty());

    let (response, received) = poll(&env, &q.url).await;
    assert_eq!((received, response.batch_item_failures.len()), (1, 0));
    let mails = mails_to(&env, &to).await;
    assert_eq!(mails.len(), 1);
    let parsed = mail_parser::MessageParser::default().parse(mails[0].as_bytes()).unwrap();
    assert!(parsed.subject().unwrap().ends_with("Подтверждена продавцом"), "{:?}", parsed.subject());
}

/// Eight deliveries of one notification at once (worker threads, a barrier, jitter around
/// every claim read and write): one email; the others found it sent, or lost the claim to a
/// concurrent delivery and are retried by SQS. Repeated until a delivery really lost the claim.
async fn concurrent_deliveries_send_once(store: Arc<dyn shared::store::Store>) {
    let store = Arc::new(api_tests::jittery(store));
    let mailer = Arc::new(notifier::MemoryMailer::default());
    let deps = Arc::new(Deps::new(store.clone(), mailer.clone()));
    api_tests::until_lost(20, |r| {
        let (deps, mailer, store) = (deps.clone(), mailer.clone(), store.clone());
        async move {
            let hundred = shared::mail::Rub(rust_decimal::Decimal::new(10000, 2));
            let mail = shared::mail::RefundMail {
                subject: format!("Заказ №{r}"),
                customer_name: None,
                amount: hundred,
                reason: String::new(),
                refunded: hundred,
                total: hundred,
            };
            let n = Notification::new(
                format!("race-{r}-{}", uuid::Uuid::new_v4().simple()),
                "buyer@example.com",
                shared::mail::Message::Refund(mail),
            );
            let before = (mailer.sent().len(), store.conflicts());
            let results = api_tests::race(8, |_| {
                let (deps, n) = (deps.clone(), n.clone());
                async move { notifier::process(&deps, &n).await }
            })
            .await;
            assert_eq!(
                results.iter().filter(|r| **r == Ok(notifier::Outcome::Sent)).count(),
                1,
                "{results:?}"
            );
            assert_eq!(mailer.sent().len(), before.0 + 1, "one email");
            for r in &results {
                assert!(
                    matches!(r, Ok(_) | Err(notifier::Failure::Retry(_))),
                    "a loser is retried, never dropped: {r:?}"
                );
            }
            store.conflicts() > before.1
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deliveries_send_once_memory() {
    concurrent_deliveries_send_once(api_tests::memory_store()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deliveries_send_once_dynamo() {
    let Some(store) = api_tests::dynamo_store().await else { return };
    concurrent_deliveries_send_once(store).await;
}

/// A webhook message on SQS (a deal's move, made by the domain): the notifier POSTs it to the
/// party's endpoint; the receiver refuses, so the notifier records the attempt and puts the
/// next one back on SQS with a delay (`DelaySeconds`), and the first message is consumed.
#[tokio::test]
async fn a_failed_webhook_is_queued_again_with_a_delay() {
    let Some(mut env) = env().await else { return };
    let q = queue(&env.sqs, 3).await;
    let sqs = Arc::new(SqsQueue::new(env.sqs.clone(), &q.url));
    env.deps.queue = Some(sqs.clone());
    env.deps.allow_loopback = true;
    // A receiver that refuses everything.
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { axum::http::StatusCode::SERVICE_UNAVAILABLE }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    // The endpoint, and a deal its supplier (21) approves, in the table the notifier reads.
    let srv = api_tests::TestServer::start(env.deps.store.clone()).await;
    let supplier = "21";
    shared::webhooks::register(&srv.app, supplier, &url).await.unwrap();
    let id = api_tests::emails::deal_to_approve(&srv).await;
    assert_eq!(api_tests::emails::approve(&srv, id).await, 204);
    let queued = srv.app.local_queue.as_ref().unwrap().webhooks();
    let n = queued.iter().find(|n| n.to == supplier).expect("the supplier's webhook message");
    sqs.send(n).await.unwrap();

    let (response, got) = poll(&env, &q.url).await;
    assert_eq!(got, 1);
    assert!(response.batch_item_failures.is_empty(), "consumed: the retry is a message of its own");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    let attrs = env
        .sqs
        .get_queue_attributes()
        .queue_url(&q.url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .unwrap();
    let delayed = &attrs.attributes().unwrap()[&QueueAttributeName::ApproximateNumberOfMessagesDelayed];
    assert_eq!(delayed, "1", "the next attempt waits on the queue");
    let log = shared::webhooks::deliveries(&srv.app, supplier, 100).await.unwrap();
    let mine = log.iter().find(|d| d.message_id == n.id).expect("its delivery");
    assert_eq!(
        (mine.state.as_str(), mine.attempts.len(), mine.kind.as_str()),
        ("retrying", 1, "deal.state_changed")
    );
    assert_eq!(mine.attempts[0].status, Some(503));
}
