//! Payments and refunds as the tests build them, one way: the unit tests here, and
//! (through the test kit) the contract and integration tests and the benchmark
//! harness. Pure values; no function builds one.

use super::payment::{PaymentKind, PaymentStatus, StoredPayment};
use super::refund::{RefundOrigin, RefundStatus, StoredRefund};
use super::refund_id::RefundKey;
use std::collections::BTreeMap;

/// When the kit's payments were created (RFC 3339).
pub const CREATED_AT: &str = "2026-01-01T00:00:00.000Z";

/// A payment intent as the create stores it: `created`, test mode, no metadata, no
/// check schedule. Change fields with struct update syntax.
pub fn created_intent(
    id: &str,
    amount: u64,
    currency: &str,
    order_id: Option<&str>,
) -> StoredPayment {
    StoredPayment {
        id: id.into(),
        kind: PaymentKind::Intent,
        status: PaymentStatus::Created,
        amount,
        currency: currency.into(),
        order_id: order_id.map(str::to_string),
        metadata: BTreeMap::new(),
        customer_email: None,
        mode: Some("test".into()),
        error_reason: None,
        created_at: CREATED_AT.into(),
        updated_at: CREATED_AT.into(),
        schedule: None,
        session_payment: None,
        expires_at: None,
        review: None,
        refunds: Default::default(),
    }
}

/// A refund of `amount` CLP made through the API, `status`, under the refund key
/// `key` (`k` + 16 digits).
pub fn refund(key: &str, amount: u64, status: RefundStatus) -> StoredRefund {
    StoredRefund {
        key: RefundKey::parse(key).expect("a refund key: k + 16 digits"),
        fintoc_id: None,
        amount,
        currency: "CLP".into(),
        status,
        failure_code: None,
        metadata: Default::default(),
        origin: RefundOrigin::Api,
        key_generation: 0,
        created_at: CREATED_AT.into(),
        updated_at: CREATED_AT.into(),
    }
}
