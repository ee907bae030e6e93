//! Fault injection: a store failure (or timeout) at any step of a deal operation leaves no
//! half-done state, answers a 5xx the client can retry, and the retry finishes the job.

use std::sync::Arc;

use api_tests::{TestServer, memory_store, token};
use serde_json::{Value, json};
use shared::store::faulty::FaultyStore;
use shared::store::{QueryOpts, Store};

/// Every membership points at a deal that lists that user as a party, and every deal has
/// its parties' memberships.
async fn consistent(store: &Arc<dyn Store>, users: &[&str]) -> usize {
    let mut deals = std::collections::BTreeSet::new();
    for u in users {
        for m in store.query(&format!("user#{u}"), QueryOpts::prefix("deal#")).await.unwrap() {
            let id = m.data["deal_id"].as_i64().unwrap();
            let deal = store
                .get(&format!("deal#{id}"), "deal")
                .await
                .unwrap()
                .expect("membership of a missing deal");
            let parties = [deal.data["supplier_id"].clone(), deal.data["consumer_id"].clone()];
            assert!(parties.contains(&json!(u)), "user {u} is not a party of deal {id}");
            deals.insert(id);
        }
    }
    for id in &deals {
        let deal = store.get(&format!("deal#{id}"), "deal").await.unwrap().unwrap();
        for party in ["supplier_id", "consumer_id"] {
            if let Some(u) = deal.data[party].as_str() {
                let key = format!("deal#{id:012}");
                assert!(
                    store.get(&format!("user#{u}"), &key).await.unwrap().is_some(),
                    "deal {id} lacks {u}'s membership"
                );
            }
        }
    }
    deals.len()
}

#[tokio::test]
async fn deal_create_and_transition_survive_a_failure_at_every_step() {
    let inner: Arc<dyn Store> = memory_store();
    let faulty = Arc::new(FaultyStore::faulty(inner.clone()));
    let srv = TestServer::start(faulty.clone()).await;
    let (supplier, consumer) = (token("21", &[]), token("14", &[]));
    let order = json!({"order": {"order_description": "x", "verify_days": 3, "commission_payer": "consumer",
        "cost": 100, "supplier_id": "21", "consumer_id": "14", "supplier_billing_info": {"acc": 1}}});

    // Count the steps of a clean create, then fail each one in turn.
    faulty.fail_call(0, false);
    assert_eq!(srv.post("/api/v1/orders", Some(&supplier), &order).await.0, 201);
    let steps = faulty.calls();
    assert!(steps >= 3, "create takes several store calls ({steps})");
    let mut created = 1;
    for step in 1..=steps {
        for stall in [false, true] {
            faulty.fail_call(step, stall);
            let (status, body) = srv.post("/api/v1/orders", Some(&supplier), &order).await;
            if status == 201 {
                created += 1;
            } else {
                assert_eq!(status, 503, "step {step}: {body}");
            }
            faulty.heal();
            assert_eq!(consistent(&inner, &["21", "14"]).await, created, "step {step}");
            // The client's retry finishes the job.
            assert_eq!(srv.post("/api/v1/orders", Some(&supplier), &order).await.0, 201);
            created += 1;
        }
    }

    // A transition: fail each step of approving, then retry.
    let (_, body) = srv
        .post(
            "/api/v1/orders",
            Some(&consumer),
            &json!({"order": {"order_description": "y",
        "verify_days": 3, "commission_payer": "consumer", "cost": 100, "supplier_id": "21"}}),
        )
        .await;
    let id = body["order"]["id"].as_i64().unwrap();
    let patch = json!({"order": {"supplier_billing_info": {"acc": 1}}});
    let path = format!("/api/v1/orders/{id}");
    assert_eq!(srv.call(reqwest::Method::PATCH, &path, Some(&supplier), Some(&patch)).await.0, 200);
    let approve = json!({"transition": {"to_state": "approved"}});
    faulty.fail_call(0, false);
    let transitions = format!("/api/v1/orders/{id}/transitions");
    let before: Value =
        inner.get(&format!("deal#{id}"), "deal").await.unwrap().unwrap().data["history"].clone();
    faulty.fail_call(1, false);
    assert_eq!(srv.post(&transitions, Some(&supplier), &approve).await.0, 503);
    faulty.fail_call(2, true);
    assert_eq!(srv.post(&transitions, Some(&supplier), &approve).await.0, 503);
    let after = inner.get(&format!("deal#{id}"), "deal").await.unwrap().unwrap();
    assert_eq!(after.data["state"], "pending", "a failed write changes nothing");
    assert_eq!(after.data["history"], before);
    faulty.heal();
    assert_eq!(srv.post(&transitions, Some(&supplier), &approve).await.0, 204);
    assert_eq!(inner.get(&format!("deal#{id}"), "deal").await.unwrap().unwrap().data["state"], "approved");
}
