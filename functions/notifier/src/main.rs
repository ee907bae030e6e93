use std::sync::Arc;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[global_allocator]
static ALLOC: shared::Allocator = shared::Allocator;

// A Lambda process serves one event at a time: a single-threaded runtime, no worker threads to start.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let deps = Arc::new(
        notifier::Deps::from_env()
            .await
            .inspect_err(|e| tracing::error!(error = %e, "refusing to start: configuration"))?,
    );
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let deps = deps.clone();
        async move { Ok::<SqsBatchResponse, Error>(notifier::handle(&deps, event.payload).await) }
    }))
    .await
}
