//! One order, at most one open intent and at most one payment, ever: the order's
//! state and the rules a create and an intent's outcome follow on it.
//!
//! A create *reserves* the order before calling Fintoc and *opens* it with the
//! intent Fintoc made; the intent's outcome *pays* or *closes* it. A closed order
//! (its intent failed, was rejected or expired) may be reserved again; a paid one
//! never. The order's payment is a payment intent or a checkout session: one
//! active payment per order across both flows.

use super::payment::PaymentKind;
use std::collections::BTreeMap;

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderState {
    /// A create holds it and is talking to Fintoc.
    Reserved,
    /// Its intent is open (not final).
    Open,
    /// Its intent succeeded: final, forever.
    Paid,
    /// Its intent ended unpaid: a new create may reserve it.
    Closed,
    /// Its payment succeeded at another amount or currency than requested: held
    /// for a human (logged `ANOMALY`, alarmed), neither paid nor open to a new
    /// payment until one decides.
    Review,
}

impl OrderState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reserved => "reserved",
            Self::Open => "open",
            Self::Paid => "paid",
            Self::Closed => "closed",
            Self::Review => "review",
        }
    }

    /// Reads a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "reserved" => Some(Self::Reserved),
            "open" => Some(Self::Open),
            "paid" => Some(Self::Paid),
            "closed" => Some(Self::Closed),
            "review" => Some(Self::Review),
            _ => None,
        }
    }
}

/// What the rules look at of a stored order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    /// Its state.
    pub state: OrderState,
    /// The idempotency record (caller and key) of the create that reserved it.
    pub holder: String,
    /// Its current (or last) payment (an intent's or a session's id), once Fintoc
    /// made one.
    pub intent_id: Option<String>,
    /// Which kind of payment `intent_id` is.
    pub payment_kind: PaymentKind,
    /// Until when a reservation holds (Unix ms).
    pub reserved_until_ms: i64,
    /// The references of the sessions this order has had (`session_ref` → session
    /// id): how a session's attempt finds the session that made it, whichever
    /// session the order points at now.
    pub session_refs: BTreeMap<String, String>,
}

/// A create's request to reserve its order.
#[derive(Debug, Clone, Copy)]
pub struct ReserveRequest<'a> {
    /// The merchant's order id.
    pub order_id: &'a str,
    /// The create's idempotency record id.
    pub holder: &'a str,
    /// Now.
    pub now_ms: i64,
    /// Until when the reservation holds: the create's lease.
    pub reserved_until_ms: i64,
}

/// A create's request to open its reserved order with the intent Fintoc made.
#[derive(Debug, Clone, Copy)]
pub struct OpenRequest<'a> {
    /// The merchant's order id.
    pub order_id: &'a str,
    /// The create's idempotency record id.
    pub holder: &'a str,
    /// Fintoc's intent (or session).
    pub intent_id: &'a str,
    /// Which kind it is.
    pub kind: PaymentKind,
    /// The reference the payment's attempts carry (a session's `session_ref`),
    /// recorded on the order so their events find the payment that made them.
    pub payment_ref: Option<&'a str>,
}

/// What a create gets when it asks for its order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReserveOutcome {
    /// Reserved for this create.
    Reserved,
    /// Another create holds it, or its intent is still open.
    Busy {
        /// The open intent, when there is one.
        intent_id: Option<String>,
        /// Seconds until another create's reservation lapses, when it is one.
        retry_after_secs: Option<u64>,
    },
    /// Paid already: never again.
    AlreadyPaid {
        /// The intent that paid it.
        intent_id: Option<String>,
    },
    /// Held for a human: its payment needs review.
    InReview {
        /// The payment under review.
        intent_id: Option<String>,
    },
}

/// Whether a create (`holder`) may reserve an order that is stored as `existing`:
/// a closed order, its own reservation or open order (a retry with the same key,
/// which Fintoc answers with the same intent), or a reservation that lapsed.
pub fn can_reserve(existing: &OrderRecord, holder: &str, now_ms: i64) -> bool {
    match existing.state {
        OrderState::Closed => true,
        OrderState::Paid | OrderState::Review => false,
        OrderState::Reserved | OrderState::Open if existing.holder == holder => true,
        OrderState::Reserved => existing.reserved_until_ms < now_ms,
        OrderState::Open => false,
    }
}

/// What a create gets when it may not reserve `existing`.
pub fn classify_reserve_conflict(existing: &OrderRecord, now_ms: i64) -> ReserveOutcome {
    match existing.state {
        OrderState::Paid => ReserveOutcome::AlreadyPaid {
            intent_id: existing.intent_id.clone(),
        },
        OrderState::Review => ReserveOutcome::InReview {
            intent_id: existing.intent_id.clone(),
        },
        OrderState::Reserved => ReserveOutcome::Busy {
            intent_id: None,
            retry_after_secs: Some(
                ((existing.reserved_until_ms - now_ms).max(0) as u64)
                    .div_ceil(1000)
                    .max(1),
            ),
        },
        OrderState::Open | OrderState::Closed => ReserveOutcome::Busy {
            intent_id: existing.intent_id.clone(),
            retry_after_secs: None,
        },
    }
}

/// Whether the create `holder` may open `existing` with its intent: only while it
/// still holds the reservation (or the order, on a retry).
pub fn can_open(existing: Option<&OrderRecord>, holder: &str) -> bool {
    existing.is_some_and(|o| {
        o.holder == holder && matches!(o.state, OrderState::Reserved | OrderState::Open)
    })
}

/// What an intent's final outcome does to its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderOutcome {
    /// The intent succeeded: the order is paid.
    Paid,
    /// The intent failed, was rejected or expired: the order may be tried again.
    Closed,
    /// The intent succeeded at another amount or currency than requested: the
    /// order is held for a human.
    Review,
}

/// What a payment's write does when its order does not take the outcome (see
/// [`order_accepts`]): decided here, with the outcome; the store only renders it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfRefused {
    /// Write the payment alone: the order has moved on (another payment is its
    /// current one), so there is nothing of it to close.
    PaymentAlone,
    /// Write the payment and keep it on the order as an anomaly (`anomalies`), for
    /// a human to check and refund: a second payment never makes a second `paid`.
    KeepAsAnomaly,
}

impl OrderOutcome {
    /// What a refused outcome of this kind does.
    pub fn if_refused(self) -> IfRefused {
        match self {
            Self::Paid | Self::Review => IfRefused::KeepAsAnomaly,
            Self::Closed => IfRefused::PaymentAlone,
        }
    }
}

/// The order part of an event's patch: written in the same transaction as the
/// payment, under [`order_accepts`]; when refused, as [`OrderPatch::if_refused`] says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderPatch {
    /// The merchant's order id.
    pub order_id: String,
    /// The intent (or session) whose outcome it is.
    pub intent_id: String,
    /// Which kind of payment that is (recorded on an order a payment creates).
    pub kind: PaymentKind,
    /// Paid, closed or held for review.
    pub outcome: OrderOutcome,
    /// What the payment's write does when the order refuses the outcome.
    pub if_refused: IfRefused,
    /// Now (RFC 3339).
    pub at: String,
}

/// Whether the order (stored as `existing`, if at all) takes the outcome. A payment
/// (or one held for review) is taken unless the order is paid or in review already
/// or its intent is another one; it is then kept on the order as an anomaly
/// instead, for a human (a second payment). A closing is taken only from the
/// order's own open intent.
pub fn order_accepts(existing: Option<&OrderRecord>, patch: &OrderPatch) -> bool {
    match patch.outcome {
        OrderOutcome::Paid | OrderOutcome::Review => existing.is_none_or(|o| {
            !matches!(o.state, OrderState::Paid | OrderState::Review)
                && o.intent_id.as_deref().is_none_or(|i| i == patch.intent_id)
        }),
        OrderOutcome::Closed => existing.is_some_and(|o| {
            o.intent_id.as_deref() == Some(patch.intent_id.as_str())
                && matches!(o.state, OrderState::Open | OrderState::Reserved)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderState::*;

    fn order(state: OrderState, holder: &str, intent: Option<&str>, until: i64) -> OrderRecord {
        OrderRecord {
            state,
            holder: holder.into(),
            intent_id: intent.map(str::to_string),
            payment_kind: PaymentKind::Intent,
            reserved_until_ms: until,
            session_refs: BTreeMap::new(),
        }
    }

    #[test]
    fn reservation_rules() {
        assert!(can_reserve(&order(Closed, "a", Some("pi_1"), 0), "b", 10));
        assert!(!can_reserve(&order(Paid, "b", Some("pi_1"), 0), "b", 10));
        assert!(
            can_reserve(&order(Open, "a", Some("pi_1"), 0), "a", 10),
            "a retry"
        );
        assert!(!can_reserve(&order(Open, "a", Some("pi_1"), 0), "b", 10));
        assert!(!can_reserve(&order(Reserved, "a", None, 10), "b", 10));
        assert!(
            can_reserve(&order(Reserved, "a", None, 10), "b", 11),
            "lapsed"
        );
    }

    #[test]
    fn conflicts_name_the_intent_or_the_wait() {
        assert_eq!(
            classify_reserve_conflict(&order(Paid, "a", Some("pi_1"), 0), 5),
            ReserveOutcome::AlreadyPaid {
                intent_id: Some("pi_1".into())
            }
        );
        assert_eq!(
            classify_reserve_conflict(&order(Open, "a", Some("pi_1"), 0), 5),
            ReserveOutcome::Busy {
                intent_id: Some("pi_1".into()),
                retry_after_secs: None
            }
        );
        assert_eq!(
            classify_reserve_conflict(&order(Reserved, "a", None, 7_500), 5_000),
            ReserveOutcome::Busy {
                intent_id: None,
                retry_after_secs: Some(3)
            }
        );
    }

    #[test]
    fn an_order_is_paid_once_and_closed_only_by_its_own_intent() {
        let patch = |outcome, intent: &str| OrderPatch {
            kind: PaymentKind::Intent,
            order_id: "o".into(),
            intent_id: intent.into(),
            outcome,
            if_refused: OrderOutcome::if_refused(outcome),
            at: "t".into(),
        };
        let open = order(Open, "a", Some("pi_1"), 0);
        assert!(order_accepts(
            Some(&open),
            &patch(OrderOutcome::Paid, "pi_1")
        ));
        assert!(!order_accepts(
            Some(&open),
            &patch(OrderOutcome::Paid, "pi_2")
        ));
        assert!(order_accepts(None, &patch(OrderOutcome::Paid, "pi_1")));
        let paid = order(Paid, "a", Some("pi_1"), 0);
        assert!(!order_accepts(
            Some(&paid),
            &patch(OrderOutcome::Paid, "pi_1")
        ));
        assert!(order_accepts(
            Some(&open),
            &patch(OrderOutcome::Closed, "pi_1")
        ));
        assert!(!order_accepts(
            Some(&open),
            &patch(OrderOutcome::Closed, "pi_2")
        ));
        assert!(!order_accepts(None, &patch(OrderOutcome::Closed, "pi_1")));
        let reserved = order(Reserved, "a", None, 0);
        assert!(order_accepts(
            Some(&reserved),
            &patch(OrderOutcome::Paid, "pi_9")
        ));
        // A payment at another amount holds its own open order for review; an
        // order in review takes no other outcome.
        assert!(order_accepts(
            Some(&open),
            &patch(OrderOutcome::Review, "pi_1")
        ));
        assert!(!order_accepts(
            Some(&paid),
            &patch(OrderOutcome::Review, "pi_1")
        ));
        let review = order(Review, "a", Some("pi_1"), 0);
        for outcome in [
            OrderOutcome::Paid,
            OrderOutcome::Review,
            OrderOutcome::Closed,
        ] {
            assert!(
                !order_accepts(Some(&review), &patch(outcome, "pi_1")),
                "{outcome:?}"
            );
        }
    }

    #[test]
    fn an_order_in_review_is_reserved_by_no_one() {
        let review = order(Review, "a", Some("pi_1"), 0);
        assert!(
            !can_reserve(&review, "a", 10),
            "not even its own create's retry"
        );
        assert!(!can_reserve(&review, "b", 10));
        assert_eq!(
            classify_reserve_conflict(&review, 10),
            ReserveOutcome::InReview {
                intent_id: Some("pi_1".into())
            }
        );
        assert_eq!(OrderState::parse("review"), Some(Review));
    }

    #[test]
    fn only_the_holder_opens() {
        assert!(can_open(Some(&order(Reserved, "a", None, 0)), "a"));
        assert!(!can_open(Some(&order(Reserved, "a", None, 0)), "b"));
        assert!(!can_open(Some(&order(Closed, "a", None, 0)), "a"));
        assert!(!can_open(None, "a"));
    }

    #[test]
    fn the_domain_says_what_a_refused_outcome_writes() {
        // A second payment is kept on the order for a human; a closing the order
        // no longer waits for writes the payment alone.
        assert_eq!(OrderOutcome::Paid.if_refused(), IfRefused::KeepAsAnomaly);
        assert_eq!(OrderOutcome::Review.if_refused(), IfRefused::KeepAsAnomaly);
        assert_eq!(OrderOutcome::Closed.if_refused(), IfRefused::PaymentAlone);
    }
}
