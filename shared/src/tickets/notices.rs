//! The emails of a ticket order, built from the order and written in the same transaction as
//! the change that causes them (see [`crate::outbox`]).

use super::orders::{Order, qr_url};
use super::totals::OrderType;
use crate::App;
use crate::error::{ApiError, ApiResult};
use crate::mail::{
    CustomerInfo, EventInfo, Message, Notification, OrderTotals, RefundMail, SeatTicket, TicketOrderMail,
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
                sector: t.place.sector_name.clone(),
                row: t.place.row.clone(),
                seat: t.place.seat.clone(),
                price: t.price.into(),
                code: t.bar_code.clone(),
                qr_url: qr_url(app, &o.id, &t.bar_code),
            })
            .collect(),
        totals: OrderTotals {
            tickets: o.totals.tickets.into(),
            commission: o.totals.commission.into(),
            delivery: o.totals.delivery.into(),
            total: o.totals.total.into(),
        },
        paid: o.order_type.online(),
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
