//! Creating a refund: the key taken with the amount reserved on the payment's
//! record, the refund created at Fintoc under a key derived from the merchant's
//! (moved to its next generation after a failure Fintoc stored under it), and
//! Fintoc's answer recorded with the key's completion.

use super::*;
use crate::app::idempotent::{FirstWrite, KeyAlone, Opened};
use crate::domain::idempotency::AcquireRequest;
use crate::store::IdempotencyStore;

/// What a lookup after a stored failure of a refund's create found.
enum StoredFailure {
    /// Fintoc made it (an earlier send): its report.
    Found(Box<RefundReport>),
    /// Not made: sent again under this generation of the derived key.
    NewKey(u32),
    /// Not known (the list could not be read whole, the key moved meanwhile): held.
    Unknown,
}

/// A refund request's reservation as decided on its payment.
enum Reservation {
    /// An earlier attempt of the same key reserved it already.
    Found(StoredRefund),
    /// A new refund, to reserve: not written yet.
    New(StoredRefund),
}

/// What `command`'s refund under `key` comes to on `payment` as read: the one an
/// earlier attempt reserved, a new one, or why none fits (a 4xx).
fn plan_reservation(
    command: &RefundCommand,
    key: &RefundKey,
    now_ms: i64,
    payment: &StoredPayment,
) -> Result<Reservation, ApiError> {
    if let Some(existing) = payment.refunds.get(key) {
        return Ok(Reservation::Found(existing.clone()));
    }
    if payment.refunds.full() && payment.refundable_base() > 0 {
        return Err(ApiError::refund_limit_reached(&payment.id));
    }
    let amount = match payment.refund_ledger().reserve(command.request.amount) {
        Ok((_, amount)) => amount,
        Err(RefundRefusal::NotRefundable) => {
            return Err(ApiError::payment_not_refundable(
                &payment.id,
                payment.status.as_str(),
            ))
        }
        Err(RefundRefusal::ExceedsRefundable { refundable }) => {
            return Err(ApiError::refund_exceeds_refundable(&payment.id, refundable))
        }
    };
    let now = format_rfc3339_ms(now_ms);
    Ok(Reservation::New(StoredRefund {
        key: key.clone(),
        fintoc_id: None,
        amount,
        currency: payment.currency.clone(),
        status: RefundStatus::Creating,
        failure_code: None,
        metadata: command.request.metadata.clone(),
        origin: RefundOrigin::Api,
        key_generation: 0,
        created_at: now.clone(),
        updated_at: now,
    }))
}
/// The payment intent a refund of `payment` goes to at Fintoc (a session's: the
/// attempt that paid it), or why it cannot be refunded.
fn refundable_intent(payment: &StoredPayment) -> Result<&str, ApiError> {
    let not_refundable = || ApiError::payment_not_refundable(&payment.id, payment.status.as_str());
    if payment.refundable_base() == 0 {
        return Err(not_refundable());
    }
    match payment.kind {
        PaymentKind::Intent => Ok(&payment.id),
        PaymentKind::Session => payment
            .session_payment
            .as_ref()
            .filter(|p| p.status == PaymentStatus::Succeeded)
            .map(|p| p.intent_id.as_str())
            .ok_or_else(not_refundable),
    }
}
/// A refund create's key taken alone (no reservation to take with it: found, or
/// refused on the read, or refused with the key), through the engine's one door.
async fn open_alone<S: IdempotencyStore>(
    store: &S,
    acquiring: Acquiring<RefundCommand>,
) -> Result<Opened<RefundCommand, std::convert::Infallible>, ApiError> {
    idempotent::open(store, acquiring, &KeyAlone).await
}

/// A refund's reservation, taken with its create's key in one write.
impl<S: CreateStore> FirstWrite<S> for ReserveRefund<'_> {
    type Refused = Option<Box<StoredPayment>>;

    async fn take_with_key(
        &self,
        store: &S,
        acquire: &AcquireRequest<'_>,
    ) -> Result<KeyAnd<Self::Refused>, StoreError> {
        store.acquire_reserving_refund(acquire, self).await
    }
}

impl<S, F, C> PaymentService<S, F, C>
where
    S: CreateStore + PaymentStore + OrderStore + EventStore + RefundStore,
    F: FintocApi + FintocRefunds + FintocLookup,
    C: Clock,
{
    /// `POST /payment-intents/{id}/refunds` (`kind` intent) and
    /// `POST /checkout-sessions/{id}/refunds` (`kind` session).
    pub async fn create_refund(
        &self,
        kind: PaymentKind,
        payment_id: &str,
        input: CreateInput<'_>,
    ) -> Result<Reply, ApiError> {
        let key = IdempotencyKey::parse(input.caller, input.idempotency_key)?;
        let request = parse_refund_request(input.content_type, input.body)?;
        if request.metadata.contains_key(REFUND_ID_METADATA_KEY) {
            return Err(InputError::invalid_param(
                "reserved_metadata_key",
                &format!("metadata[{REFUND_ID_METADATA_KEY}]"),
                format!("metadata.{REFUND_ID_METADATA_KEY} is reserved: this backend sets it."),
            )
            .into());
        }
        // What no retry can change is refused before the key is taken: nothing
        // is written for an unknown payment or one that never succeeded.
        let payment = self.find(kind, payment_id).await?;
        refundable_intent(&payment)?;
        let command = RefundCommand {
            kind,
            payment_id: payment.id.clone(),
            request,
        };
        // Decided on first from this read (every write is guarded): a new refund
        // is reserved with the key in one write. A key that is not fresh, a refund
        // found or refused on the read, or a refused write go one write at a time,
        // which answers each of them (a replay, a 409, a 4xx on a fresh read).
        let now = self.clock.now_ms();
        let acquiring = Acquiring::new(
            self.settings.key_policy(),
            key,
            command,
            now,
            input.deadline_ms,
        );
        let (_, refund_key) = self.refund_keys(acquiring.key());
        let planned = plan_reservation(acquiring.command(), &refund_key, now, &payment);
        let mut payment = payment;
        let mut reserved = None;
        let opened = match planned {
            Ok(Reservation::New(refund)) => {
                let reserve = reserve_request(&payment, &refund, now, self.first_check_after_ms());
                match idempotent::open(&self.store, acquiring, &reserve).await? {
                    Opened::Held {
                        lease,
                        first_written,
                    } => {
                        if first_written {
                            tracing::info!(payment_id = %payment.id, refund_key = refund.key.as_str(), amount = refund.amount, "refund reserved with its key");
                            reserved = Some(refund);
                        }
                        Opened::Held {
                            lease,
                            first_written,
                        }
                    }
                    Opened::Replay(reply) => Opened::Replay(reply),
                    Opened::Refused(found, acquiring) => {
                        if let Some(found) = found {
                            payment = *found;
                        }
                        open_alone(&self.store, acquiring).await?
                    }
                }
            }
            Ok(Reservation::Found(_)) | Err(_) => open_alone(&self.store, acquiring).await?,
        };
        let lease = match opened {
            Opened::Held { lease, .. } => lease,
            Opened::Replay(reply) => return Ok(reply),
            Opened::Refused(never, _) => match never {},
        };
        let result = self
            .refund_under_lease(&lease, payment, reserved, input.deadline_ms)
            .await;
        idempotent::finish(&self.store, lease, result).await
    }

    /// The key a refund create sends Fintoc (derived from the merchant's, in this
    /// deployment's namespace), and the refund's key on its payment.
    fn refund_keys(&self, key: &IdempotencyKey) -> (FintocKey, RefundKey) {
        let fintoc_key = self.fintoc_key_at(key, 0);
        let refund_key = RefundKey::for_request(fintoc_key.as_str());
        (fintoc_key, refund_key)
    }

    /// The key a refund create sends Fintoc at `generation` of its derived key
    /// (`StoredRefund::key_generation`; 0: the first, which also names the refund).
    fn fintoc_key_at(&self, key: &IdempotencyKey, generation: u32) -> FintocKey {
        let namespace = format!("{}:refund", self.settings.idempotency_namespace);
        derive_fintoc_key_at(&namespace, key, generation)
    }

    /// After Fintoc answered a re-send of `refund`'s create with a 5xx that
    /// outlasted the retries — a failure it may have stored under the key and
    /// replays — the refund is looked up in Fintoc's list by this backend's id
    /// (an earlier send may have made it): found, its report; absent from a list
    /// read to its end, the key moves to its next generation (one conditional
    /// write), under which it is sent again; anything else leaves it held.
    async fn after_a_stored_failure(
        &self,
        payment: &StoredPayment,
        refund: &StoredRefund,
        deadline_ms: Option<i64>,
    ) -> StoredFailure {
        let reserved_at = crate::clock::parse_rfc3339_ms(&refund.created_at).unwrap_or(0);
        let since = format_rfc3339_ms(reserved_at - 60_000);
        let budget = fintoc_budget(deadline_ms, self.clock.now_ms());
        let listed = match self.fintoc.list_refunds(&since, None, budget).await {
            Ok(listed) if listed.complete => listed,
            Ok(_) | Err(_) => return StoredFailure::Unknown,
        };
        if let Some(report) = listed
            .refunds
            .into_iter()
            .find(|r| r.names(&payment.id, &refund.key))
        {
            return StoredFailure::Found(Box::new(report));
        }
        match self
            .store
            .next_key_generation(
                payment.kind,
                &payment.id,
                &refund.key,
                refund.key_generation,
            )
            .await
        {
            Ok(true) => {
                tracing::warn!(payment_id = %payment.id, refund_key = refund.key.as_str(), generation = refund.key_generation + 1, "a refund's create key holds a failure at Fintoc and its list shows no such refund; sent under a new key");
                StoredFailure::NewKey(refund.key_generation + 1)
            }
            Ok(false) | Err(_) => StoredFailure::Unknown,
        }
    }

    /// Reserves (or finds the reservation of an earlier attempt of this key)
    /// unless `reserved` with the key already (on `payment` as read), asks Fintoc,
    /// records its answer.
    async fn refund_under_lease(
        &self,
        lease: &Lease<RefundCommand>,
        payment: StoredPayment,
        reserved: Option<StoredRefund>,
        deadline_ms: Option<i64>,
    ) -> CommandResult {
        let command = lease.request();
        let (_, refund_key) = self.refund_keys(lease.key());
        // `first_send`: reserved by this request, so no earlier attempt can have
        // sent it to Fintoc.
        let (payment, refund, first_send) = match reserved {
            Some(refund) => (with_reserved(payment, &refund), refund, true),
            None => {
                match self
                    .reserve(command, &refund_key, lease.now_ms(), payment)
                    .await
                {
                    Ok((payment, Reservation::New(refund))) => (payment, refund, true),
                    Ok((payment, Reservation::Found(refund))) => (payment, refund, false),
                    Err(e) => return CommandResult::Failed(e),
                }
            }
        };
        let done = |payment: &StoredPayment, refund: &StoredRefund| CommandResult::Done {
            response: created_response(payment, refund),
            payment_id: Some(payment.id.clone()),
        };
        if refund.status != RefundStatus::Creating {
            return done(&payment, &refund); // an earlier attempt of this key got this far
        }
        let reserved_at = crate::clock::parse_rfc3339_ms(&refund.created_at).unwrap_or(0);
        if !may_send_refund_create(reserved_at, lease.now_ms()) {
            // Fintoc may have purged the derived key: sending the create again could
            // make a second refund. The reconciler finds it in Fintoc's list, or
            // releases it once it is certain Fintoc never made it.
            tracing::warn!(payment_id = %payment.id, refund_key = refund.key.as_str(), "a refund's create is too old to send again; left to the reconciler");
            return done(&payment, &refund);
        }
        let intent_id = match refundable_intent(&payment) {
            Ok(id) => id.to_string(),
            Err(e) => return CommandResult::Failed(e),
        };
        // A re-send carries exactly what was first sent: the reservation's amount
        // and metadata, so Fintoc answers it from its key.
        let mut metadata = refund.metadata.clone();
        metadata.insert(
            REFUND_ID_METADATA_KEY.to_string(),
            payment.refund_id(&refund.key).to_string(),
        );
        let body = CreateRefund {
            resource_type: "payment_intent",
            resource_id: intent_id,
            amount: refund.amount,
            metadata,
        };
        let send = |generation| {
            let (body, key) = (&body, self.fintoc_key_at(lease.key(), generation));
            let budget = fintoc_budget(deadline_ms, self.clock.now_ms());
            async move { self.fintoc.create_refund(body, &key, budget).await }
        };
        let mut first_send = first_send;
        let mut created = send(refund.key_generation).await;
        let stored_failure =
            matches!(&created, Err(FintocError::Unavailable { status, .. }) if *status >= 500);
        if stored_failure && !first_send {
            match self
                .after_a_stored_failure(&payment, &refund, deadline_ms)
                .await
            {
                StoredFailure::Found(report) => created = Ok(*report),
                StoredFailure::NewKey(generation) => {
                    // The new key's first send: no refund was made under the old.
                    first_send = true;
                    created = send(generation).await;
                }
                StoredFailure::Unknown => {}
            }
        }
        let now = format_rfc3339_ms(self.clock.now_ms());
        match created {
            Ok(report) => {
                // One write, as decided on the reservation: Fintoc's answer
                // recorded and the key completed with it.
                let recorded = record_report(
                    &self.store,
                    &payment,
                    &refund.key,
                    &report,
                    &now,
                    Some(lease),
                )
                .await;
                match recorded {
                    Ok(Recorded {
                        refund: Some(recorded),
                        completed: true,
                        ..
                    }) => CommandResult::Completed {
                        response: created_response(&payment, &recorded),
                    },
                    Ok(Recorded {
                        refund: Some(recorded),
                        ..
                    }) => done(&payment, &recorded),
                    Ok(Recorded { refund: None, .. }) => CommandResult::Failed(store_error(
                        StoreError::Conflict("the refund left its payment's record".into()),
                    )),
                    Err(e) => CommandResult::Failed(store_error(e)),
                }
            }
            Err(e @ FintocError::Rejected { .. }) if !first_send => {
                // A re-send refused: an earlier send may have made the refund (its
                // answer lost), so the reservation stays; the reconciler finds it
                // in Fintoc's list by this backend's id, or releases it once it is
                // certain Fintoc never made it.
                tracing::warn!(payment_id = %payment.id, refund_key = refund.key.as_str(), error = %e, "Fintoc refused a refund's re-send; its reservation stays, left to the reconciler");
                done(&payment, &refund)
            }
            Err(e @ FintocError::Rejected { .. }) => {
                // Fintoc refused the first send: it made no refund, so its amount is
                // free again, exactly once.
                match self
                    .store
                    .drop_refund(payment.kind, &payment.id, &refund)
                    .await
                {
                    Ok(_) => {
                        let err = fintoc_error(&e);
                        tracing::info!(payment_id = %payment.id, code = %err.code, "Fintoc refused the refund; its amount is released");
                        CommandResult::Refused(err)
                    }
                    Err(e) => CommandResult::Failed(store_error(e)),
                }
            }
            Err(e) => {
                // Held while unknown: a retry with the same key reaches the same
                // Fintoc refund (or makes it), and only then is anything released.
                tracing::error!(payment_id = %payment.id, refund_key = refund.key.as_str(), error = %e, "creating the refund at Fintoc failed; its amount stays reserved");
                CommandResult::Failed(fintoc_error(&e))
            }
        }
    }

    /// The refund under `key` reserved on its payment (`New`: by this call), or the
    /// one an earlier attempt of the key reserved (`Found`), decided again on what a
    /// refused write found: the one conditional write that keeps refunds within
    /// what was paid.
    async fn reserve(
        &self,
        command: &RefundCommand,
        key: &RefundKey,
        now_ms: i64,
        read: StoredPayment,
    ) -> Result<(StoredPayment, Reservation), ApiError> {
        let decided = decide_and_write(
            &self.store,
            Some(read),
            |payment: &Option<StoredPayment>| {
                let Some(payment) = payment else {
                    return Decision::Stop(Err(payment_not_found(
                        command.kind,
                        &command.payment_id,
                    )));
                };
                match plan_reservation(command, key, now_ms, payment) {
                    Ok(Reservation::New(refund)) => Decision::Write(RefundReservation {
                        payment: payment.clone(),
                        refund,
                        now_ms,
                        first_check_after_ms: self.first_check_after_ms(),
                    }),
                    Ok(found @ Reservation::Found(_)) => {
                        Decision::Stop(Ok((payment.clone(), found)))
                    }
                    Err(refused) => Decision::Stop(Err(refused)),
                }
            },
        )
        .await
        .map_err(|e| {
            store_error(kept_changing(
                e,
                "refund's reservation",
                &command.payment_id,
            ))
        })?;
        match decided {
            Decided::Written { plan, .. } => Ok((
                with_reserved(plan.payment, &plan.refund),
                Reservation::New(plan.refund),
            )),
            Decided::Stopped { answer, .. } => answer,
        }
    }

    fn first_check_after_ms(&self) -> i64 {
        self.settings.first_check_after.as_millis() as i64
    }
}
