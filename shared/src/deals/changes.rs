//! Order changes: one party asks, the other confirms or rejects; one open change at a time.
//!
//! - `prolong_protection` (in `shipping`): moves `end_of_protection` to `prolong_protection_to`.
//! - `change_conditions` (in `rejected`): `changed_cost = new_cost`, `pay_back = cost − new_cost`,
//!   the deal moves to `received`.
//! - `purchase_return` (in `rejected`): `pay_back = cost`, the deal moves to `await_returning`.
//!
//! What is paid back comes out of what the supplier receives (never below nothing); the
//! commission taken stays taken: `pay_back + supplier_receive ≤ consumer_pay` after either.
//!
//! The two money-returning changes need the consumer's billing details (`consumer_billing_info`).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use super::locale;
use super::machine::{self, Actor};
use super::model::{ChangeStatus, ChangeType, Deal, OrderChange, Role, State};
use crate::error::ApiError;
use crate::money;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AllowedChange {
    pub change_type: &'static str,
    pub required_fields: Vec<&'static str>,
    pub locale: ChangeLocale,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeLocale {
    pub change_type: &'static str,
}

fn types_in(state: State) -> &'static [ChangeType] {
    match state {
        State::Shipping => &[ChangeType::ProlongProtection],
        State::Rejected => &[ChangeType::ChangeConditions, ChangeType::PurchaseReturn],
        _ => &[],
    }
}

fn required(deal: &Deal, t: ChangeType) -> Vec<&'static str> {
    match t {
        ChangeType::ChangeConditions | ChangeType::PurchaseReturn if deal.consumer_billing_info.is_none() => {
            vec!["consumer_billing_info"]
        }
        _ => vec![],
    }
}

/// `allowed_changes`: empty while a change is open or for someone who is not a party.
pub fn allowed(deal: &Deal, role: Role) -> Vec<AllowedChange> {
    if deal.requested_change().is_some() || role == Role::Manager {
        return vec![];
    }
    types_in(deal.state)
        .iter()
        .map(|t| AllowedChange {
            change_type: t.as_str(),
            required_fields: required(deal, *t),
            locale: ChangeLocale { change_type: locale::change_type(*t) },
        })
        .collect()
}

pub struct ChangeRequest {
    pub change_type: ChangeType,
    pub new_cost: Option<Decimal>,
    pub prolong_protection_to: Option<DateTime<Utc>>,
}

pub fn request(deal: &mut Deal, role: Role, req: ChangeRequest, now: DateTime<Utc>) -> Result<i64, ApiError> {
    if role == Role::Manager {
        return Err(ApiError::Forbidden("only a party of the deal can request a change".into()));
    }
    if deal.requested_change().is_some() {
        return Err(ApiError::bad_request("order_change", "another change is waiting for an answer"));
    }
    if !types_in(deal.state).contains(&req.change_type) {
        return Err(ApiError::bad_request(
            "order_change.change_type",
            format!("{} is not possible in state {}", req.change_type.as_str(), deal.state.as_str()),
        ));
    }
    if let Some(field) = required(deal, req.change_type).first() {
        return Err(ApiError::bad_request(*field, format!("{field} is required for this change")));
    }
    let (new_cost, prolong_to) = terms(deal, &req, now)?;
    let id = deal.changes.iter().map(|c| c.id).max().unwrap_or(0) + 1;
    deal.changes.push(OrderChange {
        id,
        change_type: req.change_type,
        status: ChangeStatus::Requested,
        requested_by: role,
        new_cost,
        prolong_protection_to: prolong_to,
        created_at: now,
        resolved_at: None,
    });
    deal.updated_at = now;
    Ok(id)
}

/// How far ahead a prolonged protection may end.
pub const MAX_PROLONG_DAYS: i64 = 365;

/// The new cost or the new end of protection the change asks for, checked.
type Terms = (Option<Decimal>, Option<DateTime<Utc>>);

fn terms(deal: &Deal, req: &ChangeRequest, now: DateTime<Utc>) -> Result<Terms, ApiError> {
    match req.change_type {
        ChangeType::ProlongProtection => {
            let to = req.prolong_protection_to.ok_or_else(|| {
                ApiError::invalid(
                    "order_change.prolong_protection_to",
                    "the new end of protection is required",
                )
            })?;
            if deal.end_of_protection.is_some_and(|end| end <= now) {
                return Err(ApiError::bad_request("order_change", "the protection has ended"));
            }
            if to <= deal.end_of_protection.unwrap_or(now) {
                return Err(ApiError::invalid(
                    "order_change.prolong_protection_to",
                    "must be later than the current end of protection",
                ));
            }
            if to > now + chrono::Duration::days(MAX_PROLONG_DAYS) {
                return Err(ApiError::invalid(
                    "order_change.prolong_protection_to",
                    format!("at most {MAX_PROLONG_DAYS} days from now"),
                ));
            }
            Ok((None, Some(to)))
        }
        ChangeType::ChangeConditions => {
            let cost = req
                .new_cost
                .ok_or_else(|| ApiError::invalid("order_change.new_cost", "the new cost is required"))?;
            if cost.is_sign_negative() || cost >= deal.cost || cost.normalize().scale() > 2 {
                return Err(ApiError::invalid(
                    "order_change.new_cost",
                    "must be at least 0 and less than the cost, with at most two decimals",
                ));
            }
            Ok((Some(money::round(cost)), None))
        }
        ChangeType::PurchaseReturn => Ok((None, None)),
    }
}

fn open_change(deal: &Deal, role: Role, id: i64) -> Result<usize, ApiError> {
    let idx = deal
        .changes
        .iter()
        .position(|c| c.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("order change {id}")))?;
    let c = &deal.changes[idx];
    if c.status != ChangeStatus::Requested {
        return Err(ApiError::bad_request("order_change", "this change was already answered"));
    }
    if role == Role::Manager || c.requested_by == role {
        return Err(ApiError::Forbidden("only the other party can answer this change".into()));
    }
    Ok(idx)
}

pub fn confirm(deal: &mut Deal, role: Role, id: i64, now: DateTime<Utc>) -> Result<(), ApiError> {
    let idx = open_change(deal, role, id)?;
    let change = deal.changes[idx].clone();
    deal.changes[idx].status = ChangeStatus::Confirmed;
    deal.changes[idx].resolved_at = Some(now);
    let actor = Actor::of(role);
    match change.change_type {
        ChangeType::ProlongProtection => deal.end_of_protection = change.prolong_protection_to,
        ChangeType::ChangeConditions => {
            let new_cost = change.new_cost.unwrap_or(deal.cost);
            deal.changed_cost = Some(new_cost);
            pay_back(deal, money::round(deal.cost - new_cost));
            machine::change_driven(deal, actor, State::Received, now)?;
        }
        ChangeType::PurchaseReturn => {
            pay_back(deal, deal.cost);
            machine::change_driven(deal, actor, State::AwaitReturning, now)?;
        }
    }
    deal.updated_at = now;
    Ok(())
}

/// `amount` goes back to the consumer, out of what the supplier receives.
pub(super) fn pay_back(deal: &mut Deal, amount: Decimal) {
    deal.pay_back = amount;
    deal.supplier_receive = (deal.supplier_receive - amount).max(Decimal::ZERO);
}

pub fn reject(deal: &mut Deal, role: Role, id: i64, now: DateTime<Utc>) -> Result<(), ApiError> {
    let idx = open_change(deal, role, id)?;
    deal.changes[idx].status = ChangeStatus::Rejected;
    deal.changes[idx].resolved_at = Some(now);
    deal.updated_at = now;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deals::commission::Payer;
    use crate::deals::fixture;
    use crate::error::named;
    use chrono::Duration;
    use rust_decimal_macros::dec;

    fn ask(t: ChangeType) -> ChangeRequest {
        ChangeRequest { change_type: t, new_cost: None, prolong_protection_to: None }
    }

    #[test]
    fn a_prolongation_is_asked_in_shipping_and_confirmed_by_the_other_party() {
        let now = Utc::now();
        let mut d = fixture("s", State::Shipping);
        d.end_of_protection = Some(now + Duration::days(2));
        let e = request(&mut d, Role::Consumer, ask(ChangeType::ProlongProtection), now).unwrap_err();
        assert_eq!(named(&e), "order_change.prolong_protection_to");
        let early = ChangeRequest {
            prolong_protection_to: Some(now + Duration::days(1)),
            ..ask(ChangeType::ProlongProtection)
        };
        assert_eq!(
            named(&request(&mut d, Role::Consumer, early, now).unwrap_err()),
            "order_change.prolong_protection_to"
        );
        let far = ChangeRequest {
            prolong_protection_to: Some(now + Duration::days(MAX_PROLONG_DAYS + 1)),
            ..ask(ChangeType::ProlongProtection)
        };
        assert_eq!(
            named(&request(&mut d, Role::Consumer, far, now).unwrap_err()),
            "order_change.prolong_protection_to"
        );
        let to = now + Duration::days(9);
        let later = ChangeRequest { prolong_protection_to: Some(to), ..ask(ChangeType::ProlongProtection) };
        // Once the protection has ended, nothing is prolonged.
        let same = ChangeRequest { prolong_protection_to: Some(to), ..ask(ChangeType::ProlongProtection) };
        let ended = request(&mut d.clone(), Role::Consumer, same, now + Duration::days(3)).unwrap_err();
        assert_eq!(named(&ended), "order_change");
        let id = request(&mut d, Role::Consumer, later, now).unwrap();
        assert_eq!(
            named(&request(&mut d, Role::Supplier, ask(ChangeType::ProlongProtection), now).unwrap_err()),
            "order_change"
        );
        assert!(allowed(&d, Role::Supplier).is_empty(), "one open change at a time");
        assert_eq!(named(&confirm(&mut d, Role::Consumer, id, now).unwrap_err()), "forbidden");
        assert_eq!(named(&confirm(&mut d, Role::Manager, id, now).unwrap_err()), "forbidden");
        confirm(&mut d, Role::Supplier, id, now).unwrap();
        assert_eq!(d.end_of_protection, Some(to));
        assert_eq!(named(&reject(&mut d, Role::Supplier, id, now).unwrap_err()), "order_change");
        assert_eq!(named(&confirm(&mut d, Role::Supplier, 99, now).unwrap_err()), "not found");
    }

    #[test]
    fn new_conditions_pay_back_the_difference_and_the_deal_is_received() {
        let now = Utc::now();
        let mut d = fixture("s", State::Rejected);
        let with = |c| ChangeRequest { new_cost: Some(c), ..ask(ChangeType::ChangeConditions) };
        for bad in [dec!(-1), dec!(1000), dec!(1200), dec!(10.001)] {
            assert_eq!(
                named(&request(&mut d, Role::Supplier, with(bad), now).unwrap_err()),
                "order_change.new_cost"
            );
        }
        let id = request(&mut d, Role::Supplier, with(dec!(600)), now).unwrap();
        confirm(&mut d, Role::Consumer, id, now).unwrap();
        assert_eq!((d.state, d.changed_cost, d.pay_back), (State::Received, Some(dec!(600)), dec!(400)));
    }

    #[test]
    fn a_return_pays_everything_back_and_needs_the_consumers_details() {
        let now = Utc::now();
        let mut d = fixture("s", State::Rejected);
        d.consumer_billing_info = None;
        assert_eq!(allowed(&d, Role::Consumer)[0].required_fields, ["consumer_billing_info"]);
        assert_eq!(
            named(&request(&mut d, Role::Consumer, ask(ChangeType::PurchaseReturn), now).unwrap_err()),
            "consumer_billing_info"
        );
        d.consumer_billing_info = Some(serde_json::json!({}));
        let id = request(&mut d, Role::Consumer, ask(ChangeType::PurchaseReturn), now).unwrap();
        reject(&mut d, Role::Supplier, id, now).unwrap();
        assert_eq!(d.state, State::Rejected);
        let id = request(&mut d, Role::Consumer, ask(ChangeType::PurchaseReturn), now).unwrap();
        confirm(&mut d, Role::Supplier, id, now).unwrap();
        assert_eq!((d.state, d.pay_back), (State::AwaitReturning, d.cost));
        assert_eq!(d.supplier_receive, Decimal::ZERO);
    }

    /// After either money-returning change, what goes back and what the supplier gets add up
    /// to what was paid less the commission (or less, when the supplier's share of the
    /// commission is more than the new cost leaves them), for every payer.
    #[test]
    fn what_is_paid_back_comes_out_of_the_suppliers_share() {
        let now = Utc::now();
        let cases = [
            (Payer::Consumer, Some(dec!(600)), dec!(400), dec!(600)),
            (Payer::Supplier, Some(dec!(600)), dec!(400), dec!(560)),
            (Payer::Half, Some(dec!(600)), dec!(400), dec!(580)),
            (Payer::Supplier, Some(dec!(20)), dec!(980), dec!(0)),
            (Payer::Supplier, Some(dec!(0)), dec!(1000), dec!(0)),
            (Payer::Consumer, None, dec!(1000), dec!(0)),
            (Payer::Supplier, None, dec!(1000), dec!(0)),
        ];
        for (payer, new_cost, back, supplier) in cases {
            let mut d = fixture("s", State::Rejected);
            d.commission_payer = payer;
            d.reprice(&crate::deals::commission::CommissionTable::default());
            let paid = d.consumer_pay;
            let (t, by, answer) = match new_cost {
                Some(_) => (ChangeType::ChangeConditions, Role::Supplier, Role::Consumer),
                None => (ChangeType::PurchaseReturn, Role::Consumer, Role::Supplier),
            };
            let id = request(&mut d, by, ChangeRequest { new_cost, ..ask(t) }, now).unwrap();
            confirm(&mut d, answer, id, now).unwrap();
            assert_eq!((d.pay_back, d.supplier_receive), (back, supplier), "{payer:?} {new_cost:?}");
            // The commission stays taken, or what is left of the payment when that is less.
            assert_eq!(paid - d.pay_back - d.supplier_receive, d.commission.min(paid - d.pay_back));
        }
    }

    #[test]
    fn changes_belong_to_shipping_and_rejected_and_to_the_parties() {
        let now = Utc::now();
        for s in [State::Pending, State::Paid, State::Received, State::Done] {
            let mut d = fixture("s", s);
            let e = request(&mut d, Role::Consumer, ask(ChangeType::PurchaseReturn), now).unwrap_err();
            assert_eq!(named(&e), "order_change.change_type", "{s:?}");
            assert!(allowed(&d, Role::Consumer).is_empty());
        }
        let mut d = fixture("s", State::Rejected);
        assert_eq!(
            named(&request(&mut d, Role::Manager, ask(ChangeType::PurchaseReturn), now).unwrap_err()),
            "forbidden"
        );
        assert!(allowed(&d, Role::Manager).is_empty());
    }
}
