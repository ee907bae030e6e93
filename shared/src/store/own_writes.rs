//! Conditional writes that can tell their own earlier attempt.
//!
//! A conditional write whose answer was lost (a timeout after DynamoDB applied it) is retried
//! by the AWS SDK; the retry then fails its own condition (the version moved, the item now
//! exists) and comes back as a conflict, although the write went through. Reported as is, the
//! caller would answer 409 for a change it made, or retry it and do it twice.
//!
//! [`OwnWrites`] stamps every put (and every put of a transaction) with a fresh id, stored as
//! the item's `_w`. When such a write is reported as a conflict it reads the item back: if the
//! stamp is its own, the write happened and the answer is success. A transaction is
//! all-or-nothing, so one of its puts tells for all of them; a transaction without a put
//! (counter adds, deletes) relies on DynamoDB's client request token instead, which makes
//! the SDK's retry of an applied transaction a success.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Cond, Item, Store, StoreError, WriteLayer, WriteOp};

pub struct OwnWrites {
    inner: Arc<dyn Store>,
}

impl OwnWrites {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        OwnWrites { inner }
    }

    /// Whether the item at the key carries `stamp`: the write that was reported as a
    /// conflict was applied.
    async fn applied(&self, (pk, sk): (&str, &str), stamp: &str) -> bool {
        let mine = matches!(self.inner.get(pk, sk).await, Ok(Some(i)) if i.stamp.as_deref() == Some(stamp));
        if mine {
            tracing::info!(%pk, %sk, "a write reported as a conflict had been applied: its own retry");
        }
        mine
    }
}

fn stamp() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[async_trait]
impl WriteLayer for OwnWrites {
    fn inner(&self) -> &dyn Store {
        self.inner.as_ref()
    }

    async fn put(&self, mut item: Item, cond: Cond) -> Result<(), StoreError> {
        let stamp = stamp();
        item.stamp = Some(stamp.clone());
        let (pk, sk) = (item.pk.clone(), item.sk.clone());
        match self.inner.put(item, cond).await {
            Err(StoreError::Conflict { .. }) if self.applied((&pk, &sk), &stamp).await => Ok(()),
            other => other,
        }
    }

    async fn transact(&self, mut ops: Vec<WriteOp>) -> Result<(), StoreError> {
        let stamp = stamp();
        let mut witness = None;
        for op in &mut ops {
            if let WriteOp::Put { item, .. } = op {
                item.stamp = Some(stamp.clone());
                witness.get_or_insert_with(|| (item.pk.clone(), item.sk.clone()));
            }
        }
        let result = self.inner.transact(ops).await;
        if let (Err(StoreError::Conflict { .. }), Some((pk, sk))) = (&result, &witness)
            && self.applied((pk, sk), &stamp).await
        {
            return Ok(());
        }
        result
    }
}
