//! What Fintoc reports about a payment intent (in a webhook event's `data`, or in
//! an answer of its API), and the masking of the payer's account before anything
//! of it is stored.

use super::payment::{PaymentKind, PaymentStatus, SessionPayment};
use std::collections::BTreeMap;

/// A payment intent as Fintoc described it, already read leniently by the adapter
/// that received it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PaymentReport {
    /// `pi_...` (or, for a report about a checkout session, `cs_...`).
    pub id: String,
    /// The record the report is about: an intent, or a session seen through its
    /// payment (`domain::session` builds those).
    pub kind: PaymentKind,
    /// For a session: its payment intent and that intent's own status.
    pub session_payment: Option<SessionPayment>,
    /// The status in the report's body, when present (unknown ones tolerated).
    pub status: Option<PaymentStatus>,
    /// Minor units.
    pub amount: Option<u64>,
    /// Currency code, as sent.
    pub currency: Option<String>,
    /// Why an unpaid intent ended so.
    pub error_reason: Option<String>,
    /// The bank's operation date.
    pub transaction_date: Option<String>,
    /// The bank's operation number.
    pub reference_id: Option<String>,
    /// `live` | `test`.
    pub mode: Option<String>,
    /// When Fintoc created the intent.
    pub created_at: Option<String>,
    /// Metadata with string values.
    pub metadata: BTreeMap<String, String>,
    /// Payer's email.
    pub customer_email: Option<String>,
    /// The payer's account, unmasked as Fintoc sent it.
    pub sender_account: Option<SenderAccount>,
}

/// The payer's account as Fintoc sends it. `Debug` never shows the number.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SenderAccount {
    /// Bank, e.g. `cl_banco_de_chile`.
    pub institution_id: Option<String>,
    /// Holder's RUT / RFC.
    pub holder_id: Option<String>,
    /// The full account number: never stored, never logged.
    pub number: Option<String>,
    /// Account type.
    pub account_type: Option<String>,
}

impl std::fmt::Debug for SenderAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderAccount")
            .field("institution_id", &self.institution_id)
            .field("holder_id", &self.holder_id)
            .field("number", &self.number.as_ref().map(|_| "***"))
            .field("account_type", &self.account_type)
            .finish()
    }
}

/// The payer's account as stored: the number cut to its last 4 characters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MaskedAccount {
    /// Bank.
    pub institution_id: Option<String>,
    /// Holder's RUT / RFC.
    pub holder_id: Option<String>,
    /// Last 4 characters of the account number.
    pub number_last4: Option<String>,
    /// Account type.
    pub account_type: Option<String>,
}

impl SenderAccount {
    /// The account with its number cut to the last 4 characters.
    pub fn masked(&self) -> MaskedAccount {
        MaskedAccount {
            institution_id: self.institution_id.clone(),
            holder_id: self.holder_id.clone(),
            number_last4: self.number.as_deref().map(last4),
            account_type: self.account_type.clone(),
        }
    }
}

fn last4(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_keeps_only_the_last_four_characters() {
        let account = SenderAccount {
            institution_id: Some("mx_stp".into()),
            holder_id: Some("h".into()),
            number: Some("646180157000003279".into()),
            account_type: Some("clabe".into()),
        };
        let masked = account.masked();
        assert_eq!(masked.number_last4.as_deref(), Some("3279"));
        assert_eq!(masked.institution_id.as_deref(), Some("mx_stp"));
        let short = SenderAccount {
            number: Some("12".into()),
            ..SenderAccount::default()
        };
        assert_eq!(short.masked().number_last4.as_deref(), Some("12"));
    }

    #[test]
    fn debug_never_shows_the_number() {
        let account = SenderAccount {
            number: Some("646180157000003279".into()),
            ..SenderAccount::default()
        };
        assert!(!format!("{account:?}").contains("3279"));
    }
}
