//! The merchant events' use cases: the table's changes turned into recorded
//! events (the table is the outbox) and delivered — the first attempt at once,
//! retries on the ladder by the sweep, `410 Gone` disabling its endpoint, and the
//! operators' replays (resend one event, recover every undelivered one since a
//! time). Every attempt goes through one loop, [`EventDispatcher::attempt_all`].

use crate::clock::Clock;
use crate::destinations::EventSender;
use crate::domain::delivery::{after_attempt, AttemptRecord, AttemptResult, Next};
use crate::domain::merchant_event::{derive, order_paid, Derived, MerchantEvent, StoredChange};
use crate::store::{
    ClaimedDelivery, DeliveryRef, DeliveryStore, PaymentStore, RecordedEvent, StoreError,
};
use futures::stream::{self, StreamExt};

/// Turns changes into events and delivers them.
pub struct EventDispatcher<S, D> {
    /// The table.
    pub store: S,
    /// The destinations.
    pub sender: D,
    /// How much the retry ladder is compressed (1.0 deployed).
    pub ladder_scale: f64,
    /// Attempts in flight at once.
    pub concurrency: usize,
}

/// What one call did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DispatchReport {
    /// Events derived from the changes (a change seen again counts again).
    pub events: usize,
    /// Attempts made, by what followed them.
    pub delivered: usize,
    /// Attempts that failed and wait for their next rung.
    pub retrying: usize,
    /// Deliveries whose last attempt failed.
    pub exhausted: usize,
    /// Deliveries held because their endpoint answered `410 Gone`.
    pub disabled: usize,
    /// Attempts whose claim was lost before their result was written (another
    /// caller owns the delivery now).
    pub lost_claims: usize,
}

impl DispatchReport {
    fn add(&mut self, next: Option<Next>) {
        match next {
            Some(Next::Delivered) => self.delivered += 1,
            Some(Next::RetryAt(_)) => self.retrying += 1,
            Some(Next::Exhausted) => self.exhausted += 1,
            Some(Next::DisableEndpoint) => self.disabled += 1,
            None => self.lost_claims += 1,
        }
    }
}

/// A stream batch's outcome: what was done, and the first change that could not
/// be recorded (it and every change after it must be delivered again).
#[derive(Debug)]
pub struct BatchOutcome {
    /// What was done.
    pub report: DispatchReport,
    /// The index of the first change not recorded, with why.
    pub failed_from: Option<(usize, StoreError)>,
}

impl<S: DeliveryStore + PaymentStore, D: EventSender> EventDispatcher<S, D> {
    /// The events `change` makes, complete (an order's payment read for its
    /// `order.paid`).
    async fn events_of(&self, change: &StoredChange) -> Result<Vec<MerchantEvent>, StoreError> {
        let mut events = Vec::new();
        for derived in derive(change) {
            match derived {
                Derived::Event(event) => events.push(event),
                Derived::OrderPaid {
                    order_id,
                    payment_id,
                    kind,
                    paid_at,
                } => {
                    let payment = self
                        .store
                        .get_payment(kind, &payment_id)
                        .await?
                        .filter(|p| p.order_id.as_deref() == Some(order_id.as_str()))
                        .ok_or_else(|| {
                            StoreError::Malformed(format!(
                                "order {order_id} is paid by {payment_id}, which is not its payment"
                            ))
                        })?;
                    events.extend(order_paid(&payment, &paid_at));
                }
            }
        }
        Ok(events)
    }

    /// Records `event` with a delivery to every destination (held for a disabled
    /// one): the deliveries claimed for their first attempt.
    async fn record(
        &self,
        event: &MerchantEvent,
        destinations: &[(String, bool)],
        now_ms: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let recorded = RecordedEvent {
            id: event.id.clone(),
            event_type: event.event_type.as_str().to_string(),
            order_id: event.data["order_id"].as_str().map(str::to_string),
            body: event.to_json().to_string(),
            recorded_ms: now_ms,
        };
        self.store
            .record_event(&recorded, destinations, now_ms)
            .await
    }

    /// Every configured destination, with whether it is enabled.
    async fn destinations(&self) -> Result<Vec<(String, bool)>, StoreError> {
        let names = self.sender.destinations();
        let disabled = self.store.disabled_destinations(&names).await?;
        Ok(names
            .into_iter()
            .map(|name| {
                let enabled = !disabled.contains(&name);
                (name, enabled)
            })
            .collect())
    }

    /// A stream batch: each change's events recorded, in order, then every first
    /// attempt made at once. A change that cannot be recorded stops the
    /// recording there (the stream delivers it and what follows again); the
    /// attempts of what was recorded are still made.
    pub async fn dispatch(&self, changes: &[StoredChange], clock: &dyn Clock) -> BatchOutcome {
        let mut report = DispatchReport::default();
        let mut claims = Vec::new();
        let mut failed_from = None;
        let destinations = match self.destinations().await {
            Ok(destinations) => destinations,
            Err(e) => {
                return BatchOutcome {
                    report,
                    failed_from: Some((0, e)),
                }
            }
        };
        for (index, change) in changes.iter().enumerate() {
            let recorded = async {
                let mut claimed = Vec::new();
                for event in self.events_of(change).await? {
                    report.events += 1;
                    claimed.extend(self.record(&event, &destinations, clock.now_ms()).await?);
                }
                Ok::<_, StoreError>(claimed)
            };
            match recorded.await {
                Ok(claimed) => claims.extend(claimed),
                Err(e) => {
                    failed_from = Some((index, e));
                    break;
                }
            }
        }
        let attempts = self.attempt_all(claims, clock).await;
        report = merge(report, attempts);
        BatchOutcome {
            report,
            failed_from,
        }
    }

    /// The retry sweep: every pending delivery due now (at most `limit`), claimed
    /// and attempted.
    pub async fn sweep(&self, limit: i32, clock: &dyn Clock) -> Result<DispatchReport, StoreError> {
        let now_ms = clock.now_ms();
        let due = self.store.due_deliveries(now_ms, limit).await?;
        let disabled = self
            .store
            .disabled_destinations(&self.sender.destinations())
            .await?;
        let mut claims = Vec::new();
        for delivery in due.iter().filter(|d| !disabled.contains(&d.destination)) {
            claims.extend(self.store.claim_delivery(delivery, now_ms).await?);
        }
        Ok(self.attempt_all(claims, clock).await)
    }

    /// The one loop that makes attempts: each claimed delivery sent once, its
    /// attempt and what follows it recorded, `concurrency` at a time — one slow
    /// endpoint holds up nothing but its own attempt, for at most its timeout.
    pub async fn attempt_all(
        &self,
        claims: Vec<ClaimedDelivery>,
        clock: &dyn Clock,
    ) -> DispatchReport {
        let outcomes: Vec<Option<Next>> = stream::iter(claims)
            .map(|claimed| self.attempt(claimed, clock))
            .buffer_unordered(self.concurrency.max(1))
            .collect()
            .await;
        let mut report = DispatchReport::default();
        for next in outcomes {
            report.add(next);
        }
        report
    }

    /// One attempt: sent, recorded; `None` when its result could not be written
    /// (the claim was lost, or the table failed: the lease ends and the sweep
    /// tries again, so the endpoint may see the id twice, as Standard Webhooks
    /// allows).
    async fn attempt(&self, claimed: ClaimedDelivery, clock: &dyn Clock) -> Option<Next> {
        let at_ms = clock.now_ms();
        let destination = claimed.delivery.destination.clone();
        let answer = self
            .sender
            .send(
                &destination,
                &claimed.delivery.event_id,
                &claimed.body,
                at_ms,
            )
            .await;
        let next = after_attempt(
            claimed.attempt,
            AttemptResult::of(answer.status),
            clock.now_ms(),
            self.ladder_scale,
        );
        let record = AttemptRecord {
            attempt: claimed.attempt,
            at_ms,
            status: answer.status,
            duration_ms: answer.duration_ms,
            answer_head: answer.answer_head,
        };
        if next == Next::DisableEndpoint {
            if let Err(e) = self
                .store
                .set_destination_disabled(&destination, true, clock.now_ms())
                .await
            {
                tracing::warn!(destination, error = %e, "could not disable an endpoint that answered 410");
            }
        }
        match self.store.finish_attempt(&claimed, &record, next).await {
            Ok(true) => {
                log_attempt(&claimed.delivery, &record, next);
                Some(next)
            }
            Ok(false) => None,
            Err(e) => {
                tracing::warn!(event_id = claimed.delivery.event_id, destination, error = %e, "an attempt's result was not recorded");
                None
            }
        }
    }
}

fn log_attempt(delivery: &DeliveryRef, record: &AttemptRecord, next: Next) {
    match next {
        Next::Delivered => tracing::info!(
            event_id = delivery.event_id,
            destination = delivery.destination,
            attempt = record.attempt,
            "merchant event delivered"
        ),
        Next::RetryAt(at) => tracing::info!(
            event_id = delivery.event_id,
            destination = delivery.destination,
            attempt = record.attempt,
            status = record.status,
            retry_at_ms = at,
            "merchant event attempt failed"
        ),
        Next::Exhausted => tracing::error!(
            event_id = delivery.event_id,
            destination = delivery.destination,
            "{}: every attempt failed; recover it once the endpoint is back",
            crate::log_markers::DELIVERY_EXHAUSTED
        ),
        Next::DisableEndpoint => tracing::warn!(
            event_id = delivery.event_id,
            destination = delivery.destination,
            "the endpoint answered 410 Gone: disabled, its deliveries held"
        ),
    }
}

fn merge(mut a: DispatchReport, b: DispatchReport) -> DispatchReport {
    a.events += b.events;
    a.delivered += b.delivered;
    a.retrying += b.retrying;
    a.exhausted += b.exhausted;
    a.disabled += b.disabled;
    a.lost_claims += b.lost_claims;
    a
}
