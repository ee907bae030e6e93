//! Mandarin (MandarinPay).
//!
//! - Requests to `{MANDARIN_URL}/api/transactions` carry `Content-Type: application/json`
//!   and `X-Auth: {merchantId}-{sha256(merchantId-requestId-secret)}-{requestId}` where
//!   `requestId` is random per request (hex of 16 random bytes here).
//! - Create: `POST /api/transactions {payment:{orderId, action:"pay", price, orderActualTill},
//!   customerInfo:{email}, urls:{callback, return}}` → `{id, userWebLink}`; the buyer goes to
//!   `userWebLink`. `orderId` is our payment id; `id` is kept as the gateway reference.
//!   `urls.return` is our browser return (`/api/v1/gateways/return/{payment_id}`), which asks
//!   for the status and sends the buyer on to the payment's return or cancel page (a deal's
//!   `return?status=success|fail`, as seed 003 describes).
//! - Callback (`POST /api/v1/gateways/mandarin/callback`, form-encoded): `sign` =
//!   sha256 of the values of every other field sorted by name (ordinal), joined with `-`,
//!   then `-` and the secret. `status` `success` pays, `failed` declines; `action=reversal`
//!   or `refund` with `success` records a refund. Answer: `OK`.
//!   The callback's `price` is the amount paid, checked against the payment at settlement.
//! - Status (not in the public document; this integration's reading): `GET
//!   /api/transactions/{id}` with the same `X-Auth` → `{id, status, price}` with `status` one
//!   of `success`, `failed`, `processing`.
//! - Refund: `POST /api/transactions {payment:{orderId, action:"reversal", price},
//!   target:{transaction: id}}` → `{id}`; `payment.price` is the amount to return (the API's
//!   parameter table lists `price` for `reversal`), so partial refunds are made as asked.
//!   The reversal's own status is read like a payment's.
//! - Links expire with the payment: `payment.orderActualTill` (`2020-02-20 12:34:56+00:00`).

use async_trait::async_trait;
use rand::RngCore;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::App;
use crate::error::{ApiError, ApiResult};
use crate::payments::gateway::{
    CallbackEvent, Fields, Gateway, Redirect, RefundError, RefundRemote, Remote, amount_field, field,
    gateway_err, http, refund_answer, refund_transport_err, same_signature,
};
use crate::payments::refunds::Refund;
use crate::payments::{GatewayKind, Payment};

#[derive(Debug, Clone)]
pub struct Config {
    /// `MANDARIN_MERCHANT_ID`
    pub merchant_id: String,
    /// `MANDARIN_SECRET`
    pub secret: String,
    /// `MANDARIN_URL`, default `https://secure.mandarinpay.com`
    pub base_url: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            merchant_id: String::new(),
            secret: String::new(),
            base_url: "https://secure.mandarinpay.com".into(),
        }
    }
}

/// `X-Auth` for a request id.
pub fn x_auth(c: &Config, request_id: &str) -> String {
    let hash = hex::encode(Sha256::digest(format!("{}-{request_id}-{}", c.merchant_id, c.secret).as_bytes()));
    format!("{}-{hash}-{request_id}", c.merchant_id)
}

/// The callback `sign` over every field but `sign`.
pub fn sign(secret: &str, fields: &Fields) -> String {
    let values: Vec<&str> =
        fields.iter().filter(|(k, _)| k.as_str() != "sign").map(|(_, v)| v.as_str()).collect();
    hex::encode(Sha256::digest(format!("{}-{secret}", values.join("-")).as_bytes()))
}

pub struct Mandarin(pub Config);

impl Mandarin {
    fn configured(&self) -> ApiResult<&Config> {
        if self.0.merchant_id.is_empty() || self.0.secret.is_empty() {
            return Err(ApiError::Gateway("Mandarin is not configured".into()));
        }
        Ok(&self.0)
    }

    fn auth(&self, c: &Config) -> String {
        let mut id = [0u8; 16];
        rand::rng().fill_bytes(&mut id);
        x_auth(c, &hex::encode(id))
    }

    async fn call(&self, req: reqwest::RequestBuilder, what: &str) -> ApiResult<Value> {
        let c = self.configured()?;
        let res = req
            .header("X-Auth", self.auth(c))
            .header("Content-Type", "application/json")
            .send()
            .await
            .map_err(|e| gateway_err(what, e))?;
        let status = res.status();
        let body: Value = res.json().await.map_err(|e| gateway_err(what, e))?;
        if !status.is_success() {
            return Err(ApiError::Gateway(format!("{what}: {status} {body}")));
        }
        Ok(body)
    }

    /// A transaction's status (`GET /api/transactions/{id}`) as a payment's remote state.
    async fn transaction(&self, c: &Config, id: &str) -> ApiResult<Remote> {
        let res =
            self.call(http().get(format!("{}/api/transactions/{id}", c.base_url)), "Mandarin status").await?;
        Ok(match res["status"].as_str() {
            Some("success") => Remote::Paid {
                method: Some("bank_card".into()),
                amount: res["price"]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| ApiError::Gateway("Mandarin status: no price".into()))?,
                currency: None,
            },
            Some("failed") => Remote::Declined { reason: "declined by Mandarin".into() },
            _ => Remote::Pending,
        })
    }

    /// A reversal of `r.amount` of transaction `id`: the reversal's own transaction id.
    async fn reverse(
        &self,
        c: &Config,
        p: &Payment,
        r: &Refund,
        id: &str,
    ) -> Result<Option<String>, RefundError> {
        let body = json!({
            "payment": { "orderId": p.id, "action": "reversal", "price": crate::money::format(r.amount) },
            "target": { "transaction": id },
        });
        let what = "Mandarin refund";
        let res = http()
            .post(format!("{}/api/transactions", c.base_url))
            .header("X-Auth", self.auth(c))
            .json(&body)
            .send()
            .await
            .map_err(|e| refund_transport_err(what, e))?;
        let text = refund_answer(what, res).await?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(body["id"].as_str().map(str::to_owned))
    }
}

#[async_trait]
impl Gateway for Mandarin {
    fn kind(&self) -> GatewayKind {
        GatewayKind::Mandarin
    }

    async fn create(&self, app: &App, p: &Payment) -> ApiResult<Redirect> {
        let c = self.configured()?;
        let body = json!({
            "urls": {
                "callback": format!("{}/api/v1/gateways/mandarin/callback", app.config.public_url),
                "return": format!("{}/api/v1/gateways/return/{}", app.config.public_url, p.id),
            },
            "payment": {
                "orderId": p.id,
                "action": "pay",
                "price": crate::money::format(p.amount),
                "orderActualTill": p.expires_at.format("%Y-%m-%d %H:%M:%S+00:00").to_string(),
            },
            "customerInfo": { "email": p.email },
        });
        let res = self
            .call(http().post(format!("{}/api/transactions", c.base_url)).json(&body), "Mandarin create")
            .await?;
        let url = res["userWebLink"]
            .as_str()
            .ok_or_else(|| ApiError::Gateway("Mandarin create: no userWebLink".into()))?;
        Ok(Redirect { url: url.to_owned(), gateway_ref: res["id"].as_str().map(str::to_owned) })
    }

    async fn verify_callback(&self, _app: &App, f: &Fields) -> ApiResult<CallbackEvent> {
        let c = self.configured().map_err(crate::payments::gateway::not_enabled)?;
        let given = field(f, "sign")?;
        if !same_signature(given, &sign(&c.secret, f)) {
            return Err(ApiError::Forbidden("the Mandarin signature is invalid".into()));
        }
        if f.get("merchantId").is_some_and(|m| *m != c.merchant_id) {
            return Err(ApiError::Forbidden("the callback is for another merchant".into()));
        }
        let order = field(f, "orderId")?;
        let status = field(f, "status")?;
        let action = f.get("action").map(String::as_str).unwrap_or("pay");
        let transaction = f.get("transaction").cloned();
        let remote = match (action, status) {
            ("reversal" | "refund", "success") => Remote::Refunded {
                amount: f.get("price").map(|_| amount_field(f, "price")).transpose()?,
                gateway_ref: transaction,
            },
            ("reversal" | "refund", _) => Remote::Pending,
            (_, "success") => Remote::Paid {
                method: Some("bank_card".into()),
                amount: amount_field(f, "price")?,
                currency: f.get("currency").cloned(),
            },
            (_, "failed") => Remote::Declined { reason: "declined by Mandarin".into() },
            _ => Remote::Pending,
        };
        Ok(CallbackEvent { payment_id: order.to_owned(), remote })
    }

    async fn query_status(&self, _app: &App, p: &Payment) -> ApiResult<Remote> {
        let c = self.configured()?;
        let Some(id) = &p.gateway_ref else { return Ok(Remote::Pending) };
        let now = self.transaction(c, id).await?;
        if matches!(now, Remote::Paid { .. }) {
            return Ok(now);
        }
        // A transaction from before a discount, paid: the money is this payment's (for that
        // transaction's price, which settlement then finds is not what is owed).
        for earlier in p.earlier.iter().rev().filter_map(|r| r.gateway_ref.as_deref()) {
            if let paid @ Remote::Paid { .. } = self.transaction(c, earlier).await? {
                return Ok(paid);
            }
        }
        Ok(now)
    }

    async fn refund(&self, _app: &App, p: &Payment, r: &Refund) -> Result<Option<String>, RefundError> {
        let c = self.configured().map_err(|e| RefundError::Refused(e.to_string()))?;
        let current = p
            .gateway_ref
            .as_deref()
            .ok_or_else(|| RefundError::Refused("no Mandarin transaction to refund".into()))?;
        // The transaction that was paid: the payment's own, unless it has earlier ones (from
        // before a discount), which are asked in turn when its own was not paid.
        let mut id = current;
        if !p.earlier.is_empty() {
            let unknown =
                |e: ApiError| RefundError::Refused(format!("the paid Mandarin transaction is unknown: {e}"));
            if !matches!(self.transaction(c, current).await.map_err(unknown)?, Remote::Paid { .. }) {
                for earlier in p.earlier.iter().rev().filter_map(|r| r.gateway_ref.as_deref()) {
                    if matches!(self.transaction(c, earlier).await.map_err(unknown)?, Remote::Paid { .. }) {
                        id = earlier;
                        break;
                    }
                }
            }
        }
        self.reverse(c, p, r, id).await
    }

    async fn refund_status(&self, _app: &App, _p: &Payment, r: &Refund) -> ApiResult<RefundRemote> {
        let c = self.configured()?;
        let Some(id) = &r.gateway_ref else { return Ok(RefundRemote::Unknown) };
        let res =
            self.call(http().get(format!("{}/api/transactions/{id}", c.base_url)), "Mandarin status").await?;
        let word = res["status"].as_str();
        Ok(RefundRemote::from_word(word, ["success", "failed"], id, "Mandarin declined the reversal"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    #[test]
    fn sign_matches_the_documented_example_shape() {
        let f: Fields =
            [("price", "123.00"), ("orderId", "123"), ("merchantId", "1"), ("email", "user@example.com")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let expected = hex::encode(Sha256::digest(b"user@example.com-1-123-123.00-123"));
        assert_eq!(sign("123", &f), expected);
        let c = Config { merchant_id: "42".into(), secret: "s".into(), ..Config::default() };
        let expected = format!("42-{}-r1", hex::encode(Sha256::digest(b"42-r1-s")));
        assert_eq!(x_auth(&c, "r1"), expected);
    }

    // Known answers. Mandarin's API reference gives the formulas and a worked form example
    // (`generate_form("123", [email, merchantId, orderId, price])`) but no resulting hash, so
    // the expected values were computed outside this code (Python's hashlib and node's
    // crypto, which agree) from the documented strings.

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// The callback of the API reference's field table (transaction 0599…, merchant 42,
    /// price 12.34, order 1234OR), secret `123`: sha256 of
    /// `pay-user@example.com-+71234567890-42-1234OR-12.34-success-05991602ed7c47d996ca7ab119b07f66-123`
    /// (values sorted by field name, ordinal: `customer_*` before `merchantId`).
    const CALLBACK_SIGN: &str = "1a78f947aee5268cf3151c613303cb34b74605a7c4a117f51d9dba75bff7b43d";

    fn callback(sign: &str) -> Fields {
        fields(&[
            ("transaction", "05991602ed7c47d996ca7ab119b07f66"),
            ("status", "success"),
            ("action", "pay"),
            ("merchantId", "42"),
            ("price", "12.34"),
            ("orderId", "1234OR"),
            ("customer_email", "user@example.com"),
            ("customer_phone", "+71234567890"),
            ("sign", sign),
        ])
    }

    #[test]
    fn sign_known_answers() {
        // The form example: sha256("user@example.com-1-123-123.00-123").
        let form = fields(&[
            ("price", "123.00"),
            ("orderId", "123"),
            ("merchantId", "1"),
            ("email", "user@example.com"),
        ]);
        assert_eq!(sign("123", &form), "61d7d36e47e7750591a29eaa770634618de7c1645800bc012ef87998ecba7b7e");
        // The callback, whose own `sign` field is left out of the hash.
        assert_eq!(sign("123", &callback("anything")), CALLBACK_SIGN);
    }

    /// `X-Auth` for merchant 216, request id 1469759000000, secret 123321 (the API
    /// reference's authentication example's inputs): `216-sha256("216-1469759000000-123321")-1469759000000`.
    #[test]
    fn x_auth_known_answer() {
        let c = Config { merchant_id: "216".into(), secret: "123321".into(), ..Config::default() };
        assert_eq!(
            x_auth(&c, "1469759000000"),
            "216-e0f1b73dce7e11618832644db7df73b652679fb498f74dd26a7ef04ef82e5770-1469759000000"
        );
    }

    #[tokio::test]
    async fn callback_known_answer() {
        let app = crate::payments::gateways::test_support::app();
        let gw = Mandarin(Config { merchant_id: "42".into(), secret: "123".into(), ..Config::default() });
        let ev = gw.verify_callback(&app, &callback(CALLBACK_SIGN)).await.unwrap();
        assert_eq!(ev.payment_id, "1234OR");
        assert_eq!(
            ev.remote,
            Remote::Paid { method: Some("bank_card".into()), amount: Decimal::new(1234, 2), currency: None }
        );
        // Upper-case hex is the same signature.
        assert!(gw.verify_callback(&app, &callback(&CALLBACK_SIGN.to_uppercase())).await.is_ok());
        // Another price, or any field added, under the same sign.
        let mut f = callback(CALLBACK_SIGN);
        f.insert("price".into(), "12.35".into());
        assert!(matches!(gw.verify_callback(&app, &f).await, Err(ApiError::Forbidden(_))));
        let mut f = callback(CALLBACK_SIGN);
        f.insert("currency".into(), "RUB".into());
        assert!(matches!(gw.verify_callback(&app, &f).await, Err(ApiError::Forbidden(_))));
        // Another secret.
        let other = Mandarin(Config { merchant_id: "42".into(), secret: "124".into(), ..Config::default() });
        assert!(matches!(
            other.verify_callback(&app, &callback(CALLBACK_SIGN)).await,
            Err(ApiError::Forbidden(_))
        ));
    }
}
