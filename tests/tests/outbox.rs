//! The transactional outbox: an email is written in the same transaction as the state change
//! that causes it, and a relay moves it to the queue.
//!
//! - A store failure at each step (refused, stalled, applied then reported failed) of a deal
//!   transition, a ticket order's payment and a zoo session's payment: at every point the
//!   change is made exactly when its email exists (pending in the outbox or queued), and once
//!   the client retried and the jobs ran, the email was queued, once. Embedded store and moto.
//! - The stream relay (`functions/relay`) driven by the records moto's DynamoDB Streams give
//!   for a real change: each outbox item is queued once and deleted; the same batch again
//!   sends nothing.

mod tickets_support;

use std::sync::Arc;

use api_tests::emails::{approve, deal_to_approve};
use api_tests::faulty::{Fault, FaultyStore};
use api_tests::{TestServer, forms, token};
use serde_json::{Value, json};
use shared::jobs::{Job, run};
use shared::store::{QueryOpts, Store};
use shared::tickets::orders::{self, OrderStatus};

fn queued(srv: &TestServer, id: &str) -> usize {
    srv.app.local_queue.as_ref().unwrap().messages().iter().filter(|n| n.id == id).count()
}

async fn pending(store: &Arc<dyn Store>, id: &str) -> bool {
    store.get(&format!("outbox#{id}"), "outbox").await.unwrap().is_some()
}

/// The three changes under test: make one ready, perform it, tell whether it happened and
/// which email it owes.
#[derive(Clone, Copy, Debug)]
enum Change {
    DealApproval,
    TicketPayment,
    ZooPayment,
}

struct Case {
    /// The deal id, the order id or the payment id.
    owner: String,
    /// The sandbox Pay form, for payments.
    pay: Option<(String, Vec<(String, String)>)>,
    email: String,
}

async fn pay_form(srv: &TestServer, page: &str) -> (String, Vec<(String, String)>) {
    let html = srv.http.get(page).send().await.unwrap().text().await.unwrap();
    forms(&html).remove("succeeded").expect("a Pay button")
}

impl Change {
    async fn prepare(self, srv: &TestServer, n: usize) -> Case {
        match self {
            Change::DealApproval => {
                let id = deal_to_approve(srv).await;
                Case { owner: id.to_string(), pay: None, email: format!("deal-{id}-v2-consumer") }
            }
            Change::TicketPayment => {
                let seat = format!("s-{}-{}", 1 + n / 10 % 2, 1 + n % 10);
                let event = format!("ob{}", n / 20);
                if n.is_multiple_of(20) {
                    tickets_support::create_event(srv, &event).await;
                }
                let (order, page) =
                    tickets_support::online_order(srv, &event, &[seat.as_str()], "self_online").await;
                let pay = pay_form(srv, &page).await;
                Case { email: format!("ticket-order-{order}-approved-buyer"), owner: order, pay: Some(pay) }
            }
            Change::ZooPayment => {
                let date = (chrono::Utc::now() + chrono::Duration::days(25)).format("%Y-%m-%d").to_string();
                let body = json!({"session_id": "s", "order": {"order_id": "o", "total_amount": {"value": "1000.00", "currency": "RUB"},
                    "items": [{"ticket_type": "adult", "quantity": 1, "unit_price": {"value": "1000.00", "currency": "RUB"},
                               "visit_date": date, "visit_time": "12:00"}]},
                    "customer": {"email": "visitor@example.com"},
                    "confirmation": {"type": "redirect", "return_url": "https://zoo.example/ok", "cancel_url": "https://zoo.example/no"}});
                let (status, created) =
                    srv.post("/v1/payments/sessions", Some(&token("21", &[])), &body).await;
                assert_eq!(status, 201, "{created}");
                let id = created["data"]["payment_id"].as_str().unwrap().to_owned();
                let pay = pay_form(srv, created["data"]["confirmation_url"].as_str().unwrap()).await;
                Case { email: format!("zoo-{id}-tickets"), owner: id, pay: Some(pay) }
            }
        }
    }

    /// Performs the change (once more, for a retry); the answer's status.
    async fn perform(self, srv: &TestServer, case: &Case) -> u16 {
        match (&case.pay, self) {
            (Some((action, fields)), _) => {
                srv.http.post(action).form(fields).send().await.unwrap().status().as_u16()
            }
            (None, _) => approve(srv, case.owner.parse().unwrap()).await,
        }
    }

    async fn done(self, srv: &TestServer, case: &Case) -> bool {
        match self {
            Change::DealApproval => {
                let (_, d) =
                    srv.get(&format!("/api/v1/orders/{}", case.owner), Some(&token("21", &[]))).await;
                d["order"]["state"] == "approved"
            }
            Change::TicketPayment => {
                orders::get(&srv.app, &case.owner).await.unwrap().order.status == OrderStatus::Approved
            }
            Change::ZooPayment => {
                let (_, p) = srv.get(&format!("/v1/payments/{}", case.owner), Some(&token("21", &[]))).await;
                p["data"]["tickets"].as_array().is_some_and(|t| !t.is_empty())
            }
        }
    }
}

/// Fails each step of the change in turn, each way: every call on the embedded store
/// (`every_call`), every write on DynamoDB (moto), where a failing read shows nothing new.
async fn no_change_without_its_email(store: Arc<dyn Store>, change: Change, every_call: bool) {
    let faulty = Arc::new(FaultyStore::faulty(store.clone()));
    let srv = TestServer::start(faulty.clone()).await;
    let case = change.prepare(&srv, 0).await;
    faulty.fail_call(0, false);
    assert!(change.perform(&srv, &case).await < 400);
    let steps: Vec<usize> = if every_call { (1..=faulty.calls()).collect() } else { faulty.write_steps() };
    assert!(change.done(&srv, &case).await && queued(&srv, &case.email) == 1, "{change:?}: the clean run");
    let mut n = 0;
    let mut mailroom = api_tests::Mailroom::default();
    mailroom.deliver(&srv).await;
    for fault in Fault::ALL {
        for &step in &steps {
            n += 1;
            let case = change.prepare(&srv, n).await;
            faulty.inject(step, fault);
            let status = change.perform(&srv, &case).await;
            faulty.heal();
            faulty.settle().await;
            assert!(status < 400 || status == 503, "{change:?} {fault:?} at step {step}: {status}");
            let done = change.done(&srv, &case).await;
            let emailed = queued(&srv, &case.email) > 0 || pending(&store, &case.email).await;
            assert_eq!(
                done, emailed,
                "{change:?} {fault:?} at step {step}: the change and its email go together"
            );

            // The client (or the gateway) retries; the jobs finish what is left.
            assert!(
                change.perform(&srv, &case).await < 400,
                "{change:?} {fault:?} at step {step}: the retry"
            );
            srv.app.clock.advance(chrono::Duration::minutes(2));
            run(&srv.app, Job::Payments).await.unwrap();
            run(&srv.app, Job::Outbox).await.unwrap();
            assert!(change.done(&srv, &case).await, "{change:?} {fault:?} at step {step}");
            // Enqueued once, or twice when the relay could not tell its first send had gone
            // (a failure deleting the outbox item): the notifier sends it once.
            let times = queued(&srv, &case.email);
            assert!((1..=2).contains(&times), "{change:?} {fault:?} at step {step}: enqueued {times} times");
            let sent = mailroom.deliver(&srv).await;
            assert_eq!(
                sent.iter().filter(|id| **id == case.email).count(),
                1,
                "{change:?} {fault:?} at step {step}: one email"
            );
            assert!(!pending(&store, &case.email).await, "{change:?} {fault:?} at step {step}: relayed");
        }
    }
}

macro_rules! on_both_stores {
    ($($name:ident: $change:expr),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    super::no_change_without_its_email(api_tests::memory_store(), $change, true).await;
                }
            )*
        }
        mod dynamo {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(store) = api_tests::dynamo_store().await else { return };
                    super::no_change_without_its_email(store, $change, false).await;
                }
            )*
        }
    };
}

on_both_stores!(
    a_deal_transition: super::Change::DealApproval,
    a_ticket_order_approval: super::Change::TicketPayment,
    a_zoo_payment_success: super::Change::ZooPayment,
);

// ------------------------------------------------------------------ the stream relay

/// One call of moto's DynamoDB (or DynamoDB Streams) JSON API.
async fn moto(endpoint: &str, target: &str, body: Value) -> Value {
    reqwest::Client::new()
        .post(format!("{endpoint}/"))
        .header("Content-Type", "application/x-amz-json-1.0")
        .header("X-Amz-Target", target)
        .header("Authorization", "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=x")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Every record on the table's stream, as the Lambda event the stream relay gets.
pub async fn stream_event(endpoint: &str, table: &str) -> aws_lambda_events::dynamodb::Event {
    let t = moto(endpoint, "DynamoDB_20120810.DescribeTable", json!({"TableName": table})).await;
    let arn = t["Table"]["LatestStreamArn"].as_str().expect("the table has a stream").to_owned();
    let s = moto(endpoint, "DynamoDBStreams_20120810.DescribeStream", json!({"StreamArn": arn})).await;
    let mut records = Vec::new();
    for shard in s["StreamDescription"]["Shards"].as_array().unwrap() {
        let it = moto(
            endpoint,
            "DynamoDBStreams_20120810.GetShardIterator",
            json!({"StreamArn": arn, "ShardId": shard["ShardId"], "ShardIteratorType": "TRIM_HORIZON"}),
        )
        .await;
        let got = moto(
            endpoint,
            "DynamoDBStreams_20120810.GetRecords",
            json!({"ShardIterator": it["ShardIterator"]}),
        )
        .await;
        records.extend(got["Records"].as_array().unwrap().iter().cloned());
    }
    serde_json::from_value(json!({ "Records": records })).expect("stream records are a Lambda event")
}

#[tokio::test]
async fn dynamo_the_stream_relay_sends_each_outbox_item_once() {
    let Some(endpoint) = api_tests::moto_endpoint() else { return };
    let store = api_tests::dynamo_store().await.unwrap();
    let table = store.table().to_owned();
    let srv = TestServer::start_stream_relayed(store.clone()).await;
    let id = deal_to_approve(&srv).await;
    assert_eq!(approve(&srv, id).await, 204);
    let email = format!("deal-{id}-v2-consumer");
    assert_eq!(queued(&srv, &email), 0, "nothing relayed in the request");
    let store: Arc<dyn Store> = store;
    assert!(pending(&store, &email).await);

    let event = stream_event(&endpoint, &table).await;
    let outbox_records = event
        .records
        .iter()
        .filter(|r| r.change.keys.get("pk").is_some_and(|pk| format!("{pk:?}").contains("outbox#")))
        .count();
    assert!(outbox_records >= 1, "the change's outbox item is on the stream");
    let queue = srv.app.local_queue.clone().unwrap();
    let response = relay::handle(store.as_ref(), queue.as_ref(), event.clone()).await;
    assert!(response.batch_item_failures.is_empty(), "{:?}", response.batch_item_failures.len());
    assert_eq!(queue.sends(&email), 1);
    let sent = queue.messages().into_iter().find(|n| n.id == email).unwrap();
    assert_eq!(
        (sent.to.as_str(), sent.data()["to_state"].as_str()),
        ("user14@example.com", Some("approved"))
    );
    assert!(!pending(&store, &email).await, "relayed items are deleted");
    for shard in 0..shared::outbox::SHARDS {
        let left = store.query_gsi1(&format!("outbox#pending#{shard}"), QueryOpts::default()).await.unwrap();
        assert!(left.is_empty(), "{left:?}");
    }
    // The stream delivers the batch again: nothing is sent twice.
    let again = relay::handle(store.as_ref(), queue.as_ref(), event).await;
    assert!(again.batch_item_failures.is_empty());
    assert_eq!(queue.sends(&email), 1);
}
