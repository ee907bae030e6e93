//! Counting round trips per operation kind, for the benchmarks and for tests that pin the
//! number of store calls of a hot path.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use crate::hooked::{Hook, Hooked, Op};
use shared::store::Store;

/// Round trips since the last reset: how many, and how many one after another.
///
/// `depth` is the longest chain of calls each of which started after the one before it had
/// ended: calls made together (`join`, one batch) count once. That is what latency adds up
/// over on DynamoDB, where every round trip costs a few milliseconds. A call's level is one
/// more than the highest level among the calls that had ended when it started.
#[derive(Default, Debug)]
pub struct Counts {
    pub reads: AtomicU64,
    pub writes: AtomicU64,
    ended: AtomicU64,
    depth: AtomicU64,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.reads.load(Ordering::Relaxed) + self.writes.load(Ordering::Relaxed)
    }

    /// The longest chain of sequential round trips.
    pub fn depth(&self) -> u64 {
        self.depth.load(Ordering::SeqCst)
    }

    pub fn reset(&self) {
        self.reads.store(0, Ordering::Relaxed);
        self.writes.store(0, Ordering::Relaxed);
        self.ended.store(0, Ordering::SeqCst);
        self.depth.store(0, Ordering::SeqCst);
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
        // The embedded store answers without yielding: let calls made together start
        // together, as they would against DynamoDB.
        tokio::task::yield_now().await;
        Ok(())
    }

    fn started(&self, _op: Op) -> u64 {
        self.counts.ended.load(Ordering::SeqCst) + 1
    }

    fn finished(&self, _op: Op, level: u64) {
        self.counts.ended.fetch_max(level, Ordering::SeqCst);
        self.counts.depth.fetch_max(level, Ordering::SeqCst);
    }
}

pub type CountingStore = Hooked<Counter>;

impl CountingStore {
    pub fn counting(inner: Arc<dyn Store>) -> Self {
        Hooked::new(inner, Counter::default())
    }
}
