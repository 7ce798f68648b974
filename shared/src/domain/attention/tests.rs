use super::*;
use crate::domain::fixtures::{created_intent, refund};
use crate::domain::payment::Review;

fn second_payment(status: PaymentStatus) -> StoredPayment {
    StoredPayment {
        status,
        review: Some(Review {
            reason: ReviewReason::SecondPayment,
            detail: "its order was paid by pi_1".into(),
        }),
        ..created_intent("pi_2", 15_000, "CLP", Some("o-1"))
    }
}

fn reasons(candidate: Candidate) -> Vec<&'static str> {
    needs(&candidate, "2026-12-06T10:00:00.000Z", 1)
        .into_iter()
        .map(|i| i.reason)
        .collect()
}

#[test]
fn an_order_is_listed_while_it_is_held_for_review() {
    for (state, expected) in [
        (OrderState::Review, vec!["review"]),
        (OrderState::Paid, vec![]),
        (OrderState::Closed, vec![]),
    ] {
        let order = Candidate::Order {
            order_id: "o-1".into(),
            state,
        };
        assert_eq!(reasons(order), expected, "{state:?}");
    }
}

#[test]
fn a_second_payment_is_listed_until_refunded_in_full() {
    let held = second_payment(PaymentStatus::Succeeded);
    let mut partly = held.clone();
    partly.refunds.entries = vec![refund("k0000000000000001", 5_000, RefundStatus::Succeeded)];
    let mut back = held.clone();
    back.refunds.entries = vec![refund("k0000000000000001", 15_000, RefundStatus::Succeeded)];
    for (payment, expected) in [
        (held, vec!["needs_review"]),
        (partly, vec!["needs_review"]),
        (back, vec![]),
    ] {
        let candidate = Candidate::Payment {
            payment: Box::new(payment),
            flagged: None,
        };
        assert_eq!(reasons(candidate), expected);
    }
}

#[test]
fn a_flagged_payment_is_listed_while_it_is_not_final() {
    let open = created_intent("pi_3", 15_000, "CLP", Some("o-3"));
    for flag in ["stuck", "not_found_at_fintoc"] {
        let candidate = Candidate::Payment {
            payment: Box::new(open.clone()),
            flagged: Some(flag.into()),
        };
        assert_eq!(reasons(candidate), vec![flag]);
    }
    let settled = StoredPayment {
        status: PaymentStatus::Failed,
        ..open
    };
    let candidate = Candidate::Payment {
        payment: Box::new(settled),
        flagged: Some("stuck".into()),
    };
    assert!(reasons(candidate).is_empty(), "final: the need went away");
}

#[test]
fn failed_refunds_and_exhausted_deliveries_are_listed() {
    let failed = Candidate::RefundOutcome {
        refund_id: "re_1".into(),
        order_id: Some("o-1".into()),
        status: RefundStatus::Failed,
    };
    assert_eq!(reasons(failed), vec!["refund_failed"]);
    let succeeded = Candidate::RefundOutcome {
        refund_id: "re_2".into(),
        order_id: None,
        status: RefundStatus::Succeeded,
    };
    assert!(reasons(succeeded).is_empty());
    for (state, expected) in [
        (DeliveryState::Exhausted, vec!["delivery_exhausted"]),
        (DeliveryState::Pending, vec![]),
        (DeliveryState::Delivered, vec![]),
    ] {
        let delivery = Candidate::Delivery {
            id: "evt_1/merchant".into(),
            state,
        };
        assert_eq!(reasons(delivery), expected);
    }
}

#[test]
fn the_queue_is_oldest_first() {
    let at = |ms, id: &str| QueueItem {
        kind: "order",
        id: id.into(),
        order_id: None,
        reason: "review",
        since: String::new(),
        since_ms: ms,
    };
    let sorted = oldest_first(vec![at(3, "c"), at(1, "b"), at(1, "a")]);
    let ids: Vec<&str> = sorted.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c"]);
}

#[test]
fn only_reasons_that_hold_no_money_leave_the_queue_when_acknowledged() {
    let item = |reason| QueueItem {
        kind: "payment",
        id: "pi_1".into(),
        order_id: None,
        reason,
        since: String::new(),
        since_ms: 0,
    };
    let acknowledged: Vec<String> = ["stuck", "needs_review", "review"]
        .iter()
        .map(|r| r.to_string())
        .collect();
    let left = outstanding(
        vec![
            item("needs_review"),
            item("stuck"),
            item("not_found_at_fintoc"),
        ],
        &acknowledged,
    );
    let reasons: Vec<&str> = left.iter().map(|i| i.reason).collect();
    assert_eq!(reasons, ["needs_review", "not_found_at_fintoc"]);
    assert!(!acknowledgeable("review") && !acknowledgeable("needs_review"));
    for reason in ACKNOWLEDGEABLE {
        assert_eq!(
            outstanding(vec![item(reason)], &[reason.to_string()]),
            vec![]
        );
    }
}
