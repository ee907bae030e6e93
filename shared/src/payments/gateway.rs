//! The gateway port: create a payment (a redirect URL for the buyer), verify a callback,
//! query a payment's status, refund.

use std::collections::BTreeMap;

use async_trait::async_trait;
use rust_decimal::Decimal;

use super::{GatewayKind, Payment};
use crate::App;
use crate::error::ApiResult;

/// Where to send the buyer, and the gateway's own id for the payment when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub url: String,
    pub gateway_ref: Option<String>,
}

/// A payment's state as the gateway sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    Paid {
        method: Option<String>,
    },
    Declined {
        reason: String,
    },
    /// Not paid (yet).
    Pending,
    Refunded,
}

/// A callback whose signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackEvent {
    pub payment_id: String,
    pub remote: Remote,
    /// The amount the gateway reports, checked against the payment.
    pub amount: Option<Decimal>,
}

/// Form or query fields of a callback.
pub type Fields = BTreeMap<String, String>;

#[async_trait]
pub trait Gateway: Send + Sync {
    fn kind(&self) -> GatewayKind;
    /// Registers the payment with the gateway (where the protocol needs that) and returns
    /// the buyer's payment page.
    async fn create(&self, app: &App, payment: &Payment) -> ApiResult<Redirect>;
    /// Checks a callback's signature and reads it. A forged callback is a 4xx error.
    async fn verify_callback(&self, app: &App, fields: &Fields) -> ApiResult<CallbackEvent>;
    /// Asks the gateway for the payment's state.
    async fn query_status(&self, app: &App, payment: &Payment) -> ApiResult<Remote>;
    /// Refunds `amount` of a paid payment.
    async fn refund(&self, app: &App, payment: &Payment, amount: Decimal) -> ApiResult<()>;
}

/// A field that must be present.
pub fn field<'a>(fields: &'a Fields, name: &str) -> ApiResult<&'a str> {
    fields
        .get(name)
        .map(String::as_str)
        .ok_or_else(|| crate::ApiError::bad_request(name, format!("{name} is required")))
}

/// Constant-time comparison of two signatures (case-insensitive hex).
pub fn same_signature(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim().to_ascii_lowercase(), b.trim().to_ascii_lowercase());
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Parses an `application/x-www-form-urlencoded` body or query string.
pub fn parse_form(raw: &[u8]) -> Fields {
    url::form_urlencoded::parse(raw).into_owned().collect()
}

/// A shared HTTP client for gateway calls (10 s timeout).
pub fn http() -> reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .unwrap_or_else(|_| reqwest::Client::new())
        })
        .clone()
}

/// Maps a transport failure to a 502.
pub fn gateway_err(what: &str, e: impl std::fmt::Display) -> crate::ApiError {
    crate::ApiError::Gateway(format!("{what}: {e}"))
}

/// A callback for a gateway this deployment has not configured: nobody it deals with can
/// have sent it, and nothing upstream failed, so it is 404, not a 502.
pub fn not_enabled(_: crate::error::ApiError) -> crate::error::ApiError {
    crate::error::ApiError::NotFound("payment gateway".into())
}
