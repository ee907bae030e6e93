//! The whole API on one HTTP server: every endpoint group's router mounted together over
//! one [`App`]. Used by `make run` and by the black-box tests.

pub mod dev;

use axum::Router;
use shared::App;

/// Every endpoint group, finished for serving.
pub fn router(app: App) -> Router {
    let groups = Router::new()
        .merge(health::router())
        .merge(deals::router())
        .merge(payments::router())
        .merge(gateways::router())
        .merge(tickets::router())
        .merge(admin::router())
        .merge(dev::router());
    let groups = groups.route("/openapi.json", axum::routing::get(openapi));
    shared::http::finish(groups, app)
}

/// Serves the API on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, app: App) -> std::io::Result<()> {
    // The peer's address is the client address the caps count (API Gateway's source IP on AWS).
    axum::serve(listener, router(app).into_make_service_with_connect_info::<std::net::SocketAddr>()).await
}

/// The OpenAPI 3.1 document of every endpoint (`openapi/openapi.json`).
pub const OPENAPI_JSON: &str = include_str!("../../../openapi/openapi.json");

async fn openapi() -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}
