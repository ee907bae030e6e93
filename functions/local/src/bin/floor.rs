//! The framework's floor for a call, on 127.0.0.1:$PORT: the same axum server as the
//! hello-world, answering every request but `GET /hello` (its body read whole, whatever its
//! method and path) with a constant JSON body of `FLOOR_BYTES` bytes. The benchmarks send it a
//! call's exact requests (the same wrk script) and size its answer like the call's: what the call
//! would cost if its handler did nothing, so that the rest of its cost is known to be the
//! handler's own.

use axum::Router;
use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;

/// `{"pad":"xx…"}`, `len` bytes long (at least the 10 of the braces and the key).
fn body(len: usize) -> &'static str {
    let pad = "x".repeat(len.saturating_sub(10));
    Box::leak(format!("{{\"pad\":\"{pad}\"}}").into_boxed_str())
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = std::env::var("PORT").unwrap_or_else(|_| "3002".into());
    let answer = body(std::env::var("FLOOR_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(256));
    let router = Router::new().route("/hello", get(|| async { "Hello, world!" })).fallback(
        move |b: Bytes| async move {
            drop(b);
            ([(CONTENT_TYPE, "application/json")], answer)
        },
    );
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    axum::serve(listener, router).await
}
