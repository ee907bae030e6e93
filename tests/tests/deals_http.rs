//! Escrow deals over HTTP, on the embedded store (`memory::`) and on DynamoDB via moto (`dynamo::`).

use std::io::Read;
use std::sync::Arc;

use api_tests::{TestServer, token};
use reqwest::Method;
use serde_json::{Value, json};
use shared::jobs::{Job, run};
use shared::store::Store;

const SUPPLIER: &str = "21";
const CONSUMER: &str = "14";
const MANAGER: &str = "900";
const STRANGER: &str = "77";

struct Parties {
    supplier: String,
    consumer: String,
    manager: String,
    stranger: String,
}

fn parties() -> Parties {
    Parties {
        supplier: token(SUPPLIER, &[]),
        consumer: token(CONSUMER, &[]),
        manager: token(MANAGER, &["manager"]),
        stranger: token(STRANGER, &[]),
    }
}

async fn patch(srv: &TestServer, id: i64, t: &str, order: Value) -> (u16, Value) {
    srv.call(Method::PATCH, &format!("/api/v1/orders/{id}"), Some(t), Some(&json!({ "order": order }))).await
}

async fn to_state(srv: &TestServer, id: i64, t: &str, state: &str) -> u16 {
    let body = json!({"transition": {"to_state": state}});
    srv.post(&format!("/api/v1/orders/{id}/transitions"), Some(t), &body).await.0
}

async fn state_of(srv: &TestServer, id: i64, t: &str) -> Value {
    let (status, body) = srv.get(&format!("/api/v1/orders/{id}"), Some(t)).await;
    assert_eq!(status, 200, "{body}");
    body["order"].clone()
}

/// A consumer-created deal, approved by the supplier, paid by invoice and confirmed by a
/// manager, shipped: returns its id.
async fn shipped_deal(srv: &TestServer, p: &Parties) -> i64 {
    let (status, body) = srv
        .post(
            "/api/v1/orders",
            Some(&p.consumer),
            &json!({"order": {"order_description": "Сделка на поставку", "verify_days": "3",
                "commission_payer": "consumer", "cost": "23", "supplier_id": SUPPLIER, "supply_days": 2}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let order = &body["order"];
    assert_eq!(order["state"], "pending");
    assert_eq!(order["role"], "consumer");
    assert_eq!(order["commission"], json!(0.92));
    assert_eq!(order["commission_description"], "4%");
    assert_eq!(order["consumer_pay"], json!(23.92));
    assert_eq!(order["supplier_receive"], json!(23.0));
    assert_eq!(order["consumer_id"], json!(14));
    assert_eq!(order["supplier"]["id"], json!(21));
    let id = order["id"].as_i64().unwrap();

    // Approving needs the supplier's payout details; the consumer may not approve.
    assert_eq!(to_state(srv, id, &p.consumer, "approved").await, 403);
    assert_eq!(to_state(srv, id, &p.supplier, "approved").await, 400);
    assert_eq!(
        patch(srv, id, &p.supplier, json!({"supplier_billing_info": {"account": "40817"}})).await.0,
        200
    );
    assert_eq!(to_state(srv, id, &p.supplier, "approved").await, 204);

    // Pay by invoice, then the manager confirms the money.
    assert_eq!(to_state(srv, id, &p.consumer, "payment_verification").await, 400, "no payment yet");
    let pay = json!({"payment": {"name": "Иванов Иван Иванович", "payment_method": "invoice",
        "payment_info": {"level": "over 9000"}}});
    assert_eq!(srv.post(&format!("/api/v1/orders/{id}/payment"), Some(&p.supplier), &pay).await.0, 403);
    let (status, body) = srv.post(&format!("/api/v1/orders/{id}/payment"), Some(&p.consumer), &pay).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["payment"]["payment_method"], "invoice");
    assert_eq!(body["payment"]["info"]["level"], "over 9000");
    let (status, shown) = srv.get(&format!("/api/v1/orders/{id}/payment"), Some(&p.consumer)).await;
    assert_eq!((status, &shown["payment"]["id"]), (200, &body["payment"]["id"]));
    assert_eq!(to_state(srv, id, &p.consumer, "payment_verification").await, 204);
    assert_eq!(to_state(srv, id, &p.consumer, "paid").await, 403);
    assert_eq!(to_state(srv, id, &p.manager, "paid").await, 204);

    // Ship: needs shipping details; sets the end of protection (supply 2 + verify 3 days).
    assert_eq!(to_state(srv, id, &p.supplier, "shipping").await, 400);
    assert_eq!(patch(srv, id, &p.supplier, json!({"shipping_info": {"track": "RA123"}})).await.0, 200);
    assert_eq!(to_state(srv, id, &p.supplier, "shipping").await, 204);
    let order = state_of(srv, id, &p.consumer).await;
    assert_eq!(order["state"], "shipping");
    assert!(order["end_of_protection"].is_string());
    id
}

async fn claimed(srv: &TestServer, p: &Parties, id: i64) {
    let claim = json!({"reason": "Не тот размер", "description": "Прислали 42 вместо 44"});
    assert_eq!(srv.post(&format!("/api/v1/orders/{id}/claim"), Some(&p.supplier), &claim).await.0, 403);
    let (status, body) = srv.post(&format!("/api/v1/orders/{id}/claim"), Some(&p.consumer), &claim).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["order"]["state"], "rejected");
    assert!(body["order"]["end_of_protection"].is_null(), "a claim clears the protection end");
    assert!(body["order"]["escalation_date"].is_string());
    let kinds: Vec<_> = body["order"]["allowed_changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["change_type"].clone())
        .collect();
    assert_eq!(kinds, [json!("change_conditions"), json!("purchase_return")]);
    assert_eq!(body["order"]["allowed_changes"][0]["required_fields"], json!(["consumer_billing_info"]));
}

pub async fn whole_deal_with_change_conditions(store: Arc<dyn Store>) {
    let srv = TestServer::start(store).await;
    let p = parties();
    let id = shipped_deal(&srv, &p).await;
    claimed(&srv, &p, id).await;

    // change_conditions: consumer asks for a lower price, supplier confirms → received.
    let change = json!({"order_change": {"change_type": "change_conditions", "new_cost": "20.00"}});
    let path = format!("/api/v1/orders/{id}/order_changes");
    let (status, body) = srv.post(&path, Some(&p.consumer), &change).await;
    assert_eq!((status, &body["error"]["field"]), (400, &json!("consumer_billing_info")));
    assert_eq!(patch(&srv, id, &p.consumer, json!({"consumer_billing_info": {"card": "4276"}})).await.0, 200);
    // Each party's payment details are theirs and the manager's; the other party reads null.
    let (supplier, consumer, manager) = (
        state_of(&srv, id, &p.supplier).await,
        state_of(&srv, id, &p.consumer).await,
        state_of(&srv, id, &p.manager).await,
    );
    let details = |o: &Value| {
        (o["billing_info"].clone(), o["supplier_billing_info"].clone(), o["consumer_billing_info"].clone())
    };
    let (account, card) = (json!({"account": "40817"}), json!({"card": "4276"}));
    assert_eq!(details(&supplier), (account.clone(), account.clone(), Value::Null), "{supplier}");
    assert_eq!(details(&consumer), (card.clone(), Value::Null, card.clone()), "{consumer}");
    assert_eq!(details(&manager), (Value::Null, account, card), "{manager}");
    let (status, body) = srv.post(&path, Some(&p.consumer), &change).await;
    assert_eq!(status, 201, "{body}");
    let requested = &body["order"]["requested_change"];
    assert_eq!(requested["change_type"], "change_conditions");
    assert_eq!(body["order"]["locale"]["display_state"], "Покупатель запросил изменение условий сделки");
    assert_eq!(body["order"]["allowed_changes"], json!([]));
    let cid = requested["id"].as_i64().unwrap();
    assert_eq!(srv.post(&path, Some(&p.consumer), &change).await.0, 400, "one open change at a time");
    let confirm = format!("/api/v1/orders/{id}/order_changes/{cid}/confirm");
    assert_eq!(srv.post(&confirm, Some(&p.consumer), &json!({})).await.0, 403, "not one's own change");
    let (status, body) = srv.post(&confirm, Some(&p.supplier), &json!({})).await;
    assert_eq!(status, 200, "{body}");
    let order = &body["order"];
    assert_eq!(order["state"], "received");
    assert_eq!(order["changed_cost"], json!(20.0));
    assert_eq!(order["pay_back"], json!(3.0));
    assert!(order["requested_change"].is_null());

    // The system starts the payout; a manager closes the deal.
    assert_eq!(to_state(&srv, id, &p.supplier, "payout_initiated").await, 403);
    let report = run(&srv.app, Job::Deals).await.unwrap();
    assert_eq!(report.changed, 1);
    assert_eq!(run(&srv.app, Job::Deals).await.unwrap().changed, 0, "a second run finds nothing to do");
    assert_eq!(state_of(&srv, id, &p.supplier).await["state"], "payout_initiated");
    assert_eq!(to_state(&srv, id, &p.supplier, "done").await, 403);
    assert_eq!(to_state(&srv, id, &p.manager, "done").await, 204);
    let order = state_of(&srv, id, &p.supplier).await;
    assert_eq!(order["state"], "done");
    assert_eq!(order["transitions"], json!([]));
    assert_eq!(order["locale"]["state"], "Сделка завершена");

    // The other party was told about each move.
    let sent = srv.app.local_queue.as_ref().unwrap().messages();
    assert!(sent.iter().any(|n| n.to == "user21@example.com" && n.data()["to_state"] == "rejected"));
    assert!(sent.iter().any(|n| n.to == "user14@example.com" && n.data()["to_state"] == "shipping"));
}

pub async fn purchase_return_path(store: Arc<dyn Store>) {
    let srv = TestServer::start(store).await;
    let p = parties();
    let id = shipped_deal(&srv, &p).await;
    claimed(&srv, &p, id).await;
    assert_eq!(patch(&srv, id, &p.consumer, json!({"consumer_billing_info": {"card": "4276"}})).await.0, 200);
    let path = format!("/api/v1/orders/{id}/order_changes");
    let (status, body) = srv
        .post(&path, Some(&p.consumer), &json!({"order_change": {"change_type": "purchase_return"}}))
        .await;
    assert_eq!(status, 201, "{body}");
    let cid = body["order"]["requested_change"]["id"].as_i64().unwrap();
    let (status, body) = srv.post(&format!("{path}/{cid}/confirm"), Some(&p.supplier), &json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["order"]["state"], "await_returning");
    assert_eq!(body["order"]["pay_back"], json!(23.0));
    assert_eq!(to_state(&srv, id, &p.consumer, "returned").await, 403);
    assert_eq!(to_state(&srv, id, &p.supplier, "returned").await, 204);
    run(&srv.app, Job::Deals).await.unwrap();
    assert_eq!(state_of(&srv, id, &p.consumer).await["state"], "payout_initiated");
}

pub async fn scheduler_escalates_and_ends_protection(store: Arc<dyn Store>) {
    let store = Arc::new(api_tests::jittery(store));
    let srv = Arc::new(TestServer::start(store.clone()).await);
    let p = parties();
    let mut lost = false;
    for round in 0..20 {
        if round >= 2 && lost {
            break;
        }
        let claimed_id = shipped_deal(&srv, &p).await;
        claimed(&srv, &p, claimed_id).await;
        let quiet_id = shipped_deal(&srv, &p).await;

        run(&srv.app, Job::Deals).await.unwrap();
        assert_eq!(state_of(&srv, claimed_id, &p.consumer).await["state"], "rejected");
        assert_eq!(state_of(&srv, quiet_id, &p.consumer).await["state"], "shipping");

        // Five days of protection end; seven days after the claim it escalates.
        srv.app.clock.advance(chrono::Duration::days(8));
        // Two runs at once (worker threads, a barrier, jitter), then one more: every step
        // happens exactly once (escalation, protection end, payout start), whichever run wins.
        let lost_before = store.conflicts();
        let runs = api_tests::race(2, |_| {
            let app = srv.app.clone();
            async move { run(&app, Job::Deals).await.unwrap().changed }
        })
        .await;
        let c = run(&srv.app, Job::Deals).await.unwrap();
        assert_eq!(runs.iter().sum::<usize>() + c.changed, 3, "{runs:?} then {}", c.changed);
        lost |= store.conflicts() > lost_before;
        assert_eq!(state_of(&srv, claimed_id, &p.consumer).await["state"], "escalation");
        // The manager decides the dispute: the goods go back, the cost to the consumer.
        assert_eq!(to_state(&srv, claimed_id, &p.consumer, "await_returning").await, 403);
        assert_eq!(to_state(&srv, claimed_id, &p.manager, "await_returning").await, 204);
        let o = state_of(&srv, claimed_id, &p.consumer).await;
        assert_eq!(
            (o["state"].as_str(), &o["pay_back"], &o["supplier_receive"]),
            (Some("await_returning"), &o["cost"], &json!(0.0)),
            "{o}"
        );
        // Protection over → received → payout initiated.
        assert_eq!(state_of(&srv, quiet_id, &p.consumer).await["state"], "payout_initiated");
        // Each email of the round is enqueued once, whichever run sent it.
        let queue = srv.app.local_queue.as_ref().unwrap();
        let sent = queue.messages();
        assert!(sent.iter().any(|n| n.template() == "deal_escalated" && n.to == "user21@example.com"));
        for n in &sent {
            assert_eq!(queue.sends(&n.id), 1, "{} enqueued once", n.id);
        }
    }
    assert!(lost, "no round lost a race: the two job runs never overlapped");
}

pub async fn wrong_party_impossible_state_and_strangers(store: Arc<dyn Store>) {
    let srv = TestServer::start(store).await;
    let p = parties();
    let (status, body) = srv
        .post(
            "/api/v1/orders",
            Some(&p.supplier),
            &json!({"order": {"order_description": "Сапоги", "verify_days": 3, "commission_payer": "50/50",
                "cost": 400, "supplier_id": 21, "consumer_id": "14"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["order"]["id"].as_i64().unwrap();
    assert_eq!(body["order"]["role"], "supplier");
    // Supplier-created: the consumer confirms by paying; the supplier does not approve.
    let (_, t) = srv.get(&format!("/api/v1/orders/{id}/transitions"), Some(&p.supplier)).await;
    let pv = t["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["to_state"] == "payment_verification")
        .unwrap();
    assert_eq!(pv["can_perform"], false);
    assert_eq!(pv["required_fields"], json!(["payment"]));
    assert_eq!(pv["locale"]["transition"], "Подтвердить и перейти к оплате");
    assert_eq!(pv["locale"]["to_state"], "Оплачена, ожидается проверка менеджером");
    assert_eq!(to_state(&srv, id, &p.supplier, "approved").await, 400);
    assert_eq!(to_state(&srv, id, &p.supplier, "done").await, 400);
    let (status, body) = srv
        .post(
            &format!("/api/v1/orders/{id}/transitions"),
            Some(&p.supplier),
            &json!({"transition": {"to_state": "flying"}}),
        )
        .await;
    assert_eq!((status, &body["error"]["field"]), (400, &json!("transition.to_state")));
    assert_eq!(to_state(&srv, id, &p.supplier, "payment_verification").await, 403, "the consumer's move");
    // Strangers see nothing.
    for path in ["", "/transitions", "/payment_info", "/download_invoice", "/payment"] {
        assert_eq!(srv.get(&format!("/api/v1/orders/{id}{path}"), Some(&p.stranger)).await.0, 404, "{path}");
    }
    assert_eq!(to_state(&srv, id, &p.stranger, "cancelled").await, 404);
    assert_eq!(patch(&srv, id, &p.stranger, json!({"title": "mine"})).await.0, 404);
    assert_eq!(srv.get("/api/v1/orders/999999", Some(&p.supplier)).await.0, 404);
    assert_eq!(srv.get("/api/v1/orders/abc", Some(&p.supplier)).await.0, 400);
    // The terms change only while pending; PATCH answers the seed's shape.
    let (status, body) =
        patch(&srv, id, &p.supplier, json!({"cost": "500.00", "title": "Сапоги зимние"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["order"]["cost"], json!(500.0));
    assert_eq!(body["order"]["commission"], json!(20.0));
    assert_eq!(to_state(&srv, id, &p.consumer, "cancelled").await, 204);
    assert_eq!(patch(&srv, id, &p.supplier, json!({"cost": "600.00"})).await.0, 400);
    assert_eq!(to_state(&srv, id, &p.supplier, "approved").await, 400);
}

pub async fn create_validation_names_the_field(store: Arc<dyn Store>) {
    let srv = TestServer::start(store).await;
    let p = parties();
    let base = json!({"order_description": "x", "verify_days": 3, "commission_payer": "consumer", "cost": 100,
        "supplier_id": SUPPLIER});
    let with = |k: &str, v: Value| {
        let mut o = base.clone();
        if v.is_null() {
            o.as_object_mut().unwrap().remove(k);
        } else {
            o[k] = v;
        }
        json!({ "order": o })
    };
    for (body, field) in [
        (with("cost", Value::Null), "order.cost"),
        (with("cost", json!(19.99)), "order.cost"),
        (with("cost", json!("12.345")), "order.cost"),
        (with("cost", json!("много")), "order.cost"),
        (with("commission_payer", json!("bank")), "order.commission_payer"),
        (with("verify_days", json!("three")), "order.verify_days"),
        (with("supplier_id", Value::Null), "order.supplier_id"),
        (with("order_description", json!("")), "order.order_description"),
        (with("unknown", json!(1)), "order.unknown"),
        (json!({"order": 5}), "order"),
    ] {
        let (status, json) = srv.post("/api/v1/orders", Some(&p.supplier), &body).await;
        assert_eq!(status, 422, "{body} → {json}");
        assert_eq!(json["error"]["field"], field, "{json}");
    }
    // A third party cannot create a deal between two others.
    let (status, _) = srv.post("/api/v1/orders", Some(&p.stranger), &with("consumer_id", json!("14"))).await;
    assert_eq!(status, 422);
    assert_eq!(srv.post("/api/v1/orders", None, &base).await.0, 401);
}

pub async fn listing_paginates_with_links(store: Arc<dyn Store>) {
    let srv = TestServer::start(store).await;
    let p = parties();
    for i in 0..3 {
        let body = json!({"order": {"order_description": format!("deal {i}"), "verify_days": 3,
            "commission_payer": "supplier", "cost": 100 + i, "supplier_id": SUPPLIER}});
        assert_eq!(srv.post("/api/v1/orders", Some(&p.supplier), &body).await.0, 201);
    }
    let (status, body) = srv.get("/api/v1/orders?page=1&per=2", Some(&p.supplier)).await;
    assert_eq!(status, 200, "{body}");
    let orders = body["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 2);
    assert_eq!(orders[0]["order_description"], "deal 2", "newest first");
    let meta = &body["meta"];
    assert_eq!(
        (meta["page"].clone(), meta["total"].clone(), meta["total_pages"].clone()),
        (json!(1), json!(3), json!(2))
    );
    assert_eq!(meta["links"]["self"], format!("{}/api/v1/orders?page=1&per=2", srv.base));
    assert_eq!(meta["links"]["next_page"], format!("{}/api/v1/orders?page=2&per=2", srv.base));
    assert!(meta["links"]["previous_page"].is_null());
    let (_, body) = srv.get("/api/v1/orders?page=2&per=2", Some(&p.supplier)).await;
    assert_eq!(body["orders"].as_array().unwrap().len(), 1);
    assert!(body["meta"]["links"]["next_page"].is_null());
    let (_, body) = srv.get("/api/v1/orders", Some(&p.stranger)).await;
    assert_eq!(body["meta"]["total"], 0);
    assert_eq!(srv.get("/api/v1/orders?page=0", Some(&p.supplier)).await.0, 400);
    assert_eq!(srv.get("/api/v1/orders?per=abc", Some(&p.supplier)).await.0, 400);
}

pub async fn invoice_docx_and_payment_link(store: Arc<dyn Store>) {
    let srv = TestServer::start(store).await;
    let p = parties();
    let body = json!({"order": {"order_description": "Сапоги", "verify_days": 3, "commission_payer": "consumer",
        "cost": "23", "supplier_id": SUPPLIER, "consumer_id": CONSUMER}});
    let (_, created) = srv.post("/api/v1/orders", Some(&p.supplier), &body).await;
    let id = created["order"]["id"].as_i64().unwrap();

    let res = srv
        .http
        .get(srv.url(&format!("/api/v1/orders/{id}/download_invoice")))
        .bearer_auth(&p.consumer)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().contains("wordprocessingml"));
    let bytes = res.bytes().await.unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).expect("a zip package");
    assert!(zip.by_name("[Content_Types].xml").is_ok());
    let mut xml = String::new();
    zip.by_name("word/document.xml").unwrap().read_to_string(&mut xml).unwrap();
    assert!(xml.contains(&format!("№ {id}")), "deal number in the invoice");
    assert!(xml.contains("23.92"), "amount in the invoice");

    assert_eq!(
        srv.get(&format!("/api/v1/orders/{id}/payment_info?redirect_to=ftp:x"), Some(&p.consumer)).await.0,
        400
    );
}

/// `payment_info` with Robokassa as the deal gateway: amounts and a payment link signed with
/// Password1 over the documented fields.
pub async fn robokassa_payment_link(store: Arc<dyn Store>) {
    let mut config = shared::Config::for_tests();
    config.jwt.secret = api_tests::SECRET.into();
    config.payments.deal_gateway = shared::payments::GatewayKind::Robokassa;
    config.payments.robokassa.login = "safecrow-test".into();
    config.payments.robokassa.password1 = "pass1".into();
    config.payments.robokassa.password2 = "pass2".into();
    let srv = TestServer::start_with(shared::App::new(store, config)).await;
    let p = parties();
    let body = json!({"order": {"order_description": "Сапоги", "verify_days": 3, "commission_payer": "consumer",
        "cost": "23", "supplier_id": SUPPLIER, "consumer_id": CONSUMER}});
    let (_, created) = srv.post("/api/v1/orders", Some(&p.supplier), &body).await;
    let id = created["order"]["id"].as_i64().unwrap();
    let path = format!("/api/v1/orders/{id}/payment_info?redirect_to=http%3A%2F%2Fruby.org");
    let (status, info) = srv.get(&path, Some(&p.consumer)).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["consumer_pay"]["invoice"], json!(23.92));
    assert_eq!(info["consumer_pay"]["gateway"], json!(24.61));
    assert_eq!(info["gateway_commission"], json!(2.9));
    assert_eq!(info["mandarin_commission"], json!(2.4));
    let url = reqwest::Url::parse(info["gateway_url"].as_str().unwrap()).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["OutSum"], "24.61");
    assert_eq!(q["MerchantLogin"], "safecrow-test");
    let mut shp: Vec<_> =
        q.iter().filter(|(k, _)| k.starts_with("Shp_")).map(|(k, v)| format!("{k}={v}")).collect();
    shp.sort();
    assert!(!shp.is_empty(), "{q:?}");
    let expected = format!("safecrow-test:24.61:{}:pass1:{}", q["InvId"], shp.join(":"));
    assert_eq!(q["SignatureValue"], hex::encode(<md5::Md5 as md5::Digest>::digest(expected.as_bytes())));
    assert_eq!(
        srv.get(&format!("/api/v1/orders/{id}/payment_info?redirect_to=ftp:x"), Some(&p.consumer)).await.0,
        400
    );
}

pub async fn attachments_upload_and_download(store: Arc<dyn Store>) {
    use base64::Engine;
    let srv = TestServer::start(store).await;
    let p = parties();
    let pdf = b"%PDF-1.4 test".to_vec();
    let content = base64::engine::general_purpose::STANDARD.encode(&pdf);
    let order = |att: Value| {
        json!({"order": {"order_description": "x", "verify_days": 3, "commission_payer": "consumer", "cost": 100,
            "supplier_id": SUPPLIER, "attachments": att}})
    };
    let good = json!([{"name": "contract.pdf", "content_type": "application/pdf", "content": content}]);
    let (status, body) = srv.post("/api/v1/orders", Some(&p.supplier), &order(good)).await;
    assert_eq!(status, 201, "{body}");
    let att = &body["order"]["attachments"][0];
    assert_eq!((att["name"].clone(), att["size"].clone()), (json!("contract.pdf"), json!(pdf.len())));
    let link = att["link"].as_str().unwrap();
    let res = srv.http.get(link).bearer_auth(&p.supplier).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/pdf");
    assert_eq!(res.bytes().await.unwrap().to_vec(), pdf);
    assert_eq!(srv.http.get(link).bearer_auth(&p.stranger).send().await.unwrap().status(), 404);

    let exe = json!([{"name": "x.exe", "content_type": "application/x-msdownload", "content": content}]);
    let (status, body) = srv.post("/api/v1/orders", Some(&p.supplier), &order(exe)).await;
    assert_eq!((status, &body["error"]["field"]), (422, &json!("order.attachments[0].content_type")));
    let big = base64::engine::general_purpose::STANDARD.encode(vec![0u8; 300 * 1024]);
    let big = json!([{"name": "big.pdf", "content_type": "application/pdf", "content": big}]);
    let (status, body) = srv.post("/api/v1/orders", Some(&p.supplier), &order(big)).await;
    assert_eq!((status, &body["error"]["field"]), (422, &json!("order.attachments[0].content")));
    let bad = json!([{"name": "a.pdf", "content_type": "application/pdf", "content": "***"}]);
    assert_eq!(srv.post("/api/v1/orders", Some(&p.supplier), &order(bad)).await.0, 422);
    // A name a header cannot carry is refused; any other downloads under its own name.
    for odd in ["a\u{1}b.pdf", "x\u{7f}.pdf"] {
        let att = json!([{"name": odd, "content_type": "application/pdf", "content": content}]);
        let (status, body) = srv.post("/api/v1/orders", Some(&p.supplier), &order(att)).await;
        assert_eq!((status, &body["error"]["field"]), (422, &json!("order.attachments[0].name")), "{odd:?}");
    }
    let named =
        json!([{"name": "Договор \"№1\".pdf", "content_type": "application/pdf", "content": content}]);
    let (status, body) = srv.post("/api/v1/orders", Some(&p.supplier), &order(named)).await;
    assert_eq!(status, 201, "{body}");
    let link = body["order"]["attachments"][0]["link"].as_str().unwrap();
    let res = srv.http.get(link).bearer_auth(&p.supplier).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let disposition = String::from_utf8_lossy(res.headers()["content-disposition"].as_bytes()).into_owned();
    assert_eq!(disposition, "attachment; filename=\"Договор _№1_.pdf\"");
}

/// Conflicting transitions at once (worker threads, a barrier, jitter around every store
/// call): exactly one wins, the rest get a clear 409 or 400; repeated until one lost a
/// conditional write, besides three rounds that must each keep the invariant.
pub async fn racing_transitions_have_one_winner(store: Arc<dyn Store>) {
    let store = Arc::new(api_tests::jittery(store));
    let srv = Arc::new(TestServer::start(store.clone()).await);
    let p = Arc::new(parties());
    let mut lost = false;
    for round in 0..20 {
        if round >= 3 && lost {
            break;
        }
        let lost_before = store.conflicts();
        let (_, body) = srv
            .post(
                "/api/v1/orders",
                Some(&p.consumer),
                &json!({"order": {"order_description": "race", "verify_days": 3, "commission_payer": "consumer",
                    "cost": 100, "supplier_id": SUPPLIER, "supplier_billing_info": null}}),
            )
            .await;
        let id = body["order"]["id"].as_i64().unwrap();
        assert_eq!(patch(&srv, id, &p.supplier, json!({"supplier_billing_info": {"a": 1}})).await.0, 200);
        let codes: Vec<u16> = api_tests::race(16, |i| {
            let (srv, p) = (srv.clone(), p.clone());
            async move {
                match i % 3 {
                    0 => to_state(&srv, id, &p.supplier, "approved").await,
                    1 => to_state(&srv, id, &p.consumer, "cancelled").await,
                    _ => to_state(&srv, id, &p.supplier, "cancelled").await,
                }
            }
        })
        .await;
        lost |= store.conflicts() > lost_before || codes.contains(&409);
        // A 204 is a win or a repeat of the move its party just made (a retry finds it done),
        // so what counts is the kinds of move that got 204: (party, state) = i % 3.
        let mut kinds: Vec<usize> = (0..16).filter(|i| codes[*i] == 204).map(|i| i % 3).collect();
        kinds.sort_unstable();
        kinds.dedup();
        let wins = kinds.len();
        let final_state = state_of(&srv, id, &p.supplier).await["state"].clone();
        // Approve then cancel is a legal sequence, so two wins are possible only in that order.
        assert!(codes.iter().all(|c| [204, 400, 409].contains(c)), "{codes:?}");
        if final_state == "approved" {
            assert_eq!(kinds, [0], "{codes:?}");
        } else {
            assert_eq!(final_state, "cancelled");
            assert!(wins == 1 || (wins == 2 && kinds.contains(&0)), "{codes:?}");
        }
        let history_len =
            srv.app.store.get(&format!("deal#{id}"), "deal").await.unwrap().unwrap().data["history"]
                .as_array()
                .unwrap()
                .len();
        assert_eq!(history_len, wins, "every kind of winning move is one recorded transition");
    }
    assert!(lost, "no round lost a race: the transitions never overlapped");
}

macro_rules! suite {
    ($adapter:ident, $make:expr) => {
        mod $adapter {
            use super::*;
            suite!(@tests $make; whole_deal_with_change_conditions, purchase_return_path,
                scheduler_escalates_and_ends_protection, wrong_party_impossible_state_and_strangers,
                create_validation_names_the_field, listing_paginates_with_links,
                invoice_docx_and_payment_link, attachments_upload_and_download,
                racing_transitions_have_one_winner, card_payment_through_the_gateway,
                robokassa_payment_link);
        }
    };
    (@tests $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let make = $make;
                if let Some(store) = make().await {
                    super::$name(store).await;
                }
            }
        )*
    };
}

suite!(memory, || async { Some(api_tests::memory_store() as Arc<dyn Store>) });
suite!(dynamo, || async { api_tests::dynamo_store().await.map(|s| s as Arc<dyn Store>) });

/// The consumer pays by card through the configured gateway (the sandbox in tests): the
/// callback moves the deal to `paid`; repeating it changes nothing.
pub async fn card_payment_through_the_gateway(store: Arc<dyn Store>) {
    let srv = TestServer::start(store).await;
    let p = parties();
    let body = json!({"order": {"order_description": "Сапоги", "verify_days": 3, "commission_payer": "consumer",
        "cost": "23", "supplier_id": SUPPLIER, "consumer_id": CONSUMER}});
    let (_, created) = srv.post("/api/v1/orders", Some(&p.supplier), &body).await;
    let id = created["order"]["id"].as_i64().unwrap();
    let info_path = format!("/api/v1/orders/{id}/payment_info?redirect_to=https%3A%2F%2Fshop.example%2Fback");
    let (status, info) = srv.get(&info_path, Some(&p.consumer)).await;
    assert_eq!(status, 200, "{info}");
    let url = info["gateway_url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&srv.base), "the sandbox page in tests: {url}");
    let (_, again) = srv.get(&info_path, Some(&p.consumer)).await;
    assert_eq!(again["gateway_url"], info["gateway_url"], "an open payment is reused");
    // The supplier sees the amounts, not a payment page in their name.
    let (_, theirs) = srv.get(&format!("/api/v1/orders/{id}/payment_info"), Some(&p.supplier)).await;
    assert!(theirs["gateway_url"].is_null());

    let html = srv.http.get(&url).send().await.unwrap().text().await.unwrap();
    let (action, fields) = api_tests::forms(&html).remove("succeeded").expect("a Pay button");
    let paid = srv.http.post(&action).form(&fields).send().await.unwrap();
    assert_eq!(paid.status(), 303);
    assert_eq!(paid.headers()["location"], "https://shop.example/back?payment=success");
    let order = state_of(&srv, id, &p.consumer).await;
    assert_eq!(order["state"], "paid", "{order}");
    // The same callback again: harmless.
    let again = srv.http.post(&action).form(&fields).send().await.unwrap();
    assert!(again.status().as_u16() < 500);
    let history_len =
        srv.app.store.get(&format!("deal#{id}"), "deal").await.unwrap().unwrap().data["history"]
            .as_array()
            .unwrap()
            .len();
    assert_eq!(history_len, 2, "pending → payment_verification → paid, once");
}

/// `Idempotency-Key` on deal creation: a repeat returns the first answer byte for byte and
/// creates nothing; the same key with another body is 422.
#[tokio::test]
async fn deal_creation_is_idempotent() {
    let srv = TestServer::memory().await;
    let t = token(SUPPLIER, &[]);
    let body = json!({"order": {"order_description": "x", "verify_days": 3, "commission_payer": "consumer",
        "cost": "10341450.00", "supplier_id": SUPPLIER}});
    let send = |b: Value, key: &'static str| {
        srv.http
            .post(srv.url("/api/v1/orders"))
            .bearer_auth(&t)
            .header("Idempotency-Key", key)
            .json(&b)
            .send()
    };
    let first = send(body.clone(), "k-1").await.unwrap();
    assert_eq!(first.status(), 201);
    let first = first.text().await.unwrap();
    assert!(first.contains("\"cost\":10341450.00"), "money written as decimals: {first}");
    let again = send(body.clone(), "k-1").await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.text().await.unwrap(), first);
    let (_, list) = srv.get("/api/v1/orders", Some(&t)).await;
    assert_eq!(list["meta"]["total"], 1, "one deal created");
    let mut other = body.clone();
    other["order"]["cost"] = json!("99.00");
    let res = send(other, "k-1").await.unwrap();
    assert_eq!(res.status(), 422);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["field"], "Idempotency-Key");
    assert_eq!(send(body, "k-2").await.unwrap().status(), 201);
}
