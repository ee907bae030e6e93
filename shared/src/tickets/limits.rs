//! The caps of ticket buyers (see [`crate::caps`]): seats held at once per client address and
//! event (and reservations holding them), unpaid orders per buyer (user or reservation token)
//! and per client address and event. One buyer already has one reservation per event of at
//! most [`super::MAX_SEATS`] seats; the address caps stop one client from opening many.

use chrono::{DateTime, Utc};

use super::Buyer;
use super::orders::{self, Order, OrderStatus};
use super::reservations::{self, Reservation};
use crate::App;
use crate::caps::{self, Entry, Limit, Recount, Stored};
use crate::error::ApiResult;

fn holds_limit(app: &App) -> Limit {
    let c = &app.config.caps;
    Limit {
        weight: c.address_seats,
        count: c.address_reservations,
        field: "seat_id",
        weight_what: "seats held in one event from one client address",
        count_what: "reservations holding seats in one event from one client address",
    }
}

/// The seat-hold ledger of the buyer's address for `event_id`, when that cap is on.
pub async fn read_holds(app: &App, buyer: &Buyer, event_id: &str) -> ApiResult<Option<Stored>> {
    match &buyer.client {
        Some(addr) if !holds_limit(app).is_off() => {
            let pk = caps::pk(&format!("holds#{event_id}"), &caps::address_key(addr));
            Ok(Some(caps::read(app, pk).await?))
        }
        _ => Ok(None),
    }
}

/// The PR's entry in the hold ledger: its live seats, until the last one's expiry.
pub fn holds_entry(pr: &Reservation, now: DateTime<Utc>) -> Entry {
    let live: Vec<_> = pr.held.iter().filter(|h| h.expires_at > now).collect();
    Entry {
        id: pr.id.clone(),
        weight: live.len() as u32,
        until: live.iter().map(|h| h.expires_at).max().unwrap_or(now),
    }
}

/// The ledger to write the PR's new entry into, or 429.
pub async fn admit_hold(app: &App, ledger: Stored, entry: &Entry) -> ApiResult<Stored> {
    ledger.admit(app, &holds_limit(app), entry, &HeldRecount).await
}

/// Reservations as they are: their live seats (a PR checked out or deleted holds none).
struct HeldRecount;

#[async_trait::async_trait]
impl Recount for HeldRecount {
    async fn recount(&self, app: &App, entries: &[Entry]) -> ApiResult<Vec<Entry>> {
        let now = app.clock.now();
        let mut out = Vec::new();
        for e in entries {
            if let Some(s) = reservations::stored(app, &e.id).await? {
                let counted = holds_entry(&s.pr, now);
                if counted.weight > 0 {
                    out.push(counted);
                }
            }
        }
        Ok(out)
    }
}

/// The unpaid-order ledgers of the order's owner and of the buyer's address for the event,
/// each with its cap, when on.
pub async fn read_orders(
    app: &App,
    owner: &str,
    buyer: &Buyer,
    event_id: &str,
) -> ApiResult<Vec<(Stored, Limit)>> {
    let c = &app.config.caps;
    let scope = format!("orders#{event_id}");
    let limit = |count: u32, count_what: &'static str| Limit {
        weight: 0,
        count,
        field: "reservation_id",
        weight_what: "",
        count_what,
    };
    let mut wanted = Vec::new();
    if c.buyer_unpaid_orders > 0 {
        wanted.push((
            caps::pk(&scope, owner),
            limit(c.buyer_unpaid_orders, "unpaid orders in one event per buyer"),
        ));
    }
    if let Some(addr) = buyer.client.as_deref().filter(|_| c.address_unpaid_orders > 0) {
        wanted.push((
            caps::pk(&scope, &caps::address_key(addr)),
            limit(c.address_unpaid_orders, "unpaid orders in one event from one client address"),
        ));
    }
    let (pks, limits): (Vec<String>, Vec<Limit>) = wanted.into_iter().unzip();
    Ok(caps::read_many(app, pks).await?.into_iter().zip(limits).collect())
}

/// Admits one more unpaid order into each ledger, or 429.
pub async fn admit_order(app: &App, ledgers: Vec<(Stored, Limit)>, probe: &Entry) -> ApiResult<Vec<Stored>> {
    let mut out = Vec::new();
    for (ledger, limit) in ledgers {
        out.push(ledger.admit(app, &limit, probe, &UnpaidRecount).await?);
    }
    Ok(out)
}

/// The order's entry in the unpaid-order ledgers: until its payment deadline.
pub fn order_entry(order: &Order, until: DateTime<Utc>) -> Entry {
    Entry { id: order.id.clone(), weight: 1, until }
}

/// Orders as they are: those still waiting for their money.
struct UnpaidRecount;

#[async_trait::async_trait]
impl Recount for UnpaidRecount {
    async fn recount(&self, app: &App, entries: &[Entry]) -> ApiResult<Vec<Entry>> {
        let mut out = Vec::new();
        for e in entries {
            if let Ok(s) = orders::get(app, &e.id).await
                && (s.order.status == OrderStatus::Ordered || s.order.awaits_cash())
            {
                out.push(e.clone());
            }
        }
        Ok(out)
    }
}
