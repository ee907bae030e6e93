//! What payments themselves tell people: money received that its owner did not take (the
//! buyer learns it is being returned; the manager learns of an amount mismatch), and a
//! refund that waits for a person. Each has a fixed notification id, so a repeat is sent once.

use serde_json::json;

use super::refunds::Refund;
use super::{Anomaly, AnomalyKind, Payment};
use crate::App;
use crate::error::ApiResult;
use crate::money;
use crate::outbox::Notification;

/// The notices of an anomaly: the buyer (late payment or mismatch) and, for a mismatch, the
/// manager. Counted as metrics (`AmountMismatches`, `LatePayments`).
pub async fn anomaly(app: &App, p: &Payment, a: &Anomaly) -> ApiResult<()> {
    let metric = match a.kind {
        AnomalyKind::AmountMismatch => "AmountMismatches",
        AnomalyKind::LatePayment => "LatePayments",
    };
    let data = json!({
        "payment_id": p.id,
        "description": p.description,
        "kind": a.kind.as_str(),
        "received": money::format(a.received),
        "currency": a.currency,
        "amount": money::format(p.amount),
        "expected": a.expected.map(money::format),
        "owner_kind": p.purpose.kind,
        "owner_id": p.purpose.id,
        "gateway": p.gateway.as_str(),
        "status": p.status.as_str(),
    });
    if let Some(to) = &p.email {
        app.outbox
            .enqueue(Notification {
                id: format!("payment-{}-returned", p.id),
                template: "payment_returned".into(),
                to: to.clone(),
                data: data.clone(),
            })
            .await?;
    }
    if a.kind == AnomalyKind::AmountMismatch {
        app.outbox
            .enqueue(Notification {
                id: format!("payment-{}-mismatch", p.id),
                template: "payment_mismatch".into(),
                to: app.config.manager_email.clone(),
                data,
            })
            .await?;
    }
    crate::metrics::count(metric, &[("Gateway", p.gateway.as_str())]);
    Ok(())
}

/// A refund that waits for a person, to the manager.
pub async fn manual_refund(app: &App, p: &Payment, r: &Refund) -> ApiResult<()> {
    app.outbox
        .enqueue(Notification {
            id: format!("refund-{}-{}-manual", p.id, r.id),
            template: "refund_manual".into(),
            to: app.config.manager_email.clone(),
            data: json!({
                "payment_id": p.id,
                "refund_id": r.id,
                "description": p.description,
                "amount": money::format(r.amount),
                "gateway": p.gateway.as_str(),
                "reason": r.reason,
                "error": r.error,
            }),
        })
        .await
}
