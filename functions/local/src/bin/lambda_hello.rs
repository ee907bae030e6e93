//! A bare `lambda_runtime` hello-world: the baseline the benchmarks compare each function's
//! first answer with, started the same way on the same fake runtime API.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(|_event: LambdaEvent<Value>| async {
        Ok::<Value, Error>(json!({ "statusCode": 200, "body": "Hello, world!" }))
    }))
    .await
}
