//! The DynamoDB adapter's answers to what moto never says: a transaction cancelled because
//! another transaction held one of its items (`TransactionConflict`). A local peer speaks
//! DynamoDB's JSON protocol (`TransactWriteItems`, `TransactionCanceledException` with its
//! `CancellationReasons`) and counts the requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};
use shared::store::dynamo::DynamoStore;
use shared::store::{Cond, Item, Store, StoreError, WriteOp};

/// The peer: answers the first `cancelled` requests with a cancellation for these reasons,
/// then success.
#[derive(Clone)]
struct Peer {
    reasons: Arc<Vec<&'static str>>,
    cancelled: usize,
    seen: Arc<AtomicUsize>,
}

async fn answer(State(p): State<Peer>) -> impl IntoResponse {
    let n = p.seen.fetch_add(1, Ordering::SeqCst);
    let json = [(axum::http::header::CONTENT_TYPE, "application/x-amz-json-1.0")];
    if n >= p.cancelled {
        return (StatusCode::OK, json, "{}".to_owned());
    }
    let reasons: Vec<Value> = p.reasons.iter().map(|c| json!({ "Code": c })).collect();
    let body = json!({
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons",
        "CancellationReasons": reasons,
    });
    (StatusCode::BAD_REQUEST, json, body.to_string())
}

/// A store on a peer that cancels the first `cancelled` transactions for `reasons`; and the
/// count of requests it saw.
async fn store(reasons: Vec<&'static str>, cancelled: usize) -> (DynamoStore, Arc<AtomicUsize>) {
    let seen = Arc::new(AtomicUsize::new(0));
    let peer = Peer { reasons: Arc::new(reasons), cancelled, seen: seen.clone() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new().fallback(axum::routing::post(answer)).with_state(peer);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .http_client(shared::aws::https())
        .endpoint_url(url)
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        .build();
    (DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(conf), "t"), seen)
}

fn ops() -> Vec<WriteOp> {
    let put = |pk: &str| WriteOp::Put { item: Item::new(pk, "s", Default::default()), cond: Cond::NotExists };
    vec![put("a"), put("b")]
}

async fn transact(s: &DynamoStore) -> Result<(), StoreError> {
    // A retry loop that never ends fails here rather than hanging the suite.
    tokio::time::timeout(Duration::from_secs(5), s.transact(ops())).await.expect("transact finished")
}

#[tokio::test]
async fn a_transaction_conflict_is_tried_again_and_then_applies() {
    let (s, seen) = store(vec!["None", "TransactionConflict"], 2).await;
    assert_eq!(transact(&s).await, Ok(()));
    assert_eq!(seen.load(Ordering::SeqCst), 3, "two cancelled, the third applied");
}

#[tokio::test]
async fn a_lasting_transaction_conflict_is_a_conflict_after_four_attempts() {
    let (s, seen) = store(vec!["TransactionConflict", "None"], usize::MAX).await;
    assert_eq!(transact(&s).await, Err(StoreError::Conflict { index: None }));
    assert_eq!(seen.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_failed_condition_names_its_op_at_once() {
    let (s, seen) = store(vec!["None", "ConditionalCheckFailed"], usize::MAX).await;
    assert_eq!(transact(&s).await, Err(StoreError::Conflict { index: Some(1) }));
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn another_cancellation_is_not_tried_again_and_is_no_conflict() {
    let (s, seen) = store(vec!["ValidationError", "None"], usize::MAX).await;
    assert!(matches!(transact(&s).await, Err(StoreError::Unavailable(_))));
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}

/// A read of a key no item can have (past DynamoDB's key limits: a client's overlong id) finds
/// nothing without a request, which DynamoDB would refuse; a key within them is asked for.
#[tokio::test]
async fn a_key_past_the_limits_is_read_as_absent_without_a_request() {
    let (s, seen) = store(vec![], 0).await;
    let (long_pk, long_sk) = ("p".repeat(2049), "s".repeat(1025));
    assert_eq!(s.get(&long_pk, "s").await, Ok(None));
    assert_eq!(s.get("p", &long_sk).await, Ok(None));
    assert_eq!(s.get("", "s").await, Ok(None));
    assert_eq!(
        s.batch_get(&[(long_pk.clone(), "s".into()), ("p".into(), long_sk.clone())]).await,
        Ok(vec![])
    );
    assert_eq!(s.query(&long_pk, Default::default()).await, Ok(vec![]));
    assert_eq!(s.query_gsi1(&long_pk, Default::default()).await, Ok(vec![]));
    assert_eq!(seen.load(Ordering::SeqCst), 0);
    // At the limits, the peer is asked (and has nothing).
    assert_eq!(s.get(&"p".repeat(2048), &"s".repeat(1024)).await, Ok(None));
    assert_eq!(s.batch_get(&[(long_pk, "s".into()), ("p".into(), "s".into())]).await, Ok(vec![]));
    assert_eq!(seen.load(Ordering::SeqCst), 2);
}
