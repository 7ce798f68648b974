//! The `fintoc-sim` binary as users run it.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_fintoc-sim");

#[test]
fn help_documents_the_simulator_and_its_control_api() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "--port",
        "--webhook-url",
        "/_sim/faults",
        "/_sim/payment_intents/{id}/finish",
        "fintoc-sim send",
    ] {
        assert!(text.contains(needle), "--help lacks {needle}");
    }
}

#[test]
fn sign_reproduces_the_official_test_vector() {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/tests/data/fintoc-signature-vector.payload.json"
    );
    let out = Command::new(BIN)
        .args([
            "sign",
            "--secret",
            "whsec_test_secret",
            "--timestamp",
            "1743890251",
            "--file",
            file,
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        "t=1743890251,v1=11b98dd8f5500109246aa4d9875fad2e97d462560b012a5f50ff924411de0b0f"
    );
}

#[test]
fn bad_arguments_exit_2_with_usage() {
    let out = Command::new(BIN).arg("--bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("USAGE"));
}

#[test]
fn resign_event_rewrites_only_the_signature_header() {
    let dir = std::env::temp_dir().join(format!("resign-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("webhook-succeeded.json");
    let original = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/webhook-succeeded.json"
    ))
    .unwrap();
    std::fs::write(&file, &original).unwrap();
    let out = Command::new(BIN)
        .args([
            "resign-event",
            "--secret",
            "whsec_x",
            "--timestamp",
            "1800000000",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let updated = std::fs::read_to_string(&file).unwrap();
    let event: serde_json::Value = serde_json::from_str(&updated).unwrap();
    let body = event["body"].as_str().unwrap();
    let expected = fintoc_sim::sign("whsec_x", 1_800_000_000, body.as_bytes());
    assert_eq!(event["headers"]["fintoc-signature"], expected.as_str());
    let before: serde_json::Value = serde_json::from_str(&original).unwrap();
    let mut after = event.clone();
    after["headers"]["fintoc-signature"] = before["headers"]["fintoc-signature"].clone();
    assert_eq!(after, before, "nothing else changed");
    assert_eq!(
        updated.lines().count(),
        original.lines().count(),
        "formatting kept"
    );
}
