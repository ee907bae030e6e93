//! Visit-slot capacity: a sharded bounded counter per (visit_date, visit_time).
//!
//! A slot's capacity (`ZOO_SLOT_CAPACITY`) is split over `ZOO_SLOT_SHARDS` counter items
//! (`pk = zoo#slot#<date>#<time>`, `sk = shard#<i>`, attribute `taken`), so a flash sale
//! spreads its writes over several keys. Shard `i` holds `capacity / n` places, the first
//! `capacity % n` shards one more. A session's places ([`Ask`]) are a bounded `add` (`taken +
//! q <= shard capacity`) inside the very transaction that writes the session and its payment,
//! so places and session exist together or not at all. The shards are tried in turn, starting
//! at a random one; a request fails only when no shard has room for it at the moment it asks,
//! so exactly `capacity` single places can ever be taken. A multi-ticket request that fits in
//! no single shard is split over several shards as they stand. Releases subtract with a lower
//! bound of 0 and happen in the same transaction as the payment's settlement, so they happen
//! once.

use std::collections::BTreeMap;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::App;
use crate::error::{ApiError, ApiResult};
use crate::store::{Counter, QueryOpts, WriteOp};

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
        let max = shard_capacity(self.capacity, self.shards, r.shard);
        WriteOp::Add(
            Counter::new(slot_pk(self.date, self.time), shard_sk(r.shard), FIELD, r.quantity)
                .within(None, Some(max)),
        )
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

/// One slot's places as a session asks for them: the shards this attempt takes them on
/// ([`Ask::ops`], written in the session's transaction) and, when that loses, where to try next.
pub struct Ask {
    date: String,
    time: String,
    capacity: i64,
    shards: i64,
    start: i64,
    quantity: i64,
    /// The request field a sold-out answer names.
    field: String,
    /// Attempts so far: single shards first, then splits over several.
    tried: i64,
    /// Where this attempt takes the places.
    pub plan: Vec<Reservation>,
}

impl Ask {
    pub fn new(app: &App, date: &str, time: &str, quantity: i64, field: String) -> Ask {
        let (capacity, shards) = (app.config.zoo.slot_capacity, app.config.zoo.slot_shards);
        let start = rand::rng().random_range(0..shards);
        let (date, time) = (date.to_owned(), time.to_owned());
        let plan =
            vec![Reservation { visit_date: date.clone(), visit_time: time.clone(), shard: start, quantity }];
        Ask { date, time, capacity, shards, start, quantity, field, tried: 0, plan }
    }

    fn slot(&self) -> Slot<'_> {
        Slot {
            date: &self.date,
            time: &self.time,
            capacity: self.capacity,
            shards: self.shards,
            start: self.start,
        }
    }

    /// The bounded adds of this attempt's plan.
    pub fn ops(&self) -> Vec<WriteOp> {
        let slot = self.slot();
        self.plan.iter().map(|r| slot.add_op(r)).collect()
    }

    /// This attempt's plan did not fit (a shard had not the room, or changed meanwhile): the
    /// next single shard; once each was tried, a split over several as they stand now (a read);
    /// 400 naming the field when the slot has not the places.
    pub async fn next(&mut self, app: &App) -> ApiResult<()> {
        self.tried += 1;
        if self.tried < self.shards {
            let shard = (self.start + self.tried) % self.shards;
            self.plan = vec![self.slot().reservation(shard, self.quantity)];
            return Ok(());
        }
        let splits = self.tried - self.shards;
        let plan = if splits < i64::from(crate::retry::ATTEMPTS) {
            let taken = taken_by_shard(app, &self.date, &self.time).await?;
            self.slot().plan(&taken, self.quantity)
        } else {
            None
        };
        match plan {
            Some(plan) => {
                self.plan = plan;
                Ok(())
            }
            None => Err(self.sold_out(app).await?),
        }
    }

    /// How many attempts this ask may take at most.
    pub fn attempts(&self) -> u32 {
        u32::try_from(self.shards).unwrap_or(u32::MAX).saturating_add(crate::retry::ATTEMPTS)
    }

    async fn sold_out(&self, app: &App) -> ApiResult<ApiError> {
        let (capacity, reserved) = availability(app, &self.date, &self.time).await?;
        let left = (capacity - reserved).max(0);
        let message = format!(
            "sold out: the visit slot {} {} has {left} of {capacity} places left, {} requested",
            self.date, self.time, self.quantity
        );
        Ok(ApiError::bad_request(&self.field, message))
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
        .map(|((pk, sk), q)| WriteOp::Add(Counter::new(pk, sk, FIELD, -q).within(Some(0), None)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ask tries every shard once, then splits over the shards as they stand, then says
    /// sold out naming its field.
    #[tokio::test]
    async fn an_ask_walks_the_shards_then_splits_then_is_sold_out() {
        let mut config = crate::Config::for_tests();
        (config.zoo.slot_capacity, config.zoo.slot_shards) = (10, 4);
        let app = App::in_memory(config);
        let mut ask = Ask::new(&app, "2026-12-20", "10:00", 3, "items[0].quantity".into());
        let mut shards = vec![ask.plan[0].shard];
        for _ in 1..4 {
            ask.next(&app).await.unwrap();
            assert_eq!((ask.plan.len(), ask.plan[0].quantity), (1, 3));
            shards.push(ask.plan[0].shard);
        }
        shards.sort();
        assert_eq!(shards, [0, 1, 2, 3], "each shard once");
        // Every shard refused (here: nothing is taken, so the split fits in one shard of 3).
        ask.next(&app).await.unwrap();
        assert_eq!(ask.plan.iter().map(|r| r.quantity).sum::<i64>(), 3);
        // The slot full: sold out, with what is left.
        for i in 0..4 {
            let delta = shard_capacity(10, 4, i);
            let pk = slot_pk("2026-12-20", "10:00");
            let op = WriteOp::Add(Counter::new(pk, shard_sk(i), FIELD, delta));
            app.store.transact(vec![op]).await.unwrap();
        }
        let err = ask.next(&app).await.unwrap_err();
        assert_eq!(crate::error::named(&err), "items[0].quantity");
        assert!(err.to_string().contains("has 0 of 10 places left"), "{err}");
    }

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
