//! The test kit: payments as a create leaves them, and their orders reserved and
//! opened, built one way for the unit and contract tests, the integration tests and
//! the benchmark harness. No function calls it (two small functions, left out of
//! the functions' binaries by the linker).

use crate::domain::deployment::DEPLOYMENT_TAG_METADATA_KEY;
use crate::domain::order::{OpenRequest, ReserveRequest};
use crate::domain::payment::StoredPayment;
use crate::domain::schedule::initial_schedule_after;
use crate::store::{OrderStore, PaymentStore};

pub use crate::domain::fixtures::{created_intent, refund, CREATED_AT};

/// A 15,000 CLP intent for order `order-<id>` as this deployment's create leaves
/// it: tagged with `deployment_tag` and in the due-checks index, first due five
/// minutes after `now_ms` — what the webhook and the reconciler find deployed.
pub fn intent_of_deployment(id: &str, deployment_tag: &str, now_ms: i64) -> StoredPayment {
    StoredPayment {
        metadata: [(
            DEPLOYMENT_TAG_METADATA_KEY.to_string(),
            deployment_tag.to_string(),
        )]
        .into(),
        schedule: Some(initial_schedule_after(id, now_ms, 5 * 60_000)),
        ..created_intent(id, 15_000, "CLP", Some(&format!("order-{id}")))
    }
}

/// Stores `payment` as a create leaves it: its order reserved by `holder` at
/// `now_ms`, the payment saved, the order opened with it. The error says which
/// step failed.
pub async fn seed_open<S: PaymentStore + OrderStore>(
    store: &S,
    payment: &StoredPayment,
    holder: &str,
    now_ms: i64,
) -> Result<(), String> {
    let order_id = payment
        .order_id
        .as_deref()
        .ok_or_else(|| format!("seeding {}: it names no order", payment.id))?;
    let failed = |step: &str| {
        let (id, step) = (payment.id.clone(), step.to_string());
        move |e: crate::store::StoreError| format!("seeding {id}: {step}: {}", e.detail())
    };
    store
        .reserve_order(&ReserveRequest {
            order_id,
            holder,
            now_ms,
            reserved_until_ms: now_ms + 60_000,
        })
        .await
        .map_err(failed("reserving its order"))?;
    store
        .save_created(payment)
        .await
        .map_err(failed("saving it"))?;
    let opened = store
        .open_order(&OpenRequest {
            payment_ref: None,
            order_id,
            holder,
            intent_id: &payment.id,
            kind: payment.kind,
        })
        .await
        .map_err(failed("opening its order"))?;
    opened
        .then_some(())
        .ok_or_else(|| format!("seeding {}: the order was not opened", payment.id))
}
