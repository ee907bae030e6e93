//! Ticket orders: checkout, the step-3 view, admin actions and payment settlement.
//!
//! Checkout re-checks every hold of the PR and, in one transaction, creates the order,
//! turns each hold into a sold seat (no expiry: the sweep never frees it), creates one
//! unique bar code item per ticket and deletes the PR. So a seat is never sold twice nor
//! sold without an order. Status values: `reserved` (the PR), `ordered` (waiting for an
//! online payment), `approved`, `cancelled`, `refunded`.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::holds::{self, Hold, HoldState};
use super::reservations::{self, StoredPr};
use super::totals::{Customer, OrderType, Totals, TotalsView};
use super::{Buyer, barcode, check_id, new_id};
use crate::App;
use crate::error::{ApiError, ApiResult};
use crate::money;
use crate::outbox::Notification;
use crate::store::{Cond, Item, StoreError, WriteOp};

const SK: &str = "order";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Reserved,
    Ordered,
    Approved,
    Cancelled,
    Refunded,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    pub seat_id: String,
    pub sector: String,
    pub sector_name: String,
    pub row: String,
    pub seat: String,
    pub price_category: String,
    pub price: Decimal,
    pub bar_code: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub status: OrderStatus,
    pub event_id: String,
    pub event_title: String,
    pub starts_at: String,
    pub venue: Option<String>,
    pub reservation_id: String,
    pub owner: String,
    pub order_type: OrderType,
    pub customer: Customer,
    pub tickets: Vec<Ticket>,
    pub totals: Totals,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct StoredOrder {
    pub order: Order,
    pub version: u64,
}

pub fn pk(id: &str) -> String {
    format!("ticket_order#{id}")
}

fn barcode_pk(code: &str) -> String {
    format!("barcode#{code}")
}

fn order_item(order: &Order, version: u64) -> Result<Item, StoreError> {
    Ok(Item::from_value(pk(&order.id), SK, order)?.with_version(version))
}

pub async fn get(app: &App, id: &str) -> ApiResult<StoredOrder> {
    if check_id("id", id).is_ok()
        && let Some(item) = app.store.get(&pk(id), SK).await?
    {
        return Ok(StoredOrder { order: item.decode()?, version: item.version });
    }
    Err(ApiError::NotFound("ticket order".into()))
}

/// The caller's order (an admin sees every order); someone else's is 404.
pub async fn get_for(app: &App, buyer: &Buyer, id: &str) -> ApiResult<StoredOrder> {
    let s = get(app, id).await?;
    let admin = buyer.user.as_ref().is_some_and(|u| u.has_role("admin"));
    if admin || buyer.owns(&s.order.owner) { Ok(s) } else { Err(ApiError::NotFound("ticket order".into())) }
}

/// What checkout answers.
pub struct Checkout {
    pub order: Order,
    /// Where to send the buyer's browser for an online payment.
    pub payment_url: Option<String>,
}

/// Checkout of the caller's PR.
pub async fn checkout(app: &App, buyer: &Buyer, reservation_id: &str) -> ApiResult<Checkout> {
    let s = reservations::load(app, buyer, reservation_id).await?;
    let order_type =
        s.pr.order_type.ok_or_else(|| ApiError::invalid("order_type", "choose an order type first"))?;
    if s.pr.customer.is_none() {
        return Err(ApiError::invalid("customer", "the buyer's details are required"));
    }
    if order_type.online() {
        return online_checkout(app, s).await;
    }
    let order = place(app, &s, OrderStatus::Approved).await?;
    if let Err(e) = notify_approved(app, &order, "approved").await {
        tracing::error!(order = %order.id, error = %e, "order confirmed but its emails were not queued");
    }
    Ok(Checkout { order, payment_url: None })
}

/// THE ONLINE BRANCH OF CHECKOUT (`self_online`, `email_online`), to be completed with the
/// payment model: `place(app, &s, OrderStatus::Ordered)`, create a payment for the order's
/// `totals.total` with purpose "ticket order", and answer its redirect URL as
/// `payment_url`. The payment's settlement then calls [`on_payment_settled`]. Until then
/// online order types are refused here, before anything is written.
pub async fn online_checkout(app: &App, s: StoredPr) -> ApiResult<Checkout> {
    let _ = (app, s);
    Err(ApiError::invalid("order_type", "online payment is not available yet"))
}

/// Creates the order from the PR with `status`: re-checks every hold, then one transaction
/// creates the order, sells the seats, reserves the bar codes and deletes the PR.
pub async fn place(app: &App, s: &StoredPr, status: OrderStatus) -> ApiResult<Order> {
    let pr = &s.pr;
    let (order_type, customer) = match (pr.order_type, &pr.customer) {
        (Some(t), Some(c)) => (t, c.clone()),
        (None, _) => return Err(ApiError::invalid("order_type", "choose an order type first")),
        (_, None) => return Err(ApiError::invalid("customer", "the buyer's details are required")),
    };
    let (event, tickets, totals) = reservations::priced(app, pr).await?;
    if let Some(lost) = pr.seats.iter().find(|seat| !tickets.iter().any(|(t, _)| &t.seat_id == *seat)) {
        return Err(ApiError::Conflict(format!(
            "seat {lost} is no longer held by this reservation (its time ran out); add it again"
        )));
    }
    if tickets.is_empty() {
        return Err(ApiError::bad_request("tickets", "the reservation holds no tickets"));
    }
    let now = app.clock.now();
    // A bar code collision is astronomically rare; the transaction would refuse it, and a
    // second attempt draws new codes.
    for _ in 0..3 {
        let order = Order {
            id: new_id(),
            status,
            event_id: event.id.clone(),
            event_title: event.title.clone(),
            starts_at: event.starts_at.clone(),
            venue: event.venue.clone(),
            reservation_id: pr.id.clone(),
            owner: pr.owner.clone(),
            order_type,
            customer: customer.clone(),
            tickets: tickets
                .iter()
                .map(|(t, _)| Ticket {
                    seat_id: t.seat_id.clone(),
                    sector: t.sector.clone(),
                    sector_name: t.sector_name.clone(),
                    row: t.row.clone(),
                    seat: t.seat.clone(),
                    price_category: t.price_category.clone(),
                    price: t.price,
                    bar_code: barcode::new_bar_code(),
                })
                .collect(),
            totals: totals.clone(),
            created_at: now,
            updated_at: now,
        };
        let mut ops = vec![WriteOp::Put { item: order_item(&order, 1)?, cond: Cond::NotExists }];
        for (t, h) in &tickets {
            let sold = Hold {
                state: HoldState::Sold,
                order_id: Some(order.id.clone()),
                expires_at: None,
                ..h.hold.clone()
            };
            ops.push(WriteOp::Put {
                item: holds::item(&sold, h.version + 1)?,
                cond: Cond::Version(h.version),
            });
            debug_assert_eq!(t.seat_id, sold.seat_id);
        }
        let first_barcode = ops.len();
        for t in &order.tickets {
            let data = json!({"order_id": order.id, "seat_id": t.seat_id, "event_id": order.event_id});
            let item =
                Item::new(barcode_pk(&t.bar_code), "barcode", data.as_object().cloned().unwrap_or_default());
            ops.push(WriteOp::Put { item, cond: Cond::NotExists });
        }
        let barcodes = first_barcode..ops.len();
        ops.push(WriteOp::Delete {
            pk: reservations::pk(&pr.id),
            sk: "pr".into(),
            cond: Cond::Version(s.version),
        });
        match app.store.transact(ops).await {
            Ok(()) => return Ok(order),
            Err(StoreError::Conflict { index: Some(i) }) if barcodes.contains(&i) => continue,
            Err(e) if e.is_conflict() => {
                return Err(ApiError::Conflict(
                    "the reservation changed during checkout (a seat was released or taken); re-read and retry".into(),
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Conflict("could not assign unique bar codes; retry".into()))
}

#[derive(Debug, Clone, Serialize)]
pub struct TicketView {
    pub seat_id: String,
    pub sector: String,
    pub sector_name: String,
    pub row: String,
    pub seat: String,
    pub price_category: String,
    #[serde(with = "money::number")]
    pub price: Decimal,
    pub bar_code: String,
    /// The bar code as a QR image (SVG).
    pub qr_url: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct OrderView {
    pub id: String,
    pub status: OrderStatus,
    pub event: serde_json::Value,
    pub order_type: OrderType,
    pub customer: Customer,
    pub tickets: Vec<TicketView>,
    pub totals: TotalsView,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub fn qr_url(app: &App, order_id: &str, bar_code: &str) -> String {
    format!("{}/api/v1/ticket_orders/{order_id}/tickets/{bar_code}/qr", app.config.public_url)
}

/// The step-3 summary.
pub fn view(app: &App, o: &Order) -> OrderView {
    OrderView {
        id: o.id.clone(),
        status: o.status,
        event: json!({"id": o.event_id, "title": o.event_title, "starts_at": o.starts_at, "venue": o.venue}),
        order_type: o.order_type,
        customer: o.customer.clone(),
        tickets: o
            .tickets
            .iter()
            .map(|t| TicketView {
                seat_id: t.seat_id.clone(),
                sector: t.sector.clone(),
                sector_name: t.sector_name.clone(),
                row: t.row.clone(),
                seat: t.seat.clone(),
                price_category: t.price_category.clone(),
                price: t.price,
                bar_code: t.bar_code.clone(),
                qr_url: qr_url(app, &o.id, &t.bar_code),
            })
            .collect(),
        totals: o.totals.view(),
        created_at: o.created_at,
        updated_at: o.updated_at,
    }
}

/// Template data of an order's emails (amounts as strings with two decimals).
///
/// The flat fields (`event_name`, `event_date`, `venue`, `customer_name`, `total`,
/// `payment_status`, each ticket's `code`) are the ones the notifier's `ticket_order_buyer`,
/// `ticket_order_admin` and `e_tickets` templates read.
fn email_data(app: &App, o: &Order) -> serde_json::Value {
    let paid = o.order_type.online() && o.status == OrderStatus::Approved;
    json!({
        "order_id": o.id,
        "status": o.status,
        "order_type": o.order_type,
        "event_name": o.event_title,
        "event_date": o.starts_at,
        "venue": o.venue,
        "event": {"id": o.event_id, "title": o.event_title, "starts_at": o.starts_at, "venue": o.venue},
        "customer_name": o.customer.name,
        "customer": o.customer,
        "payment_status": if paid { "paid" } else { "on_delivery" },
        "total": money::format(o.totals.total),
        "tickets": o.tickets.iter().map(|t| json!({
            "seat_id": t.seat_id, "sector": t.sector_name, "row": t.row, "seat": t.seat,
            "price": money::format(t.price), "bar_code": t.bar_code, "code": t.bar_code,
        })).collect::<Vec<_>>(),
        "totals": {
            "tickets": money::format(o.totals.tickets),
            "commission": money::format(o.totals.commission),
            "delivery": money::format(o.totals.delivery),
            "total": money::format(o.totals.total),
        },
        "order_url": format!("{}/api/v1/ticket_orders/{}", app.config.public_url, o.id),
    })
}

/// The buyer's e-tickets: one per seat, each with its bar code as a QR image (inline SVG
/// and a link).
pub fn eticket_notification(app: &App, o: &Order, id: String) -> Notification {
    let tickets: Vec<_> = o
        .tickets
        .iter()
        .map(|t| {
            json!({
                "seat_id": t.seat_id, "sector": t.sector_name, "row": t.row, "seat": t.seat,
                "price": money::format(t.price), "bar_code": t.bar_code, "code": t.bar_code,
                "qr_svg": barcode::qr_svg(&t.bar_code), "qr_url": qr_url(app, &o.id, &t.bar_code),
            })
        })
        .collect();
    let mut data = email_data(app, o);
    data["tickets"] = json!(tickets);
    Notification { id, template: "e_tickets".into(), to: o.customer.email.clone(), data }
}

/// Queues the confirmation emails of an approved order: buyer, box office, and e-tickets
/// for `email_online`. `event` names the business event in the notification ids.
pub async fn notify_approved(app: &App, o: &Order, event: &str) -> ApiResult<()> {
    let data = email_data(app, o);
    app.outbox
        .enqueue(Notification {
            id: format!("ticket-order-{}-{event}-buyer", o.id),
            template: "ticket_order_buyer".into(),
            to: o.customer.email.clone(),
            data: data.clone(),
        })
        .await?;
    app.outbox
        .enqueue(Notification {
            id: format!("ticket-order-{}-{event}-admin", o.id),
            template: "ticket_order_admin".into(),
            to: app.config.admin_email.clone(),
            data,
        })
        .await?;
    if o.order_type == OrderType::EmailOnline {
        app.outbox
            .enqueue(eticket_notification(app, o, format!("ticket-order-{}-{event}-etickets", o.id)))
            .await?;
    }
    Ok(())
}

/// Admin: queues the buyer's email again (with a new notification id).
pub async fn resend_email(app: &App, id: &str) -> ApiResult<Order> {
    let s = get(app, id).await?;
    let o = &s.order;
    if o.status != OrderStatus::Approved {
        return Err(ApiError::bad_request("status", "only approved orders have an email to resend"));
    }
    let resend = format!("resend-{}", new_id());
    app.outbox
        .enqueue(Notification {
            id: format!("ticket-order-{}-{resend}-buyer", o.id),
            template: "ticket_order_buyer".into(),
            to: o.customer.email.clone(),
            data: email_data(app, o),
        })
        .await?;
    if o.order_type == OrderType::EmailOnline {
        app.outbox
            .enqueue(eticket_notification(app, o, format!("ticket-order-{}-{resend}-etickets", o.id)))
            .await?;
    }
    Ok(s.order)
}

/// Moves an order to `cancelled` and frees its seats, in one transaction on the order's
/// version.
async fn cancel_and_free(app: &App, s: StoredOrder) -> ApiResult<Order> {
    let mut order = s.order;
    let mut ops = Vec::new();
    let seats: Vec<String> = order.tickets.iter().map(|t| t.seat_id.clone()).collect();
    for (seat, h) in seats.iter().zip(holds::get_many(app, &order.event_id, &seats).await?) {
        if let Some(h) = h
            && h.hold.state == HoldState::Sold
            && h.hold.order_id.as_deref() == Some(order.id.as_str())
        {
            ops.push(WriteOp::Delete {
                pk: holds::pk(&order.event_id, seat),
                sk: holds::SK.into(),
                cond: Cond::Version(h.version),
            });
        }
    }
    order.status = OrderStatus::Cancelled;
    order.updated_at = app.clock.now();
    ops.insert(0, WriteOp::Put { item: order_item(&order, s.version + 1)?, cond: Cond::Version(s.version) });
    app.store.transact(ops).await?;
    Ok(order)
}

/// Admin: cancels an approved cash order; its seats are free again.
pub async fn cancel(app: &App, id: &str) -> ApiResult<Order> {
    let s = get(app, id).await?;
    if s.order.status != OrderStatus::Approved || s.order.order_type.online() {
        return Err(ApiError::bad_request("status", "only approved cash orders can be cancelled"));
    }
    // No email is queued: the box office cancels after talking to the buyer, and the
    // notification templates have none for a cancellation.
    cancel_and_free(app, s).await
}

/// Called once when the online payment of an `ordered` order settles. Success: `approved`,
/// buyer and box office emails, e-tickets for `email_online`. Failure: `cancelled` and the
/// seats freed. A repeated call for an order already finished the same way changes nothing.
pub async fn on_payment_settled(app: &App, order_id: &str, succeeded: bool) -> ApiResult<Order> {
    for _ in 0..4 {
        let s = get(app, order_id).await?;
        match (s.order.status, succeeded) {
            (OrderStatus::Ordered, true) => {
                let mut order = s.order;
                order.status = OrderStatus::Approved;
                order.updated_at = app.clock.now();
                match app.store.put(order_item(&order, s.version + 1)?, Cond::Version(s.version)).await {
                    Ok(()) => {
                        notify_approved(app, &order, "approved").await?;
                        return Ok(order);
                    }
                    Err(e) if e.is_conflict() => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            (OrderStatus::Ordered, false) => match cancel_and_free(app, s).await {
                Ok(order) => return Ok(order),
                Err(ApiError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            },
            (OrderStatus::Approved | OrderStatus::Refunded, true) | (OrderStatus::Cancelled, false) => {
                return Ok(s.order);
            }
            (status, _) => {
                tracing::warn!(order = %order_id, ?status, succeeded, "payment settled for an order in another state");
                return Err(ApiError::bad_request(
                    "status",
                    format!("the order is {status:?}, not waiting for a payment"),
                ));
            }
        }
    }
    Err(ApiError::Conflict("the order is being changed by another request; retry".into()))
}
