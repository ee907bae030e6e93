//! One conformance suite, run against both store adapters: the embedded store (`memory::`)
//! and DynamoDB on moto (`dynamo::`).

use std::sync::Arc;

use serde_json::{Map, Value, json};
use shared::store::{Cond, Counter, Item, QueryOpts, Store, StoreError, WriteOp};

fn data(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("object expected"),
    }
}

fn item(pk: &str, sk: &str, v: Value) -> Item {
    Item::new(pk, sk, data(v))
}

fn conflict<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    assert!(matches!(r, Err(StoreError::Conflict { .. })), "expected a conflict, got {r:?}");
}

pub async fn get_missing_is_none(s: Arc<dyn Store>) {
    assert_eq!(s.get("nope", "nope").await.unwrap(), None);
}

pub async fn create_only_once(s: Arc<dyn Store>) {
    s.put(item("deal#1", "deal", json!({"state": "pending"})), Cond::NotExists).await.unwrap();
    conflict(s.put(item("deal#1", "deal", json!({"state": "hijacked"})), Cond::NotExists).await);
    let got = s.get("deal#1", "deal").await.unwrap().unwrap();
    assert_eq!(got.data["state"], "pending");
    assert_eq!(got.version, 1);
}

pub async fn versioned_update(s: Arc<dyn Store>) {
    s.put(item("p", "s", json!({"n": 1})), Cond::NotExists).await.unwrap();
    let v2 = item("p", "s", json!({"n": 2})).with_version(2);
    s.put(v2.clone(), Cond::Version(1)).await.unwrap();
    conflict(s.put(item("p", "s", json!({"n": 3})).with_version(2), Cond::Version(1)).await);
    conflict(s.put(item("missing", "s", json!({})), Cond::Version(1)).await);
    conflict(s.put(item("missing", "s", json!({})), Cond::Exists).await);
    assert_eq!(s.get("p", "s").await.unwrap().unwrap(), v2);
}

pub async fn conditional_delete(s: Arc<dyn Store>) {
    s.put(item("p", "s", json!({})), Cond::NotExists).await.unwrap();
    conflict(s.delete("p", "s", Cond::Version(7)).await);
    s.delete("p", "s", Cond::Version(1)).await.unwrap();
    assert_eq!(s.get("p", "s").await.unwrap(), None);
    conflict(s.delete("p", "s", Cond::Exists).await);
    s.delete("p", "s", Cond::Always).await.unwrap();
}

pub async fn transaction_is_all_or_nothing(s: Arc<dyn Store>) {
    s.put(item("b", "b", json!({"x": 1})), Cond::NotExists).await.unwrap();
    let res = s
        .transact(vec![
            WriteOp::Put { item: item("a", "a", json!({"x": 1})), cond: Cond::NotExists },
            WriteOp::Put { item: item("b", "b", json!({"x": 2})).with_version(9), cond: Cond::Version(8) },
        ])
        .await;
    assert_eq!(res, Err(StoreError::Conflict { index: Some(1) }));
    assert_eq!(s.get("a", "a").await.unwrap(), None, "first op must not apply");
    assert_eq!(s.get("b", "b").await.unwrap().unwrap().data["x"], 1);

    s.transact(vec![
        WriteOp::Put { item: item("a", "a", json!({"x": 1})), cond: Cond::NotExists },
        WriteOp::Delete { pk: "b".into(), sk: "b".into(), cond: Cond::Version(1) },
        WriteOp::Add(Counter::new("c", "c", "n", 2).within(None, Some(5))),
    ])
    .await
    .unwrap();
    assert!(s.get("a", "a").await.unwrap().is_some());
    assert_eq!(s.get("b", "b").await.unwrap(), None);
    assert_eq!(s.get("c", "c").await.unwrap().unwrap().number("n"), 2);

    let res = s
        .transact(vec![
            WriteOp::Check { pk: "a".into(), sk: "a".into(), cond: Cond::Version(1) },
            WriteOp::Add(Counter::new("c", "c", "n", 4).within(None, Some(5))),
        ])
        .await;
    assert_eq!(res, Err(StoreError::Conflict { index: Some(1) }));
    assert_eq!(s.get("c", "c").await.unwrap().unwrap().number("n"), 2);
    assert!(matches!(s.transact(vec![]).await, Err(StoreError::Invalid(_))));
}

pub async fn bounded_counter(s: Arc<dyn Store>) {
    for expected in 1..=3 {
        assert_eq!(
            s.add(Counter::new("slot", "cap", "held", 1).within(Some(0), Some(3))).await.unwrap(),
            expected
        );
    }
    conflict(s.add(Counter::new("slot", "cap", "held", 1).within(Some(0), Some(3))).await);
    assert_eq!(s.add(Counter::new("slot", "cap", "held", -3).within(Some(0), Some(3))).await.unwrap(), 0);
    conflict(s.add(Counter::new("slot", "cap", "held", -1).within(Some(0), Some(3))).await);
    conflict(s.add(Counter::new("fresh", "cap", "held", 5).within(Some(0), Some(3))).await);
    assert_eq!(s.get("fresh", "cap").await.unwrap(), None);
    assert_eq!(s.add(Counter::new("seq", "deal", "n", 1)).await.unwrap(), 1);
    assert_eq!(s.add(Counter::new("seq", "deal", "n", 1)).await.unwrap(), 2);
}

pub async fn query_by_prefix_and_order(s: Arc<dyn Store>) {
    for (sk, n) in [("seat#A-2", 2), ("seat#A-1", 1), ("seat#B-1", 3), ("meta", 0)] {
        s.put(item("event#1", sk, json!({"n": n})), Cond::Always).await.unwrap();
    }
    s.put(item("event#2", "seat#A-1", json!({"n": 9})), Cond::Always).await.unwrap();
    let all = s.query("event#1", QueryOpts::prefix("seat#")).await.unwrap();
    let sks: Vec<_> = all.iter().map(|i| i.sk.as_str()).collect();
    assert_eq!(sks, ["seat#A-1", "seat#A-2", "seat#B-1"]);
    let desc = s
        .query(
            "event#1",
            QueryOpts {
                sk_prefix: Some("seat#A".into()),
                descending: true,
                limit: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(desc.len(), 1);
    assert_eq!(desc[0].sk, "seat#A-2");
    assert_eq!(s.query("event#1", QueryOpts::default()).await.unwrap().len(), 4);
    let until = QueryOpts { sk_until: Some("seat#A-2".into()), ..Default::default() };
    let sks: Vec<_> = s.query("event#1", until).await.unwrap().into_iter().map(|i| i.sk).collect();
    assert_eq!(sks, ["meta", "seat#A-1", "seat#A-2"]);
    let both = QueryOpts { sk_prefix: Some("a".into()), sk_until: Some("b".into()), ..Default::default() };
    assert!(matches!(s.query("event#1", both).await, Err(StoreError::Invalid(_))));
}

pub async fn secondary_index(s: Arc<dyn Store>) {
    for (id, at) in [(1, "2026-01-02"), (2, "2026-01-01"), (3, "2026-01-03")] {
        let it =
            item(&format!("deal#{id}"), "deal", json!({"id": id})).with_gsi1("user#7", format!("deal#{at}"));
        s.put(it, Cond::NotExists).await.unwrap();
    }
    s.put(item("deal#4", "deal", json!({"id": 4})).with_gsi1("user#8", "deal#x"), Cond::NotExists)
        .await
        .unwrap();
    let opts = QueryOpts { sk_prefix: Some("deal#".into()), descending: true, ..Default::default() };
    let ids: Vec<_> =
        s.query_gsi1("user#7", opts).await.unwrap().iter().map(|i| i.data["id"].clone()).collect();
    assert_eq!(ids, [json!(3), json!(1), json!(2)]);
}

pub async fn data_round_trips(s: Arc<dyn Store>) {
    let v = json!({
        "text": "Сделка на поставку", "empty": "", "money": "10341450.00", "int": 17, "neg": -3,
        "float": 2.5, "yes": true, "none": null, "list": [1, "two", {"three": 3}],
        "nested": {"a": {"b": ["c"]}}, "empty_list": [], "empty_map": {}
    });
    let it = item("rt", "rt", v.clone()).with_ttl(Some(1_900_000_000)).with_gsi1("g", "h");
    s.put(it.clone(), Cond::NotExists).await.unwrap();
    let got = s.get("rt", "rt").await.unwrap().unwrap();
    assert_eq!(Value::Object((*got.data).clone()), v);
    assert_eq!(got, it);
    assert!(matches!(
        s.put(item("x", "x", json!({"pk": "evil"})), Cond::Always).await,
        Err(StoreError::Invalid(_))
    ));
}

/// A read of an item's version and data alone answers what a whole read does.
pub async fn data_and_version_alone(s: Arc<dyn Store>) {
    assert!(s.get_data("nope", "nope").await.unwrap().is_none());
    s.put(item("d", "d", json!({"n": 1, "text": "Сделка"})), Cond::NotExists).await.unwrap();
    s.put(item("d", "d", json!({"n": 2, "text": "Сделка"})).with_version(2), Cond::Version(1)).await.unwrap();
    let whole = s.get("d", "d").await.unwrap().unwrap();
    let (version, data) = s.get_data("d", "d").await.unwrap().unwrap();
    assert_eq!((version, &*data), (2, &*whole.data));
    assert_eq!(data["n"], 2);
    // Through a layer as the functions stack them (it hands the read to the store under it).
    let layered: Arc<dyn Store> = Arc::new(shared::store::own_writes::OwnWrites::new(s.clone()));
    let (version, data) = layered.get_data("d", "d").await.unwrap().unwrap();
    assert_eq!((version, &*data), (2, &*whole.data));
    assert_eq!(layered.get("d", "d").await.unwrap(), Some(whole));
    assert!(layered.get_data("d", "nope").await.unwrap().is_none());
}

pub async fn batch_get_many(s: Arc<dyn Store>) {
    for i in 0..130 {
        s.put(item(&format!("b#{i}"), "x", json!({"i": i})), Cond::NotExists).await.unwrap();
    }
    let mut keys: Vec<(String, String)> = (0..140).map(|i| (format!("b#{i}"), "x".to_owned())).collect();
    keys.push(("b#1".into(), "x".into()));
    let mut got: Vec<i64> =
        s.batch_get(&keys).await.unwrap().iter().map(|i| i.data["i"].as_i64().unwrap()).collect();
    got.sort();
    assert_eq!(got, (0..130).collect::<Vec<_>>());
    assert!(s.batch_get(&[]).await.unwrap().is_empty());
    // The data alone: the same items, directly and through a layer as the functions stack them.
    let layered: Arc<dyn Store> = Arc::new(shared::store::own_writes::OwnWrites::new(s.clone()));
    for store in [&s, &layered] {
        let mut data: Vec<i64> =
            store.batch_get_data(&keys).await.unwrap().iter().map(|d| d["i"].as_i64().unwrap()).collect();
        data.sort();
        assert_eq!(data, got);
        assert!(store.batch_get_data(&[]).await.unwrap().is_empty());
    }
}

/// Each key's version and data in the order asked, `None` where nothing is stored, directly and
/// through a layer (the embedded store answers under one lock; DynamoDB with one batch read).
pub async fn get_each_in_order(s: Arc<dyn Store>) {
    s.put(item("e#1", "a", json!({"n": 1})), Cond::NotExists).await.unwrap();
    s.put(item("e#1", "b", json!({"n": 2})), Cond::NotExists).await.unwrap();
    s.put(item("e#2", "a", json!({"n": 3})).with_version(4), Cond::NotExists).await.unwrap();
    let layered: Arc<dyn Store> = Arc::new(shared::store::own_writes::OwnWrites::new(s.clone()));
    for store in [&s, &layered] {
        let got = store
            .get_each(&[("e#2", "a"), ("e#1", "nope"), ("e#1", "b"), ("e#3", "a"), ("e#1", "a")])
            .await
            .unwrap();
        let seen: Vec<Option<(u64, i64)>> =
            got.iter().map(|f| f.as_ref().map(|(v, d)| (*v, d["n"].as_i64().unwrap()))).collect();
        assert_eq!(seen, vec![Some((4, 3)), None, Some((1, 2)), None, Some((1, 1))]);
        assert!(store.get_each(&[]).await.unwrap().is_empty());
    }
}

/// N concurrent read-then-conditional-update writers of one item, released together (on the
/// embedded store with jitter between each read and write): each version is won once, and
/// racers whose read went stale lose.
pub async fn race_one_winner(s: Arc<dyn Store>) {
    let s: Arc<dyn Store> = Arc::new(api_tests::jittery(s));
    s.put(item("race", "race", json!({"owner": null})), Cond::NotExists).await.unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(32));
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let (s, barrier) = (s.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let current = s.get("race", "race").await.unwrap().unwrap();
                let next = item("race", "race", json!({"owner": i})).with_version(current.version + 1);
                s.put(next, Cond::Version(current.version)).await.map(|_| i)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(i) => winners.push(i),
            Err(e) => assert!(e.is_conflict(), "{e:?}"),
        }
    }
    // Every task read version 1 or a later one; only writers whose read was current can win,
    // and each version is won at most once.
    let stored = s.get("race", "race").await.unwrap().unwrap();
    assert_eq!(stored.version as usize, winners.len() + 1, "each version has exactly one winner");
    assert!(winners.len() < 32, "the racers overlapped: some read a version another had already taken");
    let owner = stored.data["owner"].as_i64().expect("some writer won") as i32;
    assert!(winners.contains(&owner), "the stored owner {owner} is a winner");
}

/// Every racer writes against the version it read first: exactly one wins.
pub async fn race_same_version(s: Arc<dyn Store>) {
    let s: Arc<dyn Store> = Arc::new(api_tests::jittery(s));
    s.put(item("race2", "race2", json!({"owner": null})), Cond::NotExists).await.unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(24));
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let (s, barrier) = (s.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let next = item("race2", "race2", json!({"owner": i})).with_version(2);
                s.put(next, Cond::Version(1)).await.is_ok()
            })
        })
        .collect();
    let wins = futures::future::join_all(tasks).await.into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(wins, 1);
}

/// Concurrent bounded increments, released together, never pass the bound.
pub async fn race_counter(s: Arc<dyn Store>) {
    let s: Arc<dyn Store> = Arc::new(api_tests::jittery(s));
    let barrier = Arc::new(tokio::sync::Barrier::new(40));
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let (s, barrier) = (s.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                s.add(Counter::new("cap", "cap", "held", 1).within(Some(0), Some(10))).await.is_ok()
            })
        })
        .collect();
    let wins = futures::future::join_all(tasks).await.into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(wins, 10);
    assert_eq!(s.get("cap", "cap").await.unwrap().unwrap().number("held"), 10);
}

macro_rules! suite {
    ($adapter:ident, $make:expr) => {
        mod $adapter {
            use super::*;
            suite!(@tests $make; get_missing_is_none, create_only_once, versioned_update,
                conditional_delete, transaction_is_all_or_nothing, bounded_counter,
                query_by_prefix_and_order, secondary_index, data_round_trips, race_one_winner,
                race_same_version, race_counter, batch_get_many, data_and_version_alone, get_each_in_order);
        }
    };
    (@tests $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let make = $make;
                if let Some(store) = make().await {
                    super::$name(store).await;
                }
            }
        )*
    };
}

suite!(memory, || async { Some(api_tests::memory_store() as Arc<dyn Store>) });
suite!(dynamo, || async { api_tests::dynamo_store().await.map(|s| s as Arc<dyn Store>) });

/// Only a failed condition is a conflict: any other refusal of a conditional write (here, a
/// table that does not exist) leaves the store unavailable, never a 409 that tells the client
/// someone else won.
#[tokio::test]
async fn dynamo_an_error_that_is_not_a_failed_condition_is_not_a_conflict() {
    if api_tests::moto_endpoint().is_none() {
        return;
    }
    let missing = shared::store::dynamo::DynamoStore::from_env("no-such-table").await;
    let item = Item::new("p", "s", Default::default());
    for res in [
        missing.put(item.clone(), Cond::NotExists).await,
        missing.delete("p", "s", Cond::Exists).await,
        missing.add(Counter::new("p", "s", "n", 1).within(None, Some(5))).await.map(|_| ()),
    ] {
        assert!(matches!(res, Err(StoreError::Unavailable(_))), "{res:?}");
    }
}
