//! Partner webhooks per the Standard Webhooks specification (<https://www.standardwebhooks.com>).
//!
//! A user registers one endpoint (`PUT /api/v1/webhooks/endpoint {url}`) and gets its secret,
//! `whsec_` + base64 of 32 random bytes. Every message is POSTed as JSON
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
use crate::store::{Cond, Item};

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
/// link-local, unique-local, shared (CGNAT), unspecified, multicast or documentation space.
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
                || (o[0] == 100 && (64..128).contains(&o[1])))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || s[0] == 0x2001 && s[1] == 0x0db8)
        }
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

/// A user's registered endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub owner: String,
    pub url: String,
    pub secret: String,
    pub created_at: DateTime<Utc>,
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
    Ok(match app.store.get(&pk(owner), SK).await? {
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
                e.url = url.to_string();
                e.updated_at = now;
                (e, Cond::Version(item.version), item.version + 1)
            }
            None => {
                let e = Endpoint {
                    owner: owner.to_owned(),
                    url: url.to_string(),
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

/// One delivery attempt's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    pub message_id: String,
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
    let loopback = allow_loopback(app);
    let url = check_url(url, loopback)?;
    let at = app.clock.now();
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
    let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let body = message("webhook.ping", app.clock.now(), json!({"endpoint": e.url}));
    send(app, &e.url, &e.secret, &id, &body).await
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
            "https://user:pw@example.com/hook",
            "ftp://example.com/hook",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        assert!(check_url("https://hooks.partner.example/in", false).is_ok());
        assert!(check_url("https://93.184.216.34/in", false).is_ok());
        // The local server may reach a receiver on this machine.
        assert!(check_url("http://127.0.0.1:9000/hook", true).is_ok());
        assert!(check_url("http://10.0.0.5/hook", true).is_err());
    }
}
