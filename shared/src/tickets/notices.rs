//! The emails of a ticket order, built from the order and written in the same transaction as
//! the change that causes them (see [`crate::outbox`]).

use super::orders::{Order, qr_url};
use super::totals::OrderType;
use crate::App;
use crate::error::{ApiError, ApiResult};
use crate::mail::{
    CustomerInfo, EventInfo, Message, Notification, OrderTotals, RefundMail, SeatTicket,
    TicketOrderCancelledMail, TicketOrderMail,
};
use crate::payments::refunds::Refund;

/// The order type in Russian.
pub fn order_type_caption(t: OrderType) -> &'static str {
    match t {
        OrderType::SelfOnline => "оплата онлайн, билеты в кассе",
        OrderType::EmailOnline => "оплата онлайн, электронные билеты",
        OrderType::SelfCash => "оплата в кассе",
        OrderType::CourierCash => "доставка курьером, оплата при получении",
    }
}

/// What the order's emails show.
pub fn order_mail(app: &App, o: &Order) -> ApiResult<TicketOrderMail> {
    let starts_at = chrono::DateTime::parse_from_rfc3339(&o.starts_at)
        .map_err(|e| ApiError::Internal(format!("event start {:?}: {e}", o.starts_at)))?;
    // Codes only for tickets that let people in.
    let valid = o.tickets_valid();
    Ok(TicketOrderMail {
        order_id: o.id.clone(),
        event: EventInfo {
            id: o.event_id.clone(),
            title: o.event_title.clone(),
            starts_at,
            venue: o.venue.clone(),
        },
        customer: CustomerInfo {
            name: o.customer.name.clone(),
            email: o.customer.email.clone(),
            phone: o.customer.phone.clone(),
            address: o.customer.address.clone(),
        },
        order_type: o.order_type.as_str().into(),
        order_type_caption: order_type_caption(o.order_type).into(),
        tickets: o
            .tickets
            .iter()
            .map(|t| SeatTicket {
                sector: t.place.sector_name.to_string(),
                row: t.place.row.to_string(),
                seat: t.place.seat.to_string(),
                price: t.price.into(),
                code: valid.then(|| t.bar_code.clone()),
                qr_url: valid.then(|| qr_url(app, &o.id, &t.bar_code)),
            })
            .collect(),
        totals: OrderTotals {
            tickets: o.totals.tickets.into(),
            commission: o.totals.commission.into(),
            delivery: o.totals.delivery.into(),
            total: o.totals.total.into(),
        },
        paid: o.is_paid(),
        pay_by: o.pay_by.filter(|_| o.awaits_cash()).map(|t| t.with_timezone(starts_at.offset())),
        order_url: format!("{}/api/v1/ticket_orders/{}", app.config.public_url, o.id),
    })
}

/// The emails of a confirmed order: the buyer's, the box office's, and e-tickets for
/// `email_online`. `event` names the business event in their ids (`approved`, a resend).
pub fn approved(app: &App, o: &Order, event: &str) -> ApiResult<Vec<Notification>> {
    let mail = order_mail(app, o)?;
    let id = |who: &str| format!("ticket-order-{}-{event}-{who}", o.id);
    let mut out = vec![
        Notification::new(id("buyer"), &o.customer.email, Message::TicketOrderBuyer(mail.clone())),
        Notification::new(id("admin"), &app.config.admin_email, Message::TicketOrderAdmin(mail.clone())),
    ];
    if o.order_type == OrderType::EmailOnline {
        out.push(Notification::new(id("etickets"), &o.customer.email, Message::ETickets(mail)));
    }
    Ok(out)
}

/// The buyer's email when the box office marked a cash order paid: the order with its
/// tickets' codes.
pub fn paid(app: &App, o: &Order) -> ApiResult<Vec<Notification>> {
    let mail = order_mail(app, o)?;
    let id = format!("ticket-order-{}-paid-buyer", o.id);
    Ok(vec![Notification::new(id, &o.customer.email, Message::TicketOrderBuyer(mail))])
}

/// Why a cash order was cancelled, as the buyer reads it.
pub const CANCELLED_UNPAID: &str = "оплата не поступила до окончания срока";
pub const CANCELLED_BY_BOX_OFFICE: &str = "заказ отменён кассой";
pub const CANCELLED_EVENT: &str =
    "мероприятие отменено; если вы уже заплатили в кассе или курьеру, деньги вернут в кассе";

/// The buyer's email of a cancelled order (`o` as it is after the cancellation); `event`
/// names the business event in its id.
pub fn cancelled(app: &App, o: &Order, event: &str, reason: &str) -> ApiResult<Notification> {
    let mut order = order_mail(app, o)?;
    // The deadline that passed, in the event's offset (for a cancellation for non-payment).
    order.pay_by = o
        .pay_by
        .filter(|_| reason == CANCELLED_UNPAID)
        .map(|t| t.with_timezone(order.event.starts_at.offset()));
    let mail = TicketOrderCancelledMail {
        order,
        reason: reason.to_owned(),
        event_cancelled: reason == CANCELLED_EVENT,
    };
    Ok(Notification::new(
        format!("ticket-order-{}-{event}-buyer", o.id),
        &o.customer.email,
        Message::TicketOrderCancelled(mail),
    ))
}

/// The buyer's email of a completed refund (`o` as it is after the refund).
pub fn refunded(o: &Order, r: &Refund) -> Notification {
    let mail = RefundMail {
        subject: format!("Заказ №{} на «{}»", o.id, o.event_title),
        customer_name: Some(o.customer.name.clone()),
        amount: r.amount.into(),
        reason: r.reason.clone(),
        refunded: o.refunded.into(),
        total: o.totals.total.into(),
    };
    Notification::new(
        format!("ticket-order-{}-refund-{}", o.id, r.id),
        &o.customer.email,
        Message::Refund(mail),
    )
}
