//! Configuration from the environment, read once at start.

use std::time::Duration;

use rust_decimal::Decimal;

use crate::deals::CommissionTable;

/// The documented development secret used when `JWT_SECRET` is unset. Never deploy with it:
/// `template.yaml` always passes a real secret.
pub const DEV_JWT_SECRET: &str = "dev-secret-change-me";

#[derive(Debug, Clone)]
pub struct Config {
    /// HS256 secret for bearer tokens (`JWT_SECRET`).
    pub jwt_secret: String,
    /// DynamoDB table (`TABLE_NAME`); when unset the embedded in-process store is used.
    pub table_name: Option<String>,
    /// Public base URL of this API, used in links (`PUBLIC_URL`).
    pub public_url: String,
    /// Largest accepted request body in bytes (`MAX_BODY_BYTES`, default 6 MiB: the Lambda payload limit).
    pub max_body_bytes: usize,
    /// Seat hold lifetime (`SEAT_TIMEOUT` seconds, default 900).
    pub seat_timeout: Duration,
    /// Deal commission tiers (`COMMISSION_TIERS` = `from:percent[:min],...`) and gateway
    /// surcharges (`GATEWAY_COMMISSION`, `MANDARIN_COMMISSION`, percent).
    pub commission: CommissionTable,
    /// Largest deal attachment, bytes (`ATTACHMENT_MAX_BYTES`, default 256 KiB: attachments
    /// are stored in DynamoDB items, which hold at most 400 KB).
    pub attachment_max_bytes: usize,
    /// Payments, gateways and zoo slots (see `payments::PaymentsConfig`).
    pub payments: crate::payments::PaymentsConfig,
    /// Ticket orders: online payment commission, percent of the tickets (`ONLINE_COMMISSION`, default 3).
    pub online_commission: Decimal,
    /// Ticket orders: courier delivery price, roubles (`COURIER_PRICE`, default 300.00).
    pub courier_price: Decimal,
    /// Ticket orders: the box office address that gets a copy of every order (`ADMIN_EMAIL`).
    pub admin_email: String,
    /// SQS queue of the notification outbox (`QUEUE_URL`); unset means the in-process outbox.
    pub queue_url: Option<String>,
    /// How often the local server runs every scheduled job (`JOB_INTERVAL` seconds, default 30).
    pub job_interval: Duration,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parsed<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match var(name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| format!("{name}={v:?} is not valid")),
    }
}

impl Config {
    pub fn from_env() -> Result<Config, String> {
        let port: u16 = parsed("PORT", 3000)?;
        Ok(Config {
            jwt_secret: var("JWT_SECRET").unwrap_or_else(|| DEV_JWT_SECRET.to_owned()),
            table_name: var("TABLE_NAME"),
            public_url: var("PUBLIC_URL")
                .unwrap_or_else(|| format!("http://127.0.0.1:{port}"))
                .trim_end_matches('/')
                .to_owned(),
            max_body_bytes: parsed("MAX_BODY_BYTES", 6 * 1024 * 1024)?,
            seat_timeout: Duration::from_secs(parsed("SEAT_TIMEOUT", 900)?),
            commission: commission_from_env()?,
            attachment_max_bytes: parsed("ATTACHMENT_MAX_BYTES", 256 * 1024)?,
            payments: crate::payments::PaymentsConfig::from_env()?,
            online_commission: parsed("ONLINE_COMMISSION", Decimal::from(3))?,
            courier_price: parsed("COURIER_PRICE", Decimal::from(300))?,
            admin_email: var("ADMIN_EMAIL").unwrap_or_else(|| "admin@example.com".to_owned()),
            queue_url: var("QUEUE_URL"),
            job_interval: Duration::from_secs(parsed::<u64>("JOB_INTERVAL", 30)?.max(1)),
        })
    }

    /// Defaults for tests and embedded runs, independent of the environment.
    pub fn for_tests() -> Config {
        Config {
            jwt_secret: "test-secret".into(),
            table_name: None,
            public_url: "http://127.0.0.1:3000".into(),
            max_body_bytes: 6 * 1024 * 1024,
            seat_timeout: Duration::from_secs(900),
            commission: CommissionTable::default(),
            attachment_max_bytes: 256 * 1024,
            payments: crate::payments::PaymentsConfig::for_tests(),
            online_commission: Decimal::from(3),
            courier_price: Decimal::from(300),
            admin_email: "admin@example.com".into(),
            queue_url: None,
            job_interval: Duration::from_secs(30),
        }
    }
}

fn commission_from_env() -> Result<CommissionTable, String> {
    let defaults = CommissionTable::default();
    Ok(CommissionTable {
        tiers: match var("COMMISSION_TIERS") {
            Some(spec) => {
                CommissionTable::parse_tiers(&spec).map_err(|e| format!("COMMISSION_TIERS: {e}"))?
            }
            None => defaults.tiers,
        },
        gateway_percent: parsed::<Decimal>("GATEWAY_COMMISSION", defaults.gateway_percent)?,
        mandarin_percent: parsed::<Decimal>("MANDARIN_COMMISSION", defaults.mandarin_percent)?,
    })
}
