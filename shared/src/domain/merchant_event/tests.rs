use super::*;
use crate::domain::payment::{Review, ReviewReason};
use std::collections::BTreeMap;

fn payment(status: PaymentStatus) -> StoredPayment {
    StoredPayment {
        id: "pi_1".into(),
        kind: PaymentKind::Intent,
        status,
        amount: 15_000,
        currency: "CLP".into(),
        order_id: Some("order-7".into()),
        metadata: BTreeMap::from([("sku".to_string(), "A-1".to_string())]),
        customer_email: Some("payer@example.cl".into()),
        mode: Some("test".into()),
        error_reason: None,
        created_at: "2026-12-06T10:00:00.000Z".into(),
        updated_at: "2026-12-06T10:01:00.000Z".into(),
        schedule: None,
        session_payment: None,
        expires_at: None,
        review: None,
        refunds: Default::default(),
    }
}

fn outcome(status: RefundStatus) -> RefundOutcomeRecord {
    RefundOutcomeRecord {
        refund_id: "re_i.pi_1.k0123456789abcdef".into(),
        payment_id: "pi_1".into(),
        order_id: Some("order-7".into()),
        status,
        amount: 5_000,
        currency: "CLP".into(),
        failure_code: None,
        at: "2026-12-06T11:05:00.000Z".into(),
    }
}

#[test]
fn an_order_paid_event_says_what_was_paid_and_nothing_secret() {
    let paid = payment(PaymentStatus::Succeeded);
    let event = order_paid(&paid, "2026-12-06T10:01:00.000Z").unwrap();
    assert_eq!(
        event.to_json(),
        json!({
            "id": event.id,
            "type": "order.paid",
            "timestamp": "2026-12-06T10:01:00.000Z",
            "data": {
                "order_id": "order-7", "payment_id": "pi_1", "flow": "payment_intent",
                "amount": 15000, "currency": "CLP", "metadata": {"sku": "A-1"},
                "paid_at": "2026-12-06T10:01:00.000Z",
            },
        })
    );
    assert!(!event.to_json().to_string().contains("payer@example.cl"));
    assert!(order_paid(
        &StoredPayment {
            order_id: None,
            ..paid
        },
        "t"
    )
    .is_none());
}

#[test]
fn an_events_id_is_its_change_and_nothing_else() {
    let paid = payment(PaymentStatus::Succeeded);
    let first = order_paid(&paid, "2026-12-06T10:01:00.000Z").unwrap();
    // The same change read again (a duplicated stream record, a replay): one id.
    assert_eq!(
        first.id,
        order_paid(&paid, "2026-12-06T10:01:00.000Z").unwrap().id
    );
    // A second payment of the same order cannot make a second order.paid.
    let second = StoredPayment {
        id: "pi_2".into(),
        ..paid.clone()
    };
    assert_eq!(first.id, order_paid(&second, "t2").unwrap().id);
    assert!(
        first.id.starts_with("evt_") && first.id.len() == 36,
        "{}",
        first.id
    );
    // Parts never run into each other: ("ab", "c") is not ("a", "bc").
    assert_ne!(
        event_id(EventType::OrderPaid, "ab", "c"),
        event_id(EventType::OrderPaid, "a", "bc")
    );
    assert_ne!(
        event_id(EventType::OrderPaid, "o", "paid"),
        event_id(EventType::PaymentFailed, "o", "paid")
    );
}

#[test]
fn a_payment_that_ended_unpaid_is_one_failed_event() {
    for status in [
        PaymentStatus::Failed,
        PaymentStatus::Rejected,
        PaymentStatus::Expired,
    ] {
        let failed = StoredPayment {
            error_reason: Some("insufficient_funds".into()),
            ..payment(status.clone())
        };
        let event = payment_failed(&failed).unwrap();
        assert_eq!(event.event_type.as_str(), "payment.failed");
        assert_eq!(event.data["status"], status.as_str());
        assert_eq!(event.data["error_reason"], "insufficient_funds");
        assert_eq!(event.data["order_id"], "order-7");
    }
    for open in [
        PaymentStatus::Created,
        PaymentStatus::Pending,
        PaymentStatus::Succeeded,
        PaymentStatus::Other("new".into()),
    ] {
        assert!(payment_failed(&payment(open)).is_none());
    }
}

#[test]
fn a_payment_held_for_a_human_is_a_needs_review_event() {
    let held = StoredPayment {
        review: Some(Review {
            reason: ReviewReason::AmountMismatch,
            detail: "requested 15000 CLP, Fintoc reported 1 CLP".into(),
        }),
        ..payment(PaymentStatus::Succeeded)
    };
    let event = payment_needs_review(&held).unwrap();
    assert_eq!(event.event_type, EventType::PaymentNeedsReview);
    assert_eq!(event.data["reason"], "amount_mismatch");
    assert_eq!(
        event.data["detail"],
        "requested 15000 CLP, Fintoc reported 1 CLP"
    );
    assert!(payment_needs_review(&payment(PaymentStatus::Succeeded)).is_none());
}

#[test]
fn a_refunds_outcome_is_one_event_named_by_its_public_id() {
    let succeeded = refund_outcome(&outcome(RefundStatus::Succeeded)).unwrap();
    assert_eq!(succeeded.event_type.as_str(), "refund.succeeded");
    assert_eq!(succeeded.data["refund_id"], "re_i.pi_1.k0123456789abcdef");
    assert_eq!(succeeded.data["amount"], 5000);
    assert_eq!(succeeded.timestamp, "2026-12-06T11:05:00.000Z");
    let failed = refund_outcome(&RefundOutcomeRecord {
        failure_code: Some("insufficient_funds".into()),
        ..outcome(RefundStatus::Failed)
    })
    .unwrap();
    assert_eq!(failed.event_type.as_str(), "refund.failed");
    assert_eq!(failed.data["failure_code"], "insufficient_funds");
    assert_ne!(failed.id, succeeded.id);
    for status in [
        RefundStatus::Creating,
        RefundStatus::Pending,
        RefundStatus::InProgress,
        RefundStatus::Canceled,
        RefundStatus::Rejected,
    ] {
        assert!(refund_outcome(&outcome(status)).is_none());
    }
}

fn order_change(before: Option<OrderState>, after: OrderState) -> StoredChange {
    StoredChange::Order {
        order_id: "order-7".into(),
        before,
        after,
        payment_id: Some("pi_1".into()),
        kind: PaymentKind::Intent,
        paid_at: Some("2026-12-06T10:01:00.000Z".into()),
    }
}

#[test]
fn an_order_becoming_paid_derives_its_one_order_paid() {
    let paid = Derived::OrderPaid {
        order_id: "order-7".into(),
        payment_id: "pi_1".into(),
        kind: PaymentKind::Intent,
        paid_at: "2026-12-06T10:01:00.000Z".into(),
    };
    assert_eq!(
        derive(&order_change(Some(OrderState::Open), OrderState::Paid)),
        std::slice::from_ref(&paid)
    );
    assert_eq!(
        derive(&order_change(None, OrderState::Paid)),
        std::slice::from_ref(&paid)
    );
    assert_eq!(
        derive(&order_change(Some(OrderState::Review), OrderState::Paid)),
        [paid]
    );
    // A paid order changed again (its refunded amount): nothing new.
    assert!(derive(&order_change(Some(OrderState::Paid), OrderState::Paid)).is_empty());
    for other in [OrderState::Open, OrderState::Closed, OrderState::Review] {
        assert!(derive(&order_change(Some(OrderState::Reserved), other)).is_empty());
    }
}

#[test]
fn a_payment_change_derives_failure_and_review_once() {
    let open = payment(PaymentStatus::Pending);
    let failed = payment(PaymentStatus::Failed);
    let change = |before: Option<&StoredPayment>, after: &StoredPayment| StoredChange::Payment {
        before: before.cloned().map(Box::new),
        after: Box::new(after.clone()),
    };
    let events = derive(&change(Some(&open), &failed));
    assert_eq!(events, [Derived::Event(payment_failed(&failed).unwrap())]);
    assert_eq!(derive(&change(None, &failed)).len(), 1);
    // The failed payment changed again (its schedule removed): no second event.
    assert!(derive(&change(Some(&failed), &failed)).is_empty());
    // Succeeded, or still open: nothing of a payment's own.
    assert!(derive(&change(Some(&open), &payment(PaymentStatus::Succeeded))).is_empty());

    let held = StoredPayment {
        review: Some(Review {
            reason: ReviewReason::SecondPayment,
            detail: "order paid by pi_0".into(),
        }),
        ..payment(PaymentStatus::Succeeded)
    };
    let events = derive(&change(Some(&open), &held));
    assert_eq!(
        events,
        [Derived::Event(payment_needs_review(&held).unwrap())]
    );
    assert!(derive(&change(Some(&held), &held)).is_empty());
}

#[test]
fn a_refund_outcome_record_derives_its_event_and_nothing_else_does() {
    assert_eq!(
        derive(&StoredChange::RefundOutcome(outcome(
            RefundStatus::Succeeded
        ))),
        [Derived::Event(
            refund_outcome(&outcome(RefundStatus::Succeeded)).unwrap()
        )]
    );
    assert!(derive(&StoredChange::RefundOutcome(outcome(
        RefundStatus::Canceled
    )))
    .is_empty());
    assert!(derive(&StoredChange::Unrelated).is_empty());
}

#[test]
fn every_type_has_its_documented_name() {
    let names: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
    assert_eq!(
        names,
        [
            "order.paid",
            "payment.failed",
            "payment.needs_review",
            "refund.succeeded",
            "refund.failed"
        ]
    );
}
