//! The AWS SDK configuration, read from the environment (`AWS_REGION`, `AWS_ENDPOINT_URL`,
//! credentials), over the same TLS stack as the gateway client (rustls with ring): one TLS
//! implementation and one set of root certificates in every binary.

use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use aws_smithy_http_client::Builder;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

/// Loads the SDK configuration (each function does this once, at start).
pub async fn load() -> SdkConfig {
    loader().load().await
}

/// The loader [`load`] uses, for a configuration that overrides some settings.
pub fn loader() -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest()).http_client(https())
}

/// The HTTP client every SDK client uses (for a client configured by hand).
pub fn https() -> aws_sdk_dynamodb::config::SharedHttpClient {
    Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
}
