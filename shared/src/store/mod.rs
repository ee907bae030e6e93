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
    /// The domain data: a JSON object (reserved names excluded), or the domain value it is
    /// made from (see [`Data`]). Shared, not copied, when an item is cloned: the embedded store
    /// hands out its items without a deep copy per read ([`Data::make_mut`] to change one).
    pub data: Data,
}

/// An item's domain data: a JSON object, or the domain value it was made from.
///
/// A record written with [`Item::typed`] keeps the value itself (shared, not copied, when the
/// item is cloned), and [`Item::decode`] into the same type hands back a clone of it: the
/// embedded store then never builds a JSON map for the records of its hot paths (a zoo session
/// create built two maps of some forty keys each and kept them, 13 KiB per session). Whatever
/// else reads the data (a field of a pointer, the DynamoDB codec, a decode into another type)
/// sees it as the JSON object it serializes to, made once per item value on first use.
///
/// That a typed value reads back the same after the JSON round trip DynamoDB puts it through,
/// and uses no reserved name, is checked each time one is made in a debug build (every test
/// run): a type that did not round-trip would read back differently from DynamoDB. A field the
/// JSON leaves out (`#[serde(skip)]`: only the `version` of a payment, a refund and a zoo
/// session, which their loaders set from the item) is the loader's to set either way.
#[derive(Clone, Default)]
pub struct Data {
    typed: Option<Arc<dyn Record>>,
    map: std::sync::OnceLock<Arc<Map<String, Value>>>,
}

/// A domain value kept as an item's data (see [`Data`]).
pub trait Record: Send + Sync + 'static {
    fn as_any(&self) -> &dyn std::any::Any;
    fn shared(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync>;
    fn to_map(&self) -> Result<Map<String, Value>, StoreError>;
}

impl<T: Serialize + Send + Sync + 'static> Record for T {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn shared(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync> {
        self
    }
    fn to_map(&self) -> Result<Map<String, Value>, StoreError> {
        object(self)
    }
}

/// A value as the JSON object an item's data is (it must serialize to one).
fn object<T: Serialize + ?Sized>(value: &T) -> Result<Map<String, Value>, StoreError> {
    match serde_json::to_value(value).map_err(|e| StoreError::Codec(e.to_string()))? {
        Value::Object(map) => Ok(map),
        _ => Err(StoreError::Codec("item data must be an object".into())),
    }
}

impl Data {
    /// The data as a JSON object (made from the typed value on first use).
    pub fn map(&self) -> Result<&Map<String, Value>, StoreError> {
        if let Some(map) = self.map.get() {
            return Ok(map);
        }
        let made = match &self.typed {
            Some(record) => record.to_map()?,
            None => Map::new(),
        };
        Ok(self.map.get_or_init(|| Arc::new(made)))
    }

    /// The typed value, when the data holds one of type `T`.
    pub fn typed<T: 'static>(&self) -> Option<&T> {
        self.typed.as_ref()?.as_any().downcast_ref()
    }

    /// The JSON object to change in place (the typed value, if any, is let go; one that cannot
    /// be written as an object, which [`Item::typed`] refuses in every debug build, becomes an
    /// empty object).
    pub fn make_mut(&mut self) -> &mut Map<String, Value> {
        if self.map().is_err() {
            let _ = self.map.set(Arc::default());
        }
        self.typed = None;
        Arc::make_mut(self.map.get_mut().expect("set just above"))
    }

    /// The data as a domain type (see [`Item::decode`]); `pk` and `sk` name the item in an error.
    pub fn decode<T: DeserializeOwned + Clone + 'static>(&self, pk: &str, sk: &str) -> Result<T, StoreError> {
        if let Some(value) = self.typed::<T>() {
            return Ok(value.clone());
        }
        T::deserialize(self.map()?).map_err(|e| StoreError::Codec(format!("{pk}/{sk}: {e}")))
    }

    /// The data as a domain type shared with the item, not copied, when the item holds one
    /// (else decoded as [`Data::decode`] does): a read only looked at, such as an event's.
    pub fn decode_shared<T>(&self, pk: &str, sk: &str) -> Result<Arc<T>, StoreError>
    where
        T: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        if let Some(value) = self.typed.clone().and_then(|record| record.shared().downcast::<T>().ok()) {
            return Ok(value);
        }
        self.decode(pk, sk).map(Arc::new)
    }

    fn holds_record(&self) -> bool {
        self.typed.is_some()
    }
}

impl From<Map<String, Value>> for Data {
    fn from(map: Map<String, Value>) -> Self {
        Data { typed: None, map: Arc::new(map).into() }
    }
}

/// The JSON object (an empty one for a typed value that cannot be written as one, which
/// [`Item::typed`] refuses in every debug build).
impl std::ops::Deref for Data {
    type Target = Map<String, Value>;
    fn deref(&self) -> &Map<String, Value> {
        static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
        self.map().unwrap_or(&EMPTY)
    }
}

impl PartialEq for Data {
    fn eq(&self, other: &Data) -> bool {
        self.map().ok() == other.map().ok()
    }
}

impl std::fmt::Debug for Data {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.map() {
            Ok(map) => map.fmt(f),
            Err(e) => write!(f, "<{e}>"),
        }
    }
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
            data: data.into(),
        }
    }

    /// An item holding a domain value itself (see [`Data`]): the records of the hot paths.
    pub fn typed<T>(pk: impl Into<String>, sk: impl Into<String>, value: T) -> Result<Self, StoreError>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        Item::typed_shared(pk, sk, Arc::new(value))
    }

    /// [`Item::typed`] of a value the caller keeps a share of (no copy is made for the item).
    pub fn typed_shared<T>(
        pk: impl Into<String>,
        sk: impl Into<String>,
        value: Arc<T>,
    ) -> Result<Self, StoreError>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let (pk, sk) = (pk.into(), sk.into());
        if cfg!(debug_assertions) {
            let map = value.to_map()?;
            check_map(&map)?;
            let back = T::deserialize(&map).map_err(|e| StoreError::Codec(format!("{pk}/{sk}: {e}")))?;
            assert_eq!(back.to_map()?, map, "{pk}/{sk} reads back differently after the JSON round trip");
        }
        Ok(Item {
            pk,
            sk,
            version: 1,
            gsi1: None,
            ttl: None,
            stamp: None,
            data: Data { typed: Some(value), map: Default::default() },
        })
    }

    /// Builds an item from any serializable value (it must serialize to an object).
    pub fn from_value<T: Serialize>(
        pk: impl Into<String>,
        sk: impl Into<String>,
        value: &T,
    ) -> Result<Self, StoreError> {
        Ok(Item::new(pk, sk, object(value)?))
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

    /// Decodes the data into a domain type: a clone of the value itself when the item holds
    /// one of that type (see [`Data`]).
    pub fn decode<T: DeserializeOwned + Clone + 'static>(&self) -> Result<T, StoreError> {
        self.data.decode(&self.pk, &self.sk)
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
    /// An item's version and data, for a read that needs neither its key nor its index entry
    /// (the embedded store then copies no strings).
    async fn get_data(&self, pk: &str, sk: &str) -> Result<Option<(u64, Data)>, StoreError> {
        Ok(self.get(pk, sk).await?.map(|item| (item.version, item.data)))
    }
    /// Several items by key in one round trip (per 100 keys); missing ones are left out,
    /// the order is unspecified. Duplicate keys are read once.
    async fn batch_get(&self, keys: &[(String, String)]) -> Result<Vec<Item>, StoreError>;
    /// The data alone of the items [`Store::batch_get`] reads (the same round trips), for a
    /// read that needs neither their keys nor their versions (the embedded store then copies
    /// no strings).
    async fn batch_get_data(&self, keys: &[(String, String)]) -> Result<Vec<Data>, StoreError> {
        Ok(self.batch_get(keys).await?.into_iter().map(|item| item.data).collect())
    }
    /// Each key's item version and data, in the order asked (`None` for an item not found),
    /// read as [`Store::batch_get`] reads them: one round trip for the reads of one step that
    /// each name their item (the embedded store then takes its lock once, and copies no key).
    async fn get_each(&self, keys: &[(&str, &str)]) -> Result<Vec<Option<(u64, Data)>>, StoreError> {
        let owned: Vec<(String, String)> = keys.iter().map(|&(p, s)| (p.to_owned(), s.to_owned())).collect();
        let items = self.batch_get(&owned).await?;
        Ok(keys
            .iter()
            .map(|&(p, s)| items.iter().find(|i| i.pk == p && i.sk == s).map(|i| (i.version, i.data.clone())))
            .collect())
    }
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
    /// Whether every write this store applies is answered as applied: no network between the
    /// caller and the data can lose the answer. Such a store needs no
    /// [`own_writes::OwnWrites`] to tell a retried write of its own from a lost race.
    fn answers_every_write(&self) -> bool {
        false
    }
}

/// A store wrapped around another that changes only its writes (put and transact) and
/// passes every other call through: implement this and get [`Store`].
#[async_trait]
pub trait WriteLayer: Send + Sync + 'static {
    fn inner(&self) -> &dyn Store;
    async fn put(&self, item: Item, cond: Cond) -> Result<(), StoreError>;
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError>;
}

/// A call's future as [`Store`]'s methods answer it (`async_trait`'s boxed future).
type Answer<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A layer hands every read (and a delete) to the store under it as that store's own future:
/// one boxed future per call however many layers there are, not one more per layer (a seat hold
/// reads four items through two layers).
#[async_trait]
impl<L: WriteLayer> Store for L {
    fn get<'s, 'p, 'k, 'a>(&'s self, pk: &'p str, sk: &'k str) -> Answer<'a, Option<Item>>
    where
        's: 'a,
        'p: 'a,
        'k: 'a,
    {
        self.inner().get(pk, sk)
    }
    fn get_data<'s, 'p, 'k, 'a>(&'s self, pk: &'p str, sk: &'k str) -> Answer<'a, Option<(u64, Data)>>
    where
        's: 'a,
        'p: 'a,
        'k: 'a,
    {
        self.inner().get_data(pk, sk)
    }
    fn batch_get<'s, 'k, 'a>(&'s self, keys: &'k [(String, String)]) -> Answer<'a, Vec<Item>>
    where
        's: 'a,
        'k: 'a,
    {
        self.inner().batch_get(keys)
    }
    fn batch_get_data<'s, 'k, 'a>(&'s self, keys: &'k [(String, String)]) -> Answer<'a, Vec<Data>>
    where
        's: 'a,
        'k: 'a,
    {
        self.inner().batch_get_data(keys)
    }
    fn get_each<'s, 'k, 'p, 'q, 'a>(
        &'s self,
        keys: &'k [(&'p str, &'q str)],
    ) -> Answer<'a, Vec<Option<(u64, Data)>>>
    where
        's: 'a,
        'k: 'a,
        'p: 'a,
        'q: 'a,
    {
        self.inner().get_each(keys)
    }
    async fn put(&self, item: Item, cond: Cond) -> Result<(), StoreError> {
        WriteLayer::put(self, item, cond).await
    }
    fn delete<'s, 'p, 'k, 'a>(&'s self, pk: &'p str, sk: &'k str, cond: Cond) -> Answer<'a, ()>
    where
        's: 'a,
        'p: 'a,
        'k: 'a,
    {
        self.inner().delete(pk, sk, cond)
    }
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        WriteLayer::transact(self, ops).await
    }
    fn query<'s, 'k, 'a>(&'s self, pk: &'k str, opts: QueryOpts) -> Answer<'a, Vec<Item>>
    where
        's: 'a,
        'k: 'a,
    {
        self.inner().query(pk, opts)
    }
    fn query_gsi1<'s, 'k, 'a>(&'s self, pk: &'k str, opts: QueryOpts) -> Answer<'a, Vec<Item>>
    where
        's: 'a,
        'k: 'a,
    {
        self.inner().query_gsi1(pk, opts)
    }
    fn add<'s, 'a>(&'s self, c: Counter) -> Answer<'a, i64>
    where
        's: 'a,
    {
        self.inner().add(c)
    }
    fn answers_every_write(&self) -> bool {
        self.inner().answers_every_write()
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
    let twice =
        |key: (&str, &str)| StoreError::Invalid(format!("two ops on one key {key:?} in a transaction"));
    // A transaction of a few ops (most) is checked pair by pair, without a set to allocate.
    if ops.len() <= 16 {
        for (i, op) in ops.iter().enumerate() {
            if ops[..i].iter().any(|earlier| earlier.key() == op.key()) {
                return Err(twice(op.key()));
            }
        }
        return Ok(());
    }
    let mut keys = std::collections::HashSet::new();
    for op in ops {
        if !keys.insert(op.key()) {
            return Err(twice(op.key()));
        }
    }
    Ok(())
}

/// Refuses data that uses a reserved name. A typed value's names are its type's, checked each
/// time one is made in a debug build ([`Item::typed`]).
pub(crate) fn check_data(data: &Data) -> Result<(), StoreError> {
    if data.holds_record() { Ok(()) } else { check_map(data.map()?) }
}

fn check_map(data: &Map<String, Value>) -> Result<(), StoreError> {
    match RESERVED.iter().find(|k| data.contains_key(**k)) {
        Some(k) => Err(StoreError::Invalid(format!("data uses reserved name {k}"))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// Two ops on one key are refused in a short transaction (checked pair by pair) and in a
    /// long one (checked with a set), wherever the second op is; distinct keys pass.
    #[test]
    fn a_transaction_names_each_key_once() {
        let put =
            |pk: &str, sk: &str| WriteOp::Put { item: Item::new(pk, sk, Map::new()), cond: Cond::Always };
        let del = |pk: &str, sk: &str| WriteOp::Delete { pk: pk.into(), sk: sk.into(), cond: Cond::Always };
        for n in [2, 5, 16, 17, 40] {
            let distinct: Vec<WriteOp> = (0..n).map(|i| put(&format!("p{i}"), "s")).collect();
            assert!(validate_ops(&distinct).is_ok(), "{n} distinct");
            for at in 1..n {
                let mut ops: Vec<WriteOp> = (0..n).map(|i| put(&format!("p{i}"), "s")).collect();
                ops[at] = del(&format!("p{}", at - 1), "s");
                assert!(matches!(validate_ops(&ops), Err(StoreError::Invalid(_))), "{n} ops, twice at {at}");
            }
            // The same partition with another sort key is another key.
            let mut ops: Vec<WriteOp> = (0..n).map(|i| put(&format!("p{i}"), "s")).collect();
            ops[n - 1] = put("p0", "t");
            assert!(validate_ops(&ops).is_ok(), "{n}: p0/t is not p0/s");
        }
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Seat {
        row: u32,
        label: String,
        #[serde(skip)]
        version: u64,
    }

    #[derive(Debug, Clone, PartialEq, Deserialize)]
    struct RowOnly {
        row: u32,
    }

    fn seat() -> Seat {
        Seat { row: 7, label: "A-7".into(), version: 0 }
    }

    /// A typed item reads back as itself, and as the JSON object it serializes to for every
    /// other reader: a field, another type, a counter's change, and equality with the same
    /// data kept as a map.
    #[test]
    fn a_shared_read_is_the_value_itself_not_a_copy() {
        let item = Item::typed("p", "s", seat()).unwrap();
        let (a, b) = (
            item.data.decode_shared::<Seat>("p", "s").unwrap(),
            item.data.decode_shared::<Seat>("p", "s").unwrap(),
        );
        assert!(Arc::ptr_eq(&a, &b), "both reads share the item's value");
        assert_eq!(*a, seat());
        // Another type, or data kept as JSON, is decoded.
        assert_eq!(*item.data.decode_shared::<RowOnly>("p", "s").unwrap(), RowOnly { row: 7 });
        let as_map = Item::from_value("p", "s", &seat()).unwrap();
        let (c, d) = (
            as_map.data.decode_shared::<Seat>("p", "s").unwrap(),
            as_map.data.decode_shared::<Seat>("p", "s").unwrap(),
        );
        assert_eq!((&*c, &*d), (&seat(), &seat()));
        assert!(!Arc::ptr_eq(&c, &d));
    }

    #[test]
    fn typed_data_reads_as_its_value_and_as_its_json() {
        let item = Item::typed("p", "s", seat()).unwrap();
        assert!(item.data.typed::<Seat>().is_some());
        assert_eq!(item.decode::<Seat>().unwrap(), seat());
        assert_eq!(item.decode::<RowOnly>().unwrap(), RowOnly { row: 7 });
        assert_eq!(item.data.get("label"), Some(&Value::from("A-7")));
        assert_eq!(item.number("row"), 7);
        let as_map = Item::from_value("p", "s", &seat()).unwrap();
        assert!(as_map.data.typed::<Seat>().is_none());
        assert_eq!(item, as_map);
        assert_eq!(check_data(&item.data), Ok(()));

        let mut changed = item.clone();
        changed.data.make_mut().insert("row".into(), Value::from(8));
        assert!(changed.data.typed::<Seat>().is_none());
        assert_eq!(changed.decode::<Seat>().unwrap().row, 8);
        assert_eq!(item.decode::<Seat>().unwrap().row, 7, "the clone's change stays its own");
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    struct Lossy {
        kept: u32,
        #[serde(skip_deserializing)]
        lost: u32,
    }

    /// A type that would read back from DynamoDB differently from what the embedded store
    /// hands back is refused where it is made (in a debug build: every test run).
    #[test]
    #[should_panic(expected = "reads back differently after the JSON round trip")]
    fn a_type_that_does_not_round_trip_is_refused() {
        let _ = Item::typed("p", "s", Lossy { kept: 1, lost: 2 });
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    struct UsesReserved {
        ttl: i64,
    }

    #[test]
    fn a_typed_value_with_a_reserved_name_is_refused() {
        let e = Item::typed("p", "s", UsesReserved { ttl: 1 }).unwrap_err();
        assert_eq!(e, StoreError::Invalid("data uses reserved name ttl".into()));
    }
}
