//! Refunds of succeeded payments (of either flow): `POST /payment-intents/{id}/refunds`
//! and `POST /checkout-sessions/{id}/refunds` reserve the amount on the payment's
//! record (one conditional write: never more than it paid), then create the refund
//! at Fintoc under a key derived from the merchant's, exactly once per key (the
//! idempotency engine); `GET /refunds/{id}` reads one back; `POST /refunds/{id}/cancel`
//! cancels one Fintoc has not started to pay out. What Fintoc reports of a refund (its
//! answer, an event, a check) is recorded by [`record_refund_report`], the one place
//! a stored refund changes.

use super::errors::{fintoc_error, store_error};
use super::idempotent::{self, Acquiring, Begun, CommandResult, Fingerprinted, Lease};
use super::payments::{fintoc_budget, CreateInput, PaymentService};
use crate::clock::{format_rfc3339_ms, Clock};
use crate::domain::create::parse_refund_request;
use crate::domain::error::{InputError, InputErrorKind};
use crate::domain::idempotency::{
    derive_fintoc_key_at, AcquireOutcome, FintocKey, IdempotencyKey, StoredResponse,
};
use crate::domain::payment::{PaymentKind, PaymentStatus, StoredPayment};
use crate::domain::reconcile::RefundTarget;
use crate::domain::refund::{
    may_send_refund_create, plan_refund_update, RefundId, RefundKey, RefundOrigin, RefundRefusal,
    RefundReport, RefundRequest, RefundStatus, StoredRefund, REFUND_ID_METADATA_KEY,
};
use crate::domain::schedule::CHECK_DELAYS_MS;
use crate::fintoc::{CreateRefund, FintocApi, FintocError, FintocLookup, FintocRefunds};
use crate::http::{ApiError, Reply};
use crate::store::{
    CreateStore, EventStore, KeyAnd, OrderStore, PaymentStore, RefundChange, RefundOutcome,
    RefundStore, ReserveRefund, ReserveRefundOutcome, StoreError,
};
use sha2::{Digest, Sha256};

/// Decisions made again on what a refused write found, at most.
const MAX_ATTEMPTS: usize = 8;

/// A refund request as the key is taken for it: which payment, and what.
#[derive(Debug, Clone)]
struct RefundCommand {
    kind: PaymentKind,
    payment_id: String,
    request: RefundRequest,
}

impl Fingerprinted for RefundCommand {
    fn fingerprint(&self) -> String {
        let canonical = serde_json::json!({
            "refund_of": format!("{}{}", self.kind.key_prefix(), self.payment_id),
            "request": self.request,
        });
        hex::encode(Sha256::digest(canonical.to_string()))
    }
}

/// What recording a report did to a stored refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundRecorded {
    /// Written (the amount released, when the write did).
    Changed,
    /// Nothing new (a duplicate, a late status).
    Unchanged,
    /// A contradiction kept for a human (logged `ANOMALY`), never applied.
    Anomaly,
    /// No such refund on the payment's record.
    Unknown,
    /// A refund made elsewhere that does not fit yet, while a refund of this
    /// backend's still waits for Fintoc's answer (`creating`): whether it is an
    /// anomaly depends on whether Fintoc made that one. Left for the sweep, which
    /// reads it again (its cursor holds) until the reservation is settled.
    Deferred,
}

/// Records what Fintoc reports of the refund under `key` on a payment's record:
/// forward only, Fintoc's id and failure code kept, the amount released by the one
/// write into an unpaid final status. Each write is guarded by the status it was
/// decided on; the first decision is made on `payment` as the caller last read it
/// (no read), a refused write is decided again on a fresh read. Returns what it did
/// and the refund as it is left.
pub async fn record_refund_report<S: PaymentStore + RefundStore>(
    store: &S,
    payment: &StoredPayment,
    key: &RefundKey,
    report: &RefundReport,
    now: &str,
) -> Result<(RefundRecorded, Option<StoredRefund>), StoreError> {
    let recorded = record_report(store, payment, key, report, now, None).await?;
    Ok((recorded.effect, recorded.refund))
}

/// What [`record_report`] did.
struct Recorded {
    effect: RefundRecorded,
    refund: Option<StoredRefund>,
    /// The key of `completing` was completed by the same write.
    completed: bool,
}

/// [`record_refund_report`]; with `completing`, the refund create's lease whose
/// key the first write also completes with the created refund's answer (one
/// request), when that write is made as decided on `payment`.
async fn record_report<S: PaymentStore + RefundStore>(
    store: &S,
    payment: &StoredPayment,
    key: &RefundKey,
    report: &RefundReport,
    now: &str,
    mut completing: Option<&Lease<RefundCommand>>,
) -> Result<Recorded, StoreError> {
    let (kind, payment_id) = (payment.kind, payment.id.as_str());
    let unchanged = |effect, refund: Option<&StoredRefund>| Recorded {
        effect,
        refund: refund.cloned(),
        completed: false,
    };
    let mut read = Some(payment.clone());
    for _ in 0..MAX_ATTEMPTS {
        let payment = match read.take() {
            Some(known) => known,
            None => match store.get_payment(kind, payment_id).await? {
                Some(fresh) => fresh,
                None => return Ok(unchanged(RefundRecorded::Unknown, None)),
            },
        };
        let Some(stored) = payment.refunds.get(key) else {
            return Ok(unchanged(RefundRecorded::Unknown, None));
        };
        let update = match plan_refund_update(stored, report) {
            Ok(None) => return Ok(unchanged(RefundRecorded::Unchanged, Some(stored))),
            Ok(Some(update)) => update,
            Err(_) => {
                tracing::error!(
                    payment_id,
                    refund_key = key.as_str(),
                    fintoc_refund_id = %report.id,
                    stored_status = stored.status.as_str(),
                    reported_status = report.status.as_str(),
                    "ANOMALY: Fintoc reports a refund that contradicts the stored one; kept for a human"
                );
                return Ok(unchanged(RefundRecorded::Anomaly, Some(stored)));
            }
        };
        // A final status is the refund's outcome: recorded once with it, and a
        // succeeded refund of the payment that paid its order counts on the order.
        let refund_id = payment.refund_id(key).to_string();
        let outcome = update.status.is_final().then(|| RefundOutcome {
            refund_id: &refund_id,
            order_id: payment
                .order_id
                .as_deref()
                .filter(|_| update.status == RefundStatus::Succeeded && payment.paid()),
            amount: stored.amount,
            currency: &stored.currency,
        });
        let applied = update.applied_to(stored, now);
        let response = completing.map(|_| created_response(&payment, &applied));
        let complete = completing
            .zip(response.as_ref())
            .map(|(lease, response)| lease.completion(response, Some(payment_id)));
        let written = store
            .change_refund(&RefundChange {
                kind,
                payment_id,
                key,
                expected: &stored.status,
                status: &update.status,
                fintoc_id: update.fintoc_id.as_deref(),
                failure_code: update.failure_code.as_deref(),
                release: update.release,
                updated_at: now,
                outcome,
                complete: complete.as_ref(),
            })
            .await?;
        if written {
            if matches!(update.status, RefundStatus::Failed | RefundStatus::Rejected) {
                // Counted by the stack's log metric filter (RefundsFailed → alarm),
                // so logged at ERROR, which every LogLevel the template offers prints
                // (FATAL aside): the payer did not get the money back.
                tracing::error!(
                    payment_id,
                    refund_key = key.as_str(),
                    fintoc_refund_id = %report.id,
                    status = update.status.as_str(),
                    failure_code = update.failure_code.as_deref().unwrap_or_default(),
                    "REFUND_FAILED: a refund ended unpaid; its amount is refundable again"
                );
            }
            tracing::info!(
                payment_id,
                refund_key = key.as_str(),
                fintoc_refund_id = %report.id,
                status = update.status.as_str(),
                released = update.release.unwrap_or_default(),
                "refund recorded"
            );
            return Ok(Recorded {
                effect: RefundRecorded::Changed,
                refund: Some(applied),
                completed: complete.is_some(),
            });
        }
        // Refused: decided again on a fresh read, without the key (a lost lease
        // would refuse every write with it; `idempotent::finish` completes it).
        completing = None;
    }
    Err(StoreError::Conflict(format!(
        "refund {} of {payment_id} kept changing",
        key.as_str()
    )))
}

/// The payment a reported refund is of, as held here: the one its target names,
/// or, for a refund made elsewhere of a payment intent stored under its checkout
/// session (a session's attempt), that session — when the attempt is the one
/// recorded as its payment. `None`: not a payment held here.
pub async fn payment_of_refund<S: PaymentStore>(
    store: &S,
    target: &RefundTarget,
) -> Result<Option<StoredPayment>, StoreError> {
    if let Some(payment) = store.get_payment(target.kind, &target.payment_id).await? {
        return Ok(Some(payment));
    }
    if target.kind != PaymentKind::Intent || target.key.is_some() {
        return Ok(None);
    }
    let Some(session_id) = store.session_of_attempt(&target.payment_id).await? else {
        return Ok(None);
    };
    Ok(store
        .get_payment(PaymentKind::Session, &session_id)
        .await?
        .filter(|session| {
            session
                .session_payment
                .as_ref()
                .is_some_and(|p| p.intent_id == target.payment_id)
        }))
}

/// Puts a reported refund of `payment` (held here) on its books: recorded on the
/// refund under `key` (this backend's id named it) or with Fintoc's id; one the
/// record does not hold is imported, so no refund of a payment held here is left
/// off its books — not even one of this backend's whose reservation was lost
/// (logged `ANOMALY`: it should not happen).
pub async fn record_or_import<S: PaymentStore + RefundStore>(
    store: &S,
    payment: &StoredPayment,
    key: Option<&RefundKey>,
    report: &RefundReport,
    now_ms: i64,
) -> Result<RefundRecorded, StoreError> {
    let held = key
        .filter(|k| payment.refunds.get(k).is_some())
        .cloned()
        .or_else(|| {
            payment
                .refunds
                .by_fintoc_id(&report.id)
                .map(|r| r.key.clone())
        });
    if let Some(held) = held {
        let now = format_rfc3339_ms(now_ms);
        return Ok(record_refund_report(store, payment, &held, report, &now)
            .await?
            .0);
    }
    if key.is_some() {
        tracing::error!(
            payment_id = %payment.id,
            fintoc_refund_id = %report.id,
            "ANOMALY: a refund this backend made is missing from its payment's record; imported"
        );
    }
    import_refund(store, payment, report, now_ms).await
}

/// Imports a refund made elsewhere (Fintoc's dashboard, a plugin) of `payment`,
/// which this deployment holds: reserved like a refund made here (under a key
/// derived from Fintoc's id, so a second report finds it), then recorded. One that
/// does not fit what is still refundable is an `ANOMALY`: money went out beyond
/// what this backend holds, and a human must look. A refund reported ended unpaid
/// holds nothing and is not imported.
pub async fn import_refund<S: PaymentStore + RefundStore>(
    store: &S,
    payment: &StoredPayment,
    report: &RefundReport,
    now_ms: i64,
) -> Result<RefundRecorded, StoreError> {
    let now = &format_rfc3339_ms(now_ms);
    if report.status.releases_amount() {
        tracing::info!(payment_id = %payment.id, fintoc_refund_id = %report.id, status = report.status.as_str(), "a refund made elsewhere ended unpaid; nothing to import");
        return Ok(RefundRecorded::Unchanged);
    }
    let key = RefundKey::for_import(&report.id);
    let mut payment = payment.clone();
    for _ in 0..MAX_ATTEMPTS {
        if payment.refunds.get(&key).is_some() {
            return Ok(record_refund_report(store, &payment, &key, report, now)
                .await?
                .0);
        }
        let amount = report.amount.unwrap_or_default();
        let fits = amount > 0 && payment.refund_ledger().reserve(Some(amount)).is_ok();
        let unconfirmed = payment
            .refunds
            .entries
            .iter()
            .any(|r| r.status == RefundStatus::Creating);
        if amount > 0 && !fits && unconfirmed {
            tracing::warn!(
                payment_id = %payment.id,
                fintoc_refund_id = %report.id,
                amount,
                "a refund made outside this API does not fit while a refund of ours awaits Fintoc's answer; imported once that is settled"
            );
            return Ok(RefundRecorded::Deferred);
        }
        if !fits {
            tracing::error!(
                payment_id = %payment.id,
                fintoc_refund_id = %report.id,
                amount,
                refundable = payment.refund_ledger().refundable(),
                "ANOMALY: a refund made outside this API exceeds what is refundable here; kept for a human"
            );
            return Ok(RefundRecorded::Anomaly);
        }
        let refund = StoredRefund {
            key: key.clone(),
            fintoc_id: Some(report.id.clone()),
            amount,
            currency: report
                .currency
                .clone()
                .unwrap_or_else(|| payment.currency.clone()),
            status: RefundStatus::Pending,
            failure_code: None,
            metadata: report.metadata.clone(),
            origin: RefundOrigin::Imported,
            key_generation: 0,
            created_at: report.created_at.clone().unwrap_or_else(|| now.to_string()),
            updated_at: now.to_string(),
        };
        match store
            .reserve_refund(&reserve_request(
                &payment,
                &refund,
                now_ms,
                CHECK_DELAYS_MS[0],
            ))
            .await?
        {
            ReserveRefundOutcome::Reserved => {
                tracing::warn!(payment_id = %payment.id, fintoc_refund_id = %report.id, amount, "imported a refund made outside this API");
                let reserved = with_reserved(payment.clone(), &refund);
                record_refund_report(store, &reserved, &key, report, now).await?;
                return Ok(RefundRecorded::Changed);
            }
            ReserveRefundOutcome::Conflict(Some(now_stored)) => payment = *now_stored,
            ReserveRefundOutcome::Conflict(None) => return Ok(RefundRecorded::Unknown),
        }
    }
    Err(StoreError::Conflict(format!(
        "payment {} kept changing while importing a refund",
        payment.id
    )))
}

/// The write reserving `refund` on `payment` as read (its open refunds checked
/// `first_check_after_ms` from `now_ms` when nothing is scheduled yet).
fn reserve_request<'a>(
    payment: &'a StoredPayment,
    refund: &'a StoredRefund,
    now_ms: i64,
    first_check_after_ms: i64,
) -> ReserveRefund<'a> {
    ReserveRefund {
        kind: payment.kind,
        payment_id: &payment.id,
        paid: payment.refundable_base(),
        refund,
        schedule: payment.schedule_for_refunds(now_ms, first_check_after_ms),
    }
}

/// `payment` as the write reserving `refund` left it (what is recorded next is
/// decided on it, without reading it again).
fn with_reserved(mut payment: StoredPayment, refund: &StoredRefund) -> StoredPayment {
    payment.refunds.reserved += refund.amount;
    payment.refunds.entries.push(refund.clone());
    payment
}

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

/// The answer stored for a refund create: the refund as recorded, 201.
fn created_response(payment: &StoredPayment, refund: &StoredRefund) -> StoredResponse {
    StoredResponse {
        status: 201,
        body: refund_reply(201, payment, refund).body,
    }
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

fn refund_reply(status: u16, payment: &StoredPayment, refund: &StoredRefund) -> Reply {
    let id = payment.refund_id(&refund.key);
    Reply::new(
        status,
        serde_json::to_string(&refund.view(&id)).expect("refund view serializes"),
    )
}

fn refund_not_found(id: &str) -> ApiError {
    InputError::new(
        InputErrorKind::NotFound,
        "resource_not_found",
        format!("No refund with id {}.", crate::domain::create::echo(id)),
    )
    .with_param("id")
    .into()
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
        let outcome = match planned {
            Ok(Reservation::New(refund)) => match self
                .store
                .acquire_reserving_refund(
                    &acquiring.request(),
                    &reserve_request(&payment, &refund, now, self.first_check_after_ms()),
                )
                .await
                .map_err(store_error)?
            {
                KeyAnd::Taken {
                    lease_id,
                    reservation_id,
                } => {
                    tracing::info!(payment_id = %payment.id, refund_key = refund.key.as_str(), amount = refund.amount, "refund reserved with its key");
                    reserved = Some(refund);
                    AcquireOutcome::Acquired {
                        lease_id,
                        reservation_id,
                        resumed: None,
                    }
                }
                KeyAnd::Key(outcome) => outcome,
                KeyAnd::Refused(found) => {
                    if let Some(found) = found {
                        payment = *found;
                    }
                    self.acquire_alone(&acquiring).await?
                }
            },
            Ok(Reservation::Found(_)) | Err(_) => self.acquire_alone(&acquiring).await?,
        };
        let lease = match acquiring.resolve(outcome)? {
            Begun::Held(lease) => lease,
            Begun::Replay(reply) => return Ok(reply),
        };
        let result = self
            .refund_under_lease(&lease, payment, reserved, input.deadline_ms)
            .await;
        idempotent::finish(&self.store, lease, result).await
    }

    /// The key alone, as `idempotent::begin` takes it.
    async fn acquire_alone(
        &self,
        acquiring: &Acquiring<RefundCommand>,
    ) -> Result<AcquireOutcome, ApiError> {
        self.store
            .acquire(&acquiring.request())
            .await
            .map_err(store_error)
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
        let mut payment = read;
        for _ in 0..MAX_ATTEMPTS {
            let refund = match plan_reservation(command, key, now_ms, &payment)? {
                found @ Reservation::Found(_) => return Ok((payment, found)),
                Reservation::New(refund) => refund,
            };
            let outcome = self
                .store
                .reserve_refund(&reserve_request(
                    &payment,
                    &refund,
                    now_ms,
                    self.first_check_after_ms(),
                ))
                .await
                .map_err(store_error)?;
            match outcome {
                ReserveRefundOutcome::Reserved => {
                    tracing::info!(payment_id = %payment.id, refund_key = key.as_str(), amount = refund.amount, "refund reserved");
                    return Ok((with_reserved(payment, &refund), Reservation::New(refund)));
                }
                ReserveRefundOutcome::Conflict(Some(now_stored)) => payment = *now_stored,
                ReserveRefundOutcome::Conflict(None) => {
                    payment = self.find(command.kind, &command.payment_id).await?
                }
            }
        }
        Err(store_error(StoreError::Conflict(format!(
            "payment {} kept changing while reserving a refund",
            command.payment_id
        ))))
    }

    fn first_check_after_ms(&self) -> i64 {
        self.settings.first_check_after.as_millis() as i64
    }

    /// `GET /refunds/{id}`: the refund as stored.
    pub async fn get_refund(&self, id: &str) -> Result<Reply, ApiError> {
        let (payment, refund) = self.find_refund(id).await?;
        Ok(refund_reply(200, &payment, &refund))
    }

    async fn find_refund(&self, id: &str) -> Result<(StoredPayment, StoredRefund), ApiError> {
        let refund_id = RefundId::parse(id).ok_or_else(|| refund_not_found(id))?;
        let kind = if refund_id.session {
            PaymentKind::Session
        } else {
            PaymentKind::Intent
        };
        let payment = self
            .store
            .get_payment(kind, &refund_id.payment_id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| refund_not_found(id))?;
        let refund = payment
            .refunds
            .get(&refund_id.key)
            .cloned()
            .ok_or_else(|| refund_not_found(id))?;
        Ok((payment, refund))
    }

    /// `POST /refunds/{id}/cancel`: cancels a refund Fintoc has not started to pay
    /// out, and records what Fintoc answers (its amount is released then). A
    /// refund canceled already answers as it is; any other is a 409.
    pub async fn cancel_refund(
        &self,
        id: &str,
        deadline_ms: Option<i64>,
    ) -> Result<Reply, ApiError> {
        let (payment, refund) = self.find_refund(id).await?;
        if refund.status == RefundStatus::Canceled {
            return Ok(refund_reply(200, &payment, &refund));
        }
        let fintoc_id = match (&refund.status, &refund.fintoc_id) {
            (RefundStatus::Pending, Some(fintoc_id)) => fintoc_id.clone(),
            (status, _) => return Err(ApiError::refund_not_cancelable(status.as_str())),
        };
        let now_ms = self.clock.now_ms();
        let answer = self
            .fintoc
            .cancel_refund(&fintoc_id, fintoc_budget(deadline_ms, now_ms))
            .await;
        let report = match answer {
            Ok(Some(report)) => report,
            Ok(None) => {
                // Fintoc told this backend of the refund, and now says it does not
                // know it (another account's key, another mode): a human must look.
                tracing::error!(payment_id = %payment.id, refund_key = refund.key.as_str(), fintoc_refund_id = %fintoc_id, "ANOMALY: Fintoc does not know a refund this deployment made; nothing canceled");
                return Err(ApiError::dependency(
                    502,
                    "fintoc_refund_unknown",
                    "Fintoc does not know this refund; nothing was canceled. The operator has been alerted.",
                ));
            }
            // Fintoc started paying it out meanwhile: what it says now is recorded
            // by its event or the reconciler.
            Err(FintocError::Rejected { .. }) => {
                return Err(ApiError::refund_not_cancelable("past pending at Fintoc"))
            }
            Err(e) => return Err(fintoc_error(&e)),
        };
        let now = format_rfc3339_ms(self.clock.now_ms());
        let (_, recorded) = record_refund_report(&self.store, &payment, &refund.key, &report, &now)
            .await
            .map_err(store_error)?;
        let recorded = recorded.ok_or_else(|| refund_not_found(id))?;
        Ok(refund_reply(200, &payment, &recorded))
    }
}

#[cfg(test)]
mod tests;
