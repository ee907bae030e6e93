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
use std::sync::atomic::{AtomicBool, Ordering};

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

/// The EMF line adding `value` to `name` with these dimensions. Written straight into one
/// string (a metric is written on hot paths: a seat hold, a sale), strings JSON-escaped,
/// numbers by `itoa` (the formatting machinery was a percent of a seat hold).
pub fn line(name: &str, dimensions: &[(&str, &str)], value: u64, at_ms: i64) -> String {
    fn quoted(out: &mut String, s: &str) {
        // Names and most values need no escape: written as they are, without an allocation.
        if s.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\' || b == b' ') {
            out.push('"');
            out.push_str(s);
            out.push('"');
        } else {
            // A `&str` always serialises.
            out.push_str(&serde_json::to_string(s).unwrap_or_default());
        }
    }
    let unit = if name.starts_with("Seats") { "None" } else { "Count" };
    let mut out = String::with_capacity(256);
    out.push_str(r#"{"_aws":{"Timestamp":"#);
    out.push_str(itoa::Buffer::new().format(at_ms));
    out.push_str(r#","CloudWatchMetrics":[{"Namespace":""#);
    out.push_str(NAMESPACE);
    out.push_str(r#"","Dimensions":["#);
    if !dimensions.is_empty() {
        out.push('[');
        for (i, (k, _)) in dimensions.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            quoted(&mut out, k);
        }
        out.push_str("],");
    }
    out.push_str(r#"[]],"Metrics":[{"Name":"#);
    quoted(&mut out, name);
    out.push_str(r#","Unit":""#);
    out.push_str(unit);
    out.push_str(r#""}]}]}"#);
    for (k, v) in dimensions {
        out.push(',');
        quoted(&mut out, k);
        out.push(':');
        quoted(&mut out, v);
    }
    out.push(',');
    quoted(&mut out, name);
    out.push(':');
    out.push_str(itoa::Buffer::new().format(value));
    out.push('}');
    out
}

/// Adds `value` to `name` (see the module docs).
pub fn add(name: &str, dimensions: &[(&str, &str)], value: u64) {
    let line = line(name, dimensions, value, chrono::Utc::now().timestamp_millis());
    if CAPTURING.load(Ordering::Relaxed)
        && let Some(lines) = CAPTURED.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_mut()
    {
        lines.push(line.clone());
    }
    // `println!`: one line on standard output, where the Lambda runtime's log capture reads it
    // (and the test harness's capture, which a direct write to `stdout()` would bypass).
    println!("{line}");
}

/// Counts one `name` event.
pub fn count(name: &str, dimensions: &[(&str, &str)]) {
    add(name, dimensions, 1);
}

/// Whether [`capture`] was called: the lock below is taken only then.
static CAPTURING: AtomicBool = AtomicBool::new(false);
static CAPTURED: Mutex<Option<Vec<String>>> = Mutex::new(None);

/// Starts keeping a copy of every line written from now on in this process (tests read
/// what a flow logged with [`captured`]).
pub fn capture() {
    *CAPTURED.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Vec::new());
    CAPTURING.store(true, Ordering::Relaxed);
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
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"], "None");
        assert_eq!(v["_aws"]["Timestamp"], 5);
        assert_eq!(v.as_object().map(|o| o.len()), Some(2));
    }

    /// Every value, written plainly or escaped, reads back as itself in the document.
    #[test]
    fn every_character_reads_back() {
        let mut values: Vec<String> = (0u8..128).map(|b| format!("a{}b", b as char)).collect();
        values.extend(["", " ", "Ünïcode", "tab\tand\nline", "sandbox", "ok/err:1"].map(String::from));
        for value in values {
            let v: serde_json::Value =
                serde_json::from_str(&super::line("EmailsSent", &[("Template", &value)], 1, 7))
                    .unwrap_or_else(|e| panic!("{value:?}: {e}"));
            assert_eq!(v["Template"], value.as_str());
        }
    }

    #[test]
    fn names_and_values_are_escaped() {
        let text = super::line("EmailsSent", &[("Template", "a\"b\\c"), ("Outcome", "ok")], 2, 7);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["Template"], "a\"b\\c");
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["Template", "Outcome"], []])
        );
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "TicketsBackend");
        assert_eq!((v["EmailsSent"].as_u64(), v["Outcome"].as_str()), (Some(2), Some("ok")));
    }
}
