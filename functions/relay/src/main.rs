use std::sync::Arc;

use aws_lambda_events::dynamodb::Event;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::queue_sqs::SqsQueue;
use shared::store::dynamo::DynamoStore;

/// Needs only `TABLE_NAME` and `QUEUE_URL`: no secret of any kind.
#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let var = |name: &str| {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty()).ok_or_else(|| {
            tracing::error!(name, "refusing to start: configuration");
            Error::from(format!("{name} is required"))
        })
    };
    let store = Arc::new(DynamoStore::from_env(var("TABLE_NAME")?).await);
    let queue = Arc::new(SqsQueue::from_env(var("QUEUE_URL")?).await);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| {
        let (store, queue) = (store.clone(), queue.clone());
        async move { Ok::<_, Error>(relay::handle(store.as_ref(), queue.as_ref(), event.payload).await) }
    }))
    .await
}
