use super::*;
use crate::domain::fixtures::refund;
use crate::domain::payment::{PaymentKind, Review, ReviewReason};
use crate::domain::refund::RefundStatus;
use crate::domain::refund::Refunds;
use crate::domain::schedule::CheckSchedule;

const NOW: i64 = 1_800_000_000_000;

fn payment(id: &str, status: PaymentStatus) -> StoredPayment {
    StoredPayment {
        id: id.into(),
        kind: PaymentKind::Intent,
        schedule: (!status.is_final()).then_some(CheckSchedule {
            shard: 1,
            due_at_ms: NOW + 600_000,
            checks: 1,
            give_up_at_ms: NOW + 10 * DAILY_MS,
        }),
        status,
        amount: 15_000,
        currency: "CLP".into(),
        order_id: Some("o-1".into()),
        metadata: Default::default(),
        customer_email: None,
        mode: None,
        error_reason: None,
        created_at: "2026-12-06T10:00:00.000Z".into(),
        updated_at: "2026-12-06T10:01:00.000Z".into(),
        session_payment: None,
        expires_at: None,
        review: None,
        refunds: Default::default(),
    }
}

fn order(state: OrderState, payment_id: Option<&str>) -> AuditedOrder {
    AuditedOrder {
        order_id: "o-1".into(),
        state,
        payment_id: payment_id.map(str::to_string),
        payment_kind: PaymentKind::Intent,
        reserved_until_ms: NOW - 1_000,
        refunded_amount: 0,
    }
}

fn audited(p: &StoredPayment) -> AuditedPayment<'_> {
    AuditedPayment {
        payment: p,
        flagged: false,
    }
}

fn names(found: &[Violation]) -> Vec<&'static str> {
    found.iter().map(|v| v.invariant.as_str()).collect()
}

#[test]
fn a_paid_order_with_its_one_payment_and_its_refunds_holds_every_rule() {
    let mut paid = payment("pi_1", PaymentStatus::Succeeded);
    paid.refunds = Refunds {
        reserved: 5_000,
        entries: vec![refund("k0000000000000001", 5_000, RefundStatus::Succeeded)],
    };
    let second = StoredPayment {
        review: Some(Review {
            reason: ReviewReason::SecondPayment,
            detail: "paid by pi_1".into(),
        }),
        ..payment("pi_2", PaymentStatus::Succeeded)
    };
    let paid_order = AuditedOrder {
        refunded_amount: 5_000,
        ..order(OrderState::Paid, Some("pi_1"))
    };
    let payments = [audited(&paid), audited(&second)];
    assert_eq!(check_order(&paid_order, &payments, NOW), []);
    for p in payments {
        assert_eq!(check_payment(p, NOW), []);
    }
    let open = payment("pi_3", PaymentStatus::Pending);
    assert_eq!(
        check_order(
            &order(OrderState::Open, Some("pi_3")),
            &[audited(&open)],
            NOW
        ),
        []
    );
    assert_eq!(check_payment(audited(&open), NOW), []);
}

#[test]
fn a_paid_order_whose_payment_did_not_pay_it_breaks_order_paid_by_its_payment() {
    let failed = payment("pi_1", PaymentStatus::Failed);
    let found = check_order(
        &order(OrderState::Paid, Some("pi_1")),
        &[audited(&failed)],
        NOW,
    );
    assert_eq!(names(&found), ["order_paid_by_its_payment"]);
    let missing = check_order(&order(OrderState::Paid, Some("pi_9")), &[], NOW);
    assert_eq!(names(&missing), ["order_paid_by_its_payment"]);
    let mismatched = StoredPayment {
        review: Some(Review {
            reason: ReviewReason::AmountMismatch,
            detail: "1 CLP".into(),
        }),
        ..payment("pi_1", PaymentStatus::Succeeded)
    };
    let found = check_order(
        &order(OrderState::Paid, Some("pi_1")),
        &[audited(&mismatched)],
        NOW,
    );
    assert_eq!(names(&found), ["order_paid_by_its_payment"]);
    assert!(
        found[0].detail.contains("amount_mismatch"),
        "{}",
        found[0].detail
    );
}

#[test]
fn a_second_succeeded_payment_not_held_breaks_one_payment_per_order() {
    let (first, second) = (
        payment("pi_1", PaymentStatus::Succeeded),
        payment("pi_2", PaymentStatus::Succeeded),
    );
    let found = check_order(
        &order(OrderState::Paid, Some("pi_1")),
        &[audited(&first), audited(&second)],
        NOW,
    );
    assert_eq!(names(&found), ["one_payment_per_order"]);
    assert_eq!(found[0].subject, "o-1");
    assert!(found[0].detail.contains("pi_2"));
}

#[test]
fn refunds_beyond_what_was_paid_break_refunds_within_paid() {
    let mut over = payment("pi_1", PaymentStatus::Succeeded);
    over.refunds.reserved = 15_001;
    assert_eq!(
        names(&check_payment(audited(&over), NOW)),
        ["refunds_within_paid"]
    );
    let mut unpaid = payment("pi_2", PaymentStatus::Failed);
    unpaid.refunds.entries = vec![refund("k0000000000000002", 1, RefundStatus::Succeeded)];
    assert_eq!(
        names(&check_payment(audited(&unpaid), NOW)),
        ["refunds_within_paid"]
    );
}

#[test]
fn an_order_counting_other_refunds_breaks_refunded_amount_matches() {
    let mut paid = payment("pi_1", PaymentStatus::Succeeded);
    paid.refunds = Refunds {
        reserved: 3_000,
        entries: vec![
            refund("k0000000000000001", 2_000, RefundStatus::Succeeded),
            refund("k0000000000000002", 1_000, RefundStatus::Pending),
        ],
    };
    let counted = |refunded_amount| AuditedOrder {
        refunded_amount,
        ..order(OrderState::Paid, Some("pi_1"))
    };
    assert_eq!(check_order(&counted(2_000), &[audited(&paid)], NOW), []);
    let found = check_order(&counted(3_000), &[audited(&paid)], NOW);
    assert_eq!(names(&found), ["refunded_amount_matches"]);
}

#[test]
fn an_open_payment_off_its_schedule_breaks_open_payment_scheduled_unless_flagged() {
    let mut lost = payment("pi_1", PaymentStatus::Pending);
    lost.schedule = None;
    assert_eq!(
        names(&check_payment(audited(&lost), NOW)),
        ["open_payment_scheduled"]
    );
    let flagged = AuditedPayment {
        payment: &lost,
        flagged: true,
    };
    assert_eq!(check_payment(flagged, NOW), []);
    let mut far = payment("pi_2", PaymentStatus::Created);
    far.schedule.as_mut().unwrap().due_at_ms = NOW + 2 * DAILY_MS;
    assert_eq!(
        names(&check_payment(audited(&far), NOW)),
        ["open_payment_scheduled"]
    );
}

#[test]
fn an_order_state_its_payments_contradict_breaks_order_state_consistent() {
    let done = payment("pi_1", PaymentStatus::Expired);
    let found = check_order(
        &order(OrderState::Open, Some("pi_1")),
        &[audited(&done)],
        NOW,
    );
    assert_eq!(names(&found), ["order_state_consistent"]);
    let found = check_order(&order(OrderState::Open, Some("pi_9")), &[], NOW);
    assert_eq!(names(&found), ["order_state_consistent"]);
    let stale = AuditedOrder {
        reserved_until_ms: NOW - RESERVATION_GRACE_MS - 1,
        ..order(OrderState::Reserved, None)
    };
    assert_eq!(
        names(&check_order(&stale, &[], NOW)),
        ["order_state_consistent"]
    );
    assert_eq!(
        check_order(&order(OrderState::Reserved, None), &[], NOW),
        []
    );
    let plain = payment("pi_1", PaymentStatus::Succeeded);
    let found = check_order(
        &order(OrderState::Review, Some("pi_1")),
        &[audited(&plain)],
        NOW,
    );
    assert_eq!(names(&found), ["order_state_consistent"]);
}

#[test]
fn every_rule_has_its_documented_name() {
    let all: Vec<&str> = Invariant::ALL.iter().map(|i| i.as_str()).collect();
    assert_eq!(
        all,
        [
            "order_paid_by_its_payment",
            "one_payment_per_order",
            "refunds_within_paid",
            "refunded_amount_matches",
            "open_payment_scheduled",
            "order_state_consistent"
        ]
    );
}
