use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use scheduler::JobDetail;

#[global_allocator]
static ALLOC: shared::Allocator = shared::Allocator;

// A Lambda process serves one event at a time: a single-threaded runtime, no worker threads to start.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let app = shared::App::start().await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<EventBridgeEvent<JobDetail>>| {
        let app = app.clone();
        async move { scheduler::handle(&app, event.payload).await.map_err(Error::from) }
    }))
    .await
}
