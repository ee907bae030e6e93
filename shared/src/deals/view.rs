//! The deal JSON of seed 003 ("Возвращает" table), as seen by one caller.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;

use super::changes::{self, AllowedChange};
use super::locale;
use super::machine::{self, Actor, TransitionInfo};
use super::model::{Attachment, ChangeStatus, Deal, OrderChange, Role};
use crate::money;
use crate::users::{User, UserId, UserView};

#[derive(Serialize)]
pub struct AttachmentView<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub content_type: &'a str,
    pub size: usize,
    pub link: String,
}

#[derive(Serialize)]
pub struct ChangeView {
    pub id: i64,
    pub change_type: &'static str,
    pub status: ChangeStatus,
    pub requested_by: &'static str,
    #[serde(with = "money::number_opt")]
    pub new_cost: Option<Decimal>,
    #[serde(default, with = "crate::time::utc_opt")]
    pub prolong_protection_to: Option<DateTime<Utc>>,
    #[serde(with = "crate::time::utc")]
    pub created_at: DateTime<Utc>,
    pub locale: changes::ChangeLocale,
}

impl ChangeView {
    fn of(c: &OrderChange) -> ChangeView {
        ChangeView {
            id: c.id,
            change_type: c.change_type.as_str(),
            status: c.status,
            requested_by: c.requested_by.as_str(),
            new_cost: c.new_cost,
            prolong_protection_to: c.prolong_protection_to,
            created_at: c.created_at,
            locale: changes::ChangeLocale { change_type: locale::change_type(c.change_type) },
        }
    }
}

#[derive(Serialize)]
pub struct DealLocale {
    pub state: &'static str,
    pub display_state: String,
}

/// Borrowed from the deal and the profiles it shows: an answer copies none of their text.
#[derive(Serialize)]
pub struct DealView<'a> {
    pub id: i64,
    pub state: &'static str,
    pub title: Option<&'a str>,
    pub order_description: &'a str,
    pub supply_description: Option<&'a str>,
    #[serde(with = "money::number")]
    pub cost: Decimal,
    #[serde(with = "money::number_opt")]
    pub changed_cost: Option<Decimal>,
    #[serde(with = "money::number_opt")]
    pub supply_cost: Option<Decimal>,
    pub supply_days: Option<i64>,
    pub verify_days: i64,
    pub commission_payer: super::Payer,
    #[serde(with = "money::number")]
    pub commission: Decimal,
    pub commission_description: String,
    #[serde(with = "money::number")]
    pub consumer_pay: Decimal,
    #[serde(with = "money::number")]
    pub supplier_receive: Decimal,
    #[serde(with = "money::number")]
    pub pay_back: Decimal,
    pub owner_id: UserId<'a>,
    pub supplier_id: UserId<'a>,
    pub supplier: Option<UserView<'a>>,
    pub consumer_id: Option<UserId<'a>>,
    pub consumer: Option<UserView<'a>>,
    pub client_data: Option<&'a Value>,
    #[serde(default, with = "crate::time::utc_opt")]
    pub end_of_protection: Option<DateTime<Utc>>,
    #[serde(default, with = "crate::time::utc_opt")]
    pub escalation_date: Option<DateTime<Utc>>,
    pub attachments: Vec<AttachmentView<'a>>,
    pub manager_comment: Option<&'a str>,
    pub role: &'static str,
    pub billing_info: Option<&'a Value>,
    pub supplier_billing_info: Option<&'a Value>,
    pub consumer_billing_info: Option<&'a Value>,
    pub shipping_info: Option<&'a Value>,
    pub claim: Option<&'a super::model::Claim>,
    pub allowed_changes: Vec<AllowedChange>,
    pub requested_change: Option<ChangeView>,
    pub transitions: Vec<TransitionInfo>,
    pub locale: DealLocale,
    /// Where the deal's webhook messages also go (see `webhooks`), when a party set it.
    pub callback_url: Option<&'a str>,
    #[serde(with = "crate::time::utc")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::time::utc")]
    pub updated_at: DateTime<Utc>,
}

fn attachment<'a>(base: &str, deal: i64, a: &'a Attachment) -> AttachmentView<'a> {
    AttachmentView {
        id: &a.id,
        name: &a.name,
        content_type: &a.content_type,
        size: a.size,
        link: format!("{base}/api/v1/orders/{deal}/attachments/{}", a.id),
    }
}

/// What a party set for themselves (payment details; a callback URL, which may carry their
/// token), as `role` reads it: theirs and the manager's to read, `null` for the other party.
struct Own<'a> {
    billing_info: Option<&'a Value>,
    supplier_billing_info: Option<&'a Value>,
    consumer_billing_info: Option<&'a Value>,
    callback_url: Option<&'a str>,
}

impl<'a> Own<'a> {
    fn of(deal: &'a Deal, role: Role) -> Own<'a> {
        let reads = |owner: Option<Role>| role == Role::Manager || owner == Some(role);
        let callback_owner = deal.callback_owner.as_deref().and_then(|o| deal.role_of(o));
        Own {
            billing_info: match role {
                Role::Supplier => deal.supplier_billing_info.as_ref(),
                Role::Consumer => deal.consumer_billing_info.as_ref(),
                Role::Manager => None,
            },
            supplier_billing_info: deal
                .supplier_billing_info
                .as_ref()
                .filter(|_| reads(Some(Role::Supplier))),
            consumer_billing_info: deal
                .consumer_billing_info
                .as_ref()
                .filter(|_| reads(Some(Role::Consumer))),
            callback_url: deal.callback_url.as_deref().filter(|_| reads(callback_owner)),
        }
    }
}

impl<'a> DealView<'a> {
    pub fn new(
        deal: &'a Deal,
        role: Role,
        users: &'a HashMap<String, Arc<User>>,
        base_url: &str,
    ) -> DealView<'a> {
        let user = |id: &'a str| users.get(id).map(|u| u.view()).unwrap_or_else(|| UserView::id_only(id));
        let own = Own::of(deal, role);
        DealView {
            id: deal.id,
            state: deal.state.as_str(),
            title: deal.title.as_deref(),
            order_description: &deal.order_description,
            supply_description: deal.supply_description.as_deref(),
            cost: deal.cost,
            changed_cost: deal.changed_cost,
            supply_cost: deal.supply_cost,
            supply_days: deal.supply_days,
            verify_days: deal.verify_days,
            commission_payer: deal.commission_payer,
            commission: deal.commission,
            commission_description: super::commission::describe(deal.commission_percent),
            consumer_pay: deal.consumer_pay,
            supplier_receive: deal.supplier_receive,
            pay_back: deal.pay_back,
            owner_id: UserId(&deal.owner_id),
            supplier_id: UserId(&deal.supplier_id),
            supplier: Some(user(&deal.supplier_id)),
            consumer_id: deal.consumer_id.as_deref().map(UserId),
            consumer: deal.consumer_id.as_deref().map(user),
            client_data: deal.client_data.as_ref(),
            end_of_protection: deal.end_of_protection,
            escalation_date: deal.escalation_date,
            attachments: deal.attachments.iter().map(|a| attachment(base_url, deal.id, a)).collect(),
            manager_comment: deal.manager_comment.as_deref(),
            role: role.as_str(),
            billing_info: own.billing_info,
            supplier_billing_info: own.supplier_billing_info,
            consumer_billing_info: own.consumer_billing_info,
            shipping_info: deal.shipping_info.as_ref(),
            claim: deal.claim.as_ref(),
            allowed_changes: changes::allowed(deal, role),
            requested_change: deal.requested_change().map(ChangeView::of),
            transitions: machine::available(deal, Actor::of(role)),
            locale: DealLocale {
                state: locale::state(deal.state),
                display_state: locale::display_state(deal),
            },
            callback_url: own.callback_url,
            created_at: deal.created_at,
            updated_at: deal.updated_at,
        }
    }
}
