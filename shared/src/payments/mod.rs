//! One payment model shared by every payment owner (escrow deals, ticket orders, zoo sessions).
//!
//! A [`Payment`] is one item (`pk = payment#<id>`, `sk = payment`) whose status moves
//! `pending → processing → succeeded | failed | canceled`, and `succeeded → refunded`; every
//! move is a conditional write on the item's version, so of two racing writers (a gateway
//! callback and the reconciliation job, or the same callback delivered twice) exactly one wins.
//!
//! This module names no owner. An owner is addressed by an [`OwnerRef`] (`kind` and `id`) and
//! plugs in through the [`owner::PaymentOwner`] port, registered where the [`App`] is built:
//! it says what it expects the payment to bring now, gives the writes that settle it (in the
//! same transaction as the payment's own), and takes the idempotent step after it (emails).
//!
//! The money rules, applied by [`settle`] on every path that can finish a payment (callbacks,
//! browser returns, the reconciliation job):
//! - **Amount rule.** A success counts only if the gateway's amount and currency equal the
//!   payment's, and the payment's amount equals what its owner expects at that moment. A
//!   mismatch never advances the owner: the payment is recorded as `succeeded` with the
//!   mismatch ([`Anomaly`]), the owner is settled as unpaid, the money received is refunded
//!   through the gateway, and the manager is emailed.
//! - **Late payments.** A success for a payment already `canceled` or `failed` (declined,
//!   expired, or cancelled because the terms changed) keeps its status, is recorded as a late
//!   payment, refunded, and the buyer is emailed.
//! - **Refunds** ([`refunds`]) never pass what was paid; one whose gateway outcome is unknown
//!   stays pending and the reconciliation job finishes it, never undone and retried blindly;
//!   one the gateway cannot make is queued for a person, with an alarm.
//!
//! The settling transaction also writes a dispatch marker (`pk = payment-dispatch#<id>`,
//! listed under `payments#dispatch#<shard>`), removed once the owner's after-step (its
//! emails) and the refund of an anomaly have run. A settlement that stopped in between is
//! finished by whoever comes next: the gateway's repeated callback, the buyer's browser
//! return, or the reconciliation job.
//!
//! Open payments are listed in the secondary index under `payments#open#<shard>` (four
//! shards) sorted by `expires_at`; the reconciliation job ([`reconcile`], seed 000's
//! `ps_checkup`) reads them, asks the gateway, and settles through the same [`settle`].
//!
//! Every payment also gets a numeric `inv_id` (gateways such as Robokassa need an integer
//! invoice number); an item `pk = payment-inv#<n>` maps it back to the payment id.

pub mod gateway;
pub mod gateways;
pub mod notices;
pub mod owner;
pub mod reconcile;
pub mod refunds;
pub mod settle;

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::App;
use crate::error::{ApiError, ApiResult};
use crate::store::{Cond, Item, StoreError, WriteOp};

pub use gateway::{CallbackEvent, Gateway, Redirect, Remote};
pub use owner::{OwnerRef, Owners, PaymentOwner, Settlement};
pub use reconcile::reconcile;
pub use settle::{Outcome, Settled, apply_callback, check_with_gateway, finish_dispatch, settle};

pub const SK_PAYMENT: &str = "payment";
/// Shards of the open-payments index partition.
pub const OPEN_SHARDS: u32 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Processing,
    Succeeded,
    Failed,
    Canceled,
    Refunded,
}

impl Status {
    pub fn is_open(self) -> bool {
        matches!(self, Status::Pending | Status::Processing)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Processing => "processing",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Canceled => "canceled",
            Status::Refunded => "refunded",
        }
    }

    /// The state machine.
    pub fn can_move_to(self, to: Status) -> bool {
        use Status::*;
        matches!(
            (self, to),
            (Pending, Processing)
                | (Pending | Processing, Succeeded | Failed | Canceled)
                | (Succeeded, Refunded)
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GatewayKind {
    Sandbox,
    Robokassa,
    Mandarin,
    Sngb,
}

impl GatewayKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GatewayKind::Sandbox => "sandbox",
            GatewayKind::Robokassa => "robokassa",
            GatewayKind::Mandarin => "mandarin",
            GatewayKind::Sngb => "sngb",
        }
    }
}

impl std::str::FromStr for GatewayKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sandbox" => Ok(GatewayKind::Sandbox),
            "robokassa" => Ok(GatewayKind::Robokassa),
            "mandarin" => Ok(GatewayKind::Mandarin),
            "sngb" => Ok(GatewayKind::Sngb),
            other => Err(format!("unknown gateway {other:?}")),
        }
    }
}

/// Money that reached the merchant without paying for what its owner expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// The gateway's amount or currency differs from the payment's, or the payment's amount
    /// from what its owner expected.
    AmountMismatch,
    /// A success for a payment already canceled or failed.
    LatePayment,
}

impl AnomalyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::AmountMismatch => "amount_mismatch",
            AnomalyKind::LatePayment => "late_payment",
        }
    }
}

/// What was received that the owner did not take, and the refund that returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    pub kind: AnomalyKind,
    #[serde(with = "rust_decimal::serde::str")]
    pub received: Decimal,
    pub currency: String,
    /// What the owner expected at that moment (`None`: it took no payment any more).
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub expected: Option<Decimal>,
    #[serde(with = "crate::time::utc")]
    pub at: DateTime<Utc>,
    /// The refund that returns the money (see [`refunds`]).
    pub refund_id: String,
}

/// An earlier registration of a payment with its gateway: the page made for another amount
/// before a manager's discount registered the payment again. The gateway may keep that page
/// payable; money paid there is then this payment's, for the amount of that page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    #[serde(default)]
    pub gateway_ref: Option<String>,
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    pub id: String,
    /// Numeric invoice number, unique, for gateways that need an integer.
    pub inv_id: i64,
    /// The user (JWT `sub`) the payment belongs to.
    pub owner: String,
    /// What the payment pays for.
    pub purpose: OwnerRef,
    pub gateway: GatewayKind,
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub refunded_amount: Decimal,
    /// Refunds asked of the gateway and not finished yet: `refunded_amount + refunding`
    /// never passes what was received.
    #[serde(default, with = "rust_decimal::serde::str")]
    pub refunding: Decimal,
    pub currency: String,
    pub status: Status,
    pub description: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub return_url: Option<String>,
    #[serde(default)]
    pub cancel_url: Option<String>,
    /// Where the buyer pays (the gateway's page).
    #[serde(default)]
    pub confirmation_url: Option<String>,
    /// The gateway's own id for the payment, when it has one.
    #[serde(default)]
    pub gateway_ref: Option<String>,
    /// Its earlier registrations, oldest first (see [`Registration`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier: Vec<Registration>,
    #[serde(default)]
    pub payment_method: Option<String>,
    #[serde(default)]
    pub failure_reason: Option<String>,
    /// Money received that the owner did not take (and its refund).
    #[serde(default)]
    pub anomaly: Option<Anomaly>,
    #[serde(with = "crate::time::utc")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::time::utc")]
    pub updated_at: DateTime<Utc>,
    #[serde(with = "crate::time::utc")]
    pub expires_at: DateTime<Utc>,
    #[serde(default, with = "crate::time::utc_opt")]
    pub captured_at: Option<DateTime<Utc>>,
    #[serde(default, with = "crate::time::utc_opt")]
    pub settled_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub version: u64,
}

pub fn pk(id: &str) -> String {
    ["payment#", id].concat()
}

fn inv_pk(inv_id: i64) -> String {
    format!("payment-inv#{inv_id}")
}

/// RFC 3339 with a `Z`, fixed width, so that it sorts as text.
pub fn ts(t: DateTime<Utc>) -> String {
    crate::time::seconds(t)
}

/// One of `OPEN_SHARDS` index partitions, by a hash of the id.
pub fn shard(id: &str) -> u32 {
    id.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32)) % OPEN_SHARDS
}

/// A random invoice number with ten digits.
pub fn new_inv_id() -> i64 {
    rand::rng().random_range(1_000_000_000..10_000_000_000i64)
}

impl Payment {
    /// A new pending payment expiring after the configured timeout.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        app: &App,
        id: String,
        inv_id: i64,
        owner: String,
        purpose: OwnerRef,
        gateway: GatewayKind,
        amount: Decimal,
        description: String,
    ) -> Payment {
        let now = app.clock.now();
        let timeout = chrono::Duration::from_std(app.config.payments.timeout).unwrap_or_default();
        Payment {
            id,
            inv_id,
            owner,
            purpose,
            gateway,
            amount: crate::money::round(amount),
            refunded_amount: crate::money::round(Decimal::ZERO),
            refunding: crate::money::round(Decimal::ZERO),
            currency: "RUB".into(),
            status: Status::Pending,
            description,
            email: None,
            return_url: None,
            cancel_url: None,
            confirmation_url: None,
            gateway_ref: None,
            earlier: Vec::new(),
            payment_method: None,
            failure_reason: None,
            anomaly: None,
            created_at: now,
            updated_at: now,
            expires_at: now + timeout,
            captured_at: None,
            settled_at: None,
            version: 1,
        }
    }

    pub fn to_item(&self) -> Result<Item, StoreError> {
        let mut item = Item::typed(pk(&self.id), SK_PAYMENT, self.clone())?.with_version(self.version);
        if self.status.is_open() {
            item = item.with_gsi1(
                ["payments#open#", itoa::Buffer::new().format(shard(&self.id))].concat(),
                [&ts(self.expires_at), "#", &self.id].concat(),
            );
        }
        Ok(item)
    }

    pub fn from_item(item: &Item) -> Result<Payment, StoreError> {
        let mut p: Payment = item.decode()?;
        p.version = item.version;
        Ok(p)
    }

    /// The same payment as the next version (for a conditional write on `self.version`).
    pub fn next(&self, app: &App) -> Payment {
        Payment { version: self.version + 1, updated_at: app.clock.now(), ..self.clone() }
    }

    /// The conditional write of this payment (`self` is the next version).
    pub fn write(&self) -> Result<WriteOp, StoreError> {
        Ok(WriteOp::Put { item: self.to_item()?, cond: Cond::Version(self.version - 1) })
    }

    /// Paid and taken by its owner: succeeded (or since refunded) with no anomaly.
    pub fn delivered(&self) -> bool {
        matches!(self.status, Status::Succeeded | Status::Refunded) && self.anomaly.is_none()
    }

    /// The page where the buyer pays, while the payment can still be paid.
    pub fn payable_url(&self) -> Option<&str> {
        self.confirmation_url.as_deref().filter(|_| self.status.is_open())
    }

    /// What is left to refund of what was received (refunds under way count as made).
    pub fn refundable(&self) -> Decimal {
        let received = match (&self.anomaly, self.status) {
            (Some(a), _) => a.received,
            (None, Status::Succeeded | Status::Refunded) => self.amount,
            _ => Decimal::ZERO,
        };
        (received - self.refunded_amount - self.refunding).max(Decimal::ZERO)
    }
}

/// Writes that create a payment: the payment item and its invoice-number lookup item.
pub fn create_ops(p: &Payment) -> ApiResult<Vec<WriteOp>> {
    let pointer = InvPointer { payment_id: p.id.clone() };
    Ok(vec![
        WriteOp::Put { item: p.to_item()?, cond: Cond::NotExists },
        WriteOp::Put { item: Item::typed(inv_pk(p.inv_id), "inv", pointer)?, cond: Cond::NotExists },
    ])
}

/// The lookup item from an invoice number to its payment (a fence, see [`fence`], holds
/// `fenced` instead).
#[derive(Clone, Serialize, Deserialize)]
struct InvPointer {
    payment_id: String,
}

/// After a create whose outcome is unknown (a timeout) and a read that did not find it: makes
/// sure the create can no longer land later (a request still in flight when its caller gave
/// up) by taking its lookup key first. `Ok(false)`: fenced, it never will; `Ok(true)`: it
/// landed meanwhile, the payment exists. The fence expires with a day.
pub async fn fence(app: &App, p: &Payment) -> ApiResult<bool> {
    let mut data = serde_json::Map::new();
    data.insert("fenced".into(), json!(p.id));
    let ttl = (app.clock.now() + chrono::Duration::days(1)).timestamp();
    let tombstone = Item::new(inv_pk(p.inv_id), "inv", data).with_ttl(Some(ttl));
    match app.store.put(tombstone, Cond::NotExists).await {
        Ok(()) => Ok(false),
        Err(StoreError::Conflict { .. }) => Ok(load(app, &p.id).await?.is_some()),
        Err(e) => Err(e.into()),
    }
}

/// The write that cancels an open payment its owner no longer takes (the owner makes it in
/// its own transaction, e.g. a deal whose terms changed). A success that still arrives for it
/// is a late payment: recorded and refunded.
pub fn cancel_op(app: &App, p: &Payment, reason: &str) -> ApiResult<WriteOp> {
    let mut next = p.next(app);
    next.status = Status::Canceled;
    next.failure_reason = Some(reason.to_owned());
    next.settled_at = Some(next.updated_at);
    Ok(next.write()?)
}

/// Registers a payment with its gateway (which gives the buyer's payment page) and fills in
/// the page and the gateway's reference.
pub async fn register(app: &App, p: &mut Payment) -> ApiResult<()> {
    let redirect = gateways::for_kind(app, p.gateway)?.create(app, p).await?;
    p.confirmation_url = Some(redirect.url);
    p.gateway_ref = redirect.gateway_ref;
    Ok(())
}

/// Registers `next` (the payment `was`, its amount changed) with its gateway again, keeping
/// the registration it replaces among its earlier ones when the gateway made a page of its own
/// for it (SNGB's `PaymentID`, Mandarin's transaction): that page may still be paid.
pub async fn register_again(app: &App, was: &Payment, next: &mut Payment) -> ApiResult<()> {
    register(app, next).await?;
    if was.gateway_ref.is_some() && was.gateway_ref != next.gateway_ref {
        next.earlier.push(Registration { gateway_ref: was.gateway_ref.clone(), amount: was.amount });
    }
    Ok(())
}

/// Opens a payment: registers it with its gateway, then writes it together with `extra`
/// writes of the owner, all or nothing.
pub async fn open(app: &App, mut p: Payment, extra: Vec<WriteOp>) -> ApiResult<Payment> {
    register(app, &mut p).await?;
    let mut ops = create_ops(&p)?;
    ops.extend(extra);
    app.store.transact(ops).await?;
    Ok(p)
}

pub async fn load(app: &App, id: &str) -> ApiResult<Option<Payment>> {
    match app.store.get(&pk(id), SK_PAYMENT).await? {
        Some(item) => Ok(Some(Payment::from_item(&item)?)),
        None => Ok(None),
    }
}

/// The payment, or 404.
pub async fn get(app: &App, id: &str) -> ApiResult<Payment> {
    load(app, id).await?.ok_or_else(|| ApiError::NotFound("payment".into()))
}

/// The payment with this invoice number.
pub async fn load_by_inv(app: &App, inv_id: i64) -> ApiResult<Option<Payment>> {
    let Some(item) = app.store.get(&inv_pk(inv_id), "inv").await? else { return Ok(None) };
    match item.data.get("payment_id").and_then(|v| v.as_str()) {
        Some(id) => load(app, id).await,
        None => Ok(None),
    }
}

/// `pending → processing` (the buyer opened the gateway page). A lost race is fine.
pub async fn mark_processing(app: &App, id: &str) -> ApiResult<Option<Payment>> {
    let Some(current) = load(app, id).await? else { return Ok(None) };
    if current.status != Status::Pending {
        return Ok(Some(current));
    }
    let mut next = current.next(app);
    next.status = Status::Processing;
    match app.store.put(next.to_item()?, Cond::Version(current.version)).await {
        Ok(()) => Ok(Some(next)),
        Err(StoreError::Conflict { .. }) => load(app, id).await,
        Err(e) => Err(e.into()),
    }
}

/// Configuration of payments and gateways, from the environment.
#[derive(Debug, Clone)]
pub struct PaymentsConfig {
    /// How long a payment stays open (`PAYMENT_TIMEOUT` seconds, default 900).
    pub timeout: Duration,
    /// The card gateway behind a deal's `gateway_url` (`DEAL_PAYMENT_GATEWAY`).
    pub deal_gateway: GatewayKind,
    /// The gateway zoo sessions use (`ZOO_PAYMENT_GATEWAY`).
    pub zoo_gateway: GatewayKind,
    /// The gateway of online ticket orders (`TICKETS_PAYMENT_GATEWAY`).
    pub tickets_gateway: GatewayKind,
    /// Whether the built-in sandbox gateway (whose Pay button needs no money) is on
    /// (`SANDBOX_ENABLED`; default on for local runs, off when `TABLE_NAME` is set).
    pub sandbox: bool,
    /// HMAC key of the sandbox gateway's callbacks (`SANDBOX_SECRET`).
    pub sandbox_secret: String,
    /// A refund whose outcome the gateway still cannot tell after this long is handed to a
    /// person (`REFUND_MANUAL_AFTER` seconds, default one day).
    pub refund_manual_after: Duration,
    pub robokassa: gateways::robokassa::Config,
    pub mandarin: gateways::mandarin::Config,
    pub sngb: gateways::sngb::Config,
}

/// The documented development key of the sandbox gateway, refused by a deployed process.
pub const DEV_SANDBOX_SECRET: &str = "sandbox-secret-change-me";

impl PaymentsConfig {
    /// Fails closed: the sandbox only when it is on, and a deployed sandbox only with its own key.
    pub fn check(&self, deployed: bool) -> Result<(), String> {
        for (name, kind) in [
            ("DEAL_PAYMENT_GATEWAY", self.deal_gateway),
            ("ZOO_PAYMENT_GATEWAY", self.zoo_gateway),
            ("TICKETS_PAYMENT_GATEWAY", self.tickets_gateway),
        ] {
            if kind == GatewayKind::Sandbox && !self.sandbox {
                return Err(format!(
                    "{name}=sandbox needs SANDBOX_ENABLED=true (the sandbox takes no money)"
                ));
            }
        }
        if deployed && self.sandbox && crate::config::weak_secret(&self.sandbox_secret, DEV_SANDBOX_SECRET) {
            return Err("SANDBOX_ENABLED=true needs SANDBOX_SECRET: at least 32 characters, not the development default".into());
        }
        Ok(())
    }

    pub fn for_tests() -> Self {
        PaymentsConfig {
            timeout: Duration::from_secs(900),
            deal_gateway: GatewayKind::Sandbox,
            zoo_gateway: GatewayKind::Sandbox,
            tickets_gateway: GatewayKind::Sandbox,
            sandbox: true,
            sandbox_secret: "sandbox-test-secret".into(),
            refund_manual_after: Duration::from_secs(86_400),
            robokassa: gateways::robokassa::Config::default(),
            mandarin: gateways::mandarin::Config::default(),
            sngb: gateways::sngb::Config::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Status::*;
    use super::*;

    fn paid(app: &App, amount: i64) -> Payment {
        let owner = OwnerRef::new("nobody", "1");
        let p = Payment::new(
            app,
            "ZT_1".into(),
            1,
            "21".into(),
            owner,
            GatewayKind::Sandbox,
            amount.into(),
            "x".into(),
        );
        Payment { status: Succeeded, ..p }
    }

    /// The next version of a payment is one version on and stamped with the time of the change.
    #[test]
    fn the_next_version_is_stamped_now() {
        let app = App::in_memory(crate::Config::for_tests());
        let p = paid(&app, 100);
        app.clock.advance(chrono::Duration::minutes(5));
        let next = p.next(&app);
        assert_eq!(next.version, p.version + 1);
        assert!(next.updated_at > p.updated_at, "{} then {}", p.updated_at, next.updated_at);
        assert_eq!(next.amount, p.amount);
    }

    /// What is left to refund: what came in, less what was refunded and what is being refunded.
    #[test]
    fn refundable_is_what_came_in_less_refunds() {
        let app = App::in_memory(crate::Config::for_tests());
        let p = Payment { refunded_amount: 30.into(), refunding: 20.into(), ..paid(&app, 100) };
        assert_eq!(p.refundable(), Decimal::from(50));
        assert_eq!(Payment { status: Refunded, ..p.clone() }.refundable(), Decimal::from(50));
        assert_eq!(Payment { status: Pending, ..p.clone() }.refundable(), Decimal::ZERO, "nothing came in");
        assert_eq!(
            Payment { refunded_amount: 90.into(), ..p.clone() }.refundable(),
            Decimal::ZERO,
            "never below 0"
        );
        // A wrong sum that came in is what can go back, not the payment's amount.
        let anomaly = Anomaly {
            kind: AnomalyKind::AmountMismatch,
            received: 70.into(),
            currency: "RUB".into(),
            expected: Some(100.into()),
            at: app.clock.now(),
            refund_id: "r".into(),
        };
        let odd = Payment {
            anomaly: Some(anomaly),
            refunded_amount: 10.into(),
            refunding: 5.into(),
            ..paid(&app, 100)
        };
        assert_eq!(odd.refundable(), Decimal::from(55));
        assert_eq!(
            Payment { status: Failed, ..odd }.refundable(),
            Decimal::from(55),
            "late money counts too"
        );
    }

    #[test]
    fn state_machine() {
        assert!(Pending.can_move_to(Processing));
        assert!(Processing.can_move_to(Succeeded));
        assert!(Pending.can_move_to(Canceled));
        assert!(Succeeded.can_move_to(Refunded));
        assert!(!Succeeded.can_move_to(Failed));
        assert!(!Failed.can_move_to(Succeeded));
        assert!(!Processing.can_move_to(Pending));
        assert!(!Canceled.can_move_to(Refunded));
    }
}
