//! SNGB (Surgutneftegasbank) card acquiring, the "Commerce Gateway" protocol behind seed
//! 000's `sngb_proxy` and `sngb_tran`. The bank's document is not public; this is the
//! integration's reading, kept consistent between the adapter and its test peer:
//!
//! - Init: `POST {SNGB_URL}/PaymentInitServlet` (form) with `id` (terminal), `password`,
//!   `action=1` (purchase), `amt` (`2500.00`), `currency=643`, `langid=RUS`,
//!   `responseURL` = `errorURL` = `/api/v1/gateways/sngb/notify`, `trackid` (our payment
//!   id), `udf1` (description), `udf5` = sha1 hex of `{trackid}:{amt}:{secret}`. The answer
//!   is `{paymentid}:{payment page URL}` (`!ERROR!...` on failure); the buyer goes to
//!   `{URL}?PaymentID={paymentid}`; `paymentid` is kept as the gateway reference.
//! - Notification (`sngb_proxy`): the bank posts `paymentid`, `trackid`, `result`
//!   (`CAPTURED`/`APPROVED` = paid; `NOT CAPTURED`, `DECLINED`, `CANCELED`, ... = declined),
//!   `amt`, `tranid`, ... and `udf5` = sha1 hex of `{paymentid}:{trackid}:{result}:{amt}:{secret}`.
//!   We answer `REDIRECT=<url>`: our browser return, which checks the status and sends the
//!   buyer to the payment's return or cancel URL. An error notification (`Error`,
//!   `ErrorText`, no `result`) is answered `REDIRECT=<error page>` and changes nothing; the
//!   page (`/api/v1/gateways/sngb/error?payment_id&code`) tells the buyer the payment did not
//!   go through, with the bank's code, and links back to the shop; the reconciliation job
//!   settles such a payment by asking the bank.
//! - Transaction notification (`sngb_tran`, refunds): the same fields with `action=2` and the
//!   same `udf5` rule; `CAPTURED`/`APPROVED` records the refund. Answer `OK`.
//! - Status: `GET {SNGB_URL}/rest/payments/{paymentid}?terminal={id}&sign={sha1(paymentid:secret)}`
//!   → JSON `{paymentid, trackid, result, amt}` (`amt` a string, `2500.00`).
//! - Refund: `POST {SNGB_URL}/PaymentTranServlet` (form) `id`, `password`, `action=2`,
//!   `amt`, `currency=643`, `paymentid`, `trackid`, `udf5` = sha1 of `{trackid}:{amt}:{secret}`;
//!   the answer starts with `CAPTURED` or `APPROVED` on success.

use async_trait::async_trait;
use serde_json::Value;
use sha1::{Digest, Sha1};

use crate::App;
use crate::error::{ApiError, ApiResult};
use crate::payments::gateway::{
    CallbackEvent, Fields, Gateway, Redirect, RefundError, RefundRemote, Remote, amount_field, field,
    gateway_err, http, refund_transport_err, same_signature,
};
use crate::payments::refunds::Refund;
use crate::payments::{GatewayKind, Payment};

#[derive(Debug, Clone, Default)]
pub struct Config {
    /// `SNGB_TERMINAL_ID`
    pub terminal_id: String,
    /// `SNGB_PASSWORD`
    pub password: String,
    /// `SNGB_SECRET` (the `udf5` signatures)
    pub secret: String,
    /// `SNGB_URL`
    pub base_url: String,
}

pub fn sha1_hex(s: &str) -> String {
    hex::encode(Sha1::digest(s.as_bytes()))
}

/// `udf5` of a notification.
pub fn notification_sign(secret: &str, paymentid: &str, trackid: &str, result: &str, amt: &str) -> String {
    sha1_hex(&format!("{paymentid}:{trackid}:{result}:{amt}:{secret}"))
}

/// `udf5` of our requests.
pub fn request_sign(secret: &str, trackid: &str, amt: &str) -> String {
    sha1_hex(&format!("{trackid}:{amt}:{secret}"))
}

fn paid(result: &str) -> bool {
    matches!(result, "CAPTURED" | "APPROVED")
}

pub struct Sngb(pub Config);

impl Sngb {
    fn configured(&self) -> ApiResult<&Config> {
        let c = &self.0;
        if c.terminal_id.is_empty() || c.password.is_empty() || c.secret.is_empty() || c.base_url.is_empty() {
            return Err(ApiError::Gateway("SNGB is not configured".into()));
        }
        Ok(c)
    }
}

#[async_trait]
impl Gateway for Sngb {
    fn kind(&self) -> GatewayKind {
        GatewayKind::Sngb
    }

    async fn create(&self, app: &App, p: &Payment) -> ApiResult<Redirect> {
        let c = self.configured()?;
        let amt = crate::money::format(p.amount);
        let notify = format!("{}/api/v1/gateways/sngb/notify", app.config.public_url);
        let desc: String = p.description.chars().take(100).collect();
        let form = [
            ("id", c.terminal_id.as_str()),
            ("password", c.password.as_str()),
            ("action", "1"),
            ("amt", amt.as_str()),
            ("currency", "643"),
            ("langid", "RUS"),
            ("responseURL", notify.as_str()),
            ("errorURL", notify.as_str()),
            ("trackid", p.id.as_str()),
            ("udf1", desc.as_str()),
            ("udf5", &request_sign(&c.secret, &p.id, &amt)),
        ];
        let res = http()
            .post(format!("{}/PaymentInitServlet", c.base_url))
            .form(&form)
            .send()
            .await
            .map_err(|e| gateway_err("SNGB PaymentInitServlet", e))?;
        let text = res.text().await.map_err(|e| gateway_err("SNGB PaymentInitServlet", e))?;
        let text = text.trim();
        if text.starts_with("!ERROR!") {
            return Err(ApiError::Gateway(format!("SNGB PaymentInitServlet: {text}")));
        }
        let (paymentid, page) = text
            .split_once(':')
            .ok_or_else(|| ApiError::Gateway(format!("SNGB PaymentInitServlet answered {text:?}")))?;
        if paymentid.is_empty() || !page.starts_with("http") {
            return Err(ApiError::Gateway(format!("SNGB PaymentInitServlet answered {text:?}")));
        }
        let mut url = url::Url::parse(page).map_err(|e| gateway_err("SNGB payment page", e))?;
        url.query_pairs_mut().append_pair("PaymentID", paymentid);
        Ok(Redirect { url: url.into(), gateway_ref: Some(paymentid.to_owned()) })
    }

    async fn verify_callback(&self, _app: &App, f: &Fields) -> ApiResult<CallbackEvent> {
        let c = self.configured().map_err(crate::payments::gateway::not_enabled)?;
        let paymentid = field(f, "paymentid")?;
        let trackid = field(f, "trackid")?;
        if f.contains_key("Error") && !f.contains_key("result") {
            return Err(ApiError::bad_request(
                "Error",
                format!("SNGB error notification: {}", f.get("ErrorText").map(String::as_str).unwrap_or("")),
            ));
        }
        let result = field(f, "result")?;
        let amt = field(f, "amt")?;
        let udf5 = field(f, "udf5")?;
        if !same_signature(udf5, &notification_sign(&c.secret, paymentid, trackid, result, amt)) {
            return Err(ApiError::Forbidden("the SNGB udf5 signature is invalid".into()));
        }
        let amount = amount_field(f, "amt")?;
        let refund = f.get("action").is_some_and(|a| a == "2");
        let remote = match (refund, paid(result)) {
            (true, true) => Remote::Refunded { amount: Some(amount), gateway_ref: f.get("tranid").cloned() },
            (true, false) => Remote::Pending,
            (false, true) => Remote::Paid {
                method: Some("bank_card".into()),
                amount,
                currency: f.get("currency").cloned(),
            },
            (false, false) => Remote::Declined { reason: format!("SNGB: {result}") },
        };
        Ok(CallbackEvent { payment_id: trackid.to_owned(), remote })
    }

    async fn query_status(&self, _app: &App, p: &Payment) -> ApiResult<Remote> {
        let c = self.configured()?;
        let Some(paymentid) = &p.gateway_ref else { return Ok(Remote::Pending) };
        let res = http()
            .get(format!("{}/rest/payments/{paymentid}", c.base_url))
            .query(&[
                ("terminal", c.terminal_id.as_str()),
                ("sign", &sha1_hex(&format!("{paymentid}:{}", c.secret))),
            ])
            .send()
            .await
            .map_err(|e| gateway_err("SNGB status", e))?;
        if res.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(Remote::Pending);
        }
        let body: Value = res.json().await.map_err(|e| gateway_err("SNGB status", e))?;
        if body["trackid"].as_str() != Some(p.id.as_str()) {
            return Err(ApiError::Gateway("SNGB status is for another payment".into()));
        }
        Ok(match body["result"].as_str() {
            Some(r) if paid(r) => Remote::Paid {
                method: Some("bank_card".into()),
                amount: body["amt"]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| ApiError::Gateway("SNGB status: no amt".into()))?,
                currency: None,
            },
            Some("REFUNDED") => Remote::Refunded { amount: None, gateway_ref: None },
            None | Some("") | Some("INITIALIZED") | Some("IN PROGRESS") => Remote::Pending,
            Some(other) => Remote::Declined { reason: format!("SNGB: {other}") },
        })
    }

    async fn refund(&self, _app: &App, p: &Payment, r: &Refund) -> Result<Option<String>, RefundError> {
        let c = self.configured().map_err(|e| RefundError::Refused(e.to_string()))?;
        let paymentid = p
            .gateway_ref
            .as_deref()
            .ok_or_else(|| RefundError::Refused("no SNGB payment to refund".into()))?;
        let amt = crate::money::format(r.amount);
        let form = [
            ("id", c.terminal_id.as_str()),
            ("password", c.password.as_str()),
            ("action", "2"),
            ("amt", amt.as_str()),
            ("currency", "643"),
            ("paymentid", paymentid),
            ("trackid", p.id.as_str()),
            ("udf5", &request_sign(&c.secret, &p.id, &amt)),
        ];
        let what = "SNGB PaymentTranServlet";
        let res = http()
            .post(format!("{}/PaymentTranServlet", c.base_url))
            .form(&form)
            .send()
            .await
            .map_err(|e| refund_transport_err(what, e))?;
        let status = res.status();
        let text = res.text().await.map_err(|e| RefundError::Unknown(format!("{what}: {e}")))?;
        if status.is_server_error() {
            return Err(RefundError::Unknown(format!("{what}: {status}")));
        }
        let mut parts = text.trim().split([':', ' ', '\n']);
        if paid(parts.next().unwrap_or("")) {
            Ok(parts.next().filter(|t| !t.is_empty()).map(str::to_owned))
        } else {
            Err(RefundError::Refused(format!(
                "{what} answered {:?}",
                text.trim().chars().take(200).collect::<String>()
            )))
        }
    }

    async fn refund_status(&self, app: &App, p: &Payment, r: &Refund) -> ApiResult<RefundRemote> {
        // The bank's status shows a refund only as the payment's result: a whole one.
        let whole = p.refunded_amount.is_zero() && r.amount == p.amount;
        Ok(match self.query_status(app, p).await? {
            Remote::Refunded { .. } if whole => RefundRemote::Done { gateway_ref: None },
            _ => RefundRemote::Unknown,
        })
    }
}

/// Where SNGB sends the buyer after a notification: our browser return, which asks the
/// gateway for the status and redirects to the payment's return or cancel URL.
pub fn return_url(app: &App, payment_id: &str) -> String {
    format!("{}/api/v1/gateways/return/{payment_id}", app.config.public_url)
}

/// Where SNGB sends the buyer after an error notification (or one we rejected): our page
/// that tells the buyer the payment did not go through, with the bank's error code and a way
/// back to the shop.
pub fn error_url(app: &App, payment_id: Option<&str>, code: Option<&str>) -> String {
    let mut url = format!("{}/api/v1/gateways/sngb/error", app.config.public_url);
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    if let Some(id) = payment_id {
        q.append_pair("payment_id", id);
    }
    if let Some(code) = code.map(error_code).filter(|c| !c.is_empty()) {
        q.append_pair("code", &code);
    }
    let q = q.finish();
    if !q.is_empty() {
        url = format!("{url}?{q}");
    }
    url
}

/// A bank error code as shown to the buyer: letters and digits only, at most 16.
pub fn error_code(code: &str) -> String {
    code.chars().filter(char::is_ascii_alphanumeric).take(16).collect()
}
