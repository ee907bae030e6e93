//! The emails a deal causes, built from the deal itself and written in the same transaction
//! as the change (see [`crate::outbox`]).

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

fn email_of(
    users: &std::collections::HashMap<String, crate::users::User>,
    user: Option<&String>,
) -> Option<String> {
    user.and_then(|u| users.get(u)).and_then(|u| u.email.clone())
}

/// The emails of the move that makes `deal` version `version`: to each party but `by` (both
/// for the system's and the manager's moves). Reads the parties' addresses.
pub async fn of_move(app: &App, deal: &Deal, version: u64, by: Option<Role>) -> ApiResult<Vec<Notification>> {
    let users = super::parties(app, std::slice::from_ref(deal)).await?;
    let mut out = Vec::new();
    for (role, user) in
        [(Role::Supplier, Some(&deal.supplier_id)), (Role::Consumer, deal.consumer_id.as_ref())]
    {
        let Some(email) = email_of(&users, user) else { continue };
        if by == Some(role) {
            continue;
        }
        let message = match escalated_mail(deal).filter(|_| deal.state == State::Escalation) {
            Some(m) => Message::DealEscalated(m),
            None => Message::DealStateChanged(state_mail(deal)),
        };
        out.push(Notification::new(format!("deal-{}-v{version}-{}", deal.id, role.as_str()), email, message));
    }
    Ok(out)
}

/// The email of a change of terms to the other party, with the old and the new terms.
pub async fn of_terms(
    app: &App,
    before: &Deal,
    after: &Deal,
    version: u64,
    by: Role,
) -> ApiResult<Option<Notification>> {
    let (old, new) = (terms(before), terms(after));
    if old == new {
        return Ok(None);
    }
    let Some(other) = after.other_party(by).map(str::to_owned) else { return Ok(None) };
    let users = super::parties(app, std::slice::from_ref(after)).await?;
    let Some(email) = email_of(&users, Some(&other)) else { return Ok(None) };
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
