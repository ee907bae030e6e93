//! Helpers for the ticket ordering tests: a test event and a buyer that keeps its
//! reservation token.
#![allow(dead_code)]

use api_tests::{TestServer, token};
use serde_json::{Value, json};

/// Sector `s`: row 1 seats 1–10 at 1000.00 (category A), row 2 seats 1–10 at 500.50 (B).
pub fn seat_map(id: &str) -> Value {
    json!({
        "id": id,
        "title": format!("Test event {id}"),
        "starts_at": "2030-05-01T19:00:00+03:00",
        "venue": "Test hall",
        "price_categories": [
            {"id": "A", "name": "Front", "price": "1000.00"},
            {"id": "B", "name": "Back", "price": "500.50"}
        ],
        "sectors": [{"id": "s", "name": "Stalls", "rows": [
            {"row": "1", "price_category": "A", "seats": {"from": 1, "to": 10}},
            {"row": "2", "price_category": "B", "seats": {"from": 1, "to": 10}}
        ]}]
    })
}

pub fn admin() -> String {
    token("900", &["admin"])
}

/// Creates a test event through the admin endpoint.
pub async fn create_event(srv: &TestServer, id: &str) {
    let (status, body) = srv.post("/api/v1/admin/events", Some(&admin()), &seat_map(id)).await;
    assert_eq!(status, 201, "{body}");
}

/// A buyer: anonymous with a reservation token once initialized, or a user with a JWT.
#[derive(Clone)]
pub struct Buyer {
    pub base: String,
    pub http: reqwest::Client,
    pub token: Option<String>,
    pub jwt: Option<String>,
}

impl Buyer {
    pub fn anonymous(srv: &TestServer) -> Buyer {
        Buyer { base: srv.base.clone(), http: srv.http.clone(), token: None, jwt: None }
    }

    pub fn user(srv: &TestServer, sub: &str) -> Buyer {
        Buyer { jwt: Some(token(sub, &[])), ..Buyer::anonymous(srv) }
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.header("X-Reservation-Token", t);
        }
        if let Some(j) = &self.jwt {
            req = req.bearer_auth(j);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let bytes = res.bytes().await.expect("body");
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, json)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// Initializes a PR for `event` and keeps the token; returns the reservation id.
    pub async fn init(&mut self, event: &str) -> String {
        let (status, body) = self.post("/api/v1/reservations", &json!({"event_id": event})).await;
        assert!(status == 201 || status == 200, "{status} {body}");
        if let Some(t) = body["token"].as_str() {
            self.token = Some(t.to_owned());
        }
        body["reservation"]["id"].as_str().expect("reservation id").to_owned()
    }

    pub async fn hold(&self, pr: &str, seat: &str) -> (u16, Value) {
        self.post(&format!("/api/v1/reservations/{pr}/tickets"), &json!({"seat_id": seat})).await
    }
}

/// Seat ids of an event that are not free.
pub async fn taken_seats(srv: &TestServer, event: &str) -> Vec<String> {
    let (status, body) = srv.get(&format!("/api/v1/events/{event}/seats"), None).await;
    assert_eq!(status, 200, "{body}");
    body["seats"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["free"] == false)
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A buyer who holds `seats` of `event` with an online order type; returns the PR id.
pub async fn online_pr(srv: &TestServer, event: &str, seats: &[&str], order_type: &str) -> (Buyer, String) {
    let mut buyer = Buyer::anonymous(srv);
    let pr = buyer.init(event).await;
    for seat in seats {
        let (status, body) = buyer.hold(&pr, seat).await;
        assert_eq!(status, 200, "{body}");
    }
    let customer = json!({"name": "Анна", "email": "anna@example.com", "phone": "+79990000001"});
    let (status, body) = buyer
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/reservations/{pr}/order_type"),
            Some(&json!({"order_type": order_type, "customer": customer})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    (buyer, pr)
}

/// Checkout of an online PR: 201, `ordered`, a payment page.
pub async fn checkout(buyer: &Buyer, pr: &str) -> (String, String, Value) {
    let (status, body) = buyer.post(&format!("/api/v1/reservations/{pr}/checkout"), &json!({})).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["order"]["status"], "ordered", "{body}");
    let url = body["payment_url"].as_str().expect("payment_url").to_owned();
    (body["order"]["id"].as_str().unwrap().to_owned(), url, body)
}

/// An online order of `seats` waiting for its payment: (order id, payment page).
pub async fn online_order(
    srv: &TestServer,
    event: &str,
    seats: &[&str],
    order_type: &str,
) -> (String, String) {
    let (buyer, pr) = online_pr(srv, event, seats, order_type).await;
    let (order, url, _) = checkout(&buyer, &pr).await;
    (order, url)
}

/// The order as the box office sees it.
pub async fn admin_order(srv: &TestServer, order: &str) -> Value {
    let (status, body) = srv.get(&format!("/api/v1/admin/ticket_orders/{order}"), Some(&admin())).await;
    assert_eq!(status, 200, "{body}");
    body["order"].clone()
}

/// The payment id of an online order.
pub async fn payment_of(srv: &TestServer, order: &str) -> String {
    shared::tickets::orders::get(&srv.app, order).await.unwrap().order.payment_id.expect("an online order")
}

/// A new anonymous buyer's `self_cash` checkout of `seats`, as `customer` (name, email,
/// phone): the buyer and the checkout's answer (its status asserted 201).
pub async fn cash_checkout(srv: &TestServer, event: &str, seats: &[&str], customer: Value) -> (Buyer, Value) {
    let mut buyer = Buyer::anonymous(srv);
    let pr = buyer.init(event).await;
    for seat in seats {
        let (status, body) = buyer.hold(&pr, seat).await;
        assert_eq!(status, 200, "{body}");
    }
    let body = json!({"order_type": "self_cash", "customer": customer});
    let path = format!("/api/v1/reservations/{pr}/order_type");
    let (status, answer) = buyer.call(reqwest::Method::PUT, &path, Some(&body)).await;
    assert_eq!(status, 200, "{answer}");
    let (status, body) = buyer.post(&format!("/api/v1/reservations/{pr}/checkout"), &json!({})).await;
    assert_eq!(status, 201, "{body}");
    (buyer, body)
}

/// The customer of the ticket tests' cash orders.
pub fn anna() -> Value {
    json!({"name": "Анна", "email": "anna@example.com", "phone": "+79990000001"})
}
