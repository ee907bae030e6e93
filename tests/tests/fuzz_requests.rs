//! Request-parser fuzzing at scale (proptest): arbitrary JSON (biased towards the API's own
//! field names and edge values) and arbitrary bytes, sent to every route that reads a body or
//! path parameters. No input may produce a 5xx, and every error answer is the JSON error body.
//!
//! `PROPTEST_CASES` sets the number of cases (the default is a short run; `make fuzz` runs long).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use tower::ServiceExt;

const FIELDS: &[&str] = &[
    "order",
    "order_description",
    "supplier_id",
    "consumer_id",
    "cost",
    "verify_days",
    "commission_payer",
    "title",
    "supply_cost",
    "supply_description",
    "supply_days",
    "client_data",
    "attachments",
    "name",
    "content_type",
    "content",
    "supplier_billing_info",
    "consumer_billing_info",
    "shipping_info",
    "payment",
    "payment_method",
    "info",
    "payment_info",
    "transition",
    "to_state",
    "reason",
    "description",
    "order_change",
    "change_type",
    "new_cost",
    "prolong_protection_to",
    "session_id",
    "order_id",
    "total_amount",
    "value",
    "currency",
    "items",
    "ticket_type",
    "quantity",
    "unit_price",
    "visit_date",
    "visit_time",
    "customer",
    "email",
    "phone",
    "address",
    "payment_methods",
    "confirmation",
    "type",
    "return_url",
    "cancel_url",
    "amount",
    "metadata",
    "event_id",
    "seat_id",
    "order_type",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        prop_oneof![
            Just("".to_owned()),
            Just("50/50".to_owned()),
            Just("consumer".to_owned()),
            Just("supplier".to_owned()),
            Just("pending".to_owned()),
            Just("approved".to_owned()),
            Just("change_conditions".to_owned()),
            Just("purchase_return".to_owned()),
            Just("prolong_protection".to_owned()),
            Just("invoice".to_owned()),
            Just("2500.00".to_owned()),
            Just("-1.00".to_owned()),
            Just("1e308".to_owned()),
            Just("99999999999999999999999999999999.99".to_owned()),
            Just("2099-01-01T00:00:00+03:00".to_owned()),
            Just("application/pdf".to_owned()),
            Just("JVBERi0=".to_owned()),
            ".{0,40}",
        ]
        .prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(FIELDS), inner), 0..6).prop_map(|kv| {
                let map: Map<String, Value> = kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                Value::Object(map)
            }),
        ]
    })
}

/// Routes that read a body or path parameters; `{id}` is an existing deal.
const ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/v1/orders"),
    ("POST", "/api/v1/orders/calc_commission"),
    ("PATCH", "/api/v1/orders/{id}"),
    ("POST", "/api/v1/orders/{id}/payment"),
    ("POST", "/api/v1/orders/{id}/transitions"),
    ("POST", "/api/v1/orders/{id}/claim"),
    ("POST", "/api/v1/orders/{id}/order_changes"),
    ("POST", "/api/v1/orders/{id}/order_changes/1/confirm"),
    ("GET", "/api/v1/orders/{id}/payment_info?redirect_to={s}"),
    ("GET", "/api/v1/orders?page={s}&per={s}"),
    ("GET", "/api/v1/orders/{s}"),
    ("GET", "/api/v1/orders/{id}/attachments/{s}"),
    ("POST", "/v1/payments/sessions"),
    ("PUT", "/v1/payments/{s}"),
    ("PATCH", "/v1/payments/{s}"),
    ("DELETE", "/v1/payments/{s}"),
    ("GET", "/v1/slots?visit_date={s}&visit_time={s}"),
    ("POST", "/api/v1/reservations"),
    ("POST", "/api/v1/reservations/{s}/tickets"),
    ("PUT", "/api/v1/reservations/{s}/order_type"),
    ("POST", "/api/v1/reservations/{s}/checkout"),
    ("GET", "/api/v1/events/{s}/seats"),
    ("GET", "/api/v1/ticket_orders/{s}"),
    ("POST", "/api/v1/admin/events"),
    ("POST", "/api/v1/admin/ticket_orders/{s}/cancel"),
    ("POST", "/api/v1/admin/ticket_orders/{s}/resend_email"),
];

/// Gateway callbacks and returns: form-encoded fields, by POST body or GET query.
const CALLBACKS: &[&str] = &[
    "/api/v1/gateways/sandbox/callback",
    "/api/v1/gateways/robokassa/result",
    "/api/v1/gateways/robokassa/success",
    "/api/v1/gateways/robokassa/fail",
    "/api/v1/gateways/mandarin/callback",
    "/api/v1/gateways/sngb/notify",
    "/api/v1/gateways/sngb/tran",
    "/api/v1/gateways/return/{s}",
    "/api/v1/gateways/sandbox/pay/{s}",
];

const FORM_FIELDS: &[&str] = &[
    "payment_id",
    "outcome",
    "signature",
    "OutSum",
    "InvId",
    "SignatureValue",
    "Shp_payment_id",
    "IsTest",
    "sign",
    "orderId",
    "transaction",
    "status",
    "price",
    "email",
    "udf5",
    "trackid",
    "paymentid",
    "tranid",
    "result",
    "amt",
    "action",
    "Error",
    "ErrorText",
    "responsecode",
    "ref",
    "postdate",
    "auth",
    "cardholder",
];

struct Harness {
    rt: tokio::runtime::Runtime,
    router: shared::http::Api,
    token: String,
    deal: i64,
}

fn harness() -> Harness {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // Every gateway configured, so their callback parsers run (the peers are never reached:
    // nothing here is a valid callback).
    let mut config = shared::Config::for_tests();
    config.jwt.secret = api_tests::SECRET.into();
    let pc = &mut config.payments;
    (pc.robokassa.login, pc.robokassa.password1, pc.robokassa.password2) =
        ("shop".into(), "p1".into(), "p2".into());
    (pc.mandarin.merchant_id, pc.mandarin.secret) = ("m1".into(), "s1".into());
    (pc.sngb.terminal_id, pc.sngb.terminal_alias, pc.sngb.secret, pc.sngb.token) =
        ("t1".into(), "a1".into(), "s1".into(), "tk".into());
    pc.sngb.base_url = "http://127.0.0.1:9".into();
    let app = shared::App::new(api_tests::memory_store(), config);
    let srv = rt.block_on(api_tests::TestServer::start_with(app));
    let token = api_tests::token("21", &["admin", "manager"]);
    let deal = rt.block_on(async {
        let body = json!({"order": {"order_description": "fuzz", "verify_days": 3, "commission_payer": "consumer",
            "cost": 100, "supplier_id": "21", "consumer_id": "14"}});
        srv.post("/api/v1/orders", Some(&token), &body).await.1["order"]["id"].as_i64().unwrap()
    });
    Harness { router: local::router(srv.app.clone()), rt, token, deal }
}

fn send(h: &Harness, method: &str, path: &str, body: Vec<u8>) -> (StatusCode, Vec<u8>) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {}", h.token))
        .body(Body::from(body))
        .unwrap();
    h.rt.block_on(async {
        let res = h.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        (status, axum::body::to_bytes(res.into_body(), 1 << 24).await.unwrap().to_vec())
    })
}

fn check(status: StatusCode, body: &[u8]) -> Result<(), TestCaseError> {
    prop_assert!(!status.is_server_error(), "server error {status}: {}", String::from_utf8_lossy(body));
    if status.is_client_error() {
        let v: Value =
            serde_json::from_slice(body).map_err(|e| TestCaseError::fail(format!("non-JSON error: {e}")))?;
        prop_assert_eq!(&v["success"], &json!(false));
        prop_assert!(v["error"]["code"].is_string());
    }
    Ok(())
}

fn fill(template: &str, deal: i64, s: &str) -> String {
    let s: String = url::form_urlencoded::byte_serialize(s.as_bytes()).collect();
    template.replace("{id}", &deal.to_string()).replace("{s}", &s)
}

fn form_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("succeeded".to_owned()),
        Just("failed".to_owned()),
        Just("CAPTURED".to_owned()),
        Just("24.61".to_owned()),
        Just("-1".to_owned()),
        Just("99999999999999999999".to_owned()),
        Just("ZT_1".to_owned()),
        "[0-9a-f]{0,64}",
        ".{0,24}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn json_bodies_never_cause_a_server_error(route in prop::sample::select(ROUTES), body in json_value(), s in ".{0,12}") {
        let h = HARNESS.with(|h| h.clone());
        let (method, template) = route;
        let (status, out) = send(&h, method, &fill(template, h.deal, &s), serde_json::to_vec(&body).unwrap());
        check(status, &out)?;
    }

    #[test]
    fn gateway_callbacks_never_cause_a_server_error(
        path in prop::sample::select(CALLBACKS),
        fields in prop::collection::vec((prop::sample::select(FORM_FIELDS), form_value()), 0..10),
        by_query in any::<bool>(),
        s in ".{0,12}",
    ) {
        let h = HARNESS.with(|h| h.clone());
        let form: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        let path = fill(path, h.deal, &s);
        let (method, uri, body) = if by_query {
            ("GET", format!("{path}?{form}"), Vec::new())
        } else {
            ("POST", path, form.into_bytes())
        };
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        let (status, out) = h.rt.block_on(async {
            let res = h.router.clone().oneshot(req).await.unwrap();
            let status = res.status();
            (status, axum::body::to_bytes(res.into_body(), 1 << 24).await.unwrap().to_vec())
        });
        prop_assert!(!status.is_server_error(), "server error {status}: {}", String::from_utf8_lossy(&out));
    }

    #[test]
    fn raw_bytes_never_cause_a_server_error(route in prop::sample::select(ROUTES), body in prop::collection::vec(any::<u8>(), 0..256)) {
        let h = HARNESS.with(|h| h.clone());
        let (method, template) = route;
        let (status, out) = send(&h, method, &fill(template, h.deal, "x"), body);
        check(status, &out)?;
    }
}

thread_local! {
    static HARNESS: std::rc::Rc<Harness> = std::rc::Rc::new(harness());
}
