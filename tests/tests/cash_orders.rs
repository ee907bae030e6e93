//! Cash orders over HTTP: approved at checkout but without bar codes until the box office
//! marks them paid; unpaid at their deadline, the reservations job cancels them and frees
//! their seats, and the buyer reads why. On the embedded store and on DynamoDB (moto).

mod tickets_support;

use api_tests::{TestServer, jittery_server, race, until_lost};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use shared::jobs::{Job, run};
use shared::mail::Notification;
use tickets_support::{Buyer, admin, create_event, seat_map, taken_seats};

fn read(n: &Notification) -> notifier::Email {
    notifier::Renderer::new().render(n).expect("renders")
}

fn queued(srv: &TestServer) -> Vec<Notification> {
    srv.app.local_queue.as_ref().expect("the in-process queue").messages()
}

/// A `self_cash` order of `seats` by a new anonymous buyer: the buyer and the order as
/// checkout answered it.
async fn cash_order(srv: &TestServer, event: &str, seats: &[&str]) -> (Buyer, Value) {
    let (buyer, body) = tickets_support::cash_checkout(srv, event, seats, tickets_support::anna()).await;
    (buyer, body["order"].clone())
}

/// The bar codes the store keeps for an order (the API does not show them yet).
async fn stored_codes(srv: &TestServer, id: &str) -> Vec<String> {
    let order = shared::tickets::orders::get(&srv.app, id).await.unwrap().order;
    order.tickets.into_iter().map(|t| t.bar_code).collect()
}

async fn mark_paid(srv: &TestServer, id: &str) -> (u16, Value) {
    srv.post(&format!("/api/v1/admin/ticket_orders/{id}/paid"), Some(&admin()), &json!({})).await
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap_or_else(|| panic!("a time: {v}")).parse().unwrap()
}

#[tokio::test]
async fn memory_cash_orders_are_paid_or_cancelled_at_their_deadline() {
    deadline(TestServer::memory().await).await;
}

#[tokio::test]
async fn dynamo_cash_orders_are_paid_or_cancelled_at_their_deadline() {
    let Some(store) = api_tests::dynamo_store().await else { return };
    deadline(TestServer::start(store).await).await;
}

async fn deadline(srv: TestServer) {
    create_event(&srv, "box").await; // 2030-05-01T19:00:00+03:00, years away
    let (late_buyer, late) = cash_order(&srv, "box", &["s-1-1", "s-1-2"]).await;
    let (_, prompt) = cash_order(&srv, "box", &["s-1-3"]).await;
    let late_id = late["id"].as_str().unwrap().to_owned();
    let prompt_id = prompt["id"].as_str().unwrap().to_owned();

    // Approved but unpaid: a deadline 72 hours on, and no bar code anywhere.
    assert_eq!((late["status"].as_str(), late["paid"].as_bool()), (Some("approved"), Some(false)));
    let pay_by = time(&late["pay_by"]);
    assert_eq!(pay_by - time(&late["created_at"]), Duration::hours(72));
    assert!(
        late["tickets"].as_array().unwrap().iter().all(|t| t["bar_code"].is_null() && t["qr_url"].is_null())
    );
    let (_, shown) = late_buyer.get(&format!("/api/v1/ticket_orders/{late_id}")).await;
    assert!(shown["order"]["tickets"][0]["bar_code"].is_null(), "{shown}");
    let codes = stored_codes(&srv, &late_id).await;
    let qr = format!("/api/v1/ticket_orders/{late_id}/tickets/{}/qr", codes[0]);
    assert_eq!(srv.get(&qr, None).await.0, 404, "no QR of an unpaid ticket");
    let gate = api_tests::token("77", &["gate"]);
    let (status, body) =
        srv.post("/api/v1/admin/scans", Some(&gate), &json!({"code": codes[0], "gate": "north"})).await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("code")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("not paid"), "{body}");
    // The emails a reader opens: the deadline, no codes.
    let mails = queued(&srv);
    let buyer_mail = mails.iter().find(|n| n.id == format!("ticket-order-{late_id}-approved-buyer")).unwrap();
    let email = read(buyer_mail);
    let local = pay_by.with_timezone(&chrono::FixedOffset::east_opt(3 * 3600).unwrap());
    let due = local.format("%d.%m.%Y %H:%M").to_string();
    assert!(email.text.contains(&format!("Оплата в кассе до {due}")), "{}", email.text);
    assert!(codes.iter().all(|c| !email.text.contains(c.as_str()) && !email.html.contains(c.as_str())));
    let box_office = mails.iter().find(|n| n.id == format!("ticket-order-{late_id}-approved-admin")).unwrap();
    let email = read(box_office);
    assert!(email.text.contains(&format!("оплата до {due}")), "{}", email.text);
    assert!(codes.iter().all(|c| !email.text.contains(c.as_str())), "{}", email.text);

    // One is paid in time: its codes, and the buyer's email with them.
    let (status, body) = mark_paid(&srv, &prompt_id).await;
    assert_eq!(status, 200, "{body}");
    let order = &body["order"];
    assert_eq!(order["paid"], true);
    assert!(order["paid_at"].is_string());
    let prompt_codes = stored_codes(&srv, &prompt_id).await;
    assert_eq!(order["tickets"][0]["bar_code"].as_str(), Some(prompt_codes[0].as_str()));
    let paid_mail = queued(&srv).into_iter().find(|n| n.id == format!("ticket-order-{prompt_id}-paid-buyer"));
    let email = read(&paid_mail.expect("the paid email"));
    assert!(email.text.contains(&prompt_codes[0]) && email.html.contains(&prompt_codes[0]), "{}", email.text);
    assert!(email.subject.contains("оплачен"), "{}", email.subject);
    let (status, body) = mark_paid(&srv, &prompt_id).await;
    assert_eq!(status, 409, "not twice: {body}");
    assert!(body["message"].as_str().unwrap().contains("already marked paid"), "{body}");

    // Before the deadline the job leaves both alone.
    let report = run(&srv.app, Job::Reservations).await.unwrap();
    assert_eq!(report.changed, 0, "{report:?}");

    // Past the deadline: too late to pay; the job cancels it and frees its seats.
    srv.app.clock.advance(pay_by - srv.app.clock.now() + Duration::seconds(1));
    let (status, body) = mark_paid(&srv, &late_id).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["message"].as_str().unwrap().contains("deadline passed"), "{body}");
    let report = run(&srv.app, Job::Reservations).await.unwrap();
    assert_eq!(report.changed, 1, "{report:?}");
    let (_, shown) = late_buyer.get(&format!("/api/v1/ticket_orders/{late_id}")).await;
    assert_eq!(
        (shown["order"]["status"].as_str(), shown["order"]["paid"].as_bool()),
        (Some("cancelled"), Some(false))
    );
    assert_eq!(taken_seats(&srv, "box").await, ["s-1-3"], "the paid order keeps its seat");
    let told = queued(&srv).into_iter().find(|n| n.id == format!("ticket-order-{late_id}-unpaid-buyer"));
    let email = read(&told.expect("the buyer is told"));
    assert_eq!(email.to, "anna@example.com");
    assert!(email.subject.contains("отменён"), "{}", email.subject);
    assert!(
        email.text.contains(&format!("оплата не поступила до окончания срока ({due})")),
        "{}",
        email.text
    );
    assert!(email.text.contains("ряд 1, место 1") && email.text.contains("ряд 1, место 2"), "{}", email.text);

    // Done once: a second run changes nothing, the paid order stays paid, the seats sell again.
    assert_eq!(run(&srv.app, Job::Reservations).await.unwrap().changed, 0);
    let paid = shared::tickets::orders::get(&srv.app, &prompt_id).await.unwrap().order;
    assert!(paid.tickets_valid());
    let mut next = Buyer::anonymous(&srv);
    let pr = next.init("box").await;
    assert_eq!(next.hold(&pr, "s-1-1").await.0, 200);
}

#[tokio::test]
async fn the_deadline_is_never_past_the_event_start() {
    let srv = TestServer::memory().await;
    let starts = (srv.app.clock.now() + Duration::hours(10))
        .with_timezone(&chrono::FixedOffset::east_opt(3 * 3600).unwrap());
    let mut map = seat_map("soon");
    map["starts_at"] = json!(starts.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let (status, body) = srv.post("/api/v1/admin/events", Some(&admin()), &map).await;
    assert_eq!(status, 201, "{body}");
    let (_, order) = cash_order(&srv, "soon", &["s-2-2"]).await;
    assert_eq!(time(&order["pay_by"]).timestamp(), starts.timestamp(), "{order}");
}

#[tokio::test]
async fn online_orders_are_not_marked_paid_by_hand() {
    let srv = TestServer::memory().await;
    create_event(&srv, "web").await;
    let (buyer, pr) = tickets_support::online_pr(&srv, "web", &["s-1-4"], "self_online").await;
    let (id, _, body) = tickets_support::checkout(&buyer, &pr).await;
    assert!(body["order"]["tickets"][0]["bar_code"].is_null(), "not paid yet: {body}");
    assert!(body["order"]["pay_by"].is_null());
    let (status, body) = mark_paid(&srv, &id).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("order_type")), "{body}");
    assert_eq!(mark_paid(&srv, "nope").await.0, 404);
}

/// Two box-office clerks mark one order paid at once: one wins, the other is told, and the
/// buyer gets one email.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_clerks_mark_one_order_paid_at_once() {
    let (srv, store) = jittery_server().await;
    let srv = std::sync::Arc::new(srv);
    create_event(&srv, "duo").await;
    let seats = ["s-1-1", "s-1-2", "s-1-3", "s-1-4", "s-1-5", "s-1-6", "s-1-7", "s-1-8", "s-1-9", "s-1-10"];
    until_lost(seats.len(), |round| {
        let srv = srv.clone();
        let store = store.clone();
        let seat = seats[round];
        async move {
            let (_, order) = cash_order(&srv, "duo", &[seat]).await;
            let id = order["id"].as_str().unwrap().to_owned();
            let before = store.conflicts();
            let answers = race(2, |_| {
                let (srv, id) = (srv.clone(), id.clone());
                async move { mark_paid(&srv, &id).await }
            })
            .await;
            let mut statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
            statuses.sort();
            assert_eq!(statuses, [200, 409], "{answers:?}");
            let emails =
                queued(&srv).iter().filter(|n| n.id == format!("ticket-order-{id}-paid-buyer")).count();
            assert_eq!(emails, 1);
            store.conflicts() > before
        }
    })
    .await;
}

/// Two runs of the reservations job at once at the deadline: the order is cancelled once, its
/// seats freed once, its buyer told once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_sweeps_cancel_an_unpaid_order_once() {
    let (srv, store) = jittery_server().await;
    let srv = std::sync::Arc::new(srv);
    create_event(&srv, "sweep").await;
    until_lost(8, |round| {
        let (srv, store) = (srv.clone(), store.clone());
        let seat = format!("s-2-{}", round + 1);
        async move {
            let (_, order) = cash_order(&srv, "sweep", &[&seat]).await;
            let id = order["id"].as_str().unwrap().to_owned();
            srv.app.clock.advance(time(&order["pay_by"]) - srv.app.clock.now() + Duration::seconds(1));
            let before = store.conflicts();
            let reports = race(2, |_| {
                let srv = srv.clone();
                async move { run(&srv.app, Job::Reservations).await.unwrap() }
            })
            .await;
            assert_eq!(reports.iter().map(|r| r.changed).sum::<usize>(), 1, "{reports:?}");
            let o = shared::tickets::orders::get(&srv.app, &id).await.unwrap().order;
            assert_eq!(o.status, shared::tickets::orders::OrderStatus::Cancelled);
            assert!(!taken_seats(&srv, "sweep").await.contains(&seat));
            let told =
                queued(&srv).iter().filter(|n| n.id == format!("ticket-order-{id}-unpaid-buyer")).count();
            assert_eq!(told, 1);
            store.conflicts() > before
        }
    })
    .await;
}

/// A cash order paid at the box office, then cancelled there: what was paid is owed back and
/// the books show it (the report counts it as paid and as refunded), the buyer reads that the
/// box office returns the money; no order of an event being cancelled is marked paid, and its
/// buyers are not asked to order again.
#[tokio::test]
async fn cash_paid_then_cancelled_is_owed_back() {
    let srv = TestServer::memory().await;
    create_event(&srv, "till").await;
    let (_, order) = cash_order(&srv, "till", &["s-1-1"]).await;
    let id = order["id"].as_str().unwrap().to_owned();
    assert_eq!(mark_paid(&srv, &id).await.0, 200);
    let (status, body) =
        srv.post(&format!("/api/v1/admin/ticket_orders/{id}/cancel"), Some(&admin()), &json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["order"]["status"].as_str(), body["order"]["refunded"].as_f64()),
        (Some("cancelled"), Some(1000.0)),
        "{body}"
    );
    let (_, r) = srv.get("/api/v1/admin/events/till/report", Some(&admin())).await;
    assert_eq!(r["revenue"]["tickets_amount"], json!(1000.0), "{r}");
    assert_eq!(r["refunds"], json!({"orders": 1, "amount": 1000.0}), "{r}");
    assert_eq!(r["revenue"]["net"], json!(0.0), "{r}");
    let told = queued(&srv).into_iter().rfind(|n| n.template() == "ticket_order_cancelled").unwrap();
    let email = read(&told);
    assert!(
        email.text.contains("вернут в кассе") && email.text.contains("оформите новый заказ"),
        "{}",
        email.text
    );

    // The event is cancelled: an order of it is not marked paid, and its buyer is not asked
    // to order again.
    let (_, unpaid) = cash_order(&srv, "till", &["s-1-2"]).await;
    let unpaid = unpaid["id"].as_str().unwrap().to_owned();
    assert_eq!(srv.post("/api/v1/admin/events/till/cancel", Some(&admin()), &json!({})).await.0, 202);
    let (status, body) = mark_paid(&srv, &unpaid).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("event_id")), "{body}");
    run(&srv.app, Job::Reservations).await.unwrap();
    let told = queued(&srv).into_iter().rfind(|n| n.template() == "ticket_order_cancelled").unwrap();
    let email = read(&told);
    assert!(
        email.text.contains("мероприятие отменено") && !email.text.contains("оформите новый заказ"),
        "{}",
        email.text
    );
}
