//! Test support: a local server on an ephemeral port, tokens, the moto-backed store, and the
//! test-only store wrappers (hooks, faults, counting), which never ship in a function.

pub mod counting;
pub mod faulty;
pub mod hooked;

use std::sync::Arc;

use std::collections::BTreeMap;

use crate::hooked::{Hook, Hooked, Op};
use serde_json::Value;
use shared::App;
use shared::auth::{Claims, issue};
use shared::store::dynamo::DynamoStore;
use shared::store::memory::MemoryStore;
use shared::store::{Store, StoreError};

/// The moto endpoint, if the test run has one (`AWS_ENDPOINT_URL`). Under `make test`
/// (`REQUIRE_MOTO=1`) a missing endpoint fails the test instead of skipping it.
pub fn moto_endpoint() -> Option<String> {
    match std::env::var("AWS_ENDPOINT_URL").ok().filter(|v| !v.is_empty()) {
        Some(url) => Some(url),
        None if std::env::var("REQUIRE_MOTO").is_ok_and(|v| v == "1") => {
            panic!("REQUIRE_MOTO=1 but AWS_ENDPOINT_URL is unset: run through `make test`")
        }
        None => {
            eprintln!("skipped: AWS_ENDPOINT_URL unset (moto not running); `make test` runs it");
            None
        }
    }
}

/// A fresh DynamoDB table on moto, or `None` when moto is not available.
pub async fn dynamo_store() -> Option<Arc<DynamoStore>> {
    moto_endpoint()?;
    let table = format!("test-{}", uuid::Uuid::new_v4().simple());
    let store = DynamoStore::from_env(table).await;
    store.ensure_table().await.expect("create table on moto");
    Some(Arc::new(store))
}

pub fn memory_store() -> Arc<MemoryStore> {
    Arc::new(MemoryStore::new())
}

pub const SECRET: &str = "test-secret";

/// A valid bearer token for `sub`.
pub fn token(sub: &str, roles: &[&str]) -> String {
    issue(
        SECRET,
        &Claims {
            email: Some(format!("user{sub}@example.com")),
            phone: Some(format!("+7999000{sub:0>4}")),
            name: Some(format!("User {sub}")),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            ..Claims::new(sub, chrono::Duration::hours(1))
        },
    )
}

/// The whole API served on 127.0.0.1 at an ephemeral port.
pub struct TestServer {
    pub base: String,
    pub app: App,
    pub http: reqwest::Client,
}

impl TestServer {
    pub async fn start(store: Arc<dyn Store>) -> TestServer {
        let mut config = shared::Config::for_tests();
        config.jwt.secret = SECRET.into();
        Self::start_with(App::new(store, config)).await
    }

    pub async fn memory() -> TestServer {
        Self::start(memory_store()).await
    }

    /// As deployed: outbox items stay in the table for the stream relay (no relay in the
    /// request), so a store wrapper sees exactly the request's own round trips.
    pub async fn start_stream_relayed(store: Arc<dyn Store>) -> TestServer {
        let mut config = shared::Config::for_tests();
        config.jwt.secret = SECRET.into();
        config.outbox_relay = shared::config::Relay::Stream;
        Self::start_with(App::new(store, config)).await
    }

    pub async fn start_with(mut app: App) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let mut config = (*app.config).clone();
        config.public_url = base.clone();
        app.config = Arc::new(config);
        let served = app.clone();
        tokio::spawn(async move { local::serve(listener, served).await });
        let http =
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        TestServer { base, app, http }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request and returns the status and the JSON body (`Null` if none).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let bytes = res.bytes().await.expect("body");
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, json)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, token, Some(body)).await
    }
}

/// The embedded store answers without ever suspending, so concurrent requests on one
/// runtime would never interleave between a read and the conditional write that follows
/// it. This hook yields or sleeps a random 0-3 ms around every call, so races really happen,
/// and counts the writes that lost one (their condition failed).
#[derive(Default)]
pub struct Jitter {
    conflicts: std::sync::atomic::AtomicUsize,
}

impl Jitter {
    /// Conditional writes that lost a race so far: the losing path of a race test.
    pub fn conflicts(&self) -> usize {
        self.conflicts.load(std::sync::atomic::Ordering::SeqCst)
    }
}

async fn yield_some() {
    match uuid::Uuid::new_v4().as_bytes()[0] % 4 {
        0 => {}
        1 => tokio::task::yield_now().await,
        n => tokio::time::sleep(std::time::Duration::from_millis(u64::from(n))).await,
    }
}

#[async_trait::async_trait]
impl Hook for Jitter {
    async fn before(&self, _op: Op) -> Result<(), StoreError> {
        yield_some().await;
        Ok(())
    }
    async fn after(&self, op: Op) -> Result<(), StoreError> {
        if op.is_read() {
            yield_some().await;
        }
        Ok(())
    }
    fn conflict(&self, _op: Op) {
        self.conflicts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A store with [`Jitter`] around every call.
pub fn jittery(inner: Arc<dyn Store>) -> Hooked<Jitter> {
    Hooked::new(inner, Jitter::default())
}

/// A server on a jittery embedded store, and the store (to count lost races).
pub async fn jittery_server() -> (TestServer, Arc<Hooked<Jitter>>) {
    let store = Arc::new(jittery(memory_store()));
    (TestServer::start(store.clone()).await, store)
}

/// Runs `n` futures at once on the runtime's worker threads, released together by a barrier;
/// answers their outputs in order.
pub async fn race<T, F, Fut>(n: usize, make: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (barrier, fut) = (barrier.clone(), make(i));
            tokio::spawn(async move {
                barrier.wait().await;
                fut.await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.expect("racer"));
    }
    out
}

/// Repeats a race until its losing path showed (`lost` answers true for a round), at most
/// `rounds` times; every round must keep the race's invariant itself. Panics if no round
/// ever lost: the race did not really happen.
pub async fn until_lost<F, Fut>(rounds: usize, mut round: F)
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for r in 0..rounds {
        if round(r).await {
            return;
        }
    }
    panic!("no round of {rounds} lost a race: the racers never overlapped");
}

/// The notifier on the far side of the queue (its de-duplication claims and a mailbox): the
/// outbox relays at least once, so "one email" means one send, whatever was enqueued.
pub struct Mailroom {
    deps: notifier::Deps,
    read: usize,
}

impl Default for Mailroom {
    fn default() -> Self {
        let mailer = Arc::new(notifier::MemoryMailer::default());
        Mailroom { deps: notifier::Deps::new(memory_store(), mailer), read: 0 }
    }
}

impl Mailroom {
    /// Delivers what the server queued since the last call; answers the ids actually emailed.
    pub async fn deliver(&mut self, srv: &TestServer) -> Vec<String> {
        let queued = srv.app.local_queue.as_ref().expect("memory outbox").messages();
        let mut sent = Vec::new();
        for n in &queued[self.read..] {
            if notifier::process(&self.deps, n).await.expect("delivered") == notifier::Outcome::Sent {
                sent.push(n.id.clone());
            }
        }
        self.read = queued.len();
        sent
    }
}

/// The forms of an HTML page: action and hidden fields, keyed by the submit button's value.
pub fn forms(html: &str) -> BTreeMap<String, (String, Vec<(String, String)>)> {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let end = tag[start..].find('"')? + start;
        Some(tag[start..end].replace("&amp;", "&").replace("&quot;", "\""))
    };
    let mut out = BTreeMap::new();
    for form in html.split("<form").skip(1) {
        let form = form.split("</form>").next().unwrap_or("");
        let action = attr(form, "action").expect("form action");
        let mut fields = Vec::new();
        let mut button = String::new();
        for tag in form.split('<').skip(1) {
            if tag.starts_with("input") {
                fields.push((attr(tag, "name").unwrap(), attr(tag, "value").unwrap_or_default()));
            } else if tag.starts_with("button") {
                button = attr(tag, "value").unwrap();
            }
        }
        out.insert(button, (action, fields));
    }
    out
}

/// Opens the confirmation URL and presses a button (a real form POST); returns the
/// status and the Location header.
pub async fn press(srv: &TestServer, confirmation_url: &str, button: &str) -> (u16, String) {
    let page = srv.http.get(confirmation_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.contains("Pay") && html.contains("Decline"), "{html}");
    let (action, fields) = forms(&html).remove(button).expect("button");
    let res = srv.http.post(&action).form(&fields).send().await.unwrap();
    let location = res.headers().get("location").map(|l| l.to_str().unwrap().to_owned()).unwrap_or_default();
    (res.status().as_u16(), location)
}

/// Decodes the QR code of a grayscale PNG (as the notifier draws them) into its text.
pub fn decode_qr_png(bytes: &[u8]) -> String {
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes.to_vec())).read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("a size")];
    let info = reader.next_frame(&mut buf).expect("a frame");
    let (w, h) = (info.width as usize, info.height as usize);
    let px = |x: usize, y: usize| match info.color_type {
        png::ColorType::Grayscale => buf[y * w + x],
        png::ColorType::Rgb => buf[(y * w + x) * 3],
        png::ColorType::Rgba => buf[(y * w + x) * 4],
        other => panic!("unexpected PNG color type {other:?}"),
    };
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, px);
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().expect("a readable QR code").1
}

/// Decodes the QR code of a `data:image/png;base64,...` URL (a zoo ticket's `qr_code`).
pub fn decode_qr_data_url(url: &str) -> String {
    use base64::Engine;
    let b64 = url.strip_prefix("data:image/png;base64,").expect("a PNG data URL");
    decode_qr_png(&base64::engine::general_purpose::STANDARD.decode(b64).expect("base64"))
}

/// Decodes the QR code of an SVG as the tickets API draws them (one path of module squares).
pub fn decode_qr_svg(svg: &str) -> String {
    let size: usize = svg.split("viewBox=\"0 0 ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    let d = svg.split(" d=\"").nth(1).unwrap().split('"').next().unwrap();
    let mut dark = vec![false; size * size];
    for square in d.split('z').filter(|s| !s.is_empty()) {
        let xy = square.strip_prefix('M').unwrap().strip_suffix("h1v1h-1").unwrap();
        let (x, y) = xy.split_once(' ').unwrap();
        dark[y.parse::<usize>().unwrap() * size + x.parse::<usize>().unwrap()] = true;
    }
    let scale = 8;
    let px = size * scale;
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(px, px, |x, y| {
        if dark[(y / scale) * size + x / scale] { 0 } else { 255 }
    });
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().expect("a readable QR code").1
}

/// The project's Python (the venv `make test` builds), or `None` outside `make test` when it
/// is missing (under `make test` a missing venv fails the test).
pub fn venv_python() -> Option<std::path::PathBuf> {
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    match python.exists() {
        true => Some(python),
        false if std::env::var("REQUIRE_MOTO").is_ok_and(|v| v == "1") => {
            panic!("the test venv is missing: run through `make test`")
        }
        false => {
            eprintln!("skipped: no .venv (run `make venv`)");
            None
        }
    }
}

/// Emails made by the domain itself, through the API, as a reader will get them.
pub mod emails {
    use serde_json::{Value, json};
    use shared::mail::Notification;

    use super::{TestServer, press, token};

    /// The queued notification with this template (the last one).
    pub fn queued(srv: &TestServer, template: &str) -> Notification {
        let all = srv.app.local_queue.as_ref().expect("the in-process queue").messages();
        all.into_iter()
            .rev()
            .find(|n| n.template() == template)
            .unwrap_or_else(|| panic!("no {template} queued"))
    }

    pub fn visit_date() -> String {
        (chrono::Utc::now() + chrono::Duration::days(20)).format("%Y-%m-%d").to_string()
    }

    /// A zoo session for 2 adults at 10:00 and a child at 10:30, paid on the sandbox page:
    /// its tickets email, and the session as `GET /v1/payments/:id` shows it.
    pub async fn zoo_tickets(srv: &TestServer) -> (Notification, Value) {
        let tok = token("21", &[]);
        let item = |kind: &str, qty: i64, price: &str, time: &str| {
            json!({"ticket_type": kind, "quantity": qty, "unit_price": {"value": price, "currency": "RUB"},
                   "visit_date": visit_date(), "visit_time": time})
        };
        let body = json!({
            "session_id": "s-mail", "order": {"order_id": "ZT-MAIL", "total_amount": {"value": "2500.00", "currency": "RUB"},
            "items": [item("adult", 2, "1000.00", "10:00"), item("child", 1, "500.00", "10:30")]},
            "customer": {"email": "visitor@example.com"},
            "confirmation": {"type": "redirect", "return_url": "https://zoo.example/ok", "cancel_url": "https://zoo.example/no"}
        });
        let (status, created) = srv.post("/v1/payments/sessions", Some(&tok), &body).await;
        assert_eq!(status, 201, "{created}");
        let (status, _) =
            press(srv, created["data"]["confirmation_url"].as_str().unwrap(), "succeeded").await;
        assert_eq!(status, 303);
        let id = created["data"]["payment_id"].as_str().unwrap();
        let (_, session) = srv.get(&format!("/v1/payments/{id}"), Some(&tok)).await;
        (queued(srv, "zoo_tickets"), session["data"].clone())
    }

    /// A deal created by its consumer (14) for supplier 21, waiting for the supplier's
    /// approval; its id.
    pub async fn deal_to_approve(srv: &TestServer) -> i64 {
        let (supplier, consumer) = (token("21", &[]), token("14", &[]));
        assert_eq!(srv.get("/api/v1/me", Some(&supplier)).await.0, 200);
        let body = json!({"order": {"order_description": "Стол из дуба", "verify_days": 3, "commission_payer": "consumer",
            "cost": "2500", "supplier_id": "21", "consumer_id": "14", "supplier_billing_info": {"account": "40817"}}});
        let (status, created) = srv.post("/api/v1/orders", Some(&consumer), &body).await;
        assert_eq!(status, 201, "{created}");
        created["order"]["id"].as_i64().unwrap()
    }

    /// The supplier (21) approves deal `id`: the answer's status.
    pub async fn approve(srv: &TestServer, id: i64) -> u16 {
        let t = json!({"transition": {"to_state": "approved"}});
        srv.post(&format!("/api/v1/orders/{id}/transitions"), Some(&token("21", &[])), &t).await.0
    }

    /// A deal the supplier (21) approved: the consumer's (14) email of the move.
    pub async fn deal_approved(srv: &TestServer) -> (Notification, i64) {
        let id = deal_to_approve(srv).await;
        assert_eq!(approve(srv, id).await, 204);
        (queued(srv, "deal_state_changed"), id)
    }
}

/// Log output kept in memory: a `tracing_subscriber` writer (cloned for each write) whose lines a
/// test reads back as JSON.
#[derive(Clone, Default)]
pub struct LogLines(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogLines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogLines {
    /// Every line written so far that is JSON.
    pub fn json(&self) -> Vec<Value> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8_lossy(&bytes).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }
}
