//! The framework's floor for a call's shape, on 127.0.0.1:$PORT: the same axum server as the
//! hello-world, answering `POST /floor` (its body read whole) and `GET /floor` with a constant
//! JSON body of `FLOOR_POST_BYTES` / `FLOOR_GET_BYTES` bytes. The benchmarks send it a call's
//! exact request and size its answer like the call's: what the call would cost if its handler
//! did nothing, so that the rest of its cost is known to be the handler's own. Any other method
//! and path (a seat hold's, a zoo session's, sent by the same wrk script as the call) is answered
//! like `POST /floor` with `FLOOR_ANY_BYTES` bytes.

use axum::Router;
use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;

/// `{"pad":"xx…"}`, `len` bytes long (at least the 10 of the braces and the key).
fn body(len: usize) -> &'static str {
    let pad = "x".repeat(len.saturating_sub(10));
    Box::leak(format!("{{\"pad\":\"{pad}\"}}").into_boxed_str())
}

fn size(var: &str) -> usize {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = std::env::var("PORT").unwrap_or_else(|_| "3002".into());
    let (post, got) = (body(size("FLOOR_POST_BYTES")), body(size("FLOOR_GET_BYTES")));
    let any = body(size("FLOOR_ANY_BYTES"));
    let json = || [(CONTENT_TYPE, "application/json")];
    let router = Router::new()
        .route("/hello", get(|| async { "Hello, world!" }))
        .route(
            "/floor",
            get(move || async move { (json(), got) }).post(move |b: Bytes| async move {
                drop(b);
                (json(), post)
            }),
        )
        .fallback(move |b: Bytes| async move {
            drop(b);
            (json(), any)
        });
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    axum::serve(listener, router).await
}
