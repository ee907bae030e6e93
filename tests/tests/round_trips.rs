//! Store round trips per API call, counted by the `CountingStore` wrapper. These pin the hot
//! paths at their minimum; the README lists the same figures.

use std::sync::Arc;

use api_tests::counting::CountingStore;
use api_tests::{TestServer, memory_store, token};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn deal_calls_use_the_minimum_round_trips() {
    let counting = Arc::new(CountingStore::counting(memory_store()));
    let counts = counting.counts.clone();
    let srv = TestServer::start_stream_relayed(counting).await;
    let (supplier, consumer) = (token("21", &[]), token("14", &[]));
    let order = json!({"order": {"order_description": "x", "verify_days": 3, "commission_payer": "consumer",
        "cost": 100, "supplier_id": "21", "consumer_id": "14", "supplier_billing_info": {"a": 1}}});
    srv.post("/api/v1/orders", Some(&supplier), &order).await;
    srv.post(
        "/api/v1/orders",
        Some(&consumer),
        &json!({"order": {"order_description": "x", "verify_days": 3,
        "commission_payer": "consumer", "cost": 100, "supplier_id": "21"}}),
    )
    .await;

    let mut measured = Vec::new();
    let mut measure =
        async |name: &str, method: Method, path: String, t: &str, body: Option<serde_json::Value>| {
            counts.reset();
            let (status, _) = srv.call(method, &path, Some(t), body.as_ref()).await;
            assert!(status < 300, "{name}: {status}");
            measured.push((name.to_owned(), counts.total(), counts.depth()));
        };
    measure(
        "calc_commission",
        Method::POST,
        "/api/v1/orders/calc_commission".into(),
        &supplier,
        Some(json!({"cost": 1000, "commission_payer": "50/50"})),
    )
    .await;
    measure(
        "create deal (known user)",
        Method::POST,
        "/api/v1/orders".into(),
        &supplier,
        Some(order.clone()),
    )
    .await;
    measure("get deal", Method::GET, "/api/v1/orders/1".into(), &supplier, None).await;
    measure("list deals", Method::GET, "/api/v1/orders".into(), &supplier, None).await;
    measure("transitions", Method::GET, "/api/v1/orders/1/transitions".into(), &supplier, None).await;
    measure(
        "perform transition",
        Method::POST,
        "/api/v1/orders/2/transitions".into(),
        &supplier,
        Some(json!({"transition": {"to_state": "cancelled"}})),
    )
    .await;
    for (name, n, depth) in &measured {
        println!("{name}: {n} round trips, {depth} one after another");
    }
    // (round trips, how many of them one after another)
    let expected = [
        ("calc_commission", 0, 0),
        // Party profiles (one batch) while the deal number is drawn; one transaction.
        ("create deal (known user)", 3, 2),
        ("get deal", 2, 2),    // deal, party profiles (one batch)
        ("list deals", 3, 3),  // memberships, deals (one batch), profiles (one batch)
        ("transitions", 1, 1), // the deal
        // Deal, one transaction (deal + outbox): the deal knows its parties' addresses.
        ("perform transition", 2, 2),
    ];
    let got: Vec<(&str, u64, u64)> = measured.iter().map(|(n, c, d)| (n.as_str(), *c, *d)).collect();
    assert_eq!(got, expected);
}

/// A zoo session create: the tariff and the caller's cap ledgers (with the caps as deployed:
/// per user and per client address), then one transaction (payment, session, the slot's places
/// and the ledgers). (A gateway's settlement: `gateways.rs`.)
#[tokio::test]
async fn zoo_session_create_round_trips() {
    let counting = Arc::new(CountingStore::counting(memory_store()));
    let counts = counting.counts.clone();
    let mut config = shared::Config::for_tests();
    config.jwt.secret = api_tests::SECRET.into();
    config.outbox_relay = shared::config::Relay::Stream;
    config.caps = shared::caps::CapsConfig::default();
    let srv = TestServer::start_with(shared::App::new(counting, config)).await;
    let tok = token("21", &[]);
    let body = json!({
        "session_id": "s-depth", "order": {"order_id": "ZT-DEPTH", "total_amount": {"value": "2000.00", "currency": "RUB"},
        "items": [{"ticket_type": "adult", "quantity": 2, "unit_price": {"value": "1000.00", "currency": "RUB"},
                   "visit_date": api_tests::emails::visit_date(), "visit_time": "10:00"}]},
        "customer": {"email": "visitor@example.com"},
        "confirmation": {"type": "redirect", "return_url": "https://zoo.example/ok", "cancel_url": "https://zoo.example/no"}
    });
    counts.reset();
    let (status, created) = srv.post("/v1/payments/sessions", Some(&tok), &body).await;
    assert_eq!(status, 201, "{created}");
    // The tariff and the two ledgers (one batch) together, then the transaction.
    assert_eq!((counts.total(), counts.depth()), (3, 2));
    let ledgers = srv
        .app
        .store
        .query(
            &shared::caps::pk(&format!("zoo#{}#10:00", api_tests::emails::visit_date()), "user:21"),
            Default::default(),
        )
        .await;
    assert_eq!(ledgers.expect("the user's ledger").len(), 1, "the session is counted in its user's ledger");
}

/// An email's delivery: its claim taken by one conditional write (no read first), the send,
/// the claim marked sent. A repeat of it: the claim refused, then read, no send.
#[tokio::test]
async fn an_email_delivery_round_trips() {
    let counting = Arc::new(CountingStore::counting(memory_store()));
    let counts = counting.counts.clone();
    let mailer = Arc::new(notifier::MemoryMailer::default());
    let deps = notifier::Deps::new(counting, mailer.clone());
    let hundred = shared::mail::Rub(rust_decimal::Decimal::new(10000, 2));
    let mail = shared::mail::RefundMail {
        subject: "Заказ №8".into(),
        customer_name: None,
        amount: hundred,
        reason: String::new(),
        refunded: hundred,
        total: hundred,
    };
    let n =
        shared::mail::Notification::new("depth-1", "buyer@example.com", shared::mail::Message::Refund(mail));
    counts.reset();
    assert_eq!(notifier::process(&deps, &n).await, Ok(notifier::Outcome::Sent));
    let reads = counts.reads.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!((reads, counts.total(), counts.depth()), (0, 2, 2), "the claim, then sent");
    counts.reset();
    assert_eq!(notifier::process(&deps, &n).await, Ok(notifier::Outcome::Duplicate));
    let reads = counts.reads.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!((reads, counts.total(), counts.depth()), (1, 2, 2), "the claim refused, then read");
    assert_eq!(mailer.sent().len(), 1);
}
