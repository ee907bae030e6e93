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
//!
//! ## Positions (the drawn seat map, `GET /api/v1/events/:id/seatmap.svg`)
//!
//! A seat map may say where each seat is drawn, in whole units of the drawing (SVG user
//! units, about a pixel; `x` grows to the right, `y` away from the stage), each from 0 to
//! [`MAX_COORD`]. Everything is optional:
//!
//! - per row, `"x"` and `"y"` (together): the centre of the row's first seat; `"step"`: the
//!   distance between seat centres (default [`DEFAULT_STEP`]); `"bend"`: how many units the
//!   row's two ends lie closer to the stage than its middle (a curved row, along a parabola;
//!   default 0, at most `y`);
//! - per row, `"seat_positions": [{"seat": "5", "x": 120, "y": 300}]`: single seats placed by
//!   hand (an aisle, a box), over the row's line;
//! - at the top, `"stage": {"x": 100, "y": 20, "width": 600, "height": 50, "label": "Сцена"}`.
//!
//! Rows without `x`/`y` get an automatic layout: sector after sector, row after row, each
//! row centred, below every positioned row (and below the stage). Without a `stage` the
//! drawing puts one above the seats. A bad value (negative, a fraction, a string, too large,
//! a row running past [`MAX_COORD`]) is refused naming its field. Each seat item stores its
//! `x` and `y` ([`Located`]); the seat list answers them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

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

/// The largest coordinate (and stage size) a seat map may give.
pub const MAX_COORD: u32 = 10_000;

/// The distance between seat centres in a row, unless the row gives its `step`.
pub const DEFAULT_STEP: u32 = 30;

/// The automatic layout: distance between rows, extra gap between sectors, first row's `y`
/// when nothing else is placed.
const AUTO_ROW_PITCH: u32 = 34;
const AUTO_SECTOR_GAP: u32 = 30;
const AUTO_TOP: u32 = 100;

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
    /// Where the stage is drawn.
    #[serde(default)]
    pub stage: Option<Stage>,
}

/// The stage of a drawn seat map: a rectangle and its label (default "Сцена").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    #[serde(default)]
    pub label: Option<String>,
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
    /// The centre of the row's first seat (with `y`).
    #[serde(default)]
    pub x: Option<u32>,
    /// The row's line (with `x`).
    #[serde(default)]
    pub y: Option<u32>,
    /// Distance between seat centres (default [`DEFAULT_STEP`]).
    #[serde(default)]
    pub step: Option<u32>,
    /// How much closer to the stage the row's ends are than its middle.
    #[serde(default)]
    pub bend: Option<u32>,
    /// Seats placed one by one, over the row's line.
    #[serde(default)]
    pub seat_positions: Vec<SeatPosition>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeatPosition {
    pub seat: String,
    pub x: u32,
    pub y: u32,
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
    #[serde(with = "crate::time::utc")]
    pub created_at: DateTime<Utc>,
    /// Set when the box office cancels the event: its orders are being refunded and
    /// cancelled by the reservations job (see `back_office::cancel_event`).
    #[serde(default)]
    pub cancellation: Option<Cancellation>,
    /// Where the seat map puts the stage (absent: above the seats).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
}

/// An event's cancellation and its progress, as the last run of the job left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancellation {
    /// `running` until every order is refunded or cancelled, then `done`.
    pub state: String,
    pub by: String,
    #[serde(with = "crate::time::utc")]
    pub started_at: DateTime<Utc>,
    #[serde(with = "crate::time::utc")]
    pub updated_at: DateTime<Utc>,
    #[serde(default, with = "crate::time::utc_opt")]
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
    /// It has started at `now` (no sale past its start).
    pub fn started(&self, now: DateTime<Utc>) -> ApiResult<bool> {
        let starts = DateTime::parse_from_rfc3339(&self.starts_at)
            .map_err(|e| ApiError::Internal(format!("event {} start {:?}: {e}", self.id, self.starts_at)))?;
        Ok(starts <= now)
    }

    /// On sale at `now`: its sales not stopped and it has not started.
    pub fn selling(&self, now: DateTime<Utc>) -> bool {
        self.on_sale && self.started(now) == Ok(false)
    }

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
/// Its texts are shared, not copied, by every hold, reservation and ticket that copies the
/// seat (a seat hold copied the seat's six strings several times); the seats of an event share
/// their sector's and row's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    pub sector: Arc<str>,
    pub sector_name: Arc<str>,
    pub row: Arc<str>,
    pub seat: Arc<str>,
    pub price_category: Arc<str>,
}

impl Place {
    /// Natural order: sector, then row and seat numerically where they are numbers.
    pub fn order_key(&self) -> (&str, u64, &str, u64, &str) {
        let num = |s: &str| s.parse::<u64>().unwrap_or(u64::MAX);
        (&self.sector, num(&self.row), &self.row, num(&self.seat), &self.seat)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seat {
    pub id: Arc<str>,
    #[serde(flatten)]
    pub place: Place,
}

/// A seat item as stored: the seat and where it is drawn (`x`, `y` next to the seat's
/// fields; absent for events loaded before seat maps had positions, which the drawing lays
/// out automatically). Holds, reservations and tickets copy only the [`Seat`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Located {
    #[serde(flatten)]
    pub seat: Seat,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<u32>,
}

pub fn event_pk(id: &str) -> String {
    ["event#", id].concat()
}

pub const META: &str = "meta";

fn seat_sk(seat_id: &str) -> String {
    ["seat#", seat_id].concat()
}

/// Checks a seat map and expands it into an event and its seats, each placed (see the
/// module docs on positions).
pub fn expand(map: &SeatMap, now: DateTime<Utc>) -> ApiResult<(Event, Vec<Located>)> {
    check_id("id", &map.id)?;
    if map.title.trim().is_empty() {
        return Err(ApiError::invalid("title", "must not be empty"));
    }
    let categories = check_categories(&map.price_categories)?;
    if let Some(stage) = &map.stage {
        check_stage(stage)?;
    }
    let mut seats = Vec::new();
    let mut ids = HashSet::new();
    for (si, sector) in map.sectors.iter().enumerate() {
        check_id(&format!("sectors[{si}].id"), &sector.id)?;
        for (ri, row) in sector.rows.iter().enumerate() {
            let at = format!("sectors[{si}].rows[{ri}]");
            let start = seats.len();
            row_seats(sector, row, &at, &categories, &mut ids, &mut seats)?;
            place_row(row, &at, &mut seats[start..])?;
        }
    }
    if seats.is_empty() {
        return Err(ApiError::invalid("sectors", "the seat map has no seats"));
    }
    if seats.len() > MAX_EVENT_SEATS {
        return Err(ApiError::invalid("sectors", format!("at most {MAX_EVENT_SEATS} seats per event")));
    }
    let placed_bottom = seats.iter().filter_map(|s| s.y).max();
    let stage_bottom = map.stage.as_ref().map(|s| s.y + s.height);
    let top = placed_bottom.max(stage_bottom).map_or(AUTO_TOP, |b| b + AUTO_ROW_PITCH + AUTO_SECTOR_GAP);
    auto_place(&mut seats, top);
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
        stage: map.stage.clone(),
    };
    Ok((event, seats))
}

/// Checks one row and appends its seats, not placed yet.
fn row_seats(
    sector: &SectorSpec,
    row: &RowSpec,
    at: &str,
    categories: &HashSet<&str>,
    ids: &mut HashSet<String>,
    seats: &mut Vec<Located>,
) -> ApiResult<()> {
    check_id(&format!("{at}.row"), &row.row)?;
    if !categories.contains(row.price_category.as_str()) {
        return Err(ApiError::invalid(format!("{at}.price_category"), "no such price category"));
    }
    // The row's seats share these texts (see [`Place`]).
    let (sector_id, sector_name): (Arc<str>, Arc<str>) =
        (sector.id.as_str().into(), sector.name.as_str().into());
    let (row_id, category): (Arc<str>, Arc<str>) =
        (row.row.as_str().into(), row.price_category.as_str().into());
    for n in seat_numbers(&row.seats, at)? {
        check_id(&format!("{at}.seats"), &n)?;
        let id = format!("{}-{}-{}", sector.id, row.row, n);
        if !ids.insert(id.clone()) {
            return Err(ApiError::invalid(format!("{at}.seats"), format!("duplicate seat {id}")));
        }
        let place = Place {
            sector: sector_id.clone(),
            sector_name: sector_name.clone(),
            row: row_id.clone(),
            seat: n.into(),
            price_category: category.clone(),
        };
        seats.push(Located { seat: Seat { id: id.into(), place }, x: None, y: None });
    }
    Ok(())
}

/// A coordinate within the drawing.
fn coord(field: &str, v: u32) -> ApiResult<u32> {
    match v <= MAX_COORD {
        true => Ok(v),
        false => Err(ApiError::invalid(field, format!("must be an integer from 0 to {MAX_COORD}"))),
    }
}

fn check_stage(stage: &Stage) -> ApiResult<()> {
    coord("stage.x", stage.x)?;
    coord("stage.y", stage.y)?;
    for (field, v) in [("stage.width", stage.width), ("stage.height", stage.height)] {
        if v == 0 || v > MAX_COORD {
            return Err(ApiError::invalid(field, format!("must be an integer from 1 to {MAX_COORD}")));
        }
    }
    if stage.label.as_ref().is_some_and(|l| l.chars().count() > 100) {
        return Err(ApiError::invalid("stage.label", "at most 100 characters"));
    }
    Ok(())
}

/// Places a row's seats along its line (`x`, `y`, `step`, `bend`), then its single seats
/// (`seat_positions`). A row without a line is left to [`auto_place`].
fn place_row(row: &RowSpec, at: &str, seats: &mut [Located]) -> ApiResult<()> {
    let field = |name: &str| format!("{at}.{name}");
    match (row.x, row.y) {
        (Some(x), Some(y)) => {
            let (x, y) = (coord(&field("x"), x)?, coord(&field("y"), y)?);
            let step = row.step.unwrap_or(DEFAULT_STEP);
            if step == 0 || step > MAX_COORD {
                return Err(ApiError::invalid(field("step"), format!("must be from 1 to {MAX_COORD}")));
            }
            let bend = row.bend.unwrap_or(0);
            if bend > y {
                return Err(ApiError::invalid(field("bend"), "must be at most the row's y"));
            }
            let n = seats.len() as u64;
            let last = u64::from(x) + u64::from(step) * n.saturating_sub(1);
            if last > u64::from(MAX_COORD) {
                let why = format!("the row's last seat would be at x = {last}, past {MAX_COORD}");
                return Err(ApiError::invalid(field("step"), why));
            }
            for (i, s) in seats.iter_mut().enumerate() {
                s.x = Some(x + step * i as u32);
                s.y = Some(y - curve(bend, i as u64, n));
            }
        }
        (None, None) if row.step.is_none() && row.bend.is_none() => {}
        (None, None) => {
            let name = if row.step.is_some() { "step" } else { "bend" };
            return Err(ApiError::invalid(field(name), "needs the row's x and y"));
        }
        (Some(_), None) => return Err(ApiError::invalid(field("y"), "is required with x")),
        (None, Some(_)) => return Err(ApiError::invalid(field("x"), "is required with y")),
    }
    for (k, p) in row.seat_positions.iter().enumerate() {
        let at = field(&format!("seat_positions[{k}]"));
        let (x, y) = (coord(&format!("{at}.x"), p.x)?, coord(&format!("{at}.y"), p.y)?);
        let seat = seats.iter_mut().find(|s| *s.seat.place.seat == *p.seat);
        let seat = seat.ok_or_else(|| ApiError::invalid(format!("{at}.seat"), "no such seat in this row"))?;
        (seat.x, seat.y) = (Some(x), Some(y));
    }
    Ok(())
}

/// How much closer to the stage seat `i` of `n` is: `bend` at the ends, 0 in the middle,
/// along a parabola (whole units).
fn curve(bend: u32, i: u64, n: u64) -> u32 {
    if n < 2 || bend == 0 {
        return 0;
    }
    let d = (2 * i).abs_diff(n - 1);
    let den = (n - 1) * (n - 1);
    ((u64::from(bend) * d * d + den / 2) / den) as u32
}

/// The automatic layout of every seat without a position: row after row (a row is a run of
/// seats of one sector and row), each centred on one line, from `top` down, with a gap
/// between sectors.
pub fn auto_place(seats: &mut [Located], top: u32) {
    let mut groups: Vec<std::ops::Range<usize>> = Vec::new();
    for i in 0..seats.len() {
        if seats[i].x.is_some() && seats[i].y.is_some() {
            continue;
        }
        let same_row = |g: &std::ops::Range<usize>| {
            let (a, b) = (&seats[g.start].seat.place, &seats[i].seat.place);
            g.end == i && a.sector == b.sector && a.row == b.row
        };
        match groups.last_mut() {
            Some(g) if same_row(g) => g.end = i + 1,
            _ => groups.push(i..i + 1),
        }
    }
    let widest = groups.iter().map(|g| g.len() as u32).max().unwrap_or(1);
    let centre = 40 + (widest - 1) * DEFAULT_STEP / 2;
    let mut y = top;
    for (k, g) in groups.iter().enumerate() {
        if k > 0 {
            y += AUTO_ROW_PITCH;
            if seats[g.start].seat.place.sector != seats[groups[k - 1].start].seat.place.sector {
                y += AUTO_SECTOR_GAP;
            }
        }
        let left = centre - (g.len() as u32 - 1) * DEFAULT_STEP / 2;
        for (i, s) in seats[g.clone()].iter_mut().enumerate() {
            (s.x, s.y) = (Some(left + i as u32 * DEFAULT_STEP), Some(y));
        }
    }
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
            .map(|s| {
                Ok(WriteOp::Put {
                    item: Item::typed(&pk, seat_sk(&s.seat.id), s.clone())?,
                    cond: Cond::Always,
                })
            })
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
    let mut map: SeatMap = crate::http::parse_json(DEMO_SEAT_MAP.as_bytes())?;
    // No sale past an event's start: the demo moves on to its next year's date once its own
    // has passed, so that a local run always has an event to sell.
    map.starts_at = next_date(map.starts_at, app.clock.now());
    match create_event(app, &map).await {
        Ok(_) | Err(ApiError::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// `at`, or the same day and time of the first later year when it is not after `now`.
fn next_date(at: DateTime<FixedOffset>, now: DateTime<Utc>) -> DateTime<FixedOffset> {
    use chrono::Datelike;
    let mut next = at;
    while next <= now {
        // The demo's date (30 December) is in every year; a 29 February would end the loop
        // where it cannot be moved, as it was.
        match next.with_year(next.year() + 1) {
            Some(later) => next = later,
            None => break,
        }
    }
    next
}

/// The event's item (listed by start time in the `events` index).
fn event_item(event: &Event, version: u64) -> ApiResult<Item> {
    Ok(Item::typed(event_pk(&event.id), META, event.clone())?
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

pub async fn get_event(app: &App, id: &str) -> ApiResult<Option<std::sync::Arc<Event>>> {
    if check_id("event_id", id).is_err() {
        return Ok(None);
    }
    let pk = event_pk(id);
    app.store.get_data(&pk, META).await?.map(|(_, data)| event_from(&pk, &data)).transpose()
}

/// The event of its item's data, read at `pk` (shared with the store's copy when it is one).
pub fn event_from(pk: &str, data: &crate::store::Data) -> ApiResult<std::sync::Arc<Event>> {
    Ok(data.decode_shared(pk, META)?)
}

/// Every event, by start time.
pub async fn list_events(app: &App) -> ApiResult<Vec<Event>> {
    let items = app.store.query_gsi1("events", QueryOpts::default()).await?;
    items.iter().map(|i| i.decode().map_err(ApiError::from)).collect()
}

pub async fn get_seat(app: &App, event_id: &str, seat_id: &str) -> ApiResult<Option<Seat>> {
    let Some(sk) = seat_key(seat_id) else { return Ok(None) };
    let pk = event_pk(event_id);
    app.store.get_data(&pk, &sk).await?.map(|(_, data)| seat_from(&pk, &sk, &data)).transpose()
}

/// The sort key of a seat's item, if the seat id is well-formed (a malformed one names no seat).
pub fn seat_key(seat_id: &str) -> Option<String> {
    check_id("seat_id", seat_id).is_ok().then(|| seat_sk(seat_id))
}

/// The seat of its item's data, read at `pk`/`sk`.
pub fn seat_from(pk: &str, sk: &str, data: &crate::store::Data) -> ApiResult<Seat> {
    Ok(data.decode::<Located>(pk, sk)?.seat)
}

/// The seat of a seat item (read as the [`Located`] it is written as: the embedded store then
/// hands back a copy of the value instead of decoding its JSON).
fn seat_of(item: &crate::store::Item) -> ApiResult<Seat> {
    Ok(item.decode::<Located>()?.seat)
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
            out[i] = Some(seat_of(&item)?);
        }
    }
    Ok(out)
}

pub async fn seats(app: &App, event_id: &str) -> ApiResult<Vec<Located>> {
    let items = app.store.query(&event_pk(event_id), QueryOpts::prefix("seat#")).await?;
    items.iter().map(|i| i.decode().map_err(ApiError::from)).collect()
}

#[derive(Serialize)]
pub struct SeatView {
    pub id: Arc<str>,
    #[serde(flatten)]
    pub place: Place,
    #[serde(with = "money::number")]
    pub price: Decimal,
    pub free: bool,
    /// Where the seat is drawn (absent for events loaded before seat maps had positions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<u32>,
}

/// An event's seats in natural order, each with its hold or sale if one blocks it now
/// (what the seat list and the drawn seat map show).
pub async fn seat_states(
    app: &App,
    event_id: &str,
) -> ApiResult<(std::sync::Arc<Event>, Vec<(Located, Option<holds::HoldState>)>)> {
    let event = get_event(app, event_id).await?.ok_or_else(|| ApiError::NotFound("event".into()))?;
    let (seats, holds) = tokio::try_join!(seats(app, event_id), holds::of_event(app, event_id))?;
    let now = app.clock.now();
    let mut out: Vec<_> = seats
        .into_iter()
        .map(|s| {
            let state = holds.get(&*s.seat.id).filter(|h| h.hold.blocks(now)).map(|h| h.hold.state);
            (s, state)
        })
        .collect();
    out.sort_by(|(a, _), (b, _)| a.seat.place.order_key().cmp(&b.seat.place.order_key()));
    Ok((event, out))
}

/// The seat list of an event with prices and whether each seat is free now.
pub async fn seat_list(app: &App, event_id: &str) -> ApiResult<(std::sync::Arc<Event>, Vec<SeatView>)> {
    let (event, seats) = seat_states(app, event_id).await?;
    let prices: HashMap<&str, Decimal> =
        event.price_categories.iter().map(|c| (c.id.as_str(), c.price)).collect();
    let views = seats
        .into_iter()
        .map(|(s, state)| SeatView {
            free: state.is_none(),
            price: prices.get(&*s.seat.place.price_category).copied().unwrap_or_default(),
            id: s.seat.id,
            place: s.seat.place,
            x: s.x,
            y: s.y,
        })
        .collect();
    Ok((event, views))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Started from its start on, and a start that cannot be read sells nothing.
    #[test]
    fn an_event_starts_at_its_start() {
        let text = "2030-05-01T19:00:00+03:00";
        let at = DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc);
        let e = Event {
            id: "e".into(),
            title: "t".into(),
            starts_at: text.into(),
            venue: None,
            description: None,
            price_categories: vec![],
            seat_count: 0,
            on_sale: true,
            created_at: at,
            cancellation: None,
            stage: None,
        };
        assert_eq!(e.started(at - chrono::Duration::milliseconds(1)), Ok(false));
        assert_eq!(e.started(at), Ok(true));
        assert!(e.selling(at - chrono::Duration::seconds(1)) && !e.selling(at));
        let broken = Event { starts_at: "soon".into(), ..e };
        assert!(broken.started(at).is_err() && !broken.selling(at));
    }
}
