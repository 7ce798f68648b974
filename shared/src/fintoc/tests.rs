//! Unit tests of the Fintoc client against a local stand-in server: requests,
//! retries and backoff, error classification, versions.

use super::*;
use crate::secrets::SecretString;
use std::time::Duration;

#[test]
fn ssl_cert_file_adds_its_certificates_and_nothing_else() {
    let dir = std::env::temp_dir().join(format!("extra-roots-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/isrg-root-x1.pem");
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    assert_eq!(extra_roots(None).len(), 0);
    assert_eq!(extra_roots(Some(std::ffi::OsStr::new(root))).len(), 1);
    assert_eq!(extra_roots(Some(garbage.as_os_str())).len(), 0);
    assert_eq!(
        extra_roots(Some(dir.join("missing.pem").as_os_str())).len(),
        0
    );
}

#[test]
fn judges_statuses() {
    let ok = br#"{"id":"pi_1","status":"created","amount":5,"currency":"CLP","widget_token":"w","extra":{"x":1},"metadata":null}"#;
    match judge::<FintocPaymentIntent>(201, ok) {
        Verdict::Done(Ok(pi)) => {
            assert_eq!(pi.id, "pi_1");
            assert_eq!(pi.widget_token.as_deref(), Some("w"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(judge::<FintocPaymentIntent>(500, b""), Verdict::Retry);
    assert_eq!(judge::<FintocPaymentIntent>(503, b""), Verdict::Retry);
    assert_eq!(judge::<FintocPaymentIntent>(429, b""), Verdict::Retry);
    assert_eq!(
        judge::<FintocPaymentIntent>(401, b"{}"),
        Verdict::Done(Err(FintocError::Configuration { status: 401 }))
    );
    assert_eq!(
        judge::<FintocPaymentIntent>(403, b"{}"),
        Verdict::Done(Err(FintocError::Configuration { status: 403 }))
    );
    assert!(matches!(
        judge::<FintocPaymentIntent>(200, b"nope"),
        Verdict::Done(Err(FintocError::InvalidResponse(_)))
    ));
}

#[test]
fn session_answers_are_judged_like_the_intents() {
    let body =
        br#"{"id":"cs_1","status":"expired","amount":5,"currency":"CLP","payment_resource":null}"#;
    for judged in [judge_session_lookup(200, body), judge_expire(200, body)] {
        match judged {
            Verdict::Done(Ok(Some(s))) => assert_eq!(s.id, "cs_1"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(judge_session_lookup(404, b""), Verdict::Done(Ok(None)));
    assert_eq!(judge_expire(404, b""), Verdict::Done(Ok(None)));
    assert_eq!(judge_session_lookup(503, b""), Verdict::Retry);
    assert_eq!(judge_expire(429, b""), Verdict::Retry);
    let refused = br#"{"error":{"type":"invalid_request_error","code":"checkout_session_not_expirable","message":"no"}}"#;
    assert!(matches!(
        judge_expire(400, refused),
        Verdict::Done(Err(FintocError::Rejected { .. }))
    ));
    assert!(matches!(
        judge_session_lookup(200, br#"{"id":"cs_1"}"#),
        Verdict::Done(Err(FintocError::InvalidResponse(_)))
    ));
}

#[test]
fn a_rejection_passes_on_only_what_is_safe_to_show() {
    // Before, Fintoc's message, code and param reached the caller (and the logs)
    // verbatim: an echoed account number, markup, anything.
    let body = br#"{"error":{"type":"invalid_request_error","code":"<b>x</b>","message":"account 000123456789 is closed","param":"a b"}}"#;
    let Verdict::Done(Err(rejected)) = judge::<FintocPaymentIntent>(400, body) else {
        panic!("a rejection")
    };
    let shown = format!("{rejected}");
    assert!(!shown.contains("000123456789"), "{shown}");
    let FintocError::Rejected {
        code,
        message,
        param,
        ..
    } = rejected
    else {
        panic!("a rejection")
    };
    assert_eq!(code, "fintoc_rejected");
    assert_eq!(message, "account [number] is closed");
    assert_eq!(param, None);
}

#[test]
fn rejection_carries_fintoc_code_and_message() {
    let body = br#"{"error":{"type":"invalid_request_error","code":"invalid_recipient","message":"bad account","param":"recipient_account","doc_url":"x"}}"#;
    match judge::<FintocPaymentIntent>(400, body) {
        Verdict::Done(Err(FintocError::Rejected {
            status,
            code,
            message,
            param,
            ..
        })) => {
            assert_eq!(
                (status, code.as_str(), message.as_str()),
                (400, "invalid_recipient", "bad account")
            );
            assert_eq!(param.as_deref(), Some("recipient_account"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        judge::<FintocPaymentIntent>(
            422,
            br#"{"error":{"type":"invalid_request_error","code":"x"}}"#
        ),
        Verdict::Done(Err(FintocError::Rejected { status: 422, .. }))
    ));
}

#[test]
fn only_validation_errors_are_final_refusals() {
    for status in [408, 409, 423, 425] {
        assert_eq!(
            judge::<FintocPaymentIntent>(status, b"{}"),
            Verdict::Retry,
            "{status}"
        );
    }
    let api_error = br#"{"error":{"type":"api_error","code":"x","message":"m"}}"#;
    for (status, body) in [
        (400, &api_error[..]),
        (422, b"<html>"),
        (410, br#"{"error":{"type":"invalid_request_error"}}"#),
        (418, b""),
    ] {
        assert_eq!(
            judge::<FintocPaymentIntent>(status, body),
            Verdict::Done(Err(FintocError::Unexpected { status })),
            "{status}"
        );
    }
}

#[test]
fn backoff_grows_is_capped_and_honours_retry_after() {
    let p = RetryPolicy {
        max_retries: 5,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
        attempt_timeout: Duration::from_secs(1),
    };
    assert_eq!(p.delay(0, None, 0.0), Duration::from_millis(100));
    assert_eq!(p.delay(2, None, 0.0), Duration::from_millis(400));
    assert_eq!(p.delay(2, None, 1.0), Duration::from_millis(500));
    assert_eq!(p.delay(10, None, 0.5), Duration::from_secs(1));
    assert_eq!(
        p.delay(0, Some(Duration::from_millis(700)), 0.0),
        Duration::from_millis(700)
    );
    assert_eq!(
        p.delay(0, Some(Duration::from_secs(30)), 0.0),
        Duration::from_secs(1)
    );
}

#[test]
fn attempts_fit_in_the_invocations_budget() {
    let p = RetryPolicy {
        max_retries: 5,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(4),
        attempt_timeout: Duration::from_secs(8),
    };
    let s = Duration::from_secs;
    assert_eq!(p.attempt_timeout_within(s(0), None), Some(s(8)));
    assert_eq!(p.attempt_timeout_within(s(0), Some(s(20))), Some(s(8)));
    assert_eq!(p.attempt_timeout_within(s(15), Some(s(20))), Some(s(5)));
    assert_eq!(
        p.attempt_timeout_within(Duration::from_millis(19_500), Some(s(20))),
        None,
        "half a second left: no attempt"
    );
    assert_eq!(p.attempt_timeout_within(s(21), Some(s(20))), None);
}

#[test]
fn the_client_never_debug_prints_its_key() {
    let s = SecretString::new("sk_live_abc");
    let client = FintocHttpClient::new(
        "http://x/",
        s,
        ApiVersions::default(),
        RetryPolicy::default(),
    )
    .unwrap();
    assert!(!format!("{client:?}").contains("sk_live_abc"));
}

#[test]
fn the_next_page_of_a_list_is_read_from_its_link_header() {
    assert_eq!(
        next_page_query(
            "<https://api.fintoc.com/v1/refunds?since=2026-12-01T00%3A00%3A00Z&page=2&per_page=300>; rel=\"next\""
        )
        .as_deref(),
        Some("since=2026-12-01T00%3A00%3A00Z&page=2&per_page=300")
    );
    assert_eq!(
        next_page_query("<https://x/v1/refunds?page=1>; rel=\"prev\", <https://x/v1/refunds?page=3>; rel=\"next\"")
            .as_deref(),
        Some("page=3")
    );
    assert_eq!(
        next_page_query("<https://x/v1/refunds?page=1>; rel=\"prev\""),
        None
    );
    assert_eq!(next_page_query(""), None);
    assert_eq!(next_page_query("garbage; rel=\"next\""), None);
}
