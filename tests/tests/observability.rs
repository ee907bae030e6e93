//! What an operator sees of a purchase: the business metrics as CloudWatch Embedded Metric
//! Format lines (seats held and sold, the payment settled by gateway and outcome, the emails
//! sent), each with its own dimensions and a total; and the log lines of the notifier naming
//! the API request that caused the email, carried through the queue.
//!
//! One test in this binary: the metric lines are captured process-wide.

mod tickets_support;

use std::sync::Arc;

use api_tests::{TestServer, press};
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use serde_json::Value;
use tickets_support::{create_event, online_order, payment_of};

/// The EMF documents captured for `metric`: (its value, its dimensions by name).
fn emf(lines: &[String], metric: &str) -> Vec<(u64, Value)> {
    lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).expect("every metric line is JSON"))
        .filter(|v| v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"] == metric)
        .map(|v| {
            let m = &v["_aws"]["CloudWatchMetrics"][0];
            assert_eq!(m["Namespace"], "TicketsBackend");
            assert!(v["_aws"]["Timestamp"].as_i64().unwrap() > 1_700_000_000_000);
            let sets = m["Dimensions"].as_array().unwrap();
            assert_eq!(sets.last().unwrap(), &serde_json::json!([]), "a total for the alarms: {v}");
            let dims: serde_json::Map<String, Value> = sets[0]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| (k.as_str().unwrap().to_owned(), v[k.as_str().unwrap()].clone()))
                .collect();
            (v[metric].as_u64().unwrap(), Value::Object(dims))
        })
        .collect()
}

#[tokio::test]
async fn a_purchase_is_counted_and_its_email_names_the_request() {
    let logs = api_tests::LogLines::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    shared::metrics::capture();

    let srv = TestServer::memory().await;
    create_event(&srv, "obs-1").await;
    let (order, url) = online_order(&srv, "obs-1", &["s-1-1", "s-1-2"], "self_online").await;
    // The gateway's callback (the sandbox page's Pay button) settles the payment.
    let (status, _) = press(&srv, &url, "succeeded").await;
    assert!(status < 400, "{status}");
    assert_eq!(
        shared::payments::load(&srv.app, &payment_of(&srv, &order).await)
            .await
            .unwrap()
            .unwrap()
            .status
            .as_str(),
        "succeeded"
    );

    let lines = shared::metrics::captured();
    let held = emf(&lines, "SeatsHeld");
    assert_eq!(held.iter().map(|(n, _)| n).sum::<u64>(), 2, "{held:?}");
    let sold = emf(&lines, "SeatsSold");
    assert_eq!(sold, [(2, serde_json::json!({"OrderType": "self_online"}))]);
    let settled = emf(&lines, "PaymentsSettled");
    assert_eq!(settled, [(1, serde_json::json!({"Gateway": "sandbox", "Outcome": "succeeded"}))]);

    // The buyer's email, from the queue to the notifier as on AWS (an SQS record).
    let queued = api_tests::emails::queued(&srv, "ticket_order_buyer");
    let request_id = queued.request_id.clone().expect("the email names the request that caused it");
    let api_lines = logs.json();
    assert!(
        api_lines.iter().any(|l| l["span"]["request_id"] == request_id.as_str()
            && l["span"]["path"].as_str().is_some_and(|p| p.contains("sandbox"))),
        "the callback's own log lines carry the same request id"
    );
    let mailer = Arc::new(notifier::MemoryMailer::default());
    let deps = notifier::Deps::new(srv.app.store.clone(), mailer.clone());
    let mut record = SqsMessage::default();
    record.message_id = Some("m-1".into());
    record.body = Some(serde_json::to_string(&queued).unwrap());
    let mut event = SqsEvent::default();
    event.records = vec![record];
    let answer = notifier::handle(&deps, event).await;
    assert!(answer.batch_item_failures.is_empty());
    assert_eq!(mailer.sent().len(), 1);
    let sent = emf(&shared::metrics::captured(), "EmailsSent");
    assert_eq!(sent, [(1, serde_json::json!({"Template": "ticket_order_buyer"}))]);
    let handled: Vec<Value> = logs
        .json()
        .into_iter()
        .filter(|l| l["fields"]["message"] == "message handled" || l["message"] == "message handled")
        .collect();
    assert_eq!(handled.len(), 1, "{handled:?}");
    let span = &handled[0]["span"];
    assert_eq!(span["request_id"], request_id.as_str(), "{span}");
    assert_eq!(span["notification"], queued.id.as_str());
    assert!(queued.id.contains(&order), "the notification's id names the order: {}", queued.id);
}
