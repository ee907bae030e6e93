//! The scheduled-jobs function. One EventBridge rule per job invokes it with an
//! EventBridge-shaped event whose `detail` names the job:
//! `{"detail-type": "Scheduled Event", "source": "tickets.scheduler", "detail": {"job": "deals"}}`
//! (the rule's constant `Input`, see `template.yaml`). Jobs are idempotent and safe to run
//! concurrently with themselves (see `shared::jobs`), so an overlapping or repeated invocation
//! is harmless. A failed run returns an error: the invocation is retried by Lambda's async
//! retry policy and counted by the errors alarm.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};
use shared::jobs::{self, Job, JobReport};
use shared::{ApiError, App};

/// The `detail` of a scheduled event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobDetail {
    pub job: Job,
}

/// Runs the job the event names.
pub async fn handle(app: &App, event: EventBridgeEvent<JobDetail>) -> Result<JobReport, ApiError> {
    let job = event.detail.job;
    let report = jobs::run(app, job).await?;
    tracing::info!(?job, examined = report.examined, changed = report.changed, "job finished");
    Ok(report)
}
