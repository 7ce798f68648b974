//! `show`'s decisions: discrepancies, the possible events, the timeline's order.

use super::*;
use crate::domain::fixtures::{created_intent, refund};
use crate::domain::merchant_event::{order_paid, payment_failed};

fn answer(status: PaymentStatus, amount: u64, currency: &str) -> FintocAnswer {
    FintocAnswer {
        status,
        amount: Some(amount),
        currency: Some(currency.into()),
    }
}

#[test]
fn only_the_fields_that_differ_are_discrepancies() {
    let payment = created_intent("pi_1", 1000, "CLP", None);
    let same = answer(payment.status.clone(), payment.amount, &payment.currency);
    assert_eq!(discrepancies(&payment, Some(&same)), vec![]);
    let lower = payment.currency.to_lowercase();
    assert_eq!(
        discrepancies(
            &payment,
            Some(&answer(payment.status.clone(), payment.amount, &lower))
        ),
        vec![]
    );
    let other = answer(PaymentStatus::Succeeded, payment.amount - 1, "MXN");
    let fields: Vec<_> = discrepancies(&payment, Some(&other))
        .iter()
        .map(|d| d.field)
        .collect();
    assert_eq!(fields, ["status", "amount", "currency"]);
    let silent = FintocAnswer {
        status: payment.status.clone(),
        amount: None,
        currency: None,
    };
    assert_eq!(discrepancies(&payment, Some(&silent)), vec![]);
    assert_eq!(discrepancies(&payment, None)[0].field, "found");
}

#[test]
fn the_possible_event_ids_include_each_event_the_payment_can_cause() {
    let mut payment = created_intent("pi_7", 1000, "CLP", Some("order-7"));
    let ids = possible_event_ids(&payment);
    payment.status = PaymentStatus::Succeeded;
    assert!(ids.contains(&order_paid(&payment, "t").unwrap().id));
    payment.status = PaymentStatus::Expired;
    assert!(ids.contains(&payment_failed(&payment).unwrap().id));
    payment
        .refunds
        .entries
        .push(refund("k0000000000000001", 100, RefundStatus::Succeeded));
    assert_eq!(possible_event_ids(&payment).len(), ids.len() + 2);
}

#[test]
fn a_timeline_is_oldest_first_and_leaves_out_what_it_cannot_date() {
    let mut payment = created_intent("pi_2", 1000, "CLP", None);
    let mut ended = refund("k0000000000000001", 100, RefundStatus::Failed);
    ended.created_at = "2026-12-06T12:00:01Z".into();
    ended.updated_at = "2026-12-06T12:00:03Z".into();
    payment.created_at = "2026-12-06T12:00:02Z".into();
    payment.refunds.entries.push(ended);
    payment.schedule = None;
    let mut unreadable = refund("k0000000000000002", 5, RefundStatus::Pending);
    unreadable.created_at = "yesterday".into();
    payment.refunds.entries.push(unreadable);
    // Seconds past noon, enough for these times.
    let time = |at: &str| {
        at.strip_prefix("2026-12-06T12:00:0")?
            .trim_end_matches('Z')
            .parse::<i64>()
            .ok()
    };
    let timeline = in_order(payment_timeline(&payment, time, |ms| ms.to_string()));
    let whats: Vec<_> = timeline.iter().map(|e| e.what.as_str()).collect();
    assert_eq!(
        whats,
        ["refund_reserved", "payment_created", "refund_failed"]
    );
}
