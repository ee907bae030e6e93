//! CORS for browser front ends on their own origin, on the local server (`CORS_ORIGINS`): a
//! preflight of an allowed origin is answered with the API's own headers allowed, another
//! origin gets no grant, answers expose `x-request-id`; without `CORS_ORIGINS` nothing is
//! granted. (On AWS the HTTP API's `CorsConfiguration` does the same: `tests/tests/template.rs`.)

use api_tests::TestServer;
use shared::App;
use shared::config::{Config, Vars};

const SITE: &str = "https://tickets.example";

async fn server(origins: &[&str]) -> TestServer {
    let mut config = Config::for_tests();
    config.jwt.secret = api_tests::SECRET.into();
    config.cors_origins = origins.iter().map(|o| o.to_string()).collect();
    TestServer::start_with(App::new(api_tests::memory_store(), config)).await
}

async fn preflight(srv: &TestServer, origin: &str, path: &str, headers: &str) -> reqwest::Response {
    srv.http
        .request(reqwest::Method::OPTIONS, srv.url(path))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", headers)
        .send()
        .await
        .unwrap()
}

fn header(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers().get(name).map(|v| v.to_str().unwrap().to_ascii_lowercase())
}

#[tokio::test]
async fn an_allowed_origin_may_call_the_api_from_a_browser() {
    let srv = server(&[SITE, "http://127.0.0.1:8080"]).await;
    let res =
        preflight(&srv, SITE, "/api/v1/reservations", "content-type, x-reservation-token, idempotency-key")
            .await;
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(header(&res, "access-control-allow-origin").as_deref(), Some(SITE));
    let allowed = header(&res, "access-control-allow-headers").unwrap();
    for h in ["authorization", "content-type", "idempotency-key", "x-reservation-token"] {
        assert!(allowed.contains(h), "{h} in {allowed}");
    }
    assert!(header(&res, "access-control-allow-methods").unwrap().contains("post"));
    assert!(header(&res, "access-control-max-age").is_some());
    // The preflight of a path with an id, and a second allowed origin.
    let res =
        preflight(&srv, "http://127.0.0.1:8080", "/api/v1/reservations/x/tickets", "authorization").await;
    assert_eq!(header(&res, "access-control-allow-origin").as_deref(), Some("http://127.0.0.1:8080"));

    // The request itself: the grant, and the request id readable by the page.
    let res = srv.http.get(srv.url("/api/v1/events")).header("origin", SITE).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "access-control-allow-origin").as_deref(), Some(SITE));
    assert!(header(&res, "access-control-expose-headers").unwrap().contains("x-request-id"));

    // Another origin gets no grant (the browser then refuses the answer to its page).
    let res = preflight(&srv, "https://evil.example", "/api/v1/reservations", "content-type").await;
    assert_eq!(header(&res, "access-control-allow-origin"), None);
    let res = srv
        .http
        .get(srv.url("/api/v1/events"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "access-control-allow-origin"), None);
}

#[tokio::test]
async fn without_cors_origins_no_origin_is_granted() {
    let srv = server(&[]).await;
    let res = preflight(&srv, SITE, "/api/v1/reservations", "content-type").await;
    assert_eq!(header(&res, "access-control-allow-origin"), None);
    let res = srv.http.get(srv.url("/api/v1/events")).header("origin", SITE).send().await.unwrap();
    assert_eq!(header(&res, "access-control-allow-origin"), None);
}

#[test]
fn cors_origins_must_be_origins() {
    let parse =
        |v: &str| Config::from_vars(&Vars::from_pairs(&[("CORS_ORIGINS", v)])).map(|c| c.cors_origins);
    assert_eq!(
        parse("https://a.example, http://127.0.0.1:8080").unwrap(),
        ["https://a.example", "http://127.0.0.1:8080"]
    );
    assert_eq!(parse("*").unwrap(), ["*"]);
    for bad in ["https://a.example/path", "a.example", "ftp://a.example", "https://a.example/"] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}
