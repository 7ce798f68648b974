//! A create whose key holds a failure at Fintoc (Fintoc stores a key's first
//! answer, a 5xx too, and replays it): an intent an earlier send made is looked up
//! and expired, then the create moves to the next generation of its derived key.

use super::*;
use crate::log_markers::ANOMALY;

impl<S, F, C> PaymentService<S, F, C>
where
    S: IdempotencyStore + PaymentStore + OrderStore + EventStore + CreateStore,
    F: FintocApi + FintocLookup,
    C: Clock,
{
    /// After Fintoc answered a resumed create (an earlier request of the key may
    /// have reached it) with a 5xx that outlasted the retries — a failure Fintoc
    /// stores under its key and replays to every retry — the create moves to the
    /// next generation of its derived key, under which it is sent again at once:
    /// `Some(generation)`. First, for an intent, Fintoc's list is read for one an
    /// earlier send made despite the failure (this order's and this deployment's,
    /// made since the key was taken, unknown here): its widget token was never
    /// handed out, so it is expired before another is made. `None` (the list
    /// unread or incomplete, an intent found that will not expire, the key moved
    /// by another request): the create fails as it would have, safe to retry.
    ///
    /// A session is not looked up: Fintoc lists sessions only in API version
    /// 2026-02-01 (v2). One made under the failed key was never handed out either
    /// (its token and URL are in the create's answer only) and expires by itself.
    pub(super) async fn after_a_stored_create_failure(
        &self,
        kind: PaymentKind,
        lease: &Lease<CreatePaymentRequest>,
        history: KeyHistory,
        deadline_ms: Option<i64>,
    ) -> Option<u32> {
        let (key, order_id) = (lease.key(), &lease.request().order_id);
        let from = history.fintoc_key_generation;
        if kind == PaymentKind::Intent
            && !self.expire_made_earlier(lease, history, deadline_ms).await
        {
            return None;
        }
        match idempotent::next_fintoc_key_generation(&self.store, lease, from).await {
            Ok(true) => {
                tracing::warn!(idempotency_key = key.as_str(), order_id = %order_id, kind = kind.as_str(), generation = from + 1, "a create's key holds a failure at Fintoc; sent under a new key");
                Some(from + 1)
            }
            Ok(false) => None,
            Err(e) => {
                tracing::warn!(idempotency_key = key.as_str(), error = %e.detail(), "could not move a create's key to its next generation");
                None
            }
        }
    }

    /// Expires any intent an earlier send of `lease`'s create made at Fintoc (see
    /// [`Self::after_a_stored_create_failure`]): `true` when none is left that could be
    /// paid.
    async fn expire_made_earlier(
        &self,
        lease: &Lease<CreatePaymentRequest>,
        history: KeyHistory,
        deadline_ms: Option<i64>,
    ) -> bool {
        let order_id = &lease.request().order_id;
        // A minute of margin for clocks; a record written before it kept when it
        // was taken is read as a day old.
        let taken_at = match history.taken_at_ms {
            0 => lease.now_ms() - self.settings.record_ttl.as_millis() as i64,
            t => t,
        };
        let since = format_rfc3339_ms(taken_at - 60_000);
        let budget = fintoc_budget(deadline_ms, self.clock.now_ms());
        let listed = match self.fintoc.list_payment_intents(&since, budget).await {
            Ok(listed) if listed.complete => listed,
            Ok(_) | Err(_) => return false,
        };
        for found in listed
            .payments
            .iter()
            .filter(|r| made_for_order(r, order_id, &self.settings.deployment_tag))
        {
            match self.store.get_payment(PaymentKind::Intent, &found.id).await {
                Ok(None) => {}
                Ok(Some(_)) => continue, // an earlier payment of the order, recorded
                Err(_) => return false,
            }
            let budget = fintoc_budget(deadline_ms, self.clock.now_ms());
            match self.fintoc.expire_payment_intent(&found.id, budget).await {
                Ok(Some(ref after))
                    if after
                        .status
                        .as_ref()
                        .is_some_and(|s| s.is_final() && *s != PaymentStatus::Succeeded) =>
                {
                    tracing::warn!(id = %found.id, order_id = %order_id, "an intent made under a create's failed key was expired: its widget token was never handed out");
                }
                Ok(_) | Err(_) => {
                    tracing::error!(id = %found.id, order_id = %order_id, "{ANOMALY}: an intent made under a create's failed key could not be expired; the create is held");
                    return false;
                }
            }
        }
        true
    }
}
