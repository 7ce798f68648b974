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

/// A Fintoc refund's status. Fintoc's pages disagree on the first one: `created`
/// and `pending` are one cancellable state here.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RefundStatus {
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
            Self::Other(_) => 0,
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

#[cfg(test)]
mod tests {
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
}
