//! Lambda entry point of operations: configuration and clients at cold start, then
//! one `handle` call per request.

use lambda_http::{run, service_fn, Error, Request};
use shared::config::OperationsConfig;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let config = OperationsConfig::from_process_env().inspect_err(|e| {
        tracing::error!(error = %e, "invalid configuration");
    })?;
    let service = operations::init(&config).await?;
    let service = &service;
    run(service_fn(move |request: Request| async move {
        Ok::<_, Error>(operations::handle(service, request).await)
    }))
    .await
}
