//! The gateway port: create a payment (a redirect URL for the buyer), verify a callback,
//! query a payment's status, refund and ask about a refund.

use std::collections::BTreeMap;

use async_trait::async_trait;
use rust_decimal::Decimal;

use super::refunds::Refund;
use super::{GatewayKind, Payment};
use crate::App;
use crate::error::{ApiError, ApiResult};

/// Where to send the buyer, and the gateway's own id for the payment when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub url: String,
    pub gateway_ref: Option<String>,
}

/// A payment's state as the gateway sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// Paid: `amount` in `currency` (when the gateway names one) reached the merchant.
    Paid {
        method: Option<String>,
        amount: Decimal,
        currency: Option<String>,
    },
    Declined {
        reason: String,
    },
    /// Not paid (yet).
    Pending,
    /// Money went back to the payer (`amount` when the gateway says how much).
    Refunded {
        amount: Option<Decimal>,
        gateway_ref: Option<String>,
    },
}

/// A callback whose signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackEvent {
    pub payment_id: String,
    pub remote: Remote,
}

/// Form or query fields of a callback.
pub type Fields = BTreeMap<String, String>;

/// What the gateway did with a refund request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundError {
    /// The gateway answered no: nothing was refunded.
    Refused(String),
    /// The gateway cannot refund this (a part of a payment it refunds only whole): 422.
    Unsupported(String),
    /// The request may or may not have been carried out (a timeout, a dropped connection,
    /// a server error): the refund stays pending until the gateway tells.
    Unknown(String),
}

/// A refund's state as the gateway sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundRemote {
    Done {
        gateway_ref: Option<String>,
    },
    Refused(String),
    /// The gateway cannot tell (yet).
    Unknown,
}

impl RefundRemote {
    /// A refund's state word as a gateway reports it: `done` and `refused` are that
    /// gateway's words for the two outcomes, anything else is not known yet.
    pub fn from_word(word: Option<&str>, [done, refused]: [&str; 2], id: &str, why: &str) -> RefundRemote {
        match word {
            Some(w) if w == done => RefundRemote::Done { gateway_ref: Some(id.to_owned()) },
            Some(w) if w == refused => RefundRemote::Refused(why.to_owned()),
            _ => RefundRemote::Unknown,
        }
    }
}

#[async_trait]
pub trait Gateway: Send + Sync {
    fn kind(&self) -> GatewayKind;
    /// Registers the payment with the gateway (where the protocol needs that) and returns
    /// the buyer's payment page, valid until the payment's `expires_at` where the gateway
    /// supports an expiry.
    async fn create(&self, app: &App, payment: &Payment) -> ApiResult<Redirect>;
    /// Checks a callback's signature and reads it. A forged callback is a 4xx error.
    async fn verify_callback(&self, app: &App, fields: &Fields) -> ApiResult<CallbackEvent>;
    /// Asks the gateway for the payment's state.
    async fn query_status(&self, app: &App, payment: &Payment) -> ApiResult<Remote>;
    /// Whether the gateway refunds part of a payment.
    fn partial_refunds(&self) -> bool {
        true
    }
    /// Asks the gateway to refund `refund.amount` of a paid payment; the answer is the
    /// gateway's reference of the refund, when it gives one.
    async fn refund(
        &self,
        app: &App,
        payment: &Payment,
        refund: &Refund,
    ) -> Result<Option<String>, RefundError>;
    /// Asks the gateway what became of a refund whose answer was lost.
    async fn refund_status(&self, app: &App, payment: &Payment, refund: &Refund) -> ApiResult<RefundRemote>;
}

/// A field that must be present.
pub fn field<'a>(fields: &'a Fields, name: &str) -> ApiResult<&'a str> {
    fields
        .get(name)
        .map(String::as_str)
        .ok_or_else(|| ApiError::bad_request(name, format!("{name} is required")))
}

/// A money field of a callback (`OutSum`, `price`, `amt`).
pub fn amount_field(fields: &Fields, name: &str) -> ApiResult<Decimal> {
    field(fields, name)?
        .trim()
        .parse::<Decimal>()
        .ok()
        .filter(|d| !d.is_sign_negative())
        .ok_or_else(|| ApiError::bad_request(name, format!("{name} is not an amount")))
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

/// Maps a transport failure to a 502. A request's URL may carry a signature (Robokassa's
/// status query does): it is left out even of the logged detail.
pub fn gateway_err(what: &str, e: impl Into<Redacted>) -> ApiError {
    ApiError::Gateway(format!("{what}: {}", e.into().0))
}

/// An error's text without the URL it was about.
pub struct Redacted(String);

impl From<reqwest::Error> for Redacted {
    fn from(e: reqwest::Error) -> Self {
        Redacted(e.without_url().to_string())
    }
}

impl From<url::ParseError> for Redacted {
    fn from(e: url::ParseError) -> Self {
        Redacted(e.to_string())
    }
}

/// A refund request's transport failure: refused when the request never left (no
/// connection), unknown otherwise (it may have been carried out).
pub fn refund_transport_err(what: &str, e: reqwest::Error) -> RefundError {
    let e = e.without_url();
    if e.is_connect() || e.is_builder() {
        RefundError::Refused(format!("{what}: {e}"))
    } else {
        RefundError::Unknown(format!("{what}: {e}"))
    }
}

/// A refund request's HTTP answer status: a 4xx refused it; a 5xx leaves it unknown.
pub fn refund_status_err(what: &str, status: reqwest::StatusCode, body: &str) -> Option<RefundError> {
    let text: String = body.chars().take(200).collect();
    if status.is_server_error() {
        Some(RefundError::Unknown(format!("{what}: {status} {text}")))
    } else if !status.is_success() {
        Some(RefundError::Refused(format!("{what}: {status} {text}")))
    } else {
        None
    }
}

/// A refund request's answer body, once its status says the gateway took the request (see
/// [`refund_status_err`]); a body that cannot be read leaves the refund unknown.
pub async fn refund_answer(what: &str, res: reqwest::Response) -> Result<String, RefundError> {
    let status = res.status();
    let text = res.text().await.map_err(|e| RefundError::Unknown(format!("{what}: {e}")))?;
    match refund_status_err(what, status, &text) {
        Some(e) => Err(e),
        None => Ok(text),
    }
}

/// A callback for a gateway this deployment has not configured: nobody it deals with can
/// have sent it, and nothing upstream failed, so it is 404, not a 502.
pub fn not_enabled(_: ApiError) -> ApiError {
    ApiError::NotFound("payment gateway".into())
}
