//! Every email the backend sends, as types: one [`Message`] variant per template, its data a
//! struct built by the domain code that causes the email and rendered by the notifier from
//! that same type. No JSON keys are kept by hand on two sides: the producer fills the struct,
//! serde carries it over the queue, the notifier's templates read its fields (a template that
//! names a field the type lacks fails its render test).
//!
//! On the wire (the outbox item, the SQS body) a [`Notification`] is
//! `{"id": ..., "to": ..., "template": "<variant>", "data": {...}}`.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Roubles with two decimals, written as text (`"2500.00"`): what an email shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Rub(pub Decimal);

impl std::fmt::Display for Rub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::money::format(self.0))
    }
}

impl Serialize for Rub {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Rub {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Rub, D::Error> {
        let text = String::deserialize(d)?;
        crate::money::parse_strict(&text)
            .map(Rub)
            .ok_or_else(|| serde::de::Error::custom("money as \"0.00\""))
    }
}

impl From<Decimal> for Rub {
    fn from(d: Decimal) -> Rub {
        Rub(crate::money::round(d))
    }
}

/// One email: the business event that causes it (the de-duplication id: at most one email
/// per id), the recipient, and what it says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub id: String,
    pub to: String,
    #[serde(flatten)]
    pub message: Message,
    /// The API request that caused it (its `x-request-id`), for the notifier's log lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl Notification {
    pub fn new(id: impl Into<String>, to: impl Into<String>, message: Message) -> Notification {
        Notification { id: id.into(), to: to.into(), message, request_id: crate::telemetry::request_id() }
    }

    pub fn template(&self) -> &'static str {
        self.message.template()
    }

    /// The data as the template sees it.
    pub fn data(&self) -> serde_json::Value {
        match serde_json::to_value(&self.message) {
            Ok(serde_json::Value::Object(mut m)) => m.remove("data").unwrap_or_default(),
            _ => serde_json::Value::Null,
        }
    }
}

/// Every template and its data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "template", content = "data", rename_all = "snake_case")]
pub enum Message {
    /// A ticket order confirmed (cash at once, online when paid), to the buyer.
    TicketOrderBuyer(TicketOrderMail),
    /// The same order, to the box office.
    TicketOrderAdmin(TicketOrderMail),
    /// E-tickets of an `email_online` order: a QR image per ticket code.
    ETickets(TicketOrderMail),
    /// Zoo tickets of a paid session: a QR image per ticket code.
    ZooTickets(ZooTicketsMail),
    /// A deal moved, to the other party (both, for the system's moves).
    DealStateChanged(DealStateMail),
    /// A claim went to the arbiter, to both parties.
    DealEscalated(DealEscalatedMail),
    /// A party changed the terms, to the other party: old and new.
    DealTermsChanged(DealTermsMail),
    /// Money went back to the buyer.
    Refund(RefundMail),
    /// Money received that its owner did not take is being returned, to the buyer.
    PaymentReturned(PaymentNoticeMail),
    /// A payment's amount did not match, to the manager.
    PaymentMismatch(PaymentNoticeMail),
    /// A refund needs a person, to the manager.
    RefundManual(ManualRefundMail),
    /// A ticket order cancelled (unpaid at its deadline, or by the box office), to the buyer.
    TicketOrderCancelled(TicketOrderCancelledMail),
    /// Not an email: a partner webhook message, POSTed to the endpoint of the user `to` names
    /// (see `crate::webhooks`). The notifier delivers it instead of rendering it.
    Webhook(WebhookMessage),
}

/// A webhook message and where it stands in its retries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookMessage {
    /// `deal.state_changed`, ...
    pub kind: String,
    /// When the event happened (the message's `timestamp`, and the start of its 3 days of
    /// retries).
    #[serde(with = "crate::time::utc")]
    pub occurred_at: DateTime<Utc>,
    pub data: serde_json::Value,
    /// The attempt this queue message makes (1 first).
    #[serde(default = "first_attempt")]
    pub attempt: u32,
    /// A retry is not made before then (a wait longer than a queue delay takes several hops).
    #[serde(default, with = "crate::time::utc_opt")]
    pub not_before: Option<DateTime<Utc>>,
    /// Where to POST it instead of the owner's endpoint (a deal's `callback_url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

fn first_attempt() -> u32 {
    1
}

impl Message {
    pub const TEMPLATES: [&'static str; 12] = [
        "ticket_order_buyer",
        "ticket_order_admin",
        "e_tickets",
        "zoo_tickets",
        "deal_state_changed",
        "deal_escalated",
        "deal_terms_changed",
        "refund",
        "payment_returned",
        "payment_mismatch",
        "refund_manual",
        "ticket_order_cancelled",
    ];

    pub fn template(&self) -> &'static str {
        match self {
            Message::TicketOrderBuyer(_) => "ticket_order_buyer",
            Message::TicketOrderAdmin(_) => "ticket_order_admin",
            Message::ETickets(_) => "e_tickets",
            Message::ZooTickets(_) => "zoo_tickets",
            Message::DealStateChanged(_) => "deal_state_changed",
            Message::DealEscalated(_) => "deal_escalated",
            Message::DealTermsChanged(_) => "deal_terms_changed",
            Message::Refund(_) => "refund",
            Message::PaymentReturned(_) => "payment_returned",
            Message::PaymentMismatch(_) => "payment_mismatch",
            Message::RefundManual(_) => "refund_manual",
            Message::TicketOrderCancelled(_) => "ticket_order_cancelled",
            Message::Webhook(_) => "webhook",
        }
    }

    /// The codes to draw as QR images, in ticket order (e-tickets and zoo tickets).
    pub fn qr_codes(&self) -> Vec<&str> {
        match self {
            Message::ETickets(m) => m.tickets.iter().filter_map(|t| t.code.as_deref()).collect(),
            Message::ZooTickets(m) => m.tickets.iter().map(|t| t.code.as_str()).collect(),
            _ => Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventInfo {
    pub id: String,
    pub title: String,
    pub starts_at: DateTime<FixedOffset>,
    pub venue: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerInfo {
    pub name: String,
    pub email: String,
    pub phone: String,
    pub address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeatTicket {
    pub sector: String,
    pub row: String,
    pub seat: String,
    pub price: Rub,
    /// The bar code (EAN-13): printed, and drawn as a QR image in e-tickets. Only for a paid
    /// order (`null` while a cash order waits for its money).
    pub code: Option<String>,
    /// The bar code as a QR image on the web (with `code`).
    pub qr_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderTotals {
    pub tickets: Rub,
    pub commission: Rub,
    pub delivery: Rub,
    pub total: Rub,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketOrderMail {
    pub order_id: String,
    pub event: EventInfo,
    pub customer: CustomerInfo,
    /// `self_online`, `email_online`, `self_cash`, `courier_cash`.
    pub order_type: String,
    /// The order type in Russian.
    pub order_type_caption: String,
    pub tickets: Vec<SeatTicket>,
    pub totals: OrderTotals,
    /// Paid (online, or at the box office for a cash order); its tickets carry their codes.
    pub paid: bool,
    /// A cash order waiting for its money: pay by then (in the event's offset), else it is
    /// cancelled.
    pub pay_by: Option<DateTime<FixedOffset>>,
    pub order_url: String,
}

/// A cancelled ticket order: the order as it was, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketOrderCancelledMail {
    #[serde(flatten)]
    pub order: TicketOrderMail,
    /// Why, in Russian (shown to the buyer).
    pub reason: String,
    /// The event itself is cancelled (the buyer is not asked to order again).
    #[serde(default)]
    pub event_cancelled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZooTicket {
    pub ticket_id: String,
    pub ticket_type: String,
    pub visit_date: NaiveDate,
    pub visit_time: String,
    /// The signed QR payload, drawn as a QR image.
    pub code: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZooTicketsMail {
    pub payment_id: String,
    pub order_id: String,
    pub amount: Rub,
    /// The first visit (the subject's date and time).
    pub visit_date: NaiveDate,
    pub visit_time: String,
    pub tickets: Vec<ZooTicket>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DealStateMail {
    pub deal_id: i64,
    pub title: Option<String>,
    pub description: String,
    pub from_state: String,
    pub from_caption: String,
    pub to_state: String,
    pub to_caption: String,
    /// Who moved it: `supplier`, `consumer`, `manager`, `system`.
    pub actor: String,
    pub actor_caption: String,
    pub cost: Rub,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DealEscalatedMail {
    pub deal_id: i64,
    pub title: Option<String>,
    pub description: String,
    pub claim_reason: String,
    pub claim_description: Option<String>,
    pub claim_date: DateTime<FixedOffset>,
    pub cost: Rub,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DealTerms {
    pub cost: Rub,
    pub commission_payer: String,
    pub commission: Rub,
    pub consumer_pay: Rub,
    pub supplier_receive: Rub,
    pub verify_days: i64,
    pub supply_days: Option<i64>,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DealTermsMail {
    pub deal_id: i64,
    pub title: Option<String>,
    pub actor: String,
    pub actor_caption: String,
    pub old: DealTerms,
    pub new: DealTerms,
    /// The deal's open payment links were cancelled by the change.
    pub payments_cancelled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefundMail {
    /// What was refunded: `Заказ №…`, `Оплата №…`.
    pub subject: String,
    pub customer_name: Option<String>,
    pub amount: Rub,
    pub reason: String,
    /// Refunded in all so far, of the total paid.
    pub refunded: Rub,
    pub total: Rub,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentNoticeMail {
    pub payment_id: String,
    pub description: String,
    /// `amount_mismatch` or `late_payment`.
    pub kind: String,
    pub received: Rub,
    pub currency: String,
    pub amount: Rub,
    pub expected: Option<Rub>,
    pub owner_kind: String,
    pub owner_id: String,
    pub gateway: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManualRefundMail {
    pub payment_id: String,
    pub refund_id: String,
    pub description: String,
    pub amount: Rub,
    pub gateway: String,
    pub reason: String,
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn travels_as_template_and_data() {
        let n = Notification::new(
            "refund-1",
            "buyer@example.com",
            Message::Refund(RefundMail {
                subject: "Заказ №1".into(),
                customer_name: None,
                amount: Rub(Decimal::new(15050, 2)),
                reason: "late".into(),
                refunded: Rub(Decimal::new(15050, 2)),
                total: Rub(Decimal::new(30000, 2)),
            }),
        );
        let json = serde_json::to_value(&n).unwrap();
        assert_eq!(json["template"], "refund");
        assert_eq!(json["data"]["amount"], "150.50");
        assert_eq!(serde_json::from_value::<Notification>(json).unwrap(), n);
        let bad = serde_json::json!({"id": "x", "to": "a@b.c", "template": "nope", "data": {}});
        assert!(serde_json::from_value::<Notification>(bad).is_err());
    }
}
