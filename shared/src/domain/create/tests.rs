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
