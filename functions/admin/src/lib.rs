//! Box-office admin actions (role `admin`): event and seat-map management, resend the
//! buyer's email, cancel an approved cash order.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use shared::auth::AdminUser;
use shared::http::{PathArg, parse_json};
use shared::tickets::inventory::EventView;
use shared::tickets::orders::OrderView;
use shared::tickets::{inventory, orders};
use shared::{ApiResult, App};

pub fn router() -> Router<App> {
    Router::new()
        .route("/api/v1/admin/events", get(list_events).post(create_event))
        .route("/api/v1/admin/ticket_orders/{id}", get(show_order))
        .route("/api/v1/admin/ticket_orders/{id}/resend_email", post(resend_email))
        .route("/api/v1/admin/ticket_orders/{id}/cancel", post(cancel))
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
async fn create_event(State(app): State<App>, admin: AdminUser, body: Bytes) -> ApiResult<Response> {
    let map: inventory::SeatMap = parse_json(&body)?;
    let event = inventory::create_event(&app, &map).await?;
    tracing::info!(event = %event.id, seats = event.seat_count, by = %admin.0.sub, "event created");
    Ok((StatusCode::CREATED, Json(EventBody { event: event.view() })).into_response())
}

async fn list_events(State(app): State<App>, _admin: AdminUser) -> ApiResult<Json<EventsBody>> {
    let events = inventory::list_events(&app).await?;
    Ok(Json(EventsBody { events: events.iter().map(inventory::Event::view).collect() }))
}

async fn show_order(
    State(app): State<App>,
    _admin: AdminUser,
    PathArg(id): PathArg<String>,
) -> ApiResult<Json<OrderBody>> {
    let s = orders::get(&app, &id).await?;
    Ok(Json(OrderBody { success: true, order: orders::view(&app, &s.order) }))
}

async fn resend_email(
    State(app): State<App>,
    _admin: AdminUser,
    PathArg(id): PathArg<String>,
) -> ApiResult<Json<OrderBody>> {
    let order = orders::resend_email(&app, &id).await?;
    Ok(Json(OrderBody { success: true, order: orders::view(&app, &order) }))
}

async fn cancel(
    State(app): State<App>,
    admin: AdminUser,
    PathArg(id): PathArg<String>,
) -> ApiResult<Json<OrderBody>> {
    let order = orders::cancel(&app, &id).await?;
    tracing::info!(order = %order.id, by = %admin.0.sub, "ticket order cancelled");
    Ok(Json(OrderBody { success: true, order: orders::view(&app, &order) }))
}
