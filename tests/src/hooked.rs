//! Store wrappers: a [`Hook`] runs around every call of an inner store. Counting round trips,
//! injecting faults and adding scheduling jitter in tests are all hooks on one delegating
//! adapter, instead of one hand-written delegate each.

use std::ops::Deref;
use std::sync::Arc;

use async_trait::async_trait;

use shared::store::{Cond, Counter, Item, QueryOpts, Store, StoreError, WriteOp};

/// Which store call is being made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Get,
    BatchGet,
    Put,
    Delete,
    Transact,
    Query,
    QueryGsi1,
    Add,
}

impl Op {
    pub fn is_read(self) -> bool {
        matches!(self, Op::Get | Op::BatchGet | Op::Query | Op::QueryGsi1)
    }
}

#[async_trait]
pub trait Hook: Send + Sync + 'static {
    /// Runs before the call; an error is returned instead of making it.
    async fn before(&self, _op: Op) -> Result<(), StoreError> {
        Ok(())
    }
    /// Runs after the call; an error replaces the call's result (the call was made: its
    /// outcome is unknown to the caller, like a request that timed out after being applied).
    async fn after(&self, _op: Op) -> Result<(), StoreError> {
        Ok(())
    }
    /// Told when the call's condition failed (a lost race).
    fn conflict(&self, _op: Op) {}
    /// Told when the call starts (before [`Hook::before`]); what it answers is handed to
    /// [`Hook::finished`] when the same call ends.
    fn started(&self, _op: Op) -> u64 {
        0
    }
    /// Told when the call has ended (after [`Hook::after`]), with what `started` answered.
    fn finished(&self, _op: Op, _started: u64) {}
}

/// A store whose every call goes through `hook`. Derefs to the hook, so its controls
/// (`counts`, `fail_call`, ...) are at hand.
pub struct Hooked<H> {
    inner: Arc<dyn Store>,
    hook: H,
}

impl<H: Hook> Hooked<H> {
    pub fn new(inner: Arc<dyn Store>, hook: H) -> Self {
        Hooked { inner, hook }
    }
}

impl<H> Deref for Hooked<H> {
    type Target = H;
    fn deref(&self) -> &H {
        &self.hook
    }
}

impl<H: Hook> Hooked<H> {
    async fn around<T, F>(&self, op: Op, call: F) -> Result<T, StoreError>
    where
        F: std::future::Future<Output = Result<T, StoreError>> + Send,
    {
        let ticket = self.hook.started(op);
        let result = self.call(op, call).await;
        self.hook.finished(op, ticket);
        result
    }

    async fn call<T, F>(&self, op: Op, call: F) -> Result<T, StoreError>
    where
        F: std::future::Future<Output = Result<T, StoreError>> + Send,
    {
        self.hook.before(op).await?;
        let result = call.await;
        if let Err(StoreError::Conflict { .. }) = &result {
            self.hook.conflict(op);
        }
        self.hook.after(op).await?;
        result
    }
}

#[async_trait]
impl<H: Hook> Store for Hooked<H> {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        self.around(Op::Get, self.inner.get(pk, sk)).await
    }
    async fn batch_get(&self, keys: &[(String, String)]) -> Result<Vec<Item>, StoreError> {
        self.around(Op::BatchGet, self.inner.batch_get(keys)).await
    }
    async fn put(&self, item: Item, cond: Cond) -> Result<(), StoreError> {
        self.around(Op::Put, self.inner.put(item, cond)).await
    }
    async fn delete(&self, pk: &str, sk: &str, cond: Cond) -> Result<(), StoreError> {
        self.around(Op::Delete, self.inner.delete(pk, sk, cond)).await
    }
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        self.around(Op::Transact, self.inner.transact(ops)).await
    }
    async fn query(&self, pk: &str, opts: QueryOpts) -> Result<Vec<Item>, StoreError> {
        self.around(Op::Query, self.inner.query(pk, opts)).await
    }
    async fn query_gsi1(&self, pk: &str, opts: QueryOpts) -> Result<Vec<Item>, StoreError> {
        self.around(Op::QueryGsi1, self.inner.query_gsi1(pk, opts)).await
    }
    async fn add(&self, c: Counter) -> Result<i64, StoreError> {
        self.around(Op::Add, self.inner.add(c)).await
    }
}
