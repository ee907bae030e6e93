//! DynamoDB adapter: one table, `pk`/`sk` keys, a `gsi1` index, `ttl` attribute.
//!
//! Every conditional write maps `ConditionalCheckFailed` to [`StoreError::Conflict`];
//! transactions use `TransactWriteItems` and report the failing op's index.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::create_table::CreateTableError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, KeysAndAttributes, Projection, ProjectionType, Put, ReturnValue,
    ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification, TransactWriteItem,
    Update,
};
use serde_json::{Map, Value};

use super::{
    Cond, Counter, Item, QueryOpts, Store, StoreError, WriteOp, check_data, validate_ops, validate_query,
};

pub const GSI1: &str = "gsi1";

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

type Attrs = HashMap<String, AttributeValue>;

fn unavailable<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let text = DisplayErrorContext(&err).to_string();
    tracing::error!(error = %text, "dynamodb call failed");
    StoreError::Unavailable(text)
}

/// A single-item write's answer: a failed condition is a `Conflict`, anything else that
/// went wrong leaves the store unavailable.
fn conditional<T, E, R>(res: Result<T, SdkError<E, R>>) -> Result<T, StoreError>
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    match res {
        Ok(out) => Ok(out),
        Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("ConditionalCheckFailedException") => {
            Err(StoreError::Conflict { index: None })
        }
        Err(e) => Err(unavailable(e)),
    }
}

/// A condition expression with its names and values, on any request builder.
trait Conditioned: Sized {
    fn conditioned(self, e: Expr) -> Self;
}

macro_rules! conditioned {
    ($($builder:ty),+) => {$(
        impl Conditioned for $builder {
            fn conditioned(self, e: Expr) -> Self {
                self.set_condition_expression(e.text)
                    .set_expression_attribute_names(e.names)
                    .set_expression_attribute_values(e.values)
            }
        }
    )+};
}

conditioned!(
    aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder,
    aws_sdk_dynamodb::operation::delete_item::builders::DeleteItemFluentBuilder,
    aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
    aws_sdk_dynamodb::types::builders::PutBuilder,
    aws_sdk_dynamodb::types::builders::DeleteBuilder,
    aws_sdk_dynamodb::types::builders::UpdateBuilder
);

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// DynamoDB's limits on a key's attributes, in UTF-8 bytes: a partition key of 1 to 2,048, a
/// sort key of 1 to 1,024.
const PK_MAX: usize = 2048;
const SK_MAX: usize = 1024;

/// Whether an item can have this key. No item has a key past DynamoDB's limits, so a read of
/// one finds nothing without asking: DynamoDB would refuse the request (a `ValidationException`,
/// an outage to the caller), and such a key comes from what a client sent (an id in a path).
fn storable(pk: &str, sk: &str) -> bool {
    (1..=PK_MAX).contains(&pk.len()) && (1..=SK_MAX).contains(&sk.len())
}

fn key_attrs(pk: &str, sk: &str) -> Attrs {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

/// A condition expression with its names and values.
#[derive(Default)]
struct Expr {
    text: Option<String>,
    names: Option<HashMap<String, String>>,
    values: Option<Attrs>,
}

fn cond_expr(cond: Cond) -> Expr {
    match cond {
        Cond::Always => Expr::default(),
        Cond::NotExists => Expr { text: Some("attribute_not_exists(pk)".into()), ..Default::default() },
        Cond::Exists => Expr { text: Some("attribute_exists(pk)".into()), ..Default::default() },
        Cond::Version(v) => Expr {
            text: Some("#ver = :ver".into()),
            names: Some(HashMap::from([("#ver".into(), "_v".into())])),
            values: Some(HashMap::from([(":ver".into(), n(v))])),
        },
    }
}

fn to_attrs(item: &Item) -> Result<Attrs, StoreError> {
    check_data(&item.data)?;
    let mut attrs: Attrs =
        serde_dynamo::to_item(item.data.map()?).map_err(|e| StoreError::Codec(e.to_string()))?;
    attrs.insert("pk".into(), s(&item.pk));
    attrs.insert("sk".into(), s(&item.sk));
    attrs.insert("_v".into(), n(item.version));
    if let Some((p, k)) = &item.gsi1 {
        attrs.insert("gsi1pk".into(), s(p));
        attrs.insert("gsi1sk".into(), s(k));
    }
    if let Some(t) = item.ttl {
        attrs.insert("ttl".into(), n(t));
    }
    if let Some(w) = &item.stamp {
        attrs.insert("_w".into(), s(w));
    }
    Ok(attrs)
}

fn take_s(attrs: &mut Attrs, name: &str) -> Option<String> {
    match attrs.remove(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

fn take_n(attrs: &mut Attrs, name: &str) -> Option<i64> {
    match attrs.remove(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

/// An item from its DynamoDB attributes (a read, or a stream record's image).
pub fn item_from_attrs(mut attrs: Attrs) -> Result<Item, StoreError> {
    let pk = take_s(&mut attrs, "pk").ok_or_else(|| StoreError::Codec("item without pk".into()))?;
    let sk = take_s(&mut attrs, "sk").ok_or_else(|| StoreError::Codec("item without sk".into()))?;
    let version = take_n(&mut attrs, "_v").unwrap_or(0) as u64;
    let gsi1 = match (take_s(&mut attrs, "gsi1pk"), take_s(&mut attrs, "gsi1sk")) {
        (Some(p), Some(k)) => Some((p, k)),
        _ => None,
    };
    let ttl = take_n(&mut attrs, "ttl");
    let stamp = take_s(&mut attrs, "_w");
    let data: Map<String, Value> =
        serde_dynamo::from_item(attrs).map_err(|e| StoreError::Codec(format!("{pk}/{sk}: {e}")))?;
    Ok(Item { pk, sk, version, gsi1, ttl, stamp, data: data.into() })
}

/// The update expression of an `Add` op: new = old + delta within bounds.
fn add_expr(c: &Counter) -> (String, Expr) {
    let Counter { field, delta, min, max, .. } = c;
    let (delta, min, max) = (*delta, *min, *max);
    let names = HashMap::from([("#f".to_owned(), field.clone())]);
    let mut values = HashMap::from([(":d".to_owned(), n(delta)), (":zero".to_owned(), n(0))]);
    // Bounds on the stored value before the add.
    let mut bounds = Vec::new();
    if let Some(max) = max {
        values.insert(":hi".into(), n(max - delta));
        bounds.push("#f <= :hi");
    }
    if let Some(min) = min {
        values.insert(":lo".into(), n(min - delta));
        bounds.push("#f >= :lo");
    }
    let fresh_ok = min.is_none_or(|m| delta >= m) && max.is_none_or(|m| delta <= m);
    let text = match (bounds.is_empty(), fresh_ok) {
        (true, _) => None,
        (false, true) => Some(format!("attribute_not_exists(#f) OR ({})", bounds.join(" AND "))),
        (false, false) => Some(format!("attribute_exists(#f) AND {}", bounds.join(" AND "))),
    };
    let (names, values) = (Some(names), Some(values));
    ("SET #f = if_not_exists(#f, :zero) + :d".to_owned(), Expr { text, names, values })
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore { client, table: table.into() }
    }

    /// A client from the environment (`AWS_ENDPOINT_URL`, `AWS_REGION`, credentials).
    pub async fn from_env(table: impl Into<String>) -> Self {
        let conf = crate::aws::load();
        DynamoStore::new(Client::new(&conf), table)
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table (with its index, TTL and stream) if it does not exist; used by tests and
    /// local runs against moto. Deployed stacks create it from `template.yaml`.
    pub async fn ensure_table(&self) -> Result<(), StoreError> {
        let exists = self.client.describe_table().table_name(&self.table).send().await;
        if exists.is_ok() {
            return Ok(());
        }
        match self.create_table().await {
            Ok(()) => self.expire_by_ttl().await,
            Err(e) if e.code() == Some("ResourceInUseException") => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// The table with its key, its index and a stream of new items.
    async fn create_table(&self) -> Result<(), SdkError<CreateTableError, HttpResponse>> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("name and type set")
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .expect("name and type set")
        };
        let gsi = GlobalSecondaryIndex::builder()
            .index_name(GSI1)
            .key_schema(key("gsi1pk", KeyType::Hash))
            .key_schema(key("gsi1sk", KeyType::Range))
            .projection(Projection::builder().projection_type(ProjectionType::All).build())
            .build()
            .expect("name and keys set");
        let stream = StreamSpecification::builder()
            .stream_enabled(true)
            .stream_view_type(StreamViewType::NewImage)
            .build()
            .expect("enabled set");
        self.client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk"))
            .attribute_definitions(attr("sk"))
            .attribute_definitions(attr("gsi1pk"))
            .attribute_definitions(attr("gsi1sk"))
            .key_schema(key("pk", KeyType::Hash))
            .key_schema(key("sk", KeyType::Range))
            .global_secondary_indexes(gsi)
            // New items on the stream: the outbox relay reads them (see `crate::outbox`).
            .stream_specification(stream)
            .send()
            .await
            .map(drop)
    }

    async fn expire_by_ttl(&self) -> Result<(), StoreError> {
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name("ttl")
                    .build()
                    .map_err(|e| StoreError::Invalid(e.to_string()))?,
            )
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    fn transact_item(&self, op: WriteOp) -> Result<TransactWriteItem, StoreError> {
        let invalid = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Invalid(e.to_string());
        let b = TransactWriteItem::builder();
        Ok(match op {
            WriteOp::Put { item, cond } => {
                let e = cond_expr(cond);
                b.put(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(to_attrs(&item)?))
                        .conditioned(e)
                        .build()
                        .map_err(invalid)?,
                )
                .build()
            }
            WriteOp::Delete { pk, sk, cond } => {
                let e = cond_expr(cond);
                b.delete(
                    Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(key_attrs(&pk, &sk)))
                        .conditioned(e)
                        .build()
                        .map_err(invalid)?,
                )
                .build()
            }
            WriteOp::Check { pk, sk, cond } => b.condition_check(self.tx_check(&pk, &sk, cond)?).build(),
            WriteOp::Add(c) => {
                let (update, e) = add_expr(&c);
                b.update(
                    Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(key_attrs(&c.pk, &c.sk)))
                        .update_expression(update)
                        .conditioned(e)
                        .build()
                        .map_err(invalid)?,
                )
                .build()
            }
        })
    }

    fn tx_check(&self, pk: &str, sk: &str, cond: Cond) -> Result<ConditionCheck, StoreError> {
        let e = cond_expr(cond);
        let text = e.text.ok_or_else(|| StoreError::Invalid("a check needs a condition".into()))?;
        ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key_attrs(pk, sk)))
            .condition_expression(text)
            .set_expression_attribute_names(e.names)
            .set_expression_attribute_values(e.values)
            .build()
            .map_err(|e| StoreError::Invalid(e.to_string()))
    }

    async fn query_inner(
        &self,
        index: Option<&str>,
        pk: &str,
        opts: QueryOpts,
    ) -> Result<Vec<Item>, StoreError> {
        validate_query(&opts)?;
        if !(1..=PK_MAX).contains(&pk.len()) || opts.sk_prefix.as_ref().is_some_and(|p| p.len() > SK_MAX) {
            return Ok(Vec::new());
        }
        let (pk_name, sk_name) = match index {
            Some(_) => ("gsi1pk", "gsi1sk"),
            None => ("pk", "sk"),
        };
        let mut values = HashMap::from([(":pk".to_owned(), s(pk))]);
        let mut text = format!("{pk_name} = :pk");
        if let Some(prefix) = &opts.sk_prefix {
            values.insert(":prefix".into(), s(prefix));
            text.push_str(&format!(" AND begins_with({sk_name}, :prefix)"));
        }
        if let Some(until) = &opts.sk_until {
            values.insert(":until".into(), s(until));
            text.push_str(&format!(" AND {sk_name} <= :until"));
        }
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index.map(str::to_owned))
                .key_condition_expression(&text)
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(!opts.descending)
                .set_limit(opts.limit.map(|l| (l - out.len()).min(1000) as i32))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            for attrs in page.items.unwrap_or_default() {
                out.push(item_from_attrs(attrs)?);
            }
            start = page.last_evaluated_key;
            let full = opts.limit.is_some_and(|l| out.len() >= l);
            if start.is_none() || full {
                return Ok(out);
            }
        }
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        if !storable(pk, sk) {
            return Ok(None);
        }
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        out.item.map(item_from_attrs).transpose()
    }

    async fn batch_get(&self, keys: &[(String, String)]) -> Result<Vec<Item>, StoreError> {
        let unique: std::collections::BTreeSet<&(String, String)> =
            keys.iter().filter(|(pk, sk)| storable(pk, sk)).collect();
        let unique: Vec<_> = unique.into_iter().collect();
        let mut out = Vec::with_capacity(unique.len());
        for chunk in unique.chunks(100) {
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.iter().map(|(p, k)| key_attrs(p, k)).collect()))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::Invalid(e.to_string()))?,
            );
            // Unprocessed keys (throttling) are asked for again, with a short backoff.
            let mut attempt = 0u64;
            while let Some(request) = pending.take() {
                let res = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(unavailable)?;
                if let Some(mut found) = res.responses
                    && let Some(items) = found.remove(&self.table)
                {
                    for attrs in items {
                        out.push(item_from_attrs(attrs)?);
                    }
                }
                pending = res.unprocessed_keys.and_then(|mut u| u.remove(&self.table));
                if pending.is_some() {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(20 * attempt.min(10))).await;
                }
            }
        }
        Ok(out)
    }

    async fn put(&self, item: Item, cond: Cond) -> Result<(), StoreError> {
        let e = cond_expr(cond);
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_attrs(&item)?))
            .conditioned(e)
            .send()
            .await;
        conditional(res).map(drop)
    }

    async fn delete(&self, pk: &str, sk: &str, cond: Cond) -> Result<(), StoreError> {
        let e = cond_expr(cond);
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(pk, sk)))
            .conditioned(e)
            .send()
            .await;
        conditional(res).map(drop)
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        validate_ops(&ops)?;
        let items = ops.into_iter().map(|op| self.transact_item(op)).collect::<Result<Vec<_>, _>>()?;
        // `TransactionConflict` means another transaction held one of the items at that
        // moment: neither is applied, so retrying a few times is safe. One client request
        // token for every attempt: an attempt the SDK repeats after a lost answer is not
        // applied twice (DynamoDB answers it as the success it was, for ten minutes).
        let token = uuid::Uuid::new_v4().to_string();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let res = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .client_request_token(&token)
                .send()
                .await;
            let err = match res {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            let Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c)) =
                err.as_service_error()
            else {
                return Err(unavailable(err));
            };
            let reasons = c.cancellation_reasons();
            if let Some(index) = reasons.iter().position(|r| r.code() == Some("ConditionalCheckFailed")) {
                return Err(StoreError::Conflict { index: Some(index) });
            }
            let contended = reasons.iter().any(|r| r.code() == Some("TransactionConflict"));
            if contended && attempt < 4 {
                tokio::time::sleep(std::time::Duration::from_millis(10 * attempt)).await;
                continue;
            }
            if contended {
                return Err(StoreError::Conflict { index: None });
            }
            return Err(unavailable(err));
        }
    }

    async fn query(&self, pk: &str, opts: QueryOpts) -> Result<Vec<Item>, StoreError> {
        self.query_inner(None, pk, opts).await
    }

    async fn query_gsi1(&self, pk: &str, opts: QueryOpts) -> Result<Vec<Item>, StoreError> {
        self.query_inner(Some(GSI1), pk, opts).await
    }

    async fn add(&self, c: Counter) -> Result<i64, StoreError> {
        let (update, e) = add_expr(&c);
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(&c.pk, &c.sk)))
            .update_expression(update)
            .conditioned(e)
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        conditional(res)?
            .attributes
            .and_then(|mut a| take_n(&mut a, &c.field))
            .ok_or_else(|| StoreError::Codec(format!("counter {}/{}.{} not returned", c.pk, c.sk, c.field)))
    }
}
