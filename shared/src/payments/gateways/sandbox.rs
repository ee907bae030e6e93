//! The built-in sandbox gateway for local runs and tests.
//!
//! `GET /api/v1/gateways/sandbox/pay/{payment_id}` serves a small HTML page with Pay and
//! Decline buttons: two forms posting `payment_id`, `outcome` (`succeeded` or `failed`) and
//! `signature` = hex HMAC-SHA256 over `"{payment_id}:{outcome}"` keyed by `SANDBOX_SECRET`
//! to `POST /api/v1/gateways/sandbox/callback`. The callback verifies the signature,
//! records the outcome as the "bank" (item `sandbox#<id>`; the first recorded outcome
//! wins), settles the payment and 303-redirects the browser to the return or cancel URL.
//! Status queries answer from the record, so reconciliation works for the sandbox too.

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use rust_decimal::Decimal;
use serde_json::json;
use sha2::Sha256;

use crate::App;
use crate::error::{ApiError, ApiResult};
use crate::payments::gateway::{CallbackEvent, Fields, Gateway, Redirect, Remote, field, same_signature};
use crate::payments::{GatewayKind, Payment};
use crate::store::{Cond, Item, StoreError};

pub struct Sandbox;

pub const PAID: &str = "succeeded";
pub const DECLINED: &str = "failed";

/// The callback signature.
pub fn sign(secret: &str, payment_id: &str, outcome: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{payment_id}:{outcome}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn record_pk(id: &str) -> String {
    format!("sandbox#{id}")
}

/// Records what the buyer did on the sandbox page (the bank's side). The first recorded
/// outcome wins; returns the recorded one.
pub async fn record(app: &App, payment_id: &str, outcome: &str) -> ApiResult<String> {
    let data = json!({ "outcome": outcome }).as_object().cloned().unwrap_or_default();
    match app.store.put(Item::new(record_pk(payment_id), "sandbox", data), Cond::NotExists).await {
        Ok(()) => Ok(outcome.to_owned()),
        Err(StoreError::Conflict { .. }) => {
            Ok(recorded(app, payment_id).await?.unwrap_or_else(|| outcome.to_owned()))
        }
        Err(e) => Err(e.into()),
    }
}

async fn recorded(app: &App, payment_id: &str) -> ApiResult<Option<String>> {
    Ok(app
        .store
        .get(&record_pk(payment_id), "sandbox")
        .await?
        .and_then(|i| i.data.get("outcome").and_then(|v| v.as_str()).map(str::to_owned)))
}

fn remote(outcome: &str) -> Remote {
    match outcome {
        PAID => Remote::Paid { method: None },
        "refunded" => Remote::Refunded,
        _ => Remote::Declined { reason: "declined on the payment page".into() },
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The payment page.
pub fn page(app: &App, p: &Payment) -> String {
    let secret = &app.config.payments.sandbox_secret;
    let action = format!("{}/api/v1/gateways/sandbox/callback", app.config.public_url);
    let form = |outcome: &str, label: &str| {
        format!(
            r#"<form method="post" action="{action}"><input type="hidden" name="payment_id" value="{id}"><input type="hidden" name="outcome" value="{outcome}"><input type="hidden" name="signature" value="{sig}"><button type="submit" name="button" value="{outcome}">{label}</button></form>"#,
            action = escape(&action),
            id = escape(&p.id),
            sig = sign(secret, &p.id, outcome),
        )
    };
    let body = if p.status.is_open() {
        format!("{}\n{}", form(PAID, "Pay"), form(DECLINED, "Decline"))
    } else {
        format!("<p>This payment is {}.</p>", p.status.as_str())
    };
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Sandbox payment {id}</title></head><body>\n<h1>Sandbox payment</h1>\n<p>{desc}</p>\n<p>Amount: {amount} {cur}</p>\n{body}\n</body></html>\n",
        id = escape(&p.id),
        desc = escape(&p.description),
        amount = crate::money::format(p.amount),
        cur = escape(&p.currency),
    )
}

#[async_trait]
impl Gateway for Sandbox {
    fn kind(&self) -> GatewayKind {
        GatewayKind::Sandbox
    }

    async fn create(&self, app: &App, p: &Payment) -> ApiResult<Redirect> {
        Ok(Redirect {
            url: format!("{}/api/v1/gateways/sandbox/pay/{}", app.config.public_url, p.id),
            gateway_ref: None,
        })
    }

    async fn verify_callback(&self, app: &App, fields: &Fields) -> ApiResult<CallbackEvent> {
        let id = field(fields, "payment_id")?;
        let outcome = field(fields, "outcome")?;
        let signature = field(fields, "signature")?;
        if outcome != PAID && outcome != DECLINED {
            return Err(ApiError::bad_request("outcome", "outcome must be succeeded or failed"));
        }
        if !same_signature(signature, &sign(&app.config.payments.sandbox_secret, id, outcome)) {
            return Err(ApiError::Forbidden("the callback signature is invalid".into()));
        }
        Ok(CallbackEvent { payment_id: id.to_owned(), remote: remote(outcome), amount: None })
    }

    async fn query_status(&self, app: &App, p: &Payment) -> ApiResult<Remote> {
        Ok(recorded(app, &p.id).await?.map(|o| remote(&o)).unwrap_or(Remote::Pending))
    }

    async fn refund(&self, app: &App, p: &Payment, _amount: Decimal) -> ApiResult<()> {
        let data = json!({ "outcome": "refunded" }).as_object().cloned().unwrap_or_default();
        app.store.put(Item::new(record_pk(&p.id), "sandbox", data), Cond::Always).await?;
        Ok(())
    }
}
