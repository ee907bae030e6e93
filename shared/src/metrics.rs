//! Business metrics as CloudWatch Embedded Metric Format: one JSON line on standard output
//! per event, which CloudWatch Logs turns into metrics of the `TicketsBackend` namespace
//! (the dashboard and alarms in `template.yaml` read them). Locally the line is just a log line.
//!
//! Every line declares two dimension sets: its own (e.g. `Gateway`, `Outcome`) and none, so
//! each metric also exists as one total an alarm can watch without knowing every gateway.
//!
//! The metrics: `SeatsHeld`, `SeatsSold` (seats), `PaymentsSettled` (`Gateway`, `Outcome`),
//! `AmountMismatches`, `LatePayments`, `ManualRefunds` (`Gateway`), `EmailsSent` (`Template`),
//! `WebhookAttempts` (`Outcome`). The dead-letter queue's depth is SQS's own metric.

use std::sync::Mutex;

pub const NAMESPACE: &str = "TicketsBackend";

/// Every metric the code writes.
pub const NAMES: [&str; 8] = [
    "SeatsHeld",
    "SeatsSold",
    "PaymentsSettled",
    "AmountMismatches",
    "LatePayments",
    "ManualRefunds",
    "EmailsSent",
    "WebhookAttempts",
];

/// The EMF line adding `value` to `name` with these dimensions.
pub fn line(name: &str, dimensions: &[(&str, &str)], value: u64, at_ms: i64) -> String {
    let mut root = serde_json::Map::new();
    let keys: Vec<&str> = dimensions.iter().map(|(k, _)| *k).collect();
    let sets: Vec<Vec<&str>> = if keys.is_empty() { vec![vec![]] } else { vec![keys, vec![]] };
    let unit = if name.starts_with("Seats") { "None" } else { "Count" };
    root.insert(
        "_aws".into(),
        serde_json::json!({
            "Timestamp": at_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": sets,
                "Metrics": [{ "Name": name, "Unit": unit }],
            }],
        }),
    );
    for (k, v) in dimensions {
        root.insert((*k).into(), serde_json::Value::String((*v).into()));
    }
    root.insert(name.into(), serde_json::json!(value));
    serde_json::Value::Object(root).to_string()
}

/// Adds `value` to `name` (see the module docs).
pub fn add(name: &str, dimensions: &[(&str, &str)], value: u64) {
    let line = line(name, dimensions, value, chrono::Utc::now().timestamp_millis());
    if let Some(lines) = CAPTURED.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_mut() {
        lines.push(line.clone());
    }
    // `println!`: one line on standard output, where the Lambda runtime's log capture reads it.
    println!("{line}");
}

/// Counts one `name` event.
pub fn count(name: &str, dimensions: &[(&str, &str)]) {
    add(name, dimensions, 1);
}

static CAPTURED: Mutex<Option<Vec<String>>> = Mutex::new(None);

/// Starts keeping a copy of every line written from now on in this process (tests read
/// what a flow logged with [`captured`]).
pub fn capture() {
    *CAPTURED.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Vec::new());
}

/// The lines written since [`capture`].
pub fn captured() -> Vec<String> {
    CAPTURED.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn is_an_emf_document_with_a_total() {
        let v: serde_json::Value =
            serde_json::from_str(&super::line("LatePayments", &[("Gateway", "sandbox")], 1, 5)).unwrap();
        let m = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(m["Namespace"], "TicketsBackend");
        assert_eq!(m["Dimensions"], serde_json::json!([["Gateway"], []]));
        assert_eq!(m["Metrics"][0]["Name"], "LatePayments");
        assert_eq!((v["Gateway"].as_str(), v["LatePayments"].as_i64()), (Some("sandbox"), Some(1)));
        let v: serde_json::Value = serde_json::from_str(&super::line("SeatsHeld", &[], 3, 5)).unwrap();
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Dimensions"], serde_json::json!([[]]));
        assert_eq!(v["SeatsHeld"], 3);
    }
}
