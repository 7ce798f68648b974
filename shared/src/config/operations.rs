//! The operations function's configuration: the table and Fintoc (a resolution
//! asks Fintoc about the payment before it writes).

use super::*;

/// Everything the operations function needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationsConfig {
    /// The table.
    pub table: TableConfig,
    /// Fintoc.
    pub fintoc: FintocConfig,
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
        })
    }
}
