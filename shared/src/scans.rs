//! Entry control: a gate scans a ticket's code, the ticket is admitted once.
//!
//! A code is a zoo ticket's QR payload (`ZOOTICKET;...`), a seated ticket's QR payload
//! (`TICKET;...`), or a seated ticket's bare bar code (13 digits, typed in or read from the
//! printed EAN-13). A QR payload must carry this deployment's signature ([`crate::ticket_keys`]);
//! then the ticket must still be good in the store: its zoo payment `succeeded` (not refunded) and
//! the visit today (Moscow time, from 30 minutes before its slot), or its seated order `approved`
//! (paid; not cancelled or refunded) and the event today (in the event's own offset).
//!
//! Used exactly once: the scan writes the ticket's scan item on the condition that none exists
//! (`sk = scan` beside the bar code's pointer item; `sk = scan#<ticket_id>` in a zoo payment's
//! partition). Of two gates scanning one code at once exactly one write wins; the other, and
//! every later scan, is 409 naming when and at which gate the ticket was first used. A zoo
//! session's `metadata.tickets_activated` turns true in the transaction of its first scan.

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

use crate::App;
use crate::error::{ApiError, ApiResult};
use crate::payments::{self, Payment, Status};
use crate::store::{Cond, Item, StoreError, WriteOp};
use crate::ticket_keys::Forged;
use crate::tickets::orders::{self, OrderStatus, SEAT_TICKET};
use crate::zoo::{self, Session, qr::ZOO_TICKET};

/// How long before its slot a zoo ticket is let in.
const EARLY_ENTRY_MINUTES: i64 = 30;
/// Attempts when a sibling ticket's scan changes the zoo session meanwhile.
const ATTEMPTS: usize = 5;

/// A first use: when and where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Use {
    #[serde(with = "crate::time::utc")]
    pub used_at: DateTime<Utc>,
    pub gate: String,
    /// The staff member (JWT `sub`) who scanned it.
    pub by: String,
}

/// What a gate shows for an admitted ticket.
#[derive(Debug, Clone, Serialize)]
pub struct Admission {
    pub admitted: bool,
    /// `zoo` or `seat`.
    pub kind: &'static str,
    /// The zoo ticket id or the seat's bar code.
    pub ticket: String,
    /// The zoo payment id or the ticket order id.
    pub order: String,
    /// Ticket type (zoo) or seat id (seated).
    pub detail: String,
    #[serde(flatten)]
    pub first_use: Use,
}

/// Checks a gate's name: what the 409 of a second scan shows.
pub fn check_gate(gate: &str) -> ApiResult<()> {
    let ok = (1..=64).contains(&gate.len())
        && gate.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b' ' | b'.'));
    match ok {
        true => Ok(()),
        false => Err(ApiError::invalid("gate", "1 to 64 letters, digits, spaces, '-', '_' or '.'")),
    }
}

/// Scans `code` at `gate` for staff member `by`.
pub async fn scan(app: &App, code: &str, gate: &str, by: &str) -> ApiResult<Admission> {
    check_gate(gate)?;
    let code = code.trim();
    if code.is_empty() || code.len() > 512 {
        return Err(ApiError::invalid("code", "a ticket's QR text or its 13-digit bar code"));
    }
    let now = app.clock.now();
    let used = Use { used_at: now, gate: gate.to_owned(), by: by.to_owned() };
    if crate::tickets::barcode::is_valid(code) {
        return scan_seat(app, code, None, used).await;
    }
    let key = crate::ticket_keys::of(&app.config)?;
    let fields = key.public().verify(code).map_err(|e| {
        let why = match e {
            Forged::Malformed => "not a ticket's code",
            Forged::UnknownKey | Forged::BadSignature => "not a genuine ticket: its signature does not match",
        };
        ApiError::invalid("code", why)
    })?;
    match fields.as_slice() {
        [kind, ticket_id, payment_id, date, time, ticket_type] if *kind == ZOO_TICKET => {
            let slot = (*date, *time);
            scan_zoo(app, ticket_id, payment_id, slot, ticket_type, used).await
        }
        [kind, bar_code, order_id, _event, _seat] if *kind == SEAT_TICKET => {
            scan_seat(app, bar_code, Some(order_id), used).await
        }
        _ => Err(ApiError::invalid("code", "not a ticket's code")),
    }
}

/// 409 naming the first use.
fn used_before(first: &Use) -> ApiError {
    ApiError::Conflict(format!(
        "ticket already used at {} at gate {}",
        first.used_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        first.gate
    ))
}

/// The first use recorded in the scan item at the key (after a lost condition).
async fn first_use(app: &App, pk: &str, sk: &str) -> ApiResult<ApiError> {
    match app.store.get(pk, sk).await? {
        Some(item) => Ok(used_before(&item.decode::<Use>()?)),
        None => Ok(ApiError::Conflict("the ticket changed during the scan; scan it again".into())),
    }
}

fn not_valid(why: impl Into<String>) -> ApiError {
    ApiError::invalid("code", why)
}

async fn scan_seat(app: &App, bar_code: &str, named: Option<&str>, used: Use) -> ApiResult<Admission> {
    let pointer = orders::barcode_pointer(app, bar_code).await?;
    let Some((order_id, seat_id)) = pointer else { return Err(not_valid("no ticket has this bar code")) };
    if named.is_some_and(|n| n != order_id) {
        return Err(not_valid("the code names another order"));
    }
    let order = orders::get(app, &order_id).await?.order;
    match order.status {
        OrderStatus::Approved => {}
        OrderStatus::Refunded => return Err(not_valid("the order was refunded")),
        OrderStatus::Cancelled => return Err(not_valid("the order was cancelled")),
        OrderStatus::Reserved | OrderStatus::Ordered => return Err(not_valid("the order is not paid")),
    }
    // A cash order is approved at checkout but good only once the box office took the money.
    if !order.tickets_valid() {
        return Err(not_valid("the order is not paid"));
    }
    if !order.tickets.iter().any(|t| t.bar_code == bar_code) {
        return Err(not_valid("no ticket has this bar code"));
    }
    // An event being cancelled admits nobody (its orders are being refunded and cancelled;
    // one paid just before the job reached it is refunded by its next run).
    if crate::tickets::inventory::get_event(app, &order.event_id)
        .await?
        .is_some_and(|e| e.cancellation.is_some())
    {
        return Err(not_valid("the event is cancelled"));
    }
    let starts = DateTime::<FixedOffset>::parse_from_rfc3339(&order.starts_at)
        .map_err(|e| ApiError::Internal(format!("stored event start {:?}: {e}", order.starts_at)))?;
    let today = used.used_at.with_timezone(starts.offset()).date_naive();
    if today != starts.date_naive() {
        return Err(not_valid(format!("the ticket is for {}, not today", starts.date_naive())));
    }
    let pk = orders::barcode_pk(bar_code);
    let item = Item::from_value(&pk, SK_SCAN, &used)?;
    match app.store.put(item, Cond::NotExists).await {
        Ok(()) => Ok(Admission {
            admitted: true,
            kind: "seat",
            ticket: bar_code.to_owned(),
            order: order_id,
            detail: seat_id,
            first_use: used,
        }),
        Err(StoreError::Conflict { .. }) => Err(first_use(app, &pk, SK_SCAN).await?),
        Err(e) => Err(e.into()),
    }
}

const SK_SCAN: &str = "scan";

fn zoo_scan_sk(ticket_id: &str) -> String {
    format!("scan#{ticket_id}")
}

async fn scan_zoo(
    app: &App,
    ticket_id: &str,
    payment_id: &str,
    (date, time): (&str, &str),
    ticket_type: &str,
    used: Use,
) -> ApiResult<Admission> {
    let day = NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| not_valid("not a ticket's code"))?;
    let at = NaiveTime::parse_from_str(time, "%H:%M").map_err(|_| not_valid("not a ticket's code"))?;
    let msk = FixedOffset::east_opt(3 * 3600).expect("UTC+3 is an offset");
    let local = used.used_at.with_timezone(&msk);
    if local.date_naive() != day {
        return Err(not_valid(format!("the ticket is for {day}, not today")));
    }
    if local.time() < at - Duration::minutes(EARLY_ENTRY_MINUTES) {
        return Err(not_valid(format!(
            "the ticket is for the {time} slot: entry from {EARLY_ENTRY_MINUTES} minutes before"
        )));
    }
    let pk = payments::pk(payment_id);
    let sk = zoo_scan_sk(ticket_id);
    for _ in 0..ATTEMPTS {
        let (payment, session) = zoo::load_paid(app, payment_id).await?;
        check_zoo_payment(&payment, &session, ticket_id)?;
        let mut ops = vec![WriteOp::Put { item: Item::from_value(&pk, &sk, &used)?, cond: Cond::NotExists }];
        let activated = session.metadata.get("tickets_activated").and_then(|v| v.as_bool()) == Some(true);
        if !activated {
            let mut next = session.clone();
            next.metadata.insert("tickets_activated".into(), serde_json::Value::Bool(true));
            ops.push(WriteOp::Put {
                item: next.to_item()?.with_version(session.version + 1),
                cond: Cond::Version(session.version),
            });
        }
        match app.store.transact(ops).await {
            Ok(()) => {
                return Ok(Admission {
                    admitted: true,
                    kind: "zoo",
                    ticket: ticket_id.to_owned(),
                    order: payment_id.to_owned(),
                    detail: ticket_type.to_owned(),
                    first_use: used,
                });
            }
            Err(StoreError::Conflict { index: Some(0) }) => return Err(first_use(app, &pk, &sk).await?),
            // A sibling ticket's first scan activated the session meanwhile: again.
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Conflict("the session changed during the scan; scan it again".into()))
}

fn check_zoo_payment(payment: &Payment, session: &Session, ticket_id: &str) -> ApiResult<()> {
    match payment.status {
        Status::Succeeded => {}
        Status::Refunded => return Err(not_valid("the payment was refunded")),
        _ => return Err(not_valid("the payment is not completed")),
    }
    // A ticket of a payment refunded in part cannot be told from the others: none gets in.
    if payment.refunded_amount + payment.refunding > rust_decimal::Decimal::ZERO {
        return Err(not_valid("the payment was refunded"));
    }
    if !session.tickets.iter().any(|t| t.ticket_id == ticket_id) {
        return Err(not_valid("no such ticket in this payment"));
    }
    Ok(())
}
