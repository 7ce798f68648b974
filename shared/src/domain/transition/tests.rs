//! Unit tests of `transition`.

use super::*;
use crate::domain::order::IfRefused;
use crate::domain::payment::{PaymentKind, SessionPayment};
use crate::domain::report::SenderAccount;
use std::collections::BTreeMap;
use PaymentStatus::*;

const EVENT: EventRef<'static> = EventRef {
    id: "evt_1",
    event_type: "payment_intent.succeeded",
    created_at: Some("2026-01-01T00:00:00Z"),
    source: Source::Webhook,
};

fn report() -> PaymentReport {
    PaymentReport {
        id: "pi_1".into(),
        amount: Some(100),
        currency: Some("clp".into()),
        metadata: BTreeMap::from([("order_id".to_string(), "o-1".to_string())]),
        error_reason: Some("insufficient_funds".into()),
        sender_account: Some(SenderAccount {
            number: Some("000012345678".into()),
            ..SenderAccount::default()
        }),
        ..PaymentReport::default()
    }
}

#[test]
fn a_duplicate_writes_nothing() {
    let s = state(Pending, &["evt_1"]);
    let (effect, patch) = plan_write(Some(&s), &EVENT, &Succeeded, &report(), "now");
    assert_eq!(effect, Effect::Duplicate);
    assert_eq!(patch, None);
}

#[test]
fn an_unknown_intent_is_created_with_its_outcome_and_a_masked_account() {
    let (effect, patch) = plan_write(None, &EVENT, &Succeeded, &report(), "now");
    assert_eq!(effect, Effect::Create { status: Succeeded });
    let patch = patch.unwrap();
    assert_eq!(patch.guard, WriteGuard::Absent);
    assert_eq!(patch.version, 1);
    let created = patch.created.unwrap();
    assert_eq!(created.currency.as_deref(), Some("CLP"));
    assert_eq!(created.order_id.as_deref(), Some("o-1"));
    assert_eq!(created.created_at, "now");
    let outcome = patch.outcome.unwrap();
    let account = outcome.sender_account.unwrap();
    assert_eq!(account.number_last4.as_deref(), Some("5678"));
    assert_eq!(outcome.event_id, "evt_1");
}

#[test]
fn an_event_without_amount_never_invents_one() {
    let report = PaymentReport {
        amount: None,
        currency: None,
        ..report()
    };
    let (_, patch) = plan_write(None, &EVENT, &Pending, &report, "now");
    let patch = patch.unwrap();
    let created = patch.created.unwrap();
    assert_eq!((created.amount, created.currency), (None, None));
    assert_eq!(patch.outcome, None, "pending is not an outcome");
}

#[test]
fn a_transition_is_guarded_by_the_version_read() {
    let s = state(Pending, &[]);
    let (_, patch) = plan_write(Some(&s), &EVENT, &Failed, &report(), "now");
    let patch = patch.unwrap();
    assert_eq!(patch.guard, WriteGuard::Version(1));
    assert_eq!(patch.version, 2);
    assert_eq!(patch.status, Some(Failed));
    assert_eq!(
        patch.outcome.unwrap().error_reason.as_deref(),
        Some("insufficient_funds")
    );
    assert_eq!(patch.created, None);
}

#[test]
fn a_final_outcome_pays_or_closes_its_order() {
    let s = state(Pending, &[]);
    let (_, patch) = plan_write(Some(&s), &EVENT, &Succeeded, &report(), "now");
    let order = patch.unwrap().order.unwrap();
    assert_eq!(
        (order.order_id.as_str(), order.outcome),
        ("o-1", OrderOutcome::Paid)
    );
    let (_, patch) = plan_write(Some(&s), &EVENT, &Expired, &report(), "now");
    assert_eq!(patch.unwrap().order.unwrap().outcome, OrderOutcome::Closed);
    let (_, patch) = plan_write(Some(&s), &EVENT, &Pending, &report(), "now");
    assert_eq!(patch.unwrap().order, None, "not final");
    let done = state(Succeeded, &[]);
    let (_, patch) = plan_write(Some(&done), &EVENT, &Failed, &report(), "now");
    assert_eq!(patch.unwrap().order, None, "an anomaly changes no order");
    let no_order = PaymentState {
        order_id: None,
        ..s.clone()
    };
    let (_, patch) = plan_write(Some(&no_order), &EVENT, &Succeeded, &report(), "now");
    assert_eq!(
        patch.unwrap().order,
        None,
        "a known intent's order is the one it was created for, never the event's metadata"
    );
    let other_order = PaymentState {
        order_id: Some("o-2".into()),
        ..s.clone()
    };
    let (_, patch) = plan_write(Some(&other_order), &EVENT, &Succeeded, &report(), "now");
    assert_eq!(patch.unwrap().order.unwrap().order_id, "o-2");
    let (_, patch) = plan_write(None, &EVENT, &Succeeded, &report(), "now");
    assert_eq!(
        patch.unwrap().order.unwrap().order_id,
        "o-1",
        "an intent created from the event: its metadata"
    );
}

#[test]
fn a_payment_of_another_amount_holds_its_order_for_review() {
    let s = state(Pending, &[]);
    let other = PaymentReport {
        amount: Some(1),
        ..report()
    };
    let (effect, patch) = plan_write(Some(&s), &EVENT, &Succeeded, &other, "now");
    assert!(matches!(effect, Effect::Transition { .. }));
    let patch = patch.unwrap();
    let order = patch.order.clone().expect("the order is held");
    assert_eq!(order.outcome, OrderOutcome::Review, "never paid");
    assert_eq!(order.if_refused, IfRefused::KeepAsAnomaly);
    let review = patch.review.clone().unwrap();
    assert_eq!(review.reason, ReviewReason::AmountMismatch);
    assert_eq!(review.detail, "requested 100 CLP, Fintoc reported 1 CLP");
    assert_eq!(patch.outcome.unwrap().reported_amount, Some(1));
    let usd = PaymentReport {
        currency: Some("mxn".into()),
        ..report()
    };
    let (_, patch) = plan_write(Some(&s), &EVENT, &Succeeded, &usd, "now");
    assert!(patch.unwrap().review.is_some());
    let (_, patch) = plan_write(Some(&s), &EVENT, &Succeeded, &report(), "now");
    let patch = patch.unwrap();
    assert_eq!(patch.review, None);
    assert_eq!(patch.order.unwrap().outcome, OrderOutcome::Paid);
}

#[test]
fn a_payment_its_order_refuses_is_marked_a_second_payment() {
    let s = state(Pending, &[]);
    let (_, patch) = plan_write(Some(&s), &EVENT, &Succeeded, &report(), "now");
    let kept = patch.unwrap().kept_as_anomaly();
    assert_eq!(kept.review.unwrap().reason, ReviewReason::SecondPayment);
    // Another amount stays the reason.
    let other = PaymentReport {
        amount: Some(1),
        ..report()
    };
    let (_, patch) = plan_write(Some(&s), &EVENT, &Succeeded, &other, "now");
    let kept = patch.unwrap().kept_as_anomaly();
    assert_eq!(kept.review.unwrap().reason, ReviewReason::AmountMismatch);
}

#[test]
fn conflicts_and_late_events_are_notes_and_keep_the_status() {
    let s = state(Succeeded, &[]);
    let (_, patch) = plan_write(Some(&s), &EVENT, &Failed, &report(), "now");
    let patch = patch.unwrap();
    assert_eq!(patch.status, None);
    assert_eq!(patch.outcome, None);
    assert_eq!(patch.note.unwrap().list, NoteList::Anomalies);
    let (_, patch) = plan_write(Some(&s), &EVENT, &Pending, &report(), "now");
    let note = patch.unwrap().note.unwrap();
    assert_eq!(note.list, NoteList::LateEvents);
    assert_eq!(note.claimed_status, Pending);
    let (_, patch) = plan_write(Some(&s), &EVENT, &Succeeded, &report(), "now");
    let patch = patch.unwrap();
    assert_eq!((patch.status, patch.note), (None, None));
    assert_eq!(patch.event_id, "evt_1", "the id is still recorded");
}

fn state(status: PaymentStatus, applied: &[&str]) -> PaymentState {
    PaymentState {
        status,
        applied_event_ids: applied.iter().map(|s| s.to_string()).collect(),
        version: 1,
        requested: Some((100, "CLP".into())),
        order_id: Some("o-1".into()),
        mode: None,
        session_attempt: None,
    }
}

#[test]
fn unknown_intent_is_created() {
    assert_eq!(
        decide(None, "e1", &Succeeded),
        Effect::Create { status: Succeeded }
    );
}

#[test]
fn applied_event_is_a_duplicate_whatever_it_says() {
    let s = state(Succeeded, &["e1"]);
    assert_eq!(decide(Some(&s), "e1", &Succeeded), Effect::Duplicate);
    assert_eq!(decide(Some(&s), "e1", &Failed), Effect::Duplicate);
}

#[test]
fn non_final_moves_forward_to_final() {
    for from in [
        Created,
        InProgress,
        Pending,
        RequiresAction,
        Other("x".into()),
    ] {
        for to in [Succeeded, Failed, Rejected, Expired] {
            assert_eq!(
                decide(Some(&state(from.clone(), &[])), "e", &to),
                Effect::Transition {
                    from: from.clone(),
                    to: to.clone()
                }
            );
        }
    }
    assert!(matches!(
        decide(Some(&state(Created, &[])), "e", &Pending),
        Effect::Transition { .. }
    ));
}

#[test]
fn finals_are_never_left() {
    for current in [Succeeded, Failed, Rejected, Expired] {
        for claimed in [Succeeded, Failed, Rejected, Expired] {
            let effect = decide(Some(&state(current.clone(), &[])), "e", &claimed);
            if claimed == current {
                assert_eq!(effect, Effect::SameStatus);
            } else {
                assert_eq!(
                    effect,
                    Effect::ConflictingFinal {
                        current: current.clone(),
                        claimed
                    }
                );
            }
        }
        assert_eq!(
            decide(Some(&state(current.clone(), &[])), "e", &Pending),
            Effect::Late {
                current: current.clone(),
                claimed: Pending
            }
        );
    }
}

#[test]
fn non_final_never_moves_back() {
    assert_eq!(
        decide(Some(&state(Pending, &[])), "e", &InProgress),
        Effect::Late {
            current: Pending,
            claimed: InProgress
        }
    );
    assert_eq!(
        decide(Some(&state(Pending, &[])), "e", &Pending),
        Effect::SameStatus
    );
}

/// Whatever order a set of events arrives in, and however often, the end state
/// is the same final status when exactly one final event is in the set.
#[test]
fn any_order_of_pending_and_one_final_ends_final() {
    let events = [
        ("p", Pending),
        ("f", Succeeded),
        ("p", Pending),
        ("f", Succeeded),
    ];
    let orders: [[usize; 4]; 4] = [[0, 1, 2, 3], [1, 0, 3, 2], [3, 2, 1, 0], [1, 1, 0, 0]];
    for order in orders {
        let mut s = state(Created, &[]);
        let mut transitions_to_final = 0;
        for i in order {
            let (id, status) = &events[i];
            match decide(Some(&s), id, status) {
                Effect::Transition { to, .. } => {
                    if to.is_final() {
                        transitions_to_final += 1;
                    }
                    s.status = to;
                    s.applied_event_ids.insert(id.to_string());
                }
                Effect::Duplicate => {}
                _ => {
                    s.applied_event_ids.insert(id.to_string());
                }
            }
        }
        assert_eq!(s.status, Succeeded, "{order:?}");
        assert_eq!(transitions_to_final, 1, "{order:?}");
    }
}

#[test]
fn the_attempt_that_decided_a_session_is_never_replaced() {
    let attempt = |id: &str| PaymentReport {
        kind: PaymentKind::Session,
        session_payment: Some(SessionPayment {
            intent_id: id.into(),
            status: Succeeded,
        }),
        ..report()
    };
    let event = |id| EventRef { id, ..EVENT };
    // Open: the latest attempt is recorded.
    let open = PaymentState {
        session_attempt: Some("pi_a".into()),
        ..state(InProgress, &[])
    };
    let (_, patch) = plan_write(
        Some(&open),
        &event("evt_2"),
        &InProgress,
        &attempt("pi_b"),
        "now",
    );
    assert_eq!(
        patch.unwrap().session_payment.map(|p| p.intent_id),
        Some("pi_b".into())
    );
    // Succeeded by pi_a: another attempt's success changes nothing of it.
    let paid = PaymentState {
        session_attempt: Some("pi_a".into()),
        ..state(Succeeded, &[])
    };
    let (effect, patch) = plan_write(
        Some(&paid),
        &event("evt_3"),
        &Succeeded,
        &attempt("pi_b"),
        "now",
    );
    assert_eq!(effect, Effect::SameStatus);
    assert_eq!(patch.unwrap().session_payment, None);
    // ...and the webhook records such a success as a payment of its own.
    assert!(!paid.takes_attempt("pi_b", &Succeeded));
    assert!(paid.takes_attempt("pi_a", &Succeeded), "its own attempt");
    assert!(
        paid.takes_attempt("pi_b", &Failed),
        "a failure is a late note"
    );
    assert!(
        open.takes_attempt("pi_b", &Succeeded),
        "open: the payer may retry"
    );
    let expired = state(Expired, &[]);
    assert!(
        !expired.takes_attempt("pi_c", &Succeeded),
        "after its expiry"
    );
}

proptest::proptest! {
    /// Whatever attempts of a session are reported, in any order and duplicated:
    /// while it is open its payment is the latest attempt reported; once it is
    /// final, the attempt that decided it stays its payment, and another
    /// attempt's success is never taken by it (the webhook records it as a second
    /// payment of its own).
    #[test]
    fn a_final_sessions_attempt_never_changes(
        reports in proptest::collection::vec(
            (0usize..3, 0usize..4, 0usize..6),
            1..30,
        )
    ) {
        let statuses = [InProgress, Succeeded, Failed, Expired];
        let mut s = state(Created, &[]);
        let mut decided: Option<Option<String>> = None;
        for (attempt, status, event) in reports {
            let attempt = format!("pi_{attempt}");
            let claimed = statuses[status].clone();
            let report = PaymentReport {
                kind: PaymentKind::Session,
                session_payment: Some(SessionPayment {
                    intent_id: attempt.clone(),
                    status: claimed.clone(),
                }),
                ..report()
            };
            let event_id = format!("evt_{event}");
            let event = EventRef { id: &event_id, ..EVENT };
            if !s.takes_attempt(&attempt, &claimed) {
                proptest::prop_assert!(s.status.is_final() && claimed == Succeeded);
                continue; // recorded as a payment of its own
            }
            let (_, patch) = plan_write(Some(&s), &event, &claimed, &report, "now");
            let Some(patch) = patch else { continue };
            if let Some(status) = patch.status {
                s.status = status;
            }
            if let Some(payment) = patch.session_payment {
                s.session_attempt = Some(payment.intent_id);
            }
            s.applied_event_ids.insert(event_id);
            s.version += 1;
            match &decided {
                Some(attempt) => proptest::prop_assert_eq!(attempt, &s.session_attempt),
                None if s.status.is_final() => decided = Some(s.session_attempt.clone()),
                None => {}
            }
        }
    }
}
