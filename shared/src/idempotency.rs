//! `Idempotency-Key` support for POSTs that create something.
//!
//! A key is scoped per endpoint and caller (`pk = idem#<scope>#<caller>#<key>`). The first
//! request with a key writes a marker (conditional create) and runs; its successful
//! response (status and JSON body) is stored with the SHA-256 of the request body and
//! replayed to every later request with the same key and the same body. The same key
//! with another body is 422 (field `Idempotency-Key`); a repeat while the first is still
//! running is 409. A failed first request removes its marker, so the client may retry
//! with the same key. Keys live 24 hours (item `ttl`, also checked on read).
//!
//! A marker left by a request that died mid-way (its function timed out, or its last write
//! was applied but reported failed) would block the key; so a marker older than
//! [`LEASE_SECS`] (well past the HTTP functions' 10-second timeout) is taken over by the
//! next request with the key, which runs the operation again. The operations that take a
//! key are written so that running one again finds what the first run did (a checked-out
//! reservation answers its order) or creates it once more only if the first run created
//! nothing visible.

use std::future::Future;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::App;
use crate::error::{ApiError, ApiResult};
use crate::store::{Cond, Item, StoreError};

pub const HEADER: &str = "Idempotency-Key";
pub const LIFETIME_SECS: i64 = 24 * 3600;
/// How long a request may hold a key's in-progress marker before another may take it over.
pub const LEASE_SECS: i64 = 60;

/// The request's key, if any: 1 to 255 visible ASCII characters (else 400).
pub fn key_from(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(v) = headers.get(HEADER) else { return Ok(None) };
    let k = v
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()));
    match k {
        Some(k) => Ok(Some(k.to_owned())),
        None => {
            Err(ApiError::bad_request(HEADER, "Idempotency-Key must be 1 to 255 visible ASCII characters"))
        }
    }
}

/// A response as stored for replay: the status and the JSON body as written, so money and
/// every other value come back byte for byte.
pub type Stored = (StatusCode, String);

/// Serializes a JSON answer for [`run`].
pub fn stored<T: serde::Serialize>(status: StatusCode, body: &T) -> ApiResult<Stored> {
    serde_json::to_string(body).map(|b| (status, b)).map_err(|e| ApiError::Internal(e.to_string()))
}

/// The HTTP response of a stored answer.
pub fn respond((status, body): Stored) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Runs `f` at most once per (scope, caller, key); see the module docs.
pub async fn run<F, Fut>(
    app: &App,
    scope: &str,
    caller: &str,
    key: Option<&str>,
    body: &[u8],
    f: F,
) -> ApiResult<Stored>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ApiResult<Stored>>,
{
    let Some(key) = key else { return f().await };
    let pk = format!("idem#{scope}#{caller}#{key}");
    let hash = hex::encode(Sha256::digest(body));
    let now = app.clock.now().timestamp();
    let ttl = Some(now + LIFETIME_SECS);
    for _ in 0..3 {
        if let Some(item) = app.store.get(&pk, "idem").await? {
            if item.ttl.is_some_and(|t| t <= now) {
                // Expired but not yet removed by the backend.
                match app.store.delete(&pk, "idem", Cond::Version(item.version)).await {
                    Ok(()) | Err(StoreError::Conflict { .. }) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            if item.data.get("hash").and_then(Value::as_str) != Some(hash.as_str()) {
                return Err(ApiError::invalid(
                    HEADER,
                    "this Idempotency-Key was used with another request body",
                ));
            }
            return match item.data.get("status").and_then(Value::as_u64) {
                Some(status) => {
                    let status = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK);
                    let body = item.data.get("body").and_then(Value::as_str).unwrap_or("null").to_owned();
                    Ok((status, body))
                }
                None if item.data.get("started").and_then(Value::as_i64).unwrap_or(0) + LEASE_SECS <= now => {
                    // The request holding the marker died: take over.
                    match app.store.delete(&pk, "idem", Cond::Version(item.version)).await {
                        Ok(()) | Err(StoreError::Conflict { .. }) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                None => Err(ApiError::Conflict(
                    "a request with this Idempotency-Key is still being processed".into(),
                )),
            };
        }
        let marker = Item::new(
            &pk,
            "idem",
            json!({ "hash": hash, "started": now }).as_object().cloned().unwrap_or_default(),
        )
        .with_ttl(ttl);
        match app.store.put(marker, Cond::NotExists).await {
            Ok(()) => {}
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
        return match f().await {
            Ok((status, body)) => {
                let data = json!({ "hash": hash, "status": status.as_u16(), "body": body });
                let done = Item::new(&pk, "idem", data.as_object().cloned().unwrap_or_default())
                    .with_ttl(ttl)
                    .with_version(2);
                if let Err(e) = app.store.put(done, Cond::Version(1)).await {
                    tracing::error!(error = %e, "could not store the idempotent response");
                }
                Ok((status, body))
            }
            Err(e) => {
                if let Err(de) = app.store.delete(&pk, "idem", Cond::Version(1)).await {
                    tracing::error!(error = %de, "could not remove the idempotency marker");
                }
                Err(e)
            }
        };
    }
    Err(ApiError::Conflict("a request with this Idempotency-Key is still being processed".into()))
}
