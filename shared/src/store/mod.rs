//! The storage port: a small item store with DynamoDB's conditional semantics.
//!
//! Every domain record is one [`Item`] addressed by a partition key and a sort key.
//! Writes carry a [`Cond`]; a failed condition is [`StoreError::Conflict`], never a
//! silent overwrite. Multi-item changes go through [`Store::transact`], which is
//! all-or-nothing. Two adapters implement the port: [`memory::MemoryStore`] (in-process,
//! for `make run` and fast tests) and [`dynamo::DynamoStore`]; both pass the same
//! conformance suite in `tests/tests/store_conformance.rs`.

#[cfg(feature = "aws")]
pub mod dynamo;
pub mod memory;
pub mod own_writes;

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};

/// Attribute names the store owns; domain data must not use them.
pub const RESERVED: [&str; 7] = ["pk", "sk", "_v", "_w", "gsi1pk", "gsi1sk", "ttl"];

/// One stored record.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub pk: String,
    pub sk: String,
    /// Optimistic-lock version, 1 for a new item; bumped by every versioned write.
    pub version: u64,
    /// Secondary index key (partition, sort), if the item is listed in the index.
    pub gsi1: Option<(String, String)>,
    /// Epoch seconds after which the item may be deleted by the backend (DynamoDB TTL).
    /// Reads still return it until then; domain code checks expiry itself.
    pub ttl: Option<i64>,
    /// Which write put the item there (`_w`): set by [`own_writes::OwnWrites`] so that a
    /// conditional write reported as a conflict can tell its own earlier attempt.
    pub stamp: Option<String>,
    /// The domain data: a JSON object (reserved names excluded). Shared, not copied, when an
    /// item is cloned: the embedded store hands out its items without a deep copy per read
    /// (`Arc::make_mut` to change one).
    pub data: Arc<Map<String, Value>>,
}

impl Item {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>, data: Map<String, Value>) -> Self {
        Item {
            pk: pk.into(),
            sk: sk.into(),
            version: 1,
            gsi1: None,
            ttl: None,
            stamp: None,
            data: Arc::new(data),
        }
    }

    /// Builds an item from any serializable value (it must serialize to an object).
    pub fn from_value<T: Serialize>(
        pk: impl Into<String>,
        sk: impl Into<String>,
        value: &T,
    ) -> Result<Self, StoreError> {
        match serde_json::to_value(value).map_err(|e| StoreError::Codec(e.to_string()))? {
            Value::Object(map) => Ok(Item::new(pk, sk, map)),
            _ => Err(StoreError::Codec("item data must be an object".into())),
        }
    }

    pub fn with_gsi1(mut self, pk: impl Into<String>, sk: impl Into<String>) -> Self {
        self.gsi1 = Some((pk.into(), sk.into()));
        self
    }

    pub fn with_ttl(mut self, ttl: Option<i64>) -> Self {
        self.ttl = ttl;
        self
    }

    pub fn with_version(mut self, version: u64) -> Self {
        self.version = version;
        self
    }

    /// Decodes the data into a domain type.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, StoreError> {
        T::deserialize(self.data.as_ref())
            .map_err(|e| StoreError::Codec(format!("{}/{}: {e}", self.pk, self.sk)))
    }

    /// A numeric attribute (counters written by [`Store::add`]).
    pub fn number(&self, field: &str) -> i64 {
        self.data.get(field).and_then(Value::as_i64).unwrap_or(0)
    }
}

/// The condition a write requires of the item currently stored under its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    /// Unconditional.
    Always,
    /// No item under the key (create).
    NotExists,
    /// An item exists (any version).
    Exists,
    /// An item exists with exactly this version.
    Version(u64),
}

/// One write inside a transaction.
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// Writes the item as given (its `version` is stored as is).
    Put {
        item: Item,
        cond: Cond,
    },
    Delete {
        pk: String,
        sk: String,
        cond: Cond,
    },
    /// Only checks a condition.
    Check {
        pk: String,
        sk: String,
        cond: Cond,
    },
    /// A bounded addition (see [`Counter`]).
    Add(Counter),
}

/// Adds `delta` to the numeric attribute `field` of item (`pk`, `sk`), creating it at 0; fails
/// (a conflict) if the result would leave `[min, max]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    pub pk: String,
    pub sk: String,
    pub field: String,
    pub delta: i64,
    pub min: Option<i64>,
    pub max: Option<i64>,
}

impl Counter {
    /// An unbounded addition.
    pub fn new(
        pk: impl Into<String>,
        sk: impl Into<String>,
        field: impl Into<String>,
        delta: i64,
    ) -> Counter {
        Counter { pk: pk.into(), sk: sk.into(), field: field.into(), delta, min: None, max: None }
    }

    /// The same addition, refused when the result would leave `[min, max]`.
    pub fn within(self, min: Option<i64>, max: Option<i64>) -> Counter {
        Counter { min, max, ..self }
    }
}

impl WriteOp {
    pub fn key(&self) -> (&str, &str) {
        match self {
            WriteOp::Put { item, .. } => (&item.pk, &item.sk),
            WriteOp::Delete { pk, sk, .. } | WriteOp::Check { pk, sk, .. } => (pk, sk),
            WriteOp::Add(c) => (&c.pk, &c.sk),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A condition did not hold. In a transaction, `index` names the failing op.
    #[error("condition failed")]
    Conflict { index: Option<usize> },
    #[error("stored data could not be decoded: {0}")]
    Codec(String),
    #[error("invalid request to the store: {0}")]
    Invalid(String),
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }
}

/// Query direction and bounds.
#[derive(Debug, Clone, Default)]
pub struct QueryOpts {
    /// Only sort keys starting with this prefix.
    pub sk_prefix: Option<String>,
    /// Only sort keys `<=` this value (not combinable with `sk_prefix`).
    pub sk_until: Option<String>,
    pub descending: bool,
    pub limit: Option<usize>,
}

impl QueryOpts {
    pub fn prefix(p: impl Into<String>) -> Self {
        QueryOpts { sk_prefix: Some(p.into()), ..Default::default() }
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError>;
    /// Several items by key in one round trip (per 100 keys); missing ones are left out,
    /// the order is unspecified. Duplicate keys are read once.
    async fn batch_get(&self, keys: &[(String, String)]) -> Result<Vec<Item>, StoreError>;
    async fn put(&self, item: Item, cond: Cond) -> Result<(), StoreError>;
    async fn delete(&self, pk: &str, sk: &str, cond: Cond) -> Result<(), StoreError>;
    /// All ops succeed or none is applied. At most 100 ops, one per key.
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError>;
    /// Items of one partition, ordered by sort key.
    async fn query(&self, pk: &str, opts: QueryOpts) -> Result<Vec<Item>, StoreError>;
    /// Items of one secondary-index partition, ordered by the index sort key.
    async fn query_gsi1(&self, pk: &str, opts: QueryOpts) -> Result<Vec<Item>, StoreError>;
    /// Atomically adds `delta` to a numeric attribute (creating item and attribute at 0)
    /// within bounds; returns the new value. Out of bounds is a `Conflict`.
    async fn add(&self, c: Counter) -> Result<i64, StoreError>;
}

/// A store wrapped around another that changes only its writes (put and transact) and
/// passes every other call through: implement this and get [`Store`].
#[async_trait]
pub trait WriteLayer: Send + Sync + 'static {
    fn inner(&self) -> &dyn Store;
    async fn put(&self, item: Item, cond: Cond) -> Result<(), StoreError>;
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError>;
}

#[async_trait]
impl<L: WriteLayer> Store for L {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        self.inner().get(pk, sk).await
    }
    async fn batch_get(&self, keys: &[(String, String)]) -> Result<Vec<Item>, StoreError> {
        self.inner().batch_get(keys).await
    }
    async fn put(&self, item: Item, cond: Cond) -> Result<(), StoreError> {
        WriteLayer::put(self, item, cond).await
    }
    async fn delete(&self, pk: &str, sk: &str, cond: Cond) -> Result<(), StoreError> {
        self.inner().delete(pk, sk, cond).await
    }
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        WriteLayer::transact(self, ops).await
    }
    async fn query(&self, pk: &str, opts: QueryOpts) -> Result<Vec<Item>, StoreError> {
        self.inner().query(pk, opts).await
    }
    async fn query_gsi1(&self, pk: &str, opts: QueryOpts) -> Result<Vec<Item>, StoreError> {
        self.inner().query_gsi1(pk, opts).await
    }
    async fn add(&self, c: Counter) -> Result<i64, StoreError> {
        self.inner().add(c).await
    }
}

/// Checks query options the same way for every adapter.
pub(crate) fn validate_query(opts: &QueryOpts) -> Result<(), StoreError> {
    if opts.sk_prefix.is_some() && opts.sk_until.is_some() {
        return Err(StoreError::Invalid("sk_prefix and sk_until do not combine".into()));
    }
    Ok(())
}

/// Checks a transaction's shape the same way for every adapter.
pub(crate) fn validate_ops(ops: &[WriteOp]) -> Result<(), StoreError> {
    if ops.is_empty() || ops.len() > 100 {
        return Err(StoreError::Invalid(format!("a transaction holds 1 to 100 ops, not {}", ops.len())));
    }
    let mut keys = std::collections::HashSet::new();
    for op in ops {
        if !keys.insert(op.key()) {
            return Err(StoreError::Invalid(format!("two ops on one key {:?} in a transaction", op.key())));
        }
    }
    Ok(())
}

pub(crate) fn check_data(data: &Map<String, Value>) -> Result<(), StoreError> {
    match RESERVED.iter().find(|k| data.contains_key(**k)) {
        Some(k) => Err(StoreError::Invalid(format!("data uses reserved name {k}"))),
        None => Ok(()),
    }
}
