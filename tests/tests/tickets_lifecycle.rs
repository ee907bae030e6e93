//! Hold expiry (short SEAT_TIMEOUT, time moved with the app clock) on the embedded store
//! and on DynamoDB (moto), and the payment settlement hook of online orders.

mod tickets_support;

use std::sync::Arc;
use std::time::Duration;

use api_tests::{SECRET, TestServer};
use serde_json::json;
use shared::jobs::{self, Job};
use shared::payments::{self, Outcome, Settled};
use shared::store::Store;
use shared::tickets::holds::{self, HoldState};
use shared::tickets::orders::{self, OrderStatus};
use shared::{App, Config};
use tickets_support::{Buyer, create_event, taken_seats};

async fn server(store: Arc<dyn Store>, seat_timeout: u64) -> TestServer {
    let mut config = Config::for_tests();
    config.jwt.secret = SECRET.into();
    config.seat_timeout = Duration::from_secs(seat_timeout);
    TestServer::start_with(App::new(store, config)).await
}

fn minutes(n: i64) -> chrono::Duration {
    chrono::Duration::minutes(n)
}

async fn choose(buyer: &Buyer, pr: &str, order_type: &str) {
    let body = json!({"order_type": order_type, "customer": {
        "name": "Мария", "email": "maria@example.com", "phone": "89991234567"}});
    let (status, body) =
        buyer.call(reqwest::Method::PUT, &format!("/api/v1/reservations/{pr}/order_type"), Some(&body)).await;
    assert_eq!(status, 200, "{body}");
}

/// A new anonymous buyer holds `seat` of `event` and checks it out for cash: the checkout's
/// answer (the order).
async fn bought(srv: &TestServer, event: &str, seat: &str) -> serde_json::Value {
    let mut buyer = Buyer::anonymous(srv);
    let pr = buyer.init(event).await;
    assert_eq!(buyer.hold(&pr, seat).await.0, 200);
    choose(&buyer, &pr, "self_cash").await;
    let (status, body) = buyer.post(&format!("/api/v1/reservations/{pr}/checkout"), &json!({})).await;
    assert_eq!(status, 201, "{body}");
    body
}

async fn expiry(store: Arc<dyn Store>) {
    let srv = server(store, 120).await;
    create_event(&srv, "exp").await;
    let mut first = Buyer::anonymous(&srv);
    let pr1 = first.init("exp").await;
    assert_eq!(first.hold(&pr1, "s-1-1").await.0, 200);
    assert_eq!(first.hold(&pr1, "s-1-2").await.0, 200);
    // A sold seat: checked out before anything expires.
    bought(&srv, "exp", "s-2-1").await;

    srv.app.clock.advance(minutes(1));
    assert_eq!(taken_seats(&srv, "exp").await.len(), 3, "not yet");
    srv.app.clock.advance(chrono::Duration::seconds(61));

    // Reads treat the expired holds as free at once.
    assert_eq!(taken_seats(&srv, "exp").await, ["s-2-1"]);
    let (status, body) = first.get(&format!("/api/v1/reservations/{pr1}")).await;
    assert_eq!(status, 200);
    assert_eq!(body["reservation"]["tickets"].as_array().unwrap().len(), 0, "{body}");
    assert_eq!(body["reservation"]["totals"]["total"], json!(0.0));

    // Someone else takes one expired seat over at once.
    let mut second = Buyer::anonymous(&srv);
    let pr2 = second.init("exp").await;
    assert_eq!(second.hold(&pr2, "s-1-1").await.0, 200);
    assert!(holds::get(&srv.app, "exp", "s-1-2").await.unwrap().is_some(), "not swept yet");

    // The sweep deletes the expired hold only: not the re-held seat, not the sold one.
    let report = jobs::run(&srv.app, Job::Reservations).await.unwrap();
    assert_eq!(report.changed, 1, "{report:?}");
    assert_eq!(report.examined, 2, "held seats only: the sold one is not read");
    assert!(holds::get(&srv.app, "exp", "s-1-2").await.unwrap().is_none());
    let h = holds::get(&srv.app, "exp", "s-1-1").await.unwrap().unwrap();
    assert_eq!(h.hold.reservation_id.as_deref(), Some(pr2.as_str()));
    let sold = holds::get(&srv.app, "exp", "s-2-1").await.unwrap().unwrap();
    assert_eq!(sold.hold.state, HoldState::Sold);
    assert_eq!(jobs::run(&srv.app, Job::Reservations).await.unwrap().changed, 0, "idempotent");

    // A day later every hold is gone; the sold seat stays sold.
    srv.app.clock.advance(chrono::Duration::days(1));
    assert_eq!(jobs::run(&srv.app, Job::Reservations).await.unwrap().changed, 1);
    assert!(holds::get(&srv.app, "exp", "s-1-1").await.unwrap().is_none());
    assert_eq!(holds::get(&srv.app, "exp", "s-2-1").await.unwrap().unwrap().hold.state, HoldState::Sold);
    assert_eq!(taken_seats(&srv, "exp").await, ["s-2-1"]);

    // The first buyer can hold again; a hold that expires before checkout fails it (409).
    assert_eq!(first.hold(&pr1, "s-1-1").await.0, 200);
    choose(&first, &pr1, "self_cash").await;
    srv.app.clock.advance(minutes(3));
    let (status, body) = first.post(&format!("/api/v1/reservations/{pr1}/checkout"), &json!({})).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(taken_seats(&srv, "exp").await, ["s-2-1"]);
}

#[tokio::test]
async fn memory_holds_expire_by_themselves() {
    expiry(api_tests::memory_store()).await;
}

#[tokio::test]
async fn dynamo_holds_expire_by_themselves() {
    let Some(store) = api_tests::dynamo_store().await else { return };
    expiry(store).await;
}

/// An `ordered` online order made by checkout: (order id, payment id).
async fn ordered(srv: &TestServer, seats: &[&str]) -> (String, String) {
    let mut buyer = Buyer::anonymous(srv);
    let pr = buyer.init("paid").await;
    for seat in seats {
        assert_eq!(buyer.hold(&pr, seat).await.0, 200);
    }
    choose(&buyer, &pr, "email_online").await;
    let (status, body) = buyer.post(&format!("/api/v1/reservations/{pr}/checkout"), &json!({})).await;
    assert_eq!(status, 201, "{body}");
    let order = orders::get(&srv.app, body["order"]["id"].as_str().unwrap()).await.unwrap().order;
    assert_eq!(order.status, OrderStatus::Ordered);
    assert_eq!(
        order.totals.commission,
        shared::money::percent_of(order.totals.tickets, 3.into()),
        "3% online"
    );
    let (status, body) = buyer.get(&format!("/api/v1/ticket_orders/{}", order.id)).await;
    assert_eq!((status, body["order"]["status"].as_str()), (200, Some("ordered")));
    (order.id.clone(), order.payment_id.unwrap())
}

fn paid(amount: rust_decimal::Decimal) -> Outcome {
    Outcome::Succeeded { method: None, amount, currency: Some("RUB".into()) }
}

async fn status_of(srv: &TestServer, order: &str) -> OrderStatus {
    orders::get(&srv.app, order).await.unwrap().order.status
}

#[tokio::test]
async fn payment_settlement_approves_or_cancels() {
    let srv = server(api_tests::memory_store(), 900).await;
    create_event(&srv, "paid").await;
    let outbox = srv.app.local_queue.clone().unwrap();

    // Success: approved, buyer + box office emails and e-tickets with QR codes, once.
    let (ok, ok_payment) = ordered(&srv, &["s-1-1", "s-1-2"]).await;
    assert_eq!(taken_seats(&srv, "paid").await.len(), 2);
    srv.app.clock.advance(chrono::Duration::minutes(10));
    jobs::run(&srv.app, Job::Reservations).await.unwrap();
    assert_eq!(taken_seats(&srv, "paid").await.len(), 2, "seats of an ordered order never expire");
    let total = orders::get(&srv.app, &ok).await.unwrap().order.totals.total;
    payments::settle(&srv.app, &ok_payment, paid(total)).await.unwrap();
    assert_eq!(status_of(&srv, &ok).await, OrderStatus::Approved);
    let mails = outbox.messages();
    let templates: Vec<&str> = mails.iter().map(|m| m.template()).collect();
    assert_eq!(templates, ["ticket_order_buyer", "ticket_order_admin", "e_tickets"]);
    let etickets = &mails[2];
    assert_eq!(etickets.to, "maria@example.com");
    assert_eq!(etickets.id, format!("ticket-order-{ok}-approved-etickets"));
    let data = etickets.data();
    let tickets = data["tickets"].as_array().unwrap();
    assert_eq!(tickets.len(), 2, "one e-ticket per seat");
    for t in tickets {
        assert!(shared::tickets::barcode::is_valid(t["code"].as_str().unwrap()));
        let qr = srv.http.get(t["qr_url"].as_str().unwrap()).send().await.unwrap();
        assert_eq!(qr.status(), 200);
        assert!(qr.text().await.unwrap().starts_with("<svg"));
    }
    let again = payments::settle(&srv.app, &ok_payment, paid(total)).await.unwrap();
    assert!(matches!(again, Settled::Already(_)));
    assert_eq!(status_of(&srv, &ok).await, OrderStatus::Approved);
    assert_eq!(outbox.messages().len(), 3, "a repeated settlement sends nothing");

    // Failure: cancelled, seats free again, no email.
    let (failed, failed_payment) = ordered(&srv, &["s-2-1", "s-2-2", "s-2-3"]).await;
    assert_eq!(taken_seats(&srv, "paid").await.len(), 5);
    payments::settle(&srv.app, &failed_payment, Outcome::Failed { reason: "declined".into() }).await.unwrap();
    assert_eq!(status_of(&srv, &failed).await, OrderStatus::Cancelled);
    assert_eq!(taken_seats(&srv, "paid").await.len(), 2);
    assert_eq!(outbox.messages().len(), 3);
    let again =
        payments::settle(&srv.app, &failed_payment, Outcome::Failed { reason: "declined".into() }).await;
    assert!(matches!(again.unwrap(), Settled::Already(_)));
    assert_eq!(status_of(&srv, &failed).await, OrderStatus::Cancelled);
    assert!(payments::settle(&srv.app, "nope", paid(total)).await.is_err());

    // An approved online order is not cancelled by the box office (it is refunded instead).
    let (status, _) = srv
        .post(
            &format!("/api/v1/admin/ticket_orders/{ok}/cancel"),
            Some(&tickets_support::admin()),
            &json!({}),
        )
        .await;
    assert_eq!(status, 400);
}

/// A reservation stored without its seat copies (as an earlier release wrote them) is read from
/// the holds themselves: its own unexpired holds count, an expired one or a seat someone else
/// holds now does not.
async fn without_copies(store: Arc<dyn Store>) {
    let srv = server(store, 120).await;
    create_event(&srv, "old").await;
    let mut first = Buyer::anonymous(&srv);
    let pr = first.init("old").await;
    assert_eq!(first.hold(&pr, "s-1-1").await.0, 200);
    assert_eq!(first.hold(&pr, "s-1-2").await.0, 200);
    let key = shared::tickets::reservations::pk(&pr);
    let mut item = srv.app.store.get(&key, "pr").await.unwrap().expect("the reservation");
    assert!(item.data.make_mut().remove("held").is_some(), "the copies are what this test takes away");
    let version = item.version;
    srv.app.store.put(item.with_version(version + 1), shared::store::Cond::Version(version)).await.unwrap();
    let seats = |body: &serde_json::Value| -> Vec<String> {
        let tickets = body["reservation"]["tickets"].as_array().cloned().unwrap_or_default();
        tickets.iter().map(|t| t["seat_id"].as_str().unwrap_or_default().to_owned()).collect()
    };
    let (status, body) = first.get(&format!("/api/v1/reservations/{pr}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(seats(&body), ["s-1-1", "s-1-2"], "its own holds: {body}");

    srv.app.clock.advance(chrono::Duration::seconds(121));
    let mut second = Buyer::anonymous(&srv);
    let other = second.init("old").await;
    assert_eq!(second.hold(&other, "s-1-1").await.0, 200);
    let (status, body) = first.get(&format!("/api/v1/reservations/{pr}")).await;
    assert_eq!(status, 200, "{body}");
    assert!(seats(&body).is_empty(), "one expired, one held by another buyer: {body}");
    assert_eq!(body["reservation"]["totals"]["total"], json!(0.0));
}

#[tokio::test]
async fn memory_a_reservation_without_copies() {
    without_copies(api_tests::memory_store()).await;
}

#[tokio::test]
async fn dynamo_a_reservation_without_copies() {
    let Some(store) = api_tests::dynamo_store().await else { return };
    without_copies(store).await;
}

/// A hold whose transaction the store refuses is 503 and holds nothing; the buyer's retry holds
/// the seat. (Only a lost race is tried again by the server.)
#[tokio::test]
async fn a_refused_hold_is_unavailable_not_retried() {
    use api_tests::faulty::{Fault, FaultyStore};
    let faulty = Arc::new(FaultyStore::faulty(api_tests::memory_store()));
    let srv = server(faulty.clone(), 120).await;
    create_event(&srv, "down").await;
    let mut buyer = Buyer::anonymous(&srv);
    let pr = buyer.init("down").await;
    faulty.inject(0, Fault::Before);
    assert_eq!(buyer.hold(&pr, "s-1-1").await.0, 200);
    let writes = faulty.write_steps();
    assert_eq!(writes.len(), 1, "a hold is one transaction: {writes:?}");
    faulty.inject(writes[0], Fault::Before);
    let (status, body) = buyer.hold(&pr, "s-1-2").await;
    assert_eq!(status, 503, "{body}");
    assert!(faulty.struck().is_some(), "the transaction was the call refused");
    assert_eq!(taken_seats(&srv, "down").await, ["s-1-1"], "nothing held by the refused call");
    assert_eq!(buyer.hold(&pr, "s-1-2").await.0, 200, "the retry holds it");
    assert_eq!(taken_seats(&srv, "down").await, ["s-1-1", "s-1-2"]);

    // The same for a release: 503, nothing freed; the retry frees it.
    let release = format!("/api/v1/reservations/{pr}/tickets/s-1-2");
    faulty.inject(0, Fault::Before);
    let (status, body) = buyer.call(reqwest::Method::DELETE, &release, None).await;
    assert!(status < 300, "{status} {body}");
    let writes = faulty.write_steps();
    assert_eq!(writes.len(), 1, "a release is one transaction: {writes:?}");
    assert_eq!(buyer.hold(&pr, "s-1-2").await.0, 200);
    faulty.inject(writes[0], Fault::Before);
    let (status, body) = buyer.call(reqwest::Method::DELETE, &release, None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(taken_seats(&srv, "down").await, ["s-1-1", "s-1-2"], "nothing freed");
    let (status, body) = buyer.call(reqwest::Method::DELETE, &release, None).await;
    assert!(status < 300, "the retry frees it: {status} {body}");
    assert_eq!(taken_seats(&srv, "down").await, ["s-1-1"]);

    // And for deleting a reservation (another buyer's, one seat, counts the steps first).
    let mut other = Buyer::anonymous(&srv);
    let gone = other.init("down").await;
    assert_eq!(other.hold(&gone, "s-2-1").await.0, 200);
    faulty.inject(0, Fault::Before);
    let (status, body) =
        other.call(reqwest::Method::DELETE, &format!("/api/v1/reservations/{gone}"), None).await;
    assert!(status < 300, "{status} {body}");
    let writes = faulty.write_steps();
    assert_eq!(writes.len(), 1, "a delete is one transaction: {writes:?}");
    let delete = format!("/api/v1/reservations/{pr}");
    faulty.inject(writes[0], Fault::Before);
    let (status, body) = buyer.call(reqwest::Method::DELETE, &delete, None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(taken_seats(&srv, "down").await, ["s-1-1"], "nothing freed");
    let (status, body) = buyer.call(reqwest::Method::DELETE, &delete, None).await;
    assert!(status < 300, "the retry deletes it: {status} {body}");
    assert!(taken_seats(&srv, "down").await.is_empty());
}

/// Once armed, the next delete waits: it tells the test it has been reached, and goes on when
/// the test lets it.
#[derive(Default)]
struct PauseDelete {
    armed: std::sync::atomic::AtomicBool,
    reached: tokio::sync::Notify,
    go: tokio::sync::Notify,
}

#[async_trait::async_trait]
impl api_tests::hooked::Hook for PauseDelete {
    async fn before(&self, op: api_tests::hooked::Op) -> Result<(), shared::store::StoreError> {
        if op == api_tests::hooked::Op::Delete && self.armed.swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            self.reached.notify_one();
            self.go.notified().await;
        }
        Ok(())
    }
}

/// A sweep that read an expired hold and is slow to delete it (another run of the job, which
/// may overlap it, deletes it first; the seat is held again and sold) deletes on the version
/// it read: that must never be the sold seat's item. A freed seat's item is deleted, and until
/// 2026-12-07 its next life counted from 1 again: the sale (the new life's second version)
/// matched the sweep's condition (the expired hold's second version, a takeover) and was
/// deleted, the seat free to be sold twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_sweep_never_frees_a_seat_sold_since() {
    let hooked = Arc::new(api_tests::hooked::Hooked::new(api_tests::memory_store(), PauseDelete::default()));
    let srv = server(hooked.clone(), 120).await;
    create_event(&srv, "aba").await;
    // One buyer holds the seat and lets it expire; another takes it over, and lets it expire.
    let mut first = Buyer::anonymous(&srv);
    let pr1 = first.init("aba").await;
    assert_eq!(first.hold(&pr1, "s-1-1").await.0, 200);
    srv.app.clock.advance(minutes(3));
    let mut second = Buyer::anonymous(&srv);
    let pr2 = second.init("aba").await;
    assert_eq!(second.hold(&pr2, "s-1-1").await.0, 200);
    srv.app.clock.advance(minutes(3));

    // A sweep reads the expired hold and stops before its delete.
    hooked.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    let app = srv.app.clone();
    let late = tokio::spawn(async move { holds::sweep(&app).await });
    hooked.reached.notified().await;
    // Meanwhile another run deletes it, and a third buyer holds the seat and buys it.
    assert_eq!(holds::sweep(&srv.app).await.unwrap(), (1, 1));
    let body = bought(&srv, "aba", "s-1-1").await;
    let order = body["order"]["id"].as_str().unwrap().to_owned();

    hooked.go.notify_one();
    assert_eq!(late.await.unwrap().unwrap(), (1, 0), "the late delete lost its condition");
    let h = holds::get(&srv.app, "aba", "s-1-1").await.unwrap().expect("the sold seat's item");
    assert_eq!((h.hold.state, h.hold.order_id.as_deref()), (HoldState::Sold, Some(order.as_str())));
    assert_eq!(taken_seats(&srv, "aba").await, ["s-1-1"]);
    let mut fourth = Buyer::anonymous(&srv);
    let pr4 = fourth.init("aba").await;
    assert_eq!(fourth.hold(&pr4, "s-1-1").await.0, 409, "sold once");
}

/// Before the next transaction, once: the reservation `key` is written again (its version moves
/// on), as a second tab of the same buyer would.
struct Bump {
    inner: Arc<dyn Store>,
    key: std::sync::Mutex<Option<String>>,
    conflicts: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl api_tests::hooked::Hook for Bump {
    async fn before(&self, op: api_tests::hooked::Op) -> Result<(), shared::store::StoreError> {
        if op != api_tests::hooked::Op::Transact {
            return Ok(());
        }
        let Some(key) = self.key.lock().unwrap().take() else { return Ok(()) };
        let item = self.inner.get(&key, "pr").await?.expect("the reservation");
        let v = item.version;
        self.inner.put(item.with_version(v + 1), shared::store::Cond::Version(v)).await
    }
    fn conflict(&self, _op: api_tests::hooked::Op) {
        self.conflicts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A hold that loses the race on its reservation to another write of it is tried again from a
/// fresh read and succeeds: the buyer sees 200, not 409.
#[tokio::test]
async fn a_hold_that_loses_the_race_on_its_reservation_is_tried_again() {
    let inner = api_tests::memory_store();
    let bump = Bump { inner: inner.clone(), key: Default::default(), conflicts: Default::default() };
    let hooked = Arc::new(api_tests::hooked::Hooked::new(inner, bump));
    let srv = server(hooked.clone(), 120).await;
    create_event(&srv, "race").await;
    let mut buyer = Buyer::anonymous(&srv);
    let pr = buyer.init("race").await;
    assert_eq!(buyer.hold(&pr, "s-1-1").await.0, 200);
    *hooked.key.lock().unwrap() = Some(shared::tickets::reservations::pk(&pr));
    let (status, body) = buyer.hold(&pr, "s-1-2").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(hooked.conflicts.load(std::sync::atomic::Ordering::SeqCst), 1, "the first attempt lost");
    assert_eq!(taken_seats(&srv, "race").await, ["s-1-1", "s-1-2"]);
    // A release, and a delete of the reservation, likewise.
    for path in [format!("/api/v1/reservations/{pr}/tickets/s-1-2"), format!("/api/v1/reservations/{pr}")] {
        *hooked.key.lock().unwrap() = Some(shared::tickets::reservations::pk(&pr));
        let before = hooked.conflicts.load(std::sync::atomic::Ordering::SeqCst);
        let (status, body) = buyer.call(reqwest::Method::DELETE, &path, None).await;
        assert!(status < 300, "{path}: {status} {body}");
        assert_eq!(
            hooked.conflicts.load(std::sync::atomic::Ordering::SeqCst),
            before + 1,
            "{path}: lost once"
        );
    }
    assert!(taken_seats(&srv, "race").await.is_empty());
}
