//! Logging: JSON lines (for CloudWatch) unless `LOG_FORMAT=text`; level from `RUST_LOG`.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let text = crate::config::log_text();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    // A second init (tests) is harmless.
    let _ =
        if text { builder.try_init() } else { builder.json().flatten_event(true).without_time().try_init() };
}
