//! A bare axum hello-world on 127.0.0.1:$PORT: the baseline the benchmarks compare against.

use axum::Router;
use axum::routing::get;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = std::env::var("PORT").unwrap_or_else(|_| "3001".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    axum::serve(listener, Router::new().route("/hello", get(|| async { "Hello, world!" }))).await
}
