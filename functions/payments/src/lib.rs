//! ZooTicket payment sessions (seed 004) over HTTP: `/v1/payments...`, with the seed's
//! `{success, message, data}` envelope. Every route needs a bearer JWT; a payment belongs
//! to the token's `sub` and is 404 for anyone else.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::auth::{AdminUser, AuthUser};
use shared::http::{ClientAddress, PathArg, QueryArg, parse_json};
use shared::http::{Json, RawJson};
use shared::idempotency::{self, Keyed};
use shared::zoo::{self, CreateSession, UpdatePayment, tariff};
use shared::{ApiError, ApiResult, App};

pub fn router() -> Router<App> {
    Router::new()
        .route("/v1/payments/sessions", post(create))
        .route(
            "/v1/payments/{payment_id}",
            get(read).put(update::<true>).patch(update::<false>).delete(remove),
        )
        .route("/v1/slots", get(slot))
        .route("/v1/tariff", get(tariff).put(set_tariff))
}

/// The seed's `{success, message, data}`, its fields in the order a JSON object of them is
/// written (by name), as every answer of this group writes them.
#[derive(Serialize)]
struct Envelope<T> {
    data: T,
    message: &'static str,
    success: bool,
}

type Answer = ApiResult<Json<Envelope<Value>>>;

fn envelope<T>(message: &'static str, data: T) -> Json<Envelope<T>> {
    Json(Envelope { data, message, success: true })
}

/// A created session's `data`, written straight from the payment (no JSON object built first).
#[derive(Serialize)]
struct Created<'a> {
    confirmation_url: &'a Option<String>,
    expires_at: String,
    payment_id: &'a str,
    session_id: &'a str,
    status: &'static str,
}

async fn create(
    State(app): State<App>,
    AuthUser(user): AuthUser,
    ClientAddress(client): ClientAddress,
    req: Keyed,
) -> ApiResult<Response> {
    req.answer(&app, "zoo-session", &user.sub, || async {
        let body: CreateSession = parse_json(&req.body)?;
        let (p, session_id) = zoo::create_session(&app, &user.sub, client.as_deref(), body).await?;
        let data = Created {
            confirmation_url: &p.confirmation_url,
            expires_at: shared::payments::ts(p.expires_at),
            payment_id: &p.id,
            session_id: &session_id,
            status: p.status.as_str(),
        };
        idempotency::stored(StatusCode::CREATED, &envelope("Payment session created successfully", data).0)
    })
    .await
}

async fn read(State(app): State<App>, AuthUser(user): AuthUser, PathArg(id): PathArg<String>) -> Answer {
    let (p, s) = zoo::load_for(&app, &user, &id).await?;
    Ok(envelope("Payment retrieved successfully", zoo::view(&p, &s)))
}

/// PUT (`FULL`: the body replaces the updatable fields) or PATCH (only the fields given).
async fn update<const FULL: bool>(
    State(app): State<App>,
    AuthUser(user): AuthUser,
    PathArg(id): PathArg<String>,
    RawJson(body): RawJson,
) -> Answer {
    let req: UpdatePayment = parse_json(&body)?;
    let (p, s) = zoo::update(&app, &user, &id, req, FULL).await?;
    Ok(envelope("Payment updated successfully", zoo::view(&p, &s)))
}

async fn remove(State(app): State<App>, AuthUser(user): AuthUser, PathArg(id): PathArg<String>) -> Answer {
    let at = zoo::delete(&app, &user, &id).await?;
    Ok(envelope(
        "Payment deleted successfully",
        json!({ "payment_id": id, "deleted_at": shared::payments::ts(at) }),
    ))
}

#[derive(Deserialize)]
struct SlotQuery {
    visit_date: String,
    visit_time: String,
}

/// Places of one visit slot: `{capacity, reserved, available}`.
async fn slot(State(app): State<App>, QueryArg(q): QueryArg<SlotQuery>) -> Answer {
    if q.visit_date.len() > 10 || q.visit_time.len() > 5 {
        return Err(ApiError::bad_request("visit_date", "visit_date is YYYY-MM-DD and visit_time HH:MM"));
    }
    let (capacity, reserved) = zoo::slots::availability(&app, &q.visit_date, &q.visit_time).await?;
    Ok(envelope(
        "Slot retrieved successfully",
        json!({
            "visit_date": q.visit_date,
            "visit_time": q.visit_time,
            "capacity": capacity,
            "reserved": reserved,
            "available": (capacity - reserved).max(0),
        }),
    ))
}

/// The zoo's tariff (ticket types and prices) and visit times: public, like a price list.
async fn tariff(State(app): State<App>) -> Answer {
    let t = tariff::current(&app).await?;
    Ok(envelope("Tariff retrieved successfully", tariff::view(&app, &t)))
}

/// Replaces the tariff (role `admin`).
async fn set_tariff(State(app): State<App>, admin: AdminUser, RawJson(body): RawJson) -> Answer {
    let req: tariff::TariffIn = parse_json(&body)?;
    let t = tariff::set(&app, &req, &admin.0.sub).await?;
    Ok(envelope("Tariff updated successfully", tariff::view(&app, &t)))
}
