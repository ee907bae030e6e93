//! Local-only helpers, mounted by the local server and by no Lambda function.
//!
//! - `GET /dev/outbox`: every email the in-process queue holds, oldest first, as the notifier
//!   would send it: `subject`, `text`, `html`, and its `attachments` (`filename`,
//!   `content_type`, `size`). 404 when the queue is SQS.
//! - `GET /dev/outbox/{id}`: that email's HTML with its images inline (`data:` URLs), to open
//!   in a browser.
//! - [`spawn_jobs`]: ticks every scheduled job in-process every `JOB_INTERVAL` seconds.
//! - [`Delayed`]: a store whose every round trip waits `STORE_DELAY_MS` first (`make bench`'s
//!   second run: what each call costs when a round trip takes as long as DynamoDB's).

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use base64::Engine;
use serde_json::{Value, json};
use shared::http::{Json, PathArg};
use shared::jobs::{self, Job};
use shared::mail::Notification;
use shared::store::{Cond, Counter, Item, QueryOpts, Store, StoreError, WriteOp};
use shared::{ApiError, ApiResult, App};

pub fn router() -> Router<App> {
    Router::new().route("/dev/outbox", get(outbox)).route("/dev/outbox/{id}", get(email_page))
}

fn queued(app: &App) -> ApiResult<Vec<Notification>> {
    let local = app
        .local_queue
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("local outbox (QUEUE_URL is set)".into()))?;
    Ok(local.distinct())
}

fn rendered(n: &Notification) -> ApiResult<notifier::Email> {
    notifier::Renderer::new().render(n).map_err(|e| ApiError::Internal(format!("{}: {e}", n.id)))
}

async fn outbox(State(app): State<App>) -> ApiResult<Json<Value>> {
    let mut messages = Vec::new();
    for n in queued(&app)? {
        let email = rendered(&n)?;
        let attachments: Vec<Value> = email
            .inline
            .iter()
            .map(|i| {
                json!({
                    "filename": format!("{}.png", i.cid.split('@').next().unwrap_or("image")),
                    "content_type": i.content_type,
                    "size": i.bytes.len(),
                })
            })
            .collect();
        messages.push(json!({
            "id": n.id, "template": n.template(), "to": n.to,
            "subject": email.subject, "text": email.text, "html": email.html,
            "attachments": attachments,
        }));
    }
    Ok(Json(json!({ "count": messages.len(), "messages": messages })))
}

/// The email's HTML, its `cid:` images replaced by `data:` URLs.
async fn email_page(State(app): State<App>, PathArg(id): PathArg<String>) -> ApiResult<impl IntoResponse> {
    let n =
        queued(&app)?.into_iter().find(|n| n.id == id).ok_or_else(|| ApiError::NotFound("email".into()))?;
    let email = rendered(&n)?;
    let mut html = email.html.clone();
    for img in &email.inline {
        let data = base64::engine::general_purpose::STANDARD.encode(&img.bytes);
        html = html.replace(&format!("cid:{}", img.cid), &format!("data:{};base64,{data}", img.content_type));
    }
    Ok(([(header::CACHE_CONTROL, "no-store")], Html(html)))
}

/// Runs every job every `JOB_INTERVAL` seconds until the process ends. A failing or panicking
/// run is logged and the next tick runs as usual.
pub fn spawn_jobs(app: App) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(app.config.job_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            for job in Job::ALL {
                let run_app = app.clone();
                match tokio::spawn(async move { jobs::run(&run_app, job).await }).await {
                    Ok(Ok(r)) if r.changed > 0 => {
                        tracing::info!(?job, examined = r.examined, changed = r.changed, "job ran")
                    }
                    Ok(Ok(r)) => tracing::debug!(?job, examined = r.examined, "job ran"),
                    Ok(Err(e)) => tracing::error!(?job, error = %e, "job failed"),
                    Err(e) => tracing::error!(?job, error = %e, "job panicked"),
                }
            }
        }
    })
}

/// Delivers the webhook messages of the in-process queue every 2 seconds (on AWS the notifier
/// does, from SQS): the local server's stand-in, so that a local receiver gets them.
pub fn spawn_webhooks(app: App) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen = 0;
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match shared::webhooks::dispatch_local(&app, seen).await {
                Ok((next, _)) => seen = next,
                Err(e) => tracing::error!(error = %e, "webhook dispatch failed"),
            }
        }
    })
}

/// A store that waits before every call, as if each round trip went over the network: with
/// DynamoDB's typical in-region latency (about 5 ms) a call's latency shows how many round
/// trips it makes one after another. For `make bench` only.
pub struct Delayed {
    inner: std::sync::Arc<dyn Store>,
    delay: std::time::Duration,
}

impl Delayed {
    pub fn new(inner: std::sync::Arc<dyn Store>, delay: std::time::Duration) -> Self {
        Delayed { inner, delay }
    }

    async fn wait(&self) {
        tokio::time::sleep(self.delay).await;
    }
}

#[async_trait::async_trait]
impl Store for Delayed {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        self.wait().await;
        self.inner.get(pk, sk).await
    }
    async fn batch_get(&self, keys: &[(String, String)]) -> Result<Vec<Item>, StoreError> {
        self.wait().await;
        self.inner.batch_get(keys).await
    }
    async fn put(&self, item: Item, cond: Cond) -> Result<(), StoreError> {
        self.wait().await;
        self.inner.put(item, cond).await
    }
    async fn delete(&self, pk: &str, sk: &str, cond: Cond) -> Result<(), StoreError> {
        self.wait().await;
        self.inner.delete(pk, sk, cond).await
    }
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        self.wait().await;
        self.inner.transact(ops).await
    }
    async fn query(&self, pk: &str, opts: QueryOpts) -> Result<Vec<Item>, StoreError> {
        self.wait().await;
        self.inner.query(pk, opts).await
    }
    async fn query_gsi1(&self, pk: &str, opts: QueryOpts) -> Result<Vec<Item>, StoreError> {
        self.wait().await;
        self.inner.query_gsi1(pk, opts).await
    }
    async fn add(&self, c: Counter) -> Result<i64, StoreError> {
        self.wait().await;
        self.inner.add(c).await
    }
}
