//! The domain crate: models, state machines, money, ports and their adapters.
//!
//! Lambda binaries in `functions/` and the local server only wire an [`App`] to the
//! routers; everything that decides anything lives here.

pub mod auth;
#[cfg(feature = "aws")]
pub mod aws;
pub mod caps;
pub mod config;
pub mod de;
pub mod deals;
pub mod error;
pub mod freeform;
pub mod http;
pub mod idempotency;
pub mod jobs;
pub mod json;
pub mod mail;
pub mod metrics;
pub mod money;
pub mod outbox;
pub mod payments;
#[cfg(feature = "aws")]
pub mod queue_sqs;
pub mod redirects;
pub mod retry;
pub mod scans;
pub mod secrets;
pub mod store;
pub mod telemetry;
pub mod ticket_keys;
pub mod tickets;
pub mod time;
pub mod users;
pub mod webhooks;
pub mod zoo;

/// The allocator every binary that serves the API declares (`#[global_allocator]` in its
/// `main.rs`): glibc's malloc and free were about a sixth of the server's time under load; the
/// README's Performance section has what the switch, with the other hot-path changes, bought.
/// The notifier keeps the system's (its `main.rs` says why).
pub use mimalloc::MiMalloc as Allocator;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};

pub use config::Config;
pub use error::{ApiError, ApiResult};
use outbox::{MemoryQueue, Queue, Relaying};
use payments::Owners;
use store::Store;
#[cfg(feature = "aws")]
use store::dynamo::DynamoStore;
use store::memory::MemoryStore;

/// Wall clock with an adjustable offset, so tests can move time forward (expiry,
/// escalation) without sleeping.
#[derive(Clone, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> DateTime<Utc> {
        // Without an offset (every deployed process) no date arithmetic: a seat hold asks
        // three times.
        match self.offset_ms.load(Ordering::Relaxed) {
            0 => Utc::now(),
            ms => Utc::now() + chrono::Duration::milliseconds(ms),
        }
    }

    pub fn advance(&self, by: chrono::Duration) {
        self.offset_ms.fetch_add(by.num_milliseconds(), Ordering::Relaxed);
    }
}

/// What a scheduled pass over items did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Items examined.
    pub examined: usize,
    /// Items this pass changed.
    pub changed: usize,
}

/// Everything a handler needs ([`Parts`]), behind one `Arc`: the app is cloned for every
/// request (axum's state), so a clone is one reference count, not one per part. Changing a part
/// (`app.store = ...`) changes this app only: the parts are copied first if shared.
#[derive(Clone)]
pub struct App(Arc<Parts>);

impl std::ops::Deref for App {
    type Target = Parts;
    fn deref(&self) -> &Parts {
        &self.0
    }
}

impl std::ops::DerefMut for App {
    fn deref_mut(&mut self) -> &mut Parts {
        Arc::make_mut(&mut self.0)
    }
}

/// The store, the outbox, the configuration, the clock, and the payment owners.
#[derive(Clone)]
pub struct Parts {
    /// The store; locally (`OUTBOX_RELAY=inline`) it relays outbox items as they are written.
    pub store: Arc<dyn Store>,
    /// Where the outbox relay puts notifications for the notifier (SQS in AWS).
    pub queue: Arc<dyn Queue>,
    /// The in-process queue when that is the one in use (local runs, tests).
    pub local_queue: Option<Arc<MemoryQueue>>,
    pub config: Arc<Config>,
    pub clock: Clock,
    /// What payments pay for: every owner of a payment, by kind (the composition root of
    /// the payment-owner port).
    pub owners: Arc<Owners>,
    /// The AWS SDK configuration when something deployed is named (loaded once, shared by every
    /// client the process makes; behind an `Arc`, as the app is cloned for every request).
    #[cfg(feature = "aws")]
    pub sdk: Option<Arc<aws::SdkConfig>>,
}

/// The payment owners of this backend.
fn owners() -> Owners {
    Owners::default()
        .with(Arc::new(deals::payment_owner::DealPayments))
        .with(Arc::new(tickets::payment_owner::OrderPayments))
        .with(Arc::new(zoo::payment_owner::SessionPayments))
}

impl App {
    /// With the in-process queue.
    pub fn new(store: Arc<dyn Store>, config: Config) -> App {
        let local = Arc::new(MemoryQueue::default());
        App::with_queue(store, config, local.clone(), Some(local))
    }

    fn with_queue(
        store: Arc<dyn Store>,
        config: Config,
        queue: Arc<dyn Queue>,
        local_queue: Option<Arc<MemoryQueue>>,
    ) -> App {
        // A conditional write retried after a lost answer is told from a lost race (a store
        // that answers every write, the embedded one, loses none).
        let store: Arc<dyn Store> = match store.answers_every_write() {
            true => store,
            false => Arc::new(store::own_writes::OwnWrites::new(store)),
        };
        let store: Arc<dyn Store> = match config.outbox_relay {
            config::Relay::Inline => Arc::new(Relaying::new(store, queue.clone())),
            config::Relay::Stream => store,
        };
        App(Arc::new(Parts {
            store,
            queue,
            local_queue,
            config: Arc::new(config),
            clock: Clock::default(),
            owners: Arc::new(owners()),
            #[cfg(feature = "aws")]
            sdk: None,
        }))
    }

    /// The embedded in-process store with the given configuration.
    pub fn in_memory(config: Config) -> App {
        App::new(Arc::new(MemoryStore::new()), config)
    }

    /// From the environment: DynamoDB when `TABLE_NAME` is set, else the embedded store;
    /// the SQS queue when `QUEUE_URL` is set, else the in-process one; the secrets from
    /// Parameter Store when `SECRETS_PREFIX` is set (see [`secrets`]).
    pub async fn from_env() -> Result<App, String> {
        App::from_vars(config::Vars::process()).await
    }

    /// What a Lambda's `main` does first: JSON logs, then [`App::from_env`]; a configuration
    /// it cannot run with is logged and refused.
    pub async fn start() -> Result<App, String> {
        telemetry::init();
        App::from_env().await.inspect_err(|e| tracing::error!(error = %e, "refusing to start: configuration"))
    }

    /// As [`App::from_env`], from the given settings. The AWS configuration is loaded once, and
    /// only when something deployed is named.
    #[cfg(feature = "aws")]
    pub async fn from_vars(vars: config::Vars) -> Result<App, String> {
        let sdk = match AWS_VARS.iter().any(|n| vars.get(n).is_some()) {
            true => Some(aws::load()),
            false => None,
        };
        let vars = secrets::overlay(vars, sdk.as_ref()).await?;
        let create_table = vars.flag("CREATE_TABLE", false)?;
        let config = Config::from_vars(&vars)?;
        let store: Arc<dyn Store> = match (&config.table_name, &sdk) {
            (Some(table), Some(sdk)) => {
                let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), table);
                if create_table {
                    store.ensure_table().await.map_err(|e| e.to_string())?;
                }
                Arc::new(store)
            }
            _ => Arc::new(MemoryStore::new()),
        };
        let mut app = match (config.queue_url.clone(), &sdk) {
            (Some(url), Some(sdk)) => {
                let queue = Arc::new(queue_sqs::SqsQueue::new(aws_sdk_sqs::Client::new(sdk), url));
                App::with_queue(store, config, queue, None)
            }
            _ => App::new(store, config),
        };
        app.sdk = sdk.map(Arc::new);
        Ok(app)
    }

    /// As [`App::from_env`], from the given settings, in a build without the AWS adapters (the
    /// local server's default): the embedded store and queue; naming an AWS resource is refused
    /// rather than silently run on the embedded store.
    #[cfg(not(feature = "aws"))]
    pub async fn from_vars(vars: config::Vars) -> Result<App, String> {
        // The configuration first: a deployed-looking one with a weak secret is refused for that.
        let config = Config::from_vars(&vars)?;
        if let Some(name) = AWS_VARS.iter().find(|n| vars.get(n).is_some()) {
            return Err(format!(
                "{name} names an AWS resource, but this build has no AWS adapters (build it with `--features aws`)"
            ));
        }
        Ok(App::in_memory(config))
    }
}

/// The settings that name something deployed on AWS.
const AWS_VARS: [&str; 3] = ["TABLE_NAME", "QUEUE_URL", "SECRETS_PREFIX"];
