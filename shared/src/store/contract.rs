//! The store contract: every storage rule written once, run against the in-memory
//! store (`cargo test -p shared`) and against DynamoDB Local (the integration
//! tests), through [`crate::store_contract_tests!`]. Feature `contract-tests`.

use super::{
    CreateStore, EventStore, IdempotencyStore, KeyAndOrder, KeyAndRefund, OrderStore, PaymentStore,
    RefundChange, RefundOutcome, RefundStore, RefundWrite, ReserveRefund, ScheduleStore,
    StoreError, WriteResult,
};
use crate::domain::deployment::{ForeignEvent, ForeignReason};
use crate::domain::idempotency::{
    AcquireOutcome, AcquireRequest, CallerId, CompleteRequest, IdempotencyKey, LeaseId,
    ReservationId, StoredResponse,
};
use crate::domain::order::{OpenRequest, OrderState, ReserveOutcome, ReserveRequest};
use crate::domain::payment::{PaymentKind, PaymentStatus, ReviewReason, StoredPayment};
use crate::domain::reconcile::{Flag, ScheduleUpdate};
use crate::domain::refund::{RefundKey, RefundOrigin, RefundStatus, StoredRefund};
use crate::domain::report::PaymentReport;
use crate::domain::schedule::{initial_schedule, CheckSchedule, ScheduleChange};
use crate::domain::transition::{plan_write, Effect, EventRef, PaymentState};
use std::collections::BTreeMap;

/// Every port; what the contract is checked on.
pub trait Stores:
    IdempotencyStore
    + PaymentStore
    + EventStore
    + OrderStore
    + ScheduleStore
    + RefundStore
    + CreateStore
{
}
impl<
        T: IdempotencyStore
            + PaymentStore
            + EventStore
            + OrderStore
            + ScheduleStore
            + RefundStore
            + CreateStore,
    > Stores for T
{
}

/// Writes one `#[tokio::test]` per contract rule, each on a store made by `$make`
/// (an expression evaluating to a future of the store).
#[macro_export]
macro_rules! store_contract_tests {
    ($make:expr) => {
        $crate::store_contract_tests!(@rules $make;
            a_free_key_is_acquired,
            a_held_key_is_in_progress_or_a_mismatch,
            a_completed_key_replays_its_response_to_the_same_request_only,
            only_the_lease_holder_completes_or_releases,
            an_abandoned_lease_is_taken_over_only_by_the_same_request,
            a_record_is_free_from_the_first_millisecond_after_its_expiry,
            a_reservation_lives_as_long_as_its_record,
            two_callers_never_share_a_record,
            save_created_merges_and_never_moves_a_status,
            save_created_refuses_another_amount_or_currency,
            an_unknown_intent_is_created_by_exactly_one_event,
            a_stale_version_conflicts_and_returns_the_current_state,
            an_outcome_is_read_back_with_the_intent,
            unknown_intents_read_as_none,
            a_foreign_event_is_kept_once_and_is_never_an_intent,
            an_order_is_reserved_once_and_opened_by_its_holder,
            a_lapsed_reservation_is_taken_over,
            a_fresh_key_and_its_order_are_taken_in_one_write_or_not_at_all,
            a_created_payment_is_recorded_whole_or_not_at_all,
            an_orders_intent_closes_or_pays_it_and_a_paid_order_stays_paid,
            a_payment_at_another_amount_holds_its_order_for_review,
            an_open_intent_is_indexed_until_its_status_is_final,
            a_schedule_update_applies_only_on_the_version_read,
            a_session_is_its_own_record_and_its_order_knows_it,
            a_write_first_condition_is_what_the_expectation_accepts,
            refunds_hold_at_most_what_was_paid_and_release_once,
            a_fresh_key_and_its_refund_are_taken_in_one_write_or_not_at_all,
            a_refund_answer_and_its_key_are_written_whole_or_not_at_all,
            the_refund_sweep_cursor_only_moves_forward,
            a_reservation_keeps_its_payment_due_against_an_earlier_check,
            a_refund_outcome_is_recorded_when_its_order_has_no_item,
            a_refunds_key_generation_moves_once_from_the_one_read_while_creating,
            a_keys_fintoc_generation_moves_once_under_its_lease_and_is_resumed_with_it,
            a_refused_refund_change_returns_the_payment_as_stored
        );
    };
    (@rules $make:expr; $($rule:ident),+) => {
        $(
            #[tokio::test]
            async fn $rule() {
                $crate::store::contract::$rule($make.await).await;
            }
        )+
    };
}

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;

fn key(k: &str) -> IdempotencyKey {
    IdempotencyKey::parse(&CallerId::anonymous(), Some(k)).expect("valid key")
}

async fn acquire<S: Stores>(
    store: &S,
    k: &IdempotencyKey,
    hash: &str,
    now_ms: i64,
    lease_ms: i64,
    expires_ms: i64,
) -> AcquireOutcome {
    store
        .acquire(&AcquireRequest {
            key: k,
            request_hash: hash,
            now_ms,
            lease_expires_at_ms: lease_ms,
            expires_at_ms: expires_ms,
        })
        .await
        .expect("acquire")
}

fn lease(outcome: AcquireOutcome) -> LeaseId {
    held(outcome).0
}

fn held(outcome: AcquireOutcome) -> (LeaseId, ReservationId) {
    match outcome {
        AcquireOutcome::Acquired {
            lease_id,
            reservation_id,
            ..
        } => (lease_id, reservation_id),
        other => panic!("expected the lease, got {other:?}"),
    }
}

async fn complete<S: Stores>(store: &S, k: &IdempotencyKey, lease_id: &LeaseId) -> bool {
    store
        .complete(&CompleteRequest {
            key: k,
            lease_id,
            response: &response(),
            intent_id: Some("pi_1"),
        })
        .await
        .expect("complete")
}

fn response() -> StoredResponse {
    StoredResponse {
        status: 201,
        body: r#"{"id":"pi_1"}"#.into(),
    }
}

fn intent(id: &str, amount: u64, status: PaymentStatus) -> StoredPayment {
    StoredPayment {
        id: id.into(),
        kind: PaymentKind::Intent,
        session_payment: None,
        expires_at: None,
        review: None,
        refunds: Default::default(),
        status,
        amount,
        currency: "CLP".into(),
        order_id: Some("order-1".into()),
        metadata: BTreeMap::from([("cart".to_string(), "c-1".to_string())]),
        customer_email: Some("payer@example.cl".into()),
        mode: Some("test".into()),
        error_reason: None,
        created_at: "2026-01-01T00:00:00.000Z".into(),
        updated_at: "2026-01-01T00:00:00.000Z".into(),
        schedule: Some(initial_schedule(id, T0)),
    }
}

/// A payment intent `id` of 100 CLP for `order`, created and paid (its order paid
/// by it): what refunds are made of.
pub async fn paid_intent<S: Stores>(store: &S, id: &str, order: &str) -> StoredPayment {
    store.save_created(&for_order(id, order)).await.unwrap();
    send_event(
        store,
        id,
        &format!("evt_paid_{id}"),
        PaymentStatus::Succeeded,
    )
    .await;
    store
        .get_payment(PaymentKind::Intent, id)
        .await
        .unwrap()
        .expect("the paid intent")
}

/// An intent created for `order`.
fn for_order(id: &str, order: &str) -> StoredPayment {
    StoredPayment {
        order_id: Some(order.into()),
        ..intent(id, 100, PaymentStatus::Created)
    }
}

fn report(id: &str) -> PaymentReport {
    PaymentReport {
        id: id.into(),
        amount: Some(100),
        currency: Some("CLP".into()),
        error_reason: Some("insufficient_funds".into()),
        ..PaymentReport::default()
    }
}

/// Decides `event_id` claiming `claimed` on the stored state and applies the patch.
async fn send_event<S: Stores>(
    store: &S,
    id: &str,
    event_id: &str,
    claimed: PaymentStatus,
) -> (Effect, Option<WriteResult>) {
    apply_report(store, event_id, claimed, &report(id)).await
}

/// Decides `event_id` claiming `claimed` about `report`'s payment, on its stored
/// state, and applies the patch (as the webhook does, reading first).
async fn apply_report<S: Stores>(
    store: &S,
    event_id: &str,
    claimed: PaymentStatus,
    report: &PaymentReport,
) -> (Effect, Option<WriteResult>) {
    let state = store
        .payment_state(report.kind, &report.id)
        .await
        .expect("payment_state");
    let event = EventRef {
        id: event_id,
        event_type: "payment_intent.x",
        created_at: None,
        source: crate::domain::transition::Source::Webhook,
    };
    let (effect, patch) = plan_write(state.as_ref(), &event, &claimed, report, "now");
    let result = match patch {
        Some(p) => Some(store.apply(&p).await.expect("apply")),
        None => None,
    };
    (effect, result)
}

/// A key nobody holds is acquired.
pub async fn a_free_key_is_acquired<S: Stores>(store: S) {
    let k = key("free");
    lease(acquire(&store, &k, "h", T0, T0 + 30_000, T0 + 86_400_000).await);
}

/// While a lease holds: the same request is told to retry later, another is a mismatch.
pub async fn a_held_key_is_in_progress_or_a_mismatch<S: Stores>(store: S) {
    let k = key("held");
    lease(acquire(&store, &k, "h", T0, T0 + 30_000, T0 + 86_400_000).await);
    assert_eq!(
        acquire(&store, &k, "h", T0 + 27_500, T0 + 60_000, T0 + 86_400_000).await,
        AcquireOutcome::InProgress {
            retry_after_secs: 3
        }
    );
    assert_eq!(
        acquire(&store, &k, "other", T0 + 1, T0 + 60_000, T0 + 86_400_000).await,
        AcquireOutcome::Mismatch
    );
}

/// A completed record replays its response to the same request; another request
/// is a mismatch.
pub async fn a_completed_key_replays_its_response_to_the_same_request_only<S: Stores>(store: S) {
    let k = key("done");
    let lease_id = lease(acquire(&store, &k, "h", T0, T0 + 30_000, T0 + 86_400_000).await);
    assert!(complete(&store, &k, &lease_id).await);
    assert_eq!(
        acquire(&store, &k, "h", T0 + 60_000, T0 + 90_000, T0 + 86_400_000).await,
        AcquireOutcome::Replay(response())
    );
    assert_eq!(
        acquire(
            &store,
            &k,
            "other",
            T0 + 60_000,
            T0 + 90_000,
            T0 + 86_400_000
        )
        .await,
        AcquireOutcome::Mismatch
    );
    assert!(
        !complete(&store, &k, &lease_id).await,
        "a completed record is not completed twice"
    );
    store.release(&k, &lease_id).await.expect("release");
    assert_eq!(
        acquire(&store, &k, "h", T0 + 60_000, T0 + 90_000, T0 + 86_400_000).await,
        AcquireOutcome::Replay(response()),
        "a completed record is never released"
    );
    assert!(
        !complete(&store, &key("never-taken"), &lease_id).await,
        "a missing record is not completed"
    );
}

/// Complete and release need the lease; a released key is free again.
pub async fn only_the_lease_holder_completes_or_releases<S: Stores>(store: S) {
    let k = key("lease");
    let lease_id = lease(acquire(&store, &k, "h", T0, T0 + 30_000, T0 + 86_400_000).await);
    let stranger = LeaseId::from_stored("not-the-lease");
    assert!(!complete(&store, &k, &stranger).await);
    store.release(&k, &stranger).await.expect("release");
    assert!(
        matches!(
            acquire(&store, &k, "h", T0 + 1, T0 + 30_000, T0 + 86_400_000).await,
            AcquireOutcome::InProgress { .. }
        ),
        "a stranger's release leaves the record"
    );
    store.release(&k, &lease_id).await.expect("release");
    assert_eq!(
        acquire(&store, &k, "other", T0 + 2, T0 + 30_000, T0 + 86_400_000).await,
        AcquireOutcome::Mismatch,
        "a released key is another request's 422"
    );
    lease(acquire(&store, &k, "h", T0 + 3, T0 + 30_000, T0 + 86_400_000).await);
}

/// A record's reservation is fresh when the record is, and kept while it lives: a
/// take-over and a retry after a release hold the order under the same one; a key
/// used again after its record expired gets another.
pub async fn a_reservation_lives_as_long_as_its_record<S: Stores>(store: S) {
    let k = key("reservation");
    let day = 86_400_000;
    let (first, reservation) = held(acquire(&store, &k, "h", T0, T0 + 30_000, T0 + day).await);
    // Abandoned, then taken over by the same request: the same reservation.
    let (second, again) = held(acquire(&store, &k, "h", T0 + 31_000, T0 + 60_000, T0 + day).await);
    assert_eq!(again, reservation, "a take-over keeps the reservation");
    assert!(!complete(&store, &k, &first).await, "the old lease is gone");
    // Released (a failure a retry may fix), then taken by the same request: the
    // same.
    store.release(&k, &second).await.expect("release");
    let (third, after_release) =
        held(acquire(&store, &k, "h", T0 + 61_000, T0 + 90_000, T0 + day).await);
    assert_eq!(
        after_release, reservation,
        "a release keeps the reservation"
    );
    assert!(complete(&store, &k, &third).await);
    // Expired: a fresh record, a fresh reservation, whatever the request.
    let (_, fresh) = held(
        acquire(
            &store,
            &k,
            "other",
            T0 + day + 1_000,
            T0 + day + 30_000,
            T0 + 2 * day,
        )
        .await,
    );
    assert_ne!(
        fresh, reservation,
        "an expired record's reservation is never reused"
    );
    // Two keys never share one.
    let (_, other_key) =
        held(acquire(&store, &key("another"), "h", T0, T0 + 30_000, T0 + day).await);
    assert_ne!(other_key, reservation);
}

/// After its lease expires, a record is taken over by the same request only, and
/// the old holder can no longer complete it.
pub async fn an_abandoned_lease_is_taken_over_only_by_the_same_request<S: Stores>(store: S) {
    let k = key("abandoned");
    let old = lease(acquire(&store, &k, "h", T0, T0 + 30_000, T0 + 86_400_000).await);
    assert_eq!(
        acquire(
            &store,
            &k,
            "other",
            T0 + 30_001,
            T0 + 60_000,
            T0 + 86_400_000
        )
        .await,
        AcquireOutcome::Mismatch
    );
    assert!(
        matches!(
            acquire(&store, &k, "h", T0 + 30_000, T0 + 60_000, T0 + 86_400_000).await,
            AcquireOutcome::InProgress { .. }
        ),
        "a lease holds until its last millisecond"
    );
    let new = lease(acquire(&store, &k, "h", T0 + 30_001, T0 + 60_000, T0 + 86_400_000).await);
    assert_ne!(old, new);
    assert!(!complete(&store, &k, &old).await, "the old lease is lost");
    assert!(complete(&store, &k, &new).await);
}

/// A record counts until its expiry (kept in whole seconds) and is free from the
/// next millisecond, for any request, whatever the TTL sweeper has done.
pub async fn a_record_is_free_from_the_first_millisecond_after_its_expiry<S: Stores>(store: S) {
    let k = key("expiring");
    // Asked to expire at T0 + 10.5 s: kept as T0 + 10 s.
    let lease_id = lease(acquire(&store, &k, "h", T0, T0 + 5_000, T0 + 10_500).await);
    assert!(complete(&store, &k, &lease_id).await);
    assert_eq!(
        acquire(&store, &k, "h", T0 + 10_000, T0 + 20_000, T0 + 99_000).await,
        AcquireOutcome::Replay(response()),
        "at its expiry the record still counts"
    );
    lease(acquire(&store, &k, "other", T0 + 10_001, T0 + 20_000, T0 + 99_000).await);
}

/// The same key of two callers is two records.
pub async fn two_callers_never_share_a_record<S: Stores>(store: S) {
    let alice = IdempotencyKey::parse(&CallerId::iam("arn:alice"), Some("k")).unwrap();
    let bob = IdempotencyKey::parse(&CallerId::iam("arn:bob"), Some("k")).unwrap();
    let lease_id = lease(acquire(&store, &alice, "h", T0, T0 + 30_000, T0 + 86_400_000).await);
    assert!(complete(&store, &alice, &lease_id).await);
    lease(acquire(&store, &bob, "other", T0 + 1, T0 + 30_000, T0 + 86_400_000).await);
}

/// Creating merges with what a webhook wrote first: status, version and times stay.
pub async fn save_created_merges_and_never_moves_a_status<S: Stores>(store: S) {
    let (effect, _) = send_event(&store, "pi_merge", "evt_1", PaymentStatus::Succeeded).await;
    assert_eq!(
        effect,
        Effect::Create {
            status: PaymentStatus::Succeeded
        }
    );
    store
        .save_created(&intent("pi_merge", 100, PaymentStatus::Created))
        .await
        .expect("save_created");
    let read = store
        .get_payment(PaymentKind::Intent, "pi_merge")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.status, PaymentStatus::Succeeded);
    assert_eq!(read.order_id.as_deref(), Some("order-1"));
    assert_eq!(read.amount, 100);
    let state = store
        .payment_state(PaymentKind::Intent, "pi_merge")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.version, 1, "the version is the webhook's");
    store
        .save_created(&intent("pi_merge", 100, PaymentStatus::Created))
        .await
        .expect("saving again is harmless");
}

/// One id never holds two amounts or currencies.
pub async fn save_created_refuses_another_amount_or_currency<S: Stores>(store: S) {
    store
        .save_created(&intent("pi_amount", 100, PaymentStatus::Created))
        .await
        .unwrap();
    let refused = store
        .save_created(&intent("pi_amount", 101, PaymentStatus::Created))
        .await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    let mut other_currency = intent("pi_amount", 100, PaymentStatus::Created);
    other_currency.currency = "MXN".into();
    let refused = store.save_created(&other_currency).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    assert_eq!(
        store
            .get_payment(PaymentKind::Intent, "pi_amount")
            .await
            .unwrap()
            .unwrap()
            .amount,
        100
    );
}

/// Two events racing to create an unknown intent: one creates it, the other's
/// write fails and returns the state, on which it is decided again.
pub async fn an_unknown_intent_is_created_by_exactly_one_event<S: Stores>(store: S) {
    let event = |id| EventRef {
        id,
        event_type: "payment_intent.succeeded",
        created_at: None,
        source: crate::domain::transition::Source::Webhook,
    };
    let (_, first) = plan_write(
        None,
        &event("evt_a"),
        &PaymentStatus::Succeeded,
        &report("pi_race"),
        "now",
    );
    let (_, second) = plan_write(
        None,
        &event("evt_b"),
        &PaymentStatus::Succeeded,
        &report("pi_race"),
        "now",
    );
    assert_eq!(
        store.apply(&first.unwrap()).await.unwrap(),
        WriteResult::Written
    );
    let WriteResult::Conflict(Some(state)) = store.apply(&second.unwrap()).await.unwrap() else {
        panic!("the second create must conflict and return the stored state");
    };
    assert_eq!(state.status, PaymentStatus::Succeeded);
    assert_eq!(state.version, 1);
    let (effect, patch) = plan_write(
        Some(&state),
        &event("evt_a"),
        &PaymentStatus::Succeeded,
        &report("pi_race"),
        "now",
    );
    assert_eq!(
        (effect, patch),
        (Effect::Duplicate, None),
        "re-decided on the returned item"
    );
}

/// A write decided on an old version fails and returns the current state.
pub async fn a_stale_version_conflicts_and_returns_the_current_state<S: Stores>(store: S) {
    store
        .save_created(&intent("pi_stale", 100, PaymentStatus::Created))
        .await
        .unwrap();
    let stale = store
        .payment_state(PaymentKind::Intent, "pi_stale")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stale.version, 0);
    let (_, result) = send_event(&store, "pi_stale", "evt_pending", PaymentStatus::Pending).await;
    assert_eq!(result, Some(WriteResult::Written));
    let event = EventRef {
        id: "evt_final",
        event_type: "payment_intent.failed",
        created_at: None,
        source: crate::domain::transition::Source::Webhook,
    };
    let (_, patch) = plan_write(
        Some(&stale),
        &event,
        &PaymentStatus::Failed,
        &report("pi_stale"),
        "now",
    );
    let expected = PaymentState {
        status: PaymentStatus::Pending,
        applied_event_ids: ["evt_pending".to_string()].into(),
        version: 1,
        requested: Some((100, "CLP".into())),
        order_id: Some("order-1".into()),
        mode: Some("test".into()),
        session_attempt: None,
    };
    assert_eq!(
        store.apply(&patch.unwrap()).await.unwrap(),
        WriteResult::Conflict(Some(expected))
    );
    let (effect, result) = send_event(&store, "pi_stale", "evt_final", PaymentStatus::Failed).await;
    assert!(matches!(effect, Effect::Transition { .. }));
    assert_eq!(result, Some(WriteResult::Written));
}

/// A final outcome's status and reason are what the API reads back.
pub async fn an_outcome_is_read_back_with_the_intent<S: Stores>(store: S) {
    store
        .save_created(&intent("pi_out", 100, PaymentStatus::Created))
        .await
        .unwrap();
    send_event(&store, "pi_out", "evt_f", PaymentStatus::Failed).await;
    let (effect, _) = send_event(&store, "pi_out", "evt_s", PaymentStatus::Succeeded).await;
    assert!(matches!(effect, Effect::ConflictingFinal { .. }));
    let read = store
        .get_payment(PaymentKind::Intent, "pi_out")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        read.status,
        PaymentStatus::Failed,
        "a final status is never left"
    );
    assert_eq!(read.error_reason.as_deref(), Some("insufficient_funds"));
    let state = store
        .payment_state(PaymentKind::Intent, "pi_out")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.version, 2);
    assert_eq!(state.applied_event_ids.len(), 2);
}

/// Nothing stored reads as nothing.
pub async fn unknown_intents_read_as_none<S: Stores>(store: S) {
    assert!(store
        .get_payment(PaymentKind::Intent, "pi_none")
        .await
        .unwrap()
        .is_none());
    assert!(store
        .payment_state(PaymentKind::Intent, "pi_none")
        .await
        .unwrap()
        .is_none());
}

/// An event kept apart is kept once, and no intent appears for it.
pub async fn a_foreign_event_is_kept_once_and_is_never_an_intent<S: Stores>(store: S) {
    let event = ForeignEvent {
        event_id: "evt_foreign".into(),
        event_type: "payment_intent.succeeded".into(),
        intent_id: "pi_foreign".into(),
        reason: ForeignReason::OtherDeployment,
        mode: Some("live".into()),
        tag: Some("shop-b".into()),
        received_at_ms: T0,
    };
    store.keep_apart(&event).await.expect("keep_apart");
    store
        .keep_apart(&event)
        .await
        .expect("a redelivery is kept apart again without error");
    assert!(store
        .get_payment(PaymentKind::Intent, "pi_foreign")
        .await
        .unwrap()
        .is_none());
    assert!(store
        .payment_state(PaymentKind::Intent, "pi_foreign")
        .await
        .unwrap()
        .is_none());
}

async fn reserve<S: Stores>(store: &S, order: &str, holder: &str, now_ms: i64) -> ReserveOutcome {
    store
        .reserve_order(&ReserveRequest {
            order_id: order,
            holder,
            now_ms,
            reserved_until_ms: now_ms + 30_000,
        })
        .await
        .expect("reserve_order")
}

async fn open<S: Stores>(store: &S, order: &str, holder: &str, intent: &str) -> bool {
    store
        .open_order(&OpenRequest {
            payment_ref: None,
            order_id: order,
            holder,
            intent_id: intent,
            kind: PaymentKind::Intent,
        })
        .await
        .expect("open_order")
}

/// An event about an intent of `order` (its metadata names the order).
async fn order_event<S: Stores>(
    store: &S,
    intent: &str,
    order: &str,
    event_id: &str,
    claimed: PaymentStatus,
) -> Option<WriteResult> {
    let mut report = report(intent);
    report.metadata.insert("order_id".into(), order.into());
    apply_report(store, event_id, claimed, &report).await.1
}

/// One create holds an order; only it opens it; a retry of it may reserve again.
pub async fn an_order_is_reserved_once_and_opened_by_its_holder<S: Stores>(store: S) {
    assert_eq!(
        reserve(&store, "o-1", "h1", T0).await,
        ReserveOutcome::Reserved
    );
    assert_eq!(
        reserve(&store, "o-1", "h2", T0 + 27_500).await,
        ReserveOutcome::Busy {
            intent_id: None,
            retry_after_secs: Some(3)
        }
    );
    assert!(
        !open(&store, "o-1", "h2", "pi_x").await,
        "not its reservation"
    );
    assert!(open(&store, "o-1", "h1", "pi_1").await);
    assert_eq!(
        reserve(&store, "o-1", "h2", T0 + 90_000).await,
        ReserveOutcome::Busy {
            intent_id: Some("pi_1".into()),
            retry_after_secs: None
        },
        "an open intent holds the order, whatever the time"
    );
    assert_eq!(
        reserve(&store, "o-1", "h1", T0 + 1).await,
        ReserveOutcome::Reserved,
        "a retry"
    );
    assert!(open(&store, "o-1", "h1", "pi_1").await);
}

async fn acquire_reserving<S: Stores>(
    store: &S,
    k: &IdempotencyKey,
    hash: &str,
    order: &str,
    now_ms: i64,
) -> KeyAndOrder {
    store
        .acquire_reserving(
            &AcquireRequest {
                key: k,
                request_hash: hash,
                now_ms,
                lease_expires_at_ms: now_ms + 30_000,
                expires_at_ms: now_ms + 86_400_000,
            },
            order,
        )
        .await
        .expect("acquire_reserving")
}

/// A create's first write: a fresh key and its order, both or neither; a key
/// that is not fresh is answered as `acquire` answers it, the order untouched.
pub async fn a_fresh_key_and_its_order_are_taken_in_one_write_or_not_at_all<S: Stores>(store: S) {
    let k1 = key("both-1");
    let KeyAndOrder::Taken {
        lease_id,
        reservation_id,
    } = acquire_reserving(&store, &k1, "h", "o-both", T0).await
    else {
        panic!("a fresh key and a free order are taken");
    };
    assert!(
        open(&store, "o-both", reservation_id.as_str(), "pi_1").await,
        "the order is reserved for the key's reservation"
    );
    // The same key again: in progress, and the order is not touched.
    assert_eq!(
        acquire_reserving(&store, &k1, "h", "o-both", T0 + 1).await,
        KeyAndOrder::Key(AcquireOutcome::InProgress {
            retry_after_secs: 30
        })
    );
    // Another key for the order its payment holds: refused, and that key is not
    // taken (a plain acquire of it is fresh).
    let k2 = key("both-2");
    assert_eq!(
        acquire_reserving(&store, &k2, "h2", "o-both", T0 + 2).await,
        KeyAndOrder::Refused(ReserveOutcome::Busy {
            intent_id: Some("pi_1".into()),
            retry_after_secs: None
        })
    );
    let fresh = acquire(&store, &k2, "h2", T0 + 3, T0 + 30_000, T0 + 86_400_000).await;
    assert!(
        matches!(fresh, AcquireOutcome::Acquired { .. }),
        "{fresh:?}"
    );
    // A completed key replays, whatever its order says now.
    assert!(complete(&store, &k1, &lease_id).await);
    assert_eq!(
        acquire_reserving(&store, &k1, "h", "o-both", T0 + 4).await,
        KeyAndOrder::Key(AcquireOutcome::Replay(response()))
    );
    // A released key is resumed with its own reservation; its order is then the
    // caller's to reserve.
    let k3 = key("both-3");
    let KeyAndOrder::Taken {
        lease_id,
        reservation_id,
    } = acquire_reserving(&store, &k3, "h3", "o-three", T0).await
    else {
        panic!("taken");
    };
    store.release(&k3, &lease_id).await.expect("release");
    match acquire_reserving(&store, &k3, "h3", "o-three", T0 + 5).await {
        KeyAndOrder::Key(AcquireOutcome::Acquired {
            reservation_id: kept,
            ..
        }) => assert_eq!(kept, reservation_id),
        other => panic!("a released key is resumed, got {other:?}"),
    }
}

/// The opening of `order-1` with `pi_rec` by `holder`.
fn open_request(holder: &str) -> OpenRequest<'_> {
    OpenRequest {
        order_id: "order-1",
        holder,
        intent_id: "pi_rec",
        kind: PaymentKind::Intent,
        payment_ref: None,
    }
}

/// A create's last write: the payment, its order opened and the key completed,
/// all three or none.
pub async fn a_created_payment_is_recorded_whole_or_not_at_all<S: Stores>(store: S) {
    let k = key("record-1");
    let KeyAndOrder::Taken {
        lease_id,
        reservation_id,
    } = acquire_reserving(&store, &k, "h", "order-1", T0).await
    else {
        panic!("taken");
    };
    let payment = intent("pi_rec", 100, PaymentStatus::Pending);
    let answer = response();
    let holder = reservation_id.as_str();
    // Another lease: nothing written.
    let stranger = LeaseId::random();
    let refused = store
        .record_created(
            &payment,
            &open_request(holder),
            &CompleteRequest {
                key: &k,
                lease_id: &stranger,
                response: &answer,
                intent_id: Some("pi_rec"),
            },
        )
        .await
        .expect("record_created");
    assert!(!refused);
    assert_eq!(
        store
            .get_payment(PaymentKind::Intent, "pi_rec")
            .await
            .unwrap(),
        None,
        "the payment is not stored alone"
    );
    // Another reservation: nothing written either.
    let completion = CompleteRequest {
        key: &k,
        lease_id: &lease_id,
        response: &answer,
        intent_id: Some("pi_rec"),
    };
    assert!(!store
        .record_created(&payment, &open_request("someone-else"), &completion)
        .await
        .expect("record_created"));
    assert_eq!(
        store
            .get_payment(PaymentKind::Intent, "pi_rec")
            .await
            .unwrap(),
        None
    );
    // Its own: all three.
    assert!(store
        .record_created(&payment, &open_request(holder), &completion)
        .await
        .expect("record_created"));
    let stored = store
        .get_payment(PaymentKind::Intent, "pi_rec")
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(
        (stored.amount, stored.status),
        (100, PaymentStatus::Pending)
    );
    assert_eq!(
        acquire(&store, &k, "h", T0 + 1, T0 + 30_000, T0 + 86_400_000).await,
        AcquireOutcome::Replay(answer.clone()),
        "the key is completed"
    );
    assert_eq!(
        reserve(&store, "order-1", "other", T0 + 90_000).await,
        ReserveOutcome::Busy {
            intent_id: Some("pi_rec".into()),
            retry_after_secs: None
        },
        "the order is open with the payment"
    );
    // Stored under another amount: refused whole.
    let k2 = key("record-2");
    let KeyAndOrder::Taken {
        lease_id,
        reservation_id,
    } = acquire_reserving(&store, &k2, "h", "order-2", T0).await
    else {
        panic!("taken");
    };
    let other = intent("pi_rec", 999, PaymentStatus::Pending);
    assert!(!store
        .record_created(
            &other,
            &OpenRequest {
                order_id: "order-2",
                holder: reservation_id.as_str(),
                intent_id: "pi_rec",
                kind: PaymentKind::Intent,
                payment_ref: None,
            },
            &CompleteRequest {
                key: &k2,
                lease_id: &lease_id,
                response: &answer,
                intent_id: Some("pi_rec"),
            },
        )
        .await
        .expect("record_created"));
    assert!(
        open(&store, "order-2", reservation_id.as_str(), "pi_x").await,
        "order-2 is still only reserved"
    );
}

/// A reservation whose create died lapses with its lease.
pub async fn a_lapsed_reservation_is_taken_over<S: Stores>(store: S) {
    assert_eq!(
        reserve(&store, "o-2", "h1", T0).await,
        ReserveOutcome::Reserved
    );
    assert!(matches!(
        reserve(&store, "o-2", "h2", T0 + 30_000).await,
        ReserveOutcome::Busy { .. }
    ));
    assert_eq!(
        reserve(&store, "o-2", "h2", T0 + 30_001).await,
        ReserveOutcome::Reserved
    );
    assert!(
        !open(&store, "o-2", "h1", "pi_old").await,
        "the lapsed create lost it"
    );
    assert!(open(&store, "o-2", "h2", "pi_new").await);
}

/// An unpaid outcome closes the order (a new create may reserve it); a payment
/// pays it once, forever: a second payment is refused and kept as an anomaly.
pub async fn an_orders_intent_closes_or_pays_it_and_a_paid_order_stays_paid<S: Stores>(store: S) {
    assert_eq!(
        reserve(&store, "o-3", "h1", T0).await,
        ReserveOutcome::Reserved
    );
    store.save_created(&for_order("pi_1", "o-3")).await.unwrap();
    assert!(open(&store, "o-3", "h1", "pi_1").await);
    assert_eq!(
        order_event(&store, "pi_1", "o-3", "evt_1", PaymentStatus::Failed).await,
        Some(WriteResult::Written)
    );
    assert_eq!(
        reserve(&store, "o-3", "h2", T0 + 1).await,
        ReserveOutcome::Reserved,
        "closed"
    );
    store.save_created(&for_order("pi_2", "o-3")).await.unwrap();
    assert!(open(&store, "o-3", "h2", "pi_2").await);
    assert_eq!(
        order_event(&store, "pi_2", "o-3", "evt_2", PaymentStatus::Succeeded).await,
        Some(WriteResult::Written)
    );
    let paid = ReserveOutcome::AlreadyPaid {
        intent_id: Some("pi_2".into()),
    };
    assert_eq!(reserve(&store, "o-3", "h3", T0 + 2).await, paid);
    assert_eq!(
        reserve(&store, "o-3", "h2", T0 + 2).await,
        paid,
        "not even its holder"
    );
    // Another intent of the order succeeding (it should never happen): recorded on
    // the intent, refused by the order.
    assert_eq!(
        order_event(&store, "pi_3", "o-3", "evt_3", PaymentStatus::Succeeded).await,
        Some(WriteResult::WrittenOrderRefused)
    );
    let second = store
        .get_payment(PaymentKind::Intent, "pi_3")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.status, PaymentStatus::Succeeded);
    assert_eq!(
        second.review.as_ref().map(|r| r.reason),
        Some(ReviewReason::SecondPayment),
        "succeeded, but it paid nothing: never shown as paid"
    );
    assert!(!second.paid());
    let first_paid = store
        .get_payment(PaymentKind::Intent, "pi_2")
        .await
        .unwrap()
        .unwrap();
    assert!(first_paid.paid() && first_paid.review.is_none());
    assert_eq!(reserve(&store, "o-3", "h4", T0 + 3).await, paid);
    // A late unpaid outcome of the first intent changes nothing.
    assert_eq!(
        order_event(&store, "pi_1", "o-3", "evt_1b", PaymentStatus::Expired).await,
        Some(WriteResult::Written),
        "an anomaly on pi_1 itself, no order change"
    );
    assert_eq!(reserve(&store, "o-3", "h5", T0 + 4).await, paid);
}

/// A payment reported at another amount holds its order for review: neither paid
/// nor open to a new payment, and no other outcome moves it.
pub async fn a_payment_at_another_amount_holds_its_order_for_review<S: Stores>(store: S) {
    assert_eq!(
        reserve(&store, "o-rev", "h1", T0).await,
        ReserveOutcome::Reserved
    );
    store
        .save_created(&for_order("pi_rev", "o-rev"))
        .await
        .unwrap();
    assert!(open(&store, "o-rev", "h1", "pi_rev").await);
    let mut one_peso = report("pi_rev");
    one_peso.amount = Some(1);
    one_peso.metadata.insert("order_id".into(), "o-rev".into());
    assert_eq!(
        apply_report(&store, "evt_rev", PaymentStatus::Succeeded, &one_peso)
            .await
            .1,
        Some(WriteResult::Written)
    );
    let stored = store
        .get_payment(PaymentKind::Intent, "pi_rev")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, PaymentStatus::Succeeded);
    assert!(!stored.paid());
    let review = stored.review.expect("held for review");
    assert_eq!(review.reason, ReviewReason::AmountMismatch);
    assert_eq!(review.detail, "requested 100 CLP, Fintoc reported 1 CLP");
    let held = ReserveOutcome::InReview {
        intent_id: Some("pi_rev".into()),
    };
    assert_eq!(reserve(&store, "o-rev", "h2", T0 + 1).await, held);
    assert_eq!(
        reserve(&store, "o-rev", "h1", T0 + 1).await,
        held,
        "not even its own create's retry"
    );
    let order = store.order("o-rev").await.unwrap().unwrap();
    assert_eq!(order.state, OrderState::Review);
    // Another payment for the order is kept as an anomaly; the review stays.
    assert_eq!(
        order_event(
            &store,
            "pi_other",
            "o-rev",
            "evt_o",
            PaymentStatus::Succeeded
        )
        .await,
        Some(WriteResult::WrittenOrderRefused)
    );
    assert_eq!(reserve(&store, "o-rev", "h3", T0 + 2).await, held);
}

/// An intent is in the index of due checks from its creation until a final status,
/// found by its shard once due, earliest first, and gone once final.
pub async fn an_open_intent_is_indexed_until_its_status_is_final<S: Stores>(store: S) {
    store
        .save_created(&for_order("pi_idx", "o-idx"))
        .await
        .unwrap();
    let schedule = initial_schedule("pi_idx", T0);
    let due = |at: i64| {
        let store = &store;
        async move {
            store
                .due_intents(schedule.shard, at, 10)
                .await
                .expect("due_intents")
                .into_iter()
                .filter(|d| d.intent_id == "pi_idx")
                .collect::<Vec<_>>()
        }
    };
    assert!(due(schedule.due_at_ms - 1).await.is_empty(), "not due yet");
    let found = due(schedule.due_at_ms).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].schedule, schedule);
    assert_eq!(found[0].state.status, PaymentStatus::Created);
    assert_eq!(found[0].state.order_id.as_deref(), Some("o-idx"));
    assert_eq!(
        store
            .get_payment(PaymentKind::Intent, "pi_idx")
            .await
            .unwrap()
            .unwrap()
            .schedule,
        Some(schedule)
    );
    assert_eq!(
        send_event(&store, "pi_idx", "evt_pending", PaymentStatus::Pending)
            .await
            .1,
        Some(WriteResult::Written)
    );
    assert_eq!(
        due(schedule.due_at_ms).await.len(),
        1,
        "pending is not final"
    );
    assert_eq!(
        send_event(&store, "pi_idx", "evt_done", PaymentStatus::Succeeded)
            .await
            .1,
        Some(WriteResult::Written)
    );
    assert!(due(i64::MAX / 2).await.is_empty(), "final: off the index");
    assert_eq!(
        store
            .get_payment(PaymentKind::Intent, "pi_idx")
            .await
            .unwrap()
            .unwrap()
            .schedule,
        None
    );
}

/// A schedule change (no decision) is written only if the version read is still
/// current, and does not move the version.
pub async fn a_schedule_update_applies_only_on_the_version_read<S: Stores>(store: S) {
    store
        .save_created(&for_order("pi_sch", "o-sch"))
        .await
        .unwrap();
    let schedule = initial_schedule("pi_sch", T0);
    let later = CheckSchedule {
        due_at_ms: schedule.due_at_ms + 600_000,
        checks: 1,
        ..schedule
    };
    let update = |version: u64, change: ScheduleChange, flag: Option<Flag>| ScheduleUpdate {
        intent_id: "pi_sch".into(),
        kind: PaymentKind::Intent,
        expected_version: version,
        change,
        flag,
        at: "now".into(),
    };
    assert!(
        !store
            .update_schedule(&update(7, ScheduleChange::Set(later), None))
            .await
            .unwrap(),
        "a stale version writes nothing"
    );
    assert!(store
        .update_schedule(&update(0, ScheduleChange::Set(later), None))
        .await
        .unwrap());
    let stored = store
        .get_payment(PaymentKind::Intent, "pi_sch")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.schedule, Some(later));
    let state = store
        .payment_state(PaymentKind::Intent, "pi_sch")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.version, 0, "a schedule change is not a decision");
    assert!(store
        .update_schedule(&update(0, ScheduleChange::Clear, Some(Flag::Stuck)))
        .await
        .unwrap());
    assert_eq!(
        store
            .get_payment(PaymentKind::Intent, "pi_sch")
            .await
            .unwrap()
            .unwrap()
            .schedule,
        None
    );
    assert!(store
        .due_intents(schedule.shard, i64::MAX / 2, 10)
        .await
        .unwrap()
        .iter()
        .all(|d| d.intent_id != "pi_sch"));
    assert!(
        !store
            .update_schedule(&ScheduleUpdate {
                intent_id: "pi_absent".into(),
                ..update(0, ScheduleChange::Clear, None)
            })
            .await
            .unwrap(),
        "an absent intent is never created by a schedule change"
    );
}

/// A session and an intent with the same id are two records; an order opened by a
/// session, or paid by one, says so (the webhook finds a session's payment through
/// it); a session's payment attempt is read back with it.
pub async fn a_session_is_its_own_record_and_its_order_knows_it<S: Stores>(store: S) {
    let session = StoredPayment {
        kind: PaymentKind::Session,
        order_id: Some("o-s".into()),
        expires_at: Some("2026-01-02T00:00:00Z".into()),
        ..intent("cs_1", 100, PaymentStatus::Created)
    };
    store.save_created(&session).await.expect("save_created");
    assert!(store
        .get_payment(PaymentKind::Intent, "cs_1")
        .await
        .unwrap()
        .is_none());
    let read = store
        .get_payment(PaymentKind::Session, "cs_1")
        .await
        .unwrap()
        .expect("the session");
    assert_eq!(
        (read.kind, read.expires_at.as_deref()),
        (PaymentKind::Session, Some("2026-01-02T00:00:00Z"))
    );
    assert_eq!(
        reserve(&store, "o-s", "h", T0).await,
        ReserveOutcome::Reserved
    );
    assert!(store
        .open_order(&OpenRequest {
            payment_ref: Some("sref_1"),
            order_id: "o-s",
            holder: "h",
            intent_id: "cs_1",
            kind: PaymentKind::Session,
        })
        .await
        .unwrap());
    let order = store.order("o-s").await.unwrap().expect("the order");
    assert_eq!(
        (order.payment_kind, order.intent_id.as_deref()),
        (PaymentKind::Session, Some("cs_1"))
    );
    assert_eq!(
        order.session_refs.get("sref_1").map(String::as_str),
        Some("cs_1"),
        "the order maps the session's reference to it"
    );

    let report = crate::domain::session::payment_event_report(
        "cs_1",
        &PaymentReport {
            id: "pi_9".into(),
            status: Some(PaymentStatus::Succeeded),
            amount: Some(100),
            currency: Some("CLP".into()),
            ..PaymentReport::default()
        },
    );
    assert_eq!(
        apply_report(&store, "evt_s", PaymentStatus::Succeeded, &report)
            .await
            .1,
        Some(WriteResult::Written)
    );
    let read = store
        .get_payment(PaymentKind::Session, "cs_1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.status, PaymentStatus::Succeeded);
    assert_eq!(
        read.session_payment.map(|p| p.intent_id),
        Some("pi_9".to_string())
    );
    let order = store.order("o-s").await.unwrap().unwrap();
    assert_eq!(
        (order.state, order.payment_kind),
        (crate::domain::order::OrderState::Paid, PaymentKind::Session)
    );
    // Its attempt finds it (a refund made at Fintoc names the attempt); an intent
    // that is no session's payment finds none.
    assert_eq!(
        store.session_of_attempt("pi_9").await.unwrap().as_deref(),
        Some("cs_1")
    );
    assert_eq!(store.session_of_attempt("pi_none").await.unwrap(), None);

    // An order a session's outcome creates (its create never reached this store).
    let unknown = crate::domain::session::SessionReport::from_json(&serde_json::json!({
        "id": "cs_2", "status": "finished", "amount": 100, "currency": "CLP",
        "metadata": {"order_id": "o-s2"},
        "payment_resource": {"payment_intent": {"id": "pi_8", "status": "succeeded"}}
    }))
    .unwrap()
    .to_record_report();
    assert_eq!(
        apply_report(&store, "evt_s2", PaymentStatus::Succeeded, &unknown)
            .await
            .1,
        Some(WriteResult::Written)
    );
    let order = store.order("o-s2").await.unwrap().unwrap();
    assert_eq!(
        (order.payment_kind, order.intent_id.as_deref()),
        (PaymentKind::Session, Some("cs_2"))
    );
}

/// The condition a write-first patch is rendered with holds on exactly the stored
/// items `Expectation::accepts` accepts (the property test holds `accepts` to the
/// decision itself): each kind of stored state, one new event; a refusal returns the
/// item as stored; a written event is a duplicate the second time.
pub async fn a_write_first_condition_is_what_the_expectation_accepts<S: Stores>(store: S) {
    use crate::domain::transition::{plan_write_first, Source, WriteGuard};
    use PaymentStatus::*;
    let on_hold = || Other("on_hold".into());
    /// Stored status, reported amount, whether the report names the stored order
    /// (`None`: names none), claimed status, accepted.
    type Case = (
        PaymentStatus,
        Option<u64>,
        Option<bool>,
        PaymentStatus,
        bool,
    );
    let cases: Vec<Case> = vec![
        (Created, Some(100), Some(true), Succeeded, true),
        (Pending, Some(100), Some(true), Succeeded, true),
        (on_hold(), Some(100), Some(true), Pending, true),
        (Created, Some(100), Some(true), RequiresAction, true),
        (InProgress, None, Some(true), Succeeded, true),
        (Succeeded, Some(100), Some(true), Failed, false),
        (Pending, Some(100), Some(true), Pending, false),
        (Pending, Some(100), Some(true), InProgress, false),
        (Created, Some(90), Some(true), Succeeded, false),
        (Created, Some(100), Some(false), Failed, false),
        (Created, Some(100), None, Succeeded, false),
        (Created, Some(100), Some(false), Pending, true),
    ];
    let event = EventRef {
        id: "evt_wf",
        event_type: "payment_intent.x",
        created_at: None,
        source: Source::Webhook,
    };
    for (i, (stored, amount, names_order, claimed, accepted)) in cases.into_iter().enumerate() {
        let id = format!("pi_wf_{i}");
        let order = format!("o-wf-{i}");
        store
            .save_created(&StoredPayment {
                order_id: Some(order.clone()),
                ..intent(&id, 100, stored.clone())
            })
            .await
            .unwrap();
        let state = store
            .payment_state(PaymentKind::Intent, &id)
            .await
            .unwrap()
            .unwrap();
        let mut metadata = BTreeMap::new();
        if let Some(names) = names_order {
            let named = if names {
                order.clone()
            } else {
                "o-other".into()
            };
            metadata.insert("order_id".to_string(), named);
        }
        let report = PaymentReport {
            id: id.clone(),
            amount,
            currency: Some("CLP".into()),
            metadata,
            ..PaymentReport::default()
        };
        let patch = plan_write_first(&event, &claimed, &report, "now").expect("a write first");
        let WriteGuard::Expected(expectation) = &patch.guard else {
            panic!("not an expectation")
        };
        assert_eq!(
            expectation.accepts(&state),
            accepted,
            "case {i}: the expectation"
        );
        match store.apply(&patch).await.unwrap() {
            WriteResult::Conflict(returned) => {
                assert!(!accepted, "case {i}: refused, yet accepted");
                assert_eq!(
                    returned.as_ref(),
                    Some(&state),
                    "case {i}: the item as stored"
                );
            }
            _ => {
                assert!(accepted, "case {i}: written, yet not accepted");
                let after = store
                    .payment_state(PaymentKind::Intent, &id)
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(
                    (after.status, after.version),
                    (claimed.clone(), state.version + 1)
                );
                assert!(
                    matches!(
                        store.apply(&patch).await.unwrap(),
                        WriteResult::Conflict(Some(_))
                    ),
                    "case {i}: the same event again is refused"
                );
            }
        }
    }
    // An event that states a mode: the stored payment (a test one) must be of it.
    for (i, (mode, accepted)) in [("live", false), ("test", true), ("sandbox", true)]
        .into_iter()
        .enumerate()
    {
        let id = format!("pi_wf_mode_{i}");
        store
            .save_created(&intent(&id, 100, Pending))
            .await
            .unwrap();
        let state = store
            .payment_state(PaymentKind::Intent, &id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            state.mode.as_deref(),
            Some("test"),
            "read back with its mode"
        );
        let report = PaymentReport {
            id: id.clone(),
            mode: Some(mode.into()),
            metadata: state
                .order_id
                .iter()
                .map(|o| ("order_id".to_string(), o.clone()))
                .collect(),
            ..PaymentReport::default()
        };
        let patch = plan_write_first(&event, &Failed, &report, "now").unwrap();
        let WriteGuard::Expected(expectation) = &patch.guard else {
            panic!("not an expectation")
        };
        assert_eq!(expectation.accepts(&state), accepted, "{mode}");
        let written = !matches!(store.apply(&patch).await.unwrap(), WriteResult::Conflict(_));
        assert_eq!(written, accepted, "{mode}: DynamoDB agrees");
    }
    let unknown = PaymentReport {
        id: "pi_wf_unknown".into(),
        ..PaymentReport::default()
    };
    let patch = plan_write_first(&event, &PaymentStatus::Succeeded, &unknown, "now").unwrap();
    assert_eq!(
        store.apply(&patch).await.unwrap(),
        WriteResult::Conflict(None),
        "no item: decided as an unknown intent"
    );
}

fn refund(key: &str, amount: u64) -> StoredRefund {
    StoredRefund {
        key: RefundKey::for_request(key),
        fintoc_id: None,
        amount,
        currency: "CLP".into(),
        status: RefundStatus::Creating,
        failure_code: None,
        metadata: BTreeMap::new(),
        origin: RefundOrigin::Api,
        key_generation: 0,
        created_at: "2026-01-01T00:00:00.000Z".into(),
        updated_at: "2026-01-01T00:00:00.000Z".into(),
    }
}

/// Refunds: reserved only on a succeeded payment and within what it paid (the
/// first refund making the payment's map), changed only from the status read,
/// released once whether it ends unpaid or is dropped, the outcome inserted once.
pub async fn refunds_hold_at_most_what_was_paid_and_release_once<S: Stores>(store: S) {
    store
        .save_created(&for_order("pi_rf", "order-rf"))
        .await
        .unwrap();
    let reserve = |r: &StoredRefund, paid: u64| {
        let r = r.clone();
        let store = &store;
        async move {
            store
                .reserve_refund(&ReserveRefund {
                    kind: PaymentKind::Intent,
                    payment_id: "pi_rf",
                    paid,
                    refund: &r,
                    schedule: Some(initial_schedule("pi_rf", 0)),
                })
                .await
                .unwrap()
        }
    };
    let first = refund("a", 60);
    assert!(
        matches!(reserve(&first, 100).await, RefundWrite::Conflict(Some(_))),
        "not succeeded yet: nothing to refund"
    );
    send_event(&store, "pi_rf", "evt_paid", PaymentStatus::Succeeded).await;
    let paid = store
        .get_payment(PaymentKind::Intent, "pi_rf")
        .await
        .unwrap()
        .unwrap();
    let base = paid.refundable_base();
    assert_eq!(reserve(&first, base).await, RefundWrite::Written);
    let RefundWrite::Conflict(Some(seen)) = reserve(&first, base).await else {
        panic!("the same key twice is refused, with what is stored")
    };
    assert_eq!(seen.refunds.get(&first.key).map(|r| r.amount), Some(60));
    let beyond = refund("b", base - 59);
    assert!(matches!(
        reserve(&beyond, base).await,
        RefundWrite::Conflict(Some(_))
    ));
    let rest = refund("c", base - 60);
    assert_eq!(reserve(&rest, base).await, RefundWrite::Written);
    let read = store
        .get_payment(PaymentKind::Intent, "pi_rf")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (read.refunds.reserved, read.refund_ledger().refundable()),
        (base, 0)
    );

    let change = |r: &StoredRefund,
                  expected: RefundStatus,
                  to: RefundStatus,
                  release: Option<u64>,
                  outcome: bool| {
        let r = r.clone();
        let store = &store;
        async move {
            let refund_id = format!("re_i.pi_rf.{}", r.key.as_str());
            store
                .change_refund(&RefundChange {
                    kind: PaymentKind::Intent,
                    payment_id: "pi_rf",
                    key: &r.key,
                    expected: &expected,
                    status: &to,
                    fintoc_id: Some("re_fintoc"),
                    failure_code: None,
                    release,
                    updated_at: "2026-01-01T00:00:01.000Z",
                    outcome: outcome.then_some(RefundOutcome {
                        refund_id: &refund_id,
                        order_id: Some("order-rf"),
                        payment_order_id: Some("order-rf"),
                        amount: r.amount,
                        currency: "CLP",
                    }),
                    complete: None,
                })
                .await
                .unwrap()
                == RefundWrite::Written
        }
    };
    assert!(
        change(
            &first,
            RefundStatus::Creating,
            RefundStatus::Pending,
            None,
            false
        )
        .await
    );
    assert!(
        !change(
            &first,
            RefundStatus::Creating,
            RefundStatus::Pending,
            None,
            false
        )
        .await,
        "only from the status read"
    );
    assert!(
        change(
            &first,
            RefundStatus::Pending,
            RefundStatus::Failed,
            Some(60),
            true
        )
        .await
    );
    assert!(
        !change(
            &first,
            RefundStatus::Pending,
            RefundStatus::Failed,
            Some(60),
            true
        )
        .await,
        "released once"
    );
    assert!(store
        .drop_refund(PaymentKind::Intent, "pi_rf", &rest)
        .await
        .unwrap());
    assert!(!store
        .drop_refund(PaymentKind::Intent, "pi_rf", &rest)
        .await
        .unwrap());
    let read = store
        .get_payment(PaymentKind::Intent, "pi_rf")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        read.refunds.reserved, 0,
        "both amounts free again, once each"
    );
    assert_eq!(read.refunds.entries.len(), 1, "the dropped one is gone");
    assert_eq!(read.refunds.entries[0].status, RefundStatus::Failed);
    assert_eq!(
        read.refunds.entries[0].fintoc_id.as_deref(),
        Some("re_fintoc")
    );
}

async fn acquire_reserving_refund<S: Stores>(
    store: &S,
    k: &IdempotencyKey,
    now_ms: i64,
    payment_id: &str,
    paid: u64,
    refund: &StoredRefund,
) -> KeyAndRefund {
    store
        .acquire_reserving_refund(
            &AcquireRequest {
                key: k,
                request_hash: "h",
                now_ms,
                lease_expires_at_ms: now_ms + 30_000,
                expires_at_ms: now_ms + 86_400_000,
            },
            &ReserveRefund {
                kind: PaymentKind::Intent,
                payment_id,
                paid,
                refund,
                schedule: None,
            },
        )
        .await
        .expect("acquire_reserving_refund")
}

async fn reserved<S: Stores>(store: &S, id: &str) -> u64 {
    let payment = store.get_payment(PaymentKind::Intent, id).await.unwrap();
    payment.map_or(0, |p| p.refunds.reserved)
}

/// A refund create's first write: a fresh key and the refund's reservation, both
/// or neither; a key that is not fresh is answered as `acquire` answers it, and a
/// refund that does not fit takes no key.
pub async fn a_fresh_key_and_its_refund_are_taken_in_one_write_or_not_at_all<S: Stores>(store: S) {
    let base = paid_intent(&store, "pi_kr", "order-kr")
        .await
        .refundable_base();
    let (k1, first) = (key("kr-1"), refund("kr-a", 60));
    let KeyAndRefund::Taken { lease_id, .. } =
        acquire_reserving_refund(&store, &k1, T0, "pi_kr", base, &first).await
    else {
        panic!("a fresh key and a fitting refund are taken");
    };
    let read = store
        .get_payment(PaymentKind::Intent, "pi_kr")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.refunds.reserved, 60);
    assert_eq!(
        read.refunds.get(&first.key).map(|r| &r.status),
        Some(&RefundStatus::Creating)
    );
    // The same key again: in progress, and nothing more is reserved.
    assert_eq!(
        acquire_reserving_refund(&store, &k1, T0 + 1, "pi_kr", base, &refund("kr-b", 10)).await,
        KeyAndRefund::Key(AcquireOutcome::InProgress {
            retry_after_secs: 30
        })
    );
    assert_eq!(reserved(&store, "pi_kr").await, 60);
    // A fresh key whose refund does not fit, or is there already, or whose payment
    // does not exist: refused with what is stored, and the key is not taken.
    let k2 = key("kr-2");
    for (refund, payment_id) in [
        (refund("kr-c", base - 59), "pi_kr"),
        (first.clone(), "pi_kr"),
        (refund("kr-d", 1), "pi_none"),
    ] {
        match acquire_reserving_refund(&store, &k2, T0 + 2, payment_id, base, &refund).await {
            KeyAndRefund::Refused(Some(now)) => {
                assert_eq!((payment_id, now.refunds.reserved), ("pi_kr", 60))
            }
            KeyAndRefund::Refused(None) => assert_eq!(payment_id, "pi_none"),
            other => panic!("refused, got {other:?}"),
        }
    }
    assert_eq!(reserved(&store, "pi_kr").await, 60);
    let fresh = acquire(&store, &k2, "h", T0 + 3, T0 + 30_000, T0 + 86_400_000).await;
    assert!(
        matches!(fresh, AcquireOutcome::Acquired { .. }),
        "{fresh:?}"
    );
    // A completed key replays, and reserves nothing.
    assert!(complete(&store, &k1, &lease_id).await);
    assert_eq!(
        acquire_reserving_refund(&store, &k1, T0 + 4, "pi_kr", base, &refund("kr-e", 1)).await,
        KeyAndRefund::Key(AcquireOutcome::Replay(response()))
    );
    assert_eq!(reserved(&store, "pi_kr").await, 60);
}

/// A refund create's last write: Fintoc's answer recorded and the key completed
/// with it, both or neither.
pub async fn a_refund_answer_and_its_key_are_written_whole_or_not_at_all<S: Stores>(store: S) {
    let base = paid_intent(&store, "pi_ka", "order-ka")
        .await
        .refundable_base();
    let (k, r) = (key("ka-1"), refund("ka-a", 40));
    let KeyAndRefund::Taken { lease_id, .. } =
        acquire_reserving_refund(&store, &k, T0, "pi_ka", base, &r).await
    else {
        panic!("taken");
    };
    let answer = response();
    let record = |expected: RefundStatus, lease: LeaseId| {
        let (store, k, r, answer) = (&store, &k, &r, &answer);
        async move {
            store
                .change_refund(&RefundChange {
                    kind: PaymentKind::Intent,
                    payment_id: "pi_ka",
                    key: &r.key,
                    expected: &expected,
                    status: &RefundStatus::Pending,
                    fintoc_id: Some("re_ka"),
                    failure_code: None,
                    release: None,
                    updated_at: "2026-01-01T00:00:01.000Z",
                    outcome: None,
                    complete: Some(&CompleteRequest {
                        key: k,
                        lease_id: &lease,
                        response: answer,
                        intent_id: Some("pi_ka"),
                    }),
                })
                .await
                .expect("change_refund")
                == RefundWrite::Written
        }
    };
    let status = || async {
        let payment = store.get_payment(PaymentKind::Intent, "pi_ka").await;
        let payment = payment.unwrap().unwrap();
        let refund = payment.refunds.get(&r.key).cloned().unwrap();
        (refund.status, refund.fintoc_id)
    };
    let in_progress = AcquireOutcome::InProgress {
        retry_after_secs: 30,
    };
    // Another lease, or another status than the one read: nothing written.
    assert!(!record(RefundStatus::Creating, LeaseId::random()).await);
    assert!(!record(RefundStatus::Pending, lease_id.clone()).await);
    assert_eq!(status().await, (RefundStatus::Creating, None));
    let again = acquire(&store, &k, "h", T0 + 1, T0 + 30_000, T0 + 86_400_000).await;
    assert_eq!(again, in_progress);
    // As read, under its lease: both.
    assert!(record(RefundStatus::Creating, lease_id).await);
    assert_eq!(
        status().await,
        (RefundStatus::Pending, Some("re_ka".to_string()))
    );
    let again = acquire(&store, &k, "h", T0 + 2, T0 + 30_000, T0 + 86_400_000).await;
    assert_eq!(again, AcquireOutcome::Replay(answer));
}

/// The refund sweep's cursor: absent at first, then moved forward only (a run that
/// read an older cursor never moves it back).
pub async fn the_refund_sweep_cursor_only_moves_forward<S: Stores>(store: S) {
    assert_eq!(store.refund_sweep_cursor().await.unwrap(), None);
    assert!(store
        .advance_refund_sweep("2026-12-02T10:00:00.000Z")
        .await
        .unwrap());
    assert!(!store
        .advance_refund_sweep("2026-12-02T09:00:00.000Z")
        .await
        .unwrap());
    assert!(!store
        .advance_refund_sweep("2026-12-02T10:00:00.000Z")
        .await
        .unwrap());
    assert_eq!(
        store.refund_sweep_cursor().await.unwrap().as_deref(),
        Some("2026-12-02T10:00:00.000Z")
    );
    assert!(store
        .advance_refund_sweep("2026-12-02T10:05:00.000Z")
        .await
        .unwrap());
    assert_eq!(
        store.refund_sweep_cursor().await.unwrap().as_deref(),
        Some("2026-12-02T10:05:00.000Z")
    );
}

/// A refund reserved while the reconciler checks the payment's last open refund
/// keeps the payment due: the check's "leave the index" write is guarded by the
/// version it read, and a reservation moves it (issue 34, 6).
pub async fn a_reservation_keeps_its_payment_due_against_an_earlier_check<S: Stores>(store: S) {
    store
        .save_created(&for_order("pi_due", "order-due"))
        .await
        .unwrap();
    send_event(&store, "pi_due", "evt_paid", PaymentStatus::Succeeded).await;
    let reserve = |key: &str| {
        let (r, store) = (refund(key, 10), &store);
        async move {
            let paid = store
                .get_payment(PaymentKind::Intent, "pi_due")
                .await
                .unwrap()
                .unwrap();
            store
                .reserve_refund(&ReserveRefund {
                    kind: PaymentKind::Intent,
                    payment_id: "pi_due",
                    paid: paid.refundable_base(),
                    refund: &r,
                    schedule: Some(initial_schedule("pi_due", 0)),
                })
                .await
                .unwrap()
        }
    };
    assert_eq!(reserve("first").await, RefundWrite::Written);
    // The check reads the payment (its version), finds its one refund final...
    let checked = store
        .payment_state(PaymentKind::Intent, "pi_due")
        .await
        .unwrap()
        .unwrap();
    // ...while a new refund is reserved.
    assert_eq!(reserve("second").await, RefundWrite::Written);
    let cleared = store
        .update_schedule(&ScheduleUpdate {
            intent_id: "pi_due".into(),
            kind: PaymentKind::Intent,
            expected_version: checked.version,
            change: ScheduleChange::Clear,
            flag: None,
            at: "now".into(),
        })
        .await
        .unwrap();
    assert!(
        !cleared,
        "the check read before the reservation clears nothing"
    );
    let stored = store
        .get_payment(PaymentKind::Intent, "pi_due")
        .await
        .unwrap()
        .unwrap();
    assert!(stored.schedule.is_some(), "the new refund keeps it due");
}

/// A succeeded refund of a paid payment whose order has no item (written before
/// order items existed) is recorded, its outcome too: only the order's count is
/// left out (issue 34, 11).
pub async fn a_refund_outcome_is_recorded_when_its_order_has_no_item<S: Stores>(store: S) {
    let paid = paid_intent(&store, "pi_old", "order-old").await;
    let r = reserved_refund(&store, &paid, "old", 10).await;
    let refund_id = format!("re_i.pi_old.{}", r.key.as_str());
    let written = store
        .change_refund(&RefundChange {
            kind: PaymentKind::Intent,
            payment_id: "pi_old",
            key: &r.key,
            expected: &RefundStatus::Creating,
            status: &RefundStatus::Succeeded,
            fintoc_id: Some("re_old"),
            failure_code: None,
            release: None,
            updated_at: "2026-01-01T00:00:01.000Z",
            outcome: Some(RefundOutcome {
                refund_id: &refund_id,
                order_id: Some("order-never-stored"),
                payment_order_id: Some("order-never-stored"),
                amount: 10,
                currency: "CLP",
            }),
            complete: None,
        })
        .await
        .unwrap();
    assert_eq!(
        written,
        RefundWrite::Written,
        "recorded without the order's item"
    );
    let read = store
        .get_payment(PaymentKind::Intent, "pi_old")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.refunds.entries[0].status, RefundStatus::Succeeded);
    assert!(
        store.order("order-never-stored").await.unwrap().is_none(),
        "no order item is made up"
    );
}

/// A refund's create key moves to its next generation only from the generation
/// read and while it is still `creating`: two requests racing move it once.
pub async fn a_refunds_key_generation_moves_once_from_the_one_read_while_creating<S: Stores>(
    store: S,
) {
    let paid = paid_intent(&store, "pi_gen", "order-gen").await;
    let r = reserved_refund(&store, &paid, "gen", 10).await;
    let next = |from| {
        let (store, key) = (&store, r.key.clone());
        async move {
            store
                .next_key_generation(PaymentKind::Intent, "pi_gen", &key, from)
                .await
                .unwrap()
        }
    };
    assert!(next(0).await);
    assert!(!next(0).await, "moved once from the generation read");
    let read = store
        .get_payment(PaymentKind::Intent, "pi_gen")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.refunds.get(&r.key).unwrap().key_generation, 1);
    assert!(next(1).await);
    store
        .change_refund(&RefundChange {
            kind: PaymentKind::Intent,
            payment_id: "pi_gen",
            key: &r.key,
            expected: &RefundStatus::Creating,
            status: &RefundStatus::Pending,
            fintoc_id: Some("re_gen"),
            failure_code: None,
            release: None,
            updated_at: "2026-01-01T00:00:01.000Z",
            outcome: None,
            complete: None,
        })
        .await
        .unwrap();
    assert!(!next(2).await, "only while creating");
}

/// Refund `key` of `amount` reserved on `paid` (which it fits).
async fn reserved_refund<S: Stores>(
    store: &S,
    paid: &StoredPayment,
    key: &str,
    amount: u64,
) -> StoredRefund {
    let r = refund(key, amount);
    let outcome = store
        .reserve_refund(&ReserveRefund {
            kind: paid.kind,
            payment_id: &paid.id,
            paid: paid.refundable_base(),
            refund: &r,
            schedule: None,
        })
        .await
        .unwrap();
    assert_eq!(outcome, RefundWrite::Written);
    r
}

/// A key's Fintoc generation starts at 0 with the record, moves only under the
/// lease that holds it and only from the generation read, and a retry that resumes
/// the released key reads it back with when the key was first taken.
pub async fn a_keys_fintoc_generation_moves_once_under_its_lease_and_is_resumed_with_it<
    S: Stores,
>(
    store: S,
) {
    let k = key("gen-1");
    let (lease_id, _) = held(acquire(&store, &k, "h", T0, T0 + 30_000, T0 + 86_400_000).await);
    let other = LeaseId::random();
    assert!(
        !store
            .next_fintoc_key_generation(&k, &other, 0)
            .await
            .unwrap(),
        "another lease"
    );
    assert!(
        !store
            .next_fintoc_key_generation(&k, &lease_id, 1)
            .await
            .unwrap(),
        "not at 1"
    );
    assert!(store
        .next_fintoc_key_generation(&k, &lease_id, 0)
        .await
        .unwrap());
    assert!(
        !store
            .next_fintoc_key_generation(&k, &lease_id, 0)
            .await
            .unwrap(),
        "moved once"
    );
    store.release(&k, &lease_id).await.unwrap();
    assert!(
        !store
            .next_fintoc_key_generation(&k, &lease_id, 1)
            .await
            .unwrap(),
        "a released lease moves nothing"
    );
    match acquire(&store, &k, "h", T0 + 5_000, T0 + 35_000, T0 + 86_400_000).await {
        AcquireOutcome::Acquired {
            lease_id: resumed_lease,
            resumed: Some(history),
            ..
        } => {
            assert_eq!(history.fintoc_key_generation, 1);
            assert_eq!(history.taken_at_ms, T0);
            assert!(store
                .next_fintoc_key_generation(&k, &resumed_lease, 1)
                .await
                .unwrap());
        }
        other => panic!("a released key is resumed with its history, got {other:?}"),
    }
    // A fresh record starts over.
    match acquire(&store, &key("gen-2"), "h", T0, T0 + 30_000, T0 + 86_400_000).await {
        AcquireOutcome::Acquired { resumed: None, .. } => {}
        other => panic!("fresh, got {other:?}"),
    }
}

/// A refund change refused by its guard writes nothing and returns the payment as
/// stored (`ALL_OLD`), so the decision is made again without another read — alone
/// and in a transaction with its outcome.
pub async fn a_refused_refund_change_returns_the_payment_as_stored<S: Stores>(store: S) {
    let paid = paid_intent(&store, "pi_old_item", "order-oi").await;
    let r = reserved_refund(&store, &paid, "oi", 10).await;
    let change = |expected: RefundStatus, status: RefundStatus, outcome: bool| {
        let (store, r) = (&store, &r);
        async move {
            let refund_id = format!("re_i.pi_old_item.{}", r.key.as_str());
            store
                .change_refund(&RefundChange {
                    kind: PaymentKind::Intent,
                    payment_id: "pi_old_item",
                    key: &r.key,
                    expected: &expected,
                    status: &status,
                    fintoc_id: Some("re_oi"),
                    failure_code: None,
                    release: None,
                    updated_at: "2026-01-01T00:00:01.000Z",
                    outcome: outcome.then_some(RefundOutcome {
                        refund_id: &refund_id,
                        order_id: None,
                        payment_order_id: None,
                        amount: 10,
                        currency: "CLP",
                    }),
                    complete: None,
                })
                .await
                .expect("change_refund")
        }
    };
    assert_eq!(
        change(RefundStatus::Creating, RefundStatus::Pending, false).await,
        RefundWrite::Written
    );
    for outcome in [false, true] {
        match change(RefundStatus::Creating, RefundStatus::Succeeded, outcome).await {
            RefundWrite::Conflict(Some(found)) => {
                let refund = found.refunds.get(&r.key).unwrap();
                assert_eq!(refund.status, RefundStatus::Pending, "as stored");
                assert_eq!(found.id, "pi_old_item");
            }
            other => panic!("a refused change returns the payment, got {other:?}"),
        }
    }
}
