//! Configuration from environment variables, validated once at cold start.
//!
//! Every error names the variable that is missing or malformed. Parsing takes a
//! lookup function, so tests pass a map instead of touching the process environment.

use crate::app::payments::PaymentSettings;
use crate::app::reconcile::ReconcileSettings;
use crate::domain::create::CreateLimits;
use crate::domain::deployment::{Deployment, DEFAULT_DEPLOYMENT_TAG};
use crate::domain::money::Currency;
use crate::domain::session::SessionSettings;
use crate::fintoc::{
    ApiVersions, RecipientAccount, RetryPolicy, DEFAULT_INTENTS_API_VERSION,
    DEFAULT_SESSIONS_API_VERSION,
};
use crate::secrets::{SecretSource, SecretString};
use std::collections::BTreeMap;
use std::time::Duration;

/// The longest a Lambda invocation can run.
pub const MAX_INVOCATION: Duration = Duration::from_secs(900);

/// Fintoc's production API.
pub const DEFAULT_FINTOC_BASE_URL: &str = "https://api.fintoc.com";

/// A configuration error naming its variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error in {variable}: {problem}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub variable: String,
    /// What is wrong with it (never its value when it is a secret).
    pub problem: String,
}

fn err(variable: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable: variable.to_string(),
        problem: problem.into(),
    }
}

/// Reads variables through `lookup`, treating empty values as unset.
pub struct Env<F: Fn(&str) -> Option<String>>(pub F);

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// The trimmed value, if set and not empty.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.0)(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// A required value.
    pub fn required(&self, name: &str) -> Result<String, ConfigError> {
        self.get(name)
            .ok_or_else(|| err(name, "is required but not set"))
    }

    /// An optional number with a default, within bounds.
    pub fn number(&self, name: &str, default: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => match v.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(err(name, format!("must be an integer from {min} to {max}"))),
            },
        }
    }

    /// An optional `true`/`false` with a default.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name).as_deref() {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(_) => Err(err(name, "must be true or false")),
        }
    }
}

/// `DEPLOYMENT_TAG` (default `default`): 1–64 characters of `A-Z a-z 0-9 _ - .`.
fn deployment_tag_from_env<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<String, ConfigError> {
    let tag = env
        .get("DEPLOYMENT_TAG")
        .unwrap_or_else(|| DEFAULT_DEPLOYMENT_TAG.to_string());
    let valid = (1..=64).contains(&tag.len())
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if valid {
        Ok(tag)
    } else {
        Err(err(
            "DEPLOYMENT_TAG",
            "must be 1-64 characters of a-z, A-Z, 0-9, _ - .",
        ))
    }
}

/// `FINTOC_MODE`: `live`, `test` or unset.
fn mode_from_env<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<Option<String>, ConfigError> {
    let mode = env.get("FINTOC_MODE");
    if mode.as_deref().is_some_and(|m| m != "live" && m != "test") {
        return Err(err("FINTOC_MODE", "must be live or test"));
    }
    Ok(mode)
}

/// Where the DynamoDB table is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableConfig {
    /// `TABLE_NAME`.
    pub table_name: String,
    /// `DYNAMODB_ENDPOINT`: DynamoDB Local's URL in local runs.
    pub endpoint: Option<String>,
    /// `IDEMPOTENCY_TABLE_NAME`: the idempotency records' own table (no stream:
    /// their replayable answers hold tokens); unset, they live in `TABLE_NAME`.
    pub idempotency_table_name: Option<String>,
}

/// A DynamoDB table name read from `variable`, validated as DynamoDB does.
fn valid_table_name(variable: &str, name: String) -> Result<String, ConfigError> {
    let valid = (3..=255).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if valid {
        Ok(name)
    } else {
        Err(err(
            variable,
            "must be 3-255 characters of a-z, A-Z, 0-9, _ - .",
        ))
    }
}

impl TableConfig {
    /// Reads `TABLE_NAME` and `DYNAMODB_ENDPOINT`.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let table_name = valid_table_name("TABLE_NAME", env.required("TABLE_NAME")?)?;
        let idempotency_table_name = env
            .get("IDEMPOTENCY_TABLE_NAME")
            .map(|name| valid_table_name("IDEMPOTENCY_TABLE_NAME", name))
            .transpose()?;
        let endpoint = env.get("DYNAMODB_ENDPOINT");
        if let Some(e) = &endpoint {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(err(
                    "DYNAMODB_ENDPOINT",
                    "must be an http:// or https:// URL",
                ));
            }
        }
        Ok(Self {
            table_name,
            endpoint,
            idempotency_table_name,
        })
    }
}

/// Everything the create-intent function needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateIntentConfig {
    /// The table.
    pub table: TableConfig,
    /// `FINTOC_BASE_URL` (default Fintoc's production API).
    pub fintoc_base_url: String,
    /// `FINTOC_API_VERSION` / `FINTOC_SESSION_API_VERSION`: the `Fintoc-Version`
    /// of each flow's requests.
    pub fintoc_versions: ApiVersions,
    /// Where the Fintoc secret key comes from.
    pub secret_key_source: SecretSource,
    /// `FINTOC_MODE` (`live` | `test`): when set, the secret key must be of that mode.
    pub mode: Option<String>,
    /// `RECIPIENT_*`: the account that receives payments, if the merchant sets one.
    pub recipient: Option<RecipientAccount>,
    /// `ALLOWED_CURRENCIES`, `MAX_AMOUNT_CLP`, `MAX_AMOUNT_MXN`.
    pub limits: CreateLimits,
    /// `FINTOC_TIMEOUT_MS`, `FINTOC_MAX_RETRIES`, `FINTOC_RETRY_BASE_MS`.
    pub retry: RetryPolicy,
    /// `IDEMPOTENCY_LEASE_SECONDS`: how long an in-flight request holds its key.
    pub lease: Duration,
    /// `IDEMPOTENCY_TTL_SECONDS`: how long a completed response is replayed.
    pub record_ttl: Duration,
    /// `IDEMPOTENCY_NAMESPACE`: separates deployments sharing a Fintoc account.
    pub idempotency_namespace: String,
    /// `WIDGET_TOKEN_TTL_SECONDS`: lifetime of a widget token (default 600).
    pub widget_token_ttl: Duration,
    /// `DEPLOYMENT_TAG`: written into every intent's Fintoc metadata.
    pub deployment_tag: String,
    /// `RECONCILE_FIRST_CHECK_SECONDS` (default 120): when the reconciler first
    /// checks a new intent.
    pub first_check_after: Duration,
    /// `CHECKOUT_SUCCESS_URL`, `CHECKOUT_CANCEL_URL`, `CHECKOUT_RETURN_URLS`: the
    /// checkout-session flow, enabled when both URLs are set.
    pub sessions: Option<SessionSettings>,
    /// `CONNECT_AT_INIT` (default `true`): open DynamoDB's and Fintoc's connections
    /// during init, so the first request does not pay for the TLS handshakes.
    pub connect_at_init: bool,
}

fn return_url(env_name: &str, url: &str) -> Result<String, ConfigError> {
    let url = url.trim();
    let valid = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() <= crate::domain::create::MAX_URL_CHARS
        && !url.chars().any(|c| c.is_control() || c.is_whitespace());
    if valid {
        Ok(url.to_string())
    } else {
        Err(err(
            env_name,
            "must be an https:// (or, locally, http://) URL without spaces",
        ))
    }
}

/// Reads the checkout-session settings: both URLs, or neither (the flow is off).
fn sessions_from_env<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<Option<SessionSettings>, ConfigError> {
    let success = env.get("CHECKOUT_SUCCESS_URL");
    let cancel = env.get("CHECKOUT_CANCEL_URL");
    let (success, cancel) = match (success, cancel) {
        (None, None) => {
            if env.get("CHECKOUT_RETURN_URLS").is_some() {
                return Err(err(
                    "CHECKOUT_RETURN_URLS",
                    "needs CHECKOUT_SUCCESS_URL and CHECKOUT_CANCEL_URL",
                ));
            }
            return Ok(None);
        }
        (Some(s), Some(c)) => (s, c),
        (None, Some(_)) => {
            return Err(err(
                "CHECKOUT_SUCCESS_URL",
                "set it with CHECKOUT_CANCEL_URL, or neither",
            ))
        }
        (Some(_), None) => {
            return Err(err(
                "CHECKOUT_CANCEL_URL",
                "set it with CHECKOUT_SUCCESS_URL, or neither",
            ))
        }
    };
    let allowed_return_urls = env
        .get("CHECKOUT_RETURN_URLS")
        .unwrap_or_default()
        .split(',')
        .filter(|u| !u.trim().is_empty())
        .map(|u| return_url("CHECKOUT_RETURN_URLS", u))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(SessionSettings {
        success_url: return_url("CHECKOUT_SUCCESS_URL", &success)?,
        cancel_url: return_url("CHECKOUT_CANCEL_URL", &cancel)?,
        allowed_return_urls,
    }))
}

fn api_version<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    name: &str,
    default: &str,
) -> Result<String, ConfigError> {
    let Some(v) = env.get(name) else {
        return Ok(default.to_string());
    };
    let b = v.as_bytes();
    let shaped = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if shaped {
        Ok(v)
    } else {
        Err(err(name, "must be a date like 2023-11-15"))
    }
}

impl CreateIntentConfig {
    /// Reads the process environment.
    pub fn from_process_env() -> Result<Self, ConfigError> {
        Self::from_env(&Env(|name| std::env::var(name).ok()))
    }

    /// Reads and validates every variable.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let table = TableConfig::from_env(env)?;
        let FintocConfig {
            base_url: fintoc_base_url,
            versions: fintoc_versions,
            secret_key_source,
            mode,
            retry,
        } = FintocConfig::from_env(env)?;
        let lease = Duration::from_secs(env.number("IDEMPOTENCY_LEASE_SECONDS", 40, 1, 900)?);
        let record_ttl =
            Duration::from_secs(env.number("IDEMPOTENCY_TTL_SECONDS", 86_400, 60, 30 * 86_400)?);
        // A record must outlive any request that could still be running on it: its
        // lease, or at most the longest Lambda invocation.
        if record_ttl <= lease + MAX_INVOCATION {
            return Err(err(
                "IDEMPOTENCY_TTL_SECONDS",
                format!(
                    "must be more than IDEMPOTENCY_LEASE_SECONDS + {} s (the longest Lambda invocation)",
                    MAX_INVOCATION.as_secs()
                ),
            ));
        }
        Ok(Self {
            deployment_tag: deployment_tag_from_env(env)?,
            table,
            mode,
            fintoc_base_url,
            fintoc_versions,
            secret_key_source,
            sessions: sessions_from_env(env)?,
            recipient: recipient_from_env(env)?,
            limits: limits_from_env(env)?,
            retry,
            lease,
            record_ttl,
            idempotency_namespace: env.get("IDEMPOTENCY_NAMESPACE").unwrap_or_default(),
            widget_token_ttl: Duration::from_secs(env.number(
                "WIDGET_TOKEN_TTL_SECONDS",
                600,
                1,
                86_400,
            )?),
            first_check_after: Duration::from_secs(env.number(
                "RECONCILE_FIRST_CHECK_SECONDS",
                120,
                0,
                3_600,
            )?),
            connect_at_init: env.flag("CONNECT_AT_INIT", true)?,
        })
    }
}

/// Everything the reconcile function needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconcileConfig {
    /// The table.
    pub table: TableConfig,
    /// Fintoc.
    pub fintoc: FintocConfig,
    /// `RECONCILE_MAX_INTENTS_PER_RUN` (default 20000: a run is sized by its time
    /// and pace first), `RECONCILE_MAX_REQUESTS_PER_SECOND` (default 40, at most 80:
    /// Fintoc allows 100 per organization and creates and refunds need their share;
    /// docs/scale.md), `RECONCILE_CONCURRENCY` (default 16).
    pub settings: ReconcileSettings,
}

impl ReconcileConfig {
    /// Reads the process environment.
    pub fn from_process_env() -> Result<Self, ConfigError> {
        Self::from_env(&Env(|name| std::env::var(name).ok()))
    }

    /// Reads and validates every variable.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let defaults = ReconcileSettings::default();
        Ok(Self {
            table: TableConfig::from_env(env)?,
            fintoc: FintocConfig::from_env(env)?,
            settings: ReconcileSettings {
                max_intents_per_run: env.number(
                    "RECONCILE_MAX_INTENTS_PER_RUN",
                    defaults.max_intents_per_run as u64,
                    1,
                    20_000,
                )? as usize,
                max_requests_per_sec: env.number(
                    "RECONCILE_MAX_REQUESTS_PER_SECOND",
                    u64::from(defaults.max_requests_per_sec),
                    1,
                    80,
                )? as u32,
                concurrency: env.number(
                    "RECONCILE_CONCURRENCY",
                    defaults.concurrency as u64,
                    1,
                    64,
                )? as usize,
                ..defaults
            },
        })
    }
}

/// Everything the webhook function needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// The table.
    pub table: TableConfig,
    /// Where the webhook secret(s) come from. The value may hold two secrets
    /// separated by a comma while one is being rotated.
    pub secret_source: SecretSource,
    /// `WEBHOOK_TOLERANCE_SECONDS` (default 300).
    pub tolerance_secs: u64,
    /// `WEBHOOK_SECRET_REFRESH_SECONDS` (default 60; 0 never): how often a warm
    /// function reads the secret again from SSM or Secrets Manager.
    pub secret_refresh: Duration,
    /// `DEPLOYMENT_TAG` and `FINTOC_MODE`: which events are this deployment's.
    pub deployment: Deployment,
    /// `WEBHOOK_WRITE_FIRST` (default `true`): a new event is one conditional write
    /// and no read; `false` reads the item first (one more round trip per new
    /// event, but a duplicate costs half a read unit instead of a refused write).
    pub write_first: bool,
    /// `CONNECT_AT_INIT` (default `true`): open DynamoDB's connection during init.
    pub connect_at_init: bool,
}

impl WebhookConfig {
    /// Reads the process environment.
    pub fn from_process_env() -> Result<Self, ConfigError> {
        Self::from_env(&Env(|name| std::env::var(name).ok()))
    }

    /// Reads and validates every variable.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            table: TableConfig::from_env(env)?,
            secret_source: secret_source(
                env,
                "WEBHOOK_SECRET",
                "WEBHOOK_SECRET_SECRET_ID",
                "WEBHOOK_SECRET_PARAMETER",
            )?,
            tolerance_secs: env.number("WEBHOOK_TOLERANCE_SECONDS", 300, 1, 3_600)?,
            secret_refresh: Duration::from_secs(env.number(
                "WEBHOOK_SECRET_REFRESH_SECONDS",
                60,
                0,
                3_600,
            )?),
            deployment: Deployment {
                tag: deployment_tag_from_env(env)?,
                mode: mode_from_env(env)?,
            },
            write_first: env.flag("WEBHOOK_WRITE_FIRST", true)?,
            connect_at_init: env.flag("CONNECT_AT_INIT", true)?,
        })
    }
}

/// Where a secret comes from: exactly one of the three variables must be set.
pub fn secret_source<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    value_var: &str,
    secret_id_var: &str,
    parameter_var: &str,
) -> Result<SecretSource, ConfigError> {
    let found: Vec<(&str, String)> = [value_var, secret_id_var, parameter_var]
        .into_iter()
        .filter_map(|var| env.get(var).map(|v| (var, v)))
        .collect();
    match found.as_slice() {
        [(var, v)] if *var == value_var => Ok(SecretSource::Value(SecretString::new(v.clone()))),
        [(var, v)] if *var == secret_id_var => {
            if cfg!(feature = "secrets-manager") {
                Ok(SecretSource::SecretsManager(v.clone()))
            } else {
                Err(ConfigError {
                    variable: secret_id_var.to_string(),
                    problem: format!(
                        "this build has no Secrets Manager support: use {parameter_var} (SSM SecureString), or rebuild with `--features shared/secrets-manager`"
                    ),
                })
            }
        }
        [(_, v)] => Ok(SecretSource::Parameter(v.clone())),
        [] => Err(ConfigError {
            variable: value_var.to_string(),
            problem: format!(
                "no secret configured: set {secret_id_var} (Secrets Manager) or {parameter_var} (SSM SecureString) in AWS, or {value_var} locally"
            ),
        }),
        _ => Err(ConfigError {
            variable: value_var.to_string(),
            problem: format!("set only one of {value_var}, {secret_id_var}, {parameter_var}"),
        }),
    }
}

mod fintoc;
mod merchant_events;
mod operations;
mod payment_limits;

pub use fintoc::{key_mode, FintocConfig};
pub use merchant_events::{DispatchConfig, EndpointConfig};
pub use operations::{OperationsConfig, LOCAL_OPERATOR_HEADER};
use payment_limits::{limits_from_env, recipient_from_env};

#[cfg(test)]
mod tests;
