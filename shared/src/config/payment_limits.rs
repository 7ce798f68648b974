//! What a create may ask for: the recipient account and the amount limits per
//! currency, from the environment.

use super::*;

impl CreateIntentConfig {
    /// The settings of the create use case.
    pub fn create_settings(&self) -> PaymentSettings {
        PaymentSettings {
            limits: self.limits.clone(),
            recipient: self.recipient.clone(),
            idempotency_namespace: self.idempotency_namespace.clone(),
            lease: self.lease,
            record_ttl: self.record_ttl,
            widget_token_ttl: self.widget_token_ttl,
            deployment_tag: self.deployment_tag.clone(),
            first_check_after: self.first_check_after,
            sessions: self.sessions.clone(),
            mode: None,
        }
    }

    /// The mode this deployment runs in (see [`key_mode`]).
    pub fn key_mode(&self, key: &SecretString) -> Result<String, ConfigError> {
        key_mode(self.mode.as_deref(), key)
    }
}

const RECIPIENT_VARS: [&str; 4] = [
    "RECIPIENT_HOLDER_ID",
    "RECIPIENT_ACCOUNT_NUMBER",
    "RECIPIENT_ACCOUNT_TYPE",
    "RECIPIENT_INSTITUTION_ID",
];

pub(super) fn recipient_from_env<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<Option<RecipientAccount>, ConfigError> {
    let values: Vec<Option<String>> = RECIPIENT_VARS.iter().map(|v| env.get(v)).collect();
    if values.iter().all(Option::is_none) {
        return Ok(None);
    }
    if let Some(i) = values.iter().position(Option::is_none) {
        return Err(err(
            RECIPIENT_VARS[i],
            "is required when any RECIPIENT_* variable is set (set all four or none)",
        ));
    }
    let mut values = values.into_iter().map(Option::unwrap_or_default);
    let mut next = || values.next().unwrap_or_default();
    Ok(Some(RecipientAccount {
        holder_id: next(),
        number: next(),
        account_type: next(),
        institution_id: next(),
    }))
}

pub(super) fn limits_from_env<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<CreateLimits, ConfigError> {
    let defaults = CreateLimits::default();
    let allowed_currencies = match env.get("ALLOWED_CURRENCIES") {
        None => defaults.allowed_currencies,
        Some(list) => {
            let mut out = Vec::new();
            for code in list.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                let currency = Currency::parse(code).ok_or_else(|| {
                    err(
                        "ALLOWED_CURRENCIES",
                        format!("unknown currency {code:?}; use CLP and/or MXN"),
                    )
                })?;
                if !out.contains(&currency) {
                    out.push(currency);
                }
            }
            if out.is_empty() {
                return Err(err(
                    "ALLOWED_CURRENCIES",
                    "must list at least one of CLP, MXN",
                ));
            }
            out
        }
    };
    let mut max_amounts = BTreeMap::new();
    for (currency, var) in [
        (Currency::Clp, "MAX_AMOUNT_CLP"),
        (Currency::Mxn, "MAX_AMOUNT_MXN"),
    ] {
        let default = defaults.max_amounts[&currency];
        max_amounts.insert(currency, env.number(var, default, 1, 1_000_000_000_000)?);
    }
    Ok(CreateLimits {
        allowed_currencies,
        max_amounts,
    })
}
