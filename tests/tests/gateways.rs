//! The real gateway adapters against local HTTP peers on 127.0.0.1 that speak each
//! gateway's protocol: they check what we send (signatures, X-Auth, passwords, the refund
//! JWT), answer create/status/refund requests, and post signed callbacks to our server the
//! way the gateway would. Each runs on the embedded store and on DynamoDB (moto).
//!
//! Forged callbacks are rejected and change nothing; a genuine callback delivered twice
//! settles once and sends one email; a correctly signed notice for a smaller sum never
//! advances the owner and the money goes back; reconciliation finishes a payment whose
//! callback never came; refunds honour their amount; a refund whose answer was lost stays
//! pending until the job learns what became of it (or hands it to a person); refunds the
//! bank reports on its own (`sngb_tran`) reach the ticket order.

mod tickets_support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use api_tests::{SECRET, TestServer, token};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use base64::Engine;
use hmac::{Hmac, Mac};
use md5::Md5;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use shared::App;
use shared::jobs::{Job, run};
use shared::payments::GatewayKind;
use shared::payments::gateway::parse_form;
use shared::store::Store;
use tickets_support::{admin, admin_order, create_event, online_order, payment_of, taken_seats};

fn md5(s: &str) -> String {
    hex::encode(Md5::digest(s.as_bytes()))
}
fn sha256(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}
fn sha1(s: &str) -> String {
    hex::encode(Sha1::digest(s.as_bytes()))
}
fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}
fn money(d: Decimal) -> String {
    shared::money::format(d)
}

fn visit_date() -> String {
    (chrono::Utc::now() + chrono::Duration::days(20)).format("%Y-%m-%d").to_string()
}

fn session_body(qty: i64, hour: &str) -> Value {
    json!({
        "session_id": "s1",
        "order": {
            "order_id": "ZT-1",
            "total_amount": { "value": format!("{}.00", 1000 * qty), "currency": "RUB" },
            "items": [{ "ticket_type": "adult", "quantity": qty, "unit_price": { "value": "1000.00", "currency": "RUB" },
                        "visit_date": visit_date(), "visit_time": hour }]
        },
        "customer": { "email": "visitor@example.com" },
        "confirmation": { "type": "redirect", "return_url": "https://zoo.example/ok", "cancel_url": "https://zoo.example/cancel" }
    })
}

/// A peer's shared state: what it recorded, our server's base URL, its own base URL.
#[derive(Clone, Default)]
struct Peer {
    ours: Arc<Mutex<String>>,
    me: String,
    records: Arc<Mutex<HashMap<String, Value>>>,
}

impl Peer {
    fn ours(&self) -> String {
        self.ours.lock().unwrap().clone()
    }
    fn get(&self, k: &str) -> Option<Value> {
        self.records.lock().unwrap().get(k).cloned()
    }
    fn set(&self, k: &str, v: Value) {
        self.records.lock().unwrap().insert(k.to_owned(), v);
    }
    fn take(&self, k: &str) -> Option<Value> {
        self.records.lock().unwrap().remove(k)
    }
}

/// Binds a peer, lets `configure` point our config at it, starts our server on `store`, then
/// serves the peer.
async fn start(
    router: Router<Peer>,
    store: Arc<dyn Store>,
    configure: impl FnOnce(&mut shared::Config, &str),
) -> (TestServer, Peer) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let me = format!("http://{}", listener.local_addr().unwrap());
    let peer = Peer { me: me.clone(), ..Peer::default() };
    let mut config = shared::Config::for_tests();
    config.jwt.secret = SECRET.into();
    configure(&mut config, &me);
    let srv = TestServer::start_with(App::new(store, config)).await;
    *peer.ours.lock().unwrap() = srv.base.clone();
    let app = router.with_state(peer.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (srv, peer)
}

/// A manager's discount of zoo session `id` to `amount` (PATCH, with a reason): 200.
async fn discount(srv: &TestServer, id: &str, amount: &str) {
    let body = json!({"amount": {"value": amount, "currency": "RUB"}, "amount_reason": "discount"});
    let res = srv
        .http
        .patch(srv.url(&format!("/v1/payments/{id}")))
        .bearer_auth(token("31", &["manager"]))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

/// A zoo session of two tickets at 10:00 opened with `tok`: its payment id and the gateway page
/// its answer sends the buyer to.
async fn open_session(srv: &TestServer, tok: &str) -> (String, String) {
    let (s, created) = srv.post("/v1/payments/sessions", Some(tok), &session_body(2, "10:00")).await;
    assert_eq!(s, 201, "{created}");
    let field = |name: &str| created["data"][name].as_str().unwrap().to_owned();
    (field("payment_id"), field("confirmation_url"))
}

async fn post_form(url: &str, fields: &[(String, String)]) -> (u16, String) {
    let res = reqwest::Client::new().post(url).form(fields).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

fn pairs(fields: &[(&str, &str)]) -> Vec<(String, String)> {
    fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

async fn status_of(srv: &TestServer, tok: &str, id: &str) -> Value {
    let (s, b) = srv.get(&format!("/v1/payments/{id}"), Some(tok)).await;
    assert_eq!(s, 200, "{b}");
    b["data"].clone()
}

/// Notifications queued with this template.
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

/// What the reader of a queued notification sees: its rendered subject and text.
fn read(n: &shared::outbox::Notification) -> (String, String) {
    let email = notifier::Renderer::new().render(n).expect("renders");
    (email.subject, email.text)
}

async fn reserved(srv: &TestServer, time: &str) -> i64 {
    let (s, b) = srv.get(&format!("/v1/slots?visit_date={}&visit_time={time}", visit_date()), None).await;
    assert_eq!(s, 200, "{b}");
    b["data"]["reserved"].as_i64().unwrap()
}

async fn post_to(url: String) -> (u16, String) {
    let res = reqwest::Client::new().post(url).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

// ---------------------------------------------------------------- Robokassa

const RK_LOGIN: &str = "zoo-shop";
const RK_P1: &str = "password-one";
const RK_P2: &str = "password-two";
const RK_P3: &str = "password-three";

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The Refund API's check of a request: a JWT (as a JSON string) with the documented header,
/// signed with Password3. Answers its payload.
fn verify_refund_jwt(body: &[u8]) -> Option<Value> {
    let token: String = serde_json::from_slice(body).ok()?;
    let mut parts = token.split('.');
    let (h, p, sig) = (parts.next()?, parts.next()?, parts.next()?);
    let header: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
    if header != json!({"alg": "HS256", "typ": "JWT"}) {
        return None;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(RK_P3.as_bytes()).unwrap();
    mac.update(format!("{h}.{p}").as_bytes());
    if b64url(&mac.finalize().into_bytes()) != sig {
        return None;
    }
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).ok()?).ok()
}

fn robokassa_peer() -> Router<Peer> {
    async fn index(State(p): State<Peer>, uri: Uri) -> impl IntoResponse {
        let q = parse_form(uri.query().unwrap_or("").as_bytes());
        let (sum, inv, id) = (&q["OutSum"], &q["InvId"], &q["Shp_payment_id"]);
        let expected = md5(&format!("{}:{sum}:{inv}:{RK_P1}:Shp_payment_id={id}", q["MerchantLogin"]));
        if q["MerchantLogin"] != RK_LOGIN || q["SignatureValue"] != expected {
            return (StatusCode::BAD_REQUEST, "bad signature".to_owned());
        }
        let Some(exp) = q.get("ExpirationDate").and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
        else {
            return (StatusCode::BAD_REQUEST, "ExpirationDate".to_owned());
        };
        if p.get(inv).is_none() {
            p.set(
                inv,
                json!({ "sum": sum, "paid": null, "id": id, "state": 5, "op_key": format!("OPKEY-{inv}"),
                        "refunded": "0.00", "expires": exp.to_rfc3339() }),
            );
        }
        (StatusCode::OK, format!("<html>Robokassa payment page for invoice {inv}</html>"))
    }
    async fn op_state(State(p): State<Peer>, uri: Uri) -> impl IntoResponse {
        let q = parse_form(uri.query().unwrap_or("").as_bytes());
        let inv = &q["InvoiceID"];
        if q["Signature"] != md5(&format!("{RK_LOGIN}:{inv}:{RK_P2}")) {
            return "<OperationStateResponse><Result><Code>1</Code></Result></OperationStateResponse>"
                .to_owned();
        }
        match p.get(inv) {
            None => {
                "<OperationStateResponse><Result><Code>3</Code></Result></OperationStateResponse>".to_owned()
            }
            Some(r) => format!(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?><OperationStateResponse xmlns=\"http://auth.robokassa.ru/Merchant/WebService/\"><Result><Code>0</Code></Result><State><Code>{}</Code><RequestDate>2026-01-01T00:00:00</RequestDate></State><Info><IncCurrLabel>BankCardPSR</IncCurrLabel><IncSum>{}</IncSum><OutCurrLabel>RUR</OutCurrLabel><OutSum>{}</OutSum><OpKey>{}</OpKey></Info></OperationStateResponse>",
                r["state"],
                r["paid"].as_str().unwrap_or("0"),
                r["paid"].as_str().unwrap_or("0"),
                r["op_key"].as_str().unwrap()
            ),
        }
    }
    /// The bank side: the buyer paid (`sum` if given, else the invoice's sum); ResultURL is
    /// notified unless `notify=0`.
    async fn pay(State(p): State<Peer>, Path(inv): Path<String>, uri: Uri) -> impl IntoResponse {
        let q = parse_form(uri.query().unwrap_or("").as_bytes());
        let mut r = p.get(&inv).unwrap();
        let paid = q.get("sum").cloned().unwrap_or_else(|| r["sum"].as_str().unwrap().to_owned());
        r["state"] = json!(100);
        r["paid"] = json!(paid);
        p.set(&inv, r.clone());
        if q.get("notify").map(String::as_str) == Some("0") {
            return (StatusCode::OK, String::new());
        }
        let sum = format!("{paid}0000"); // Robokassa sends six decimals
        let id = r["id"].as_str().unwrap();
        let sig = md5(&format!("{sum}:{inv}:{RK_P2}:Shp_payment_id={id}")).to_uppercase();
        let fields = pairs(&[
            ("OutSum", &sum),
            ("InvId", &inv),
            ("SignatureValue", &sig),
            ("Shp_payment_id", id),
            ("PaymentMethod", "BankCard"),
            ("Fee", "0.00"),
        ]);
        let (s, body) = post_form(&format!("{}/api/v1/gateways/robokassa/result", p.ours()), &fields).await;
        (StatusCode::from_u16(s).unwrap(), body)
    }
    /// Refund/Create: the JWT checked; `RefundSum` for a part, none for everything left.
    /// With `drop` armed, the refund is made and the answer lost (a gateway timeout).
    async fn refund_create(State(p): State<Peer>, h: HeaderMap, body: Bytes) -> impl IntoResponse {
        assert_eq!(h["content-type"], "application/json");
        let Some(claims) = verify_refund_jwt(&body) else {
            return (StatusCode::UNAUTHORIZED, axum::Json(json!({"message": "Signature key is not valid"})));
        };
        let recs = p.records.lock().unwrap().clone();
        let found = recs.iter().find(|(_, r)| r["op_key"] == claims["OpKey"]);
        let Some((inv, r)) = found.map(|(k, v)| (k.clone(), v.clone())) else {
            return (
                StatusCode::OK,
                axum::Json(json!({"success": false, "message": "OperationNotFound", "requestId": null})),
            );
        };
        let paid = dec(r["paid"].as_str().unwrap());
        let refunded = dec(r["refunded"].as_str().unwrap());
        let amount = match &claims["RefundSum"] {
            Value::Null => paid - refunded,
            n => dec(&n.to_string()),
        };
        if amount <= Decimal::ZERO || refunded + amount > paid {
            return (
                StatusCode::OK,
                axum::Json(
                    json!({"success": false, "message": "NotEnoughOperationFunds", "requestId": null}),
                ),
            );
        }
        let mut r = r;
        r["refunded"] = json!(money(refunded + amount));
        if refunded + amount == paid {
            r["state"] = json!(60);
        }
        p.set(&inv, r);
        let request_id = uuid::Uuid::new_v4().to_string();
        p.set(
            &format!("refund:{request_id}"),
            json!({ "amount": money(amount), "inv": inv, "whole": claims["RefundSum"].is_null() }),
        );
        if p.take("drop").is_some() {
            return (StatusCode::GATEWAY_TIMEOUT, axum::Json(json!({"message": "upstream timed out"})));
        }
        (StatusCode::OK, axum::Json(json!({"success": true, "message": null, "requestId": request_id})))
    }
    async fn refund_state(State(p): State<Peer>, uri: Uri) -> impl IntoResponse {
        let q = parse_form(uri.query().unwrap_or("").as_bytes());
        match p.get(&format!("refund:{}", q["id"])) {
            Some(r) => axum::Json(json!({"requestId": q["id"], "amount": r["amount"], "label": "finished"})),
            None => axum::Json(json!({"message": "Id is invalid or request id does not exist"})),
        }
    }
    Router::new()
        .route("/Merchant/Index.aspx", get(index))
        .route("/Merchant/WebService/Service.asmx/OpStateExt", get(op_state))
        .route("/RefundService/Refund/Create", post(refund_create))
        .route("/RefundService/Refund/GetState", get(refund_state))
        .route("/test/pay/{inv}", post(pay))
}

fn robokassa_config(c: &mut shared::Config, me: &str) {
    c.payments.zoo_gateway = GatewayKind::Robokassa;
    c.payments.tickets_gateway = GatewayKind::Robokassa;
    c.payments.robokassa = shared::payments::gateways::robokassa::Config {
        login: RK_LOGIN.into(),
        password1: RK_P1.into(),
        password2: RK_P2.into(),
        password3: RK_P3.into(),
        base_url: me.into(),
        refund_url: format!("{me}/RefundService/Refund"),
        ..Default::default()
    };
}

#[tokio::test]
async fn memory_robokassa_sessions() {
    robokassa_sessions(api_tests::memory_store()).await;
}

#[tokio::test]
async fn dynamo_robokassa_sessions() {
    let Some(store) = api_tests::dynamo_store().await else { return };
    robokassa_sessions(store).await;
}

async fn robokassa_sessions(store: Arc<dyn Store>) {
    let (srv, peer) = start(robokassa_peer(), store, robokassa_config).await;
    let tok = token("21", &[]);
    let (s, created) = srv.post("/v1/payments/sessions", Some(&tok), &session_body(2, "10:00")).await;
    assert_eq!(s, 201, "{created}");
    let id = created["data"]["payment_id"].as_str().unwrap().to_owned();
    let url = created["data"]["confirmation_url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/Merchant/Index.aspx?", peer.me)), "{url}");
    // The peer accepts our Password1 signature; the link expires with the payment.
    let page = reqwest::get(url).await.unwrap();
    assert_eq!(page.status(), 200, "{}", page.text().await.unwrap());
    let inv = id.trim_start_matches("ZT_").to_owned();
    assert_eq!(peer.get(&inv).unwrap()["sum"], "2000.00");
    let expires =
        chrono::DateTime::parse_from_rfc3339(peer.get(&inv).unwrap()["expires"].as_str().unwrap()).unwrap();
    let payment_expires =
        chrono::DateTime::parse_from_rfc3339(created["data"]["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(expires.timestamp(), payment_expires.timestamp());

    // Forged ResultURL calls: wrong password, tampered amount. Nothing changes.
    let forged = |sum: &str, sig: String| {
        pairs(&[("OutSum", sum), ("InvId", &inv), ("SignatureValue", &sig), ("Shp_payment_id", &id)])
    };
    let result_url = srv.url("/api/v1/gateways/robokassa/result");
    let bad = forged("2000.00", md5(&format!("2000.00:{inv}:guess:Shp_payment_id={id}")));
    assert_eq!(post_form(&result_url, &bad).await.0, 403);
    let tampered = forged("1.00", md5(&format!("2000.00:{inv}:{RK_P2}:Shp_payment_id={id}")));
    assert_eq!(post_form(&result_url, &tampered).await.0, 403);
    assert_eq!(status_of(&srv, &tok, &id).await["status"], "pending");

    // The genuine callback, twice: `OK{InvId}` both times, one settlement, one email.
    for _ in 0..2 {
        assert_eq!(post_to(format!("{}/test/pay/{inv}", peer.me)).await, (200, format!("OK{inv}")));
    }
    let p = status_of(&srv, &tok, &id).await;
    assert_eq!(p["status"], "succeeded");
    assert_eq!(p["payment_method"], "BankCard");
    assert_eq!(p["tickets"].as_array().unwrap().len(), 2);
    // Paid: the view no longer offers the payment page.
    assert_eq!(p["confirmation"]["confirmation_url"], Value::Null);
    // The buyer's browser back on SuccessURL: redirected to the session's return URL.
    let res = srv
        .http
        .get(srv.url(&format!("/api/v1/gateways/robokassa/success?InvId={inv}&OutSum=2000.00")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "https://zoo.example/ok");
    assert_eq!(sent(&srv, "zoo_tickets").len(), 1);

    // A correctly signed notice for a smaller sum: the session is not advanced (no tickets,
    // its places back), the 1.00 received goes back through the Refund API, the manager and
    // the buyer are told.
    let (_, small) = srv.post("/v1/payments/sessions", Some(&tok), &session_body(1, "11:00")).await;
    let small_id = small["data"]["payment_id"].as_str().unwrap().to_owned();
    let small_inv = small_id.trim_start_matches("ZT_").to_owned();
    reqwest::get(small["data"]["confirmation_url"].as_str().unwrap()).await.unwrap();
    assert_eq!(reserved(&srv, "11:00").await, 1);
    let answer = post_to(format!("{}/test/pay/{small_inv}?sum=1.00", peer.me)).await;
    assert_eq!(answer, (200, format!("OK{small_inv}")), "the notice is taken: it is genuine");
    let p = status_of(&srv, &tok, &small_id).await;
    assert_eq!(
        (p["status"].as_str(), p["refunded_amount"]["value"].as_str()),
        (Some("refunded"), Some("1.00")),
        "{p}"
    );
    assert!(p["tickets"].as_array().unwrap().is_empty(), "no tickets for 1.00");
    assert_eq!(p["metadata"]["qr_codes_issued"], false);
    assert_eq!(reserved(&srv, "11:00").await, 0, "the places are free again");
    assert_eq!(peer.get(&small_inv).unwrap()["refunded"], "1.00", "refunded through the Refund API");
    let mismatch = sent(&srv, "payment_mismatch");
    assert_eq!(mismatch.len(), 1);
    assert_eq!(mismatch[0].to, "manager@example.com");
    let (subject, text) = read(&mismatch[0]);
    assert!(subject.contains("получено 1.00") && subject.contains("ожидалось 1000.00"), "{subject}");
    assert!(text.contains(&small_id), "{text}");
    let returned = sent(&srv, "payment_returned");
    assert_eq!(returned.len(), 1);
    assert_eq!(returned[0].to, "visitor@example.com");
    assert!(read(&returned[0]).0.contains("1.00"));
    // Repeated, the notice changes nothing more.
    assert_eq!(post_to(format!("{}/test/pay/{small_inv}?sum=1.00", peer.me)).await.0, 200);
    assert_eq!(peer.get(&small_inv).unwrap()["refunded"], "1.00");
    assert_eq!(sent(&srv, "payment_returned").len(), 1);

    // Paid without a callback, and never paid: the job asks OpStateExt.
    let (_, a) = srv.post("/v1/payments/sessions", Some(&tok), &session_body(1, "12:00")).await;
    let (_, b) = srv.post("/v1/payments/sessions", Some(&tok), &session_body(1, "12:00")).await;
    let (paid, abandoned) =
        (a["data"]["payment_id"].as_str().unwrap(), b["data"]["payment_id"].as_str().unwrap());
    for x in [&a, &b] {
        reqwest::get(x["data"]["confirmation_url"].as_str().unwrap()).await.unwrap();
    }
    assert_eq!(post_to(format!("{}/test/pay/{}?notify=0", peer.me, &paid[3..])).await.0, 200);
    srv.app.clock.advance(chrono::Duration::minutes(16));
    let r = run(&srv.app, Job::Payments).await.unwrap();
    assert_eq!((r.examined, r.changed), (2, 2));
    assert_eq!(status_of(&srv, &tok, paid).await["status"], "succeeded");
    assert_eq!(status_of(&srv, &tok, abandoned).await["status"], "canceled");
    assert_eq!(sent(&srv, "zoo_tickets").len(), 2);
}

#[tokio::test]
async fn memory_robokassa_refunds() {
    robokassa_refunds(api_tests::memory_store()).await;
}

#[tokio::test]
async fn dynamo_robokassa_refunds() {
    let Some(store) = api_tests::dynamo_store().await else { return };
    robokassa_refunds(store).await;
}

/// A paid online ticket order through `peer`'s Robokassa: its id and invoice number.
async fn robokassa_paid_order(
    srv: &TestServer,
    peer: &Peer,
    event: &str,
    seats: &[&str],
) -> (String, String) {
    let (order, url) = online_order(srv, event, seats, "self_online").await;
    assert!(url.starts_with(&peer.me), "{url}");
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 200);
    let inv = url.split("InvId=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    assert_eq!(post_to(format!("{}/test/pay/{inv}", peer.me)).await.0, 200);
    assert_eq!(admin_order(srv, &order).await["status"], "approved");
    (order, inv)
}

async fn refund(srv: &TestServer, order: &str, amount: &str) -> (u16, Value) {
    srv.post(
        &format!("/api/v1/admin/ticket_orders/{order}/refund"),
        Some(&admin()),
        &json!({"amount": amount}),
    )
    .await
}

async fn robokassa_refunds(store: Arc<dyn Store>) {
    let (srv, peer) = start(robokassa_peer(), store, robokassa_config).await;
    create_event(&srv, "rk").await;
    let (order, inv) = robokassa_paid_order(&srv, &peer, "rk", &["s-1-1", "s-1-2"]).await;
    let total = dec(peer.get(&inv).unwrap()["sum"].as_str().unwrap());

    // A part: `RefundSum` 100.00, made at once.
    let (status, body) = refund(&srv, &order, "100.00").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["order"]["refunds"][0]["state"], "completed");
    assert_eq!(peer.get(&inv).unwrap()["refunded"], "100.00");
    assert_eq!(sent(&srv, "refund").len(), 1);

    // The rest, and Robokassa's answer is lost: 202, pending on the order, money reserved.
    peer.set("drop", json!(true));
    let rest = money(total - dec("100.00"));
    let (status, body) = refund(&srv, &order, &rest).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["order"]["refunds"][1]["state"], "pending");
    assert_eq!(
        peer.get(&inv).unwrap()["refunded"].as_str(),
        Some(money(total).as_str()),
        "the gateway made it"
    );
    let (status, body) = refund(&srv, &order, "0.01").await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("amount")), "nothing is left: {body}");
    // The job: a partial refund's fate is not on the invoice, so it waits; after a day, a person.
    srv.app.clock.advance(chrono::Duration::minutes(2));
    run(&srv.app, Job::Payments).await.unwrap();
    assert_eq!(admin_order(&srv, &order).await["refunds"][1]["state"], "pending");
    assert!(sent(&srv, "refund_manual").is_empty());
    srv.app.clock.advance(chrono::Duration::hours(25));
    run(&srv.app, Job::Payments).await.unwrap();
    let (status, list) = srv.get("/api/v1/admin/refunds", Some(&admin())).await;
    assert_eq!(status, 200, "{list}");
    let waiting = list["refunds"].as_array().unwrap();
    assert_eq!(waiting.len(), 1, "{list}");
    assert_eq!(
        (waiting[0]["state"].as_str(), dec(&waiting[0]["amount"].to_string())),
        (Some("manual"), dec(&rest))
    );
    let manual = sent(&srv, "refund_manual");
    assert_eq!(manual.len(), 1);
    assert_eq!(manual[0].to, "manager@example.com");
    assert!(read(&manual[0]).0.contains(&rest));
    assert_eq!(taken_seats(&srv, "rk").await.len(), 2, "seats stay sold until the money is back");
    // A person checks the merchant account and marks it made.
    let path = format!(
        "/api/v1/admin/refunds/{}/{}/completed",
        waiting[0]["payment_id"].as_str().unwrap(),
        waiting[0]["id"].as_str().unwrap()
    );
    let (status, body) = srv.post(&path, Some(&admin()), &json!({})).await;
    assert_eq!(status, 200, "{body}");
    let o = admin_order(&srv, &order).await;
    assert_eq!((o["status"].as_str(), dec(&o["refunded"].to_string())), (Some("refunded"), total));
    assert!(o["refunds"].as_array().unwrap().iter().all(|r| r["state"] == "completed"), "{o}");
    assert!(taken_seats(&srv, "rk").await.is_empty());
    assert_eq!(sent(&srv, "refund").len(), 2);
    assert_eq!(srv.post(&path, Some(&admin()), &json!({})).await.0, 400, "made once");

    // A whole refund whose answer is lost: the invoice shows it (state 60), so the job
    // completes it by itself.
    let (order2, inv2) = robokassa_paid_order(&srv, &peer, "rk", &["s-2-1"]).await;
    let total2 = peer.get(&inv2).unwrap()["sum"].as_str().unwrap().to_owned();
    peer.set("drop", json!(true));
    let (status, body) = refund(&srv, &order2, &total2).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(peer.get(&inv2).unwrap()["state"], 60);
    assert_eq!(taken_seats(&srv, "rk").await.len(), 1);
    srv.app.clock.advance(chrono::Duration::minutes(2));
    run(&srv.app, Job::Payments).await.unwrap();
    let o = admin_order(&srv, &order2).await;
    assert_eq!(
        (o["status"].as_str(), o["refunds"][0]["state"].as_str()),
        (Some("refunded"), Some("completed"))
    );
    assert!(taken_seats(&srv, "rk").await.is_empty());
    assert_eq!(sent(&srv, "refund").len(), 3);
}

// ---------------------------------------------------------------- Mandarin

const MD_MERCHANT: &str = "812";
const MD_SECRET: &str = "mandarin-shared-secret";

fn mandarin_sign(fields: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = fields.iter().filter(|(k, _)| k != "sign").collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let values: Vec<&str> = sorted.iter().map(|(_, v)| v.as_str()).collect();
    sha256(&format!("{}-{MD_SECRET}", values.join("-")))
}

/// `fields` with their Mandarin `sign`, as Mandarin posts a callback.
fn mandarin_signed(mut fields: Vec<(String, String)>) -> Vec<(String, String)> {
    let sign = mandarin_sign(&fields);
    fields.push(("sign".into(), sign));
    fields
}

/// A payment's refunds: (amount, state) each.
async fn refund_states(srv: &TestServer, id: &str) -> Vec<(Decimal, shared::payments::refunds::RefundState)> {
    let refunds = shared::payments::refunds::of_payment(&srv.app, id).await.unwrap();
    refunds.iter().map(|r| (r.amount, r.state)).collect()
}

fn mandarin_peer() -> Router<Peer> {
    fn authorized(h: &HeaderMap) -> bool {
        let Some(auth) = h.get("X-Auth").and_then(|v| v.to_str().ok()) else { return false };
        let parts: Vec<&str> = auth.splitn(3, '-').collect();
        parts.len() == 3
            && parts[0] == MD_MERCHANT
            && parts[1] == sha256(&format!("{MD_MERCHANT}-{}-{MD_SECRET}", parts[2]))
            && h.get("content-type").is_some_and(|c| c == "application/json")
    }
    async fn transactions(State(p): State<Peer>, h: HeaderMap, body: Bytes) -> impl IntoResponse {
        if !authorized(&h) {
            return (StatusCode::FORBIDDEN, axum::Json(json!({"error": "Invalid X-Auth"})));
        }
        let b: Value = serde_json::from_slice(&body).unwrap();
        let tx = uuid::Uuid::new_v4().simple().to_string();
        match b["payment"]["action"].as_str() {
            Some("pay") => {
                assert!(b["payment"]["orderActualTill"].is_string(), "links expire: {b}");
                p.set(&tx, json!({ "orderId": b["payment"]["orderId"], "price": b["payment"]["price"], "status": "processing",
                                   "email": b["customerInfo"]["email"], "refunded": "0.00", "return": b["urls"]["return"] }));
                let link = format!("{}/Pay?transaction={tx}", p.me);
                (StatusCode::OK, axum::Json(json!({ "id": tx, "userWebLink": link })))
            }
            Some("reversal") => {
                // `payment.price` is the amount to return.
                let target = b["target"]["transaction"].as_str().unwrap().to_owned();
                let mut r = p.get(&target).unwrap();
                let price = dec(b["payment"]["price"].as_str().expect("a reversal names its amount"));
                let refunded = dec(r["refunded"].as_str().unwrap()) + price;
                if refunded > dec(r["price"].as_str().unwrap()) {
                    return (
                        StatusCode::BAD_REQUEST,
                        axum::Json(json!({"error": "amount exceeds the payment"})),
                    );
                }
                r["refunded"] = json!(money(refunded));
                p.set(&target, r);
                p.set(&tx, json!({ "status": "success", "price": money(price), "target": target }));
                (StatusCode::OK, axum::Json(json!({ "id": tx })))
            }
            _ => (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "Invalid request"}))),
        }
    }
    async fn status(State(p): State<Peer>, h: HeaderMap, Path(tx): Path<String>) -> impl IntoResponse {
        if !authorized(&h) {
            return (StatusCode::FORBIDDEN, axum::Json(json!({"error": "Invalid X-Auth"})));
        }
        match p.get(&tx) {
            Some(r) => {
                (StatusCode::OK, axum::Json(json!({ "id": tx, "status": r["status"], "price": r["price"] })))
            }
            None => (StatusCode::NOT_FOUND, axum::Json(json!({"error": "not found"}))),
        }
    }
    /// The bank side: settle a transaction and post the callback unless `notify=0`.
    async fn pay(
        State(p): State<Peer>,
        Path((tx, outcome)): Path<(String, String)>,
        uri: Uri,
    ) -> impl IntoResponse {
        let mut r = p.get(&tx).unwrap();
        r["status"] = json!(outcome);
        p.set(&tx, r.clone());
        if uri.query() == Some("notify=0") {
            return (StatusCode::OK, String::new());
        }
        let fields = mandarin_signed(pairs(&[
            ("transaction", &tx),
            ("status", &outcome),
            ("action", "pay"),
            ("merchantId", MD_MERCHANT),
            ("price", r["price"].as_str().unwrap()),
            ("orderId", r["orderId"].as_str().unwrap()),
            ("customer_email", r["email"].as_str().unwrap()),
        ]));
        let (s, body) = post_form(&format!("{}/api/v1/gateways/mandarin/callback", p.ours()), &fields).await;
        (StatusCode::from_u16(s).unwrap(), body)
    }
    Router::new()
        .route("/api/transactions", post(transactions))
        .route("/api/transactions/{tx}", get(status))
        .route("/test/settle/{tx}/{outcome}", post(pay))
}

fn mandarin_config(c: &mut shared::Config, me: &str) {
    c.payments.zoo_gateway = GatewayKind::Mandarin;
    c.payments.tickets_gateway = GatewayKind::Mandarin;
    c.payments.mandarin = shared::payments::gateways::mandarin::Config {
        merchant_id: MD_MERCHANT.into(),
        secret: MD_SECRET.into(),
        base_url: me.into(),
    };
}

#[tokio::test]
async fn memory_mandarin() {
    mandarin(api_tests::memory_store()).await;
}

#[tokio::test]
async fn dynamo_mandarin() {
    let Some(store) = api_tests::dynamo_store().await else { return };
    mandarin(store).await;
}

/// A manager's discount makes a new Mandarin transaction; the buyer pays the first one anyway.
/// Its callback (the old price) is a wrong sum: recorded, and reversed on the transaction that
/// was paid, not on the new one (which was never paid and could not be reversed).
#[tokio::test]
async fn mandarin_a_transaction_paid_from_before_a_discount_is_reversed() {
    let (srv, peer) = start(mandarin_peer(), api_tests::memory_store(), mandarin_config).await;
    let tok = token("21", &[]);
    let (id, url) = open_session(&srv, &tok).await;
    let first = url.split("transaction=").nth(1).unwrap().to_owned();
    discount(&srv, &id, "1500.00").await;
    let second = shared::payments::get(&srv.app, &id).await.unwrap().gateway_ref.unwrap();
    assert_ne!(second, first);
    assert_eq!(post_to(format!("{}/test/settle/{first}/success", peer.me)).await, (200, "OK".to_owned()));
    let p = shared::payments::get(&srv.app, &id).await.unwrap();
    assert!(p.anomaly.is_some(), "a wrong sum: {p:?}");
    assert_eq!(
        refund_states(&srv, &id).await,
        [(dec("2000.00"), shared::payments::refunds::RefundState::Completed)]
    );
    assert_eq!(peer.get(&first).unwrap()["refunded"], "2000.00");
    assert_eq!(peer.get(&second).unwrap()["refunded"], "0.00");
    assert_eq!(sent(&srv, "payment_mismatch").len(), 1);
}

/// A refund the gateway reports for an order that never took its money (a reversal made in
/// Mandarin's own back office for a payment it declined): recorded, but the order stays
/// cancelled, its tickets invalid and its seats free.
#[tokio::test]
async fn a_reported_refund_does_not_revive_a_cancelled_order() {
    let (srv, peer) = start(mandarin_peer(), api_tests::memory_store(), mandarin_config).await;
    create_event(&srv, "mr").await;
    let (order, url) = online_order(&srv, "mr", &["s-1-5", "s-1-6"], "self_online").await;
    let tx = url.split("transaction=").nth(1).unwrap().to_owned();
    assert_eq!(post_to(format!("{}/test/settle/{tx}/failed", peer.me)).await, (200, "OK".to_owned()));
    assert_eq!(admin_order(&srv, &order).await["status"], "cancelled");
    assert!(taken_seats(&srv, "mr").await.is_empty());

    let payment = payment_of(&srv, &order).await;
    let fields = mandarin_signed(pairs(&[
        ("transaction", "reversal-1"),
        ("status", "success"),
        ("action", "reversal"),
        ("merchantId", MD_MERCHANT),
        ("price", "100.00"),
        ("orderId", &payment),
    ]));
    let cb = srv.url("/api/v1/gateways/mandarin/callback");
    for _ in 0..2 {
        assert_eq!(post_form(&cb, &fields).await, (200, "OK".to_owned()));
    }
    let o = admin_order(&srv, &order).await;
    assert_eq!(o["status"], "cancelled", "{o}");
    assert!(o["tickets"].as_array().unwrap().iter().all(|t| t["bar_code"].is_null()), "{o}");
    let stored = shared::tickets::orders::get(&srv.app, &order).await.unwrap().order;
    assert!(!stored.tickets_valid());
    assert!(taken_seats(&srv, "mr").await.is_empty());
    // The money that went back is on record, once.
    let refunds = shared::payments::refunds::of_payment(&srv.app, &payment).await.unwrap();
    assert_eq!(refunds.iter().map(|r| r.amount).collect::<Vec<_>>(), [dec("100.00")]);
}

/// A gateway's settlement callback on the critical path: the payment, the owner's record
/// (the zoo session), then one transaction (payment, session, tickets, the email).
#[tokio::test]
async fn mandarin_settlement_round_trips() {
    let counting = Arc::new(api_tests::counting::CountingStore::counting(api_tests::memory_store()));
    let counts = counting.counts.clone();
    // As in AWS: the outbox is relayed from the table's stream, not by the request.
    let config = |c: &mut shared::Config, me: &str| {
        mandarin_config(c, me);
        c.outbox_relay = shared::config::Relay::Stream;
    };
    let (srv, peer) = start(mandarin_peer(), counting, config).await;
    let tok = token("21", &[]);
    let (id, url) = open_session(&srv, &tok).await;
    let tx = url.split("transaction=").nth(1).expect("the peer's userWebLink").to_owned();
    counts.reset();
    assert_eq!(post_to(format!("{}/test/settle/{tx}/success", peer.me)).await, (200, "OK".to_owned()));
    println!("mandarin settlement: {} round trips, {} one after another", counts.total(), counts.depth());
    assert_eq!((counts.total(), counts.depth()), (3, 3));
    assert_eq!(status_of(&srv, &tok, &id).await["status"], "succeeded");
}

async fn mandarin(store: Arc<dyn Store>) {
    let (srv, peer) = start(mandarin_peer(), store, mandarin_config).await;
    let tok = token("21", &[]);
    let (id, url) = open_session(&srv, &tok).await;
    let tx = url.split("transaction=").nth(1).expect("the peer's userWebLink").to_owned();
    assert_eq!(peer.get(&tx).unwrap()["orderId"], id.as_str());
    assert_eq!(peer.get(&tx).unwrap()["price"], "2000.00");

    // Forged callbacks: wrong secret; genuine fields with the status flipped.
    let cb = srv.url("/api/v1/gateways/mandarin/callback");
    let mut fields = pairs(&[
        ("transaction", &tx),
        ("status", "success"),
        ("action", "pay"),
        ("merchantId", MD_MERCHANT),
        ("price", "2000.00"),
        ("orderId", &id),
    ]);
    let mut forged = fields.clone();
    forged.push(("sign".into(), sha256("anything")));
    assert_eq!(post_form(&cb, &forged).await.0, 403);
    fields[1].1 = "failed".into();
    let sign = mandarin_sign(&fields);
    fields[1].1 = "success".into();
    fields.push(("sign".into(), sign));
    assert_eq!(post_form(&cb, &fields).await.0, 403);
    assert_eq!(status_of(&srv, &tok, &id).await["status"], "pending");

    // Genuine callback twice: `OK`, one settlement, one email.
    for _ in 0..2 {
        assert_eq!(post_to(format!("{}/test/settle/{tx}/success", peer.me)).await, (200, "OK".to_owned()));
    }
    let p = status_of(&srv, &tok, &id).await;
    assert_eq!(p["status"], "succeeded");
    assert_eq!(p["metadata"]["qr_codes_issued"], true);
    assert_eq!(sent(&srv, "zoo_tickets").len(), 1);

    // A partial refund honours its amount (`payment.price` of the reversal).
    let r = shared::payments::refunds::refund(&srv.app, &id, dec("500.00"), "one visitor fewer", "900")
        .await
        .unwrap();
    assert_eq!(r.state, shared::payments::refunds::RefundState::Completed);
    assert_eq!(peer.get(&tx).unwrap()["refunded"], "500.00");
    let p = status_of(&srv, &tok, &id).await;
    assert_eq!(
        (p["status"].as_str(), p["refunded_amount"]["value"].as_str()),
        (Some("refunded"), Some("500.00"))
    );

    // Over HTTP, a ticket order's partial refund, then the rest.
    create_event(&srv, "md").await;
    let (order, url) = online_order(&srv, "md", &["s-1-5"], "self_online").await;
    let order_tx = url.split("transaction=").nth(1).unwrap().to_owned();
    assert_eq!(post_to(format!("{}/test/settle/{order_tx}/success", peer.me)).await.0, 200);
    assert_eq!(admin_order(&srv, &order).await["status"], "approved");
    let (status, body) = refund(&srv, &order, "100.00").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(peer.get(&order_tx).unwrap()["refunded"], "100.00");
    assert_eq!(taken_seats(&srv, "md").await.len(), 1);
    let rest = money(dec(peer.get(&order_tx).unwrap()["price"].as_str().unwrap()) - dec("100.00"));
    let (status, body) = refund(&srv, &order, &rest).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(peer.get(&order_tx).unwrap()["refunded"], peer.get(&order_tx).unwrap()["price"]);
    assert!(taken_seats(&srv, "md").await.is_empty());

    // The browser comes back through our return page (`urls.return`), which asks for the status.
    assert_eq!(peer.get(&tx).unwrap()["return"], srv.url(&format!("/api/v1/gateways/return/{id}")).as_str());

    // A deal paid through Mandarin: the consumer comes back to `return?status=success`
    // (seed 003).
    let (supplier, consumer) = (token("41", &[]), token("42", &[]));
    let body = json!({"order": {"order_description": "Лампа", "verify_days": 3, "commission_payer": "consumer",
        "cost": "1000", "supplier_id": "41", "consumer_id": "42"}});
    let (status, created) = srv.post("/api/v1/orders", Some(&supplier), &body).await;
    assert_eq!(status, 201, "{created}");
    let deal = created["order"]["id"].as_i64().unwrap();
    let info = format!("/api/v1/orders/{deal}/payment_info?return=https%3A%2F%2Fshop.example%2Fback");
    let (_, info) = srv.get(&info, Some(&consumer)).await;
    // A callback signed with Mandarin's secret speaks only for Mandarin's payments: one naming
    // the deal's payment through the other gateway (its `gateway_url`) settles nothing.
    let other =
        shared::payments::get(&srv.app, info["gateway_url"].as_str().unwrap().rsplit('/').next().unwrap())
            .await
            .unwrap();
    assert_ne!(other.gateway, GatewayKind::Mandarin);
    let fields = mandarin_signed(pairs(&[
        ("transaction", "elsewhere"),
        ("status", "success"),
        ("action", "pay"),
        ("merchantId", MD_MERCHANT),
        ("price", &money(other.amount)),
        ("orderId", &other.id),
    ]));
    assert_eq!(post_form(&srv.url("/api/v1/gateways/mandarin/callback"), &fields).await.0, 403);
    assert_eq!(shared::payments::get(&srv.app, &other.id).await.unwrap().status, other.status);
    let link = info["mandarin_url"].as_str().expect("a Mandarin link for a consumer with an email");
    let deal_tx = link.split("transaction=").nth(1).unwrap().to_owned();
    assert_eq!(peer.get(&deal_tx).unwrap()["price"], info["consumer_pay"]["mandarin"].to_string().as_str());
    assert_eq!(post_to(format!("{}/test/settle/{deal_tx}/success", peer.me)).await, (200, "OK".to_owned()));
    let (_, d) = srv.get(&format!("/api/v1/orders/{deal}"), Some(&consumer)).await;
    assert_eq!(d["order"]["state"], "paid", "{d}");
    let back = srv.http.get(peer.get(&deal_tx).unwrap()["return"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(back.status(), 303);
    assert_eq!(back.headers()["location"], "https://shop.example/back?status=success");

    // Declined without a callback: the job asks GET /api/transactions/{id}; places come back.
    let (_, a) = srv.post("/v1/payments/sessions", Some(&tok), &session_body(3, "12:00")).await;
    let a_id = a["data"]["payment_id"].as_str().unwrap();
    let a_tx =
        a["data"]["confirmation_url"].as_str().unwrap().split("transaction=").nth(1).unwrap().to_owned();
    assert_eq!(post_to(format!("{}/test/settle/{a_tx}/failed?notify=0", peer.me)).await.0, 200);
    assert_eq!(reserved(&srv, "12:00").await, 3);
    srv.app.clock.advance(chrono::Duration::minutes(16));
    // This one, and the deal's unused card link (cancelled as expired).
    assert_eq!(run(&srv.app, Job::Payments).await.unwrap().changed, 2);
    assert_eq!(status_of(&srv, &tok, a_id).await["status"], "failed");
    assert_eq!(reserved(&srv, "12:00").await, 0);
}

// ---------------------------------------------------------------- SNGB

const SN_TERMINAL: &str = "7000123";
const SN_ALIAS: &str = "7000123-alias";
const SN_SECRET: &str = "sngb-psk";
const SN_TOKEN: &str = "sngb-api-token";

/// The bank's `udf5` of PaymentInitServlet: sha1(merchant . amt . trackid . action . PSK).
fn sn_init_sign(merchant: &str, amt: &str, trackid: &str, action: &str, psk: &str) -> String {
    sha1(&format!("{merchant}{amt}{trackid}{action}{psk}"))
}

/// The bank's `udf5` of PaymentTranServlet: sha1(merchant . amt . trackid . PSK).
fn sn_tran_sign(merchant: &str, amt: &str, trackid: &str, psk: &str) -> String {
    sha1(&format!("{merchant}{amt}{trackid}{psk}"))
}

/// A money string as the bank's REST API writes it: a JSON number.
fn sn_number(amt: &str) -> Value {
    serde_json::from_str(amt).unwrap()
}

/// A fresh transaction id: sixteen digits, as the bank's.
fn sn_tranid(p: &Peer) -> String {
    let n = p.get("#tranids").and_then(|v| v.as_u64()).unwrap_or(0) + 1;
    p.set("#tranids", json!(n));
    format!("{}", 3_031_783_261_980_000u64 + n)
}

/// The bank captures `amount` (default: the amount initialised) on payment `pid`: an
/// authorization and a capture in its transaction list. Answers the capture's tranid.
fn sn_capture(p: &Peer, pid: &str, amount: Option<&str>) -> String {
    let mut r = p.get(pid).unwrap();
    if let Some(capture) = r["capture"].as_str() {
        return capture.to_owned();
    }
    let amt = amount.map(str::to_owned).unwrap_or_else(|| r["amt"].as_str().unwrap().to_owned());
    let (auth, capture) = (sn_tranid(p), sn_tranid(p));
    r["captured"] = json!(amt);
    r["capture"] = json!(capture);
    for (tranid, result, action) in [(&auth, "APPROVED", "authorization"), (&capture, "CAPTURED", "capture")]
    {
        let t = json!({ "result": result, "tranid": sn_number(tranid), "track": r["trackid"], "transdt": 1_523_284_019_093u64, "action": action, "amount": sn_number(&amt), "orderid": sn_number(pid) });
        r["trans"].as_array_mut().unwrap().push(t);
    }
    p.set(pid, r);
    capture
}

/// The bank records a credit of `amt` on payment `pid` (once per tranid); `udf5` is what a
/// notice of it will carry.
fn sn_credit(p: &Peer, pid: &str, tranid: &str, amt: &str, udf5: &str) {
    let mut r = p.get(pid).unwrap();
    if r["trans"].as_array().unwrap().iter().any(|t| t["tranid"].to_string().trim_matches('"') == tranid) {
        return;
    }
    r["refunded"] = json!(money(dec(r["refunded"].as_str().unwrap()) + dec(amt)));
    let t = json!({ "result": "CAPTURED", "tranid": tranid, "track": r["trackid"], "transdt": 1_523_284_099_093u64, "action": "credit", "amount": sn_number(amt), "orderid": sn_number(pid), "udf5": udf5 });
    r["trans"].as_array_mut().unwrap().push(t);
    p.set(pid, r);
}

fn sngb_peer() -> Router<Peer> {
    /// The REST API's basic auth: the token as user, an empty password.
    fn authorized(h: &HeaderMap) -> bool {
        let want =
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{SN_TOKEN}:")));
        h.get("authorization").and_then(|v| v.to_str().ok()) == Some(want.as_str())
    }
    /// PaymentInitServlet: the library's fields; answers the payment page URL (or, as the
    /// bank does, a URL carrying `error=CGW...`).
    async fn init(State(p): State<Peer>, body: Bytes) -> impl IntoResponse {
        let f = parse_form(&body);
        let error =
            |code: &str, text: &str| format!("{}/ECommerce/error.jsp?error={code}&errortext={text}", p.me);
        if f["merchant"] != SN_TERMINAL || f["terminal"] != SN_ALIAS || f["action"] != "1" {
            return error("CGW000001", "Invalid%20terminal");
        }
        if shared::money::parse_strict(&f["amt"]).is_none() {
            return error("CGW000040", "Invalid%20amount");
        }
        if f["udf5"] != sn_init_sign(&f["merchant"], &f["amt"], &f["trackid"], &f["action"], SN_SECRET) {
            return error("CGW000156", "Invalid%20udf5");
        }
        let pid = format!("{}", 6_860_031_491_873_000u64 + p.records.lock().unwrap().len() as u64);
        p.set(&pid, json!({ "trackid": f["trackid"], "amt": f["amt"], "udf5": f["udf5"], "refunded": "0.00", "trans": [] }));
        format!(
            "{}/ECommerce/hppaction?formAction=com.aciworldwide.commerce.gateway.payment.action.HostedPaymentPageAction&PaymentID={pid}\r\n",
            p.me
        )
    }
    /// `/v1/payments/{paymentid}`
    async fn payments(State(p): State<Peer>, Path(pid): Path<String>, h: HeaderMap) -> impl IntoResponse {
        if !authorized(&h) {
            return (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": "unauthorized"})));
        }
        let data = match p.get(&pid) {
            None => vec![],
            Some(r) => {
                let captured = r["captured"].as_str();
                let refunded = dec(r["refunded"].as_str().unwrap());
                vec![json!({
                    "authorization": captured.is_some(),
                    "captured": captured.is_some(),
                    "refunded": captured.is_some_and(|c| refunded > Decimal::ZERO && refunded == dec(c)),
                    "created": 1_512_467_655_718u64,
                    "tranid": r["capture"].as_str().unwrap_or(""),
                    "track": r["trackid"],
                    "id": sn_number(&pid),
                    "amount": sn_number(captured.unwrap_or(r["amt"].as_str().unwrap())),
                    "currency": "rub",
                    "object": "payment",
                    "livemode": false,
                })]
            }
        };
        let count = data.len().to_string();
        (
            StatusCode::OK,
            axum::Json(
                json!({ "data": data, "count": count, "url": "/ECommerce/v1/payments", "object": "list" }),
            ),
        )
    }
    /// `/v1/transactions/{paymentid}`
    async fn transactions(State(p): State<Peer>, Path(pid): Path<String>, h: HeaderMap) -> impl IntoResponse {
        if !authorized(&h) {
            return (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": "unauthorized"})));
        }
        let list = p.get(&pid).map(|r| r["trans"].clone()).unwrap_or(json!([]));
        (StatusCode::OK, axum::Json(json!({ "tranlist": list, "object": "list" })))
    }
    /// PaymentTranServlet: a credit (`action=2`) of `amt` against the CAPTURED `tranid`,
    /// `udf5` without the action.
    async fn tran(State(p): State<Peer>, body: Bytes) -> impl IntoResponse {
        let f = parse_form(&body);
        let error = |code: &str, text: &str| format!("error={code}&errortext={text}");
        if f["merchant"] != SN_TERMINAL || f["terminal"] != SN_ALIAS || f["action"] != "2" {
            return error("CGW000001", "Invalid terminal");
        }
        if f["udf5"] != sn_tran_sign(&f["merchant"], &f["amt"], &f["trackid"], SN_SECRET) {
            return error("CGW000156", "Invalid udf5");
        }
        let Some(r) = p.get(&f["paymentid"]).filter(|r| r["trackid"] == f["trackid"].as_str()) else {
            return error("CGW000157", "Unknown payment");
        };
        if r["capture"].as_str() != Some(f["tranid"].as_str()) {
            return error("CGW000316", "Batch Transaction Processing Not Enabled for Terminal");
        }
        let left = dec(r["captured"].as_str().unwrap_or("0.00")) - dec(r["refunded"].as_str().unwrap());
        if dec(&f["amt"]) > left {
            return "result=NOT APPROVED&responsecode=13".to_owned();
        }
        let tranid = sn_tranid(&p);
        sn_credit(&p, &f["paymentid"], &tranid, &f["amt"], &f["udf5"]);
        if p.get("#no_tranid").is_some() {
            // An answer that leaves the credit's tranid out (its notice names it).
            return format!(
                "result=CAPTURED&responsecode=00&paymentid={}&trackid={}",
                f["paymentid"], f["trackid"]
            );
        }
        format!(
            "result=CAPTURED&responsecode=00&paymentid={}&trackid={}&tranid={tranid}",
            f["paymentid"], f["trackid"]
        )
    }
    /// The bank side. `/test/notify/{pid}/CAPTURED` captures the payment (`captured=` another
    /// amount) and posts the notification (`udf5` echoed from the init) to our notify URL, as
    /// registered in the merchant cabinet; another result posts a decline. With `action=2`,
    /// a credit made at the bank (`amt`, `tranid`; without them, the last credit) posted to
    /// `sngb_tran`, carrying the credit's PaymentTranServlet `udf5`, or the payment's own for
    /// one made at the bank.
    async fn notify(
        State(p): State<Peer>,
        Path((pid, result)): Path<(String, String)>,
        uri: Uri,
    ) -> impl IntoResponse {
        let q = parse_form(uri.query().unwrap_or("").as_bytes());
        let r = p.get(&pid).unwrap();
        let (trackid, init_udf5) =
            (r["trackid"].as_str().unwrap().to_owned(), r["udf5"].as_str().unwrap().to_owned());
        let mut fields =
            pairs(&[("paymentid", &pid), ("trackid", &trackid), ("auth", "999999"), ("udf1", "")]);
        let url = if q.get("action").map(String::as_str) == Some("2") {
            let (tranid, amt) = match (q.get("tranid"), q.get("amt")) {
                (Some(t), Some(a)) => {
                    sn_credit(&p, &pid, t, a, &init_udf5);
                    (t.clone(), a.clone())
                }
                _ => {
                    let last = r["trans"].as_array().unwrap().last().unwrap().clone();
                    (last["tranid"].as_str().unwrap().to_owned(), money(dec(&last["amount"].to_string())))
                }
            };
            let credit = p.get(&pid).unwrap()["trans"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["tranid"] == tranid.as_str())
                .cloned()
                .unwrap();
            fields.extend(pairs(&[
                ("tranid", &tranid),
                ("result", &result),
                ("responsecode", "00"),
                ("action", "2"),
                ("amt", &amt),
                ("udf5", credit["udf5"].as_str().unwrap()),
            ]));
            format!("{}/api/v1/gateways/sngb/tran", p.ours())
        } else {
            let tranid = if result == "CAPTURED" {
                sn_capture(&p, &pid, q.get("captured").map(String::as_str))
            } else {
                sn_tranid(&p)
            };
            let code = if result == "CAPTURED" { "00" } else { "05" };
            fields.extend(pairs(&[
                ("tranid", &tranid),
                ("result", &result),
                ("responsecode", code),
                ("udf5", &init_udf5),
            ]));
            format!("{}/api/v1/gateways/sngb/notify", p.ours())
        };
        let (s, body) = post_form(&url, &fields).await;
        (StatusCode::from_u16(s).unwrap(), body)
    }
    Router::new()
        .route("/ECommerce/PaymentInitServlet", post(init))
        .route("/ECommerce/PaymentTranServlet", post(tran))
        .route("/ECommerce/v1/payments/{pid}", get(payments))
        .route("/ECommerce/v1/transactions/{pid}", get(transactions))
        .route("/test/notify/{pid}/{result}", post(notify))
}

fn sngb_config(c: &mut shared::Config, me: &str) {
    c.payments.zoo_gateway = GatewayKind::Sngb;
    c.payments.tickets_gateway = GatewayKind::Sngb;
    c.payments.sngb = shared::payments::gateways::sngb::Config {
        terminal_id: SN_TERMINAL.into(),
        terminal_alias: SN_ALIAS.into(),
        secret: SN_SECRET.into(),
        token: SN_TOKEN.into(),
        base_url: format!("{me}/ECommerce"),
    };
}

#[tokio::test]
async fn memory_sngb() {
    sngb(api_tests::memory_store()).await;
}

#[tokio::test]
async fn dynamo_sngb() {
    let Some(store) = api_tests::dynamo_store().await else { return };
    sngb(store).await;
}

/// The bank's payment id of a payment page URL.
/// A refund completed without the bank's reference for its credit (an answer without the
/// `tranid`; a refund marked done by hand) is the one the bank's notice of that credit reports:
/// it takes the reference, and nothing is counted twice; another credit of the same amount is a
/// refund of its own.
#[tokio::test]
async fn a_refund_completed_without_its_reference_is_not_counted_twice() {
    let (srv, peer) = start(sngb_peer(), api_tests::memory_store(), sngb_config).await;
    create_event(&srv, "sr").await;
    let (order, url) = online_order(&srv, "sr", &["s-1-1", "s-1-2"], "email_online").await;
    let pid = sn_pid(&url);
    assert_eq!(post_to(format!("{}/test/notify/{pid}/CAPTURED", peer.me)).await.0, 200);
    assert_eq!(admin_order(&srv, &order).await["status"], "approved");
    peer.set("#no_tranid", json!(true));
    let (status, body) = refund(&srv, &order, "100.00").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(peer.get(&pid).unwrap()["refunded"], "100.00");
    // The bank's notice of that credit (its last), twice.
    for _ in 0..2 {
        let (s, body) = post_to(format!("{}/test/notify/{pid}/CAPTURED?action=2", peer.me)).await;
        assert_eq!((s, body.as_str()), (200, "OK"));
    }
    let o = admin_order(&srv, &order).await;
    assert_eq!(
        (o["status"].as_str(), dec(&o["refunded"].to_string()), o["refunds"].as_array().unwrap().len()),
        (Some("approved"), dec("100.00"), 1),
        "{o}"
    );
    let payment = payment_of(&srv, &order).await;
    let p = shared::payments::get(&srv.app, &payment).await.unwrap();
    assert_eq!(p.refunded_amount, dec("100.00"));
    assert_eq!(taken_seats(&srv, "sr").await.len(), 2);
    // Another credit made at the bank, of the same amount: a refund of its own.
    let path = format!("{}/test/notify/{pid}/CAPTURED?action=2&amt=100.00&tranid=T7", peer.me);
    assert_eq!(post_to(path).await.0, 200);
    let o = admin_order(&srv, &order).await;
    assert_eq!(
        (dec(&o["refunded"].to_string()), o["refunds"].as_array().unwrap().len()),
        (dec("200.00"), 2),
        "{o}"
    );
}

/// A manager's discount registers an SNGB payment again (a new bank page for the new amount);
/// the buyer pays the first page anyway. The bank's notice of it (its `udf5` signed for the old
/// amount) is taken, not refused as forged: the money is recorded as a wrong sum and returned
/// through the page it was paid on, the manager told.
#[tokio::test]
async fn sngb_a_page_paid_from_before_a_discount_is_recorded_and_returned() {
    let (srv, peer) = start(sngb_peer(), api_tests::memory_store(), sngb_config).await;
    let tok = token("21", &[]);
    let (id, url) = open_session(&srv, &tok).await;
    let first = sn_pid(&url);
    discount(&srv, &id, "1500.00").await;
    let second = shared::payments::get(&srv.app, &id).await.unwrap();
    assert_eq!(second.amount, dec("1500.00"));
    assert_ne!(second.gateway_ref.as_deref(), Some(first.as_str()), "a new page");

    // Paid on the first page (2000.00), twice notified.
    for _ in 0..2 {
        let (s, body) = post_to(format!("{}/test/notify/{first}/CAPTURED", peer.me)).await;
        assert_eq!(s, 200, "taken, not refused as forged: {body}");
    }
    let p = shared::payments::get(&srv.app, &id).await.unwrap();
    assert!(p.anomaly.is_some(), "recorded as a wrong sum: {p:?}");
    assert_eq!(
        refund_states(&srv, &id).await,
        [(dec("2000.00"), shared::payments::refunds::RefundState::Completed)],
        "returned through the page it was paid on, once"
    );
    assert_eq!(peer.get(&first).unwrap()["refunded"], "2000.00");
    assert_eq!(sent(&srv, "payment_mismatch").len(), 1);
    assert_eq!(sent(&srv, "zoo_tickets").len(), 0, "no tickets for a wrong sum");

    // Paid on the page from before a discount, the notice lost: when the payment's time is up,
    // the reconciliation job asks the bank about that page too.
    let (s, other) = srv.post("/v1/payments/sessions", Some(&tok), &session_body(1, "12:00")).await;
    assert_eq!(s, 201, "{other}");
    let other_id = other["data"]["payment_id"].as_str().unwrap().to_owned();
    let other_first = sn_pid(other["data"]["confirmation_url"].as_str().unwrap());
    discount(&srv, &other_id, "900.00").await;
    sn_capture(&peer, &other_first, None);
    srv.app.clock.advance(chrono::Duration::minutes(16));
    run(&srv.app, Job::Payments).await.unwrap();
    let p = shared::payments::get(&srv.app, &other_id).await.unwrap();
    assert!(p.anomaly.is_some(), "recorded as a wrong sum: {p:?}");
    assert_eq!(
        refund_states(&srv, &other_id).await,
        [(dec("1000.00"), shared::payments::refunds::RefundState::Completed)]
    );
    assert_eq!(peer.get(&other_first).unwrap()["refunded"], "1000.00");
}

fn sn_pid(url: &str) -> String {
    url.split("PaymentID=").nth(1).unwrap().to_owned()
}

async fn sngb(store: Arc<dyn Store>) {
    let (srv, peer) = start(sngb_peer(), store, sngb_config).await;
    let tok = token("21", &[]);
    let (id, url) = open_session(&srv, &tok).await;
    assert!(url.starts_with(&format!("{}/ECommerce/hppaction?formAction=", peer.me)), "{url}");
    let pid = sn_pid(&url);
    let r = peer.get(&pid).unwrap();
    assert_eq!((r["trackid"].as_str(), r["amt"].as_str()), (Some(id.as_str()), Some("2000.00")));
    let udf5 = sn_init_sign(SN_TERMINAL, "2000.00", &id, "1", SN_SECRET);
    assert_eq!(r["udf5"], udf5.as_str());

    // Forged notifications (udf5 by the bank's formula with a guessed PSK, or over another
    // amount): rejected, nothing changes.
    let notify = srv.url("/api/v1/gateways/sngb/notify");
    let claim = |udf5: &str| {
        pairs(&[
            ("paymentid", &pid),
            ("trackid", &id),
            ("tranid", "3031783261980999"),
            ("result", "CAPTURED"),
            ("responsecode", "00"),
            ("udf5", udf5),
        ])
    };
    for forged in [
        sn_init_sign(SN_TERMINAL, "2000.00", &id, "1", "guess"),
        sn_init_sign(SN_TERMINAL, "1.00", &id, "1", SN_SECRET),
    ] {
        let (s, body) = post_form(&notify, &claim(&forged)).await;
        assert_eq!(s, 403);
        assert_eq!(body, format!("REDIRECT={}", srv.url("/api/v1/gateways/sngb/error")));
    }
    // A notice with the payment's own udf5 that says paid while the bank captured nothing:
    // taken (it is not a forgery), but the bank's record decides: still open.
    let (s, body) = post_form(&notify, &claim(&udf5)).await;
    assert_eq!((s, body), (200, format!("REDIRECT={}", srv.url(&format!("/api/v1/gateways/return/{id}")))));
    assert_eq!(status_of(&srv, &tok, &id).await["status"], "pending");
    // An error notification changes nothing either.
    let error =
        pairs(&[("paymentid", &pid), ("trackid", &id), ("Error", "GW00160"), ("ErrorText", "Invalid Brand")]);
    let (s, body) = post_form(&notify, &error).await;
    let page = srv.url(&format!("/api/v1/gateways/sngb/error?payment_id={id}&code=GW00160"));
    assert_eq!((s, body.clone()), (200, format!("REDIRECT={page}")));
    assert_eq!(status_of(&srv, &tok, &id).await["status"], "pending");
    assert!(sent(&srv, "zoo_tickets").is_empty());
    // The page exists and tells the buyer why, with the way back to the shop.
    let res = reqwest::get(&page).await.unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("Оплата не прошла") && html.contains("код ошибки GW00160"), "{html}");
    assert!(html.contains("href=\"https://zoo.example/cancel\""), "{html}");
    let spoofed = reqwest::get(srv.url("/api/v1/gateways/sngb/error?code=%3Cscript%3Ealert(1)%3C/script%3E"))
        .await
        .unwrap();
    let html = spoofed.text().await.unwrap();
    assert!(!html.contains("<script") && html.contains("код ошибки scriptalert1scri)"), "{html}");

    // Genuine notification twice: REDIRECT to our return, one settlement, one email.
    let mut redirect = String::new();
    for _ in 0..2 {
        let (s, body) = post_to(format!("{}/test/notify/{pid}/CAPTURED", peer.me)).await;
        assert_eq!(s, 200);
        redirect = body;
    }
    assert_eq!(redirect, format!("REDIRECT={}", srv.url(&format!("/api/v1/gateways/return/{id}"))));
    assert_eq!(status_of(&srv, &tok, &id).await["status"], "succeeded");
    assert_eq!(sent(&srv, "zoo_tickets").len(), 1);
    // The buyer's browser follows it and lands on the return URL.
    let res = srv.http.get(redirect.trim_start_matches("REDIRECT=")).send().await.unwrap();
    assert_eq!(res.headers()["location"], "https://zoo.example/ok");

    // Our refund (PaymentTranServlet against the CAPTURED tranid), then the bank's tran
    // notification of it: counted once.
    let r = shared::payments::refunds::refund(&srv.app, &id, dec("2000.00"), "test", "900").await.unwrap();
    assert_eq!(r.state, shared::payments::refunds::RefundState::Completed);
    assert_eq!(peer.get(&pid).unwrap()["refunded"], "2000.00");
    let credit = peer.get(&pid).unwrap()["trans"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(credit["udf5"], sn_tran_sign(SN_TERMINAL, "2000.00", &id, SN_SECRET).as_str());
    assert_eq!(r.gateway_ref.as_deref(), credit["tranid"].as_str());
    assert_eq!(post_to(format!("{}/test/notify/{pid}/CAPTURED?action=2", peer.me)).await.1, "OK");
    let p = status_of(&srv, &tok, &id).await;
    assert_eq!(
        (p["status"].as_str(), p["refunded_amount"]["value"].as_str()),
        (Some("refunded"), Some("2000.00"))
    );

    // The bank captured 1.00 of 1000.00: the notice is genuine, the record says 1.00, so the
    // session is not advanced (no tickets, its places back), the 1.00 goes back through
    // PaymentTranServlet, the manager and the buyer are told.
    let (_, small) = srv.post("/v1/payments/sessions", Some(&tok), &session_body(1, "11:00")).await;
    let small_id = small["data"]["payment_id"].as_str().unwrap().to_owned();
    let small_pid = sn_pid(small["data"]["confirmation_url"].as_str().unwrap());
    assert_eq!(reserved(&srv, "11:00").await, 1);
    let answer = post_to(format!("{}/test/notify/{small_pid}/CAPTURED?captured=1.00", peer.me)).await;
    assert_eq!(answer.0, 200, "the notice is taken: it is genuine");
    let p = status_of(&srv, &tok, &small_id).await;
    assert_eq!(
        (p["status"].as_str(), p["refunded_amount"]["value"].as_str()),
        (Some("refunded"), Some("1.00")),
        "{p}"
    );
    assert!(p["tickets"].as_array().unwrap().is_empty(), "no tickets for 1.00");
    assert_eq!(reserved(&srv, "11:00").await, 0, "the places are free again");
    assert_eq!(peer.get(&small_pid).unwrap()["refunded"], "1.00", "refunded through PaymentTranServlet");
    let mismatch = sent(&srv, "payment_mismatch");
    assert_eq!(mismatch.len(), 1);
    assert!(read(&mismatch[0]).0.contains("получено 1.00"), "{}", read(&mismatch[0]).0);
    assert_eq!(sent(&srv, "payment_returned").len(), 1);
    assert_eq!(sent(&srv, "zoo_tickets").len(), 1);
    // Repeated, the notice changes nothing more.
    assert_eq!(post_to(format!("{}/test/notify/{small_pid}/CAPTURED?captured=1.00", peer.me)).await.0, 200);
    assert_eq!(peer.get(&small_pid).unwrap()["refunded"], "1.00");
    assert_eq!(sent(&srv, "payment_returned").len(), 1);

    // Refunds made at the bank reach a ticket order (`sngb_tran`): a part, the same notice
    // again, then the rest, which frees the seats.
    create_event(&srv, "sn").await;
    let (order, url) = online_order(&srv, "sn", &["s-1-1", "s-1-2"], "email_online").await;
    let order_pid = sn_pid(&url);
    assert_eq!(post_to(format!("{}/test/notify/{order_pid}/CAPTURED", peer.me)).await.0, 200);
    assert_eq!(admin_order(&srv, &order).await["status"], "approved");
    let total = dec(peer.get(&order_pid).unwrap()["amt"].as_str().unwrap());
    for _ in 0..2 {
        let (s, body) =
            post_to(format!("{}/test/notify/{order_pid}/CAPTURED?action=2&amt=500.00&tranid=T1", peer.me))
                .await;
        assert_eq!((s, body.as_str()), (200, "OK"));
    }
    let o = admin_order(&srv, &order).await;
    assert_eq!(
        (o["status"].as_str(), dec(&o["refunded"].to_string())),
        (Some("approved"), dec("500.00")),
        "a part: the tickets stay valid: {o}"
    );
    assert_eq!(o["refunds"].as_array().unwrap().len(), 1, "the repeated notice is the same refund");
    assert_eq!(taken_seats(&srv, "sn").await.len(), 2);
    // A credit notice the bank's transaction list does not show: not taken (503), nothing
    // recorded.
    let listed = pairs(&[
        ("paymentid", &order_pid),
        ("trackid", &payment_of(&srv, &order).await),
        ("tranid", "T9"),
        ("result", "CAPTURED"),
        ("responsecode", "00"),
        ("action", "2"),
        ("amt", "100.00"),
        ("udf5", peer.get(&order_pid).unwrap()["udf5"].as_str().unwrap()),
    ]);
    assert_eq!(post_form(&srv.url("/api/v1/gateways/sngb/tran"), &listed).await.0, 503);
    assert_eq!(dec(&admin_order(&srv, &order).await["refunded"].to_string()), dec("500.00"));
    let rest = money(total - dec("500.00"));
    let path = format!("{}/test/notify/{order_pid}/CAPTURED?action=2&amt={rest}&tranid=T2", peer.me);
    assert_eq!(post_to(path).await.0, 200);
    let o = admin_order(&srv, &order).await;
    assert_eq!((o["status"].as_str(), dec(&o["refunded"].to_string())), (Some("refunded"), total), "{o}");
    assert!(taken_seats(&srv, "sn").await.is_empty(), "a whole refund frees the seats");
    assert_eq!(sent(&srv, "refund").len(), 2, "the buyer is told of each refund once");

    // Paid at the bank, notification lost: the job asks the REST status.
    let (_, c) = srv.post("/v1/payments/sessions", Some(&tok), &session_body(1, "12:00")).await;
    let c_id = c["data"]["payment_id"].as_str().unwrap().to_owned();
    let c_pid = sn_pid(c["data"]["confirmation_url"].as_str().unwrap());
    sn_capture(&peer, &c_pid, None);
    srv.app.clock.advance(chrono::Duration::minutes(16));
    assert_eq!(run(&srv.app, Job::Payments).await.unwrap().changed, 1);
    assert_eq!(status_of(&srv, &tok, &c_id).await["status"], "succeeded");
}
