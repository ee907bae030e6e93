//! Request extractors whose rejections are [`ApiError`]s naming the field, so that bad
//! input is always a 4xx JSON answer.

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldError};

/// A JSON body. Malformed JSON is 400; a missing field, a wrong type or an unknown enum
/// value is 422 with the field's path (`order.cost`); a non-JSON content type is 415; a
/// body over the limit is 413.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<crate::App> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &crate::App) -> Result<Self, Self::Rejection> {
        let RawJson(bytes) = RawJson::from_request(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// A JSON request body kept as bytes (to hash it for `Idempotency-Key`, say), with the same
/// rejections as [`JsonBody`]: a non-JSON content type is 415, a body over the limit 413.
pub struct RawJson(pub Bytes);

impl FromRequest<crate::App> for RawJson {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &crate::App) -> Result<Self, Self::Rejection> {
        let json_type = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(|v| {
            // Compared without case and without a lowered copy of the header.
            let mime = v.split(';').next().unwrap_or("").trim().as_bytes();
            let suffix = |s: &str| {
                mime.len() >= s.len() && mime[mime.len() - s.len()..].eq_ignore_ascii_case(s.as_bytes())
            };
            mime.eq_ignore_ascii_case(b"application/json") || suffix("+json")
        });
        if json_type == Some(false) {
            return Err(ApiError::UnsupportedMediaType);
        }
        read_body(req, app.config.max_body_bytes).await.map(RawJson)
    }
}

/// A body of any type (a gateway's form, its JSON), read whole up to the body limit, refused
/// with the API's JSON errors (413 past the limit) rather than axum's text.
pub struct RawBody(pub Bytes);

impl FromRequest<crate::App> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &crate::App) -> Result<Self, Self::Rejection> {
        read_body(req, app.config.max_body_bytes).await.map(RawBody)
    }
}

/// A request's body, whole, at most `limit` bytes (413 past it, before any of it is read when
/// its length says so). Its frames are read as they come: one frame (a body with a length,
/// hyper's or Lambda's) is kept as it is, without a copy, and no buffer list or boxed limiting
/// body is made for it, as `Bytes`' extractor does for every body (a tenth of a small call's
/// own work).
async fn read_body(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    use axum::body::HttpBody;
    let mut body = req.into_body();
    if body.size_hint().lower() > limit as u64 {
        return Err(ApiError::PayloadTooLarge);
    }
    let mut whole = Bytes::new();
    let mut more: Option<Vec<u8>> = None;
    while let Some(frame) = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await {
        let frame =
            frame.map_err(|e| ApiError::bad_request("body", format!("the body could not be read: {e}")))?;
        let Ok(data) = frame.into_data() else { continue };
        let read = more.as_ref().map_or(whole.len(), Vec::len);
        if read + data.len() > limit {
            return Err(ApiError::PayloadTooLarge);
        }
        match &mut more {
            Some(buf) => buf.extend_from_slice(&data),
            None if whole.is_empty() => whole = data,
            None => {
                let mut buf = Vec::with_capacity(whole.len() + data.len());
                buf.extend_from_slice(&whole);
                buf.extend_from_slice(&data);
                more = Some(buf);
            }
        }
    }
    Ok(more.map_or(whole, Bytes::from))
}

/// Parses JSON with the failing field's path in the error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("body", "a JSON body is required"));
    }
    // Every request body of this API is an object; serde would also read a struct from an
    // array, which would make `[1, 2]` look like fields.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            Ok(_) => Err(ApiError::invalid("body", "expected a JSON object")),
            Err(e) => Err(ApiError::bad_request("body", format!("malformed JSON: {e}"))),
        };
    }
    // Read plainly first: tracking the path of every field is work on every well-formed body
    // (3% of a calc_commission or a zoo session create under load). Only a refused body is read
    // a second time, the same way with its path tracked, for the error to name the field.
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::bad_request("body", format!("malformed JSON: {inner}"));
        }
        let message = inner.to_string();
        let message = message.split(" at line ").next().unwrap_or(&message).to_owned();
        // "missing field `cost`" points at the parent: name the field itself.
        let field = match message.strip_prefix("missing field `").and_then(|m| m.strip_suffix('`')) {
            Some(name) if path == "." => name.to_owned(),
            Some(name) => format!("{path}.{name}"),
            None if path == "." => "body".to_owned(),
            None => path,
        };
        ApiError::Validation(vec![FieldError { field, message }])
    })
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> Self {
        ApiError::bad_request("path", e.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        let text = e.body_text();
        let field = text.split('`').nth(1).map(str::to_owned).unwrap_or_else(|| "query".to_owned());
        ApiError::bad_request(field, text)
    }
}

/// `axum::extract::Path` with an [`ApiError`] rejection.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct PathArg<T>(pub T);

/// `axum::extract::Query` with an [`ApiError`] rejection.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct QueryArg<T>(pub T);

/// The head most handlers share: the app, who asks (`U`: `AuthUser`, `AdminUser`, a ticket
/// `Buyer`) and the id of the resource the path names (`{id}`, as `I`). Who asks is checked
/// first (401 before anything about the path).
pub struct On<U, I> {
    pub app: crate::App,
    pub user: U,
    pub id: I,
}

#[derive(serde::Deserialize)]
struct IdPath<I> {
    id: I,
}

impl<U, I> FromRequestParts<crate::App> for On<U, I>
where
    U: FromRequestParts<crate::App, Rejection = ApiError> + Send,
    I: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        app: &crate::App,
    ) -> Result<Self, Self::Rejection> {
        let user = U::from_request_parts(parts, app).await?;
        let PathArg(IdPath { id }) = PathArg::<IdPath<I>>::from_request_parts(parts, app).await?;
        Ok(On { app: app.clone(), user, id })
    }
}

/// JSON 404 for unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("route".into())
}

/// Finishes a group's router for serving: JSON 404 for unknown routes, the request id, a panic
/// answered as a JSON 500, CORS when configured, and the state. The body limit
/// (`MAX_BODY_BYTES`) is the body extractors' own ([`JsonBody`], [`RawJson`], [`RawBody`]):
/// every handler reads its body through one of them, so no layer marks each request with it.
///
/// The layers wrap the routed router once, as one service, instead of through
/// `Router::layer`, which wraps every route in each layer and a boxed service of its own; and
/// the finished service is served as it is, not as the fallback of one more router (a route
/// lookup, a boxed clone of the service and a response mapping per request). The request id's
/// service also catches a handler's panic, so no layer has to box the answer's body.
pub fn finish(router: axum::Router<crate::App>, app: crate::App) -> Api {
    use tower::ServiceBuilder;
    let cors = cors(&app.config.cors_origins);
    let routed = router.fallback(not_found).with_state(app);
    ServiceBuilder::new()
        // Outermost: a preflight is answered before routing (no route has OPTIONS).
        .option_layer(cors)
        .layer(RequestIdLayer)
        .service(routed)
}

/// The finished API (see [`finish`]): a tower service from an HTTP request to its answer,
/// served by `axum::serve` locally and by `lambda_http` on Lambda.
pub type Api = tower::util::Either<
    tower_http::cors::Cors<RequestIdService<axum::Router>>,
    RequestIdService<axum::Router>,
>;

/// The headers a browser front end sends beyond the simple ones.
pub const CORS_ALLOW_HEADERS: [&str; 5] =
    ["authorization", "content-type", "idempotency-key", "x-reservation-token", "x-request-id"];

/// The answer headers a browser front end may read.
pub const CORS_EXPOSE_HEADERS: [&str; 3] = ["x-request-id", "retry-after", "location"];

/// CORS for browser front ends on their own origin (`CORS_ORIGINS`): the same rule as the
/// HTTP API's `CorsConfiguration` in `template.yaml`. No credentials (cookies) are involved:
/// the API's credentials are headers. Only in the local server's build (the `local` feature):
/// deployed, API Gateway answers preflights and adds the grant.
#[cfg(feature = "local")]
fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{HeaderName, HeaderValue, Method};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
            .allow_headers(CORS_ALLOW_HEADERS.map(HeaderName::from_static))
            .expose_headers(CORS_EXPOSE_HEADERS.map(HeaderName::from_static))
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// A deployed function's build: no CORS in the process (see above).
#[cfg(not(feature = "local"))]
fn cors(_: &[String]) -> Option<tower_http::cors::CorsLayer> {
    None
}

pub const REQUEST_ID: &str = "x-request-id";

/// [`REQUEST_ID`] as a header name made once: looked up and set by name without parsing the
/// text on every request.
const REQUEST_ID_HEADER: axum::http::HeaderName = axum::http::HeaderName::from_static(REQUEST_ID);

/// A JSON answer, as `axum::Json` writes it (`application/json`, serde_json's bytes), into a
/// buffer started at a size most answers fit: axum's starts at 128 bytes and doubles, so a
/// seat hold's answer was copied twice on its way and a deal's four times. A value that does
/// not serialise (a bug) is the usual JSON 500, not axum's plain-text one.
pub struct Json<T>(pub T);

/// The buffer a [`Json`] answer starts with.
const ANSWER_CAPACITY: usize = 2048;

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        let mut out = Vec::with_capacity(ANSWER_CAPACITY);
        match serde_json::to_writer(&mut out, &self.0) {
            Ok(()) => {
                let headers = [(CONTENT_TYPE, axum::http::HeaderValue::from_static("application/json"))];
                (headers, fitted(out)).into_response()
            }
            Err(e) => ApiError::Internal(format!("answer not written: {e}")).into_response(),
        }
    }
}

/// An answer's bytes, made exactly as long as they are when that costs no copy (the
/// allocator keeps a block shrunk by at most half where it is): a body made from a buffer
/// with room left over needs an allocation of its own to share it by (`bytes::Bytes`), one
/// made from an exact buffer does not.
pub(crate) fn fitted(mut out: Vec<u8>) -> Vec<u8> {
    if out.len() >= out.capacity() / 2 {
        out.shrink_to_fit();
    }
    out
}

/// A page number and size from a list's query (`page` from 1, `per` 1 to 100, default 10).
pub fn paging(page: Option<usize>, per: Option<usize>) -> crate::ApiResult<(usize, usize)> {
    let (page, per) = (page.unwrap_or(1), per.unwrap_or(10));
    if page == 0 {
        return Err(crate::ApiError::bad_request("page", "page starts at 1"));
    }
    if !(1..=100).contains(&per) {
        return Err(crate::ApiError::bad_request("per", "per must be 1 to 100"));
    }
    Ok((page, per))
}

/// A list's `meta` as seed 003 shows it: the page, the totals, and the links (`link(n)` is
/// page `n`'s URL; a link that does not apply is `null`).
pub fn page_meta(page: usize, per: usize, total: usize, link: impl Fn(usize) -> String) -> serde_json::Value {
    let total_pages = total.div_ceil(per).max(1);
    let some_if = |cond: bool, p: usize| {
        if cond { serde_json::Value::String(link(p)) } else { serde_json::Value::Null }
    };
    serde_json::json!({
        "page": page,
        "total": total,
        "total_pages": total_pages,
        "links": {
            "self": link(page),
            "next_page": some_if(page < total_pages, page.saturating_add(1)),
            "previous_page": some_if(page > 1 && page <= total_pages, page - 1),
            "first_page": some_if(page != 1, 1),
            "last_page": some_if(page != total_pages, total_pages),
        },
    })
}

/// Every request runs in a span carrying its id, so that whatever it logs (an upstream
/// failure's detail, say) can be found from the `x-request-id` header of its answer. The id
/// is API Gateway's own when there is one (as in its access log), else a sane one the client
/// sent, else a new one. A handler that panics (a bug: nothing a client sends should get
/// there) answers the usual JSON 500 instead of dropping the connection, and the panic is
/// logged. A plain tower layer: no boxed future and no service clone per request.
#[derive(Clone, Copy)]
struct RequestIdLayer;

impl<S> tower::Layer<S> for RequestIdLayer {
    type Service = RequestIdService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RequestIdService(inner)
    }
}

/// The service of [`RequestIdLayer`].
#[derive(Clone)]
pub struct RequestIdService<S>(S);

impl<S> tower::Service<Request> for RequestIdService<S>
where
    S: tower::Service<Request, Response = axum::response::Response>,
{
    type Response = axum::response::Response;
    type Error = S::Error;
    type Future = WithRequestId<tracing::instrument::Instrumented<S::Future>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        use tracing::Instrument;
        let id = request_id(&req);
        let span = tracing::info_span!("request", request_id = id.to_str().unwrap_or_default(), method = %req.method(), path = %req.uri().path());
        // A router makes its handler's future without running the handler; a panic while it
        // does is caught all the same.
        let called = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.0.call(req)));
        match called {
            // The id is also the task's: what the request queues (emails, webhooks) carries
            // it to the notifier's log lines (`telemetry::request_id`). The answer gets it back
            // from there for its header.
            Ok(inner) => WithRequestId {
                inner: Some(crate::telemetry::REQUEST_ID.scope(id, inner.instrument(span))),
                panicked: None,
            },
            Err(panic) => {
                let _entered = span.enter();
                let mut res = panicked(panic);
                res.headers_mut().insert(REQUEST_ID_HEADER, id);
                WithRequestId { inner: None, panicked: Some(res) }
            }
        }
    }
}

/// The client's address: the source IP API Gateway reports, else the connection's peer (the
/// local server). Never a header: a client could set any.
pub fn client_address(parts: &axum::http::request::Parts) -> Option<String> {
    use lambda_http::RequestExt;
    let from_gateway = parts.request_context_ref().and_then(|c| match c {
        lambda_http::request::RequestContext::ApiGatewayV2(c) => c.http.source_ip.clone(),
        lambda_http::request::RequestContext::ApiGatewayV1(c) => c.identity.source_ip.clone(),
        #[allow(unreachable_patterns)]
        _ => None,
    });
    from_gateway.or_else(|| {
        let peer = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()?;
        Some(ip_text(peer.0.ip()))
    })
}

/// An address as `Display` writes it; an IPv4 one from its octets' digits (every seat hold
/// asks: the formatting machinery was a percent of the call).
fn ip_text(ip: std::net::IpAddr) -> String {
    let std::net::IpAddr::V4(v4) = ip else { return ip.to_string() };
    let mut out = String::with_capacity(15);
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        out.push_str(itoa::Buffer::new().format(octet));
    }
    out
}

/// The client address as a handler argument (see [`client_address`]).
pub struct ClientAddress(pub Option<String>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(client_address(parts)))
    }
}

/// The request's id as its answer's header: API Gateway's, a sane one the client sent, or a
/// new one (see [`RequestIdService`]).
fn request_id(req: &Request) -> axum::http::HeaderValue {
    use lambda_http::RequestExt;
    let from_gateway = req.request_context_ref().and_then(|c| match c {
        lambda_http::request::RequestContext::ApiGatewayV2(c) => c.request_id.as_deref(),
        lambda_http::request::RequestContext::ApiGatewayV1(c) => c.request_id.as_deref(),
        #[allow(unreachable_patterns)]
        _ => None,
    });
    if let Some(id) = from_gateway.and_then(|id| axum::http::HeaderValue::from_str(id).ok()) {
        return id;
    }
    let sane = |v: &&axum::http::HeaderValue| {
        let v = v.as_bytes();
        (1..=64).contains(&v.len()) && v.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
    };
    if let Some(id) = req.headers().get(&REQUEST_ID_HEADER).filter(sane) {
        // The request's own bytes, shared: no copy.
        return id.clone();
    }
    let mut buf = uuid::Uuid::encode_buffer();
    let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
    // A hyphenated UUID is always a valid header value.
    axum::http::HeaderValue::from_str(id).unwrap_or(axum::http::HeaderValue::from_static("-"))
}

pin_project_lite::pin_project! {
    /// The inner answer with the request id added; a panic's JSON 500 instead of the answer
    /// when the handler panicked.
    pub struct WithRequestId<F> {
        #[pin]
        inner: Option<tokio::task::futures::TaskLocalFuture<axum::http::HeaderValue, F>>,
        panicked: Option<axum::response::Response>,
    }
}

impl<F, E> std::future::Future for WithRequestId<F>
where
    F: std::future::Future<Output = Result<axum::response::Response, E>>,
{
    type Output = F::Output;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<F::Output> {
        let mut this = self.project();
        let polled = match this.inner.as_mut().as_pin_mut() {
            Some(inner) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))),
            None => Ok(std::task::Poll::Ready(Ok(this.panicked.take().unwrap_or_else(gone)))),
        };
        let mut res = match polled {
            Ok(polled) => std::task::ready!(polled)?,
            Err(panic) => {
                // A future that panicked is never polled again.
                let id = this.inner.as_mut().as_pin_mut().and_then(|inner| inner.take_value());
                this.inner.set(None);
                let mut res = panicked(panic);
                if let Some(id) = id {
                    res.headers_mut().insert(REQUEST_ID_HEADER, id);
                }
                return std::task::Poll::Ready(Ok(res));
            }
        };
        if let Some(id) = this.inner.as_mut().as_pin_mut().and_then(|inner| inner.take_value()) {
            res.headers_mut().insert(REQUEST_ID_HEADER, id);
        }
        std::task::Poll::Ready(Ok(res))
    }
}

/// A panic's answer, polled for again after it was given (a caller's bug, never axum's).
fn gone() -> axum::response::Response {
    axum::response::IntoResponse::into_response(crate::ApiError::Internal("answer already given".into()))
}

/// A handler that panicked answers the usual JSON error with 500; the panic is logged.
fn panicked(err: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    let what = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("(not a string)");
    tracing::error!(panic = what, "handler panicked");
    axum::response::IntoResponse::into_response(crate::ApiError::Internal("handler panicked".into()))
}

/// Serves one endpoint group as a Lambda function behind API Gateway.
/// A configuration that fails closed (a deployed process with a missing, blank or
/// development secret) stops here with one clear log line, before serving anything.
pub async fn run_lambda(router: axum::Router<crate::App>) -> Result<(), lambda_http::Error> {
    let app = crate::App::start().await?;
    let api = tower::ServiceBuilder::new()
        .map_request(|req: lambda_http::Request| req.map(axum::body::Body::new))
        .service(finish(router, app));
    lambda_http::run(api).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_reads_as_display_writes_it() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut ips: Vec<std::net::IpAddr> = [
            "0.0.0.0",
            "127.0.0.1",
            "255.255.255.255",
            "10.0.9.100",
            "::1",
            "2001:db8::ff00:42:8329",
            "::ffff:1.2.3.4",
        ]
        .iter()
        .map(|t| t.parse().unwrap())
        .collect();
        ips.extend((0..5000).map(|_| std::net::IpAddr::V4(std::net::Ipv4Addr::from((next() >> 32) as u32))));
        for ip in ips {
            assert_eq!(ip_text(ip), ip.to_string());
        }
    }

    /// A panic while the inner service makes its future, and one while the future runs: each
    /// answers a JSON 500 carrying the request's id, and the service answers the next request.
    #[tokio::test]
    async fn a_panic_is_a_json_500_with_the_request_id() {
        use tower::{Service, ServiceExt};
        async fn answer(res: axum::response::Response) -> (u16, Option<String>, serde_json::Value) {
            let id = res.headers().get(REQUEST_ID).map(|v| v.to_str().unwrap().to_owned());
            let status = res.status().as_u16();
            let body = axum::body::to_bytes(res.into_body(), 1 << 16).await.unwrap();
            (status, id, serde_json::from_slice(&body).unwrap_or_default())
        }
        let req = |path: &str| {
            Request::get(path)
                .header(REQUEST_ID, format!("id-{}", &path[1..]))
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let mut svc = RequestIdService(tower::service_fn(|req: Request| {
            if req.uri().path() == "/at-call" {
                panic!("at call");
            }
            async move {
                if req.uri().path() == "/in-future" {
                    panic!("in the future");
                }
                Ok::<_, std::convert::Infallible>(axum::response::IntoResponse::into_response("fine"))
            }
        }));
        for path in ["/at-call", "/in-future"] {
            let res = svc.ready().await.unwrap().call(req(path)).await.unwrap();
            let (status, id, body) = answer(res).await;
            assert_eq!((status, id.as_deref()), (500, Some(&*format!("id-{}", &path[1..]))), "{path}");
            assert_eq!(body["error"]["code"], "internal_error", "{path}: {body}");
        }
        let (status, id, _) = answer(svc.ready().await.unwrap().call(req("/fine")).await.unwrap()).await;
        assert_eq!((status, id.as_deref()), (200, Some("id-fine")));
    }

    /// An answer is serde_json's bytes as `application/json`, past the first buffer's size
    /// too; a value serde_json refuses (a map with non-string keys) is the JSON 500.
    #[tokio::test]
    async fn a_json_answer_is_what_serde_json_writes() {
        use axum::response::IntoResponse;
        let long = "ё".repeat(super::ANSWER_CAPACITY);
        for value in [serde_json::json!({"a": 1, "b": [true, null]}), serde_json::json!({"long": long})] {
            let res = super::Json(&value).into_response();
            assert_eq!(res.headers()[CONTENT_TYPE], "application/json");
            let body = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
            assert_eq!(body, serde_json::to_vec(&value).unwrap());
        }
        let refused: std::collections::BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
        let res = super::Json(refused).into_response();
        assert_eq!(res.status(), 500);
        let body = axum::body::to_bytes(res.into_body(), 1 << 16).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "internal_error", "{body}");
    }

    /// A body as frames, with a size hint that need not be true; polled after its frames
    /// it fails (`fail`) or ends. Polling one that `forbid`s it panics.
    struct Frames {
        parts: std::collections::VecDeque<Bytes>,
        hint: hyper::body::SizeHint,
        fail: bool,
        forbid: bool,
    }

    impl axum::body::HttpBody for Frames {
        type Data = Bytes;
        type Error = std::io::Error;
        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
            assert!(!self.forbid, "a body over the limit by its length is not read");
            let next = match self.parts.pop_front() {
                Some(part) => Some(Ok(hyper::body::Frame::data(part))),
                None if self.fail => Some(Err(std::io::Error::other("connection reset"))),
                None => None,
            };
            std::task::Poll::Ready(next)
        }
        fn size_hint(&self) -> hyper::body::SizeHint {
            self.hint
        }
    }

    fn frames(parts: &[&[u8]], hint: Option<u64>) -> Frames {
        let hint = hint.map_or_else(hyper::body::SizeHint::new, hyper::body::SizeHint::with_exact);
        Frames {
            parts: parts.iter().map(|p| Bytes::copy_from_slice(p)).collect(),
            hint,
            fail: false,
            forbid: false,
        }
    }

    async fn read(body: Frames, limit: usize) -> Result<Bytes, ApiError> {
        read_body(Request::new(axum::body::Body::new(body)), limit).await
    }

    /// A body is read whole however it comes in frames, one frame without a copy; past the
    /// limit it is 413 whatever its length says (a chunked body says nothing), and before a
    /// byte is read when its length is over; a body that fails to arrive is 400 naming it.
    #[tokio::test]
    async fn a_body_is_read_whole_up_to_its_limit() {
        let one = frames(&[b"{\"cost\":1}"], Some(10));
        let ptr = one.parts[0].as_ptr();
        let got = read(one, 10).await.unwrap();
        assert_eq!((&got[..], got.as_ptr()), (&b"{\"cost\":1}"[..], ptr));
        let parts: [&[u8]; 4] = [b"{\"a\":", b"", b"12", b"3}"];
        assert_eq!(&read(frames(&parts, None), 10).await.unwrap()[..], b"{\"a\":123}");
        assert_eq!(&read(frames(&parts, None), 9).await.unwrap()[..], b"{\"a\":123}");
        assert!(matches!(read(frames(&parts, None), 8).await, Err(ApiError::PayloadTooLarge)));
        // A length that is not true is no way past the limit either.
        assert!(matches!(read(frames(&parts, Some(3)), 8).await, Err(ApiError::PayloadTooLarge)));
        let mut over = frames(&[b"x"], Some(11));
        over.forbid = true;
        assert!(matches!(read(over, 10).await, Err(ApiError::PayloadTooLarge)));
        assert_eq!(&read(frames(&[], None), 10).await.unwrap()[..], b"");
        let mut cut = frames(&[b"{\"a\""], None);
        cut.fail = true;
        match read(cut, 10).await {
            Err(ApiError::BadRequest { field, .. }) => assert_eq!(field.as_deref(), Some("body")),
            other => panic!("{other:?}"),
        }
    }

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Outer {
        order: Inner,
    }
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Inner {
        cost: rust_decimal::Decimal,
        payer: Payer,
    }
    #[derive(serde::Deserialize, Debug)]
    #[serde(rename_all = "lowercase")]
    enum Payer {
        Consumer,
    }

    fn field(r: Result<Outer, ApiError>) -> (u16, String) {
        let e = r.unwrap_err();
        (e.status().as_u16(), e.field().unwrap().to_owned())
    }

    #[test]
    fn names_the_field() {
        assert_eq!(field(parse_json(br#"{"order":{"payer":"consumer"}}"#)), (422, "order.cost".into()));
        assert_eq!(
            field(parse_json(br#"{"order":{"cost":"x","payer":"consumer"}}"#)),
            (422, "order.cost".into())
        );
        assert_eq!(
            field(parse_json(br#"{"order":{"cost":1,"payer":"nobody"}}"#)),
            (422, "order.payer".into())
        );
        assert_eq!(field(parse_json(br#"{}"#)), (422, "order".into()));
        assert_eq!(field(parse_json(br#"{"order": "#)), (400, "body".into()));
        assert_eq!(field(parse_json(b"")), (400, "body".into()));
    }
}
