//! Money: the currencies this backend takes (amounts are always integers in the
//! currency's minor units).

use serde::Serialize;

/// Currencies Fintoc Payment Intents support.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Currency {
    /// Chilean peso (no decimals).
    #[serde(rename = "CLP")]
    Clp,
    /// Mexican peso (amounts in centavos).
    #[serde(rename = "MXN")]
    Mxn,
}

impl Currency {
    /// Parses a currency code in any case.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "CLP" => Some(Self::Clp),
            "MXN" => Some(Self::Mxn),
            _ => None,
        }
    }

    /// The uppercase ISO code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Clp => "CLP",
            Self::Mxn => "MXN",
        }
    }
}
