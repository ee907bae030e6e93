//! An event cancelled by the box office: sales stop, its paid online orders are refunded in
//! full through the sandbox gateway and its cash orders cancelled, each buyer emailed once, by
//! the reservations job, whose runs survive an interruption at any store call. On the
//! embedded store and on DynamoDB (moto).

mod tickets_support;

use std::sync::Arc;

use api_tests::faulty::FaultyStore;
use api_tests::{TestServer, press, token};
use serde_json::json;
use shared::jobs::{Job, run};
use shared::store::Store;
use shared::tickets::orders::{self, OrderStatus};
use tickets_support::{Buyer, admin, create_event, online_order, taken_seats};

async fn kept_form(srv: &TestServer, page: &str) -> (String, Vec<(String, String)>) {
    let html = srv.http.get(page).send().await.unwrap().text().await.unwrap();
    api_tests::forms(&html).remove("succeeded").expect("a Pay button")
}

struct Sale {
    online: Vec<String>,
    cash: String,
}

/// Two paid online orders (one of two seats) and an unpaid cash order.
async fn sell(srv: &TestServer) -> Sale {
    create_event(srv, "gone").await;
    let mut online = Vec::new();
    for seats in [&["s-1-1"][..], &["s-1-2", "s-1-3"][..]] {
        let (id, url) = online_order(srv, "gone", seats, "email_online").await;
        assert_eq!(press(srv, &url, "succeeded").await.0, 303);
        online.push(id);
    }
    let customer = json!({"name": "Анна", "email": "cash@example.com", "phone": "+79990000001"});
    let (_, body) = tickets_support::cash_checkout(srv, "gone", &["s-2-1"], customer).await;
    Sale { online, cash: body["order"]["id"].as_str().unwrap().to_owned() }
}

async fn cancel(srv: &TestServer) {
    assert_eq!(srv.post("/api/v1/admin/events/gone/cancel", Some(&token("5", &[])), &json!({})).await.0, 403);
    let (status, body) = srv.post("/api/v1/admin/events/gone/cancel", Some(&admin()), &json!({})).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["event"]["on_sale"], false);
    assert_eq!(body["event"]["cancellation"]["state"], "running", "{body}");
}

/// The cancellation's settling time passed (it keeps looking for orders for 5 minutes), and a
/// run of the job after it: the cancellation is done unless something is left.
async fn settle(srv: &TestServer) {
    srv.app.clock.advance(chrono::Duration::minutes(5));
    run(&srv.app, Job::Reservations).await.unwrap();
}

/// Everything the cancellation must leave, whatever interrupted it.
async fn all_settled(srv: &TestServer, sale: &Sale) {
    for id in &sale.online {
        let o = orders::get(&srv.app, id).await.unwrap().order;
        assert_eq!((o.status, o.refunded), (OrderStatus::Refunded, o.totals.total), "{id}: refunded in full");
        assert_eq!(o.refunds.len(), 1, "{id}: one refund, never two: {:?}", o.refunds);
        assert_eq!(o.refunds[0].state, "completed");
    }
    let cash = orders::get(&srv.app, &sale.cash).await.unwrap().order;
    assert_eq!(cash.status, OrderStatus::Cancelled);
    assert!(taken_seats(srv, "gone").await.is_empty(), "every seat free");
    let queued = srv.app.local_queue.as_ref().expect("in-process queue").messages();
    for id in &sale.online {
        let refunds = queued
            .iter()
            .filter(|n| n.template() == "refund" && n.id.starts_with(&format!("ticket-order-{id}-")))
            .count();
        assert_eq!(refunds, 1, "{id}: one refund email");
    }
    let told =
        queued.iter().filter(|n| n.id == format!("ticket-order-{}-event-cancelled-buyer", sale.cash)).count();
    assert_eq!(told, 1, "the cash buyer told once");
    let (_, events) = srv.get("/api/v1/admin/events", Some(&admin())).await;
    let event = events["events"].as_array().unwrap().iter().find(|e| e["id"] == "gone").unwrap().clone();
    let c = &event["cancellation"];
    assert_eq!(c["state"], "done", "{event}");
    assert_eq!(
        (c["orders"].as_u64(), c["refunded"].as_u64(), c["cancelled"].as_u64()),
        (Some(3), Some(2), Some(1)),
        "{c}"
    );
    assert_eq!((c["waiting"].as_u64(), c["failed"].as_u64()), (Some(0), Some(0)));
}

#[tokio::test]
async fn memory_an_event_cancelled_refunds_and_cancels_its_orders() {
    cancelled(api_tests::memory_store()).await;
}

#[tokio::test]
async fn dynamo_an_event_cancelled_refunds_and_cancels_its_orders() {
    let Some(store) = api_tests::dynamo_store().await else { return };
    cancelled(store).await;
}

async fn cancelled(store: Arc<dyn Store>) {
    let srv = TestServer::start(store).await;
    let sale = sell(&srv).await;
    cancel(&srv).await;
    // No more sales while it is being cancelled.
    let mut late = Buyer::anonymous(&srv);
    let pr = late.init("gone").await;
    let (status, body) = late.hold(&pr, "s-2-9").await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("event_id")), "{body}");
    let report = run(&srv.app, Job::Reservations).await.unwrap();
    assert!(report.changed >= 3, "{report:?}");
    settle(&srv).await;
    all_settled(&srv, &sale).await;
    // Done: later runs and a second cancel change nothing; it never sells again.
    assert_eq!(run(&srv.app, Job::Reservations).await.unwrap().changed, 0);
    let (status, body) = srv.post("/api/v1/admin/events/gone/resume_sales", Some(&admin()), &json!({})).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("event_id")), "{body}");
    let (_, events) = srv.get("/api/v1/events", None).await;
    assert!(!events["events"].as_array().unwrap().iter().any(|e| e["id"] == "gone"), "{events}");
    assert_eq!(srv.post("/api/v1/admin/events/gone/cancel", Some(&admin()), &json!({})).await.0, 202);
    assert_eq!(run(&srv.app, Job::Reservations).await.unwrap().changed, 0);
    all_settled(&srv, &sale).await;
}

/// The job's first run fails at its `n`th store call (every third `n` up to past its last
/// call); the next runs finish the cancellation, and nothing is refunded, cancelled or emailed
/// twice.
#[tokio::test]
async fn an_interrupted_cancellation_finishes_on_the_next_run() {
    let mut struck = 0;
    for n in (1..=60).step_by(3) {
        let faulty = Arc::new(FaultyStore::faulty(api_tests::memory_store()));
        let srv = TestServer::start(faulty.clone()).await;
        let sale = sell(&srv).await;
        cancel(&srv).await;
        faulty.fail_call(n, false);
        let first = run(&srv.app, Job::Reservations).await;
        faulty.heal();
        if faulty.struck().is_some() {
            struck += 1;
        }
        drop(first); // failed, or left a refund to retry: the jobs' next runs finish it
        // The payments job finishes a refund whose gateway answer was lost; the reservations
        // job then records the event done.
        srv.app.clock.advance(chrono::Duration::minutes(2));
        run(&srv.app, Job::Payments).await.unwrap();
        run(&srv.app, Job::Reservations).await.unwrap();
        settle(&srv).await;
        all_settled(&srv, &sale).await;
    }
    assert!(struck >= 10, "the fault landed inside the run {struck} times");
}

/// Before the next transaction, once: the event is cancelled and the reservations job runs
/// (with nothing left to do), as they would between a checkout's read of the event and its
/// write.
struct CancelFirst {
    app: std::sync::OnceLock<shared::App>,
    armed: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl api_tests::hooked::Hook for CancelFirst {
    async fn before(&self, op: api_tests::hooked::Op) -> Result<(), shared::store::StoreError> {
        if op != api_tests::hooked::Op::Transact
            || !self.armed.swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Ok(());
        }
        let app = self.app.get().expect("the app");
        shared::tickets::back_office::cancel_event(app, "gone", "admin").await.expect("cancelled");
        run(app, Job::Reservations).await.expect("a run");
        Ok(())
    }
}

/// A checkout that read the event on sale writes its order after the event was cancelled and
/// the job's first run found nothing to do: a later run still finds the order and cancels it.
#[tokio::test]
async fn an_order_written_just_after_the_cancellation_is_cancelled_too() {
    let hook = CancelFirst { app: Default::default(), armed: Default::default() };
    let hooked = Arc::new(api_tests::hooked::Hooked::new(api_tests::memory_store(), hook));
    let srv = TestServer::start(hooked.clone()).await;
    let _ = hooked.app.set(srv.app.clone());
    create_event(&srv, "gone").await;
    let mut buyer = Buyer::anonymous(&srv);
    let pr = buyer.init("gone").await;
    assert_eq!(buyer.hold(&pr, "s-1-5").await.0, 200);
    let customer = json!({"name": "Анна", "email": "late@example.com", "phone": "+79990000001"});
    let body = json!({"order_type": "self_cash", "customer": customer});
    let (status, answer) =
        buyer.call(reqwest::Method::PUT, &format!("/api/v1/reservations/{pr}/order_type"), Some(&body)).await;
    assert_eq!(status, 200, "{answer}");
    hooked.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    let (status, body) = buyer.post(&format!("/api/v1/reservations/{pr}/checkout"), &json!({})).await;
    assert_eq!(status, 201, "the checkout read the event on sale: {body}");
    assert!(!hooked.armed.load(std::sync::atomic::Ordering::SeqCst), "the cancellation came first");
    let id = body["order"]["id"].as_str().unwrap().to_owned();
    let (_, events) = srv.get("/api/v1/admin/events", Some(&admin())).await;
    assert_eq!(events["events"][0]["cancellation"]["state"], "running", "still looking: {events}");

    settle(&srv).await;
    let o = orders::get(&srv.app, &id).await.unwrap().order;
    assert_eq!(o.status, OrderStatus::Cancelled, "{o:?}");
    assert!(taken_seats(&srv, "gone").await.is_empty(), "its seat free");
    let (_, events) = srv.get("/api/v1/admin/events", Some(&admin())).await;
    assert_eq!(events["events"][0]["cancellation"]["state"], "done", "{events}");
}

/// Online orders still waiting for their payment when the event is cancelled: the job cancels
/// their payments (the orders with them, seats freed), and a page kept open and paid later
/// only brings the money back; one paid between the cancellation and the job's run is not
/// admitted at the gate, and the job refunds it.
#[tokio::test]
async fn orders_waiting_for_their_payment_are_cancelled_with_the_event() {
    let srv = TestServer::memory().await;
    create_event(&srv, "gone").await;
    let (waiting, page) = online_order(&srv, "gone", &["s-1-1"], "email_online").await;
    let kept = kept_form(&srv, &page).await;
    let (paid, paid_page) = online_order(&srv, "gone", &["s-1-2"], "email_online").await;
    cancel(&srv).await;
    assert_eq!(press(&srv, &paid_page, "succeeded").await.0, 303);
    let o = orders::get(&srv.app, &paid).await.unwrap().order;
    assert_eq!(o.status, OrderStatus::Approved, "paid before the job ran");
    let gate = token("77", &["gate"]);
    let (status, body) = srv
        .post("/api/v1/admin/scans", Some(&gate), &json!({"code": o.tickets[0].bar_code, "gate": "north"}))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["message"].as_str().unwrap().contains("cancelled"), "{body}");

    run(&srv.app, Job::Reservations).await.unwrap();
    let o = orders::get(&srv.app, &waiting).await.unwrap().order;
    assert_eq!(o.status, OrderStatus::Cancelled, "{o:?}");
    let o = orders::get(&srv.app, &paid).await.unwrap().order;
    assert_eq!((o.status, o.refunded), (OrderStatus::Refunded, o.totals.total));
    assert!(taken_seats(&srv, "gone").await.is_empty(), "every seat free");
    // The page kept open, paid: recorded and returned.
    let res = srv.http.post(&kept.0).form(&kept.1).send().await.unwrap();
    assert!(res.status().as_u16() < 500);
    let late = orders::get(&srv.app, &waiting).await.unwrap().order;
    let lp = shared::payments::get(&srv.app, late.payment_id.as_deref().unwrap()).await.unwrap();
    assert_eq!(
        lp.anomaly.as_ref().map(|a| a.kind),
        Some(shared::payments::AnomalyKind::LatePayment),
        "{lp:?}"
    );
    assert_eq!(lp.refunded_amount, lp.amount);
    assert_eq!(late.status, OrderStatus::Cancelled);
    settle(&srv).await;
    let (_, events) = srv.get("/api/v1/admin/events", Some(&admin())).await;
    assert_eq!(events["events"][0]["cancellation"]["state"], "done", "{events}");
}
