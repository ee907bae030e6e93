//! In-process store with the same conditional semantics as the DynamoDB adapter.
//!
//! Items are kept by partition (a hash map: a store of a few hundred thousand partitions is
//! not walked key by key, with a cache miss at each, on every read), then by sort key, so that
//! a read looks both up by reference (no key is allocated) and a query walks one partition. A
//! read hands out the item with its data shared (see `Data`): no deep copy under the lock.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::Value;

use super::{
    Cond, Counter, Item, QueryOpts, Store, StoreError, WriteOp, check_data, validate_ops, validate_query,
};

/// One partition's items, ordered by sort key. Most partitions (a payment, a deal, a hold)
/// hold one to three items: a vector of them, searched by halves, is one allocation where a
/// B-tree's first node had room for eleven entries and a copy of each sort key (a zoo session
/// create made three partitions of some 400 bytes each, and a box for each item). An event's
/// partition holds every seat: thousands, still a search by halves to read, and a move of the
/// later items to write, once per seat when the event is loaded.
#[derive(Default)]
struct Partition {
    items: Vec<Item>,
}

impl Partition {
    fn find(&self, sk: &str) -> Result<usize, usize> {
        self.items.binary_search_by(|i| i.sk.as_str().cmp(sk))
    }

    fn get(&self, sk: &str) -> Option<&Item> {
        self.find(sk).ok().map(|at| &self.items[at])
    }

    fn get_or_insert_with(&mut self, sk: &str, make: impl FnOnce() -> Item) -> &mut Item {
        let at = match self.find(sk) {
            Ok(at) => at,
            Err(at) => {
                self.items.insert(at, make());
                at
            }
        };
        &mut self.items[at]
    }

    fn insert(&mut self, item: Item) {
        match self.find(&item.sk) {
            Ok(at) => self.items[at] = item,
            Err(at) => self.items.insert(at, item),
        }
    }

    fn remove(&mut self, sk: &str) {
        if let Ok(at) = self.find(sk) {
            self.items.remove(at);
        }
    }

    fn len(&self) -> usize {
        self.items.len()
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn values(&self) -> impl Iterator<Item = &Item> {
        self.items.iter()
    }
}

/// How many hash maps the partitions are spread over.
const SHARDS: usize = 64;

/// Partition key -> partition, in [`SHARDS`] hash maps chosen by the key's hash. A hash map
/// grows by moving every entry into a table twice the size, under the store's lock: one map of
/// a few hundred thousand partitions held every request for tens of milliseconds at each
/// doubling (a zoo load's p99 went from 3-10 ms to 13-110 ms); a sixty-fourth of them moves in
/// well under one.
///
/// Keys are hashed with foldhash (seeded per process), not the standard library's SipHash: a
/// zoo session create spent 2% of its time hashing keys, mostly while a map grew. SipHash's
/// guard against keys chosen to collide is for a server facing the internet; this store serves
/// one developer's machine and the tests (deployed functions use DynamoDB).
struct Items {
    shards: Vec<HashMap<String, Partition, foldhash::fast::RandomState>>,
}

impl Default for Items {
    fn default() -> Self {
        // `HashMap::new` allocates nothing until its first entry.
        Items { shards: (0..SHARDS).map(|_| HashMap::default()).collect() }
    }
}

impl Items {
    /// The shard of a key: a hash with a seed of its own (the maps' are random), so that the
    /// keys of one shard are not alike in the bits its map chooses buckets by.
    fn shard(pk: &str) -> usize {
        use std::hash::BuildHasher;
        let hash = foldhash::fast::FixedState::with_seed(0x005e_ed5a_1d0f_5a4d).hash_one(pk);
        (hash % SHARDS as u64) as usize
    }

    fn get(&self, pk: &str) -> Option<&Partition> {
        self.shards[Self::shard(pk)].get(pk)
    }

    fn get_mut(&mut self, pk: &str) -> Option<&mut Partition> {
        self.shards[Self::shard(pk)].get_mut(pk)
    }

    fn insert(&mut self, pk: String, partition: Partition) {
        self.shards[Self::shard(&pk)].insert(pk, partition);
    }

    fn entry(&mut self, pk: String) -> std::collections::hash_map::Entry<'_, String, Partition> {
        self.shards[Self::shard(&pk)].entry(pk)
    }

    fn remove(&mut self, pk: &str) {
        self.shards[Self::shard(pk)].remove(pk);
    }

    fn values(&self) -> impl Iterator<Item = &Partition> {
        self.shards.iter().flat_map(HashMap::values)
    }
}

#[derive(Default)]
pub struct MemoryStore {
    items: Mutex<Items>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of stored items (for tests and the local dev endpoints).
    pub fn len(&self) -> usize {
        self.lock().values().map(Partition::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Items> {
        // A panic while holding the lock cannot leave a half-written map (every write is
        // a single insert/remove after all checks), so a poisoned lock is safe to reuse.
        self.items.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn holds(current: Option<&Item>, cond: Cond) -> bool {
    match cond {
        Cond::Always => true,
        Cond::NotExists => current.is_none(),
        Cond::Exists => current.is_some(),
        Cond::Version(v) => current.is_some_and(|i| i.version == v),
    }
}

fn lookup<'a>(map: &'a Items, pk: &str, sk: &str) -> Option<&'a Item> {
    map.get(pk)?.get(sk)
}

/// The items of a batch read: each key once, missing ones left out.
fn found<'a>(map: &'a Items, keys: &'a [(String, String)]) -> impl Iterator<Item = &'a Item> {
    let unique: std::collections::BTreeSet<&(String, String)> = keys.iter().collect();
    unique.into_iter().filter_map(|(pk, sk)| lookup(map, pk, sk))
}

fn insert(map: &mut Items, item: Item) {
    // The partition's key is allocated only when the partition is new.
    match map.get_mut(item.pk.as_str()) {
        Some(partition) => partition.insert(item),
        None => {
            let pk = item.pk.clone();
            map.insert(pk, Partition { items: vec![item] });
        }
    }
}

fn remove(map: &mut Items, pk: &str, sk: &str) {
    if let Some(partition) = map.get_mut(pk) {
        partition.remove(sk);
        if partition.is_empty() {
            map.remove(pk);
        }
    }
}

fn added(current: Option<&Item>, c: &Counter) -> Option<i64> {
    let base = current.map(|i| i.number(&c.field)).unwrap_or(0);
    let next = base.checked_add(c.delta)?;
    if c.min.is_some_and(|m| next < m) || c.max.is_some_and(|m| next > m) {
        return None;
    }
    Some(next)
}

fn apply_add(map: &mut Items, c: &Counter, value: i64) {
    let partition = map.entry(c.pk.clone()).or_default();
    let item = partition.get_or_insert_with(&c.sk, || Item::new(&c.pk, &c.sk, Default::default()));
    item.data.make_mut().insert(c.field.clone(), Value::from(value));
}

fn select<'a>(
    items: impl Iterator<Item = &'a Item>,
    opts: &QueryOpts,
    sort_key: impl Fn(&Item) -> &str,
) -> Vec<Item> {
    let mut items: Vec<&Item> = items
        .filter(|i| opts.sk_prefix.as_deref().is_none_or(|p| sort_key(i).starts_with(p)))
        .filter(|i| opts.sk_until.as_deref().is_none_or(|u| sort_key(i) <= u))
        .collect();
    // Equal sort keys (an index's) in the order of the items' keys: the same answer for the
    // same items, whatever order the partitions are kept in.
    items.sort_by(|a, b| sort_key(a).cmp(sort_key(b)).then_with(|| (&a.pk, &a.sk).cmp(&(&b.pk, &b.sk))));
    if opts.descending {
        items.reverse();
    }
    if let Some(limit) = opts.limit {
        items.truncate(limit);
    }
    items.into_iter().cloned().collect()
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        Ok(lookup(&self.lock(), pk, sk).cloned())
    }

    /// A write is applied under the lock and answered from there.
    fn answers_every_write(&self) -> bool {
        true
    }

    async fn get_data(&self, pk: &str, sk: &str) -> Result<Option<(u64, crate::store::Data)>, StoreError> {
        Ok(lookup(&self.lock(), pk, sk).map(|item| (item.version, item.data.clone())))
    }

    async fn batch_get(&self, keys: &[(String, String)]) -> Result<Vec<Item>, StoreError> {
        Ok(found(&self.lock(), keys).cloned().collect())
    }

    async fn batch_get_data(&self, keys: &[(String, String)]) -> Result<Vec<crate::store::Data>, StoreError> {
        Ok(found(&self.lock(), keys).map(|item| item.data.clone()).collect())
    }

    async fn get_each(
        &self,
        keys: &[(&str, &str)],
    ) -> Result<Vec<Option<(u64, crate::store::Data)>>, StoreError> {
        let map = self.lock();
        Ok(keys
            .iter()
            .map(|&(pk, sk)| lookup(&map, pk, sk).map(|item| (item.version, item.data.clone())))
            .collect())
    }

    async fn put(&self, item: Item, cond: Cond) -> Result<(), StoreError> {
        check_data(&item.data)?;
        let mut map = self.lock();
        if !holds(lookup(&map, &item.pk, &item.sk), cond) {
            return Err(StoreError::Conflict { index: None });
        }
        insert(&mut map, item);
        Ok(())
    }

    async fn delete(&self, pk: &str, sk: &str, cond: Cond) -> Result<(), StoreError> {
        let mut map = self.lock();
        if !holds(lookup(&map, pk, sk), cond) {
            return Err(StoreError::Conflict { index: None });
        }
        remove(&mut map, pk, sk);
        Ok(())
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        validate_ops(&ops)?;
        for op in &ops {
            if let WriteOp::Put { item, .. } = op {
                check_data(&item.data)?;
            }
        }
        let mut map = self.lock();
        // Check every condition first, then apply: all or nothing under one lock.
        let mut adds = Vec::new();
        for (index, op) in ops.iter().enumerate() {
            let (pk, sk) = op.key();
            let current = lookup(&map, pk, sk);
            let ok = match op {
                WriteOp::Put { cond, .. } | WriteOp::Delete { cond, .. } | WriteOp::Check { cond, .. } => {
                    holds(current, *cond)
                }
                WriteOp::Add(c) => match added(current, c) {
                    Some(v) => {
                        adds.push(v);
                        true
                    }
                    None => false,
                },
            };
            if !ok {
                return Err(StoreError::Conflict { index: Some(index) });
            }
        }
        let mut adds = adds.into_iter();
        for op in ops {
            match op {
                WriteOp::Put { item, .. } => insert(&mut map, item),
                WriteOp::Delete { pk, sk, .. } => remove(&mut map, &pk, &sk),
                WriteOp::Check { .. } => {}
                WriteOp::Add(c) => {
                    let v = adds.next().expect("one value per add op");
                    apply_add(&mut map, &c, v);
                }
            }
        }
        Ok(())
    }

    async fn query(&self, pk: &str, opts: QueryOpts) -> Result<Vec<Item>, StoreError> {
        validate_query(&opts)?;
        let map = self.lock();
        let Some(partition) = map.get(pk) else { return Ok(Vec::new()) };
        Ok(select(partition.values(), &opts, |i| i.sk.as_str()))
    }

    async fn query_gsi1(&self, pk: &str, opts: QueryOpts) -> Result<Vec<Item>, StoreError> {
        validate_query(&opts)?;
        let map = self.lock();
        let items = map
            .values()
            .flat_map(Partition::values)
            .filter(|i| i.gsi1.as_ref().is_some_and(|(p, _)| p == pk));
        Ok(select(items, &opts, |i| i.gsi1.as_ref().map_or("", |(_, s)| s.as_str())))
    }

    async fn add(&self, c: Counter) -> Result<i64, StoreError> {
        let mut map = self.lock();
        let v = added(lookup(&map, &c.pk, &c.sk), &c).ok_or(StoreError::Conflict { index: None })?;
        apply_add(&mut map, &c, v);
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Items of equal index sort keys come in the order of their keys, whatever order the
    /// hash map keeps the partitions in.
    #[tokio::test]
    async fn equal_index_keys_in_key_order() {
        let store = MemoryStore::new();
        let mut keys: Vec<String> = (0..64).map(|n| format!("p#{n:03}")).collect();
        for pk in keys.iter().rev() {
            let item = Item::new(pk.as_str(), "x", Default::default()).with_gsi1("open", "same");
            store.put(item, Cond::NotExists).await.unwrap();
        }
        let got: Vec<String> =
            store.query_gsi1("open", QueryOpts::default()).await.unwrap().into_iter().map(|i| i.pk).collect();
        keys.sort();
        assert_eq!(got, keys);
    }
}
