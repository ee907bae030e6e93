//! An online ticket order as a payment owner.
//!
//! While `ordered` with this payment, the order expects its total. A payment that delivers it
//! approves the order in the settling transaction, with its emails (buyer and box office,
//! e-tickets for `email_online`); one that does not (declined, cancelled, expired, or refused
//! by the amount rule) cancels the order and frees its seats in that transaction. Refunds: a
//! completed refund is marked on the order (one the gateway reports on its own, such as
//! SNGB's `sngb_tran`, is added to it), `refunded` adds up, the buyer's email is written with
//! it, and the seats are freed once everything paid went back; a refused one is taken off the
//! order.

use super::notices;
use super::orders::{self, Order, OrderStatus, Refund as OrderRefund, StoredOrder};
use crate::App;
use crate::error::ApiResult;
use crate::money;
use crate::payments::refunds::Refund;
use crate::payments::{Payment, PaymentOwner, Settlement, Status};
use crate::store::{Cond, WriteOp};
use async_trait::async_trait;
use rust_decimal::Decimal;

/// The owner kind of an online ticket order's payment.
pub const OWNER_KIND: &str = "ticket_order";

pub struct OrderPayments;

/// The order of `p`, if it names `p` as its payment.
async fn order_of(app: &App, p: &Payment) -> ApiResult<Option<StoredOrder>> {
    match orders::get(app, &p.purpose.id).await {
        Ok(s) if s.order.payment_id.as_deref() == Some(p.id.as_str()) => Ok(Some(s)),
        Ok(_) => {
            tracing::warn!(order = %p.purpose.id, payment = %p.id, "a payment for an order that names another payment");
            Ok(None)
        }
        Err(crate::ApiError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Why the payment did not go through, as the buyer reads it (seed 000's `success_or_error`
/// message).
fn payment_error(p: &Payment) -> &'static str {
    match (p.status, &p.anomaly, p.failure_reason.as_deref()) {
        (_, Some(_), _) => "Сумма оплаты не совпала с суммой заказа, заказ отменён; деньги возвращаются",
        (Status::Canceled, _, Some("expired")) => "Время на оплату истекло, заказ отменён",
        (Status::Canceled, _, _) => "Оплата отменена, заказ отменён",
        _ => "Банк отклонил оплату, заказ отменён",
    }
}

fn put(order: &Order, s: &StoredOrder) -> ApiResult<WriteOp> {
    Ok(WriteOp::Put { item: orders::order_item(order, s.version + 1)?, cond: Cond::Version(s.version) })
}

#[async_trait]
impl PaymentOwner for OrderPayments {
    fn kind(&self) -> &'static str {
        OWNER_KIND
    }

    async fn settlement(&self, app: &App, p: &Payment, delivered: bool) -> ApiResult<Settlement> {
        let Some(s) = order_of(app, p).await? else { return Ok(Settlement::default()) };
        if s.order.status != OrderStatus::Ordered {
            return Ok(Settlement::default());
        }
        let expects = Some(s.order.totals.total);
        let mut order = s.order.clone();
        order.updated_at = app.clock.now();
        let ops = if delivered {
            order.status = OrderStatus::Approved;
            let mut ops = vec![put(&order, &s)?];
            ops.extend(crate::outbox::ops(app, &notices::approved(app, &order, "approved")?)?);
            ops
        } else {
            order.status = OrderStatus::Cancelled;
            order.payment_error = Some(payment_error(p).into());
            let mut ops = vec![put(&order, &s)?];
            ops.extend(orders::free_seat_ops(app, &s.order).await?);
            ops
        };
        Ok(Settlement { expects, ops })
    }

    async fn refund_ops(
        &self,
        app: &App,
        p: &Payment,
        r: &Refund,
        completed: bool,
    ) -> ApiResult<Vec<WriteOp>> {
        // Money the order never took (a mismatch, a late payment) is not the order's refund.
        if r.kind != crate::payments::refunds::RefundKind::Owner {
            return Ok(vec![]);
        }
        let Some(s) = order_of(app, p).await? else { return Ok(vec![]) };
        let mut order = s.order.clone();
        order.updated_at = app.clock.now();
        let known = order.refunds.iter().position(|x| x.id == r.id);
        match (known, completed) {
            (Some(i), true) => order.refunds[i].state = "completed".into(),
            (None, true) => {
                order.refunds.push(OrderRefund {
                    id: r.id.clone(),
                    amount: r.amount,
                    reason: r.reason.clone(),
                    by: r.by.clone().unwrap_or_else(|| p.gateway.as_str().to_owned()),
                    at: order.updated_at,
                    state: "completed".into(),
                });
                order.refunded = money::round(order.refunded + r.amount);
                order.status = order.status_after_refunds();
            }
            (Some(i), false) => {
                let taken = order.refunds.remove(i);
                order.refunded = money::round((order.refunded - taken.amount).max(Decimal::ZERO));
                order.status = order.status_after_refunds();
            }
            (None, false) => return Ok(vec![]),
        }
        let mut ops = vec![put(&order, &s)?];
        let all_done = order.refunds.iter().all(|x| x.state == "completed");
        if completed && all_done && order.refunded >= order.totals.total {
            ops.extend(orders::free_seat_ops(app, &order).await?);
        }
        if completed {
            ops.push(crate::outbox::op(&notices::refunded(&order, r), order.updated_at)?);
        }
        Ok(ops)
    }
}
