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
