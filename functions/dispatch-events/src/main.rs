//! Lambda entry point of dispatch-events: configuration and clients at cold start,
//! then one stream batch or one retry sweep per invocation.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;
use shared::clock::SystemClock;
use shared::config::DispatchConfig;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let config = DispatchConfig::from_process_env().inspect_err(|e| {
        tracing::error!(error = %e, "invalid configuration");
    })?;
    let dispatcher = dispatch_events::init(&config).await?;
    let (dispatcher, sweep_limit) = (&dispatcher, config.sweep_limit);
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        dispatch_events::handle(dispatcher, &SystemClock, sweep_limit, event.payload).await
    }))
    .await
}
