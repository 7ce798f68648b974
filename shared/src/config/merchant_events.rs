//! The merchant events dispatcher's configuration: its endpoint (URL and
//! Standard Webhooks secrets, from SSM when deployed), how long an attempt may take,
//! how long the retry ladder lasts, and how many attempts run at once.

use super::*;
use crate::destinations::valid_endpoint_name;
use crate::domain::delivery::RETRY_LADDER_MS;

/// The endpoint merchant events are posted to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointConfig {
    /// `MERCHANT_WEBHOOK_NAME` (default `merchant`): deliveries are kept under it.
    pub name: String,
    /// `MERCHANT_WEBHOOK_URL`: `https://` (or `http://` with `DELIVERY_ALLOW_HTTP`).
    pub url: String,
    /// `MERCHANT_WEBHOOK_SECRET` (local), `MERCHANT_WEBHOOK_SECRET_PARAMETER` (SSM
    /// SecureString) or `MERCHANT_WEBHOOK_SECRET_SECRET_ID`: one `whsec_…` secret,
    /// or two comma-separated during a rotation (each delivery signed with both).
    pub secret_source: SecretSource,
}

/// Everything the dispatcher needs.
#[derive(Debug, Clone, PartialEq)]
pub struct DispatchConfig {
    /// The table (the outbox).
    pub table: TableConfig,
    /// The endpoint, when `MERCHANT_WEBHOOK_URL` is set.
    pub endpoint: Option<EndpointConfig>,
    /// `EVENT_BUS_NAME`: the EventBridge bus every event is also put on.
    pub event_bus: Option<String>,
    /// `DELIVERY_TIMEOUT_MS` (default 5000, 100–20000): one attempt's bound.
    pub attempt_timeout: Duration,
    /// `DELIVERY_LADDER_SECONDS` (default: the full ladder, 99305 s): how long the
    /// retry ladder lasts, as a scale of [`RETRY_LADDER_MS`]; the local stack
    /// sets 120.
    pub ladder_scale: f64,
    /// `DELIVERY_CONCURRENCY` (default 16, 1–64): attempts in flight at once.
    pub concurrency: usize,
    /// `DELIVERY_SWEEP_LIMIT` (default 500, 1–5000): due deliveries per sweep.
    pub sweep_limit: i32,
}

/// The full ladder, in seconds.
const FULL_LADDER_SECS: u64 = {
    let mut total = 0;
    let mut i = 0;
    while i < RETRY_LADDER_MS.len() {
        total += RETRY_LADDER_MS[i];
        i += 1;
    }
    (total / 1000) as u64
};

/// The endpoint's name: `MERCHANT_WEBHOOK_NAME` (default `merchant`).
fn endpoint_name<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<String, ConfigError> {
    let name = env
        .get("MERCHANT_WEBHOOK_NAME")
        .unwrap_or_else(|| "merchant".to_string());
    if !valid_endpoint_name(&name) {
        return Err(err(
            "MERCHANT_WEBHOOK_NAME",
            "must be 1-40 characters of a-z, A-Z, 0-9, - and _, and not eventbridge (the bus's)",
        ));
    }
    Ok(name)
}

/// The names of the destinations the dispatcher sends to, from the same
/// variables (`MERCHANT_WEBHOOK_URL` set: the endpoint's; `EVENT_BUS_NAME` set: the
/// bus's) — for the operations function, which lists and replays deliveries but
/// holds no signing secret.
pub fn destination_names<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<Vec<String>, ConfigError> {
    let mut names = Vec::new();
    if env.get("MERCHANT_WEBHOOK_URL").is_some() {
        names.push(endpoint_name(env)?);
    }
    if env.get("EVENT_BUS_NAME").is_some() {
        names.push(crate::domain::delivery::BUS_DESTINATION.to_string());
    }
    Ok(names)
}

impl DispatchConfig {
    /// Reads the process environment.
    pub fn from_process_env() -> Result<Self, ConfigError> {
        Self::from_env(&Env(|name| std::env::var(name).ok()))
    }

    /// Reads and validates every variable.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let allow_http = env.flag("DELIVERY_ALLOW_HTTP", false)?;
        let endpoint = match env.get("MERCHANT_WEBHOOK_URL") {
            None => None,
            Some(url) => {
                let scheme_ok =
                    url.starts_with("https://") || (allow_http && url.starts_with("http://"));
                if !scheme_ok || url.len() > 2048 {
                    return Err(err(
                        "MERCHANT_WEBHOOK_URL",
                        "must be an https:// URL (http:// only with DELIVERY_ALLOW_HTTP=true, for local runs)",
                    ));
                }
                Some(EndpointConfig {
                    name: endpoint_name(env)?,
                    url,
                    secret_source: secret_source(
                        env,
                        "MERCHANT_WEBHOOK_SECRET",
                        "MERCHANT_WEBHOOK_SECRET_SECRET_ID",
                        "MERCHANT_WEBHOOK_SECRET_PARAMETER",
                    )?,
                })
            }
        };
        let ladder_secs = env.number(
            "DELIVERY_LADDER_SECONDS",
            FULL_LADDER_SECS,
            10,
            FULL_LADDER_SECS,
        )?;
        Ok(Self {
            table: TableConfig::from_env(env)?,
            endpoint,
            event_bus: env.get("EVENT_BUS_NAME"),
            attempt_timeout: Duration::from_millis(env.number(
                "DELIVERY_TIMEOUT_MS",
                5_000,
                100,
                20_000,
            )?),
            ladder_scale: ladder_secs as f64 / FULL_LADDER_SECS as f64,
            concurrency: env.number("DELIVERY_CONCURRENCY", 16, 1, 64)? as usize,
            sweep_limit: env.number("DELIVERY_SWEEP_LIMIT", 500, 1, 5_000)? as i32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<DispatchConfig, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        DispatchConfig::from_env(&Env(move |name| vars.get(name).cloned()))
    }

    #[test]
    fn an_endpoint_needs_https_and_a_secret_and_the_ladder_can_be_compressed() {
        let table = ("TABLE_NAME", "payments");
        let none = config(&[table]).unwrap();
        assert_eq!(none.endpoint, None);
        assert_eq!(none.ladder_scale, 1.0);
        assert_eq!(FULL_LADDER_SECS, 99_305);

        let url = (
            "MERCHANT_WEBHOOK_URL",
            "http://127.0.0.1:3000/_merchant/events",
        );
        let secret = (
            "MERCHANT_WEBHOOK_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        );
        assert_eq!(
            config(&[table, url, secret]).unwrap_err().variable,
            "MERCHANT_WEBHOOK_URL"
        );
        let local = config(&[
            table,
            url,
            secret,
            ("DELIVERY_ALLOW_HTTP", "true"),
            ("DELIVERY_LADDER_SECONDS", "120"),
        ])
        .unwrap();
        assert_eq!(local.endpoint.as_ref().unwrap().name, "merchant");
        assert!((local.ladder_scale - 120.0 / 99_305.0).abs() < 1e-12);
        assert!(!format!("{local:?}").contains("MfKQ"));

        let https = ("MERCHANT_WEBHOOK_URL", "https://shop.example/hooks");
        assert_eq!(
            config(&[table, https]).unwrap_err().variable,
            "MERCHANT_WEBHOOK_SECRET"
        );
        let deployed = config(&[
            table,
            https,
            (
                "MERCHANT_WEBHOOK_SECRET_PARAMETER",
                "/payments/merchant-webhook-secret",
            ),
        ])
        .unwrap();
        assert_eq!(
            deployed.endpoint.unwrap().secret_source,
            SecretSource::Parameter("/payments/merchant-webhook-secret".into())
        );
        let bad_name = config(&[table, https, secret, ("MERCHANT_WEBHOOK_NAME", "a#b")]);
        assert_eq!(bad_name.unwrap_err().variable, "MERCHANT_WEBHOOK_NAME");
    }
}
