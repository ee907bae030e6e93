//! Every function's handler invoked with its sample event from `events/`: HTTP functions
//! through `lambda_http`'s API Gateway decoding and the group's router; the notifier and the
//! scheduler through their library handlers.

use std::sync::Arc;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sqs::SqsEvent;
use axum::http::{HeaderValue, StatusCode};
use serde_json::Value;
use shared::App;
use shared::jobs::Job;
use shared::store::memory::MemoryStore;
use tower::ServiceExt;

fn sample(name: &str) -> String {
    let path = format!("{}/../events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| format!("{path}: {e}"))
}

fn app() -> App {
    let mut config = shared::Config::for_tests();
    config.jwt.secret = api_tests::SECRET.into();
    App::in_memory(config)
}

/// Decodes an API Gateway event as the Lambda runtime does and serves it with `router`.
async fn invoke(router: axum::Router<App>, event: &str, token: Option<&str>) -> (StatusCode, Value) {
    let (status, text) = invoke_on(&app(), router, event, token).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `invoke` on a given application state; answers the status and the body's text.
async fn invoke_on(
    app: &App,
    router: axum::Router<App>,
    event: &str,
    token: Option<&str>,
) -> (StatusCode, String) {
    let mut req = lambda_http::request::from_str(&sample(event)).expect("a valid API Gateway event");
    if let Some(t) = token {
        req.headers_mut().insert("authorization", HeaderValue::from_str(&format!("Bearer {t}")).unwrap());
    }
    let (parts, body) = req.into_parts();
    let req = axum::http::Request::from_parts(parts, axum::body::Body::from(body.to_vec()));
    let res = shared::http::finish(router, app.clone()).oneshot(req).await.expect("infallible");
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn health_sample_event() {
    let (status, body) = invoke(health::router(), "health", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "healthy");
}

#[tokio::test]
async fn deals_sample_event() {
    let (status, _) = invoke(deals::router(), "deals", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the sample carries no token");
    let token = api_tests::token("21", &[]);
    let (status, body) = invoke(deals::router(), "deals", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["commission"], 100000.0);
}

#[tokio::test]
async fn payments_sample_event() {
    let (status, _) = invoke(payments::router(), "payments", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the sample carries no token");
    let token = api_tests::token("21", &[]);
    let app = app();
    let (status, text) = invoke_on(&app, payments::router(), "payments", Some(&token)).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    let url = body["data"]["confirmation_url"].as_str().unwrap_or_default();
    assert!(url.contains("/api/v1/gateways/sandbox/pay/"), "{body}");
    // Re-read: the session exists, open, for the sample's amount.
    let id = body["data"]["payment_id"].as_str().unwrap();
    let p = shared::payments::load(&app, id).await.unwrap().expect("the payment was written");
    assert_eq!(p.status, shared::payments::Status::Pending);
    assert_eq!(p.amount.to_string(), "2000.00", "the sample's two adult tickets at the tariff");
}

/// `events/scheduler-payments.json`, the payments rule's event: a session left unpaid past
/// its timeout is asked of its gateway and cancelled, its slot places given back.
#[tokio::test]
async fn scheduler_payments_sample_event() {
    let app = app();
    let token = api_tests::token("21", &[]);
    let (status, text) = invoke_on(&app, payments::router(), "payments", Some(&token)).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    let id = body["data"]["payment_id"].as_str().unwrap().to_owned();
    let event: EventBridgeEvent<scheduler::JobDetail> =
        serde_json::from_str(&sample("scheduler-payments")).expect("a valid scheduled event");
    assert_eq!(event.detail_type, "Scheduled Event");
    // Not yet due: nothing changes.
    let report = scheduler::handle(&app, event.clone()).await.expect("job runs");
    assert_eq!(report.job, Some(Job::Payments));
    assert_eq!(
        shared::payments::load(&app, &id).await.unwrap().unwrap().status,
        shared::payments::Status::Pending
    );
    app.clock.advance(chrono::Duration::minutes(16));
    let report = scheduler::handle(&app, event).await.expect("job runs");
    assert!(report.changed >= 1, "{report:?}");
    let p = shared::payments::load(&app, &id).await.unwrap().unwrap();
    assert_eq!(p.status, shared::payments::Status::Canceled, "{p:?}");
}

/// The sample is a sandbox callback for payment `deal-1-1` of 1070.16 (deal 1: cost 1000.00,
/// the consumer pays the 4% commission and the card surcharge of 2.9%), signed with the dev
/// default `SANDBOX_SECRET`, so it also works against `cargo lambda watch` with no settings.
#[tokio::test]
async fn gateways_sample_event() {
    use shared::auth::Claims;
    use shared::deals::{self, DealFields, Payer, State};
    use shared::payments::{self, GatewayKind, OwnerRef, Payment, Status};
    let mut config = shared::Config::for_tests();
    config.payments.sandbox_secret = "sandbox-secret-change-me".into();
    let app = App::in_memory(config);
    // Unknown payment: a clear 404, nothing recorded.
    let (status, text) = invoke_on(&app, gateways::router(), "gateways", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
    // Deal 1, created by its supplier (21) for consumer 22: payable at once.
    let claims = |sub: &str| Claims::new(sub, chrono::Duration::hours(1));
    let fields = DealFields {
        order_description: Some("A table".into()),
        supplier_id: Some("21".into()),
        consumer_id: Some("22".into()),
        cost: Some("1000.00".parse().unwrap()),
        verify_days: Some(3),
        commission_payer: Some(Payer::Consumer),
        ..DealFields::default()
    };
    let deal = deals::create(&app, &claims("21"), fields).await.unwrap().deal;
    assert_eq!(deal.id, 1);
    let amount = deals::payment_owner::card_amount(&app, &deal, GatewayKind::Sandbox);
    assert_eq!(amount.to_string(), "1070.16");
    let p = Payment::new(
        &app,
        "deal-1-1".into(),
        payments::new_inv_id(),
        "22".into(),
        OwnerRef::new(deals::OWNER_KIND, 1),
        GatewayKind::Sandbox,
        amount,
        "Deal 1".into(),
    );
    payments::open(&app, p, vec![]).await.unwrap();
    for _ in 0..2 {
        // Delivered twice: the same answer, one settlement.
        let (status, text) = invoke_on(&app, gateways::router(), "gateways", None).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let stored = payments::load(&app, "deal-1-1").await.unwrap().unwrap();
        assert_eq!((stored.status, stored.anomaly), (Status::Succeeded, None));
        assert_eq!(deals::load(&app, 1).await.unwrap().unwrap().deal.state, State::Paid);
    }
}

#[tokio::test]
async fn tickets_sample_event() {
    let app = app();
    shared::tickets::inventory::load_demo(&app).await.unwrap();
    let (status, text) = invoke_on(&app, tickets::router(), "tickets", None).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["event"]["id"], "demo-concert");
    assert_eq!(body["free_count"].as_u64(), Some(body["seats"].as_array().unwrap().len() as u64));
}

#[tokio::test]
async fn admin_sample_event() {
    let app = app();
    shared::tickets::inventory::load_demo(&app).await.unwrap();
    let (status, _) = invoke_on(&app, admin::router(), "admin", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the sample carries no token");
    let (status, _) = invoke_on(&app, admin::router(), "admin", Some(&api_tests::token("21", &[]))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not an admin");
    let token = api_tests::token("1", &["admin"]);
    let (status, text) = invoke_on(&app, admin::router(), "admin", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["events"][0]["id"], "demo-concert");
}

/// The sample's body is what the domain queues when the supplier approves deal 1 (checked
/// here against a fresh run), so it stays the producer's format.
#[tokio::test]
async fn notifier_sample_event() {
    let event: SqsEvent = serde_json::from_str(&sample("notifier")).expect("a valid SQS event");
    let body = event.records[0].body.clone().unwrap();
    let srv = api_tests::TestServer::memory().await;
    let (made, id) = api_tests::emails::deal_approved(&srv).await;
    assert_eq!(id, 1);
    let sample: shared::mail::Notification = serde_json::from_str(&body).expect("a notification");
    // The request id is the approving request's (random); the sample names one.
    assert!(made.request_id.is_some() && sample.request_id.is_some(), "{sample:?}");
    let made = shared::mail::Notification { request_id: sample.request_id.clone(), ..made };
    assert_eq!(
        sample,
        made,
        "the sample is what the domain makes: {}",
        serde_json::to_string(&made).unwrap()
    );
    let mailer = Arc::new(notifier::MemoryMailer::default());
    let deps = notifier::Deps::new(Arc::new(MemoryStore::new()), mailer.clone());
    let response = notifier::handle(&deps, event.clone()).await;
    assert!(response.batch_item_failures.is_empty());
    let sent = mailer.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, "user14@example.com");
    assert_eq!(sent[0].subject, "Сделка №1: Подтверждена продавцом");
    // Redelivered: still a success, no second email.
    assert!(notifier::handle(&deps, event).await.batch_item_failures.is_empty());
    assert_eq!(mailer.sent().len(), 1);
}

/// The sample is the stream record of the outbox item the domain writes when the supplier
/// approves deal 1 (as moto's DynamoDB Streams gave it): relayed to the queue once.
#[tokio::test]
async fn relay_sample_event() {
    let event: aws_lambda_events::dynamodb::Event =
        serde_json::from_str(&sample("relay")).expect("a valid DynamoDB Streams event");
    let srv = api_tests::TestServer::start_stream_relayed(api_tests::memory_store()).await;
    let id = api_tests::emails::deal_to_approve(&srv).await;
    assert_eq!((id, api_tests::emails::approve(&srv, id).await), (1, 204));
    let queue = srv.app.local_queue.clone().unwrap();
    assert!(queue.messages().is_empty(), "left for the stream relay");
    let response = relay::handle(srv.app.store.as_ref(), queue.as_ref(), event.clone()).await;
    assert!(response.batch_item_failures.is_empty());
    let sent = queue.messages();
    assert_eq!(sent.len(), 1);
    let item = srv.app.store.get("outbox#deal-1-v2-consumer", "outbox").await.unwrap();
    assert!(item.is_none(), "relayed and deleted");
    let image: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
        event.records[0].change.new_image.clone().into();
    let sample = shared::outbox::decode(&shared::store::dynamo::item_from_attrs(image).unwrap()).unwrap();
    assert_eq!(sent[0], sample, "the sample carries what the domain writes");
    // Delivered again: the item is gone, nothing is sent twice.
    relay::handle(srv.app.store.as_ref(), queue.as_ref(), event).await;
    assert_eq!(queue.sends("deal-1-v2-consumer"), 1);
}

#[tokio::test]
async fn scheduler_sample_event() {
    let event: EventBridgeEvent<scheduler::JobDetail> =
        serde_json::from_str(&sample("scheduler")).expect("a valid scheduled event");
    let report = scheduler::handle(&app(), event).await.expect("job runs");
    assert_eq!(report.job, Some(Job::Deals));
    // Every rule's input in template.yaml names a job this function knows.
    let template = sample_file("template.yaml");
    for job in ["deals", "payments", "reservations", "outbox"] {
        let input = format!(
            r#"{{"detail-type": "Scheduled Event", "source": "tickets.scheduler", "detail": {{"job": "{job}"}}}}"#
        );
        assert!(template.contains(&input), "template.yaml schedules {job}");
        let event: EventBridgeEvent<scheduler::JobDetail> = serde_json::from_str(&input).unwrap();
        assert!(scheduler::handle(&app(), event).await.is_ok());
    }
    let unknown = r#"{"detail-type": "Scheduled Event", "source": "x", "detail": {"job": "nope"}}"#;
    assert!(serde_json::from_str::<EventBridgeEvent<scheduler::JobDetail>>(unknown).is_err());
}

fn sample_file(name: &str) -> String {
    let path = format!("{}/../{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| format!("{path}: {e}"))
}

/// `/dev/outbox` shows each email as it would be sent, and `/dev/outbox/{id}` its page with
/// the QR images inline.
#[tokio::test]
async fn dev_outbox_shows_what_would_be_sent() {
    let srv = api_tests::TestServer::memory().await;
    let (status, body) = srv.get("/dev/outbox", None).await;
    assert_eq!((status, body["count"].as_u64()), (200, Some(0)));
    let (n, _) = api_tests::emails::zoo_tickets(&srv).await;
    let (status, body) = srv.get("/dev/outbox", None).await;
    assert_eq!(status, 200);
    let shown =
        body["messages"].as_array().unwrap().iter().find(|m| m["id"] == n.id.as_str()).unwrap().clone();
    assert!(shown["subject"].as_str().unwrap().starts_with("Ваши билеты в зоопарк на "), "{shown}");
    assert!(shown["text"].as_str().unwrap().contains("2500.00"));
    assert!(shown["html"].as_str().unwrap().contains("cid:qr-3@tickets"));
    let attachments = shown["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 3, "{shown}");
    assert_eq!(
        (attachments[0]["filename"].as_str(), attachments[0]["content_type"].as_str()),
        (Some("qr-1.png"), Some("image/png"))
    );
    assert!(attachments[0]["size"].as_u64().unwrap() > 100);
    let page = srv.http.get(srv.url(&format!("/dev/outbox/{}", n.id))).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert_eq!(html.matches("src=\"data:image/png;base64,").count(), 3, "{html}");
    assert!(!html.contains("cid:"));
    assert_eq!(srv.get("/dev/outbox/nope", None).await.0, 404);
}

/// `events/` holds a sample for every Lambda function (each package under `functions/` with a
/// binary, except the local server), and this file invokes each of them.
#[test]
fn every_function_has_a_sample_event() {
    let root = format!("{}/..", env!("CARGO_MANIFEST_DIR"));
    let this = std::fs::read_to_string(format!("{root}/tests/tests/lambda_events.rs")).unwrap();
    let mut functions = 0;
    for entry in std::fs::read_dir(format!("{root}/functions")).unwrap() {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if name == "local" || !dir.join("src/main.rs").exists() {
            continue;
        }
        functions += 1;
        assert!(
            std::path::Path::new(&format!("{root}/events/{name}.json")).exists(),
            "events/{name}.json is missing"
        );
        assert!(
            this.contains(&format!("async fn {name}_sample_event()")),
            "no test invokes events/{name}.json"
        );
    }
    assert_eq!(functions, 9);
    // Every sample is used here and has the shape its source sends: API Gateway (HTTP API
    // payload 2.0), EventBridge, SQS or DynamoDB Streams.
    for entry in std::fs::read_dir(format!("{root}/events")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let read = [format!("sample(\"{name}\")"), format!("router(), \"{name}\"")];
        assert!(read.iter().any(|r| this.contains(r.as_str())), "no test reads events/{name}.json");
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let known = (v["version"] == "2.0" && v["requestContext"]["http"].is_object())
            || (v["detail-type"].is_string() && v["source"].is_string() && v["detail"].is_object())
            || v["Records"][0]["eventSource"] == "aws:sqs"
            || v["Records"][0]["eventSource"] == "aws:dynamodb";
        assert!(known, "events/{name}.json is not an event any of our sources sends");
    }
}

/// The caps count the client address API Gateway reports (`requestContext.http.sourceIp`),
/// never a header the client sets.
#[test]
fn the_client_address_is_api_gateways_source_ip() {
    let mut event: Value = serde_json::from_str(&sample("tickets")).unwrap();
    event["requestContext"]["http"]["sourceIp"] = "203.0.113.9".into();
    event["headers"]["x-forwarded-for"] = "198.51.100.1".into();
    let req = lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway event");
    let (parts, _) = req.into_parts();
    assert_eq!(shared::http::client_address(&parts).as_deref(), Some("203.0.113.9"));
}
