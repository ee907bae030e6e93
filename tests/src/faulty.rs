//! Fault injection: a store that fails its Nth call, for tests that show a failure at any
//! step leaves no half-done state and that a retry finishes the job. The call can be refused
//! before it is made; stall past the caller's timeout and land later, while the caller is
//! already retrying (a request in flight when its Lambda gave up); be applied and then reported
//! failed (a timeout after the backend applied it); or be applied and then reported as a
//! conflict (what the SDK's retry of an applied conditional write answers).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::hooked::Op;
use shared::store::{Cond, Counter, Item, QueryOpts, Store, StoreError, WriteOp};

/// How the chosen call fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Refused before it reaches the store.
    Before,
    /// Outlives the caller's timeout: the caller gets a failure at once, and a write lands
    /// [`GHOST_DELAY`] later, whatever the caller did meanwhile. A read just fails.
    Stall,
    /// Reaches the store (a write is applied), then is reported failed.
    After,
    /// A conditional write (a put or delete with a condition, a bounded add) reaches the
    /// store and is applied, then reported as a conflict: what the SDK's retry of it answers
    /// after the first answer was lost. Anything else is reported failed, as with `After`
    /// (a transaction carries a client request token, so its retry is answered as the
    /// success it was).
    Conflict,
}

impl Fault {
    pub const ALL: [Fault; 4] = [Fault::Before, Fault::Stall, Fault::After, Fault::Conflict];
}

/// How long the caller of a stalled call waits before it gives up.
pub const CALLER_TIMEOUT: Duration = Duration::from_millis(5);
/// When a stalled write lands, counted from the call.
pub const GHOST_DELAY: Duration = Duration::from_millis(25);

pub struct FaultyStore {
    inner: Arc<dyn Store>,
    calls: AtomicUsize,
    /// The 1-based call number that fails, and how; 0 = none.
    plan: Mutex<(usize, Fault)>,
    /// The kind of call the last injected fault struck.
    struck: Mutex<Option<Op>>,
    /// Stalled writes still to land.
    ghosts: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Whether the struck write took effect (applied, or landed after its caller left).
    landed: Arc<AtomicBool>,
    /// Whether the struck write was reported as a conflict.
    conflicted: AtomicBool,
    /// The kinds of the calls made since the last `inject`.
    trace: Mutex<Vec<Op>>,
}

/// A write, owned, to be made later.
enum Write {
    Put(Item, Cond),
    Delete(String, String, Cond),
    Transact(Vec<WriteOp>),
    Add(Counter),
}

impl Write {
    /// Whether a retry of it could fail its condition.
    fn conditional(&self) -> bool {
        match self {
            Write::Put(_, cond) | Write::Delete(_, _, cond) => *cond != Cond::Always,
            Write::Add(c) => c.min.is_some() || c.max.is_some(),
            Write::Transact(_) => false,
        }
    }

    async fn apply(self, store: &dyn Store) -> Result<(), StoreError> {
        match self {
            Write::Put(item, cond) => store.put(item, cond).await,
            Write::Delete(pk, sk, cond) => store.delete(&pk, &sk, cond).await,
            Write::Transact(ops) => store.transact(ops).await,
            Write::Add(c) => store.add(c).await.map(drop),
        }
    }
}

impl FaultyStore {
    pub fn faulty(inner: Arc<dyn Store>) -> Self {
        FaultyStore {
            inner,
            calls: AtomicUsize::new(0),
            plan: Mutex::new((0, Fault::Before)),
            struck: Mutex::new(None),
            ghosts: Mutex::new(Vec::new()),
            landed: Arc::new(AtomicBool::new(false)),
            conflicted: AtomicBool::new(false),
            trace: Mutex::new(Vec::new()),
        }
    }

    /// Fails the `n`th call from now (1 = the next one; 0 = none), before it is made
    /// (`stall`: stalled past the caller's timeout).
    pub fn fail_call(&self, n: usize, stall: bool) {
        self.inject(n, if stall { Fault::Stall } else { Fault::Before });
    }

    /// Fails the `n`th call from now (1 = the next one; 0 = none) the way `fault` says.
    pub fn inject(&self, n: usize, fault: Fault) {
        *self.struck.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.landed.store(false, Ordering::SeqCst);
        self.conflicted.store(false, Ordering::SeqCst);
        self.trace.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.calls.store(0, Ordering::SeqCst);
        *self.plan.lock().unwrap_or_else(|p| p.into_inner()) = (n, fault);
    }

    pub fn heal(&self) {
        self.plan.lock().unwrap_or_else(|p| p.into_inner()).0 = 0;
    }

    /// The kind of call the last injected fault struck, if it struck.
    pub fn struck(&self) -> Option<Op> {
        *self.struck.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the struck call was a write that took effect all the same (call after
    /// [`FaultyStore::settle`] for a stalled one).
    pub fn landed(&self) -> bool {
        self.landed.load(Ordering::SeqCst)
    }

    /// Whether the struck call was a write applied and then reported as a conflict.
    pub fn conflicted(&self) -> bool {
        self.conflicted.load(Ordering::SeqCst)
    }

    /// The 1-based numbers of the writes among the calls made since the last `inject`.
    pub fn write_steps(&self) -> Vec<usize> {
        let trace = self.trace.lock().unwrap_or_else(|p| p.into_inner());
        trace.iter().enumerate().filter(|(_, op)| !op.is_read()).map(|(i, _)| i + 1).collect()
    }

    /// Calls made since the last `fail_call` / `inject`.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Waits until every stalled write has landed (or failed its condition).
    pub async fn settle(&self) {
        let ghosts: Vec<_> = std::mem::take(&mut *self.ghosts.lock().unwrap_or_else(|p| p.into_inner()));
        for g in ghosts {
            let _ = g.await;
        }
    }

    /// The fault for this call, if it is the chosen one.
    fn strikes(&self, op: Op) -> Option<Fault> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        self.trace.lock().unwrap_or_else(|p| p.into_inner()).push(op);
        let (at, fault) = *self.plan.lock().unwrap_or_else(|p| p.into_inner());
        if n != at {
            return None;
        }
        *self.struck.lock().unwrap_or_else(|p| p.into_inner()) = Some(op);
        Some(fault)
    }

    async fn read<T>(
        &self,
        op: Op,
        call: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match self.strikes(op) {
            None => call.await,
            Some(Fault::Before) => Err(StoreError::Unavailable("injected failure".into())),
            Some(Fault::Stall) => {
                tokio::time::sleep(CALLER_TIMEOUT).await;
                Err(StoreError::Unavailable("injected timeout".into()))
            }
            Some(Fault::After | Fault::Conflict) => {
                call.await?;
                Err(StoreError::Unavailable("injected failure after the read".into()))
            }
        }
    }

    async fn write(&self, op: Op, w: Write) -> Result<(), StoreError> {
        match self.strikes(op) {
            None => w.apply(self.inner.as_ref()).await,
            Some(fault) => self.inflict(fault, w).await,
        }
    }

    /// A struck write: never reported as a success.
    async fn inflict(&self, fault: Fault, w: Write) -> Result<(), StoreError> {
        match fault {
            Fault::Before => Err(StoreError::Unavailable("injected failure".into())),
            Fault::Stall => {
                let (inner, landed) = (self.inner.clone(), self.landed.clone());
                let ghost = tokio::spawn(async move {
                    tokio::time::sleep(GHOST_DELAY).await;
                    match w.apply(inner.as_ref()).await {
                        Ok(()) => landed.store(true, Ordering::SeqCst),
                        Err(e) => tracing::debug!(error = %e, "a stalled write did not land"),
                    }
                });
                self.ghosts.lock().unwrap_or_else(|p| p.into_inner()).push(ghost);
                tokio::time::sleep(CALLER_TIMEOUT).await;
                Err(StoreError::Unavailable("injected timeout; the write lands later".into()))
            }
            Fault::After => {
                w.apply(self.inner.as_ref()).await?;
                self.landed.store(true, Ordering::SeqCst);
                Err(StoreError::Unavailable("injected timeout after the call was applied".into()))
            }
            Fault::Conflict => {
                let conditional = w.conditional();
                w.apply(self.inner.as_ref()).await?;
                self.landed.store(true, Ordering::SeqCst);
                self.conflicted.store(conditional, Ordering::SeqCst);
                match conditional {
                    true => Err(StoreError::Conflict { index: None }),
                    false => {
                        Err(StoreError::Unavailable("injected timeout after the call was applied".into()))
                    }
                }
            }
        }
    }
}

#[async_trait]
impl Store for FaultyStore {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        self.read(Op::Get, self.inner.get(pk, sk)).await
    }
    async fn batch_get(&self, keys: &[(String, String)]) -> Result<Vec<Item>, StoreError> {
        self.read(Op::BatchGet, self.inner.batch_get(keys)).await
    }
    async fn put(&self, item: Item, cond: Cond) -> Result<(), StoreError> {
        self.write(Op::Put, Write::Put(item, cond)).await
    }
    async fn delete(&self, pk: &str, sk: &str, cond: Cond) -> Result<(), StoreError> {
        self.write(Op::Delete, Write::Delete(pk.into(), sk.into(), cond)).await
    }
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        self.write(Op::Transact, Write::Transact(ops)).await
    }
    async fn query(&self, pk: &str, opts: QueryOpts) -> Result<Vec<Item>, StoreError> {
        self.read(Op::Query, self.inner.query(pk, opts)).await
    }
    async fn query_gsi1(&self, pk: &str, opts: QueryOpts) -> Result<Vec<Item>, StoreError> {
        self.read(Op::QueryGsi1, self.inner.query_gsi1(pk, opts)).await
    }
    async fn add(&self, c: Counter) -> Result<i64, StoreError> {
        match self.strikes(Op::Add) {
            None => self.inner.add(c).await,
            Some(fault) => self.inflict(fault, Write::Add(c)).await.map(|()| 0),
        }
    }
}
