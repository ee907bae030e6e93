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
            measured.push((name.to_owned(), counts.total()));
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
    for (name, n) in &measured {
        println!("{name}: {n}");
    }
    let expected = [
        ("calc_commission", 0),
        ("create deal (known user)", 4), // profile read, id counter, one transaction, party profiles
        ("get deal", 2),                 // deal, party profiles (one batch)
        ("list deals", 3),               // memberships, deals (one batch), profiles (one batch)
        ("transitions", 1),
        ("perform transition", 3), // deal, party profiles (its emails), one transaction (deal + outbox)
    ];
    let got: Vec<(&str, u64)> = measured.iter().map(|(n, c)| (n.as_str(), *c)).collect();
    assert_eq!(got, expected);
}
