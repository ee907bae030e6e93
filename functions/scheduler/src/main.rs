//! The scheduled jobs function: each EventBridge rule invokes it with a constant input
//! `{"job": "payments"}` (or `deals`, `reservations`); it runs that job once and returns
//! its report. Jobs are idempotent and safe to overlap.

use lambda_http::lambda_runtime::{self, LambdaEvent, service_fn};
use serde_json::Value;
use shared::jobs::{self, Job};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let app = shared::App::from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let app = app.clone();
        async move {
            let payload = event.payload;
            // The rule's constant input, or an EventBridge event carrying it in `detail`.
            let name =
                payload.get("job").or_else(|| payload.get("detail").and_then(|d| d.get("job"))).cloned();
            let job: Job = serde_json::from_value(name.unwrap_or(Value::Null))
                .map_err(|e| format!("expected {{\"job\": \"deals|payments|reservations\"}}: {e}"))?;
            let report = jobs::run(&app, job).await.map_err(|e| e.to_string())?;
            tracing::info!(?job, examined = report.examined, changed = report.changed, "job finished");
            Ok::<_, lambda_runtime::Error>(serde_json::to_value(report)?)
        }
    }))
    .await
}
