//! In-process store with the same conditional semantics as the DynamoDB adapter.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::Value;

use super::{
    Cond, Counter, Item, QueryOpts, Store, StoreError, WriteOp, check_data, validate_ops, validate_query,
};

type Key = (String, String);

#[derive(Default)]
pub struct MemoryStore {
    items: Mutex<BTreeMap<Key, Item>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of stored items (for tests and the local dev endpoints).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, Item>> {
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

fn key(pk: &str, sk: &str) -> Key {
    (pk.to_owned(), sk.to_owned())
}

fn added(current: Option<&Item>, c: &Counter) -> Option<i64> {
    let base = current.map(|i| i.number(&c.field)).unwrap_or(0);
    let next = base.checked_add(c.delta)?;
    if c.min.is_some_and(|m| next < m) || c.max.is_some_and(|m| next > m) {
        return None;
    }
    Some(next)
}

fn apply_add(map: &mut BTreeMap<Key, Item>, pk: &str, sk: &str, field: &str, value: i64) {
    let item = map.entry(key(pk, sk)).or_insert_with(|| Item::new(pk, sk, Default::default()));
    item.data.insert(field.to_owned(), Value::from(value));
}

fn select(items: Vec<Item>, opts: &QueryOpts, sort_key: impl Fn(&Item) -> String) -> Vec<Item> {
    let mut items: Vec<Item> = items
        .into_iter()
        .filter(|i| opts.sk_prefix.as_deref().is_none_or(|p| sort_key(i).starts_with(p)))
        .filter(|i| opts.sk_until.as_deref().is_none_or(|u| sort_key(i).as_str() <= u))
        .collect();
    items.sort_by_key(&sort_key);
    if opts.descending {
        items.reverse();
    }
    if let Some(limit) = opts.limit {
        items.truncate(limit);
    }
    items
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        Ok(self.lock().get(&key(pk, sk)).cloned())
    }

    async fn batch_get(&self, keys: &[(String, String)]) -> Result<Vec<Item>, StoreError> {
        let map = self.lock();
        let unique: std::collections::BTreeSet<&Key> = keys.iter().collect();
        Ok(unique.into_iter().filter_map(|k| map.get(k).cloned()).collect())
    }

    async fn put(&self, item: Item, cond: Cond) -> Result<(), StoreError> {
        check_data(&item.data)?;
        let mut map = self.lock();
        let k = key(&item.pk, &item.sk);
        if !holds(map.get(&k), cond) {
            return Err(StoreError::Conflict { index: None });
        }
        map.insert(k, item);
        Ok(())
    }

    async fn delete(&self, pk: &str, sk: &str, cond: Cond) -> Result<(), StoreError> {
        let mut map = self.lock();
        let k = key(pk, sk);
        if !holds(map.get(&k), cond) {
            return Err(StoreError::Conflict { index: None });
        }
        map.remove(&k);
        Ok(())
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        validate_ops(&ops)?;
        let mut map = self.lock();
        // Check every condition first, then apply: all or nothing under one lock.
        let mut adds = Vec::new();
        for (index, op) in ops.iter().enumerate() {
            let (pk, sk) = op.key();
            let current = map.get(&key(pk, sk));
            let ok = match op {
                WriteOp::Put { item, cond } => {
                    check_data(&item.data)?;
                    holds(current, *cond)
                }
                WriteOp::Delete { cond, .. } | WriteOp::Check { cond, .. } => holds(current, *cond),
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
                WriteOp::Put { item, .. } => {
                    map.insert(key(&item.pk, &item.sk), item);
                }
                WriteOp::Delete { pk, sk, .. } => {
                    map.remove(&key(&pk, &sk));
                }
                WriteOp::Check { .. } => {}
                WriteOp::Add(c) => {
                    let v = adds.next().expect("one value per add op");
                    apply_add(&mut map, &c.pk, &c.sk, &c.field, v);
                }
            }
        }
        Ok(())
    }

    async fn query(&self, pk: &str, opts: QueryOpts) -> Result<Vec<Item>, StoreError> {
        validate_query(&opts)?;
        let map = self.lock();
        let items =
            map.range(key(pk, "")..).take_while(|((p, _), _)| p == pk).map(|(_, i)| i.clone()).collect();
        Ok(select(items, &opts, |i| i.sk.clone()))
    }

    async fn query_gsi1(&self, pk: &str, opts: QueryOpts) -> Result<Vec<Item>, StoreError> {
        validate_query(&opts)?;
        let map = self.lock();
        let items = map.values().filter(|i| i.gsi1.as_ref().is_some_and(|(p, _)| p == pk)).cloned().collect();
        Ok(select(items, &opts, |i| i.gsi1.as_ref().map(|(_, s)| s.clone()).unwrap_or_default()))
    }

    async fn add(&self, c: Counter) -> Result<i64, StoreError> {
        let mut map = self.lock();
        let v = added(map.get(&key(&c.pk, &c.sk)), &c).ok_or(StoreError::Conflict { index: None })?;
        apply_add(&mut map, &c.pk, &c.sk, &c.field, v);
        Ok(v)
    }
}
