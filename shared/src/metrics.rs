//! Business metrics as CloudWatch Embedded Metric Format: one JSON line on standard output
//! per event, which CloudWatch Logs turns into a metric of the `TicketsBackend` namespace
//! (alarms in `template.yaml` watch them). Locally the line is just a log line.

pub const NAMESPACE: &str = "TicketsBackend";

/// The EMF line counting one `name` event with these dimensions.
pub fn line(name: &str, dimensions: &[(&str, &str)], at_ms: i64) -> String {
    let mut root = serde_json::Map::new();
    let keys: Vec<&str> = dimensions.iter().map(|(k, _)| *k).collect();
    root.insert(
        "_aws".into(),
        serde_json::json!({
            "Timestamp": at_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [keys],
                "Metrics": [{ "Name": name, "Unit": "Count" }],
            }],
        }),
    );
    for (k, v) in dimensions {
        root.insert((*k).into(), serde_json::Value::String((*v).into()));
    }
    root.insert(name.into(), serde_json::json!(1));
    serde_json::Value::Object(root).to_string()
}

/// Counts one `name` event (see the module docs).
pub fn count(name: &str, dimensions: &[(&str, &str)]) {
    // `println!`: one line, and captured by the test harness like any output of a test.
    println!("{}", line(name, dimensions, chrono::Utc::now().timestamp_millis()));
}

#[cfg(test)]
mod tests {
    #[test]
    fn is_an_emf_document() {
        let v: serde_json::Value =
            serde_json::from_str(&super::line("LatePayments", &[("Gateway", "sandbox")], 5)).unwrap();
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "TicketsBackend");
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][0], "Gateway");
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"], "LatePayments");
        assert_eq!((v["Gateway"].as_str(), v["LatePayments"].as_i64()), (Some("sandbox"), Some(1)));
    }
}
