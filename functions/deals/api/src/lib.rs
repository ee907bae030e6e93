//! Escrow deals (seed 003) over HTTP: parse, call the domain, answer.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::auth::AuthUser;
use shared::deals::changes::ChangeRequest;
use shared::deals::model::ChangeType;
use shared::deals::payment_owner::{CardPayment, card_payment};
use shared::deals::view::DealView;
use shared::deals::{self, DealFields, Payer, PaymentRequest, Role};
use shared::http::{Json, JsonBody, On, PathArg, QueryArg, parse_json};
use shared::idempotency::Keyed;
use shared::payments::GatewayKind;
use shared::users::User;
use shared::{ApiError, ApiResult, App, idempotency, money, redirects, users};

pub fn router() -> Router<App> {
    Router::new()
        .route("/api/v1/me", get(me))
        .route("/api/v1/orders", post(create).get(list))
        .route("/api/v1/orders/calc_commission", post(calc_commission))
        .route("/api/v1/orders/{id}", get(show).patch(patch))
        .route("/api/v1/orders/{id}/payment_info", get(payment_info))
        .route("/api/v1/orders/{id}/payment", post(create_payment).get(show_payment))
        .route("/api/v1/orders/{id}/download_invoice", get(download_invoice))
        .route("/api/v1/orders/{id}/transitions", get(transitions).post(perform_transition))
        .route("/api/v1/orders/{id}/claim", post(claim))
        .route("/api/v1/orders/{id}/order_changes", post(request_change))
        .route("/api/v1/orders/{id}/order_changes/{cid}/confirm", post(answer::<true>))
        .route("/api/v1/orders/{id}/order_changes/{cid}/reject", post(answer::<false>))
        .route("/api/v1/orders/{id}/attachments/{aid}", get(attachment))
        .route("/api/v1/webhooks/endpoint", get(webhook_endpoint).put(register_webhook))
        .route("/api/v1/webhooks/endpoint/ping", post(ping_webhook))
        .route("/api/v1/webhooks/deliveries", get(webhook_deliveries))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointRequest {
    url: String,
}

/// The caller's webhook endpoint and its secret (`whsec_...`, for checking signatures).
fn endpoint_body(e: &shared::webhooks::Endpoint) -> Json<Value> {
    Json(
        json!({"endpoint": {"url": e.url, "secret": e.secret, "created_at": e.created_at, "updated_at": e.updated_at}}),
    )
}

/// Registers or moves the caller's webhook endpoint (https; in production never an internal
/// address): 200 with its URL and secret (made on the first registration, kept after).
async fn register_webhook(
    State(app): State<App>,
    AuthUser(who): AuthUser,
    JsonBody(req): JsonBody<EndpointRequest>,
) -> ApiResult<Json<Value>> {
    let e = shared::webhooks::register(&app, &who.sub, &req.url).await?;
    tracing::info!(owner = %who.sub, "webhook endpoint registered");
    Ok(endpoint_body(&e))
}

async fn webhook_endpoint(State(app): State<App>, AuthUser(who): AuthUser) -> ApiResult<Json<Value>> {
    let e = shared::webhooks::endpoint(&app, &who.sub)
        .await?
        .ok_or_else(|| ApiError::NotFound("webhook endpoint".into()))?;
    Ok(endpoint_body(&e))
}

/// The caller's latest webhook deliveries (100), newest first: each message's attempts and
/// where it stands (`retrying`, `delivered`, `failed`).
async fn webhook_deliveries(State(app): State<App>, AuthUser(who): AuthUser) -> ApiResult<Json<Value>> {
    let deliveries = shared::webhooks::deliveries(&app, &who.sub, 100).await?;
    Ok(Json(json!({"deliveries": deliveries})))
}

/// Sends the endpoint a signed `webhook.ping` now and answers what the receiver said.
async fn ping_webhook(State(app): State<App>, AuthUser(who): AuthUser) -> ApiResult<Json<Value>> {
    let attempt = shared::webhooks::ping(&app, &who.sub).await?;
    Ok(Json(json!({"attempt": attempt})))
}

async fn me(State(app): State<App>, AuthUser(claims): AuthUser) -> ApiResult<Json<Value>> {
    let user = users::sync(&app, &claims).await?;
    Ok(Json(json!({ "user": user.view() })))
}

/// One deal as the caller sees it: `{"order": ...}`, written as the answer's JSON. The
/// parties' profiles are decoration: when they cannot be read, the answer (often to a change
/// already committed) shows their ids only rather than failing.
async fn view(app: &App, deal: &deals::Deal, role: Role) -> Response {
    let users = parties_or_none(app, deal).await;
    Json(OrderBody { order: DealView::new(deal, role, &users, &app.config.public_url) }).into_response()
}

/// The deal's parties' profiles, none when they cannot be read (see [`view`]).
async fn parties_or_none(app: &App, deal: &deals::Deal) -> HashMap<String, Arc<User>> {
    deals::parties(app, std::slice::from_ref(deal)).await.unwrap_or_else(|e| {
        tracing::warn!(deal = deal.id, error = %e, "party profiles unavailable");
        Default::default()
    })
}

#[derive(Serialize)]
struct OrderBody<'a> {
    order: DealView<'a>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderRequest {
    order: DealFields,
}

async fn create(State(app): State<App>, AuthUser(who): AuthUser, req: Keyed) -> ApiResult<Response> {
    req.answer(&app, "deal-create", &who.sub, || async {
        let req: OrderRequest = parse_json(&req.body)?;
        let made = deals::create(&app, &who, req.order).await?;
        let role = made.deal.role_of(&who.sub).unwrap_or(Role::Supplier);
        let order = DealView::new(&made.deal, role, &made.users, &app.config.public_url);
        idempotency::stored(StatusCode::CREATED, &OrderBody { order })
    })
    .await
}

async fn show(On { app, user: AuthUser(who), id }: On<AuthUser, i64>) -> ApiResult<Response> {
    let (deal, role) = deals::read_for(&app, &who, id).await?;
    Ok(view(&app, &deal, role).await)
}

async fn patch(
    On { app, user: AuthUser(who), id }: On<AuthUser, i64>,
    JsonBody(req): JsonBody<OrderRequest>,
) -> ApiResult<Response> {
    let loaded = deals::patch(&app, &who, id, req.order).await?;
    let role = loaded.deal.role_of(&who.sub).unwrap_or(Role::Manager);
    Ok(view(&app, &loaded.deal, role).await)
}

#[derive(Deserialize)]
struct ListQuery {
    page: Option<usize>,
    per: Option<usize>,
    /// Only deals in this state: for a manager every deal in it (the queues, e.g.
    /// `payment_verification`), for a party their own.
    state: Option<String>,
}

async fn list(
    State(app): State<App>,
    AuthUser(who): AuthUser,
    QueryArg(q): QueryArg<ListQuery>,
) -> ApiResult<Json<Value>> {
    let (page, per) = shared::http::paging(q.page, q.per)?;
    let state = match q.state.as_deref() {
        None => None,
        Some(s) => Some(
            shared::deals::model::State::parse(s)
                .ok_or_else(|| ApiError::bad_request("state", format!("{s:?} is not a deal state")))?,
        ),
    };
    let (page_deals, total) = match state {
        None => deals::list(&app, &who, page, per).await?,
        Some(s) if who.has_role("manager") => deals::list_in_state(&app, s, page, per).await?,
        Some(s) => deals::list_own_in_state(&app, &who, s, page, per).await?,
    };
    let users = deals::parties(&app, &page_deals).await?;
    let orders: Vec<DealView> = page_deals
        .iter()
        .map(|d| {
            DealView::new(d, d.role_of(&who.sub).unwrap_or(Role::Manager), &users, &app.config.public_url)
        })
        .collect();
    let link = |p: usize| {
        let mut per_part = if q.per.is_some() { format!("&per={per}") } else { String::new() };
        if let Some(s) = state {
            per_part.push_str(&format!("&state={}", s.as_str()));
        }
        format!("{}/api/v1/orders?page={p}{per_part}", app.config.public_url)
    };
    Ok(Json(json!({ "orders": orders, "meta": shared::http::page_meta(page, per, total, link) })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CalcRequest {
    cost: Decimal,
    commission_payer: Payer,
}

async fn calc_commission(
    State(app): State<App>,
    _user: AuthUser,
    JsonBody(req): JsonBody<CalcRequest>,
) -> ApiResult<shared::json::Text> {
    deals::check_cost("cost", req.cost)?;
    let c = &app.config.commission;
    let b = c.compute(req.cost, req.commission_payer);
    // Written straight into the answer (`shared::json`): the call is made for every change
    // of a form's amount. The members are the seed's, in its order.
    Ok(shared::json::Text::with_capacity(384)
        .raw(r#"{"cost":"#)
        .money(b.cost)
        .raw(r#","commission":"#)
        .money(b.commission)
        .raw(r#","commission_description":""#)
        .plain(b.percent)
        .raw(r#"%","mandarin_commission":"#)
        .plain(c.mandarin_percent)
        .raw(r#","gateway_commission":"#)
        .plain(c.gateway_percent)
        .raw(r#","supplier_receive":"#)
        .money(b.supplier_receive)
        .raw(r#","consumer_pay":{"invoice":"#)
        .money(b.consumer_pay)
        .raw(r#","gateway":"#)
        .money(b.gateway_pay)
        .raw(r#","mandarin":"#)
        .money(b.mandarin_pay)
        .raw("}}"))
}

/// Payment amounts by method (money as JSON numbers, never through a float).
#[derive(Serialize)]
pub struct ConsumerPay {
    #[serde(with = "money::number")]
    pub invoice: Decimal,
    #[serde(with = "money::number")]
    pub gateway: Decimal,
    #[serde(with = "money::number")]
    pub mandarin: Decimal,
}

impl ConsumerPay {
    fn of(app: &App, invoice: Decimal) -> ConsumerPay {
        let c = &app.config.commission;
        ConsumerPay { invoice, gateway: c.gateway_total(invoice), mandarin: c.mandarin_total(invoice) }
    }
}

#[derive(Deserialize)]
struct PaymentInfoQuery {
    redirect_to: Option<String>,
    #[serde(rename = "return")]
    return_to: Option<String>,
    description: Option<String>,
}

#[derive(Serialize)]
struct PaymentInfo {
    consumer_pay: ConsumerPay,
    #[serde(with = "money::plain")]
    gateway_commission: Decimal,
    gateway_url: Option<String>,
    #[serde(with = "money::plain")]
    mandarin_commission: Decimal,
    mandarin_url: Option<String>,
}

/// A scheme error is 400 (as it always was); a host off `RETURN_URL_HOSTS` is 422.
fn check_url(app: &App, field: &str, v: &Option<String>) -> ApiResult<()> {
    match v.as_deref().map(|u| redirects::check(&app.config, u)) {
        Some(Err(why @ redirects::Refused::NotHttp)) => Err(ApiError::bad_request(field, why.message(field))),
        Some(Err(why)) => Err(ApiError::invalid(field, why.message(field))),
        _ => Ok(()),
    }
}

async fn payment_info(
    On { app, user: AuthUser(who), id }: On<AuthUser, i64>,
    QueryArg(q): QueryArg<PaymentInfoQuery>,
) -> ApiResult<Json<PaymentInfo>> {
    check_url(&app, "redirect_to", &q.redirect_to)?;
    check_url(&app, "return", &q.return_to)?;
    let (loaded, role) = deals::load_for(&app, &who, id).await?;
    let deal = &loaded.deal;
    let pay = ConsumerPay::of(&app, deal.consumer_pay);
    let description = q.description.unwrap_or_else(|| format!("Оплата сделки № {id}"));
    let c = &app.config;
    // Only the consumer pays, and only while the deal takes a payment; the other parties
    // (and everyone after that) see the amounts without payment links.
    let (gateway_url, mandarin_url) = if role == Role::Consumer && deal.payable() {
        // The buyer comes back to `redirect_to?payment=success|fail` (Robokassa) and to
        // `return?status=success|fail` (Mandarin), as seed 003 describes.
        let back = |url: &Option<String>, key: &str, v: &str| {
            url.as_ref().map(|u| format!("{u}{}{key}={v}", if u.contains('?') { '&' } else { '?' }))
        };
        let card = CardPayment {
            gateway: c.payments.deal_gateway,
            description: description.clone(),
            return_url: back(&q.redirect_to, "payment", "success"),
            cancel_url: back(&q.redirect_to, "payment", "fail"),
        };
        let gateway_url = card_payment(&app, &who, deal, card).await?;
        // Mandarin needs the payer's email; without one (or when Mandarin is down) no link.
        let mandarin_url = match who.email.as_deref().filter(|e| !e.is_empty()) {
            None => None,
            Some(_) => card_payment(
                &app,
                &who,
                deal,
                CardPayment {
                    gateway: GatewayKind::Mandarin,
                    description: description.clone(),
                    return_url: back(&q.return_to, "status", "success"),
                    cancel_url: back(&q.return_to, "status", "fail"),
                },
            )
            .await
            .inspect_err(|e| tracing::warn!(deal = id, error = %e, "no Mandarin link"))
            .ok(),
        };
        (Some(gateway_url), mandarin_url)
    } else {
        (None, None)
    };
    Ok(Json(PaymentInfo {
        consumer_pay: pay,
        gateway_commission: c.commission.gateway_percent,
        gateway_url,
        mandarin_commission: c.commission.mandarin_percent,
        mandarin_url,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PaymentBody {
    payment: PaymentRequest,
}

fn payment_json(p: &deals::model::InvoicePayment) -> Value {
    json!({ "payment": { "id": p.id, "name": p.name, "payment_method": p.payment_method, "info": p.info } })
}

async fn create_payment(
    On { app, user: AuthUser(who), id }: On<AuthUser, i64>,
    req: Keyed,
) -> ApiResult<Response> {
    req.answer(&app, &format!("deal-payment-{id}"), &who.sub, || async {
        let body: PaymentBody = parse_json(&req.body)?;
        let p = deals::create_payment(&app, &who, id, body.payment).await?;
        idempotency::stored(StatusCode::CREATED, &payment_json(&p))
    })
    .await
}

async fn show_payment(On { app, user: AuthUser(who), id }: On<AuthUser, i64>) -> ApiResult<Json<Value>> {
    let (loaded, _) = deals::load_for(&app, &who, id).await?;
    let p =
        loaded.deal.payment.as_ref().ok_or_else(|| ApiError::NotFound(format!("payment of order {id}")))?;
    Ok(Json(payment_json(p)))
}

async fn download_invoice(On { app, user: AuthUser(who), id }: On<AuthUser, i64>) -> ApiResult<Response> {
    let (loaded, _) = deals::load_for(&app, &who, id).await?;
    let deal = &loaded.deal;
    let users = deals::parties(&app, std::slice::from_ref(deal)).await?;
    let name = |id: Option<&String>| {
        id.and_then(|i| users.get(i)).and_then(|u| u.name.clone().or(u.email.clone())).unwrap_or_default()
    };
    let payer =
        deal.payment.as_ref().map(|p| p.name.clone()).unwrap_or_else(|| name(deal.consumer_id.as_ref()));
    let bytes = deals::invoice::render(deal, &payer, &name(Some(&deal.supplier_id)))?;
    let disposition = format!("attachment; filename=\"invoice-{id}.docx\"");
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document".to_owned(),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

async fn transitions(On { app, user: AuthUser(who), id }: On<AuthUser, i64>) -> ApiResult<Json<Value>> {
    let (loaded, role) = deals::load_for(&app, &who, id).await?;
    let list = deals::machine::available(&loaded.deal, deals::machine::Actor::of(role));
    Ok(Json(json!({ "transitions": list })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransitionBody {
    transition: TransitionFields,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransitionFields {
    to_state: String,
}

async fn perform_transition(
    On { app, user: AuthUser(who), id }: On<AuthUser, i64>,
    JsonBody(req): JsonBody<TransitionBody>,
) -> ApiResult<StatusCode> {
    deals::transition(&app, &who, id, &req.transition.to_state).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimBody {
    reason: String,
    description: Option<String>,
}

async fn claim(
    On { app, user: AuthUser(who), id }: On<AuthUser, i64>,
    JsonBody(req): JsonBody<ClaimBody>,
) -> ApiResult<Response> {
    let loaded = deals::claim(&app, &who, id, req.reason, req.description).await?;
    Ok(view(&app, &loaded.deal, Role::Consumer).await)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeBody {
    order_change: ChangeFields,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeFields {
    change_type: ChangeType,
    new_cost: Option<Decimal>,
    prolong_protection_to: Option<chrono::DateTime<chrono::FixedOffset>>,
}

async fn request_change(
    On { app, user: AuthUser(who), id }: On<AuthUser, i64>,
    req: Keyed,
) -> ApiResult<Response> {
    req.answer(&app, &format!("deal-change-{id}"), &who.sub, || async {
        let c = parse_json::<ChangeBody>(&req.body)?.order_change;
        let change = ChangeRequest {
            change_type: c.change_type,
            new_cost: c.new_cost,
            prolong_protection_to: c.prolong_protection_to.map(|t| t.with_timezone(&chrono::Utc)),
        };
        let loaded = deals::request_change(&app, &who, id, change).await?;
        let role = loaded.deal.role_of(&who.sub).unwrap_or(Role::Manager);
        let users = parties_or_none(&app, &loaded.deal).await;
        let order = DealView::new(&loaded.deal, role, &users, &app.config.public_url);
        idempotency::stored(StatusCode::CREATED, &OrderBody { order })
    })
    .await
}

/// Confirms (`ACCEPT`) or rejects a change request.
async fn answer<const ACCEPT: bool>(
    On { app, user: AuthUser(who), id }: On<AuthUser, i64>,
    PathArg((_, cid)): PathArg<(i64, i64)>,
) -> ApiResult<Response> {
    let loaded = deals::answer_change(&app, &who, id, cid, ACCEPT).await?;
    let role = loaded.deal.role_of(&who.sub).unwrap_or(Role::Manager);
    Ok(view(&app, &loaded.deal, role).await)
}

async fn attachment(
    On { app, user: AuthUser(who), id }: On<AuthUser, i64>,
    PathArg((_, aid)): PathArg<(i64, String)>,
) -> ApiResult<Response> {
    let (name, content_type, bytes) = deals::attachment(&app, &who, id, &aid).await?;
    // The name as a header carries it (one stored before control characters were refused
    // included).
    let name: String = name.chars().map(|c| if c == '"' || c.is_control() { '_' } else { c }).collect();
    let disposition = format!("attachment; filename=\"{name}\"");
    Ok(([(header::CONTENT_TYPE, content_type), (header::CONTENT_DISPOSITION, disposition)], bytes)
        .into_response())
}
