//! The deal state machine (SPEC part A): who may move a deal where, and what it needs.
//!
//! Pure functions over [`Deal`]; persistence (a conditional write on the deal's version)
//! is the caller's job, so the rules are testable without a store.

use chrono::{DateTime, Duration, Utc};

use super::locale;
use super::model::{ChangeStatus, Claim, Deal, HistoryEntry, Role, State};
use crate::error::ApiError;

/// Who performs a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Supplier,
    Consumer,
    Manager,
    /// The scheduler or a payment gateway's confirmed callback.
    System,
}

impl Actor {
    pub fn of(role: Role) -> Actor {
        match role {
            Role::Supplier => Actor::Supplier,
            Role::Consumer => Actor::Consumer,
            Role::Manager => Actor::Manager,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Actor::Supplier => "supplier",
            Actor::Consumer => "consumer",
            Actor::Manager => "manager",
            Actor::System => "system",
        }
    }
}

/// How a transition is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// `POST /orders/:id/transitions`.
    Transition,
    /// `POST /orders/:id/claim`.
    Claim,
    /// Confirming an order change.
    Change,
}

struct Rule {
    from: State,
    to: State,
    by: &'static [Actor],
    via: Via,
}

const fn rule(from: State, to: State, by: &'static [Actor]) -> Rule {
    Rule { from, to, by, via: Via::Transition }
}

use Actor::{Consumer, Manager, Supplier, System};
use State::*;

const RULES: &[Rule] = &[
    rule(Pending, Approved, &[Supplier]),
    rule(Pending, PaymentVerification, &[Consumer]),
    rule(Approved, PaymentVerification, &[Consumer]),
    rule(PaymentVerification, Paid, &[Manager, System]),
    rule(Paid, Shipping, &[Supplier]),
    rule(Shipping, Received, &[Consumer, System]),
    Rule { from: Shipping, to: Rejected, by: &[Consumer], via: Via::Claim },
    rule(Rejected, Received, &[Consumer]),
    rule(Rejected, Escalation, &[Manager, System]),
    // The manager decides an escalated dispute: for the supplier (received) or for the
    // consumer (the goods go back and the cost is paid back).
    rule(Escalation, Received, &[Manager]),
    rule(Escalation, AwaitReturning, &[Manager]),
    Rule { from: Rejected, to: AwaitReturning, by: &[Supplier, Consumer], via: Via::Change },
    rule(AwaitReturning, Returned, &[Supplier]),
    rule(Received, PayoutInitiated, &[Manager, System]),
    rule(Returned, PayoutInitiated, &[Manager, System]),
    rule(PayoutInitiated, Done, &[Manager, System]),
    rule(Pending, Cancelled, &[Supplier, Consumer]),
    rule(Approved, Cancelled, &[Supplier, Consumer]),
];

/// Whether the rule fits this deal at all (beyond who asks and which fields are filled).
fn applies(deal: &Deal, r: &Rule) -> bool {
    match (r.from, r.to) {
        // A consumer-created deal (or one whose terms the consumer changed) is approved by
        // the supplier before it is paid; a supplier-created deal is confirmed by the
        // consumer paying for it.
        (Pending, Approved) => deal.awaits_supplier(),
        (Pending, PaymentVerification) => !deal.awaits_supplier(),
        _ => true,
    }
}

/// Deal fields the transition needs that are not filled yet.
pub fn missing_fields(deal: &Deal, to: State) -> Vec<&'static str> {
    let mut missing = Vec::new();
    match to {
        Approved if deal.supplier_billing_info.is_none() => missing.push("supplier_billing_info"),
        PaymentVerification => {
            if deal.consumer_id.is_none() {
                missing.push("consumer_id");
            }
            if deal.payment.is_none() && deal.gateway_payment.is_none() {
                missing.push("payment");
            }
        }
        Paid if deal.payment.is_none() && deal.gateway_payment.is_none() => missing.push("payment"),
        Shipping => {
            if deal.shipping_info.is_none() {
                missing.push("shipping_info");
            }
            if deal.supplier_billing_info.is_none() {
                missing.push("supplier_billing_info");
            }
        }
        Rejected if deal.claim.is_none() => missing.push("claim"),
        _ => {}
    }
    missing
}

/// One entry of `GET /orders/:id/transitions`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TransitionInfo {
    pub to_state: &'static str,
    pub can_perform: bool,
    pub required_fields: Vec<&'static str>,
    pub locale: TransitionLocale,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TransitionLocale {
    pub to_state: &'static str,
    pub transition: &'static str,
}

/// The transitions out of the deal's state that people (not only the scheduler) perform,
/// with whether `actor` can perform each now.
pub fn available(deal: &Deal, actor: Actor) -> Vec<TransitionInfo> {
    RULES
        .iter()
        .filter(|r| r.from == deal.state && applies(deal, r) && r.via != Via::Change)
        .filter(|r| r.by.iter().any(|a| *a != System))
        .map(|r| {
            let mut required = missing_fields(deal, r.to);
            if r.via == Via::Claim && !required.contains(&"claim") {
                required.push("claim");
            }
            let allowed = r.by.contains(&actor);
            TransitionInfo {
                to_state: r.to.as_str(),
                can_perform: allowed && required.is_empty(),
                required_fields: required,
                locale: TransitionLocale {
                    to_state: locale::state(r.to),
                    transition: locale::transition(r.to),
                },
            }
        })
        .collect()
}

fn find_rule(deal: &Deal, to: State) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.from == deal.state && r.to == to && applies(deal, r))
}

fn check(deal: &Deal, actor: Actor, to: State, via: Via) -> Result<(), ApiError> {
    let rule = find_rule(deal, to).ok_or_else(|| {
        ApiError::bad_request(
            "to_state",
            format!("a deal in state {} cannot move to {}", deal.state.as_str(), to.as_str()),
        )
    })?;
    if !rule.by.contains(&actor) {
        return Err(ApiError::Forbidden(format!(
            "the {} cannot move this deal to {}",
            actor.as_str(),
            to.as_str()
        )));
    }
    if rule.via != via {
        let how = match rule.via {
            Via::Claim => "file a claim with POST /orders/:id/claim",
            Via::Change => "confirm a purchase_return order change",
            Via::Transition => "use POST /orders/:id/transitions",
        };
        return Err(ApiError::bad_request("to_state", format!("to move to {}, {how}", to.as_str())));
    }
    if let Some(field) = missing_fields(deal, to).first() {
        return Err(ApiError::bad_request(*field, format!("{field} is required to move to {}", to.as_str())));
    }
    Ok(())
}

/// Moves the deal and applies the transition's effects (protection dates, history).
fn apply(deal: &mut Deal, actor: Actor, to: State, now: DateTime<Utc>) {
    let from = deal.state;
    match to {
        Shipping => {
            let days = deal.supply_days.unwrap_or(0) + deal.verify_days;
            deal.end_of_protection = Some(now + Duration::days(days));
        }
        Rejected => {
            deal.end_of_protection = None;
            deal.escalation_date = Some(now + Duration::days(super::ESCALATION_DAYS));
        }
        // Only a rejected deal has an escalation date; leaving it for either ends the wait.
        Received | AwaitReturning => {
            deal.escalation_date = None;
            if to == AwaitReturning && from == Escalation {
                // The manager's return: as a confirmed purchase_return.
                super::changes::pay_back(deal, deal.cost);
            }
        }
        _ => {}
    }
    // A change asked for in the old state no longer applies.
    for c in deal.changes.iter_mut().filter(|c| c.status == ChangeStatus::Requested) {
        c.status = ChangeStatus::Rejected;
        c.resolved_at = Some(now);
    }
    deal.state = to;
    deal.history.push(HistoryEntry { from, to, by: actor.as_str().to_owned(), at: now });
    deal.updated_at = now;
}

/// `POST /orders/:id/transitions`: 403 for the wrong party, 400 for a state that cannot be
/// reached from here or whose required fields are missing.
pub fn transition(deal: &mut Deal, actor: Actor, to: State, now: DateTime<Utc>) -> Result<(), ApiError> {
    check(deal, actor, to, Via::Transition)?;
    apply(deal, actor, to, now);
    Ok(())
}

/// `POST /orders/:id/claim`: shipping → rejected, with the claim recorded.
pub fn file_claim(
    deal: &mut Deal,
    actor: Actor,
    reason: String,
    description: Option<String>,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let mut with_claim = deal.clone();
    with_claim.claim = Some(Claim { reason, description, created_at: now });
    check(&with_claim, actor, Rejected, Via::Claim)?;
    if let Some(end) = deal.end_of_protection.filter(|end| *end <= now) {
        // The deal is received (the scheduler moves it at its next run): too late to dispute.
        return Err(ApiError::bad_request(
            "claim",
            format!("the protection ended at {}", end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        ));
    }
    apply(&mut with_claim, actor, Rejected, now);
    *deal = with_claim;
    Ok(())
}

/// A state change that results from a confirmed order change.
pub(super) fn change_driven(
    deal: &mut Deal,
    actor: Actor,
    to: State,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    if find_rule(deal, to).is_none() {
        return Err(ApiError::bad_request("order_change", "the change does not apply in this state"));
    }
    apply(deal, actor, to, now);
    Ok(())
}

/// What the scheduler does with a deal now, if anything: protection over → received;
/// claim unanswered for 7 days → escalation; received/returned → payout initiated.
pub fn due(deal: &Deal, now: DateTime<Utc>) -> Option<State> {
    match deal.state {
        Shipping if deal.end_of_protection.is_some_and(|t| t <= now) => Some(Received),
        Rejected if deal.escalation_date.is_some_and(|t| t <= now) => Some(Escalation),
        Received | Returned => Some(PayoutInitiated),
        _ => None,
    }
}

/// When the deal will next be due for the scheduler (the index key of the due list).
pub fn due_at(deal: &Deal) -> Option<DateTime<Utc>> {
    match deal.state {
        Shipping => deal.end_of_protection,
        Rejected => deal.escalation_date,
        Received | Returned => Some(deal.updated_at),
        _ => None,
    }
}

/// Applies a scheduler transition (checked by [`due`]).
pub fn system_move(deal: &mut Deal, to: State, now: DateTime<Utc>) -> Result<(), ApiError> {
    check(deal, System, to, Via::Transition)?;
    apply(deal, System, to, now);
    Ok(())
}

/// A card payment of the deal's amount was confirmed by its gateway: `payment_verification →
/// paid`, or both steps when the consumer had not moved the deal yet. Refused (so the payment
/// is returned) when the deal takes no payment now.
pub fn card_paid(deal: &mut Deal, payment_id: &str, now: DateTime<Utc>) -> Result<(), ApiError> {
    if !deal.payable() {
        return Err(ApiError::bad_request(
            "state",
            format!("a deal in state {} takes no payment", deal.state.as_str()),
        ));
    }
    deal.gateway_payment = Some(payment_id.to_owned());
    if deal.state != PaymentVerification {
        change_driven(deal, System, PaymentVerification, now)?;
    }
    system_move(deal, Paid, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deals::fixture;
    use crate::error::named;

    /// A deal where `r` applies: pending rules depend on who created the deal.
    fn deal_for(r: &Rule) -> Deal {
        let creator = if (r.from, r.to) == (Pending, Approved) { "c" } else { "s" };
        fixture(creator, r.from)
    }

    #[test]
    fn every_rule_moves_for_its_actors_only_and_by_its_own_way() {
        let now = Utc::now();
        let actors = [Supplier, Consumer, Manager, System];
        for r in RULES {
            for actor in actors {
                let mut d = deal_for(r);
                let result = match r.via {
                    Via::Claim => file_claim(&mut d, actor, "broken".into(), None, now),
                    _ => transition(&mut d, actor, r.to, now),
                };
                let what = format!("{:?} -> {:?} by {actor:?}", r.from, r.to);
                match (r.by.contains(&actor), r.via) {
                    (true, Via::Change) => assert_eq!(named(&result.unwrap_err()), "to_state", "{what}"),
                    (true, _) => {
                        result.unwrap_or_else(|e| panic!("{what}: {e}"));
                        assert_eq!(d.state, r.to, "{what}");
                        let last = d.history.last().unwrap();
                        assert_eq!((last.from, last.to, last.by.as_str()), (r.from, r.to, actor.as_str()));
                    }
                    (false, _) => {
                        assert_eq!(named(&result.unwrap_err()), "forbidden", "{what}");
                        assert_eq!(d.state, r.from, "{what}: a refused move changes nothing");
                    }
                }
            }
        }
    }

    #[test]
    fn a_claim_is_filed_only_through_the_claim_endpoint() {
        let mut d = fixture("s", Shipping);
        assert_eq!(named(&transition(&mut d, Consumer, Rejected, Utc::now()).unwrap_err()), "to_state");
    }

    #[test]
    fn moves_no_rule_allows_are_refused() {
        for from in State::ALL {
            for to in State::ALL {
                let allowed = RULES.iter().any(|r| r.from == from && r.to == to);
                let mut d = fixture("s", from);
                if !allowed {
                    let e = transition(&mut d, Manager, to, Utc::now()).unwrap_err();
                    assert_eq!(named(&e), "to_state", "{from:?} -> {to:?}");
                }
            }
        }
    }

    #[test]
    fn who_created_the_deal_decides_how_it_leaves_pending() {
        let now = Utc::now();
        let mut by_consumer = fixture("c", Pending);
        assert_eq!(
            named(&transition(&mut by_consumer, Consumer, PaymentVerification, now).unwrap_err()),
            "to_state"
        );
        transition(&mut by_consumer, Supplier, Approved, now).unwrap();
        let mut by_supplier = fixture("s", Pending);
        assert_eq!(named(&transition(&mut by_supplier, Supplier, Approved, now).unwrap_err()), "to_state");
        transition(&mut by_supplier, Consumer, PaymentVerification, now).unwrap();
    }

    #[test]
    fn a_move_needs_its_fields() {
        let now = Utc::now();
        let mut d = fixture("s", Paid);
        d.shipping_info = None;
        assert_eq!(named(&transition(&mut d, Supplier, Shipping, now).unwrap_err()), "shipping_info");
        let mut d = fixture("c", Pending);
        d.supplier_billing_info = None;
        assert_eq!(missing_fields(&d, Approved), ["supplier_billing_info"]);
        let mut d = fixture("s", Pending);
        d.gateway_payment = None;
        d.consumer_id = None;
        assert_eq!(missing_fields(&d, PaymentVerification), ["consumer_id", "payment"]);
        let listed = available(&d, Consumer);
        let pay = listed.iter().find(|t| t.to_state == "payment_verification").unwrap();
        assert!(!pay.can_perform && pay.required_fields == ["consumer_id", "payment"]);
        assert!(listed.iter().any(|t| t.to_state == "cancelled" && t.can_perform));
        // Paid needs a payment, Rejected a claim.
        let mut d = fixture("s", PaymentVerification);
        d.payment = None;
        d.gateway_payment = None;
        assert_eq!(missing_fields(&d, Paid), ["payment"]);
        let mut d = fixture("s", Shipping);
        d.claim = None;
        assert_eq!(missing_fields(&d, Rejected), ["claim"]);
    }

    #[test]
    fn shipping_starts_protection_and_a_claim_starts_escalation() {
        let now = Utc::now();
        let mut d = fixture("s", Paid);
        d.changes.push(crate::deals::model::OrderChange {
            id: 1,
            change_type: crate::deals::model::ChangeType::ProlongProtection,
            status: ChangeStatus::Requested,
            requested_by: Role::Consumer,
            new_cost: None,
            prolong_protection_to: None,
            created_at: now,
            resolved_at: None,
        });
        transition(&mut d, Supplier, Shipping, now).unwrap();
        assert_eq!(d.end_of_protection, Some(now + Duration::days(5)));
        assert_eq!(d.changes[0].status, ChangeStatus::Rejected, "a change of the old state lapses");
        let mut late = d.clone();
        let after = now + Duration::days(5);
        let e = file_claim(&mut late, Consumer, "broken".into(), None, after).unwrap_err();
        assert_eq!(named(&e), "claim", "no claim once the protection ended");
        assert_eq!(late.state, Shipping);
        file_claim(&mut d, Consumer, "broken".into(), None, now).unwrap();
        assert_eq!(d.end_of_protection, None);
        assert_eq!(d.escalation_date, Some(now + Duration::days(super::super::ESCALATION_DAYS)));
        transition(&mut d, Consumer, Received, now).unwrap();
        assert_eq!(d.escalation_date, None);
    }

    #[test]
    fn the_scheduler_moves_what_is_due_and_nothing_else() {
        let now = Utc::now();
        let mut d = fixture("s", Shipping);
        d.end_of_protection = Some(now + Duration::seconds(1));
        assert_eq!(due(&d, now), None);
        assert_eq!(due(&d, now + Duration::seconds(1)), Some(Received));
        assert_eq!(due_at(&d), d.end_of_protection);
        let mut r = fixture("s", Rejected);
        r.escalation_date = Some(now + Duration::seconds(1));
        assert_eq!(due(&r, now), None, "a claim still within its answer period");
        assert_eq!(due(&r, now + Duration::seconds(1)), Some(Escalation));
        assert_eq!(due_at(&r), r.escalation_date);
        for s in [Received, Returned] {
            assert_eq!(due(&fixture("s", s), now), Some(PayoutInitiated));
        }
        for s in [Pending, Approved, PaymentVerification, Paid, Escalation, PayoutInitiated, Done, Cancelled]
        {
            assert_eq!(due(&fixture("s", s), now), None, "{s:?}");
        }
        let mut paid = fixture("s", Paid);
        assert_eq!(named(&system_move(&mut paid, Shipping, now).unwrap_err()), "forbidden");
    }

    #[test]
    fn a_card_payment_pays_only_a_payable_deal() {
        let now = Utc::now();
        let mut d = fixture("s", Pending);
        card_paid(&mut d, "pay-1", now).unwrap();
        assert_eq!(d.state, Paid);
        assert_eq!(d.history.iter().map(|h| h.to).collect::<Vec<_>>(), [PaymentVerification, Paid]);
        let mut c = fixture("c", Pending);
        assert_eq!(named(&card_paid(&mut c, "pay-2", now).unwrap_err()), "state", "not approved yet");
        let mut shipped = fixture("s", Shipping);
        assert_eq!(named(&card_paid(&mut shipped, "pay-3", now).unwrap_err()), "state");
        assert_eq!(shipped.gateway_payment.as_deref(), Some("p1"), "a refused payment is not recorded");
    }
}
