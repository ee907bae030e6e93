//! Refunds: one record per refund, written before the gateway is asked, so a refund is
//! never lost, never undone on an unknown outcome, and never sent twice blindly.
//!
//! A refund item (`pk = payment#<id>`, `sk = refund#<refund id>`) moves
//! `queued → sending → completed | failed | manual`:
//! - **queued**: to be sent (the refund of an anomaly, written in the settling transaction).
//! - **sending**: asked of the gateway (an owner's refund is written in this state, in one
//!   transaction with the payment's `refunding` sum and the owner's reservation). If the
//!   gateway's answer is lost it stays here; the reconciliation job asks the gateway what
//!   became of it and completes or fails it.
//! - **completed**: the money went back: in one transaction the payment's `refunded_amount`
//!   grows, its `refunding` shrinks, and the owner records it ([`super::PaymentOwner::refund_ops`]).
//! - **failed**: the gateway refused an owner's refund; the owner takes its reservation back.
//! - **manual**: money that must go back but the gateway would not return (a refused
//!   anomaly refund), or whose outcome the gateway still cannot tell after
//!   `REFUND_MANUAL_AFTER`: listed for a person (`GET /api/v1/admin/refunds`), with an alarm
//!   (`ManualRefunds` metric) and an email to the manager.
//!
//! Open refunds (queued, sending) are listed in the index under `refunds#open#<shard>`,
//! manual ones under `refunds#manual`, both sorted by the last change.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::gateway::{RefundError, RefundRemote};
use super::{AnomalyKind, OPEN_SHARDS, Payment, Status, gateways, notices, pk, shard, ts};
use crate::App;
use crate::error::{ApiError, ApiResult};
use crate::retry::{Step, again_on_conflict, optimistic};
use crate::store::{Cond, Item, QueryOpts, StoreError, WriteOp};

/// How long a refund is left to the request that wrote it before the reconciliation job
/// takes it over.
const GRACE_SECS: i64 = 60;
pub const MANUAL_INDEX: &str = "refunds#manual";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundState {
    Queued,
    Sending,
    Completed,
    Failed,
    Manual,
}

impl RefundState {
    pub fn as_str(self) -> &'static str {
        match self {
            RefundState::Queued => "queued",
            RefundState::Sending => "sending",
            RefundState::Completed => "completed",
            RefundState::Failed => "failed",
            RefundState::Manual => "manual",
        }
    }

    /// Money is still on its way back (or waits for a person).
    pub fn is_open(self) -> bool {
        matches!(self, RefundState::Queued | RefundState::Sending | RefundState::Manual)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundKind {
    /// Asked by the owner (a box-office refund of a ticket order) or reported by the gateway.
    Owner,
    /// Money the owner never took (an amount mismatch or a late payment), returned.
    Returned,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refund {
    pub id: String,
    pub payment_id: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    pub reason: String,
    pub kind: RefundKind,
    pub state: RefundState,
    /// Who asked (a user id), when a person did.
    #[serde(default)]
    pub by: Option<String>,
    /// The gateway's reference of the refund, once it gave one.
    #[serde(default)]
    pub gateway_ref: Option<String>,
    /// Why it failed or waits for a person.
    #[serde(default)]
    pub error: Option<String>,
    #[serde(with = "crate::time::utc")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::time::utc")]
    pub updated_at: DateTime<Utc>,
    #[serde(skip)]
    pub version: u64,
}

fn sk(id: &str) -> String {
    format!("refund#{id}")
}

/// A new refund id.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..16].to_owned()
}

impl Refund {
    pub fn new(
        app: &App,
        p: &Payment,
        id: String,
        amount: Decimal,
        reason: String,
        kind: RefundKind,
        state: RefundState,
    ) -> Refund {
        let now = app.clock.now();
        Refund {
            id,
            payment_id: p.id.clone(),
            amount: crate::money::round(amount),
            reason,
            kind,
            state,
            by: None,
            gateway_ref: None,
            error: None,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    /// The queued refund of money the owner did not take.
    pub fn returned(app: &App, p: &Payment, amount: Decimal, why: AnomalyKind) -> Refund {
        Refund::new(
            app,
            p,
            new_id(),
            amount,
            why.as_str().to_owned(),
            RefundKind::Returned,
            RefundState::Queued,
        )
    }

    fn item(&self) -> Result<Item, StoreError> {
        let item = Item::typed(pk(&self.payment_id), sk(&self.id), self.clone())?.with_version(self.version);
        let at = format!("{}#{}#{}", ts(self.updated_at), self.payment_id, self.id);
        Ok(match self.state {
            RefundState::Queued | RefundState::Sending => {
                item.with_gsi1(format!("refunds#open#{}", shard(&self.payment_id)), at)
            }
            RefundState::Manual => item.with_gsi1(MANUAL_INDEX, at),
            RefundState::Completed | RefundState::Failed => item,
        })
    }

    fn from_item(item: &Item) -> Result<Refund, StoreError> {
        let mut r: Refund = item.decode()?;
        r.version = item.version;
        Ok(r)
    }

    /// The write that creates this refund.
    pub fn create_op(&self) -> ApiResult<WriteOp> {
        Ok(WriteOp::Put { item: self.item()?, cond: Cond::NotExists })
    }

    fn next(&self, app: &App, state: RefundState) -> Refund {
        Refund { state, version: self.version + 1, updated_at: app.clock.now(), ..self.clone() }
    }

    fn write(&self) -> ApiResult<WriteOp> {
        Ok(WriteOp::Put { item: self.item()?, cond: Cond::Version(self.version - 1) })
    }
}

/// The payment and one of its refunds, read together (one query of the payment's partition).
async fn load_pair(app: &App, payment_id: &str, refund_id: &str) -> ApiResult<(Payment, Refund)> {
    let items = app.store.query(&pk(payment_id), QueryOpts::default()).await?;
    let mut p = None;
    let mut r = None;
    for item in &items {
        if item.sk == super::SK_PAYMENT {
            p = Some(Payment::from_item(item)?);
        } else if item.sk == sk(refund_id) {
            r = Some(Refund::from_item(item)?);
        }
    }
    match (p, r) {
        (Some(p), Some(r)) => Ok((p, r)),
        _ => Err(ApiError::NotFound("refund".into())),
    }
}

/// Every refund of a payment, oldest first.
pub async fn of_payment(app: &App, payment_id: &str) -> ApiResult<Vec<Refund>> {
    let items = app.store.query(&pk(payment_id), QueryOpts::prefix("refund#")).await?;
    let mut refunds: Vec<Refund> = items.iter().map(Refund::from_item).collect::<Result<_, _>>()?;
    refunds.sort_by_key(|r| r.created_at);
    Ok(refunds)
}

/// Refunds waiting for a person, newest first.
pub async fn manual(app: &App) -> ApiResult<Vec<Refund>> {
    let items =
        app.store.query_gsi1(MANUAL_INDEX, QueryOpts { descending: true, ..Default::default() }).await?;
    Ok(items.iter().map(Refund::from_item).collect::<Result<_, _>>()?)
}

/// Checks an owner's refund of `amount` against what the payment can still give back.
pub fn check(app: &App, p: &Payment, amount: Decimal) -> ApiResult<()> {
    if !matches!(p.status, Status::Succeeded | Status::Refunded) || p.anomaly.is_some() {
        return Err(ApiError::bad_request(
            "status",
            format!("a {} payment cannot be refunded", p.status.as_str()),
        ));
    }
    if amount <= Decimal::ZERO || amount > p.refundable() {
        return Err(ApiError::invalid(
            "amount",
            format!(
                "{} exceeds what is left to refund on the payment ({})",
                crate::money::format(amount),
                crate::money::format(p.refundable())
            ),
        ));
    }
    if amount != p.refundable() && !gateways::for_kind(app, p.gateway)?.partial_refunds() {
        return Err(ApiError::invalid(
            "amount",
            format!(
                "{} refunds only the whole payment: {}",
                p.gateway.as_str(),
                crate::money::format(p.refundable())
            ),
        ));
    }
    Ok(())
}

/// Writes an owner's refund as `sending` together with the payment's `refunding` sum and the
/// owner's own writes (its reservation), conditional on the payment's version; a lost race
/// is [`Step::Again`]. Then [`carry_out`] asks the gateway.
pub async fn request(app: &App, p: &Payment, r: &Refund, owner_ops: Vec<WriteOp>) -> ApiResult<Step<()>> {
    check(app, p, r.amount)?;
    let mut np = p.next(app);
    np.refunding += r.amount;
    let mut ops = vec![np.write()?, r.create_op()?];
    ops.extend(owner_ops);
    again_on_conflict(app.store.transact(ops).await)
}

/// Refunds `amount` of a payment whose owner keeps no record of its refunds (a zoo
/// session): written as `sending`, then asked of the gateway (see [`carry_out`]).
pub async fn refund(
    app: &App,
    payment_id: &str,
    amount: Decimal,
    reason: &str,
    by: &str,
) -> ApiResult<Refund> {
    let id = new_id();
    optimistic("the payment", || async {
        let p = super::get(app, payment_id).await?;
        let mut r = Refund::new(
            app,
            &p,
            id.clone(),
            amount,
            reason.to_owned(),
            RefundKind::Owner,
            RefundState::Sending,
        );
        r.by = Some(by.to_owned());
        request(app, &p, &r, vec![]).await
    })
    .await?;
    carry_out(app, payment_id, &id).await
}

/// Asks the gateway to make a `sending` refund and records the answer. A refusal of an
/// owner's refund fails it (502); of a returned payment hands it to a person. An unknown
/// outcome leaves it `sending` for the reconciliation job.
pub async fn carry_out(app: &App, payment_id: &str, refund_id: &str) -> ApiResult<Refund> {
    let (p, r) = load_pair(app, payment_id, refund_id).await?;
    if r.state != RefundState::Sending {
        return Ok(r);
    }
    let answer = match gateways::for_kind(app, p.gateway) {
        Ok(g) => g.refund(app, &p, &r).await,
        Err(e) => Err(RefundError::Refused(e.to_string())),
    };
    match answer {
        Ok(gateway_ref) => complete(app, payment_id, refund_id, gateway_ref).await,
        Err(RefundError::Unknown(why)) => {
            tracing::warn!(payment = %payment_id, refund = %refund_id, error = %why, "refund outcome unknown; the reconciliation job asks the gateway");
            Ok(r)
        }
        Err(RefundError::Refused(why) | RefundError::Unsupported(why)) => match r.kind {
            RefundKind::Owner => {
                fail(app, payment_id, refund_id, &why).await?;
                Err(ApiError::Gateway(format!("the gateway refused the refund: {why}")))
            }
            RefundKind::Returned => to_person(app, payment_id, refund_id, &why).await,
        },
    }
}

/// Sends a `queued` refund (exactly one caller moves it to `sending`); one already under
/// way or finished is left alone.
pub async fn send(app: &App, payment_id: &str, refund_id: &str) -> ApiResult<()> {
    let claimed = optimistic("the refund", || async {
        let (_, r) = load_pair(app, payment_id, refund_id).await?;
        if r.state != RefundState::Queued {
            return Ok(Step::Done(false));
        }
        let next = r.next(app, RefundState::Sending);
        match app.store.put(next.item()?, Cond::Version(r.version)).await {
            Ok(()) => Ok(Step::Done(true)),
            Err(StoreError::Conflict { .. }) => Ok(Step::Again),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    if claimed {
        carry_out(app, payment_id, refund_id).await?;
    }
    Ok(())
}

/// The money went back: the refund, the payment and the owner change together. Idempotent.
pub async fn complete(
    app: &App,
    payment_id: &str,
    refund_id: &str,
    gateway_ref: Option<String>,
) -> ApiResult<Refund> {
    let done = optimistic("the refund", || async {
        let (p, r) = load_pair(app, payment_id, refund_id).await?;
        if !r.state.is_open() {
            if r.state == RefundState::Failed {
                tracing::error!(payment = %payment_id, refund = %refund_id, "a refund recorded as failed was reported done; check by hand");
            }
            return Ok(Step::Done(None));
        }
        let mut nr = r.next(app, RefundState::Completed);
        nr.gateway_ref = gateway_ref.clone().or(nr.gateway_ref);
        nr.error = None;
        let mut np = p.next(app);
        np.refunding = (np.refunding - r.amount).max(Decimal::ZERO);
        np.refunded_amount = crate::money::round(np.refunded_amount + r.amount);
        if np.status == Status::Succeeded {
            np.status = Status::Refunded;
        }
        let mut ops = vec![np.write()?, nr.write()?];
        // Every refund's end reaches the owner: its own, and money it never took, returned
        // (`kind` tells them apart).
        ops.extend(owner_refund_ops(app, &np, &nr, true).await?);
        Ok(again_on_conflict(app.store.transact(ops).await)?.map(|()| Some((np, nr))))
    })
    .await?;
    match done {
        Some((p, r)) => {
            tracing::info!(payment = %p.id, refund = %r.id, amount = %r.amount, "refund completed");
            Ok(r)
        }
        None => Ok(load_pair(app, payment_id, refund_id).await?.1),
    }
}

async fn owner_refund_ops(app: &App, p: &Payment, r: &Refund, completed: bool) -> ApiResult<Vec<WriteOp>> {
    match app.owners.of(&p.purpose) {
        Some(owner) => owner.refund_ops(app, p, r, completed).await,
        None => Ok(vec![]),
    }
}

/// The gateway refused an owner's refund: nothing went back; the owner takes its
/// reservation back.
pub async fn fail(app: &App, payment_id: &str, refund_id: &str, why: &str) -> ApiResult<()> {
    optimistic("the refund", || async {
        let (p, r) = load_pair(app, payment_id, refund_id).await?;
        if !matches!(r.state, RefundState::Queued | RefundState::Sending) {
            return Ok(Step::Done(()));
        }
        let mut nr = r.next(app, RefundState::Failed);
        nr.error = Some(why.chars().take(500).collect());
        let mut np = p.next(app);
        np.refunding = (np.refunding - r.amount).max(Decimal::ZERO);
        let mut ops = vec![np.write()?, nr.write()?];
        ops.extend(owner_refund_ops(app, &np, &nr, false).await?);
        again_on_conflict(app.store.transact(ops).await)
    })
    .await?;
    tracing::warn!(payment = %payment_id, refund = %refund_id, error = %why, "refund refused by the gateway");
    Ok(())
}

/// Hands a refund to a person: money that must go back and the gateway did not return,
/// or whose outcome it cannot tell. Alarmed (metric) and emailed to the manager.
pub async fn to_person(app: &App, payment_id: &str, refund_id: &str, why: &str) -> ApiResult<Refund> {
    let moved = optimistic("the refund", || async {
        let (p, r) = load_pair(app, payment_id, refund_id).await?;
        if !matches!(r.state, RefundState::Queued | RefundState::Sending) {
            return Ok(Step::Done(None));
        }
        let mut nr = r.next(app, RefundState::Manual);
        nr.error = Some(why.chars().take(500).collect());
        let ops = vec![nr.write()?, crate::outbox::op(&notices::manual_refund(app, &p, &nr), nr.updated_at)?];
        Ok(again_on_conflict(app.store.transact(ops).await)?.map(|()| Some((p, nr))))
    })
    .await?;
    match moved {
        Some((p, r)) => {
            tracing::error!(payment = %p.id, refund = %r.id, amount = %r.amount, error = %why, "refund needs a person");
            crate::metrics::count("ManualRefunds", &[("Gateway", p.gateway.as_str())]);
            Ok(r)
        }
        None => Ok(load_pair(app, payment_id, refund_id).await?.1),
    }
}

/// A refund made by hand (in the gateway's merchant account) for one waiting for a person.
pub async fn completed_by_hand(app: &App, payment_id: &str, refund_id: &str, by: &str) -> ApiResult<Refund> {
    let (_, r) = load_pair(app, payment_id, refund_id).await?;
    if r.state != RefundState::Manual {
        return Err(ApiError::bad_request(
            "state",
            format!("the refund is {}, not waiting for a person", r.state.as_str()),
        ));
    }
    tracing::info!(payment = %payment_id, refund = %refund_id, by, "refund made by hand");
    complete(app, payment_id, refund_id, None).await
}

/// A refund the gateway reports (SNGB's `sngb_tran`, a Mandarin reversal callback): it
/// completes the open refund it answers, or, made on the gateway's side, is recorded as a
/// completed refund of the owner (seats freed when whole). Repeats change nothing: the
/// gateway's reference names the record.
pub async fn reported(
    app: &App,
    p: &Payment,
    amount: Option<Decimal>,
    gateway_ref: Option<String>,
) -> ApiResult<()> {
    let refunds = of_payment(app, &p.id).await?;
    let matching =
        refunds.iter().find(|r| r.gateway_ref.is_some() && r.gateway_ref == gateway_ref).or_else(|| {
            refunds
                .iter()
                .find(|r| r.state.is_open() && amount.is_none_or(|a| crate::money::round(a) == r.amount))
        });
    if let Some(r) = matching {
        complete(app, &p.id, &r.id, gateway_ref).await?;
        return Ok(());
    }
    if let Some(gref) = &gateway_ref {
        match stamp_unreferenced(app, p, &refunds, amount, gref).await? {
            Stamp::Taken => return Ok(()),
            // Another notice took it meanwhile: this one is read again against the records.
            Stamp::Raced => return Box::pin(reported(app, p, amount, gateway_ref)).await,
            Stamp::NoneLeft => {}
        }
    }
    let gref = gateway_ref
        .ok_or_else(|| ApiError::bad_request("tranid", "a refund notification must name its transaction"))?;
    let id = format!("gw-{}", gref.chars().filter(char::is_ascii_alphanumeric).take(40).collect::<String>());
    let recorded = optimistic("the payment", || async {
        let p = super::get(app, &p.id).await?;
        let left = (if p.anomaly.is_none() { p.amount } else { Decimal::ZERO }) - p.refunded_amount - p.refunding;
        let amount = crate::money::round(amount.unwrap_or(left).min(left.max(Decimal::ZERO)));
        if amount <= Decimal::ZERO {
            tracing::warn!(payment = %p.id, reference = %gref, "a reported refund finds nothing left to refund");
            return Ok(Step::Done(None));
        }
        let mut r = Refund::new(app, &p, id.clone(), amount, "refund reported by the gateway".into(), RefundKind::Owner, RefundState::Completed);
        r.gateway_ref = Some(gref.clone());
        let mut np = p.next(app);
        np.refunded_amount = crate::money::round(np.refunded_amount + amount);
        if np.status == Status::Succeeded {
            np.status = Status::Refunded;
        }
        let mut ops = vec![np.write()?, r.create_op()?];
        ops.extend(owner_refund_ops(app, &np, &r, true).await?);
        match app.store.transact(ops).await {
            Ok(()) => Ok(Step::Done(Some((np, r)))),
            // Recorded by an earlier delivery of the same notice.
            Err(StoreError::Conflict { index: Some(1) }) => Ok(Step::Done(None)),
            Err(StoreError::Conflict { .. }) => Ok(Step::Again),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    if let Some((p, r)) = recorded {
        tracing::info!(payment = %p.id, refund = %r.id, amount = %r.amount, "refund reported by the gateway recorded");
    }
    Ok(())
}

/// What became of a reported refund's search for a refund completed without a reference.
enum Stamp {
    /// One took the reference: the notice is that refund's.
    Taken,
    /// One was written by someone else meanwhile.
    Raced,
    /// None of that amount is left without a reference.
    NoneLeft,
}

/// A refund completed without the gateway's reference (answered without one, or marked done
/// by hand) is the one a notice of the same amount reports: it takes the reference, so that it
/// answers one notice only, and nothing is counted twice. Another notice of the same amount,
/// with another reference, is then a refund of its own.
async fn stamp_unreferenced(
    app: &App,
    p: &Payment,
    refunds: &[Refund],
    amount: Option<Decimal>,
    gref: &str,
) -> ApiResult<Stamp> {
    let unreferenced = refunds.iter().find(|r| {
        r.state == RefundState::Completed
            && r.gateway_ref.is_none()
            && amount.is_some_and(|a| crate::money::round(a) == r.amount)
    });
    let Some(r) = unreferenced else { return Ok(Stamp::NoneLeft) };
    let mut nr = r.next(app, RefundState::Completed);
    nr.gateway_ref = Some(gref.to_owned());
    match app.store.transact(vec![nr.write()?]).await {
        Ok(()) => {
            tracing::info!(payment = %p.id, refund = %r.id, reference = %gref, "a refund completed before took the gateway's reference");
            Ok(Stamp::Taken)
        }
        Err(StoreError::Conflict { .. }) => Ok(Stamp::Raced),
        Err(e) => Err(e.into()),
    }
}

/// The reconciliation job's pass over open refunds older than a minute: queued ones are
/// sent; for those whose answer was lost the gateway is asked: done → completed, refused →
/// failed (or to a person, for returned money), still unknown past `REFUND_MANUAL_AFTER` →
/// to a person.
pub async fn reconcile(app: &App) -> ApiResult<(usize, usize)> {
    let now = app.clock.now();
    let until = ts(now - chrono::Duration::seconds(GRACE_SECS));
    let (mut examined, mut changed) = (0, 0);
    for s in 0..OPEN_SHARDS {
        let opts = QueryOpts { sk_until: Some(format!("{until}#~")), ..Default::default() };
        for item in app.store.query_gsi1(&format!("refunds#open#{s}"), opts).await? {
            examined += 1;
            let r = match Refund::from_item(&item) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, pk = %item.pk, "unreadable refund skipped");
                    continue;
                }
            };
            match finish_one(app, r, now).await {
                Ok(true) => changed += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "open refund not finished; retried next run"),
            }
        }
    }
    Ok((examined, changed))
}

async fn finish_one(app: &App, r: Refund, now: DateTime<Utc>) -> ApiResult<bool> {
    match r.state {
        RefundState::Queued => {
            send(app, &r.payment_id, &r.id).await?;
            Ok(true)
        }
        RefundState::Sending => {
            let p = super::get(app, &r.payment_id).await?;
            let remote = gateways::for_kind(app, p.gateway)?.refund_status(app, &p, &r).await?;
            match remote {
                RefundRemote::Done { gateway_ref } => {
                    complete(app, &r.payment_id, &r.id, gateway_ref).await?;
                }
                RefundRemote::Refused(why) if r.kind == RefundKind::Owner => {
                    fail(app, &r.payment_id, &r.id, &why).await?
                }
                RefundRemote::Refused(why) => {
                    to_person(app, &r.payment_id, &r.id, &why).await?;
                }
                RefundRemote::Unknown => {
                    let limit = chrono::Duration::from_std(app.config.payments.refund_manual_after)
                        .unwrap_or_default();
                    if r.created_at + limit > now {
                        return Ok(false);
                    }
                    to_person(
                        app,
                        &r.payment_id,
                        &r.id,
                        "the gateway cannot tell whether the refund was made",
                    )
                    .await?;
                }
            }
            Ok(true)
        }
        _ => Ok(false),
    }
}
