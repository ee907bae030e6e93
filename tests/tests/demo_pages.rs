//! The demo front end on the local server (`/demo/`): its files served byte for byte with
//! their content types, every page's local references served, nothing else; and a ticket
//! payment under the local server's defaults returning to the demo's order page. The browser
//! itself is driven by `scripts/browser-demo.py` (`make test`'s browser check).

mod tickets_support;

use std::sync::Arc;

use api_tests::{SECRET, TestServer, memory_store};
use regex_lite::Regex;
use shared::App;
use tickets_support::{create_event, online_order};

const ASSETS: [(&str, &str); 6] = [
    ("index.html", "text/html"),
    ("event.html", "text/html"),
    ("order.html", "text/html"),
    ("zoo.html", "text/html"),
    ("demo.js", "text/javascript"),
    ("demo.css", "text/css"),
];

fn on_disk(asset: &str) -> Vec<u8> {
    std::fs::read(format!("{}/../demo/{asset}", env!("CARGO_MANIFEST_DIR"))).expect("demo file")
}

#[tokio::test]
async fn the_demo_files_are_served_as_they_are() {
    let srv = TestServer::memory().await;
    let res = srv.http.get(srv.url("/demo/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert_eq!(res.bytes().await.unwrap().as_ref(), on_disk("index.html"));
    for (asset, kind) in ASSETS {
        let res = srv.http.get(srv.url(&format!("/demo/{asset}"))).send().await.unwrap();
        assert_eq!(res.status(), 200, "{asset}");
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with(kind), "{asset}");
        assert_eq!(res.bytes().await.unwrap().as_ref(), on_disk(asset), "{asset}");
    }
    for missing in ["/demo/nope.js", "/demo/..%2FCargo.toml", "/demo/../Cargo.toml"] {
        let (status, body) = srv.get(missing, None).await;
        assert_eq!(status, 404, "{missing}: {body}");
    }
    let (_, body) = srv.get("/demo/nope.js", None).await;
    assert_eq!(body["error"]["code"], "not_found");
    // A name that is not UTF-8: the API's JSON 400, as on every other route.
    for odd in ["/demo/%ff", "/docs/%C0%AF"] {
        let (status, body) = srv.get(odd, None).await;
        assert_eq!((status, body["error"]["field"].as_str()), (400, Some("path")), "{odd}: {body}");
    }
}

/// Every `src` and `href` of the pages that is not an absolute URL names a served file, and
/// every page loads the script with its own `data-page`.
#[test]
fn every_local_reference_of_the_pages_is_a_demo_file() {
    let reference = Regex::new(r#"(?:src|href)="([^"]*)""#).unwrap();
    for (page, _) in ASSETS.iter().filter(|(a, _)| a.ends_with(".html")) {
        let html = String::from_utf8(on_disk(page)).unwrap();
        for cap in reference.captures_iter(&html) {
            let target = cap[1].split(['?', '#']).next().unwrap_or_default();
            assert!(
                ASSETS.iter().any(|(a, _)| *a == target),
                "{page} refers to {target:?}, which the local server does not serve"
            );
        }
        assert!(html.contains(r#"<script src="demo.js" data-page=""#), "{page} loads demo.js");
        assert!(!html.contains("<script>"), "{page}: no inline scripts");
    }
}

#[tokio::test]
async fn a_ticket_payment_returns_to_the_demo_order_page_under_the_local_server() {
    let mut config = shared::Config::for_tests();
    config.jwt.secret = SECRET.into();
    config.public_url = "http://127.0.0.1:3000".into();
    let config = local::with_demo_return_pages(&config);
    let page = "http://127.0.0.1:3000/demo/order.html?order={order_id}";
    assert_eq!(config.tickets_success_url.as_deref(), Some(page));
    assert_eq!(config.tickets_error_url.as_deref(), Some(page));
    let mut named = config.clone();
    named.tickets_success_url = Some("https://shop.example/ok/{order_id}".into());
    assert_eq!(
        local::with_demo_return_pages(&named).tickets_success_url.as_deref(),
        Some("https://shop.example/ok/{order_id}"),
        "a configured page is kept"
    );

    let store: Arc<dyn shared::store::Store> = memory_store();
    let srv = TestServer::start_with(App::new(store, config)).await;
    create_event(&srv, "back").await;
    let (order, url) = online_order(&srv, "back", &["s-1-1"], "self_online").await;
    let (status, back) = api_tests::press(&srv, &url, "succeeded").await;
    assert_eq!(status, 303);
    let res = srv.http.get(&back).send().await.unwrap();
    assert_eq!(res.status(), 302);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(location, format!("http://127.0.0.1:3000/demo/order.html?order={order}"));
}
