//! Scheduled jobs. EventBridge rules invoke the scheduler function with `{"job": "<name>"}`;
//! `make run` ticks them in-process. Each job is idempotent and safe to run concurrently
//! with itself: it only finishes items through the same conditional writes as the API.

use serde::{Deserialize, Serialize};

use crate::error::ApiResult;
use crate::{App, Tally};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Job {
    /// Deals: rejected + 7 days → escalation; shipping past `end_of_protection` → received.
    Deals,
    /// Payments open past their timeout: ask the gateway, then confirm or cancel.
    Payments,
    /// Seat holds past `SEAT_TIMEOUT`: delete them. Cash orders unpaid at their deadline
    /// (`CASH_PAYMENT_HOURS`): cancel them and free their seats. Cancelled events: refund and
    /// cancel their orders.
    Reservations,
    /// Outbox items their relay did not move to the queue within a minute: relay them.
    Outbox,
}

impl Job {
    pub const ALL: [Job; 4] = [Job::Deals, Job::Payments, Job::Reservations, Job::Outbox];
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobReport {
    pub job: Option<Job>,
    /// Items examined.
    pub examined: usize,
    /// Items this run changed.
    pub changed: usize,
}

pub async fn run(app: &App, job: Job) -> ApiResult<JobReport> {
    let Tally { examined, changed } = match job {
        Job::Deals => crate::deals::sweep(app).await?,
        Job::Payments => crate::payments::reconcile(app).await?,
        Job::Reservations => {
            let (examined, changed) = crate::tickets::holds::sweep(app).await?;
            let (due, cancelled) = crate::tickets::orders::cancel_unpaid(app).await?;
            let (orders, moved) = crate::tickets::back_office::cancel_events(app).await?;
            Tally { examined: examined + due + orders, changed: changed + cancelled + moved }
        }
        Job::Outbox => crate::outbox::sweep(app).await?,
    };
    Ok(JobReport { job: Some(job), examined, changed })
}
