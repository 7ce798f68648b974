//! Lambda entry point of create-intent: configuration and clients at cold start,
//! then one `handle` call per request.

use lambda_http::{run, service_fn, Error, Request};
use shared::config::CreateIntentConfig;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let config = CreateIntentConfig::from_process_env().inspect_err(|e| {
        tracing::error!(error = %e, "invalid configuration");
    })?;
    let service = create_intent::init(&config).await?;
    let service = &service;
    run(service_fn(move |request: Request| async move {
        Ok::<_, Error>(create_intent::handle(service, request).await)
    }))
    .await
}
