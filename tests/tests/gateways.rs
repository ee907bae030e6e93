//! The real gateway adapters against local HTTP peers on 127.0.0.1 that speak each
//! gateway's protocol: they check what we send (signatures, X-Auth, passwords), answer
//! create/status/refund requests, and post signed callbacks to our server the way the
//! gateway would. Forged callbacks are rejected and change nothing; a genuine callback
//! delivered twice settles once and sends one email; reconciliation finishes a payment
//! whose callback never came.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use api_tests::{SECRET, TestServer, memory_store, token};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use md5::Md5;
use serde_json::{Value, json};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use shared::App;
use shared::jobs::{Job, run};
use shared::payments::GatewayKind;
use shared::payments::gateway::parse_form;

fn md5(s: &str) -> String {
    hex::encode(Md5::digest(s.as_bytes()))
}
fn sha256(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}
fn sha1(s: &str) -> String {
    hex::encode(Sha1::digest(s.as_bytes()))
}

fn session_body(qty: i64, hour: &str) -> Value {
    let date = (chrono::Utc::now() + chrono::Duration::days(20)).format("%Y-%m-%d").to_string();
    json!({
        "session_id": "s1",
        "order": {
            "order_id": "ZT-1",
            "total_amount": { "value": format!("{}.00", 1000 * qty), "currency": "RUB" },
            "items": [{ "ticket_type": "adult", "quantity": qty, "unit_price": { "value": "1000.00", "currency": "RUB" },
                        "visit_date": date, "visit_time": hour }]
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
}

/// Binds a peer, lets `configure` point our config at it, starts our server, then serves the peer.
async fn start(
    router: Router<Peer>,
    configure: impl FnOnce(&mut shared::Config, &str),
) -> (TestServer, Peer) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let me = format!("http://{}", listener.local_addr().unwrap());
    let peer = Peer { me: me.clone(), ..Peer::default() };
    let mut config = shared::Config::for_tests();
    config.jwt_secret = SECRET.into();
    configure(&mut config, &me);
    let srv = TestServer::start_with(App::new(memory_store(), config)).await;
    *peer.ours.lock().unwrap() = srv.base.clone();
    let app = router.with_state(peer.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (srv, peer)
}

async fn post_form(url: &str, fields: &[(String, String)]) -> (u16, String) {
    let res = reqwest::Client::new().post(url).form(fields).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn status_of(srv: &TestServer, tok: &str, id: &str) -> Value {
    let (s, b) = srv.get(&format!("/v1/payments/{id}"), Some(tok)).await;
    assert_eq!(s, 200, "{b}");
    b["data"].clone()
}

fn emails(srv: &TestServer) -> usize {
    srv.app.local_outbox.as_ref().unwrap().messages().len()
}

// ---------------------------------------------------------------- Robokassa

const RK_LOGIN: &str = "zoo-shop";
const RK_P1: &str = "password-one";
const RK_P2: &str = "password-two";

fn robokassa_peer() -> Router<Peer> {
    async fn index(State(p): State<Peer>, uri: Uri) -> impl IntoResponse {
        let q = parse_form(uri.query().unwrap_or("").as_bytes());
        let (sum, inv, id) = (&q["OutSum"], &q["InvId"], &q["Shp_payment_id"]);
        let expected = md5(&format!("{}:{sum}:{inv}:{RK_P1}:Shp_payment_id={id}", q["MerchantLogin"]));
        if q["MerchantLogin"] != RK_LOGIN || q["SignatureValue"] != expected {
            return (StatusCode::BAD_REQUEST, "bad signature".to_owned());
        }
        p.set(inv, json!({ "sum": sum, "id": id, "state": 5 }));
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
                "<?xml version=\"1.0\" encoding=\"utf-8\"?><OperationStateResponse><Result><Code>0</Code></Result><State><Code>{}</Code><RequestDate>2026-01-01T00:00:00</RequestDate></State><Info><IncCurrLabel>BankCardPSR</IncCurrLabel><OutSum>{}</OutSum></Info></OperationStateResponse>",
                r["state"],
                r["sum"].as_str().unwrap()
            ),
        }
    }
    /// The bank side: the buyer paid; notify ResultURL unless `notify=0`.
    async fn pay(State(p): State<Peer>, Path(inv): Path<String>, uri: Uri) -> impl IntoResponse {
        let mut r = p.get(&inv).unwrap();
        r["state"] = json!(100);
        p.set(&inv, r.clone());
        if uri.query() == Some("notify=0") {
            return (StatusCode::OK, String::new());
        }
        let sum = format!("{}0000", r["sum"].as_str().unwrap()); // Robokassa sends six decimals
        let id = r["id"].as_str().unwrap();
        let sig = md5(&format!("{sum}:{inv}:{RK_P2}:Shp_payment_id={id}")).to_uppercase();
        let fields: Vec<(String, String)> = [
            ("OutSum", sum.as_str()),
            ("InvId", inv.as_str()),
            ("SignatureValue", sig.as_str()),
            ("Shp_payment_id", id),
            ("PaymentMethod", "BankCard"),
            ("Fee", "0.00"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let (s, body) = post_form(&format!("{}/api/v1/gateways/robokassa/result", p.ours()), &fields).await;
        (StatusCode::from_u16(s).unwrap(), body)
    }
    Router::new()
        .route("/Merchant/Index.aspx", get(index))
        .route("/Merchant/WebService/Service.asmx/OpStateExt", get(op_state))
        .route("/test/pay/{inv}", post(pay))
}

#[tokio::test]
async fn robokassa_link_result_url_op_state_ext() {
    let (srv, peer) = start(robokassa_peer(), |c, me| {
        c.payments.zoo_gateway = GatewayKind::Robokassa;
        c.payments.robokassa = shared::payments::gateways::robokassa::Config {
            login: RK_LOGIN.into(),
            password1: RK_P1.into(),
            password2: RK_P2.into(),
            base_url: me.into(),
            ..Default::default()
        };
    })
    .await;
    let tok = token("21", &[]);
    let (s, created) = srv.post("/v1/payments/sessions", Some(&tok), &session_body(2, "10:00")).await;
    assert_eq!(s, 201, "{created}");
    let id = created["data"]["payment_id"].as_str().unwrap().to_owned();
    let url = created["data"]["confirmation_url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/Merchant/Index.aspx?", peer.me)), "{url}");
    // The peer accepts our Password1 signature.
    let page = reqwest::get(url).await.unwrap();
    assert_eq!(page.status(), 200, "{}", page.text().await.unwrap());
    let inv = id.trim_start_matches("ZT_").to_owned();
    assert_eq!(peer.get(&inv).unwrap()["sum"], "2000.00");

    // Forged ResultURL calls: wrong password, tampered amount. Nothing changes.
    let forged = |sum: &str, sig: String| {
        vec![
            ("OutSum".to_owned(), sum.to_owned()),
            ("InvId".to_owned(), inv.clone()),
            ("SignatureValue".to_owned(), sig),
            ("Shp_payment_id".to_owned(), id.clone()),
        ]
    };
    let result_url = srv.url("/api/v1/gateways/robokassa/result");
    let bad = forged("2000.00", md5(&format!("2000.00:{inv}:guess:Shp_payment_id={id}")));
    assert_eq!(post_form(&result_url, &bad).await.0, 403);
    let tampered = forged("1.00", md5(&format!("2000.00:{inv}:{RK_P2}:Shp_payment_id={id}")));
    assert_eq!(post_form(&result_url, &tampered).await.0, 403);
    assert_eq!(status_of(&srv, &tok, &id).await["status"], "pending");

    // The genuine callback, twice: `OK{InvId}` both times, one settlement, one email.
    for _ in 0..2 {
        let res = reqwest::Client::new().post(format!("{}/test/pay/{inv}", peer.me)).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.text().await.unwrap(), format!("OK{inv}"));
    }
    let p = status_of(&srv, &tok, &id).await;
    assert_eq!(p["status"], "succeeded");
    assert_eq!(p["payment_method"], "BankCard");
    // The buyer's browser back on SuccessURL: redirected to the session's return URL.
    let res = srv
        .http
        .get(srv.url(&format!("/api/v1/gateways/robokassa/success?InvId={inv}&OutSum=2000.00")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "https://zoo.example/ok");
    assert_eq!(p["tickets"].as_array().unwrap().len(), 2);
    assert_eq!(emails(&srv), 1);

    // Paid without a callback, and never paid: the job asks OpStateExt.
    let (_, a) = srv.post("/v1/payments/sessions", Some(&tok), &session_body(1, "11:00")).await;
    let (_, b) = srv.post("/v1/payments/sessions", Some(&tok), &session_body(1, "11:00")).await;
    let (paid, abandoned) =
        (a["data"]["payment_id"].as_str().unwrap(), b["data"]["payment_id"].as_str().unwrap());
    for x in [&a, &b] {
        reqwest::get(x["data"]["confirmation_url"].as_str().unwrap()).await.unwrap();
    }
    let res = reqwest::Client::new()
        .post(format!("{}/test/pay/{}?notify=0", peer.me, &paid[3..]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    srv.app.clock.advance(chrono::Duration::minutes(16));
    let r = run(&srv.app, Job::Payments).await.unwrap();
    assert_eq!((r.examined, r.changed), (2, 2));
    assert_eq!(status_of(&srv, &tok, paid).await["status"], "succeeded");
    assert_eq!(status_of(&srv, &tok, abandoned).await["status"], "canceled");
    assert_eq!(emails(&srv), 2);
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
                p.set(&tx, json!({ "orderId": b["payment"]["orderId"], "price": b["payment"]["price"], "status": "processing",
                                   "email": b["customerInfo"]["email"] }));
                let link = format!("{}/Pay?transaction={tx}", p.me);
                (StatusCode::OK, axum::Json(json!({ "id": tx, "userWebLink": link })))
            }
            Some("reversal") => {
                let target = b["target"]["transaction"].as_str().unwrap().to_owned();
                let mut r = p.get(&target).unwrap();
                r["status"] = json!("refunded");
                p.set(&target, r);
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
        let mut fields: Vec<(String, String)> = [
            ("transaction", tx.as_str()),
            ("status", outcome.as_str()),
            ("action", "pay"),
            ("merchantId", MD_MERCHANT),
            ("price", r["price"].as_str().unwrap()),
            ("orderId", r["orderId"].as_str().unwrap()),
            ("customer_email", r["email"].as_str().unwrap()),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let sign = mandarin_sign(&fields);
        fields.push(("sign".into(), sign));
        let (s, body) = post_form(&format!("{}/api/v1/gateways/mandarin/callback", p.ours()), &fields).await;
        (StatusCode::from_u16(s).unwrap(), body)
    }
    Router::new()
        .route("/api/transactions", post(transactions))
        .route("/api/transactions/{tx}", get(status))
        .route("/test/settle/{tx}/{outcome}", post(pay))
}

#[tokio::test]
async fn mandarin_x_auth_callback_status_refund() {
    let (srv, peer) = start(mandarin_peer(), |c, me| {
        c.payments.zoo_gateway = GatewayKind::Mandarin;
        c.payments.mandarin = shared::payments::gateways::mandarin::Config {
            merchant_id: MD_MERCHANT.into(),
            secret: MD_SECRET.into(),
            base_url: me.into(),
        };
    })
    .await;
    let tok = token("21", &[]);
    let (s, created) = srv.post("/v1/payments/sessions", Some(&tok), &session_body(2, "10:00")).await;
    assert_eq!(s, 201, "{created}");
    let id = created["data"]["payment_id"].as_str().unwrap().to_owned();
    let url = created["data"]["confirmation_url"].as_str().unwrap();
    let tx = url.split("transaction=").nth(1).expect("the peer's userWebLink").to_owned();
    assert_eq!(peer.get(&tx).unwrap()["orderId"], id.as_str());
    assert_eq!(peer.get(&tx).unwrap()["price"], "2000.00");

    // Forged callbacks: wrong secret; genuine fields with the status flipped.
    let cb = srv.url("/api/v1/gateways/mandarin/callback");
    let mut fields: Vec<(String, String)> = [
        ("transaction", tx.as_str()),
        ("status", "success"),
        ("action", "pay"),
        ("merchantId", MD_MERCHANT),
        ("price", "2000.00"),
        ("orderId", id.as_str()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
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
        let res = reqwest::Client::new()
            .post(format!("{}/test/settle/{tx}/success", peer.me))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.text().await.unwrap(), "OK");
    }
    let p = status_of(&srv, &tok, &id).await;
    assert_eq!(p["status"], "succeeded");
    assert_eq!(p["metadata"]["qr_codes_issued"], true);
    assert_eq!(emails(&srv), 1);

    // Refund through the adapter (POST /api/transactions action=reversal).
    let done = shared::payments::refunds::refund(&srv.app, &id, "2000.00".parse().unwrap(), "test", "900")
        .await
        .unwrap();
    assert_eq!(done.state, shared::payments::refunds::RefundState::Completed);
    assert_eq!(status_of(&srv, &tok, &id).await["status"], "refunded");
    assert_eq!(peer.get(&tx).unwrap()["status"], "refunded");

    // Declined without a callback: the job asks GET /api/transactions/{id}; places come back.
    let (_, a) = srv.post("/v1/payments/sessions", Some(&tok), &session_body(3, "12:00")).await;
    let a_id = a["data"]["payment_id"].as_str().unwrap();
    let a_tx =
        a["data"]["confirmation_url"].as_str().unwrap().split("transaction=").nth(1).unwrap().to_owned();
    reqwest::Client::new()
        .post(format!("{}/test/settle/{a_tx}/failed?notify=0", peer.me))
        .send()
        .await
        .unwrap();
    let date = session_body(1, "12:00")["order"]["items"][0]["visit_date"].as_str().unwrap().to_owned();
    let reserved = |srv: &TestServer| {
        let date = date.clone();
        let url = srv.url(&format!("/v1/slots?visit_date={date}&visit_time=12:00"));
        async move {
            reqwest::get(url).await.unwrap().json::<Value>().await.unwrap()["data"]["reserved"]
                .as_i64()
                .unwrap()
        }
    };
    assert_eq!(reserved(&srv).await, 3);
    srv.app.clock.advance(chrono::Duration::minutes(16));
    assert_eq!(run(&srv.app, Job::Payments).await.unwrap().changed, 1);
    assert_eq!(status_of(&srv, &tok, a_id).await["status"], "failed");
    assert_eq!(reserved(&srv).await, 0);
}

// ---------------------------------------------------------------- SNGB

const SN_TERMINAL: &str = "7000123";
const SN_PASSWORD: &str = "terminal-password";
const SN_SECRET: &str = "sngb-secret";

fn sngb_peer() -> Router<Peer> {
    async fn init(State(p): State<Peer>, body: Bytes) -> impl IntoResponse {
        let f = parse_form(&body);
        if f["id"] != SN_TERMINAL
            || f["password"] != SN_PASSWORD
            || f["action"] != "1"
            || f["currency"] != "643"
        {
            return "!ERROR!PY20000-Invalid terminal".to_owned();
        }
        if f["udf5"] != sha1(&format!("{}:{}:{SN_SECRET}", f["trackid"], f["amt"])) {
            return "!ERROR!PY20001-Invalid udf5".to_owned();
        }
        let paymentid = format!("{}", 100_000_000 + p.records.lock().unwrap().len());
        p.set(&paymentid, json!({ "trackid": f["trackid"], "amt": f["amt"], "result": "INITIALIZED", "notify": f["responseURL"] }));
        format!("{paymentid}:{}/PaymentPage.jsp", p.me)
    }
    async fn status(State(p): State<Peer>, Path(pid): Path<String>, uri: Uri) -> impl IntoResponse {
        let q = parse_form(uri.query().unwrap_or("").as_bytes());
        if q.get("terminal").map(String::as_str) != Some(SN_TERMINAL)
            || q["sign"] != sha1(&format!("{pid}:{SN_SECRET}"))
        {
            return (StatusCode::FORBIDDEN, axum::Json(json!({"error": "bad sign"})));
        }
        match p.get(&pid) {
            Some(r) => (
                StatusCode::OK,
                axum::Json(
                    json!({ "paymentid": pid, "trackid": r["trackid"], "result": r["result"], "amt": r["amt"] }),
                ),
            ),
            None => (StatusCode::NOT_FOUND, axum::Json(json!({"error": "not found"}))),
        }
    }
    async fn tran(State(p): State<Peer>, body: Bytes) -> impl IntoResponse {
        let f = parse_form(&body);
        if f["id"] != SN_TERMINAL || f["password"] != SN_PASSWORD || f["action"] != "2" {
            return "!ERROR!invalid".to_owned();
        }
        let mut r = p.get(&f["paymentid"]).unwrap();
        r["result"] = json!("REFUNDED");
        p.set(&f["paymentid"], r);
        "CAPTURED:refund done".to_owned()
    }
    /// The bank side: post a (payment or refund) notification to our server.
    async fn notify(
        State(p): State<Peer>,
        Path((pid, result)): Path<(String, String)>,
        uri: Uri,
    ) -> impl IntoResponse {
        let mut r = p.get(&pid).unwrap();
        let refund = uri.query() == Some("action=2");
        if !refund {
            r["result"] = json!(result);
            p.set(&pid, r.clone());
        }
        let (trackid, amt) = (r["trackid"].as_str().unwrap(), r["amt"].as_str().unwrap());
        let mut fields: Vec<(String, String)> = vec![
            ("paymentid".into(), pid.clone()),
            ("trackid".into(), trackid.into()),
            ("result".into(), result.clone()),
            ("amt".into(), amt.into()),
            ("tranid".into(), "555".into()),
            ("auth".into(), "999999".into()),
            ("udf5".into(), sha1(&format!("{pid}:{trackid}:{result}:{amt}:{SN_SECRET}"))),
        ];
        let url = if refund {
            fields.push(("action".into(), "2".into()));
            format!("{}/api/v1/gateways/sngb/tran", p.ours())
        } else {
            r["notify"].as_str().unwrap().to_owned()
        };
        let (s, body) = post_form(&url, &fields).await;
        (StatusCode::from_u16(s).unwrap(), body)
    }
    Router::new()
        .route("/PaymentInitServlet", post(init))
        .route("/PaymentTranServlet", post(tran))
        .route("/rest/payments/{pid}", get(status))
        .route("/test/notify/{pid}/{result}", post(notify))
}

#[tokio::test]
async fn sngb_init_notify_redirect_status_and_tran() {
    let (srv, peer) = start(sngb_peer(), |c, me| {
        c.payments.zoo_gateway = GatewayKind::Sngb;
        c.payments.sngb = shared::payments::gateways::sngb::Config {
            terminal_id: SN_TERMINAL.into(),
            password: SN_PASSWORD.into(),
            secret: SN_SECRET.into(),
            base_url: me.into(),
        };
    })
    .await;
    let tok = token("21", &[]);
    let (s, created) = srv.post("/v1/payments/sessions", Some(&tok), &session_body(2, "10:00")).await;
    assert_eq!(s, 201, "{created}");
    let id = created["data"]["payment_id"].as_str().unwrap().to_owned();
    let url = created["data"]["confirmation_url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/PaymentPage.jsp?PaymentID=", peer.me)), "{url}");
    let pid = url.split("PaymentID=").nth(1).unwrap().to_owned();
    assert_eq!(peer.get(&pid).unwrap()["trackid"], id.as_str());
    assert_eq!(peer.get(&pid).unwrap()["notify"], srv.url("/api/v1/gateways/sngb/notify"));

    // Forged notification (udf5 by a stranger): rejected, nothing changes.
    let notify = srv.url("/api/v1/gateways/sngb/notify");
    let forged: Vec<(String, String)> = [
        ("paymentid", pid.as_str()),
        ("trackid", id.as_str()),
        ("result", "CAPTURED"),
        ("amt", "2000.00"),
        ("udf5", &sha1(&format!("{pid}:{id}:CAPTURED:2000.00:guess"))),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let (s, body) = post_form(&notify, &forged).await;
    assert_eq!(s, 403);
    assert!(body.starts_with("REDIRECT="), "{body}");
    // An error notification changes nothing either.
    let error: Vec<(String, String)> = vec![
        ("paymentid".into(), pid.clone()),
        ("trackid".into(), id.clone()),
        ("Error".into(), "GW00160".into()),
        ("ErrorText".into(), "Invalid Brand".into()),
    ];
    let (s, body) = post_form(&notify, &error).await;
    assert_eq!(
        (s, body.as_str()),
        (200, srv.url("/api/v1/gateways/sngb/error").replace("http", "REDIRECT=http").as_str())
    );
    assert_eq!(status_of(&srv, &tok, &id).await["status"], "pending");

    // Genuine notification twice: REDIRECT to our return, one settlement, one email.
    let mut redirect = String::new();
    for _ in 0..2 {
        let res = reqwest::Client::new()
            .post(format!("{}/test/notify/{pid}/CAPTURED", peer.me))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        redirect = res.text().await.unwrap();
    }
    assert_eq!(redirect, format!("REDIRECT={}", srv.url(&format!("/api/v1/gateways/return/{id}"))));
    assert_eq!(status_of(&srv, &tok, &id).await["status"], "succeeded");
    assert_eq!(emails(&srv), 1);
    // The buyer's browser follows it and lands on the return URL.
    let res = srv.http.get(redirect.trim_start_matches("REDIRECT=")).send().await.unwrap();
    assert_eq!(res.headers()["location"], "https://zoo.example/ok");

    // Refund: PaymentTranServlet, then the bank's tran notification (sngb_tran) is harmless.
    let done = shared::payments::refunds::refund(&srv.app, &id, "2000.00".parse().unwrap(), "test", "900")
        .await
        .unwrap();
    assert_eq!(done.state, shared::payments::refunds::RefundState::Completed);
    assert_eq!(peer.get(&pid).unwrap()["result"], "REFUNDED");
    let res = reqwest::Client::new()
        .post(format!("{}/test/notify/{pid}/CAPTURED?action=2", peer.me))
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "OK");
    let p = status_of(&srv, &tok, &id).await;
    assert_eq!(p["status"], "refunded");
    assert_eq!(p["refunded_amount"]["value"], "2000.00");

    // A refund reported only by the tran notification is recorded too.
    let (_, b) = srv.post("/v1/payments/sessions", Some(&tok), &session_body(1, "11:00")).await;
    let b_id = b["data"]["payment_id"].as_str().unwrap().to_owned();
    let b_pid =
        b["data"]["confirmation_url"].as_str().unwrap().split("PaymentID=").nth(1).unwrap().to_owned();
    reqwest::Client::new().post(format!("{}/test/notify/{b_pid}/CAPTURED", peer.me)).send().await.unwrap();
    let res = reqwest::Client::new()
        .post(format!("{}/test/notify/{b_pid}/CAPTURED?action=2", peer.me))
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "OK");
    assert_eq!(status_of(&srv, &tok, &b_id).await["status"], "refunded");

    // Paid at the bank, notification lost: the job asks the REST status.
    let (_, c) = srv.post("/v1/payments/sessions", Some(&tok), &session_body(1, "12:00")).await;
    let c_id = c["data"]["payment_id"].as_str().unwrap().to_owned();
    let c_pid =
        c["data"]["confirmation_url"].as_str().unwrap().split("PaymentID=").nth(1).unwrap().to_owned();
    let mut r = peer.get(&c_pid).unwrap();
    r["result"] = json!("CAPTURED");
    peer.set(&c_pid, r);
    srv.app.clock.advance(chrono::Duration::minutes(16));
    assert_eq!(run(&srv.app, Job::Payments).await.unwrap().changed, 1);
    assert_eq!(status_of(&srv, &tok, &c_id).await["status"], "succeeded");
}
