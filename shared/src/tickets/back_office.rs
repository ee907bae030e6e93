//! The box office's back office (role `admin`): ticket orders found by the buyer's email or
//! phone or a bar code, an event's sales report, stopping and resuming an event's sales, and
//! cancelling an event (its orders refunded and cancelled by the reservations job).
//!
//! Search and report read index entries each order writes with itself at checkout (one
//! transaction): `order_index#email#<email, lower case>`, `order_index#phone#<phone>` and
//! `order_index#event#<event>`, each sorted by `<created_at>#<order id>`, so a search is one
//! query (newest first) and one batch read, never a scan. Orders placed before these entries
//! existed are found by bar code only.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::json;

use super::holds::{self, HoldState};
use super::inventory::{self, Event};
use super::orders::{self, Order, OrderStatus};
use crate::App;
use crate::error::{ApiError, ApiResult};
use crate::money;
use crate::store::{Cond, Item, QueryOpts, WriteOp};

const INDEX: &str = "order_index";

fn index_pk(key: &str, value: &str) -> String {
    format!("{INDEX}#{key}#{value}")
}

/// An email as it is searched: trimmed, lower case.
fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The index entries of a new order (in its checkout transaction).
pub fn index_ops(order: &Order) -> Vec<WriteOp> {
    let sk =
        format!("{}#{}", order.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true), order.id);
    let data = json!({ "order_id": order.id }).as_object().cloned().unwrap_or_default();
    [
        index_pk("email", &email_key(&order.customer.email)),
        index_pk("phone", order.customer.phone.trim()),
        index_pk("event", &order.event_id),
    ]
    .into_iter()
    .map(|pk| WriteOp::Put { item: Item::new(pk, sk.clone(), data.clone()), cond: Cond::Always })
    .collect()
}

/// What to find orders by.
pub enum Search {
    Email(String),
    Phone(String),
    BarCode(String),
}

impl Search {
    /// The URL of page `page` of this search.
    pub fn link(&self, public_url: &str, page: usize, per: usize) -> String {
        let (key, value) = match self {
            Search::Email(v) => ("email", v),
            Search::Phone(v) => ("phone", v),
            Search::BarCode(v) => ("bar_code", v),
        };
        let value: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
        format!("{public_url}/api/v1/admin/ticket_orders?{key}={value}&page={page}&per={per}")
    }
}

/// One page of the orders found, newest first, and how many were found.
pub async fn search(app: &App, by: &Search, page: usize, per: usize) -> ApiResult<(Vec<Order>, usize)> {
    let pk = match by {
        Search::Email(e) if e.trim().is_empty() || e.len() > 254 => {
            return Err(ApiError::bad_request("email", "an email address of at most 254 characters"));
        }
        Search::BarCode(code) if !super::barcode::is_valid(code) => {
            return Err(ApiError::bad_request("bar_code", "a bar code is 13 digits (EAN-13)"));
        }
        Search::Email(e) => index_pk("email", &email_key(e)),
        Search::Phone(p) => {
            let phone = super::totals::normalized_phone(p.trim())
                .ok_or_else(|| ApiError::bad_request("phone", "not a phone number"))?;
            index_pk("phone", &phone)
        }
        Search::BarCode(code) => {
            let found = match orders::barcode_pointer(app, code).await? {
                Some((order_id, _)) => vec![orders::get(app, &order_id).await?.order],
                None => Vec::new(),
            };
            let total = found.len();
            return Ok((found.into_iter().skip((page - 1).saturating_mul(per)).take(per).collect(), total));
        }
    };
    let entries = app.store.query(&pk, QueryOpts { descending: true, ..Default::default() }).await?;
    let total = entries.len();
    let ids: Vec<String> = entries
        .iter()
        .skip((page - 1).saturating_mul(per))
        .take(per)
        .filter_map(|e| e.data.get("order_id").and_then(|v| v.as_str()).map(str::to_owned))
        .collect();
    Ok((load_orders(app, &ids).await?, total))
}

/// The orders with these ids, newest first.
async fn load_orders(app: &App, ids: &[String]) -> ApiResult<Vec<Order>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<(String, String)> = ids.iter().map(|id| (orders::pk(id), "order".to_owned())).collect();
    let mut found: Vec<Order> =
        app.store.batch_get(&keys).await?.iter().map(|i| i.decode()).collect::<Result<_, _>>()?;
    found.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
    Ok(found)
}

/// Every order of an event (from its index entries).
async fn orders_of(app: &App, event_id: &str) -> ApiResult<Vec<Order>> {
    let entries = app.store.query(&index_pk("event", event_id), QueryOpts::default()).await?;
    let ids: Vec<String> = entries
        .iter()
        .filter_map(|e| e.data.get("order_id").and_then(|v| v.as_str()).map(str::to_owned))
        .collect();
    load_orders(app, &ids).await
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SeatCounts {
    pub total: usize,
    /// In orders (paid or waiting for their payment).
    pub sold: usize,
    /// In buyers' reservations, not yet expired.
    pub held: usize,
    pub free: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CategoryRevenue {
    pub price_category: String,
    pub name: String,
    pub tickets: usize,
    #[serde(with = "money::number")]
    pub amount: Decimal,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Revenue {
    /// Ticket prices of paid orders, by price category.
    pub by_price_category: Vec<CategoryRevenue>,
    pub tickets: usize,
    #[serde(with = "money::number")]
    pub tickets_amount: Decimal,
    #[serde(with = "money::number")]
    pub commission: Decimal,
    #[serde(with = "money::number")]
    pub delivery: Decimal,
    /// What paid orders brought in, before refunds.
    #[serde(with = "money::number")]
    pub total: Decimal,
    /// `total` less refunds.
    #[serde(with = "money::number")]
    pub net: Decimal,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Refunds {
    pub orders: usize,
    #[serde(with = "money::number")]
    pub amount: Decimal,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OrderCounts {
    pub total: usize,
    pub paid: usize,
    pub by_type: BTreeMap<String, usize>,
    pub by_status: BTreeMap<String, usize>,
}

/// An event's sales report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub event: serde_json::Value,
    #[serde(with = "crate::time::utc")]
    pub generated_at: DateTime<Utc>,
    pub seats: SeatCounts,
    pub revenue: Revenue,
    pub refunds: Refunds,
    pub orders: OrderCounts,
}

fn as_text<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// The sales report of event `id`: seats sold, held and free (from the hold index), revenue
/// by price category of the paid orders, refunds, and orders by type and status.
pub async fn report(app: &App, id: &str) -> ApiResult<Report> {
    let event = inventory::get_event(app, id).await?.ok_or_else(|| ApiError::NotFound("event".into()))?;
    let (holds, orders) = tokio::try_join!(holds::of_event(app, id), orders_of(app, id))?;
    let now = app.clock.now();
    let sold = holds.values().filter(|h| h.hold.state == HoldState::Sold).count();
    let held = holds.values().filter(|h| h.hold.state == HoldState::Held && !h.hold.expired(now)).count();
    let seats = SeatCounts {
        total: event.seat_count,
        sold,
        held,
        free: event.seat_count.saturating_sub(sold + held),
    };
    let (revenue, refunds, orders) = sales(&event, &orders);
    Ok(Report {
        event: json!({"id": event.id, "title": event.title, "starts_at": event.starts_at, "on_sale": event.on_sale}),
        generated_at: now,
        seats,
        revenue,
        refunds,
        orders,
    })
}

/// The money side of a report, from the event's orders (pure).
fn sales(event: &Event, orders: &[Order]) -> (Revenue, Refunds, OrderCounts) {
    let mut by_cat: BTreeMap<String, (usize, Decimal)> = BTreeMap::new();
    let (mut commission, mut delivery) = (Decimal::ZERO, Decimal::ZERO);
    let mut counts =
        OrderCounts { total: orders.len(), paid: 0, by_type: BTreeMap::new(), by_status: BTreeMap::new() };
    let mut refunds = Refunds { orders: 0, amount: Decimal::ZERO };
    for o in orders {
        *counts.by_type.entry(o.order_type.as_str().to_owned()).or_default() += 1;
        *counts.by_status.entry(as_text(&o.status)).or_default() += 1;
        if o.refunded > Decimal::ZERO {
            refunds.orders += 1;
            refunds.amount += o.refunded;
        }
        if !o.is_paid() {
            continue;
        }
        counts.paid += 1;
        commission += o.totals.commission;
        delivery += o.totals.delivery;
        for t in &o.tickets {
            let e = by_cat.entry(t.place.price_category.to_string()).or_default();
            e.0 += 1;
            e.1 += t.price;
        }
    }
    // Every category of the event, in its order, then any a ticket names that it no longer has.
    let by_price_category: Vec<CategoryRevenue> = event
        .price_categories
        .iter()
        .map(|c| (c.id.clone(), c.name.clone()))
        .chain(by_cat.keys().filter(|k| event.price_of(k).is_none()).map(|k| (k.clone(), k.clone())))
        .map(|(id, name)| {
            let (tickets, amount) = by_cat.get(&id).copied().unwrap_or_default();
            CategoryRevenue { price_category: id, name, tickets, amount: money::round(amount) }
        })
        .collect();
    let tickets_amount = money::round(by_price_category.iter().map(|c| c.amount).sum());
    let total = money::round(tickets_amount + commission + delivery);
    refunds.amount = money::round(refunds.amount);
    let revenue = Revenue {
        tickets: by_price_category.iter().map(|c| c.tickets).sum(),
        by_price_category,
        tickets_amount,
        commission: money::round(commission),
        delivery: money::round(delivery),
        total,
        net: money::round(total - refunds.amount),
    };
    (revenue, refunds, counts)
}

impl Report {
    /// The report as CSV (`section,key,name,count,amount`, one figure per line), for a
    /// spreadsheet.
    pub fn csv(&self) -> String {
        let mut out = String::from("section,key,name,count,amount\n");
        let mut line =
            |section: &str, key: &str, name: &str, count: Option<usize>, amount: Option<Decimal>| {
                let count = count.map(|c| c.to_string()).unwrap_or_default();
                let amount = amount.map(money::format).unwrap_or_default();
                out.push_str(&format!("{section},{},{},{count},{amount}\n", field(key), field(name)));
            };
        let s = &self.seats;
        for (k, v) in [("total", s.total), ("sold", s.sold), ("held", s.held), ("free", s.free)] {
            line("seats", k, "", Some(v), None);
        }
        for c in &self.revenue.by_price_category {
            line("revenue", &c.price_category, &c.name, Some(c.tickets), Some(c.amount));
        }
        let r = &self.revenue;
        line("revenue", "tickets", "", Some(r.tickets), Some(r.tickets_amount));
        line("revenue", "commission", "", None, Some(r.commission));
        line("revenue", "delivery", "", None, Some(r.delivery));
        line("revenue", "total", "", None, Some(r.total));
        line("refunds", "total", "", Some(self.refunds.orders), Some(self.refunds.amount));
        line("revenue", "net", "", None, Some(r.net));
        line("orders", "total", "", Some(self.orders.total), None);
        line("orders", "paid", "", Some(self.orders.paid), None);
        for (k, v) in &self.orders.by_type {
            line("orders_by_type", k, "", Some(*v), None);
        }
        for (k, v) in &self.orders.by_status {
            line("orders_by_status", k, "", Some(*v), None);
        }
        out
    }
}

/// A CSV field: quoted when it holds a comma, a quote or a line break; a leading `=`, `+`,
/// `-`, `@`, tab or carriage return is prefixed with `'` so a spreadsheet never runs it as a
/// formula.
fn field(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{v}") } else { v.to_owned() };
    if v.contains([',', '"', '\n', '\r']) { format!("\"{}\"", v.replace('"', "\"\"")) } else { v }
}

/// Stops (`false`) or resumes (`true`) an event's sales: while stopped, holds and checkouts
/// are refused and the public list leaves the event out. A write on the event's version.
pub async fn set_on_sale(app: &App, id: &str, on_sale: bool) -> ApiResult<Event> {
    crate::retry::optimistic("the event", || async {
        let (mut event, version) =
            inventory::get_versioned(app, id).await?.ok_or_else(|| ApiError::NotFound("event".into()))?;
        if on_sale && event.cancellation.is_some() {
            // Its orders are being (or were) refunded and cancelled: it never sells again.
            return Err(ApiError::bad_request("event_id", format!("event {id} is cancelled")));
        }
        event.on_sale = on_sale;
        Ok(crate::retry::again_on_conflict(inventory::put_event(app, &event, version).await)?
            .map(|()| event.clone()))
    })
    .await
}

/// Refuses a hold or checkout while the event's sales are stopped, or once it has started.
pub fn check_on_sale(event: &Event, now: DateTime<Utc>) -> ApiResult<()> {
    if !event.on_sale {
        return Err(ApiError::bad_request("event_id", format!("sales of event {} are stopped", event.id)));
    }
    if event.started(now)? {
        return Err(ApiError::bad_request(
            "event_id",
            format!("event {} has started: its sales are over", event.id),
        ));
    }
    Ok(())
}

/// Who the job's refunds are recorded as made by.
const CANCELLER: &str = "system:event-cancellation";

/// The reason a buyer's refund shows.
const CANCEL_REASON: &str = "Мероприятие отменено";

/// Cancels an event: sales stop and its cancellation starts (`running`), in one write on the
/// event's version; the reservations job then refunds and cancels its orders. Cancelling an
/// event already cancelled answers it as it is.
pub async fn cancel_event(app: &App, id: &str, by: &str) -> ApiResult<Event> {
    crate::retry::optimistic("the event", || async {
        let (mut event, version) =
            inventory::get_versioned(app, id).await?.ok_or_else(|| ApiError::NotFound("event".into()))?;
        if event.cancellation.is_some() {
            return Ok(crate::retry::Step::Done(event));
        }
        let now = app.clock.now();
        event.on_sale = false;
        event.cancellation = Some(inventory::Cancellation {
            state: "running".into(),
            by: by.to_owned(),
            started_at: now,
            updated_at: now,
            finished_at: None,
            orders: 0,
            refunded: 0,
            cancelled: 0,
            waiting: 0,
            failed: 0,
        });
        Ok(crate::retry::again_on_conflict(inventory::put_event(app, &event, version).await)?
            .map(|()| event.clone()))
    })
    .await
}

/// The reservations job's part: one pass over every event being cancelled. Each pass derives
/// what is left from the orders as they are (so a pass interrupted anywhere is finished by the
/// next one, and nothing is done twice: each refund and cancellation is a write on the order's
/// version), then records the progress on the event. Answers (orders examined, changed).
pub async fn cancel_events(app: &App) -> ApiResult<(usize, usize)> {
    let (mut examined, mut changed) = (0, 0);
    for event in inventory::list_events(app).await? {
        if event.cancellation.as_ref().is_some_and(|c| c.state == "running") {
            let (e, c) = cancellation_pass(app, &event.id).await?;
            examined += e;
            changed += c;
        }
    }
    Ok((examined, changed))
}

/// What an event's cancellation still has to do with one order, judged from the order alone.
#[derive(Debug, PartialEq)]
enum Left {
    /// Paid online: refund what is left of it through its gateway.
    Refund(Decimal),
    /// Cash, paid or not: cancel it.
    Cancel,
    /// Refunded in full (every refund completed).
    Refunded,
    Cancelled,
    /// Its online payment still open: cancelled now (the order with it, its seats freed; money
    /// that still comes is a late payment, returned).
    Abandon(String),
    /// A refund not yet confirmed by the gateway, or a payment being settled.
    Waiting,
}

fn left_to_do(o: &Order) -> Left {
    let paid_online =
        o.order_type.online() && matches!(o.status, OrderStatus::Approved | OrderStatus::Refunded);
    match o.status {
        OrderStatus::Cancelled => Left::Cancelled,
        _ if paid_online && o.totals.total > o.refunded => Left::Refund(o.totals.total - o.refunded),
        _ if paid_online && o.refunds.iter().any(|r| r.state != "completed") => Left::Waiting,
        _ if paid_online => Left::Refunded,
        OrderStatus::Ordered if o.payment_id.is_some() => {
            Left::Abandon(o.payment_id.clone().unwrap_or_default())
        }
        _ if o.order_type.online() => Left::Waiting,
        OrderStatus::Approved => Left::Cancel,
        _ => Left::Cancelled,
    }
}

/// How far an event's cancellation got: orders refunded, cancelled, waiting, failed.
#[derive(Debug, Default)]
struct Progress {
    refunded: usize,
    cancelled: usize,
    waiting: usize,
    failed: usize,
    changed: usize,
}

async fn cancellation_pass(app: &App, event_id: &str) -> ApiResult<(usize, usize)> {
    let orders = orders_of(app, event_id).await?;
    let mut p = Progress::default();
    for o in &orders {
        match left_to_do(o) {
            Left::Refunded => p.refunded += 1,
            Left::Cancelled => p.cancelled += 1,
            Left::Waiting => p.waiting += 1,
            // The usual refund path; the buyer gets the refund email. Pending: waiting.
            Left::Refund(amount) => {
                match orders::refund(app, &o.id, amount, CANCEL_REASON.into(), CANCELLER).await {
                    Ok((_, false)) => (p.refunded, p.changed) = (p.refunded + 1, p.changed + 1),
                    Ok((_, true)) => p.waiting += 1,
                    Err(e) => {
                        tracing::warn!(order = %o.id, error = %e, "event cancellation: refund failed; retried next run");
                        p.failed += 1;
                    }
                }
            }
            // The payment cancelled, and with it the order (its settlement frees the seats
            // and tells the buyer); a payment that went through meanwhile is refunded by the
            // next pass. Waiting until the order shows it.
            Left::Abandon(pid) => {
                let outcome = crate::payments::Outcome::Canceled { reason: "the event is cancelled".into() };
                match crate::payments::settle(app, &pid, outcome).await {
                    Ok(_) => (p.waiting, p.changed) = (p.waiting + 1, p.changed + 1),
                    Err(e) => {
                        tracing::warn!(order = %o.id, error = %e, "event cancellation: payment not cancelled; retried next run");
                        p.failed += 1;
                    }
                }
            }
            // Seats freed, the buyer told.
            Left::Cancel => match orders::cancel_for_event(app, &o.id).await {
                Ok(_) => (p.cancelled, p.changed) = (p.cancelled + 1, p.changed + 1),
                Err(ApiError::Conflict(_)) => p.waiting += 1,
                Err(e) => return Err(e),
            },
        }
    }
    record_progress(app, event_id, orders.len(), &p).await?;
    Ok((orders.len(), p.changed))
}

/// How long after its start a cancellation keeps looking for orders, however few it found: a
/// checkout that read the event on sale just before the cancellation writes its order after
/// it (its transaction does not read the event again), within an API call's time limit (at
/// most a minute, `template.yaml`); a pass after that finds it and cancels or refunds it.
const CANCEL_SETTLE: chrono::Duration = chrono::Duration::minutes(5);

/// Writes the pass's progress on the event (`done` when nothing is left, once the
/// cancellation has settled: [`CANCEL_SETTLE`]).
async fn record_progress(app: &App, event_id: &str, orders: usize, p: &Progress) -> ApiResult<()> {
    crate::retry::optimistic("the event", || async {
        let Some((mut event, version)) = inventory::get_versioned(app, event_id).await? else {
            return Ok(crate::retry::Step::Done(()));
        };
        let now = app.clock.now();
        let Some(c) = event.cancellation.as_mut() else { return Ok(crate::retry::Step::Done(())) };
        (c.orders, c.refunded, c.cancelled, c.waiting, c.failed) =
            (orders, p.refunded, p.cancelled, p.waiting, p.failed);
        c.updated_at = now;
        if p.waiting == 0 && p.failed == 0 && now - c.started_at >= CANCEL_SETTLE {
            c.state = "done".into();
            c.finished_at = Some(now);
        }
        crate::retry::again_on_conflict(inventory::put_event(app, &event, version).await)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(field("A"), "A");
        assert_eq!(field("Партер, левая сторона"), "\"Партер, левая сторона\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(field("\t=1+1"), "'\t=1+1");
        assert_eq!(field("\r=1+1"), "\"'\r=1+1\"");
    }
}
