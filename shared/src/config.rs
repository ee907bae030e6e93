//! Configuration from the environment, read once at start.

use std::time::Duration;

use rust_decimal::Decimal;

use crate::deals::CommissionTable;
use crate::payments::gateways::{mandarin, robokassa, sngb};
use crate::payments::{DEV_SANDBOX_SECRET, GatewayKind, PaymentsConfig};

/// The documented development secret used when `JWT_SECRET` is unset. Never deploy with it:
/// `template.yaml` always passes a real secret.
pub const DEV_JWT_SECRET: &str = "dev-secret-change-me";

#[derive(Debug, Clone)]
pub struct Config {
    /// How bearer tokens are checked (`JWT_SECRET`, `JWT_SECRET_PREVIOUS`, `JWT_ISSUER`,
    /// `JWT_AUDIENCE`, `JWT_MAX_AGE`).
    pub jwt: crate::auth::JwtRules,
    /// The key that signs ticket QR payloads (`TICKET_SIGNING_KEY`), never the JWT secret.
    pub ticket_key: String,
    /// Hosts a buyer's return and cancel URLs may point to (`RETURN_URL_HOSTS`, comma
    /// separated); the API's own host always may. `None`: any host (local runs only).
    pub return_url_hosts: Option<Vec<String>>,
    /// The local server's port (`PORT`, default 3000).
    pub port: u16,
    /// The local server only (`make bench`): every store round trip waits this long first
    /// (`STORE_DELAY_MS`), as DynamoDB's would take.
    pub store_delay: Option<std::time::Duration>,
    /// The notifier's sender address (`MAIL_FROM`, default `noreply@example.com`), a verified
    /// SES identity.
    pub mail_from: String,
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
    /// Payments and gateways (see `payments::PaymentsConfig`).
    pub payments: crate::payments::PaymentsConfig,
    /// Zoo sessions: the tariff, the visit times, slot capacity.
    pub zoo: ZooConfig,
    /// Ticket orders: online payment commission, percent of the tickets (`ONLINE_COMMISSION`, default 3).
    pub online_commission: Decimal,
    /// Ticket orders: courier delivery price, roubles (`COURIER_PRICE`, default 300.00).
    pub courier_price: Decimal,
    /// Ticket orders: how long a cash order waits for its payment at the box office or to the
    /// courier (`CASH_PAYMENT_HOURS`, default 72; never past the event's start).
    pub cash_payment_window: Duration,
    /// Browser origins allowed to call the API from another origin (`CORS_ORIGINS`, comma
    /// separated, `*` for any; default none). On AWS the HTTP API answers CORS itself (the
    /// `CorsOrigins` stack parameter); this is the same rule for the local server.
    pub cors_origins: Vec<String>,
    /// No hoarding: caps per caller on unpaid holds, orders and zoo sessions (`CAP_*`).
    pub caps: crate::caps::CapsConfig,
    /// Ticket orders: the box office address that gets a copy of every order (`ADMIN_EMAIL`).
    pub admin_email: String,
    /// The escrow operator's manager: amount mismatches and refunds that need a person
    /// (`MANAGER_EMAIL`, default `ADMIN_EMAIL`).
    pub manager_email: String,
    /// SQS queue the notifier reads (`QUEUE_URL`); unset means the in-process queue.
    pub queue_url: Option<String>,
    /// Who moves outbox items to the queue (`OUTBOX_RELAY`): `stream` (the relay function on
    /// the table's DynamoDB Stream; the default with `QUEUE_URL`) or `inline` (right after
    /// each write, in process; the default otherwise).
    pub outbox_relay: Relay,
    /// How often the local server runs every scheduled job (`JOB_INTERVAL` seconds, default 30).
    pub job_interval: Duration,
    /// Ticket orders: where the buyer's browser goes after a completed online payment
    /// (`TICKETS_SUCCESS_URL`; `{order_id}` is replaced by the order id). Default: the
    /// order's own step-3 view, `{PUBLIC_URL}/api/v1/ticket_orders/{order_id}`.
    pub tickets_success_url: Option<String>,
    /// Ticket orders: where the buyer's browser goes after a failed or unfinished online
    /// payment (`TICKETS_ERROR_URL`, `{order_id}` replaced). Default: the order's view too.
    pub tickets_error_url: Option<String>,
}

/// Where settings come from: the process environment, or given pairs (tests). Blank values
/// count as unset.
type Lookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

pub struct Vars(Lookup);

impl Vars {
    pub fn process() -> Vars {
        Vars(Box::new(|name| std::env::var(name).ok()))
    }

    pub fn from_pairs(pairs: &[(&str, &str)]) -> Vars {
        let map: std::collections::HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Vars(Box::new(move |name| map.get(name).cloned()))
    }

    /// These values first (secrets read at start), then the rest.
    pub fn overlay(self, first: std::collections::HashMap<String, String>) -> Vars {
        Vars(Box::new(move |name| first.get(name).cloned().or_else(|| (self.0)(name))))
    }

    pub fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    pub fn parsed<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| format!("{name}={v:?} is not valid")),
        }
    }

    pub fn flag(&self, name: &str, default: bool) -> Result<bool, String> {
        match self.get(name).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if matches!(v.as_str(), "1" | "true" | "yes" | "on") => Ok(true),
            Some(v) if matches!(v.as_str(), "0" | "false" | "no" | "off") => Ok(false),
            Some(v) => Err(format!("{name}={v:?} is not true or false")),
        }
    }

    /// A base URL without its trailing slash.
    fn url(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or_else(|| default.to_owned()).trim_end_matches('/').to_owned()
    }
}

/// Who relays the outbox (see [`crate::outbox`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relay {
    Inline,
    Stream,
}

/// The documented development key of ticket QR payloads, refused by a deployed process.
pub const DEV_TICKET_KEY: &str = "dev-ticket-key-change-me";

/// Whether this process needs the secret variable `var`: a deployed function reading its
/// secrets from Parameter Store (`SECRETS_PREFIX`) needs those its `SECRETS` list names;
/// without Parameter Store a process needs every one.
fn needs(v: &Vars, var: &str) -> bool {
    match v.get("SECRETS_PREFIX") {
        Some(_) => {
            v.get("SECRETS").unwrap_or_default().split(',').any(|s| crate::secrets::var_of(s.trim()) == var)
        }
        None => true,
    }
}

/// A secret: the development default locally; deployed, a strong value if this process needs
/// it (else none: nothing can be verified or signed with it).
fn secret(v: &Vars, deployed: bool, var: &str, dev: &str) -> Result<String, String> {
    match v.get(var) {
        _ if !deployed => Ok(v.get(var).unwrap_or_else(|| dev.to_owned())),
        Some(s) if !weak_secret(&s, dev) => Ok(s),
        _ if !needs(v, var) => Ok(String::new()),
        _ => Err(match v.get("SECRETS_PREFIX") {
            Some(prefix) => format!(
                "{var}: the parameter {}/{} must exist and hold at least 32 characters (not the development default)",
                prefix.trim_end_matches('/'),
                var.to_ascii_lowercase().replace('_', "-")
            ),
            None => format!(
                "{var} must be set to at least 32 characters (not the development default) when TABLE_NAME is set"
            ),
        }),
    }
}

/// `a.example, b.example` → lower-case host names.
fn hosts(list: &str) -> Vec<String> {
    list.split(',').map(|h| h.trim().to_ascii_lowercase()).filter(|h| !h.is_empty()).collect()
}

/// Whether logs are human-readable text (`LOG_FORMAT=text`) rather than JSON lines; read
/// before anything else, to set up logging (the local server's build only).
#[cfg(feature = "local")]
pub fn log_text() -> bool {
    Vars::process().get("LOG_FORMAT").is_some_and(|v| v.trim() == "text")
}

/// A secret a deployed process must not run on: missing, blank, short, or the development one.
pub fn weak_secret(secret: &str, dev_default: &str) -> bool {
    let s = secret.trim();
    s.len() < 32 || s == dev_default
}

impl Config {
    /// Reads the environment. A deployed process (`TABLE_NAME` set) fails closed: a missing,
    /// blank, short or development secret is an error, and the process does not start.
    pub fn from_env() -> Result<Config, String> {
        Config::from_vars(&Vars::process())
    }

    pub fn from_vars(v: &Vars) -> Result<Config, String> {
        let port: u16 = v.parsed("PORT", 3000)?;
        let table_name = v.get("TABLE_NAME");
        let deployed = table_name.is_some();
        let jwt_secret = secret(v, deployed, "JWT_SECRET", DEV_JWT_SECRET)?;
        let ticket_key = secret(v, deployed, "TICKET_SIGNING_KEY", DEV_TICKET_KEY)?;
        let admin_email = v.get("ADMIN_EMAIL").unwrap_or_else(|| "admin@example.com".to_owned());
        Ok(Config {
            jwt: crate::auth::JwtRules {
                secret: jwt_secret,
                previous: previous_jwt_secret(v, deployed)?,
                issuer: v.get("JWT_ISSUER"),
                audience: v.get("JWT_AUDIENCE"),
                max_age: Duration::from_secs(v.parsed("JWT_MAX_AGE", 24 * 3600)?),
            },
            ticket_key,
            return_url_hosts: match v.get("RETURN_URL_HOSTS") {
                Some(list) => Some(hosts(&list)),
                // A deployed stack sends buyers back to its own host only until hosts are named.
                None if deployed => Some(vec![]),
                None => None,
            },
            port,
            store_delay: Some(v.parsed::<u64>("STORE_DELAY_MS", 0)?)
                .filter(|ms| *ms > 0)
                .map(std::time::Duration::from_millis),
            mail_from: v.get("MAIL_FROM").unwrap_or_else(|| "noreply@example.com".to_owned()),
            table_name,
            public_url: v
                .get("PUBLIC_URL")
                .unwrap_or_else(|| format!("http://127.0.0.1:{port}"))
                .trim_end_matches('/')
                .to_owned(),
            max_body_bytes: v.parsed("MAX_BODY_BYTES", 6 * 1024 * 1024)?,
            seat_timeout: Duration::from_secs(v.parsed("SEAT_TIMEOUT", 900)?),
            commission: commission(v)?,
            attachment_max_bytes: v.parsed("ATTACHMENT_MAX_BYTES", 256 * 1024)?,
            payments: payments(v, deployed)?,
            zoo: ZooConfig::from_vars(v)?,
            online_commission: v.parsed("ONLINE_COMMISSION", Decimal::from(3))?,
            courier_price: v.parsed("COURIER_PRICE", Decimal::from(300))?,
            cash_payment_window: cash_payment_window(v)?,
            cors_origins: cors_origins(v)?,
            caps: crate::caps::CapsConfig::from_vars(v)?,
            manager_email: v.get("MANAGER_EMAIL").unwrap_or_else(|| admin_email.clone()),
            admin_email,
            outbox_relay: match v.get("OUTBOX_RELAY").as_deref().map(str::trim) {
                None if v.get("QUEUE_URL").is_some() => Relay::Stream,
                None | Some("inline") => Relay::Inline,
                Some("stream") => Relay::Stream,
                Some(other) => return Err(format!("OUTBOX_RELAY={other:?} is not inline or stream")),
            },
            queue_url: v.get("QUEUE_URL"),
            job_interval: Duration::from_secs(v.parsed::<u64>("JOB_INTERVAL", 30)?.max(1)),
            tickets_success_url: v.get("TICKETS_SUCCESS_URL"),
            tickets_error_url: v.get("TICKETS_ERROR_URL"),
        })
    }

    /// Defaults for tests and embedded runs, independent of the environment.
    pub fn for_tests() -> Config {
        Config {
            jwt: crate::auth::JwtRules::new("test-secret"),
            ticket_key: "test-ticket-key".into(),
            return_url_hosts: None,
            port: 3000,
            store_delay: None,
            mail_from: "noreply@example.com".into(),
            table_name: None,
            public_url: "http://127.0.0.1:3000".into(),
            max_body_bytes: 6 * 1024 * 1024,
            seat_timeout: Duration::from_secs(900),
            commission: CommissionTable::default(),
            attachment_max_bytes: 256 * 1024,
            payments: crate::payments::PaymentsConfig::for_tests(),
            zoo: ZooConfig::default(),
            online_commission: Decimal::from(3),
            courier_price: Decimal::from(300),
            cash_payment_window: Duration::from_secs(72 * 3600),
            cors_origins: Vec::new(),
            // Tests play many buyers from one address; the cap tests turn them on.
            caps: crate::caps::CapsConfig::off(),
            admin_email: "admin@example.com".into(),
            manager_email: "manager@example.com".into(),
            queue_url: None,
            outbox_relay: Relay::Inline,
            job_interval: Duration::from_secs(30),
            tickets_success_url: None,
            tickets_error_url: None,
        }
    }
}

/// `JWT_SECRET_PREVIOUS` (a rotated-out secret still accepted): as strong as the secret.
fn previous_jwt_secret(v: &Vars, deployed: bool) -> Result<Option<String>, String> {
    match v.get("JWT_SECRET_PREVIOUS") {
        Some(p) if deployed && weak_secret(&p, DEV_JWT_SECRET) => {
            Err("JWT_SECRET_PREVIOUS, when set, must be at least 32 characters (not the development default)"
                .into())
        }
        p => Ok(p),
    }
}

/// `CORS_ORIGINS`: `*`, or origins (`https://tickets.example`, `http://127.0.0.1:8080`:
/// a scheme, a host and maybe a port, nothing after).
fn cors_origins(v: &Vars) -> Result<Vec<String>, String> {
    let Some(list) = v.get("CORS_ORIGINS") else { return Ok(Vec::new()) };
    let origins: Vec<String> =
        list.split(',').map(str::trim).filter(|o| !o.is_empty()).map(str::to_owned).collect();
    for o in &origins {
        let ok = o == "*"
            || url::Url::parse(o).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host_str().is_some()
                    && u.origin().ascii_serialization() == o.trim_end_matches('/')
                    && !o.ends_with('/')
            });
        if !ok {
            return Err(format!("CORS_ORIGINS: {o:?} is not an origin (scheme://host[:port]) or *"));
        }
    }
    Ok(origins)
}

/// `CASH_PAYMENT_HOURS`: at least one hour, at most a year.
fn cash_payment_window(v: &Vars) -> Result<Duration, String> {
    match v.parsed::<u64>("CASH_PAYMENT_HOURS", 72)? {
        0 => Err("CASH_PAYMENT_HOURS must be at least 1".into()),
        h => Ok(Duration::from_secs(h.min(24 * 365) * 3600)),
    }
}

fn commission(v: &Vars) -> Result<CommissionTable, String> {
    let defaults = CommissionTable::default();
    Ok(CommissionTable {
        tiers: match v.get("COMMISSION_TIERS") {
            Some(spec) => {
                CommissionTable::parse_tiers(&spec).map_err(|e| format!("COMMISSION_TIERS: {e}"))?
            }
            None => defaults.tiers,
        },
        gateway_percent: v.parsed::<Decimal>("GATEWAY_COMMISSION", defaults.gateway_percent)?,
        mandarin_percent: v.parsed::<Decimal>("MANDARIN_COMMISSION", defaults.mandarin_percent)?,
    })
}

/// Payments and gateways. A deployed process fails closed (see [`PaymentsConfig::check`]).
fn payments(v: &Vars, deployed: bool) -> Result<PaymentsConfig, String> {
    let sandbox = v.flag("SANDBOX_ENABLED", !deployed)?;
    // Without the sandbox, Robokassa (seed 003's gateway) until another is chosen.
    let default_gateway = if sandbox { GatewayKind::Sandbox } else { GatewayKind::Robokassa };
    let c = PaymentsConfig {
        timeout: Duration::from_secs(v.parsed("PAYMENT_TIMEOUT", 900)?),
        deal_gateway: v.parsed("DEAL_PAYMENT_GATEWAY", default_gateway)?,
        zoo_gateway: v.parsed("ZOO_PAYMENT_GATEWAY", default_gateway)?,
        tickets_gateway: v.parsed("TICKETS_PAYMENT_GATEWAY", default_gateway)?,
        sandbox,
        sandbox_secret: v.get("SANDBOX_SECRET").unwrap_or_else(|| DEV_SANDBOX_SECRET.into()),
        refund_manual_after: Duration::from_secs(v.parsed("REFUND_MANUAL_AFTER", 86_400)?),
        robokassa: robokassa(v)?,
        mandarin: mandarin::Config {
            merchant_id: v.get("MANDARIN_MERCHANT_ID").unwrap_or_default(),
            secret: v.get("MANDARIN_SECRET").unwrap_or_default(),
            base_url: v.url("MANDARIN_URL", &mandarin::Config::default().base_url),
        },
        sngb: sngb::Config {
            terminal_id: v.get("SNGB_TERMINAL_ID").unwrap_or_default(),
            terminal_alias: v.get("SNGB_TERMINAL_ALIAS").unwrap_or_default(),
            secret: v.get("SNGB_SECRET").unwrap_or_default(),
            token: v.get("SNGB_TOKEN").unwrap_or_default(),
            base_url: v.url("SNGB_URL", ""),
        },
    };
    // A function that never touches the sandbox's key (health, say) does not need it.
    c.check(deployed && needs(v, "SANDBOX_SECRET"))?;
    Ok(c)
}

fn robokassa(v: &Vars) -> Result<robokassa::Config, String> {
    let d = robokassa::Config::default();
    Ok(robokassa::Config {
        login: v.get("ROBOKASSA_LOGIN").unwrap_or_default(),
        password1: v.get("ROBOKASSA_PASSWORD1").unwrap_or_default(),
        password2: v.get("ROBOKASSA_PASSWORD2").unwrap_or_default(),
        password3: v.get("ROBOKASSA_PASSWORD3").unwrap_or_default(),
        hash: v.parsed("ROBOKASSA_HASH", d.hash)?,
        base_url: v.url("ROBOKASSA_URL", &d.base_url),
        refund_url: v.url("ROBOKASSA_REFUND_URL", &d.refund_url),
        test: v.flag("ROBOKASSA_TEST", false)?,
    })
}

/// Zoo sessions (seed 004): prices and visit times are the server's, never the buyer's.
#[derive(Debug, Clone, PartialEq)]
pub struct ZooConfig {
    /// The default tariff, ticket type → unit price (`ZOO_TARIFF` = `adult:1000.00,child:500.00`);
    /// an admin may replace it (`PUT /v1/tariff`), which is then kept in the table.
    pub tariff: std::collections::BTreeMap<String, Decimal>,
    /// Visit start times, Moscow time (`ZOO_VISIT_TIMES` = `09:00-18:00/30`: every 30 minutes
    /// from 09:00, the last one 30 minutes before 18:00; or a list `10:00,12:00`).
    pub visit_times: Vec<String>,
    /// Visitors per visit slot (`ZOO_SLOT_CAPACITY`, default 500).
    pub slot_capacity: i64,
    /// Counter shards per slot (`ZOO_SLOT_SHARDS`, default 4).
    pub slot_shards: i64,
}

impl Default for ZooConfig {
    fn default() -> Self {
        ZooConfig {
            tariff: parse_tariff(DEFAULT_TARIFF).unwrap_or_default(),
            visit_times: parse_visit_times(DEFAULT_VISIT_TIMES).unwrap_or_default(),
            slot_capacity: 500,
            slot_shards: 4,
        }
    }
}

/// Seed 004's adult ticket at 1000.00, and a child's at half.
pub const DEFAULT_TARIFF: &str = "adult:1000.00,child:500.00";
pub const DEFAULT_VISIT_TIMES: &str = "09:00-18:00/30";

/// `type:price,...`, prices with two decimals.
pub fn parse_tariff(spec: &str) -> Result<std::collections::BTreeMap<String, Decimal>, String> {
    let mut out = std::collections::BTreeMap::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (kind, price) = part.split_once(':').ok_or_else(|| format!("{part:?} is not type:price"))?;
        let kind = kind.trim();
        let price = crate::money::parse_strict(price.trim())
            .filter(|p| *p > Decimal::ZERO)
            .ok_or_else(|| format!("{part:?}: the price must be positive with two decimals"))?;
        if kind.is_empty() || kind.len() > 64 || out.insert(kind.to_owned(), price).is_some() {
            return Err(format!("{part:?}: a ticket type must be 1 to 64 characters and named once"));
        }
    }
    if out.is_empty() {
        return Err("the tariff names no ticket type".into());
    }
    Ok(out)
}

fn minutes(hhmm: &str) -> Option<u32> {
    let t = chrono::NaiveTime::parse_from_str(hhmm.trim(), "%H:%M").ok()?;
    Some(chrono::Timelike::hour(&t) * 60 + chrono::Timelike::minute(&t))
}

/// `HH:MM-HH:MM/step` (start times from the first, every `step` minutes, ending `step` before
/// the second) or a list `HH:MM,HH:MM`.
pub fn parse_visit_times(spec: &str) -> Result<Vec<String>, String> {
    let fmt = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
    let times: Vec<String> = match spec.split_once('/') {
        Some((range, step)) => {
            let (from, to) =
                range.split_once('-').ok_or_else(|| format!("{spec:?} is not HH:MM-HH:MM/step"))?;
            let (from, to) = (minutes(from), minutes(to));
            let step: u32 = step.trim().parse().map_err(|_| format!("{spec:?}: the step is minutes"))?;
            match (from, to) {
                (Some(from), Some(to)) if step > 0 && from < to => {
                    (from..to).step_by(step as usize).map(fmt).collect()
                }
                _ => return Err(format!("{spec:?} is not HH:MM-HH:MM/step")),
            }
        }
        None => spec
            .split(',')
            .map(|t| minutes(t).map(fmt).ok_or_else(|| format!("{t:?} is not HH:MM")))
            .collect::<Result<_, _>>()?,
    };
    if times.is_empty() {
        return Err("no visit times".into());
    }
    Ok(times)
}

impl ZooConfig {
    pub fn from_vars(v: &Vars) -> Result<Self, String> {
        let c = ZooConfig {
            tariff: parse_tariff(&v.get("ZOO_TARIFF").unwrap_or_else(|| DEFAULT_TARIFF.into()))
                .map_err(|e| format!("ZOO_TARIFF: {e}"))?,
            visit_times: parse_visit_times(
                &v.get("ZOO_VISIT_TIMES").unwrap_or_else(|| DEFAULT_VISIT_TIMES.into()),
            )
            .map_err(|e| format!("ZOO_VISIT_TIMES: {e}"))?,
            slot_capacity: v.parsed("ZOO_SLOT_CAPACITY", 500)?,
            slot_shards: v.parsed("ZOO_SLOT_SHARDS", 4)?,
        };
        if c.slot_shards < 1 || c.slot_capacity < 0 {
            return Err("ZOO_SLOT_SHARDS must be at least 1 and ZOO_SLOT_CAPACITY not negative".into());
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn zoo_defaults_include_the_seeds_adult_ticket_and_ten_oclock() {
        let z = ZooConfig::default();
        assert_eq!(z.tariff.get("adult"), Some(&dec!(1000.00)));
        assert!(z.visit_times.contains(&"10:00".to_owned()));
        assert_eq!(z.visit_times.first().map(String::as_str), Some("09:00"));
        assert_eq!(z.visit_times.last().map(String::as_str), Some("17:30"));
        assert_eq!(z.visit_times.len(), 18);
    }

    #[test]
    fn parses_tariffs_and_times() {
        assert!(parse_tariff("adult:1000").is_err());
        assert!(parse_tariff("adult:1000.00,adult:5.00").is_err());
        assert!(parse_tariff("adult:0.00").is_err());
        assert_eq!(parse_visit_times("10:00, 12:30").unwrap(), vec!["10:00", "12:30"]);
        assert!(parse_visit_times("25:00").is_err());
        assert!(parse_visit_times("10:00-09:00/30").is_err());
    }

    #[test]
    fn a_deployed_process_fails_closed() {
        let deployed = |extra: &[(&str, &str)]| {
            let mut pairs = vec![
                ("TABLE_NAME", "t"),
                ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
                ("TICKET_SIGNING_KEY", "fedcba9876543210fedcba9876543210"),
            ];
            pairs.extend_from_slice(extra);
            Config::from_vars(&Vars::from_pairs(&pairs))
        };
        // Defaults: no sandbox, Robokassa everywhere.
        let c = deployed(&[]).unwrap();
        assert!(!c.payments.sandbox);
        assert_eq!(c.payments.zoo_gateway, GatewayKind::Robokassa);
        assert_eq!(c.payments.deal_gateway, GatewayKind::Robokassa);
        assert_eq!(c.payments.tickets_gateway, GatewayKind::Robokassa);
        for secret in ["", "   ", DEV_JWT_SECRET, "short"] {
            let e = Config::from_vars(&Vars::from_pairs(&[("TABLE_NAME", "t"), ("JWT_SECRET", secret)]))
                .unwrap_err();
            assert!(e.contains("JWT_SECRET"), "{e}");
        }
        let e = Config::from_vars(&Vars::from_pairs(&[("TABLE_NAME", "t"), ("JWT_SECRET", &"j".repeat(32))]))
            .unwrap_err();
        assert!(e.contains("TICKET_SIGNING_KEY"), "{e}");
        let e = deployed(&[("JWT_SECRET_PREVIOUS", DEV_JWT_SECRET)]).unwrap_err();
        assert!(e.contains("JWT_SECRET_PREVIOUS"), "{e}");
        // Unset, the deployed stack sends buyers back to its own host only.
        assert_eq!(deployed(&[]).unwrap().return_url_hosts, Some(vec![]));
        let c = deployed(&[("RETURN_URL_HOSTS", " Shop.Example , ,pay.example")]).unwrap();
        assert_eq!(c.return_url_hosts, Some(vec!["shop.example".to_owned(), "pay.example".to_owned()]));
        let e = deployed(&[("ZOO_PAYMENT_GATEWAY", "sandbox")]).unwrap_err();
        assert!(e.contains("SANDBOX_ENABLED"), "{e}");
        for secret in ["", DEV_SANDBOX_SECRET, "short"] {
            let e = deployed(&[("SANDBOX_ENABLED", "true"), ("SANDBOX_SECRET", secret)]).unwrap_err();
            assert!(e.contains("SANDBOX_SECRET"), "{e}");
        }
        let c = deployed(&[
            ("SANDBOX_ENABLED", "true"),
            ("SANDBOX_SECRET", "s3cret-s3cret-s3cret-s3cret-s3cret"),
        ])
        .unwrap();
        assert_eq!(c.payments.zoo_gateway, GatewayKind::Sandbox);
        // Local runs: the sandbox and the development secrets.
        let c = Config::from_vars(&Vars::from_pairs(&[])).unwrap();
        assert!(c.payments.sandbox);
        assert_eq!(c.jwt.secret, DEV_JWT_SECRET);
    }

    #[test]
    fn a_function_reading_parameter_store_needs_only_the_secrets_it_names() {
        let base = [("TABLE_NAME", "t"), ("SECRETS_PREFIX", "/stack")];
        let with = |extra: &[(&str, &str)]| {
            let mut pairs = base.to_vec();
            pairs.extend_from_slice(extra);
            Config::from_vars(&Vars::from_pairs(&pairs))
        };
        // Health names none: it starts without any, and can verify nothing with them.
        let c = with(&[("SANDBOX_ENABLED", "true")]).unwrap();
        assert_eq!(c.jwt.secret, "");
        assert!(verify_nothing(&c));
        // Deals name the JWT secret: missing, it refuses, naming the parameter.
        let e = with(&[("SECRETS", "jwt-secret")]).unwrap_err();
        assert!(e.contains("/stack/jwt-secret"), "{e}");
        let e = with(&[("SECRETS", "jwt-secret"), ("JWT_SECRET", DEV_JWT_SECRET)]).unwrap_err();
        assert!(e.contains("/stack/jwt-secret"), "{e}");
        let c = with(&[("SECRETS", "jwt-secret"), ("JWT_SECRET", &"j".repeat(32))]).unwrap();
        assert_eq!(c.jwt.secret, "j".repeat(32));
        assert_eq!(c.ticket_key, "");
        // The sandbox's key, by whoever names it.
        let e = with(&[("SECRETS", "sandbox-secret"), ("SANDBOX_ENABLED", "true")]).unwrap_err();
        assert!(e.contains("SANDBOX_SECRET"), "{e}");
    }

    /// An empty key verifies no token at all.
    fn verify_nothing(c: &Config) -> bool {
        let token = crate::auth::issue("", &crate::auth::Claims::new("1", chrono::Duration::minutes(5)));
        crate::auth::verify(&c.jwt, &token).is_err()
    }

    #[test]
    fn deployed_secrets_fail_closed() {
        assert!(weak_secret("  ", DEV_JWT_SECRET));
        assert!(weak_secret(DEV_JWT_SECRET, DEV_JWT_SECRET));
        assert!(weak_secret("short", DEV_JWT_SECRET));
        assert!(!weak_secret("0123456789abcdef0123456789abcdef", DEV_JWT_SECRET));
    }
}
