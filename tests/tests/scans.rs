//! Entry control over HTTP: a gate scans a ticket's code (seated bar code or QR, zoo QR) and
//! the ticket is admitted exactly once; forged, refunded, cancelled and other days' tickets are
//! refused. On the embedded store and on DynamoDB (moto).

mod tickets_support;

use std::sync::Arc;

use api_tests::emails::zoo_tickets;
use api_tests::{TestServer, decode_qr_data_url, decode_qr_svg, race, token};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde_json::{Value, json};
use shared::ticket_keys::TicketKey;
use tickets_support::{admin, checkout, create_event, online_pr};

fn gate() -> String {
    token("77", &["gate"])
}

async fn scan(srv: &TestServer, code: &str, gate_name: &str) -> (u16, Value) {
    srv.post("/api/v1/admin/scans", Some(&gate()), &json!({"code": code, "gate": gate_name})).await
}

/// Moves the server's clock to `at`.
fn travel(srv: &TestServer, at: DateTime<Utc>) {
    srv.app.clock.advance(at - srv.app.clock.now());
}

/// A cash order of `seats`, paid at the box office: its id and its tickets.
async fn cash_order(srv: &TestServer, event: &str, seats: &[&str]) -> (String, Vec<Value>) {
    let (id, _) = unpaid_cash_order(srv, event, seats).await;
    let (status, body) =
        srv.post(&format!("/api/v1/admin/ticket_orders/{id}/paid"), Some(&admin()), &json!({})).await;
    assert_eq!(status, 200, "{body}");
    (id, body["order"]["tickets"].as_array().unwrap().clone())
}

/// A cash order of `seats` (approved at once, not paid yet): its id and its tickets.
async fn unpaid_cash_order(srv: &TestServer, event: &str, seats: &[&str]) -> (String, Vec<Value>) {
    let (_, body) = tickets_support::cash_checkout(srv, event, seats, tickets_support::anna()).await;
    let order = &body["order"];
    (order["id"].as_str().unwrap().to_owned(), order["tickets"].as_array().unwrap().clone())
}

async fn qr_of(srv: &TestServer, ticket: &Value) -> String {
    let res = srv.http.get(ticket["qr_url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(res.status(), 200);
    decode_qr_svg(&res.text().await.unwrap())
}

#[tokio::test]
async fn memory_seated_tickets_at_the_door() {
    seated(TestServer::memory().await).await;
}

#[tokio::test]
async fn dynamo_seated_tickets_at_the_door() {
    let Some(store) = api_tests::dynamo_store().await else { return };
    seated(TestServer::start(store).await).await;
}

async fn seated(srv: TestServer) {
    create_event(&srv, "door").await; // 2030-05-01T19:00:00+03:00
    let (order, tickets) = cash_order(&srv, "door", &["s-1-1", "s-1-2"]).await;
    let code = tickets[0]["bar_code"].as_str().unwrap().to_owned();
    let qr = qr_of(&srv, &tickets[1]).await;

    // Staff only; a gate's name is checked.
    let body = json!({"code": code, "gate": "north"});
    assert_eq!(srv.post("/api/v1/admin/scans", None, &body).await.0, 401);
    assert_eq!(srv.post("/api/v1/admin/scans", Some(&token("5", &[])), &body).await.0, 403);
    let (status, body) = scan(&srv, &code, "").await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("gate")), "{body}");

    // Not on another day.
    let (status, body) = scan(&srv, &code, "north").await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("code")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("2030-05-01"), "{body}");

    // On the day: once by its bar code, then 409 naming the first use, by QR or bar code.
    travel(&srv, Utc.with_ymd_and_hms(2030, 5, 1, 15, 0, 0).unwrap());
    let (status, body) = scan(&srv, &code, "north").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["admitted"].as_bool(), body["kind"].as_str()), (Some(true), Some("seat")));
    assert_eq!(
        (body["ticket"].as_str(), body["order"].as_str()),
        (Some(code.as_str()), Some(order.as_str()))
    );
    assert_eq!(body["detail"], "s-1-1");
    assert_eq!(body["gate"], "north");
    let first: DateTime<Utc> = body["used_at"].as_str().unwrap().parse().unwrap();
    assert!((first - Utc.with_ymd_and_hms(2030, 5, 1, 15, 0, 0).unwrap()).num_seconds().abs() < 60);
    let (status, body) = scan(&srv, &code, "south").await;
    assert_eq!(status, 409, "{body}");
    let message = body["message"].as_str().unwrap();
    let when = first.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert!(message.contains("gate north") && message.contains(&when), "{message}");
    let (status, body) =
        srv.post("/api/v1/admin/scans", Some(&admin()), &json!({"code": qr, "gate": "west"})).await;
    assert_eq!(status, 200, "the QR of the second ticket, by an admin: {body}");
    assert_eq!(body["detail"], "s-1-2");
    let (status, body) = scan(&srv, &qr, "east").await;
    assert_eq!(status, 409, "{body}");
    assert!(body["message"].as_str().unwrap().contains("gate west"), "{body}");

    // Forged: another key's signature, a field changed, a bar code never issued.
    let forged = TicketKey::from_secret("a forger's own key, strong as you like.....").sign(&[
        "TICKET",
        tickets[1]["bar_code"].as_str().unwrap(),
        &order,
        "door",
        "s-1-2",
    ]);
    let changed = qr.replace(";s-1-2;", ";s-1-9;");
    let unknown = shared::tickets::barcode::new_bar_code();
    for bad in [forged, changed, unknown, "TICKET;1;2".into()] {
        let (status, body) = scan(&srv, &bad, "north").await;
        assert_eq!((status, body["error"]["field"].as_str()), (422, Some("code")), "{bad}: {body}");
    }

    // A cancelled cash order's ticket is refused.
    let (cancelled, tickets) = cash_order(&srv, "door", &["s-1-5"]).await;
    let (status, _) = srv
        .post(&format!("/api/v1/admin/ticket_orders/{cancelled}/cancel"), Some(&admin()), &json!({}))
        .await;
    assert_eq!(status, 200);
    let (status, body) = scan(&srv, tickets[0]["bar_code"].as_str().unwrap(), "north").await;
    assert_eq!(status, 422, "{body}");
    assert!(body["message"].as_str().unwrap().contains("cancelled"), "{body}");

    // A refunded online order's ticket is refused.
    let (buyer, pr) = online_pr(&srv, "door", &["s-2-1"], "self_online").await;
    let (refunded, url, body) = checkout(&buyer, &pr).await;
    assert!(body["order"]["tickets"][0]["bar_code"].is_null(), "not paid yet: {body}");
    let (status, _) = api_tests::press(&srv, &url, "succeeded").await;
    assert_eq!(status, 303);
    let (_, body) = buyer.get(&format!("/api/v1/ticket_orders/{refunded}")).await;
    let bar_code = body["order"]["tickets"][0]["bar_code"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/admin/ticket_orders/{refunded}/refund");
    let (status, body) = srv.post(&path, Some(&admin()), &json!({"amount": "515.52"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["order"]["status"], "refunded", "{body}");
    let (status, body) = scan(&srv, &bar_code, "north").await;
    assert_eq!(status, 422, "{body}");
    assert!(body["message"].as_str().unwrap().contains("refunded"), "{body}");
}

/// The tickets of a paid zoo session (2 adults at 10:00, a child at 10:30) as a scanner reads
/// them, and the payment id.
async fn zoo(srv: &TestServer) -> (Vec<String>, String, NaiveDate) {
    let (_, session) = zoo_tickets(srv).await;
    let tickets = session["tickets"].as_array().unwrap();
    let codes = tickets.iter().map(|t| decode_qr_data_url(t["qr_code"].as_str().unwrap())).collect();
    let date = NaiveDate::parse_from_str(tickets[0]["visit_date"].as_str().unwrap(), "%Y-%m-%d").unwrap();
    (codes, session["payment_id"].as_str().unwrap().to_owned(), date)
}

/// `date` at `hh:mm` Moscow time.
fn msk(date: NaiveDate, hh: u32, mm: u32) -> DateTime<Utc> {
    Utc.from_utc_datetime(&date.and_hms_opt(hh, mm, 0).unwrap()) - chrono::Duration::hours(3)
}

async fn activated(srv: &TestServer, id: &str) -> Value {
    let (status, body) = srv.get(&format!("/v1/payments/{id}"), Some(&token("21", &[]))).await;
    assert_eq!(status, 200, "{body}");
    body["data"]["metadata"]["tickets_activated"].clone()
}

#[tokio::test]
async fn memory_zoo_tickets_at_the_gate() {
    zoo_gate(TestServer::memory().await).await;
}

#[tokio::test]
async fn dynamo_zoo_tickets_at_the_gate() {
    let Some(store) = api_tests::dynamo_store().await else { return };
    zoo_gate(TestServer::start(store).await).await;
}

async fn zoo_gate(srv: TestServer) {
    let (codes, id, date) = zoo(&srv).await;
    assert_eq!(activated(&srv, &id).await, false);
    let (status, body) = scan(&srv, &codes[0], "main").await;
    assert_eq!(status, 422, "not today: {body}");

    // The day, 09:45: the 10:00 adults are in; the 10:30 child waits until 10:00.
    travel(&srv, msk(date, 9, 45));
    let (status, body) = scan(&srv, &codes[0], "main").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["kind"].as_str(), body["detail"].as_str()), (Some("zoo"), Some("adult")));
    assert_eq!(body["ticket"], format!("{id}-1"));
    assert_eq!(activated(&srv, &id).await, true, "the first scan activates the session");
    let (status, body) = scan(&srv, &codes[0], "side").await;
    assert_eq!(status, 409, "{body}");
    assert!(body["message"].as_str().unwrap().contains("gate main"), "{body}");
    let (status, body) = scan(&srv, &codes[2], "main").await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("code")), "too early: {body}");
    travel(&srv, msk(date, 10, 5));
    assert_eq!(scan(&srv, &codes[2], "main").await.0, 200);
    assert_eq!(scan(&srv, &codes[1], "main").await.0, 200);
    assert_eq!(activated(&srv, &id).await, true);

    // Forged: a changed ticket type, another key.
    let (status, _) = scan(&srv, &codes[2].replace(";child;", ";adult;"), "main").await;
    assert_eq!(status, 422);
    let other = TicketKey::from_secret("a forger's own key, strong as you like.....").sign(&[
        "ZOOTICKET",
        &format!("{id}-1"),
        &id,
        &date.to_string(),
        "10:00",
        "adult",
    ]);
    assert_eq!(scan(&srv, &other, "main").await.0, 422);
}

/// Ten gates scan one code at once: exactly one admits, nine answer 409 naming its gate. And
/// two tickets of one session scanned at once are both admitted (the session's activation is
/// retried, not lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_ten_gates_one_code_one_admission() {
    ten_gates(api_tests::memory_store()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamo_ten_gates_one_code_one_admission() {
    let Some(store) = api_tests::dynamo_store().await else { return };
    ten_gates(store).await;
}

async fn ten_gates(inner: Arc<dyn shared::store::Store>) {
    let store = Arc::new(api_tests::jittery(inner));
    let srv = Arc::new(TestServer::start(store.clone()).await);
    let (codes, id, date) = zoo(&srv).await;
    travel(&srv, msk(date, 10, 1));

    let answers = race(10, |i| {
        let (srv, code) = (srv.clone(), codes[0].clone());
        async move { scan(&srv, &code, &format!("gate-{i}")).await }
    })
    .await;
    let admitted: Vec<&Value> = answers.iter().filter(|(s, _)| *s == 200).map(|(_, b)| b).collect();
    assert_eq!(admitted.len(), 1, "{answers:?}");
    let winner = admitted[0]["gate"].as_str().unwrap();
    let lost: Vec<&Value> = answers.iter().filter(|(s, _)| *s == 409).map(|(_, b)| b).collect();
    assert_eq!(lost.len(), 9, "{answers:?}");
    for body in lost {
        assert!(body["message"].as_str().unwrap().contains(&format!("gate {winner}")), "{body}");
    }
    assert!(store.conflicts() >= 9, "the losers lost the conditional write");

    let answers = race(2, |i| {
        let (srv, code) = (srv.clone(), codes[1 + i].clone());
        async move { scan(&srv, &code, "main").await.0 }
    })
    .await;
    assert_eq!(answers, [200, 200]);
    assert_eq!(activated(&srv, &id).await, true);
}
