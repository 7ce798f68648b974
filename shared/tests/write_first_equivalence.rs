//! Property test: the write a new event makes before any read
//! (`plan_write_first`) is the decision's own write. For random stored states and
//! events, its condition (`Expectation::accepts`) holds exactly when `plan_write`,
//! deciding on the state read first, makes that same transition with the same
//! patch (its version aside: the write-first one increments whatever is stored).

use proptest::prelude::*;
use shared::domain::payment::PaymentStatus;
use shared::domain::report::{PaymentReport, SenderAccount};
use shared::domain::transition::{
    plan_write, plan_write_first, Effect, EventRef, PaymentPatch, PaymentState, Source, WriteGuard,
};
use std::collections::{BTreeMap, BTreeSet};

fn status() -> impl Strategy<Value = PaymentStatus> {
    prop_oneof![
        Just(PaymentStatus::Created),
        Just(PaymentStatus::InProgress),
        Just(PaymentStatus::RequiresAction),
        Just(PaymentStatus::Pending),
        Just(PaymentStatus::Succeeded),
        Just(PaymentStatus::Failed),
        Just(PaymentStatus::Rejected),
        Just(PaymentStatus::Expired),
        Just(PaymentStatus::Other("on_hold".into())),
    ]
}

fn order() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("o-1".to_string())),
        Just(Some("o-2".to_string()))
    ]
}

fn mode() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("live".to_string())),
        Just(Some("test".to_string())),
        Just(Some("sandbox".to_string())),
    ]
}

fn state() -> impl Strategy<Value = PaymentState> {
    (
        status(),
        proptest::collection::btree_set(
            prop_oneof![Just("evt_a"), Just("evt_b"), Just("evt_c")],
            0..3,
        ),
        0u64..5,
        prop_oneof![
            Just(None),
            Just(Some((100u64, "CLP".to_string()))),
            Just(Some((90u64, "CLP".to_string()))),
            Just(Some((100u64, "MXN".to_string()))),
        ],
        order(),
        mode(),
    )
        .prop_map(
            |(status, applied, version, requested, order_id, mode)| PaymentState {
                status,
                applied_event_ids: applied
                    .into_iter()
                    .map(str::to_string)
                    .collect::<BTreeSet<_>>(),
                version,
                requested,
                order_id,
                mode,
                session_attempt: None,
            },
        )
}

fn report() -> impl Strategy<Value = PaymentReport> {
    (
        prop_oneof![Just(None), Just(Some(100u64)), Just(Some(90u64))],
        prop_oneof![
            Just(None),
            Just(Some("clp".to_string())),
            Just(Some("MXN".to_string()))
        ],
        order(),
        any::<bool>(),
        mode(),
    )
        .prop_map(
            |(amount, currency, order_id, with_account, mode)| PaymentReport {
                id: "pi_1".into(),
                mode,
                amount,
                currency,
                metadata: order_id
                    .map(|o| BTreeMap::from([("order_id".to_string(), o)]))
                    .unwrap_or_default(),
                error_reason: Some("insufficient_funds".into()),
                sender_account: with_account.then(|| SenderAccount {
                    number: Some("000012345678".into()),
                    ..SenderAccount::default()
                }),
                ..PaymentReport::default()
            },
        )
}

/// The patch without what only the guard decides (its condition and version).
fn written(mut patch: PaymentPatch) -> PaymentPatch {
    patch.guard = WriteGuard::Absent;
    patch.version = 0;
    patch
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn the_condition_holds_exactly_where_the_decision_makes_the_same_write(
        stored in state(),
        claimed in status(),
        event_id in prop_oneof![Just("evt_a"), Just("evt_b"), Just("evt_c")],
        report in report(),
    ) {
        let event = EventRef {
            id: event_id,
            event_type: "payment_intent.x",
            created_at: Some("2026-01-01T00:00:00Z"),
            source: Source::Webhook,
        };
        let decided = plan_write(Some(&stored), &event, &claimed, &report, "now");
        match plan_write_first(&event, &claimed, &report, "now") {
            None => {
                // No write first: no stored state moves to this status.
                let moves = matches!(decided.0, Effect::Transition { .. });
                prop_assert!(!moves, "no write first, yet the state moves");
            }
            Some(first) => {
                let WriteGuard::Expected(expectation) = &first.guard else {
                    return Err(TestCaseError::fail("a write-first patch is guarded by its expectation"));
                };
                let same_write = matches!(decided.0, Effect::Transition { .. })
                    && decided.1.clone().map(written) == Some(written(first.clone()));
                prop_assert_eq!(expectation.accepts(&stored), same_write,
                    "state {:?}, claimed {:?}, decided {:?}", stored, claimed, decided.0);
            }
        }
    }
}
