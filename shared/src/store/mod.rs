//! Storage ports and their DynamoDB implementation: the only module that talks to
//! DynamoDB.
//!
//! One table, one string partition key `pk`, four kinds of items (layout in
//! `docs/storage.md`):
//!
//! - `IDEMPOTENCY#<client key>`: the idempotency record of a create request
//!   ([`idempotency`]);
//! - `INTENT#<fintoc id>`: the payment intent as this backend knows it
//!   ([`intents`], with event patches rendered by [`patch`]);
//! - `ORDER#<order id>`: the merchant's order: at most one open intent, at most
//!   one payment ([`orders`]);
//! - `FOREIGN_EVENT#<event id>`: an event kept apart, not this deployment's
//!   ([`foreign_events`]).
//!
//! Open intents also carry their check schedule (`due_shard`, `due_at`, `checks`,
//! `give_up_at`), the keys of the sparse index the reconciler reads ([`schedule`]).
//!
//! A create's writes are two transactions, one before Fintoc and one after
//! ([`creates`]).
//!
//! Every state change is one conditional write. Expiry is decided by comparing
//! timestamps in conditions; the TTL attribute only collects garbage. The same
//! ports are implemented in memory by [`memory::MemoryStore`], and one contract
//! suite (`contract`, feature `contract-tests`) checks both against the same rules.

pub mod creates;
mod expr;
pub mod foreign_events;
pub mod idempotency;
pub mod memory;
pub mod orders;
mod patch;
pub mod payments;
pub mod refunds;
pub mod schedule;
pub mod table;
pub mod usage;

#[cfg(any(test, feature = "contract-tests"))]
pub mod contract;

use crate::domain::deployment::ForeignEvent;
use crate::domain::idempotency::{
    AcquireOutcome, AcquireRequest, CompleteRequest, IdempotencyKey, LeaseId,
};
use crate::domain::order::{OpenRequest, OrderRecord, ReserveOutcome, ReserveRequest};
use crate::domain::payment::{PaymentKind, StoredPayment};
use crate::domain::reconcile::ScheduleUpdate;
use crate::domain::schedule::CheckSchedule;
use crate::domain::transition::{PaymentPatch, PaymentState};
use crate::log_markers::DYNAMODB_VALIDATION;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, ConsumedCapacity};
use aws_sdk_dynamodb::Client;
pub use creates::{CreateStore, KeyAnd, KeyAndOrder, KeyAndRefund};
pub use refunds::{RefundChange, RefundOutcome, RefundStore, RefundWrite, ReserveRefund};
use std::future::Future;
use std::sync::Arc;
pub use table::{
    create_idempotency_table, create_table, idempotency_table_definition, table_definition,
    PARTITION_KEY, TTL_ATTRIBUTE,
};
pub use usage::Usage;

/// Any error, boxed, kept as the source of a [`StoreError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// DynamoDB could not be reached or refused the call (throttling, outage, ...).
    #[error("DynamoDB unavailable during {operation}")]
    Unavailable {
        /// The store operation that failed.
        operation: &'static str,
        /// What the SDK reported.
        #[source]
        source: BoxError,
    },
    /// An item that does not have the expected shape.
    #[error("stored item is malformed: {0}")]
    Malformed(String),
    /// A write that contradicts what is stored (e.g. one id with two amounts).
    #[error("stored item conflicts: {0}")]
    Conflict(String),
}

impl StoreError {
    /// An unavailable store, keeping what caused it.
    pub fn unavailable(operation: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Unavailable {
            operation,
            source: source.into(),
        }
    }

    /// The error with its whole chain of causes, for logs.
    pub fn detail(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(e) = cause {
            text.push_str(": ");
            text.push_str(&e.to_string());
            cause = e.source();
        }
        text
    }
}

/// Idempotency records of create requests.
pub trait IdempotencyStore: Send + Sync {
    /// Takes the key for this request, or says why it cannot (replay, in progress,
    /// mismatch). One conditional write; a conflict costs no extra read.
    fn acquire(
        &self,
        request: &AcquireRequest<'_>,
    ) -> impl Future<Output = Result<AcquireOutcome, StoreError>> + Send;

    /// Stores the response to replay. Returns `false` when the lease was lost (the
    /// record was taken over or released meanwhile); nothing is written then.
    fn complete(
        &self,
        request: &CompleteRequest<'_>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Deletes the record if this lease still holds it, so the client can retry.
    fn release(
        &self,
        key: &IdempotencyKey,
        lease_id: &LeaseId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Moves the key's Fintoc generation (`KeyHistory::fintoc_key_generation`) from
    /// `from` to the next, if this lease still holds the record and it is still at
    /// `from`: `false` (nothing written) otherwise.
    fn next_fintoc_key_generation(
        &self,
        key: &IdempotencyKey,
        lease_id: &LeaseId,
        from: u32,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Payment intents as the API reads and creates them.
pub trait PaymentStore: Send + Sync {
    /// Records an intent just created at Fintoc. Merges with an item a webhook may
    /// already have written: never moves its status, version or timestamps; refuses
    /// another amount or currency for the same id ([`StoreError::Conflict`]).
    fn save_created(
        &self,
        intent: &StoredPayment,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Reads an intent or a session (strongly consistent).
    fn get_payment(
        &self,
        kind: PaymentKind,
        id: &str,
    ) -> impl Future<Output = Result<Option<StoredPayment>, StoreError>> + Send;

    /// The checkout session whose recorded payment is the attempt `intent_id`
    /// (`pi_…`), if any: its id. Eventually consistent (a sparse index); the
    /// caller reads the session itself and checks its attempt.
    fn session_of_attempt(
        &self,
        intent_id: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
}

/// Orders, as the create use case reserves and opens them.
pub trait OrderStore: Send + Sync {
    /// Reserves the order for a create, or says why it cannot (busy, paid). One
    /// conditional write.
    fn reserve_order(
        &self,
        request: &ReserveRequest<'_>,
    ) -> impl Future<Output = Result<ReserveOutcome, StoreError>> + Send;

    /// Opens the reserved order with Fintoc's intent. `false` when the reservation
    /// was lost (nothing written).
    fn open_order(
        &self,
        request: &OpenRequest<'_>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// The result of applying an [`PaymentPatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteResult {
    /// Written (with the order's part, when the patch has one).
    Written,
    /// The intent's patch was written, but its order refused the outcome (paid
    /// already, or by another intent): a payment is kept on the order as an anomaly.
    WrittenOrderRefused,
    /// The guard failed: the state now stored (from `ALL_OLD`, no extra read), to
    /// decide again on.
    Conflict(Option<PaymentState>),
}

/// Payment intents as events change them.
pub trait EventStore: Send + Sync {
    /// The state decisions need (may be stale: every write is guarded).
    fn payment_state(
        &self,
        kind: PaymentKind,
        id: &str,
    ) -> impl Future<Output = Result<Option<PaymentState>, StoreError>> + Send;

    /// Applies a patch in one conditional write, the event id included.
    fn apply(
        &self,
        patch: &PaymentPatch,
    ) -> impl Future<Output = Result<WriteResult, StoreError>> + Send;

    /// Keeps an event that is not this deployment's apart from the intents, once.
    fn keep_apart(
        &self,
        event: &ForeignEvent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Reads an order (may be stale): which payment a session's payment intent
    /// belongs to.
    fn order(
        &self,
        order_id: &str,
    ) -> impl Future<Output = Result<Option<OrderRecord>, StoreError>> + Send;
}

/// An open intent due for a check, as the reconciler reads it from the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuePayment {
    /// `pi_...` (or `cs_...`).
    pub intent_id: String,
    /// An intent or a session.
    pub kind: PaymentKind,
    /// What the decision needs (from the index: may be stale; writes are guarded).
    pub state: PaymentState,
    /// Where it stands in its schedule.
    pub schedule: CheckSchedule,
}

/// The schedule of checks of open intents: a sparse, write-sharded index (only open
/// intents carry its attributes), read by the reconciler.
pub trait ScheduleStore: Send + Sync {
    /// Up to `limit` intents of index shard `shard` due at `now_ms`, earliest first.
    /// One query; never a scan.
    fn due_intents(
        &self,
        shard: u16,
        now_ms: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<DuePayment>, StoreError>> + Send;

    /// Moves or clears an intent's schedule (and flags it for a human), if its
    /// version is still the one read. `false` when it changed meanwhile: nothing
    /// is written, and the next run sees the new state.
    fn update_schedule(
        &self,
        update: &ScheduleUpdate,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// DynamoDB implementation of the store ports; cheap to clone.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// Where idempotency records live: a table of their own without a stream when
    /// deployed (their stored responses hold widget and session tokens, which no
    /// stream consumer may see), else `table`.
    idempotency_table: String,
    usage: Arc<usage::UsageMeter>,
}

impl DynamoStore {
    /// A store on `table` (idempotency records included).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        let table = table.into();
        Self {
            client,
            idempotency_table: table.clone(),
            table,
            usage: Arc::default(),
        }
    }

    /// The same store, with idempotency records in `table` (see
    /// [`crate::store::create_idempotency_table`]).
    pub fn with_idempotency_table(self, table: impl Into<String>) -> Self {
        Self {
            idempotency_table: table.into(),
            ..self
        }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The idempotency records' table name.
    pub fn idempotency_table(&self) -> &str {
        &self.idempotency_table
    }

    /// Opens (and verifies) the connection to DynamoDB before the first request needs
    /// it: one eventually consistent `GetItem` of a key no payment has
    /// (`INTENT#warm-up`, half a read unit, allowed by every function's policy that
    /// reads). It pays the TLS handshake and credential signing at init, and says
    /// early whether the table, the endpoint and the credentials work.
    pub async fn open_connection(&self) -> Result<(), StoreError> {
        self.client
            .get_item()
            .table_name(&self.table)
            .key(
                PARTITION_KEY,
                payments::payment_pk(PaymentKind::Intent, "warm-up"),
            )
            .consistent_read(false)
            .projection_expression("version")
            .send()
            .await
            .map_err(unavailable("open_connection"))?;
        Ok(())
    }

    /// The DynamoDB requests this store made and the capacity DynamoDB reported for
    /// them (every request asks for `ReturnConsumedCapacity=TOTAL`).
    pub fn usage(&self) -> Usage {
        self.usage.snapshot()
    }

    /// One conditional `UpdateItem` of `expr` on the item `key`, settled: `Ok(true)`
    /// written, `Ok(false)` refused by its condition.
    pub(crate) async fn conditional_update(
        &self,
        operation: &'static str,
        key: AttributeValue,
        expr: expr::Expr,
    ) -> Result<bool, StoreError> {
        self.conditional_update_in(&self.table, operation, key, expr)
            .await
    }

    /// [`Self::conditional_update`] in the table `table`.
    pub(crate) async fn conditional_update_in(
        &self,
        table: &str,
        operation: &'static str,
        key: AttributeValue,
        expr: expr::Expr,
    ) -> Result<bool, StoreError> {
        let update = self
            .client
            .update_item()
            .table_name(table)
            .key(PARTITION_KEY, key);
        let result = expr
            .apply_to_update(update)
            .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
            .send()
            .await
            .map(|out| out.consumed_capacity);
        self.settle_write(operation, result)
    }

    /// Meters a conditional write and says how it went: `Ok(true)` written,
    /// `Ok(false)` refused by its condition, an error when DynamoDB failed.
    pub(crate) fn settle_write<E, R>(
        &self,
        operation: &'static str,
        result: Result<Option<ConsumedCapacity>, SdkError<E, R>>,
    ) -> Result<bool, StoreError>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        match result {
            Ok(capacity) => {
                self.usage.write(capacity.as_ref());
                Ok(true)
            }
            Err(err) if failed_condition(&err) => {
                self.usage.failed_write();
                Ok(false)
            }
            Err(err) => Err(unavailable(operation)(err)),
        }
    }
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The write was refused by its condition expression (any operation's error type).
pub(crate) fn failed_condition<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException")
}

pub(crate) fn unavailable<E, R>(
    operation: &'static str,
) -> impl FnOnce(SdkError<E, R>) -> StoreError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    move |e| {
        if e.as_service_error().and_then(|s| s.code()) == Some("ValidationException") {
            tracing::error!(
                operation,
                "{DYNAMODB_VALIDATION}: DynamoDB refused a request as invalid (an item over 400 KB?); nothing was written"
            );
        }
        StoreError::unavailable(operation, e)
    }
}
