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
