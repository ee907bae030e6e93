//! Pins the store round trips of the ticket hot paths (the README's access-pattern table).

mod tickets_support;

use std::sync::Arc;

use api_tests::TestServer;
use api_tests::counting::{CountingStore, Counts};
use serde_json::json;
use tickets_support::{Buyer, create_event};

fn take(c: &Counts) -> (u64, u64) {
    let r = (
        c.reads.load(std::sync::atomic::Ordering::Relaxed),
        c.writes.load(std::sync::atomic::Ordering::Relaxed),
    );
    c.reset();
    r
}

#[tokio::test]
async fn round_trips_of_the_hot_paths() {
    let store = Arc::new(CountingStore::counting(api_tests::memory_store()));
    let counts = store.counts.clone();
    let srv = TestServer::start_stream_relayed(store).await;
    create_event(&srv, "rt").await;
    let mut buyer = Buyer::anonymous(&srv);
    counts.reset();

    assert_eq!(srv.get("/api/v1/events/rt/seats", None).await.0, 200);
    let seats = take(&counts);
    let pr = buyer.init("rt").await;
    let init = take(&counts);
    assert_eq!(buyer.hold(&pr, "s-1-1").await.0, 200);
    let first_hold = take(&counts);
    for n in 2..=6 {
        assert_eq!(buyer.hold(&pr, &format!("s-1-{n}")).await.0, 200);
    }
    counts.reset();
    assert_eq!(buyer.hold(&pr, "s-1-7").await.0, 200);
    let seventh_hold = take(&counts);
    let body = json!({"order_type": "self_cash", "customer": {"name": "A", "email": "a@b.ru", "phone": "89991234567"}});
    let (status, _) =
        buyer.call(reqwest::Method::PUT, &format!("/api/v1/reservations/{pr}/order_type"), Some(&body)).await;
    assert_eq!(status, 200);
    counts.reset();
    let (status, body) = buyer.post(&format!("/api/v1/reservations/{pr}/checkout"), &json!({})).await;
    assert_eq!(status, 201, "{body}");
    let checkout = take(&counts);

    println!(
        "store round trips (reads, writes): seats {seats:?}, initialize {init:?}, first hold {first_hold:?}, seventh hold {seventh_hold:?}, checkout of 7 {checkout:?}"
    );
    // The seat list: the event, its seats (one query) and the hold index shards.
    assert_eq!(seats, (2 + shared::tickets::holds::INDEX_SHARDS as u64, 0));
    // One transaction per change.
    assert_eq!(first_hold.1, 1);
    assert_eq!(seventh_hold.1, 1);
    assert_eq!(checkout.1, 1);
    assert!(init.1 == 1);
    // A hold reads the same whatever the PR holds already: the PR carries copies of its
    // holds (expiry and seat), so neither the seat limit nor the answer reads other holds.
    assert_eq!(first_hold.0, 4, "PR; seat + target hold; answer: event");
    assert_eq!(seventh_hold.0, 4, "PR; seat + target hold; answer: event");
    assert_eq!(checkout.0, 9, "PR; event + 7 holds");
}
