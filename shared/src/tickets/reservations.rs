//! Preliminary reservations (PR): a buyer's cart for one event.
//!
//! Every change is a transaction that writes the PR item on its version (so one PR never
//! exceeds [`MAX_SEATS`], even under concurrent requests of its owner) together with the
//! seat hold items it takes or frees. A lost race on the PR item is retried a few times
//! from a fresh read; a lost race on a seat is a 409.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::holds::{self, Hold, HoldState};
use super::inventory::{self, Event};
use super::totals::{self, Customer, OrderType, Totals, TotalsView};
use super::{Buyer, MAX_SEATS, new_id, token_owner, user_owner};
use crate::App;
use crate::error::{ApiError, ApiResult};
use crate::money;
use crate::retry::{Step, again_on_conflict, optimistic};
use crate::store::{Cond, Item, StoreError, WriteOp};

const SK: &str = "pr";
const CART_SK: &str = "cart";
const CHECKED_OUT_SK: &str = "order";
/// How often a change that lost a race on the PR item is retried from a fresh read.

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reservation {
    pub id: String,
    /// `user:<sub>` or `token:<sha256 of the token>`.
    pub owner: String,
    pub event_id: String,
    /// Seats this PR took, in order. A hold may have expired or been taken over since:
    /// the hold items are the truth, this list says where to look.
    pub seats: Vec<String>,
    /// What this PR wrote into its hold items (expiry and seat), so a hold and the PR's view
    /// need no read of the other holds. A hold item whose expiry is still ahead cannot have
    /// changed hands (only an expired hold is taken over or swept; release and checkout
    /// go through this PR), so these copies decide which holds are live. PRs written without
    /// them are read the old way, from the hold items.
    #[serde(default)]
    pub held: Vec<HeldSeat>,
    pub order_type: Option<OrderType>,
    pub customer: Option<Customer>,
    #[serde(with = "crate::time::utc")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::time::utc")]
    pub updated_at: DateTime<Utc>,
}

/// The PR's copy of one of its hold items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldSeat {
    pub seat_id: String,
    #[serde(with = "crate::time::utc")]
    pub expires_at: DateTime<Utc>,
    pub seat: inventory::Seat,
    /// When it was held and the hold item's version as this PR wrote it: with them checkout
    /// writes the seat as sold on that version without reading the hold (absent in copies
    /// written before they were kept).
    #[serde(default, with = "crate::time::utc_opt")]
    pub held_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub version: Option<u64>,
}

impl HeldSeat {
    /// The hold item this copy was made with, if the copy says enough.
    fn hold_item(&self, pr: &Reservation) -> Option<holds::Stored> {
        let hold = Hold {
            event_id: pr.event_id.clone(),
            seat_id: self.seat_id.clone(),
            state: HoldState::Held,
            reservation_id: Some(pr.id.clone()),
            order_id: None,
            held_at: self.held_at?,
            expires_at: Some(self.expires_at),
            seat: Some(self.seat.clone()),
        };
        Some(holds::Stored { hold: hold.into(), version: self.version? })
    }
}

/// The PR's live holds from its own copies, or `None` when a seat has no copy.
fn cached_live(pr: &Reservation, now: DateTime<Utc>) -> Option<Vec<HeldSeat>> {
    let mut live = Vec::new();
    for seat in &pr.seats {
        let h = pr.held.iter().find(|h| &h.seat_id == seat)?;
        if h.expires_at > now {
            live.push(h.clone());
        }
    }
    Some(live)
}

#[derive(Debug, Clone)]
pub struct StoredPr {
    /// Shared with the store's copy (memory store) until changed: a change copies it once
    /// (`Arc::make_mut`) and the write takes the changed one without another copy.
    pub pr: Arc<Reservation>,
    pub version: u64,
}

impl StoredPr {
    /// The PR of its item's version and data, read at `pk` (shared with the store's copy).
    fn from_data(pk: &str, version: u64, data: &crate::store::Data) -> ApiResult<StoredPr> {
        Ok(StoredPr { pr: data.decode_shared(pk, SK)?, version })
    }

    /// Deletes the PR if it is still this version.
    pub fn delete_op(&self) -> WriteOp {
        WriteOp::Delete { pk: pk(&self.pr.id), sk: SK.into(), cond: Cond::Version(self.version) }
    }
}

/// The pointer from an owner to their current PR.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cart {
    reservation_id: String,
}

pub fn pk(id: &str) -> String {
    ["pr#", id].concat()
}

fn cart_pk(owner: &str) -> String {
    ["cart#", owner].concat()
}

fn day_after(t: DateTime<Utc>) -> Option<i64> {
    Some(t.timestamp() + 24 * 3600)
}

fn pr_item(pr: &Arc<Reservation>, version: u64) -> Result<Item, StoreError> {
    Ok(Item::typed_shared(pk(&pr.id), SK, Arc::clone(pr))?
        .with_ttl(day_after(pr.updated_at))
        .with_version(version))
}

fn put_pr(pr: &Arc<Reservation>, version: u64) -> Result<WriteOp, StoreError> {
    let cond = if version == 1 { Cond::NotExists } else { Cond::Version(version - 1) };
    Ok(WriteOp::Put { item: pr_item(pr, version)?, cond })
}

/// A new PR id for `event_id`: 32 random hex digits, `-`, the event id. As the id names its
/// event, a hold reads the PR, the event, the seat and its hold all at once.
fn new_pr_id(event_id: &str) -> String {
    format!("{}-{event_id}", new_id())
}

/// The event a PR id names (`None` for an id of another shape).
pub(super) fn event_of(id: &str) -> Option<&str> {
    let (random, event) = (id.get(..32)?, id.get(32..)?.strip_prefix('-')?);
    (random.bytes().all(|b| b.is_ascii_hexdigit()) && super::check_id("id", event).is_ok()).then_some(event)
}

/// A well-formed PR id: 1 to 100 characters of A-Z, a-z, 0-9, _ and -.
pub fn is_pr_id(id: &str) -> bool {
    (1..=100).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A PR by id, whoever owns it (for the caps' recount).
pub async fn stored(app: &App, id: &str) -> ApiResult<Option<StoredPr>> {
    get_pr(app, id).await
}

async fn get_pr(app: &App, id: &str) -> ApiResult<Option<StoredPr>> {
    if !is_pr_id(id) {
        return Ok(None);
    }
    let key = pk(id);
    app.store
        .get_data(&key, SK)
        .await?
        .map(|(version, data)| StoredPr::from_data(&key, version, &data))
        .transpose()
}

/// Where a checked-out PR went. Checkout writes it in the transaction that deletes the PR, so
/// a checkout retried after an ambiguous failure (the transaction applied, the answer lost)
/// finds its order instead of a 404. Kept a day.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CheckedOut {
    order_id: String,
    owner: String,
}

/// The write that records that `pr` became order `order_id`.
pub fn checked_out_op(pr: &Reservation, order_id: &str, now: DateTime<Utc>) -> Result<WriteOp, StoreError> {
    let data = CheckedOut { order_id: order_id.to_owned(), owner: pr.owner.clone() };
    let item = Item::from_value(pk(&pr.id), CHECKED_OUT_SK, &data)?.with_ttl(day_after(now));
    Ok(WriteOp::Put { item, cond: Cond::NotExists })
}

/// The order the caller's PR `id` became at checkout, if it was checked out (within a day).
pub async fn checked_out(app: &App, buyer: &Buyer, id: &str) -> ApiResult<Option<String>> {
    if !is_pr_id(id) {
        return Ok(None);
    }
    let Some(item) = app.store.get(&pk(id), CHECKED_OUT_SK).await? else { return Ok(None) };
    let c: CheckedOut = item.decode()?;
    Ok(buyer.owns(&c.owner).then_some(c.order_id))
}

/// The caller's PR and its event, in one batch read when the PR id names the event.
pub async fn load_with_event(
    app: &App,
    buyer: &Buyer,
    id: &str,
) -> ApiResult<(StoredPr, Option<Arc<Event>>)> {
    match event_of(id) {
        Some(event_id) => read_at_once(app, buyer, id, event_id, None).await.map(|(s, event, ..)| (s, event)),
        None => Ok((load(app, buyer, id).await?, None)),
    }
}

/// The caller's PR by id; someone else's (or none) is 404. A PR whose id names an event other
/// than its own is 404 too: the reads made beside it by the id's event (its seat, its hold)
/// must be of the PR's event.
pub async fn load(app: &App, buyer: &Buyer, id: &str) -> ApiResult<StoredPr> {
    callers(buyer, id, get_pr(app, id).await?)
}

/// The PR read for `id` if it is the caller's and of the event its id names (if it names one);
/// 404 otherwise.
fn callers(buyer: &Buyer, id: &str, read: Option<StoredPr>) -> ApiResult<StoredPr> {
    match read {
        Some(s) if buyer.owns(&s.pr.owner) && event_of(id).is_none_or(|e| e == s.pr.event_id) => Ok(s),
        _ => Err(ApiError::NotFound("reservation".into())),
    }
}

/// What a step on the caller's PR `id`, whose id names its event `event_id`, reads in one
/// round trip: the PR (404 as [`load`] answers it) and the event; with a seat, its hold item,
/// and its seat item too when asked for (`(seat_id, true)`) and the seat id is well-formed.
async fn read_at_once(
    app: &App,
    buyer: &Buyer,
    id: &str,
    event_id: &str,
    seat: Option<(&str, bool)>,
) -> ApiResult<(StoredPr, Option<Arc<Event>>, Option<inventory::Seat>, Option<holds::Stored>)> {
    if !is_pr_id(id) {
        return Err(ApiError::NotFound("reservation".into()));
    }
    let (pr_pk, event_pk) = (pk(id), inventory::event_pk(event_id));
    let hold_pk = seat.map(|(seat_id, _)| holds::pk(event_id, seat_id));
    let seat_sk =
        seat.filter(|&(_, with_seat)| with_seat).and_then(|(seat_id, _)| inventory::seat_key(seat_id));
    let mut keys = vec![(pr_pk.as_str(), SK), (event_pk.as_str(), inventory::META)];
    keys.extend(hold_pk.as_deref().map(|pk| (pk, holds::SK)));
    keys.extend(seat_sk.as_deref().map(|sk| (event_pk.as_str(), sk)));
    let mut found = app.store.get_each(&keys).await?.into_iter();
    let mut next = || found.next().flatten();
    let (pr, event) = (next(), next());
    let (hold, seat) = (hold_pk.as_ref().and_then(|_| next()), seat_sk.as_ref().and_then(|_| next()));
    let read = pr.map(|(version, data)| StoredPr::from_data(&pr_pk, version, &data)).transpose()?;
    let stored = callers(buyer, id, read)?;
    let event = event.map(|(_, data)| inventory::event_from(&event_pk, &data)).transpose()?;
    let hold = match (hold, &hold_pk) {
        (Some((version, data)), Some(pk)) => Some(holds::Stored::from_data(pk, version, &data)?),
        _ => None,
    };
    let seat = match (seat, &seat_sk) {
        (Some((_, data)), Some(sk)) => Some(inventory::seat_from(&event_pk, sk, &data)?),
        _ => None,
    };
    Ok((stored, event, seat, hold))
}

/// Ops that free every seat `pr` still holds (checked on each hold's version).
async fn free_ops(app: &App, pr: &Reservation) -> ApiResult<Vec<WriteOp>> {
    holds::free_ops(app, &pr.event_id, &pr.seats, |h| {
        h.state == HoldState::Held && h.reservation_id.as_deref() == Some(pr.id.as_str())
    })
    .await
}

/// What initialize answers.
pub struct Initialized {
    pub stored: StoredPr,
    /// Its event (read to check it exists).
    pub event: Arc<Event>,
    /// A newly created PR (201) or the caller's live one (200).
    pub created: bool,
    /// The reservation token, for an anonymous caller.
    pub token: Option<String>,
}

/// Initialize: the caller's live PR for `event_id`, or a new empty one. A PR of the caller
/// for another event is deleted with its holds in the same transaction that creates the
/// new one.
pub async fn initialize(app: &App, buyer: &Buyer, event_id: &str) -> ApiResult<Initialized> {
    let Some(event) = inventory::get_event(app, event_id).await? else {
        return Err(ApiError::invalid("event_id", "no such event"));
    };
    let (owner, token) = owner_and_token(buyer);
    optimistic("the reservation", || async {
        let cart = app.store.get(&cart_pk(&owner), CART_SK).await?;
        let mut ops = Vec::new();
        let cart_cond = match &cart {
            None => Cond::NotExists,
            Some(item) => {
                let c: Cart = item.decode()?;
                if let Some(old) = get_pr(app, &c.reservation_id).await? {
                    if old.pr.event_id == event_id && old.pr.owner == owner {
                        return Ok(Step::Done(Initialized {
                            stored: old,
                            event: event.clone(),
                            created: false,
                            token: token.clone(),
                        }));
                    }
                    // Another event: only one PR per buyer; delete it and free its seats.
                    ops.extend(free_ops(app, &old.pr).await?);
                    ops.push(old.delete_op());
                }
                Cond::Version(item.version)
            }
        };
        let now = app.clock.now();
        let pr = Arc::new(empty_pr(&owner, event_id, now));
        let cart_version = cart.as_ref().map_or(1, |c| c.version + 1);
        let cart_item = Item::from_value(cart_pk(&owner), CART_SK, &Cart { reservation_id: pr.id.clone() })?
            .with_ttl(day_after(now))
            .with_version(cart_version);
        ops.push(put_pr(&pr, 1)?);
        ops.push(WriteOp::Put { item: cart_item, cond: cart_cond });
        let made = Initialized {
            stored: StoredPr { pr, version: 1 },
            event: event.clone(),
            created: true,
            token: token.clone(),
        };
        Ok(again_on_conflict(app.store.transact(ops).await)?.map(|()| made))
    })
    .await
}

/// Whose a new PR is (the user, or a reservation token's hash) and the token to answer (an
/// anonymous first caller gets a new one).
fn owner_and_token(buyer: &Buyer) -> (String, Option<String>) {
    match (&buyer.user, &buyer.token) {
        (Some(u), _) => (user_owner(&u.sub), None),
        (None, Some(t)) => (token_owner(t), Some(t.clone())),
        (None, None) => {
            let t = format!("{}{}", new_id(), new_id());
            (token_owner(&t), Some(t))
        }
    }
}

fn empty_pr(owner: &str, event_id: &str, now: DateTime<Utc>) -> Reservation {
    Reservation {
        id: new_pr_id(event_id),
        owner: owner.to_owned(),
        event_id: event_id.to_owned(),
        seats: Vec::new(),
        held: Vec::new(),
        order_type: None,
        customer: None,
        created_at: now,
        updated_at: now,
    }
}

/// Runs `step` on a fresh read of the PR until it does not lose a race on the PR item.
/// `step` answers `Ok(None)` to ask for another attempt.
async fn retrying<T, F, Fut>(app: &App, buyer: &Buyer, id: &str, step: F) -> ApiResult<T>
where
    F: Fn(StoredPr) -> Fut,
    Fut: std::future::Future<Output = ApiResult<Option<T>>>,
{
    optimistic("the reservation", || async {
        let s = load(app, buyer, id).await?;
        Ok(step(s).await?.map_or(Step::Again, Step::Done))
    })
    .await
}

/// The seats among `pr.seats` that this PR holds now (unexpired).
async fn live_seats(
    app: &App,
    pr: &Reservation,
    now: DateTime<Utc>,
) -> ApiResult<Vec<(String, holds::Stored)>> {
    let mut live = Vec::new();
    for (seat, h) in pr.seats.iter().zip(holds::get_many(app, &pr.event_id, &pr.seats).await?) {
        if let Some(h) = h
            && h.hold.live_for(&pr.id, now)
        {
            live.push((seat.clone(), h));
        }
    }
    Ok(live)
}

fn taken(seat_id: &str) -> ApiError {
    ApiError::Conflict(format!("seat {seat_id} is already taken"))
}

/// Holds one seat for the PR; answers it with its event. Two store round trips one after the
/// other: the PR, the event, the seat and its hold are read together (the PR id names the
/// event), then one transaction writes the hold and the PR.
pub async fn hold(app: &App, buyer: &Buyer, id: &str, seat_id: &str) -> ApiResult<(StoredPr, Arc<Event>)> {
    // Before any read: the seat id is part of its hold's key, which a malformed or overlong
    // one must not reach (DynamoDB refuses a key over 2,048 bytes: a 503, not the client's 422).
    super::check_id("seat_id", seat_id)?;
    let held = optimistic("the reservation", || async {
        let inputs = hold_inputs(app, buyer, id, seat_id).await?;
        Ok(try_hold(app, inputs, seat_id).await?.map_or(Step::Again, Step::Done))
    })
    .await?;
    crate::metrics::count("SeatsHeld", &[]);
    Ok(held)
}

/// What a hold decides on.
struct HoldInputs {
    stored: StoredPr,
    event: Arc<Event>,
    seat: Option<inventory::Seat>,
    /// The PR's live holds (with their seats).
    live: Vec<HeldSeat>,
    /// The seat's hold item.
    current: Option<holds::Stored>,
    /// The hold ledger of the caller's address, when that cap is on.
    ledger: Option<crate::caps::Stored>,
    now: DateTime<Utc>,
}

/// Reads what a hold needs: at once when the PR id names its event and the PR carries copies
/// of its holds (every PR this version writes); PRs of another shape the old way.
async fn hold_inputs(app: &App, buyer: &Buyer, id: &str, seat_id: &str) -> ApiResult<HoldInputs> {
    let now = app.clock.now();
    let (stored, event, seat, current, ledger) = match event_of(id) {
        Some(event_id) => {
            let (at_once, ledger) = tokio::try_join!(
                read_at_once(app, buyer, id, event_id, Some((seat_id, true))),
                super::limits::read_holds(app, buyer, event_id),
            )?;
            let (stored, event, seat, current) = at_once;
            (stored, event, seat, current, ledger)
        }
        None => {
            let stored = load(app, buyer, id).await?;
            let event_id = stored.pr.event_id.clone();
            let (event, seat, current, ledger) = tokio::try_join!(
                inventory::get_event(app, &event_id),
                inventory::get_seat(app, &event_id, seat_id),
                holds::get(app, &event_id, seat_id),
                super::limits::read_holds(app, buyer, &event_id),
            )?;
            (stored, event, seat, current, ledger)
        }
    };
    let event = event.ok_or_else(|| ApiError::NotFound("event".into()))?;
    let live = match cached_live(&stored.pr, now) {
        Some(live) => live,
        None => live_seats(app, &stored.pr, now)
            .await?
            .into_iter()
            .filter_map(|(seat_id, h)| {
                Some(HeldSeat {
                    seat_id,
                    expires_at: h.hold.expires_at?,
                    seat: h.hold.seat.clone()?,
                    held_at: Some(h.hold.held_at),
                    version: Some(h.version),
                })
            })
            .collect(),
    };
    Ok(HoldInputs { stored, event, seat, live, current, ledger, now })
}

/// What holding a seat takes.
#[derive(Debug, PartialEq, Eq)]
enum HoldPlan {
    /// The PR holds it already.
    Mine,
    /// Write the hold on this condition, as this version.
    Take { cond: Cond, version: u64 },
}

/// The hold decision without a store: a seat held by someone else (or sold) is taken (409);
/// a PR holds at most [`MAX_SEATS`]; an expired hold is taken over on the version read.
fn plan_hold(
    live: &[HeldSeat],
    current: Option<&holds::Stored>,
    seat_id: &str,
    now: DateTime<Utc>,
) -> ApiResult<HoldPlan> {
    if live.iter().any(|h| h.seat_id == seat_id) {
        return Ok(HoldPlan::Mine);
    }
    if live.len() >= MAX_SEATS {
        return Err(ApiError::bad_request(
            "seat_id",
            format!("a reservation holds at most {MAX_SEATS} seats"),
        ));
    }
    match current {
        None => Ok(HoldPlan::Take { cond: Cond::NotExists, version: holds::first_version() }),
        Some(h) if h.hold.blocks(now) => Err(taken(seat_id)),
        Some(h) => Ok(HoldPlan::Take { cond: Cond::Version(h.version), version: h.version + 1 }),
    }
}

async fn try_hold(app: &App, inputs: HoldInputs, seat_id: &str) -> ApiResult<Option<(StoredPr, Arc<Event>)>> {
    let HoldInputs { stored: StoredPr { pr: mut stored, version }, event, seat, live, current, ledger, now } =
        inputs;
    let Some(seat) = seat else {
        return Err(ApiError::invalid("seat_id", "no such seat in this event"));
    };
    super::back_office::check_on_sale(&event, now)?;
    let (cond, hold_version) = match plan_hold(&live, current.as_ref(), seat_id, now)? {
        HoldPlan::Mine => return Ok(Some((StoredPr { pr: stored, version }, event))),
        HoldPlan::Take { cond, version } => (cond, version),
    };
    let expires_at =
        now + chrono::Duration::from_std(app.config.seat_timeout).unwrap_or(chrono::Duration::MAX);
    let pr = Arc::make_mut(&mut stored);
    let hold = Hold {
        event_id: pr.event_id.clone(),
        seat_id: seat_id.to_owned(),
        state: HoldState::Held,
        reservation_id: Some(pr.id.clone()),
        order_id: None,
        held_at: now,
        expires_at: Some(expires_at),
        seat: Some(seat.clone()),
    };
    pr.seats = live.iter().map(|h| h.seat_id.clone()).collect();
    pr.seats.push(seat_id.to_owned());
    pr.held = live;
    pr.held.push(HeldSeat {
        seat_id: seat_id.to_owned(),
        expires_at,
        seat,
        held_at: Some(now),
        version: Some(hold_version),
    });
    pr.updated_at = now;
    let mut ops =
        vec![WriteOp::Put { item: holds::item(hold, hold_version)?, cond }, put_pr(&stored, version + 1)?];
    // The caller's address may hold only so many seats (429 past it); its ledger is written
    // on its version, so a race of two of its reservations re-reads it.
    if let Some(ledger) = ledger {
        let entry = super::limits::holds_entry(&stored, now);
        ops.push(super::limits::admit_hold(app, ledger, &entry).await?.write(Some(&entry), now)?);
    }
    match app.store.transact(ops).await {
        Ok(()) => Ok(Some((StoredPr { pr: stored, version: version + 1 }, event))),
        Err(StoreError::Conflict { index: Some(0) }) => Err(taken(seat_id)),
        Err(e) if e.is_conflict() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Releases one seat of the PR.
/// Two store round trips one after the other when the PR id names its event: the PR, the
/// event (for the answer) and the seat's hold read together, then one transaction.
pub async fn release(
    app: &App,
    buyer: &Buyer,
    id: &str,
    seat_id: &str,
) -> ApiResult<(StoredPr, Option<Arc<Event>>)> {
    if super::check_id("seat_id", seat_id).is_err() {
        return Err(ApiError::NotFound("ticket".into()));
    }
    optimistic("the reservation", || async {
        let (s, event, hold) = match event_of(id) {
            Some(event_id) => {
                let (s, event, _, hold) =
                    read_at_once(app, buyer, id, event_id, Some((seat_id, false))).await?;
                (s, event, hold)
            }
            None => {
                let s = load(app, buyer, id).await?;
                let hold = holds::get(app, &s.pr.event_id, seat_id).await?;
                (s, None, hold)
            }
        };
        Ok(try_release(app, s, seat_id, hold).await?.map_or(Step::Again, |s| Step::Done((s, event))))
    })
    .await
}

async fn try_release(
    app: &App,
    s: StoredPr,
    seat_id: &str,
    hold: Option<holds::Stored>,
) -> ApiResult<Option<StoredPr>> {
    let StoredPr { pr: mut stored, version } = s;
    if !stored.seats.iter().any(|seat| seat == seat_id) {
        return Err(ApiError::NotFound("ticket".into()));
    }
    let pr = Arc::make_mut(&mut stored);
    let mut ops = Vec::new();
    if let Some(h) = hold
        && h.hold.state == HoldState::Held
        && h.hold.reservation_id.as_deref() == Some(pr.id.as_str())
    {
        ops.push(h.delete_op(&pr.event_id, seat_id));
    }
    pr.seats.retain(|seat| seat != seat_id);
    pr.held.retain(|h| h.seat_id != seat_id);
    pr.updated_at = app.clock.now();
    ops.push(put_pr(&stored, version + 1)?);
    match app.store.transact(ops).await {
        Ok(()) => Ok(Some(StoredPr { pr: stored, version: version + 1 })),
        Err(e) if e.is_conflict() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Deletes the PR and frees every seat it holds.
pub async fn delete(app: &App, buyer: &Buyer, id: &str) -> ApiResult<()> {
    retrying(app, buyer, id, |s| try_delete(app, s)).await
}

async fn try_delete(app: &App, s: StoredPr) -> ApiResult<Option<()>> {
    let mut ops = free_ops(app, &s.pr).await?;
    ops.push(s.delete_op());
    match app.store.transact(ops).await {
        Ok(()) => Ok(Some(())),
        Err(e) if e.is_conflict() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Saves the order type and the buyer's details (validated for that type).
pub async fn set_order_type(
    app: &App,
    buyer: &Buyer,
    id: &str,
    order_type: OrderType,
    customer: Customer,
) -> ApiResult<StoredPr> {
    let customer = totals::validate_customer(order_type, customer)?;
    retrying(app, buyer, id, |s| {
        let customer = customer.clone();
        async move {
            let StoredPr { pr: mut stored, version } = s;
            let pr = Arc::make_mut(&mut stored);
            pr.order_type = Some(order_type);
            pr.customer = Some(customer);
            pr.updated_at = app.clock.now();
            match app.store.transact(vec![put_pr(&stored, version + 1)?]).await {
                Ok(()) => Ok(Some(StoredPr { pr: stored, version: version + 1 })),
                Err(e) if e.is_conflict() => Ok(None),
                Err(e) => Err(ApiError::from(e)),
            }
        }
    })
    .await
}

#[derive(Debug, Clone, Serialize)]
pub struct HeldTicket {
    pub seat_id: String,
    #[serde(flatten)]
    pub place: inventory::Place,
    #[serde(with = "money::number")]
    pub price: rust_decimal::Decimal,
    #[serde(default, with = "crate::time::utc_opt")]
    pub held_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReservationView {
    pub id: String,
    pub event_id: String,
    pub event_title: String,
    /// Always `reserved` while the PR exists.
    pub status: &'static str,
    pub tickets: Vec<HeldTicket>,
    pub max_tickets: usize,
    pub order_type: Option<OrderType>,
    pub customer: Option<Customer>,
    pub totals: TotalsView,
    /// When the first of the held seats is released.
    #[serde(default, with = "crate::time::utc_opt")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(with = "crate::time::utc")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::time::utc")]
    pub updated_at: DateTime<Utc>,
}

/// [`priced`] from the PR's own hold copies when they say enough (every PR this version
/// writes) and its event is at hand: no store read. Otherwise [`priced`].
pub async fn priced_with(
    app: &App,
    pr: &Reservation,
    event: Option<Arc<Event>>,
) -> ApiResult<(Arc<Event>, Vec<(HeldTicket, holds::Stored)>, Totals)> {
    let copies = cached_live(pr, app.clock.now()).and_then(|live| {
        live.into_iter().map(|h| h.hold_item(pr).map(|stored| (h, stored))).collect::<Option<Vec<_>>>()
    });
    let (Some(event), Some(copies)) = (event, copies) else { return priced(app, pr).await };
    let tickets = copies
        .into_iter()
        .map(|(h, stored)| Ok((held_ticket(&event, h.seat_id, h.seat, Some(h.expires_at))?, stored)))
        .collect::<ApiResult<Vec<_>>>()?;
    let totals = totals_of(app, pr, tickets.iter().map(|(t, _)| t));
    Ok((event, tickets, totals))
}

/// The live tickets of a PR with their seats and prices, and the totals.
pub async fn priced(
    app: &App,
    pr: &Reservation,
) -> ApiResult<(Arc<Event>, Vec<(HeldTicket, holds::Stored)>, Totals)> {
    let now = app.clock.now();
    let (event, live) = tokio::try_join!(inventory::get_event(app, &pr.event_id), live_seats(app, pr, now))?;
    let event = event.ok_or_else(|| ApiError::NotFound("event".into()))?;
    let mut tickets = Vec::new();
    // Seats come with their holds; only holds written without one need a seat read.
    let missing: Vec<String> =
        live.iter().filter(|(_, h)| h.hold.seat.is_none()).map(|(s, _)| s.clone()).collect();
    let mut fetched = inventory::get_seats(app, &pr.event_id, &missing).await?.into_iter();
    for (seat_id, h) in live {
        let seat = match &h.hold.seat {
            Some(seat) => Some(seat.clone()),
            None => fetched.next().flatten(),
        };
        let Some(seat) = seat else { continue };
        tickets.push((held_ticket(&event, seat_id, seat, h.hold.expires_at)?, h));
    }
    let totals = totals_of(app, pr, tickets.iter().map(|(t, _)| t));
    Ok((event, tickets, totals))
}

/// The PR's tickets and totals from its own hold copies: one read (the event).
async fn priced_cached(
    app: &App,
    pr: &Reservation,
    live: Vec<HeldSeat>,
    event: Option<Arc<Event>>,
) -> ApiResult<(Arc<Event>, Vec<HeldTicket>, Totals)> {
    let event = match event {
        Some(e) => e,
        None => inventory::get_event(app, &pr.event_id)
            .await?
            .ok_or_else(|| ApiError::NotFound("event".into()))?,
    };
    let tickets = live
        .into_iter()
        .map(|h| held_ticket(&event, h.seat_id, h.seat, Some(h.expires_at)))
        .collect::<ApiResult<Vec<_>>>()?;
    let totals = totals_of(app, pr, tickets.iter());
    Ok((event, tickets, totals))
}

/// A held seat as the PR shows it, priced from the event.
fn held_ticket(
    event: &Event,
    seat_id: String,
    seat: inventory::Seat,
    held_until: Option<DateTime<Utc>>,
) -> ApiResult<HeldTicket> {
    let price = event
        .price_of(&seat.place.price_category)
        .ok_or_else(|| ApiError::Internal(format!("seat {seat_id} has an unknown price category")))?;
    Ok(HeldTicket { seat_id, place: seat.place, price, held_until })
}

fn totals_of<'a>(app: &App, pr: &Reservation, tickets: impl Iterator<Item = &'a HeldTicket>) -> Totals {
    let prices: Vec<_> = tickets.map(|t| t.price).collect();
    totals::compute(&app.config, pr.order_type, &prices)
}

pub async fn view(app: &App, s: &StoredPr) -> ApiResult<ReservationView> {
    view_with(app, s, None).await
}

/// [`view`] with the PR's event when the caller has read it already.
pub async fn view_with(app: &App, s: &StoredPr, event: Option<Arc<Event>>) -> ApiResult<ReservationView> {
    let (event, tickets, totals) = match cached_live(&s.pr, app.clock.now()) {
        Some(live) => priced_cached(app, &s.pr, live, event).await?,
        None => {
            let (event, tickets, totals) = priced(app, &s.pr).await?;
            (event, tickets.into_iter().map(|(t, _)| t).collect(), totals)
        }
    };
    let pr = &s.pr;
    Ok(ReservationView {
        id: pr.id.clone(),
        event_id: pr.event_id.clone(),
        event_title: event.title.clone(),
        status: "reserved",
        expires_at: tickets.iter().filter_map(|t| t.held_until).min(),
        tickets,
        max_tickets: MAX_SEATS,
        order_type: pr.order_type,
        customer: pr.customer.clone(),
        totals: totals.view(),
        created_at: pr.created_at,
        updated_at: pr.updated_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::named;

    #[test]
    fn a_pr_id_names_its_event() {
        let id = new_pr_id("demo-concert");
        assert_eq!(event_of(&id), Some("demo-concert"));
        assert!(is_pr_id(&id));
        // Ids of another shape name none: the PR is read first, the old way.
        assert_eq!(event_of(&new_id()), None);
        assert_eq!(event_of(&format!("{}-", new_id())), None);
        assert_eq!(event_of(&format!("{}x{}", "z".repeat(32), "e")), None);
        assert_eq!(event_of(&format!("{}-e", "z".repeat(32))), None, "not hex");
    }
    use chrono::Duration;

    fn held(seat_id: &str, now: DateTime<Utc>) -> HeldSeat {
        let place = inventory::Place {
            sector: "A".into(),
            sector_name: "Партер".into(),
            row: "1".into(),
            seat: seat_id.into(),
            price_category: "std".into(),
        };
        HeldSeat {
            seat_id: seat_id.into(),
            expires_at: now + Duration::minutes(5),
            seat: inventory::Seat { id: seat_id.into(), place },
            held_at: Some(now),
            version: Some(1),
        }
    }

    fn hold_of(state: HoldState, expires_at: Option<DateTime<Utc>>, version: u64) -> holds::Stored {
        let hold = Hold {
            event_id: "e".into(),
            seat_id: "s1".into(),
            state,
            reservation_id: Some("other".into()),
            order_id: None,
            held_at: Utc::now(),
            expires_at,
            seat: None,
        };
        holds::Stored { hold: hold.into(), version }
    }

    #[test]
    fn a_free_seat_is_taken_only_if_nobody_wrote_it_meanwhile() {
        let now = Utc::now();
        let versions: Vec<u64> = (0..64)
            .map(|_| match plan_hold(&[], None, "s1", now).unwrap() {
                HoldPlan::Take { cond: Cond::NotExists, version } => version,
                other => panic!("{other:?}"),
            })
            .collect();
        // A new life of the seat's item never starts where an earlier one counted: not at 1,
        // and not twice at the same version.
        assert!(versions.iter().all(|v| (1u64 << 32..1u64 << 52).contains(v)), "{versions:?}");
        let mut distinct = versions.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), versions.len());
    }

    #[test]
    fn an_expired_hold_is_taken_over_on_the_version_read() {
        let now = Utc::now();
        let expired = hold_of(HoldState::Held, Some(now - Duration::seconds(1)), 7);
        let plan = plan_hold(&[], Some(&expired), "s1", now).unwrap();
        assert_eq!(plan, HoldPlan::Take { cond: Cond::Version(7), version: 8 });
    }

    #[test]
    fn a_seat_held_or_sold_by_another_is_taken() {
        let now = Utc::now();
        let live = hold_of(HoldState::Held, Some(now + Duration::seconds(1)), 2);
        assert_eq!(named(&plan_hold(&[], Some(&live), "s1", now).unwrap_err()), "conflict");
        let sold = hold_of(HoldState::Sold, None, 3);
        assert_eq!(named(&plan_hold(&[], Some(&sold), "s1", now).unwrap_err()), "conflict");
    }

    #[test]
    fn a_seat_already_mine_is_no_new_hold_and_the_cap_counts_live_holds() {
        let now = Utc::now();
        let mine = [held("s1", now)];
        let other = hold_of(HoldState::Held, Some(now + Duration::minutes(1)), 2);
        assert_eq!(plan_hold(&mine, Some(&other), "s1", now).unwrap(), HoldPlan::Mine);
        let full: Vec<_> = (0..MAX_SEATS).map(|i| held(&format!("x{i}"), now)).collect();
        assert_eq!(named(&plan_hold(&full, None, "s1", now).unwrap_err()), "seat_id");
        assert!(plan_hold(&full[1..], None, "s1", now).is_ok());
    }
}
