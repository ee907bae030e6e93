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

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::App;
use crate::error::{ApiError, ApiResult};
use crate::http::RawJson;
use crate::retry::{Step, again_on_conflict, optimistic};
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

/// A POST that may carry an `Idempotency-Key`: the key (1 to 255 visible ASCII characters,
/// else 400) and the raw JSON body it is bound to (rejected as [`RawJson`] rejects it).
pub struct Keyed {
    pub key: Option<String>,
    pub body: Bytes,
}

impl FromRequest<App> for Keyed {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &App) -> Result<Self, Self::Rejection> {
        let key = key_from(req.headers())?;
        let RawJson(body) = RawJson::from_request(req, state).await?;
        Ok(Keyed { key, body })
    }
}

impl Keyed {
    /// [`run`] with this request's key and body, answered as HTTP.
    pub async fn answer<F, Fut>(&self, app: &App, scope: &str, caller: &str, f: F) -> ApiResult<Response>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ApiResult<Stored>>,
    {
        run(app, scope, caller, self.key.as_deref(), &self.body, f).await.map(respond)
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
) -> ApiResult<Stored>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ApiResult<Stored>>,
{
    let Some(key) = key else { return f().await };
    let now = app.clock.now().timestamp();
    let claim = Claim {
        pk: format!("idem#{scope}#{caller}#{key}"),
        hash: hex::encode(Sha256::digest(body)),
        now,
        ttl: Some(now + LIFETIME_SECS),
    };
    match optimistic("the Idempotency-Key", || claim.take(app)).await? {
        Taken::Answered(stored) => Ok(stored),
        Taken::Mine => claim.finish(app, f().await).await,
    }
}

/// One request's hold on a key.
struct Claim {
    pk: String,
    hash: String,
    now: i64,
    ttl: Option<i64>,
}

enum Taken {
    /// An earlier request with the key answered this.
    Answered(Stored),
    /// The marker is this request's: it runs.
    Mine,
}

impl Claim {
    /// Reads the key: replays a stored answer, refuses another body or a running request,
    /// clears an expired marker or one whose request died, or writes this request's marker.
    async fn take(&self, app: &App) -> ApiResult<Step<Taken>> {
        let Some(item) = app.store.get(&self.pk, "idem").await? else {
            let data = json!({ "hash": self.hash, "started": self.now });
            let marker =
                Item::new(&self.pk, "idem", data.as_object().cloned().unwrap_or_default()).with_ttl(self.ttl);
            return Ok(again_on_conflict(app.store.put(marker, Cond::NotExists).await)?.map(|()| Taken::Mine));
        };
        let expired = item.ttl.is_some_and(|t| t <= self.now);
        if !expired && item.data.get("hash").and_then(Value::as_str) != Some(self.hash.as_str()) {
            return Err(ApiError::invalid(HEADER, "this Idempotency-Key was used with another request body"));
        }
        if let (false, Some(status)) = (expired, item.data.get("status").and_then(Value::as_u64)) {
            let status = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK);
            let body = item.data.get("body").and_then(Value::as_str).unwrap_or("null").to_owned();
            return Ok(Step::Done(Taken::Answered((status, body))));
        }
        let started = item.data.get("started").and_then(Value::as_i64).unwrap_or(0);
        if !expired && started + LEASE_SECS > self.now {
            return Err(ApiError::Conflict(
                "a request with this Idempotency-Key is still being processed".into(),
            ));
        }
        // Expired but not yet removed by the backend, or held by a request that died: clear it.
        match app.store.delete(&self.pk, "idem", Cond::Version(item.version)).await {
            Ok(()) | Err(StoreError::Conflict { .. }) => Ok(Step::Again),
            Err(e) => Err(e.into()),
        }
    }

    /// Stores the answer for replay, or removes the marker of a request that failed (so the
    /// client may retry with the same key).
    async fn finish(&self, app: &App, result: ApiResult<Stored>) -> ApiResult<Stored> {
        match &result {
            Ok((status, body)) => {
                let data = json!({ "hash": self.hash, "status": status.as_u16(), "body": body });
                let done = Item::new(&self.pk, "idem", data.as_object().cloned().unwrap_or_default())
                    .with_ttl(self.ttl)
                    .with_version(2);
                if let Err(e) = app.store.put(done, Cond::Version(1)).await {
                    tracing::error!(error = %e, "could not store the idempotent response");
                }
            }
            Err(_) => {
                if let Err(e) = app.store.delete(&self.pk, "idem", Cond::Version(1)).await {
                    tracing::error!(error = %e, "could not remove the idempotency marker");
                }
            }
        }
        result
    }
}
