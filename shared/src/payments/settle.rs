//! Settlement: the one code path that finishes a payment, for gateway callbacks, browser
//! returns and the reconciliation job, with the amount rule and the late-payment rule (see
//! the module docs of [`super`]). The settling transaction holds the payment's write, its
//! owner's writes and emails; an anomaly adds its refund (queued), its notices, and a
//! dispatch marker that stays until the refund was sent.

use rust_decimal::Decimal;
use serde_json::json;

use super::gateway::{CallbackEvent, Remote};
use super::owner::Settlement;
use super::refunds;
use super::{Anomaly, AnomalyKind, GatewayKind, Payment, Status, gateways, get, notices, shard, ts};
use crate::App;
use crate::error::{ApiError, ApiResult};
use crate::retry::{Step, again_on_conflict, optimistic};
use crate::store::{Cond, Item, WriteOp};

const DISPATCH_SK: &str = "dispatch";

/// How a payment ends, as its gateway reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Paid: the gateway's amount and currency (checked against the payment and its owner).
    Succeeded {
        method: Option<String>,
        amount: Decimal,
        currency: Option<String>,
    },
    Failed {
        reason: String,
    },
    Canceled {
        reason: String,
    },
}

impl Outcome {
    pub fn status(&self) -> Status {
        match self {
            Outcome::Succeeded { .. } => Status::Succeeded,
            Outcome::Failed { .. } => Status::Failed,
            Outcome::Canceled { .. } => Status::Canceled,
        }
    }

    /// The outcome of a final remote state (`None` while pending, or for a refund).
    pub fn of(r: Remote) -> Option<Outcome> {
        match r {
            Remote::Paid { method, amount, currency } => {
                Some(Outcome::Succeeded { method, amount, currency })
            }
            Remote::Declined { reason } => Some(Outcome::Failed { reason }),
            Remote::Pending | Remote::Refunded { .. } => None,
        }
    }
}

/// What [`settle`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Settled {
    /// This call settled the payment (or recorded its late payment) and dispatched it.
    Now(Payment),
    /// The payment was already final; nothing changed.
    Already(Payment),
}

impl Settled {
    pub fn payment(&self) -> &Payment {
        match self {
            Settled::Now(p) | Settled::Already(p) => p,
        }
    }
}

pub(super) fn dispatch_pk(id: &str) -> String {
    format!("payment-dispatch#{id}")
}

/// The marker of a settlement whose after-step has not run yet.
fn dispatch_marker(p: &Payment) -> WriteOp {
    let item = Item::new(
        dispatch_pk(&p.id),
        DISPATCH_SK,
        json!({ "payment_id": p.id }).as_object().cloned().unwrap_or_default(),
    )
    .with_gsi1(dispatch_index(shard(&p.id)), format!("{}#{}", ts(p.updated_at), p.id));
    WriteOp::Put { item, cond: Cond::Always }
}

/// A currency as gateways write the rouble.
fn same_currency(reported: Option<&str>, ours: &str) -> bool {
    match reported.map(|c| c.trim().to_ascii_uppercase()) {
        None => true,
        Some(c) => c == ours || (ours == "RUB" && matches!(c.as_str(), "RUR" | "643")),
    }
}

/// Settles an open payment: exactly one caller wins the conditional write and dispatches.
/// A success for a payment already canceled or failed is recorded as a late payment.
pub async fn settle(app: &App, id: &str, outcome: Outcome) -> ApiResult<Settled> {
    settle_read(app, id, None, outcome).await
}

/// [`settle`] whose first attempt starts from `read` (the payment as just read) instead of
/// reading it again; an attempt that lost a race reads it afresh.
async fn settle_read(app: &App, id: &str, read: Option<Payment>, outcome: Outcome) -> ApiResult<Settled> {
    let first = std::sync::Mutex::new(read);
    let settled = optimistic("the payment", || {
        let known = first.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        attempt(app, id, known, &outcome)
    })
    .await?;
    if let Settled::Now(p) = &settled {
        tracing::info!(payment = %p.id, status = p.status.as_str(), anomaly = ?p.anomaly.as_ref().map(|a| a.kind), "payment settled");
        let outcome = if p.anomaly.is_some() { "returned" } else { p.status.as_str() };
        crate::metrics::count("PaymentsSettled", &[("Gateway", p.gateway.as_str()), ("Outcome", outcome)]);
        if let Some(a) = &p.anomaly {
            notices::count(p, a);
            dispatch(app, p).await?;
        }
    }
    Ok(settled)
}

async fn attempt(app: &App, id: &str, known: Option<Payment>, outcome: &Outcome) -> ApiResult<Step<Settled>> {
    let current = match known {
        Some(p) => p,
        None => get(app, id).await?,
    };
    if !current.status.is_open() {
        return already_final(app, current, outcome).await;
    }
    let now = app.clock.now();
    let mut next = current.next(app);
    next.status = outcome.status();
    next.settled_at = Some(now);
    let mut ops = match outcome {
        Outcome::Succeeded { method, amount, currency } => {
            next.captured_at = Some(now);
            if method.is_some() {
                next.payment_method = method.clone();
            }
            let gateway_agrees = crate::money::round(*amount) == current.amount
                && same_currency(currency.as_deref(), &current.currency);
            let owner = owner_settlement(app, &next, true).await?;
            if gateway_agrees && owner.expects == Some(current.amount) {
                owner.ops
            } else {
                let received = crate::money::round(*amount);
                let currency = currency.clone().unwrap_or_else(|| current.currency.clone());
                mismatch(app, &mut next, received, currency, owner.expects).await?
            }
        }
        Outcome::Failed { reason } | Outcome::Canceled { reason } => {
            next.failure_reason = Some(reason.clone());
            owner_settlement(app, &next, false).await?.ops
        }
    };
    ops.insert(0, next.write()?);
    again_on_conflict(app.store.transact(ops).await.map(|()| Settled::Now(next)))
}

/// A report for a payment already final: money for a failed or canceled one is a late
/// payment (returned); anything else leaves it as it is, after finishing what its settler
/// may have left undone.
async fn already_final(app: &App, current: Payment, outcome: &Outcome) -> ApiResult<Step<Settled>> {
    if let Outcome::Succeeded { amount, currency, .. } = outcome
        && matches!(current.status, Status::Failed | Status::Canceled)
        && current.anomaly.is_none()
    {
        let (next, ops) = late_payment(app, &current, *amount, currency.as_deref())?;
        return again_on_conflict(app.store.transact(ops).await.map(|()| Settled::Now(next)));
    }
    if current.status != outcome.status() && current.anomaly.is_none() {
        tracing::warn!(payment = %current.id, stored = current.status.as_str(), reported = outcome.status().as_str(),
            "a final payment was reported with another outcome; kept as stored");
    }
    // The first settler may have stopped after its write: finish its work.
    finish_dispatch(app, &current).await?;
    Ok(Step::Done(Settled::Already(current)))
}

/// Money that is not what the owner expects: the owner is not advanced, the money is
/// returned and the anomaly is recorded and told.
async fn mismatch(
    app: &App,
    next: &mut Payment,
    received: Decimal,
    currency: String,
    expected: Option<Decimal>,
) -> ApiResult<Vec<WriteOp>> {
    let refund = refunds::Refund::returned(app, next, received, AnomalyKind::AmountMismatch);
    next.anomaly = Some(Anomaly {
        kind: AnomalyKind::AmountMismatch,
        received,
        currency,
        expected,
        at: next.settled_at.unwrap_or_else(|| app.clock.now()),
        refund_id: refund.id.clone(),
    });
    next.refunding += received;
    tracing::warn!(payment = %next.id, received = %received, amount = %next.amount, expected = ?expected,
        "amount mismatch: the owner is not advanced and the money is returned");
    let mut ops = owner_settlement(app, next, false).await?.ops;
    ops.push(refund.create_op()?);
    let next = &*next;
    ops.extend(crate::outbox::ops(
        app,
        &notices::anomaly(app, next, next.anomaly.as_ref().expect("set above")),
    )?);
    ops.push(dispatch_marker(next));
    Ok(ops)
}

/// The owner's side; an owner kind nobody registered takes nothing.
async fn owner_settlement(app: &App, p: &Payment, delivered: bool) -> ApiResult<Settlement> {
    match app.owners.of(&p.purpose) {
        Some(owner) => owner.settlement(app, p, delivered).await,
        None => {
            tracing::error!(payment = %p.id, kind = %p.purpose.kind, "payment for an unknown owner kind");
            Ok(Settlement::default())
        }
    }
}

/// A success for a payment already canceled or failed: its status stays, the money is
/// recorded and a refund of it queued, in one write with the dispatch marker.
fn late_payment(
    app: &App,
    current: &Payment,
    amount: Decimal,
    currency: Option<&str>,
) -> ApiResult<(Payment, Vec<WriteOp>)> {
    let mut next = current.next(app);
    let received = crate::money::round(amount);
    let refund = refunds::Refund::returned(app, &next, received, AnomalyKind::LatePayment);
    next.anomaly = Some(Anomaly {
        kind: AnomalyKind::LatePayment,
        received,
        currency: currency.map(str::to_owned).unwrap_or_else(|| current.currency.clone()),
        expected: None,
        at: app.clock.now(),
        refund_id: refund.id.clone(),
    });
    next.refunding += received;
    tracing::warn!(payment = %current.id, status = current.status.as_str(), received = %received,
        "late payment: recorded and returned");
    let anomaly = next.anomaly.as_ref().expect("set above");
    let mut ops = vec![next.write()?, refund.create_op()?, dispatch_marker(&next)];
    ops.extend(crate::outbox::ops(app, &notices::anomaly(app, &next, anomaly))?);
    Ok((next, ops))
}

/// Finishes the after-step of a settlement whose marker is still there (an anomaly's refund
/// not sent yet); `false` when there was nothing left to do.
pub async fn finish_dispatch(app: &App, p: &Payment) -> ApiResult<bool> {
    if p.anomaly.is_none() || app.store.get(&dispatch_pk(&p.id), DISPATCH_SK).await?.is_none() {
        return Ok(false);
    }
    tracing::info!(payment = %p.id, status = p.status.as_str(), "finishing an interrupted settlement");
    dispatch(app, p).await?;
    Ok(true)
}

/// The after-step of an anomaly: the refund that returns the money (its emails were written
/// with it). The marker goes last.
async fn dispatch(app: &App, p: &Payment) -> ApiResult<()> {
    if let Some(a) = &p.anomaly {
        refunds::send(app, &p.id, &a.refund_id).await?;
    }
    if let Err(e) = app.store.delete(&dispatch_pk(&p.id), DISPATCH_SK, Cond::Always).await {
        tracing::warn!(payment = %p.id, error = %e, "dispatch marker not removed; the reconciliation job will finish");
    }
    Ok(())
}

/// Handles a verified gateway callback: settles the payment, or records a refund the gateway
/// reports. Unknown payments are 404.
pub async fn apply_callback(
    app: &App,
    from: GatewayKind,
    event: &CallbackEvent,
) -> ApiResult<Option<Settled>> {
    let p = get(app, &event.payment_id).await?;
    // A gateway speaks only for its own payments: a callback verified with one gateway's
    // secret never settles or refunds a payment made through another.
    if p.gateway != from {
        return Err(ApiError::Forbidden("the callback is for a payment of another gateway".into()));
    }
    match &event.remote {
        Remote::Refunded { amount, gateway_ref } => {
            refunds::reported(app, &p, *amount, gateway_ref.clone()).await?;
            Ok(None)
        }
        other => match Outcome::of(other.clone()) {
            Some(outcome) => settle_read(app, &event.payment_id, Some(p), outcome).await.map(Some),
            None => Ok(None),
        },
    }
}

/// The buyer's browser is back from the gateway: an open payment's status is asked of the
/// gateway (the URL is never trusted) and a final answer settled; a final payment's
/// interrupted settlement is finished. Answers the payment as it is now.
pub async fn check_with_gateway(app: &App, p: Payment) -> ApiResult<Payment> {
    if p.status.is_open() {
        let remote = gateways::for_kind(app, p.gateway)?.query_status(app, &p).await?;
        return match Outcome::of(remote) {
            Some(outcome) => Ok(settle(app, &p.id, outcome).await?.payment().clone()),
            None => Ok(p),
        };
    }
    finish_dispatch(app, &p).await?;
    Ok(p)
}

/// The index partition of dispatch markers (read by [`super::reconcile`]).
pub(super) fn dispatch_index(shard: u32) -> String {
    format!("payments#dispatch#{shard}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payments::{GatewayKind, OwnerRef};

    /// Money that came in for the wrong sum is on its way back in full: `refunding` holds it
    /// until the gateway confirms, so no other refund can take it twice.
    fn payment(app: &App) -> Payment {
        Payment::new(
            app,
            "ZT_1".into(),
            1,
            "21".into(),
            OwnerRef::new("nobody", "1"),
            GatewayKind::Sandbox,
            Decimal::new(200_000, 2),
            "x".into(),
        )
    }

    /// Money for a payment already failed or cancelled goes back in full, recorded once.
    #[test]
    fn a_late_payment_returns_what_came_in() {
        let app = App::in_memory(crate::Config::for_tests());
        let current = Payment { status: Status::Failed, ..payment(&app) };
        let (next, ops) = late_payment(&app, &current, Decimal::new(200_000, 2), Some("RUB")).unwrap();
        assert_eq!(
            (next.refunding, next.refunded_amount, next.status),
            (current.amount, Decimal::ZERO, Status::Failed)
        );
        let a = next.anomaly.as_ref().expect("the anomaly");
        assert_eq!((a.kind, a.received, a.expected), (AnomalyKind::LatePayment, current.amount, None));
        // The payment, the refund and the dispatch marker (no managers' address is set here,
        // so no email).
        assert_eq!(ops.len(), 3, "{ops:?}");
    }

    #[tokio::test]
    async fn a_mismatch_returns_what_came_in() {
        let app = App::in_memory(crate::Config::for_tests());
        let p = payment(&app);
        let mut next = p.next(&app);
        let received = Decimal::new(100, 2);
        let ops = mismatch(&app, &mut next, received, "RUB".into(), Some(p.amount)).await.unwrap();
        assert_eq!(next.refunding, received);
        let a = next.anomaly.as_ref().expect("the anomaly");
        assert_eq!((a.kind, a.received, a.expected), (AnomalyKind::AmountMismatch, received, Some(p.amount)));
        // The refund, the managers' email and the dispatch marker (the unknown owner adds none).
        assert_eq!(ops.len(), 3, "{ops:?}");
    }

    #[test]
    fn a_reported_currency_must_be_the_payments() {
        // Not reported: the amount alone decides.
        assert!(same_currency(None, "RUB"));
        assert!(same_currency(Some(" rub "), "RUB"));
        // The rouble's old code and its ISO number are the rouble.
        assert!(same_currency(Some("RUR"), "RUB"));
        assert!(same_currency(Some("643"), "RUB"));
        assert!(!same_currency(Some("USD"), "RUB"));
        assert!(!same_currency(Some("RUB"), "USD"));
        // Only for a rouble payment.
        assert!(!same_currency(Some("RUR"), "USD"));
        assert!(!same_currency(Some("643"), "EUR"));
        assert!(same_currency(Some("usd"), "USD"));
    }
}
