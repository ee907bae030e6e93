//! The built-in sandbox gateway for local runs and tests. It takes no money, so it is off in
//! a deployed stack unless `SANDBOX_ENABLED` turns it on (with its own `SANDBOX_SECRET`).
//!
//! `GET /api/v1/gateways/sandbox/pay/{payment_id}` serves a small HTML page with Pay and
//! Decline buttons: two forms posting `payment_id`, `outcome` (`succeeded` or `failed`),
//! `amount` (`2500.00`) and `signature` = hex HMAC-SHA256 over
//! `"{payment_id}:{outcome}:{amount}"` keyed by `SANDBOX_SECRET` to
//! `POST /api/v1/gateways/sandbox/callback`. The callback verifies the signature and that
//! the payment is a sandbox payment, records the outcome and amount as the "bank" (item
//! `sandbox#<id>`; the first recorded outcome wins), settles the payment and 303-redirects
//! the browser to the return or cancel URL. Status queries answer from the record, so
//! reconciliation works for the sandbox too. Refunds are recorded in the same item (by
//! refund id, never more than was paid), and a refund's status is read from it.

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::App;
use crate::error::{ApiError, ApiResult};
use crate::payments::gateway::{
    CallbackEvent, Fields, Gateway, Redirect, RefundError, RefundRemote, Remote, amount_field, field,
    same_signature,
};
use crate::payments::refunds::Refund;
use crate::payments::{GatewayKind, Payment};
use crate::retry::{Step, again_on_conflict, optimistic};
use crate::store::{Cond, Item, StoreError};

pub struct Sandbox;

pub const PAID: &str = "succeeded";
pub const DECLINED: &str = "failed";

/// The callback signature.
pub fn sign(secret: &str, payment_id: &str, outcome: &str, amount: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{payment_id}:{outcome}:{amount}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn record_pk(id: &str) -> String {
    format!("sandbox#{id}")
}

/// The "bank's" record of a sandbox payment.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Record {
    pub outcome: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    /// Refunds made, by refund id.
    #[serde(default)]
    pub refunds: std::collections::BTreeMap<String, String>,
}

impl Record {
    fn refunded(&self) -> Decimal {
        self.refunds.values().filter_map(|v| v.parse::<Decimal>().ok()).sum()
    }
}

async fn read(app: &App, payment_id: &str) -> ApiResult<Option<(Record, u64)>> {
    Ok(match app.store.get(&record_pk(payment_id), "sandbox").await? {
        Some(item) => Some((item.decode()?, item.version)),
        None => None,
    })
}

/// Records what the buyer did on the sandbox page (the bank's side). The first recorded
/// outcome wins; returns the recorded one.
pub async fn record(app: &App, payment_id: &str, outcome: &str, amount: Decimal) -> ApiResult<Record> {
    let rec = Record { outcome: outcome.to_owned(), amount, refunds: Default::default() };
    match app.store.put(Item::from_value(record_pk(payment_id), "sandbox", &rec)?, Cond::NotExists).await {
        Ok(()) => Ok(rec),
        Err(StoreError::Conflict { .. }) => Ok(read(app, payment_id).await?.map(|(r, _)| r).unwrap_or(rec)),
        Err(e) => Err(e.into()),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The payment page.
pub fn page(app: &App, p: &Payment) -> String {
    let secret = &app.config.payments.sandbox_secret;
    let action = format!("{}/api/v1/gateways/sandbox/callback", app.config.public_url);
    let amount = crate::money::format(p.amount);
    let form = |outcome: &str, label: &str| {
        format!(
            r#"<form method="post" action="{action}"><input type="hidden" name="payment_id" value="{id}"><input type="hidden" name="outcome" value="{outcome}"><input type="hidden" name="amount" value="{amount}"><input type="hidden" name="signature" value="{sig}"><button type="submit" name="button" value="{outcome}">{label}</button></form>"#,
            action = escape(&action),
            id = escape(&p.id),
            sig = sign(secret, &p.id, outcome, &amount),
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
        cur = escape(&p.currency),
    )
}

pub fn remote(r: &Record) -> Remote {
    match r.outcome.as_str() {
        PAID => Remote::Paid { method: None, amount: r.amount, currency: Some("RUB".into()) },
        _ => Remote::Declined { reason: "declined on the payment page".into() },
    }
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
        let amount = field(fields, "amount")?;
        let signature = field(fields, "signature")?;
        if outcome != PAID && outcome != DECLINED {
            return Err(ApiError::bad_request("outcome", "outcome must be succeeded or failed"));
        }
        if !same_signature(signature, &sign(&app.config.payments.sandbox_secret, id, outcome, amount)) {
            return Err(ApiError::Forbidden("the callback signature is invalid".into()));
        }
        // The sandbox settles only its own payments.
        let p = crate::payments::get(app, id).await?;
        if p.gateway != GatewayKind::Sandbox {
            return Err(ApiError::Forbidden("not a sandbox payment".into()));
        }
        let rec = Record {
            outcome: outcome.to_owned(),
            amount: amount_field(fields, "amount")?,
            refunds: Default::default(),
        };
        Ok(CallbackEvent { payment_id: id.to_owned(), remote: remote(&rec) })
    }

    async fn query_status(&self, app: &App, p: &Payment) -> ApiResult<Remote> {
        Ok(read(app, &p.id).await?.map(|(r, _)| remote(&r)).unwrap_or(Remote::Pending))
    }

    async fn refund(&self, app: &App, p: &Payment, r: &Refund) -> Result<Option<String>, RefundError> {
        // The bank's answer: refused (a `Done(Err)`), made, or lost (a store failure).
        let made = optimistic("the sandbox record", || async {
            let (mut rec, version) = match read(app, &p.id).await {
                Ok(Some(found)) => found,
                Ok(None) => {
                    return Ok(Step::Done(Err(RefundError::Refused(
                        "the sandbox holds no such payment".into(),
                    ))));
                }
                // Nothing was written: the refund may be asked again.
                Err(e) => return Ok(Step::Done(Err(RefundError::Refused(e.to_string())))),
            };
            if rec.refunds.contains_key(&r.id) {
                return Ok(Step::Done(Ok(Some(r.id.clone()))));
            }
            if rec.outcome != PAID || rec.refunded() + r.amount > rec.amount {
                return Ok(Step::Done(Err(RefundError::Refused("more than was paid".into()))));
            }
            rec.refunds.insert(r.id.clone(), crate::money::format(r.amount));
            let item = Item::from_value(record_pk(&p.id), "sandbox", &rec)?.with_version(version + 1);
            Ok(again_on_conflict(app.store.put(item, Cond::Version(version)).await)?
                .map(|()| Ok(Some(r.id.clone()))))
        })
        .await;
        // A failed write may have been applied: the bank's answer is lost.
        made.unwrap_or_else(|e| Err(RefundError::Unknown(e.to_string())))
    }

    async fn refund_status(&self, app: &App, p: &Payment, r: &Refund) -> ApiResult<RefundRemote> {
        Ok(match read(app, &p.id).await? {
            Some((rec, _)) if rec.refunds.contains_key(&r.id) => {
                RefundRemote::Done { gateway_ref: Some(r.id.clone()) }
            }
            _ => RefundRemote::Refused("the sandbox made no such refund".into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payments::gateways::test_support::{app, stored_payment};

    // Known answers computed outside this code: Python's hmac and `openssl dgst -sha256 -hmac`,
    // key `sandbox-test-secret` (the test configuration's SANDBOX_SECRET).

    /// HMAC-SHA256("pay_1:succeeded:2500.00")
    const PAID_SIG: &str = "5bfa8744946f9bbc3055c03c7b8938475e6a92da1c30af617363f481213d850a";
    /// HMAC-SHA256("pay_1:failed:2500.00")
    const DECLINED_SIG: &str = "a8424f6d28d3c209e5d15c7e6de9dd90378e8d84b3c750c5908b298625a53091";
    /// HMAC-SHA256("pay_1:succeeded:2500.01")
    const OTHER_AMOUNT_SIG: &str = "2ba090f02c12708bf47ff9708302b749d84e9a87b3dfa2cbfa2c52efea667d86";

    fn fields(outcome: &str, amount: &str, signature: &str) -> Fields {
        [("payment_id", "pay_1"), ("outcome", outcome), ("amount", amount), ("signature", signature)]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn sign_known_answers() {
        let key = "sandbox-test-secret";
        assert_eq!(sign(key, "pay_1", PAID, "2500.00"), PAID_SIG);
        assert_eq!(sign(key, "pay_1", DECLINED, "2500.00"), DECLINED_SIG);
        assert_eq!(sign(key, "pay_1", PAID, "2500.01"), OTHER_AMOUNT_SIG);
    }

    #[tokio::test]
    async fn page_carries_the_known_signatures() {
        let app = app();
        let p =
            stored_payment(&app, "pay_1", 1_000_000_001, GatewayKind::Sandbox, Decimal::new(250000, 2)).await;
        let html = page(&app, &p);
        assert!(html.contains(&format!(r#"name="signature" value="{PAID_SIG}""#)), "{html}");
        assert!(html.contains(&format!(r#"name="signature" value="{DECLINED_SIG}""#)), "{html}");
    }

    #[tokio::test]
    async fn callback_known_answers() {
        let app = app();
        stored_payment(&app, "pay_1", 1_000_000_001, GatewayKind::Sandbox, Decimal::new(250000, 2)).await;
        let ev = Sandbox.verify_callback(&app, &fields(PAID, "2500.00", PAID_SIG)).await.unwrap();
        assert_eq!(ev.payment_id, "pay_1");
        assert_eq!(
            ev.remote,
            Remote::Paid { method: None, amount: Decimal::new(250000, 2), currency: Some("RUB".into()) }
        );
        let ev = Sandbox.verify_callback(&app, &fields(DECLINED, "2500.00", DECLINED_SIG)).await.unwrap();
        assert!(matches!(ev.remote, Remote::Declined { .. }), "{ev:?}");
        // Upper-case hex is the same signature.
        let upper = PAID_SIG.to_uppercase();
        assert!(Sandbox.verify_callback(&app, &fields(PAID, "2500.00", &upper)).await.is_ok());
    }

    #[tokio::test]
    async fn callback_rejects_what_was_not_signed() {
        let app = app();
        stored_payment(&app, "pay_1", 1_000_000_001, GatewayKind::Sandbox, Decimal::new(250000, 2)).await;
        for f in [
            // A tampered amount, under the original signature and under another amount's.
            fields(PAID, "2500.01", PAID_SIG),
            fields(PAID, "1.00", PAID_SIG),
            fields(PAID, "2500.00", OTHER_AMOUNT_SIG),
            // The other outcome under this outcome's signature, both ways.
            fields(DECLINED, "2500.00", PAID_SIG),
            fields(PAID, "2500.00", DECLINED_SIG),
            // A wrong signature: one digit changed, truncated, empty.
            fields(PAID, "2500.00", &format!("{}b", &PAID_SIG[..63])),
            fields(PAID, "2500.00", &PAID_SIG[..32]),
            fields(PAID, "2500.00", ""),
        ] {
            let got = Sandbox.verify_callback(&app, &f).await;
            assert!(matches!(got, Err(ApiError::Forbidden(_))), "{f:?}: {got:?}");
        }
        // Another key.
        let mut config = crate::config::Config::for_tests();
        config.payments.sandbox_secret = "another-secret".into();
        let other = App::in_memory(config);
        stored_payment(&other, "pay_1", 1_000_000_001, GatewayKind::Sandbox, Decimal::new(250000, 2)).await;
        let got = Sandbox.verify_callback(&other, &fields(PAID, "2500.00", PAID_SIG)).await;
        assert!(matches!(got, Err(ApiError::Forbidden(_))), "{got:?}");
        // An outcome the page never posts.
        let got = Sandbox.verify_callback(&app, &fields("refunded", "2500.00", PAID_SIG)).await;
        assert!(matches!(got, Err(ApiError::BadRequest { .. })), "{got:?}");
    }

    #[tokio::test]
    async fn callback_settles_only_sandbox_payments() {
        let app = app();
        // Validly signed, but no such payment.
        let got = Sandbox.verify_callback(&app, &fields(PAID, "2500.00", PAID_SIG)).await;
        assert!(matches!(got, Err(ApiError::NotFound(_))), "{got:?}");
        // Validly signed, but another gateway's payment.
        stored_payment(&app, "pay_1", 1_000_000_001, GatewayKind::Robokassa, Decimal::new(250000, 2)).await;
        let got = Sandbox.verify_callback(&app, &fields(PAID, "2500.00", PAID_SIG)).await;
        assert!(matches!(got, Err(ApiError::Forbidden(_))), "{got:?}");
    }
}
