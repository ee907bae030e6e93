//! Production hardening over HTTP: upstream failures tell the client only their kind (the
//! detail is logged under the request id), return and cancel URLs stay on the allowed hosts,
//! tokens signed with the previous key are accepted during a rotation, and secrets come from
//! Parameter Store (moto) with a deployed process refusing to start without them.

use std::sync::{Arc, OnceLock};

use api_tests::{SECRET, TestServer, token};
use axum::Router;
use axum::routing::any;
use serde_json::{Value, json};
use shared::App;
use shared::auth::{Claims, issue};
use shared::config::Vars;
use shared::payments::GatewayKind;
use shared::store::Store;

// ---------- captured logs ----------

type Logs = api_tests::LogLines;

/// JSON log lines of this test binary, as the functions write them.
fn logs() -> &'static Logs {
    static LOGS: OnceLock<Logs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_writer(move || writer.clone())
            .with_env_filter("info")
            .try_init()
            .ok();
        logs
    })
}

/// Logged lines that carry this request id.
fn logged_for(request_id: &str) -> Vec<Value> {
    logs().json().into_iter().filter(|v| v.to_string().contains(request_id)).collect()
}

// ---------- upstream failures ----------

const PASSWORD: &str = "hunter2-very-secret-gateway-password";

/// A peer that answers every request with a 500 naming its path.
async fn broken_peer() -> String {
    let app = Router::new().fallback(any(|uri: axum::http::Uri| async move {
        (axum::http::StatusCode::INTERNAL_SERVER_ERROR, format!("boom at {}", uri.path()))
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let me = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    me
}

/// A local address nobody listens on.
async fn closed_port() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let me = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    me
}

fn point_at(c: &mut shared::Config, gateway: GatewayKind, base: &str) {
    c.payments.zoo_gateway = gateway;
    c.payments.robokassa = shared::payments::gateways::robokassa::Config {
        login: "shop".into(),
        password1: PASSWORD.into(),
        password2: PASSWORD.into(),
        password3: PASSWORD.into(),
        base_url: base.into(),
        refund_url: format!("{base}/RefundService/Refund"),
        ..Default::default()
    };
    c.payments.mandarin = shared::payments::gateways::mandarin::Config {
        merchant_id: "4242".into(),
        secret: PASSWORD.into(),
        base_url: base.into(),
    };
    c.payments.sngb = shared::payments::gateways::sngb::Config {
        terminal_id: "7000".into(),
        terminal_alias: "7000-alias".into(),
        secret: PASSWORD.into(),
        token: PASSWORD.into(),
        base_url: base.into(),
    };
}

fn session_body(return_url: &str, cancel_url: &str) -> Value {
    let date = (chrono::Utc::now() + chrono::Duration::days(20)).format("%Y-%m-%d").to_string();
    json!({
        "session_id": "s1",
        "order": {
            "order_id": "ZT-1",
            "total_amount": { "value": "1000.00", "currency": "RUB" },
            "items": [{ "ticket_type": "adult", "quantity": 1, "unit_price": { "value": "1000.00", "currency": "RUB" },
                        "visit_date": date, "visit_time": "10:00" }]
        },
        "customer": { "email": "visitor@example.com" },
        "confirmation": { "type": "redirect", "return_url": return_url, "cancel_url": cancel_url }
    })
}

/// Sends a request and returns (status, request id, body text).
async fn send(srv: &TestServer, req: reqwest::RequestBuilder) -> (u16, String, String) {
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let id = res
        .headers()
        .get("x-request-id")
        .expect("every answer names its request")
        .to_str()
        .unwrap()
        .to_owned();
    let _ = srv;
    (status, id, res.text().await.unwrap())
}

/// The answer names the kind of failure and nothing of the upstream's; the log has the detail
/// under the same request id.
fn assert_clean(
    what: &str,
    upstream: &str,
    (status, id, body): &(u16, String, String),
    code: &str,
    detail: &str,
) {
    let port = upstream.rsplit(':').next().unwrap();
    for leak in [
        upstream,
        port,
        "127.0.0.1",
        "localhost",
        "http",
        PASSWORD,
        "Signature",
        "boom",
        "error sending",
        "dispatch",
        "reqwest",
        "Mandarin",
        "Robokassa",
        "SNGB",
        "Servlet",
    ] {
        assert!(!body.contains(leak), "{what}: the answer leaks {leak:?}: {body}");
    }
    let v: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{what}: a JSON error, not {body}"));
    assert_eq!(v["error"]["code"], code, "{what}: {body}");
    assert!((500..600).contains(status), "{what}: {status}");
    let lines = logged_for(id);
    assert!(
        lines.iter().any(|l| l.to_string().contains(detail)),
        "{what}: the log has the detail ({detail}) with request id {id}: {lines:?}"
    );
    // Nor does the log hold a secret or a signed URL (a transport error names its URL).
    for l in &lines {
        for leak in [PASSWORD, "Signature=", "password="] {
            assert!(!l.to_string().contains(leak), "{what}: a log line holds {leak:?}: {l}");
        }
    }
}

async fn gateway_failures(gateway: GatewayKind, upstream: String, detail: &str) {
    logs();
    let mut c = shared::Config::for_tests();
    c.jwt.secret = SECRET.into();
    point_at(&mut c, gateway, &upstream);
    let srv = TestServer::start_with(App::in_memory(c)).await;
    let tok = token("21", &[]);
    let body = session_body("https://zoo.example/ok", "https://zoo.example/cancel");
    let created =
        send(&srv, srv.http.post(srv.url("/v1/payments/sessions")).bearer_auth(&tok).json(&body)).await;
    let payment_id = match gateway {
        // A Robokassa link is signed here, without a call: the status query is what fails.
        GatewayKind::Robokassa => {
            assert_eq!(created.0, 201, "{}", created.2);
            let v: Value = serde_json::from_str(&created.2).unwrap();
            v["data"]["payment_id"].as_str().unwrap().to_owned()
        }
        _ => {
            assert_clean(&format!("{gateway:?} create"), &upstream, &created, "gateway_error", detail);
            return;
        }
    };
    let p = shared::payments::load(&srv.app, &payment_id).await.unwrap().unwrap();
    let inv = p.inv_id;
    let success = srv.url(&format!("/api/v1/gateways/robokassa/success?InvId={inv}&OutSum=1000.00"));
    let answer = send(&srv, srv.http.get(success)).await;
    assert_clean("Robokassa success return", &upstream, &answer, "gateway_error", detail);
    let generic = send(&srv, srv.http.get(srv.url(&format!("/api/v1/gateways/return/{payment_id}")))).await;
    assert_clean("the anonymous return", &upstream, &generic, "gateway_error", detail);
}

#[tokio::test]
async fn robokassa_failures_leak_nothing() {
    gateway_failures(GatewayKind::Robokassa, broken_peer().await, "Robokassa OpStateExt").await;
    gateway_failures(GatewayKind::Robokassa, closed_port().await, "Robokassa OpStateExt").await;
}

#[tokio::test]
async fn mandarin_failures_leak_nothing() {
    gateway_failures(GatewayKind::Mandarin, broken_peer().await, "Mandarin").await;
    gateway_failures(GatewayKind::Mandarin, closed_port().await, "Mandarin").await;
}

#[tokio::test]
async fn sngb_failures_leak_nothing() {
    gateway_failures(GatewayKind::Sngb, broken_peer().await, "SNGB PaymentInitServlet").await;
    gateway_failures(GatewayKind::Sngb, closed_port().await, "SNGB PaymentInitServlet").await;
}

/// DynamoDB out of reach: 503 with no SDK text, endpoint or table name.
#[tokio::test]
async fn dynamodb_failures_leak_nothing() {
    logs();
    let upstream = closed_port().await;
    let sdk = shared::aws::from_vars(|name| match name {
        "AWS_ENDPOINT_URL" => Some(upstream.clone()),
        "AWS_REGION" => Some("us-east-1".into()),
        "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" => Some("k".into()),
        _ => None,
    });
    let store: Arc<dyn Store> = Arc::new(shared::store::dynamo::DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        "secret-table-name",
    ));
    let mut c = shared::Config::for_tests();
    c.jwt.secret = SECRET.into();
    let srv = TestServer::start_with(App::new(store, c)).await;
    let date = (chrono::Utc::now() + chrono::Duration::days(20)).format("%Y-%m-%d").to_string();
    let answer =
        send(&srv, srv.http.get(srv.url(&format!("/v1/slots?visit_date={date}&visit_time=10:00")))).await;
    assert_clean("slots", &upstream, &answer, "unavailable", "dispatch");
    let answer = send(&srv, srv.http.get(srv.url("/api/v1/orders")).bearer_auth(token("21", &[]))).await;
    assert_clean("deals", &upstream, &answer, "unavailable", "dispatch");
    assert!(!answer.2.contains("secret-table-name"));
}

/// A client's sane request id is kept; anything else is replaced.
#[tokio::test]
async fn answers_carry_a_request_id() {
    let srv = TestServer::memory().await;
    let res = srv.http.get(srv.url("/v1/health")).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc-123");
    let res = srv.http.get(srv.url("/v1/health")).header("x-request-id", "<script>").send().await.unwrap();
    let id = res.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
}

// ---------- redirects ----------

fn restricted(hosts: &[&str]) -> shared::Config {
    let mut c = shared::Config::for_tests();
    c.jwt.secret = SECRET.into();
    c.return_url_hosts = Some(hosts.iter().map(|h| h.to_string()).collect());
    c
}

#[tokio::test]
async fn return_urls_stay_on_the_allowed_hosts() {
    let store: Arc<dyn Store> = api_tests::memory_store();
    let open = TestServer::start_with(App::new(store.clone(), {
        let mut c = shared::Config::for_tests();
        c.jwt.secret = SECRET.into();
        c
    }))
    .await;
    let srv = TestServer::start_with(App::new(store, restricted(&["zoo.example"]))).await;
    let tok = token("21", &[]);
    let own = format!("{}/thanks", srv.app.config.public_url);
    // Zoo sessions: each URL is checked and named.
    for (ret, cancel, field) in [
        ("https://evil.example/", "https://zoo.example/c", "confirmation.return_url"),
        ("https://zoo.example/ok", "https://zoo.example.evil.example/", "confirmation.cancel_url"),
        ("https://zoo.example@evil.example/", "https://zoo.example/c", "confirmation.return_url"),
    ] {
        let (s, b) = srv.post("/v1/payments/sessions", Some(&tok), &session_body(ret, cancel)).await;
        assert_eq!(s, 422, "{b}");
        assert_eq!(b["error"]["field"], field, "{b}");
    }
    let (s, b) =
        srv.post("/v1/payments/sessions", Some(&tok), &session_body("https://zoo.example/ok", &own)).await;
    assert_eq!(s, 201, "{b}");
    // Unset (local runs): any host.
    let (s, b) = open
        .post(
            "/v1/payments/sessions",
            Some(&tok),
            &session_body("https://evil.example/", "https://evil.example/"),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let stored = b["data"]["payment_id"].as_str().unwrap().to_owned();
    // A URL stored before the list was set is not followed by the anonymous return.
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(srv.url(&format!("/api/v1/gateways/return/{stored}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("location").is_none());
    assert!(!res.text().await.unwrap().contains("evil.example"));
    // The same through the open server redirects (so the check above is the list's doing).
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(open.url(&format!("/api/v1/gateways/return/{stored}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
}

#[tokio::test]
async fn deal_return_links_stay_on_the_allowed_hosts() {
    let srv = TestServer::start_with(App::in_memory(restricted(&["shop.example"]))).await;
    let (_, id) = api_tests::emails::deal_approved(&srv).await;
    // The deal's consumer.
    let tok = token("14", &[]);
    let path = |q: &str| format!("/api/v1/orders/{id}/payment_info?{q}");
    let (s, b) = srv.get(&path("redirect_to=https://evil.example/"), Some(&tok)).await;
    assert_eq!((s, b["error"]["field"].as_str()), (422, Some("redirect_to")), "{b}");
    let (s, b) = srv.get(&path("return=https://evil.example/"), Some(&tok)).await;
    assert_eq!((s, b["error"]["field"].as_str()), (422, Some("return")), "{b}");
    let (s, b) = srv.get(&path("redirect_to=ftp://shop.example/"), Some(&tok)).await;
    assert_eq!((s, b["error"]["field"].as_str()), (400, Some("redirect_to")), "{b}");
    let (s, b) = srv
        .get(&path("redirect_to=https://shop.example/deal&return=https://api.x.example/"), Some(&tok))
        .await;
    assert_eq!((s, b["error"]["field"].as_str()), (422, Some("return")), "{b}");
    let own = srv.app.config.public_url.clone();
    let (s, b) =
        srv.get(&path(&format!("redirect_to=https://shop.example/deal&return={own}/back")), Some(&tok)).await;
    assert_eq!(s, 200, "{b}");
    assert!(b["gateway_url"].is_string(), "{b}");
}

// ---------- tokens ----------

#[tokio::test]
async fn the_previous_key_works_during_a_rotation() {
    let old = "old-secret-old-secret-old-secret-0";
    let new = "new-secret-new-secret-new-secret-1";
    let mut c = shared::Config::for_tests();
    c.jwt.secret = new.into();
    c.jwt.previous = Some(old.into());
    c.jwt.issuer = Some("https://id.tickets.example".into());
    let srv = TestServer::start_with(App::in_memory(c)).await;
    let claims = |iss: Option<&str>| {
        let mut c = serde_json::to_value(Claims::new("21", chrono::Duration::minutes(10))).unwrap();
        if let Some(iss) = iss {
            c["iss"] = json!(iss);
        }
        c
    };
    shared::auth::install_crypto();
    let sign = |key: &str, body: Value| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &body,
            &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
        )
        .unwrap()
    };
    let iss = Some("https://id.tickets.example");
    for (key, body, expect) in [
        (new, claims(iss), 200),
        (old, claims(iss), 200),
        (SECRET, claims(iss), 401),
        (new, claims(None), 401),
        (new, claims(Some("https://evil.example")), 401),
    ] {
        let (s, b) = srv.get("/api/v1/me", Some(&sign(key, body))).await;
        assert_eq!(s, expect, "{b}");
    }
    // Tokens made by `make token` carry iat and live no longer than the server accepts.
    let t = issue(new, &Claims { ..Claims::new("21", chrono::Duration::days(2)) });
    let (s, b) = srv.get("/api/v1/me", Some(&t)).await;
    assert_eq!(s, 401, "{b}");
}

// ---------- secrets from Parameter Store ----------

#[tokio::test]
async fn secrets_come_from_parameter_store() {
    if api_tests::moto_endpoint().is_none() {
        return;
    }
    let sdk = shared::aws::load();
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let stack = format!("/stack-{}", uuid::Uuid::new_v4().simple());
    let jwt = "jwt-from-parameter-store-0123456789abcdef";
    let ticket = "ticket-key-from-parameter-store-0123456789";
    for (name, value) in [("jwt-secret", jwt), ("ticket-signing-key", ticket), ("sngb-token", "bank-token")] {
        ssm.put_parameter()
            .name(format!("{stack}/{name}"))
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await
            .unwrap();
    }
    let table = format!("secrets-{}", uuid::Uuid::new_v4().simple());
    let vars = |secrets: &str, extra: &[(&str, &str)]| {
        let mut pairs = vec![
            ("TABLE_NAME", table.as_str()),
            ("CREATE_TABLE", "1"),
            ("SECRETS_PREFIX", stack.as_str()),
            ("SECRETS", secrets),
            // The environment's values lose to the parameters'.
            ("JWT_SECRET", "from-the-environment-which-is-long-enough"),
        ];
        pairs.extend_from_slice(extra);
        Vars::from_pairs(&pairs)
    };
    let app = App::from_vars(vars("jwt-secret,ticket-signing-key,sngb-token", &[])).await.unwrap();
    assert_eq!(app.config.jwt.secret, jwt);
    assert_eq!(app.config.ticket_key, ticket);
    assert_eq!(app.config.payments.sngb.token, "bank-token");
    // A token signed with the stored secret is accepted by that function.
    let srv = TestServer::start_with(app).await;
    let (s, b) =
        srv.get("/api/v1/me", Some(&issue(jwt, &Claims::new("21", chrono::Duration::minutes(5))))).await;
    assert_eq!(s, 200, "{b}");
    // A function that does not name a secret does not get it.
    let health = App::from_vars(vars("", &[])).await.unwrap();
    assert_eq!(health.config.ticket_key, "");
    // Missing, or holding the development default: the function refuses to start.
    let e =
        App::from_vars(vars("jwt-secret,jwt-secret-previous,sandbox-secret", &[("SANDBOX_ENABLED", "true")]))
            .await
            .err()
            .unwrap();
    assert!(e.contains(&format!("{stack}/sandbox-secret")) || e.contains("SANDBOX_SECRET"), "{e}");
    ssm.put_parameter()
        .name(format!("{stack}/sandbox-secret"))
        .value(shared::payments::DEV_SANDBOX_SECRET)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let e = App::from_vars(vars("sandbox-secret", &[("SANDBOX_ENABLED", "true")])).await.err().unwrap();
    assert!(e.contains("SANDBOX_SECRET"), "{e}");
    let e = App::from_vars(vars("ticket-signing-key,jwt-secrte", &[])).await.err().unwrap();
    assert!(e.contains("jwt-secrte"), "{e}");
    let empty = format!("/stack-{}", uuid::Uuid::new_v4().simple());
    let e = App::from_vars(Vars::from_pairs(&[
        ("TABLE_NAME", table.as_str()),
        ("SECRETS_PREFIX", empty.as_str()),
        ("SECRETS", "jwt-secret"),
    ]))
    .await
    .err()
    .unwrap();
    assert!(e.contains(&format!("{empty}/jwt-secret")), "{e}");
}

/// An id in a path (or a callback's field) longer than a key may hold: DynamoDB refuses a key
/// over 2,048 bytes, and the table's refusal must not reach the client as a 5xx. Every route
/// that takes an id is asked with one of 3,000 characters, by a buyer, an admin and nobody.
async fn overlong_ids_are_the_clients_mistake(store: Arc<dyn Store>) {
    let srv = TestServer::start(store).await;
    let long = "a".repeat(3000);
    let (user, admin) = (token("31", &[]), token("1", &["admin"]));
    let paths = [
        ("GET", format!("/v1/payments/{long}")),
        ("PATCH", format!("/v1/payments/{long}")),
        ("DELETE", format!("/v1/payments/{long}")),
        ("GET", format!("/api/v1/gateways/return/{long}")),
        ("GET", format!("/api/v1/gateways/sandbox/pay/{long}")),
        ("GET", format!("/api/v1/events/{long}/seats")),
        ("GET", format!("/api/v1/events/{long}/seatmap.svg")),
        ("GET", format!("/api/v1/reservations/{long}")),
        ("DELETE", format!("/api/v1/reservations/{long}")),
        ("POST", format!("/api/v1/reservations/{long}/tickets")),
        ("DELETE", format!("/api/v1/reservations/{long}/tickets/{long}")),
        ("PUT", format!("/api/v1/reservations/{long}/order_type")),
        ("POST", format!("/api/v1/reservations/{long}/checkout")),
        ("GET", format!("/api/v1/ticket_orders/{long}")),
        ("GET", format!("/api/v1/ticket_orders/{long}/tickets/{long}/qr")),
        ("GET", format!("/api/v1/ticket_orders/{long}/payment_return")),
        ("GET", format!("/api/v1/admin/ticket_orders/{long}")),
        ("POST", format!("/api/v1/admin/ticket_orders/{long}/resend_email")),
        ("POST", format!("/api/v1/admin/ticket_orders/{long}/cancel")),
        ("POST", format!("/api/v1/admin/ticket_orders/{long}/paid")),
        ("POST", format!("/api/v1/admin/ticket_orders/{long}/refund")),
        ("GET", format!("/api/v1/admin/events/{long}/report")),
        ("POST", format!("/api/v1/admin/events/{long}/stop_sales")),
        ("POST", format!("/api/v1/admin/refunds/{long}/{long}/completed")),
        ("GET", format!("/api/v1/gateways/sngb/notify?trackid={long}&udf5=x&paymentid=1&result=CAPTURED")),
        ("GET", format!("/api/v1/gateways/robokassa/result?InvId={long}&OutSum=1.00&SignatureValue=x")),
        ("GET", format!("/api/v1/gateways/robokassa/success?InvId={long}&OutSum=1.00&SignatureValue=x")),
    ];
    let mut failures = Vec::new();
    for (method, path) in &paths {
        for auth in [None, Some(&user), Some(&admin)] {
            let mut req = srv
                .http
                .request(method.parse().unwrap(), srv.url(path))
                .header("Idempotency-Key", "0123456789abcdef0123456789abcdef")
                .header("X-Reservation-Token", long.as_str());
            if let Some(t) = auth {
                req = req.bearer_auth(t);
            }
            if *method != "GET" && *method != "DELETE" {
                req = req.json(&serde_json::json!({"seat_id": long, "amount": "1.00", "reason": "x"}));
            }
            let res = req.send().await.unwrap();
            if res.status().is_server_error() {
                failures.push(format!(
                    "{method} {} as {auth:?}: {}",
                    &path[..60.min(path.len())],
                    res.status()
                ));
            }
        }
    }
    for form in [
        vec![("payment_id", long.clone()), ("outcome", "success".to_owned()), ("signature", "x".to_owned())],
        vec![("orderId", long.clone()), ("status", "success".to_owned()), ("sign", "x".to_owned())],
    ] {
        for cb in ["/api/v1/gateways/sandbox/callback", "/api/v1/gateways/mandarin/callback"] {
            let res = srv.http.post(srv.url(cb)).form(&form).send().await.unwrap();
            if res.status().is_server_error() {
                failures.push(format!("POST {cb}: {}", res.status()));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test]
async fn memory_overlong_ids_are_the_clients_mistake() {
    overlong_ids_are_the_clients_mistake(api_tests::memory_store()).await;
}

#[tokio::test]
async fn dynamo_overlong_ids_are_the_clients_mistake() {
    let Some(store) = api_tests::dynamo_store().await else { return };
    overlong_ids_are_the_clients_mistake(store).await;
}
