//! The words log lines start with when a person must act: the stack's metric
//! filters (`template.yaml`) count the lines that carry them, and the alarms fire on
//! those counts. Every line that carries one names it through these constants
//! (`tests/log_markers.rs` holds the template's filters to them).

/// Something a human must look at (a conflicting final event, a payment of
/// another amount or that its order did not take, a refund beyond what was
/// refundable, a payment Fintoc does not know): the `AnomaliesLogged` metric.
pub const ANOMALY: &str = "ANOMALY";

/// A refund ended unpaid: the payer did not get the money back (`RefundsFailed`).
pub const REFUND_FAILED: &str = "REFUND_FAILED";

/// DynamoDB refused a write as invalid — above all an item over 400 KB — which no
/// retry fixes (`DynamoDbValidationErrors`).
pub const DYNAMODB_VALIDATION: &str = "DYNAMODB_VALIDATION";

/// The refund sweep cannot move on (counted by the reconciler's own
/// `RefundSweepStalled` metric; the line tells a person why).
pub const REFUND_SWEEP_STALLED: &str = "REFUND_SWEEP_STALLED";

/// A merchant event's delivery failed on every rung of its ladder: the merchant
/// has not acknowledged it (`DeliveriesExhausted`); recover it once the endpoint is
/// back.
pub const DELIVERY_EXHAUSTED: &str = "DELIVERY_EXHAUSTED";

/// Every marker, for the checks that hold the template to them.
pub const ALL: [&str; 5] = [
    ANOMALY,
    REFUND_FAILED,
    DYNAMODB_VALIDATION,
    REFUND_SWEEP_STALLED,
    DELIVERY_EXHAUSTED,
];
