//! `template.yaml` read as the deployed stack: no secret is a parameter or an environment
//! value; each function may read exactly the Parameter Store secrets it lists; the HTTP API is
//! throttled (tighter on seat holds and session creation) and logs every request; email goes
//! out from the MailFrom identity only; no function may scan or administer the table; and the
//! public gateways function reaches only the items its leading keys name, which is checked by
//! running its callbacks (settling a zoo session, a deal, a ticket order and a late payment)
//! against a store that records every key it touches.

mod tickets_support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use api_tests::{SECRET, TestServer, press, token};
use async_trait::async_trait;
use serde_norway::Value as Yaml;
use shared::App;
use shared::store::{Cond, Counter, Item, QueryOpts, Store, StoreError, WriteOp};

fn template() -> Yaml {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    serde_norway::from_str(&text).expect("template.yaml parses")
}

/// A value as text, CloudFormation tags included (`!Sub "…"` → `Sub:…`).
fn text(v: &Yaml) -> String {
    match v {
        Yaml::String(s) => s.clone(),
        Yaml::Number(n) => n.to_string(),
        Yaml::Bool(b) => b.to_string(),
        Yaml::Tagged(t) => format!("{}:{}", t.tag.to_string().trim_start_matches('!'), text(&t.value)),
        Yaml::Sequence(items) => items.iter().map(text).collect::<Vec<_>>().join(","),
        other => serde_norway::to_string(other).unwrap(),
    }
}

fn list(v: &Yaml) -> Vec<Yaml> {
    match v {
        Yaml::Sequence(items) => items.clone(),
        Yaml::Null => vec![],
        one => vec![one.clone()],
    }
}

fn functions(t: &Yaml) -> BTreeMap<String, Yaml> {
    let resources = t["Resources"].as_mapping().unwrap();
    resources
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(k, r)| (k.as_str().unwrap().to_owned(), r.clone()))
        .collect()
}

/// Every IAM statement of a function's inline policies.
fn statements(f: &Yaml) -> Vec<Yaml> {
    list(&f["Properties"]["Policies"]).iter().flat_map(|p| list(&p["Statement"])).collect()
}

fn env(f: &Yaml) -> BTreeMap<String, String> {
    f["Properties"]["Environment"]["Variables"]
        .as_mapping()
        .map(|m| m.iter().map(|(k, v)| (k.as_str().unwrap().to_owned(), text(v))).collect())
        .unwrap_or_default()
}

/// What each function may read from Parameter Store: what it uses, nothing more.
const SECRETS: &[(&str, &str)] = &[
    ("HealthFunction", ""),
    (
        "DealsFunction",
        "jwt-secret,jwt-secret-previous,sandbox-secret,robokassa-password1,robokassa-password2,robokassa-password3,mandarin-secret,sngb-token,sngb-secret",
    ),
    (
        "PaymentsFunction",
        "jwt-secret,jwt-secret-previous,sandbox-secret,robokassa-password1,robokassa-password2,robokassa-password3,mandarin-secret,sngb-token,sngb-secret,ticket-signing-key",
    ),
    (
        "GatewaysFunction",
        "sandbox-secret,robokassa-password1,robokassa-password2,robokassa-password3,mandarin-secret,sngb-token,sngb-secret,ticket-signing-key",
    ),
    ("NotifierFunction", ""),
    (
        "SchedulerFunction",
        "sandbox-secret,robokassa-password1,robokassa-password2,robokassa-password3,mandarin-secret,sngb-token,sngb-secret,ticket-signing-key",
    ),
    ("RelayFunction", ""),
    (
        "TicketsFunction",
        "jwt-secret,jwt-secret-previous,sandbox-secret,robokassa-password1,robokassa-password2,robokassa-password3,mandarin-secret,sngb-token,sngb-secret,ticket-signing-key",
    ),
    (
        "AdminFunction",
        "jwt-secret,jwt-secret-previous,sandbox-secret,robokassa-password1,robokassa-password2,robokassa-password3,mandarin-secret,sngb-token,sngb-secret,ticket-signing-key",
    ),
];

#[test]
fn no_secret_is_a_parameter_or_an_environment_value() {
    let t = template();
    for (name, p) in t["Parameters"].as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        assert!(p.get("NoEcho").is_none(), "{name} is a secret parameter");
        assert!(!name.contains("Secret") && !name.contains("Password"), "{name}");
    }
    let secret_vars: Vec<String> =
        shared::secrets::NAMES.iter().map(|n| shared::secrets::var_of(n)).collect();
    let globals = t["Globals"]["Function"]["Environment"]["Variables"].as_mapping().unwrap();
    assert_eq!(text(&globals[&Yaml::from("SECRETS_PREFIX")]), "Sub:/${AWS::StackName}");
    for (name, f) in functions(&t) {
        let mut vars: Vec<String> = env(&f).into_keys().collect();
        vars.extend(globals.keys().map(|k| k.as_str().unwrap().to_owned()));
        for v in vars {
            assert!(!secret_vars.contains(&v), "{name} gets {v} as an environment value");
        }
    }
}

#[test]
fn each_function_reads_exactly_the_secrets_it_lists() {
    let t = template();
    let fns = functions(&t);
    assert_eq!(fns.len(), SECRETS.len(), "every function is in the table above");
    for (name, expected) in SECRETS {
        let f = &fns[*name];
        let listed = env(f).get("SECRETS").cloned().unwrap_or_default();
        assert_eq!(&listed, expected, "{name}: SECRETS");
        let names = shared::secrets::names(&listed).unwrap();
        let granted: BTreeSet<String> = statements(f)
            .iter()
            .filter(|s| text(&s["Action"]).contains("ssm:"))
            .inspect(|s| assert_eq!(text(&s["Action"]), "ssm:GetParameters", "{name}: only GetParameters"))
            .flat_map(|s| list(&s["Resource"]))
            .map(|r| text(&r))
            .collect();
        let wanted: BTreeSet<String> = names
            .iter()
            .map(|n| format!("Sub:arn:${{AWS::Partition}}:ssm:${{AWS::Region}}:${{AWS::AccountId}}:parameter/${{AWS::StackName}}/{n}"))
            .collect();
        assert_eq!(granted, wanted, "{name}: the parameters it may read");
    }
}

#[test]
fn the_api_is_throttled_and_logged() {
    let t = template();
    let api = &t["Resources"]["Api"]["Properties"];
    let params = &t["Parameters"];
    let limit = |v: &Yaml| {
        let p = text(v).strip_prefix("Ref:").expect("a parameter").to_owned();
        params[p.as_str()]["Default"].as_u64().unwrap_or_else(|| panic!("{p} has a default"))
    };
    let d = &api["DefaultRouteSettings"];
    assert!(limit(&d["ThrottlingRateLimit"]) > 0 && limit(&d["ThrottlingBurstLimit"]) > 0);
    for route in ["POST /api/v1/reservations", "POST /v1/payments/sessions"] {
        let r = &api["RouteSettings"][route];
        assert!(limit(&r["ThrottlingRateLimit"]) < limit(&d["ThrottlingRateLimit"]), "{route} is tighter");
        assert!(limit(&r["ThrottlingBurstLimit"]) < limit(&d["ThrottlingBurstLimit"]), "{route} is tighter");
    }
    let logs = text(&api["AccessLogSettings"]["DestinationArn"]);
    let group = logs.strip_prefix("GetAtt:").and_then(|l| l.strip_suffix(".Arn")).expect("a log group");
    assert_eq!(t["Resources"][group]["Type"].as_str(), Some("AWS::Logs::LogGroup"));
    assert!(text(&api["AccessLogSettings"]["Format"]).contains("$context.requestId"));
}

#[test]
fn email_goes_out_from_the_mail_from_identity_only() {
    let t = template();
    let notifier = &functions(&t)["NotifierFunction"];
    let ses: Vec<Yaml> =
        statements(notifier).into_iter().filter(|s| text(&s["Action"]).contains("ses:")).collect();
    assert_eq!(ses.len(), 1);
    for r in list(&ses[0]["Resource"]) {
        let r = text(&r);
        assert!(!r.contains("identity/*") && r.contains("identity/${"), "{r}");
    }
    for (name, f) in functions(&t) {
        if name != "NotifierFunction" {
            assert!(
                statements(&f).iter().all(|s| !text(&s["Action"]).contains("ses:")),
                "{name} may send email"
            );
        }
    }
}

#[test]
fn no_function_may_scan_or_administer_the_table() {
    let t = template();
    for (name, f) in functions(&t) {
        for p in list(&f["Properties"]["Policies"]) {
            let policy = text(&p);
            for broad in ["DynamoDBCrudPolicy", "DynamoDBWritePolicy", "DynamoDBReadPolicy", "AmazonDynamoDB"]
            {
                assert!(!serde_norway::to_string(&p).unwrap().contains(broad), "{name}: {broad} {policy}");
            }
        }
        for s in statements(&f) {
            let actions = text(&s["Action"]);
            for broad in ["dynamodb:*", "dynamodb:Scan", "Table", "dynamodb:BatchWriteItem"] {
                assert!(!actions.contains(broad), "{name}: {actions}");
            }
        }
    }
}

// ---------- the gateways function's leading keys, by running it ----------

/// One DynamoDB request as IAM sees it: the action and the partition key value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Access {
    action: &'static str,
    index: bool,
    key: String,
}

/// A store that records every key it is asked for while `on`.
struct Recording {
    inner: Arc<dyn Store>,
    on: AtomicBool,
    seen: Mutex<BTreeSet<Access>>,
}

impl Recording {
    fn note(&self, action: &'static str, index: bool, key: &str) {
        if self.on.load(Ordering::SeqCst) {
            self.seen.lock().unwrap().insert(Access { action, index, key: key.to_owned() });
        }
    }
}

#[async_trait]
impl Store for Recording {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        self.note("dynamodb:GetItem", false, pk);
        self.inner.get(pk, sk).await
    }
    async fn batch_get(&self, keys: &[(String, String)]) -> Result<Vec<Item>, StoreError> {
        keys.iter().for_each(|(pk, _)| self.note("dynamodb:BatchGetItem", false, pk));
        self.inner.batch_get(keys).await
    }
    async fn put(&self, item: Item, cond: Cond) -> Result<(), StoreError> {
        self.note("dynamodb:PutItem", false, &item.pk);
        self.inner.put(item, cond).await
    }
    async fn delete(&self, pk: &str, sk: &str, cond: Cond) -> Result<(), StoreError> {
        self.note("dynamodb:DeleteItem", false, pk);
        self.inner.delete(pk, sk, cond).await
    }
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        for op in &ops {
            let action = match op {
                WriteOp::Put { .. } => "dynamodb:PutItem",
                WriteOp::Delete { .. } => "dynamodb:DeleteItem",
                WriteOp::Check { .. } => "dynamodb:ConditionCheckItem",
                WriteOp::Add(_) => "dynamodb:UpdateItem",
            };
            self.note(action, false, op.key().0);
        }
        self.inner.transact(ops).await
    }
    async fn query(&self, pk: &str, opts: QueryOpts) -> Result<Vec<Item>, StoreError> {
        self.note("dynamodb:Query", false, pk);
        self.inner.query(pk, opts).await
    }
    async fn query_gsi1(&self, pk: &str, opts: QueryOpts) -> Result<Vec<Item>, StoreError> {
        self.note("dynamodb:Query", true, pk);
        self.inner.query_gsi1(pk, opts).await
    }
    async fn add(&self, c: Counter) -> Result<i64, StoreError> {
        self.note("dynamodb:UpdateItem", false, &c.pk);
        self.inner.add(c).await
    }
}

/// `StringLike`: `*` matches any run of characters.
fn like(pattern: &str, value: &str) -> bool {
    let re = format!("^{}$", pattern.split('*').map(regex_lite::escape).collect::<Vec<_>>().join(".*"));
    regex_lite::Regex::new(&re).unwrap().is_match(value)
}

/// Whether one of `statements` allows `a`.
fn allowed(statements: &[Yaml], a: &Access) -> bool {
    statements.iter().any(|s| {
        let actions = list(&s["Action"]).iter().map(text).collect::<Vec<_>>();
        let resources = list(&s["Resource"]).iter().map(text).collect::<Vec<_>>();
        let on_resource = match a.index {
            false => resources.iter().any(|r| r == "GetAtt:Table.Arn"),
            true => resources.iter().any(|r| r.contains("${Table.Arn}/index/")),
        };
        let keys = list(&s["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]);
        let key_ok =
            keys.is_empty() && s.get("Condition").is_none() || keys.iter().any(|k| like(&text(k), &a.key));
        actions.iter().any(|x| x == a.action) && on_resource && key_ok
    })
}

#[tokio::test]
async fn the_gateways_function_touches_only_its_leading_keys() {
    let t = template();
    let gateways = statements(&functions(&t)["GatewaysFunction"]);
    // The function's table statements all name leading keys.
    for s in gateways.iter().filter(|s| text(&s["Action"]).contains("dynamodb:")) {
        assert!(
            !list(&s["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]).is_empty(),
            "an unconditioned table statement: {s:?}"
        );
    }
    let rec = Arc::new(Recording {
        inner: api_tests::memory_store(),
        on: AtomicBool::new(false),
        seen: Mutex::new(BTreeSet::new()),
    });
    let mut config = shared::Config::for_tests();
    config.jwt.secret = SECRET.into();
    let srv = TestServer::start_with(App::new(rec.clone(), config)).await;
    let gateway = |on: bool| rec.on.store(on, Ordering::SeqCst);

    // A zoo session paid.
    let tok = token("21", &[]);
    let date = (chrono::Utc::now() + chrono::Duration::days(20)).format("%Y-%m-%d").to_string();
    let body = serde_json::json!({
        "session_id": "s1",
        "order": { "order_id": "ZT-1", "total_amount": { "value": "1000.00", "currency": "RUB" },
            "items": [{ "ticket_type": "adult", "quantity": 1, "unit_price": { "value": "1000.00", "currency": "RUB" },
                        "visit_date": date, "visit_time": "10:00" }] },
        "customer": { "email": "visitor@example.com" },
        "confirmation": { "type": "redirect", "return_url": "https://zoo.example/ok", "cancel_url": "https://zoo.example/c" }
    });
    let (s, created) = srv.post("/v1/payments/sessions", Some(&tok), &body).await;
    assert_eq!(s, 201, "{created}");
    gateway(true);
    let (s, _) = press(&srv, created["data"]["confirmation_url"].as_str().unwrap(), "succeeded").await;
    assert_eq!(s, 303);
    let id = created["data"]["payment_id"].as_str().unwrap();
    srv.http.get(srv.url(&format!("/api/v1/gateways/return/{id}"))).send().await.unwrap();
    gateway(false);

    // A deal paid by its consumer.
    let (_, deal) = api_tests::emails::deal_approved(&srv).await;
    let (s, b) = srv.get(&format!("/api/v1/orders/{deal}/payment_info"), Some(&token("14", &[]))).await;
    assert_eq!(s, 200, "{b}");
    gateway(true);
    press(&srv, b["gateway_url"].as_str().expect("a payment link"), "succeeded").await;
    gateway(false);

    // A ticket order paid, and one paid after it was cancelled (the money goes back).
    tickets_support::create_event(&srv, "policy").await;
    let (_, page) = tickets_support::online_order(&srv, "policy", &["s-1-1"], "self_online").await;
    gateway(true);
    press(&srv, &page, "succeeded").await;
    gateway(false);
    let (order, page) = tickets_support::online_order(&srv, "policy", &["s-1-2"], "self_online").await;
    gateway(true);
    let html = srv.http.get(&page).send().await.unwrap().text().await.unwrap();
    gateway(false);
    let (action, fields) = api_tests::forms(&html).remove("succeeded").expect("a Pay button");
    srv.app.clock.advance(chrono::Duration::minutes(16));
    shared::jobs::run(&srv.app, shared::jobs::Job::Payments).await.unwrap();
    gateway(true);
    srv.http.post(&action).form(&fields).send().await.unwrap();
    gateway(false);
    let p = shared::payments::get(&srv.app, &tickets_support::payment_of(&srv, &order).await).await.unwrap();
    assert_eq!(p.refunded_amount, p.amount, "the late payment went back");

    let seen = rec.seen.lock().unwrap().clone();
    let kinds: BTreeSet<&str> = seen.iter().map(|a| a.key.split('#').next().unwrap()).collect();
    for owner in ["payment", "sandbox", "outbox", "deal", "ticket_order"] {
        assert!(kinds.contains(owner), "the flows above reached {owner} items: {kinds:?}");
    }
    let denied: Vec<&Access> = seen.iter().filter(|a| !allowed(&gateways, a)).collect();
    assert!(denied.is_empty(), "GatewaysFunction's policy would deny: {denied:#?}");
}

/// CORS on AWS: the HTTP API grants only the `CorsOrigins` parameter's origins (none by
/// default), with the API's own headers allowed: the rule the local server applies
/// (`shared::http::CORS_ALLOW_HEADERS`, tested in `tests/tests/cors.rs`).
#[test]
fn the_http_api_grants_cors_only_to_the_configured_origins() {
    let t = template();
    assert_eq!(text(&t["Parameters"]["CorsOrigins"]["Default"]), "", "no origin by default");
    assert_eq!(text(&t["Conditions"]["HasCorsOrigins"]), "Not:Equals:Join:,,Ref:CorsOrigins,");
    let api = t["Resources"]
        .as_mapping()
        .unwrap()
        .values()
        .find(|r| r["Type"].as_str() == Some("AWS::Serverless::HttpApi"));
    let cors = &api.expect("the HTTP API")["Properties"]["CorsConfiguration"];
    let Yaml::Tagged(tagged) = cors else { panic!("CorsConfiguration is conditional: {cors:?}") };
    assert_eq!(tagged.tag.to_string(), "!If");
    let branches = list(&tagged.value);
    assert_eq!(text(&branches[0]), "HasCorsOrigins");
    assert_eq!(text(&branches[2]), "Ref:AWS::NoValue", "no CORS configuration at all without origins");
    let on = &branches[1];
    assert_eq!(text(&on["AllowOrigins"]), "Ref:CorsOrigins");
    let headers: Vec<String> = list(&on["AllowHeaders"]).iter().map(text).collect();
    assert_eq!(headers, shared::http::CORS_ALLOW_HEADERS);
    let exposed: Vec<String> = list(&on["ExposeHeaders"]).iter().map(text).collect();
    assert_eq!(exposed, shared::http::CORS_EXPOSE_HEADERS);
    assert!(on.get("AllowCredentials").is_none(), "credentials are headers, never cookies");
}

/// Every `"Name"` string literal in the source of the functions and the domain crate.
fn literals_in_source() -> String {
    fn walk(dir: &std::path::Path, out: &mut String) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("metrics.rs") {
                out.push_str(&std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = String::new();
    for dir in ["shared/src", "functions"] {
        walk(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir), &mut out);
    }
    out
}

/// Tracing is on for every function; the dashboard's body is JSON naming only metrics the
/// code writes (each written somewhere), and the alarms on them watch their totals (no
/// dimensions: the metric lines declare an empty dimension set for that).
#[test]
fn the_stack_is_traced_and_its_metrics_watched() {
    let t = template();
    assert_eq!(text(&t["Globals"]["Function"]["Tracing"]), "Active");
    let source = literals_in_source();
    for name in shared::metrics::NAMES {
        assert!(source.contains(&format!("\"{name}\"")), "{name} is written somewhere");
    }
    let resources = t["Resources"].as_mapping().unwrap();
    let dashboard = resources
        .values()
        .find(|r| r["Type"].as_str() == Some("AWS::CloudWatch::Dashboard"))
        .expect("a dashboard");
    let Yaml::Tagged(sub) = &dashboard["Properties"]["DashboardBody"] else {
        panic!("DashboardBody is a !Sub")
    };
    let body = text(&list(&sub.value)[0]);
    let body = regex_lite::Regex::new(r"\$\{[A-Za-z:]+\}").unwrap().replace_all(&body, "x").to_string();
    let parsed: serde_json::Value = serde_json::from_str(&body).expect("the dashboard body is JSON");
    let widgets = parsed["widgets"].as_array().unwrap();
    assert!(widgets.len() >= 6);
    let named: Vec<String> = regex_lite::Regex::new(r#"(?:"TicketsBackend", "|MetricName=\\")([A-Za-z]+)"#)
        .unwrap()
        .captures_iter(&text(&list(&sub.value)[0]))
        .map(|c| c[1].to_owned())
        .collect();
    for name in
        ["SeatsHeld", "SeatsSold", "PaymentsSettled", "AmountMismatches", "LatePayments", "EmailsSent"]
    {
        assert!(named.iter().any(|n| n == name), "{name} on the dashboard: {named:?}");
    }
    for n in &named {
        assert!(
            shared::metrics::NAMES.contains(&n.as_str()) || n == "Errors",
            "{n} is a metric the code writes"
        );
    }
    assert!(body.contains("ApproximateNumberOfMessagesVisible"), "the DLQ's depth");
    let alarms: Vec<&Yaml> = resources
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::CloudWatch::Alarm"))
        .filter(|r| r["Properties"]["Namespace"].as_str() == Some("TicketsBackend"))
        .collect();
    let watched: Vec<&str> = alarms.iter().map(|a| a["Properties"]["MetricName"].as_str().unwrap()).collect();
    for name in ["AmountMismatches", "LatePayments"] {
        assert!(watched.contains(&name), "an alarm on {name}");
    }
    for a in alarms {
        let name = a["Properties"]["MetricName"].as_str().unwrap();
        assert!(shared::metrics::NAMES.contains(&name), "{name}");
        assert!(a["Properties"].get("Dimensions").is_none(), "{name}: the alarm watches the total");
    }
}
