//! CloudWatch metrics in the Embedded Metric Format: one JSON line on stdout per
//! invocation, which CloudWatch Logs turns into metrics — no API call, no added
//! latency, nothing to configure but the log group.
//!
//! Hand-written (a dozen lines of `serde_json`) rather than a crate: the format is
//! one documented JSON shape, and the crates that produce it pull in a metrics
//! framework these functions do not otherwise need.

use serde_json::{json, Map, Value};

/// The namespace every metric of this product is published under.
pub const NAMESPACE: &str = "FintocPayments";

/// One EMF line: `counts` (only the non-zero ones) under `dimensions`, at
/// `timestamp_ms`. `None` when every count is zero: nothing to publish.
pub fn emf_line(
    timestamp_ms: i64,
    dimensions: &[(&str, &str)],
    counts: &[(&str, u64)],
) -> Option<String> {
    let counts: Vec<_> = counts.iter().filter(|(_, v)| *v > 0).collect();
    if counts.is_empty() {
        return None;
    }
    let mut line = Map::new();
    line.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [dimensions.iter().map(|(k, _)| *k).collect::<Vec<_>>()],
                "Metrics": counts.iter().map(|(name, _)| json!({"Name": name, "Unit": "Count"})).collect::<Vec<_>>(),
            }],
        }),
    );
    for (key, value) in dimensions {
        line.insert((*key).into(), Value::from(*value));
    }
    for (name, value) in counts {
        line.insert((*name).into(), Value::from(*value));
    }
    Some(Value::Object(line).to_string())
}

/// Prints the EMF line of `counts`, if any is non-zero.
pub fn emit(timestamp_ms: i64, dimensions: &[(&str, &str)], counts: &[(&str, u64)]) {
    if let Some(line) = emf_line(timestamp_ms, dimensions, counts) {
        println!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_with_the_non_zero_counts_under_their_dimensions() {
        let line = emf_line(
            1_000,
            &[("Function", "webhook")],
            &[("SignatureRefusals", 1), ("StorageErrors", 0)],
        )
        .unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["_aws"]["Timestamp"], 1_000);
        let directive = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"], json!([["Function"]]));
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "SignatureRefusals", "Unit": "Count"}])
        );
        assert_eq!(v["Function"], "webhook");
        assert_eq!(v["SignatureRefusals"], 1);
        assert!(v.get("StorageErrors").is_none());
        assert!(!line.contains('\n'), "one line");
        assert_eq!(emf_line(1, &[("Function", "x")], &[("A", 0)]), None);
    }
}
