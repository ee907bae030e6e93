//! Partner webhooks per the Standard Webhooks specification (<https://www.standardwebhooks.com>).
//!
//! A user registers one endpoint (`PUT /api/v1/webhooks/endpoint {url}`) and gets its secret,
//! `whsec_` + base64 of 32 random bytes. A deal may also name its own `callback_url`: the
//! deal's messages go there too, signed with the secret of the party who set it (made for them
//! then if they had none; `GET /api/v1/webhooks/endpoint` shows it, with `url` null when they
//! registered no endpoint of their own). Every message is POSTed as JSON
//! `{type, timestamp, data}` with the headers `webhook-id` (the message id: one per event, the
//! receiver's de-duplication key), `webhook-timestamp` (Unix seconds) and `webhook-signature`
//! (`v1,` + base64 HMAC-SHA256, keyed with the secret's decoded bytes, of
//! `<id>.<timestamp>.<body>`).
//!
//! The sender refuses what would let a caller reach inside the network (SSRF): in production
//! only `https` URLs whose host resolves to public addresses only, connected to the address
//! checked (no second lookup a rebinding DNS could answer differently), no redirects, a 5 s
//! timeout. The local server (the embedded store) also allows `http` and loopback, so a local
//! receiver can be tried.

use std::net::{IpAddr, SocketAddr};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::App;
use crate::error::{ApiError, ApiResult};
use crate::mail::{Message, Notification, WebhookMessage};
use crate::outbox::{MAX_DELAY, Queue};
use crate::store::{Cond, Item, QueryOpts, Store};

const SECRET_PREFIX: &str = "whsec_";
const SK: &str = "endpoint";

/// A new endpoint secret.
pub fn new_secret() -> String {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    format!("{SECRET_PREFIX}{}", B64.encode(key))
}

/// `webhook-signature`: `v1,` + base64 HMAC-SHA256 of `<id>.<timestamp>.<body>` keyed with the
/// secret's bytes.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> ApiResult<String> {
    let key = B64
        .decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret))
        .map_err(|e| ApiError::Internal(format!("webhook secret: {e}")))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|e| ApiError::Internal(e.to_string()))?;
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    Ok(format!("v1,{}", B64.encode(mac.finalize().into_bytes())))
}

/// Why a URL may not receive webhooks.
fn refuse(why: impl Into<String>) -> ApiError {
    ApiError::invalid("url", why)
}

/// Whether an address is one a webhook may reach in production: not loopback, private,
/// link-local, unique-local, site-local, shared (CGNAT), benchmarking, reserved, IETF protocol
/// assignments, unspecified, multicast or documentation space; an IPv6 address that carries an
/// IPv4 one (mapped, compatible, NAT64, 6to4) is judged by that one.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 198 && (o[1] == 18 || o[1] == 19))
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = carried_v4(v6) {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
                || s[0] == 0x2001 && s[1] == 0x0db8)
        }
    }
}

/// The IPv4 address an IPv6 one carries: IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible
/// (`::a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`) or 6to4 (`2002:aabb:ccdd::`).
fn carried_v4(v6: std::net::Ipv6Addr) -> Option<std::net::Ipv4Addr> {
    let s = v6.segments();
    let low = || std::net::Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(low()),
        [0, 0, 0, 0, 0, 0, _, _] if !(s[6] == 0 && s[7] <= 1) => Some(low()),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low()),
        [0x2002, hi, lo, ..] => {
            Some(std::net::Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8))
        }
        _ => None,
    }
}

/// Checks an endpoint URL as given (before any lookup): `https` (or, where loopback is
/// allowed, `http`), a host, no credentials, at most 2000 characters.
pub fn check_url(raw: &str, allow_loopback: bool) -> ApiResult<url::Url> {
    if raw.len() > 2000 {
        return Err(refuse("at most 2000 characters"));
    }
    let url = url::Url::parse(raw.trim()).map_err(|e| refuse(format!("not a URL: {e}")))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_loopback => {}
        _ => return Err(refuse("must be an https URL")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("must not carry credentials"));
    }
    let Some(host) = url.host() else { return Err(refuse("must name a host")) };
    let literal = match host {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(d) if d.eq_ignore_ascii_case("localhost") => Some(IpAddr::from([127, 0, 0, 1])),
        url::Host::Domain(_) => None,
    };
    if let Some(ip) = literal
        && !is_public(ip)
        && !(allow_loopback && ip.is_loopback())
    {
        return Err(refuse("must not point at a loopback, private or reserved address"));
    }
    Ok(url)
}

/// The address to connect to: the host's addresses, every one of them public (a name that
/// resolves to any internal address is refused), or loopback where allowed.
async fn resolve(url: &url::Url, allow_loopback: bool) -> ApiResult<SocketAddr> {
    let host = url.host_str().ok_or_else(|| refuse("must name a host"))?;
    let port = url.port_or_known_default().unwrap_or(443);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let lookup =
        tokio::time::timeout(std::time::Duration::from_secs(3), tokio::net::lookup_host((host, port)));
    let addrs: Vec<SocketAddr> = match lookup.await {
        Ok(Ok(found)) => found.collect(),
        _ => return Err(refuse("the host does not resolve")),
    };
    let allowed = |a: &SocketAddr| is_public(a.ip()) || (allow_loopback && a.ip().is_loopback());
    match addrs.first() {
        Some(first) if addrs.iter().all(allowed) => Ok(*first),
        Some(_) => Err(refuse("the host resolves to a loopback, private or reserved address")),
        None => Err(refuse("the host does not resolve")),
    }
}

/// A user's registered endpoint and signing secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub owner: String,
    /// None for a user who has only a deal's `callback_url` (a secret, no endpoint of their own).
    #[serde(default)]
    pub url: Option<String>,
    pub secret: String,
    #[serde(with = "crate::time::utc")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::time::utc")]
    pub updated_at: DateTime<Utc>,
}

fn pk(owner: &str) -> String {
    format!("webhook_endpoint#{owner}")
}

/// Whether this deployment lets webhooks reach loopback over plain http (the local server).
fn allow_loopback(app: &App) -> bool {
    app.config.table_name.is_none()
}

pub async fn endpoint(app: &App, owner: &str) -> ApiResult<Option<Endpoint>> {
    endpoint_in(app.store.as_ref(), owner).await
}

async fn endpoint_in(store: &dyn Store, owner: &str) -> ApiResult<Option<Endpoint>> {
    Ok(match store.get(&pk(owner), SK).await? {
        Some(item) => Some(item.decode()?),
        None => None,
    })
}

/// Registers (or moves) the owner's endpoint; its secret is made on the first registration
/// and kept when the URL changes.
pub async fn register(app: &App, owner: &str, url: &str) -> ApiResult<Endpoint> {
    let url = check_url(url, allow_loopback(app))?;
    let now = app.clock.now();
    crate::retry::optimistic("the webhook endpoint", || async {
        let current = app.store.get(&pk(owner), SK).await?;
        let (endpoint, cond, version) = match &current {
            Some(item) => {
                let mut e: Endpoint = item.decode()?;
                e.url = Some(url.to_string());
                e.updated_at = now;
                (e, Cond::Version(item.version), item.version + 1)
            }
            None => {
                let e = Endpoint {
                    owner: owner.to_owned(),
                    url: Some(url.to_string()),
                    secret: new_secret(),
                    created_at: now,
                    updated_at: now,
                };
                (e, Cond::NotExists, 1)
            }
        };
        let item = Item::from_value(pk(owner), SK, &endpoint)?.with_version(version);
        Ok(crate::retry::again_on_conflict(app.store.put(item, cond).await)?.map(|()| endpoint.clone()))
    })
    .await
}

/// Checks a deal's `callback_url` as a webhook URL of this deployment, naming `field`.
pub fn check_callback(app: &App, field: &str, raw: &str) -> ApiResult<String> {
    if raw.len() > 2000 {
        return Err(ApiError::invalid(field, "at most 2000 characters"));
    }
    match check_url(raw, allow_loopback(app)) {
        Ok(url) => Ok(url.to_string()),
        Err(ApiError::Validation(errors)) => Err(ApiError::Validation(
            errors.into_iter().map(|e| crate::error::FieldError { field: field.to_owned(), ..e }).collect(),
        )),
        Err(e) => Err(e),
    }
}

/// Makes sure `owner` has a signing secret (for a deal's `callback_url` they set): a secret
/// without an endpoint URL when they have none. Two at once make one (the loser reads it).
pub async fn ensure_secret(app: &App, owner: &str) -> ApiResult<()> {
    if app.store.get(&pk(owner), SK).await?.is_some() {
        return Ok(());
    }
    let now = app.clock.now();
    let e = Endpoint {
        owner: owner.to_owned(),
        url: None,
        secret: new_secret(),
        created_at: now,
        updated_at: now,
    };
    match app.store.put(Item::from_value(pk(owner), SK, &e)?.with_version(1), Cond::NotExists).await {
        Err(e) if e.is_conflict() => Ok(()),
        other => Ok(other?),
    }
}

/// One delivery attempt's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub message_id: String,
    #[serde(with = "crate::time::utc")]
    pub at: DateTime<Utc>,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<u16>,
    /// 2xx.
    pub ok: bool,
    /// Why it failed, when it did not answer (the URL is never part of it).
    pub error: Option<String>,
}

/// The message body: `{type, timestamp, data}`.
pub fn message(kind: &str, at: DateTime<Utc>, data: Value) -> Value {
    json!({"type": kind, "timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true), "data": data})
}

/// POSTs one signed message to `url`: the address checked and pinned, no redirects, 5 s.
pub async fn send(app: &App, url: &str, secret: &str, message_id: &str, body: &Value) -> ApiResult<Attempt> {
    send_to(allow_loopback(app), app.clock.now(), url, secret, message_id, body).await
}

async fn send_to(
    loopback: bool,
    at: DateTime<Utc>,
    url: &str,
    secret: &str,
    message_id: &str,
    body: &Value,
) -> ApiResult<Attempt> {
    let url = check_url(url, loopback)?;
    let body = serde_json::to_string(body).map_err(|e| ApiError::Internal(e.to_string()))?;
    // The wall clock, not the app's: receivers refuse timestamps more than 5 minutes from theirs.
    let timestamp = Utc::now().timestamp();
    let signature = sign(secret, message_id, timestamp, &body)?;
    let failed = |why: &str| Attempt {
        message_id: message_id.to_owned(),
        at,
        status: None,
        ok: false,
        error: Some(why.to_owned()),
    };
    let addr = match resolve(&url, loopback).await {
        Ok(a) => a,
        Err(_) => return Ok(failed("the host does not resolve to a public address")),
    };
    let host = url.host_str().unwrap_or_default().to_owned();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(5))
        .resolve(&host, addr)
        .build()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let sent = client
        .post(url)
        .header("content-type", "application/json")
        .header("user-agent", "tickets-backend-webhooks/1")
        .header("webhook-id", message_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    Ok(match sent {
        Ok(res) => {
            let status = res.status();
            Attempt {
                message_id: message_id.to_owned(),
                at,
                status: Some(status.as_u16()),
                ok: status.is_success(),
                error: None,
            }
        }
        Err(e) if e.is_timeout() => failed("timed out after 5 s"),
        Err(_) => failed("could not connect"),
    })
}

/// Sends the owner's endpoint a `webhook.ping` message now (to try a receiver).
pub async fn ping(app: &App, owner: &str) -> ApiResult<Attempt> {
    let e = endpoint(app, owner).await?.ok_or_else(|| ApiError::NotFound("webhook endpoint".into()))?;
    let url = e.url.ok_or_else(|| ApiError::NotFound("webhook endpoint".into()))?;
    let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let body = message("webhook.ping", app.clock.now(), json!({"endpoint": url}));
    send(app, &url, &e.secret, &id, &body).await
}

/// How long a message is retried: three days from its event.
pub const RETRY_FOR: chrono::Duration = chrono::Duration::days(3);

/// The wait after failed attempt `n` (1 first): 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h,
/// 8 h, then every 12 h, for up to [`RETRY_FOR`] after the event.
pub fn backoff(n: u32) -> chrono::Duration {
    const STEPS: [i64; 8] = [30, 120, 600, 1800, 3600, 7200, 14400, 28800];
    chrono::Duration::seconds(STEPS.get(n.saturating_sub(1) as usize).copied().unwrap_or(43200))
}

/// A message's deliveries to one endpoint: every attempt and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub message_id: String,
    pub kind: String,
    #[serde(with = "crate::time::utc")]
    pub occurred_at: DateTime<Utc>,
    /// `retrying` (another attempt is queued), `delivered` (a 2xx: no more attempts) or
    /// `failed` (three days of attempts without one).
    pub state: String,
    pub attempts: Vec<Attempt>,
    #[serde(default, with = "crate::time::utc_opt")]
    pub next_attempt_at: Option<DateTime<Utc>>,
}

fn delivery_key(owner: &str, occurred_at: DateTime<Utc>, id: &str) -> (String, String) {
    (
        format!("webhook_delivery#{owner}"),
        format!("{}#{id}", occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
    )
}

/// A webhook message for `owner` about an event now (for the outbox, in the transaction of
/// the change): its id is the receiver's `webhook-id`, kept by every retry.
pub fn notice(id: String, owner: &str, kind: &str, at: DateTime<Utc>, data: Value) -> Notification {
    let m = WebhookMessage {
        kind: kind.to_owned(),
        occurred_at: at,
        data,
        attempt: 1,
        not_before: None,
        url: None,
    };
    Notification::new(id, owner, Message::Webhook(m))
}

/// A webhook message to `url` (a deal's `callback_url`), signed with `owner`'s secret and
/// logged in their deliveries.
pub fn notice_to(
    id: String,
    owner: &str,
    url: &str,
    kind: &str,
    at: DateTime<Utc>,
    data: Value,
) -> Notification {
    let mut n = notice(id, owner, kind, at, data);
    if let Message::Webhook(m) = &mut n.message {
        m.url = Some(url.to_owned());
    }
    n
}

/// What became of one queue message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dispatched {
    /// A 2xx.
    Delivered,
    /// Not a 2xx: another attempt is queued.
    Retrying,
    /// Not a 2xx, and its three days are over.
    Failed,
    /// Its owner has no endpoint (and the message names no URL of its own): nothing to do.
    NoEndpoint,
    /// Delivered before, or this attempt was made before (a queue message delivered twice).
    Duplicate,
    /// Too early for this retry: queued again for later.
    Waiting,
}

/// What dispatching needs: the table, the queue for retries, the time, and whether loopback
/// receivers are allowed (the local server).
pub struct Dispatcher<'a> {
    pub store: &'a dyn Store,
    pub queue: &'a dyn Queue,
    pub now: DateTime<Utc>,
    pub allow_loopback: bool,
}

impl Dispatcher<'_> {
    /// Delivers one webhook message (`n` carries `m`): one attempt, recorded on the delivery;
    /// a failure queues the next attempt after [`backoff`] (as several queue delays of at most
    /// 15 minutes when longer), until three days after the event.
    pub async fn dispatch(&self, n: &Notification, m: &WebhookMessage) -> ApiResult<Dispatched> {
        if let Some(at) = m.not_before.filter(|at| *at > self.now) {
            self.queue.send_delayed(n, wait(at - self.now)).await?;
            return Ok(Dispatched::Waiting);
        }
        let Some(endpoint) = endpoint_in(self.store, &n.to).await? else { return Ok(Dispatched::NoEndpoint) };
        let Some(url) = m.url.as_ref().or(endpoint.url.as_ref()) else { return Ok(Dispatched::NoEndpoint) };
        let (pk, sk) = delivery_key(&n.to, m.occurred_at, &n.id);
        let (mut d, cond, version) = self.delivery(&pk, &sk, n, m).await?;
        if d.state == "delivered" || d.attempts.len() >= m.attempt as usize {
            return Ok(Dispatched::Duplicate);
        }
        let body = message(&m.kind, m.occurred_at, m.data.clone());
        let attempt = match send_to(self.allow_loopback, self.now, url, &endpoint.secret, &n.id, &body).await
        {
            Ok(a) => a,
            // The endpoint is no longer acceptable (moved inside the network): a failed attempt.
            Err(e) => Attempt {
                message_id: n.id.clone(),
                at: self.now,
                status: None,
                ok: false,
                error: Some(e.to_string()),
            },
        };
        let ok = attempt.ok;
        d.attempts.push(attempt);
        let retry_at =
            Some(self.now + backoff(m.attempt)).filter(|at| !ok && *at < m.occurred_at + RETRY_FOR);
        d.state = if ok {
            "delivered"
        } else if retry_at.is_some() {
            "retrying"
        } else {
            "failed"
        }
        .into();
        d.next_attempt_at = retry_at;
        // The next attempt is queued before this one is recorded: a queue that refuses it fails
        // the message, which comes again and is tried again (its attempt not yet recorded).
        // Recorded first, the message coming again would be a duplicate, and the retry lost.
        if let Some(at) = retry_at {
            self.queue_retry(n, m, at).await?;
        }
        let ttl = (m.occurred_at + chrono::Duration::days(30)).timestamp();
        self.store.put(Item::from_value(pk, sk, &d)?.with_version(version).with_ttl(Some(ttl)), cond).await?;
        tracing::info!(message = %n.id, owner = %n.to, attempt = m.attempt, ok, state = %d.state, "webhook attempt");
        crate::metrics::count("WebhookAttempts", &[("Outcome", d.state.as_str())]);
        Ok(if ok {
            Dispatched::Delivered
        } else if retry_at.is_some() {
            Dispatched::Retrying
        } else {
            Dispatched::Failed
        })
    }
}

impl Dispatcher<'_> {
    /// The message's delivery record as stored (with the condition and version to write it
    /// on), or a new one.
    async fn delivery(
        &self,
        pk: &str,
        sk: &str,
        n: &Notification,
        m: &WebhookMessage,
    ) -> ApiResult<(Delivery, Cond, u64)> {
        Ok(match self.store.get(pk, sk).await? {
            Some(item) => (item.decode::<Delivery>()?, Cond::Version(item.version), item.version + 1),
            None => (
                Delivery {
                    message_id: n.id.clone(),
                    kind: m.kind.clone(),
                    occurred_at: m.occurred_at,
                    state: "retrying".into(),
                    attempts: Vec::new(),
                    next_attempt_at: None,
                },
                Cond::NotExists,
                1,
            ),
        })
    }

    /// Queues the next attempt of the message, due `at`.
    async fn queue_retry(&self, n: &Notification, m: &WebhookMessage, at: DateTime<Utc>) -> ApiResult<()> {
        let next = WebhookMessage { attempt: m.attempt + 1, not_before: Some(at), ..m.clone() };
        let again = Notification { message: Message::Webhook(next), ..n.clone() };
        self.queue.send_delayed(&again, wait(at - self.now)).await
    }
}

/// A queue delay for a wait: at most the queue's limit (a longer wait is another hop).
fn wait(d: chrono::Duration) -> std::time::Duration {
    d.to_std().unwrap_or_default().min(MAX_DELAY)
}

/// The owner's latest deliveries, newest first.
pub async fn deliveries(app: &App, owner: &str, limit: usize) -> ApiResult<Vec<Delivery>> {
    let opts = QueryOpts { descending: true, limit: Some(limit), ..Default::default() };
    let items = app.store.query(&format!("webhook_delivery#{owner}"), opts).await?;
    items.iter().map(|i| i.decode().map_err(ApiError::from)).collect()
}

/// Delivers the webhook messages the in-process queue holds (the local server and tests):
/// those sent without delay since `from` (answers the new position), and every delayed one,
/// re-dispatched as if its delay had passed (a retry early for its time waits again).
pub async fn dispatch_local(app: &App, from: usize) -> ApiResult<(usize, Vec<Dispatched>)> {
    let Some(queue) = app.local_queue.as_ref() else { return Ok((from, Vec::new())) };
    let d = Dispatcher {
        store: app.store.as_ref(),
        queue: queue.as_ref(),
        now: app.clock.now(),
        allow_loopback: allow_loopback(app),
    };
    let fresh = queue.webhooks();
    let mut out = Vec::new();
    let delayed: Vec<Notification> = queue.take_delayed().into_iter().map(|(n, _)| n).collect();
    for n in fresh.iter().skip(from).chain(&delayed) {
        if let Message::Webhook(m) = &n.message {
            match d.dispatch(n, m).await {
                Ok(done) => out.push(done),
                // Tried again later, as SQS would redeliver it.
                Err(e) => {
                    tracing::warn!(message = %n.id, error = %e, "webhook dispatch failed; retried");
                    queue.send_delayed(n, std::time::Duration::from_secs(30)).await?;
                }
            }
        }
    }
    Ok((fresh.len(), out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_specifications() {
        // The Standard Webhooks specification's example (its reference libraries' test vector).
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        let sig = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn internal_addresses_are_refused_in_production() {
        for bad in [
            "http://example.com/hook",
            "https://127.0.0.1/hook",
            "https://localhost/hook",
            "https://10.0.0.5/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/hook",
            "https://[fd00::1]/hook",
            "https://100.64.0.1/hook",
            "https://198.18.0.1/hook",
            "https://192.0.0.8/hook",
            "https://240.0.0.1/hook",
            "https://[::ffff:10.0.0.5]/hook",
            "https://[::10.0.0.5]/hook",
            "https://[64:ff9b::a9fe:a9fe]/hook",
            "https://[2002:a00:5::1]/hook",
            "https://[fec0::1]/hook",
            "https://user:pw@example.com/hook",
            "ftp://example.com/hook",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        assert!(check_url("https://hooks.partner.example/in", false).is_ok());
        assert!(check_url("https://93.184.216.34/in", false).is_ok());
        for good in [
            "https://[2606:2800:220:1::1]/in",
            "https://[64:ff9b::5db8:d822]/in",
            "https://[2002:5db8:d822::1]/in",
        ] {
            assert!(check_url(good, false).is_ok(), "{good}");
        }
        // The local server may reach a receiver on this machine.
        assert!(check_url("http://127.0.0.1:9000/hook", true).is_ok());
        assert!(check_url("http://10.0.0.5/hook", true).is_err());
    }
}
