//! The log markers the stack's alarms count: every metric filter of
//! `template.yaml` matches one of `shared::log_markers`, each marker a filter
//! counts is matched by one in every function's log group, and no source names a
//! marker by its literal (so a renamed constant cannot leave a filter behind).

use shared::log_markers::{self, ANOMALY, DYNAMODB_VALIDATION, REFUND_FAILED};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each `AWS::Logs::MetricFilter` of `template`: its log group and the term its
/// `FilterPattern: '"TERM"'` matches, read line by line.
fn metric_filters(template: &str) -> Vec<(String, String)> {
    let mut filters = Vec::new();
    let (mut in_filter, mut group) = (false, None::<String>);
    for line in template.lines() {
        let trimmed = line.trim();
        if line.starts_with("  ") && !line.starts_with("   ") && trimmed.ends_with(':') {
            in_filter = false;
            group = None;
        }
        if trimmed == "Type: AWS::Logs::MetricFilter" {
            in_filter = true;
        }
        if !in_filter {
            continue;
        }
        if let Some(g) = trimmed.strip_prefix("LogGroupName: !Ref ") {
            group = Some(g.to_string());
        }
        if let Some(pattern) = trimmed.strip_prefix("FilterPattern: ") {
            let term = pattern.trim_matches('\'').trim_matches('"').to_string();
            filters.push((group.clone().unwrap_or_default(), term));
        }
    }
    filters
}

#[test]
fn every_metric_filter_matches_a_marker_and_every_counted_marker_every_function() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let template = std::fs::read_to_string(path).unwrap();
    let filters = metric_filters(&template);
    assert!(filters.len() >= 8, "{filters:?}");
    let mut groups_of: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (group, term) in &filters {
        assert!(
            log_markers::ALL.contains(&term.as_str()),
            "the filter of {group} matches {term:?}, which is no marker of shared::log_markers"
        );
        groups_of.entry(term).or_default().insert(group);
    }
    let functions: BTreeSet<&str> = [
        "CreateIntentLogGroup",
        "WebhookLogGroup",
        "ReconcileLogGroup",
    ]
    .into();
    for marker in [ANOMALY, DYNAMODB_VALIDATION] {
        assert_eq!(groups_of.get(marker), Some(&functions), "{marker}");
    }
    // Refunds end in the webhook (an event) and the reconciler (a check).
    assert_eq!(
        groups_of.get(REFUND_FAILED),
        Some(&["ReconcileLogGroup", "WebhookLogGroup"].into())
    );
}

#[test]
fn the_filter_reader_finds_each_filter_with_its_group() {
    let template = "Resources:\n  AFilter:\n    Type: AWS::Logs::MetricFilter\n    Properties:\n      LogGroupName: !Ref ALogGroup\n      FilterPattern: '\"ANOMALY\"'\n  B:\n    Type: AWS::SNS::Topic\n    Properties:\n      FilterPattern: '\"NOT_A_FILTER\"'\n";
    assert_eq!(
        metric_filters(template),
        vec![("ALogGroup".to_string(), "ANOMALY".to_string())]
    );
}

fn sources(path: &Path, out: &mut Vec<std::path::PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            sources(&entry.unwrap().path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

#[test]
fn no_source_names_a_marker_by_its_literal() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    sources(&root.join("shared/src"), &mut files);
    sources(&root.join("functions"), &mut files);
    let mut found = Vec::new();
    for file in files {
        if file.ends_with("log_markers.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for marker in log_markers::ALL {
            // A log line's literal starts with the marker: `"ANOMALY: …"`.
            if text.contains(&format!("\"{marker}")) {
                found.push(format!("{} spells {marker}", file.display()));
            }
        }
    }
    assert!(found.is_empty(), "use shared::log_markers: {found:#?}");
}
