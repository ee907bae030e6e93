#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::run(health::router::<()>()).await
}
