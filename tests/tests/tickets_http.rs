//! Seated-event ticket ordering over HTTP on the local server (memory store): the cash
//! path end to end, switching events, the seat limit, validation and ownership.

mod tickets_support;

use api_tests::{TestServer, token};
use serde_json::json;
use shared::tickets::barcode;
use tickets_support::{Buyer, admin, create_event, seat_map, taken_seats};

fn messages(srv: &TestServer) -> Vec<shared::outbox::Notification> {
    srv.app.local_queue.as_ref().expect("memory outbox").messages()
}

#[tokio::test]
async fn admin_loads_a_seat_map_and_the_public_lists_it() {
    let srv = TestServer::memory().await;
    let (status, body) = srv.post("/api/v1/admin/events", Some(&token("5", &[])), &seat_map("e1")).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(srv.post("/api/v1/admin/events", None, &seat_map("e1")).await.0, 401);
    let (status, body) = srv.post("/api/v1/admin/events", Some(&admin()), &seat_map("e1")).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["event"]["seat_count"], 20);
    assert_eq!(body["event"]["price_categories"][1]["price"], json!(500.5));
    let (status, _) = srv.post("/api/v1/admin/events", Some(&admin()), &seat_map("e1")).await;
    assert_eq!(status, 409);

    let mut bad = seat_map("e2");
    bad["price_categories"][0]["price"] = json!(10.5);
    let (status, body) = srv.post("/api/v1/admin/events", Some(&admin()), &bad).await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("price_categories[0].price")), "{body}");
    let mut bad = seat_map("e2");
    bad["sectors"][0]["rows"][0]["price_category"] = json!("Z");
    let (status, body) = srv.post("/api/v1/admin/events", Some(&admin()), &bad).await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("sectors[0].rows[0].price_category")));

    let (status, body) = srv.get("/api/v1/events", None).await;
    assert_eq!(status, 200);
    let events = body["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{body}");
    assert_eq!(events[0]["id"], "e1");
    assert_eq!(events[0]["starts_at"], "2030-05-01T19:00:00+03:00");

    let raw = srv.http.get(srv.url("/api/v1/events/e1/seats")).send().await.unwrap().text().await.unwrap();
    assert!(raw.contains(r#""price":1000.00,"#), "two decimals on the wire: {raw}");
    assert!(raw.contains(r#""price":500.50,"#), "{raw}");
    let (status, body) = srv.get("/api/v1/events/e1/seats", None).await;
    assert_eq!(status, 200);
    let seats = body["seats"].as_array().unwrap();
    assert_eq!(seats.len(), 20);
    assert_eq!(body["free_count"], 20);
    assert_eq!(seats[0]["id"], "s-1-1");
    assert_eq!(seats[1]["id"], "s-1-2", "natural order");
    assert_eq!(seats[0]["price"], json!(1000.0));
    assert_eq!(seats[0]["price_category"], "A");
    assert_eq!(seats[19]["id"], "s-2-10");
    assert_eq!(seats[19]["price"], json!(500.5));
    assert_eq!(srv.get("/api/v1/events/nope/seats", None).await.0, 404);
    let (status, body) = srv.get("/api/v1/admin/events", Some(&admin())).await;
    assert_eq!((status, body["events"].as_array().map(Vec::len)), (200, Some(1)));
}

#[tokio::test]
async fn the_demo_event_loads_through_the_admin_code_path() {
    demo_event(TestServer::memory().await).await;
}

#[tokio::test]
async fn dynamo_the_demo_event_loads() {
    let Some(store) = api_tests::dynamo_store().await else { return };
    demo_event(TestServer::start(store).await).await;
}

async fn demo_event(srv: TestServer) {
    shared::tickets::inventory::load_demo(&srv.app).await.unwrap();
    shared::tickets::inventory::load_demo(&srv.app).await.expect("loading twice is harmless");
    let (status, body) = srv.get("/api/v1/events/demo-concert/seats", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["seats"].as_array().unwrap().len(), 218);
    assert_eq!(body["free_count"], 218);
    // On sale whenever the local server starts: past its date, it moves to the next year's.
    let (_, events) = srv.get("/api/v1/events", None).await;
    let starts = events["events"][0]["starts_at"].as_str().unwrap();
    let starts = chrono::DateTime::parse_from_rfc3339(starts).unwrap();
    assert!(starts > srv.app.clock.now(), "{events}");
    assert_eq!(starts.format("%m-%d %H:%M").to_string(), "12-30 19:00");
}

#[tokio::test]
async fn the_demo_event_moves_on_once_its_date_has_passed() {
    let srv = TestServer::memory().await;
    srv.app.clock.advance(chrono::Duration::days(3 * 366));
    shared::tickets::inventory::load_demo(&srv.app).await.unwrap();
    let (_, events) = srv.get("/api/v1/events", None).await;
    let starts =
        chrono::DateTime::parse_from_rfc3339(events["events"][0]["starts_at"].as_str().unwrap()).unwrap();
    let now = srv.app.clock.now();
    assert!(starts > now && starts < now + chrono::Duration::days(366), "{events}");
    let mut buyer = Buyer::anonymous(&srv);
    let pr = buyer.init("demo-concert").await;
    assert_eq!(buyer.hold(&pr, "parterre-1-1").await.0, 200);
}

/// No sale past an event's start: once it has started it leaves the public list, and holds
/// and checkouts are refused naming the event.
#[tokio::test]
async fn a_started_event_is_not_sold() {
    let srv = TestServer::memory().await;
    create_event(&srv, "late").await;
    let mut buyer = Buyer::anonymous(&srv);
    let pr = buyer.init("late").await;
    assert_eq!(buyer.hold(&pr, "s-1-1").await.0, 200);
    let body = json!({"order_type": "self_cash", "customer": {"name": "Пётр", "email": "petr@example.com", "phone": "+79990000009"}});
    let path = format!("/api/v1/reservations/{pr}/order_type");
    assert_eq!(buyer.call(reqwest::Method::PUT, &path, Some(&body)).await.0, 200);
    // The clock past its start (2030-05-01 19:00 +03:00).
    let starts = chrono::DateTime::parse_from_rfc3339("2030-05-01T19:00:00+03:00").unwrap();
    srv.app
        .clock
        .advance(starts.with_timezone(&chrono::Utc) - srv.app.clock.now() + chrono::Duration::minutes(1));
    let (_, events) = srv.get("/api/v1/events", None).await;
    assert_eq!(events["events"], json!([]), "{events}");
    let (status, body) = buyer.hold(&pr, "s-1-2").await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("event_id")), "{body}");
    let (status, body) = buyer.post(&format!("/api/v1/reservations/{pr}/checkout"), &json!({})).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("event_id")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("has started"), "{body}");
}

#[tokio::test]
async fn the_whole_cash_path() {
    cash_path(TestServer::memory().await).await;
}

#[tokio::test]
async fn dynamo_the_whole_cash_path() {
    let Some(store) = api_tests::dynamo_store().await else { return };
    cash_path(TestServer::start(store).await).await;
}

async fn cash_path(srv: TestServer) {
    create_event(&srv, "gala").await;
    let mut buyer = Buyer::anonymous(&srv);

    // Step 1: initialize; a second initialize with the token reuses the PR.
    let (status, body) = buyer.post("/api/v1/reservations", &json!({"event_id": "gala"})).await;
    assert_eq!(status, 201, "{body}");
    let secret = body["token"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 32);
    buyer.token = Some(secret);
    let pr = body["reservation"]["id"].as_str().unwrap().to_owned();
    assert_eq!(body["reservation"]["status"], "reserved");
    let (status, body) = buyer.post("/api/v1/reservations", &json!({"event_id": "gala"})).await;
    assert_eq!(status, 200);
    assert_eq!(body["reservation"]["id"], pr.as_str());

    // Hold two seats; the seat list shows them taken; nobody else can hold them.
    assert_eq!(buyer.hold(&pr, "s-1-1").await.0, 200);
    let (status, body) = buyer.hold(&pr, "s-2-3").await;
    assert_eq!(status, 200, "{body}");
    let r = &body["reservation"];
    assert_eq!(r["tickets"].as_array().unwrap().len(), 2);
    assert_eq!(r["totals"]["tickets"], json!(1500.5));
    assert_eq!(r["tickets"][1]["row"], "2");
    assert!(r["expires_at"].is_string());
    assert_eq!(buyer.hold(&pr, "s-1-1").await.0, 200, "holding a held seat again is harmless");
    let mut taken = taken_seats(&srv, "gala").await;
    taken.sort();
    assert_eq!(taken, ["s-1-1", "s-2-3"]);
    let mut rival = Buyer::anonymous(&srv);
    let rival_pr = rival.init("gala").await;
    let (status, body) = rival.hold(&rival_pr, "s-1-1").await;
    assert_eq!(status, 409, "{body}");

    // Release one and take it back.
    let (status, body) =
        buyer.call(reqwest::Method::DELETE, &format!("/api/v1/reservations/{pr}/tickets/s-2-3"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["reservation"]["tickets"].as_array().unwrap().len(), 1);
    assert_eq!(taken_seats(&srv, "gala").await, ["s-1-1"]);
    assert_eq!(buyer.hold(&pr, "s-2-3").await.0, 200);

    // Step 2: order type and buyer; totals with courier delivery.
    let path = format!("/api/v1/reservations/{pr}/order_type");
    let customer = json!({"name": "Иван Петров", "email": "ivan@example.com", "phone": "+7 (912) 345-67-89"});
    let (status, body) = buyer
        .call(reqwest::Method::PUT, &path, Some(&json!({"order_type": "courier_cash", "customer": customer})))
        .await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("customer.address")), "{body}");
    let mut customer = customer;
    customer["address"] = json!("Москва, ул. Тверская, 1");
    let (status, body) = buyer
        .call(reqwest::Method::PUT, &path, Some(&json!({"order_type": "courier_cash", "customer": customer})))
        .await;
    assert_eq!(status, 200, "{body}");
    let totals = &body["reservation"]["totals"];
    assert_eq!((totals["tickets"].clone(), totals["delivery"].clone()), (json!(1500.5), json!(300.0)));
    assert_eq!(totals["commission"], json!(0.0));
    assert_eq!(totals["total"], json!(1800.5));
    assert_eq!(body["reservation"]["customer"]["phone"], "+79123456789");
    let (status, body) = buyer
        .call(reqwest::Method::PUT, &path, Some(&json!({"order_type": "email_online", "customer": customer})))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["reservation"]["totals"]["commission"], json!(45.02), "3% of 1500.50");
    assert_eq!(body["reservation"]["totals"]["total"], json!(1545.52));

    let (status, _) = buyer
        .call(reqwest::Method::PUT, &path, Some(&json!({"order_type": "courier_cash", "customer": customer})))
        .await;
    assert_eq!(status, 200);

    // Checkout: approved at once, emails queued, seats sold.
    let (status, body) = rival.post(&format!("/api/v1/reservations/{pr}/checkout"), &json!({})).await;
    assert_eq!(status, 404, "someone else's PR");
    let (status, body2) = buyer.post(&format!("/api/v1/reservations/{pr}/checkout"), &json!({})).await;
    assert_eq!(status, 201, "{body} {body2}");
    let order = &body2["order"];
    let order_id = order["id"].as_str().unwrap().to_owned();
    assert_eq!(order["status"], "approved");
    assert!(body2["payment_url"].is_null());
    assert_eq!(order["totals"]["total"], json!(1800.5));
    // Unpaid: no bar codes anywhere until the courier brings the money back.
    assert_eq!(order["paid"], false);
    assert!(order["pay_by"].is_string(), "{order}");
    let tickets = order["tickets"].as_array().unwrap();
    assert_eq!(tickets.len(), 2);
    assert!(tickets.iter().all(|t| t["bar_code"].is_null() && t["qr_url"].is_null()), "{tickets:?}");
    let mails = messages(&srv);
    assert_eq!(mails.len(), 2, "{mails:?}");
    assert_eq!(mails[0].template(), "ticket_order_buyer");
    assert_eq!(mails[0].to, "ivan@example.com");
    assert_eq!(mails[0].id, format!("ticket-order-{order_id}-approved-buyer"));
    assert_eq!(mails[0].data()["totals"]["total"], "1800.50");
    assert_eq!(mails[0].data()["event"]["title"], "Test event gala");
    assert!(mails[0].data()["tickets"][0]["code"].is_null());
    assert_eq!(mails[1].template(), "ticket_order_admin");
    assert_eq!(mails[1].to, "admin@example.com");
    assert!(mails[1].data()["tickets"][0]["code"].is_null());

    // The box office marks it paid: now the codes.
    let paid = format!("/api/v1/admin/ticket_orders/{order_id}/paid");
    assert_eq!(srv.post(&paid, Some(&token("5", &[])), &json!({})).await.0, 403);
    let (status, body) = srv.post(&paid, Some(&admin()), &json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["order"]["paid"].as_bool(), body["order"]["status"].as_str()),
        (Some(true), Some("approved"))
    );
    let tickets = body["order"]["tickets"].as_array().unwrap();
    let codes: Vec<&str> = tickets.iter().map(|t| t["bar_code"].as_str().unwrap()).collect();
    assert!(codes.iter().all(|c| barcode::is_valid(c)), "{codes:?}");
    assert_ne!(codes[0], codes[1]);
    let mails = messages(&srv);
    assert_eq!(mails.len(), 3, "{mails:?}");
    assert_eq!(mails[2].id, format!("ticket-order-{order_id}-paid-buyer"));
    assert_eq!(mails[2].data()["tickets"][0]["code"], codes[0]);

    // The PR is consumed; the seats stay sold; step 3 shows the order to its owner only.
    assert_eq!(buyer.get(&format!("/api/v1/reservations/{pr}")).await.0, 404);
    let mut taken = taken_seats(&srv, "gala").await;
    taken.sort();
    assert_eq!(taken, ["s-1-1", "s-2-3"]);
    let (status, body) = buyer.get(&format!("/api/v1/ticket_orders/{order_id}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["order"]["tickets"][0]["bar_code"], codes[0]);
    assert_eq!(body["order"]["event"]["title"], "Test event gala");
    assert_eq!(rival.get(&format!("/api/v1/ticket_orders/{order_id}")).await.0, 404);
    assert_eq!(srv.get(&format!("/api/v1/ticket_orders/{order_id}"), None).await.0, 404);
    let qr = srv.http.get(body["order"]["tickets"][0]["qr_url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(qr.status(), 200);
    assert_eq!(qr.headers()["content-type"], "image/svg+xml");
    let svg = qr.text().await.unwrap();
    assert!(svg.starts_with("<svg"));
    // The QR carries the ticket signed with the ticket key: a gate checks it with the public key.
    let payload = api_tests::decode_qr_svg(&svg);
    let key = shared::ticket_keys::of(&srv.app.config).unwrap();
    let ticket = &body["order"]["tickets"][0];
    assert_eq!(
        key.public().verify(&payload).unwrap(),
        ["TICKET", codes[0], &order_id, "gala", ticket["seat_id"].as_str().unwrap()]
    );
    let (status, _) =
        srv.get(&format!("/api/v1/ticket_orders/{order_id}/tickets/2000000000000/qr"), None).await;
    assert_eq!(status, 404);

    // Admin: resend (a new notification id), cancel (seats free again), not twice.
    let resend = format!("/api/v1/admin/ticket_orders/{order_id}/resend_email");
    assert_eq!(srv.post(&resend, Some(&token("5", &[])), &json!({})).await.0, 403);
    let (status, body) = srv.post(&resend, Some(&admin()), &json!({})).await;
    assert_eq!(status, 200, "{body}");
    let mails = messages(&srv);
    assert_eq!(mails.len(), 4);
    assert_eq!(mails[3].template(), "ticket_order_buyer");
    assert_ne!(mails[3].id, mails[0].id);
    assert_eq!(mails[3].data()["tickets"][1]["code"], codes[1]);
    let cancel = format!("/api/v1/admin/ticket_orders/{order_id}/cancel");
    let (status, body) = srv.post(&cancel, Some(&admin()), &json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["order"]["status"], "cancelled");
    assert!(body["order"]["tickets"][0]["bar_code"].is_null(), "a cancelled order's codes are gone");
    assert!(taken_seats(&srv, "gala").await.is_empty());
    let told = messages(&srv).pop().unwrap();
    assert_eq!((told.template(), told.to.as_str()), ("ticket_order_cancelled", "ivan@example.com"));
    let (status, body) = srv.post(&cancel, Some(&admin()), &json!({})).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("status")));
    assert_eq!(srv.post(&resend, Some(&admin()), &json!({})).await.0, 400);
    let (status, body) = buyer.get(&format!("/api/v1/ticket_orders/{order_id}")).await;
    assert_eq!((status, body["order"]["status"].as_str()), (200, Some("cancelled")));
    assert_eq!(srv.post("/api/v1/admin/ticket_orders/nope/cancel", Some(&admin()), &json!({})).await.0, 404);

    // The freed seat can be sold again.
    let pr2 = rival.init("gala").await;
    assert_eq!(pr2, rival_pr);
    assert_eq!(rival.hold(&pr2, "s-1-1").await.0, 200);
}

#[tokio::test]
async fn switching_events_frees_the_old_seats() {
    switching_events(TestServer::memory().await).await;
}

#[tokio::test]
async fn dynamo_switching_events_frees_the_old_seats() {
    let Some(store) = api_tests::dynamo_store().await else { return };
    switching_events(TestServer::start(store).await).await;
}

async fn switching_events(srv: TestServer) {
    create_event(&srv, "first").await;
    create_event(&srv, "second").await;
    let mut buyer = Buyer::anonymous(&srv);
    let old = buyer.init("first").await;
    let token = buyer.token.clone();
    for seat in ["s-1-1", "s-1-2", "s-2-1"] {
        assert_eq!(buyer.hold(&old, seat).await.0, 200);
    }
    assert_eq!(taken_seats(&srv, "first").await.len(), 3);

    let (status, body) = buyer.post("/api/v1/reservations", &json!({"event_id": "second"})).await;
    assert_eq!(status, 201, "{body}");
    let new = body["reservation"]["id"].as_str().unwrap();
    assert_ne!(new, old);
    assert_eq!(body["reservation"]["event_id"], "second");
    assert_eq!(buyer.token, token, "the token names the buyer's cart and stays");
    assert!(taken_seats(&srv, "first").await.is_empty(), "old seats are free again");
    assert_eq!(buyer.get(&format!("/api/v1/reservations/{old}")).await.0, 404);
    let (status, body) = buyer.get(&format!("/api/v1/reservations/{new}")).await;
    assert_eq!((status, body["reservation"]["tickets"].as_array().map(Vec::len)), (200, Some(0)));

    // Another buyer can take the freed seats at once.
    let mut other = Buyer::anonymous(&srv);
    let pr = other.init("first").await;
    assert_eq!(other.hold(&pr, "s-1-1").await.0, 200);

    // An authenticated buyer switches the same way, by their user id.
    let user = Buyer::user(&srv, "77");
    let (status, body) = user.post("/api/v1/reservations", &json!({"event_id": "first"})).await;
    assert_eq!(status, 201);
    assert!(body["token"].is_null(), "users need no token");
    let upr = body["reservation"]["id"].as_str().unwrap().to_owned();
    assert_eq!(user.hold(&upr, "s-2-5").await.0, 200);
    let (status, body) = user.post("/api/v1/reservations", &json!({"event_id": "second"})).await;
    assert_eq!(status, 201);
    assert_ne!(body["reservation"]["id"], upr.as_str());
    assert_eq!(taken_seats(&srv, "first").await, ["s-1-1"]);

    // Deleting a PR frees its seats too.
    let (status, _) = other.call(reqwest::Method::DELETE, &format!("/api/v1/reservations/{pr}"), None).await;
    assert_eq!(status, 200);
    assert!(taken_seats(&srv, "first").await.is_empty());
    assert_eq!(other.get(&format!("/api/v1/reservations/{pr}")).await.0, 404);
}

#[tokio::test]
async fn at_most_seven_seats_and_bad_input_is_4xx() {
    let srv = TestServer::memory().await;
    create_event(&srv, "small").await;
    let mut buyer = Buyer::anonymous(&srv);
    let pr = buyer.init("small").await;
    for n in 1..=7 {
        assert_eq!(buyer.hold(&pr, &format!("s-1-{n}")).await.0, 200);
    }
    let (status, body) = buyer.hold(&pr, "s-1-8").await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("seat_id")), "{body}");
    assert_eq!(taken_seats(&srv, "small").await.len(), 7);

    let (status, body) = buyer.hold(&pr, "s-9-9").await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("seat_id")));
    let (status, body) =
        buyer.post(&format!("/api/v1/reservations/{pr}/tickets"), &json!({"seat_id": 5})).await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("seat_id")), "{body}");
    let (status, body) = buyer.post("/api/v1/reservations", &json!({"event_id": "nope"})).await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("event_id")));
    let (status, body) = buyer
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/reservations/{pr}/order_type"),
            Some(&json!({"order_type": "pigeon", "customer": {"name": "a", "email": "a@b.ru", "phone": "89991234567"}})),
        )
        .await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("order_type")), "{body}");
    let (status, body) = buyer
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/reservations/{pr}/order_type"),
            Some(&json!({"order_type": "self_cash", "customer": {"name": "a", "email": "nope", "phone": "89991234567"}})),
        )
        .await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("customer.email")));
    let (status, body) = buyer.post(&format!("/api/v1/reservations/{pr}/checkout"), &json!({})).await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("order_type")), "no type chosen yet");
    let (status, _) =
        buyer.call(reqwest::Method::DELETE, &format!("/api/v1/reservations/{pr}/tickets/s-2-1"), None).await;
    assert_eq!(status, 404, "not in this reservation");

    // Someone else's or an unknown PR is 404; a malformed token is 400.
    let mut other = Buyer::anonymous(&srv);
    other.init("small").await;
    assert_eq!(other.get(&format!("/api/v1/reservations/{pr}")).await.0, 404);
    assert_eq!(other.hold(&pr, "s-2-1").await.0, 404);
    assert_eq!(Buyer::anonymous(&srv).get(&format!("/api/v1/reservations/{pr}")).await.0, 404);
    assert_eq!(buyer.get("/api/v1/reservations/no-such-pr").await.0, 404);
    let mut bad = Buyer::anonymous(&srv);
    bad.token = Some("short".into());
    let (status, body) = bad.get(&format!("/api/v1/reservations/{pr}")).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("X-Reservation-Token")));
    let mut bad_jwt = Buyer::anonymous(&srv);
    bad_jwt.jwt = Some("garbage".into());
    assert_eq!(bad_jwt.post("/api/v1/reservations", &json!({"event_id": "small"})).await.0, 401);

    // A user's PR is theirs by `sub`.
    let alice = Buyer::user(&srv, "1");
    let (_, body) = alice.post("/api/v1/reservations", &json!({"event_id": "small"})).await;
    let apr = body["reservation"]["id"].as_str().unwrap().to_owned();
    assert_eq!(alice.get(&format!("/api/v1/reservations/{apr}")).await.0, 200);
    assert_eq!(Buyer::user(&srv, "2").get(&format!("/api/v1/reservations/{apr}")).await.0, 404);
}

/// Six checkouts of one reservation at once (worker threads, a barrier, a jittery store):
/// one order, one pair of emails each enqueued once; the others lost the race (409) or found
/// it checked out (200). Repeated until a checkout really lost a conditional write.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_checkouts_make_one_order() {
    let (srv, store) = api_tests::jittery_server().await;
    let srv = std::sync::Arc::new(srv);
    api_tests::until_lost(20, |r| {
        let (srv, store) = (srv.clone(), store.clone());
        async move {
            let event = format!("dbl{r}");
            create_event(&srv, &event).await;
            let mut buyer = Buyer::anonymous(&srv);
            let pr = buyer.init(&event).await;
            assert_eq!(buyer.hold(&pr, "s-1-1").await.0, 200);
            assert_eq!(buyer.hold(&pr, "s-1-2").await.0, 200);
            let body = json!({"order_type": "self_cash", "customer": {"name": "A", "email": "a@b.ru", "phone": "89991234567"}});
            let path = format!("/api/v1/reservations/{pr}/order_type");
            assert_eq!(buyer.call(reqwest::Method::PUT, &path, Some(&body)).await.0, 200);
            let lost_before = store.conflicts();
            let path = format!("/api/v1/reservations/{pr}/checkout");
            let statuses = api_tests::race(6, |_| {
                let (buyer, path) = (buyer.clone(), path.clone());
                async move { buyer.post(&path, &json!({})).await }
            })
            .await;
            let codes: Vec<u16> = statuses.iter().map(|(s, _)| *s).collect();
            assert_eq!(codes.iter().filter(|s| **s == 201).count(), 1, "{codes:?}");
            assert!(codes.iter().all(|s| [200, 201, 409].contains(s)), "{codes:?}");
            // One order, both seats sold to it, its two emails each enqueued once.
            let order = statuses.iter().find(|(s, _)| *s == 201).unwrap().1["order"]["id"].as_str().unwrap().to_owned();
            for (s, b) in &statuses {
                if *s == 200 {
                    assert_eq!(b["order"]["id"], order.as_str(), "a loser answers the winner's order");
                }
            }
            assert_eq!(taken_seats(&srv, &event).await.len(), 2);
            let queued: Vec<String> = messages(&srv).into_iter().map(|n| n.id).filter(|id| id.contains(&order)).collect();
            assert_eq!(queued.len(), 2, "one order, one pair of emails, each enqueued once: {queued:?}");
            // A sold seat cannot be held by anyone.
            let mut other = Buyer::anonymous(&srv);
            let opr = other.init(&event).await;
            assert_eq!(other.hold(&opr, "s-1-1").await.0, 409);
            store.conflicts() > lost_before || codes.contains(&409)
        }
    })
    .await;
}

#[tokio::test]
async fn a_signed_in_buyer_owns_their_order_by_user_id() {
    let srv = TestServer::memory().await;
    create_event(&srv, "own").await;
    let alice = Buyer::user(&srv, "31");
    let (status, body) = alice.post("/api/v1/reservations", &json!({"event_id": "own"})).await;
    assert_eq!(status, 201);
    let pr = body["reservation"]["id"].as_str().unwrap().to_owned();
    assert_eq!(alice.hold(&pr, "s-2-2").await.0, 200);
    let body = json!({"order_type": "self_cash", "customer": {"name": "Alice", "email": "alice@example.com", "phone": "+79990000031"}});
    let (status, _) =
        alice.call(reqwest::Method::PUT, &format!("/api/v1/reservations/{pr}/order_type"), Some(&body)).await;
    assert_eq!(status, 200);
    let (status, body) = alice.post(&format!("/api/v1/reservations/{pr}/checkout"), &json!({})).await;
    assert_eq!(status, 201, "{body}");
    let order = body["order"]["id"].as_str().unwrap().to_owned();
    assert_eq!(body["order"]["totals"]["total"], json!(500.5));
    assert_eq!(alice.get(&format!("/api/v1/ticket_orders/{order}")).await.0, 200);
    assert_eq!(Buyer::user(&srv, "32").get(&format!("/api/v1/ticket_orders/{order}")).await.0, 404);
    let (status, body) = srv.get(&format!("/api/v1/ticket_orders/{order}"), Some(&admin())).await;
    assert_eq!(
        (status, body["order"]["status"].as_str()),
        (200, Some("approved")),
        "the box office sees every order"
    );
    let (status, body) = srv.get(&format!("/api/v1/admin/ticket_orders/{order}"), Some(&admin())).await;
    assert_eq!((status, body["order"]["customer"]["email"].as_str()), (200, Some("alice@example.com")));
    // A new initialize after checkout starts a fresh, empty reservation.
    let (status, body) = alice.post("/api/v1/reservations", &json!({"event_id": "own"})).await;
    assert_eq!(status, 201);
    assert_ne!(body["reservation"]["id"], pr.as_str());
    assert_eq!(body["reservation"]["tickets"].as_array().map(Vec::len), Some(0));
}

/// A reservation id names its event, and the seat and hold are read by that name: an id whose
/// event is not the reservation's own (copied under another name) reaches nothing.
#[tokio::test]
async fn a_reservation_id_must_name_its_own_event() {
    let srv = TestServer::memory().await;
    create_event(&srv, "ea").await;
    create_event(&srv, "eb").await;
    let mut buyer = Buyer::user(&srv, "31");
    let pr = buyer.init("ea").await;
    let item = srv.app.store.get(&shared::tickets::reservations::pk(&pr), "pr").await.unwrap().unwrap();
    let forged = format!("{}-eb", &pr[..32]);
    let copy = shared::store::Item { pk: shared::tickets::reservations::pk(&forged), ..item };
    srv.app.store.put(copy, shared::store::Cond::NotExists).await.unwrap();
    assert_eq!(buyer.hold(&forged, "s-1-1").await.0, 404);
    assert!(taken_seats(&srv, "eb").await.is_empty());
    assert_eq!(buyer.hold(&pr, "s-1-1").await.0, 200);
}

/// Ids longer than a key may hold (DynamoDB refuses a key over 2,048 bytes) are the client's
/// mistake, named, on either store: a seat id in a hold's body is 422 naming `seat_id`, a
/// reservation id in a checkout's path is 404 (with an `Idempotency-Key`, whose record's key
/// carries the id), never the table's refusal answered as 503.
async fn overlong_ids(store: std::sync::Arc<dyn shared::store::Store>) {
    let srv = TestServer::start(store).await;
    create_event(&srv, "long").await;
    let mut buyer = Buyer::anonymous(&srv);
    let pr = buyer.init("long").await;
    let (status, body) = buyer.hold(&pr, &"a".repeat(3000)).await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("seat_id")), "{body}");
    // Refused as malformed before any read (its hold's key is never made), not looked up.
    assert!(body["message"].as_str().unwrap().contains("1 to 64 characters"), "{body}");
    let long = format!("{pr}{}", "a".repeat(3000));
    let res = buyer
        .http
        .post(format!("{}/api/v1/reservations/{long}/checkout", buyer.base))
        .header("X-Reservation-Token", buyer.token.clone().unwrap())
        .header("Idempotency-Key", "0123456789abcdef0123456789abcdef")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404, "{}", res.text().await.unwrap());
    // The reservation itself is untouched: a seat is still held as usual.
    assert_eq!(buyer.hold(&pr, "s-1-1").await.0, 200);
}

#[tokio::test]
async fn memory_overlong_ids() {
    overlong_ids(api_tests::memory_store()).await;
}

#[tokio::test]
async fn dynamo_overlong_ids() {
    let Some(store) = api_tests::dynamo_store().await else { return };
    overlong_ids(store).await;
}
