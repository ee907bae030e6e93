//! The deal record as stored.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::commission::{CommissionTable, Payer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Pending,
    Approved,
    PaymentVerification,
    Paid,
    Shipping,
    Received,
    Rejected,
    Escalation,
    AwaitReturning,
    Returned,
    PayoutInitiated,
    Done,
    Cancelled,
}

impl State {
    pub const ALL: [State; 13] = [
        State::Pending,
        State::Approved,
        State::PaymentVerification,
        State::Paid,
        State::Shipping,
        State::Received,
        State::Rejected,
        State::Escalation,
        State::AwaitReturning,
        State::Returned,
        State::PayoutInitiated,
        State::Done,
        State::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Approved => "approved",
            State::PaymentVerification => "payment_verification",
            State::Paid => "paid",
            State::Shipping => "shipping",
            State::Received => "received",
            State::Rejected => "rejected",
            State::Escalation => "escalation",
            State::AwaitReturning => "await_returning",
            State::Returned => "returned",
            State::PayoutInitiated => "payout_initiated",
            State::Done => "done",
            State::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// The caller's part in a deal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Supplier,
    Consumer,
    /// A user with the `manager` role (the escrow operator's staff).
    Manager,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Supplier => "supplier",
            Role::Consumer => "consumer",
            Role::Manager => "manager",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    pub id: String,
    pub name: String,
    pub content_type: String,
    pub size: usize,
}

/// A bank-invoice payment (`POST /orders/:id/payment`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvoicePayment {
    pub id: i64,
    pub name: String,
    pub payment_method: String,
    pub info: Option<Value>,
    #[serde(with = "crate::time::utc")]
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    pub reason: String,
    pub description: Option<String>,
    #[serde(with = "crate::time::utc")]
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeType {
    ProlongProtection,
    ChangeConditions,
    PurchaseReturn,
}

impl ChangeType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::ProlongProtection => "prolong_protection",
            ChangeType::ChangeConditions => "change_conditions",
            ChangeType::PurchaseReturn => "purchase_return",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeStatus {
    Requested,
    Confirmed,
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderChange {
    pub id: i64,
    pub change_type: ChangeType,
    pub status: ChangeStatus,
    pub requested_by: Role,
    pub new_cost: Option<Decimal>,
    #[serde(default, with = "crate::time::utc_opt")]
    pub prolong_protection_to: Option<DateTime<Utc>>,
    #[serde(with = "crate::time::utc")]
    pub created_at: DateTime<Utc>,
    #[serde(default, with = "crate::time::utc_opt")]
    pub resolved_at: Option<DateTime<Utc>>,
}

/// One entry of the deal's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub from: State,
    pub to: State,
    /// `supplier`, `consumer`, `manager`, `system` or `gateway`.
    pub by: String,
    #[serde(with = "crate::time::utc")]
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deal {
    pub id: i64,
    pub state: State,
    pub title: Option<String>,
    pub order_description: String,
    pub supply_description: Option<String>,
    pub cost: Decimal,
    pub supply_cost: Option<Decimal>,
    pub supply_days: Option<i64>,
    pub verify_days: i64,
    pub commission_payer: Payer,
    /// Frozen at creation and on every cost change, so a later tier change does not alter it.
    pub commission: Decimal,
    pub commission_percent: Decimal,
    pub consumer_pay: Decimal,
    pub supplier_receive: Decimal,
    pub pay_back: Decimal,
    pub changed_cost: Option<Decimal>,
    pub owner_id: String,
    pub supplier_id: String,
    pub consumer_id: Option<String>,
    pub client_data: Option<Value>,
    pub attachments: Vec<Attachment>,
    pub supplier_billing_info: Option<Value>,
    pub consumer_billing_info: Option<Value>,
    pub shipping_info: Option<Value>,
    pub payment: Option<InvoicePayment>,
    /// Set when an online gateway payment has started or was confirmed.
    pub gateway_payment: Option<String>,
    pub claim: Option<Claim>,
    pub changes: Vec<OrderChange>,
    #[serde(default, with = "crate::time::utc_opt")]
    pub end_of_protection: Option<DateTime<Utc>>,
    #[serde(default, with = "crate::time::utc_opt")]
    pub escalation_date: Option<DateTime<Utc>>,
    pub manager_comment: Option<String>,
    pub history: Vec<HistoryEntry>,
    /// The parties' email addresses as last known (user id → address): from their profiles
    /// when the deal is created and whenever a move had to read them, from a party's own token
    /// whenever they change the deal. A move's emails need no profile read while the deal
    /// knows its parties' addresses.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub contacts: BTreeMap<String, String>,
    /// Where the deal's webhook messages also go (https), set by a party at create or PATCH,
    /// and that party (whose secret signs them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_owner: Option<String>,
    /// The consumer set the terms as they are now (changed them with `PATCH` since the
    /// supplier last did): the supplier then approves them before the deal takes a payment,
    /// even when the supplier created it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub terms_by_consumer: bool,
    #[serde(with = "crate::time::utc")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::time::utc")]
    pub updated_at: DateTime<Utc>,
}

impl Deal {
    /// Records the address of a party who is changing the deal, from their token.
    pub fn acted_by(&mut self, who: &crate::auth::Claims) {
        if let Some(email) = who.email.as_ref().filter(|e| !e.is_empty())
            && self.role_of(&who.sub).is_some()
        {
            self.contacts.insert(who.sub.clone(), email.clone());
        }
    }

    /// Recomputes the commission figures from the cost and payer.
    pub fn reprice(&mut self, table: &CommissionTable) {
        let b = table.compute(self.cost, self.commission_payer);
        self.commission = b.commission;
        self.commission_percent = b.percent;
        self.consumer_pay = b.consumer_pay;
        self.supplier_receive = b.supplier_receive;
    }

    pub fn role_of(&self, user: &str) -> Option<Role> {
        if self.supplier_id == user {
            Some(Role::Supplier)
        } else if self.consumer_id.as_deref() == Some(user) {
            Some(Role::Consumer)
        } else {
            None
        }
    }

    /// The open (requested, not yet answered) change, if any.
    pub fn requested_change(&self) -> Option<&OrderChange> {
        self.changes.iter().find(|c| c.status == ChangeStatus::Requested)
    }

    pub fn owner_is_supplier(&self) -> bool {
        self.owner_id == self.supplier_id
    }

    /// Whether a pending deal waits for the supplier's approval (`pending → approved`) before
    /// it takes a payment: the consumer created it, or set its terms since. Otherwise the
    /// supplier set the terms, and the consumer confirms them by paying.
    pub fn awaits_supplier(&self) -> bool {
        !self.owner_is_supplier() || self.terms_by_consumer
    }

    /// The terms a party agrees to (what `PATCH` changes while pending, but the consumer):
    /// the same in both.
    pub fn same_terms(&self, other: &Deal) -> bool {
        self.order_description == other.order_description
            && self.title == other.title
            && self.cost == other.cost
            && self.commission_payer == other.commission_payer
            && self.verify_days == other.verify_days
            && self.supply_cost == other.supply_cost
            && self.supply_description == other.supply_description
            && self.supply_days == other.supply_days
            && self.client_data == other.client_data
    }

    /// Whether the consumer can pay now: the deal is approved (or pending with terms the
    /// supplier set: paying is how the consumer confirms them), or waits for its payment, and
    /// has a consumer. Payment links are offered, and card payments taken, only then.
    pub fn payable(&self) -> bool {
        let state = match self.state {
            State::Approved | State::PaymentVerification => true,
            State::Pending => !self.awaits_supplier(),
            _ => false,
        };
        state && self.consumer_id.is_some()
    }

    /// The user id of the other party, if there is one.
    pub fn other_party(&self, role: Role) -> Option<&str> {
        match role {
            Role::Supplier => self.consumer_id.as_deref(),
            Role::Consumer => Some(&self.supplier_id),
            Role::Manager => None,
        }
    }
}
