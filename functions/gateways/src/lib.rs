//! Payment gateway callbacks and the sandbox payment page, `/api/v1/gateways/...`.
//! No JWT: each callback is verified by its gateway's own signature scheme.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use shared::http::{PathArg, QueryArg, RawBody};
use shared::money::Decimal;
use shared::payments::gateway::{Fields, parse_form};
use shared::payments::gateways::{self, sandbox, sngb};
use shared::payments::{self, CallbackEvent, GatewayKind, Remote, Settled, Status};
use shared::{ApiError, ApiResult, App};

pub fn router() -> Router<App> {
    Router::new()
        .route("/api/v1/gateways/sandbox/pay/{payment_id}", get(sandbox_page))
        .route("/api/v1/gateways/sandbox/callback", post(sandbox_callback))
        .route("/api/v1/gateways/robokassa/result", get(robokassa_result).post(robokassa_result))
        .route("/api/v1/gateways/robokassa/success", get(robokassa_return).post(robokassa_return))
        .route("/api/v1/gateways/robokassa/fail", get(robokassa_return).post(robokassa_return))
        .route("/api/v1/gateways/mandarin/callback", post(mandarin_callback))
        .route("/api/v1/gateways/sngb/notify", get(sngb_notify).post(sngb_notify))
        .route("/api/v1/gateways/sngb/tran", get(sngb_tran).post(sngb_tran))
        .route("/api/v1/gateways/sngb/error", get(sngb_error))
        .route("/api/v1/gateways/return/{payment_id}", get(browser_return))
}

/// Query string and form body fields together (body wins).
fn fields(uri: &Uri, body: &[u8]) -> Fields {
    let mut f = parse_form(uri.query().unwrap_or("").as_bytes());
    f.extend(parse_form(body));
    f
}

fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// Verifies and applies a callback.
async fn callback(app: &App, kind: GatewayKind, f: &Fields) -> ApiResult<(CallbackEvent, Option<Settled>)> {
    let event = gateways::for_kind(app, kind)?
        .verify_callback(app, f)
        .await
        .inspect_err(|e| tracing::warn!(gateway = ?kind, error = %e, "callback rejected"))
        .map_err(|e| match e {
            // Verifying a callback is local work: a gateway error here means this deployment
            // does not use that gateway, so there is nothing to call back to.
            ApiError::Gateway(m) => ApiError::NotFound(format!("gateway ({m})")),
            other => other,
        })?;
    let settled = payments::apply_callback(app, kind, &event).await?;
    Ok((event, settled))
}

/// Where the buyer's browser goes once the payment is final (or still open): the success page
/// only when what was bought was paid (no anomaly: a wrong sum or a late payment is returned,
/// and its buyer goes to the cancel page).
fn back_url(app: &App, p: &payments::Payment) -> Option<String> {
    let url = match p.status {
        Status::Succeeded | Status::Refunded if p.anomaly.is_none() => p.return_url.clone(),
        _ => p.cancel_url.clone().or(p.return_url.clone()),
    };
    // Checked again on the way out: a URL stored before the allow-list changed is not followed.
    url.filter(|u| shared::redirects::allowed(&app.config, u))
}

async fn sandbox_page(State(app): State<App>, PathArg(id): PathArg<String>) -> ApiResult<Html<String>> {
    gateways::for_kind(&app, GatewayKind::Sandbox)?;
    let known = payments::load(&app, &id).await?.filter(|p| p.gateway == GatewayKind::Sandbox);
    if known.is_none() {
        return Err(ApiError::NotFound("payment".into()));
    }
    // Opening the page moves the payment to `processing`.
    let p =
        payments::mark_processing(&app, &id).await?.ok_or_else(|| ApiError::NotFound("payment".into()))?;
    Ok(Html(sandbox::page(&app, &p)))
}

async fn sandbox_callback(State(app): State<App>, uri: Uri, RawBody(body): RawBody) -> ApiResult<Response> {
    let f = fields(&uri, &body);
    let event = gateways::for_kind(&app, GatewayKind::Sandbox)?.verify_callback(&app, &f).await?;
    let (outcome, amount) = match &event.remote {
        Remote::Paid { amount, .. } => (sandbox::PAID, *amount),
        _ => (sandbox::DECLINED, Decimal::ZERO),
    };
    // The bank's record decides (a second press cannot change the first).
    let record = sandbox::record(&app, &event.payment_id, outcome, amount).await?;
    let remote = sandbox::remote(&record);
    let settled =
        payments::apply_callback(&app, GatewayKind::Sandbox, &CallbackEvent { remote, ..event }).await?;
    let p = match settled {
        Some(s) => s.payment().clone(),
        None => payments::get(&app, &f["payment_id"]).await?,
    };
    Ok(redirect_back(&app, &p))
}

async fn robokassa_result(State(app): State<App>, uri: Uri, RawBody(body): RawBody) -> ApiResult<Response> {
    let f = fields(&uri, &body);
    let (event, _) = callback(&app, GatewayKind::Robokassa, &f).await?;
    let p =
        payments::load(&app, &event.payment_id).await?.ok_or_else(|| ApiError::NotFound("payment".into()))?;
    Ok(text(format!("OK{}", p.inv_id)))
}

/// The buyer's browser back from Robokassa (SuccessURL / FailURL): the status is asked
/// of the gateway, never taken from the URL.
async fn robokassa_return(State(app): State<App>, uri: Uri, RawBody(body): RawBody) -> ApiResult<Response> {
    let f = fields(&uri, &body);
    let inv: i64 = f
        .get("InvId")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ApiError::bad_request("InvId", "InvId is required"))?;
    let p = payments::load_by_inv(&app, inv).await?.ok_or_else(|| ApiError::NotFound("payment".into()))?;
    finish_return(&app, p).await
}

/// A generic browser return: checks the status with the gateway and redirects.
async fn browser_return(State(app): State<App>, PathArg(id): PathArg<String>) -> ApiResult<Response> {
    let p = payments::load(&app, &id).await?.ok_or_else(|| ApiError::NotFound("payment".into()))?;
    finish_return(&app, p).await
}

async fn finish_return(app: &App, p: payments::Payment) -> ApiResult<Response> {
    let p = payments::check_with_gateway(app, p).await?;
    Ok(redirect_back(app, &p))
}

/// 303 to where the buyer goes next, or a short text when the payment names no page.
fn redirect_back(app: &App, p: &payments::Payment) -> Response {
    match back_url(app, p) {
        Some(url) => Redirect::to(&url).into_response(),
        None => text(format!("payment {} is {}", p.id, p.status.as_str())),
    }
}

async fn mandarin_callback(State(app): State<App>, uri: Uri, RawBody(body): RawBody) -> ApiResult<Response> {
    let f = fields(&uri, &body);
    callback(&app, GatewayKind::Mandarin, &f).await?;
    Ok(text("OK".into()))
}

/// SNGB's payment notification (seed 000's `sngb_proxy`): answers `REDIRECT=<url>` with
/// where the bank sends the buyer next.
async fn sngb_notify(State(app): State<App>, uri: Uri, RawBody(body): RawBody) -> ApiResult<Response> {
    let f = fields(&uri, &body);
    match callback(&app, GatewayKind::Sngb, &f).await {
        Ok((event, _)) => Ok(text(format!("REDIRECT={}", sngb::return_url(&app, &event.payment_id)))),
        // An error notification: the buyer goes to the error page; the payment stays open
        // until the reconciliation job asks the bank.
        Err(ApiError::BadRequest { .. }) => {
            let url = sngb::error_url(
                &app,
                f.get("trackid").map(String::as_str),
                f.get("Error").map(String::as_str),
            );
            Ok(text(format!("REDIRECT={url}")))
        }
        Err(e @ ApiError::Forbidden(_)) => {
            Ok((e.status(), text(format!("REDIRECT={}", sngb::error_url(&app, None, None)))).into_response())
        }
        Err(e) => Err(e),
    }
}

#[derive(serde::Deserialize)]
struct ErrorPage {
    payment_id: Option<String>,
    code: Option<String>,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The page SNGB sends the buyer to after an error: the payment did not go through. Shows
/// only the bank's code (letters and digits) and links back to the shop's page for the
/// payment, never text taken from the URL.
async fn sngb_error(State(app): State<App>, QueryArg(q): QueryArg<ErrorPage>) -> ApiResult<Html<String>> {
    let p = match q.payment_id.as_deref().filter(|id| id.len() <= 64) {
        Some(id) => payments::load(&app, id).await?,
        None => None,
    };
    let back = p.as_ref().and_then(|p| p.cancel_url.clone().or(p.return_url.clone()));
    let back = back.filter(|u| shared::redirects::allowed(&app.config, u));
    let code = q.code.as_deref().map(sngb::error_code).filter(|c| !c.is_empty());
    Ok(Html(format!(
        "<!doctype html>\n<html lang=\"ru\"><head><meta charset=\"utf-8\"><title>Оплата не прошла</title></head><body>\n<h1>Оплата не прошла</h1>\n<p>Банк не провёл платёж{code}. Деньги не списаны.</p>\n<p>Попробуйте ещё раз или выберите другой способ оплаты.</p>\n{back}</body></html>\n",
        code = code.map(|c| format!(" (код ошибки {c})")).unwrap_or_default(),
        back = back
            .map(|u| format!("<p><a href=\"{}\">Вернуться в магазин</a></p>\n", escape(&u)))
            .unwrap_or_default(),
    )))
}

/// SNGB's transaction notification (seed 000's `sngb_tran`): refunds and reversals.
async fn sngb_tran(State(app): State<App>, uri: Uri, RawBody(body): RawBody) -> ApiResult<Response> {
    let f = fields(&uri, &body);
    callback(&app, GatewayKind::Sngb, &f).await?;
    Ok((StatusCode::OK, text("OK".into())).into_response())
}
