//! Logging: JSON lines (for CloudWatch) unless `LOG_FORMAT=text` (the local server only); level from `RUST_LOG`
//! (`info` by default; a level, or targets with levels: `warn,shared::payments=debug`).
//! `RUST_LOG` is read as a list of targets, not as an `EnvFilter`: no regular expressions to
//! compile at start and none in the binary.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::prelude::*;

tokio::task_local! {
    /// The id of the HTTP request being served (set by `http::finish`'s request-id layer).
    pub static REQUEST_ID: axum::http::HeaderValue;
}

/// The id of the request this task serves, if it serves one.
pub fn request_id() -> Option<String> {
    REQUEST_ID.try_with(|id| id.to_str().ok().map(str::to_owned)).ok().flatten()
}

pub fn init() {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO));
    let layer = tracing_subscriber::fmt::layer().with_target(false);
    // A second init (tests) is harmless. Text only in the local server's build (the `local`
    // feature); a deployed function always writes JSON lines.
    #[cfg(feature = "local")]
    if crate::config::log_text() {
        let _ = tracing_subscriber::registry().with(layer.with_filter(filter)).try_init();
        return;
    }
    let json = layer.json().flatten_event(true).without_time();
    let _ = tracing_subscriber::registry().with(json.with_filter(filter)).try_init();
}
