//! Seat holds: one item per (event, seat). A hold is `held` by a reservation until it
//! expires, or `sold` to an order. At most one item exists per seat, so the conditional
//! write that creates (or replaces an expired) hold decides every race for a seat.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::inventory;
use crate::App;
use crate::error::ApiResult;
use crate::store::{Cond, Item, QueryOpts, StoreError, WriteOp};

/// Index partitions per event for the holds (see the module docs of `tickets`).
pub const INDEX_SHARDS: u32 = 8;

pub const SK: &str = "hold";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldState {
    Held,
    Sold,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hold {
    pub event_id: String,
    pub seat_id: String,
    pub state: HoldState,
    pub reservation_id: Option<String>,
    #[serde(default)]
    pub order_id: Option<String>,
    #[serde(with = "crate::time::utc")]
    pub held_at: DateTime<Utc>,
    /// When a `held` seat becomes free again; `None` once sold.
    #[serde(default, with = "crate::time::utc_opt")]
    pub expires_at: Option<DateTime<Utc>>,
    /// The seat as it was when held (so a reservation's view needs no seat reads).
    #[serde(default)]
    pub seat: Option<inventory::Seat>,
}

impl Hold {
    /// Whether the seat is taken at `now` (sold, or held and not yet expired).
    pub fn blocks(&self, now: DateTime<Utc>) -> bool {
        match self.state {
            HoldState::Sold => true,
            HoldState::Held => self.expires_at.is_some_and(|e| e > now),
        }
    }

    /// Held by this reservation and not expired.
    pub fn live_for(&self, reservation_id: &str, now: DateTime<Utc>) -> bool {
        self.state == HoldState::Held
            && self.reservation_id.as_deref() == Some(reservation_id)
            && self.blocks(now)
    }

    /// A held seat whose time is up: free for anyone, to be swept.
    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.state == HoldState::Held && !self.blocks(now)
    }
}

/// A hold as stored, with its version. The hold is shared with the store's copy when the
/// store keeps one (the embedded store), not copied for each read.
#[derive(Debug, Clone)]
pub struct Stored {
    pub hold: std::sync::Arc<Hold>,
    pub version: u64,
}

impl Stored {
    /// The hold of its item's version and data, read at `pk`.
    pub fn from_data(pk: &str, version: u64, data: &crate::store::Data) -> ApiResult<Stored> {
        Ok(Stored { hold: data.decode_shared(pk, SK)?, version })
    }

    /// Deletes the hold of `seat_id` if it is still this version.
    pub fn delete_op(&self, event_id: &str, seat_id: &str) -> WriteOp {
        WriteOp::Delete { pk: pk(event_id, seat_id), sk: SK.into(), cond: Cond::Version(self.version) }
    }
}

pub fn pk(event_id: &str, seat_id: &str) -> String {
    ["hold#", event_id, "#", seat_id].concat()
}

/// FNV-1a: a stable hash (the shard of a seat must never change between releases).
fn shard(seat_id: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in seat_id.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % INDEX_SHARDS
}

pub fn index_pk(event_id: &str, shard: u32) -> String {
    ["holds#", event_id, "#", itoa::Buffer::new().format(shard)].concat()
}

/// `held#<seat>` or `sold#<seat>`: the sweep reads only the held ones.
fn index_sk(hold: &Hold) -> String {
    let state = match hold.state {
        HoldState::Held => "held",
        HoldState::Sold => "sold",
    };
    [state, "#", &hold.seat_id].concat()
}

/// The version a seat's hold item starts at when the seat is held from free. A freed seat's
/// item is deleted, so counting from 1 again would repeat its earlier lives' versions, and a
/// write on a version read before the seat was freed (the sweep's delete of an expired hold
/// read a moment before, from the index or by an overlapping run; a release's or a deleted
/// reservation's, read before theirs) would match the new life's item: it could delete a hold,
/// or a sale, made since. A random start from 2^32 to 2^52 (exact as a JSON or DynamoDB
/// number, and far from any count a life reaches) never meets an earlier life's versions.
pub fn first_version() -> u64 {
    rand::random_range(1u64 << 32..1u64 << 52)
}

/// The item for a hold at `version` (the hold moved into it).
pub fn item(hold: Hold, version: u64) -> Result<Item, StoreError> {
    let (key, index) = (pk(&hold.event_id, &hold.seat_id), index_pk(&hold.event_id, shard(&hold.seat_id)));
    let (index_sk, ttl) = (index_sk(&hold), hold.expires_at.map(|e| e.timestamp() + 60));
    Ok(Item::typed(key, SK, hold)?.with_gsi1(index, index_sk).with_ttl(ttl).with_version(version))
}

pub async fn get(app: &App, event_id: &str, seat_id: &str) -> ApiResult<Option<Stored>> {
    let key = pk(event_id, seat_id);
    app.store
        .get_data(&key, SK)
        .await?
        .map(|(version, data)| Stored::from_data(&key, version, &data))
        .transpose()
}

/// The hold items of several seats, read concurrently, in the order given.
pub async fn get_many(app: &App, event_id: &str, seat_ids: &[String]) -> ApiResult<Vec<Option<Stored>>> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, seat) in seat_ids.iter().enumerate() {
        let store = app.store.clone();
        let key = pk(event_id, seat);
        tasks.spawn(async move { (i, store.get(&key, SK).await) });
    }
    let mut out: Vec<Option<Stored>> = vec![None; seat_ids.len()];
    while let Some(res) = tasks.join_next().await {
        let (i, item) = res.map_err(|e| crate::ApiError::Internal(e.to_string()))?;
        if let Some(item) = item? {
            out[i] = Some(Stored::from_data(&item.pk, item.version, &item.data)?);
        }
    }
    Ok(out)
}

/// Every hold item of an event (held, expired or sold), by seat id. Reads the index, which
/// DynamoDB keeps up to date within about a second.
pub async fn of_event(app: &App, event_id: &str) -> ApiResult<HashMap<String, Stored>> {
    indexed(app, event_id, QueryOpts::default()).await
}

async fn indexed(app: &App, event_id: &str, opts: QueryOpts) -> ApiResult<HashMap<String, Stored>> {
    let mut tasks = tokio::task::JoinSet::new();
    for shard in 0..INDEX_SHARDS {
        let store = app.store.clone();
        let index = index_pk(event_id, shard);
        let opts = opts.clone();
        tasks.spawn(async move { store.query_gsi1(&index, opts).await });
    }
    let mut out = HashMap::new();
    while let Some(res) = tasks.join_next().await {
        let items = res.map_err(|e| crate::ApiError::Internal(e.to_string()))??;
        for item in items {
            let stored = Stored::from_data(&item.pk, item.version, &item.data)?;
            out.insert(stored.hold.seat_id.clone(), stored);
        }
    }
    Ok(out)
}

/// The `reservations` job: deletes holds past their expiry. It reads only the `held#` part
/// of each event's index (sold seats are never looked at), and each delete is conditional
/// on the version read, so a seat held again meanwhile is left alone.
pub async fn sweep(app: &App) -> ApiResult<(usize, usize)> {
    let now = app.clock.now();
    let (mut examined, mut deleted) = (0, 0);
    for event in inventory::list_events(app).await? {
        for stored in indexed(app, &event.id, QueryOpts::prefix("held#")).await?.into_values() {
            examined += 1;
            if !stored.hold.expired(now) {
                continue;
            }
            let key = pk(&stored.hold.event_id, &stored.hold.seat_id);
            match app.store.delete(&key, SK, Cond::Version(stored.version)).await {
                Ok(()) => deleted += 1,
                Err(e) if e.is_conflict() => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok((examined, deleted))
}

/// Deletes (each on the hold's version) of the holds among `seat_ids` that `owned` says
/// belong to the caller: the seats become free.
pub async fn free_ops(
    app: &App,
    event_id: &str,
    seat_ids: &[String],
    owned: impl Fn(&Hold) -> bool,
) -> ApiResult<Vec<WriteOp>> {
    let mut ops = Vec::new();
    for (seat, h) in seat_ids.iter().zip(get_many(app, event_id, seat_ids).await?) {
        if let Some(h) = h
            && owned(&h.hold)
        {
            ops.push(h.delete_op(event_id, seat));
        }
    }
    Ok(ops)
}
