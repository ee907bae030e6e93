//! Online ticket orders over HTTP through the sandbox gateway (memory store and moto):
//! checkout → payment page → Pay → payment return → approved with e-tickets; Decline;
//! an abandoned payment finished by the reconciliation job; admin refunds.

mod tickets_support;

use std::sync::Arc;

use api_tests::{SECRET, TestServer, token};
use serde_json::{Value, json};
use shared::jobs::Job;
use shared::store::Store;
use shared::tickets::barcode;
use tickets_support::{Buyer, admin, checkout, create_event, online_pr, taken_seats};

const SUCCESS: &str = "https://shop.example/tickets/ok/{order_id}";
const ERROR: &str = "https://shop.example/tickets/error/{order_id}";

async fn server(store: Arc<dyn Store>) -> TestServer {
    let mut config = shared::Config::for_tests();
    config.jwt.secret = SECRET.into();
    config.tickets_success_url = Some(SUCCESS.into());
    config.tickets_error_url = Some(ERROR.into());
    TestServer::start_with(shared::App::new(store, config)).await
}

fn messages(srv: &TestServer) -> Vec<shared::outbox::Notification> {
    srv.app.local_queue.as_ref().expect("memory outbox").messages()
}

/// Follows the sandbox callback's redirect to the payment return; returns its Location.
async fn come_back(srv: &TestServer, callback_location: &str) -> String {
    let res = srv.http.get(callback_location).send().await.unwrap();
    assert_eq!(res.status(), 302, "payment_return redirects with 302");
    res.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn memory_the_whole_online_path() {
    online_path(server(api_tests::memory_store()).await).await;
}

#[tokio::test]
async fn dynamo_the_whole_online_path() {
    let Some(store) = api_tests::dynamo_store().await else { return };
    online_path(server(store).await).await;
}

async fn online_path(srv: TestServer) {
    create_event(&srv, "opera").await;
    let (buyer, pr) = online_pr(&srv, "opera", &["s-1-1", "s-1-2"], "email_online").await;
    let (order_id, url, body) = checkout(&buyer, &pr).await;
    assert!(url.starts_with(&srv.base), "the sandbox page: {url}");
    assert_eq!(body["order"]["totals"]["total"], json!(2060.0), "2000.00 + 3 %");
    assert_eq!(buyer.get(&format!("/api/v1/reservations/{pr}")).await.0, 404, "the PR became the order");
    // The seats are sold to the waiting order, not free.
    assert_eq!(taken_seats(&srv, "opera").await, ["s-1-1", "s-1-2"]);
    assert!(messages(&srv).is_empty(), "no email before the payment");

    // The payment exists with the order's amount and purpose.
    let (_, order) = buyer.get(&format!("/api/v1/ticket_orders/{order_id}")).await;
    assert_eq!(order["order"]["payment_url"], url.as_str());
    let pid = url.rsplit('/').next().unwrap();
    let p = shared::payments::load(&srv.app, pid).await.unwrap().expect("payment");
    assert_eq!(p.amount.to_string(), "2060.00");
    assert_eq!(p.purpose, shared::payments::OwnerRef::new("ticket_order", &order_id));
    assert_eq!(
        p.return_url.as_deref(),
        Some(format!("{}/api/v1/ticket_orders/{order_id}/payment_return", srv.base).as_str())
    );

    // A browser return before paying: still unpaid, the error page, nothing changes.
    let early = come_back(
        &srv,
        &format!("{}/api/v1/ticket_orders/{order_id}/payment_return?status=success", srv.base),
    )
    .await;
    assert_eq!(early, ERROR.replace("{order_id}", &order_id), "the URL's query is not trusted");
    assert_eq!(buyer.get(&format!("/api/v1/ticket_orders/{order_id}")).await.1["order"]["status"], "ordered");

    // Press Pay; the gateway sends the browser to the payment return, which sends it on.
    let (status, location) = api_tests::press(&srv, &url, "succeeded").await;
    assert_eq!(status, 303);
    assert!(location.ends_with(&format!("/api/v1/ticket_orders/{order_id}/payment_return")), "{location}");
    assert_eq!(come_back(&srv, &location).await, SUCCESS.replace("{order_id}", &order_id));

    // Step 3: approved, bar codes.
    let (status, body) = buyer.get(&format!("/api/v1/ticket_orders/{order_id}")).await;
    assert_eq!(status, 200, "{body}");
    let order = &body["order"];
    assert_eq!(order["status"], "approved");
    let codes: Vec<String> = order["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["bar_code"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 2);
    assert!(codes.iter().all(|c| barcode::is_valid(c)), "{codes:?}");

    // Emails: buyer, box office, and e-tickets with a QR per seat — once.
    let sent = messages(&srv);
    let templates: Vec<&str> = sent.iter().map(|n| n.template()).collect();
    assert_eq!(templates, ["ticket_order_buyer", "ticket_order_admin", "e_tickets"], "{sent:?}");
    let etickets = &sent[2];
    assert_eq!(etickets.to, "anna@example.com");
    let data = etickets.data();
    assert_eq!(data["paid"], true);
    let tickets = data["tickets"].as_array().unwrap();
    assert_eq!(tickets.len(), 2);
    for t in tickets {
        assert!(codes.contains(&t["code"].as_str().unwrap().to_owned()));
    }

    // Returning again, or the reconciliation job, changes nothing and sends nothing more.
    assert_eq!(come_back(&srv, &location).await, SUCCESS.replace("{order_id}", &order_id));
    srv.app.clock.advance(chrono::Duration::hours(1));
    shared::jobs::run(&srv.app, Job::Payments).await.unwrap();
    assert_eq!(messages(&srv).len(), 3);
    assert_eq!(taken_seats(&srv, "opera").await, ["s-1-1", "s-1-2"], "sold seats stay sold");
}

#[tokio::test]
async fn memory_a_declined_payment_cancels_the_order() {
    declined(server(api_tests::memory_store()).await).await;
}

#[tokio::test]
async fn dynamo_a_declined_payment_cancels_the_order() {
    let Some(store) = api_tests::dynamo_store().await else { return };
    declined(server(store).await).await;
}

async fn declined(srv: TestServer) {
    create_event(&srv, "ballet").await;
    let (buyer, pr) = online_pr(&srv, "ballet", &["s-2-1"], "self_online").await;
    let (order_id, url, _) = checkout(&buyer, &pr).await;
    assert_eq!(taken_seats(&srv, "ballet").await, ["s-2-1"]);
    let (status, location) = api_tests::press(&srv, &url, "failed").await;
    assert_eq!(status, 303);
    // The error page gets the reason (seed 000's success_or_error message).
    let why = "Банк отклонил оплату, заказ отменён";
    let reason: String = url::form_urlencoded::byte_serialize(why.as_bytes()).collect();
    assert_eq!(
        come_back(&srv, &location).await,
        format!("{}?reason={reason}", ERROR.replace("{order_id}", &order_id))
    );
    let (_, body) = buyer.get(&format!("/api/v1/ticket_orders/{order_id}")).await;
    assert_eq!(body["order"]["status"], "cancelled");
    assert_eq!(body["order"]["payment_error"], why);
    assert_eq!(body["order"]["payment_url"], Value::Null, "no link to pay a cancelled order");
    assert!(taken_seats(&srv, "ballet").await.is_empty(), "the seat is free again");
    assert!(messages(&srv).is_empty());
    // Someone else can buy it now.
    let (other, pr2) = online_pr(&srv, "ballet", &["s-2-1"], "self_online").await;
    checkout(&other, &pr2).await;
}

#[tokio::test]
async fn memory_an_abandoned_payment_is_finished_by_the_job() {
    abandoned(server(api_tests::memory_store()).await).await;
}

#[tokio::test]
async fn dynamo_an_abandoned_payment_is_finished_by_the_job() {
    let Some(store) = api_tests::dynamo_store().await else { return };
    abandoned(server(store).await).await;
}

async fn abandoned(srv: TestServer) {
    create_event(&srv, "circus").await;
    let (buyer, pr) = online_pr(&srv, "circus", &["s-1-5", "s-1-6"], "email_online").await;
    let (order_id, url, _) = checkout(&buyer, &pr).await;
    // The buyer opens the page and walks away.
    assert_eq!(srv.http.get(&url).send().await.unwrap().status(), 200);
    // Before the payment timeout the job leaves it alone.
    shared::jobs::run(&srv.app, Job::Payments).await.unwrap();
    assert_eq!(buyer.get(&format!("/api/v1/ticket_orders/{order_id}")).await.1["order"]["status"], "ordered");
    // Past the seat timeout the sold seats are not swept either.
    srv.app.clock.advance(chrono::Duration::minutes(14));
    shared::jobs::run(&srv.app, Job::Reservations).await.unwrap();
    assert_eq!(taken_seats(&srv, "circus").await, ["s-1-5", "s-1-6"]);
    srv.app.clock.advance(chrono::Duration::minutes(2));
    let report = shared::jobs::run(&srv.app, Job::Payments).await.unwrap();
    assert_eq!(report.changed, 1, "{report:?}");
    let (_, body) = buyer.get(&format!("/api/v1/ticket_orders/{order_id}")).await;
    assert_eq!(body["order"]["status"], "cancelled");
    assert_eq!(body["order"]["payment_error"], "Время на оплату истекло, заказ отменён");
    assert!(taken_seats(&srv, "circus").await.is_empty());
    // A late press finds the payment closed; the order stays cancelled.
    let page = srv.http.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(!page.contains("<form"), "{page}");
    assert!(messages(&srv).is_empty());
}

/// A paid `self_online` order of 2 × 1000.00 (+3 % = 2060.00); returns its id.
async fn paid_order(srv: &TestServer, event: &str) -> String {
    create_event(srv, event).await;
    let (buyer, pr) = online_pr(srv, event, &["s-1-3", "s-1-4"], "self_online").await;
    let (order_id, url, _) = checkout(&buyer, &pr).await;
    let (_, location) = api_tests::press(srv, &url, "succeeded").await;
    come_back(srv, &location).await;
    order_id
}

#[tokio::test]
async fn memory_admin_refunds() {
    refunds(server(api_tests::memory_store()).await).await;
}

#[tokio::test]
async fn dynamo_admin_refunds() {
    let Some(store) = api_tests::dynamo_store().await else { return };
    refunds(server(store).await).await;
}

async fn refunds(srv: TestServer) {
    let order_id = paid_order(&srv, "jazz").await;
    let path = format!("/api/v1/admin/ticket_orders/{order_id}/refund");
    let before = messages(&srv).len();

    assert_eq!(srv.post(&path, None, &json!({"amount": "1.00"})).await.0, 401);
    assert_eq!(srv.post(&path, Some(&token("5", &[])), &json!({"amount": "1.00"})).await.0, 403);
    for bad in [json!("0.00"), json!("-1.00"), json!("1.005"), json!("abc"), json!(null), json!(10.123)] {
        let (status, body) = srv.post(&path, Some(&admin()), &json!({"amount": bad})).await;
        assert!(status == 422 || status == 400, "{bad}: {status} {body}");
        if status == 422 {
            assert_eq!(body["error"]["field"], "amount", "{bad}: {body}");
        }
    }
    let (status, body) = srv.post(&path, Some(&admin()), &json!({"amount": "2060.01"})).await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("amount")), "more than paid: {body}");

    // Partial.
    let (status, body) = srv
        .post(&path, Some(&admin()), &json!({"amount": "500.50", "reason": "место с плохим обзором"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["order"]["status"], "approved", "a partial refund leaves the tickets valid: {body}");
    assert_eq!(body["order"]["refunded"], json!(500.5));
    let codes: Vec<&Value> =
        body["order"]["tickets"].as_array().unwrap().iter().map(|t| &t["bar_code"]).collect();
    assert!(codes.len() == 2 && codes.iter().all(|c| c.is_string()), "{body}");
    assert_eq!(body["order"]["refunds"][0]["state"], "completed");
    assert_eq!(taken_seats(&srv, "jazz").await, ["s-1-3", "s-1-4"], "a partial refund keeps the seats");
    let sent = messages(&srv);
    let notice = sent.last().unwrap();
    assert_eq!((notice.template(), notice.to.as_str()), ("refund", "anna@example.com"));
    assert_eq!(notice.data()["amount"], "500.50");
    assert!(notice.data()["subject"].as_str().unwrap().contains(&order_id));
    assert_eq!(sent.len(), before + 1);

    // More than what is left is refused; the rest is fine.
    let (status, body) = srv.post(&path, Some(&admin()), &json!({"amount": 1559.51})).await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("amount")), "{body}");
    let (status, body) = srv.post(&path, Some(&admin()), &json!({"amount": 1559.50})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["order"]["refunded"], json!(2060.0));
    assert_eq!(body["order"]["status"], "refunded");
    assert!(body["order"]["tickets"].as_array().unwrap().iter().all(|t| t["bar_code"].is_null()), "{body}");
    assert_eq!(body["order"]["refunds"].as_array().unwrap().len(), 2);
    assert!(taken_seats(&srv, "jazz").await.is_empty(), "a full refund frees the seats");
    let (status, body) = srv.post(&path, Some(&admin()), &json!({"amount": "0.01"})).await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("amount")), "{body}");
    let pid = body_payment(&srv, &order_id).await;
    let p = shared::payments::load(&srv.app, &pid).await.unwrap().unwrap();
    assert_eq!(
        (p.status, p.refunded_amount.to_string().as_str()),
        (shared::payments::Status::Refunded, "2060.00")
    );

    // Cash orders and unknown orders cannot be refunded.
    let (status, _) =
        srv.post("/api/v1/admin/ticket_orders/nope/refund", Some(&admin()), &json!({"amount": "1.00"})).await;
    assert_eq!(status, 404);
}

async fn body_payment(srv: &TestServer, order_id: &str) -> String {
    body_payment_id(srv, order_id).await
}

#[tokio::test]
async fn memory_concurrent_refunds_never_exceed_the_paid_amount() {
    let store: Arc<dyn Store> = Arc::new(api_tests::jittery(api_tests::memory_store()));
    concurrent_refunds(server(store).await).await;
}

#[tokio::test]
async fn dynamo_concurrent_refunds_never_exceed_the_paid_amount() {
    let Some(store) = api_tests::dynamo_store().await else { return };
    concurrent_refunds(server(store).await).await;
}

async fn concurrent_refunds(srv: TestServer) {
    let order_id = paid_order(&srv, "rock").await;
    let path = format!("/api/v1/admin/ticket_orders/{order_id}/refund");
    // Ten refunds of 600.00 at once: at most three fit into 2060.00.
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (http, url) = (srv.http.clone(), srv.url(&path));
            tokio::spawn(async move {
                let res = http
                    .post(url)
                    .bearer_auth(admin())
                    .json(&json!({"amount": "600.00"}))
                    .send()
                    .await
                    .unwrap();
                res.status().as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert!(statuses.iter().all(|s| [200, 409, 422].contains(s)), "{statuses:?}");
    assert!((1..=3).contains(&ok), "{statuses:?}");
    let (_, body) = srv.get(&format!("/api/v1/admin/ticket_orders/{order_id}"), Some(&admin())).await;
    let refunds = body["order"]["refunds"].as_array().unwrap();
    assert_eq!(refunds.len(), ok, "{body}");
    let refunded: rust_decimal::Decimal = body["order"]["refunded"].to_string().parse().unwrap();
    assert_eq!(refunded, rust_decimal::Decimal::from(600 * ok as i64));
    assert!(refunded <= rust_decimal::Decimal::from(2060));
    let pid = body_payment(&srv, &order_id).await;
    let p = shared::payments::load(&srv.app, &pid).await.unwrap().unwrap();
    assert_eq!(p.refunded_amount, refunded, "the payment records the same sum");
}

/// A POST with an `Idempotency-Key`; returns the status and the raw body text.
async fn post_with_key(buyer: &Buyer, path: &str, key: &str, body: &Value) -> (u16, String) {
    let mut req = buyer.http.post(format!("{}{path}", buyer.base)).header("Idempotency-Key", key).json(body);
    if let Some(t) = &buyer.token {
        req = req.header("X-Reservation-Token", t);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn memory_idempotent_initialize_and_checkout() {
    idempotent(server(api_tests::memory_store()).await).await;
}

#[tokio::test]
async fn dynamo_idempotent_initialize_and_checkout() {
    let Some(store) = api_tests::dynamo_store().await else { return };
    idempotent(server(store).await).await;
}

async fn idempotent(srv: TestServer) {
    create_event(&srv, "idem").await;
    let key = uuid::Uuid::new_v4().to_string();
    let mut buyer = Buyer::anonymous(&srv);
    let body = json!({"event_id": "idem"});
    // Without a token the key alone names the caller and its replay hands out the token:
    // a guessable key is refused.
    let (status, short) = post_with_key(&buyer, "/api/v1/reservations", "order-1", &body).await;
    let short: Value = serde_json::from_str(&short).unwrap();
    assert_eq!((status, short["error"]["field"].as_str()), (422, Some("Idempotency-Key")), "{short}");
    let (status, first) = post_with_key(&buyer, "/api/v1/reservations", &key, &body).await;
    assert_eq!(status, 201, "{first}");
    let (status, again) = post_with_key(&buyer, "/api/v1/reservations", &key, &body).await;
    assert_eq!((status, &again), (201, &first), "the same answer, the same token, one PR");
    let (status, other) =
        post_with_key(&buyer, "/api/v1/reservations", &key, &json!({"event_id": "x"})).await;
    let other: Value = serde_json::from_str(&other).unwrap();
    assert_eq!((status, other["error"]["field"].as_str()), (422, Some("Idempotency-Key")), "{other}");
    let first: Value = serde_json::from_str(&first).unwrap();
    buyer.token = Some(first["token"].as_str().unwrap().to_owned());
    let pr = first["reservation"]["id"].as_str().unwrap().to_owned();

    assert_eq!(buyer.hold(&pr, "s-2-1").await.0, 200);
    let customer = json!({"name": "Анна", "email": "anna@example.com", "phone": "+79990000001"});
    let path = format!("/api/v1/reservations/{pr}/order_type");
    let typed = json!({"order_type": "self_online", "customer": customer});
    assert_eq!(buyer.call(reqwest::Method::PUT, &path, Some(&typed)).await.0, 200);

    let checkout = format!("/api/v1/reservations/{pr}/checkout");
    let key = uuid::Uuid::new_v4().to_string();
    let (status, first) = post_with_key(&buyer, &checkout, &key, &json!({})).await;
    assert_eq!(status, 201, "{first}");
    assert!(first.contains(r#""total":515.52"#), "money keeps its decimals: {first}");
    let (status, again) = post_with_key(&buyer, &checkout, &key, &json!({})).await;
    assert_eq!((status, &again), (201, &first), "a retried checkout answers the same order and payment");
    // Without the key: the PR became the order, and checkout answers that order (200).
    let (status, repeat) = buyer.post(&checkout, &json!({})).await;
    let first: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(status, 200, "{repeat}");
    assert_eq!(repeat["order"]["id"], first["order"]["id"]);
    assert_eq!(repeat["payment_url"], first["payment_url"], "still waiting for its payment");
    let (status, _) = post_with_key(&buyer, &checkout, "", &json!({})).await;
    assert_eq!(status, 400, "an empty key is malformed");
}

/// A gateway that refuses the refund (Robokassa without the Refund API's Password3): the
/// refund's reservation on the order is taken back, nothing is refunded, no email.
#[tokio::test]
async fn a_refused_gateway_refund_changes_nothing() {
    let mut config = shared::Config::for_tests();
    config.jwt.secret = SECRET.into();
    config.payments.tickets_gateway = shared::payments::GatewayKind::Robokassa;
    config.payments.robokassa.login = "shop".into();
    config.payments.robokassa.password1 = "p1".into();
    config.payments.robokassa.password2 = "p2".into();
    let srv = TestServer::start_with(shared::App::new(api_tests::memory_store(), config)).await;
    create_event(&srv, "rk").await;
    let (buyer, pr) = online_pr(&srv, "rk", &["s-1-1"], "self_online").await;
    let (order_id, url, _) = checkout(&buyer, &pr).await;
    assert!(url.contains("/Merchant/Index.aspx"), "{url}");
    // A verified ResultURL callback settles the payment.
    let pid = body_payment_id(&srv, &order_id).await;
    let amount = shared::tickets::orders::get(&srv.app, &order_id).await.unwrap().order.totals.total;
    let outcome = shared::payments::Outcome::Succeeded { method: None, amount, currency: None };
    shared::payments::settle(&srv.app, &pid, outcome).await.unwrap();
    let sent = messages(&srv).len();
    assert_eq!(sent, 2, "buyer and box office");

    let path = format!("/api/v1/admin/ticket_orders/{order_id}/refund");
    let (status, body) = srv.post(&path, Some(&admin()), &json!({"amount": "100.00"})).await;
    assert_eq!(status, 502, "{body}");
    let (_, body) = srv.get(&format!("/api/v1/admin/ticket_orders/{order_id}"), Some(&admin())).await;
    assert_eq!(body["order"]["status"], "approved", "{body}");
    assert_eq!(body["order"]["refunded"], json!(0.0));
    assert!(body["order"]["refunds"].as_array().unwrap().is_empty());
    let p = shared::payments::load(&srv.app, &pid).await.unwrap().unwrap();
    assert_eq!(p.status, shared::payments::Status::Succeeded);
    assert_eq!(messages(&srv).len(), sent, "no refund email");
}

async fn body_payment_id(srv: &TestServer, order_id: &str) -> String {
    let s = shared::tickets::orders::get(&srv.app, order_id).await.unwrap();
    s.order.payment_id.expect("an online order has a payment")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_racing_settlements_approve_once() {
    let store: Arc<dyn Store> = Arc::new(api_tests::jittery(api_tests::memory_store()));
    racing_settlements(server(store).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamo_racing_settlements_approve_once() {
    let Some(store) = api_tests::dynamo_store().await else { return };
    racing_settlements(server(store).await).await;
}

/// The bank has the payment; browser returns, the reconciliation job and a repeated
/// callback race to settle it: the order is approved once, its emails queued once.
async fn racing_settlements(srv: TestServer) {
    create_event(&srv, "race").await;
    let (buyer, pr) = online_pr(&srv, "race", &["s-1-9"], "email_online").await;
    let (order_id, _, _) = checkout(&buyer, &pr).await;
    let pid = body_payment_id(&srv, &order_id).await;
    let amount = shared::tickets::orders::get(&srv.app, &order_id).await.unwrap().order.totals.total;
    shared::payments::gateways::sandbox::record(&srv.app, &pid, "succeeded", amount).await.unwrap();
    srv.app.clock.advance(chrono::Duration::hours(1));
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (http, url, app) = (
            srv.http.clone(),
            srv.url(&format!("/api/v1/ticket_orders/{order_id}/payment_return")),
            srv.app.clone(),
        );
        tasks.push(tokio::spawn(async move {
            if i % 4 == 0 {
                shared::jobs::run(&app, Job::Payments).await.map(|_| ()).map_err(|e| e.to_string())
            } else {
                let res = http.get(url).send().await.unwrap();
                if res.status() == 302 { Ok(()) } else { Err(format!("{}", res.status())) }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let (_, body) = buyer.get(&format!("/api/v1/ticket_orders/{order_id}")).await;
    assert_eq!(body["order"]["status"], "approved");
    let templates: Vec<&str> = messages(&srv).iter().map(|n| n.template()).collect();
    assert_eq!(templates, ["ticket_order_buyer", "ticket_order_admin", "e_tickets"]);
}
