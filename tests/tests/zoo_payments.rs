//! ZooTicket payment sessions over HTTP (seed 004) with the sandbox gateway: the buyer's
//! walk through the payment page, validation, ownership, update/delete rules, the
//! flash sale on the embedded store and on DynamoDB (moto), reconciliation, idempotency.

use std::sync::Arc;

use api_tests::{SECRET, TestServer, dynamo_store, forms, jittery, memory_store, press, token};
use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};
use shared::App;
use shared::jobs::{Job, run};
use shared::store::Store;

fn visit_date() -> String {
    (chrono::Utc::now() + chrono::Duration::days(30)).format("%Y-%m-%d").to_string()
}

fn session_body(date: &str, time: &str, qty: i64) -> Value {
    let total = format!("{}.00", 1000 * qty);
    json!({
        "session_id": "session_abc123",
        "order": {
            "order_id": "ZT-20241025-001",
            "total_amount": { "value": total, "currency": "RUB" },
            "items": [{
                "ticket_type": "adult",
                "quantity": qty,
                "unit_price": { "value": "1000.00", "currency": "RUB" },
                "visit_date": date,
                "visit_time": time
            }]
        },
        "description": "Билеты в зоопарк",
        "customer": { "email": "visitor@example.com", "phone": "+79991111111" },
        "payment_methods": ["bank_card", "apple_pay"],
        "confirmation": {
            "type": "redirect",
            "return_url": "https://zooticket.ru/payment/success",
            "cancel_url": "https://zooticket.ru/payment/cancel"
        }
    })
}

async fn server_with(store: Arc<dyn Store>, capacity: i64) -> TestServer {
    server_with_shards(store, capacity, 4).await
}

async fn server_with_shards(store: Arc<dyn Store>, capacity: i64, shards: i64) -> TestServer {
    let mut config = shared::Config::for_tests();
    config.jwt.secret = SECRET.into();
    config.zoo.slot_capacity = capacity;
    config.zoo.slot_shards = shards;
    TestServer::start_with(App::new(store, config)).await
}

async fn create(srv: &TestServer, tok: &str, body: &Value) -> (u16, Value) {
    srv.post("/v1/payments/sessions", Some(tok), body).await
}

async fn slot_reserved(srv: &TestServer, date: &str, time: &str) -> i64 {
    let (s, b) = srv.get(&format!("/v1/slots?visit_date={date}&visit_time={time}"), None).await;
    assert_eq!(s, 200, "{b}");
    b["data"]["reserved"].as_i64().unwrap()
}

fn decode_qr(data_url: &str) -> String {
    let b64 = data_url.strip_prefix("data:image/png;base64,").expect("a PNG data URL");
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    let (w, h) = (info.width as usize, info.height as usize);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| buf[y * w + x]);
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1);
    grids[0].decode().unwrap().1
}

#[tokio::test]
async fn pay_on_the_sandbox_page_then_decline_delete_and_404() {
    let srv = server_with(memory_store(), 100).await;
    let tok = token("21", &[]);
    let date = visit_date();

    // Create: 201 with the seed's fields.
    let (s, created) = create(&srv, &tok, &session_body(&date, "10:00", 2)).await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(created["success"], true);
    assert_eq!(created["message"], "Payment session created successfully");
    let d = &created["data"];
    let id = d["payment_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("ZT_") && id[3..].bytes().all(|b| b.is_ascii_digit()), "{id}");
    assert_eq!(d["session_id"], "session_abc123");
    assert_eq!(d["status"], "pending");
    let expires = chrono::DateTime::parse_from_rfc3339(d["expires_at"].as_str().unwrap()).unwrap();
    let left = expires.with_timezone(&chrono::Utc) - chrono::Utc::now();
    assert!(left > chrono::Duration::minutes(14) && left <= chrono::Duration::minutes(15));
    assert_eq!(slot_reserved(&srv, &date, "10:00").await, 2);

    // Open the page (processing), press Pay: 303 back to the return URL.
    let url = d["confirmation_url"].as_str().unwrap();
    assert!(url.starts_with(&srv.base));
    let (s, loc) = press(&srv, url, "succeeded").await;
    assert_eq!((s, loc.as_str()), (303, "https://zooticket.ru/payment/success"));

    let (s, got) = srv.get(&format!("/v1/payments/{id}"), Some(&tok)).await;
    assert_eq!(s, 200);
    assert_eq!(got["message"], "Payment retrieved successfully");
    let p = &got["data"];
    assert_eq!(p["status"], "succeeded");
    assert_eq!(p["amount"], json!({"value": "2000.00", "currency": "RUB"}));
    assert_eq!(p["refunded_amount"]["value"], "0.00");
    assert_eq!(p["order_id"], "ZT-20241025-001");
    assert_eq!(p["payment_method"], "bank_card");
    assert!(p["captured_at"].is_string());
    assert_eq!(p["metadata"]["qr_codes_issued"], true);
    assert_eq!(p["metadata"]["tickets_activated"], false);
    assert_eq!(p["customer"]["user_id"], "21");
    let tickets = p["tickets"].as_array().unwrap();
    assert_eq!(tickets.len(), 2);
    for (n, t) in tickets.iter().enumerate() {
        // 50 tickets must fit a DynamoDB item (400 KB) with room to spare.
        let qr_len = t["qr_code"].as_str().unwrap().len();
        assert!(qr_len < 4000, "QR data URL of {qr_len} bytes");
        let payload = decode_qr(t["qr_code"].as_str().unwrap());
        let ticket_id = format!("{id}-{}", n + 1);
        assert_eq!(t["ticket_id"], ticket_id);
        assert!(payload.starts_with(&format!("ZOOTICKET;{ticket_id};{id};{date};10:00;adult;")), "{payload}");
    }
    let mail = srv.app.local_queue.as_ref().unwrap().messages();
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].template(), "zoo_tickets");
    assert_eq!(mail[0].to, "visitor@example.com");
    assert_eq!(mail[0].data()["tickets"].as_array().unwrap().len(), 2);
    // Paid places stay taken.
    assert_eq!(slot_reserved(&srv, &date, "10:00").await, 2);
    // A paid payment cannot be deleted.
    assert_eq!(srv.call(Method::DELETE, &format!("/v1/payments/{id}"), Some(&tok), None).await.0, 400);

    // Another session: Decline → failed, places back.
    let (s, created) = create(&srv, &tok, &session_body(&date, "10:00", 3)).await;
    assert_eq!(s, 201);
    let id2 = created["data"]["payment_id"].as_str().unwrap().to_owned();
    assert_eq!(slot_reserved(&srv, &date, "10:00").await, 5);
    let (s, loc) = press(&srv, created["data"]["confirmation_url"].as_str().unwrap(), "failed").await;
    assert_eq!((s, loc.as_str()), (303, "https://zooticket.ru/payment/cancel"));
    let (_, got) = srv.get(&format!("/v1/payments/{id2}"), Some(&tok)).await;
    assert_eq!(got["data"]["status"], "failed");
    assert_eq!(got["data"]["metadata"]["qr_codes_issued"], false);
    assert_eq!(got["data"]["tickets"], json!([]));
    assert_eq!(slot_reserved(&srv, &date, "10:00").await, 2);

    // Delete the failed one: 200, then 404.
    let (s, del) = srv.call(Method::DELETE, &format!("/v1/payments/{id2}"), Some(&tok), None).await;
    assert_eq!(s, 200, "{del}");
    assert_eq!(del["message"], "Payment deleted successfully");
    assert_eq!(del["data"]["payment_id"], id2.as_str());
    chrono::DateTime::parse_from_rfc3339(del["data"]["deleted_at"].as_str().unwrap()).unwrap();
    assert_eq!(srv.get(&format!("/v1/payments/{id2}"), Some(&tok)).await.0, 404);
    assert_eq!(srv.call(Method::DELETE, &format!("/v1/payments/{id2}"), Some(&tok), None).await.0, 404);
    // Still one email: nothing for the failure.
    assert_eq!(srv.app.local_queue.as_ref().unwrap().messages().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repeated_and_forged_callbacks_change_nothing_more() {
    // One counter shard, so a double release would show in the count.
    let srv = server_with_shards(Arc::new(jittery(memory_store())), 100, 1).await;
    let tok = token("21", &[]);
    let date = visit_date();
    let (_, created) = create(&srv, &tok, &session_body(&date, "11:00", 1)).await;
    let id = created["data"]["payment_id"].as_str().unwrap().to_owned();
    let html = srv
        .http
        .get(created["data"]["confirmation_url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let all = forms(&html);
    let (action, pay) = all["succeeded"].clone();
    let (_, decline) = all["failed"].clone();

    // Forged: Pay with the Decline signature, and a made-up signature.
    let sig = |f: &[(String, String)]| f.iter().position(|(k, _)| k == "signature").unwrap();
    let mut forged = pay.clone();
    let i = sig(&forged);
    forged[i].1 = decline[sig(&decline)].1.clone();
    let res = srv.http.post(&action).form(&forged).send().await.unwrap();
    assert_eq!(res.status(), 403);
    forged[i].1 = "00".repeat(32);
    assert_eq!(srv.http.post(&action).form(&forged).send().await.unwrap().status(), 403);
    let (_, got) = srv.get(&format!("/v1/payments/{id}"), Some(&tok)).await;
    assert_eq!(got["data"]["status"], "processing");

    // The genuine callback three times, concurrently, then a late Decline.
    let sends = (0..3).map(|_| srv.http.post(&action).form(&pay).send());
    for r in futures::future::join_all(sends).await {
        assert_eq!(r.unwrap().status(), 303);
    }
    let r = srv.http.post(&action).form(&decline).send().await.unwrap();
    assert_eq!(r.headers()["location"], "https://zooticket.ru/payment/success");
    let (_, got) = srv.get(&format!("/v1/payments/{id}"), Some(&tok)).await;
    assert_eq!(got["data"]["status"], "succeeded");
    assert_eq!(got["data"]["tickets"].as_array().unwrap().len(), 1);
    assert_eq!(srv.app.local_queue.as_ref().unwrap().messages().len(), 1);
    assert_eq!(slot_reserved(&srv, &date, "11:00").await, 1);

    // Decline delivered five times at once: the places come back exactly once (another
    // pending session keeps 5 places on the shard, so a second release would show).
    assert_eq!(create(&srv, &tok, &session_body(&date, "11:00", 5)).await.0, 201);
    for _ in 0..3 {
        let (_, created) = create(&srv, &tok, &session_body(&date, "11:00", 2)).await;
        let html = srv
            .http
            .get(created["data"]["confirmation_url"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let (action, decline) = forms(&html)["failed"].clone();
        assert_eq!(slot_reserved(&srv, &date, "11:00").await, 8);
        let sends = (0..5).map(|_| srv.http.post(&action).form(&decline).send());
        for r in futures::future::join_all(sends).await {
            assert_eq!(r.unwrap().status(), 303);
        }
        assert_eq!(slot_reserved(&srv, &date, "11:00").await, 6);
    }
}

#[tokio::test]
async fn validation_errors_name_the_field() {
    let srv = server_with(memory_store(), 100).await;
    let tok = token("21", &[]);
    let date = visit_date();
    let past = (chrono::Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%d").to_string();
    type Change = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Change)> = vec![
        ("order.total_amount.value", Box::new(|b| b["order"]["total_amount"]["value"] = json!("2000"))),
        ("order.total_amount.value", Box::new(|b| b["order"]["total_amount"]["value"] = json!("2000.0"))),
        ("order.total_amount.value", Box::new(|b| b["order"]["total_amount"]["value"] = json!(2000.00))),
        ("order.total_amount.value", Box::new(|b| b["order"]["total_amount"]["value"] = json!("2500.00"))),
        ("order.total_amount.currency", Box::new(|b| b["order"]["total_amount"]["currency"] = json!("USD"))),
        ("order.items[0].quantity", Box::new(|b| b["order"]["items"][0]["quantity"] = json!(0))),
        ("order.items[0].quantity", Box::new(|b| b["order"]["items"][0]["quantity"] = json!(-2))),
        ("order.items[0].quantity", Box::new(|b| b["order"]["items"][0]["quantity"] = json!(1.5))),
        (
            "order.items[0].unit_price.value",
            Box::new(|b| b["order"]["items"][0]["unit_price"]["value"] = json!("1000.5")),
        ),
        (
            "order.items[0].visit_date",
            Box::new(move |b| b["order"]["items"][0]["visit_date"] = json!(past.clone())),
        ),
        (
            "order.items[0].visit_date",
            Box::new(|b| b["order"]["items"][0]["visit_date"] = json!("25.10.2030")),
        ),
        ("order.items[0].visit_time", Box::new(|b| b["order"]["items"][0]["visit_time"] = json!("25:00"))),
        ("order.items", Box::new(|b| b["order"]["items"] = json!([]))),
        (
            "order.items",
            Box::new(|b| {
                b["order"].as_object_mut().unwrap().remove("items");
            }),
        ),
        ("customer.email", Box::new(|b| b["customer"]["email"] = json!("not-an-email"))),
        ("customer.phone", Box::new(|b| b["customer"]["phone"] = json!("8999"))),
        (
            "confirmation.return_url",
            Box::new(|b| b["confirmation"]["return_url"] = json!("javascript:alert(1)")),
        ),
        ("confirmation.cancel_url", Box::new(|b| b["confirmation"]["cancel_url"] = json!("ftp://x.ru/"))),
        (
            "confirmation.return_url",
            Box::new(|b| b["confirmation"]["return_url"] = json!("https://zooticket.ru/ok\r\n")),
        ),
        ("confirmation.type", Box::new(|b| b["confirmation"]["type"] = json!("embedded"))),
        ("payment_methods[0]", Box::new(|b| b["payment_methods"] = json!(["cash"]))),
        (
            "session_id",
            Box::new(|b| {
                b.as_object_mut().unwrap().remove("session_id");
            }),
        ),
        (
            "customer",
            Box::new(|b| {
                b.as_object_mut().unwrap().remove("customer");
            }),
        ),
        ("metadata.qr_codes_issued", Box::new(|b| b["metadata"] = json!({"qr_codes_issued": true}))),
    ];
    for (field, change) in cases {
        let mut body = session_body(&date, "12:00", 2);
        change(&mut body);
        let (s, res) = create(&srv, &tok, &body).await;
        assert_eq!(s, 422, "{field}: {res}");
        let fields: Vec<&str> =
            res["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
        assert!(fields.contains(&field), "{field} not in {fields:?}");
    }
    // Nothing was reserved by the rejected requests.
    assert_eq!(slot_reserved(&srv, &date, "12:00").await, 0);
    // Malformed JSON is 400, no token 401.
    let res = srv
        .http
        .post(srv.url("/v1/payments/sessions"))
        .bearer_auth(&tok)
        .header("content-type", "application/json")
        .body("{,}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(srv.post("/v1/payments/sessions", None, &session_body(&date, "12:00", 2)).await.0, 401);
    // Not JSON: 415; too big: 413; both as JSON errors.
    let res = srv
        .http
        .post(srv.url("/v1/payments/sessions"))
        .bearer_auth(&tok)
        .header("content-type", "text/plain")
        .body(session_body(&date, "12:00", 2).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["field"], "body");
    let mut huge = session_body(&date, "12:00", 2);
    huge["description"] = json!("x".repeat(7 * 1024 * 1024));
    let (s, res) = create(&srv, &tok, &huge).await;
    assert_eq!((s, res["error"]["code"].as_str()), (413, Some("payload_too_large")));
    // A gateway callback too: the same JSON 413.
    let res = srv
        .http
        .post(srv.url("/api/v1/gateways/sandbox/callback"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 7 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "payload_too_large");
    // Items outside `order` are accepted as an alias.
    let mut body = session_body(&date, "12:00", 2);
    let items = body["order"].as_object_mut().unwrap().remove("items").unwrap();
    body["items"] = items;
    assert_eq!(create(&srv, &tok, &body).await.0, 201);
}

#[tokio::test]
async fn owner_only_and_update_rules() {
    let srv = server_with(memory_store(), 100).await;
    let (alice, bob) = (token("21", &[]), token("22", &[]));
    let date = visit_date();
    let (_, created) = create(&srv, &alice, &session_body(&date, "13:00", 2)).await;
    let id = created["data"]["payment_id"].as_str().unwrap().to_owned();
    let path = format!("/v1/payments/{id}");
    assert_eq!(srv.get(&path, None).await.0, 401);
    assert_eq!(srv.get(&path, Some(&bob)).await.0, 404);
    assert_eq!(srv.get("/v1/payments/ZT_0000000000", Some(&alice)).await.0, 404);
    assert_eq!(srv.call(Method::PATCH, &path, Some(&bob), Some(&json!({"description": "x"}))).await.0, 404);
    assert_eq!(srv.call(Method::DELETE, &path, Some(&bob), None).await.0, 404);
    // Pending payments cannot be deleted.
    assert_eq!(srv.call(Method::DELETE, &path, Some(&alice), None).await.0, 400);

    // The seed's PATCH example lowers the amount: a buyer cannot (the amount is the tariff
    // total); the same amount with a new customer is fine.
    let patch = json!({"amount": {"value": "2800.00", "currency": "RUB"}, "customer": {"email": "newemail@example.com", "phone": "+79992222222"}});
    let (s, res) = srv.call(Method::PATCH, &path, Some(&alice), Some(&patch)).await;
    assert_eq!((s, res["error"]["field"].as_str()), (422, Some("amount")), "{res}");
    let patch = json!({"amount": {"value": "2000.00", "currency": "RUB"}, "customer": {"email": "newemail@example.com", "phone": "+79992222222"}});
    let (s, res) = srv.call(Method::PATCH, &path, Some(&alice), Some(&patch)).await;
    assert_eq!(s, 200, "{res}");
    assert_eq!(res["message"], "Payment updated successfully");
    assert_eq!(res["data"]["amount"]["value"], "2000.00");
    assert_eq!(res["data"]["customer"]["email"], "newemail@example.com");
    assert_eq!(res["data"]["customer"]["user_id"], "21");
    assert_eq!(res["data"]["metadata"]["updated_fields"], json!(["customer"]));
    assert!(res["data"]["updated_at"].is_string());
    // A manager may lower the amount (a discount), with a reason; never raise it.
    let manager = token("31", &["manager"]);
    let patch = json!({"amount": {"value": "1800.00", "currency": "RUB"}});
    let (s, res) = srv.call(Method::PATCH, &path, Some(&manager), Some(&patch)).await;
    assert_eq!((s, res["error"]["field"].as_str()), (422, Some("amount_reason")), "{res}");
    let patch =
        json!({"amount": {"value": "2000.01", "currency": "RUB"}, "amount_reason": "group visit surcharge"});
    let (s, res) = srv.call(Method::PATCH, &path, Some(&manager), Some(&patch)).await;
    assert_eq!(
        (s, res["error"]["field"].as_str()),
        (422, Some("amount")),
        "more than the tickets cost: {res}"
    );
    let patch = json!({"amount": {"value": "1800.00", "currency": "RUB"}, "amount_reason": "group discount"});
    let (s, res) = srv.call(Method::PATCH, &path, Some(&manager), Some(&patch)).await;
    assert_eq!(s, 200, "{res}");
    assert_eq!(res["data"]["amount"]["value"], "1800.00");
    assert_eq!(res["data"]["amount_override"]["tariff_total"]["value"], "2000.00");
    assert_eq!(res["data"]["amount_override"]["reason"], "group discount");
    assert_eq!(res["data"]["metadata"]["updated_fields"], json!(["amount"]));
    // Bad values: 422 naming the field.
    for (body, field) in [
        (json!({"amount": {"value": "28", "currency": "RUB"}}), "amount.value"),
        (json!({"customer": {"email": "nope"}}), "customer.email"),
        (json!({}), "body"),
        (json!({"metadata": {"tickets_activated": true}}), "metadata.tickets_activated"),
    ] {
        let (s, res) = srv.call(Method::PATCH, &path, Some(&alice), Some(&body)).await;
        assert_eq!((s, res["error"]["field"].as_str().unwrap()), (422, field), "{res}");
    }
    // PUT needs amount and description.
    assert_eq!(srv.call(Method::PUT, &path, Some(&alice), Some(&json!({"description": "x"}))).await.0, 422);

    // Open the page: processing. Amount changes are now 400, even a manager's; description and
    // metadata are fine.
    srv.http.get(res["data"]["confirmation"]["confirmation_url"].as_str().unwrap()).send().await.unwrap();
    let (s, res) = srv
        .call(
            Method::PATCH,
            &path,
            Some(&manager),
            Some(&json!({"amount": {"value": "1500.00", "currency": "RUB"}, "amount_reason": "late change"})),
        )
        .await;
    assert_eq!(s, 400, "{res}");
    assert_eq!(res["error"]["field"], "amount");
    let put = json!({"amount": {"value": "1800.00", "currency": "RUB"}, "metadata": {"additional_info": "updated_data"}, "description": "Updated payment description"});
    let (s, res) = srv.call(Method::PUT, &path, Some(&alice), Some(&put)).await;
    assert_eq!(s, 200, "{res}");
    assert_eq!(res["data"]["status"], "processing");
    assert_eq!(res["data"]["description"], "Updated payment description");
    assert_eq!(res["data"]["metadata"]["additional_info"], "updated_data");
    assert_eq!(res["data"]["metadata"]["qr_codes_issued"], false);
    assert_eq!(res["data"]["metadata"]["updated_fields"], json!(["description", "metadata"]));
    // A PUT without metadata clears the user keys, keeps the system ones.
    let put = json!({"amount": {"value": "1800.00", "currency": "RUB"}, "description": "Again"});
    let (s, res) = srv.call(Method::PUT, &path, Some(&alice), Some(&put)).await;
    assert_eq!(s, 200, "{res}");
    assert_eq!(
        res["data"]["metadata"],
        json!({"qr_codes_issued": false, "tickets_activated": false, "updated_fields": ["description", "metadata"]})
    );
    // PATCH merges, null removes.
    let patch = json!({"metadata": {"a": 1, "b": 2}});
    srv.call(Method::PATCH, &path, Some(&alice), Some(&patch)).await;
    let (_, res) =
        srv.call(Method::PATCH, &path, Some(&alice), Some(&json!({"metadata": {"a": null}}))).await;
    assert_eq!(res["data"]["metadata"]["b"], 2);
    assert!(res["data"]["metadata"].get("a").is_none());
}

async fn flash_sale(store: Arc<dyn Store>) {
    let srv = Arc::new(server_with(store, 50).await);
    let date = visit_date();
    let tasks = (0..200).map(|i| {
        let srv = srv.clone();
        let date = date.clone();
        tokio::spawn(async move {
            let tok = token(&format!("{}", 1000 + i), &[]);
            create(&srv, &tok, &session_body(&date, "09:00", 1)).await
        })
    });
    let results: Vec<(u16, Value)> =
        futures::future::join_all(tasks).await.into_iter().map(|r| r.unwrap()).collect();
    let ok = results.iter().filter(|(s, _)| *s == 201).count();
    assert_eq!(ok, 50);
    for (s, body) in results.iter().filter(|(s, _)| *s != 201) {
        assert_eq!(*s, 400, "{body}");
        assert_eq!(body["error"]["field"], "order.items[0].quantity");
        assert!(body["message"].as_str().unwrap().starts_with("sold out"), "{body}");
    }
    assert_eq!(slot_reserved(&srv, &date, "09:00").await, 50);
    // Every shard is within its bound (never negative, never over).
    for shard in 0..4 {
        let item = srv
            .app
            .store
            .get(&shared::zoo::slots::slot_pk(&date, "09:00"), &format!("shard#{shard}"))
            .await
            .unwrap();
        let taken = item.map(|i| i.number("taken")).unwrap_or(0);
        assert!(
            (0..=shared::zoo::slots::shard_capacity(50, 4, shard)).contains(&taken),
            "shard {shard}: {taken}"
        );
    }
    // One payment declines: exactly one place comes back and one more buyer gets it.
    let winner = results.iter().find(|(s, _)| *s == 201).unwrap();
    let (s, loc) = press(&srv, winner.1["data"]["confirmation_url"].as_str().unwrap(), "failed").await;
    assert_eq!((s, loc.as_str()), (303, "https://zooticket.ru/payment/cancel"));
    assert_eq!(slot_reserved(&srv, &date, "09:00").await, 49);
    let late = (0..3).map(|i| {
        let srv = srv.clone();
        let date = date.clone();
        tokio::spawn(async move {
            create(&srv, &token(&format!("{}", 5000 + i), &[]), &session_body(&date, "09:00", 1)).await.0
        })
    });
    let statuses: Vec<u16> = futures::future::join_all(late).await.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(slot_reserved(&srv, &date, "09:00").await, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flash_sale_memory() {
    flash_sale(Arc::new(jittery(memory_store()))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flash_sale_dynamo() {
    let Some(store) = dynamo_store().await else { return };
    // Should a create answer 503 here, the store's error line (what DynamoDB or the SDK
    // answered) is printed with the failure.
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .try_init();
    flash_sale(store).await;
}

#[tokio::test]
async fn multi_ticket_request_split_over_shards() {
    // Capacity 10 over 4 shards (3, 3, 2, 2): no shard holds 6, so after 4 single places
    // the only way to seat 6 more is to split them over shards.
    let srv = server_with(memory_store(), 10).await;
    let tok = token("21", &[]);
    let date = visit_date();
    for _ in 0..4 {
        assert_eq!(create(&srv, &tok, &session_body(&date, "15:00", 1)).await.0, 201);
    }
    let (s, res) = create(&srv, &tok, &session_body(&date, "15:00", 6)).await;
    assert_eq!(s, 201, "{res}");
    assert_eq!(slot_reserved(&srv, &date, "15:00").await, 10);
    let (s, res) = create(&srv, &tok, &session_body(&date, "15:00", 1)).await;
    assert_eq!(s, 400, "{res}");
}

async fn reconciliation(store: Arc<dyn Store>) {
    let srv = server_with(store, 100).await;
    let tok = token("21", &[]);
    let date = visit_date();
    // Paid on the gateway, but the callback never came.
    let (_, a) = create(&srv, &tok, &session_body(&date, "16:00", 2)).await;
    let paid = a["data"]["payment_id"].as_str().unwrap().to_owned();
    let amount = "2000.00".parse().unwrap();
    shared::payments::gateways::sandbox::record(&srv.app, &paid, "succeeded", amount).await.unwrap();
    // Never paid at all.
    let (_, b) = create(&srv, &tok, &session_body(&date, "16:00", 3)).await;
    let abandoned = b["data"]["payment_id"].as_str().unwrap().to_owned();
    assert_eq!(slot_reserved(&srv, &date, "16:00").await, 5);

    // Before the timeout the job leaves them alone.
    let r = run(&srv.app, Job::Payments).await.unwrap();
    assert_eq!((r.examined, r.changed), (0, 0));
    srv.app.clock.advance(chrono::Duration::minutes(16));
    // Two runs at once: each payment is settled once.
    let (r1, r2) = tokio::join!(run(&srv.app, Job::Payments), run(&srv.app, Job::Payments));
    assert_eq!(r1.unwrap().changed + r2.unwrap().changed, 2);
    let (_, got) = srv.get(&format!("/v1/payments/{paid}"), Some(&tok)).await;
    assert_eq!(got["data"]["status"], "succeeded");
    assert_eq!(got["data"]["metadata"]["qr_codes_issued"], true);
    assert_eq!(got["data"]["tickets"].as_array().unwrap().len(), 2);
    let (_, got) = srv.get(&format!("/v1/payments/{abandoned}"), Some(&tok)).await;
    assert_eq!(got["data"]["status"], "canceled");
    assert_eq!(slot_reserved(&srv, &date, "16:00").await, 2);
    assert_eq!(srv.app.local_queue.as_ref().unwrap().messages().len(), 1);
    // Nothing left to do; the canceled one can be deleted.
    let r = run(&srv.app, Job::Payments).await.unwrap();
    assert_eq!((r.examined, r.changed), (0, 0));
    assert_eq!(srv.call(Method::DELETE, &format!("/v1/payments/{abandoned}"), Some(&tok), None).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reconciliation_memory() {
    reconciliation(Arc::new(jittery(memory_store()))).await;
}

#[tokio::test]
async fn reconciliation_dynamo() {
    let Some(store) = dynamo_store().await else { return };
    reconciliation(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idempotency_key_replays_the_first_answer() {
    let store = Arc::new(jittery(memory_store()));
    let srv = Arc::new(server_with(store.clone(), 100).await);
    let tok = token("21", &[]);
    let date = visit_date();
    let send = |body: Value, key: String, tok: String| {
        let req = srv
            .http
            .post(srv.url("/v1/payments/sessions"))
            .bearer_auth(tok)
            .header("Idempotency-Key", key)
            .json(&body);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let body = session_body(&date, "17:00", 2);
    let (s1, r1) = send(body.clone(), "key-1".into(), tok.clone()).await;
    let (s2, r2) = send(body.clone(), "key-1".into(), tok.clone()).await;
    assert_eq!((s1, s2), (201, 201));
    assert_eq!(r1, r2);
    assert_eq!(slot_reserved(&srv, &date, "17:00").await, 2);
    // The same key sent five times at once (worker threads, a barrier, a jittery store): one
    // session, one place; the others replay it or are 409 while it is being made. Repeated
    // until a racer really found the key taken.
    let mut reserved = 0;
    api_tests::until_lost(20, |r| {
        let (send, tok, date, store, srv) = (&send, tok.clone(), date.clone(), store.clone(), &srv);
        reserved += 1;
        let expected = reserved;
        async move {
            let key = format!("key-race-{r}");
            let body5 = session_body(&date, "17:30", 1);
            let lost_before = store.conflicts();
            let answers = api_tests::race(5, |_| send(body5.clone(), key.clone(), tok.clone())).await;
            let ids: std::collections::BTreeSet<String> = answers
                .iter()
                .filter(|(s, _)| *s == 201)
                .map(|(_, b)| b["data"]["payment_id"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(ids.len(), 1, "{answers:?}");
            assert!(answers.iter().all(|(s, _)| *s == 201 || *s == 409), "{answers:?}");
            assert_eq!(slot_reserved(srv, &date, "17:30").await, expected, "one place per key");
            store.conflicts() > lost_before
        }
    })
    .await;
    // Same key, another body: 422.
    let (s, r) = send(session_body(&date, "17:00", 3), "key-1".into(), tok.clone()).await;
    assert_eq!(s, 422, "{r}");
    assert_eq!(r["error"]["field"], "Idempotency-Key");
    // Keys are per caller; a new key creates another session.
    let (s, r3) = send(body.clone(), "key-1".into(), token("22", &[])).await;
    assert_eq!(s, 201);
    assert_ne!(r3["data"]["payment_id"], r1["data"]["payment_id"]);
    // A failed request does not burn its key.
    let mut bad = body.clone();
    bad["customer"]["email"] = json!("nope");
    assert_eq!(send(bad.clone(), "key-2".into(), tok.clone()).await.0, 422);
    assert_eq!(send(bad, "key-2".into(), tok.clone()).await.0, 422);
    // After 24 h the key is forgotten.
    srv.app.clock.advance(chrono::Duration::hours(25));
    let mut later = body.clone();
    later["order"]["items"][0]["visit_date"] =
        json!((chrono::Utc::now() + chrono::Duration::days(40)).format("%Y-%m-%d").to_string());
    let (s, r4) = send(later, "key-1".into(), tok.clone()).await;
    assert_eq!(s, 201, "{r4}");
    assert_ne!(r4["data"]["payment_id"], r1["data"]["payment_id"]);
}
