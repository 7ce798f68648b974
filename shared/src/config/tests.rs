//! Unit tests of `config`.

use super::*;
use std::collections::HashMap;

fn parse(vars: &[(&str, &str)]) -> Result<CreateIntentConfig, ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    CreateIntentConfig::from_env(&Env(move |k| map.get(k).cloned()))
}

const BASE: [(&str, &str); 2] = [
    ("TABLE_NAME", "payments"),
    ("FINTOC_SECRET_KEY", "sk_test_x"),
];

#[test]
fn minimal_config_has_sensible_defaults() {
    let c = parse(&BASE).unwrap();
    assert_eq!(c.fintoc_base_url, DEFAULT_FINTOC_BASE_URL);
    assert_eq!(c.recipient, None);
    assert_eq!(c.widget_token_ttl, Duration::from_secs(600));
    assert_eq!(c.limits, CreateLimits::default());
    assert!(c.lease > c.retry.attempt_timeout);
}

#[test]
fn idempotency_records_may_have_a_table_of_their_own() {
    assert_eq!(parse(&BASE).unwrap().table.idempotency_table_name, None);
    let mut vars = BASE.to_vec();
    vars.push(("IDEMPOTENCY_TABLE_NAME", "payments-idempotency"));
    assert_eq!(
        parse(&vars)
            .unwrap()
            .table
            .idempotency_table_name
            .as_deref(),
        Some("payments-idempotency")
    );
    let mut bad = BASE.to_vec();
    bad.push(("IDEMPOTENCY_TABLE_NAME", "no spaces"));
    assert_eq!(parse(&bad).unwrap_err().variable, "IDEMPOTENCY_TABLE_NAME");
}

#[test]
fn errors_name_the_variable() {
    assert_eq!(
        parse(&[("FINTOC_SECRET_KEY", "sk_test_x")])
            .unwrap_err()
            .variable,
        "TABLE_NAME"
    );
    assert_eq!(
        parse(&[("TABLE_NAME", "payments")]).unwrap_err().variable,
        "FINTOC_SECRET_KEY"
    );
    let mut vars = BASE.to_vec();
    vars.push(("MAX_AMOUNT_CLP", "lots"));
    assert_eq!(parse(&vars).unwrap_err().variable, "MAX_AMOUNT_CLP");
    let mut vars = BASE.to_vec();
    vars.push(("ALLOWED_CURRENCIES", "CLP,USD"));
    assert_eq!(parse(&vars).unwrap_err().variable, "ALLOWED_CURRENCIES");
    let mut vars = BASE.to_vec();
    vars.push(("FINTOC_API_VERSION", "latest"));
    assert_eq!(parse(&vars).unwrap_err().variable, "FINTOC_API_VERSION");
    let mut vars = BASE.to_vec();
    vars.push(("RECIPIENT_HOLDER_ID", "76.123.456-7"));
    assert_eq!(
        parse(&vars).unwrap_err().variable,
        "RECIPIENT_ACCOUNT_NUMBER"
    );
}

#[test]
fn secret_key_error_does_not_echo_the_key() {
    let e = parse(&[
        ("TABLE_NAME", "payments"),
        ("FINTOC_SECRET_KEY", "sk_live_supersecret"),
        ("FINTOC_SECRET_KEY_PARAMETER", "/x"),
    ])
    .unwrap_err();
    assert!(!e.to_string().contains("supersecret"));
}

#[test]
fn key_mode_is_checked_without_echoing_the_key() {
    let mut vars = BASE.to_vec();
    vars.push(("FINTOC_MODE", "live"));
    let c = parse(&vars).unwrap();
    let e = c
        .key_mode(&SecretString::new("sk_test_abcdef"))
        .unwrap_err();
    assert_eq!(e.variable, "FINTOC_MODE");
    assert!(!e.to_string().contains("abcdef"));
    assert_eq!(
        c.key_mode(&SecretString::new("sk_live_abcdef")).unwrap(),
        "live"
    );
    vars.push(("FINTOC_MODE", "prod"));
    let mut bad = BASE.to_vec();
    bad.push(("FINTOC_MODE", "prod"));
    assert_eq!(parse(&bad).unwrap_err().variable, "FINTOC_MODE");
}

#[test]
fn without_fintoc_mode_the_key_says_the_mode() {
    let c = parse(&BASE).unwrap();
    assert_eq!(c.mode, None);
    for (key, mode) in [("sk_test_abcdef", "test"), ("sk_live_abcdef", "live")] {
        assert_eq!(c.key_mode(&SecretString::new(key)).unwrap(), mode);
    }
    let e = c
        .key_mode(&SecretString::new("sk_abcdef"))
        .expect_err("a key that says no mode needs FINTOC_MODE");
    assert_eq!(e.variable, "FINTOC_MODE");
    assert!(!e.to_string().contains("abcdef"));
}

#[test]
fn webhook_config_and_rotation() {
    let map: HashMap<String, String> = [
        ("TABLE_NAME", "payments"),
        ("WEBHOOK_SECRET", "whsec_new, whsec_old"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let c = WebhookConfig::from_env(&Env(move |k| map.get(k).cloned())).unwrap();
    assert_eq!(c.tolerance_secs, 300);
    assert_eq!(c.secret_refresh, Duration::from_secs(60));
    assert_eq!(c.deployment.tag, "default");
    assert_eq!(c.deployment.mode, None);
    assert!(c.write_first);
    assert!(c.connect_at_init);
    let SecretSource::Value(v) = c.secret_source.clone() else {
        panic!()
    };
    let secrets = crate::secrets::split_secrets(&v);
    assert_eq!(secrets.len(), 2);
    assert_eq!(secrets[1].expose(), "whsec_old");
    let none: HashMap<String, String> = HashMap::from([("TABLE_NAME".into(), "payments".into())]);
    let e = WebhookConfig::from_env(&Env(move |k| none.get(k).cloned())).unwrap_err();
    assert_eq!(e.variable, "WEBHOOK_SECRET");
    for (value, expected) in [("false", Some(false)), ("true", Some(true)), ("no", None)] {
        let vars: HashMap<String, String> = [
            ("TABLE_NAME", "payments"),
            ("WEBHOOK_SECRET", "whsec_new"),
            ("WEBHOOK_WRITE_FIRST", value),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let parsed = WebhookConfig::from_env(&Env(move |k| vars.get(k).cloned()));
        match expected {
            Some(flag) => assert_eq!(parsed.unwrap().write_first, flag),
            None => assert_eq!(parsed.unwrap_err().variable, "WEBHOOK_WRITE_FIRST"),
        }
    }
}

fn source(var: &str) -> Result<SecretSource, ConfigError> {
    let env = Env(|name: &str| (name == var).then(|| "value".to_string()));
    secret_source(&env, "KEY", "KEY_SECRET_ID", "KEY_PARAMETER")
}

#[test]
fn each_variable_selects_its_source() {
    assert_eq!(
        source("KEY").unwrap(),
        SecretSource::Value(SecretString::new("value"))
    );
    assert_eq!(
        source("KEY_PARAMETER").unwrap(),
        SecretSource::Parameter("value".into())
    );
}

#[test]
fn a_secrets_manager_id_needs_the_feature() {
    let result = source("KEY_SECRET_ID");
    if cfg!(feature = "secrets-manager") {
        assert_eq!(
            result.unwrap(),
            SecretSource::SecretsManager("value".into())
        );
    } else {
        let e = result.unwrap_err();
        assert_eq!(e.variable, "KEY_SECRET_ID");
        assert!(e.problem.contains("KEY_PARAMETER"), "{}", e.problem);
    }
}

#[test]
fn the_record_ttl_must_outlive_the_lease_and_an_invocation() {
    let mut vars = BASE.to_vec();
    vars.extend([
        ("IDEMPOTENCY_LEASE_SECONDS", "40"),
        ("IDEMPOTENCY_TTL_SECONDS", "900"),
    ]);
    assert_eq!(
        parse(&vars).unwrap_err().variable,
        "IDEMPOTENCY_TTL_SECONDS"
    );
    let mut vars = BASE.to_vec();
    vars.extend([
        ("IDEMPOTENCY_LEASE_SECONDS", "40"),
        ("IDEMPOTENCY_TTL_SECONDS", "941"),
    ]);
    assert!(parse(&vars).is_ok());
}

#[test]
fn deployment_tag_and_mode_are_read_and_checked() {
    let mut vars = BASE.to_vec();
    vars.extend([("DEPLOYMENT_TAG", "shop-a.prod"), ("FINTOC_MODE", "test")]);
    let c = parse(&vars).unwrap();
    assert_eq!(c.create_settings().deployment_tag, "shop-a.prod");
    let mut bad = BASE.to_vec();
    bad.push(("DEPLOYMENT_TAG", "shop a"));
    assert_eq!(parse(&bad).unwrap_err().variable, "DEPLOYMENT_TAG");
    let map: HashMap<String, String> = [
        ("TABLE_NAME", "payments"),
        ("WEBHOOK_SECRET", "whsec_x"),
        ("DEPLOYMENT_TAG", "shop-a"),
        ("FINTOC_MODE", "live"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let w = WebhookConfig::from_env(&Env(move |k| map.get(k).cloned())).unwrap();
    assert_eq!(
        w.deployment,
        Deployment {
            tag: "shop-a".into(),
            mode: Some("live".into())
        }
    );
}

#[test]
fn reads_recipient_and_limits() {
    let mut vars = BASE.to_vec();
    vars.extend([
        ("RECIPIENT_HOLDER_ID", "771433855"),
        ("RECIPIENT_ACCOUNT_NUMBER", "123456"),
        ("RECIPIENT_ACCOUNT_TYPE", "checking_account"),
        ("RECIPIENT_INSTITUTION_ID", "cl_banco_de_chile"),
        ("ALLOWED_CURRENCIES", "clp"),
        ("MAX_AMOUNT_CLP", "1000"),
    ]);
    let c = parse(&vars).unwrap();
    assert_eq!(c.recipient.unwrap().institution_id, "cl_banco_de_chile");
    assert_eq!(c.limits.allowed_currencies, vec![Currency::Clp]);
    assert_eq!(c.limits.max_amounts[&Currency::Clp], 1000);
}
