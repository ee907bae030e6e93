//! The box office's back office over HTTP: orders found by email, phone or bar code; an
//! event's sales report (JSON and CSV) whose figures match the orders the test made; sales
//! stopped and resumed. On the embedded store and on DynamoDB (moto).

mod tickets_support;

use api_tests::{TestServer, press, token};
use serde_json::{Value, json};
use tickets_support::{Buyer, admin, checkout, create_event, online_pr};

/// A cash order of `seats` by a buyer with this email and phone: the order id.
async fn cash_order(srv: &TestServer, seats: &[&str], email: &str, phone: &str) -> String {
    let customer = json!({"name": "Анна", "email": email, "phone": phone});
    let (_, body) = tickets_support::cash_checkout(srv, "bo", seats, customer).await;
    body["order"]["id"].as_str().unwrap().to_owned()
}

async fn search(srv: &TestServer, query: &str) -> (Vec<String>, Value) {
    let (status, body) = srv.get(&format!("/api/v1/admin/ticket_orders?{query}"), Some(&admin())).await;
    assert_eq!(status, 200, "{query}: {body}");
    let ids =
        body["orders"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_owned()).collect();
    (ids, body["meta"].clone())
}

#[tokio::test]
async fn memory_back_office() {
    back_office(TestServer::memory().await).await;
}

#[tokio::test]
async fn dynamo_back_office() {
    let Some(store) = api_tests::dynamo_store().await else { return };
    back_office(TestServer::start(store).await).await;
}

async fn back_office(srv: TestServer) {
    create_event(&srv, "bo").await; // row 1: category A at 1000.00, row 2: B at 500.50
    // 1: cash, unpaid. 2: cash, paid at the box office. 3: online, paid, 100.00 refunded.
    let unpaid = cash_order(&srv, &["s-1-1", "s-2-1"], "anna@example.com", "+7 999 000-00-01").await;
    let paid = cash_order(&srv, &["s-1-2"], "Anna@Example.com", "8 (999) 000-00-02").await;
    let path = format!("/api/v1/admin/ticket_orders/{paid}/paid");
    let (status, body) = srv.post(&path, Some(&admin()), &json!({})).await;
    assert_eq!(status, 200, "{body}");
    let paid_code = body["order"]["tickets"][0]["bar_code"].as_str().unwrap().to_owned();
    let (buyer, pr) = online_pr(&srv, "bo", &["s-2-2"], "self_online").await; // anna@example.com, +79990000001
    let (online, url, _) = checkout(&buyer, &pr).await;
    assert_eq!(press(&srv, &url, "succeeded").await.0, 303);
    let path = format!("/api/v1/admin/ticket_orders/{online}/refund");
    let (status, body) =
        srv.post(&path, Some(&admin()), &json!({"amount": "100.00", "reason": "seat"})).await;
    assert_eq!(status, 200, "{body}");
    // And a seat held in a cart.
    let mut holder = Buyer::anonymous(&srv);
    let held_pr = holder.init("bo").await;
    assert_eq!(holder.hold(&held_pr, "s-1-5").await.0, 200);

    // Search: by email (any case), newest first, paged; by phone (as typed); by bar code.
    let (all, meta) = search(&srv, "email=ANNA%40example.com").await;
    assert_eq!(all, [online.clone(), paid.clone(), unpaid.clone()]);
    assert_eq!(meta["total"], 3);
    let (first, meta) = search(&srv, "email=anna%40example.com&per=2").await;
    assert_eq!(first, [online.clone(), paid.clone()]);
    assert_eq!(meta["total_pages"], 2);
    assert!(meta["links"]["next_page"].as_str().unwrap().ends_with("page=2&per=2"), "{meta}");
    let (second, _) = search(&srv, "email=anna%40example.com&per=2&page=2").await;
    assert_eq!(second, [unpaid.as_str()]);
    let (by_phone, _) = search(&srv, "phone=%2B79990000001").await;
    assert_eq!(by_phone, [online.clone(), unpaid.clone()]);
    let (by_phone, _) = search(&srv, "phone=89990000002").await;
    assert_eq!(by_phone, [paid.as_str()]);
    let (by_code, _) = search(&srv, &format!("bar_code={paid_code}")).await;
    assert_eq!(by_code, [paid.as_str()]);
    let (none, meta) = search(&srv, &format!("bar_code={}", shared::tickets::barcode::new_bar_code())).await;
    assert!(none.is_empty());
    assert_eq!(meta["total"], 0);
    let (none, _) = search(&srv, "email=nobody%40example.com").await;
    assert!(none.is_empty());
    for bad in ["", "email=a%40b.ru&phone=89990000002", "bar_code=12"] {
        let (status, body) = srv.get(&format!("/api/v1/admin/ticket_orders?{bad}"), Some(&admin())).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"]["field"].is_string(), "{body}");
    }
    assert_eq!(srv.get("/api/v1/admin/ticket_orders?email=a%40b.ru", Some(&token("5", &[]))).await.0, 403);

    // The report: the figures of the orders above.
    let (status, r) = srv.get("/api/v1/admin/events/bo/report", Some(&admin())).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["seats"], json!({"total": 20, "sold": 4, "held": 1, "free": 15}));
    let cats = &r["revenue"]["by_price_category"];
    assert_eq!(cats[0], json!({"price_category": "A", "name": "Front", "tickets": 1, "amount": 1000.0}));
    assert_eq!(cats[1], json!({"price_category": "B", "name": "Back", "tickets": 1, "amount": 500.5}));
    let rev = &r["revenue"];
    assert_eq!(
        (
            rev["tickets"].clone(),
            rev["tickets_amount"].clone(),
            rev["commission"].clone(),
            rev["total"].clone()
        ),
        (json!(2), json!(1500.5), json!(15.02), json!(1515.52)),
        "the unpaid order counts nowhere; 3% commission of 500.50: {rev}"
    );
    assert_eq!(r["refunds"], json!({"orders": 1, "amount": 100.0}));
    assert_eq!(rev["net"], json!(1415.52));
    assert_eq!(r["orders"]["total"], 3);
    assert_eq!(r["orders"]["paid"], 2);
    assert_eq!(r["orders"]["by_type"], json!({"self_cash": 2, "self_online": 1}));
    assert_eq!(r["orders"]["by_status"], json!({"approved": 3}), "a partial refund keeps its order approved");
    // As CSV.
    let res = srv
        .http
        .get(srv.url("/api/v1/admin/events/bo/report"))
        .bearer_auth(admin())
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let csv = res.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "section,key,name,count,amount");
    for expected in [
        "seats,sold,,4,",
        "revenue,A,Front,1,1000.00",
        "revenue,B,Back,1,500.50",
        "refunds,total,,1,100.00",
        "revenue,net,,,1415.52",
    ] {
        assert!(lines.contains(&expected), "{expected} in\n{csv}");
    }
    assert_eq!(srv.get("/api/v1/admin/events/nope/report", Some(&admin())).await.0, 404);

    // Sales stopped: holds and checkouts refused, the event out of the public list; resumed.
    let (status, body) = srv.post("/api/v1/admin/events/bo/stop_sales", Some(&admin()), &json!({})).await;
    assert_eq!((status, body["event"]["on_sale"].as_bool()), (200, Some(false)), "{body}");
    let (_, events) = srv.get("/api/v1/events", None).await;
    assert!(!events["events"].as_array().unwrap().iter().any(|e| e["id"] == "bo"), "{events}");
    let (status, body) = holder.hold(&held_pr, "s-1-6").await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("event_id")), "{body}");
    let customer = json!({"name": "Пётр", "email": "petr@example.com", "phone": "+79990000009"});
    let path = format!("/api/v1/reservations/{held_pr}/order_type");
    let body = json!({"order_type": "self_cash", "customer": customer});
    assert_eq!(holder.call(reqwest::Method::PUT, &path, Some(&body)).await.0, 200);
    let (status, body) = holder.post(&format!("/api/v1/reservations/{held_pr}/checkout"), &json!({})).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("event_id")), "{body}");
    let (status, body) = srv.post("/api/v1/admin/events/bo/resume_sales", Some(&admin()), &json!({})).await;
    assert_eq!((status, body["event"]["on_sale"].as_bool()), (200, Some(true)), "{body}");
    assert_eq!(holder.hold(&held_pr, "s-1-6").await.0, 200);
    let (status, body) = holder.post(&format!("/api/v1/reservations/{held_pr}/checkout"), &json!({})).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        srv.post("/api/v1/admin/events/bo/stop_sales", Some(&token("5", &[])), &json!({})).await.0,
        403
    );
    assert_eq!(srv.post("/api/v1/admin/events/nope/stop_sales", Some(&admin()), &json!({})).await.0, 404);
}
