//! The bodies of Fintoc's API this backend sends (creates) and reads (created
//! objects), and the `Fintoc-Version` each flow speaks.

use crate::domain::money::Currency;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The account that receives the money; set by configuration, never by a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecipientAccount {
    /// RUT / RFC of the account holder.
    pub holder_id: String,
    /// Account number.
    pub number: String,
    /// Account type, e.g. `checking_account`.
    #[serde(rename = "type")]
    pub account_type: String,
    /// Fintoc institution id, e.g. `cl_banco_de_chile`.
    pub institution_id: String,
}

/// Body of `POST /v1/payment_intents`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreatePaymentIntent {
    /// Minor units.
    pub amount: u64,
    /// Currency.
    pub currency: Currency,
    /// Payer's email.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<String>,
    /// String map, sent as is.
    pub metadata: BTreeMap<String, String>,
    /// The configured recipient, when the merchant uses direct payments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient_account: Option<RecipientAccount>,
}

/// `payment_method_options` of a session: the configured recipient of bank
/// transfers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionPaymentMethodOptions {
    /// Options of the bank-transfer method.
    pub bank_transfer: BankTransferOptions,
}

/// The bank-transfer options of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BankTransferOptions {
    /// The account that receives the money.
    pub recipient_account: RecipientAccount,
}

/// Body of `POST /v1/checkout_sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreateCheckoutSession {
    /// Minor units.
    pub amount: u64,
    /// Currency.
    pub currency: Currency,
    /// Payer's email.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<String>,
    /// String map, sent as is (Fintoc passes it on to the session's payment).
    pub metadata: BTreeMap<String, String>,
    /// Where Fintoc's page sends the payer after paying: from configuration.
    pub success_url: String,
    /// Where Fintoc's page sends a payer who cancels: from configuration.
    pub cancel_url: String,
    /// The configured recipient, when the merchant uses direct payments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_method_options: Option<SessionPaymentMethodOptions>,
}

/// A Checkout Session as Fintoc's create answers it, read leniently.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FintocCheckoutSession {
    /// `cs_...`; never parsed.
    pub id: String,
    /// Session status (`created`, ...).
    pub status: String,
    /// Minor units.
    pub amount: u64,
    /// Currency code.
    pub currency: String,
    /// The token the embedded widget opens with (`sessionToken`); only in the
    /// create answer. Its field name is unconfirmed: `token` is read too.
    #[serde(default, alias = "token")]
    pub session_token: Option<String>,
    /// Fintoc's hosted payment page.
    #[serde(default)]
    pub redirect_url: Option<String>,
    /// When the session expires.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// `live` | `test`.
    #[serde(default)]
    pub mode: Option<String>,
    /// ISO 8601.
    #[serde(default)]
    pub created_at: Option<String>,
}

/// The `Fintoc-Version` sent with every request, per flow: the widget-token intents
/// speak the 2023-11-15 API, sessions the current one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiVersions {
    /// Sent with `/v1/payment_intents` requests.
    pub payment_intents: String,
    /// Sent with `/v1/checkout_sessions` requests.
    pub checkout_sessions: String,
}

/// The `Fintoc-Version` of refund requests: the version Fintoc documents refunds
/// under (metadata an object).
pub const REFUNDS_API_VERSION: &str = "2026-02-01";

/// `POST /v1/refunds`: a refund of a payment intent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreateRefund {
    /// Always `payment_intent`.
    pub resource_type: &'static str,
    /// The payment intent refunded.
    pub resource_id: String,
    /// Minor units (this backend always names the amount it reserved).
    pub amount: u64,
    /// The merchant's metadata and this backend's refund id.
    pub metadata: BTreeMap<String, String>,
}

/// The default `Fintoc-Version` of payment-intent requests.
pub const DEFAULT_INTENTS_API_VERSION: &str = "2023-11-15";
/// The default `Fintoc-Version` of checkout-session requests.
pub const DEFAULT_SESSIONS_API_VERSION: &str = "2026-02-01";

impl Default for ApiVersions {
    fn default() -> Self {
        Self {
            payment_intents: DEFAULT_INTENTS_API_VERSION.into(),
            checkout_sessions: DEFAULT_SESSIONS_API_VERSION.into(),
        }
    }
}

/// A Payment Intent as Fintoc returns it, read leniently: unknown fields ignored,
/// nullable fields optional.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FintocPaymentIntent {
    /// `pi_...`; never parsed.
    pub id: String,
    /// Status string (see `PaymentStatus`).
    pub status: String,
    /// Minor units.
    pub amount: u64,
    /// Currency code.
    pub currency: String,
    /// Only in the create response.
    #[serde(default)]
    pub widget_token: Option<String>,
    /// `live` | `test`.
    #[serde(default)]
    pub mode: Option<String>,
    /// ISO 8601.
    #[serde(default)]
    pub created_at: Option<String>,
    /// Why it failed, when it did.
    #[serde(default)]
    pub error_reason: Option<String>,
}
