//! Fault injection: a hook that fails the Nth store call, for tests that show a failure at any
//! step leaves no half-done state and that a retry finishes the job. The call can fail before
//! it is made, stall and then fail (a timeout), or be made and then reported failed (a timeout
//! after the backend applied it: the caller cannot tell whether it happened).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use super::hooked::{Hook, Hooked, Op};
use super::{Store, StoreError};

/// How the chosen call fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Refused before it reaches the store.
    Before,
    /// Stalls, then fails without reaching the store.
    Stall,
    /// Reaches the store (a write is applied), then is reported failed.
    After,
}

impl Fault {
    pub const ALL: [Fault; 3] = [Fault::Before, Fault::Stall, Fault::After];
}

#[derive(Default)]
pub struct Faults {
    calls: AtomicUsize,
    /// The 1-based call number that fails; 0 = none.
    fail_at: AtomicUsize,
    /// The [`Fault`] as a number (0 before, 1 stall, 2 after).
    mode: AtomicU8,
    /// Set when the chosen call was let through to fail after it.
    armed: AtomicBool,
    /// The kind of call the last injected fault struck.
    struck: std::sync::Mutex<Option<Op>>,
}

impl Faults {
    /// Fails the `n`th call from now (1 = the next one; 0 = none), before it is made
    /// (`stall`: after a delay, like a timeout).
    pub fn fail_call(&self, n: usize, stall: bool) {
        self.inject(n, if stall { Fault::Stall } else { Fault::Before });
    }

    /// Fails the `n`th call from now (1 = the next one; 0 = none) the way `fault` says.
    pub fn inject(&self, n: usize, fault: Fault) {
        *self.struck.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.calls.store(0, Ordering::SeqCst);
        self.mode.store(fault as u8, Ordering::SeqCst);
        self.fail_at.store(n, Ordering::SeqCst);
    }

    pub fn heal(&self) {
        self.fail_at.store(0, Ordering::SeqCst);
    }

    /// The kind of call the last injected fault struck, if it struck.
    pub fn struck(&self) -> Option<Op> {
        *self.struck.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Calls made since the last `fail_call` / `inject`.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn fault(&self) -> Fault {
        match self.mode.load(Ordering::SeqCst) {
            0 => Fault::Before,
            1 => Fault::Stall,
            _ => Fault::After,
        }
    }
}

#[async_trait]
impl Hook for Faults {
    async fn before(&self, op: Op) -> Result<(), StoreError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n != self.fail_at.load(Ordering::SeqCst) {
            return Ok(());
        }
        *self.struck.lock().unwrap_or_else(|p| p.into_inner()) = Some(op);
        match self.fault() {
            Fault::Before => Err(StoreError::Unavailable(format!("injected failure at call {n}"))),
            Fault::Stall => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Err(StoreError::Unavailable(format!("injected timeout at call {n}")))
            }
            Fault::After => {
                self.armed.store(true, Ordering::SeqCst);
                Ok(())
            }
        }
    }

    async fn after(&self, _op: Op) -> Result<(), StoreError> {
        if self.armed.swap(false, Ordering::SeqCst) {
            return Err(StoreError::Unavailable("injected timeout after the call was applied".into()));
        }
        Ok(())
    }
}

pub type FaultyStore = Hooked<Faults>;

impl FaultyStore {
    pub fn faulty(inner: Arc<dyn Store>) -> Self {
        Hooked::new(inner, Faults::default())
    }
}
