//! Escrow deals (seed 003) over HTTP: parse, call the domain, answer.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::auth::AuthUser;
use shared::deals::Payer;
use shared::http::JsonBody;
use shared::money;
use shared::{ApiError, ApiResult, App, users};

pub fn router() -> Router<App> {
    Router::new().route("/api/v1/me", get(me)).route("/api/v1/orders/calc_commission", post(calc_commission))
}

async fn me(State(app): State<App>, AuthUser(claims): AuthUser) -> ApiResult<Json<Value>> {
    let user = users::sync(&app, &claims).await?;
    Ok(Json(json!({ "user": user.to_json() })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CalcRequest {
    cost: Decimal,
    commission_payer: Payer,
}

/// The smallest deal cost, roubles.
pub const MIN_COST: Decimal = Decimal::from_parts(20, 0, 0, false, 0);

pub fn check_cost(field: &str, cost: Decimal) -> ApiResult<()> {
    if cost < MIN_COST {
        return Err(ApiError::invalid(field, "cost must be at least 20.00"));
    }
    if cost.normalize().scale() > 2 {
        return Err(ApiError::invalid(field, "cost has more than two decimals"));
    }
    Ok(())
}

async fn calc_commission(
    State(app): State<App>,
    _user: AuthUser,
    JsonBody(req): JsonBody<CalcRequest>,
) -> ApiResult<Json<CalcResponse>> {
    check_cost("cost", req.cost)?;
    let c = &app.config.commission;
    let b = c.compute(req.cost, req.commission_payer);
    Ok(Json(CalcResponse {
        cost: b.cost,
        commission: b.commission,
        commission_description: b.description(),
        mandarin_commission: c.mandarin_percent,
        gateway_commission: c.gateway_percent,
        supplier_receive: b.supplier_receive,
        consumer_pay: ConsumerPay {
            invoice: b.consumer_pay,
            gateway: b.gateway_pay,
            mandarin: b.mandarin_pay,
        },
    }))
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

#[derive(Serialize)]
struct CalcResponse {
    #[serde(with = "money::number")]
    cost: Decimal,
    #[serde(with = "money::number")]
    commission: Decimal,
    commission_description: String,
    #[serde(with = "money::plain")]
    mandarin_commission: Decimal,
    #[serde(with = "money::plain")]
    gateway_commission: Decimal,
    #[serde(with = "money::number")]
    supplier_receive: Decimal,
    consumer_pay: ConsumerPay,
}
