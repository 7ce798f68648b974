//! Unit tests of `create`.

use super::*;
use InputErrorKind::*;

const JSON: Option<&str> = Some("application/json");

fn parse(body: &str) -> Result<CreatePaymentRequest, InputError> {
    parse_create_request(JSON, body.as_bytes(), &CreateLimits::default())
}

fn code(body: &str) -> (InputErrorKind, String, Option<String>) {
    let e = parse(body).unwrap_err();
    (e.kind, e.code.to_string(), e.param)
}

#[test]
fn accepts_a_full_request_and_uppercases_currency() {
    let r = parse(r#"{"amount":1000,"currency":"clp","customer_email":"a@b.cl","metadata":{"x":"1"},"order_id":"o-1"}"#).unwrap();
    assert_eq!(r.amount, 1000);
    assert_eq!(r.currency, Currency::Clp);
    assert_eq!(r.currency.code(), "CLP");
    assert_eq!(r.metadata.get("x").map(String::as_str), Some("1"));
    assert_eq!(r.order_id, "o-1");
}

#[test]
fn rejects_bad_amounts() {
    for body in [
        r#"{"amount":"1000","currency":"CLP"}"#,
        r#"{"amount":10.5,"currency":"CLP"}"#,
        r#"{"amount":-5,"currency":"CLP"}"#,
        r#"{"amount":0,"currency":"CLP"}"#,
        r#"{"amount":0.0,"currency":"CLP"}"#,
        r#"{"amount":1e300,"currency":"CLP"}"#,
        r#"{"amount":true,"currency":"CLP"}"#,
    ] {
        assert_eq!(
            code(body),
            (Malformed, "invalid_amount".into(), Some("amount".into())),
            "{body}"
        );
    }
    assert_eq!(code(r#"{"currency":"CLP"}"#).1, "missing_field");
    assert_eq!(
        code(r#"{"amount":null,"currency":"CLP"}"#).1,
        "missing_field"
    );
}

/// JSON Schema counts an integral number as an integer (`320.0`, `1e3`): so does
/// the server, or a spec-valid request would be refused (issue 36).
#[test]
fn takes_an_integral_number_as_the_integer_it_is() {
    for (amount, want) in [("320.0", 320), ("1e3", 1000), ("1.5e3", 1500)] {
        let body = format!(r#"{{"amount":{amount},"currency":"CLP","order_id":"o-1"}}"#);
        let request = parse_create_request(
            Some("application/json"),
            body.as_bytes(),
            &CreateLimits::default(),
        )
        .unwrap_or_else(|e| panic!("{amount}: {e:?}"));
        assert_eq!(request.amount, want, "{amount}");
    }
}

#[test]
fn rejects_bad_currency() {
    assert_eq!(
        code(r#"{"amount":1}"#),
        (Malformed, "missing_field".into(), Some("currency".into()))
    );
    assert_eq!(
        code(r#"{"amount":1,"currency":"USD"}"#).1,
        "invalid_currency"
    );
    assert_eq!(code(r#"{"amount":1,"currency":5}"#).1, "invalid_currency");
}

#[test]
fn recipient_and_unknown_fields_are_named() {
    let (status, code_, param) =
        code(r#"{"amount":1,"currency":"CLP","recipient_account":{"number":"1"}}"#);
    assert_eq!(
        (status, code_.as_str(), param.as_deref()),
        (Malformed, "forbidden_field", Some("recipient_account"))
    );
    let e = parse(r#"{"amount":1,"currency":"CLP","amout":2}"#).unwrap_err();
    assert_eq!(e.code, "unknown_field");
    assert!(e.message.contains("amout"));
}

#[test]
fn rejects_non_json_and_non_objects() {
    assert_eq!(code("amount=1").1, "invalid_json");
    assert_eq!(code("[1]").1, "invalid_json");
    assert_eq!(code("").1, "invalid_json");
}

#[test]
fn rejects_wrong_content_type_and_large_bodies() {
    let limits = CreateLimits::default();
    let body = br#"{"amount":1,"currency":"CLP","order_id":"o"}"#;
    assert_eq!(
        parse_create_request(Some("text/plain"), body, &limits)
            .unwrap_err()
            .kind,
        UnsupportedMediaType
    );
    assert_eq!(
        parse_create_request(None, body, &limits).unwrap_err().kind,
        UnsupportedMediaType
    );
    assert!(parse_create_request(Some("application/json; charset=utf-8"), body, &limits).is_ok());
    let big = format!(
        r#"{{"amount":1,"currency":"CLP","order_id":"{}"}}"#,
        "x".repeat(MAX_BODY_BYTES)
    );
    assert_eq!(
        parse_create_request(JSON, big.as_bytes(), &limits)
            .unwrap_err()
            .kind,
        TooLarge
    );
}

#[test]
fn metadata_must_be_flat_and_bounded() {
    assert_eq!(
        code(r#"{"amount":1,"currency":"CLP","metadata":{"a":{"b":"c"}}}"#)
            .2
            .as_deref(),
        Some("metadata[a]")
    );
    assert_eq!(
        code(r#"{"amount":1,"currency":"CLP","metadata":{"a":1}}"#).1,
        "invalid_metadata"
    );
    assert_eq!(
        code(r#"{"amount":1,"currency":"CLP","metadata":"x"}"#).1,
        "invalid_metadata"
    );
    let many: Map<String, Value> = (0..=MAX_METADATA_ENTRIES)
        .map(|i| (format!("k{i}"), Value::String("v".into())))
        .collect();
    let body = serde_json::json!({"amount":1,"currency":"CLP","metadata":many}).to_string();
    assert_eq!(code(&body).1, "invalid_metadata");
    let long_value = serde_json::json!({"amount":1,"currency":"CLP","metadata":{"k":"v".repeat(MAX_METADATA_VALUE_CHARS + 1)}}).to_string();
    assert_eq!(code(&long_value).1, "invalid_metadata");
    let long_key = serde_json::json!({"amount":1,"currency":"CLP","metadata":{"k".repeat(MAX_METADATA_KEY_CHARS + 1):"v"}}).to_string();
    assert_eq!(code(&long_key).1, "invalid_metadata");
}

#[test]
fn validates_email_and_order_id() {
    assert_eq!(
        code(r#"{"amount":1,"currency":"CLP","customer_email":"nope"}"#).1,
        "invalid_customer_email"
    );
    assert_eq!(
        code(r#"{"amount":1,"currency":"CLP","customer_email":3}"#).1,
        "invalid_customer_email"
    );
    assert_eq!(
        code(r#"{"amount":1,"currency":"CLP","order_id":""}"#).1,
        "invalid_order_id"
    );
    assert_eq!(
        code(r#"{"amount":1,"currency":"CLP","order_id":7}"#).1,
        "invalid_order_id"
    );
}

#[test]
fn limits_answer_422() {
    let limits = CreateLimits {
        allowed_currencies: vec![Currency::Clp],
        max_amounts: BTreeMap::from([(Currency::Clp, 1000)]),
    };
    let e = parse_create_request(
        JSON,
        br#"{"amount":1001,"currency":"CLP","order_id":"o"}"#,
        &limits,
    )
    .unwrap_err();
    assert_eq!((e.kind, e.code), (OverLimit, "amount_too_large"));
    assert!(parse_create_request(
        JSON,
        br#"{"amount":1000,"currency":"CLP","order_id":"o"}"#,
        &limits
    )
    .is_ok());
    let e = parse_create_request(
        JSON,
        br#"{"amount":1,"currency":"MXN","order_id":"o"}"#,
        &limits,
    )
    .unwrap_err();
    assert_eq!((e.kind, e.code), (OverLimit, "currency_not_allowed"));
}

#[test]
fn order_id_is_required() {
    assert_eq!(
        code(r#"{"amount":1,"currency":"CLP"}"#),
        (Malformed, "missing_field".into(), Some("order_id".into()))
    );
}

#[test]
fn repeated_keys_are_refused_at_any_depth() {
    for body in [
        r#"{"amount":5000001,"currency":"CLP","amount":7}"#,
        r#"{"amount":7,"currency":"CLP","metadata":{"a":"1","a":"2"}}"#,
    ] {
        assert_eq!(code(body).1, "duplicate_key", "{body}");
    }
    assert_eq!(
        parse_json_without_duplicate_keys(br#"{"a":[{"b":1},{"b":2}],"c":null}"#).unwrap(),
        serde_json::json!({"a":[{"b":1},{"b":2}],"c":null})
    );
    assert_eq!(code(r#"{"amount":1,"currency":"CLP"} x"#).1, "invalid_json");
}

#[test]
fn metadata_order_id_is_reserved() {
    let e =
        parse(r#"{"amount":1,"currency":"CLP","order_id":"o-1","metadata":{"order_id":"o-2"}}"#)
            .unwrap_err();
    assert_eq!(e.code, "reserved_metadata_key");
}

#[test]
fn echoed_input_is_cut() {
    let long = "k".repeat(10_000);
    let e = parse(&format!(r#"{{"amount":1,"currency":"CLP","{long}":1}}"#)).unwrap_err();
    assert!(e.message.len() < 400, "{}", e.message.len());
    assert!(e.param.unwrap().chars().count() <= MAX_ECHO_CHARS + 1);
    let e = parse(&format!(
        r#"{{"amount":1,"currency":"CLP","metadata":{{"{long}":"v"}}}}"#
    ))
    .unwrap_err();
    assert!(e.param.unwrap().len() < 100);
}

#[test]
fn fingerprint_is_canonical() {
    let a =
        parse(r#"{"amount":1000,"currency":"clp","order_id":"o","metadata":{"b":"2","a":"1"}}"#)
            .unwrap();
    let b = parse(
        r#"{ "metadata":{"a":"1","b":"2"}, "order_id":"o", "currency":"CLP", "amount":1000 }"#,
    )
    .unwrap();
    let c =
        parse(r#"{"amount":1001,"currency":"CLP","order_id":"o","metadata":{"a":"1","b":"2"}}"#)
            .unwrap();
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert_ne!(a.fingerprint(), c.fingerprint());
}

/// `body` as a JSON encoder that escapes every non-ASCII character writes it
/// (Python's `json.dumps`, as schemathesis sends it): an astral character takes
/// 12 bytes (`\ud83d\ude00`), the most a character can take on the wire.
fn escaped(value: &Value) -> String {
    let mut out = String::new();
    for c in value.to_string().chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// `n` astral characters, the `i`-th variant (so metadata keys differ).
fn astral(n: usize, i: usize) -> String {
    let mut s: String = "😀".repeat(n - 1);
    s.push(char::from_u32(0x1F600 + i as u32).unwrap());
    s
}

/// Issue 36: docs/openapi.yaml admits every field at its limit, written in its
/// longest form; the server took only 16 KiB of body, so such a request — valid by
/// the schema — was a `413`. Every schema-valid body now fits the limit.
#[test]
fn a_session_body_at_every_limit_the_schema_states_is_accepted() {
    let metadata: Map<String, Value> = (0..MAX_METADATA_ENTRIES)
        .map(|i| {
            (
                astral(MAX_METADATA_KEY_CHARS, i),
                Value::String(astral(MAX_METADATA_VALUE_CHARS, i)),
            )
        })
        .collect();
    let email = format!("{}@example.com", "a".repeat(254 - "@example.com".len()));
    let url = astral(MAX_URL_CHARS, 0);
    let body = escaped(&serde_json::json!({
        "amount": 1, "currency": "CLP", "order_id": astral(MAX_ORDER_ID_CHARS, 0),
        "customer_email": email, "metadata": metadata,
        "success_url": url, "cancel_url": url,
    }));
    assert!(
        body.len() > 16 * 1024 && body.len() <= MAX_BODY_BYTES,
        "{}",
        body.len()
    );
    let parsed = parse_session_request(JSON, body.as_bytes(), &CreateLimits::default()).unwrap();
    assert_eq!(parsed.metadata.len(), MAX_METADATA_ENTRIES);
    assert_eq!(parsed.order_id.chars().count(), MAX_ORDER_ID_CHARS);
}

/// Issue 36: a refund's metadata was bounded by its bytes in all (4096), which no
/// JSON Schema can state, so schema-valid metadata was refused. It is now held to
/// per-entry limits the schema states, chosen so that it never takes more than
/// 4096 bytes however it is written.
#[test]
fn a_refunds_metadata_is_held_to_limits_the_schema_states() {
    let refund = |metadata: Value| {
        parse_refund_request(
            JSON,
            escaped(&serde_json::json!({"amount": 1, "metadata": metadata})).as_bytes(),
        )
    };
    let most: Map<String, Value> = (0..REFUND_METADATA.entries)
        .map(|i| {
            (
                astral(REFUND_METADATA.key_chars, i),
                Value::String(astral(REFUND_METADATA.value_chars, i)),
            )
        })
        .collect();
    let accepted = refund(Value::Object(most)).unwrap();
    let bytes: usize = accepted
        .metadata
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum();
    assert!(bytes <= MAX_REFUND_METADATA_BYTES, "{bytes}");

    let too_many: Map<String, Value> = (0..=REFUND_METADATA.entries)
        .map(|i| (format!("k{i}"), Value::String("v".into())))
        .collect();
    let long_value = serde_json::json!({"k": "v".repeat(REFUND_METADATA.value_chars + 1)});
    let long_key = serde_json::json!({"k".repeat(REFUND_METADATA.key_chars + 1): "v"});
    for metadata in [Value::Object(too_many), long_value, long_key] {
        let refused = refund(metadata).unwrap_err();
        assert_eq!(
            (refused.kind, refused.code),
            (Malformed, "invalid_metadata")
        );
    }
}
