//! Secrets, read once at init: from AWS Secrets Manager or SSM Parameter Store
//! (SecureString) in AWS, or from an environment variable locally.

use crate::config::{ConfigError, Env};
use crate::fintoc::SecretString;

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
    /// Exactly one of the three variables must be set.
    pub fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        value_var: &str,
        secret_id_var: &str,
        parameter_var: &str,
    ) -> Result<Self, ConfigError> {
        let found: Vec<(&str, String)> = [value_var, secret_id_var, parameter_var]
            .into_iter()
            .filter_map(|var| env.get(var).map(|v| (var, v)))
            .collect();
        match found.as_slice() {
            [(var, v)] if *var == value_var => Ok(Self::Value(SecretString::new(v.clone()))),
            [(var, v)] if *var == secret_id_var => {
                if cfg!(feature = "secrets-manager") {
                    Ok(Self::SecretsManager(v.clone()))
                } else {
                    Err(ConfigError {
                        variable: secret_id_var.to_string(),
                        problem: format!(
                            "this build has no Secrets Manager support: use {parameter_var} (SSM SecureString), or rebuild with `--features shared/secrets-manager`"
                        ),
                    })
                }
            }
            [(_, v)] => Ok(Self::Parameter(v.clone())),
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

    fn source(var: &str) -> Result<SecretSource, ConfigError> {
        let env = Env(|name: &str| (name == var).then(|| "value".to_string()));
        SecretSource::from_env(&env, "KEY", "KEY_SECRET_ID", "KEY_PARAMETER")
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
}
