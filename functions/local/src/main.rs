//! `local` — serves the whole API on 127.0.0.1:$PORT (default 3000).
//! `local token [SUB] [ROLE...]` — prints a dev JWT signed with the configured secret.

use shared::App;
use shared::auth::{Claims, issue};

#[global_allocator]
static ALLOC: shared::Allocator = shared::Allocator;

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("refusing to start: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = shared::Config::from_env()?;
    if args.first().map(String::as_str) == Some("token") {
        let sub = args.get(1).cloned().unwrap_or_else(|| "1".into());
        // As long as the server accepts one (JWT_MAX_AGE).
        let ttl = chrono::Duration::from_std(config.jwt.max_age).map_err(|e| e.to_string())?;
        let claims = Claims {
            email: Some(format!("user{sub}@example.com")),
            name: Some(format!("User {sub}")),
            roles: args.iter().skip(2).cloned().collect(),
            ..Claims::new(sub, ttl)
        };
        println!("{}", issue(&config.jwt.secret, &claims));
        return Ok(());
    }
    shared::telemetry::init();
    let mut app = App::from_env().await?;
    app.config = std::sync::Arc::new(local::with_demo_return_pages(&app.config));
    if let Some(delay) = app.config.store_delay {
        app.store = std::sync::Arc::new(local::dev::Delayed::new(app.store.clone(), delay));
    }
    let addr = format!("127.0.0.1:{}", app.config.port);
    shared::tickets::inventory::load_demo(&app).await.map_err(|e| format!("demo event: {e}"))?;
    let listener = tokio::net::TcpListener::bind(&addr).await.map_err(|e| format!("bind {addr}: {e}"))?;
    tracing::info!(%addr, store = if app.config.table_name.is_some() { "dynamodb" } else { "memory" }, "listening");
    local::dev::spawn_jobs(app.clone());
    local::dev::spawn_webhooks(app.clone());
    local::serve(listener, app).await.map_err(|e| e.to_string())
}
