//! Box-office admin actions (role `admin`): event and seat-map management, resend the
//! buyer's email, mark a cash order paid or cancel it, refunds; and the gates' ticket scans
//! (role `gate` or `admin`).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use shared::auth::{AdminUser, GateUser};
use shared::http::{Json, JsonBody, On, PathArg, QueryArg};
use shared::payments::refunds::{self, Refund};
use shared::tickets::back_office::{self, Search};
use shared::tickets::inventory::EventView;
use shared::tickets::orders::OrderView;
use shared::tickets::{inventory, orders};
use shared::{ApiResult, App};

pub fn router() -> Router<App> {
    Router::new()
        .route("/api/v1/admin/events", get(list_events).post(create_event))
        .route("/api/v1/admin/events/{id}/report", get(report))
        .route("/api/v1/admin/events/{id}/cancel", post(cancel_event))
        .route("/api/v1/admin/events/{id}/stop_sales", post(stop_sales))
        .route("/api/v1/admin/events/{id}/resume_sales", post(resume_sales))
        .route("/api/v1/admin/scans", post(scan))
        .route("/api/v1/admin/ticket_orders", get(search_orders))
        .route("/api/v1/admin/ticket_orders/{id}", get(show_order))
        .route("/api/v1/admin/ticket_orders/{id}/resend_email", post(resend_email))
        .route("/api/v1/admin/ticket_orders/{id}/cancel", post(cancel))
        .route("/api/v1/admin/ticket_orders/{id}/paid", post(mark_paid))
        .route("/api/v1/admin/ticket_orders/{id}/refund", post(refund))
        .route("/api/v1/admin/refunds", get(manual_refunds))
        .route("/api/v1/admin/refunds/{payment_id}/{refund_id}/completed", post(refund_made_by_hand))
}

// Answers are typed structs serialized directly, so money never passes through a float.

#[derive(Serialize)]
struct EventBody {
    event: EventView,
}

#[derive(Serialize)]
struct EventsBody {
    events: Vec<EventView>,
}

#[derive(Serialize)]
struct OrderBody {
    success: bool,
    order: OrderView,
}

/// Loads a seat map (the body) as a new event: 201 with the event, 409 if it exists.
async fn create_event(
    State(app): State<App>,
    admin: AdminUser,
    JsonBody(map): JsonBody<inventory::SeatMap>,
) -> ApiResult<Response> {
    let event = inventory::create_event(&app, &map).await?;
    tracing::info!(event = %event.id, seats = event.seat_count, by = %admin.0.sub, "event created");
    Ok((StatusCode::CREATED, Json(EventBody { event: event.view() })).into_response())
}

async fn list_events(State(app): State<App>, _admin: AdminUser) -> ApiResult<Json<EventsBody>> {
    let events = inventory::list_events(&app).await?;
    Ok(Json(EventsBody { events: events.iter().map(inventory::Event::view).collect() }))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchQuery {
    email: Option<String>,
    phone: Option<String>,
    bar_code: Option<String>,
    page: Option<usize>,
    per: Option<usize>,
}

#[derive(Serialize)]
struct OrdersBody {
    success: bool,
    orders: Vec<OrderView>,
    meta: serde_json::Value,
}

/// Ticket orders found by exactly one of the buyer's `email`, `phone` or a `bar_code`, newest
/// first, paged as the deals list is (`page`, `per` = 10, `meta`).
async fn search_orders(
    State(app): State<App>,
    _admin: AdminUser,
    QueryArg(q): QueryArg<SearchQuery>,
) -> ApiResult<Json<OrdersBody>> {
    let by = match (q.email.clone(), q.phone.clone(), q.bar_code.clone()) {
        (Some(e), None, None) => Search::Email(e),
        (None, Some(p), None) => Search::Phone(p),
        (None, None, Some(b)) => Search::BarCode(b),
        _ => {
            return Err(shared::ApiError::bad_request(
                "email",
                "give exactly one of email, phone or bar_code",
            ));
        }
    };
    let (page, per) = shared::http::paging(q.page, q.per)?;
    let (found, total) = back_office::search(&app, &by, page, per).await?;
    let meta = shared::http::page_meta(page, per, total, |p| by.link(&app.config.public_url, p, per));
    let orders = found.iter().map(|o| orders::view(&app, o)).collect();
    Ok(Json(OrdersBody { success: true, orders, meta }))
}

/// An event's sales report: JSON, or CSV when the client accepts `text/csv`.
async fn report(
    On { app, id, .. }: On<AdminUser, String>,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    let report = back_office::report(&app, &id).await?;
    let csv = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/csv"));
    if csv {
        let name = format!("attachment; filename=\"report-{id}.csv\"");
        return Ok((
            [
                (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (axum::http::header::CONTENT_DISPOSITION, name),
            ],
            report.csv(),
        )
            .into_response());
    }
    Ok(Json(report).into_response())
}

/// Cancels an event: 202 with the event, its sales stopped and its cancellation `running`;
/// the reservations job refunds its paid online orders through their gateways and cancels its
/// cash orders (each buyer emailed), and records the progress on the event.
async fn cancel_event(On { app, user: admin, id }: On<AdminUser, String>) -> ApiResult<Response> {
    let event = back_office::cancel_event(&app, &id, &admin.0.sub).await?;
    tracing::info!(event = %event.id, by = %admin.0.sub, "event cancelled");
    Ok((StatusCode::ACCEPTED, Json(EventBody { event: event.view() })).into_response())
}

/// Stops an event's sales: holds and checkouts are refused until resumed.
async fn stop_sales(On { app, user: admin, id }: On<AdminUser, String>) -> ApiResult<Json<EventBody>> {
    let event = back_office::set_on_sale(&app, &id, false).await?;
    tracing::info!(event = %event.id, by = %admin.0.sub, "sales stopped");
    Ok(Json(EventBody { event: event.view() }))
}

async fn resume_sales(On { app, user: admin, id }: On<AdminUser, String>) -> ApiResult<Json<EventBody>> {
    let event = back_office::set_on_sale(&app, &id, true).await?;
    tracing::info!(event = %event.id, by = %admin.0.sub, "sales resumed");
    Ok(Json(EventBody { event: event.view() }))
}

async fn show_order(On { app, id, .. }: On<AdminUser, String>) -> ApiResult<Json<OrderBody>> {
    let s = orders::get(&app, &id).await?;
    Ok(Json(OrderBody { success: true, order: orders::view(&app, &s.order) }))
}

async fn resend_email(On { app, id, .. }: On<AdminUser, String>) -> ApiResult<Json<OrderBody>> {
    let order = orders::resend_email(&app, &id).await?;
    Ok(Json(OrderBody { success: true, order: orders::view(&app, &order) }))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ScanRequest {
    code: String,
    gate: String,
}

/// A gate scans a ticket: 200 with what to let in, once; 409 naming the first use after that;
/// 422 naming `code` for a forged, refunded, unpaid or other day's ticket (see `shared::scans`).
async fn scan(
    State(app): State<App>,
    GateUser(staff): GateUser,
    JsonBody(req): JsonBody<ScanRequest>,
) -> ApiResult<Json<shared::scans::Admission>> {
    let admission = shared::scans::scan(&app, &req.code, &req.gate, &staff.sub).await?;
    tracing::info!(ticket = %admission.ticket, order = %admission.order, gate = %req.gate, by = %staff.sub, "ticket admitted");
    Ok(Json(admission))
}

async fn cancel(On { app, user: admin, id }: On<AdminUser, String>) -> ApiResult<Json<OrderBody>> {
    let order = orders::cancel(&app, &id).await?;
    tracing::info!(order = %order.id, by = %admin.0.sub, "ticket order cancelled");
    Ok(Json(OrderBody { success: true, order: orders::view(&app, &order) }))
}

/// The box office took the money of a cash order: 200 with the order, now with its bar codes
/// (the buyer is emailed them); 409 when already paid or past its deadline.
async fn mark_paid(On { app, user: admin, id }: On<AdminUser, String>) -> ApiResult<Json<OrderBody>> {
    let order = orders::mark_paid(&app, &id, &admin.0.sub).await?;
    tracing::info!(order = %order.id, by = %admin.0.sub, "cash ticket order paid");
    Ok(Json(OrderBody { success: true, order: orders::view(&app, &order) }))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RefundRequest {
    /// A JSON number or string, read from its text (never through a float).
    amount: Box<serde_json::value::RawValue>,
    #[serde(default)]
    reason: Option<String>,
}

/// Refunds part or all of an approved online order through its gateway: 200 when the
/// gateway made it, 202 when its answer was lost (the refund stays pending on the order and
/// the reconciliation job finishes it), 502 when it refused.
async fn refund(
    On { app, user: admin, id }: On<AdminUser, String>,
    JsonBody(req): JsonBody<RefundRequest>,
) -> ApiResult<Response> {
    let amount = orders::parse_amount(req.amount.get())?;
    let (order, pending) =
        orders::refund(&app, &id, amount, req.reason.unwrap_or_default(), &admin.0.sub).await?;
    tracing::info!(order = %order.id, amount = %amount, by = %admin.0.sub, pending, "ticket order refund");
    let status = if pending { StatusCode::ACCEPTED } else { StatusCode::OK };
    Ok((status, Json(OrderBody { success: true, order: orders::view(&app, &order) })).into_response())
}

#[derive(Serialize)]
struct RefundsBody {
    refunds: Vec<RefundView>,
}

#[derive(Serialize)]
struct RefundView {
    id: String,
    payment_id: String,
    #[serde(with = "shared::money::number")]
    amount: shared::money::Decimal,
    reason: String,
    state: &'static str,
    error: Option<String>,
    created_at: String,
    updated_at: String,
}

impl From<&Refund> for RefundView {
    fn from(r: &Refund) -> Self {
        RefundView {
            id: r.id.clone(),
            payment_id: r.payment_id.clone(),
            amount: r.amount,
            reason: r.reason.clone(),
            state: r.state.as_str(),
            error: r.error.clone(),
            created_at: shared::payments::ts(r.created_at),
            updated_at: shared::payments::ts(r.updated_at),
        }
    }
}

/// Refunds that wait for a person (the gateway would not return the money, or cannot tell
/// whether it did), newest first.
async fn manual_refunds(State(app): State<App>, _admin: AdminUser) -> ApiResult<Json<RefundsBody>> {
    let list = refunds::manual(&app).await?;
    Ok(Json(RefundsBody { refunds: list.iter().map(RefundView::from).collect() }))
}

/// A refund waiting for a person was made by hand in the gateway's merchant account.
async fn refund_made_by_hand(
    State(app): State<App>,
    admin: AdminUser,
    PathArg((payment_id, refund_id)): PathArg<(String, String)>,
) -> ApiResult<Json<RefundsBody>> {
    let r = refunds::completed_by_hand(&app, &payment_id, &refund_id, &admin.0.sub).await?;
    Ok(Json(RefundsBody { refunds: vec![RefundView::from(&r)] }))
}
