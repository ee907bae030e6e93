//! The skeleton over HTTP: health, auth failures, bad bodies, unknown routes.

use api_tests::{SECRET, TestServer, token};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::json;

#[tokio::test]
async fn health_answers_the_seed_shape() {
    let srv = TestServer::memory().await;
    let (status, body) = srv.get("/v1/health", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "healthy");
    let ts = body["timestamp"].as_str().unwrap();
    chrono::DateTime::parse_from_rfc3339(ts).expect("RFC 3339 timestamp");
    assert_eq!(body.as_object().unwrap().len(), 2);
}

#[tokio::test]
async fn unknown_route_is_json_404() {
    let srv = TestServer::memory().await;
    let (status, body) = srv.get("/nope", None).await;
    assert_eq!(status, 404);
    assert_eq!(body["success"], false);
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn dev_token_is_accepted_and_bad_tokens_are_401() {
    let srv = TestServer::memory().await;
    let good = token("21", &[]);
    let expired = shared::auth::issue(
        SECRET,
        &shared::auth::Claims {
            exp: chrono::Utc::now().timestamp() - 600,
            ..shared::auth::Claims::new("21", chrono::Duration::zero())
        },
    );
    let wrong_key = shared::auth::issue(
        "another-secret",
        &shared::auth::Claims::new("21", chrono::Duration::minutes(10)),
    );
    let none_alg = format!(
        "{}.{}.",
        B64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        B64.encode(br#"{"sub":"21","exp":4102444800}"#)
    );
    assert_eq!(srv.get("/api/v1/me", Some(&good)).await.0, 200);
    for bad in [expired.as_str(), wrong_key.as_str(), none_alg.as_str(), "garbage", ""] {
        let (status, body) = srv.get("/api/v1/me", Some(bad)).await;
        assert_eq!(status, 401, "token {bad:?}");
        assert_eq!(body["error"]["code"], "unauthorized");
        assert_eq!(body["error"]["field"], "Authorization");
    }
    assert_eq!(srv.get("/api/v1/me", None).await.0, 401);
    // Headers that are not `Bearer <token>`, or whose token is not ASCII (UTF-8 or not): 401.
    let raw: [&[u8]; 6] = [
        b"Basic dXNlcjpwYXNz",
        b"Bearer",
        b"Bearer   ",
        "Bearer тест".as_bytes(),
        b"Bearer \xff\xfe",
        b"Token abc",
    ];
    for header in raw {
        let res = srv
            .http
            .get(srv.url("/api/v1/me"))
            .header("authorization", reqwest::header::HeaderValue::from_bytes(header).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 401, "{header:?}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["field"], "Authorization", "{header:?}: {body}");
    }
    // The scheme's name in lower case works as well.
    let lower = srv
        .http
        .get(srv.url("/api/v1/me"))
        .header("authorization", format!("bearer {good}"))
        .send()
        .await
        .unwrap();
    assert_eq!(lower.status().as_u16(), 200);
}

#[tokio::test]
async fn malformed_json_is_4xx_never_500() {
    let srv = TestServer::memory().await;
    let auth = format!("Bearer {}", token("21", &[]));
    for (body, ctype, expected) in [
        ("{\"cost\": ", "application/json", 400),
        ("", "application/json", 400),
        ("[1,2]", "application/json", 422),
        ("{\"a\":1}", "text/plain", 415),
    ] {
        let res = srv
            .http
            .post(srv.url("/api/v1/orders/calc_commission"))
            .header("authorization", &auth)
            .header("content-type", ctype)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), expected, "body {body:?}");
        let json: serde_json::Value = res.json().await.unwrap();
        assert_eq!(json["error"]["field"], "body", "{json}");
    }
    // The media type in any case, with parameters, or as a `+json` type; nothing else.
    for (ctype, expected) in [
        ("Application/JSON; charset=utf-8", 200),
        ("application/vnd.api+json", 200),
        (" APPLICATION/PROBLEM+JSON ;q=1", 200),
        ("application/jsonx", 415),
        ("application/x-json", 415),
        ("json", 415),
        ("text/json+plain", 415),
    ] {
        let res = srv
            .http
            .post(srv.url("/api/v1/orders/calc_commission"))
            .header("authorization", &auth)
            .header("content-type", ctype)
            .body(r#"{"cost": 100, "commission_payer": "consumer"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), expected, "{ctype}");
    }
    let t = token("21", &[]);
    for (body, field) in [
        (json!({"cost": 100}), "commission_payer"),
        (json!({"cost": "abc", "commission_payer": "consumer"}), "cost"),
        (json!({"cost": 100, "commission_payer": "nobody"}), "commission_payer"),
        (json!({"cost": 19.99, "commission_payer": "consumer"}), "cost"),
    ] {
        let (status, json) = srv.post("/api/v1/orders/calc_commission", Some(&t), &body).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(json["error"]["field"], field, "{json}");
    }
}

#[tokio::test]
async fn calc_commission_reproduces_the_seed() {
    let srv = TestServer::memory().await;
    let t = token("21", &[]);
    let (status, body) = srv
        .post(
            "/api/v1/orders/calc_commission",
            Some(&t),
            &json!({"cost": 10000000, "commission_payer": "50/50"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["cost"], json!(10000000.0));
    assert_eq!(body["commission"], json!(100000.0));
    assert_eq!(body["commission_description"], "1%");
    assert_eq!(body["supplier_receive"], json!(9950000.0));
    assert_eq!(body["consumer_pay"]["invoice"], json!(10050000.0));
    assert_eq!(body["consumer_pay"]["gateway"], json!(10341450.0));
    assert_eq!(body["gateway_commission"], json!(2.9));
    assert_eq!(body["mandarin_commission"], json!(2.4));
    assert_eq!(body["consumer_pay"]["mandarin"], json!(10291200.0));
    // The seed's members, no others.
    let keys = |v: &serde_json::Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>());
    let mut want = ["commission", "commission_description", "consumer_pay", "cost", "gateway_commission"]
        .map(String::from)
        .to_vec();
    want.extend(["mandarin_commission", "supplier_receive"].map(String::from));
    assert_eq!(keys(&body), Some(want));
    assert_eq!(
        keys(&body["consumer_pay"]),
        Some(["gateway", "invoice", "mandarin"].map(String::from).to_vec())
    );
}

/// A handler that panics (a bug) answers a JSON 500 and the server keeps serving.
#[tokio::test]
async fn a_panicking_handler_answers_json_500() {
    use tower::ServiceExt;
    async fn boom() -> &'static str {
        panic!("a bug")
    }
    let mut config = shared::Config::for_tests();
    config.jwt.secret = SECRET.into();
    let app = shared::App::in_memory(config);
    let router = axum::Router::new().route("/boom", axum::routing::get(boom)).merge(health::router());
    let service = shared::http::finish(router, app);
    let req = || axum::http::Request::get("/boom").body(axum::body::Body::empty()).unwrap();
    let res = service.clone().oneshot(req()).await.expect("infallible");
    assert_eq!(res.status(), 500);
    let body = axum::body::to_bytes(res.into_body(), 1 << 16).await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).expect("a JSON error");
    assert_eq!(
        (body["success"].as_bool(), body["error"]["code"].as_str()),
        (Some(false), Some("internal_error"))
    );
    let health = axum::http::Request::get("/v1/health").body(axum::body::Body::empty()).unwrap();
    assert_eq!(service.oneshot(health).await.unwrap().status(), 200);
}

/// `make run` and `make token` use `cargo run -p local`, which needs to know which of the
/// package's binaries (`local`, and `hello` for the benchmarks) to run.
#[test]
fn make_run_names_the_local_binary() {
    let root = format!("{}/..", env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(format!("{root}/functions/local/Cargo.toml")).unwrap();
    let bins = std::fs::read_dir(format!("{root}/functions/local/src/bin")).map(|d| d.count()).unwrap_or(0);
    assert!(bins == 0 || manifest.contains("default-run = \"local\""), "functions/local needs default-run");
}

/// `/docs` on the local server: the viewer page, which loads the vendored Swagger UI and the
/// API's own document; the assets are the npm package's files, byte for byte.
#[tokio::test]
async fn the_api_docs_are_served_with_their_viewer() {
    let srv = TestServer::memory().await;
    let res = srv.http.get(srv.url("/docs")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let page = res.text().await.unwrap();
    for src in ["/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css", "/docs/init.js"] {
        assert!(page.contains(src), "{src} in the page");
    }
    let init = srv.http.get(srv.url("/docs/init.js")).send().await.unwrap().text().await.unwrap();
    assert!(init.contains("\"/openapi.json\""), "{init}");
    let vendored = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api/vendor/swagger-ui-dist-5.35.0/");
    for asset in ["swagger-ui-bundle.js", "swagger-ui.css", "LICENSE"] {
        let res = srv.http.get(srv.url(&format!("/docs/{asset}"))).send().await.unwrap();
        assert_eq!(res.status(), 200, "{asset}");
        let served = res.bytes().await.unwrap();
        assert_eq!(served.as_ref(), std::fs::read(format!("{vendored}{asset}")).unwrap(), "{asset}");
    }
    assert_eq!(srv.http.get(srv.url("/docs/../Cargo.toml")).send().await.unwrap().status(), 404);
    assert_eq!(srv.http.get(srv.url("/docs/nope.js")).send().await.unwrap().status(), 404);
}
