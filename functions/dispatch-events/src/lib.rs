//! The dispatch-events Lambda: the merchant events dispatcher, through
//! [`shared::app::merchant_events::EventDispatcher`]. Two triggers:
//!
//! - the payments table's stream (an event source mapping with filter criteria):
//!   each record's change becomes its events, recorded once in the table (the
//!   outbox) with a delivery per destination, whose first attempt is made at once;
//!   a record that cannot be recorded is reported as the batch's first failure
//!   (`ReportBatchItemFailures`), so the stream delivers it and what follows again;
//! - a schedule (any other payload): the retry sweep, every pending delivery due.

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use serde_json::{json, Value};
use shared::app::merchant_events::{DispatchReport, EventDispatcher};
use shared::clock::Clock;
use shared::config::DispatchConfig;
use shared::destinations::{Destinations, Endpoint, EventBus, EventSender, SignedEndpoints};
use shared::domain::merchant_event::StoredChange;
use shared::domain::standard_webhooks::SigningSecret;
use shared::store::dynamo::stream::{change_of, Image};
use shared::store::{DeliveryStore, DynamoStore, PaymentStore, StoreError};

/// The dispatcher as deployed.
pub type DeployedDispatcher = EventDispatcher<DynamoStore, Destinations>;

/// Builds every client once, at cold start (the endpoint's secrets read from SSM;
/// the bus's client when `EVENT_BUS_NAME` is set).
pub async fn init(config: &DispatchConfig) -> Result<DeployedDispatcher, lambda_runtime::Error> {
    let sdk = shared::aws::load_sdk_config().await;
    let mut endpoints = Vec::new();
    if let Some(endpoint) = &config.endpoint {
        let value = endpoint
            .secret_source
            .resolve(&sdk)
            .await
            .map_err(|e| format!("loading the merchant webhook secret: {e}"))?;
        let secrets = shared::secrets::split_secrets(&value)
            .iter()
            .map(|s| SigningSecret::parse(s.expose()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("the merchant webhook secret: {e}"))?;
        endpoints.push(Endpoint {
            name: endpoint.name.clone(),
            url: endpoint.url.clone(),
            secrets,
        });
    }
    let dynamodb = shared::aws::dynamodb_client(&sdk, config.table.endpoint.as_deref());
    Ok(EventDispatcher {
        store: DynamoStore::new(dynamodb, &config.table.table_name),
        sender: Destinations {
            endpoints: SignedEndpoints::new(
                SignedEndpoints::client(config.attempt_timeout)?,
                endpoints,
            ),
            bus: config
                .event_bus
                .as_ref()
                .map(|name| EventBus::new(shared::aws::eventbridge_client(&sdk), name)),
        },
        ladder_scale: config.ladder_scale,
        concurrency: config.concurrency,
    })
}

/// One stream record's change, decoded (an absent image is empty in the event).
fn change_of_record(
    record: &aws_lambda_events::event::dynamodb::EventRecord,
) -> Result<StoredChange, StoreError> {
    let image = |item: &serde_dynamo::Item| -> Option<Image> {
        let image: Image = item.clone().into();
        (!image.is_empty()).then_some(image)
    };
    change_of(
        image(&record.change.old_image).as_ref(),
        image(&record.change.new_image).as_ref(),
    )
}

/// The report as the invocation answers it, and its metrics (EMF).
fn report_json(report: &DispatchReport, now_ms: i64) -> Value {
    shared::metrics::emit(
        now_ms,
        &[("Function", "dispatch-events")],
        &[
            ("MerchantEvents", report.events as u64),
            ("DeliveriesDelivered", report.delivered as u64),
            ("DeliveryAttemptsFailed", report.retrying as u64),
            ("DeliveriesExhausted", report.exhausted as u64),
            ("EndpointsDisabled", report.disabled as u64),
        ],
    );
    json!({
        "events": report.events,
        "delivered": report.delivered,
        "retrying": report.retrying,
        "exhausted": report.exhausted,
        "disabled": report.disabled,
        "lost_claims": report.lost_claims,
    })
}

/// Handles one invocation: a stream batch (answering its failed records) or a
/// retry sweep (answering its report); an error only when the table failed.
pub async fn handle<S, D>(
    dispatcher: &EventDispatcher<S, D>,
    clock: &dyn Clock,
    sweep_limit: i32,
    payload: Value,
) -> Result<Value, lambda_runtime::Error>
where
    S: DeliveryStore + PaymentStore,
    D: EventSender,
{
    if payload.get("Records").is_none() {
        let report = dispatcher.sweep(sweep_limit, clock).await?;
        return Ok(report_json(&report, clock.now_ms()));
    }
    let event: StreamEvent = serde_json::from_value(payload)?;
    let mut changes = Vec::new();
    let mut undecodable = None;
    for (index, record) in event.records.iter().enumerate() {
        match change_of_record(record) {
            Ok(change) => changes.push(change),
            Err(e) => {
                tracing::error!(index, error = %e, "a stream record could not be read");
                undecodable = Some(index);
                break;
            }
        }
    }
    let outcome = dispatcher.dispatch(&changes, clock).await;
    let failed_from = match (&outcome.failed_from, undecodable) {
        (Some((index, e)), _) => {
            tracing::warn!(index, error = %e, "a stream record's events were not recorded; the stream delivers it again");
            Some(*index)
        }
        (None, undecodable) => undecodable,
    };
    let report = report_json(&outcome.report, clock.now_ms());
    let failures: Vec<Value> = event
        .records
        .iter()
        .skip(failed_from.unwrap_or(event.records.len()))
        .take(1)
        .map(|r| json!({"itemIdentifier": r.change.sequence_number}))
        .collect();
    // Lambda reads `batchItemFailures` and ignores the rest.
    Ok(json!({"batchItemFailures": failures, "report": report}))
}
