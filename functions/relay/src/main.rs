use aws_lambda_events::dynamodb::Event;
use lambda_runtime::{Error, LambdaEvent, service_fn};

/// The table and the queue, from the configuration every function reads (`TABLE_NAME`,
/// `QUEUE_URL`; no secret of any kind).
#[global_allocator]
static ALLOC: shared::Allocator = shared::Allocator;

// A Lambda process serves one event at a time: a single-threaded runtime, no worker threads to start.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let app = shared::App::start().await?;
    if app.config.table_name.is_none() || app.config.queue_url.is_none() {
        tracing::error!("refusing to start: the relay needs TABLE_NAME and QUEUE_URL");
        return Err(Error::from("TABLE_NAME and QUEUE_URL are required"));
    }
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| {
        let app = app.clone();
        async move { Ok::<_, Error>(relay::handle(app.store.as_ref(), app.queue.as_ref(), event.payload).await) }
    }))
    .await
}
