//! What is paid is what is delivered, tried over HTTP as a dishonest buyer would, on the
//! embedded store and on DynamoDB (moto), through the sandbox gateway:
//! - a zoo session's amount lowered by its buyer, prices and times that are not the tariff's;
//! - a deal's terms changed after a payment link was taken, then the old link paid;
//! - a deal handed to another consumer after the first had taken a link and set up an invoice;
//! - a deal's second card link closing the first; a card link paid after the deal was paid by
//!   invoice; a deal's link paid after the deal was cancelled;
//! - the link of a cancelled ticket order paid late;
//! - a zoo session's kept payment page paid after the session was deleted;
//! - a correctly signed notice for a smaller sum;
//! - a sandbox callback for a payment of another gateway, and the sandbox switched off.
//!
//! Emails are read as their reader sees them: rendered by the notifier from what the domain
//! queued.

mod tickets_support;

use std::sync::Arc;

use api_tests::{SECRET, TestServer, forms, token};
use reqwest::Method;
use serde_json::{Value, json};
use shared::jobs::{Job, run};
use shared::payments::gateways::sandbox;
use shared::store::Store;
use tickets_support::{admin_order, create_event, online_order, payment_of, taken_seats};

const SANDBOX: &str = "sandbox-test-secret";

async fn server(store: Arc<dyn Store>) -> TestServer {
    let mut config = shared::Config::for_tests();
    config.jwt.secret = SECRET.into();
    TestServer::start_with(shared::App::new(store, config)).await
}

fn visit_date() -> String {
    (chrono::Utc::now() + chrono::Duration::days(30)).format("%Y-%m-%d").to_string()
}

fn session(items: Value, total: &str) -> Value {
    json!({
        "session_id": "s-money",
        "order": { "order_id": "ZT-M", "total_amount": { "value": total, "currency": "RUB" }, "items": items },
        "customer": { "email": "visitor@example.com" },
        "confirmation": { "type": "redirect", "return_url": "https://zoo.example/ok", "cancel_url": "https://zoo.example/cancel" }
    })
}

fn item(kind: &str, qty: i64, price: &str, time: &str) -> Value {
    json!({ "ticket_type": kind, "quantity": qty, "unit_price": { "value": price, "currency": "RUB" },
            "visit_date": visit_date(), "visit_time": time })
}

fn sent(srv: &TestServer, template: &str) -> Vec<shared::outbox::Notification> {
    srv.app
        .local_queue
        .as_ref()
        .unwrap()
        .messages()
        .into_iter()
        .filter(|n| n.template() == template)
        .collect()
}

/// The email as its reader sees it: subject and text.
fn read(n: &shared::outbox::Notification) -> (String, String) {
    let email = notifier::Renderer::new().render(n).expect("renders");
    (email.subject, email.text)
}

/// The form behind a button of a sandbox page (kept, as a buyer's browser would, to post later).
async fn form(srv: &TestServer, page: &str, button: &str) -> (String, Vec<(String, String)>) {
    let html = srv.http.get(page).send().await.unwrap().text().await.unwrap();
    forms(&html).remove(button).unwrap_or_else(|| panic!("no {button} button: {html}"))
}

async fn submit(srv: &TestServer, (action, fields): &(String, Vec<(String, String)>)) -> (u16, String) {
    let res = srv.http.post(action).form(fields).send().await.unwrap();
    let location = res.headers().get("location").map(|l| l.to_str().unwrap().to_owned()).unwrap_or_default();
    (res.status().as_u16(), location)
}

async fn zoo(srv: &TestServer, tok: &str, id: &str) -> Value {
    let (s, b) = srv.get(&format!("/v1/payments/{id}"), Some(tok)).await;
    assert_eq!(s, 200, "{b}");
    b["data"].clone()
}

async fn reserved(srv: &TestServer, time: &str) -> i64 {
    let (_, b) = srv.get(&format!("/v1/slots?visit_date={}&visit_time={time}", visit_date()), None).await;
    b["data"]["reserved"].as_i64().unwrap()
}

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(api_tests::memory_store()).await;
                }
            )*
        }
        mod dynamo {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(store) = api_tests::dynamo_store().await else { return };
                    super::$name(store).await;
                }
            )*
        }
    };
}

on_both_stores!(
    zoo_prices_and_amounts_are_the_tariffs,
    deal_terms_changed_after_the_link_was_taken,
    a_deal_handed_to_another_consumer,
    a_card_link_paid_after_the_deal_was_paid_by_invoice,
    a_cancelled_deals_link_paid_late,
    a_cancelled_orders_link_paid_late,
    a_deleted_sessions_page_paid_late,
    a_signed_notice_for_a_smaller_sum,
    the_sandbox_settles_only_its_own_payments,
);

async fn zoo_prices_and_amounts_are_the_tariffs(store: Arc<dyn Store>) {
    let srv = server(store).await;
    let tok = token("21", &[]);
    // Prices, types and times that are not the tariff's: 422 naming the item's field.
    for (items, total, field) in [
        (json!([item("adult", 2, "1.00", "10:00")]), "2.00", "order.items[0].unit_price.value"),
        (json!([item("vip", 1, "1000.00", "10:00")]), "1000.00", "order.items[0].ticket_type"),
        (json!([item("adult", 1, "1000.00", "10:15")]), "1000.00", "order.items[0].visit_time"),
        (
            json!([item("adult", 1, "1000.00", "10:00"), item("child", 1, "1.00", "10:00")]),
            "1001.00",
            "order.items[1].unit_price.value",
        ),
        (json!([item("adult", 2, "1000.00", "10:00")]), "1.00", "order.total_amount.value"),
    ] {
        let (s, b) = srv.post("/v1/payments/sessions", Some(&tok), &session(items, total)).await;
        assert_eq!((s, b["error"]["field"].as_str()), (422, Some(field)), "{b}");
    }
    assert_eq!(reserved(&srv, "10:00").await, 0, "a refused session holds no places");

    // The tariff is public; 2 adults + 1 child = 2500.00, the seed's total.
    let (s, t) = srv.get("/v1/tariff", None).await;
    assert_eq!(s, 200, "{t}");
    assert!(t["data"]["visit_times"].as_array().unwrap().contains(&json!("10:00")));
    let items = json!([item("adult", 2, "1000.00", "10:00"), item("child", 1, "500.00", "10:00")]);
    let (s, created) = srv.post("/v1/payments/sessions", Some(&tok), &session(items, "2500.00")).await;
    assert_eq!(s, 201, "{created}");
    let id = created["data"]["payment_id"].as_str().unwrap().to_owned();
    let path = format!("/v1/payments/{id}");

    // The buyer lowers the amount: refused, by PATCH and by PUT; nothing changes.
    let low = json!({"amount": {"value": "1.00", "currency": "RUB"}});
    let (s, b) = srv.call(Method::PATCH, &path, Some(&tok), Some(&low)).await;
    assert_eq!((s, b["error"]["field"].as_str()), (422, Some("amount")), "{b}");
    let put = json!({"amount": {"value": "1.00", "currency": "RUB"}, "description": "cheap"});
    let (s, b) = srv.call(Method::PUT, &path, Some(&tok), Some(&put)).await;
    assert_eq!((s, b["error"]["field"].as_str()), (422, Some("amount")), "{b}");
    // A buyer's reason changes nothing either.
    let with_reason = json!({"amount": {"value": "1.00", "currency": "RUB"}, "amount_reason": "please"});
    assert_eq!(srv.call(Method::PATCH, &path, Some(&tok), Some(&with_reason)).await.0, 422);
    assert_eq!(zoo(&srv, &tok, &id).await["amount"]["value"], "2500.00");

    // The page asks 2500.00; a Pay form altered to 1.00 is refused (the signature covers it).
    let page = created["data"]["confirmation_url"].as_str().unwrap().to_owned();
    let (action, mut pay) = form(&srv, &page, "succeeded").await;
    assert!(pay.contains(&("amount".into(), "2500.00".into())), "{pay:?}");
    let genuine = pay.clone();
    pay.iter_mut().filter(|(k, _)| k == "amount").for_each(|f| f.1 = "1.00".into());
    assert_eq!(submit(&srv, &(action.clone(), pay)).await.0, 403);
    assert_eq!(zoo(&srv, &tok, &id).await["status"], "processing");
    // Paid as asked: three tickets.
    assert_eq!(submit(&srv, &(action, genuine)).await.0, 303);
    let p = zoo(&srv, &tok, &id).await;
    assert_eq!((p["status"].as_str(), p["tickets"].as_array().unwrap().len()), (Some("succeeded"), 3));

    // A manager's discount, with its reason: recorded, re-registered, and paid as such.
    let items = json!([item("adult", 2, "1000.00", "11:00")]);
    let (_, second) = srv.post("/v1/payments/sessions", Some(&tok), &session(items, "2000.00")).await;
    let second_id = second["data"]["payment_id"].as_str().unwrap().to_owned();
    let manager = token("31", &["manager"]);
    let discount =
        json!({"amount": {"value": "1500.00", "currency": "RUB"}, "amount_reason": "member discount"});
    let (s, b) =
        srv.call(Method::PATCH, &format!("/v1/payments/{second_id}"), Some(&manager), Some(&discount)).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"]["amount_override"]["reason"], "member discount");
    let page = b["data"]["confirmation"]["confirmation_url"].as_str().unwrap().to_owned();
    let pay = form(&srv, &page, "succeeded").await;
    assert!(
        pay.1.contains(&("amount".into(), "1500.00".into())),
        "the page asks the new amount: {:?}",
        pay.1
    );
    assert_eq!(submit(&srv, &pay).await.0, 303);
    let p = zoo(&srv, &tok, &second_id).await;
    assert_eq!((p["status"].as_str(), p["tickets"].as_array().unwrap().len()), (Some("succeeded"), 2));

    // An admin changes the tariff: new sessions follow it; only an admin may.
    let tariff = json!({"ticket_types": [{"ticket_type": "adult", "unit_price": {"value": "1200.00", "currency": "RUB"}}]});
    let (s, _) = srv.call(Method::PUT, "/v1/tariff", Some(&tok), Some(&tariff)).await;
    assert_eq!(s, 403);
    let (s, b) = srv.call(Method::PUT, "/v1/tariff", Some(&token("900", &["admin"])), Some(&tariff)).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = srv
        .post(
            "/v1/payments/sessions",
            Some(&tok),
            &session(json!([item("adult", 1, "1000.00", "12:00")]), "1000.00"),
        )
        .await;
    assert_eq!((s, b["error"]["field"].as_str()), (422, Some("order.items[0].unit_price.value")), "{b}");
    let (s, b) = srv
        .post(
            "/v1/payments/sessions",
            Some(&tok),
            &session(json!([item("adult", 1, "1200.00", "12:00")]), "1200.00"),
        )
        .await;
    assert_eq!(s, 201, "{b}");
}

/// The supplier's deal of 500000 (the consumer pays the commission): the consumer lowers the
/// cost to 20, takes the 21.40 link, the cost goes back to 500000, and the old link is paid.
async fn deal_terms_changed_after_the_link_was_taken(store: Arc<dyn Store>) {
    let srv = server(store).await;
    let (supplier, consumer) = (token("41", &[]), token("42", &[]));
    let body = json!({"order": {"order_description": "Станок", "verify_days": 3, "commission_payer": "consumer",
        "cost": "500000", "supplier_id": "41", "consumer_id": "42"}});
    let (s, created) = srv.post("/api/v1/orders", Some(&supplier), &body).await;
    assert_eq!(s, 201, "{created}");
    let id = created["order"]["id"].as_i64().unwrap();
    let deal = format!("/api/v1/orders/{id}");
    // Both parties are known (their emails come from their tokens).
    assert_eq!(srv.get("/api/v1/me", Some(&consumer)).await.0, 200);

    // The consumer lowers the cost of the supplier's deal: not payable until the supplier
    // approves the new terms (no link, no invoice, no move to payment).
    let (s, b) =
        srv.call(Method::PATCH, &deal, Some(&consumer), Some(&json!({"order": {"cost": "20"}}))).await;
    assert_eq!(s, 200, "{b}");
    let states = |o: &Value| -> Vec<String> {
        o["transitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["to_state"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(states(&b["order"]), ["approved", "cancelled"], "the supplier's approval, no payment: {b}");
    let back = "redirect_to=https%3A%2F%2Fshop.example%2Fback";
    let (_, info) = srv.get(&format!("{deal}/payment_info?{back}"), Some(&consumer)).await;
    assert_eq!(
        (info["gateway_url"].clone(), info["mandarin_url"].clone()),
        (Value::Null, Value::Null),
        "{info}"
    );
    let invoice = json!({"payment": {"name": "ООО Покупатель", "payment_method": "invoice"}});
    assert_eq!(srv.post(&format!("{deal}/payment"), Some(&consumer), &invoice).await.0, 400);
    let to = json!({"transition": {"to_state": "payment_verification"}});
    assert_eq!(srv.post(&format!("{deal}/transitions"), Some(&consumer), &to).await.0, 400);
    let (_, d) = srv.get(&deal, Some(&supplier)).await;
    assert_eq!(states(&d["order"]), ["approved", "cancelled"], "{d}");
    // The supplier sets the terms (the same low cost): the consumer confirms them by paying.
    let (s, b) = srv
        .call(
            Method::PATCH,
            &deal,
            Some(&supplier),
            Some(&json!({"order": {"cost": "20", "verify_days": 4}})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (_, info) = srv.get(&format!("{deal}/payment_info?{back}"), Some(&consumer)).await;
    assert_eq!(info["consumer_pay"]["gateway"], json!(21.40));
    let old_link = info["gateway_url"].as_str().unwrap().to_owned();
    let old_pay = form(&srv, &old_link, "succeeded").await;
    assert!(old_pay.1.contains(&("amount".into(), "21.40".into())));

    // The supplier raises the cost back: the open link is cancelled, the consumer is told
    // the old and the new terms.
    let (s, b) =
        srv.call(Method::PATCH, &deal, Some(&supplier), Some(&json!({"order": {"cost": "500000"}}))).await;
    assert_eq!(s, 200, "{b}");
    let told = sent(&srv, "deal_terms_changed");
    let to_consumer: Vec<_> = told.iter().filter(|n| n.to == "user42@example.com").collect();
    assert_eq!(to_consumer.len(), 2, "the supplier's two changes: {told:?}");
    let (subject, text) = read(to_consumer[1]);
    assert!(subject.contains(&format!("№{id}")), "{subject}");
    assert!(text.contains("20.00") && text.contains("500000.00") && text.contains("отменены"), "{text}");
    let html = srv.http.get(&old_link).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("canceled") && !html.contains("Pay"), "a cancelled link offers no button: {html}");

    // The old link paid all the same (the form kept by the browser): recorded, returned,
    // the buyer told; the deal is not paid.
    assert_eq!(submit(&srv, &old_pay).await.0, 303);
    let (_, d) = srv.get(&deal, Some(&consumer)).await;
    assert_eq!(d["order"]["state"], "pending", "{d}");
    let returned = sent(&srv, "payment_returned");
    assert_eq!(returned.len(), 1);
    assert_eq!(returned[0].to, "user42@example.com");
    let (subject, text) = read(&returned[0]);
    assert!(subject.contains("21.40") && text.contains("счёт уже был закрыт"), "{subject} {text}");
    let pid = old_link.rsplit('/').next().unwrap();
    let p = shared::payments::get(&srv.app, pid).await.unwrap();
    assert_eq!(p.status, shared::payments::Status::Canceled);
    assert_eq!(p.anomaly.as_ref().map(|a| a.kind), Some(shared::payments::AnomalyKind::LatePayment));
    assert_eq!(p.refunded_amount.to_string(), "21.40", "returned through the sandbox");
    // The parties' platforms hear of the money returned (a webhook message to each).
    let refunded: Vec<Value> = srv
        .app
        .local_queue
        .as_ref()
        .unwrap()
        .webhooks()
        .into_iter()
        .filter_map(|n| match n.message {
            shared::mail::Message::Webhook(m) if m.kind == "deal.payment_refunded" => Some(m.data),
            _ => None,
        })
        .collect();
    assert_eq!(refunded.len(), 2, "one to each party: {refunded:?}");
    for d in &refunded {
        assert_eq!((d["payment_id"].as_str(), d["amount"].as_str()), (Some(pid), Some("21.40")), "{d}");
    }
    // Paid twice? The late notice again changes nothing.
    assert!(submit(&srv, &old_pay).await.0 < 500);
    assert_eq!(sent(&srv, "payment_returned").len(), 1);

    // The new terms' link, then a second for the same amount (another return page): the
    // second closes the first, whose page kept open and paid only pays the money back.
    let (_, info) = srv.get(&format!("{deal}/payment_info?{back}"), Some(&consumer)).await;
    let new_link = info["gateway_url"].as_str().unwrap().to_owned();
    assert_ne!(new_link, old_link);
    let pay = form(&srv, &new_link, "succeeded").await;
    assert!(pay.1.contains(&("amount".into(), "529935.00".into())), "{:?}", pay.1);
    let (_, other) = srv
        .get(&format!("{deal}/payment_info?redirect_to=https%3A%2F%2Fother.example"), Some(&consumer))
        .await;
    let second_link = other["gateway_url"].as_str().unwrap().to_owned();
    assert_ne!(second_link, new_link);
    let second = form(&srv, &second_link, "succeeded").await;
    let html = srv.http.get(&new_link).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("canceled") && !html.contains("Pay"), "the first link is closed: {html}");
    assert_eq!(submit(&srv, &pay).await.0, 303);
    let (_, d) = srv.get(&deal, Some(&consumer)).await;
    assert_eq!(d["order"]["state"], "pending", "{d}");
    assert_eq!(sent(&srv, "payment_returned").len(), 2);
    // The second pays the deal; the first paid again changes nothing more.
    assert_eq!(submit(&srv, &second).await.0, 303);
    let (_, d) = srv.get(&deal, Some(&consumer)).await;
    assert_eq!(d["order"]["state"], "paid", "{d}");
    assert!(submit(&srv, &pay).await.0 < 500);
    assert_eq!(sent(&srv, "payment_returned").len(), 2);
    let history =
        srv.app.store.get(&format!("deal#{id}"), "deal").await.unwrap().unwrap().data["history"].clone();
    assert_eq!(
        history.as_array().unwrap().len(),
        2,
        "pending → payment_verification → paid, once: {history}"
    );
    let (_, info) = srv.get(&format!("{deal}/payment_info"), Some(&consumer)).await;
    assert_eq!(
        (info["gateway_url"].clone(), info["mandarin_url"].clone()),
        (Value::Null, Value::Null),
        "{info}"
    );
    // Terms cannot change once paid.
    let (s, _) =
        srv.call(Method::PATCH, &deal, Some(&consumer), Some(&json!({"order": {"cost": "20"}}))).await;
    assert_eq!(s, 400);
}

/// A supplier-created pending deal of 1000.00 between users `supplier` and `consumer` (the
/// consumer known), and the consumer's card link for it with the Pay form of its page, kept as
/// a browser would: (deal id, the deal's path, the link, the form).
async fn deal_with_a_link(
    srv: &TestServer,
    supplier: &str,
    consumer: &str,
) -> (i64, String, String, (String, Vec<(String, String)>)) {
    let body = json!({"order": {"order_description": "Станок", "verify_days": 3, "commission_payer": "consumer",
        "cost": "1000", "supplier_id": supplier, "consumer_id": consumer}});
    let (s, created) = srv.post("/api/v1/orders", Some(&token(supplier, &[])), &body).await;
    assert_eq!(s, 201, "{created}");
    let id = created["order"]["id"].as_i64().unwrap();
    let deal = format!("/api/v1/orders/{id}");
    let tok = token(consumer, &[]);
    assert_eq!(srv.get("/api/v1/me", Some(&tok)).await.0, 200);
    let (_, info) = srv.get(&format!("{deal}/payment_info?{BACK}"), Some(&tok)).await;
    let link = info["gateway_url"].as_str().unwrap().to_owned();
    let kept = form(srv, &link, "succeeded").await;
    (id, deal, link, kept)
}

/// A return page for card links.
const BACK: &str = "redirect_to=https%3A%2F%2Fshop.example%2Fback";

/// The consumer takes a card link, then pays the deal by bank invoice instead (a manager
/// confirms the money); the card page, paid later all the same, is money the deal no longer
/// expects: returned, the manager told, the deal paid once.
async fn a_card_link_paid_after_the_deal_was_paid_by_invoice(store: Arc<dyn Store>) {
    let srv = server(store).await;
    let (consumer, manager) = (token("62", &[]), token("69", &["manager"]));
    let (id, deal, _, card) = deal_with_a_link(&srv, "61", "62").await;

    let invoice = json!({"payment": {"name": "ООО Покупатель", "payment_method": "invoice"}});
    assert_eq!(srv.post(&format!("{deal}/payment"), Some(&consumer), &invoice).await.0, 201);
    let to = |state: &str| json!({"transition": {"to_state": state}});
    let moves = format!("{deal}/transitions");
    assert_eq!(srv.post(&moves, Some(&consumer), &to("payment_verification")).await.0, 204);
    assert_eq!(srv.post(&moves, Some(&manager), &to("paid")).await.0, 204);

    assert_eq!(submit(&srv, &card).await.0, 303);
    let (_, d) = srv.get(&deal, Some(&consumer)).await;
    assert_eq!(d["order"]["state"], "paid", "{d}");
    let mismatch = sent(&srv, "payment_mismatch");
    assert_eq!(mismatch.len(), 1);
    assert!(read(&mismatch[0]).0.contains("ожидалось ничего"), "{:?}", read(&mismatch[0]));
    let returned = sent(&srv, "payment_returned");
    assert_eq!(returned.iter().map(|n| n.to.as_str()).collect::<Vec<_>>(), ["user62@example.com"]);
    let history =
        srv.app.store.get(&format!("deal#{id}"), "deal").await.unwrap().unwrap().data["history"].clone();
    assert_eq!(
        history.as_array().unwrap().len(),
        2,
        "pending → payment_verification → paid, once: {history}"
    );
}

/// The consumer takes a card link, then the supplier cancels the deal: the link is offered no
/// more, and its page paid all the same is money the deal no longer expects: returned, the
/// buyer and the manager told, the deal still cancelled.
async fn a_cancelled_deals_link_paid_late(store: Arc<dyn Store>) {
    let srv = server(store).await;
    let (supplier, consumer) = (token("71", &[]), token("72", &[]));
    let (_, deal, link, kept) = deal_with_a_link(&srv, "71", "72").await;

    let to = json!({"transition": {"to_state": "cancelled"}});
    assert_eq!(srv.post(&format!("{deal}/transitions"), Some(&supplier), &to).await.0, 204);
    let (_, info) = srv.get(&format!("{deal}/payment_info?{BACK}"), Some(&consumer)).await;
    assert_eq!(
        (info["gateway_url"].clone(), info["mandarin_url"].clone()),
        (Value::Null, Value::Null),
        "{info}"
    );
    assert_eq!(submit(&srv, &kept).await.0, 303);
    let (_, d) = srv.get(&deal, Some(&consumer)).await;
    assert_eq!(d["order"]["state"], "cancelled", "{d}");
    let p = shared::payments::get(&srv.app, link.rsplit('/').next().unwrap()).await.unwrap();
    assert_eq!(
        p.anomaly.as_ref().map(|a| a.kind),
        Some(shared::payments::AnomalyKind::AmountMismatch),
        "{p:?}"
    );
    assert_eq!(p.refunded_amount, p.amount, "returned through the sandbox");
    let mismatch = sent(&srv, "payment_mismatch");
    assert!(mismatch.len() == 1 && read(&mismatch[0]).0.contains("ожидалось ничего"), "{mismatch:?}");
    let returned = sent(&srv, "payment_returned");
    assert_eq!(returned.iter().map(|n| n.to.as_str()).collect::<Vec<_>>(), ["user72@example.com"]);
}

/// The supplier hands a pending deal to another consumer after the first took a card link,
/// created a bank invoice, set their refund details and their own callback URL: the first
/// consumer's link pays nothing (the money goes back to them), and nothing they set up passes
/// to the next consumer.
async fn a_deal_handed_to_another_consumer(store: Arc<dyn Store>) {
    let srv = server(store).await;
    let (supplier, first, next) = (token("51", &[]), token("52", &[]), token("53", &[]));
    let (_, deal, old_link, old_pay) = deal_with_a_link(&srv, "51", "52").await;
    let invoice = json!({"payment": {"name": "ООО Первый", "payment_method": "invoice"}});
    assert_eq!(srv.post(&format!("{deal}/payment"), Some(&first), &invoice).await.0, 201);
    let own = json!({"order": {"consumer_billing_info": {"card": "5555"},
        "callback_url": "https://first.example/hook"}});
    let (s, b) = srv.call(Method::PATCH, &deal, Some(&first), Some(&own)).await;
    assert_eq!(s, 200, "{b}");

    let (s, b) =
        srv.call(Method::PATCH, &deal, Some(&supplier), Some(&json!({"order": {"consumer_id": "53"}}))).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(srv.get(&deal, Some(&first)).await.0, 404, "the first consumer is no party any more");
    let (_, d) = srv.get(&deal, Some(&next)).await;
    let order = &d["order"];
    assert_eq!(order["consumer_id"], json!(53), "{d}");
    let stored =
        srv.app.store.get(&deal.replace("/api/v1/orders/", "deal#"), "deal").await.unwrap().unwrap().data;
    for field in ["consumer_billing_info", "callback_url", "callback_owner", "payment"] {
        assert!(order[field].is_null(), "{field} was the first consumer's: {d}");
        assert!(stored.get(field).is_none_or(Value::is_null), "{field} kept: {stored:?}");
    }
    assert_eq!(
        srv.get(&format!("{deal}/payment"), Some(&next)).await.0,
        404,
        "the invoice was the first consumer's"
    );
    let html = srv.http.get(&old_link).send().await.unwrap().text().await.unwrap();
    assert!(
        html.contains("canceled") && !html.contains("Pay"),
        "the first consumer's link is closed: {html}"
    );

    // The first consumer pays their kept page all the same: recorded and returned to them;
    // the deal is not paid.
    assert_eq!(submit(&srv, &old_pay).await.0, 303);
    let (_, d) = srv.get(&deal, Some(&next)).await;
    assert_eq!(d["order"]["state"], "pending", "{d}");
    let pid = old_link.rsplit('/').next().unwrap();
    let p = shared::payments::get(&srv.app, pid).await.unwrap();
    assert_eq!(p.status, shared::payments::Status::Canceled);
    assert_eq!(p.refunded_amount, p.amount, "returned through the sandbox");
    let returned = sent(&srv, "payment_returned");
    assert_eq!(returned.iter().map(|n| n.to.as_str()).collect::<Vec<_>>(), ["user52@example.com"]);

    // The next consumer's own link pays the deal.
    let (_, info) = srv.get(&format!("{deal}/payment_info?{BACK}"), Some(&next)).await;
    let link = info["gateway_url"].as_str().unwrap().to_owned();
    assert_ne!(link, old_link);
    assert_eq!(submit(&srv, &form(&srv, &link, "succeeded").await).await.0, 303);
    let (_, d) = srv.get(&deal, Some(&next)).await;
    assert_eq!(d["order"]["state"], "paid", "{d}");
}

/// A zoo session abandoned (cancelled by the job), then deleted by the shop; the buyer pays
/// with the page kept open (or the gateway completes it after all): the money is recorded against the
/// payment, returned, and the buyer told; the session stays gone.
async fn a_deleted_sessions_page_paid_late(store: Arc<dyn Store>) {
    let srv = server(store).await;
    let tok = token("21", &[]);
    let items = json!([item("adult", 1, "1000.00", "12:00")]);
    let (s, created) = srv.post("/v1/payments/sessions", Some(&tok), &session(items, "1000.00")).await;
    assert_eq!(s, 201, "{created}");
    let id = created["data"]["payment_id"].as_str().unwrap().to_owned();
    let page = created["data"]["confirmation_url"].as_str().unwrap().to_owned();
    let kept = form(&srv, &page, "succeeded").await;
    // Abandoned: the job cancels it when its time is up.
    srv.app.clock.advance(chrono::Duration::minutes(16));
    run(&srv.app, Job::Payments).await.unwrap();
    assert_eq!(zoo(&srv, &tok, &id).await["status"], "canceled");
    let path = format!("/v1/payments/{id}");
    assert_eq!(srv.call(Method::DELETE, &path, Some(&tok), None).await.0, 200);
    assert_eq!(srv.get(&path, Some(&tok)).await.0, 404);

    assert!(submit(&srv, &kept).await.0 < 500);
    assert_eq!(srv.get(&path, Some(&tok)).await.0, 404, "the session stays gone");
    let p = shared::payments::get(&srv.app, &id).await.unwrap();
    assert_eq!(p.anomaly.as_ref().map(|a| a.kind), Some(shared::payments::AnomalyKind::LatePayment), "{p:?}");
    assert_eq!(p.refunded_amount.to_string(), "1000.00", "returned through the sandbox");
    let returned = sent(&srv, "payment_returned");
    assert_eq!(returned.iter().map(|n| n.to.as_str()).collect::<Vec<_>>(), ["visitor@example.com"]);
    assert_eq!(reserved(&srv, "12:00").await, 0, "no place is taken for it");
    // The same notice again changes nothing.
    assert!(submit(&srv, &kept).await.0 < 500);
    assert_eq!(sent(&srv, "payment_returned").len(), 1);
}

/// An online ticket order abandoned on the payment page is cancelled by the job; the buyer
/// then pays with the page still open: the money is recorded and returned, the order stays
/// cancelled, its seats free.
async fn a_cancelled_orders_link_paid_late(store: Arc<dyn Store>) {
    let srv = server(store).await;
    create_event(&srv, "late").await;
    let (order, page) = online_order(&srv, "late", &["s-1-1", "s-1-2"], "self_online").await;
    let pay = form(&srv, &page, "succeeded").await;
    srv.app.clock.advance(chrono::Duration::minutes(16));
    run(&srv.app, Job::Payments).await.unwrap();
    let o = admin_order(&srv, &order).await;
    assert_eq!((o["status"].as_str(), o["payment_url"].clone()), (Some("cancelled"), Value::Null), "{o}");
    assert!(taken_seats(&srv, "late").await.is_empty());

    let (status, location) = submit(&srv, &pay).await;
    assert_eq!(status, 303);
    assert!(location.contains("/payment_return"), "{location}");
    let o = admin_order(&srv, &order).await;
    assert_eq!(o["status"], "cancelled");
    assert!(taken_seats(&srv, "late").await.is_empty(), "the seats stay free");
    let p = shared::payments::get(&srv.app, &payment_of(&srv, &order).await).await.unwrap();
    assert_eq!(p.anomaly.as_ref().map(|a| a.received), Some(p.amount));
    assert_eq!(p.refunded_amount, p.amount, "returned");
    let returned = sent(&srv, "payment_returned");
    assert_eq!(returned.len(), 1);
    assert_eq!(returned[0].to, "anna@example.com");
    assert!(read(&returned[0]).0.contains(&shared::money::format(p.amount)));
    assert!(sent(&srv, "ticket_order_buyer").is_empty(), "no confirmation for a cancelled order");
}

/// A notice signed with the sandbox's own key for 1.00 of a 2000.00 session.
async fn a_signed_notice_for_a_smaller_sum(store: Arc<dyn Store>) {
    let srv = server(store).await;
    let tok = token("21", &[]);
    let (_, created) = srv
        .post(
            "/v1/payments/sessions",
            Some(&tok),
            &session(json!([item("adult", 2, "1000.00", "13:00")]), "2000.00"),
        )
        .await;
    let id = created["data"]["payment_id"].as_str().unwrap().to_owned();
    assert_eq!(reserved(&srv, "13:00").await, 2);
    let fields = [
        ("payment_id", id.as_str()),
        ("outcome", "succeeded"),
        ("amount", "1.00"),
        ("signature", &sandbox::sign(SANDBOX, &id, "succeeded", "1.00")),
    ];
    let res = srv.http.post(srv.url("/api/v1/gateways/sandbox/callback")).form(&fields).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "https://zoo.example/cancel", "no success page for a wrong sum");
    let p = zoo(&srv, &tok, &id).await;
    assert_eq!(
        (p["status"].as_str(), p["refunded_amount"]["value"].as_str()),
        (Some("refunded"), Some("1.00")),
        "{p}"
    );
    assert!(p["tickets"].as_array().unwrap().is_empty());
    // The record behind the view: all that came in went back, nothing is still on its way.
    let stored = shared::payments::load(&srv.app, &id).await.unwrap().expect("the payment");
    assert_eq!((stored.refunded_amount.to_string(), stored.refunding.is_zero()), ("1.00".to_owned(), true));
    assert_eq!(p["confirmation"]["confirmation_url"], Value::Null);
    assert_eq!(reserved(&srv, "13:00").await, 0, "the places are free again");
    let mismatch = sent(&srv, "payment_mismatch");
    assert_eq!((mismatch.len(), mismatch[0].to.as_str()), (1, "manager@example.com"));
    assert!(read(&mismatch[0]).0.contains("получено 1.00"));
    assert_eq!(sent(&srv, "payment_returned").len(), 1);
    assert!(sent(&srv, "zoo_tickets").is_empty());
}

async fn the_sandbox_settles_only_its_own_payments(store: Arc<dyn Store>) {
    // Zoo sessions through Robokassa (its links are made locally; nobody pays them here).
    let mut config = shared::Config::for_tests();
    config.jwt.secret = SECRET.into();
    config.payments.zoo_gateway = shared::payments::GatewayKind::Robokassa;
    config.payments.robokassa.login = "shop".into();
    config.payments.robokassa.password1 = "p1".into();
    config.payments.robokassa.password2 = "p2".into();
    let srv = TestServer::start_with(shared::App::new(store.clone(), config.clone())).await;
    let tok = token("21", &[]);
    let (_, created) = srv
        .post(
            "/v1/payments/sessions",
            Some(&tok),
            &session(json!([item("adult", 1, "1000.00", "14:00")]), "1000.00"),
        )
        .await;
    let id = created["data"]["payment_id"].as_str().unwrap().to_owned();
    let fields = [
        ("payment_id", id.as_str()),
        ("outcome", "succeeded"),
        ("amount", "1000.00"),
        ("signature", &sandbox::sign(SANDBOX, &id, "succeeded", "1000.00")),
    ];
    let callback = srv.url("/api/v1/gateways/sandbox/callback");
    let res = srv.http.post(&callback).form(&fields).send().await.unwrap();
    assert_eq!(res.status(), 403, "a sandbox notice for a Robokassa payment");
    assert_eq!(srv.get(&format!("/api/v1/gateways/sandbox/pay/{id}"), None).await.0, 404);
    assert_eq!(zoo(&srv, &tok, &id).await["status"], "pending");

    // With the sandbox off (a deployed stack's default), its page and callback do not exist.
    config.payments.sandbox = false;
    let off = TestServer::start_with(shared::App::new(store, config)).await;
    let res = off.http.post(off.url("/api/v1/gateways/sandbox/callback")).form(&fields).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(off.get(&format!("/api/v1/gateways/sandbox/pay/{id}"), None).await.0, 404);
    assert_eq!(zoo(&off, &tok, &id).await["status"], "pending");
}
