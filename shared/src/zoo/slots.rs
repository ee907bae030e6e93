//! Visit-slot capacity: a sharded bounded counter per (visit_date, visit_time).
//!
//! A slot's capacity (`ZOO_SLOT_CAPACITY`) is split over `ZOO_SLOT_SHARDS` counter items
//! (`pk = zoo#slot#<date>#<time>`, `sk = shard#<i>`, attribute `taken`), so a flash sale
//! spreads its writes over several keys. Shard `i` holds `capacity / n` places, the first
//! `capacity % n` shards one more. A reservation of `q` places tries the shards in turn,
//! starting at a random one, each with the store's atomic bounded `add` (`taken + q <=
//! shard capacity`); a request fails only when no shard has room for it at the moment it
//! asks, so exactly `capacity` single places can ever be taken. A multi-ticket request
//! that fits in no single shard is split over several shards in one transaction. Releases
//! subtract with a lower bound of 0 and happen in the same transaction as the payment's
//! settlement, so they happen once.

use std::collections::BTreeMap;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::App;
use crate::error::{ApiError, ApiResult};
use crate::retry::{Step, again_on_conflict, optimistic};
use crate::store::{QueryOpts, StoreError, WriteOp};

pub const FIELD: &str = "taken";

/// Places held on one shard of one slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub visit_date: String,
    pub visit_time: String,
    pub shard: i64,
    pub quantity: i64,
}

pub fn slot_pk(date: &str, time: &str) -> String {
    format!("zoo#slot#{date}#{time}")
}

fn shard_sk(i: i64) -> String {
    format!("shard#{i}")
}

pub fn shard_capacity(capacity: i64, shards: i64, i: i64) -> i64 {
    capacity / shards + i64::from(i < capacity % shards)
}

/// One slot's shards, tried from a random one.
struct Slot<'a> {
    date: &'a str,
    time: &'a str,
    capacity: i64,
    shards: i64,
    start: i64,
}

impl Slot<'_> {
    /// The shards in the order this request tries them.
    fn order(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.shards).map(|k| (self.start + k) % self.shards)
    }

    fn reservation(&self, shard: i64, quantity: i64) -> Reservation {
        Reservation { visit_date: self.date.into(), visit_time: self.time.into(), shard, quantity }
    }

    /// Takes `r.quantity` places on its shard, within the shard's capacity.
    fn add_op(&self, r: &Reservation) -> WriteOp {
        WriteOp::Add {
            pk: slot_pk(self.date, self.time),
            sk: shard_sk(r.shard),
            field: FIELD.into(),
            delta: r.quantity,
            min: None,
            max: Some(shard_capacity(self.capacity, self.shards, r.shard)),
        }
    }

    /// How to split `quantity` over the shards given what each has taken; `None` when the
    /// slot has not that many places left.
    fn plan(&self, taken: &BTreeMap<i64, i64>, quantity: i64) -> Option<Vec<Reservation>> {
        let mut left = quantity;
        let mut plan = Vec::new();
        for i in self.order() {
            let free = shard_capacity(self.capacity, self.shards, i) - taken.get(&i).copied().unwrap_or(0);
            if free > 0 && left > 0 {
                let q = free.min(left);
                plan.push(self.reservation(i, q));
                left -= q;
            }
        }
        (left == 0).then_some(plan)
    }
}

/// Reserves `quantity` places in a slot, or fails with 400 naming `field` when it is sold out.
pub async fn reserve(
    app: &App,
    date: &str,
    time: &str,
    quantity: i64,
    field: &str,
) -> ApiResult<Vec<Reservation>> {
    let (capacity, shards) = (app.config.zoo.slot_capacity, app.config.zoo.slot_shards);
    let slot = Slot { date, time, capacity, shards, start: rand::rng().random_range(0..shards) };
    for i in slot.order() {
        // A one-op transaction rather than a plain add: its client request token makes the
        // SDK's retry of an add whose answer was lost a success, not a second add (or a
        // "full" shard that is only full of this very request).
        let r = slot.reservation(i, quantity);
        match app.store.transact(vec![slot.add_op(&r)]).await {
            Ok(()) => return Ok(vec![r]),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    // No single shard has room: split over several, all or nothing.
    let split = optimistic("the visit slot", || async {
        let Some(plan) = slot.plan(&taken_by_shard(app, date, time).await?, quantity) else {
            return Ok(Step::Done(None));
        };
        let ops = plan.iter().map(|r| slot.add_op(r)).collect();
        Ok(again_on_conflict(app.store.transact(ops).await)?.map(|()| Some(plan)))
    })
    .await;
    match split {
        Ok(Some(plan)) => Ok(plan),
        Ok(None) | Err(ApiError::Conflict(_)) => {
            let (capacity, reserved) = availability(app, date, time).await?;
            let left = (capacity - reserved).max(0);
            let message = format!(
                "sold out: the visit slot {date} {time} has {left} of {capacity} places left, {quantity} requested"
            );
            Err(ApiError::bad_request(field, message))
        }
        Err(e) => Err(e),
    }
}

async fn taken_by_shard(app: &App, date: &str, time: &str) -> ApiResult<BTreeMap<i64, i64>> {
    let items = app.store.query(&slot_pk(date, time), QueryOpts::prefix("shard#")).await?;
    Ok(items
        .iter()
        .filter_map(|i| {
            i.sk.strip_prefix("shard#").and_then(|s| s.parse().ok()).map(|s: i64| (s, i.number(FIELD)))
        })
        .collect())
}

/// The slot's capacity and the places currently reserved.
pub async fn availability(app: &App, date: &str, time: &str) -> ApiResult<(i64, i64)> {
    let taken = taken_by_shard(app, date, time).await?;
    Ok((app.config.zoo.slot_capacity, taken.values().sum()))
}

/// Writes that give reserved places back (one op per counter key).
pub fn release_ops(reservations: &[Reservation]) -> Vec<WriteOp> {
    let mut by_key: BTreeMap<(String, String), i64> = BTreeMap::new();
    for r in reservations {
        *by_key.entry((slot_pk(&r.visit_date, &r.visit_time), shard_sk(r.shard))).or_default() += r.quantity;
    }
    by_key
        .into_iter()
        .map(|((pk, sk), q)| WriteOp::Add { pk, sk, field: FIELD.into(), delta: -q, min: Some(0), max: None })
        .collect()
}

/// Gives places back outside a settlement (a session that could not be created).
pub async fn release(app: &App, reservations: &[Reservation]) {
    for op in release_ops(reservations) {
        if let WriteOp::Add { pk, sk, field, delta, min, max } = op
            && let Err(e) = app.store.add(&pk, &sk, &field, delta, min, max).await
        {
            tracing::error!(error = %e, %pk, %sk, delta, "could not release slot places");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_fills_the_shards_in_order_or_says_sold_out() {
        let slot = Slot { date: "2026-12-20", time: "10:00", capacity: 10, shards: 4, start: 2 };
        // Shards hold 3, 3, 2, 2 places; the request starts at shard 2.
        let taken = BTreeMap::from([(0, 3), (1, 1), (2, 2), (3, 0)]);
        let plan = slot.plan(&taken, 4).unwrap();
        let got: Vec<(i64, i64)> = plan.iter().map(|r| (r.shard, r.quantity)).collect();
        assert_eq!(got, [(3, 2), (1, 2)], "shard 2 is full; 3 then 1 (0 is full)");
        assert_eq!(slot.plan(&taken, 5), None, "four places left");
        assert_eq!(slot.plan(&BTreeMap::new(), 10).map(|p| p.len()), Some(4));
        assert_eq!(slot.plan(&BTreeMap::new(), 11), None);
    }

    #[test]
    fn shard_capacities_add_up() {
        for (cap, n) in [(50, 4), (3, 4), (0, 2), (500, 7)] {
            assert_eq!((0..n).map(|i| shard_capacity(cap, n, i)).sum::<i64>(), cap);
        }
        assert_eq!(shard_capacity(50, 4, 0), 13);
        assert_eq!(shard_capacity(50, 4, 3), 12);
    }
}
