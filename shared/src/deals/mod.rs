//! Escrow deals (SPEC part A, seed 003): the service over the store.
//!
//! Storage (one table):
//! - the deal: `pk = deal#<id>`, `sk = deal`; versioned, every change a conditional write on
//!   its version. While the scheduler has something to do with it (protection running, a
//!   claim waiting, a payout to start), it sits in the due index:
//!   `gsi1pk = deals#due`, `gsi1sk = <due time>#<id>`.
//! - membership (for `GET /orders`): `pk = user#<user id>`, `sk = deal#<zero-padded id>`,
//!   one per party, written in the same transaction as the deal.
//! - attachment content: `pk = deal#<id>`, `sk = attachment#<attachment id>` (base64).
//! - ids: atomic counters `counter#deal`, `counter#deal_payment`.

pub mod changes;
pub mod commission;
#[cfg(feature = "invoice")]
pub mod invoice;
pub mod locale;
pub mod machine;
pub mod model;
pub mod notices;
pub mod payment_owner;
pub mod view;

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};

pub use commission::{Breakdown, CommissionTable, Payer};
use machine::Actor;
use model::{Attachment, InvoicePayment};
pub use model::{Deal, Role, State};

use crate::auth::Claims;
use crate::error::{ApiError, ApiResult};
use crate::store::{Cond, Counter, Item, QueryOpts, WriteOp};
use crate::users::{self, User};
use crate::{App, Tally};

/// Days from a claim to automatic escalation.
pub const ESCALATION_DAYS: i64 = 7;
/// The smallest deal cost, roubles.
pub const MIN_COST: Decimal = Decimal::from_parts(20, 0, 0, false, 0);
/// At most this many attachments per deal.
pub const MAX_ATTACHMENTS: usize = 10;
/// Attachment types accepted.
pub const ATTACHMENT_TYPES: [&str; 9] = [
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "text/plain",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
];
const DUE_INDEX: &str = "deals#due";
/// The owner kind of a deal's card payments.
pub const OWNER_KIND: &str = "deal";

fn deal_pk(id: i64) -> String {
    ["deal#", itoa::Buffer::new().format(id)].concat()
}

fn member_key(user: &str, id: i64) -> (String, String) {
    (format!("user#{user}"), format!("deal#{id:012}"))
}

/// A deal as loaded, with the version its next write must expect.
pub struct Loaded {
    pub deal: Deal,
    pub version: u64,
}

fn deal_item(deal: &Deal, version: u64) -> ApiResult<Item> {
    let mut item = Item::typed(deal_pk(deal.id), "deal", deal.clone())?.with_version(version);
    if let Some(at) = machine::due_at(deal) {
        item = item.with_gsi1(DUE_INDEX, format!("{}#{:012}", due_key(at), deal.id));
    }
    Ok(item)
}

/// A deal's entry in its state's list (the managers' queues: `GET /api/v1/orders?state=`):
/// `deals#state#<state>` / `<id, 12 digits>`, so a list is one query, newest first.
fn state_key(state: State, id: i64) -> (String, String) {
    (format!("deals#state#{}", state.as_str()), format!("{id:012}"))
}

/// The writes that move the deal's state entry from `old`'s state to `new`'s (none when the
/// state is the same), in the transaction that writes the deal.
pub(crate) fn state_ops(old: Option<&Deal>, new: &Deal) -> Vec<WriteOp> {
    if old.is_some_and(|o| o.state == new.state) {
        return Vec::new();
    }
    let mut ops = Vec::new();
    if let Some(o) = old {
        let (pk, sk) = state_key(o.state, o.id);
        ops.push(WriteOp::Delete { pk, sk, cond: Cond::Always });
    }
    let (pk, sk) = state_key(new.state, new.id);
    let data = json!({ "deal_id": new.id }).as_object().cloned().unwrap_or_default();
    ops.push(WriteOp::Put { item: Item::new(pk, sk, data), cond: Cond::Always });
    ops
}

fn member_item(user: &str, id: i64) -> Item {
    let (pk, sk) = member_key(user, id);
    Item::new(pk, sk, json!({ "deal_id": id }).as_object().cloned().unwrap_or_default())
}

pub async fn load(app: &App, id: i64) -> ApiResult<Option<Loaded>> {
    Ok(read(app, id).await?.map(|(version, deal)| Loaded { deal: Arc::unwrap_or_clone(deal), version }))
}

/// The deal and its version, shared with the store's item instead of copied.
async fn read(app: &App, id: i64) -> ApiResult<Option<(u64, Arc<Deal>)>> {
    let pk = deal_pk(id);
    Ok(match app.store.get_data(&pk, "deal").await? {
        Some((version, data)) => Some((version, data.decode_shared(&pk, "deal")?)),
        None => None,
    })
}

/// The deal as the caller may see it, shared with the store's item instead of copied: for a
/// read that only answers it. A party or a manager; anyone else gets 404.
pub async fn read_for(app: &App, who: &Claims, id: i64) -> ApiResult<(Arc<Deal>, Role)> {
    let (_, deal) = read(app, id).await?.ok_or_else(|| ApiError::NotFound(format!("order {id}")))?;
    let role = role_for(&deal, who).ok_or_else(|| ApiError::NotFound(format!("order {id}")))?;
    Ok((deal, role))
}

/// The caller's role in a deal: a party's, or a manager's; `None` for anyone else.
fn role_for(deal: &Deal, who: &Claims) -> Option<Role> {
    deal.role_of(&who.sub).or_else(|| who.has_role("manager").then_some(Role::Manager))
}

/// The deal as the caller may see it: a party, or a manager. Anyone else gets 404.
pub async fn load_for(app: &App, who: &Claims, id: i64) -> ApiResult<(Loaded, Role)> {
    let loaded = load(app, id).await?.ok_or_else(|| ApiError::NotFound(format!("order {id}")))?;
    let role = role_for(&loaded.deal, who).ok_or_else(|| ApiError::NotFound(format!("order {id}")))?;
    Ok((loaded, role))
}

/// Writes the deal if nobody changed it since it was loaded (409 otherwise), with any extra
/// ops in the same transaction.
async fn save(app: &App, loaded: &Loaded, deal: &Deal, mut extra: Vec<WriteOp>) -> ApiResult<u64> {
    let version = loaded.version + 1;
    let item = deal_item(deal, version)?;
    extra.extend(state_ops(Some(&loaded.deal), deal));
    if extra.is_empty() {
        app.store.put(item, Cond::Version(loaded.version)).await?;
    } else {
        extra.insert(0, WriteOp::Put { item, cond: Cond::Version(loaded.version) });
        app.store.transact(extra).await.map_err(|e| match e {
            crate::store::StoreError::Conflict { index: Some(0) } => {
                ApiError::Conflict("the order was changed by another request; re-read and retry".into())
            }
            other => other.into(),
        })?;
    }
    Ok(version)
}

pub fn check_cost(field: &str, cost: Decimal) -> ApiResult<()> {
    if cost < MIN_COST {
        return Err(ApiError::invalid(field, "cost must be at least 20.00"));
    }
    // More than two decimals that are not zeros (`20.000` is 20.00); no `normalize`, which
    // divides by ten once for every trailing zero of every cost.
    let scale = cost.scale();
    if scale > 2 && cost.mantissa() % 10i128.pow(scale - 2) != 0 {
        return Err(ApiError::invalid(field, "cost has more than two decimals"));
    }
    if cost > Decimal::from(1_000_000_000_000i64) {
        return Err(ApiError::invalid(field, "cost is too large"));
    }
    Ok(())
}

/// An attachment as uploaded: content in base64.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentUpload {
    pub name: String,
    pub content_type: String,
    pub content: String,
}

/// The fields of `POST /orders` and `PATCH /orders/:id` (all optional here; create checks
/// the required ones).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DealFields {
    pub order_description: Option<String>,
    #[serde(default, deserialize_with = "crate::de::opt_id")]
    pub supplier_id: Option<String>,
    pub cost: Option<Decimal>,
    #[serde(default, deserialize_with = "crate::de::opt_int")]
    pub verify_days: Option<i64>,
    pub commission_payer: Option<Payer>,
    pub title: Option<String>,
    #[serde(default, deserialize_with = "crate::de::opt_id")]
    pub consumer_id: Option<String>,
    pub supply_cost: Option<Decimal>,
    pub supply_description: Option<String>,
    #[serde(default, deserialize_with = "crate::de::opt_int")]
    pub supply_days: Option<i64>,
    pub client_data: Option<Value>,
    pub attachments: Option<Vec<AttachmentUpload>>,
    /// The supplier's payout details (needed to approve and to ship).
    pub supplier_billing_info: Option<Value>,
    /// The consumer's details for money returned (needed for `change_conditions`, `purchase_return`).
    pub consumer_billing_info: Option<Value>,
    /// Shipping details (needed to move to `shipping`).
    pub shipping_info: Option<Value>,
    /// Where the deal's webhook messages also go (https; in production never an internal
    /// address), signed with the setter's webhook secret; `""` in a PATCH removes it.
    pub callback_url: Option<String>,
}

fn text(field: &str, v: &Option<String>, max: usize) -> ApiResult<()> {
    match v {
        Some(s) if s.trim().is_empty() => Err(ApiError::invalid(field, "must not be empty")),
        Some(s) if s.chars().count() > max => {
            Err(ApiError::invalid(field, format!("at most {max} characters")))
        }
        _ => Ok(()),
    }
}

fn days(field: &str, v: Option<i64>) -> ApiResult<()> {
    match v {
        Some(d) if !(0..=365).contains(&d) => Err(ApiError::invalid(field, "must be 0 to 365 days")),
        _ => Ok(()),
    }
}

fn object(field: &str, v: &Option<Value>) -> ApiResult<()> {
    match v {
        Some(v @ Value::Object(_)) => crate::freeform::check(field, v),
        None => Ok(()),
        Some(_) => Err(ApiError::invalid(field, "must be a JSON object")),
    }
}

fn validate_fields(f: &DealFields) -> ApiResult<()> {
    text("order.order_description", &f.order_description, 5000)?;
    text("order.title", &f.title, 255)?;
    text("order.supply_description", &f.supply_description, 5000)?;
    if let Some(c) = f.cost {
        check_cost("order.cost", c)?;
    }
    if let Some(c) = f.supply_cost
        && (c.is_sign_negative() || c.normalize().scale() > 2)
    {
        return Err(ApiError::invalid(
            "order.supply_cost",
            "must be a non-negative amount with two decimals",
        ));
    }
    days("order.verify_days", f.verify_days)?;
    days("order.supply_days", f.supply_days)?;
    if f.verify_days == Some(0) {
        return Err(ApiError::invalid("order.verify_days", "must be at least 1 day"));
    }
    object("order.supplier_billing_info", &f.supplier_billing_info)?;
    object("order.consumer_billing_info", &f.consumer_billing_info)?;
    object("order.shipping_info", &f.shipping_info)?;
    if let Some(v) = &f.client_data {
        crate::freeform::check("order.client_data", v)?;
    }
    Ok(())
}

/// Decodes and checks uploads; returns their metadata and the content items to write.
fn take_attachments(app: &App, deal: &mut Deal, uploads: Vec<AttachmentUpload>) -> ApiResult<Vec<WriteOp>> {
    if deal.attachments.len() + uploads.len() > MAX_ATTACHMENTS {
        return Err(ApiError::invalid("order.attachments", format!("at most {MAX_ATTACHMENTS} attachments")));
    }
    let mut ops = Vec::new();
    for (i, up) in uploads.into_iter().enumerate() {
        let field = |f: &str| format!("order.attachments[{i}].{f}");
        text(&field("name"), &Some(up.name.clone()), 255)?;
        if up.name.chars().any(char::is_control) {
            // A download names the file in a header, which cannot carry them.
            return Err(ApiError::invalid(field("name"), "a file name has no control characters"));
        }
        let content_type = up.content_type.trim().to_ascii_lowercase();
        if !ATTACHMENT_TYPES.contains(&content_type.as_str()) {
            return Err(ApiError::invalid(
                field("content_type"),
                format!("{content_type} is not an accepted type"),
            ));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(up.content.trim())
            .map_err(|_| ApiError::invalid(field("content"), "content must be base64"))?;
        if bytes.is_empty() || bytes.len() > app.config.attachment_max_bytes {
            return Err(ApiError::invalid(
                field("content"),
                format!("content must be 1 to {} bytes", app.config.attachment_max_bytes),
            ));
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let data = json!({ "name": up.name, "content_type": content_type, "content": up.content.trim() });
        ops.push(WriteOp::Put {
            item: Item::new(
                deal_pk(deal.id),
                format!("attachment#{id}"),
                data.as_object().cloned().unwrap_or_default(),
            ),
            cond: Cond::NotExists,
        });
        deal.attachments.push(Attachment { id, name: up.name, content_type, size: bytes.len() });
    }
    Ok(ops)
}

/// The supplier and consumer of a new deal: the creator is one of them, never both.
fn new_parties(who: &Claims, f: &DealFields) -> ApiResult<(String, Option<String>)> {
    let supplier_id = f.supplier_id.clone().unwrap_or_default();
    let mut consumer_id = f.consumer_id.clone();
    if supplier_id != who.sub {
        match &consumer_id {
            None => consumer_id = Some(who.sub.clone()),
            Some(c) if *c != who.sub => {
                return Err(ApiError::invalid(
                    "order.supplier_id",
                    "the creator must be the supplier or the consumer of the deal",
                ));
            }
            _ => {}
        }
    }
    if consumer_id.as_deref() == Some(supplier_id.as_str()) {
        return Err(ApiError::invalid("order.consumer_id", "the consumer cannot be the supplier"));
    }
    Ok((supplier_id, consumer_id))
}

/// A new `pending` deal from the creation fields, priced, without attachments: the rules of
/// `POST /orders` without a store.
pub fn draft(
    who: &Claims,
    f: DealFields,
    id: i64,
    now: DateTime<Utc>,
    c: &CommissionTable,
) -> ApiResult<Deal> {
    let required = |v: bool, name: &str| if v { Ok(()) } else { Err(ApiError::invalid(name, "is required")) };
    required(f.order_description.is_some(), "order.order_description")?;
    required(f.supplier_id.is_some(), "order.supplier_id")?;
    required(f.cost.is_some(), "order.cost")?;
    required(f.verify_days.is_some(), "order.verify_days")?;
    required(f.commission_payer.is_some(), "order.commission_payer")?;
    validate_fields(&f)?;
    let (supplier_id, consumer_id) = new_parties(who, &f)?;
    let mut deal = Deal {
        id,
        state: State::Pending,
        title: f.title,
        order_description: f.order_description.unwrap_or_default(),
        supply_description: f.supply_description,
        cost: crate::money::round(f.cost.unwrap_or_default()),
        supply_cost: f.supply_cost.map(crate::money::round),
        supply_days: f.supply_days,
        verify_days: f.verify_days.unwrap_or_default(),
        commission_payer: f.commission_payer.unwrap_or(Payer::Consumer),
        commission: Decimal::ZERO,
        commission_percent: Decimal::ZERO,
        consumer_pay: Decimal::ZERO,
        supplier_receive: Decimal::ZERO,
        pay_back: Decimal::ZERO,
        changed_cost: None,
        owner_id: who.sub.clone(),
        supplier_id,
        consumer_id,
        client_data: f.client_data,
        attachments: vec![],
        supplier_billing_info: f.supplier_billing_info,
        consumer_billing_info: f.consumer_billing_info,
        shipping_info: f.shipping_info,
        payment: None,
        gateway_payment: None,
        claim: None,
        changes: vec![],
        end_of_protection: None,
        escalation_date: None,
        manager_comment: None,
        history: vec![],
        contacts: Default::default(),
        callback_url: None,
        callback_owner: None,
        terms_by_consumer: false,
        created_at: now,
        updated_at: now,
    };
    deal.reprice(c);
    Ok(deal)
}

/// A deal just made, with its parties' profiles (for the answer).
pub struct Created {
    pub deal: Deal,
    pub users: HashMap<String, Arc<User>>,
}

/// `POST /orders`: two store round trips one after the other. The parties' profiles are read
/// while the deal number is drawn; the deal, its attachments, the memberships and the
/// creator's profile (when their claims changed it) are written in one transaction.
pub async fn create(app: &App, who: &Claims, mut f: DealFields) -> ApiResult<Created> {
    let uploads = f.attachments.take().unwrap_or_default();
    let callback = f.callback_url.take();
    // Checked before a deal number is drawn: a refused create spends none.
    let mut deal = draft(who, f, 0, app.clock.now(), &app.config.commission)?;
    if let Some(raw) = callback {
        deal.callback_url = Some(crate::webhooks::check_callback(app, "order.callback_url", &raw)?);
        deal.callback_owner = Some(who.sub.clone());
    }
    let (mut users, id, ()) = tokio::try_join!(
        parties(app, std::slice::from_ref(&deal)),
        async { Ok(app.store.add(Counter::new("counter#deal", "counter", "n", 1)).await?) },
        async {
            match deal.callback_url {
                Some(_) => crate::webhooks::ensure_secret(app, &who.sub).await,
                None => Ok(()),
            }
        }
    )?;
    deal.id = id;
    let mut ops = take_attachments(app, &mut deal, uploads)?;
    let parties = std::iter::once(&deal.supplier_id).chain(deal.consumer_id.as_ref());
    for user in parties {
        ops.push(WriteOp::Put { item: member_item(user, id), cond: Cond::Always });
    }
    let fresh = User::from_claims(who);
    ops.extend(users::record_op(&fresh, users.get(&fresh.id).map(|u| &**u))?);
    users.insert(fresh.id.clone(), Arc::new(fresh));
    for party in std::iter::once(&deal.supplier_id).chain(deal.consumer_id.as_ref()) {
        if let Some(email) = users.get(party).and_then(|u| u.email.clone()) {
            deal.contacts.insert(party.clone(), email);
        }
    }
    ops.extend(state_ops(None, &deal));
    ops.insert(0, WriteOp::Put { item: deal_item(&deal, 1)?, cond: Cond::NotExists });
    match app.store.transact(ops).await {
        Ok(()) => Ok(Created { deal, users }),
        // A failure that may have been applied (a timeout): the deal tells. Read, so that a
        // create the store did make is answered as made, not retried into a second deal.
        Err(e) if !e.is_conflict() => match app.store.get(&deal_pk(id), "deal").await {
            Ok(Some(_)) => Ok(Created { deal, users }),
            _ => Err(e.into()),
        },
        Err(e) => Err(e.into()),
    }
}

impl DealFields {
    /// Whether any of the deal's terms (creation fields) is given.
    fn changes_terms(&self) -> bool {
        self.order_description.is_some()
            || self.supplier_id.is_some()
            || self.cost.is_some()
            || self.verify_days.is_some()
            || self.commission_payer.is_some()
            || self.title.is_some()
            || self.consumer_id.is_some()
            || self.supply_cost.is_some()
            || self.supply_description.is_some()
            || self.supply_days.is_some()
            || self.client_data.is_some()
            || self.attachments.is_some()
    }
}

/// What a PATCH changes beyond the deal's own fields.
#[derive(Debug, Default)]
pub struct Patched {
    /// The consumer handed over: (the previous one, the new one).
    pub consumer: Option<(Option<String>, String)>,
    /// Files to attach (checked and stored by the caller).
    pub uploads: Option<Vec<AttachmentUpload>>,
}

/// The rules of `PATCH /orders/:id` without a store: the terms change only while the deal is
/// `pending` (the supplier never, the consumer only by the supplier's side), billing and
/// shipping details only by their owner while the deal is open. Applies the fields to `deal`.
pub fn apply_patch(deal: &mut Deal, role: Role, f: DealFields) -> ApiResult<Patched> {
    validate_fields(&f)?;
    if role == Role::Manager {
        return Err(ApiError::Forbidden("only a party of the deal can change it".into()));
    }
    if f.changes_terms() && deal.state != State::Pending {
        return Err(ApiError::bad_request("order", "the terms can change only while the deal is pending"));
    }
    let consumer = hand_over(deal, role, f.supplier_id, f.consumer_id)?;
    deal.order_description = f.order_description.unwrap_or(std::mem::take(&mut deal.order_description));
    deal.cost = f.cost.map(crate::money::round).unwrap_or(deal.cost);
    deal.verify_days = f.verify_days.unwrap_or(deal.verify_days);
    deal.commission_payer = f.commission_payer.unwrap_or(deal.commission_payer);
    deal.title = f.title.or(deal.title.take());
    deal.supply_cost = f.supply_cost.map(crate::money::round).or(deal.supply_cost.take());
    deal.supply_description = f.supply_description.or(deal.supply_description.take());
    deal.supply_days = f.supply_days.or(deal.supply_days.take());
    deal.client_data = f.client_data.or(deal.client_data.take());
    let closed = matches!(deal.state, State::Done | State::Cancelled | State::PayoutInitiated);
    let own = |field: &str, owner: Role, v: &Option<Value>| -> ApiResult<()> {
        match () {
            _ if v.is_none() => Ok(()),
            _ if role != owner => {
                Err(ApiError::Forbidden(format!("only the {} sets {field}", owner.as_str())))
            }
            _ if closed => Err(ApiError::bad_request(field, "the deal is closed")),
            _ => Ok(()),
        }
    };
    own("supplier_billing_info", Role::Supplier, &f.supplier_billing_info)?;
    own("shipping_info", Role::Supplier, &f.shipping_info)?;
    own("consumer_billing_info", Role::Consumer, &f.consumer_billing_info)?;
    deal.supplier_billing_info = f.supplier_billing_info.or(deal.supplier_billing_info.take());
    deal.shipping_info = f.shipping_info.or(deal.shipping_info.take());
    deal.consumer_billing_info = f.consumer_billing_info.or(deal.consumer_billing_info.take());
    Ok(Patched { consumer, uploads: f.attachments })
}

/// A party sets (or with `""` removes) the deal's `callback_url` while the deal is open; the
/// messages sent there are signed with their webhook secret (made now if they had none). Once
/// set, it is that party's: the other cannot move it (their own endpoint gets every message).
async fn set_callback(app: &App, who: &Claims, deal: &mut Deal, raw: &str) -> ApiResult<()> {
    if matches!(deal.state, State::Done | State::Cancelled) {
        return Err(ApiError::bad_request("order.callback_url", "the deal is closed"));
    }
    if deal.callback_owner.as_ref().is_some_and(|owner| *owner != who.sub) {
        return Err(ApiError::Forbidden(
            "order.callback_url was set by the other party; only they may change it".into(),
        ));
    }
    if raw.trim().is_empty() {
        deal.callback_url = None;
        deal.callback_owner = None;
        return Ok(());
    }
    deal.callback_url = Some(crate::webhooks::check_callback(app, "order.callback_url", raw)?);
    deal.callback_owner = Some(who.sub.clone());
    crate::webhooks::ensure_secret(app, &who.sub).await
}

/// The supplier stays; the consumer may be handed over by the supplier's side only.
fn hand_over(
    deal: &mut Deal,
    role: Role,
    supplier: Option<String>,
    consumer: Option<String>,
) -> ApiResult<Option<(Option<String>, String)>> {
    if supplier.is_some_and(|s| s != deal.supplier_id) {
        return Err(ApiError::invalid("order.supplier_id", "the supplier of a deal cannot be changed"));
    }
    let Some(c) = consumer.filter(|c| Some(c) != deal.consumer_id.as_ref()) else { return Ok(None) };
    if c == deal.supplier_id {
        return Err(ApiError::invalid("order.consumer_id", "the consumer cannot be the supplier"));
    }
    if role == Role::Consumer {
        return Err(ApiError::invalid(
            "order.consumer_id",
            "a consumer cannot hand the deal to someone else",
        ));
    }
    let old = deal.consumer_id.replace(c.clone());
    // What the consumer handed away set up is theirs, not the next consumer's: their refund
    // details, their bank invoice, their webhook endpoint (their open card links are cancelled
    // with the change: `patch`).
    deal.consumer_billing_info = None;
    deal.payment = None;
    if deal.callback_owner.is_some() && deal.callback_owner == old {
        deal.callback_url = None;
        deal.callback_owner = None;
    }
    Ok(Some((old, c)))
}

/// `PATCH /orders/:id`: creation fields only while `pending`; billing and shipping details
/// by their owner while the deal is open.
pub async fn patch(app: &App, who: &Claims, id: i64, mut f: DealFields) -> ApiResult<Loaded> {
    validate_fields(&f)?;
    let callback = f.callback_url.take();
    let (loaded, role) = load_for(app, who, id).await?;
    let mut deal = loaded.deal.clone();
    let patched = apply_patch(&mut deal, role, f)?;
    if let Some(raw) = callback {
        set_callback(app, who, &mut deal, &raw).await?;
    }
    let mut extra = Vec::new();
    if let Some((old, new)) = &patched.consumer {
        if let Some(old) = old {
            let (pk, sk) = member_key(old, id);
            extra.push(WriteOp::Delete { pk, sk, cond: Cond::Always });
        }
        extra.push(WriteOp::Put { item: member_item(new, id), cond: Cond::Always });
    }
    if let Some(uploads) = patched.uploads {
        extra.extend(take_attachments(app, &mut deal, uploads)?);
    }
    deal.reprice(&app.config.commission);
    deal.updated_at = app.clock.now();
    let before = &loaded.deal;
    if !deal.same_terms(before) {
        // Whoever changed the terms last, the other party agrees to them: the consumer by
        // paying, the supplier by approving.
        deal.terms_by_consumer = role == Role::Consumer;
    }
    let money_terms = deal.consumer_pay != before.consumer_pay
        || deal.cost != before.cost
        || deal.commission_payer != before.commission_payer
        || deal.consumer_id != before.consumer_id;
    if money_terms {
        // A link taken for the old terms (or by the consumer handed away) must not pay for
        // the new ones.
        extra.extend(payment_owner::cancel_open_ops(app, id).await?);
    }
    users::sync(app, who).await?;
    deal.acted_by(who);
    let told = notices::of_terms(app, before, &mut deal, loaded.version + 1, role).await?;
    extra.extend(crate::outbox::ops(app, told.as_slice())?);
    let version = save(app, &loaded, &deal, extra).await?;
    Ok(Loaded { deal, version })
}

/// The caller's deals, newest first: (page of deals, total).
pub async fn list(app: &App, who: &Claims, page: usize, per: usize) -> ApiResult<(Vec<Deal>, usize)> {
    let opts = QueryOpts { sk_prefix: Some("deal#".into()), descending: true, ..Default::default() };
    let members = app.store.query(&format!("user#{}", who.sub), opts).await?;
    page_of(app, &members, page, per).await
}

/// The caller's deals in `state`, newest first: a page and the total. (A manager's queue of
/// every deal in a state is [`list_in_state`].)
pub async fn list_own_in_state(
    app: &App,
    who: &Claims,
    state: State,
    page: usize,
    per: usize,
) -> ApiResult<(Vec<Deal>, usize)> {
    let opts = QueryOpts { sk_prefix: Some("deal#".into()), descending: true, ..Default::default() };
    let members = app.store.query(&format!("user#{}", who.sub), opts).await?;
    let (all, _) = page_of(app, &members, 1, members.len().max(1)).await?;
    let mine: Vec<Deal> = all.into_iter().filter(|d| d.state == state).collect();
    let total = mine.len();
    Ok((mine.into_iter().skip((page - 1).saturating_mul(per)).take(per).collect(), total))
}

/// One page of the deals `members` name (items with a `deal_id`), newest first, and their
/// total.
async fn page_of(app: &App, members: &[Item], page: usize, per: usize) -> ApiResult<(Vec<Deal>, usize)> {
    let total = members.len();
    let keys: Vec<(String, String)> = members
        .iter()
        .skip((page - 1).saturating_mul(per))
        .take(per)
        .filter_map(|m| m.data.get("deal_id").and_then(Value::as_i64))
        .map(|id| (deal_pk(id), "deal".to_owned()))
        .collect();
    if keys.is_empty() {
        return Ok((Vec::new(), total));
    }
    let mut deals: Vec<Deal> =
        app.store.batch_get(&keys).await?.iter().map(|i| i.decode()).collect::<Result<_, _>>()?;
    deals.sort_by_key(|d| std::cmp::Reverse(d.id));
    Ok((deals, total))
}

/// A manager's queue: every deal in `state`, newest first, one page of it and the total.
pub async fn list_in_state(
    app: &App,
    state: State,
    page: usize,
    per: usize,
) -> ApiResult<(Vec<Deal>, usize)> {
    let (pk, _) = state_key(state, 0);
    let entries = app.store.query(&pk, QueryOpts { descending: true, ..Default::default() }).await?;
    page_of(app, &entries, page, per).await
}

/// The user records of the parties of these deals.
/// Each profile is shared with the store's item, not copied.
pub async fn parties(app: &App, deals: &[Deal]) -> ApiResult<HashMap<String, Arc<User>>> {
    let mut keys: Vec<(String, String)> = Vec::new();
    for d in deals {
        keys.push((["user#", &d.supplier_id].concat(), "profile".into()));
        if let Some(c) = &d.consumer_id {
            keys.push((["user#", c].concat(), "profile".into()));
        }
    }
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let profiles = app.store.batch_get_data(&keys).await?;
    profiles
        .iter()
        .map(|data| {
            data.decode_shared::<User>("user#", "profile").map(|u| (u.id.clone(), u)).map_err(Into::into)
        })
        .collect()
}

/// Writes a move of the deal with its emails (to each party but the one moving it, `by`), in
/// one transaction; a party's move records their address from their token.
async fn save_move(
    app: &App,
    loaded: &Loaded,
    deal: &mut Deal,
    by: Option<(Role, &Claims)>,
) -> ApiResult<u64> {
    if let Some((_, who)) = by {
        deal.acted_by(who);
    }
    let told = notices::of_move(app, deal, loaded.version + 1, by.map(|(role, _)| role)).await?;
    save(app, loaded, deal, crate::outbox::ops(app, &told)?).await
}

/// `POST /orders/:id/transitions`.
pub async fn transition(app: &App, who: &Claims, id: i64, to: &str) -> ApiResult<()> {
    let to = State::parse(to)
        .ok_or_else(|| ApiError::bad_request("transition.to_state", format!("{to:?} is not a deal state")))?;
    let (loaded, role) = load_for(app, who, id).await?;
    let actor = Actor::of(role);
    let last = loaded.deal.history.last();
    if loaded.deal.state == to && last.is_some_and(|h| h.to == to && h.by == actor.as_str()) {
        // Retried after its answer was lost (or its write reported failed once applied): the
        // deal is where this party moved it, its emails written with the move. Done.
        return Ok(());
    }
    let mut deal = loaded.deal.clone();
    machine::transition(&mut deal, actor, to, app.clock.now())?;
    // A card link still open when the deal is cancelled is left to run out: money paid through
    // it is money the deal no longer expects, returned (closing it here would read the deal's
    // payments: one more round trip on every move to `cancelled`).
    save_move(app, &loaded, &mut deal, Some((role, who))).await?;
    Ok(())
}

/// `POST /orders/:id/claim`.
pub async fn claim(
    app: &App,
    who: &Claims,
    id: i64,
    reason: String,
    description: Option<String>,
) -> ApiResult<Loaded> {
    if reason.trim().is_empty() || reason.chars().count() > 1000 {
        return Err(ApiError::invalid("claim.reason", "a reason of 1 to 1000 characters is required"));
    }
    if description.as_ref().is_some_and(|d| d.chars().count() > 5000) {
        return Err(ApiError::invalid("claim.description", "at most 5000 characters"));
    }
    let (loaded, role) = load_for(app, who, id).await?;
    let mut deal = loaded.deal.clone();
    machine::file_claim(&mut deal, Actor::of(role), reason, description, app.clock.now())?;
    let version = save_move(app, &loaded, &mut deal, Some((role, who))).await?;
    Ok(Loaded { deal, version })
}

/// `POST /orders/:id/order_changes`.
pub async fn request_change(
    app: &App,
    who: &Claims,
    id: i64,
    req: changes::ChangeRequest,
) -> ApiResult<Loaded> {
    let (loaded, role) = load_for(app, who, id).await?;
    let mut deal = loaded.deal.clone();
    changes::request(&mut deal, role, req, app.clock.now())?;
    let version = save_move(app, &loaded, &mut deal, Some((role, who))).await?;
    Ok(Loaded { deal, version })
}

/// `POST /orders/:id/order_changes/:cid/confirm` or `/reject`.
pub async fn answer_change(app: &App, who: &Claims, id: i64, change: i64, accept: bool) -> ApiResult<Loaded> {
    let (loaded, role) = load_for(app, who, id).await?;
    let mut deal = loaded.deal.clone();
    let now = app.clock.now();
    if accept {
        changes::confirm(&mut deal, role, change, now)?;
    } else {
        changes::reject(&mut deal, role, change, now)?;
    }
    let version = save_move(app, &loaded, &mut deal, Some((role, who))).await?;
    Ok(Loaded { deal, version })
}

/// `POST /orders/:id/payment`: a bank-invoice payment by the consumer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    pub name: String,
    pub payment_method: String,
    #[serde(default, alias = "payment_info")]
    pub info: Option<Value>,
}

pub async fn create_payment(
    app: &App,
    who: &Claims,
    id: i64,
    req: PaymentRequest,
) -> ApiResult<InvoicePayment> {
    if req.payment_method != "invoice" {
        return Err(ApiError::invalid("payment.payment_method", "must be \"invoice\""));
    }
    text("payment.name", &Some(req.name.clone()), 255)?;
    object("payment.info", &req.info)?;
    let (loaded, role) = load_for(app, who, id).await?;
    if role != Role::Consumer {
        return Err(ApiError::Forbidden("only the consumer pays for the deal".into()));
    }
    let deal = &loaded.deal;
    let payable = deal.state == State::Approved || (deal.state == State::Pending && !deal.awaits_supplier());
    if !payable {
        return Err(ApiError::bad_request(
            "payment",
            "a payment can be created when the deal is approved (or pending, with terms the supplier set)",
        ));
    }
    if deal.payment.is_some() {
        return Err(ApiError::bad_request("payment", "the deal already has a payment"));
    }
    let pid = app.store.add(Counter::new("counter#deal_payment", "counter", "n", 1)).await?;
    let payment = InvoicePayment {
        id: pid,
        name: req.name,
        payment_method: req.payment_method,
        info: req.info,
        created_at: app.clock.now(),
    };
    let mut next = deal.clone();
    next.payment = Some(payment.clone());
    next.updated_at = app.clock.now();
    save(app, &loaded, &next, vec![]).await?;
    Ok(payment)
}

/// The attachment's name, type and bytes (party only).
pub async fn attachment(app: &App, who: &Claims, id: i64, aid: &str) -> ApiResult<(String, String, Vec<u8>)> {
    load_for(app, who, id).await?;
    let item = app
        .store
        .get(&deal_pk(id), &format!("attachment#{aid}"))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("attachment {aid}")))?;
    let field = |n: &str| item.data.get(n).and_then(Value::as_str).unwrap_or_default().to_owned();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(field("content"))
        .map_err(|e| ApiError::Internal(format!("stored attachment is not base64: {e}")))?;
    Ok((field("name"), field("content_type"), bytes))
}

/// The scheduler's pass over due deals: protection over → received, claim unanswered for
/// 7 days → escalation, received/returned → payout initiated. Conditional writes make a
/// concurrent second run harmless: whoever loses a race skips that deal.
pub async fn sweep(app: &App) -> ApiResult<Tally> {
    let now = app.clock.now();
    let opts = QueryOpts { sk_until: Some(format!("{}#~", due_key(now))), ..Default::default() };
    let due = app.store.query_gsi1(DUE_INDEX, opts).await?;
    let mut report = Tally { examined: due.len(), ..Default::default() };
    for item in due {
        // The index may lag; re-read the deal itself.
        let Some(id) = item.data.get("id").and_then(Value::as_i64) else { continue };
        let Some(loaded) = load(app, id).await? else { continue };
        let mut deal = loaded.deal.clone();
        let Some(to) = machine::due(&deal, now) else { continue };
        if machine::system_move(&mut deal, to, now).is_err() {
            continue;
        }
        match save_move(app, &loaded, &mut deal, None).await {
            Ok(_) => report.changed += 1,
            Err(ApiError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(report)
}

/// Index sort key of a due time: fixed-width UTC, so string order is time order.
fn due_key(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A deal for rule tests: created by `creator` (`"s"` the supplier or `"c"` the consumer) with
/// every detail a transition may need filled, then put in `state`.
#[cfg(test)]
pub(crate) fn fixture(creator: &str, state: State) -> Deal {
    let who = Claims::new(creator, chrono::Duration::hours(1));
    let f = DealFields {
        order_description: Some("a table".into()),
        supplier_id: Some("s".into()),
        consumer_id: Some("c".into()),
        cost: Some(rust_decimal_macros::dec!(1000)),
        verify_days: Some(3),
        supply_days: Some(2),
        commission_payer: Some(Payer::Consumer),
        supplier_billing_info: Some(json!({"card": "1"})),
        consumer_billing_info: Some(json!({"card": "2"})),
        shipping_info: Some(json!({"track": "x"})),
        ..DealFields::default()
    };
    let mut deal = draft(&who, f, 7, Utc::now(), &CommissionTable::default()).expect("a valid deal");
    deal.gateway_payment = Some("p1".into());
    deal.state = state;
    if state == State::Rejected {
        deal.claim =
            Some(model::Claim { reason: "broken".into(), description: None, created_at: Utc::now() });
    }
    deal
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn who(sub: &str) -> Claims {
        Claims::new(sub, chrono::Duration::hours(1))
    }

    fn fields() -> DealFields {
        DealFields {
            order_description: Some("a table".into()),
            supplier_id: Some("s".into()),
            cost: Some(dec!(1000.00)),
            verify_days: Some(3),
            commission_payer: Some(Payer::Supplier),
            ..DealFields::default()
        }
    }

    fn field_of(e: ApiError) -> String {
        crate::error::named(&e)
    }

    #[test]
    fn a_draft_needs_every_creation_field_and_rounds_the_cost() {
        for (blank, field) in [
            (DealFields { order_description: None, ..fields() }, "order.order_description"),
            (DealFields { supplier_id: None, ..fields() }, "order.supplier_id"),
            (DealFields { cost: None, ..fields() }, "order.cost"),
            (DealFields { verify_days: None, ..fields() }, "order.verify_days"),
            (DealFields { commission_payer: None, ..fields() }, "order.commission_payer"),
        ] {
            let e = draft(&who("s"), blank, 1, Utc::now(), &CommissionTable::default()).unwrap_err();
            assert_eq!(field_of(e), field);
        }
        let d = draft(&who("s"), fields(), 1, Utc::now(), &CommissionTable::default()).unwrap();
        assert_eq!((d.state, d.cost, d.consumer_id.as_deref()), (State::Pending, dec!(1000.00), None));
        assert!(d.owner_is_supplier() && d.consumer_pay > Decimal::ZERO);
    }

    #[test]
    fn the_creator_is_a_party_and_never_both() {
        let table = CommissionTable::default();
        // Someone else's supply: the creator becomes the consumer.
        let d = draft(&who("c"), fields(), 1, Utc::now(), &table).unwrap();
        assert_eq!(d.consumer_id.as_deref(), Some("c"));
        let stranger = DealFields { consumer_id: Some("x".into()), ..fields() };
        assert_eq!(
            field_of(draft(&who("c"), stranger, 1, Utc::now(), &table).unwrap_err()),
            "order.supplier_id"
        );
        let both = DealFields { consumer_id: Some("s".into()), ..fields() };
        assert_eq!(field_of(draft(&who("s"), both, 1, Utc::now(), &table).unwrap_err()), "order.consumer_id");
    }

    #[test]
    fn terms_change_only_while_pending_and_by_a_party() {
        let mut d = fixture("s", State::Pending);
        let p =
            apply_patch(&mut d, Role::Consumer, DealFields { cost: Some(dec!(55.5)), ..Default::default() });
        assert!(p.is_ok());
        assert_eq!(d.cost, dec!(55.50));
        let e =
            apply_patch(&mut d, Role::Consumer, DealFields { cost: Some(dec!(5.555)), ..Default::default() });
        assert_eq!(field_of(e.unwrap_err()), "order.cost");
        let mut d = fixture("s", State::Approved);
        let e =
            apply_patch(&mut d, Role::Supplier, DealFields { title: Some("t".into()), ..Default::default() });
        assert_eq!(field_of(e.unwrap_err()), "order");
        let mut d = fixture("s", State::Pending);
        let e =
            apply_patch(&mut d, Role::Manager, DealFields { title: Some("t".into()), ..Default::default() });
        assert_eq!(field_of(e.unwrap_err()), "forbidden");
    }

    #[test]
    fn details_are_set_by_their_owner_while_the_deal_is_open() {
        let billing = |v| DealFields { supplier_billing_info: Some(json!({ "v": v })), ..Default::default() };
        let mut d = fixture("s", State::Shipping);
        apply_patch(&mut d, Role::Supplier, billing(2)).unwrap();
        assert_eq!(d.supplier_billing_info, Some(json!({"v": 2})));
        let e = apply_patch(&mut d, Role::Consumer, billing(3)).unwrap_err();
        assert_eq!(field_of(e), "forbidden");
        let consumer = DealFields { consumer_billing_info: Some(json!({})), ..Default::default() };
        assert_eq!(field_of(apply_patch(&mut d, Role::Supplier, consumer).unwrap_err()), "forbidden");
        let mut done = fixture("s", State::Done);
        assert_eq!(
            field_of(apply_patch(&mut done, Role::Supplier, billing(4)).unwrap_err()),
            "supplier_billing_info"
        );
        let shipping = DealFields { shipping_info: Some(json!({})), ..Default::default() };
        let mut d = fixture("s", State::Paid);
        assert_eq!(field_of(apply_patch(&mut d, Role::Consumer, shipping).unwrap_err()), "forbidden");
    }

    #[test]
    fn the_supplier_stays_and_only_the_supplier_side_hands_the_deal_over() {
        let mut d = fixture("s", State::Pending);
        let other = DealFields { supplier_id: Some("z".into()), ..Default::default() };
        assert_eq!(field_of(apply_patch(&mut d, Role::Supplier, other).unwrap_err()), "order.supplier_id");
        let to = |c: &str| DealFields { consumer_id: Some(c.into()), ..Default::default() };
        assert_eq!(field_of(apply_patch(&mut d, Role::Consumer, to("z")).unwrap_err()), "order.consumer_id");
        assert_eq!(field_of(apply_patch(&mut d, Role::Supplier, to("s")).unwrap_err()), "order.consumer_id");
        let p = apply_patch(&mut d, Role::Supplier, to("z")).unwrap();
        assert_eq!(p.consumer, Some((Some("c".into()), "z".into())));
        assert_eq!(d.consumer_id.as_deref(), Some("z"));
        // The same consumer again changes nothing.
        assert_eq!(apply_patch(&mut d, Role::Supplier, to("z")).unwrap().consumer, None);
    }
}

#[cfg(test)]
mod cost_tests {
    use super::*;
    use rust_decimal_macros::dec;

    /// At least 20.00, at most a trillion, two decimals at most (trailing zeros aside).
    #[test]
    fn a_cost_is_checked_to_the_kopeck() {
        for ok in [dec!(20), dec!(20.00), dec!(20.000), dec!(20.10), dec!(20.1000000), dec!(1000000000000)] {
            assert!(check_cost("cost", ok).is_ok(), "{ok}");
        }
        for bad in [dec!(19.99), dec!(20.001), dec!(20.0000001), dec!(1000000000000.01), dec!(-20)] {
            assert!(check_cost("cost", bad).is_err(), "{bad}");
        }
    }
}
