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
use super::inventory::{Event, Place};
use super::reservations::{self, StoredPr};
use super::totals::{Customer, OrderType, Totals, TotalsView};
use super::{Buyer, barcode, check_id, limits, new_id, notices};
use crate::App;
use crate::error::{ApiError, ApiResult};
use crate::money;
use crate::payments::refunds::{self, RefundKind, RefundState};
use crate::payments::{self, OwnerRef, Payment};
use crate::retry::{Step, optimistic};
use crate::store::{Cond, Item, QueryOpts, StoreError, WriteOp};

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
    #[serde(flatten)]
    pub place: Place,
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
    #[serde(with = "crate::time::utc")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::time::utc")]
    pub updated_at: DateTime<Utc>,
    /// The online payment of the order (`TO_<invoice number>`).
    #[serde(default)]
    pub payment_id: Option<String>,
    /// The gateway page the buyer pays on.
    #[serde(default)]
    pub payment_url: Option<String>,
    /// The sum of the refunds (pending and completed).
    #[serde(default)]
    pub refunded: Decimal,
    #[serde(default)]
    pub refunds: Vec<Refund>,
    /// Why the online payment did not go through (seed 000's `success_or_error` message),
    /// shown on the order and passed to `TICKETS_ERROR_URL`.
    #[serde(default)]
    pub payment_error: Option<String>,
    /// A cash order's payment deadline: `CASH_PAYMENT_HOURS` after checkout, never past the
    /// event's start. Unpaid by then, the reservations job cancels it and frees its seats.
    #[serde(default, with = "crate::time::utc_opt")]
    pub pay_by: Option<DateTime<Utc>>,
    /// When the box office marked a cash order paid, and who.
    #[serde(default, with = "crate::time::utc_opt")]
    pub paid_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub paid_by: Option<String>,
}

impl Order {
    /// The buyer has paid: an online order once its payment went through (refunded ones
    /// included), a cash order once the box office marked it paid (cancelled ones included:
    /// what they paid is owed back, in `refunds`).
    pub fn is_paid(&self) -> bool {
        if self.order_type.online() {
            matches!(self.status, OrderStatus::Approved | OrderStatus::Refunded)
        } else {
            self.paid_at.is_some()
        }
    }

    /// A paid online order's status after its refunds: `refunded` once all it took is
    /// refunded (or on its way back), else `approved`: a partial refund (a compensation)
    /// leaves the tickets valid and the seats sold. An order that never took its money (one
    /// cancelled, or still waiting for its payment) keeps its status: a refund the gateway
    /// reports for it (a reversal made in the gateway's own back office) is money going back,
    /// never a payment, and must not make its tickets valid again.
    pub fn status_after_refunds(&self) -> OrderStatus {
        if !matches!(self.status, OrderStatus::Approved | OrderStatus::Refunded) {
            return self.status;
        }
        if self.refunded >= self.totals.total { OrderStatus::Refunded } else { OrderStatus::Approved }
    }

    /// Its tickets let people in: approved and paid. Bar codes and QR codes are shown and
    /// emailed only then.
    pub fn tickets_valid(&self) -> bool {
        self.status == OrderStatus::Approved && self.is_paid()
    }

    /// A cash order still waiting for its money.
    pub fn awaits_cash(&self) -> bool {
        !self.order_type.online() && self.status == OrderStatus::Approved && self.paid_at.is_none()
    }
}

/// One admin refund of an online order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refund {
    pub id: String,
    pub amount: Decimal,
    pub reason: String,
    pub by: String,
    #[serde(with = "crate::time::utc")]
    pub at: DateTime<Utc>,
    /// `pending` while the gateway is asked, then `completed`.
    pub state: String,
}

#[derive(Debug, Clone)]
pub struct StoredOrder {
    pub order: Order,
    pub version: u64,
}

pub fn pk(id: &str) -> String {
    format!("ticket_order#{id}")
}

/// The partition of a bar code: its pointer to the order, and its scan ([`crate::scans`]).
pub fn barcode_pk(code: &str) -> String {
    format!("barcode#{code}")
}

/// The order and seat a bar code was drawn for, from its pointer item.
pub async fn barcode_pointer(app: &App, code: &str) -> ApiResult<Option<(String, String)>> {
    let Some(item) = app.store.get(&barcode_pk(code), "barcode").await? else { return Ok(None) };
    let field = |n: &str| item.data.get(n).and_then(|v| v.as_str()).map(str::to_owned);
    Ok(field("order_id").zip(field("seat_id")))
}

/// The index partition of the cash orders waiting for their money, by deadline.
const CASH_DUE: &str = "cash_due";

/// A deadline as an index sort key: fixed width, so text order is time order.
fn due_key(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub(super) fn order_item(order: &Order, version: u64) -> Result<Item, StoreError> {
    let item = Item::typed(pk(&order.id), SK, order.clone())?.with_version(version);
    // Listed for the deadline sweep while it waits for cash (and only then).
    Ok(match order.pay_by {
        Some(due) if order.awaits_cash() => {
            item.with_gsi1(CASH_DUE, format!("{}#{}", due_key(due), order.id))
        }
        _ => item,
    })
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
    /// The PR had been checked out already: `order` is what it became.
    pub repeated: bool,
}

/// Checkout of the caller's PR. A PR already checked out answers the order it became, so
/// a checkout retried after a lost answer or an ambiguous failure finishes the job.
pub async fn checkout(app: &App, buyer: &Buyer, reservation_id: &str) -> ApiResult<Checkout> {
    // The caps ledgers are read with the PR when its id names its event and the caller names
    // its owner (else after it).
    let guess = buyer.owner_keys().into_iter().next();
    let early = async {
        match (reservations::event_of(reservation_id), &guess) {
            (Some(event_id), Some(owner)) => limits::read_orders(app, owner, buyer, event_id).await.map(Some),
            _ => Ok(None),
        }
    };
    let (loaded, early) = tokio::join!(reservations::load_with_event(app, buyer, reservation_id), early);
    let (s, event) = match loaded {
        Err(ApiError::NotFound(what)) => {
            return match reservations::checked_out(app, buyer, reservation_id).await? {
                Some(order_id) => repeated(app, &order_id).await,
                None => Err(ApiError::NotFound(what)),
            };
        }
        other => other?,
    };
    let order_type =
        s.pr.order_type.ok_or_else(|| ApiError::invalid("order_type", "choose an order type first"))?;
    if s.pr.customer.is_none() {
        return Err(ApiError::invalid("customer", "the buyer's details are required"));
    }
    let early = early?.filter(|_| guess.as_deref() == Some(s.pr.owner.as_str()));
    let done = if order_type.online() {
        online_checkout(app, buyer, s, event, early).await?
    } else {
        // A cash order is confirmed at once, its emails written with it.
        let order = place(app, buyer, &s, event, OrderStatus::Approved, early).await?;
        Checkout { order, payment_url: None, repeated: false }
    };
    // Seats taken by an order (an online order's return to sale if unpaid is not subtracted).
    crate::metrics::add("SeatsSold", &[("OrderType", order_type.as_str())], done.order.tickets.len() as u64);
    Ok(done)
}

/// A repeated checkout: the order as it is now (its emails were written with it); an
/// online order still waiting for its payment answers its payment page again.
async fn repeated(app: &App, order_id: &str) -> ApiResult<Checkout> {
    let s = get(app, order_id).await?;
    let order = s.order;
    let payment_url = if order.status == OrderStatus::Ordered { order.payment_url.clone() } else { None };
    Ok(Checkout { order, payment_url, repeated: true })
}

/// The online branch of checkout (`self_online`, `email_online`): one transaction creates
/// the order as `ordered` (its seats sold to it, so the sweep never frees them), the
/// payment (purpose ticket order, gateway `TICKETS_PAYMENT_GATEWAY`, return URL
/// [`payment_return_url`]) and deletes the PR. The payment is registered with the gateway
/// first (that gives the payment page); if the transaction then fails, the registered
/// payment is never shown to anyone and never paid. Its settlement moves the order (see
/// [`super::payment_owner`]); a payment never completed is cancelled by the reconciliation job,
/// which cancels the order and frees its seats.
pub async fn online_checkout(
    app: &App,
    buyer: &Buyer,
    s: StoredPr,
    event: Option<std::sync::Arc<Event>>,
    ledgers: Option<Vec<(crate::caps::Stored, crate::caps::Limit)>>,
) -> ApiResult<Checkout> {
    let gateway = app.config.payments.tickets_gateway;
    let (template, held, ledgers) =
        prepare_capped(app, buyer, &s, event, OrderStatus::Ordered, ledgers).await?;
    let ledgers = std::sync::Mutex::new(Some(ledgers));
    // A bar code collision draws new codes (and registers the payment anew).
    optimistic("the order's bar codes", || async {
        let caps = admitted(app, buyer, &s, &ledgers).await?;
        let Placement { mut order, mut ops, barcodes } = placement(app, &s, &template, &held)?;
        let inv = payments::new_inv_id();
        let mut p = Payment::new(
            app,
            format!("TO_{inv}"),
            inv,
            order.owner.clone(),
            OwnerRef::new(super::payment_owner::OWNER_KIND, &order.id),
            gateway,
            order.totals.total,
            format!("Билеты: {}, заказ {}", order.event_title, order.id),
        );
        p.email = Some(order.customer.email.clone());
        p.return_url = Some(payment_return_url(app, &order.id));
        p.cancel_url = p.return_url.clone();
        payments::register(app, &mut p).await?;
        order.payment_id = Some(p.id.clone());
        order.payment_url = p.confirmation_url.clone();
        ops[0] = WriteOp::Put { item: order_item(&order, 1)?, cond: Cond::NotExists };
        ops.extend(payments::create_ops(&p)?);
        let capped = cap_ops(&mut ops, &caps, &order, p.expires_at, app.clock.now())?;
        if commit(app, ops, &barcodes, &capped).await?.is_again() {
            return Ok(Step::Again);
        }
        tracing::info!(order = %order.id, payment = %p.id, gateway = gateway.as_str(), "online ticket order placed");
        let payment_url = order.payment_url.clone();
        Ok(Step::Done(Checkout { order, payment_url, repeated: false }))
    })
    .await
}

/// Where the gateway sends the buyer's browser back: `GET /api/v1/ticket_orders/:id/payment_return`.
pub fn payment_return_url(app: &App, order_id: &str) -> String {
    format!("{}/api/v1/ticket_orders/{order_id}/payment_return", app.config.public_url)
}

/// The writes that create an order from the PR with `status`: the order (first), the sold
/// seats, the bar codes (the returned range) and the PR's deletion.
struct Placement {
    order: Order,
    ops: Vec<WriteOp>,
    barcodes: std::ops::Range<usize>,
}

/// Re-checks every hold of the PR and prepares the writes of [`Placement`] (nothing is
/// written).
async fn prepare(
    app: &App,
    s: &StoredPr,
    event: Option<std::sync::Arc<Event>>,
    status: OrderStatus,
) -> ApiResult<(Order, Vec<(Ticket, Hold, u64)>)> {
    let pr = &s.pr;
    let (order_type, customer) = match (pr.order_type, &pr.customer) {
        (Some(t), Some(c)) => (t, c.clone()),
        (None, _) => return Err(ApiError::invalid("order_type", "choose an order type first")),
        (_, None) => return Err(ApiError::invalid("customer", "the buyer's details are required")),
    };
    let (event, tickets, totals) = reservations::priced_with(app, pr, event).await?;
    super::back_office::check_on_sale(&event, app.clock.now())?;
    if let Some(lost) = pr.seats.iter().find(|seat| !tickets.iter().any(|(t, _)| &t.seat_id == *seat)) {
        return Err(ApiError::Conflict(format!(
            "seat {lost} is no longer held by this reservation (its time ran out); add it again"
        )));
    }
    if tickets.is_empty() {
        return Err(ApiError::bad_request("tickets", "the reservation holds no tickets"));
    }
    let order = draft(app, pr, &event, (order_type, customer), totals, status);
    let held = tickets
        .into_iter()
        .map(|(t, h)| {
            // Its bar code is drawn by each placement attempt.
            let ticket = Ticket {
                seat_id: t.seat_id.clone(),
                place: t.place.clone(),
                price: t.price,
                bar_code: String::new(),
            };
            (ticket, Hold::clone(&h.hold), h.version)
        })
        .collect();
    Ok((order, held))
}

/// The order a PR becomes (no id, tickets or bar codes yet: each placement attempt draws them).
fn draft(
    app: &App,
    pr: &reservations::Reservation,
    event: &Event,
    (order_type, customer): (OrderType, Customer),
    totals: Totals,
    status: OrderStatus,
) -> Order {
    let now = app.clock.now();
    Order {
        id: String::new(),
        status,
        event_id: event.id.clone(),
        event_title: event.title.clone(),
        starts_at: event.starts_at.clone(),
        venue: event.venue.clone(),
        reservation_id: pr.id.clone(),
        owner: pr.owner.clone(),
        order_type,
        customer,
        tickets: Vec::new(),
        totals,
        created_at: now,
        updated_at: now,
        payment_id: None,
        payment_url: None,
        refunded: Decimal::ZERO,
        refunds: Vec::new(),
        payment_error: None,
        pay_by: (!order_type.online()).then(|| cash_deadline(app, now, &event.starts_at)),
        paid_at: None,
        paid_by: None,
    }
}

/// A cash order's payment deadline: `CASH_PAYMENT_HOURS` from `now`, but never past the
/// event's start.
fn cash_deadline(app: &App, now: DateTime<Utc>, starts_at: &str) -> DateTime<Utc> {
    let window =
        chrono::Duration::from_std(app.config.cash_payment_window).unwrap_or(chrono::Duration::hours(72));
    let by = now + window;
    match DateTime::parse_from_rfc3339(starts_at) {
        Ok(start) => by.min(start.with_timezone(&Utc)),
        Err(_) => by,
    }
}

/// One attempt's writes, with a new order id and new bar codes (and, for an order confirmed
/// at once, its emails).
fn placement(
    app: &App,
    s: &StoredPr,
    template: &Order,
    held: &[(Ticket, Hold, u64)],
) -> ApiResult<Placement> {
    let mut order = template.clone();
    order.id = new_id();
    order.tickets =
        held.iter().map(|(t, _, _)| Ticket { bar_code: barcode::new_bar_code(), ..t.clone() }).collect();
    let mut ops = vec![WriteOp::Put { item: order_item(&order, 1)?, cond: Cond::NotExists }];
    for (_, h, version) in held {
        let sold =
            Hold { state: HoldState::Sold, order_id: Some(order.id.clone()), expires_at: None, ..h.clone() };
        ops.push(WriteOp::Put { item: holds::item(sold, version + 1)?, cond: Cond::Version(*version) });
    }
    let first_barcode = ops.len();
    for t in &order.tickets {
        let data = json!({"order_id": order.id, "seat_id": t.seat_id, "event_id": order.event_id});
        let item =
            Item::new(barcode_pk(&t.bar_code), "barcode", data.as_object().cloned().unwrap_or_default());
        ops.push(WriteOp::Put { item, cond: Cond::NotExists });
    }
    let barcodes = first_barcode..ops.len();
    ops.extend(super::back_office::index_ops(&order));
    ops.push(s.delete_op());
    ops.push(reservations::checked_out_op(&s.pr, &order.id, order.created_at)?);
    if order.status == OrderStatus::Approved {
        ops.extend(crate::outbox::ops(app, &notices::approved(app, &order, "approved")?)?);
    }
    Ok(Placement { order, ops, barcodes })
}

/// Writes a placement: a bar code collision or a caps ledger changed meanwhile is
/// [`Step::Again`] (draw new codes, re-read the ledgers); any other lost condition means the
/// reservation changed meanwhile (409).
async fn commit(
    app: &App,
    ops: Vec<WriteOp>,
    barcodes: &std::ops::Range<usize>,
    caps: &std::ops::Range<usize>,
) -> ApiResult<Step<()>> {
    match app.store.transact(ops).await {
        Ok(()) => Ok(Step::Done(())),
        Err(StoreError::Conflict { index: Some(i) }) if barcodes.contains(&i) || caps.contains(&i) => {
            Ok(Step::Again)
        }
        Err(e) if e.is_conflict() => Err(ApiError::Conflict(
            "the reservation changed during checkout (a seat was released or taken); re-read and retry"
                .into(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Creates the order from the PR with `status`: re-checks every hold, then one transaction
/// creates the order, sells the seats, reserves the bar codes and deletes the PR.
pub async fn place(
    app: &App,
    buyer: &Buyer,
    s: &StoredPr,
    event: Option<std::sync::Arc<Event>>,
    status: OrderStatus,
    ledgers: Option<Vec<(crate::caps::Stored, crate::caps::Limit)>>,
) -> ApiResult<Order> {
    let (template, held, ledgers) = prepare_capped(app, buyer, s, event, status, ledgers).await?;
    let ledgers = std::sync::Mutex::new(Some(ledgers));
    // A bar code collision is astronomically rare; the transaction would refuse it, and
    // another attempt draws new codes.
    optimistic("the order's bar codes", || async {
        let caps = admitted(app, buyer, s, &ledgers).await?;
        let mut p = placement(app, s, &template, &held)?;
        // A cash order waits for its money until its deadline; an order confirmed otherwise
        // (none today) is not unpaid.
        let capped = match p.order.pay_by.filter(|_| p.order.awaits_cash()) {
            Some(due) => cap_ops(&mut p.ops, &caps, &p.order, due, app.clock.now())?,
            None => 0..0,
        };
        if commit(app, p.ops, &p.barcodes, &capped).await?.is_again() {
            return Ok(Step::Again);
        }
        Ok(Step::Done(p.order))
    })
    .await
}

/// [`prepare`], with the caller's unpaid-order ledgers (read with the PR, else now, at the
/// same time) admitted: 429 when one more unpaid order would pass a cap.
async fn prepare_capped(
    app: &App,
    buyer: &Buyer,
    s: &StoredPr,
    event: Option<std::sync::Arc<Event>>,
    status: OrderStatus,
    early: Option<Vec<(crate::caps::Stored, crate::caps::Limit)>>,
) -> ApiResult<(Order, Vec<(Ticket, Hold, u64)>, Vec<crate::caps::Stored>)> {
    let ledgers = async {
        match early {
            Some(l) => Ok(l),
            None => limits::read_orders(app, &s.pr.owner, buyer, &s.pr.event_id).await,
        }
    };
    let ((template, held), ledgers) = tokio::try_join!(prepare(app, s, event, status), ledgers)?;
    let probe = limits::order_entry(&template, app.clock.now());
    let ledgers = limits::admit_order(app, ledgers, &probe).await?;
    Ok((template, held, ledgers))
}

/// The admitted ledgers: as read with the checkout's first reads (taken once), or read again
/// for a later attempt (one of them may have changed under the last).
async fn admitted(
    app: &App,
    buyer: &Buyer,
    s: &StoredPr,
    ledgers: &std::sync::Mutex<Option<Vec<crate::caps::Stored>>>,
) -> ApiResult<Vec<crate::caps::Stored>> {
    let first = ledgers.lock().map_err(|_| ApiError::Internal("caps lock".into()))?.take();
    if let Some(l) = first {
        return Ok(l);
    }
    let read = limits::read_orders(app, &s.pr.owner, buyer, &s.pr.event_id).await?;
    let probe = crate::caps::Entry { id: String::new(), weight: 1, until: app.clock.now() };
    limits::admit_order(app, read, &probe).await
}

/// Adds the order's entry to each ledger's write; answers their range in `ops`.
fn cap_ops(
    ops: &mut Vec<WriteOp>,
    caps: &[crate::caps::Stored],
    order: &Order,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> ApiResult<std::ops::Range<usize>> {
    let start = ops.len();
    let entry = limits::order_entry(order, until);
    for ledger in caps {
        ops.push(ledger.write(Some(&entry), now)?);
    }
    Ok(start..ops.len())
}

#[derive(Debug, Clone, Serialize)]
pub struct TicketView {
    pub seat_id: String,
    #[serde(flatten)]
    pub place: Place,
    #[serde(with = "money::number")]
    pub price: Decimal,
    /// Only once the order is paid (`null` before, and after a cancellation or refund).
    pub bar_code: Option<String>,
    /// The bar code as a QR image (SVG), when `bar_code` is shown.
    pub qr_url: Option<String>,
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
    #[serde(with = "crate::time::utc")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::time::utc")]
    pub updated_at: DateTime<Utc>,
    /// The gateway page of an online order's payment.
    pub payment_url: Option<String>,
    /// The sum of the refunds.
    #[serde(with = "money::number")]
    pub refunded: Decimal,
    pub refunds: Vec<RefundView>,
    /// Why the online payment did not go through.
    pub payment_error: Option<String>,
    /// The buyer has paid (online, or at the box office for a cash order).
    pub paid: bool,
    /// A cash order's payment deadline.
    #[serde(default, with = "crate::time::utc_opt")]
    pub pay_by: Option<DateTime<Utc>>,
    /// When the box office marked a cash order paid.
    #[serde(default, with = "crate::time::utc_opt")]
    pub paid_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RefundView {
    pub id: String,
    #[serde(with = "money::number")]
    pub amount: Decimal,
    pub reason: String,
    #[serde(with = "crate::time::utc")]
    pub at: DateTime<Utc>,
    pub state: String,
}

/// The first field of a seated ticket's QR payload.
pub const SEAT_TICKET: &str = "TICKET";

/// What a seated ticket's QR code carries: `TICKET;<bar_code>;<order_id>;<event_id>;<seat_id>`,
/// signed (see [`crate::ticket_keys`]).
pub fn qr_payload(key: &crate::ticket_keys::TicketKey, order: &Order, ticket: &Ticket) -> String {
    key.sign(&[SEAT_TICKET, &ticket.bar_code, &order.id, &order.event_id, &ticket.seat_id])
}

pub fn qr_url(app: &App, order_id: &str, bar_code: &str) -> String {
    format!("{}/api/v1/ticket_orders/{order_id}/tickets/{bar_code}/qr", app.config.public_url)
}

/// The step-3 summary.
pub fn view(app: &App, o: &Order) -> OrderView {
    let valid = o.tickets_valid();
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
                place: t.place.clone(),
                price: t.price,
                bar_code: valid.then(|| t.bar_code.clone()),
                qr_url: valid.then(|| qr_url(app, &o.id, &t.bar_code)),
            })
            .collect(),
        totals: o.totals.view(),
        created_at: o.created_at,
        updated_at: o.updated_at,
        // Only while the order waits for its payment.
        payment_url: o.payment_url.clone().filter(|_| o.status == OrderStatus::Ordered),
        refunded: o.refunded,
        refunds: o
            .refunds
            .iter()
            .map(|r| RefundView {
                id: r.id.clone(),
                amount: r.amount,
                reason: r.reason.clone(),
                at: r.at,
                state: r.state.clone(),
            })
            .collect(),
        payment_error: o.payment_error.clone(),
        paid: o.is_paid(),
        pay_by: o.pay_by,
        paid_at: o.paid_at,
    }
}

/// Admin: writes the buyer's emails again (new notification ids).
pub async fn resend_email(app: &App, id: &str) -> ApiResult<Order> {
    let s = get(app, id).await?;
    let o = &s.order;
    if o.status != OrderStatus::Approved {
        return Err(ApiError::bad_request("status", "only approved orders have an email to resend"));
    }
    let resend = format!("resend-{}", new_id());
    let again: Vec<_> =
        notices::approved(app, o, &resend)?.into_iter().filter(|n| n.to == o.customer.email).collect();
    crate::outbox::put(app, &again).await?;
    Ok(s.order)
}

/// Deletes of the order's sold seats (each on its version), so they are free again.
pub(super) async fn free_seat_ops(app: &App, order: &Order) -> ApiResult<Vec<WriteOp>> {
    let seats: Vec<String> = order.tickets.iter().map(|t| t.seat_id.clone()).collect();
    holds::free_ops(app, &order.event_id, &seats, |h| {
        h.state == HoldState::Sold && h.order_id.as_deref() == Some(order.id.as_str())
    })
    .await
}

/// Moves an order to `cancelled` and frees its seats, in one transaction on the order's
/// version (with `notices`, built from the cancelled order).
async fn cancel_and_free(
    app: &App,
    s: StoredOrder,
    notices: impl FnOnce(&Order) -> ApiResult<Vec<crate::mail::Notification>>,
) -> ApiResult<Order> {
    let mut order = s.order;
    let mut ops = free_seat_ops(app, &order).await?;
    order.status = OrderStatus::Cancelled;
    order.updated_at = app.clock.now();
    if !order.order_type.online() && order.paid_at.is_some() && order.refunded < order.totals.total {
        // Cash taken at the box office goes back there: recorded, so that the books show it
        // (the report's refunds) and the box office knows what it owes.
        order.refunds.push(Refund {
            id: refunds::new_id(),
            amount: order.totals.total - order.refunded,
            reason: "вернуть в кассе".into(),
            by: "box office".into(),
            at: order.updated_at,
            state: "at_box_office".into(),
        });
        order.refunded = order.totals.total;
    }
    ops.insert(0, WriteOp::Put { item: order_item(&order, s.version + 1)?, cond: Cond::Version(s.version) });
    ops.extend(crate::outbox::ops(app, &notices(&order)?)?);
    app.store.transact(ops).await?;
    Ok(order)
}

/// Admin: cancels an approved cash order; its seats are free again and the buyer is told.
pub async fn cancel(app: &App, id: &str) -> ApiResult<Order> {
    let s = get(app, id).await?;
    if s.order.status != OrderStatus::Approved || s.order.order_type.online() {
        return Err(ApiError::bad_request("status", "only approved cash orders can be cancelled"));
    }
    cancel_and_free(app, s, |o| {
        Ok(vec![notices::cancelled(app, o, "cancelled", notices::CANCELLED_BY_BOX_OFFICE)?])
    })
    .await
    .map_err(lost_race)
}

/// An event's cancellation: cancels an approved cash order (paid or not), frees its seats and
/// tells the buyer (once: the write is on the order's version).
pub async fn cancel_for_event(app: &App, id: &str) -> ApiResult<Order> {
    let s = get(app, id).await?;
    if s.order.status != OrderStatus::Approved || s.order.order_type.online() {
        return Err(ApiError::bad_request("status", "only approved cash orders are cancelled this way"));
    }
    cancel_and_free(app, s, |o| {
        Ok(vec![notices::cancelled(app, o, "event-cancelled", notices::CANCELLED_EVENT)?])
    })
    .await
}

/// A conditional write on the order lost: someone changed it meanwhile.
fn lost_race(e: ApiError) -> ApiError {
    match e {
        ApiError::Conflict(_) => {
            ApiError::Conflict("the order changed meanwhile (paid, cancelled or swept); re-read it".into())
        }
        other => other,
    }
}

/// Admin (the box office): the buyer paid a cash order. Its bar codes become valid and the
/// buyer gets an email with them. Refused (409) when it is already paid, past its deadline, or
/// changed meanwhile; only approved cash orders can be paid.
pub async fn mark_paid(app: &App, id: &str, by: &str) -> ApiResult<Order> {
    let s = get(app, id).await?;
    let o = &s.order;
    if o.order_type.online() {
        return Err(ApiError::bad_request("order_type", "online orders are paid through their gateway"));
    }
    if let (Some(at), Some(who)) = (o.paid_at, &o.paid_by) {
        return Err(ApiError::Conflict(format!(
            "the order was already marked paid at {} by {who}",
            due_key(at)
        )));
    }
    if o.status != OrderStatus::Approved {
        return Err(ApiError::bad_request("status", format!("the order is {}", status_str(o.status))));
    }
    if super::inventory::get_event(app, &o.event_id).await?.is_some_and(|e| e.cancellation.is_some()) {
        // The cancellation is cancelling this order: its money is not to be taken.
        return Err(ApiError::bad_request("event_id", "the event is cancelled"));
    }
    let now = app.clock.now();
    if let Some(due) = o.pay_by
        && due <= now
    {
        return Err(ApiError::Conflict(format!(
            "the payment deadline passed at {}: the order is cancelled and its seats freed",
            due_key(due)
        )));
    }
    let mut next = s.order.clone();
    next.paid_at = Some(now);
    next.paid_by = Some(by.to_owned());
    next.updated_at = now;
    let mut ops =
        vec![WriteOp::Put { item: order_item(&next, s.version + 1)?, cond: Cond::Version(s.version) }];
    ops.extend(crate::outbox::ops(app, &notices::paid(app, &next)?)?);
    app.store.transact(ops).await.map_err(|e| lost_race(e.into()))?;
    Ok(next)
}

fn status_str(s: OrderStatus) -> &'static str {
    match s {
        OrderStatus::Reserved => "reserved",
        OrderStatus::Ordered => "ordered",
        OrderStatus::Approved => "approved",
        OrderStatus::Cancelled => "cancelled",
        OrderStatus::Refunded => "refunded",
    }
}

/// The reservations job: cash orders past their payment deadline and still unpaid are
/// cancelled, their seats freed and their buyers told (each on the order's version, so an
/// order the box office marks paid at the same moment is either paid or cancelled, never
/// both). Answers (examined, cancelled).
pub async fn cancel_unpaid(app: &App) -> ApiResult<(usize, usize)> {
    let now = app.clock.now();
    let until = QueryOpts { sk_until: Some(due_key(now)), ..Default::default() };
    let (mut examined, mut cancelled) = (0, 0);
    for entry in app.store.query_gsi1(CASH_DUE, until).await? {
        examined += 1;
        // The index may lag: decide on the order as it is now.
        let s = match get(app, entry.pk.trim_start_matches("ticket_order#")).await {
            Ok(s) => s,
            Err(ApiError::NotFound(_)) => continue,
            Err(e) => return Err(e),
        };
        if !s.order.awaits_cash() || s.order.pay_by.is_none_or(|due| due > now) {
            continue;
        }
        let id = s.order.id.clone();
        match cancel_and_free(app, s, |o| {
            Ok(vec![notices::cancelled(app, o, "unpaid", notices::CANCELLED_UNPAID)?])
        })
        .await
        {
            Ok(_) => {
                cancelled += 1;
                tracing::info!(order = %id, "unpaid cash order cancelled at its deadline");
            }
            // Paid or cancelled meanwhile: the next run sees it as it is.
            Err(ApiError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok((examined, cancelled))
}

/// Where the buyer's browser goes after the payment page: the success page when the order
/// is approved (or later refunded), else the error page (failed, cancelled, or still
/// unpaid). `{order_id}` in a configured URL is replaced by the order id.
pub fn return_target(app: &App, o: &Order) -> String {
    let own = || format!("{}/api/v1/ticket_orders/{}", app.config.public_url, o.id);
    let paid = matches!(o.status, OrderStatus::Approved | OrderStatus::Refunded);
    let configured = if paid { &app.config.tickets_success_url } else { &app.config.tickets_error_url };
    let target = match configured {
        Some(url) => url.replace("{order_id}", &o.id),
        None => own(),
    };
    match (&o.payment_error, paid) {
        (Some(why), false) => with_reason(&target, why),
        _ => target,
    }
}

/// The error page's URL with the reason: in its `{reason}` placeholder, else as `reason=`.
fn with_reason(url: &str, why: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(why.as_bytes()).collect();
    if url.contains("{reason}") {
        return url.replace("{reason}", &encoded);
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}reason={encoded}")
}

/// The buyer's browser back from the gateway: the payment's status is asked of the gateway
/// (the URL's query is never trusted), a final answer settles the payment (which moves the
/// order), and the answer is the page to redirect to.
pub async fn payment_return(app: &App, order_id: &str) -> ApiResult<String> {
    let s = get(app, order_id).await?;
    let Some(pid) = s.order.payment_id.clone() else {
        return Ok(return_target(app, &s.order));
    };
    payments::check_with_gateway(app, payments::get(app, &pid).await?).await?;
    let s = get(app, order_id).await?;
    Ok(return_target(app, &s.order))
}

/// A refund amount: a JSON number or string, positive, at most two decimals (parsed from the
/// text, never through a float).
pub fn parse_amount(raw: &str) -> ApiResult<Decimal> {
    let t = raw.trim().trim_matches('"');
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    let ok = !int.is_empty()
        && int.len() <= 12
        && digits(int)
        && frac.len() <= 2
        && digits(frac)
        && !(t.contains('.') && frac.is_empty());
    let v: Option<Decimal> = if ok { t.parse().ok() } else { None };
    match v {
        Some(v) if v > Decimal::ZERO => Ok(money::round(v)),
        _ => Err(ApiError::invalid("amount", "must be a positive amount with at most two decimals")),
    }
}

/// Admin: refunds `amount` of an approved (or partly refunded) online order through its
/// gateway. In one transaction the refund is reserved on the order (so concurrent refunds can
/// never add up to more than was paid: the loser re-reads and is refused) and written on the
/// payment as `sending`; then the gateway is asked. Its answer completes the refund (the buyer
/// gets a `refund` email; the seats are freed once everything went back) or, if it refused,
/// takes the reservation back (502). If the answer is lost the refund stays pending on the
/// order and the reconciliation job finishes it: answered `pending = true`.
pub async fn refund(
    app: &App,
    id: &str,
    amount: Decimal,
    reason: String,
    by: &str,
) -> ApiResult<(Order, bool)> {
    let reason = reason.trim().to_owned();
    if reason.chars().count() > 1000 {
        return Err(ApiError::invalid("reason", "at most 1000 characters"));
    }
    let refund_id = refunds::new_id();
    let payment_id =
        optimistic("the order", || reserve_refund(app, id, amount, &reason, by, &refund_id)).await?;
    let r = refunds::carry_out(app, &payment_id, &refund_id).await?;
    let order = get(app, id).await?.order;
    Ok((order, r.state != RefundState::Completed))
}

/// The refund rule without a store: only an approved (or partly refunded) online order, and
/// never more than is left of what was paid. Answers the order with the refund reserved.
fn with_refund(
    o: &Order,
    amount: Decimal,
    reason: &str,
    by: &str,
    refund_id: &str,
    now: DateTime<Utc>,
) -> ApiResult<Order> {
    if !o.order_type.online() || !matches!(o.status, OrderStatus::Approved | OrderStatus::Refunded) {
        return Err(ApiError::bad_request("status", "only approved online orders can be refunded"));
    }
    if o.refunded + amount > o.totals.total {
        return Err(ApiError::invalid(
            "amount",
            format!(
                "{} exceeds what is left to refund ({} paid, {} refunded)",
                money::format(amount),
                money::format(o.totals.total),
                money::format(o.refunded)
            ),
        ));
    }
    let mut next = o.clone();
    next.refunded = money::round(o.refunded + amount);
    next.status = next.status_after_refunds();
    next.updated_at = now;
    next.refunds.push(Refund {
        id: refund_id.to_owned(),
        amount,
        reason: reason.to_owned(),
        by: by.to_owned(),
        at: now,
        state: "pending".into(),
    });
    Ok(next)
}

/// One attempt at writing the refund: reserved on the order, `sending` on the payment.
async fn reserve_refund(
    app: &App,
    id: &str,
    amount: Decimal,
    reason: &str,
    by: &str,
    refund_id: &str,
) -> ApiResult<Step<String>> {
    let s = get(app, id).await?;
    let next = with_refund(&s.order, amount, reason, by, refund_id, app.clock.now())?;
    let pid =
        next.payment_id.clone().ok_or_else(|| ApiError::Internal("online order without a payment".into()))?;
    let p = payments::get(app, &pid).await?;
    let mut r = refunds::Refund::new(
        app,
        &p,
        refund_id.to_owned(),
        amount,
        reason.to_owned(),
        RefundKind::Owner,
        RefundState::Sending,
    );
    r.by = Some(by.to_owned());
    let reservation =
        WriteOp::Put { item: order_item(&next, s.version + 1)?, cond: Cond::Version(s.version) };
    Ok(match refunds::request(app, &p, &r, vec![reservation]).await? {
        Step::Done(()) => Step::Done(pid),
        Step::Again => Step::Again,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::named;
    use rust_decimal_macros::dec;

    fn order(order_type: OrderType, status: OrderStatus) -> Order {
        let now = Utc::now();
        Order {
            id: "o1".into(),
            status,
            event_id: "e1".into(),
            event_title: "Концерт".into(),
            starts_at: "2099-01-01T19:00:00Z".into(),
            venue: None,
            reservation_id: "r1".into(),
            owner: "user:u1".into(),
            order_type,
            customer: Customer {
                name: "Иван".into(),
                email: "ivan@example.com".into(),
                phone: "+79991111111".into(),
                address: None,
            },
            tickets: vec![],
            totals: Totals {
                tickets: dec!(2000),
                commission: dec!(100),
                delivery: dec!(0),
                total: dec!(2100),
            },
            created_at: now,
            updated_at: now,
            payment_id: Some("TO_1".into()),
            payment_url: None,
            refunded: Decimal::ZERO,
            refunds: vec![],
            payment_error: None,
            pay_by: None,
            paid_at: None,
            paid_by: None,
        }
    }

    #[test]
    fn refunds_add_up_to_what_was_paid_and_no_more() {
        let now = Utc::now();
        let o = order(OrderType::EmailOnline, OrderStatus::Approved);
        let once = with_refund(&o, dec!(2000.00), "seat broken", "admin", "rf1", now).unwrap();
        assert_eq!(
            (once.status, once.refunded, once.refunds.len()),
            (OrderStatus::Approved, dec!(2000.00), 1),
            "part of it: the tickets stay valid"
        );
        assert!(once.tickets_valid());
        let e = with_refund(&once, dec!(100.01), "more", "admin", "rf2", now).unwrap_err();
        assert_eq!(named(&e), "amount");
        let all = with_refund(&once, dec!(100.00), "the rest", "admin", "rf2", now).unwrap();
        assert_eq!((all.status, all.refunded), (OrderStatus::Refunded, all.totals.total));
        assert!(!all.tickets_valid());
        assert_eq!(all.refunds.iter().map(|r| r.state.as_str()).collect::<Vec<_>>(), ["pending", "pending"]);
    }

    #[test]
    fn only_approved_online_orders_are_refunded() {
        let now = Utc::now();
        for (t, s) in [
            (OrderType::SelfCash, OrderStatus::Approved),
            (OrderType::CourierCash, OrderStatus::Approved),
            (OrderType::SelfOnline, OrderStatus::Ordered),
            (OrderType::SelfOnline, OrderStatus::Cancelled),
        ] {
            let e = with_refund(&order(t, s), dec!(1.00), "x", "admin", "rf", now).unwrap_err();
            assert_eq!(named(&e), "status", "{t:?} {s:?}");
        }
        assert!(
            with_refund(&order(OrderType::SelfOnline, OrderStatus::Approved), dec!(1.00), "", "a", "rf", now)
                .is_ok()
        );
    }
}
