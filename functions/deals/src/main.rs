#[global_allocator]
static ALLOC: shared::Allocator = shared::Allocator;

// A Lambda process serves one event at a time: a single-threaded runtime, no worker threads to start.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::run_lambda(group::router()).await
}
