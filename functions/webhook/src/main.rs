//! Lambda entry point of webhook: configuration, secret and clients at cold start,
//! then one `handle` call per delivery.

use lambda_http::{run, service_fn, Error, Request};
use shared::config::WebhookConfig;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let config = WebhookConfig::from_process_env().inspect_err(|e| {
        tracing::error!(error = %e, "invalid configuration");
    })?;
    let service = webhook::init(&config).await?;
    let service = &service;
    run(service_fn(move |request: Request| async move {
        Ok::<_, Error>(webhook::handle(service, request).await)
    }))
    .await
}
