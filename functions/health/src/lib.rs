//! `GET /v1/health` (seed 004): `{"status":"healthy","timestamp":"2024-10-25T10:00:00Z"}`.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use shared::App;

pub fn router() -> Router<App> {
    Router::new().route("/v1/health", get(health))
}

async fn health(State(app): State<App>) -> Json<Value> {
    Json(json!({
        "status": "healthy",
        "timestamp": app.clock.now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }))
}
