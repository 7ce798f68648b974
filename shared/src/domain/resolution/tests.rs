use super::*;
use crate::domain::fixtures::{created_intent, refund};
use crate::domain::payment::Review;
use crate::domain::refund::RefundStatus;
use crate::domain::refund::Refunds;

fn request(resolve_as: ResolveAs) -> ResolveRequest {
    ResolveRequest {
        order_id: "o-1".into(),
        resolve_as,
        reason: "customer confirmed the transfer".into(),
        ticket: Some("OPS-12".into()),
        actor: "arn:aws:iam::123456789012:user/ana".into(),
        resolution_id: "res_1".into(),
        at: "2026-12-06T12:00:00.000Z".into(),
        at_ms: 1_796_558_400_000,
    }
}

fn order(state: OrderState) -> OrderRecord {
    OrderRecord {
        state,
        holder: "h".into(),
        intent_id: Some("pi_1".into()),
        payment_kind: PaymentKind::Intent,
        reserved_until_ms: 0,
        session_refs: Default::default(),
    }
}

/// A payment of 15,000 CLP that Fintoc reported succeeded at 1 CLP: held.
fn mismatched() -> StoredPayment {
    StoredPayment {
        status: PaymentStatus::Succeeded,
        review: Some(Review {
            reason: ReviewReason::AmountMismatch,
            detail: "requested 15000 CLP, Fintoc reported 1 CLP".into(),
        }),
        ..created_intent("pi_1", 15_000, "CLP", Some("o-1"))
    }
}

fn fintoc(status: PaymentStatus, amount: u64) -> FintocAnswer {
    FintocAnswer {
        status,
        amount: Some(amount),
        currency: Some("clp".into()),
    }
}

#[test]
fn paid_accepts_fintocs_amount_and_keeps_the_requested_one() {
    let answer = fintoc(PaymentStatus::Succeeded, 1);
    let plan = decide(
        &request(ResolveAs::Paid),
        Some(&order(OrderState::Review)),
        Some(&mismatched()),
        Some(&answer),
    )
    .unwrap();
    assert_eq!(
        plan.acceptance,
        Some(Acceptance {
            amount: 1,
            currency: "CLP".into(),
            requested_amount: 15_000,
            requested_currency: "CLP".into(),
        })
    );
    assert_eq!(plan.payment_id, "pi_1");
    let entry = &plan.entry;
    assert_eq!(
        (
            entry.action.as_str(),
            entry.subject.as_str(),
            entry.id.as_str()
        ),
        ("resolve_paid", "o-1", "res_1")
    );
    assert_eq!(entry.before["order"]["state"], "review");
    assert_eq!(entry.after["order"]["state"], "paid");
    assert_eq!(entry.after["payment"]["amount"], 1);
    assert_eq!(entry.before["fintoc"]["status"], "succeeded");
}

#[test]
fn paid_is_refused_unless_fintoc_says_succeeded_now() {
    for answer in [
        Some(fintoc(PaymentStatus::Failed, 1)),
        Some(fintoc(PaymentStatus::InProgress, 1)),
        None,
    ] {
        let refused = decide(
            &request(ResolveAs::Paid),
            Some(&order(OrderState::Review)),
            Some(&mismatched()),
            answer.as_ref(),
        )
        .unwrap_err();
        assert_eq!(
            refused.code(),
            "payment_not_succeeded_at_fintoc",
            "{answer:?}"
        );
        assert_eq!(refused.status(), 409);
    }
}

#[test]
fn paid_needs_an_amount_mismatch_and_an_amount_from_fintoc() {
    let mut second = mismatched();
    second.review.as_mut().unwrap().reason = ReviewReason::SecondPayment;
    let no_amount = FintocAnswer {
        amount: None,
        ..fintoc(PaymentStatus::Succeeded, 1)
    };
    for (payment, answer) in [
        (second, fintoc(PaymentStatus::Succeeded, 1)),
        (mismatched(), no_amount),
    ] {
        let refused = decide(
            &request(ResolveAs::Paid),
            Some(&order(OrderState::Review)),
            Some(&payment),
            Some(&answer),
        )
        .unwrap_err();
        assert_eq!(refused.code(), "nothing_to_accept");
    }
}

#[test]
fn closed_only_when_nothing_paid_is_still_held() {
    let answer = fintoc(PaymentStatus::Succeeded, 1);
    let refused = decide(
        &request(ResolveAs::Closed),
        Some(&order(OrderState::Review)),
        Some(&mismatched()),
        Some(&answer),
    )
    .unwrap_err();
    assert_eq!(
        refused,
        ResolveRefusal::PaymentStillHeld {
            paid: 1,
            refunded: 0,
            currency: "CLP".into()
        }
    );
    assert_eq!(refused.code(), "payment_still_held");

    let mut refunded = mismatched();
    refunded.refunds = Refunds {
        reserved: 1,
        entries: vec![refund("k0000000000000001", 1, RefundStatus::Succeeded)],
    };
    let plan = decide(
        &request(ResolveAs::Closed),
        Some(&order(OrderState::Review)),
        Some(&refunded),
        Some(&answer),
    )
    .unwrap();
    assert_eq!(plan.acceptance, None);
    assert_eq!(plan.entry.action, "resolve_closed");
    assert_eq!(plan.entry.after["order"]["state"], "closed");
}

#[test]
fn closed_is_refused_when_fintoc_says_a_payment_we_think_unpaid_succeeded() {
    let ours = StoredPayment {
        status: PaymentStatus::Failed,
        ..mismatched()
    };
    let answer = fintoc(PaymentStatus::Succeeded, 15_000);
    let refused = decide(
        &request(ResolveAs::Closed),
        Some(&order(OrderState::Review)),
        Some(&ours),
        Some(&answer),
    )
    .unwrap_err();
    assert_eq!(refused.code(), "payment_still_held");
    // Never succeeded, by both accounts: closed.
    let failed = fintoc(PaymentStatus::Failed, 15_000);
    assert!(decide(
        &request(ResolveAs::Closed),
        Some(&order(OrderState::Review)),
        Some(&ours),
        Some(&failed),
    )
    .is_ok());
}

#[test]
fn only_an_order_in_review_with_its_stored_payment_is_resolved() {
    let answer = fintoc(PaymentStatus::Succeeded, 1);
    for state in [
        OrderState::Reserved,
        OrderState::Open,
        OrderState::Paid,
        OrderState::Closed,
    ] {
        let refused = decide(
            &request(ResolveAs::Paid),
            Some(&order(state)),
            Some(&mismatched()),
            Some(&answer),
        )
        .unwrap_err();
        assert_eq!(refused, ResolveRefusal::OrderNotInReview(state));
        assert_eq!(refused.code(), "order_not_in_review");
    }
    let missing = decide(&request(ResolveAs::Paid), None, None, None).unwrap_err();
    assert_eq!((missing.code(), missing.status()), ("order_not_found", 404));
    let other = created_intent("pi_other", 1, "CLP", Some("o-1"));
    let refused = decide(
        &request(ResolveAs::Paid),
        Some(&order(OrderState::Review)),
        Some(&other),
        Some(&answer),
    )
    .unwrap_err();
    assert_eq!(refused.code(), "payment_not_found");
}

#[test]
fn a_reason_is_required_and_bounded() {
    let answer = fintoc(PaymentStatus::Succeeded, 1);
    let long = "x".repeat(MAX_TEXT_BYTES + 1);
    for (reason, ticket) in [
        ("", None),
        ("   ", None),
        (long.as_str(), None),
        ("ok", Some(long.clone())),
    ] {
        let mut r = request(ResolveAs::Paid);
        r.reason = reason.into();
        r.ticket = ticket;
        let refused = decide(
            &r,
            Some(&order(OrderState::Review)),
            Some(&mismatched()),
            Some(&answer),
        )
        .unwrap_err();
        assert_eq!((refused.code(), refused.status()), ("reason_required", 400));
    }
}
