//! The managers' queues over HTTP: `GET /api/v1/orders?state=...` lists every deal in a state
//! for a manager (newest first, the seed's paging and `meta`), from the state index the deal's
//! own writes keep; a party sees only their own. On the embedded store and on DynamoDB (moto).

use api_tests::emails::{approve, deal_to_approve};
use api_tests::{TestServer, token};
use serde_json::{Value, json};

fn manager() -> String {
    token("m1", &["manager"])
}

async fn move_to(srv: &TestServer, id: i64, who: &str, state: &str) {
    let t = json!({"transition": {"to_state": state}});
    let (status, body) = srv.post(&format!("/api/v1/orders/{id}/transitions"), Some(who), &t).await;
    assert!(status == 204 || status == 200, "{id} -> {state}: {status} {body}");
}

async fn queue(srv: &TestServer, who: &str, query: &str) -> (Vec<i64>, Value) {
    let (status, body) = srv.get(&format!("/api/v1/orders?{query}"), Some(who)).await;
    assert_eq!(status, 200, "{body}");
    let ids = body["orders"].as_array().unwrap().iter().map(|o| o["id"].as_i64().unwrap()).collect();
    (ids, body["meta"].clone())
}

#[tokio::test]
async fn memory_managers_see_the_verification_queue() {
    verification_queue(TestServer::memory().await).await;
}

#[tokio::test]
async fn dynamo_managers_see_the_verification_queue() {
    let Some(store) = api_tests::dynamo_store().await else { return };
    verification_queue(TestServer::start(store).await).await;
}

async fn verification_queue(srv: TestServer) {
    let consumer = token("14", &[]);
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(deal_to_approve(&srv).await);
    }
    // Three of the four are paid by the consumer and wait for a manager's check.
    for id in &ids[..3] {
        assert_eq!(approve(&srv, *id).await, 204);
        let pay = json!({"payment": {"name": "Иванов Иван Иванович", "payment_method": "invoice",
            "payment_info": {"number": "42"}}});
        let (status, body) = srv.post(&format!("/api/v1/orders/{id}/payment"), Some(&consumer), &pay).await;
        assert_eq!(status, 201, "{body}");
        move_to(&srv, *id, &consumer, "payment_verification").await;
    }
    let (listed, meta) = queue(&srv, &manager(), "state=payment_verification").await;
    assert_eq!(listed, [ids[2], ids[1], ids[0]], "newest first");
    assert_eq!((meta["total"].as_u64(), meta["total_pages"].as_u64()), (Some(3), Some(1)), "{meta}");
    assert!(meta["links"]["self"].as_str().unwrap().contains("state=payment_verification"), "{meta}");
    let (pending, _) = queue(&srv, &manager(), "state=pending").await;
    assert_eq!(pending, [ids[3]]);

    // Paging: two per page.
    let (first, meta) = queue(&srv, &manager(), "state=payment_verification&per=2").await;
    assert_eq!(first, [ids[2], ids[1]]);
    assert_eq!(meta["total_pages"], 2);
    assert!(meta["links"]["next_page"].as_str().unwrap().contains("page=2"), "{meta}");
    let (second, _) = queue(&srv, &manager(), "state=payment_verification&per=2&page=2").await;
    assert_eq!(second, [ids[0]]);

    // The manager confirms one: it leaves the queue and shows under its new state.
    move_to(&srv, ids[1], &manager(), "paid").await;
    let (listed, _) = queue(&srv, &manager(), "state=payment_verification").await;
    assert_eq!(listed, [ids[2], ids[0]]);
    let (paid, _) = queue(&srv, &manager(), "state=paid").await;
    assert_eq!(paid, [ids[1]]);

    // A party sees only their own deals in a state; a stranger none; a bad state is 400.
    let (own, _) = queue(&srv, &consumer, "state=payment_verification").await;
    assert_eq!(own, [ids[2], ids[0]]);
    let (none, meta) = queue(&srv, &token("99", &[]), "state=payment_verification").await;
    assert!(none.is_empty());
    assert_eq!(meta["total"], 0);
    let (status, body) = srv.get("/api/v1/orders?state=lost", Some(&manager())).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("state")), "{body}");
}
