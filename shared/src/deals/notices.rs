//! The emails a deal causes, built from the deal itself and written in the same transaction
//! as the change (see [`crate::outbox`]).

use std::collections::HashMap;

use super::locale;
use super::model::{Deal, Role, State};
use crate::App;
use crate::error::ApiResult;
use crate::mail::{DealEscalatedMail, DealStateMail, DealTerms, DealTermsMail, Message, Notification};

/// Russian name of who moved a deal.
pub fn actor_caption(actor: &str) -> &'static str {
    match actor {
        "supplier" => "продавец",
        "consumer" => "покупатель",
        "manager" => "менеджер",
        _ => "система",
    }
}

/// The last move, as its email tells it.
pub fn state_mail(deal: &Deal) -> DealStateMail {
    let (from, actor) = match deal.history.last() {
        Some(h) => (h.from, h.by.clone()),
        None => (deal.state, "system".to_owned()),
    };
    DealStateMail {
        deal_id: deal.id,
        title: deal.title.clone(),
        description: deal.order_description.clone(),
        from_state: from.as_str().into(),
        from_caption: locale::state(from).into(),
        to_state: deal.state.as_str().into(),
        to_caption: locale::state(deal.state).into(),
        actor_caption: actor_caption(&actor).into(),
        actor,
        cost: deal.cost.into(),
    }
}

/// The escalation of a deal's claim.
pub fn escalated_mail(deal: &Deal) -> Option<DealEscalatedMail> {
    let claim = deal.claim.as_ref()?;
    Some(DealEscalatedMail {
        deal_id: deal.id,
        title: deal.title.clone(),
        description: deal.order_description.clone(),
        claim_reason: claim.reason.clone(),
        claim_description: claim.description.clone(),
        claim_date: claim.created_at.fixed_offset(),
        cost: deal.cost.into(),
    })
}

/// The terms as a party agreed to them.
pub fn terms(d: &Deal) -> DealTerms {
    DealTerms {
        cost: d.cost.into(),
        commission_payer: locale::payer(d.commission_payer).into(),
        commission: d.commission.into(),
        consumer_pay: d.consumer_pay.into(),
        supplier_receive: d.supplier_receive.into(),
        verify_days: d.verify_days,
        supply_days: d.supply_days,
        description: d.order_description.clone(),
    }
}

/// The addresses of `users` (parties of `deal`): from the deal's contacts when it knows them
/// all, else from the parties' profiles (one read); what was read is kept in the contacts, so
/// the deal written with these emails knows it next time.
async fn addresses(app: &App, deal: &mut Deal, users: &[String]) -> ApiResult<HashMap<String, String>> {
    if !users.iter().all(|u| deal.contacts.contains_key(u)) {
        let profiles = super::parties(app, std::slice::from_ref(deal)).await?;
        for u in users {
            if let Some(email) = profiles.get(u).and_then(|p| p.email.clone()) {
                deal.contacts.insert(u.clone(), email);
            }
        }
    }
    Ok(users.iter().filter_map(|u| Some((u.clone(), deal.contacts.get(u)?.clone()))).collect())
}

/// The emails of the move that makes `deal` version `version`: to each party but `by` (both
/// for the system's and the manager's moves). Their addresses come from the deal's contacts
/// (read from the profiles, and kept in `deal`, when it lacks one).
pub async fn of_move(
    app: &App,
    deal: &mut Deal,
    version: u64,
    by: Option<Role>,
) -> ApiResult<Vec<Notification>> {
    let recipients: Vec<(Role, String)> =
        [(Role::Supplier, Some(deal.supplier_id.clone())), (Role::Consumer, deal.consumer_id.clone())]
            .into_iter()
            .filter_map(|(role, user)| Some((role, user?)))
            .filter(|(role, _)| by != Some(*role))
            .collect();
    let ids: Vec<String> = recipients.iter().map(|(_, u)| u.clone()).collect();
    let emails = addresses(app, deal, &ids).await?;
    let mut out = Vec::new();
    for (role, user) in recipients {
        let Some(email) = emails.get(&user) else { continue };
        let message = match escalated_mail(deal).filter(|_| deal.state == State::Escalation) {
            Some(m) => Message::DealEscalated(m),
            None => Message::DealStateChanged(state_mail(deal)),
        };
        let id = format!("deal-{}-v{version}-{}", deal.id, role.as_str());
        out.push(Notification::new(id, email.clone(), message));
    }
    out.extend(webhooks_of_move(app, deal, version));
    Ok(out)
}

/// The webhook messages of a move (`deal.state_changed`).
fn webhooks_of_move(app: &App, deal: &Deal, version: u64) -> Vec<Notification> {
    let data = serde_json::json!({
        "deal_id": deal.id,
        "state": deal.state.as_str(),
        "version": version,
        "title": deal.title,
    });
    webhooks(app, deal, &format!("v{version}"), "deal.state_changed", data)
}

/// The webhook messages of one event of `deal`: one to each party (the mover included: a
/// partner platform follows every change), delivered to their endpoints if they registered
/// one, and one to the deal's `callback_url` when a party set it (signed with that party's
/// secret). `key` names the event in the message ids (`msg_deal-<id>-<key>-<recipient>`), the
/// receivers' de-duplication key.
pub fn webhooks(app: &App, deal: &Deal, key: &str, kind: &str, data: serde_json::Value) -> Vec<Notification> {
    let now = app.clock.now();
    let mut out: Vec<Notification> = [Some(&deal.supplier_id), deal.consumer_id.as_ref()]
        .into_iter()
        .flatten()
        .map(|party| {
            let id = format!("msg_deal-{}-{key}-{party}", deal.id);
            crate::webhooks::notice(id, party, kind, now, data.clone())
        })
        .collect();
    if let (Some(url), Some(owner)) = (&deal.callback_url, &deal.callback_owner) {
        let id = format!("msg_deal-{}-{key}-callback", deal.id);
        out.push(crate::webhooks::notice_to(id, owner, url, kind, now, data));
    }
    out
}

/// The webhook messages of a card payment of `deal` reaching its outcome:
/// `deal.payment_succeeded` (it paid the deal) or `deal.payment_failed` (declined, cancelled,
/// expired, or money the deal did not expect, which is returned).
pub fn of_payment(
    app: &App,
    deal: &Deal,
    p: &crate::payments::Payment,
    paid_the_deal: bool,
) -> Vec<Notification> {
    let kind = if paid_the_deal { "deal.payment_succeeded" } else { "deal.payment_failed" };
    let reason = p.anomaly.as_ref().map(|a| a.kind.as_str().to_owned()).or_else(|| p.failure_reason.clone());
    let data = serde_json::json!({
        "deal_id": deal.id,
        "payment_id": p.id,
        "gateway": p.gateway.as_str(),
        "amount": p.amount.round_dp(2).to_string(),
        "currency": p.currency,
        "status": p.status.as_str(),
        "reason": reason,
    });
    webhooks(app, deal, &format!("payment-{}-{}", p.id, p.status.as_str()), kind, data)
}

/// The webhook messages of a refund of a card payment of `deal` that ended:
/// `deal.payment_refunded` (the money went back) or `deal.refund_failed`.
pub fn of_refund(
    app: &App,
    deal: &Deal,
    p: &crate::payments::Payment,
    r: &crate::payments::refunds::Refund,
    completed: bool,
) -> Vec<Notification> {
    let kind = if completed { "deal.payment_refunded" } else { "deal.refund_failed" };
    let data = serde_json::json!({
        "deal_id": deal.id,
        "payment_id": p.id,
        "refund_id": r.id,
        "gateway": p.gateway.as_str(),
        "amount": r.amount.round_dp(2).to_string(),
        "currency": p.currency,
        "reason": r.reason,
        // `owner`: a refund of the deal's payment; `returned`: money the deal did not take
        // (a late payment, an amount it did not expect).
        "kind": match r.kind {
            crate::payments::refunds::RefundKind::Owner => "owner",
            crate::payments::refunds::RefundKind::Returned => "returned",
        },
    });
    webhooks(app, deal, &format!("refund-{}-{}", r.id, if completed { "done" } else { "failed" }), kind, data)
}

/// The email of a change of terms to the other party, with the old and the new terms.
pub async fn of_terms(
    app: &App,
    before: &Deal,
    after: &mut Deal,
    version: u64,
    by: Role,
) -> ApiResult<Option<Notification>> {
    let (old, new) = (terms(before), terms(after));
    if old == new {
        return Ok(None);
    }
    let Some(other) = after.other_party(by).map(str::to_owned) else { return Ok(None) };
    let emails = addresses(app, after, std::slice::from_ref(&other)).await?;
    let Some(email) = emails.get(&other).cloned() else { return Ok(None) };
    let to_role = if by == Role::Supplier { Role::Consumer } else { Role::Supplier };
    let mail = DealTermsMail {
        deal_id: after.id,
        title: after.title.clone(),
        actor: by.as_str().into(),
        actor_caption: actor_caption(by.as_str()).into(),
        old,
        new,
        payments_cancelled: before.consumer_pay != after.consumer_pay,
    };
    let id = format!("deal-{}-v{version}-terms-{}", after.id, to_role.as_str());
    Ok(Some(Notification::new(id, email, Message::DealTermsChanged(mail))))
}
