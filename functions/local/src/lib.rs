//! The whole API on one HTTP server: every endpoint group's router mounted together over
//! one [`App`]. Used by `make run` and by the black-box tests.

pub mod dev;

use axum::Router;
use shared::App;

/// Every endpoint group, finished for serving.
pub fn router(app: App) -> shared::http::Api {
    let groups = Router::new()
        .merge(health::router())
        .merge(deals::router())
        .merge(payments::router())
        .merge(gateways::router())
        .merge(tickets::router())
        .merge(admin::router())
        .merge(dev::router());
    let groups = groups
        .route("/openapi.json", axum::routing::get(openapi))
        .route("/docs", axum::routing::get(docs_page))
        .route("/docs/{asset}", axum::routing::get(docs_asset))
        .route("/demo/", axum::routing::get(demo_page))
        .route("/demo/{asset}", axum::routing::get(demo_asset));
    shared::http::finish(groups, app)
}

/// The demo front end's pages (`demo/`: plain HTML, CSS and JavaScript, no build step): the
/// local server's `/demo/`. The same folder works from any other origin (`?api=` names the
/// API, see `demo/demo.js`).
const DEMO_ASSETS: [(&str, &str, &[u8]); 6] = [
    ("index.html", "text/html; charset=utf-8", include_bytes!("../../../demo/index.html")),
    ("event.html", "text/html; charset=utf-8", include_bytes!("../../../demo/event.html")),
    ("order.html", "text/html; charset=utf-8", include_bytes!("../../../demo/order.html")),
    ("zoo.html", "text/html; charset=utf-8", include_bytes!("../../../demo/zoo.html")),
    ("demo.js", "text/javascript; charset=utf-8", include_bytes!("../../../demo/demo.js")),
    ("demo.css", "text/css; charset=utf-8", include_bytes!("../../../demo/demo.css")),
];

async fn demo_page() -> axum::response::Response {
    demo_file("index.html")
}

async fn demo_asset(shared::http::PathArg(asset): shared::http::PathArg<String>) -> axum::response::Response {
    demo_file(&asset)
}

fn demo_file(asset: &str) -> axum::response::Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    match DEMO_ASSETS.iter().find(|(name, _, _)| *name == asset) {
        Some((_, kind, bytes)) => {
            ([(header::CONTENT_TYPE, *kind), (header::CACHE_CONTROL, "no-cache")], *bytes).into_response()
        }
        None => shared::ApiError::NotFound("demo page".into()).into_response(),
    }
}

/// The local server's default pages after a ticket payment: the demo's order page, unless
/// `TICKETS_SUCCESS_URL` / `TICKETS_ERROR_URL` name others.
pub fn with_demo_return_pages(config: &shared::Config) -> shared::Config {
    let page = format!("{}/demo/order.html?order={{order_id}}", config.public_url);
    let mut config = config.clone();
    config.tickets_success_url.get_or_insert_with(|| page.clone());
    config.tickets_error_url.get_or_insert(page);
    config
}

/// Serves the API on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, app: App) -> std::io::Result<()> {
    // The peer's address is the client address the caps count (API Gateway's source IP on AWS).
    use axum::ServiceExt;
    axum::serve(listener, router(app).into_make_service_with_connect_info::<std::net::SocketAddr>()).await
}

/// The OpenAPI 3.1 document of every endpoint (`openapi/openapi.json`).
pub const OPENAPI_JSON: &str = include_str!("../../../openapi/openapi.json");

/// The API docs viewer (Swagger UI, vendored from its npm package; see `docs/api/`): the local
/// server's `/docs`, rendering `/openapi.json` with its request examples.
const DOCS_ASSETS: [(&str, &str, &[u8]); 6] = [
    ("init.js", "text/javascript; charset=utf-8", include_bytes!("../../../docs/api/init.js")),
    (
        "swagger-ui-bundle.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../docs/api/vendor/swagger-ui-dist-5.35.0/swagger-ui-bundle.js"),
    ),
    (
        "swagger-ui.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../docs/api/vendor/swagger-ui-dist-5.35.0/swagger-ui.css"),
    ),
    (
        "LICENSE",
        "text/plain; charset=utf-8",
        include_bytes!("../../../docs/api/vendor/swagger-ui-dist-5.35.0/LICENSE"),
    ),
    (
        "NOTICE",
        "text/plain; charset=utf-8",
        include_bytes!("../../../docs/api/vendor/swagger-ui-dist-5.35.0/NOTICE"),
    ),
    (
        "swagger-ui-bundle.js.LICENSE.txt",
        "text/plain; charset=utf-8",
        include_bytes!("../../../docs/api/vendor/swagger-ui-dist-5.35.0/swagger-ui-bundle.js.LICENSE.txt"),
    ),
];

async fn docs_page() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
        include_str!("../../../docs/api/index.html"),
    )
}

async fn docs_asset(shared::http::PathArg(asset): shared::http::PathArg<String>) -> axum::response::Response {
    use axum::response::IntoResponse;
    match DOCS_ASSETS.iter().find(|(name, _, _)| *name == asset) {
        Some((_, kind, bytes)) => ([(axum::http::header::CONTENT_TYPE, *kind)], *bytes).into_response(),
        None => shared::ApiError::NotFound("docs asset".into()).into_response(),
    }
}

async fn openapi() -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}
