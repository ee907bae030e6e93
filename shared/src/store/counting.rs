//! A store wrapper that counts round trips per operation kind, used by the benchmarks
//! and by tests that pin the number of store calls of a hot path.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use super::{Cond, Item, QueryOpts, Store, StoreError, WriteOp};

#[derive(Default, Debug)]
pub struct Counts {
    pub reads: AtomicU64,
    pub writes: AtomicU64,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.reads.load(Ordering::Relaxed) + self.writes.load(Ordering::Relaxed)
    }

    pub fn reset(&self) {
        self.reads.store(0, Ordering::Relaxed);
        self.writes.store(0, Ordering::Relaxed);
    }
}

pub struct CountingStore {
    inner: Arc<dyn Store>,
    pub counts: Arc<Counts>,
}

impl CountingStore {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        CountingStore { inner, counts: Arc::default() }
    }

    fn read(&self) {
        self.counts.reads.fetch_add(1, Ordering::Relaxed);
    }

    fn write(&self) {
        self.counts.writes.fetch_add(1, Ordering::Relaxed);
    }
}

#[async_trait]
impl Store for CountingStore {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        self.read();
        self.inner.get(pk, sk).await
    }
    async fn batch_get(&self, keys: &[(String, String)]) -> Result<Vec<Item>, StoreError> {
        self.read();
        self.inner.batch_get(keys).await
    }
    async fn put(&self, item: Item, cond: Cond) -> Result<(), StoreError> {
        self.write();
        self.inner.put(item, cond).await
    }
    async fn delete(&self, pk: &str, sk: &str, cond: Cond) -> Result<(), StoreError> {
        self.write();
        self.inner.delete(pk, sk, cond).await
    }
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        self.write();
        self.inner.transact(ops).await
    }
    async fn query(&self, pk: &str, opts: QueryOpts) -> Result<Vec<Item>, StoreError> {
        self.read();
        self.inner.query(pk, opts).await
    }
    async fn query_gsi1(&self, pk: &str, opts: QueryOpts) -> Result<Vec<Item>, StoreError> {
        self.read();
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
        self.write();
        self.inner.add(pk, sk, field, delta, min, max).await
    }
}
