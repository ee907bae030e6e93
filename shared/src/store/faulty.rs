//! Fault injection: a hook that fails (or stalls, then fails) the Nth store call, for tests
//! that show a failure at any step leaves no half-done state and that a retry finishes the job.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use super::hooked::{Hook, Hooked, Op};
use super::{Store, StoreError};

#[derive(Default)]
pub struct Faults {
    calls: AtomicUsize,
    /// The 1-based call number that fails; 0 = none.
    fail_at: AtomicUsize,
    /// Stall before failing, like a timed-out request.
    stall: AtomicBool,
}

impl Faults {
    /// Fails the `n`th call from now (1 = the next one; 0 = none).
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
}

#[async_trait]
impl Hook for Faults {
    async fn before(&self, _op: Op) -> Result<(), StoreError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n != self.fail_at.load(Ordering::SeqCst) {
            return Ok(());
        }
        if self.stall.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(50)).await;
            return Err(StoreError::Unavailable(format!("injected timeout at call {n}")));
        }
        Err(StoreError::Unavailable(format!("injected failure at call {n}")))
    }
}

pub type FaultyStore = Hooked<Faults>;

impl FaultyStore {
    pub fn faulty(inner: Arc<dyn Store>) -> Self {
        Hooked::new(inner, Faults::default())
    }
}
