//! Operators' use cases (the operations API): resolving an order held in `review`
//! — the order and its payment read strongly consistent, Fintoc asked about the
//! payment now, the decision made by `domain::resolution`, and the resolution
//! written with its audit entry together or not at all —, the queue of what needs
//! a person, `find` (what any id names), and the audit log.

use crate::app::errors::{fintoc_error, store_error};
use crate::clock::format_rfc3339_ms;
use crate::domain::attention::QueueItem;
use crate::domain::payment::PaymentKind;
use crate::domain::refund_id::RefundId;
use crate::domain::resolution::{
    decide, AuditEntry, FintocAnswer, ResolveAs, ResolveRefusal, ResolveRequest, MAX_TEXT_BYTES,
};
use crate::fintoc::{FintocError, FintocLookup};
use crate::http::ApiError;
use crate::store::{
    DeliveryStore, EventStore, OperationsStore, PaymentStore, ResolveWrite, StoreError,
};
use serde_json::Value;
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
    /// Another precondition failed (an unknown event or endpoint, a disabled
    /// endpoint, an attempt in flight): nothing was written.
    Rejected(ApiError),
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
            OperationsError::Rejected(e) => e,
        }
    }
}

/// Who acts, when and why: what every operator's write records in its audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorAct {
    /// The caller's IAM principal.
    pub actor: String,
    /// Why, in the operator's words (may be empty here; at most [`MAX_TEXT_BYTES`]).
    pub reason: String,
    /// The ticket it answers, if any.
    pub ticket: Option<String>,
    /// The first audit entry's id; further entries of one act add `.<n>`.
    pub entry_id: String,
    /// When (Unix ms).
    pub at_ms: i64,
}

impl OperatorAct {
    /// Refuses a reason or ticket too long to keep.
    pub(crate) fn checked(&self) -> Result<(), OperationsError> {
        let too_long = |t: &str| t.len() > MAX_TEXT_BYTES;
        if too_long(&self.reason) || self.ticket.as_deref().is_some_and(too_long) {
            return Err(rejected(
                400,
                "reason_too_long",
                format!("A reason or ticket is at most {MAX_TEXT_BYTES} bytes."),
            ));
        }
        Ok(())
    }

    /// The act's `n`th audit entry.
    pub(crate) fn entry(
        &self,
        n: usize,
        action: &str,
        subject: &str,
        before: Value,
        after: Value,
    ) -> AuditEntry {
        AuditEntry {
            id: match n {
                0 => self.entry_id.clone(),
                n => format!("{}.{n}", self.entry_id),
            },
            at: format_rfc3339_ms(self.at_ms),
            at_ms: self.at_ms,
            actor: self.actor.clone(),
            action: action.to_string(),
            subject: subject.to_string(),
            reason: self.reason.trim().to_string(),
            ticket: self.ticket.clone(),
            before,
            after,
        }
    }
}

/// A refusal of an operator's act: nothing written.
pub(crate) fn rejected(status: u16, code: &str, message: impl Into<String>) -> OperationsError {
    OperationsError::Rejected(ApiError::invalid_request(status, code, message))
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

/// One thing an id names, as `find` answers it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Match {
    /// `order`, `payment`, `refund` or `event`.
    pub kind: &'static str,
    /// Its id.
    pub id: String,
    /// Its order, when it has one.
    pub order_id: Option<String>,
}

/// Everything `id` names: an order (any id may be a merchant's order id), a
/// payment intent or checkout session (`pi_…`, `cs_…`; a `pi_…` that is a
/// session's attempt names its session too), a refund's public id (`re_i.…`,
/// `re_s.…`), a merchant event (`evt_…`). A handful of strongly consistent reads,
/// in parallel.
pub async fn find<S>(store: &S, id: &str) -> Result<Vec<Match>, OperationsError>
where
    S: EventStore + PaymentStore + DeliveryStore,
{
    let id = id.trim();
    let order = store.order(id);
    let intent = async {
        match id.starts_with("pi_") {
            true => store.get_payment(PaymentKind::Intent, id).await,
            false => Ok(None),
        }
    };
    let attempt_of = async {
        match id.starts_with("pi_") {
            true => store.session_of_attempt(id).await,
            false => Ok(None),
        }
    };
    let session = async {
        match id.starts_with("cs_") {
            true => store.get_payment(PaymentKind::Session, id).await,
            false => Ok(None),
        }
    };
    let refund = async {
        let Some(refund) = RefundId::parse(id) else {
            return Ok(None);
        };
        let kind = if refund.session {
            PaymentKind::Session
        } else {
            PaymentKind::Intent
        };
        let payment = store.get_payment(kind, &refund.payment_id).await?;
        Ok::<_, StoreError>(
            payment.filter(|p| p.refunds.entries.iter().any(|r| r.key == refund.key)),
        )
    };
    let event = async {
        match id.starts_with("evt_") {
            true => store.event(id).await,
            false => Ok(None),
        }
    };
    let (order, intent, attempt_of, session, refund, event) =
        futures::try_join!(order, intent, attempt_of, session, refund, event)?;
    let mut found = Vec::new();
    if order.is_some() {
        found.push(Match {
            kind: "order",
            id: id.to_string(),
            order_id: Some(id.to_string()),
        });
    }
    for payment in intent.iter().chain(session.iter()) {
        found.push(Match {
            kind: "payment",
            id: payment.id.clone(),
            order_id: payment.order_id.clone(),
        });
    }
    if let Some(session_id) = attempt_of {
        let session = store.get_payment(PaymentKind::Session, &session_id).await?;
        found.push(Match {
            kind: "payment",
            id: session_id,
            order_id: session.and_then(|s| s.order_id),
        });
    }
    if let Some(payment) = refund {
        found.push(Match {
            kind: "refund",
            id: id.to_string(),
            order_id: payment.order_id,
        });
    }
    if let Some(event) = event {
        found.push(Match {
            kind: "event",
            id: event.id,
            order_id: event.order_id,
        });
    }
    Ok(found)
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

/// `acknowledge`: the queue item `id` leaves the queue for every reason of it that
/// holds no money (`domain::attention::ACKNOWLEDGEABLE`), each with its audit
/// entry; a reason is required. The items acknowledged.
pub async fn acknowledge<S: OperationsStore>(
    store: &S,
    id: &str,
    act: &OperatorAct,
) -> Result<Vec<QueueItem>, OperationsError> {
    if act.reason.trim().is_empty() {
        return Err(OperationsError::Refused(ResolveRefusal::ReasonRequired));
    }
    act.checked()?;
    let listed: Vec<QueueItem> = store
        .attention_queue()
        .await?
        .into_iter()
        .filter(|item| item.id == id)
        .collect();
    if listed.is_empty() {
        return Err(rejected(
            404,
            "not_in_queue",
            format!("Nothing named {id:?} is in the queue."),
        ));
    }
    let (acknowledged, held): (Vec<_>, Vec<_>) = listed
        .into_iter()
        .partition(|item| crate::domain::attention::acknowledgeable(item.reason));
    if acknowledged.is_empty() {
        return Err(rejected(
            409,
            "cannot_acknowledge",
            format!(
                "{id} is queued for {}: a payer's money is held; resolve the order or refund the payment.",
                held.iter().map(|i| i.reason).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    for (n, item) in acknowledged.iter().enumerate() {
        let entry = act.entry(
            n,
            &format!("acknowledge_{}", item.reason),
            &item.id,
            serde_json::json!({"queued": item.reason, "since": item.since}),
            serde_json::json!({"acknowledged": item.reason}),
        );
        if !store.acknowledge(item, &entry).await? {
            return Err(rejected(
                404,
                "not_in_queue",
                format!("{id} is gone from the table; nothing was written."),
            ));
        }
    }
    Ok(acknowledged)
}
