//! The flash-sale race: 100 concurrent buyers, each trying to hold the same 10 seats →
//! every seat is held by exactly one reservation and no reservation passes 7 seats. Run
//! on the embedded store and on DynamoDB (moto).

mod tickets_support;

use std::collections::HashMap;
use std::sync::Arc;

use api_tests::TestServer;
use rand::seq::SliceRandom;
use shared::store::Store;
use shared::tickets::holds::{self, HoldState};
use tickets_support::{Buyer, create_event, taken_seats};

const BUYERS: usize = 100;

async fn race(store: Arc<dyn Store>) {
    // Jitter around every store call, and every buyer released at once by a barrier.
    let store = Arc::new(api_tests::jittery(store));
    let srv = TestServer::start(store.clone()).await;
    create_event(&srv, "flash").await;
    let seats: Vec<String> = (1..=10).map(|n| format!("s-1-{n}")).collect();

    let barrier = Arc::new(tokio::sync::Barrier::new(BUYERS));
    let mut tasks = Vec::new();
    for _ in 0..BUYERS {
        let mut buyer = Buyer::anonymous(&srv);
        let mut order = seats.clone();
        order.shuffle(&mut rand::rng());
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let pr = buyer.init("flash").await;
            barrier.wait().await;
            let mut won = Vec::new();
            for seat in order {
                let (status, body) = buyer.hold(&pr, &seat).await;
                match status {
                    200 => won.push(seat),
                    409 | 400 => {}
                    other => panic!("unexpected {other}: {body}"),
                }
            }
            (buyer, pr, won)
        }));
    }
    let mut winners: HashMap<String, String> = HashMap::new();
    let mut buyers = Vec::new();
    for t in tasks {
        let (buyer, pr, won) = t.await.expect("buyer task");
        assert!(won.len() <= 7, "a reservation got {} seats", won.len());
        for seat in &won {
            assert!(winners.insert(seat.clone(), pr.clone()).is_none(), "seat {seat} won twice");
        }
        buyers.push((buyer, pr, won));
    }
    assert_eq!(winners.len(), 10, "every seat is held");
    assert!(store.conflicts() > 0, "some hold lost a conditional write: the buyers really raced");

    // The store agrees: one hold item per seat, held by the winner.
    for seat in &seats {
        let h = holds::get(&srv.app, "flash", seat).await.unwrap().expect("hold item");
        assert_eq!(h.hold.state, HoldState::Held);
        assert_eq!(h.hold.reservation_id.as_ref(), winners.get(seat), "seat {seat}");
    }
    // Each reservation shows exactly what it won.
    let mut shown = 0;
    for (buyer, pr, won) in &buyers {
        let (status, body) = buyer.get(&format!("/api/v1/reservations/{pr}")).await;
        assert_eq!(status, 200);
        let mut tickets: Vec<String> = body["reservation"]["tickets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["seat_id"].as_str().unwrap().to_owned())
            .collect();
        tickets.sort();
        let mut won = won.clone();
        won.sort();
        assert_eq!(tickets, won);
        shown += tickets.len();
    }
    assert_eq!(shown, 10);
    let mut taken = taken_seats(&srv, "flash").await;
    taken.sort();
    let mut expected = seats.clone();
    expected.sort();
    assert_eq!(taken, expected);

    // One buyer firing 10 holds at once on fresh seats: never more than 7.
    let (buyer, pr, _) = buyers.swap_remove(0);
    let (status, _) = buyer.call(reqwest::Method::DELETE, &format!("/api/v1/reservations/{pr}"), None).await;
    assert_eq!(status, 200);
    let mut buyer = buyer;
    let pr = buyer.init("flash").await;
    let attempts = (1..=10).map(|n| {
        let buyer = buyer.clone();
        let pr = pr.clone();
        async move { buyer.hold(&pr, &format!("s-2-{n}")).await.0 }
    });
    let statuses = futures::future::join_all(attempts).await;
    assert!(statuses.iter().all(|s| [200, 400, 409].contains(s)), "{statuses:?}");
    let (_, body) = buyer.get(&format!("/api/v1/reservations/{pr}")).await;
    let held = body["reservation"]["tickets"].as_array().unwrap().len();
    assert!(held <= 7, "{held} seats in one reservation");
    let mut in_store = 0;
    for n in 1..=10 {
        if let Some(h) = holds::get(&srv.app, "flash", &format!("s-2-{n}")).await.unwrap()
            && h.hold.reservation_id.as_deref() == Some(pr.as_str())
        {
            in_store += 1;
        }
    }
    assert!(in_store <= 7, "{in_store} hold items for one reservation");
    assert_eq!(in_store, held, "the reservation shows every seat it holds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_every_seat_held_once() {
    race(api_tests::memory_store()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamo_every_seat_held_once() {
    let Some(store) = api_tests::dynamo_store().await else { return };
    race(store).await;
}
