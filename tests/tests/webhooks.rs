//! Partner webhooks over HTTP: a user registers an endpoint and gets its `whsec_` secret; a
//! ping reaches a local receiver signed per the Standard Webhooks specification, which the
//! specification's reference library (`standardwebhooks`, PyPI, in the test venv) verifies;
//! a tampered message is refused by it. In production an endpoint on an internal address or
//! over plain http is refused (SSRF).

use std::sync::{Arc, Mutex};

use api_tests::{TestServer, token};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use shared::App;

/// What a receiver got: headers and body, as it read them.
type Inbox = Arc<Mutex<Vec<(HeaderMap, String)>>>;

/// A webhook receiver on 127.0.0.1 answering `status(n)` to its `n`th request (from 1): its
/// URL and what it received.
async fn answering(status: impl Fn(usize) -> StatusCode + Clone + Send + Sync + 'static) -> (String, Inbox) {
    let inbox: Inbox = Arc::default();
    let seen = inbox.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let (seen, status) = (seen.clone(), status.clone());
            async move {
                let mut got = seen.lock().unwrap();
                got.push((headers, body));
                status(got.len())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, inbox)
}

/// A receiver that always answers `status`.
async fn receiver(status: StatusCode) -> (String, Inbox) {
    answering(move |_| status).await
}

/// A receiver answering 500 for its first `failures` requests, then 200.
async fn flaky_receiver(failures: usize) -> (String, Inbox) {
    answering(move |n| if n <= failures { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK }).await
}

/// `scripts/verify-webhook.py` on what was received: the library's verdict.
fn verify(secret: &str, headers: &HeaderMap, body: &str) -> Option<Value> {
    let python = api_tests::venv_python()?;
    let headers: serde_json::Map<String, Value> =
        headers.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_str().unwrap().to_owned()))).collect();
    let input = json!({"secret": secret, "headers": headers, "body": body}).to_string();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/verify-webhook.py");
    let mut child = std::process::Command::new(python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let verdict: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdict["verified"].as_bool(), Some(out.status.success()), "{verdict}");
    Some(verdict)
}

#[tokio::test]
async fn a_ping_reaches_the_receiver_signed_as_the_specification_says() {
    let srv = TestServer::memory().await;
    let (url, inbox) = receiver(StatusCode::NO_CONTENT).await;
    let user = token("21", &[]);
    assert_eq!(srv.get("/api/v1/webhooks/endpoint", Some(&user)).await.0, 404);
    assert_eq!(
        srv.call(reqwest::Method::PUT, "/api/v1/webhooks/endpoint", None, Some(&json!({"url": url}))).await.0,
        401
    );
    let (status, body) = srv
        .call(reqwest::Method::PUT, "/api/v1/webhooks/endpoint", Some(&user), Some(&json!({"url": url})))
        .await;
    assert_eq!(status, 200, "{body}");
    let secret = body["endpoint"]["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_") && secret.len() > 40, "{secret}");
    let (_, shown) = srv.get("/api/v1/webhooks/endpoint", Some(&user)).await;
    assert_eq!(shown["endpoint"]["secret"], secret.as_str());

    let (status, body) = srv.post("/api/v1/webhooks/endpoint/ping", Some(&user), &json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["attempt"]["ok"].as_bool(), body["attempt"]["status"].as_u64()),
        (Some(true), Some(204)),
        "{body}"
    );
    let (headers, received) = inbox.lock().unwrap().pop().expect("the receiver got the ping");
    let id = headers["webhook-id"].to_str().unwrap().to_owned();
    assert_eq!(body["attempt"]["message_id"], id.as_str());
    assert!(headers["webhook-signature"].to_str().unwrap().starts_with("v1,"));
    let message: Value = serde_json::from_str(&received).unwrap();
    assert_eq!(message["type"], "webhook.ping");

    // The reference library accepts it, and refuses it changed or under another secret.
    let Some(verdict) = verify(&secret, &headers, &received) else { return };
    assert_eq!(verdict["verified"], true, "{verdict}");
    assert_eq!(verdict["message"]["type"], "webhook.ping");
    let tampered = received.replace("webhook.ping", "webhook.pong");
    assert_eq!(verify(&secret, &headers, &tampered).unwrap()["verified"], false);
    let other = shared::webhooks::new_secret();
    assert_eq!(verify(&other, &headers, &received).unwrap()["verified"], false);

    // Moving the endpoint keeps the secret.
    let (moved, _) = receiver(StatusCode::OK).await;
    let (_, body) = srv
        .call(reqwest::Method::PUT, "/api/v1/webhooks/endpoint", Some(&user), Some(&json!({"url": moved})))
        .await;
    assert_eq!(body["endpoint"]["secret"], secret.as_str());
}

#[tokio::test]
async fn a_receiver_that_fails_is_reported_not_trusted() {
    let srv = TestServer::memory().await;
    let (url, inbox) = receiver(StatusCode::INTERNAL_SERVER_ERROR).await;
    let user = token("22", &[]);
    srv.call(reqwest::Method::PUT, "/api/v1/webhooks/endpoint", Some(&user), Some(&json!({"url": url})))
        .await;
    let (_, body) = srv.post("/api/v1/webhooks/endpoint/ping", Some(&user), &json!({})).await;
    assert_eq!(
        (body["attempt"]["ok"].as_bool(), body["attempt"]["status"].as_u64()),
        (Some(false), Some(500)),
        "{body}"
    );
    assert_eq!(inbox.lock().unwrap().len(), 1);
    // Nobody listening: an error without the URL in it.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/hook", l.local_addr().unwrap())
    };
    srv.call(reqwest::Method::PUT, "/api/v1/webhooks/endpoint", Some(&user), Some(&json!({"url": closed})))
        .await;
    let (_, body) = srv.post("/api/v1/webhooks/endpoint/ping", Some(&user), &json!({})).await;
    assert_eq!(body["attempt"]["ok"], false);
    assert!(!body["attempt"]["error"].as_str().unwrap().contains("127.0.0.1"), "{body}");
}

#[tokio::test]
async fn production_refuses_internal_and_plain_http_endpoints() {
    let mut config = shared::Config::for_tests();
    config.jwt.secret = api_tests::SECRET.into();
    config.table_name = Some("tickets".into()); // deployed: the production rules
    let srv = TestServer::start_with(App::new(api_tests::memory_store(), config)).await;
    let user = token("23", &[]);
    for url in [
        "http://partner.example/hook",
        "https://127.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.1.2.3/hook",
        "https://[::1]/hook",
        "https://localhost/hook",
        "not a url",
    ] {
        let (status, body) = srv
            .call(reqwest::Method::PUT, "/api/v1/webhooks/endpoint", Some(&user), Some(&json!({"url": url})))
            .await;
        assert_eq!((status, body["error"]["field"].as_str()), (422, Some("url")), "{url}: {body}");
    }
}

async fn dispatch(srv: &TestServer, seen: &mut usize) -> Vec<shared::webhooks::Dispatched> {
    let (next, done) = shared::webhooks::dispatch_local(&srv.app, *seen).await.unwrap();
    *seen = next;
    done
}

/// A deal's move reaches its supplier's endpoint; the receiver fails twice, then takes it: three
/// attempts of one message (one `webhook-id`) after the backoff's waits, exactly one success,
/// every one signed; a second delivery of the same queue message sends nothing.
#[tokio::test]
async fn a_deal_move_is_delivered_once_through_failures() {
    use shared::webhooks::Dispatched::*;
    let srv = TestServer::memory().await;
    let (url, inbox) = flaky_receiver(2).await;
    let supplier = token("21", &[]);
    let (status, body) = srv
        .call(reqwest::Method::PUT, "/api/v1/webhooks/endpoint", Some(&supplier), Some(&json!({"url": url})))
        .await;
    assert_eq!(status, 200, "{body}");
    let secret = body["endpoint"]["secret"].as_str().unwrap().to_owned();
    let id = api_tests::emails::deal_to_approve(&srv).await;
    let mut seen = 0;
    dispatch(&srv, &mut seen).await; // the create made no move
    assert_eq!(api_tests::emails::approve(&srv, id).await, 204);

    // First attempt: 500. The consumer (14) registered nothing.
    assert_eq!(dispatch(&srv, &mut seen).await, [Retrying, NoEndpoint]);
    // Not before its time: queued again for later.
    assert_eq!(dispatch(&srv, &mut seen).await, [Waiting]);
    srv.app.clock.advance(chrono::Duration::seconds(31));
    assert_eq!(dispatch(&srv, &mut seen).await, [Retrying]);
    srv.app.clock.advance(chrono::Duration::seconds(121));
    assert_eq!(dispatch(&srv, &mut seen).await, [Delivered]);
    assert_eq!(
        dispatch(&srv, &mut seen).await,
        [] as [shared::webhooks::Dispatched; 0],
        "nothing more queued"
    );

    let got = inbox.lock().unwrap().clone();
    assert_eq!(got.len(), 3);
    let ids: Vec<&str> = got.iter().map(|(h, _)| h["webhook-id"].to_str().unwrap()).collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "one message id through its retries: {ids:?}");
    let message: Value = serde_json::from_str(&got[2].1).unwrap();
    assert_eq!(message["type"], "deal.state_changed");
    assert_eq!(
        (message["data"]["deal_id"].as_i64(), message["data"]["state"].as_str()),
        (Some(id), Some("approved"))
    );
    for (headers, body) in &got {
        if let Some(verdict) = verify(&secret, headers, body) {
            assert_eq!(verdict["verified"], true, "{verdict}");
        }
    }

    // The deliveries log: one message, three attempts, delivered.
    let (status, body) = srv.get("/api/v1/webhooks/deliveries", Some(&supplier)).await;
    assert_eq!(status, 200, "{body}");
    let d = &body["deliveries"][0];
    assert_eq!((d["state"].as_str(), d["message_id"].as_str()), (Some("delivered"), Some(ids[0])), "{body}");
    let statuses: Vec<u64> =
        d["attempts"].as_array().unwrap().iter().map(|a| a["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [500, 500, 200]);
    assert_eq!(body["deliveries"].as_array().unwrap().len(), 1);

    // The queue delivers the first message again (SQS is at least once): nothing is sent.
    let first = srv.app.local_queue.as_ref().unwrap().webhooks()[0].clone();
    let shared::mail::Message::Webhook(m) = &first.message else { unreachable!() };
    let q = srv.app.local_queue.as_ref().unwrap();
    let d = shared::webhooks::Dispatcher {
        store: srv.app.store.as_ref(),
        queue: q.as_ref(),
        now: srv.app.clock.now(),
        allow_loopback: true,
    };
    assert_eq!(d.dispatch(&first, m).await.unwrap(), Duplicate);
    assert_eq!(inbox.lock().unwrap().len(), 3);
}

/// The supplier (21) with an endpoint whose receiver never answers 2xx: their token and
/// what the receiver got.
async fn supplier_refusing_everything(srv: &TestServer) -> (String, Inbox) {
    let (url, inbox) = flaky_receiver(usize::MAX).await;
    let supplier = token("21", &[]);
    let (status, body) = srv
        .call(reqwest::Method::PUT, "/api/v1/webhooks/endpoint", Some(&supplier), Some(&json!({"url": url})))
        .await;
    assert_eq!(status, 200, "{body}");
    (supplier, inbox)
}

/// A receiver that never answers 2xx: attempts with growing waits for three days, then the
/// message is `failed` and nothing more is queued.
#[tokio::test]
async fn a_message_is_retried_for_three_days_then_failed() {
    use shared::webhooks::Dispatched::*;
    let srv = TestServer::memory().await;
    let (supplier, inbox) = supplier_refusing_everything(&srv).await;
    let id = api_tests::emails::deal_to_approve(&srv).await;
    let start = srv.app.clock.now();
    assert_eq!(api_tests::emails::approve(&srv, id).await, 204);
    let mut seen = 0;
    let mut outcomes = Vec::new();
    for _ in 0..40 {
        outcomes.extend(
            dispatch(&srv, &mut seen).await.into_iter().filter(|o| *o != NoEndpoint && *o != Waiting),
        );
        if outcomes.last() == Some(&Failed) {
            break;
        }
        srv.app.clock.advance(chrono::Duration::minutes(15));
        // Jump the long waits: hop from one 15-minute delay to the next until the retry is due.
        for _ in 0..48 {
            let done = dispatch(&srv, &mut seen).await;
            if done.iter().any(|o| *o != Waiting) {
                outcomes.extend(done);
                break;
            }
            srv.app.clock.advance(chrono::Duration::minutes(15));
        }
        if outcomes.last() == Some(&Failed) {
            break;
        }
    }
    assert_eq!(outcomes.last(), Some(&Failed), "{outcomes:?}");
    assert!(outcomes[..outcomes.len() - 1].iter().all(|o| *o == Retrying), "{outcomes:?}");
    let attempts = inbox.lock().unwrap().len();
    assert_eq!(attempts, outcomes.len());
    assert!((9..=14).contains(&attempts), "{attempts} attempts in three days");
    assert!(srv.app.clock.now() - start <= chrono::Duration::days(3) + chrono::Duration::hours(13));
    let (_, body) = srv.get("/api/v1/webhooks/deliveries", Some(&supplier)).await;
    assert_eq!(body["deliveries"][0]["state"], "failed");
    assert!(body["deliveries"][0]["next_attempt_at"].is_null());
    srv.app.clock.advance(chrono::Duration::days(1));
    assert!(dispatch(&srv, &mut seen).await.is_empty(), "nothing more");
}

/// The messages a receiver got: (type, data), in order.
fn received(inbox: &Inbox) -> Vec<(String, Value)> {
    let got = inbox.lock().unwrap();
    got.iter()
        .map(|(_, body)| {
            let m: Value = serde_json::from_str(body).unwrap();
            (m["type"].as_str().unwrap().to_owned(), m["data"].clone())
        })
        .collect()
}

/// Everything queued until nothing more comes.
async fn dispatch_all(srv: &TestServer, seen: &mut usize) {
    while !dispatch(srv, seen).await.is_empty() {}
}

/// A deal's own `callback_url`, set by its supplier at creation: the deal's moves and its
/// payment's outcome go there, signed with the supplier's secret (made for them then: they
/// registered no endpoint), and to the consumer's own endpoint under theirs; a repeated gateway
/// callback sends nothing twice; the consumer's PATCH with `""` removes the URL.
#[tokio::test]
async fn a_deals_callback_url_gets_its_moves_and_payment_events() {
    let srv = TestServer::memory().await;
    let (supplier, consumer) = (token("21", &[]), token("14", &[]));
    let (hook, inbox) = receiver(StatusCode::OK).await;
    let (own, consumer_inbox) = receiver(StatusCode::OK).await;
    let (_, body) = srv
        .call(reqwest::Method::PUT, "/api/v1/webhooks/endpoint", Some(&consumer), Some(&json!({"url": own})))
        .await;
    let consumer_secret = body["endpoint"]["secret"].as_str().unwrap().to_owned();
    let order = |cb: &str| {
        json!({"order": {"order_description": "Сапоги", "verify_days": 3, "commission_payer": "consumer",
            "cost": "23", "supplier_id": "21", "consumer_id": "14", "callback_url": cb}})
    };
    for bad in ["ftp://partner.example/hook", "not a url", "http://user:pw@127.0.0.1/hook"] {
        let (status, body) = srv.post("/api/v1/orders", Some(&supplier), &order(bad)).await;
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (422, Some("order.callback_url")),
            "{bad}: {body}"
        );
    }
    let (status, created) = srv.post("/api/v1/orders", Some(&supplier), &order(&hook)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["order"]["callback_url"], hook.as_str());
    let id = created["order"]["id"].as_i64().unwrap();
    let (status, shown) = srv.get("/api/v1/webhooks/endpoint", Some(&supplier)).await;
    assert_eq!(status, 200, "the supplier has a secret now: {shown}");
    assert!(shown["endpoint"]["url"].is_null(), "{shown}");
    let secret = shown["endpoint"]["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    // The URL (which may carry the supplier's token) is the supplier's to read, not the consumer's.
    let (_, seen) = srv.get(&format!("/api/v1/orders/{id}"), Some(&consumer)).await;
    assert!(seen["order"]["callback_url"].is_null(), "{seen}");
    let (_, seen) = srv.get(&format!("/api/v1/orders/{id}"), Some(&supplier)).await;
    assert_eq!(seen["order"]["callback_url"], hook.as_str());

    // The consumer pays by card on the sandbox page; the gateway calls back twice.
    let (_, info) = srv.get(&format!("/api/v1/orders/{id}/payment_info"), Some(&consumer)).await;
    let url = info["gateway_url"].as_str().unwrap().to_owned();
    let html = srv.http.get(&url).send().await.unwrap().text().await.unwrap();
    let (action, fields) = api_tests::forms(&html).remove("succeeded").expect("a Pay button");
    assert!(srv.http.post(&action).form(&fields).send().await.unwrap().status().as_u16() < 400);
    let mut seen = 0;
    dispatch_all(&srv, &mut seen).await;
    assert!(srv.http.post(&action).form(&fields).send().await.unwrap().status().as_u16() < 500);
    dispatch_all(&srv, &mut seen).await;

    let got = received(&inbox);
    let kinds: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "deal.payment_succeeded").count(), 1, "{kinds:?}");
    let paid = &got.iter().find(|(k, _)| k == "deal.payment_succeeded").unwrap().1;
    let card = shared::deals::payment_owner::card_amount(
        &srv.app,
        &shared::deals::load(&srv.app, id).await.unwrap().unwrap().deal,
        shared::payments::GatewayKind::Sandbox,
    );
    assert_eq!(
        (paid["deal_id"].as_i64(), paid["amount"].as_str(), paid["status"].as_str()),
        (Some(id), Some(card.to_string().as_str()), Some("succeeded")),
        "{paid}"
    );
    assert!(
        got.iter().any(|(k, d)| k == "deal.state_changed" && d["state"] == "paid"),
        "the move to paid: {kinds:?}"
    );
    for (headers, body) in inbox.lock().unwrap().iter() {
        if let Some(verdict) = verify(&secret, headers, body) {
            assert_eq!(verdict["verified"], true, "signed with the supplier's secret: {verdict}");
        }
    }
    let theirs = received(&consumer_inbox);
    assert_eq!(theirs.iter().filter(|(k, _)| k == "deal.payment_succeeded").count(), 1, "{theirs:?}");
    for (headers, body) in consumer_inbox.lock().unwrap().iter() {
        if let Some(verdict) = verify(&consumer_secret, headers, body) {
            assert_eq!(verdict["verified"], true, "{verdict}");
        }
    }
    // The supplier's deliveries show the callback's messages.
    let (_, log) = srv.get("/api/v1/webhooks/deliveries", Some(&supplier)).await;
    assert_eq!(log["deliveries"].as_array().unwrap().len(), got.len(), "{log}");

    // The URL is the supplier's: the consumer can neither move nor remove it; the supplier can.
    let patch = |who: String, url: String| {
        let path = format!("/api/v1/orders/{id}");
        let srv = &srv;
        async move {
            let body = json!({"order": {"callback_url": url}});
            srv.call(reqwest::Method::PATCH, &path, Some(&who), Some(&body)).await
        }
    };
    let (status, body) = patch(consumer.clone(), own.clone()).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(patch(consumer.clone(), String::new()).await.0, 403);
    let (status, patched) = patch(supplier.clone(), String::new()).await;
    assert_eq!(status, 200, "{patched}");
    assert!(patched["order"]["callback_url"].is_null(), "{patched}");
}

/// A failed card payment is a `deal.payment_failed` message.
#[tokio::test]
async fn a_declined_card_payment_is_a_payment_failed_message() {
    let srv = TestServer::memory().await;
    let (supplier, consumer) = (token("21", &[]), token("14", &[]));
    let (hook, inbox) = receiver(StatusCode::OK).await;
    let body = json!({"order": {"order_description": "Сапоги", "verify_days": 3, "commission_payer": "consumer",
        "cost": "23", "supplier_id": "21", "consumer_id": "14", "callback_url": hook}});
    let (status, created) = srv.post("/api/v1/orders", Some(&supplier), &body).await;
    assert_eq!(status, 201, "{created}");
    let id = created["order"]["id"].as_i64().unwrap();
    let (_, info) = srv.get(&format!("/api/v1/orders/{id}/payment_info"), Some(&consumer)).await;
    let html =
        srv.http.get(info["gateway_url"].as_str().unwrap()).send().await.unwrap().text().await.unwrap();
    let forms = api_tests::forms(&html);
    let (action, fields) = forms.get("failed").expect("a Decline button");
    assert!(srv.http.post(action).form(fields).send().await.unwrap().status().as_u16() < 400);
    let mut seen = 0;
    dispatch_all(&srv, &mut seen).await;
    let got = received(&inbox);
    let failed: Vec<&Value> =
        got.iter().filter(|(k, _)| k == "deal.payment_failed").map(|(_, d)| d).collect();
    assert_eq!(failed.len(), 1, "{got:?}");
    assert_eq!((failed[0]["deal_id"].as_i64(), failed[0]["status"].as_str()), (Some(id), Some("failed")));
    assert!(!got.iter().any(|(k, _)| k == "deal.payment_succeeded"));
}

/// In production a deal's `callback_url` follows the endpoint rules (SSRF).
#[tokio::test]
async fn production_refuses_an_internal_callback_url() {
    let mut config = shared::Config::for_tests();
    config.jwt.secret = api_tests::SECRET.into();
    config.table_name = Some("tickets".into());
    let srv = TestServer::start_with(App::new(api_tests::memory_store(), config)).await;
    for url in ["http://partner.example/hook", "https://10.1.2.3/hook", "https://localhost/hook"] {
        let body = json!({"order": {"order_description": "x", "verify_days": 3, "commission_payer": "consumer",
            "cost": "23", "supplier_id": "21", "callback_url": url}});
        let (status, body) = srv.post("/api/v1/orders", Some(&token("21", &[])), &body).await;
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (422, Some("order.callback_url")),
            "{url}: {body}"
        );
    }
}

/// A queue that refuses its first delayed send (SQS unreachable for a moment).
struct RefusesOnce {
    inner: Arc<shared::outbox::MemoryQueue>,
    refused: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl shared::outbox::Queue for RefusesOnce {
    async fn send(&self, n: &shared::mail::Notification) -> Result<(), shared::ApiError> {
        self.inner.send(n).await
    }
    async fn send_delayed(
        &self,
        n: &shared::mail::Notification,
        delay: std::time::Duration,
    ) -> Result<(), shared::ApiError> {
        if !self.refused.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Err(shared::ApiError::Internal("the queue is unreachable".into()));
        }
        self.inner.send_delayed(n, delay).await
    }
}

/// A failed attempt whose retry the queue did not take: the message fails and comes again
/// (SQS), is tried again, and its retry is queued; it is not taken for a duplicate.
#[tokio::test]
async fn a_retry_the_queue_refused_is_not_lost() {
    use shared::webhooks::Dispatched::*;
    let srv = TestServer::memory().await;
    let (supplier, inbox) = supplier_refusing_everything(&srv).await;
    let id = api_tests::emails::deal_to_approve(&srv).await;
    assert_eq!(api_tests::emails::approve(&srv, id).await, 204);
    let q = srv.app.local_queue.clone().unwrap();
    let n = q.webhooks().into_iter().find(|n| n.to == "21").expect("the supplier's message");
    let shared::mail::Message::Webhook(m) = &n.message else { unreachable!() };
    let refusing = RefusesOnce { inner: q.clone(), refused: Default::default() };
    let d = shared::webhooks::Dispatcher {
        store: srv.app.store.as_ref(),
        queue: &refusing,
        now: srv.app.clock.now(),
        allow_loopback: true,
    };
    assert!(d.dispatch(&n, m).await.is_err(), "the retry was not queued: the message fails");
    assert!(q.take_delayed().is_empty());
    assert_eq!(d.dispatch(&n, m).await.unwrap(), Retrying, "the message again: tried again");
    assert_eq!(inbox.lock().unwrap().len(), 2);
    let retries = q.take_delayed();
    assert_eq!(retries.len(), 1, "its retry queued");
    let (_, body) = srv.get("/api/v1/webhooks/deliveries", Some(&supplier)).await;
    assert_eq!(body["deliveries"][0]["state"], "retrying", "{body}");
}
