//! Statistics of measured samples: percentiles and the summaries the reports print.

use serde_json::{json, Value};
use std::time::Duration;

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

pub(crate) fn summary(mut values: Vec<f64>) -> Value {
    values.sort_by(|a, b| a.total_cmp(b));
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    json!({
        "n": values.len(),
        "min": round(*values.first().unwrap_or(&f64::NAN)),
        "p50": round(percentile(&values, 50.0)),
        "p90": round(percentile(&values, 90.0)),
        "p99": round(percentile(&values, 99.0)),
        "max": round(*values.last().unwrap_or(&f64::NAN)),
    })
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
