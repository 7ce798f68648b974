//! The operations function's configuration: the table and Fintoc (a resolution
//! asks Fintoc about the payment before it writes).

use super::*;

/// The header the local gateway names the operator in (its stand-in for the IAM
/// authorizer's principal).
pub const LOCAL_OPERATOR_HEADER: &str = "x-local-operator";

/// Everything the operations function needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationsConfig {
    /// The table.
    pub table: TableConfig,
    /// Fintoc.
    pub fintoc: FintocConfig,
    /// `OPERATIONS_LOCAL_OPERATOR_HEADER` (default false): take the operator from the
    /// `x-local-operator` header the local gateway sets, standing in for API
    /// Gateway's IAM authorizer. Only the local stack sets it; a deployment with a
    /// live key refuses it at cold start.
    pub trust_local_operator_header: bool,
    /// The merchant events' destinations, named as the dispatcher names them
    /// (`merchant_events::destination_names`): what `endpoints` lists and a resend
    /// may target.
    pub destinations: Vec<String>,
}

impl OperationsConfig {
    /// Reads the process environment.
    pub fn from_process_env() -> Result<Self, ConfigError> {
        Self::from_env(&Env(|name| std::env::var(name).ok()))
    }

    /// Reads and validates every variable.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            table: TableConfig::from_env(env)?,
            fintoc: FintocConfig::from_env(env)?,
            trust_local_operator_header: env.flag("OPERATIONS_LOCAL_OPERATOR_HEADER", false)?,
            destinations: super::merchant_events::destination_names(env)?,
        })
    }
}
