//! Card payments of a deal (`payment_info`'s links) and the deal as a payment owner.
//!
//! A deal expects, while it is payable ([`Deal::payable`]), its `consumer_pay` with the
//! surcharge of the payment's gateway (Robokassa's `GATEWAY_COMMISSION` for the card gateway,
//! `MANDARIN_COMMISSION` for Mandarin). A payment that brings exactly that moves the deal to
//! `paid` in the settling transaction; anything else (another amount, a deal no longer
//! payable) leaves the deal as it is and the money is returned. A change of the money terms
//! cancels the deal's open card payments in the same transaction as the change (see
//! [`super::patch`]), so a link taken before it can only end as a late payment, refunded.
//!
//! The deal keeps a pointer to its latest card payment per gateway:
//! `pk = deal#<id>`, `sk = payment#<gateway>`. Only that one can be open: a new link closes the
//! one before it (a page of it kept open then pays only money back).

use async_trait::async_trait;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::machine;
use super::model::Deal;
use super::{OWNER_KIND, deal_item, deal_pk, load, notices};
use crate::App;
use crate::auth::Claims;
use crate::error::{ApiError, ApiResult};
use crate::payments::refunds::Refund;
use crate::payments::{self, GatewayKind, OwnerRef, Payment, PaymentOwner, Settlement};
use crate::store::{Cond, Item, QueryOpts, WriteOp};

/// What the deal asks a card payment through `gateway` to bring: the invoice amount with
/// that gateway's surcharge.
pub fn card_amount(app: &App, deal: &Deal, gateway: GatewayKind) -> Decimal {
    let c = &app.config.commission;
    match gateway {
        GatewayKind::Mandarin => c.mandarin_total(deal.consumer_pay),
        _ => c.gateway_total(deal.consumer_pay),
    }
}

fn pointer_sk(gateway: GatewayKind) -> String {
    format!("payment#{}", gateway.as_str())
}

/// Where the consumer pays by card: a payment opened with `gateway` for the deal's amount
/// with that gateway's surcharge, or the one already open for the same amount and return
/// addresses (so repeated `payment_info` calls do not pile up payments).
pub struct CardPayment {
    pub gateway: GatewayKind,
    pub description: String,
    pub return_url: Option<String>,
    pub cancel_url: Option<String>,
}

pub async fn card_payment(app: &App, who: &Claims, deal: &Deal, req: CardPayment) -> ApiResult<String> {
    if !deal.payable() {
        return Err(ApiError::bad_request("state", "the deal takes no payment now"));
    }
    let CardPayment { gateway, description, return_url, cancel_url } = req;
    let amount = card_amount(app, deal, gateway);
    let ptr = app.store.get(&deal_pk(deal.id), &pointer_sk(gateway)).await?;
    let latest = match ptr.as_ref().and_then(|ptr| ptr.data.get("payment_id")).and_then(Value::as_str) {
        Some(pid) => payments::load(app, pid).await?,
        None => None,
    };
    if let Some(p) = &latest
        && p.amount == amount
        && p.return_url == return_url
        && p.cancel_url == cancel_url
        && let Some(url) = p.payable_url()
    {
        return Ok(url.to_owned());
    }
    let inv = payments::new_inv_id();
    let mut p = Payment::new(
        app,
        format!("DL_{}_{inv}", deal.id),
        inv,
        who.sub.clone(),
        OwnerRef::new(OWNER_KIND, deal.id),
        gateway,
        amount,
        description,
    );
    p.email = who.email.clone();
    p.return_url = return_url;
    p.cancel_url = cancel_url;
    // One open link per gateway: the new one replaces the pointer as read (a concurrent
    // request's link is not lost unpointed) and closes the one it pointed to, so that every
    // open link of the deal is a pointed one, which a change of terms cancels.
    let pointer = Item::new(
        deal_pk(deal.id),
        pointer_sk(gateway),
        json!({ "payment_id": p.id }).as_object().cloned().unwrap_or_default(),
    )
    .with_version(ptr.as_ref().map_or(1, |ptr| ptr.version + 1));
    let cond = ptr.as_ref().map_or(Cond::NotExists, |ptr| Cond::Version(ptr.version));
    let mut writes = vec![WriteOp::Put { item: pointer, cond }];
    if let Some(earlier) = latest.filter(|e| e.status.is_open()) {
        writes.push(payments::cancel_op(app, &earlier, "a newer link of the deal replaced it")?);
    }
    let p = payments::open(app, p, writes).await?;
    p.confirmation_url.ok_or_else(|| ApiError::Gateway("the gateway gave no payment page".into()))
}

/// The writes that cancel the deal's open card payments (for the transaction that changes
/// its money terms).
pub async fn cancel_open_ops(app: &App, deal_id: i64) -> ApiResult<Vec<WriteOp>> {
    let pointers = app.store.query(&deal_pk(deal_id), QueryOpts::prefix("payment#")).await?;
    let keys: Vec<(String, String)> = pointers
        .iter()
        .filter_map(|i| i.data.get("payment_id").and_then(Value::as_str))
        .map(|id| (payments::pk(id), payments::SK_PAYMENT.to_owned()))
        .collect();
    if keys.is_empty() {
        return Ok(vec![]);
    }
    let mut ops = Vec::new();
    for item in app.store.batch_get(&keys).await? {
        let p = Payment::from_item(&item)?;
        if p.status.is_open() {
            ops.push(payments::cancel_op(app, &p, "the deal's terms changed")?);
        }
    }
    Ok(ops)
}

pub struct DealPayments;

/// The deal a payment is for, as stored.
async fn deal_of(app: &App, p: &Payment) -> ApiResult<Option<super::Loaded>> {
    match p.purpose.id.parse() {
        Ok(id) => load(app, id).await,
        Err(_) => Ok(None),
    }
}

#[async_trait]
impl PaymentOwner for DealPayments {
    fn kind(&self) -> &'static str {
        OWNER_KIND
    }

    async fn settlement(&self, app: &App, p: &Payment, delivered: bool) -> ApiResult<Settlement> {
        let Some(loaded) = deal_of(app, p).await? else {
            tracing::error!(payment = %p.id, deal = %p.purpose.id, "payment for a deal that does not exist");
            return Ok(Settlement::default());
        };
        let deal = &loaded.deal;
        let expects = deal.payable().then(|| card_amount(app, deal, p.gateway));
        if !delivered || expects.is_none() {
            // Declined, cancelled, expired, or money the deal does not take (returned): the
            // parties' platforms hear of it.
            let told = notices::of_payment(app, deal, p, false);
            return Ok(Settlement { expects, ops: crate::outbox::ops(app, &told)? });
        }
        let mut next = deal.clone();
        machine::card_paid(&mut next, &p.id, app.clock.now())?;
        // The move to `paid` and its emails, in the settling transaction.
        let version = loaded.version + 1;
        let mut told = notices::of_move(app, &mut next, version, None).await?;
        told.extend(notices::of_payment(app, &next, p, true));
        let mut ops =
            vec![WriteOp::Put { item: deal_item(&next, version)?, cond: Cond::Version(loaded.version) }];
        ops.extend(super::state_ops(Some(deal), &next));
        ops.extend(crate::outbox::ops(app, &told)?);
        Ok(Settlement { expects, ops })
    }

    /// A refund of a deal's payment that ended is a webhook message to the parties.
    async fn refund_ops(
        &self,
        app: &App,
        p: &Payment,
        r: &Refund,
        completed: bool,
    ) -> ApiResult<Vec<WriteOp>> {
        let Some(loaded) = deal_of(app, p).await? else { return Ok(vec![]) };
        crate::outbox::ops(app, &notices::of_refund(app, &loaded.deal, p, r, completed))
    }
}
