//! Property tests: the signature-header parser and the event-envelope parser never
//! panic, whatever bytes arrive, and verification only accepts what was signed.

use proptest::prelude::*;
use shared::secrets::SecretString;
use shared::webhook::event::Event;
use shared::webhook::signature::{compute_signature, parse_header, verify};

/// Strings built from the header's own vocabulary, to reach deep parser paths.
fn header_like() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("t=".to_string()),
        Just("v1=".to_string()),
        Just("v0=".to_string()),
        Just(",".to_string()),
        Just("=".to_string()),
        Just(" ".to_string()),
        "[0-9]{0,14}",
        "[0-9a-fA-F]{0,70}",
        any::<String>(),
    ];
    prop::collection::vec(token, 0..12).prop_map(|parts| parts.concat())
}

fn json_like() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        "[a-z_.]{0,12}".prop_map(serde_json::Value::from),
    ];
    let value = leaf.prop_recursive(3, 24, 6, |inner| {
        prop::collection::btree_map(
            prop_oneof![
                Just("id".to_string()),
                Just("type".to_string()),
                Just("data".to_string()),
                Just("status".to_string()),
                Just("sender_account".to_string()),
                Just("metadata".to_string()),
                Just("number".to_string()),
                "[a-z]{1,6}"
            ],
            inner,
            0..6,
        )
        .prop_map(|m| serde_json::Value::Object(m.into_iter().collect()))
    });
    prop_oneof![
        value.prop_map(|v| v.to_string().into_bytes()),
        any::<Vec<u8>>()
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn signature_header_parser_never_panics(header in header_like(), body in any::<Vec<u8>>(), now in any::<i64>()) {
        let _ = parse_header(&header);
        let _ = verify(Some(&header), &body, &[SecretString::new("whsec_x")], now, 300);
    }

    #[test]
    fn envelope_parser_never_panics(body in json_like()) {
        if let Ok(event) = Event::parse(&body) {
            let _ = event.kind();
            if let Ok(pi) = event.intent_report() {
                let _ = pi.sender_account.map(|a| a.masked());
            }
        }
    }

    #[test]
    fn only_the_signed_body_verifies(body in any::<Vec<u8>>(), flip in any::<usize>(), t in 1_000_000_000i64..2_000_000_000) {
        let secret = "whsec_prop";
        let header = format!("t={t},v1={}", hex::encode(compute_signature(secret, &t.to_string(), &body)));
        let secrets = [SecretString::new(secret)];
        prop_assert!(verify(Some(&header), &body, &secrets, t, 300).is_ok());
        if !body.is_empty() {
            let mut changed = body.clone();
            changed[flip % body.len()] ^= 0x01;
            prop_assert!(verify(Some(&header), &changed, &secrets, t, 300).is_err());
        }
    }
}
