//! How a refund is named: its key on its payment's record ([`RefundKey`]: a digest
//! of the merchant's idempotency key, or of Fintoc's id for a refund made
//! elsewhere) and its public id ([`RefundId`]: which payment's record holds it,
//! and its key there).

use sha2::{Digest, Sha256};

/// The key of a refund on its payment's record: `k` and 16 hex digits of a digest
/// of what identifies it (the merchant's idempotency key for an API refund,
/// Fintoc's id for an imported one), so a retry finds the same entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RefundKey(String);

impl RefundKey {
    /// The key of an API refund, from the scope of its idempotency key (its
    /// namespace, caller and key: unique per request).
    pub fn for_request(idempotency_scope: &str) -> Self {
        Self::digest("request", idempotency_scope)
    }

    /// The key of a refund made elsewhere, from Fintoc's id.
    pub fn for_import(fintoc_id: &str) -> Self {
        Self::digest("import", fintoc_id)
    }

    fn digest(purpose: &str, text: &str) -> Self {
        let digest = Sha256::digest(format!("refund-key\0{purpose}\0{text}"));
        Self(format!("k{}", &hex::encode(digest)[..16]))
    }

    /// Reads a stored or parsed key: `k` and 16 lowercase hex digits.
    pub fn parse(s: &str) -> Option<Self> {
        let hex = s.strip_prefix('k')?;
        (hex.len() == 16
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| Self(s.to_string()))
    }

    /// The key as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The public id of a refund: `re_<i|s>.<payment id>.<key>` — which payment's
/// record holds it (an intent's or a session's) and its key there, so a read is
/// one `GetItem`. Fintoc's own id is shown beside it (`fintoc_refund_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundId {
    /// Whether the payment is a checkout session (else a payment intent).
    pub session: bool,
    /// The payment's id (`pi_…` or `cs_…`).
    pub payment_id: String,
    /// The refund's key on the payment's record.
    pub key: RefundKey,
}

impl RefundId {
    /// Reads a public id; `None` for anything that is not one (a 404, never a guess).
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split('.');
        let session = match parts.next()? {
            "re_i" => false,
            "re_s" => true,
            _ => return None,
        };
        let payment_id = parts.next()?;
        let key = RefundKey::parse(parts.next()?)?;
        let plausible = !payment_id.is_empty()
            && payment_id.len() <= 128
            && payment_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        (plausible && parts.next().is_none()).then(|| Self {
            session,
            payment_id: payment_id.to_string(),
            key,
        })
    }
}

impl std::fmt::Display for RefundId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.session { "s" } else { "i" };
        write!(f, "re_{kind}.{}.{}", self.payment_id, self.key.as_str())
    }
}
