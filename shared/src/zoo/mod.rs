//! Zoo payment sessions (seed 004, SPEC part C).
//!
//! A session is a [`Payment`] (purpose `ZooSession`) plus a session item in the same
//! partition (`pk = payment#<id>`, `sk = zoo`) with the order lines, customer,
//! confirmation URLs, metadata, the issued tickets and the slot places it holds; one
//! query of the partition reads both.
//!
//! Decisions where the seed is silent:
//! - Items sit in `order.items` (SPEC); a top-level `items` array is accepted as an alias
//!   when `order.items` is absent (one fragment of the seed shows it there).
//! - Visit date and time are Moscow time (UTC+3); they must be in the future.
//! - Capacity is per visit slot (date + time), all ticket types together; a session holds
//!   it from creation until its payment fails, is canceled or expires (released in the
//!   same transaction as that settlement). A sold-out slot is 400 naming the item.
//! - PUT replaces `amount` and `description` (both required) and `metadata` (user keys;
//!   absent means none); PATCH changes any of `amount`, `customer`, `description`,
//!   `metadata` (merged; a `null` value removes a key). Changing the amount or the customer
//!   needs status `pending` (else 400); sending the current value is not a change.
//!   `metadata.qr_codes_issued`, `tickets_activated` and `updated_fields` belong to the
//!   system (422 when sent). Both answer "Payment updated successfully".
//! - At most 10 order lines and 50 tickets per session.
//! - Prices and times are the server's ([`tariff`]): each item's `unit_price` must be the
//!   tariff's price of its `ticket_type` and its `visit_time` one of the visit times (422
//!   naming the item's field otherwise); the session's amount is the tariff total. A buyer's
//!   PUT/PATCH may repeat that amount but not change it (422 naming `amount`); a user with the
//!   `manager` role may set another amount (a discount) with an `amount_reason`, which is
//!   recorded on the session (`amount_override`) and re-registered with the gateway. The
//!   payment is settled only for the amount the session expects ([`payment_owner`]).
//! - A manager may read and change any session; anyone else only their own (404 otherwise).

pub mod payment_owner;
pub mod qr;
pub mod slots;
pub mod tariff;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::App;
use crate::auth::Claims;
use crate::config::Config;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::money;
use crate::payments::{self, OwnerRef, Payment, Status};
use crate::store::{Cond, Item, QueryOpts, StoreError, WriteOp};
use slots::Reservation;
use tariff::Tariff;

/// The owner kind of a zoo session's payment.
pub const OWNER_KIND: &str = "zoo_session";

pub const SK_SESSION: &str = "zoo";
pub const MAX_LINES: usize = 10;
pub const MAX_TICKETS: i64 = 50;
const RESERVED_METADATA: [&str; 3] = ["qr_codes_issued", "tickets_activated", "updated_fields"];
pub const PAYMENT_METHODS: [&str; 5] = ["bank_card", "apple_pay", "google_pay", "sbp", "yoo_money"];

// ---------- requests ----------

#[derive(Debug, Clone, Deserialize)]
pub struct MoneyIn {
    pub value: String,
    pub currency: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LineIn {
    pub ticket_type: String,
    pub quantity: i64,
    pub unit_price: MoneyIn,
    pub visit_date: String,
    pub visit_time: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OrderIn {
    pub order_id: String,
    pub total_amount: MoneyIn,
    #[serde(default)]
    pub items: Option<Vec<LineIn>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CustomerIn {
    pub email: String,
    #[serde(default)]
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ConfirmationIn {
    #[serde(rename = "type")]
    pub kind: String,
    pub return_url: String,
    pub cancel_url: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CreateSession {
    pub session_id: String,
    pub order: OrderIn,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub items: Option<Vec<LineIn>>,
    pub customer: CustomerIn,
    #[serde(default)]
    pub payment_methods: Option<Vec<String>>,
    pub confirmation: ConfirmationIn,
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct CustomerPatch {
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct UpdatePayment {
    #[serde(default)]
    pub amount: Option<MoneyIn>,
    #[serde(default)]
    pub customer: Option<CustomerPatch>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
    /// Why a manager sets an amount other than the tariff total.
    #[serde(default)]
    pub amount_reason: Option<String>,
}

// ---------- stored session ----------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    pub ticket_type: String,
    pub quantity: i64,
    #[serde(with = "rust_decimal::serde::str")]
    pub unit_price: Decimal,
    pub visit_date: String,
    pub visit_time: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub email: String,
    pub phone: Option<String>,
    pub user_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Confirmation {
    #[serde(rename = "type")]
    pub kind: String,
    pub return_url: String,
    pub cancel_url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    pub ticket_id: String,
    pub ticket_type: String,
    pub visit_date: String,
    pub visit_time: String,
    /// The QR code's text.
    pub qr_payload: String,
    /// `data:image/png;base64,...`
    pub qr_code: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub payment_id: String,
    pub session_id: String,
    pub order_id: String,
    pub items: Vec<Line>,
    pub customer: Customer,
    pub confirmation: Confirmation,
    pub payment_methods: Vec<String>,
    pub metadata: Map<String, Value>,
    #[serde(default)]
    pub tickets: Vec<Ticket>,
    pub reservations: Vec<Reservation>,
    /// What the session expects to be paid: the tariff total, or a manager's amount.
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub amount_due: Option<Decimal>,
    /// A manager's amount other than the tariff total, and why.
    #[serde(default)]
    pub amount_override: Option<AmountOverride>,
    #[serde(skip)]
    pub version: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AmountOverride {
    #[serde(with = "rust_decimal::serde::str")]
    pub tariff_total: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    pub reason: String,
    pub by: String,
    #[serde(with = "crate::time::utc")]
    pub at: chrono::DateTime<Utc>,
}

impl Session {
    pub(crate) fn to_item(&self) -> ApiResult<Item> {
        self.clone().into_item()
    }

    /// The stored item, holding the session itself (no copy of it).
    pub(crate) fn into_item(self) -> ApiResult<Item> {
        let (pk, version) = (payments::pk(&self.payment_id), self.version);
        Ok(Item::typed(pk, SK_SESSION, self)?.with_version(version))
    }

    /// The tariff total of the items.
    pub fn items_total(&self) -> Decimal {
        money::round(self.items.iter().map(|l| l.unit_price * Decimal::from(l.quantity)).sum())
    }

    /// What the session expects to be paid now.
    pub fn amount_due(&self) -> Decimal {
        self.amount_due.unwrap_or_else(|| self.items_total())
    }
}

// ---------- validation ----------

#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError { field: field.into(), message: message.into() });
    }
    fn finish(self) -> ApiResult<()> {
        if self.0.is_empty() { Ok(()) } else { Err(ApiError::Validation(self.0)) }
    }
}

// A field's name is written only when it is refused: a valid request formats none.
fn check_money(e: &mut Errors, field: impl std::fmt::Display, m: &MoneyIn) -> Option<Decimal> {
    if m.currency != "RUB" {
        e.add(format!("{field}.currency"), "currency must be RUB");
    }
    let v = money::parse_strict(&m.value);
    if v.is_none() {
        e.add(
            format!("{field}.value"),
            "amount must be a string with exactly two decimals, like \"2500.00\"",
        );
    }
    v
}

pub fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else { return false };
    s.len() <= 254
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && s.chars().all(|c| c.is_ascii_graphic())
}

pub fn valid_phone(s: &str) -> bool {
    s.strip_prefix('+').is_some_and(|d| (10..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

fn check_text(e: &mut Errors, field: impl std::fmt::Display, s: &str, max: usize) {
    if s.trim().is_empty() {
        e.add(field.to_string(), format!("{field} must not be empty"));
    } else if s.chars().count() > max {
        e.add(field.to_string(), format!("{field} is longer than {max} characters"));
    }
}

fn check_metadata(e: &mut Errors, m: &Map<String, Value>) {
    for k in RESERVED_METADATA {
        if m.contains_key(k) {
            e.add(format!("metadata.{k}"), format!("metadata.{k} is set by the system"));
        }
    }
    if m.len() > 20 || serde_json::to_string(m).map(|s| s.len()).unwrap_or(0) > 4096 {
        e.add("metadata", "metadata holds at most 20 keys and 4 KB");
    }
    // Stored as native DynamoDB attributes: numbers, keys and depth within the table's limits.
    if let Err(ApiError::Validation(errors)) = crate::freeform::check("metadata", &Value::Object(m.clone())) {
        e.0.extend(errors);
    }
}

/// The visit moment (Moscow time, UTC+3) in UTC, or an error on the field.
fn visit_moment(
    e: &mut Errors,
    field: impl std::fmt::Display,
    date: &str,
    time: &str,
) -> Option<chrono::DateTime<Utc>> {
    let (d, t) = (visit_date(date), visit_time(time));
    if d.is_none() {
        e.add(format!("{field}.visit_date"), "visit_date must be a date YYYY-MM-DD");
    }
    if t.is_none() {
        e.add(format!("{field}.visit_time"), "visit_time must be a time HH:MM");
    }
    let msk = chrono::FixedOffset::east_opt(3 * 3600)?;
    msk.from_local_datetime(&NaiveDateTime::new(d?, t?)).single().map(|m| m.with_timezone(&Utc))
}

/// Digits at `at` of `s` as a number (`None` unless every one is an ASCII digit).
fn digits(s: &[u8], at: std::ops::Range<usize>) -> Option<u32> {
    s.get(at)?.iter().try_fold(0u32, |n, b| b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0')))
}

/// `YYYY-MM-DD`, exactly (read by hand: chrono's general parser was 1.4% of a session create).
fn visit_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    NaiveDate::from_ymd_opt(digits(b, 0..4)? as i32, digits(b, 5..7)?, digits(b, 8..10)?)
}

/// `HH:MM`, exactly.
fn visit_time(s: &str) -> Option<NaiveTime> {
    let b = s.as_bytes();
    if b.len() != 5 || b[2] != b':' {
        return None;
    }
    NaiveTime::from_hms_opt(digits(b, 0..2)?, digits(b, 3..5)?, 0)
}

#[derive(Debug)]
struct Valid {
    total: Decimal,
    lines: Vec<Line>,
    methods: Vec<String>,
}

/// The rules of a new session without a store: every field checked, every error named; the
/// prices are the tariff's and the total their sum (a buyer cannot pick either).
fn validate(cfg: &Config, now: DateTime<Utc>, req: &CreateSession, tariff: &Tariff) -> ApiResult<Valid> {
    let mut e = Errors::default();
    check_text(&mut e, "session_id", &req.session_id, 128);
    check_text(&mut e, "order.order_id", &req.order.order_id, 128);
    let total = check_money(&mut e, "order.total_amount", &req.order.total_amount);
    if req.description.as_ref().is_some_and(|d| d.chars().count() > 1000) {
        e.add("description", "description is longer than 1000 characters");
    }
    let (items, base) = match (&req.order.items, &req.items) {
        (Some(items), _) => (items, "order.items"),
        (None, Some(items)) => (items, "items"),
        (None, None) => {
            e.add("order.items", "order.items is required");
            return Err(ApiError::Validation(e.0));
        }
    };
    let (lines, sum) = check_lines(&mut e, cfg, now, tariff, items, base);
    if let (Some(t), Some(sum)) = (total, sum)
        && money::round(sum) != t
    {
        e.add(
            "order.total_amount.value",
            format!(
                "total_amount {} is not the sum of quantity × unit_price ({})",
                money::format(t),
                money::format(sum)
            ),
        );
    }
    check_customer(&mut e, &req.customer);
    let methods = req.payment_methods.clone().unwrap_or_else(|| vec!["bank_card".into()]);
    check_methods(&mut e, &methods);
    check_confirmation(&mut e, cfg, &req.confirmation);
    if let Some(m) = &req.metadata {
        check_metadata(&mut e, m);
    }
    e.finish()?;
    Ok(Valid { total: total.unwrap_or_default(), lines, methods })
}

/// The lines and, when every line could be priced, their sum.
fn check_lines(
    e: &mut Errors,
    cfg: &Config,
    now: DateTime<Utc>,
    tariff: &Tariff,
    items: &[LineIn],
    base: &str,
) -> (Vec<Line>, Option<Decimal>) {
    if items.is_empty() {
        e.add(base, "at least one item is required");
    }
    if items.len() > MAX_LINES {
        e.add(base, format!("at most {MAX_LINES} items"));
    }
    let mut sum = Some(Decimal::ZERO).filter(|_| !items.is_empty());
    let mut tickets = 0i64;
    let mut lines = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let line = check_line(e, cfg, now, tariff, it, &format_args!("{base}[{i}]"));
        tickets = tickets.saturating_add(it.quantity.max(0));
        sum = match (sum, line.1) {
            (Some(s), Some(p)) if it.quantity >= 1 => {
                Some(s + p * Decimal::from(it.quantity.min(MAX_TICKETS)))
            }
            _ => None,
        };
        lines.push(line.0);
    }
    if tickets > MAX_TICKETS {
        e.add(base, format!("at most {MAX_TICKETS} tickets per session"));
    }
    (lines, sum)
}

/// One line: a known ticket type at its tariff price, a whole positive quantity, a visit in
/// the future at one of the visit times. Answers the line and its unit price if valid.
fn check_line(
    e: &mut Errors,
    cfg: &Config,
    now: DateTime<Utc>,
    tariff: &Tariff,
    it: &LineIn,
    f: &dyn std::fmt::Display,
) -> (Line, Option<Decimal>) {
    check_text(e, format_args!("{f}.ticket_type"), &it.ticket_type, 64);
    if it.quantity < 1 {
        e.add(format!("{f}.quantity"), "quantity must be a positive whole number");
    } else if it.quantity > MAX_TICKETS {
        e.add(format!("{f}.quantity"), format!("at most {MAX_TICKETS} tickets per session"));
    }
    let price = check_money(e, format_args!("{f}.unit_price"), &it.unit_price);
    let kind = it.ticket_type.trim();
    match tariff.prices.get(kind) {
        None if !kind.is_empty() => e.add(
            format!("{f}.ticket_type"),
            format!(
                "unknown ticket type; the tariff has {}",
                tariff.prices.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        ),
        Some(p) if price.is_some_and(|given| given != *p) => e.add(
            format!("{f}.unit_price.value"),
            format!("the tariff price of {kind} is {}", money::format(*p)),
        ),
        _ => {}
    }
    if it.visit_time.len() == 5 && !cfg.zoo.visit_times.contains(&it.visit_time) {
        e.add(format!("{f}.visit_time"), format!("visits start at {}", cfg.zoo.visit_times.join(", ")));
    }
    if visit_moment(e, f, &it.visit_date, &it.visit_time).is_some_and(|m| m <= now) {
        e.add(format!("{f}.visit_date"), "the visit date and time must be in the future");
    }
    let line = Line {
        ticket_type: kind.to_owned(),
        quantity: it.quantity,
        unit_price: price.unwrap_or_default(),
        visit_date: it.visit_date.clone(),
        visit_time: it.visit_time.clone(),
    };
    (line, price)
}

fn check_customer(e: &mut Errors, c: &CustomerIn) {
    if !valid_email(&c.email) {
        e.add("customer.email", "customer.email is not a valid email address");
    }
    if c.phone.as_deref().is_some_and(|p| !valid_phone(p)) {
        e.add("customer.phone", "customer.phone must be +<country code><number>, 10 to 15 digits");
    }
}

fn check_methods(e: &mut Errors, methods: &[String]) {
    for (i, m) in methods.iter().enumerate() {
        if !PAYMENT_METHODS.contains(&m.as_str()) {
            e.add(
                format!("payment_methods[{i}]"),
                format!("payment method must be one of {}", PAYMENT_METHODS.join(", ")),
            );
        }
    }
    if methods.is_empty() {
        e.add("payment_methods", "at least one payment method");
    }
}

/// A redirect confirmation back to one of the allowed sites.
fn check_confirmation(e: &mut Errors, cfg: &Config, c: &ConfirmationIn) {
    if c.kind != "redirect" {
        e.add("confirmation.type", "confirmation.type must be redirect");
    }
    for (f, u) in [("confirmation.return_url", &c.return_url), ("confirmation.cancel_url", &c.cancel_url)] {
        if let Err(why) = crate::redirects::check(cfg, u) {
            e.add(f, why.message(f));
        }
    }
}

// ---------- operations ----------

fn base_metadata(user: Option<&Map<String, Value>>) -> Map<String, Value> {
    let mut m = user.cloned().unwrap_or_default();
    m.insert("qr_codes_issued".into(), Value::Bool(false));
    m.insert("tickets_activated".into(), Value::Bool(false));
    m
}

/// Creates a session: validates against the tariff (one read, with the caller's cap ledgers
/// read beside it), registers the payment with the gateway, then writes the payment, the
/// session, its slot places and the ledgers in one transaction: two store round trips one after
/// the other while the first shards tried have room. Answers the payment and the session's id.
pub async fn create_session(
    app: &App,
    owner: &str,
    client: Option<&str>,
    req: CreateSession,
) -> ApiResult<(Payment, String)> {
    let base = if req.order.items.is_some() { "order.items" } else { "items" };
    // The ledgers named by the slots as asked (a date and a time of the right shape), read with
    // the tariff; used if validation keeps those slots (it copies them as given), else read anew.
    let early = SessionCaps::new(app, owner, client, asked_slots(&req).iter().map(|s| (s, 0)), base);
    let (tariff, read) = tokio::try_join!(tariff::current(app), early.read(app))?;
    let valid = validate(&app.config, app.clock.now(), &req, &tariff)?;
    // Places per slot, asked for in a fixed order.
    let mut per_slot: BTreeMap<(String, String), (i64, usize)> = BTreeMap::new();
    for (i, l) in valid.lines.iter().enumerate() {
        let e = per_slot.entry((l.visit_date.clone(), l.visit_time.clone())).or_insert((0, i));
        e.0 += l.quantity;
    }
    let mut asks: Vec<slots::Ask> = per_slot
        .iter()
        .map(|((date, time), (q, first))| {
            slots::Ask::new(app, date, time, *q, format!("{base}[{first}].quantity"))
        })
        .collect();
    let places = per_slot.iter().map(|(slot, (q, _))| (slot, u32::try_from(*q).unwrap_or(u32::MAX)));
    let caps = SessionCaps::new(app, owner, client, places, base);
    write_session(app, owner, &req, &valid, &mut asks, &caps, read).await
}

/// The visit slots a request asks for, when it has at most [`MAX_LINES`] items and every one has
/// the shape of a date and a time (the keys of its cap ledgers are then few, short and known
/// before validation); else none (a request validation refuses reads no ledger).
fn asked_slots(req: &CreateSession) -> BTreeSet<(String, String)> {
    let items = req.order.items.as_ref().or(req.items.as_ref()).map_or(&[][..], Vec::as_slice);
    let shaped = |it: &LineIn| {
        let (d, t) = (it.visit_date.as_bytes(), it.visit_time.as_bytes());
        d.len() == 10
            && t.len() == 5
            && d.iter().chain(t).all(|b| b.is_ascii_digit() || matches!(b, b'-' | b':'))
    };
    if items.len() > MAX_LINES || !items.iter().all(shaped) {
        return BTreeSet::new();
    }
    items.iter().map(|it| (it.visit_date.clone(), it.visit_time.clone())).collect()
}

/// The caps on open (unpaid) sessions per visit slot: their number and the places they hold,
/// per user and per client address (see [`crate::caps`]). A session counts in the ledger of
/// each slot it holds places in, weighing its places there, until its payment's expiry; the
/// recount keeps only payments still open.
struct SessionCaps {
    /// Each ledger's key, its cap, and the places the session holds in its slot.
    ledgers: Vec<(String, crate::caps::Limit, u32)>,
}

impl SessionCaps {
    /// `slots`: each visit slot with the places the session takes there (0 when only reading).
    fn new<'a>(
        app: &App,
        owner: &str,
        client: Option<&str>,
        slots: impl Iterator<Item = (&'a (String, String), u32)>,
        field: &'static str,
    ) -> Self {
        use crate::caps::{Limit, address_key, pk};
        let c = &app.config.caps;
        let user = Limit {
            weight: c.user_zoo_places,
            count: c.user_zoo_sessions,
            field,
            weight_what: "places held unpaid per visit slot per user",
            count_what: "open sessions per visit slot per user",
        };
        let address = Limit {
            weight: c.address_zoo_places,
            count: c.address_zoo_sessions,
            field,
            weight_what: "places held unpaid per visit slot from one client address",
            count_what: "open sessions per visit slot from one client address",
        };
        let mut ledgers = Vec::new();
        for ((date, time), places) in slots {
            let scope = format!("zoo#{date}#{time}");
            if !user.is_off() {
                ledgers.push((pk(&scope, &crate::tickets::user_owner(owner)), user, places));
            }
            if let Some(addr) = client.filter(|_| !address.is_off()) {
                ledgers.push((pk(&scope, &address_key(addr)), address, places));
            }
        }
        SessionCaps { ledgers }
    }

    /// The ledgers' writes that count the session of payment `p` (its places in each slot)
    /// until it expires.
    fn writes(&self, app: &App, ledgers: &[crate::caps::Stored], p: &Payment) -> ApiResult<Vec<WriteOp>> {
        ledgers
            .iter()
            .zip(&self.ledgers)
            .map(|(l, (_, _, places))| {
                let entry = crate::caps::Entry { id: p.id.clone(), weight: *places, until: p.expires_at };
                l.write(Some(&entry), app.clock.now())
            })
            .collect()
    }

    /// The ledgers' keys, in order.
    fn keys(&self) -> Vec<&str> {
        self.ledgers.iter().map(|(pk, _, _)| pk.as_str()).collect()
    }

    /// Reads every ledger (none to read when the caps are off).
    async fn read(&self, app: &App) -> ApiResult<Vec<crate::caps::Stored>> {
        crate::caps::read_many(app, self.keys().into_iter().map(str::to_owned).collect()).await
    }

    /// Admits one more session into every ledger as read (read again unless `read` is exactly
    /// these ledgers): 429 when one is full.
    async fn admit(&self, app: &App, read: Vec<crate::caps::Stored>) -> ApiResult<Vec<crate::caps::Stored>> {
        let read = match read.iter().map(crate::caps::Stored::pk).eq(self.keys()) {
            true => read,
            false => self.read(app).await?,
        };
        let mut out = Vec::new();
        for (ledger, (_, limit, places)) in read.into_iter().zip(&self.ledgers) {
            let probe = crate::caps::Entry { id: String::new(), weight: *places, until: app.clock.now() };
            out.push(ledger.admit(app, limit, &probe, &OpenPayments).await?);
        }
        Ok(out)
    }
}

/// Sessions as they are: those whose payment is still open.
struct OpenPayments;

#[async_trait::async_trait]
impl crate::caps::Recount for OpenPayments {
    async fn recount(&self, app: &App, entries: &[crate::caps::Entry]) -> ApiResult<Vec<crate::caps::Entry>> {
        let mut out = Vec::new();
        for e in entries {
            if let Ok(p) = payments::get(app, &e.id).await
                && p.status.is_open()
            {
                out.push(e.clone());
            }
        }
        Ok(out)
    }
}

/// Writes the payment, the session and the places of `asks` together. A shard without the
/// room moves its ask on (the next shard, then a split, then sold out); a payment id already
/// taken draws another (registered anew); contention retries as it was.
async fn write_session(
    app: &App,
    owner: &str,
    req: &CreateSession,
    valid: &Valid,
    asks: &mut [slots::Ask],
    caps: &SessionCaps,
    read: Vec<crate::caps::Stored>,
) -> ApiResult<(Payment, String)> {
    let attempts = asks.iter().map(slots::Ask::attempts).sum::<u32>().saturating_add(crate::retry::ATTEMPTS);
    let mut registered: Option<Payment> = None;
    let mut ledgers = caps.admit(app, read).await?;
    for n in 0..attempts {
        let p = match registered.take() {
            Some(p) => p,
            None => {
                let mut p = draft_payment(app, owner, req, valid);
                payments::register(app, &mut p).await?;
                p
            }
        };
        let (ops, owners, capped) =
            session_writes(owner, req, valid, &p, asks, caps.writes(app, &ledgers, &p)?)?;
        match app.store.transact(ops).await {
            Ok(()) => return Ok((p, req.session_id.clone())),
            // A ledger changed meanwhile: read them again (429 if now full), same payment.
            Err(StoreError::Conflict { index: Some(i) }) if i >= capped => {
                ledgers = caps.admit(app, caps.read(app).await?).await?;
                registered = Some(p);
            }
            Err(StoreError::Conflict { index: Some(i) }) => match owners.get(i).copied().flatten() {
                // A shard without the room: that slot tries elsewhere at once.
                Some(k) => {
                    asks[k].next(app).await?;
                    registered = Some(p);
                }
                // The payment id was taken: another one, after a pause.
                None => crate::retry::backoff(n + 1).await,
            },
            // Contended: the same again, after a pause.
            Err(StoreError::Conflict { index: None }) => {
                registered = Some(p);
                crate::retry::backoff(n + 1).await;
            }
            Err(e) => return outcome_unknown(app, p, req.session_id.clone(), e).await,
        }
    }
    Err(crate::retry::conflict("the visit slot"))
}

/// One attempt's transaction: the payment and its lookup, the session, each ask's slot places
/// and the caller's cap ledgers' writes (`counted`: [`SessionCaps::writes`]). With it, the ask
/// each write belongs to (`None` for the payment's and the session's) and where the ledgers'
/// writes start.
fn session_writes(
    owner: &str,
    req: &CreateSession,
    valid: &Valid,
    p: &Payment,
    asks: &[slots::Ask],
    counted: Vec<WriteOp>,
) -> ApiResult<(Vec<WriteOp>, Vec<Option<usize>>, usize)> {
    let held: Vec<Reservation> = asks.iter().flat_map(|a| a.plan.iter().cloned()).collect();
    let session = draft_session(owner, req, valid, p, &held);
    // Sized once: a write is a few hundred bytes, and growing the list step by step moved it
    // three times (2.5% of a session create).
    let mut ops = Vec::with_capacity(3 + held.len() + counted.len());
    ops.extend(payments::create_ops(p)?);
    ops.push(WriteOp::Put { item: session.into_item()?, cond: Cond::NotExists });
    let mut owners = Vec::with_capacity(ops.capacity());
    owners.resize(ops.len(), None);
    for (k, a) in asks.iter().enumerate() {
        let places = a.ops();
        owners.extend(std::iter::repeat_n(Some(k), places.len()));
        ops.extend(places);
    }
    let capped = ops.len();
    ops.extend(counted);
    Ok((ops, owners, capped))
}

/// The payment as it will be written, with a new id (pure).
fn draft_payment(app: &App, owner: &str, req: &CreateSession, valid: &Valid) -> Payment {
    let inv = payments::new_inv_id();
    let id = format!("ZT_{inv}");
    let description =
        req.description.clone().unwrap_or_else(|| format!("Zoo tickets, order {}", req.order.order_id));
    let kind = app.config.payments.zoo_gateway;
    let mut p = Payment::new(
        app,
        id.clone(),
        inv,
        owner.to_owned(),
        OwnerRef::new(OWNER_KIND, &id),
        kind,
        valid.total,
        description,
    );
    p.email = Some(req.customer.email.clone());
    p.return_url = Some(req.confirmation.return_url.clone());
    p.cancel_url = Some(req.confirmation.cancel_url.clone());
    p.payment_method = valid.methods.first().cloned();
    p
}

/// The session of payment `p` holding the places `held` (pure).
fn draft_session(
    owner: &str,
    req: &CreateSession,
    valid: &Valid,
    p: &Payment,
    held: &[Reservation],
) -> Session {
    Session {
        payment_id: p.id.clone(),
        session_id: req.session_id.clone(),
        order_id: req.order.order_id.clone(),
        items: valid.lines.clone(),
        customer: Customer {
            email: req.customer.email.clone(),
            phone: req.customer.phone.clone(),
            user_id: owner.to_owned(),
        },
        confirmation: Confirmation {
            kind: req.confirmation.kind.clone(),
            return_url: req.confirmation.return_url.clone(),
            cancel_url: req.confirmation.cancel_url.clone(),
        },
        payment_methods: valid.methods.clone(),
        metadata: base_metadata(req.metadata.as_ref()),
        tickets: vec![],
        reservations: held.to_vec(),
        amount_due: Some(valid.total),
        amount_override: None,
        version: 1,
    }
}

/// A session write that failed in a way that may have been applied (a timeout): the payment
/// tells. "Not there yet" is not enough (the write may still land after the client was told
/// it failed, and its retry would take the places again), so it is fenced off first.
async fn outcome_unknown(
    app: &App,
    p: Payment,
    session_id: String,
    e: StoreError,
) -> ApiResult<(Payment, String)> {
    let found = match app.store.get(&payments::pk(&p.id), payments::SK_PAYMENT).await {
        Ok(Some(_)) => Ok(true),
        Ok(None) => payments::fence(app, &p).await,
        Err(again) => Err(again.into()),
    };
    match found {
        Ok(true) => Ok((p, session_id)),
        Ok(false) => Err(e.into()),
        Err(again) => {
            // Unknown. The places were asked for in the same transaction: taken with the
            // session (which releases them when its payment ends) or not at all.
            tracing::error!(payment = %p.id, error = %again, "session write outcome unknown");
            Err(e.into())
        }
    }
}

/// The payment and its session, if `who` owns them or is a manager (else 404).
pub async fn load_for(app: &App, who: &Claims, id: &str) -> ApiResult<(Payment, Session)> {
    let not_found = || ApiError::NotFound("payment".into());
    match load_paid(app, id).await {
        Ok((p, s)) if p.owner == who.sub || who.has_role("manager") => Ok((p, s)),
        Ok(_) => Err(not_found()),
        Err(e) => Err(e),
    }
}

/// A session with its payment, whoever owns it (the gate's scan, the system's jobs).
pub async fn load_paid(app: &App, id: &str) -> ApiResult<(Payment, Session)> {
    let not_found = || ApiError::NotFound("payment".into());
    if id.len() > 64 {
        return Err(not_found());
    }
    let items = app.store.query(&payments::pk(id), QueryOpts::default()).await?;
    let (mut p, mut s) = (None, None);
    for it in &items {
        match it.sk.as_str() {
            payments::SK_PAYMENT => p = Some(Payment::from_item(it)?),
            SK_SESSION => {
                let mut sess: Session = it.decode()?;
                sess.version = it.version;
                s = Some(sess)
            }
            _ => {}
        }
    }
    match (p, s) {
        (Some(p), Some(s)) => Ok((p, s)),
        _ => Err(not_found()),
    }
}

fn money_json(v: Decimal) -> Value {
    json!({ "value": money::format(v), "currency": "RUB" })
}

/// The status the shop reads. `succeeded` means the tickets were issued (seed 004): money that
/// came for a wrong sum is being returned, not a sale, so it reads `refunded` while its refund
/// is still under way (a gateway that refunds slowly, or a person's hand).
fn status_shown(p: &Payment) -> &'static str {
    match p.status {
        Status::Succeeded if p.anomaly.is_some() => Status::Refunded.as_str(),
        other => other.as_str(),
    }
}

/// The seed's payment shape.
pub fn view(p: &Payment, s: &Session) -> Value {
    let ts = |t: Option<chrono::DateTime<Utc>>| t.map(payments::ts).map(Value::String).unwrap_or(Value::Null);
    json!({
        "payment_id": p.id,
        "session_id": s.session_id,
        "order_id": s.order_id,
        "status": status_shown(p),
        "amount": money_json(p.amount),
        "refunded_amount": money_json(p.refunded_amount),
        "payment_method": p.payment_method,
        "created_at": payments::ts(p.created_at),
        "updated_at": payments::ts(p.updated_at),
        "captured_at": ts(p.captured_at),
        "expires_at": payments::ts(p.expires_at),
        "confirmation": {
            "type": s.confirmation.kind,
            "return_url": s.confirmation.return_url,
            "cancel_url": s.confirmation.cancel_url,
            // Only while the payment can still be paid.
            "confirmation_url": p.payable_url(),
        },
        "amount_override": s.amount_override.as_ref().map(|o| json!({
            "tariff_total": money_json(o.tariff_total),
            "amount": money_json(o.amount),
            "reason": o.reason,
            "at": payments::ts(o.at),
        })),
        "customer": s.customer,
        "items": s.items.iter().map(|l| json!({
            "ticket_type": l.ticket_type,
            "quantity": l.quantity,
            "unit_price": money_json(l.unit_price),
            "visit_date": l.visit_date,
            "visit_time": l.visit_time,
        })).collect::<Vec<_>>(),
        "payment_methods": s.payment_methods,
        "metadata": s.metadata,
        "description": p.description,
        "tickets": s.tickets.iter().map(|t| json!({
            "ticket_id": t.ticket_id,
            "ticket_type": t.ticket_type,
            "visit_date": t.visit_date,
            "visit_time": t.visit_time,
            "qr_code": t.qr_code,
        })).collect::<Vec<_>>(),
    })
}

/// Checks a PUT (`full = true`) or PATCH body; answers the amount asked for, if any.
fn check_update(req: &UpdatePayment, full: bool) -> ApiResult<Option<Decimal>> {
    let mut e = Errors::default();
    if full {
        if req.amount.is_none() {
            e.add("amount", "amount is required");
        }
        if req.description.is_none() {
            e.add("description", "description is required");
        }
    } else if req.amount.is_none()
        && req.customer.is_none()
        && req.description.is_none()
        && req.metadata.is_none()
    {
        e.add("body", "nothing to update: send amount, customer, description or metadata");
    }
    let amount = req.amount.as_ref().and_then(|m| check_money(&mut e, "amount", m));
    if amount.is_some_and(|a| a <= Decimal::ZERO) {
        e.add("amount.value", "amount must be positive");
    }
    if req.amount_reason.as_ref().is_some_and(|r| r.trim().is_empty() || r.chars().count() > 500) {
        e.add("amount_reason", "a reason of 1 to 500 characters");
    }
    if req.description.as_ref().is_some_and(|d| d.chars().count() > 1000) {
        e.add("description", "description is longer than 1000 characters");
    }
    if let Some(c) = &req.customer {
        if c.email.as_deref().is_some_and(|m| !valid_email(m)) {
            e.add("customer.email", "customer.email is not a valid email address");
        }
        if c.phone.as_deref().is_some_and(|p| !valid_phone(p)) {
            e.add("customer.phone", "customer.phone must be +<country code><number>, 10 to 15 digits");
        }
    }
    if let Some(m) = &req.metadata {
        check_metadata(&mut e, m);
    }
    e.finish()?;
    Ok(amount)
}

/// The amount rule of an update: the session's amount is what it expects (the tariff total,
/// or a manager's amount); a buyer may repeat it, a manager may lower it (a discount) with a
/// reason.
fn apply_amount(
    now: DateTime<Utc>,
    who: &Claims,
    req: &UpdatePayment,
    asked: Decimal,
    s: &mut Session,
) -> ApiResult<bool> {
    if asked == s.amount_due() {
        return Ok(false);
    }
    if !who.has_role("manager") {
        return Err(ApiError::invalid(
            "amount",
            format!(
                "the amount is the tariff total of the items, {}; only a manager may set another",
                money::format(s.amount_due())
            ),
        ));
    }
    if asked > s.items_total() {
        // A discount, never more than the tickets cost (a slip of the keyboard would charge it).
        return Err(ApiError::invalid(
            "amount",
            format!("a manager's amount is at most the tariff total, {}", money::format(s.items_total())),
        ));
    }
    let reason = req
        .amount_reason
        .clone()
        .ok_or_else(|| ApiError::invalid("amount_reason", "a manager's amount needs a reason"))?;
    s.amount_override = Some(AmountOverride {
        tariff_total: s.items_total(),
        amount: asked,
        reason,
        by: who.sub.clone(),
        at: now,
    });
    s.amount_due = Some(asked);
    Ok(true)
}

/// Merges the customer change; `true` when something changed.
fn apply_customer(c: &CustomerPatch, s: &mut Session) -> bool {
    let mut cust = s.customer.clone();
    if let Some(m) = &c.email {
        cust.email = m.clone();
    }
    if c.phone.is_some() {
        cust.phone = c.phone.clone();
    }
    let changed = cust != s.customer;
    s.customer = cust;
    changed
}

/// PUT replaces the user metadata (absent means none), PATCH merges it (`null` removes a
/// key); system keys stay. `true` when something changed.
fn apply_metadata(m: &Map<String, Value>, full: bool, s: &mut Session) -> bool {
    let mut meta: Map<String, Value> = s
        .metadata
        .iter()
        .filter(|(k, _)| RESERVED_METADATA.contains(&k.as_str()) || !full)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in m {
        if v.is_null() {
            meta.remove(k);
        } else {
            meta.insert(k.clone(), v.clone());
        }
    }
    meta.remove("updated_fields");
    let mut old = s.metadata.clone();
    old.remove("updated_fields");
    s.metadata = meta;
    s.metadata != old
}

/// PUT (`full = true`) or PATCH.
pub async fn update(
    app: &App,
    who: &Claims,
    id: &str,
    req: UpdatePayment,
    full: bool,
) -> ApiResult<(Payment, Session)> {
    let amount = check_update(&req, full)?;
    let (p, s) = load_for(app, who, id).await?;
    let mut np = p.next(app);
    let mut ns = Session { version: s.version + 1, ..s.clone() };
    let mut changed: Vec<&str> = Vec::new();
    if let Some(a) = amount
        && apply_amount(app.clock.now(), who, &req, a, &mut ns)?
    {
        np.amount = a;
        changed.push("amount");
    }
    if let Some(c) = &req.customer
        && apply_customer(c, &mut ns)
    {
        np.email = Some(ns.customer.email.clone());
        changed.push("customer");
    }
    if !changed.is_empty() && p.status != Status::Pending {
        return Err(ApiError::bad_request(
            changed[0],
            format!(
                "the amount and the customer can only change while the payment is pending; it is {}",
                p.status.as_str()
            ),
        ));
    }
    if let Some(d) = &req.description
        && *d != p.description
    {
        np.description = d.clone();
        changed.push("description");
    }
    let metadata = if full { Some(req.metadata.clone().unwrap_or_default()) } else { req.metadata.clone() };
    if let Some(m) = &metadata
        && apply_metadata(m, full, &mut ns)
    {
        changed.push("metadata");
    }
    ns.metadata.insert("updated_fields".into(), json!(changed));
    if np.amount != p.amount {
        // The gateway's page must ask for the new amount; the page before it is kept in mind.
        payments::register_again(app, &p, &mut np).await?;
    }
    let ops = vec![np.write()?, WriteOp::Put { item: ns.to_item()?, cond: Cond::Version(s.version) }];
    app.store.transact(ops).await?;
    Ok((np, ns))
}

/// DELETE: only a canceled or failed payment; afterwards it is gone (404). The session goes;
/// the payment's own record stays (unchanged since it was read), out of every view: money
/// that still comes for it (a page kept open, a gateway that completes a payment after it was
/// cancelled) is then recorded and returned as a late payment, never taken without a record.
pub async fn delete(app: &App, who: &Claims, id: &str) -> ApiResult<chrono::DateTime<Utc>> {
    let (p, s) = load_for(app, who, id).await?;
    if !matches!(p.status, Status::Canceled | Status::Failed) {
        return Err(ApiError::bad_request(
            "status",
            format!("only canceled or failed payments can be deleted; this one is {}", p.status.as_str()),
        ));
    }
    let ops = vec![
        WriteOp::Check {
            pk: payments::pk(id),
            sk: payments::SK_PAYMENT.into(),
            cond: Cond::Version(p.version),
        },
        WriteOp::Delete { pk: payments::pk(id), sk: SK_SESSION.into(), cond: Cond::Version(s.version) },
    ];
    app.store.transact(ops).await?;
    Ok(app.clock.now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::named;
    use rust_decimal_macros::dec;

    #[test]
    fn money_for_a_wrong_sum_never_reads_as_a_sale() {
        let app = App::in_memory(crate::Config::for_tests());
        let owner = payments::OwnerRef::new(OWNER_KIND, "ZT_1");
        let p = Payment::new(
            &app,
            "ZT_1".into(),
            1,
            "21".into(),
            owner,
            payments::GatewayKind::Sandbox,
            dec!(1000.00),
            "x".into(),
        );
        let paid = Payment { status: Status::Succeeded, ..p.clone() };
        assert_eq!(status_shown(&paid), "succeeded");
        let anomaly = payments::Anomaly {
            kind: payments::AnomalyKind::AmountMismatch,
            received: dec!(1.00),
            currency: "RUB".into(),
            expected: Some(dec!(1000.00)),
            at: Utc::now(),
            refund_id: "rf".into(),
        };
        let wrong = Payment { anomaly: Some(anomaly), ..paid.clone() };
        assert_eq!(status_shown(&wrong), "refunded", "its refund still under way");
        assert_eq!(status_shown(&Payment { status: Status::Refunded, ..wrong }), "refunded");
        for s in [Status::Pending, Status::Processing, Status::Failed, Status::Canceled] {
            assert_eq!(status_shown(&Payment { status: s, ..p.clone() }), s.as_str());
        }
    }

    /// The visit date and time read by hand accept what chrono's `%Y-%m-%d` / `%H:%M` accept
    /// at exactly 10 and 5 characters, digits only: every day of some years, every minute, and
    /// a set of near misses.
    #[test]
    fn visit_dates_and_times_read_as_chrono_reads_them() {
        let chrono_date = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().filter(|_| s.len() == 10);
        let chrono_time = |s: &str| NaiveTime::parse_from_str(s, "%H:%M").ok().filter(|_| s.len() == 5);
        let mut day = NaiveDate::from_ymd_opt(2023, 12, 25).unwrap();
        while chrono::Datelike::year(&day) < 2029 {
            let text = day.format("%Y-%m-%d").to_string();
            assert_eq!(visit_date(&text), Some(day), "{text}");
            day = day.succ_opt().unwrap();
        }
        for (h, m) in (0..24).flat_map(|h| (0..60).map(move |m| (h, m))) {
            let text = format!("{h:02}:{m:02}");
            assert_eq!(visit_time(&text), chrono_time(&text), "{text}");
            assert!(visit_time(&text).is_some());
        }
        for bad in [
            "2026-01x01",
            "2026x01-01",
            "2026-02-30",
            "2026-13-01",
            "2026-00-10",
            "2026-1-011",
            "2026/01/01",
            "2026-01-1 ",
            "２026-01-01",
            "2026-01-01T",
            "26-01-2026",
            "",
            "2026-01-0a",
            "+202-01-01",
            "0000-01-01",
            "9999-12-31",
        ] {
            match visit_date(bad) {
                None => assert!(chrono_date(bad).is_none() || bad.starts_with('+'), "{bad}"),
                Some(d) => assert_eq!(Some(d), chrono_date(bad), "{bad}"),
            }
        }
        for bad in
            ["10x00", "24:00", "10:60", "1:000", "10-00", "10:0 ", "ab:cd", "", "10:00:00", "+1:00", "9:5"]
        {
            assert_eq!(visit_time(bad), None, "{bad}");
            assert!(chrono_time(bad).is_none() || bad == "+1:00", "{bad}");
        }
    }

    fn body(f: impl FnOnce(&mut Value)) -> CreateSession {
        let mut v = json!({
            "session_id": "session_abc123",
            "order": {
                "order_id": "ZT-20241025-001",
                "total_amount": { "value": "2500.00", "currency": "RUB" },
                "items": [
                    { "ticket_type": "adult", "quantity": 2, "unit_price": { "value": "1000.00", "currency": "RUB" },
                      "visit_date": "2099-10-25", "visit_time": "10:00" },
                    { "ticket_type": "child", "quantity": 1, "unit_price": { "value": "500.00", "currency": "RUB" },
                      "visit_date": "2099-10-25", "visit_time": "10:00" }
                ]
            },
            "customer": { "email": "visitor@example.com", "phone": "+79991111111" },
            "confirmation": {
                "type": "redirect",
                "return_url": "https://zooticket.ru/ok",
                "cancel_url": "https://zooticket.ru/no"
            }
        });
        f(&mut v);
        serde_json::from_value(v).expect("a session body")
    }

    #[test]
    fn the_cap_ledgers_are_named_before_validation_only_from_shaped_slots() {
        let slots = |req: &CreateSession| asked_slots(req).into_iter().collect::<Vec<_>>();
        assert_eq!(slots(&body(|_| {})), vec![("2099-10-25".to_owned(), "10:00".to_owned())]);
        let later = body(|v| v["order"]["items"][1]["visit_time"] = json!("12:30"));
        assert_eq!(slots(&later).len(), 2);
        // A slot that is not a date and a time names no ledger key before validation refuses it.
        for bad in [json!("2099-10-25T10:00"), json!("x".repeat(2000)), json!("10:0")] {
            assert!(slots(&body(|v| v["order"]["items"][0]["visit_time"] = bad)).is_empty());
        }
        // Nor does a request with more items than a session may have (it could name thousands).
        let many = body(|v| {
            let item = v["order"]["items"][0].clone();
            v["order"]["items"] = Value::Array(vec![item; MAX_LINES + 1]);
        });
        assert!(slots(&many).is_empty());
    }

    fn check(req: &CreateSession) -> Result<Valid, String> {
        let cfg = Config::for_tests();
        let tariff = Tariff { prices: cfg.zoo.tariff.clone(), version: None, updated_at: None };
        validate(&cfg, Utc::now(), req, &tariff).map_err(|e| named(&e))
    }

    #[test]
    fn a_valid_session_is_priced_by_the_tariff() {
        let v = check(&body(|_| {})).unwrap();
        assert_eq!(v.total, dec!(2500.00));
        assert_eq!(v.methods, ["bank_card"]);
        assert_eq!(v.lines.iter().map(|l| l.quantity).sum::<i64>(), 3);
    }

    #[test]
    fn a_buyer_cannot_pick_the_price_or_the_total() {
        let cheap = body(|v| v["order"]["items"][0]["unit_price"]["value"] = json!("1.00"));
        assert!(check(&cheap).unwrap_err().contains("order.items[0].unit_price.value"));
        let short = body(|v| v["order"]["total_amount"]["value"] = json!("2000.00"));
        assert_eq!(check(&short).unwrap_err(), "order.total_amount.value");
        let dollars = body(|v| v["order"]["total_amount"]["currency"] = json!("USD"));
        assert_eq!(check(&dollars).unwrap_err(), "order.total_amount.currency");
        let unknown = body(|v| v["order"]["items"][1]["ticket_type"] = json!("vip"));
        assert!(check(&unknown).unwrap_err().contains("order.items[1].ticket_type"));
    }

    #[test]
    fn every_bad_field_is_named() {
        type Break = fn(&mut Value);
        let cases: [(Break, &str); 10] = [
            (|v| v["order"]["items"][0]["quantity"] = json!(0), "order.items[0].quantity"),
            (|v| v["order"]["items"][1]["ticket_type"] = json!(" "), "order.items[1].ticket_type"),
            (
                |v| v["order"]["items"][1]["unit_price"]["currency"] = json!("USD"),
                "order.items[1].unit_price.currency",
            ),
            (|v| v["order"]["items"][0]["visit_date"] = json!("2001-01-01"), "order.items[0].visit_date"),
            (|v| v["order"]["items"][0]["visit_time"] = json!("03:17"), "order.items[0].visit_time"),
            (|v| v["customer"]["email"] = json!("nobody"), "customer.email"),
            (|v| v["customer"]["phone"] = json!("12"), "customer.phone"),
            (|v| v["payment_methods"] = json!(["cash"]), "payment_methods[0]"),
            (|v| v["confirmation"]["type"] = json!("embedded"), "confirmation.type"),
            (|v| v["confirmation"]["return_url"] = json!("javascript:alert(1)"), "confirmation.return_url"),
        ];
        for (bad, field) in cases {
            let e = check(&body(bad)).err().unwrap_or_else(|| panic!("{field} passed"));
            assert!(e.split(',').any(|f| f == field), "{field}: {e}");
        }
        let none = body(|v| {
            v["order"].as_object_mut().unwrap().remove("items");
        });
        assert_eq!(check(&none).unwrap_err(), "order.items");
        let many = body(|v| v["order"]["items"][0]["quantity"] = json!(MAX_TICKETS + 1));
        assert!(check(&many).unwrap_err().contains("order.items[0].quantity"));
    }

    fn update(v: Value) -> UpdatePayment {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn put_needs_amount_and_description_and_patch_needs_something() {
        let e = check_update(&update(json!({"metadata": {}})), true).unwrap_err();
        assert_eq!(named(&e), "amount,description");
        let e = check_update(&update(json!({})), false).unwrap_err();
        assert_eq!(named(&e), "body");
        let amount = json!({"amount": {"value": "2500.00", "currency": "RUB"}});
        assert_eq!(check_update(&update(amount), false).unwrap(), Some(dec!(2500.00)));
        let zero = json!({"amount": {"value": "0.00", "currency": "RUB"}});
        assert_eq!(named(&check_update(&update(zero), false).unwrap_err()), "amount.value");
    }

    fn session() -> Session {
        let cfg = Config::for_tests();
        let tariff = Tariff { prices: cfg.zoo.tariff.clone(), version: None, updated_at: None };
        let req = body(|v| v["metadata"] = json!({"source": "site", "campaign": "x"}));
        let valid = validate(&cfg, Utc::now(), &req, &tariff).unwrap();
        let app = App::new(std::sync::Arc::new(crate::store::memory::MemoryStore::new()), cfg);
        let payment = draft_payment(&app, "user:u1", &req, &valid);
        assert_eq!(payment.amount, dec!(2500.00));
        draft_session("user:u1", &req, &valid, &payment, &[])
    }

    #[test]
    fn put_replaces_the_metadata_and_patch_merges_it() {
        let mut s = session();
        assert!(apply_metadata(json!({"campaign": null, "more": 1}).as_object().unwrap(), false, &mut s));
        assert_eq!(s.metadata.get("source"), Some(&json!("site")));
        assert_eq!((s.metadata.get("campaign"), s.metadata.get("more")), (None, Some(&json!(1))));
        assert!(apply_metadata(&Map::new(), true, &mut s));
        assert_eq!(s.metadata.get("source"), None, "PUT without metadata leaves none of the user's");
        assert_eq!(s.metadata.get("tickets_activated"), Some(&json!(false)), "system keys stay");
        assert!(!apply_metadata(&Map::new(), true, &mut s), "nothing more to change");
    }

    #[test]
    fn only_a_manager_sets_another_amount_and_says_why() {
        let now = Utc::now();
        let buyer = Claims::new("u1", chrono::Duration::hours(1));
        let mut manager = Claims::new("m1", chrono::Duration::hours(1));
        manager.roles = vec!["manager".into()];
        let mut s = session();
        let same = update(json!({}));
        assert!(
            !apply_amount(now, &buyer, &same, dec!(2500.00), &mut s).unwrap(),
            "the same amount is no change"
        );
        assert_eq!(named(&apply_amount(now, &buyer, &same, dec!(1.00), &mut s).unwrap_err()), "amount");
        assert_eq!(
            named(&apply_amount(now, &manager, &same, dec!(1.00), &mut s).unwrap_err()),
            "amount_reason"
        );
        let why = update(json!({"amount_reason": "a staff discount"}));
        assert!(apply_amount(now, &manager, &why, dec!(2000.00), &mut s).unwrap());
        assert_eq!(s.amount_due(), dec!(2000.00));
        let o = s.amount_override.as_ref().unwrap();
        assert_eq!((o.tariff_total, o.by.as_str()), (dec!(2500.00), "m1"));
    }
}
