#[global_allocator]
static ALLOC: shared::Allocator = shared::Allocator;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::run_lambda(tickets::router()).await
}
