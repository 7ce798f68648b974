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
        "/../shared/tests/data/fintoc-signature-vector.payload.json"
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
