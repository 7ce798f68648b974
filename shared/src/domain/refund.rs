//! Refunds, the rules alone (issue 23's core; the API, store, Fintoc client and
//! webhook build on it): money going out, so one rule above all — **the sum of a
//! payment's refunds never exceeds what it paid**, whatever the concurrency, retries
//! or delivery order.
//!
//! The rule is held on the payment's record as a *ledger*: what the payment paid,
//! and what its refunds hold. A refund *reserves* its amount before Fintoc is asked
//! (one conditional write: `reserved + amount ≤ paid`, the payment succeeded), and
//! *releases* it exactly once when it ends unpaid (`failed`, `canceled`, `rejected`)
//! or Fintoc refuses to create it. A refund's status moves forward only; an unknown
//! status is kept, never final, never guessed.

use super::error::{InputError, InputErrorKind};
use super::number::whole_number;
pub use super::refund_id::{RefundId, RefundKey};
use serde::Serialize;
use std::collections::BTreeMap;

/// A Fintoc refund's status. Fintoc's pages disagree on the first one: `created`
/// and `pending` are one cancellable state here.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RefundStatus {
    /// Reserved on its payment, not yet answered by Fintoc (this backend's own
    /// state: the create is in flight, or crashed and is finished by a retry of
    /// the same key or by the reconciler). Holds its amount.
    Creating,
    /// Created, not yet disbursing (Fintoc's `created` or `pending`): cancellable.
    Pending,
    /// Being disbursed; no longer cancellable.
    InProgress,
    /// Final: the money went back to the payer.
    Succeeded,
    /// Final: it could not be paid out (e.g. `insufficient_funds` after 5 business
    /// days); its amount is free again.
    Failed,
    /// Final: canceled before disbursing; its amount is free again.
    Canceled,
    /// Final: refused; its amount is free again.
    Rejected,
    /// A status this version does not know: never final, re-fetched, never guessed.
    Other(String),
}

impl RefundStatus {
    /// Reads Fintoc's name; never fails.
    pub fn parse(s: &str) -> Self {
        match s {
            "creating" => Self::Creating,
            "created" | "pending" => Self::Pending,
            "in_progress" => Self::InProgress,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "canceled" | "cancelled" => Self::Canceled,
            "rejected" => Self::Rejected,
            other => Self::Other(other.to_string()),
        }
    }

    /// The stored and shown name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Creating => "creating",
            Self::Pending => "pending",
            Self::InProgress => "in_progress",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
            Self::Rejected => "rejected",
            Self::Other(s) => s,
        }
    }

    /// Final statuses are never left.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::Canceled | Self::Rejected
        )
    }

    /// Whether the merchant may still cancel it (before disbursing starts).
    pub fn is_cancelable(&self) -> bool {
        *self == Self::Pending
    }

    /// Whether reaching this status frees the refund's amount: it ended unpaid.
    pub fn releases_amount(&self) -> bool {
        matches!(self, Self::Failed | Self::Canceled | Self::Rejected)
    }

    /// Forward order: an unknown status lowest (a known one replaces it; it never
    /// replaces a known one), finals highest.
    fn rank(&self) -> u8 {
        match self {
            Self::Creating | Self::Other(_) => 0,
            Self::Pending => 1,
            Self::InProgress => 2,
            Self::Succeeded | Self::Failed | Self::Canceled | Self::Rejected => 3,
        }
    }
}

/// What a payment's refunds hold of what it paid: the ledger one conditional write
/// keeps on the payment's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RefundLedger {
    /// What the payment paid (minor units); 0 until it succeeded.
    pub paid: u64,
    /// What its refunds hold: every refund not ended unpaid (pending, in progress,
    /// succeeded, or of an unknown status).
    pub reserved: u64,
}

/// Why a refund may not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundRefusal {
    /// The payment did not succeed: nothing to refund.
    NotRefundable,
    /// More than what is still refundable.
    ExceedsRefundable {
        /// What may still be refunded.
        refundable: u64,
    },
}

impl RefundLedger {
    /// What may still be refunded.
    pub fn refundable(&self) -> u64 {
        self.paid.saturating_sub(self.reserved)
    }

    /// The ledger with `amount` reserved, or why not (the condition of the write
    /// that reserves: `paid > 0 AND reserved + amount ≤ paid`). `None` asks for the
    /// whole refundable amount.
    pub fn reserve(&self, amount: Option<u64>) -> Result<(RefundLedger, u64), RefundRefusal> {
        if self.paid == 0 {
            return Err(RefundRefusal::NotRefundable);
        }
        let refundable = self.refundable();
        let amount = amount.unwrap_or(refundable);
        if amount == 0 || amount > refundable {
            return Err(RefundRefusal::ExceedsRefundable { refundable });
        }
        Ok((
            RefundLedger {
                reserved: self.reserved + amount,
                ..*self
            },
            amount,
        ))
    }

    /// The ledger with `amount` released: a refund that ended unpaid, or that
    /// Fintoc refused to create. Released once per refund: the refund's own record
    /// says whether it was (see [`decide_refund`]).
    pub fn release(&self, amount: u64) -> RefundLedger {
        RefundLedger {
            reserved: self.reserved.saturating_sub(amount),
            ..*self
        }
    }
}

/// What a reported status does to a stored refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundEffect {
    /// Already recorded (same event, or same status): nothing to write.
    Unchanged,
    /// The status moves forward; `release` says whether the amount is freed by
    /// this very write (the one move into an unpaid final status).
    Moves {
        /// The new status.
        to: RefundStatus,
        /// Whether this write releases the refund's amount on the payment.
        release: bool,
    },
    /// Older than what is stored (a late event): noted, nothing moves.
    Late,
    /// A final status contradicting the stored final one: kept for a human.
    Conflict,
}

/// Decides what `reported` does to a refund stored as `current`: forward only; a
/// final status is never left; the amount is released by exactly one write.
pub fn decide_refund(current: &RefundStatus, reported: &RefundStatus) -> RefundEffect {
    if current == reported {
        return RefundEffect::Unchanged;
    }
    if current.is_final() {
        return if reported.is_final() {
            RefundEffect::Conflict
        } else {
            RefundEffect::Late
        };
    }
    if reported.is_final() || reported.rank() > current.rank() {
        RefundEffect::Moves {
            to: reported.clone(),
            release: reported.releases_amount(),
        }
    } else {
        RefundEffect::Late
    }
}

/// The metadata key under which a refund made here carries its public id to
/// Fintoc, so its events and Fintoc's list lead back to its payment's record.
/// Reserved: a request's metadata may not set it.
pub const REFUND_ID_METADATA_KEY: &str = "backend_refund_id";

/// What Fintoc says of a refund (an event's `data`, an answer of its API), read
/// leniently: only `id` and `status` are required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundReport {
    /// Fintoc's id (never parsed).
    pub id: String,
    /// Its status.
    pub status: RefundStatus,
    /// Minor units.
    pub amount: Option<u64>,
    /// Currency.
    pub currency: Option<String>,
    /// Why it failed.
    pub failure_code: Option<String>,
    /// `payment_intent` (the only kind Fintoc refunds).
    pub resource_type: Option<String>,
    /// The refunded payment intent.
    pub resource_id: Option<String>,
    /// `live` | `test`.
    pub mode: Option<String>,
    /// Its metadata (a refund made here carries [`REFUND_ID_METADATA_KEY`]).
    pub metadata: BTreeMap<String, String>,
    /// When Fintoc made it.
    pub created_at: Option<String>,
}

impl RefundReport {
    /// Whether this is the refund made here under `key` of payment `payment_id`
    /// (its metadata names it): how a refund whose create's answer was lost is
    /// found in Fintoc's list.
    pub fn names(&self, payment_id: &str, key: &RefundKey) -> bool {
        self.refund_id()
            .is_some_and(|id| id.payment_id == payment_id && id.key == *key)
    }

    /// The public id of the refund made here, when its metadata names one.
    pub fn refund_id(&self) -> Option<RefundId> {
        self.metadata
            .get(REFUND_ID_METADATA_KEY)
            .and_then(|id| RefundId::parse(id))
    }
}

/// What a report does to a stored refund: the change to write, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundUpdate {
    /// Its new status (may be the stored one, when only Fintoc's id is new).
    pub status: RefundStatus,
    /// Fintoc's id, when it is new to the record.
    pub fintoc_id: Option<String>,
    /// Fintoc's failure code, when it is new to the record.
    pub failure_code: Option<String>,
    /// The amount released by this write.
    pub release: Option<u64>,
}

impl RefundUpdate {
    /// The refund as this update's write leaves it (at `now`).
    pub fn applied_to(&self, stored: &StoredRefund, now: &str) -> StoredRefund {
        StoredRefund {
            status: self.status.clone(),
            fintoc_id: self.fintoc_id.clone().or_else(|| stored.fintoc_id.clone()),
            failure_code: self
                .failure_code
                .clone()
                .or_else(|| stored.failure_code.clone()),
            updated_at: now.to_string(),
            ..stored.clone()
        }
    }
}

/// What `report` writes to `stored`: `Ok(None)` nothing (a duplicate, a late
/// status); `Err` a contradiction kept for a human (a final status against another
/// final one, or an amount other than reserved), never applied.
pub fn plan_refund_update(
    stored: &StoredRefund,
    report: &RefundReport,
) -> Result<Option<RefundUpdate>, RefundEffect> {
    if report.amount.is_some_and(|a| a != stored.amount) {
        return Err(RefundEffect::Conflict);
    }
    let new_id = match &stored.fintoc_id {
        Some(id) if *id != report.id => return Err(RefundEffect::Conflict),
        Some(_) => None,
        None => Some(report.id.clone()),
    };
    let (status, release) = match decide_refund(&stored.status, &report.status) {
        RefundEffect::Moves { to, release } => (to, release),
        RefundEffect::Conflict => return Err(RefundEffect::Conflict),
        RefundEffect::Unchanged | RefundEffect::Late => (stored.status.clone(), false),
    };
    let failure_code = report.failure_code.clone().filter(|_| {
        // Only a failure's own report says why it failed.
        report.status == status && status.releases_amount() && stored.failure_code.is_none()
    });
    if status == stored.status && new_id.is_none() && failure_code.is_none() {
        return Ok(None);
    }
    Ok(Some(RefundUpdate {
        status,
        fintoc_id: new_id,
        failure_code,
        release: release.then_some(stored.amount),
    }))
}

/// Where a stored refund came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundOrigin {
    /// Made through this API (`POST …/refunds`).
    Api,
    /// Made elsewhere (Fintoc's dashboard, a plugin) and learnt from an event or
    /// the reconciler's sweep: reserved like the others once known.
    Imported,
}

impl RefundOrigin {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Imported => "imported",
        }
    }

    /// Reads a stored name (anything else is an API refund).
    pub fn parse(s: &str) -> Self {
        if s == "imported" {
            Self::Imported
        } else {
            Self::Api
        }
    }
}

/// A refund as stored on its payment's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRefund {
    /// Its key on the payment's record.
    pub key: RefundKey,
    /// Fintoc's id, once Fintoc answered.
    pub fintoc_id: Option<String>,
    /// Amount in minor units (reserved on the payment while it is held).
    pub amount: u64,
    /// Currency (the payment's).
    pub currency: String,
    /// Its status.
    pub status: RefundStatus,
    /// Fintoc's `failure_code` of a failed refund (`insufficient_funds`, …).
    pub failure_code: Option<String>,
    /// The merchant's metadata.
    pub metadata: BTreeMap<String, String>,
    /// Made here or learnt.
    pub origin: RefundOrigin,
    /// The generation of the derived `Idempotency-Key` its create is sent under: 0
    /// at first, moved on only once Fintoc stored a failure (5xx) under the current
    /// one and its list shows no such refund.
    pub key_generation: u32,
    /// When it was reserved (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
}

/// A payment's refunds as its record holds them: the reserved total and every
/// refund. The one conditional write that reserves keeps `reserved ≤ paid`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Refunds {
    /// What the refunds hold (every refund not ended unpaid).
    pub reserved: u64,
    /// Every refund, oldest first.
    pub entries: Vec<StoredRefund>,
}

/// The most refunds a payment's item holds. All of a payment's refunds live on its
/// one DynamoDB item (so the rule "never more than was paid" is one single-item
/// conditional write), which may not exceed 400 KB: 50 refunds with the largest
/// metadata a refund accepts ([`MAX_REFUND_METADATA_BYTES`]) take about 220 KB,
/// beside the payment's own fields. A refund beyond it is refused (409) before
/// anything is sent to Fintoc.
pub const MAX_REFUNDS_PER_PAYMENT: usize = 50;

/// The most bytes (UTF-8, keys and values) a refund's metadata may take: the
/// per-entry limits of `domain::create::REFUND_METADATA` never exceed it.
pub const MAX_REFUND_METADATA_BYTES: usize = 4096;

impl Refunds {
    /// Whether the payment holds as many refunds as its item may: no new one is
    /// made here (one made elsewhere is still imported: its money went out).
    pub fn full(&self) -> bool {
        self.entries.len() >= MAX_REFUNDS_PER_PAYMENT
    }

    /// The ledger against what the payment paid.
    pub fn ledger(&self, paid: u64) -> RefundLedger {
        RefundLedger {
            paid,
            reserved: self.reserved,
        }
    }

    /// What went back to the payer: the succeeded refunds.
    pub fn refunded(&self) -> u64 {
        self.entries
            .iter()
            .filter(|r| r.status == RefundStatus::Succeeded)
            .map(|r| r.amount)
            .sum()
    }

    /// The refund under `key`.
    pub fn get(&self, key: &RefundKey) -> Option<&StoredRefund> {
        self.entries.iter().find(|r| &r.key == key)
    }

    /// The refund Fintoc knows as `fintoc_id`.
    pub fn by_fintoc_id(&self, fintoc_id: &str) -> Option<&StoredRefund> {
        self.entries
            .iter()
            .find(|r| r.fintoc_id.as_deref() == Some(fintoc_id))
    }
}

/// The JSON of a refund (`POST …/refunds`, `GET /refunds/{id}`, and the payment
/// views' `refunds`).
#[derive(Debug, Serialize)]
pub struct RefundView<'a> {
    /// The public id ([`RefundId`]).
    pub id: String,
    /// Fintoc's id, once Fintoc answered.
    pub fintoc_refund_id: Option<&'a str>,
    /// The refunded payment.
    pub payment_id: String,
    /// Amount in minor units.
    pub amount: u64,
    /// Currency.
    pub currency: &'a str,
    /// Status (`creating` until Fintoc answered).
    pub status: &'a str,
    /// Why it failed.
    pub failure_code: Option<&'a str>,
    /// The merchant's metadata.
    pub metadata: &'a BTreeMap<String, String>,
    /// `api` or `imported`.
    pub origin: &'static str,
    /// When it was made.
    pub created_at: &'a str,
    /// Last change.
    pub updated_at: &'a str,
}

impl StoredRefund {
    /// Its public view, as a refund of the payment `id` names.
    pub fn view(&self, id: &RefundId) -> RefundView<'_> {
        RefundView {
            id: id.to_string(),
            fintoc_refund_id: self.fintoc_id.as_deref(),
            payment_id: id.payment_id.clone(),
            amount: self.amount,
            currency: &self.currency,
            status: self.status.as_str(),
            failure_code: self.failure_code.as_deref(),
            metadata: &self.metadata,
            origin: self.origin.as_str(),
            created_at: &self.created_at,
            updated_at: &self.updated_at,
        }
    }
}

/// A validated refund request (`{"amount"?, "metadata"?}`), in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefundRequest {
    /// `None`: everything still refundable.
    pub amount: Option<u64>,
    /// The merchant's metadata.
    pub metadata: BTreeMap<String, String>,
}

/// Largest refund amount accepted in a request (minor units): beyond any payment.
pub const MAX_REFUND_AMOUNT: u64 = 1_000_000_000_000;

/// Reads `{"amount"?, "metadata"?}` (validated as a create's fields are).
pub fn parse_refund_amount(value: Option<&serde_json::Value>) -> Result<Option<u64>, InputError> {
    match value {
        // Only a missing field asks for everything: `null` is what `JSON.stringify`
        // makes of `NaN`, a bug on the caller's side, never "refund it all".
        None => Ok(None),
        Some(serde_json::Value::Number(n)) => match whole_number(n) {
            Some(a) if a > 0 && a <= MAX_REFUND_AMOUNT => Ok(Some(a)),
            _ => Err(invalid_refund_amount()),
        },
        Some(_) => Err(invalid_refund_amount()),
    }
}

fn invalid_refund_amount() -> InputError {
    InputError::new(
        InputErrorKind::Malformed,
        "invalid_amount",
        format!("amount must be a positive integer in minor units, at most {MAX_REFUND_AMOUNT}; leave it out to refund everything still refundable."),
    )
    .with_param("amount")
}

/// How long after a refund's reservation its create may still be sent to Fintoc
/// again under the same derived `Idempotency-Key`: Fintoc may purge a key after
/// 24 hours, and a create sent after that could make a second refund. An hour is
/// left for clocks and requests in flight.
pub const REFUND_CREATE_RESEND_WINDOW_MS: i64 = 23 * 3_600_000;

/// After this long, a refund whose create's answer was lost and that Fintoc's
/// complete list does not show was never made: its reservation is released.
pub const LOST_REFUND_CREATE_AFTER_MS: i64 = 25 * 3_600_000;

/// Whether a create reserved at `reserved_at_ms` may be sent to Fintoc at `now_ms`
/// (again, for a retry of the merchant's key): only while Fintoc still holds the
/// derived key, so a retry reaches the same Fintoc refund.
pub fn may_send_refund_create(reserved_at_ms: i64, now_ms: i64) -> bool {
    now_ms - reserved_at_ms < REFUND_CREATE_RESEND_WINDOW_MS
}

/// Whether a refund still `creating` (no answer of Fintoc's recorded), reserved at
/// `reserved_at_ms`, was never made at Fintoc: not in Fintoc's list read to its end
/// (`found`, `list_complete`), and too old for any create of it to be in flight or
/// sent again.
pub fn refund_create_never_made(
    reserved_at_ms: i64,
    now_ms: i64,
    found: bool,
    list_complete: bool,
) -> bool {
    !found && list_complete && now_ms - reserved_at_ms >= LOST_REFUND_CREATE_AFTER_MS
}

/// Whether a refund event may change a payment stored in `payment_mode`: not when
/// it states (in its envelope, else its refund) the other mode — such an event is
/// not this deployment's and is kept apart. An event or payment that states no
/// readable mode (`live` | `test`) is not refused for that.
pub fn refund_event_mode_fits(
    event_mode: Option<&str>,
    report: &RefundReport,
    payment_mode: Option<&str>,
) -> bool {
    let readable = |m: &&str| matches!(*m, "live" | "test");
    let stated = event_mode
        .filter(readable)
        .or(report.mode.as_deref().filter(readable));
    match (stated, payment_mode.filter(readable)) {
        (Some(stated), Some(stored)) => stated == stored,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_lost_create_is_sent_again_only_while_fintoc_keeps_its_key_then_released() {
        let h = 3_600_000;
        assert!(may_send_refund_create(0, 0));
        assert!(may_send_refund_create(0, 22 * h));
        assert!(!may_send_refund_create(0, 23 * h));
        assert!(
            !refund_create_never_made(0, 24 * h, false, true),
            "still in flight"
        );
        assert!(refund_create_never_made(0, 25 * h, false, true));
        assert!(
            !refund_create_never_made(0, 25 * h, true, true),
            "Fintoc made it"
        );
        assert!(
            !refund_create_never_made(0, 25 * h, false, false),
            "a list not read to its end proves nothing"
        );
        assert!(
            LOST_REFUND_CREATE_AFTER_MS > REFUND_CREATE_RESEND_WINDOW_MS + h / 2,
            "never released while a create may still be sent"
        );
    }

    #[test]
    fn a_refund_event_of_the_other_mode_never_changes_a_payment() {
        let report = |mode: Option<&str>| RefundReport {
            id: "re_1".into(),
            status: RefundStatus::Succeeded,
            amount: Some(100),
            currency: None,
            failure_code: None,
            resource_type: None,
            resource_id: None,
            mode: mode.map(str::to_string),
            metadata: Default::default(),
            created_at: None,
        };
        assert!(refund_event_mode_fits(
            Some("test"),
            &report(None),
            Some("test")
        ));
        assert!(!refund_event_mode_fits(
            Some("live"),
            &report(None),
            Some("test")
        ));
        assert!(!refund_event_mode_fits(
            None,
            &report(Some("live")),
            Some("test")
        ));
        assert!(
            !refund_event_mode_fits(Some("bogus"), &report(Some("live")), Some("test")),
            "an unreadable envelope mode falls back to the refund's"
        );
        assert!(refund_event_mode_fits(None, &report(None), Some("test")));
        assert!(refund_event_mode_fits(Some("live"), &report(None), None));
    }

    use super::*;
    use proptest::prelude::*;
    use RefundStatus::*;

    #[test]
    fn statuses_read_fintocs_names_and_keep_unknown_ones() {
        assert_eq!(RefundStatus::parse("created"), Pending);
        assert_eq!(RefundStatus::parse("pending"), Pending);
        assert_eq!(RefundStatus::parse("cancelled"), Canceled);
        let odd = RefundStatus::parse("on_hold");
        assert!(!odd.is_final() && !odd.is_cancelable());
        assert_eq!(odd.as_str(), "on_hold");
        for s in ["succeeded", "failed", "canceled", "rejected"] {
            assert!(RefundStatus::parse(s).is_final(), "{s}");
        }
        assert!(Pending.is_cancelable() && !InProgress.is_cancelable());
    }

    #[test]
    fn a_refund_reserves_at_most_what_is_refundable() {
        let paid = RefundLedger {
            paid: 15_000,
            reserved: 0,
        };
        let (after, amount) = paid.reserve(Some(10_000)).unwrap();
        assert_eq!(
            (after.reserved, amount, after.refundable()),
            (10_000, 10_000, 5_000)
        );
        assert_eq!(
            after.reserve(Some(5_001)),
            Err(RefundRefusal::ExceedsRefundable { refundable: 5_000 })
        );
        let (full, rest) = after.reserve(None).unwrap();
        assert_eq!((full.refundable(), rest), (0, 5_000), "no amount: the rest");
        assert_eq!(
            full.reserve(None),
            Err(RefundRefusal::ExceedsRefundable { refundable: 0 })
        );
        assert_eq!(
            RefundLedger::default().reserve(Some(1)),
            Err(RefundRefusal::NotRefundable),
            "a payment that did not succeed"
        );
        assert_eq!(full.release(5_000).refundable(), 5_000);
    }

    #[test]
    fn statuses_move_forward_and_release_once() {
        assert_eq!(
            decide_refund(&Pending, &InProgress),
            RefundEffect::Moves {
                to: InProgress,
                release: false
            }
        );
        assert_eq!(
            decide_refund(&InProgress, &Failed),
            RefundEffect::Moves {
                to: Failed,
                release: true
            }
        );
        assert_eq!(decide_refund(&Failed, &Failed), RefundEffect::Unchanged);
        assert_eq!(decide_refund(&Failed, &Succeeded), RefundEffect::Conflict);
        assert_eq!(decide_refund(&Succeeded, &InProgress), RefundEffect::Late);
        assert_eq!(decide_refund(&InProgress, &Pending), RefundEffect::Late);
        assert_eq!(
            decide_refund(&Other("on_hold".into()), &Pending),
            RefundEffect::Moves {
                to: Pending,
                release: false
            },
            "an unknown status ranks lowest"
        );
    }

    fn stored(status: RefundStatus) -> StoredRefund {
        StoredRefund {
            key: RefundKey::for_request("scope"),
            fintoc_id: Some("re_1".into()),
            amount: 5_000,
            currency: "CLP".into(),
            status,
            failure_code: None,
            metadata: BTreeMap::new(),
            origin: RefundOrigin::Api,
            key_generation: 0,
            created_at: "t".into(),
            updated_at: "t".into(),
        }
    }

    fn report(id: &str, status: RefundStatus) -> RefundReport {
        RefundReport {
            id: id.into(),
            status,
            amount: Some(5_000),
            currency: Some("CLP".into()),
            failure_code: Some("insufficient_funds".into()),
            resource_type: Some("payment_intent".into()),
            resource_id: Some("pi_1".into()),
            mode: Some("test".into()),
            metadata: BTreeMap::new(),
            created_at: None,
        }
    }

    #[test]
    fn a_report_records_fintocs_id_moves_forward_and_releases_once() {
        let creating = StoredRefund {
            fintoc_id: None,
            ..stored(Creating)
        };
        let first = plan_refund_update(&creating, &report("re_1", Pending))
            .unwrap()
            .unwrap();
        assert_eq!(
            (first.status, first.fintoc_id.as_deref(), first.release),
            (Pending, Some("re_1"), None)
        );
        let failed = plan_refund_update(&stored(InProgress), &report("re_1", Failed))
            .unwrap()
            .unwrap();
        assert_eq!(
            (failed.release, failed.failure_code.as_deref()),
            (Some(5_000), Some("insufficient_funds"))
        );
        let recorded_failure = StoredRefund {
            failure_code: Some("insufficient_funds".into()),
            ..stored(Failed)
        };
        assert_eq!(
            plan_refund_update(&recorded_failure, &report("re_1", Failed)),
            Ok(None),
            "a duplicate"
        );
        assert_eq!(
            plan_refund_update(&stored(Succeeded), &report("re_1", InProgress)),
            Ok(None),
            "late"
        );
        assert_eq!(
            plan_refund_update(&stored(Succeeded), &report("re_1", Failed)),
            Err(RefundEffect::Conflict)
        );
        assert_eq!(
            plan_refund_update(&stored(Pending), &report("re_2", Pending)),
            Err(RefundEffect::Conflict),
            "another Fintoc refund under this one's key"
        );
        let other_amount = RefundReport {
            amount: Some(4_999),
            ..report("re_1", Succeeded)
        };
        assert_eq!(
            plan_refund_update(&stored(Pending), &other_amount),
            Err(RefundEffect::Conflict)
        );
    }

    #[test]
    fn refund_ids_round_trip_and_anything_else_is_no_id() {
        let id = RefundId {
            session: true,
            payment_id: "cs_Ab1".into(),
            key: RefundKey::for_request("ns\0caller\0key"),
        };
        assert_eq!(RefundId::parse(&id.to_string()), Some(id.clone()));
        assert!(id.to_string().starts_with("re_s.cs_Ab1.k"));
        assert_ne!(RefundKey::for_request("a"), RefundKey::for_import("a"));
        for bad in [
            "",
            "re_x.pi_1.k0123456789abcdef",
            "re_i..k0123456789abcdef",
            "re_i.pi_1.kXYZ",
            "re_i.pi_1.k0123456789abcdef.x",
            "re_i.pi 1.k0123456789abcdef",
        ] {
            assert_eq!(RefundId::parse(bad), None, "{bad}");
        }
    }

    /// One step of an interleaving: a create reserving (with its amount), or an
    /// event reporting a status about one of the refunds made so far.
    #[derive(Debug, Clone)]
    enum Step {
        Create(u64),
        Report(usize, RefundStatus),
    }

    fn status() -> impl Strategy<Value = RefundStatus> {
        prop_oneof![
            Just(Pending),
            Just(InProgress),
            Just(Succeeded),
            Just(Failed),
            Just(Canceled),
            Just(Rejected),
            Just(Other("on_hold".into())),
        ]
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (1u64..9_000).prop_map(Step::Create),
            (0usize..12, status()).prop_map(|(i, s)| Step::Report(i, s)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Whatever the interleaving of creates, duplicated, reordered and
        /// contradicting reports, the reserved amount is exactly what the live
        /// refunds hold, and the succeeded ones never sum to more than was paid.
        #[test]
        fn refunds_never_exceed_what_was_paid(steps in proptest::collection::vec(step(), 0..40)) {
            let mut ledger = RefundLedger { paid: 15_000, reserved: 0 };
            let mut refunds: Vec<(u64, RefundStatus)> = Vec::new();
            for step in steps {
                match step {
                    Step::Create(amount) => {
                        if let Ok((after, reserved)) = ledger.reserve(Some(amount)) {
                            ledger = after;
                            refunds.push((reserved, Pending));
                        }
                    }
                    Step::Report(i, reported) => {
                        let Some((amount, current)) = refunds.get_mut(i) else { continue };
                        if let RefundEffect::Moves { to, release } = decide_refund(current, &reported) {
                            if release {
                                ledger = ledger.release(*amount);
                            }
                            *current = to;
                        }
                    }
                }
                let held: u64 = refunds.iter().filter(|(_, s)| !s.releases_amount()).map(|(a, _)| a).sum();
                prop_assert_eq!(ledger.reserved, held);
                let succeeded: u64 = refunds.iter().filter(|(_, s)| *s == Succeeded).map(|(a, _)| a).sum();
                prop_assert!(succeeded <= ledger.paid);
                prop_assert!(ledger.reserved <= ledger.paid);
            }
        }
    }

    #[test]
    fn a_null_amount_is_refused_only_a_missing_one_refunds_everything() {
        use serde_json::json;
        assert_eq!(parse_refund_amount(None).unwrap(), None);
        // What `JSON.stringify` makes of `NaN`: never "everything".
        let null = parse_refund_amount(Some(&json!(null))).unwrap_err();
        assert_eq!(null.code, "invalid_amount");
        assert_eq!(parse_refund_amount(Some(&json!(320))).unwrap(), Some(320));
        assert!(parse_refund_amount(Some(&json!(320.5))).is_err());
    }

    /// JSON Schema counts `320.0` as an integer, so the server does (issue 36).
    #[test]
    fn an_integral_refund_amount_is_the_integer_it_is() {
        use serde_json::json;
        assert_eq!(parse_refund_amount(Some(&json!(320.0))).unwrap(), Some(320));
        let exponent: serde_json::Value = serde_json::from_str("1e3").unwrap();
        assert_eq!(parse_refund_amount(Some(&exponent)).unwrap(), Some(1000));
        assert!(parse_refund_amount(Some(&json!(0.0))).is_err());
        assert!(parse_refund_amount(Some(&json!(1e300))).is_err());
    }

    #[test]
    fn a_payment_holds_a_bounded_number_of_refunds() {
        let mut refunds = Refunds::default();
        for i in 0..MAX_REFUNDS_PER_PAYMENT {
            assert!(!refunds.full(), "{i} refunds");
            refunds.entries.push(stored(Pending));
        }
        assert!(refunds.full());
    }
}
