//! No hoarding, over HTTP: one client address holds only so many seats and reservations in an
//! event, one buyer (and one address) only so many unpaid orders, one user (and one address)
//! only so many open zoo sessions (and places in them) per visit slot; past a cap, 429 with `Retry-After` and a JSON
//! error naming the field. Every request of these tests comes from 127.0.0.1: one address.

mod tickets_support;

use std::sync::Arc;

use api_tests::{TestServer, jittery, memory_store, race, token, until_lost};
use serde_json::{Value, json};
use shared::App;
use shared::caps::CapsConfig;
use shared::store::Store;
use tickets_support::{Buyer, admin, create_event};

async fn server_on(store: Arc<dyn Store>, caps: CapsConfig) -> TestServer {
    let mut config = shared::Config::for_tests();
    config.jwt.secret = api_tests::SECRET.into();
    config.caps = caps;
    TestServer::start_with(App::new(store, config)).await
}

/// A hold, with the answer's `Retry-After` (seconds), if any.
async fn hold(buyer: &Buyer, pr: &str, seat: &str) -> (u16, Value, Option<u64>) {
    let mut req = buyer
        .http
        .post(format!("{}/api/v1/reservations/{pr}/tickets", buyer.base))
        .json(&json!({"seat_id": seat}));
    if let Some(t) = &buyer.token {
        req = req.header("X-Reservation-Token", t);
    }
    if let Some(j) = &buyer.jwt {
        req = req.bearer_auth(j);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let retry = res.headers().get("retry-after").map(|v| v.to_str().unwrap().parse().unwrap());
    (status, res.json().await.unwrap_or(Value::Null), retry)
}

fn refused(status: u16, body: &Value, retry: Option<u64>, field: &str) {
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "too_many_requests", "{body}");
    assert_eq!(body["error"]["field"], field, "{body}");
    assert!(body["message"].as_str().unwrap().contains("over the cap"), "{body}");
    let retry = retry.expect("Retry-After");
    assert!((1..=900).contains(&retry), "Retry-After {retry}: within the seat timeout");
}

#[tokio::test]
async fn memory_one_address_holds_only_so_many_seats() {
    seats(api_tests::memory_store()).await;
}

#[tokio::test]
async fn dynamo_one_address_holds_only_so_many_seats() {
    let Some(store) = api_tests::dynamo_store().await else { return };
    seats(store).await;
}

async fn seats(store: Arc<dyn Store>) {
    let caps = CapsConfig { address_seats: 5, address_reservations: 2, ..CapsConfig::off() };
    let srv = server_on(store, caps).await;
    create_event(&srv, "cap").await;
    let (mut a, mut b, mut c) = (Buyer::anonymous(&srv), Buyer::anonymous(&srv), Buyer::anonymous(&srv));
    let (pa, pb, pc) = (a.init("cap").await, b.init("cap").await, c.init("cap").await);
    for seat in ["s-1-1", "s-1-2", "s-1-3"] {
        assert_eq!(hold(&a, &pa, seat).await.0, 200);
    }
    for seat in ["s-2-1", "s-2-2"] {
        assert_eq!(hold(&b, &pb, seat).await.0, 200);
    }
    // Five seats held from this address: a sixth is refused, whoever asks.
    let (status, body, retry) = hold(&b, &pb, "s-2-3").await;
    refused(status, &body, retry, "seat_id");
    assert!(body["message"].as_str().unwrap().contains("at most 5 seats"), "{body}");
    // A third reservation holding seats is refused too.
    let (status, body, retry) = hold(&c, &pc, "s-2-9").await;
    refused(status, &body, retry, "seat_id");
    // Holding a seat the reservation already holds is no new hold.
    assert_eq!(hold(&a, &pa, "s-1-1").await.0, 200);
    // A seat released is room again (the ledger still lists three for A: the recount
    // reads A's reservation and finds two).
    let path = format!("/api/v1/reservations/{pa}/tickets/s-1-3");
    assert_eq!(a.call(reqwest::Method::DELETE, &path, None).await.0, 200);
    assert_eq!(hold(&b, &pb, "s-2-3").await.0, 200);
    let (status, body, retry) = hold(&a, &pa, "s-1-3").await;
    refused(status, &body, retry, "seat_id");
    // Once the holds run out, the address may hold again.
    srv.app.clock.advance(chrono::Duration::minutes(16));
    assert_eq!(hold(&c, &pc, "s-2-9").await.0, 200);
}

/// Two reservations of one address race for the last seat under the cap: one gets it, the
/// other is refused (its ledger write lost and the re-read is full), never both.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_reservations_of_one_address_never_pass_the_cap() {
    let store = Arc::new(jittery(memory_store()));
    let caps = CapsConfig { address_seats: 1, ..CapsConfig::off() };
    let srv = Arc::new(server_on(store.clone(), caps).await);
    create_event(&srv, "race").await;
    until_lost(10, |round| {
        let (srv, store) = (srv.clone(), store.clone());
        async move {
            let mut buyers = [Buyer::anonymous(&srv), Buyer::anonymous(&srv)];
            let mut prs = Vec::new();
            for b in &mut buyers {
                prs.push(b.init("race").await);
            }
            let before = store.conflicts();
            let answers = race(2, |i| {
                let (b, pr) = (buyers[i].clone(), prs[i].clone());
                let seat = format!("s-{}-{}", i + 1, round + 1);
                async move { hold(&b, &pr, &seat).await.0 }
            })
            .await;
            let mut sorted = answers.clone();
            sorted.sort();
            assert_eq!(sorted, [200, 429], "{answers:?}");
            // Free the seat for the next round.
            srv.app.clock.advance(chrono::Duration::minutes(16));
            store.conflicts() > before
        }
    })
    .await;
}

/// A buyer's cash order.
async fn cash_checkout(buyer: &mut Buyer, event: &str, seat: &str) -> (u16, Value) {
    let pr = buyer.init(event).await;
    assert_eq!(buyer.hold(&pr, seat).await.0, 200);
    let customer = json!({"name": "Анна", "email": "anna@example.com", "phone": "+79990000001"});
    let body = json!({"order_type": "self_cash", "customer": customer});
    let path = format!("/api/v1/reservations/{pr}/order_type");
    assert_eq!(buyer.call(reqwest::Method::PUT, &path, Some(&body)).await.0, 200);
    buyer.post(&format!("/api/v1/reservations/{pr}/checkout"), &json!({})).await
}

#[tokio::test]
async fn memory_a_buyer_has_only_so_many_unpaid_orders() {
    unpaid(api_tests::memory_store()).await;
}

#[tokio::test]
async fn dynamo_a_buyer_has_only_so_many_unpaid_orders() {
    let Some(store) = api_tests::dynamo_store().await else { return };
    unpaid(store).await;
}

async fn unpaid(store: Arc<dyn Store>) {
    let caps = CapsConfig { buyer_unpaid_orders: 2, address_unpaid_orders: 3, ..CapsConfig::off() };
    let srv = server_on(store, caps).await;
    create_event(&srv, "owe").await;
    let mut user = Buyer::user(&srv, "31");
    let (status, first) = cash_checkout(&mut user, "owe", "s-1-1").await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(cash_checkout(&mut user, "owe", "s-1-2").await.0, 201);
    // A third unpaid order of this buyer: 429, the seat still held by the reservation.
    let (status, body) = cash_checkout(&mut user, "owe", "s-1-3").await;
    assert_eq!((status, body["error"]["field"].as_str()), (429, Some("reservation_id")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("at most 2 unpaid orders"), "{body}");
    // Paid at the box office, one no longer counts: the checkout goes through.
    let id = first["order"]["id"].as_str().unwrap();
    let paid = format!("/api/v1/admin/ticket_orders/{id}/paid");
    assert_eq!(srv.post(&paid, Some(&admin()), &json!({})).await.0, 200);
    let (_, cart) = user.post("/api/v1/reservations", &json!({"event_id": "owe"})).await;
    let pr = cart["reservation"]["id"].as_str().unwrap();
    let (status, body) = user.post(&format!("/api/v1/reservations/{pr}/checkout"), &json!({})).await;
    assert_eq!(status, 201, "{body}");
    // The address: three unpaid orders from it in all (two of the user's and one more buyer).
    let mut other = Buyer::anonymous(&srv);
    assert_eq!(cash_checkout(&mut other, "owe", "s-2-1").await.0, 201);
    let mut third = Buyer::anonymous(&srv);
    let (status, body) = cash_checkout(&mut third, "owe", "s-2-2").await;
    assert_eq!(status, 429, "{body}");
    assert!(body["message"].as_str().unwrap().contains("from one client address"), "{body}");
}

fn session(id: &str, time: &str) -> Value {
    places(id, time, 1)
}

/// A session of `n` adult tickets.
fn places(id: &str, time: &str, n: u32) -> Value {
    let date = api_tests::emails::visit_date();
    json!({
        "session_id": id, "order": {"order_id": format!("ZT-{id}"), "total_amount": {"value": format!("{}.00", 1000 * n), "currency": "RUB"},
        "items": [{"ticket_type": "adult", "quantity": n, "unit_price": {"value": "1000.00", "currency": "RUB"},
                   "visit_date": date, "visit_time": time}]},
        "customer": {"email": "visitor@example.com"},
        "confirmation": {"type": "redirect", "return_url": "https://zoo.example/ok", "cancel_url": "https://zoo.example/no"}
    })
}

#[tokio::test]
async fn a_user_has_only_so_many_open_zoo_sessions_per_slot() {
    let caps = CapsConfig { user_zoo_sessions: 2, address_zoo_sessions: 3, ..CapsConfig::off() };
    let srv = server_on(memory_store(), caps).await;
    let (u, v) = (token("41", &[]), token("42", &[]));
    let mut first = Value::Null;
    for n in 0..2 {
        let (status, body) =
            srv.post("/v1/payments/sessions", Some(&u), &session(&format!("a{n}"), "10:00")).await;
        assert_eq!(status, 201, "{body}");
        first = if n == 0 { body } else { first };
    }
    let res = srv
        .http
        .post(srv.url("/v1/payments/sessions"))
        .bearer_auth(&u)
        .json(&session("a2", "10:00"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=srv.app.config.payments.timeout.as_secs()).contains(&retry), "{retry}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["field"], "order.items", "{body}");
    // Another slot is another cap.
    assert_eq!(srv.post("/v1/payments/sessions", Some(&u), &session("a3", "11:00")).await.0, 201);
    // Another user from the same address: one more in the 10:00 slot, then the address is full.
    assert_eq!(srv.post("/v1/payments/sessions", Some(&v), &session("b0", "10:00")).await.0, 201);
    let (status, body) = srv.post("/v1/payments/sessions", Some(&v), &session("b1", "10:00")).await;
    assert_eq!(status, 429, "{body}");
    // A session paid no longer counts.
    let url = first["data"]["confirmation_url"].as_str().unwrap();
    assert_eq!(api_tests::press(&srv, url, "succeeded").await.0, 303);
    assert_eq!(srv.post("/v1/payments/sessions", Some(&v), &session("b2", "10:00")).await.0, 201);
}

/// Places count, not only sessions: a few sessions of many tickets cannot take a slot.
#[tokio::test]
async fn a_user_and_an_address_hold_only_so_many_places_per_slot() {
    let caps = CapsConfig { user_zoo_places: 10, address_zoo_places: 15, ..CapsConfig::off() };
    let srv = server_on(memory_store(), caps).await;
    let (u, v) = (token("41", &[]), token("42", &[]));
    let (status, first) = srv.post("/v1/payments/sessions", Some(&u), &places("p0", "10:00", 8)).await;
    assert_eq!(status, 201, "{first}");
    let (status, body) = srv.post("/v1/payments/sessions", Some(&u), &places("p1", "10:00", 3)).await;
    assert_eq!((status, body["error"]["field"].as_str()), (429, Some("order.items")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("at most 10 places"), "{body}");
    assert_eq!(srv.post("/v1/payments/sessions", Some(&u), &places("p2", "10:00", 2)).await.0, 201);
    // Another slot is another cap.
    assert_eq!(srv.post("/v1/payments/sessions", Some(&u), &places("p3", "11:00", 10)).await.0, 201);
    // Another user from the same address: 5 more places in the 10:00 slot, then it is full.
    assert_eq!(srv.post("/v1/payments/sessions", Some(&v), &places("q0", "10:00", 5)).await.0, 201);
    let (status, body) = srv.post("/v1/payments/sessions", Some(&v), &places("q1", "10:00", 1)).await;
    assert_eq!(status, 429, "{body}");
    assert!(body["message"].as_str().unwrap().contains("from one client address"), "{body}");
    // Paid places no longer count.
    let url = first["data"]["confirmation_url"].as_str().unwrap();
    assert_eq!(api_tests::press(&srv, url, "succeeded").await.0, 303);
    assert_eq!(srv.post("/v1/payments/sessions", Some(&v), &places("q2", "10:00", 5)).await.0, 201);
}
