//! The AWS SDK configuration, read from the environment as Lambda sets it: `AWS_REGION` (or
//! `AWS_DEFAULT_REGION`), `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, and
//! `AWS_ENDPOINT_URL` for a local peer. Built here instead of by `aws-config`, whose profile
//! files, SSO, STS, IMDS and container credential providers a Lambda function never uses (about
//! half a MiB of every binary). A local run against a real account takes its credentials from
//! the environment too (`aws configure export-credentials --format env`).
//!
//! Every client goes over the same HTTP client as the gateway client (reqwest on rustls with
//! ring, [`sdk_http`]): one HTTP client and one TLS implementation in every binary. The AWS
//! endpoints are trusted on the roots they chain to, Amazon Trust Services' four and the
//! Starfield root that cross-signs them, built in (`aws/amazon-roots.pem`): a start reads and
//! parses five certificates instead of the system's whole bundle (about 140, 1.5 ms or more
//! before the first call), and a certificate from any other authority is refused for an AWS
//! API. A peer named in `AWS_ENDPOINT_URL` over HTTPS is trusted on the system's roots instead.

use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sdk_dynamodb::config::BehaviorVersion;
use aws_smithy_async::rt::sleep::TokioSleep;
use aws_smithy_async::time::SystemTimeSource;
pub use aws_types::SdkConfig;
use aws_types::region::Region;
use aws_types::sdk_config::{RetryConfig, SharedCredentialsProvider, TimeoutConfig};

pub mod sdk_http;

/// How long a connection to an AWS API may take to open (as `aws-config` sets it).
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

/// The SDK configuration from the process environment (each function loads it once, at start).
pub fn load() -> SdkConfig {
    from_vars(env_var)
}

/// A process environment variable, unset when empty.
pub fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The SDK configuration from the given variables.
pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> SdkConfig {
    let endpoint = var("AWS_ENDPOINT_URL");
    let mut b = builder(Trust::for_endpoint(endpoint.as_deref()));
    b.set_region(region_from_vars(&var).map(Region::new));
    b.set_endpoint_url(endpoint);
    b.set_credentials_provider(credentials_from_vars(&var));
    b.build()
}

/// The region: `AWS_REGION`, else `AWS_DEFAULT_REGION`.
pub fn region_from_vars(var: &impl Fn(&str) -> Option<String>) -> Option<String> {
    var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION"))
}

/// The credentials Lambda hands a function (its role's) in the environment, if there are any.
pub fn credentials_from_vars(var: &impl Fn(&str) -> Option<String>) -> Option<SharedCredentialsProvider> {
    let (key, secret) = (var("AWS_ACCESS_KEY_ID")?, var("AWS_SECRET_ACCESS_KEY")?);
    let creds = Credentials::new(key, secret, var("AWS_SESSION_TOKEN"), None, "environment");
    Some(SharedCredentialsProvider::new(creds))
}

/// What every configuration starts from: the latest behaviour, an HTTPS client trusting `trust`,
/// standard retries (3 attempts), a 3.1 s connect timeout (as `aws-config` sets them), Tokio's
/// timer and the system clock.
pub fn builder(trust: Trust) -> aws_types::sdk_config::Builder {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(https_trusting(trust))
        .retry_config(RetryConfig::standard())
        .timeout_config(TimeoutConfig::builder().connect_timeout(CONNECT_TIMEOUT).build())
        .sleep_impl(TokioSleep::new())
        .time_source(SystemTimeSource::new())
}

/// The HTTP client every SDK client uses (for a client configured by hand): AWS's roots only.
pub fn https() -> aws_sdk_dynamodb::config::SharedHttpClient {
    https_trusting(Trust::Amazon)
}

/// The root certificates of AWS service endpoints (see the module docs).
pub const AMAZON_ROOTS: &[u8] = include_bytes!("aws/amazon-roots.pem");

/// Which roots an HTTPS client trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Amazon's roots, built in: AWS itself.
    Amazon,
    /// The system's bundle: a peer named by hand.
    System,
}

impl Trust {
    /// For `AWS_ENDPOINT_URL`: only a peer named by hand over HTTPS needs other roots; over
    /// plain HTTP (moto, a stand-in) none are used, and the client is built as on AWS.
    pub fn for_endpoint(endpoint: Option<&str>) -> Trust {
        match endpoint {
            Some(url) if url.starts_with("https://") => Trust::System,
            _ => Trust::Amazon,
        }
    }
}

/// The SDK's HTTP client (reqwest on rustls with ring, see [`sdk_http`]), trusting `trust`.
pub fn https_trusting(trust: Trust) -> aws_sdk_dynamodb::config::SharedHttpClient {
    aws_sdk_dynamodb::config::SharedHttpClient::new(sdk_http::ReqwestHttpClient::new(trust))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_lambda_sets() {
        let env = |name: &str| match name {
            "AWS_REGION" => Some("eu-central-1".to_string()),
            "AWS_ACCESS_KEY_ID" => Some("ASIAKEY".into()),
            "AWS_SECRET_ACCESS_KEY" => Some("secret".into()),
            "AWS_SESSION_TOKEN" => Some("token".into()),
            _ => None,
        };
        let conf = from_vars(env);
        assert_eq!(conf.region().map(|r| r.as_ref()), Some("eu-central-1"));
        assert_eq!(conf.endpoint_url(), None);
        assert!(conf.credentials_provider().is_some());
        assert_eq!(conf.retry_config().map(|r| r.max_attempts()), Some(3));
        assert!(conf.behavior_version().is_some());
    }

    #[test]
    fn the_built_in_roots_are_amazons_five_certificates() {
        use base64::Engine;
        let pem = std::str::from_utf8(AMAZON_ROOTS).unwrap();
        let blocks: Vec<&str> = pem
            .split("-----BEGIN CERTIFICATE-----")
            .skip(1)
            .map(|b| b.split("-----END CERTIFICATE-----").next().unwrap())
            .collect();
        assert_eq!(blocks.len(), 5);
        for b in blocks {
            let b64: String = b.split_whitespace().collect();
            let der = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
            assert_eq!(der[0], 0x30, "a DER sequence");
        }
        for name in
            ["Amazon Root CA 1", "Amazon Root CA 4", "Starfield Services Root Certificate Authority - G2"]
        {
            assert!(pem.contains(&name.replace(' ', "_")), "{name}");
        }
    }

    #[test]
    fn a_local_peer_and_the_default_region_variable() {
        let env = |name: &str| match name {
            "AWS_DEFAULT_REGION" => Some("us-east-1".to_string()),
            "AWS_ENDPOINT_URL" => Some("http://127.0.0.1:5000".into()),
            _ => None,
        };
        let conf = from_vars(env);
        assert_eq!(conf.region().map(|r| r.as_ref()), Some("us-east-1"));
        assert_eq!(conf.endpoint_url(), Some("http://127.0.0.1:5000"));
        assert!(conf.credentials_provider().is_none());
    }
}
