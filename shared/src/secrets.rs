//! Secrets: a string type that never shows in logs, and where a secret comes from
//! (AWS Secrets Manager or SSM Parameter Store in AWS, an environment variable
//! locally), read once at init.

/// A secret that never shows in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }
    /// The secret itself; use only where it is sent.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretString(***)")
    }
}

/// Splits a secret value holding one or more comma-separated secrets (rotation).
pub fn split_secrets(value: &SecretString) -> Vec<SecretString> {
    value
        .expose()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(SecretString::new)
        .collect()
}

/// Where one secret comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// The value itself, from an environment variable (local development).
    Value(SecretString),
    /// A Secrets Manager secret id or ARN whose `SecretString` is the value (needs
    /// the `secrets-manager` feature).
    SecretsManager(String),
    /// An SSM parameter name (SecureString), read with decryption.
    Parameter(String),
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Value(_) => f.write_str("Value(***)"),
            Self::SecretsManager(id) => write!(f, "SecretsManager({id})"),
            Self::Parameter(name) => write!(f, "Parameter({name})"),
        }
    }
}

impl SecretSource {
    /// Fetches the secret. Called once per cold start.
    pub async fn resolve(&self, sdk: &aws_config::SdkConfig) -> Result<SecretString, String> {
        let value = match self {
            Self::Value(v) => return Ok(v.clone()),
            #[cfg(not(feature = "secrets-manager"))]
            Self::SecretsManager(id) => {
                return Err(format!(
                    "secret {id}: this build has no Secrets Manager support"
                ))
            }
            #[cfg(feature = "secrets-manager")]
            Self::SecretsManager(id) => aws_sdk_secretsmanager::Client::new(sdk)
                .get_secret_value()
                .secret_id(id)
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "reading secret {id} from Secrets Manager: {}",
                        aws_sdk_secretsmanager::error::DisplayErrorContext(e)
                    )
                })?
                .secret_string
                .ok_or_else(|| format!("secret {id} has no SecretString"))?,
            Self::Parameter(name) => aws_sdk_ssm::Client::new(sdk)
                .get_parameter()
                .name(name)
                .with_decryption(true)
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "reading parameter {name} from SSM: {}",
                        aws_sdk_ssm::error::DisplayErrorContext(e)
                    )
                })?
                .parameter
                .and_then(|p| p.value)
                .ok_or_else(|| format!("parameter {name} has no value"))?,
        };
        Ok(SecretString::new(value.trim().to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_not_debug_printed() {
        let s = SecretString::new("sk_live_abc");
        assert!(!format!("{s:?}").contains("abc"));
        let source = SecretSource::Value(s);
        assert!(!format!("{source:?}").contains("abc"));
    }

    #[test]
    fn rotation_value_splits_on_commas() {
        let secrets = split_secrets(&SecretString::new("whsec_new, whsec_old,"));
        assert_eq!(secrets.len(), 2);
        assert_eq!(secrets[1].expose(), "whsec_old");
    }
}
