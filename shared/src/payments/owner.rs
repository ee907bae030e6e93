//! The payment-owner port: what a payment pays for, seen from the payments side.
//!
//! Each owner (an escrow deal, a ticket order, a zoo session) implements [`PaymentOwner`]
//! once and is registered in [`Owners`] where the `App` is built; payments reach it only
//! through its [`OwnerRef`] kind. The port says:
//! - what the owner expects the payment to bring now ([`Settlement::expects`]),
//! - the owner's writes that go into the settling transaction ([`Settlement::ops`]), so the
//!   payment and its owner change together or not at all,
//! - and what the owner tells people: its emails are outbox items among those writes
//!   ([`crate::outbox`]), so the step after the settlement is the outbox relay's, idempotent
//!   (one email per notification id) and never lost.
//!
//! Refunds reach the owner the same way: [`PaymentOwner::refund_ops`] gives the owner's
//! writes (and its email to the buyer) in the transaction that completes or fails a refund.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::Payment;
use super::refunds::Refund;
use crate::App;
use crate::error::ApiResult;
use crate::store::WriteOp;

/// What a payment pays for: the owner's kind (as registered) and its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerRef {
    pub kind: String,
    /// Opaque; integer ids (deals) are kept as their decimal text.
    #[serde(deserialize_with = "crate::de::id")]
    pub id: String,
}

impl OwnerRef {
    pub fn new(kind: &str, id: impl ToString) -> OwnerRef {
        OwnerRef { kind: kind.to_owned(), id: id.to_string() }
    }
}

/// The owner's side of a settlement, read once per attempt.
#[derive(Debug, Default)]
pub struct Settlement {
    /// What the owner expects this payment to bring now; `None` when it takes no payment
    /// (cancelled, already paid, paid by another payment, gone).
    pub expects: Option<Decimal>,
    /// The owner's writes for the outcome asked for, conditional on the versions read, so a
    /// change of the owner since then makes the whole settlement retry.
    pub ops: Vec<WriteOp>,
}

#[async_trait]
pub trait PaymentOwner: Send + Sync {
    /// The kind named in [`OwnerRef::kind`].
    fn kind(&self) -> &'static str;

    /// Reads the owner of `p` (the payment as the settlement will write it: its status, its
    /// failure reason or anomaly set): what it expects now, and its writes for the outcome
    /// (with its emails): `delivered` = paid for what it expects, else declined, cancelled,
    /// expired or refused by the amount rule (the owner must then be left payable again or
    /// released).
    async fn settlement(&self, app: &App, p: &Payment, delivered: bool) -> ApiResult<Settlement>;

    /// The owner's writes in the transaction that ends a refund of its payment: `completed`
    /// (the money went back) or not (the gateway refused). A refund the owner did not ask for
    /// (one the gateway reports on its own) arrives completed, with an id it has not seen; money
    /// it never took, returned (`RefundKind::Returned`: a mismatch, a late payment), arrives
    /// too, for the owner to tell whom it concerns, never to count as its refund.
    async fn refund_ops(
        &self,
        _app: &App,
        _p: &Payment,
        _r: &Refund,
        _completed: bool,
    ) -> ApiResult<Vec<WriteOp>> {
        Ok(vec![])
    }
}

/// The registered owners, by kind.
#[derive(Clone, Default)]
pub struct Owners(HashMap<&'static str, Arc<dyn PaymentOwner>>);

impl Owners {
    pub fn with(mut self, owner: Arc<dyn PaymentOwner>) -> Owners {
        self.0.insert(owner.kind(), owner);
        self
    }

    pub fn of(&self, r: &OwnerRef) -> Option<&Arc<dyn PaymentOwner>> {
        self.0.get(r.kind.as_str())
    }
}
