//! The seat inventory: events with sectors, rows, seats and price categories.
//!
//! An event is created from a JSON seat map (the admin "load seat map" endpoint, and the
//! demo event that the local server loads at start through the same function):
//!
//! ```json
//! {"id": "demo-concert", "title": "…", "starts_at": "2026-12-30T19:00:00+03:00", "venue": "…",
//!  "price_categories": [{"id": "A", "name": "Партер", "price": "3500.00"}],
//!  "sectors": [{"id": "parterre", "name": "Партер", "rows": [
//!     {"row": "1", "price_category": "A", "seats": {"from": 1, "to": 20}},
//!     {"row": "2", "price_category": "A", "seats": ["1", "2", "3"]}]}]}
//! ```
//!
//! Prices are strings with two decimals (or integers), never floats. A seat's id is
//! `<sector>-<row>-<seat>`.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, FixedOffset, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize};

use super::{check_id, holds};
use crate::App;
use crate::error::{ApiError, ApiResult};
use crate::money;
use crate::store::{Cond, Item, QueryOpts, WriteOp};

/// The demo event `make run` starts with.
pub const DEMO_SEAT_MAP: &str = include_str!("../../data/demo_event.json");

/// The most seats one event may have: one seat map load writes them in sequential
/// transactions of 100 (sequential on purpose: moto, the local DynamoDB peer, is not safe
/// for concurrent transactions), which must fit the function's timeout.
pub const MAX_EVENT_SEATS: usize = 10_000;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeatMap {
    pub id: String,
    pub title: String,
    pub starts_at: DateTime<FixedOffset>,
    #[serde(default)]
    pub venue: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub price_categories: Vec<PriceCategorySpec>,
    pub sectors: Vec<SectorSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceCategorySpec {
    pub id: String,
    pub name: String,
    #[serde(deserialize_with = "price")]
    pub price: Decimal,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SectorSpec {
    pub id: String,
    pub name: String,
    pub rows: Vec<RowSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowSpec {
    pub row: String,
    pub price_category: String,
    pub seats: SeatsSpec,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SeatsSpec {
    Range { from: u32, to: u32 },
    List(Vec<String>),
}

/// A price: a string with exactly two decimals, or an integer. Floats are refused.
fn price<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    use serde::de::Error;
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => {
            money::parse_strict(&s).ok_or_else(|| D::Error::custom("price must look like \"2500.00\""))
        }
        serde_json::Value::Number(n) if n.is_u64() => {
            Ok(Decimal::from(n.as_u64().unwrap_or_default()).round_dp(2))
        }
        _ => Err(D::Error::custom("price must be a string with two decimals, like \"2500.00\"")),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceCategory {
    pub id: String,
    pub name: String,
    pub price: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    pub title: String,
    /// RFC 3339 with the offset the seat map gave.
    pub starts_at: String,
    pub venue: Option<String>,
    pub description: Option<String>,
    pub price_categories: Vec<PriceCategory>,
    pub seat_count: usize,
    pub on_sale: bool,
    pub created_at: DateTime<Utc>,
    /// Set when the box office cancels the event: its orders are being refunded and
    /// cancelled by the reservations job (see `back_office::cancel_event`).
    #[serde(default)]
    pub cancellation: Option<Cancellation>,
}

/// An event's cancellation and its progress, as the last run of the job left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancellation {
    /// `running` until every order is refunded or cancelled, then `done`.
    pub state: String,
    pub by: String,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    /// Orders of the event, and how many are refunded in full, cancelled, waiting (an online
    /// payment still open, a refund the gateway has not confirmed) or failed at the last run.
    pub orders: usize,
    pub refunded: usize,
    pub cancelled: usize,
    pub waiting: usize,
    pub failed: usize,
}

impl Event {
    pub fn price_of(&self, category: &str) -> Option<Decimal> {
        self.price_categories.iter().find(|c| c.id == category).map(|c| c.price)
    }

    /// The public view of an event.
    pub fn view(&self) -> EventView {
        EventView {
            id: self.id.clone(),
            title: self.title.clone(),
            starts_at: self.starts_at.clone(),
            venue: self.venue.clone(),
            description: self.description.clone(),
            seat_count: self.seat_count,
            on_sale: self.on_sale,
            price_categories: self
                .price_categories
                .iter()
                .map(|c| PriceCategoryView { id: c.id.clone(), name: c.name.clone(), price: c.price })
                .collect(),
            cancellation: self.cancellation.clone(),
        }
    }
}

/// An event as answered (serialize it directly, not through `serde_json::Value`, so that
/// prices stay decimals with two digits).
#[derive(Debug, Clone, Serialize)]
pub struct EventView {
    pub id: String,
    pub title: String,
    pub starts_at: String,
    pub venue: Option<String>,
    pub description: Option<String>,
    pub seat_count: usize,
    pub on_sale: bool,
    pub price_categories: Vec<PriceCategoryView>,
    /// The event's cancellation and its progress, once the box office cancelled it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancellation: Option<Cancellation>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PriceCategoryView {
    pub id: String,
    pub name: String,
    #[serde(with = "money::number")]
    pub price: Decimal,
}

/// Where a seat is and its price category: what every ticket, hold and seat list shows of
/// a seat (embedded flat, so the JSON and the stored items keep the seed's field names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    pub sector: String,
    pub sector_name: String,
    pub row: String,
    pub seat: String,
    pub price_category: String,
}

impl Place {
    /// Natural order: sector, then row and seat numerically where they are numbers.
    pub fn order_key(&self) -> (&str, u64, &str, u64, &str) {
        let num = |s: &str| s.parse::<u64>().unwrap_or(u64::MAX);
        (self.sector.as_str(), num(&self.row), self.row.as_str(), num(&self.seat), self.seat.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seat {
    pub id: String,
    #[serde(flatten)]
    pub place: Place,
}

pub fn event_pk(id: &str) -> String {
    format!("event#{id}")
}

const META: &str = "meta";

fn seat_sk(seat_id: &str) -> String {
    format!("seat#{seat_id}")
}

/// Checks a seat map and expands it into an event and its seats.
pub fn expand(map: &SeatMap, now: DateTime<Utc>) -> ApiResult<(Event, Vec<Seat>)> {
    check_id("id", &map.id)?;
    if map.title.trim().is_empty() {
        return Err(ApiError::invalid("title", "must not be empty"));
    }
    let categories = check_categories(&map.price_categories)?;
    let mut seats = Vec::new();
    let mut ids = HashSet::new();
    for (si, sector) in map.sectors.iter().enumerate() {
        check_id(&format!("sectors[{si}].id"), &sector.id)?;
        for (ri, row) in sector.rows.iter().enumerate() {
            let at = format!("sectors[{si}].rows[{ri}]");
            check_id(&format!("{at}.row"), &row.row)?;
            if !categories.contains(row.price_category.as_str()) {
                return Err(ApiError::invalid(format!("{at}.price_category"), "no such price category"));
            }
            for n in seat_numbers(&row.seats, &at)? {
                check_id(&format!("{at}.seats"), &n)?;
                let id = format!("{}-{}-{}", sector.id, row.row, n);
                if !ids.insert(id.clone()) {
                    return Err(ApiError::invalid(format!("{at}.seats"), format!("duplicate seat {id}")));
                }
                let place = Place {
                    sector: sector.id.clone(),
                    sector_name: sector.name.clone(),
                    row: row.row.clone(),
                    seat: n,
                    price_category: row.price_category.clone(),
                };
                seats.push(Seat { id, place });
            }
        }
    }
    if seats.is_empty() {
        return Err(ApiError::invalid("sectors", "the seat map has no seats"));
    }
    if seats.len() > MAX_EVENT_SEATS {
        return Err(ApiError::invalid("sectors", format!("at most {MAX_EVENT_SEATS} seats per event")));
    }
    let event = Event {
        id: map.id.clone(),
        title: map.title.trim().to_owned(),
        starts_at: map.starts_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        venue: map.venue.clone(),
        description: map.description.clone(),
        price_categories: map
            .price_categories
            .iter()
            .map(|c| PriceCategory { id: c.id.clone(), name: c.name.clone(), price: money::round(c.price) })
            .collect(),
        seat_count: seats.len(),
        on_sale: true,
        created_at: now,
        cancellation: None,
    };
    Ok((event, seats))
}

/// At least one category, unique ids, positive prices: the ids.
fn check_categories(list: &[PriceCategorySpec]) -> ApiResult<HashSet<&str>> {
    if list.is_empty() {
        return Err(ApiError::invalid("price_categories", "at least one price category is required"));
    }
    let mut categories = HashSet::new();
    for (i, c) in list.iter().enumerate() {
        check_id(&format!("price_categories[{i}].id"), &c.id)?;
        if !categories.insert(c.id.as_str()) {
            return Err(ApiError::invalid(format!("price_categories[{i}].id"), "duplicate price category"));
        }
        if c.price <= Decimal::ZERO {
            return Err(ApiError::invalid(format!("price_categories[{i}].price"), "must be positive"));
        }
    }
    Ok(categories)
}

/// A row's seat numbers: a range of at most 1000 or a list.
fn seat_numbers(spec: &SeatsSpec, at: &str) -> ApiResult<Vec<String>> {
    match spec {
        SeatsSpec::Range { from, to } if from <= to && to - from < 1000 => {
            Ok((*from..=*to).map(|n| n.to_string()).collect())
        }
        SeatsSpec::Range { .. } => {
            Err(ApiError::invalid(format!("{at}.seats"), "from must be ≤ to, at most 1000 seats"))
        }
        SeatsSpec::List(list) => Ok(list.clone()),
    }
}

/// Creates an event from a seat map. The seats are written first (idempotently), the event
/// item last and only if it does not exist yet: an existing event is 409 and unchanged.
pub async fn create_event(app: &App, map: &SeatMap) -> ApiResult<Event> {
    let (event, seats) = expand(map, app.clock.now())?;
    let pk = event_pk(&event.id);
    if app.store.get(&pk, META).await?.is_some() {
        return Err(ApiError::Conflict(format!("event {} already exists", event.id)));
    }
    for chunk in seats.chunks(100) {
        let ops = chunk
            .iter()
            .map(|s| Ok(WriteOp::Put { item: Item::from_value(&pk, seat_sk(&s.id), s)?, cond: Cond::Always }))
            .collect::<ApiResult<Vec<_>>>()?;
        app.store.transact(ops).await?;
    }
    app.store.put(event_item(&event, 1)?, Cond::NotExists).await.map_err(|e| {
        if e.is_conflict() {
            ApiError::Conflict(format!("event {} already exists", event.id))
        } else {
            e.into()
        }
    })?;
    Ok(event)
}

/// Loads the demo event unless it exists already.
pub async fn load_demo(app: &App) -> ApiResult<()> {
    let map: SeatMap = crate::http::parse_json(DEMO_SEAT_MAP.as_bytes())?;
    match create_event(app, &map).await {
        Ok(_) | Err(ApiError::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The event's item (listed by start time in the `events` index).
fn event_item(event: &Event, version: u64) -> ApiResult<Item> {
    Ok(Item::from_value(event_pk(&event.id), META, event)?
        .with_gsi1("events", format!("{}#{}", event.starts_at, event.id))
        .with_version(version))
}

/// The event with its version.
pub async fn get_versioned(app: &App, id: &str) -> ApiResult<Option<(Event, u64)>> {
    if check_id("event_id", id).is_err() {
        return Ok(None);
    }
    Ok(match app.store.get(&event_pk(id), META).await? {
        Some(item) => Some((item.decode()?, item.version)),
        None => None,
    })
}

/// Writes the event if it is still at `version`.
pub async fn put_event(app: &App, event: &Event, version: u64) -> Result<(), crate::store::StoreError> {
    let item =
        event_item(event, version + 1).map_err(|e| crate::store::StoreError::Invalid(e.to_string()))?;
    app.store.put(item, Cond::Version(version)).await
}

pub async fn get_event(app: &App, id: &str) -> ApiResult<Option<Event>> {
    if check_id("event_id", id).is_err() {
        return Ok(None);
    }
    Ok(match app.store.get(&event_pk(id), META).await? {
        Some(item) => Some(item.decode()?),
        None => None,
    })
}

/// Every event, by start time.
pub async fn list_events(app: &App) -> ApiResult<Vec<Event>> {
    let items = app.store.query_gsi1("events", QueryOpts::default()).await?;
    items.iter().map(|i| i.decode().map_err(ApiError::from)).collect()
}

pub async fn get_seat(app: &App, event_id: &str, seat_id: &str) -> ApiResult<Option<Seat>> {
    if check_id("seat_id", seat_id).is_err() {
        return Ok(None);
    }
    Ok(match app.store.get(&event_pk(event_id), &seat_sk(seat_id)).await? {
        Some(item) => Some(item.decode()?),
        None => None,
    })
}

/// Several seats of an event, read concurrently, in the order given.
pub async fn get_seats(app: &App, event_id: &str, seat_ids: &[String]) -> ApiResult<Vec<Option<Seat>>> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, seat) in seat_ids.iter().enumerate() {
        let store = app.store.clone();
        let (pk, sk) = (event_pk(event_id), seat_sk(seat));
        tasks.spawn(async move { (i, store.get(&pk, &sk).await) });
    }
    let mut out: Vec<Option<Seat>> = vec![None; seat_ids.len()];
    while let Some(res) = tasks.join_next().await {
        let (i, item) = res.map_err(|e| ApiError::Internal(e.to_string()))?;
        if let Some(item) = item? {
            out[i] = Some(item.decode()?);
        }
    }
    Ok(out)
}

pub async fn seats(app: &App, event_id: &str) -> ApiResult<Vec<Seat>> {
    let items = app.store.query(&event_pk(event_id), QueryOpts::prefix("seat#")).await?;
    items.iter().map(|i| i.decode().map_err(ApiError::from)).collect()
}

#[derive(Serialize)]
pub struct SeatView {
    pub id: String,
    #[serde(flatten)]
    pub place: Place,
    #[serde(with = "money::number")]
    pub price: Decimal,
    pub free: bool,
}

/// The seat list of an event with prices and whether each seat is free now.
pub async fn seat_list(app: &App, event_id: &str) -> ApiResult<(Event, Vec<SeatView>)> {
    let event = get_event(app, event_id).await?.ok_or_else(|| ApiError::NotFound("event".into()))?;
    let (seats, holds) = tokio::try_join!(seats(app, event_id), holds::of_event(app, event_id))?;
    let now = app.clock.now();
    let prices: HashMap<&str, Decimal> =
        event.price_categories.iter().map(|c| (c.id.as_str(), c.price)).collect();
    let mut views: Vec<SeatView> = seats
        .into_iter()
        .map(|s| SeatView {
            free: !holds.get(&s.id).is_some_and(|h| h.hold.blocks(now)),
            price: prices.get(s.place.price_category.as_str()).copied().unwrap_or_default(),
            id: s.id,
            place: s.place,
        })
        .collect();
    views.sort_by(|a, b| a.place.order_key().cmp(&b.place.order_key()));
    Ok((event, views))
}
