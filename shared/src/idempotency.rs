//! `Idempotency-Key` support for POSTs that create something.
//!
//! A key is scoped per endpoint and caller (`pk = idem#<scope>#<caller>#<key>`). The first
//! request with a key writes a marker (conditional create) and runs; its successful
//! response (status and JSON body) is stored with the SHA-256 of the request body and
//! replayed to every later request with the same key and the same body. The same key
//! with another body is 422 (field `Idempotency-Key`); a repeat while the first is still
//! running is 409. A failed first request removes its marker, so the client may retry
//! with the same key. Keys live 24 hours (item `ttl`, also checked on read).

use std::future::Future;

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::App;
use crate::error::{ApiError, ApiResult};
use crate::store::{Cond, Item, StoreError};

pub const HEADER: &str = "Idempotency-Key";
pub const LIFETIME_SECS: i64 = 24 * 3600;

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

/// Runs `f` at most once per (scope, caller, key); see the module docs.
pub async fn run<F, Fut>(
    app: &App,
    scope: &str,
    caller: &str,
    key: Option<&str>,
    body: &[u8],
    f: F,
) -> ApiResult<(StatusCode, Value)>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ApiResult<(StatusCode, Value)>>,
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
                    Ok((status, item.data.get("body").cloned().unwrap_or(Value::Null)))
                }
                None => Err(ApiError::Conflict(
                    "a request with this Idempotency-Key is still being processed".into(),
                )),
            };
        }
        let marker = Item::new(&pk, "idem", json!({ "hash": hash }).as_object().cloned().unwrap_or_default())
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

/// A JSON request body kept as bytes (to hash it), with the same rejections as
/// [`crate::http::JsonBody`]: a non-JSON content type is 415, a body over the limit 413.
pub struct RawJson(pub axum::body::Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for RawJson {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::rejection::BytesRejection;
        let json_type =
            req.headers().get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(|v| {
                let mime = v.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
                mime == "application/json" || mime.ends_with("+json")
            });
        if json_type == Some(false) {
            return Err(ApiError::UnsupportedMediaType);
        }
        axum::body::Bytes::from_request(req, state).await.map(RawJson).map_err(|e| match e {
            BytesRejection::FailedToBufferBody(_) => ApiError::PayloadTooLarge,
            other => ApiError::bad_request("body", other.body_text()),
        })
    }
}
