//! The zoo's tariff: ticket types and their unit prices, and the visit times. A session's
//! prices and times must match them (422 naming the item's field otherwise), and its amount
//! is the tariff total of its items, so what a buyer pays is what the zoo charges.
//!
//! The default tariff comes from `ZOO_TARIFF`; an admin may replace it (`PUT /v1/tariff`),
//! which stores it in the table (`pk = zoo#tariff`, `sk = tariff`, versioned) and wins over
//! the default from then on. Visit times come from `ZOO_VISIT_TIMES`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::App;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::money;
use crate::store::{Cond, Item};

const PK: &str = "zoo#tariff";
const SK: &str = "tariff";

/// The prices in force.
#[derive(Debug, Clone, PartialEq)]
pub struct Tariff {
    pub prices: BTreeMap<String, Decimal>,
    /// The stored item's version; `None` while the configured default is in force.
    pub version: Option<u64>,
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Serialize, Deserialize)]
struct Stored {
    prices: BTreeMap<String, String>,
    updated_by: String,
    #[serde(with = "crate::time::utc")]
    updated_at: DateTime<Utc>,
}

/// The tariff in force: the stored one, else the configured default.
pub async fn current(app: &App) -> ApiResult<Tariff> {
    match app.store.get(PK, SK).await? {
        Some(item) => {
            let s: Stored = item.decode()?;
            let prices = s
                .prices
                .iter()
                .map(|(k, v)| {
                    money::parse_strict(v)
                        .map(|p| (k.clone(), p))
                        .ok_or_else(|| ApiError::Internal(format!("stored tariff price {v:?}")))
                })
                .collect::<ApiResult<_>>()?;
            Ok(Tariff { prices, version: Some(item.version), updated_at: Some(s.updated_at) })
        }
        None => Ok(Tariff { prices: app.config.zoo.tariff.clone(), version: None, updated_at: None }),
    }
}

/// `PUT /v1/tariff`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TariffIn {
    pub ticket_types: Vec<TicketTypeIn>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketTypeIn {
    pub ticket_type: String,
    pub unit_price: super::MoneyIn,
}

fn parse(req: &TariffIn) -> ApiResult<BTreeMap<String, Decimal>> {
    let mut errors = Vec::new();
    let mut add = |field: String, message: &str| errors.push(FieldError { field, message: message.into() });
    let mut prices = BTreeMap::new();
    if req.ticket_types.is_empty() || req.ticket_types.len() > 20 {
        add("ticket_types".into(), "1 to 20 ticket types");
    }
    for (i, t) in req.ticket_types.iter().enumerate() {
        let f = format!("ticket_types[{i}]");
        let kind = t.ticket_type.trim();
        if kind.is_empty() || kind.chars().count() > 64 {
            add(format!("{f}.ticket_type"), "a ticket type of 1 to 64 characters");
        }
        if t.unit_price.currency != "RUB" {
            add(format!("{f}.unit_price.currency"), "currency must be RUB");
        }
        match money::parse_strict(&t.unit_price.value).filter(|p| *p > Decimal::ZERO) {
            Some(p) => {
                if prices.insert(kind.to_owned(), p).is_some() {
                    add(format!("{f}.ticket_type"), "each ticket type once");
                }
            }
            None => add(
                format!("{f}.unit_price.value"),
                "a positive amount with exactly two decimals, like \"1000.00\"",
            ),
        }
    }
    if errors.is_empty() { Ok(prices) } else { Err(ApiError::Validation(errors)) }
}

/// Replaces the tariff (admin). Conditional on the version read, so two admins cannot
/// silently overwrite each other: the second gets 409.
pub async fn set(app: &App, req: &TariffIn, by: &str) -> ApiResult<Tariff> {
    let prices = parse(req)?;
    let now = app.clock.now();
    let before = current(app).await?;
    let stored = Stored {
        prices: prices.iter().map(|(k, v)| (k.clone(), money::format(*v))).collect(),
        updated_by: by.to_owned(),
        updated_at: now,
    };
    let (version, cond) = match before.version {
        Some(v) => (v + 1, Cond::Version(v)),
        None => (1, Cond::NotExists),
    };
    app.store.put(Item::typed(PK, SK, stored)?.with_version(version), cond).await?;
    tracing::info!(by, types = prices.len(), "zoo tariff replaced");
    Ok(Tariff { prices, version: Some(version), updated_at: Some(now) })
}

/// The tariff as the API shows it.
pub fn view(app: &App, t: &Tariff) -> Value {
    json!({
        "currency": "RUB",
        "ticket_types": t.prices.iter().map(|(k, v)| json!({
            "ticket_type": k,
            "unit_price": { "value": money::format(*v), "currency": "RUB" },
        })).collect::<Vec<_>>(),
        "visit_times": app.config.zoo.visit_times,
        "updated_at": t.updated_at.map(crate::payments::ts),
    })
}
