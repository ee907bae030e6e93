//! Order types, the buyer's details and the totals of an order.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::Config;
use crate::error::{ApiError, ApiResult};
use crate::money;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderType {
    /// Paid online, tickets collected at the box office.
    SelfOnline,
    /// Paid online, e-tickets by email.
    EmailOnline,
    /// Paid at the box office.
    SelfCash,
    /// Delivered by a courier, paid on delivery.
    CourierCash,
}

impl OrderType {
    pub fn online(self) -> bool {
        matches!(self, OrderType::SelfOnline | OrderType::EmailOnline)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OrderType::SelfOnline => "self_online",
            OrderType::EmailOnline => "email_online",
            OrderType::SelfCash => "self_cash",
            OrderType::CourierCash => "courier_cash",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Customer {
    pub name: String,
    pub email: String,
    pub phone: String,
    #[serde(default)]
    pub address: Option<String>,
}

fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else { return false };
    e.len() <= 254
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// `+7 (999) 123-45-67`, `89991234567`: 10 to 15 digits, an optional leading `+`, and
/// spaces, dashes and parentheses between.
pub(crate) fn normalized_phone(p: &str) -> Option<String> {
    let rest = p.strip_prefix('+').unwrap_or(p);
    if !rest.chars().all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '(' | ')')) {
        return None;
    }
    let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
    (10..=15).contains(&digits.len()).then(|| if p.starts_with('+') { format!("+{digits}") } else { digits })
}

/// Checks and normalizes the buyer's details for an order type (422 naming the field).
pub fn validate_customer(order_type: OrderType, c: Customer) -> ApiResult<Customer> {
    let name = c.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::invalid("customer.name", "a name of 1 to 200 characters is required"));
    }
    let email = c.email.trim().to_owned();
    if !valid_email(&email) {
        return Err(ApiError::invalid("customer.email", "not a valid email address"));
    }
    let phone = normalized_phone(c.phone.trim())
        .ok_or_else(|| ApiError::invalid("customer.phone", "not a valid phone number (10 to 15 digits)"))?;
    let address = c.address.map(|a| a.trim().to_owned()).filter(|a| !a.is_empty());
    if order_type == OrderType::CourierCash && address.is_none() {
        return Err(ApiError::invalid("customer.address", "an address is required for courier delivery"));
    }
    if address.as_ref().is_some_and(|a| a.chars().count() > 500) {
        return Err(ApiError::invalid("customer.address", "at most 500 characters"));
    }
    Ok(Customer { name, email, phone, address })
}

/// Totals as stored (decimals as strings: never through a float).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Sum of the ticket prices.
    pub tickets: Decimal,
    /// Online payment commission.
    pub commission: Decimal,
    /// Courier delivery.
    pub delivery: Decimal,
    pub total: Decimal,
}

/// Totals as answered: JSON numbers with two decimals.
#[derive(Debug, Clone, Serialize)]
pub struct TotalsView {
    #[serde(with = "money::number")]
    pub tickets: Decimal,
    #[serde(with = "money::number")]
    pub commission: Decimal,
    #[serde(with = "money::number")]
    pub delivery: Decimal,
    #[serde(with = "money::number")]
    pub total: Decimal,
}

impl Totals {
    pub fn view(&self) -> TotalsView {
        TotalsView {
            tickets: self.tickets,
            commission: self.commission,
            delivery: self.delivery,
            total: self.total,
        }
    }
}

/// Totals for ticket prices and an order type (none chosen yet: tickets only).
pub fn compute(config: &Config, order_type: Option<OrderType>, prices: &[Decimal]) -> Totals {
    let tickets = money::round(prices.iter().copied().sum());
    let commission = match order_type {
        Some(t) if t.online() => money::percent_of(tickets, config.online_commission),
        _ => money::round(Decimal::ZERO),
    };
    let delivery = match order_type {
        Some(OrderType::CourierCash) => money::round(config.courier_price),
        _ => money::round(Decimal::ZERO),
    };
    Totals { tickets, commission, delivery, total: money::round(tickets + commission + delivery) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn totals_by_order_type() {
        let mut config = Config::for_tests();
        config.online_commission = dec!(3.5);
        config.courier_price = dec!(300);
        let prices = [dec!(2500.00), dec!(1200.00), dec!(0.15)];
        let t = compute(&config, Some(OrderType::EmailOnline), &prices);
        assert_eq!(
            (t.tickets, t.commission, t.delivery, t.total),
            (dec!(3700.15), dec!(129.51), dec!(0), dec!(3829.66))
        );
        let t = compute(&config, Some(OrderType::CourierCash), &prices);
        assert_eq!((t.commission, t.delivery, t.total), (dec!(0), dec!(300.00), dec!(4000.15)));
        let t = compute(&config, Some(OrderType::SelfCash), &prices);
        assert_eq!(t.total, dec!(3700.15));
        let json = serde_json::to_string(&t.view()).unwrap();
        assert_eq!(json, r#"{"tickets":3700.15,"commission":0.00,"delivery":0.00,"total":3700.15}"#);
    }

    #[test]
    fn customer_fields_are_checked() {
        let c = |email: &str, phone: &str, address: Option<&str>| Customer {
            name: " Иван ".into(),
            email: email.into(),
            phone: phone.into(),
            address: address.map(Into::into),
        };
        let ok = validate_customer(OrderType::SelfCash, c("a@b.ru", "+7 (999) 123-45-67", None)).unwrap();
        assert_eq!((ok.name.as_str(), ok.phone.as_str()), ("Иван", "+79991234567"));
        let field = |r: ApiResult<Customer>| r.unwrap_err().field().unwrap().to_owned();
        assert_eq!(
            field(validate_customer(OrderType::SelfCash, c("a@b", "89991234567", None))),
            "customer.email"
        );
        assert_eq!(
            field(validate_customer(OrderType::SelfCash, c("a@b.ru", "12-34", None))),
            "customer.phone"
        );
        assert_eq!(
            field(validate_customer(OrderType::SelfCash, c("a@b.ru", "8999abc4567", None))),
            "customer.phone"
        );
        assert_eq!(
            field(validate_customer(OrderType::CourierCash, c("a@b.ru", "89991234567", Some("  ")))),
            "customer.address"
        );
    }
}
