//! `GET /v1/health` (seed 004): `{"status":"healthy","timestamp":"2024-10-25T10:00:00Z"}`.
//! It reads nothing and needs no configuration, so the function links neither the store, the
//! AWS SDK nor the domain crate; its router fits any state, as the local server merges it.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/v1/health", get(health))
}

async fn health() -> Json<Value> {
    Json(json!({
        "status": "healthy",
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }))
}
