//! Pins the store round trips of the ticket hot paths (the README's access-pattern table).

mod tickets_support;

use std::sync::Arc;

use api_tests::TestServer;
use api_tests::counting::{CountingStore, Counts};
use serde_json::json;
use tickets_support::{Buyer, create_event};

/// (reads, writes, depth): the round trips since the last reset, and how many of them one
/// after another.
fn take(c: &Counts) -> (u64, u64, u64) {
    let r = (
        c.reads.load(std::sync::atomic::Ordering::Relaxed),
        c.writes.load(std::sync::atomic::Ordering::Relaxed),
        c.depth(),
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
    let path = format!("/api/v1/reservations/{pr}/tickets/s-1-7");
    assert_eq!(buyer.call(reqwest::Method::DELETE, &path, None).await.0, 200);
    let release = take(&counts);
    assert_eq!(buyer.hold(&pr, "s-1-7").await.0, 200);
    counts.reset();
    let body = json!({"order_type": "self_cash", "customer": {"name": "A", "email": "a@b.ru", "phone": "89991234567"}});
    let (status, _) =
        buyer.call(reqwest::Method::PUT, &format!("/api/v1/reservations/{pr}/order_type"), Some(&body)).await;
    assert_eq!(status, 200);
    counts.reset();
    let (status, body) = buyer.post(&format!("/api/v1/reservations/{pr}/checkout"), &json!({})).await;
    assert_eq!(status, 201, "{body}");
    let checkout = take(&counts);

    println!(
        "store round trips (reads, writes, depth): seats {seats:?}, initialize {init:?}, first hold {first_hold:?}, seventh hold {seventh_hold:?}, release {release:?}, checkout of 7 {checkout:?}"
    );
    // The seat list: the event, its seats (one query) and the hold index shards, read at once.
    assert_eq!(seats, (2 + shared::tickets::holds::INDEX_SHARDS as u64, 0, 2));
    // Initialize: the event, the caller's cart, then one transaction (PR and cart).
    assert_eq!(init, (2, 1, 3));
    // A hold: the PR, the event, the seat and its hold in one batch read (the PR id names the
    // event; the PR carries copies of its holds, so the seat limit and the answer read no
    // other hold), then one transaction. The same whatever the PR holds already.
    assert_eq!(first_hold, (1, 1, 2));
    assert_eq!(seventh_hold, (1, 1, 2));
    // A release: the PR, the event and the seat's hold in one batch read, then one transaction.
    assert_eq!(release, (1, 1, 2));
    // Checkout of 7 seats: the PR and the event in one batch read; the holds are written as
    // sold on the versions the PR's copies name, in the one transaction that makes the order.
    assert_eq!(checkout, (1, 1, 2));
}

/// With the caps on (their production defaults), a hold and a checkout read their caps
/// ledgers alongside their other reads and write them in their one transaction: no round trip
/// one after another is added.
#[tokio::test]
async fn the_caps_add_no_round_trip_one_after_another() {
    let store = Arc::new(CountingStore::counting(api_tests::memory_store()));
    let counts = store.counts.clone();
    let mut config = shared::Config::for_tests();
    config.jwt.secret = api_tests::SECRET.into();
    config.outbox_relay = shared::config::Relay::Stream;
    config.caps = shared::caps::CapsConfig::default();
    let srv = TestServer::start_with(shared::App::new(store, config)).await;
    create_event(&srv, "capped").await;
    let mut buyer = Buyer::anonymous(&srv);
    let pr = buyer.init("capped").await;
    assert_eq!(buyer.hold(&pr, "s-1-1").await.0, 200);
    counts.reset();
    assert_eq!(buyer.hold(&pr, "s-1-2").await.0, 200);
    let hold = take(&counts);
    let body = json!({"order_type": "self_cash", "customer": {"name": "A", "email": "a@b.ru", "phone": "89991234567"}});
    let path = format!("/api/v1/reservations/{pr}/order_type");
    assert_eq!(buyer.call(reqwest::Method::PUT, &path, Some(&body)).await.0, 200);
    counts.reset();
    let (status, body) = buyer.post(&format!("/api/v1/reservations/{pr}/checkout"), &json!({})).await;
    assert_eq!(status, 201, "{body}");
    let checkout = take(&counts);
    assert_eq!(
        hold,
        (2, 1, 2),
        "hold: PR, event, seat and hold in one batch read, the address's ledger beside it; one transaction"
    );
    assert_eq!(
        checkout,
        (2, 1, 2),
        "checkout: PR and event in one batch read, the ledgers beside it; one transaction"
    );
}
