//! Counting round trips per operation kind, for the benchmarks and for tests that pin the
//! number of store calls of a hot path.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use crate::hooked::{Hook, Hooked, Op};
use shared::store::Store;

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

/// The counting hook: `counts` is shared, so a test can keep it after handing the store over.
#[derive(Default)]
pub struct Counter {
    pub counts: Arc<Counts>,
}

#[async_trait]
impl Hook for Counter {
    async fn before(&self, op: Op) -> Result<(), super::StoreError> {
        let n = if op.is_read() { &self.counts.reads } else { &self.counts.writes };
        n.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

pub type CountingStore = Hooked<Counter>;

impl CountingStore {
    pub fn counting(inner: Arc<dyn Store>) -> Self {
        Hooked::new(inner, Counter::default())
    }
}
