//! Seated-event ticket ordering (seed 000) over HTTP: events and seats, preliminary
//! reservations, checkout and the step-3 order view.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::http::{Json, JsonBody, On, PathArg, parse_json};
use shared::idempotency::{self, Keyed};
use shared::tickets::inventory::{EventView, SeatView};
use shared::tickets::orders::OrderView;
use shared::tickets::reservations::ReservationView;
use shared::tickets::totals::{Customer, OrderType};
use shared::tickets::{Buyer, barcode, inventory, orders, reservations};
use shared::{ApiError, ApiResult, App};

pub fn router() -> Router<App> {
    Router::new()
        .route("/api/v1/events", get(list_events))
        .route("/api/v1/events/{event_id}/seats", get(seats))
        .route("/api/v1/events/{event_id}/seatmap.svg", get(seatmap_svg))
        .route("/api/v1/reservations", post(initialize))
        .route("/api/v1/reservations/{id}", get(show_reservation).delete(delete_reservation))
        .route("/api/v1/reservations/{id}/tickets", post(hold))
        .route("/api/v1/reservations/{id}/tickets/{seat_id}", delete(release))
        .route("/api/v1/reservations/{id}/order_type", put(order_type))
        .route("/api/v1/reservations/{id}/checkout", post(checkout))
        .route("/api/v1/ticket_orders/{id}", get(show_order))
        .route("/api/v1/ticket_orders/{id}/tickets/{bar_code}/qr", get(qr))
        .route("/api/v1/ticket_orders/{id}/payment_return", get(payment_return))
        .route("/.well-known/ticket-keys.json", get(ticket_keys))
}

// Answers are typed structs serialized directly: money must not pass through
// `serde_json::Value` (which would turn "2500.00" into a float).

#[derive(Serialize)]
struct EventsBody {
    events: Vec<EventView>,
}

async fn list_events(State(app): State<App>) -> ApiResult<Json<EventsBody>> {
    let events = inventory::list_events(&app).await?;
    let now = app.clock.now();
    Ok(Json(EventsBody {
        events: events.iter().filter(|e| e.selling(now)).map(inventory::Event::view).collect(),
    }))
}

#[derive(Serialize)]
struct SeatsBody {
    event: EventView,
    free_count: usize,
    seats: Vec<SeatView>,
}

async fn seats(State(app): State<App>, PathArg(event_id): PathArg<String>) -> ApiResult<Json<SeatsBody>> {
    let (event, seats) = inventory::seat_list(&app, &event_id).await?;
    let free_count = seats.iter().filter(|s| s.free).count();
    Ok(Json(SeatsBody { event: event.view(), free_count, seats }))
}

/// The drawn seat map (see [`shared::tickets::seatmap`]). Public, never cached: the states
/// change with every hold.
async fn seatmap_svg(State(app): State<App>, PathArg(event_id): PathArg<String>) -> ApiResult<Response> {
    let svg = shared::tickets::seatmap::svg(&app, &event_id).await?;
    let headers = [(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "no-store")];
    Ok((headers, svg).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InitRequest {
    event_id: String,
}

#[derive(Serialize)]
struct ReservationBody {
    reservation: ReservationView,
    /// The reservation token, answered to anonymous callers of initialize.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

async fn reservation_json(app: &App, s: &reservations::StoredPr) -> ApiResult<Json<ReservationBody>> {
    Ok(Json(ReservationBody { reservation: reservations::view(app, s).await?, token: None }))
}

async fn initialize(State(app): State<App>, buyer: Buyer, req: Keyed) -> ApiResult<Response> {
    let caller = idempotency_caller(&buyer);
    if caller == ANONYMOUS && req.key.as_ref().is_some_and(|k| k.len() < MIN_ANONYMOUS_KEY) {
        return Err(ApiError::invalid(
            idempotency::HEADER,
            "without a token the key alone identifies the caller and replays its reservation token: \
             use a secret of at least 32 characters (a UUID)",
        ));
    }
    req.answer(&app, "ticket-reservation", &caller, || async {
        let body: InitRequest = parse_json(&req.body)?;
        let init = reservations::initialize(&app, &buyer, &body.event_id).await?;
        let reservation = reservations::view_with(&app, &init.stored, Some(init.event)).await?;
        let status = if init.created { StatusCode::CREATED } else { StatusCode::OK };
        idempotency::stored(status, &ReservationBody { reservation, token: init.token })
    })
    .await
}

const ANONYMOUS: &str = "anonymous";
/// The shortest key an anonymous caller may use (a UUID's text is 36 characters).
const MIN_ANONYMOUS_KEY: usize = 32;

/// Who an idempotency key belongs to: the buyer's user or reservation token. An anonymous
/// first initialize has neither, so its key alone identifies it; as a replay hands out the
/// reservation token, such a key must be a secret nobody guesses: at least 32 characters.
fn idempotency_caller(buyer: &Buyer) -> String {
    buyer.owner_keys().into_iter().next().unwrap_or_else(|| ANONYMOUS.into())
}

async fn show_reservation(
    On { app, user: buyer, id }: On<Buyer, String>,
) -> ApiResult<Json<ReservationBody>> {
    let s = reservations::load(&app, &buyer, &id).await?;
    reservation_json(&app, &s).await
}

async fn delete_reservation(On { app, user: buyer, id }: On<Buyer, String>) -> ApiResult<Json<Value>> {
    reservations::delete(&app, &buyer, &id).await?;
    Ok(Json(json!({ "success": true })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldRequest {
    seat_id: String,
}

async fn hold(
    On { app, user: buyer, id }: On<Buyer, String>,
    JsonBody(req): JsonBody<HoldRequest>,
) -> ApiResult<Json<ReservationBody>> {
    // Boxed: the domain's future is large, and the handler's is moved whole several times
    // (by axum, into its boxed future and its response mapping).
    let (s, event) = Box::pin(reservations::hold(&app, &buyer, &id, &req.seat_id)).await?;
    let reservation = reservations::view_with(&app, &s, Some(event)).await?;
    Ok(Json(ReservationBody { reservation, token: None }))
}

async fn release(
    On { app, user: buyer, id }: On<Buyer, String>,
    PathArg((_, seat_id)): PathArg<(String, String)>,
) -> ApiResult<Json<ReservationBody>> {
    let (s, event) = Box::pin(reservations::release(&app, &buyer, &id, &seat_id)).await?;
    let reservation = reservations::view_with(&app, &s, event).await?;
    Ok(Json(ReservationBody { reservation, token: None }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderTypeRequest {
    order_type: OrderType,
    customer: Customer,
}

async fn order_type(
    On { app, user: buyer, id }: On<Buyer, String>,
    JsonBody(req): JsonBody<OrderTypeRequest>,
) -> ApiResult<Json<ReservationBody>> {
    let s = reservations::set_order_type(&app, &buyer, &id, req.order_type, req.customer).await?;
    reservation_json(&app, &s).await
}

async fn checkout(On { app, user: buyer, id }: On<Buyer, String>, req: Keyed) -> ApiResult<Response> {
    // The PR id is part of the scope: one key checks out one reservation. The body carries
    // nothing, but a different body with the same key is still refused. An id no reservation
    // can have is 404 at once: in the key record's key it could pass what a key may hold.
    if !reservations::is_pr_id(&id) {
        return Err(ApiError::NotFound("reservation".into()));
    }
    let caller = idempotency_caller(&buyer);
    req.answer(&app, &format!("ticket-checkout#{id}"), &caller, || async {
        let done = orders::checkout(&app, &buyer, &id).await?;
        let status = if done.repeated { StatusCode::OK } else { StatusCode::CREATED };
        let body = CheckoutBody { order: orders::view(&app, &done.order), payment_url: done.payment_url };
        idempotency::stored(status, &body)
    })
    .await
}

#[derive(Serialize)]
struct CheckoutBody {
    order: OrderView,
    /// Where to send the buyer for an online payment; `null` for cash orders.
    payment_url: Option<String>,
}

#[derive(Serialize)]
struct OrderBody {
    order: OrderView,
}

async fn show_order(On { app, user: buyer, id }: On<Buyer, String>) -> ApiResult<Json<OrderBody>> {
    let s = orders::get_for(&app, &buyer, &id).await?;
    Ok(Json(OrderBody { order: orders::view(&app, &s.order) }))
}

/// The QR image of one ticket: its payload signed with the ticket key (see
/// [`shared::ticket_keys`]). The order id and the bar code together are the credential (the
/// link is sent in the e-ticket email).
async fn qr(
    State(app): State<App>,
    PathArg((id, bar_code)): PathArg<(String, String)>,
) -> ApiResult<Response> {
    let s = orders::get(&app, &id).await?;
    // Only a paid order's tickets have a code to show.
    let valid = s.order.tickets_valid();
    let ticket =
        s.order.tickets.iter().find(|t| valid && barcode::is_valid(&bar_code) && t.bar_code == bar_code);
    let ticket = ticket.ok_or_else(|| ApiError::NotFound("ticket".into()))?;
    let payload = orders::qr_payload(&shared::ticket_keys::of(&app.config)?, &s.order, ticket);
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], barcode::qr_svg(&payload)).into_response())
}

/// The public keys that check tickets' QR payloads (a JSON Web Key Set, RFC 8037), for gate
/// scanners that verify offline. Public; cached for an hour.
async fn ticket_keys(State(app): State<App>) -> ApiResult<Response> {
    let jwks = shared::ticket_keys::of(&app.config)?.jwks();
    Ok(([(header::CACHE_CONTROL, "public, max-age=3600")], Json(jwks)).into_response())
}

/// The buyer's browser back from the payment gateway: the status is asked of the gateway,
/// then 302 to the success page (`TICKETS_SUCCESS_URL`) or the error page
/// (`TICKETS_ERROR_URL`), by default the order's own view. No credentials: the answer is
/// only a redirect, and the order id is unguessable.
async fn payment_return(State(app): State<App>, PathArg(id): PathArg<String>) -> ApiResult<Response> {
    let target = orders::payment_return(&app, &id).await?;
    Ok((StatusCode::FOUND, [(header::LOCATION, target)]).into_response())
}
