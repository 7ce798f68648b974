//! Lambda entry point of reconcile: configuration and clients at cold start, then
//! one bounded run per scheduled invocation.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;
use shared::clock::SystemClock;
use shared::config::ReconcileConfig;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let config = ReconcileConfig::from_process_env().inspect_err(|e| {
        tracing::error!(error = %e, "invalid configuration");
    })?;
    let service = reconcile::init(&config).await?;
    let service = &service;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        Ok::<_, Error>(reconcile::handle(service, &SystemClock, event).await)
    }))
    .await
}
