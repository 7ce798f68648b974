//! Operators' use cases (the operations API): resolving an order held in `review`
//! — the order and its payment read strongly consistent, Fintoc asked about the
//! payment now, the decision made by `domain::resolution`, and the resolution
//! written with its audit entry together or not at all —, the queue of what needs
//! a person, and the audit log.

use crate::app::errors::{fintoc_error, store_error};
use crate::domain::attention::QueueItem;
use crate::domain::payment::PaymentKind;
use crate::domain::resolution::{
    decide, AuditEntry, FintocAnswer, ResolveAs, ResolveRefusal, ResolveRequest,
};
use crate::fintoc::{FintocError, FintocLookup};
use crate::http::ApiError;
use crate::store::{EventStore, OperationsStore, PaymentStore, ResolveWrite, StoreError};
use std::time::Duration;

/// How long a resolution waits for Fintoc's answer, retries included.
pub const FINTOC_BUDGET: Duration = Duration::from_secs(8);

/// Why a use case answered no.
#[derive(Debug)]
pub enum OperationsError {
    /// A precondition failed: nothing was written.
    Refused(ResolveRefusal),
    /// DynamoDB failed (retryable) or holds something unexpected.
    Store(StoreError),
    /// Fintoc could not be asked (retryable) or refused this backend.
    Fintoc(FintocError),
}

impl From<StoreError> for OperationsError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<FintocError> for OperationsError {
    fn from(e: FintocError) -> Self {
        Self::Fintoc(e)
    }
}

impl From<OperationsError> for ApiError {
    fn from(e: OperationsError) -> Self {
        match e {
            OperationsError::Refused(refusal) => {
                ApiError::invalid_request(refusal.status(), refusal.code(), refusal.message())
            }
            OperationsError::Store(e) => store_error(e),
            OperationsError::Fintoc(e) => fintoc_error(&e),
        }
    }
}

/// What an operator's `POST /ops/orders/{id}/resolve` body asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveBody {
    /// `as`: `paid` or `closed`.
    pub resolve_as: ResolveAs,
    /// `reason` (required; checked by the decision).
    pub reason: String,
    /// `ticket`, if any.
    pub ticket: Option<String>,
}

/// Reads a resolve body: `{"as": "paid"|"closed", "reason": "…", "ticket": "…"}`.
pub fn parse_resolve_body(body: &[u8]) -> Result<ResolveBody, ApiError> {
    #[derive(serde::Deserialize)]
    struct Wire {
        #[serde(rename = "as")]
        resolve_as: Option<String>,
        reason: Option<String>,
        ticket: Option<String>,
    }
    let wire: Wire = serde_json::from_slice(body).map_err(|_| {
        ApiError::invalid_request(
            400,
            "invalid_json",
            r#"The body must be a JSON object: {"as": "paid" | "closed", "reason": "...", "ticket": "..."}."#,
        )
    })?;
    let resolve_as = wire
        .resolve_as
        .as_deref()
        .and_then(ResolveAs::parse)
        .ok_or_else(|| {
            ApiError::invalid_param(
                "invalid_resolution",
                "as",
                "`as` must be \"paid\" or \"closed\".",
            )
        })?;
    Ok(ResolveBody {
        resolve_as,
        reason: wire.reason.unwrap_or_default(),
        ticket: wire.ticket.filter(|t| !t.trim().is_empty()),
    })
}

/// Fintoc's answer about a payment now (`None`: Fintoc does not know it).
pub async fn fintoc_answer<F: FintocLookup>(
    fintoc: &F,
    kind: PaymentKind,
    id: &str,
) -> Result<Option<FintocAnswer>, FintocError> {
    let report = match kind {
        PaymentKind::Intent => fintoc.get_payment_intent(id, Some(FINTOC_BUDGET)).await?,
        PaymentKind::Session => fintoc
            .get_checkout_session(id, Some(FINTOC_BUDGET))
            .await?
            .map(|session| session.to_record_report()),
    };
    Ok(report.and_then(|report| {
        Some(FintocAnswer {
            status: report.status?,
            amount: report.amount,
            currency: report.currency,
        })
    }))
}

/// Resolves an order held in `review`: its audit entry once written.
pub async fn resolve<S, F>(
    store: &S,
    fintoc: &F,
    request: &ResolveRequest,
) -> Result<AuditEntry, OperationsError>
where
    S: EventStore + PaymentStore + OperationsStore,
    F: FintocLookup,
{
    let order = store.order(&request.order_id).await?;
    let payment = match order
        .as_ref()
        .and_then(|o| Some((o.payment_kind, o.intent_id.clone()?)))
    {
        Some((kind, id)) => store.get_payment(kind, &id).await?,
        None => None,
    };
    // Decide on everything but Fintoc first: a refusal costs no call to Fintoc.
    let asks_fintoc = decide(request, order.as_ref(), payment.as_ref(), None);
    if let Err(
        refusal @ (ResolveRefusal::ReasonRequired
        | ResolveRefusal::OrderNotFound
        | ResolveRefusal::OrderNotInReview(_)
        | ResolveRefusal::PaymentNotFound),
    ) = asks_fintoc
    {
        return Err(OperationsError::Refused(refusal));
    }
    let payment_ref = payment.as_ref().expect("found above");
    let answer = fintoc_answer(fintoc, payment_ref.kind, &payment_ref.id).await?;
    let plan = decide(request, order.as_ref(), payment.as_ref(), answer.as_ref())
        .map_err(OperationsError::Refused)?;
    match store.resolve(&plan).await? {
        ResolveWrite::Written => {
            tracing::info!(
                order_id = %plan.order_id,
                action = %plan.entry.action,
                resolution = %plan.entry.id,
                "order resolved by an operator"
            );
            Ok(plan.entry)
        }
        ResolveWrite::Changed => Err(OperationsError::Refused(ResolveRefusal::Changed)),
    }
}

/// Everything that needs a person, oldest first.
pub async fn queue<S: OperationsStore>(store: &S) -> Result<Vec<QueueItem>, OperationsError> {
    Ok(store.attention_queue().await?)
}

/// The audit log, oldest first; only `subject`'s entries when given.
pub async fn audit_log<S: OperationsStore>(
    store: &S,
    subject: Option<&str>,
) -> Result<Vec<AuditEntry>, OperationsError> {
    Ok(store.audit_log(subject).await?)
}
