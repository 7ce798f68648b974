//! Fintoc's settings: its URL, the secret key (never printed) and the mode it
//! is of, the API versions per flow, the retry policy.

use super::*;

/// How to reach Fintoc: shared by the functions that call it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FintocConfig {
    /// `FINTOC_BASE_URL` (default Fintoc's production API).
    pub base_url: String,
    /// `FINTOC_API_VERSION` (default 2023-11-15, the widget-token API) and
    /// `FINTOC_SESSION_API_VERSION` (default 2026-02-01): sent as `Fintoc-Version`
    /// with every request of each flow.
    pub versions: ApiVersions,
    /// Where the Fintoc secret key comes from.
    pub secret_key_source: SecretSource,
    /// `FINTOC_MODE` (`live` | `test`): when set, the secret key must be of that mode.
    pub mode: Option<String>,
    /// `FINTOC_TIMEOUT_MS`, `FINTOC_MAX_RETRIES`, `FINTOC_RETRY_BASE_MS`.
    pub retry: RetryPolicy,
}

impl FintocConfig {
    /// Reads and validates the `FINTOC_*` variables.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let base_url = env
            .get("FINTOC_BASE_URL")
            .unwrap_or_else(|| DEFAULT_FINTOC_BASE_URL.to_string());
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
            return Err(err(
                "FINTOC_BASE_URL",
                "must be an https:// URL (http:// only for the local simulator)",
            ));
        }
        let versions = ApiVersions {
            payment_intents: api_version(env, "FINTOC_API_VERSION", DEFAULT_INTENTS_API_VERSION)?,
            checkout_sessions: api_version(
                env,
                "FINTOC_SESSION_API_VERSION",
                DEFAULT_SESSIONS_API_VERSION,
            )?,
        };
        let secret_key_source = secret_source(
            env,
            "FINTOC_SECRET_KEY",
            "FINTOC_SECRET_KEY_SECRET_ID",
            "FINTOC_SECRET_KEY_PARAMETER",
        )?;
        let mode = mode_from_env(env)?;
        Ok(Self {
            base_url,
            versions,
            secret_key_source,
            mode,
            retry: RetryPolicy {
                max_retries: env.number("FINTOC_MAX_RETRIES", 2, 0, 5)? as u32,
                base_delay: Duration::from_millis(env.number(
                    "FINTOC_RETRY_BASE_MS",
                    250,
                    1,
                    5_000,
                )?),
                max_delay: Duration::from_secs(4),
                attempt_timeout: Duration::from_millis(env.number(
                    "FINTOC_TIMEOUT_MS",
                    8_000,
                    100,
                    25_000,
                )?),
            },
        })
    }

    /// The mode this deployment runs in (see [`key_mode`]).
    pub fn key_mode(&self, key: &SecretString) -> Result<String, ConfigError> {
        key_mode(self.mode.as_deref(), key)
    }
}

/// The mode a deployment runs in, from its secret key: `FINTOC_MODE` when set (a
/// key of the other mode — a test key on a live stack, or the reverse — is refused),
/// else the key's own (`sk_live_…` / `sk_test_…`); a key that says neither needs
/// `FINTOC_MODE`. Checked at cold start; the error never contains the key.
pub fn key_mode(configured: Option<&str>, key: &SecretString) -> Result<String, ConfigError> {
    let of_key = ["live", "test"]
        .into_iter()
        .find(|m| key.expose().starts_with(&format!("sk_{m}_")));
    match (configured, of_key) {
        (Some(mode), Some(of_key)) if mode == of_key => Ok(mode.to_string()),
        (Some(mode), _) => Err(err(
            "FINTOC_MODE",
            format!("is {mode} but the configured Fintoc secret key is not an sk_{mode}_ key"),
        )),
        (None, Some(of_key)) => Ok(of_key.to_string()),
        (None, None) => Err(err(
            "FINTOC_MODE",
            "is unset and the Fintoc secret key is neither an sk_live_ nor an sk_test_ key: set FINTOC_MODE",
        )),
    }
}
