//! Refunds on the store, as the use cases change them: random interleavings of
//! reservations, Fintoc's answers and events (duplicated, reordered, decided on a
//! stale read), refused creates, cancels and imports of refunds made elsewhere —
//! reservations taken with their idempotency key and answers completing it, a lost
//! answer retried with another body, a check racing a reservation —
//! through `record_refund_report`, `import_refund` and the store's guarded writes,
//! on the in-memory store (the same contract as DynamoDB's, `store::contract`).

use super::*;
use crate::domain::idempotency::AcquireOutcome;
use crate::domain::idempotency::AcquireRequest;
use crate::domain::refund::{RefundOrigin, RefundReport, RefundStatus};
use crate::store::memory::MemoryStore;
use crate::store::RefundWrite;
use crate::store::{EventStore, IdempotencyStore, ScheduleStore};
use proptest::prelude::*;

const NOW: &str = "2026-01-01T00:00:00.000Z";
const PAYMENT: &str = "pi_prop";

#[derive(Debug, Clone)]
enum Step {
    /// A refund of this amount reserved (the create's first write, alone).
    Reserve(u64),
    /// A refund of this amount reserved with its idempotency key in one write (a
    /// create's happy path); its first report then completes the key with it.
    ReserveWithKey(u64),
    /// Fintoc's answer, an event or a check about refund `i`: this status.
    Report(usize, RefundStatus),
    /// The same, decided on the payment as read before the previous step.
    StaleReport(usize, RefundStatus),
    /// Fintoc refused refund `i`'s create (dropped, if still `creating`).
    Refused(usize),
    /// A refund made elsewhere (`j`), of this amount and status, reported.
    Import(usize, u64, RefundStatus),
    /// Refund `i`'s create answer is lost (its key released), and the merchant
    /// retries its key with another body: refused, the reservation kept.
    LostAnswerRetriedWithAnotherBody(usize),
    /// The reconciler reads the payment to check it, a refund of this amount is
    /// reserved meanwhile, and the check then takes it off the schedule.
    ConcurrentCheck(u64),
}

fn status() -> impl Strategy<Value = RefundStatus> {
    prop_oneof![
        Just(RefundStatus::Pending),
        Just(RefundStatus::InProgress),
        Just(RefundStatus::Succeeded),
        Just(RefundStatus::Failed),
        Just(RefundStatus::Canceled),
        Just(RefundStatus::Rejected),
        Just(RefundStatus::Other("on_hold".into())),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1u64..60).prop_map(Step::Reserve),
        (1u64..60).prop_map(Step::ReserveWithKey),
        (0usize..8, status()).prop_map(|(i, s)| Step::Report(i, s)),
        (0usize..8, status()).prop_map(|(i, s)| Step::StaleReport(i, s)),
        (0usize..8).prop_map(Step::Refused),
        (0usize..3, 1u64..60, status()).prop_map(|(j, a, s)| Step::Import(j, a, s)),
        (0usize..8).prop_map(Step::LostAnswerRetriedWithAnotherBody),
        (1u64..60).prop_map(Step::ConcurrentCheck),
    ]
}

fn report(id: String, amount: u64, status: RefundStatus) -> RefundReport {
    RefundReport {
        id,
        status,
        amount: Some(amount),
        currency: Some("CLP".into()),
        failure_code: None,
        resource_type: Some("payment_intent".into()),
        resource_id: Some(PAYMENT.into()),
        mode: None,
        metadata: Default::default(),
        created_at: None,
    }
}

/// Refund `n` of this amount, as a create first stores it.
fn new_refund(n: usize, amount: u64) -> StoredRefund {
    StoredRefund {
        key: RefundKey::for_request(&format!("key-{n}")),
        fintoc_id: None,
        amount,
        currency: "CLP".into(),
        status: RefundStatus::Creating,
        failure_code: None,
        metadata: Default::default(),
        origin: RefundOrigin::Api,
        key_generation: 0,
        created_at: NOW.into(),
        updated_at: NOW.into(),
    }
}

/// `refund` reserved with an idempotency key of its own in one write.
async fn reserve_with_key(
    store: &MemoryStore,
    idempotency_key: &str,
    refund: &StoredRefund,
    paid: u64,
) -> idempotent::Opened<RefundCommand, Option<Box<StoredPayment>>> {
    let policy = idempotent::KeyPolicy {
        lease: std::time::Duration::from_secs(30),
        record_ttl: std::time::Duration::from_secs(86_400),
    };
    let key = IdempotencyKey::parse(
        &crate::domain::idempotency::CallerId::anonymous(),
        Some(idempotency_key),
    )
    .unwrap();
    let command = RefundCommand {
        kind: PaymentKind::Intent,
        payment_id: PAYMENT.into(),
        request: RefundRequest {
            amount: Some(refund.amount),
            metadata: Default::default(),
        },
    };
    let acquiring = Acquiring::new(policy, key, command, 0, None);
    let reserve = ReserveRefund {
        kind: PaymentKind::Intent,
        payment_id: PAYMENT,
        paid,
        refund,
        schedule: None,
    };
    idempotent::open(store, acquiring, &reserve).await.unwrap()
}

/// `refund` reserved alone (the create's first write), with `schedule` if the
/// payment has none.
async fn reserve(
    store: &MemoryStore,
    refund: &StoredRefund,
    paid: u64,
    schedule: Option<crate::domain::schedule::CheckSchedule>,
) -> RefundWrite {
    store
        .reserve_refund(&ReserveRefund {
            kind: PaymentKind::Intent,
            payment_id: PAYMENT,
            paid,
            refund,
            schedule,
        })
        .await
        .unwrap()
}

async fn read(store: &MemoryStore) -> StoredPayment {
    store
        .get_payment(PaymentKind::Intent, PAYMENT)
        .await
        .unwrap()
        .unwrap()
}

async fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let store = MemoryStore::default();
    let mut stale = crate::store::contract::paid_intent(&store, PAYMENT, "order-prop").await;
    let paid = stale.refundable_base();
    prop_assert!(paid > 0);
    let mut made: Vec<StoredRefund> = Vec::new();
    // The lease each refund reserved with its key holds, until its first report.
    let mut leases: Vec<Option<Lease<RefundCommand>>> = Vec::new();
    for (n, step) in steps.into_iter().enumerate() {
        let before = read(&store).await;
        match step {
            Step::Reserve(amount) => {
                let refund = new_refund(made.len(), amount);
                let outcome = reserve(&store, &refund, paid, None).await;
                let fits = before.refund_ledger().reserve(Some(amount)).is_ok();
                prop_assert_eq!(outcome == RefundWrite::Written, fits);
                if fits {
                    made.push(refund);
                    leases.push(None);
                }
            }
            Step::ReserveWithKey(amount) => {
                let refund = new_refund(made.len(), amount);
                let opened = reserve_with_key(&store, &format!("idem-{n}"), &refund, paid).await;
                let fits = before.refund_ledger().reserve(Some(amount)).is_ok();
                match opened {
                    idempotent::Opened::Held {
                        lease,
                        first_written: true,
                    } => {
                        prop_assert!(fits, "reserved only what fits");
                        made.push(refund);
                        leases.push(Some(lease));
                    }
                    idempotent::Opened::Refused(_, acquiring) => {
                        prop_assert!(!fits, "refused only what does not fit");
                        let again = store.acquire(&acquiring.request()).await.unwrap();
                        prop_assert!(
                            matches!(again, AcquireOutcome::Acquired { .. }),
                            "a refused reservation took no key"
                        );
                    }
                    other => prop_assert!(false, "a fresh key: {:?}", other),
                }
            }
            Step::Report(i, ref status) | Step::StaleReport(i, ref status) => {
                let status = status.clone();
                let Some(refund) = made.get(i) else { continue };
                let seen = if matches!(step, Step::StaleReport(..)) {
                    &stale
                } else {
                    &before
                };
                let report = report(format!("re_fintoc_{i}"), refund.amount, status);
                let lease = leases[i].take();
                let recorded =
                    record_report(&store, seen, &refund.key, &report, NOW, lease.as_ref())
                        .await
                        .unwrap();
                if let Some(lease) = &lease {
                    // A completed key answers the refund exactly as recorded; one
                    // not completed is still held (its `finish` completes it).
                    let replay = store
                        .acquire(&AcquireRequest {
                            key: lease.key(),
                            request_hash: lease.fingerprint(),
                            now_ms: lease.now_ms() + 1,
                            lease_expires_at_ms: lease.until_ms(),
                            expires_at_ms: lease.now_ms() + 86_400_000,
                        })
                        .await
                        .unwrap();
                    match replay {
                        AcquireOutcome::Replay(stored) => {
                            prop_assert!(recorded.completed);
                            let now = read(&store).await;
                            let expected =
                                created_response(&now, now.refunds.get(&refund.key).unwrap());
                            prop_assert_eq!(stored, expected);
                        }
                        AcquireOutcome::InProgress { .. } => prop_assert!(!recorded.completed),
                        other => prop_assert!(false, "the key: {:?}", other),
                    }
                }
            }
            Step::Refused(i) => {
                let Some(refund) = made.get(i) else { continue };
                let was_creating = before
                    .refunds
                    .get(&refund.key)
                    .is_some_and(|r| r.status == RefundStatus::Creating);
                let dropped = store
                    .drop_refund(PaymentKind::Intent, PAYMENT, refund)
                    .await
                    .unwrap();
                prop_assert_eq!(dropped, was_creating, "dropped only while creating");
            }
            Step::Import(j, amount, status) => {
                let report = report(format!("re_elsewhere_{j}"), amount, status);
                import_refund(&store, &before, &report, 0).await.unwrap();
            }
            Step::LostAnswerRetriedWithAnotherBody(i) => {
                let Some(lease) = leases.get_mut(i).and_then(Option::take) else {
                    continue;
                };
                let (key, fingerprint) = (lease.key().clone(), lease.fingerprint().to_string());
                let lost = ApiError::dependency(502, "fintoc_unreachable", "lost");
                let _ = idempotent::finish(&store, lease, CommandResult::Failed(lost)).await;
                let retry = |hash: &str| {
                    let (store, key, hash) = (&store, key.clone(), hash.to_string());
                    async move {
                        store
                            .acquire(&AcquireRequest {
                                key: &key,
                                request_hash: &hash,
                                now_ms: 1,
                                lease_expires_at_ms: 30_001,
                                expires_at_ms: 86_400_000,
                            })
                            .await
                            .unwrap()
                    }
                };
                prop_assert_eq!(
                    retry("another body").await,
                    AcquireOutcome::Mismatch,
                    "another request never resumes a released key"
                );
                let after_retry = read(&store).await;
                prop_assert_eq!(
                    after_retry.refunds.get(&made[i].key),
                    before.refunds.get(&made[i].key),
                    "the reservation is kept as it was"
                );
                let resumed = retry(&fingerprint).await;
                prop_assert!(
                    matches!(resumed, AcquireOutcome::Acquired { .. }),
                    "the same request resumes it: {:?}",
                    resumed
                );
            }
            Step::ConcurrentCheck(amount) => {
                let checked = store
                    .payment_state(PaymentKind::Intent, PAYMENT)
                    .await
                    .unwrap()
                    .unwrap();
                let refund = new_refund(made.len(), amount);
                let schedule = crate::domain::schedule::initial_schedule(PAYMENT, 0);
                let outcome = reserve(&store, &refund, paid, Some(schedule)).await;
                let reserved = outcome == RefundWrite::Written;
                if reserved {
                    made.push(refund);
                    leases.push(None);
                }
                let cleared = store
                    .update_schedule(&crate::domain::reconcile::ScheduleUpdate {
                        intent_id: PAYMENT.into(),
                        kind: PaymentKind::Intent,
                        expected_version: checked.version,
                        change: crate::domain::schedule::ScheduleChange::Clear,
                        flag: None,
                        at: NOW.into(),
                    })
                    .await
                    .unwrap();
                if reserved {
                    prop_assert!(!cleared, "a reservation keeps its payment due");
                    prop_assert!(read(&store).await.schedule.is_some());
                }
            }
        }
        stale = before;
        let after = read(&store).await;
        let live: u64 = after
            .refunds
            .entries
            .iter()
            .filter(|r| !r.status.releases_amount())
            .map(|r| r.amount)
            .sum();
        prop_assert_eq!(
            after.refunds.reserved,
            live,
            "reserved = what live refunds hold"
        );
        prop_assert!(after.refunds.reserved <= paid, "never more than was paid");
        let succeeded: u64 = after
            .refunds
            .entries
            .iter()
            .filter(|r| r.status == RefundStatus::Succeeded)
            .map(|r| r.amount)
            .sum();
        prop_assert!(succeeded <= paid);
        prop_assert_eq!(
            store.order("order-prop").map(|o| o.refunded_amount),
            Some(succeeded),
            "the order counts each succeeded refund once"
        );
        for refund in &after.refunds.entries {
            let outcome = store.refund_outcome(&after.refund_id(&refund.key).to_string());
            if refund.status.is_final() {
                prop_assert_eq!(outcome, Some((refund.status.clone(), refund.amount)));
            } else {
                prop_assert_eq!(outcome, None);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Whatever the order of reservations, reports (duplicated, reordered, on a
    /// stale read), refused creates, cancels and imports: the payment holds exactly
    /// what its live refunds hold, never more than it paid; each outcome is recorded
    /// once, and the order's refunded amount is the sum of the succeeded refunds.
    #[test]
    fn refunds_on_the_store_never_exceed_what_was_paid(
        steps in proptest::collection::vec(step(), 0..40)
    ) {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(run(steps))?;
    }
}
