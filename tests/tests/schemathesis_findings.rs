//! Regression tests for what schemathesis (`scripts/schemathesis.sh`) found against the
//! local server: each was a 5xx, a dropped connection or an answer outside the document.

use api_tests::{TestServer, token};

/// A page number whose offset overflows `usize` used to panic the handler (the connection
/// was dropped without an answer); it is an empty page past the end.
#[tokio::test]
async fn a_huge_page_number_is_an_empty_page() {
    let srv = TestServer::memory().await;
    let t = token("21", &[]);
    let (status, body) = srv.get("/api/v1/orders?page=1844674407370955163", Some(&t)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["orders"], serde_json::json!([]));
    let (status, body) = srv.get(&format!("/api/v1/orders?page={}&per=100", usize::MAX), Some(&t)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["meta"]["links"]["next_page"], serde_json::Value::Null);
}

fn create_body(shipping_info: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"order": {
        "order_description": "Поставка оборудования", "supplier_id": 5, "cost": 100,
        "verify_days": 3, "commission_payer": "consumer", "shipping_info": shipping_info,
    }})
}

/// Free-form details the table cannot hold — a number outside DynamoDB's range (the write was
/// refused: 503), an empty key (written, then unreadable: every later read of the deal 503),
/// nesting too deep, too much of it — are a 422 naming the field, on every store.
async fn free_form_json_outside_the_table_limits_is_422(srv: &TestServer) {
    let t = token("21", &[]);
    let mut deep = serde_json::json!(1);
    for _ in 0..40 {
        deep = serde_json::json!({ "a": deep });
    }
    let bad = [
        serde_json::json!({"a": 1e300}),
        serde_json::json!({"a": [2.2e-309]}),
        serde_json::json!({"": 1}),
        serde_json::json!({"a": {"": null}}),
        deep,
        serde_json::json!({"a": "x".repeat(20_000)}),
    ];
    for info in bad {
        let (status, body) = srv.post("/api/v1/orders", Some(&t), &create_body(info.clone())).await;
        assert_eq!(status, 422, "{info:.80}: {body}");
        assert_eq!(body["error"]["field"], "order.shipping_info");
    }
    let mut body = create_body(serde_json::Value::Null);
    body["order"]["client_data"] = serde_json::json!([1e300]);
    let (status, answer) = srv.post("/api/v1/orders", Some(&t), &body).await;
    assert_eq!((status, answer["error"]["field"].as_str()), (422, Some("order.client_data")), "{answer}");
    let ok =
        serde_json::json!({"address": "Москва", "zip": 101000, "rate": 0.5, "n": {"S": "x", "NULL": [null]}});
    let (status, created) = srv.post("/api/v1/orders", Some(&t), &create_body(ok.clone())).await;
    assert_eq!(status, 201, "{created}");
    let id = created["order"]["id"].as_i64().unwrap();
    let (status, shown) = srv.get(&format!("/api/v1/orders/{id}"), Some(&t)).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["order"]["shipping_info"], ok);
    let claim = serde_json::json!({"reason": "не пришло", "description": "x".repeat(5001)});
    let (status, body) = srv.post(&format!("/api/v1/orders/{id}/claim"), Some(&t), &claim).await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("claim.description")), "{body}");
}

#[tokio::test]
async fn memory_free_form_json_outside_the_table_limits_is_422() {
    free_form_json_outside_the_table_limits_is_422(&TestServer::memory().await).await;
}

#[tokio::test]
async fn dynamo_free_form_json_outside_the_table_limits_is_422() {
    let Some(store) = api_tests::dynamo_store().await else { return };
    free_form_json_outside_the_table_limits_is_422(&TestServer::start(store).await).await;
}

/// A callback for a gateway that is not configured (no credentials) used to be a 502
/// "gateway error"; nothing upstream failed, and nobody the deployment deals with can have sent
/// it: 404.
#[tokio::test]
async fn a_callback_for_an_unconfigured_gateway_is_404() {
    let mut config = shared::Config::for_tests();
    config.jwt.secret = api_tests::SECRET.into();
    config.payments.mandarin = Default::default();
    config.payments.robokassa.password2 = String::new();
    config.payments.sngb = Default::default();
    let srv = TestServer::start_with(shared::App::new(api_tests::memory_store(), config)).await;
    for path in [
        "/api/v1/gateways/mandarin/callback",
        "/api/v1/gateways/robokassa/result?OutSum=10.00&InvId=1&SignatureValue=x",
        "/api/v1/gateways/sngb/notify",
        "/api/v1/gateways/sngb/tran",
    ] {
        let res = srv.http.post(srv.url(path)).body("paymentid=1").send().await.expect("request");
        assert_eq!(res.status(), 404, "{path}");
        let body: serde_json::Value = res.json().await.expect("JSON");
        assert_eq!(body["error"]["code"], "not_found", "{path}");
    }
}

/// Zoo session metadata is stored as native DynamoDB attributes too: a number outside the
/// table's range or an empty key used to fail the write (503) or leave a session no read could
/// decode; it is a 422 on `metadata`.
async fn zoo_metadata_outside_the_table_limits_is_422(srv: &TestServer) {
    let doc: serde_json::Value = serde_json::from_str(local::OPENAPI_JSON).expect("document");
    let example = &doc["paths"]["/v1/payments/sessions"]["post"]["requestBody"]["content"]["application/json"]
        ["example"];
    let t = token("21", &[]);
    for metadata in
        [serde_json::json!({"n": 1e300}), serde_json::json!({"": "x"}), serde_json::json!({"a": {"": 1}})]
    {
        let mut body = example.clone();
        body["metadata"] = metadata.clone();
        let (status, answer) = srv.post("/v1/payments/sessions", Some(&t), &body).await;
        assert_eq!(status, 422, "{metadata}: {answer}");
        assert!(answer["errors"].as_array().unwrap().iter().any(|e| e["field"] == "metadata"), "{answer}");
    }
    let (status, answer) = srv.post("/v1/payments/sessions", Some(&t), example).await;
    assert_eq!(status, 201, "the document's example is a valid session: {answer}");
}

#[tokio::test]
async fn memory_zoo_metadata_outside_the_table_limits_is_422() {
    zoo_metadata_outside_the_table_limits_is_422(&TestServer::memory().await).await;
}

#[tokio::test]
async fn dynamo_zoo_metadata_outside_the_table_limits_is_422() {
    let Some(store) = api_tests::dynamo_store().await else { return };
    zoo_metadata_outside_the_table_limits_is_422(&TestServer::start(store).await).await;
}
