//! What payments themselves tell people: money received that its owner did not take (the
//! buyer learns it is being returned; the manager learns of an amount mismatch), and a
//! refund that waits for a person. Each has a fixed notification id (one email per event) and
//! is written in the transaction that records the event.

use super::refunds::Refund;
use super::{Anomaly, AnomalyKind, Payment};
use crate::App;
use crate::mail::{ManualRefundMail, Message, Notification, PaymentNoticeMail};

fn notice_mail(p: &Payment, a: &Anomaly) -> PaymentNoticeMail {
    PaymentNoticeMail {
        payment_id: p.id.clone(),
        description: p.description.clone(),
        kind: a.kind.as_str().into(),
        received: a.received.into(),
        currency: a.currency.clone(),
        amount: p.amount.into(),
        expected: a.expected.map(Into::into),
        owner_kind: p.purpose.kind.clone(),
        owner_id: p.purpose.id.clone(),
        gateway: p.gateway.as_str().into(),
    }
}

/// The emails of an anomaly: to the buyer (late payment or mismatch) and, for a mismatch, to
/// the manager.
pub fn anomaly(app: &App, p: &Payment, a: &Anomaly) -> Vec<Notification> {
    let mut out = Vec::new();
    if let Some(to) = &p.email {
        out.push(Notification::new(
            format!("payment-{}-returned", p.id),
            to,
            Message::PaymentReturned(notice_mail(p, a)),
        ));
    }
    if a.kind == AnomalyKind::AmountMismatch {
        out.push(Notification::new(
            format!("payment-{}-mismatch", p.id),
            &app.config.manager_email,
            Message::PaymentMismatch(notice_mail(p, a)),
        ));
    }
    out
}

/// Counts an anomaly recorded (`AmountMismatches`, `LatePayments`), once it is written.
pub fn count(p: &Payment, a: &Anomaly) {
    let metric = match a.kind {
        AnomalyKind::AmountMismatch => "AmountMismatches",
        AnomalyKind::LatePayment => "LatePayments",
    };
    crate::metrics::count(metric, &[("Gateway", p.gateway.as_str())]);
}

/// The email of a refund that waits for a person, to the manager.
pub fn manual_refund(app: &App, p: &Payment, r: &Refund) -> Notification {
    let mail = ManualRefundMail {
        payment_id: p.id.clone(),
        refund_id: r.id.clone(),
        description: p.description.clone(),
        amount: r.amount.into(),
        gateway: p.gateway.as_str().into(),
        reason: r.reason.clone(),
        error: r.error.clone(),
    };
    Notification::new(
        format!("refund-{}-{}-manual", p.id, r.id),
        &app.config.manager_email,
        Message::RefundManual(mail),
    )
}
