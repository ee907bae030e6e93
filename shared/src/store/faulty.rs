//! Fault injection: a store wrapper that fails (or stalls, then fails) its Nth call, for tests
//! that show a failure at any step leaves no half-done state and that a retry finishes the job.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use super::{Cond, Item, QueryOpts, Store, StoreError, WriteOp};

pub struct FaultyStore {
    inner: Arc<dyn Store>,
    calls: AtomicUsize,
    /// The 1-based call number that fails; 0 = none.
    fail_at: AtomicUsize,
    /// Stall before failing, like a timed-out request.
    stall: AtomicBool,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        FaultyStore {
            inner,
            calls: AtomicUsize::new(0),
            fail_at: AtomicUsize::new(0),
            stall: AtomicBool::new(false),
        }
    }

    /// Fails the `n`th call from now (1 = the next one).
    pub fn fail_call(&self, n: usize, stall: bool) {
        self.calls.store(0, Ordering::SeqCst);
        self.stall.store(stall, Ordering::SeqCst);
        self.fail_at.store(n, Ordering::SeqCst);
    }

    pub fn heal(&self) {
        self.fail_at.store(0, Ordering::SeqCst);
    }

    /// Calls made since the last `fail_call`.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    async fn gate(&self) -> Result<(), StoreError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.fail_at.load(Ordering::SeqCst) {
            if self.stall.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(50)).await;
                return Err(StoreError::Unavailable(format!("injected timeout at call {n}")));
            }
            return Err(StoreError::Unavailable(format!("injected failure at call {n}")));
        }
        Ok(())
    }
}

#[async_trait]
impl Store for FaultyStore {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        self.gate().await?;
        self.inner.get(pk, sk).await
    }
    async fn batch_get(&self, keys: &[(String, String)]) -> Result<Vec<Item>, StoreError> {
        self.gate().await?;
        self.inner.batch_get(keys).await
    }
    async fn put(&self, item: Item, cond: Cond) -> Result<(), StoreError> {
        self.gate().await?;
        self.inner.put(item, cond).await
    }
    async fn delete(&self, pk: &str, sk: &str, cond: Cond) -> Result<(), StoreError> {
        self.gate().await?;
        self.inner.delete(pk, sk, cond).await
    }
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        self.gate().await?;
        self.inner.transact(ops).await
    }
    async fn query(&self, pk: &str, opts: QueryOpts) -> Result<Vec<Item>, StoreError> {
        self.gate().await?;
        self.inner.query(pk, opts).await
    }
    async fn query_gsi1(&self, pk: &str, opts: QueryOpts) -> Result<Vec<Item>, StoreError> {
        self.gate().await?;
        self.inner.query_gsi1(pk, opts).await
    }
    async fn add(
        &self,
        pk: &str,
        sk: &str,
        field: &str,
        delta: i64,
        min: Option<i64>,
        max: Option<i64>,
    ) -> Result<i64, StoreError> {
        self.gate().await?;
        self.inner.add(pk, sk, field, delta, min, max).await
    }
}
