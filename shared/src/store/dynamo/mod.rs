//! The DynamoDB adapter of every store port: one file per port (idempotency
//! records, payments, orders, events kept apart, the check schedule, refunds, a
//! create's combined writes), the tables' definitions, the one expression builder
//! and usage metering; the client and its error mapping here.

pub mod attention;
pub mod audit;
pub mod creates;
pub mod deliveries;
mod expr;
pub mod foreign_events;
pub mod idempotency;
pub mod operations;
pub mod orders;
mod patch;
pub mod payments;
pub mod refunds;
pub mod schedule;
pub mod stream;
pub mod table;
pub mod usage;

use super::ports::*;
use crate::domain::payment::PaymentKind;
use crate::log_markers::DYNAMODB_VALIDATION;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, ConsumedCapacity, ReturnConsumedCapacity};
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;
use std::sync::Arc;
pub use table::{
    create_idempotency_table, create_table, idempotency_table_definition, table_definition,
    PARTITION_KEY, TTL_ATTRIBUTE,
};
pub use usage::Usage;

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

    /// The item whose partition key is `key`, by one strongly consistent `GetItem`
    /// (metered; a failure is `operation`'s unavailability): the one read of a whole
    /// item every store module uses.
    pub(crate) async fn consistent_item(
        &self,
        operation: &'static str,
        key: AttributeValue,
    ) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, key)
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(unavailable(operation))?;
        self.usage.read(output.consumed_capacity());
        Ok(output.item)
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
