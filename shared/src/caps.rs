//! No hoarding: caps on what one caller holds without paying for it.
//!
//! A cap counts the live entries of a *ledger*: one item per scope (an event's seat holds, an
//! event's unpaid orders, a zoo visit slot) and caller (a user, a reservation token's hash, or
//! the client address API Gateway reports). An entry names what it counts (a reservation, an
//! order, a zoo session), its weight (seats held; 1 otherwise) and until when it can count at
//! most (the last hold's expiry, the payment deadline). The operation that adds an entry
//! writes the ledger in its own transaction, conditional on the ledger's version, so two
//! requests of one caller racing past a cap never both get in: the loser re-reads and is
//! refused.
//!
//! Entries are not removed by the paths that end them (a release, a payment, a
//! cancellation): they expire on their own, and when a caller reaches its cap the ledger is
//! first checked against the things it names ([`Recount`]) and corrected. So a ledger may
//! count too much for a moment but never lets a caller past its cap, and a path that forgets
//! it cannot lock a buyer out.
//!
//! Over the cap is 429 with `Retry-After`: the seconds until the earliest entry runs out.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::App;
use crate::error::{ApiError, ApiResult};
use crate::store::{Cond, Item, WriteOp};

const SK: &str = "caps";

/// The caps, from the environment (`0` turns one off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapsConfig {
    /// Seats one client address holds at once in one event (`CAP_ADDRESS_SEATS`, default 28:
    /// four full reservations).
    pub address_seats: u32,
    /// Reservations holding seats at once in one event from one client address
    /// (`CAP_ADDRESS_RESERVATIONS`, default 8).
    pub address_reservations: u32,
    /// Unpaid ticket orders (online orders waiting for their payment, cash orders before the
    /// box office took the money) in one event per buyer: a user or a reservation token
    /// (`CAP_BUYER_UNPAID_ORDERS`, default 2).
    pub buyer_unpaid_orders: u32,
    /// The same per client address (`CAP_ADDRESS_UNPAID_ORDERS`, default 10).
    pub address_unpaid_orders: u32,
    /// Open (unpaid) zoo sessions per visit slot per user (`CAP_USER_ZOO_SESSIONS`, default 3).
    pub user_zoo_sessions: u32,
    /// The same per client address (`CAP_ADDRESS_ZOO_SESSIONS`, default 10).
    pub address_zoo_sessions: u32,
    /// Places those open sessions hold in one visit slot, per user (`CAP_USER_ZOO_PLACES`,
    /// default 50: one session of the most tickets a session takes).
    pub user_zoo_places: u32,
    /// The same per client address (`CAP_ADDRESS_ZOO_PLACES`, default 100).
    pub address_zoo_places: u32,
}

impl Default for CapsConfig {
    fn default() -> Self {
        CapsConfig {
            address_seats: 28,
            address_reservations: 8,
            buyer_unpaid_orders: 2,
            address_unpaid_orders: 10,
            user_zoo_sessions: 3,
            address_zoo_sessions: 10,
            user_zoo_places: 50,
            address_zoo_places: 100,
        }
    }
}

impl CapsConfig {
    /// No caps at all (tests that play many buyers from one address).
    pub fn off() -> Self {
        CapsConfig {
            address_seats: 0,
            address_reservations: 0,
            buyer_unpaid_orders: 0,
            address_unpaid_orders: 0,
            user_zoo_sessions: 0,
            address_zoo_sessions: 0,
            user_zoo_places: 0,
            address_zoo_places: 0,
        }
    }

    pub fn from_vars(v: &crate::config::Vars) -> Result<Self, String> {
        let d = CapsConfig::default();
        Ok(CapsConfig {
            address_seats: v.parsed("CAP_ADDRESS_SEATS", d.address_seats)?,
            address_reservations: v.parsed("CAP_ADDRESS_RESERVATIONS", d.address_reservations)?,
            buyer_unpaid_orders: v.parsed("CAP_BUYER_UNPAID_ORDERS", d.buyer_unpaid_orders)?,
            address_unpaid_orders: v.parsed("CAP_ADDRESS_UNPAID_ORDERS", d.address_unpaid_orders)?,
            user_zoo_sessions: v.parsed("CAP_USER_ZOO_SESSIONS", d.user_zoo_sessions)?,
            address_zoo_sessions: v.parsed("CAP_ADDRESS_ZOO_SESSIONS", d.address_zoo_sessions)?,
            user_zoo_places: v.parsed("CAP_USER_ZOO_PLACES", d.user_zoo_places)?,
            address_zoo_places: v.parsed("CAP_ADDRESS_ZOO_PLACES", d.address_zoo_places)?,
        })
    }
}

/// The caller key of a client address.
pub fn address_key(addr: &str) -> String {
    format!("addr:{addr}")
}

/// One thing a ledger counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// What it is (a reservation, order or payment id).
    pub id: String,
    /// How much of the cap it takes (seats; 1 otherwise).
    pub weight: u32,
    /// It counts at most until then.
    #[serde(with = "crate::time::utc")]
    pub until: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Ledger {
    entries: Vec<Entry>,
}

/// What a cap limits: the sum of the live entries' weights and their number (0: no limit).
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub weight: u32,
    pub count: u32,
    /// What the refusal names (the request's field).
    pub field: &'static str,
    /// What the weight and the count are, for the message ("seats held", "reservations").
    pub weight_what: &'static str,
    pub count_what: &'static str,
}

impl Limit {
    pub fn is_off(&self) -> bool {
        self.weight == 0 && self.count == 0
    }
}

/// Checks the entries a ledger lists against what they name: answers the entries that still
/// count, each with its weight now (a reservation's live seats, an order still unpaid).
#[async_trait::async_trait]
pub trait Recount: Send + Sync {
    async fn recount(&self, app: &App, entries: &[Entry]) -> ApiResult<Vec<Entry>>;
}

/// The ledger of `caller` in `scope`.
pub fn pk(scope: &str, caller: &str) -> String {
    ["caps#", scope, "#", caller].concat()
}

/// A ledger as read: its entries and the version to write on.
#[derive(Debug, Clone)]
pub struct Stored {
    pk: String,
    entries: Vec<Entry>,
    version: Option<u64>,
}

pub async fn read(app: &App, pk: String) -> ApiResult<Stored> {
    Ok(match app.store.get(&pk, SK).await? {
        Some(item) => {
            let ledger: Ledger = item.decode()?;
            Stored { pk, entries: ledger.entries, version: Some(item.version) }
        }
        None => Stored { pk, entries: Vec::new(), version: None },
    })
}

/// Several ledgers in one round trip, in the order of `pks`.
pub async fn read_many(app: &App, pks: Vec<String>) -> ApiResult<Vec<Stored>> {
    if pks.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<(String, String)> = pks.iter().map(|pk| (pk.clone(), SK.to_owned())).collect();
    let items = app.store.batch_get(&keys).await?;
    let mut out = Vec::with_capacity(pks.len());
    for pk in pks {
        out.push(match items.iter().find(|i| i.pk == pk) {
            Some(item) => {
                let ledger: Ledger = item.decode()?;
                Stored { pk, entries: ledger.entries, version: Some(item.version) }
            }
            None => Stored { pk, entries: Vec::new(), version: None },
        });
    }
    Ok(out)
}

impl Stored {
    /// The ledger's key.
    pub fn pk(&self) -> &str {
        &self.pk
    }

    /// The entries that still count at `now`, but for the one named `except`.
    fn live<'a>(&'a self, now: DateTime<Utc>, except: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries.iter().filter(move |e| e.until > now && e.id != except)
    }

    /// What `entry` would pass, if anything.
    fn excess(&self, limit: &Limit, entry: &Entry, now: DateTime<Utc>) -> Option<String> {
        let live: Vec<&Entry> = self.live(now, &entry.id).collect();
        let weight: u32 = live.iter().map(|e| e.weight).sum::<u32>() + entry.weight;
        let count = live.len() as u32 + 1;
        if limit.weight > 0 && weight > limit.weight {
            return Some(format!("at most {} {}", limit.weight, limit.weight_what));
        }
        if limit.count > 0 && count > limit.count {
            return Some(format!("at most {} {}", limit.count, limit.count_what));
        }
        None
    }

    /// The write that records `entry` (replacing an entry of the same id; expired entries
    /// dropped), on the version read.
    pub fn write(&self, entry: Option<&Entry>, now: DateTime<Utc>) -> ApiResult<WriteOp> {
        let except = entry.map_or("", |e| e.id.as_str());
        let mut entries: Vec<Entry> = self.live(now, except).cloned().collect();
        entries.extend(entry.filter(|e| e.weight > 0).cloned());
        let last = entries.iter().map(|e| e.until).max().unwrap_or(now);
        let ttl = (last + chrono::Duration::days(1)).timestamp();
        let item = Item::from_value(&self.pk, SK, &Ledger { entries })?
            .with_ttl(Some(ttl))
            .with_version(self.version.map_or(1, |v| v + 1));
        let cond = self.version.map_or(Cond::NotExists, Cond::Version);
        Ok(WriteOp::Put { item, cond })
    }

    /// Answers the ledger to write `entry` into when it fits under `limit`; else, after a
    /// recount of what the ledger names (written back when it corrected anything), 429 with
    /// the seconds until the earliest entry runs out.
    pub async fn admit(
        mut self,
        app: &App,
        limit: &Limit,
        entry: &Entry,
        recount: &dyn Recount,
    ) -> ApiResult<Stored> {
        let now = app.clock.now();
        if limit.is_off() || self.excess(limit, entry, now).is_none() {
            return Ok(self);
        }
        let live: Vec<Entry> = self.live(now, &entry.id).cloned().collect();
        let counted = recount.recount(app, &live).await?;
        if counted != live {
            self.entries = counted;
            if self.excess(limit, entry, now).is_none() {
                return Ok(self);
            }
            // Keep the correction (best effort: losing a race here changes nothing).
            if let Ok(op) = self.write(None, now)
                && app.store.transact(vec![op]).await.is_ok()
            {
                self.version = Some(self.version.map_or(1, |v| v + 1));
            }
        }
        let why = self.excess(limit, entry, now).unwrap_or_default();
        let soonest = self.live(now, &entry.id).map(|e| e.until).min().unwrap_or(now);
        Err(ApiError::TooMany {
            field: limit.field.to_owned(),
            message: format!("over the cap: {why}; try again later"),
            retry_after: (soonest - now).num_seconds().max(1) as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, weight: u32, until: DateTime<Utc>) -> Entry {
        Entry { id: id.into(), weight, until }
    }

    #[test]
    fn live_entries_count_and_the_own_entry_is_replaced() {
        let now = Utc::now();
        let later = now + chrono::Duration::minutes(10);
        let s = Stored {
            pk: "caps#x#y".into(),
            entries: vec![entry("a", 5, later), entry("b", 2, later), entry("old", 7, now)],
            version: Some(3),
        };
        let limit =
            Limit { weight: 8, count: 2, field: "seat_id", weight_what: "seats", count_what: "carts" };
        // Expired "old" does not count; "a" replaced by its new weight.
        assert_eq!(s.excess(&limit, &entry("a", 6, later), now), None);
        assert_eq!(s.excess(&limit, &entry("a", 7, later), now).as_deref(), Some("at most 8 seats"));
        assert_eq!(s.excess(&limit, &entry("c", 1, later), now).as_deref(), Some("at most 2 carts"));
        let Ok(WriteOp::Put { item, cond }) = s.write(Some(&entry("c", 1, later)), now) else { panic!() };
        assert_eq!(cond, Cond::Version(3));
        let ledger: Ledger = item.decode().unwrap();
        assert_eq!(ledger.entries.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["a", "b", "c"]);
    }
}
