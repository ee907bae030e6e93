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
