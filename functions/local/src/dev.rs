//! Local-only helpers, mounted by the local server and by no Lambda function.
//!
//! - `GET /dev/outbox`: the notifications the in-process outbox holds — what the notifier
//!   would send — oldest first, with the rendered subject. 404 when the outbox is SQS.
//! - [`spawn_jobs`]: ticks every scheduled job in-process every `JOB_INTERVAL` seconds.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use shared::jobs::{self, Job};
use shared::{ApiError, ApiResult, App};

pub fn router() -> Router<App> {
    Router::new().route("/dev/outbox", get(outbox))
}

async fn outbox(State(app): State<App>) -> ApiResult<Json<Value>> {
    let local = app
        .local_outbox
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("local outbox (QUEUE_URL is set)".into()))?;
    let renderer = notifier::Renderer::new();
    let messages: Vec<Value> = local
        .messages()
        .into_iter()
        .map(|n| {
            let subject = match renderer.render(&n) {
                Ok(email) => Value::String(email.subject),
                Err(e) => json!({ "error": e.to_string() }),
            };
            json!({ "id": n.id, "template": n.template, "to": n.to, "subject": subject, "data": n.data })
        })
        .collect();
    Ok(Json(json!({ "count": messages.len(), "messages": messages })))
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
