//! Reconciliation (seed 000's `ps_checkup`, job `payments`): every open payment past its
//! timeout is checked with its gateway and settled (one the gateway still calls unpaid is
//! canceled as expired); every settlement interrupted before its after-step (a dispatch
//! marker older than a minute) is finished; every refund whose answer was lost is asked
//! after. Safe to run twice at once: each step is a conditional write that finds itself done.

use super::settle::{Outcome, Settled, dispatch_index, finish_dispatch, settle};
use super::{OPEN_SHARDS, Payment, gateways, load, refunds, ts};
use crate::error::{ApiError, ApiResult};
use crate::store::QueryOpts;
use crate::{App, Tally};

/// How long a dispatch marker is left to the request that wrote it.
const DISPATCH_GRACE_SECS: i64 = 60;

pub async fn reconcile(app: &App) -> ApiResult<Tally> {
    let mut tally = Tally::default();
    settle_expired(app, &mut tally).await?;
    finish_interrupted(app, &mut tally).await?;
    let (examined, changed) = refunds::reconcile(app).await?;
    tally.examined += examined;
    tally.changed += changed;
    Ok(tally)
}

async fn finish_interrupted(app: &App, tally: &mut Tally) -> ApiResult<()> {
    let until = ts(app.clock.now() - chrono::Duration::seconds(DISPATCH_GRACE_SECS));
    for shard in 0..OPEN_SHARDS {
        let opts = QueryOpts { sk_until: Some(format!("{until}#~")), ..Default::default() };
        for item in app.store.query_gsi1(&dispatch_index(shard), opts).await? {
            tally.examined += 1;
            let Some(id) = item.data.get("payment_id").and_then(|v| v.as_str()) else { continue };
            let Some(p) = load(app, id).await? else {
                // The payment was deleted (a zoo session's DELETE): nothing to finish.
                let _ = app.store.delete(&item.pk, &item.sk, crate::store::Cond::Always).await;
                continue;
            };
            match finish_dispatch(app, &p).await {
                Ok(true) => tally.changed += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(payment = %p.id, error = %e, "interrupted settlement not finished; retried next run")
                }
            }
        }
    }
    Ok(())
}

async fn settle_expired(app: &App, tally: &mut Tally) -> ApiResult<()> {
    let now = ts(app.clock.now());
    for shard in 0..OPEN_SHARDS {
        let opts = QueryOpts { sk_until: Some(format!("{now}#~")), ..Default::default() };
        for item in app.store.query_gsi1(&format!("payments#open#{shard}"), opts).await? {
            tally.examined += 1;
            let p = match Payment::from_item(&item) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, pk = %item.pk, "unreadable payment skipped");
                    continue;
                }
            };
            let remote = match gateways::for_kind(app, p.gateway) {
                Ok(g) => g.query_status(app, &p).await,
                Err(e) => Err(e),
            };
            let outcome = match remote {
                Ok(remote) => Outcome::of(remote).unwrap_or(Outcome::Canceled { reason: "expired".into() }),
                Err(e) => {
                    tracing::warn!(payment = %p.id, error = %e, "gateway status query failed; retried next run");
                    continue;
                }
            };
            match settle(app, &p.id, outcome).await {
                Ok(Settled::Now(_)) => tally.changed += 1,
                Ok(Settled::Already(_)) | Err(ApiError::NotFound(_)) => {}
                Err(e) => tracing::warn!(payment = %p.id, error = %e, "reconciliation could not settle"),
            }
        }
    }
    Ok(())
}
